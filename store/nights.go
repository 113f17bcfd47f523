package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/iec-almaty/sisnotify/jobs/date"
)

// A night (sisnotify.nights) is recorded by whoever runs it, serve's tasks
// or run --once: one row per night, its status (RunRunning, RunOK,
// RunFailed), the phase running, failed or last done, the counts of each
// phase, and, when it failed, the error and its typed cause (worker.Cause).

// RecordNightPhase records that phase of night is running: the night's row
// is made, or taken back to running with its error and cause cleared (a
// night run again after a failure).
func (s *Store) RecordNightPhase(ctx context.Context, night date.Date, phase string) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO sisnotify.nights (night, phase) VALUES ($1, $2)
		ON CONFLICT (night) DO UPDATE SET phase = EXCLUDED.phase, status = 'running', error = NULL, cause = NULL, finished_at = NULL`, night.String(), phase); err != nil {
		return fmt.Errorf("night %s: record: %w", night, err)
	}
	return nil
}

// RecordNightFailed records that night failed, in the phase recorded
// running, with the error's text and its typed cause.
func (s *Store) RecordNightFailed(ctx context.Context, night date.Date, errText, cause string) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE sisnotify.nights SET status = 'failed', finished_at = now(), error = $2, cause = $3 WHERE night = $1`,
		night.String(), errText, cause); err != nil {
		return fmt.Errorf("night %s: record: %w", night, err)
	}
	return nil
}

// RecordNightCounts adds the counts of phase (its result, as JSON) to the
// night's counts, under the phase's name.
func (s *Store) RecordNightCounts(ctx context.Context, night date.Date, phase string, counts any) error {
	cj, _ := json.Marshal(map[string]any{phase: counts})
	if _, err := s.db.ExecContext(ctx, `UPDATE sisnotify.nights SET counts = counts || $2::jsonb WHERE night = $1`, night.String(), string(cj)); err != nil {
		return fmt.Errorf("night %s: record: %w", night, err)
	}
	return nil
}

// NightPhaseDone says whether phase of night, which is still running, has
// already succeeded: its counts are recorded.
func (s *Store) NightPhaseDone(ctx context.Context, night date.Date, phase string) (bool, error) {
	var done bool
	err := s.db.GetContext(ctx, &done, `SELECT status = 'running' AND counts ? $2 FROM sisnotify.nights WHERE night = $1`, night.String(), phase)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("night %s: %w", night, err)
	}
	return done, nil
}

// RecordNightOK records that night succeeded: its last phase is done.
func (s *Store) RecordNightOK(ctx context.Context, night date.Date) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE sisnotify.nights SET status = 'ok', finished_at = now() WHERE night = $1`, night.String()); err != nil {
		return fmt.Errorf("night %s: record: %w", night, err)
	}
	return nil
}

// NightIsOK says whether night succeeded.
func (s *Store) NightIsOK(ctx context.Context, night date.Date) (bool, error) {
	var ok bool
	if err := s.db.GetContext(ctx, &ok, `SELECT EXISTS (SELECT 1 FROM sisnotify.nights WHERE night = $1 AND status = 'ok')`, night.String()); err != nil {
		return false, fmt.Errorf("night %s: %w", night, err)
	}
	return ok, nil
}

// NightHeldBy returns the cause of night's failure when it failed and has
// not succeeded since (sisnotify.nights.cause, e.g. "feed_guard"), "" when
// it did not fail or is unknown.
func (s *Store) NightHeldBy(ctx context.Context, night date.Date) (string, error) {
	var cause string
	err := s.db.GetContext(ctx, &cause, `SELECT coalesce(cause, '') FROM sisnotify.nights WHERE night = $1 AND status = 'failed'`, night.String())
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("night %s: %w", night, err)
	}
	return cause, nil
}

// LastNightOK returns when the latest night whose status is ok ended, or,
// in a database without sisnotify.nights (a schema older than the nights),
// the latest sync whose status is ok; the zero time when there is none.
func (s *Store) LastNightOK(ctx context.Context) (time.Time, error) {
	var nights bool
	if err := s.db.GetContext(ctx, &nights, `SELECT to_regclass('sisnotify.nights') IS NOT NULL`); err != nil {
		return time.Time{}, fmt.Errorf("last successful night: %w", err)
	}
	q := `SELECT max(finished_at) FROM sisnotify.syncs WHERE status = 'ok'`
	if nights {
		q = `SELECT max(finished_at) FROM sisnotify.nights WHERE status = 'ok'`
	}
	var t sql.NullTime
	if err := s.db.GetContext(ctx, &t, q); err != nil {
		return time.Time{}, fmt.Errorf("last successful night: %w", err)
	}
	if !t.Valid {
		return time.Time{}, nil
	}
	return t.Time, nil
}

// NightsWatch is what the watchdog reads of the nights.
type NightsWatch struct {
	// LastOK is when the latest ok night ended; zero: no night succeeded.
	LastOK time.Time
	// Failed is the latest night that failed after the latest ok one; nil:
	// none did.
	Failed *NightFailure
}

// NightFailure is a failed night: its date (YYYY-MM-DD, as PostgreSQL
// prints it), the phase that failed, the error's text and its typed cause
// ("" when the row has none).
type NightFailure struct {
	Night, Phase, Error, Cause string
}

// WatchNights reads, in one statement, when the last ok night ended and
// the latest night that failed since.
func (s *Store) WatchNights(ctx context.Context) (NightsWatch, error) {
	var lastOK sql.NullTime
	var failedNight, failedPhase, failedErr, failedCause sql.NullString
	err := s.db.QueryRowxContext(ctx, `
		SELECT (SELECT max(finished_at) FROM sisnotify.nights WHERE status = 'ok'),
		       f.night::text, f.phase, f.error, f.cause
		FROM (SELECT 1) one
		LEFT JOIN LATERAL (SELECT night, phase, error, cause FROM sisnotify.nights
		                   WHERE status = 'failed' AND night > coalesce((SELECT max(night) FROM sisnotify.nights WHERE status = 'ok'), '-infinity')
		                   ORDER BY night DESC LIMIT 1) f ON true`).Scan(&lastOK, &failedNight, &failedPhase, &failedErr, &failedCause)
	if err != nil {
		return NightsWatch{}, fmt.Errorf("nights: %w", err)
	}
	var w NightsWatch
	if lastOK.Valid {
		w.LastOK = lastOK.Time
	}
	if failedNight.Valid {
		w.Failed = &NightFailure{Night: failedNight.String, Phase: failedPhase.String, Error: failedErr.String, Cause: failedCause.String}
	}
	return w, nil
}
