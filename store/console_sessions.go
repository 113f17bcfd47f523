package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// A console session (sisnotify.console_sessions) is keyed by the SHA-256
// of the random token in the person's cookie, so that the table alone
// signs nobody in. The console decides, with its own clock, whether a
// session is still alive: these methods take the times they need.

// ConsoleSession is a signed-in person's session in the console.
type ConsoleSession struct {
	TokenHash  []byte
	Email      string
	Role       string
	FacultyIDs []string
	CSRF       string
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
}

// ConsoleSessionCreate stores a new session.
func (s *Store) ConsoleSessionCreate(ctx context.Context, cs ConsoleSession) error {
	ids := cs.FacultyIDs
	if ids == nil {
		ids = []string{}
	}
	if _, err := s.db.ExecContext(ctx, `
		INSERT INTO sisnotify.console_sessions (token_hash, email, role, faculty_ids, csrf, created_at, last_seen_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		cs.TokenHash, cs.Email, cs.Role, pq.Array(ids), cs.CSRF, cs.CreatedAt, cs.LastSeenAt, cs.ExpiresAt); err != nil {
		return fmt.Errorf("console session: create: %w", err)
	}
	return nil
}

// ConsoleSessionGet is the session of tokenHash; ok is false when there is
// none (never created, signed out, or deleted as expired).
func (s *Store) ConsoleSessionGet(ctx context.Context, tokenHash []byte) (cs ConsoleSession, ok bool, err error) {
	var ids pq.StringArray
	err = s.db.QueryRowContext(ctx, `
		SELECT token_hash, email, role, faculty_ids, csrf, created_at, last_seen_at, expires_at
		FROM sisnotify.console_sessions WHERE token_hash = $1`, tokenHash).
		Scan(&cs.TokenHash, &cs.Email, &cs.Role, &ids, &cs.CSRF, &cs.CreatedAt, &cs.LastSeenAt, &cs.ExpiresAt)
	if errors.Is(err, sql.ErrNoRows) {
		return ConsoleSession{}, false, nil
	}
	if err != nil {
		return ConsoleSession{}, false, fmt.Errorf("console session: get: %w", err)
	}
	cs.FacultyIDs = []string(ids)
	return cs, true, nil
}

// ConsoleSessionTouch records that the session of tokenHash was used at.
// The console calls it at most once a minute per session, not on every
// request, so that reading pages does not write a row each time.
func (s *Store) ConsoleSessionTouch(ctx context.Context, tokenHash []byte, at time.Time) error {
	if _, err := s.db.ExecContext(ctx, `
		UPDATE sisnotify.console_sessions SET last_seen_at = $2
		WHERE token_hash = $1 AND last_seen_at < $2`, tokenHash, at); err != nil {
		return fmt.Errorf("console session: touch: %w", err)
	}
	return nil
}

// ConsoleSessionDelete ends the session of tokenHash; it says whether
// there was one.
func (s *Store) ConsoleSessionDelete(ctx context.Context, tokenHash []byte) (bool, error) {
	r, err := s.db.ExecContext(ctx, `DELETE FROM sisnotify.console_sessions WHERE token_hash = $1`, tokenHash)
	if err != nil {
		return false, fmt.Errorf("console session: delete: %w", err)
	}
	n, _ := r.RowsAffected()
	return n > 0, nil
}

// ConsoleSessionDeleteExpired deletes the sessions that have ended by now:
// past their absolute expiry, or unused since idleSince. It returns how
// many it deleted.
func (s *Store) ConsoleSessionDeleteExpired(ctx context.Context, now, idleSince time.Time) (int64, error) {
	r, err := s.db.ExecContext(ctx, `
		DELETE FROM sisnotify.console_sessions WHERE expires_at <= $1 OR last_seen_at <= $2`, now, idleSince)
	if err != nil {
		return 0, fmt.Errorf("console session: delete expired: %w", err)
	}
	n, _ := r.RowsAffected()
	return n, nil
}

// ConsoleSessionDeanFaculties are the faculties (of the current snapshot)
// whose dean's address is email, compared case-insensitively, by id.
func (s *Store) ConsoleSessionDeanFaculties(ctx context.Context, email string) ([]string, error) {
	var ids []string
	if err := s.db.SelectContext(ctx, &ids, `
		SELECT faculty_id FROM sisnotify.faculties
		WHERE removed_at IS NULL AND dean_email IS NOT NULL AND lower(dean_email) = lower($1)
		ORDER BY faculty_id`, email); err != nil {
		return nil, fmt.Errorf("console session: dean's faculties: %w", err)
	}
	return ids, nil
}

// ConsoleSessionAudit records a sign-in or sign-out (action) of actor in
// role at, with detail (how they signed in; no personal data beyond the
// actor) in sisnotify.audit_log.
func (s *Store) ConsoleSessionAudit(ctx context.Context, at time.Time, actor, role, action string, detail map[string]string) error {
	d, err := json.Marshal(detail)
	if err != nil {
		return fmt.Errorf("console session: audit %s: %w", action, err)
	}
	if detail == nil {
		d = []byte("{}")
	}
	if _, err := s.db.ExecContext(ctx, `
		INSERT INTO sisnotify.audit_log (at, actor, role, action, detail) VALUES ($1, $2, $3, $4, $5)`,
		at, actor, role, action, d); err != nil {
		return fmt.Errorf("console session: audit %s: %w", action, err)
	}
	return nil
}
