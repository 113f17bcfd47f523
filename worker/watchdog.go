package worker

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/iec-almaty/sisnotify/integrations/mail"
	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/jobs/date"
)

// Watchdog keeps the service honest between nights: it re-queues notices
// that Redis lost or that a dead worker left behind, and tells the
// operators, once, when a night failed or when no night has succeeded for
// too long.
type Watchdog struct {
	DB      *sqlx.DB
	Enqueue *jobs.Enqueuer
	Mail    jobs.MailSender
	Ops     []string
	// Office also hears of a night the feed guard held: the office must
	// know its students got nothing tonight.
	Office []string
	// Silence is how long without a successful night before the alert;
	// default 26 hours.
	Silence time.Duration
	// Since is when this process started: "no night" is only raised once
	// the service has been up for Silence.
	Since time.Time
	Log   *slog.Logger
	Now   func() time.Time
}

func (w *Watchdog) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

// Run checks every interval until ctx ends.
func (w *Watchdog) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := w.Check(ctx); err != nil && ctx.Err() == nil {
			w.log().ErrorContext(ctx, "watchdog", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Check runs one round.
func (w *Watchdog) Check(ctx context.Context) error {
	var errs []error
	if w.Enqueue != nil {
		if _, err := w.Enqueue.Run(ctx, w.now()); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, w.alerts(ctx))
	return errors.Join(errs...)
}

// alerts opens, mails and resolves the two operator alerts.
func (w *Watchdog) alerts(ctx context.Context) error {
	silence := w.Silence
	if silence <= 0 {
		silence = 26 * time.Hour
	}
	var lastOK sql.NullTime
	var failedNight, failedPhase, failedErr, failedCause sql.NullString
	err := w.DB.QueryRowxContext(ctx, `
		SELECT (SELECT max(finished_at) FROM sisnotify.nights WHERE status = 'ok'),
		       f.night::text, f.phase, f.error, f.cause
		FROM (SELECT 1) one
		LEFT JOIN LATERAL (SELECT night, phase, error, cause FROM sisnotify.nights
		                   WHERE status = 'failed' AND night > coalesce((SELECT max(night) FROM sisnotify.nights WHERE status = 'ok'), '-infinity')
		                   ORDER BY night DESC LIMIT 1) f ON true`).Scan(&lastOK, &failedNight, &failedPhase, &failedErr, &failedCause)
	if err != nil {
		return fmt.Errorf("watchdog: %w", err)
	}
	now := w.now()
	quiet := (lastOK.Valid && now.Sub(lastOK.Time) > silence) || (!lastOK.Valid && !w.Since.IsZero() && now.Sub(w.Since) > silence)
	var errs []error
	if failedNight.Valid && failedCause.String == CauseFeedGuard {
		night, _ := date.Parse(failedNight.String)
		errs = append(errs, w.raiseTo(ctx, "feed_guard", append(append([]string{}, w.Ops...), w.Office...),
			feedGuardSubject(night), feedGuardBody(night, failedErr.String)))
	} else if failedNight.Valid {
		errs = append(errs, w.raise(ctx, "night_failed", fmt.Sprintf("[sisnotify] the night of %s failed (%s)", failedNight.String, failedPhase.String),
			fmt.Sprintf("The night of %s failed in its %s phase after its retries:\n\n  %s\n\nNothing half-evaluated was sent. Fix the cause, then run `sisnotify run --once --as-of %s` or restart `sisnotify serve`, which catches up the last night.\n",
				failedNight.String, failedPhase.String, failedErr.String, failedNight.String)))
	} else {
		errs = append(errs, w.resolve(ctx, "night_failed"), w.resolve(ctx, "feed_guard"))
	}
	if quiet {
		since := "the service started"
		if lastOK.Valid {
			since = lastOK.Time.UTC().Format(time.RFC3339)
		}
		errs = append(errs, w.raise(ctx, "no_night", "[sisnotify] no night has succeeded for over "+silence.String(),
			fmt.Sprintf("No night has succeeded since %s. Check that `sisnotify serve` runs, that SISNOTIFY_SCHEDULE is right, and the log.\n", since)))
	} else {
		errs = append(errs, w.resolve(ctx, "no_night"))
	}
	return errors.Join(errs...)
}

// raise opens the alert of kind unless it is open, and mails it once to
// the operators.
func (w *Watchdog) raise(ctx context.Context, kind, subject, body string) error {
	return w.raiseTo(ctx, kind, w.Ops, subject, body)
}

func (w *Watchdog) raiseTo(ctx context.Context, kind string, to []string, subject, body string) error {
	var id int64
	var notified bool
	err := w.DB.QueryRowxContext(ctx, `
		WITH ins AS (INSERT INTO sisnotify.alerts (kind, subject) VALUES ($1, $2) ON CONFLICT (kind) WHERE resolved_at IS NULL DO NOTHING RETURNING alert_id, false AS notified)
		SELECT alert_id, notified FROM ins
		UNION ALL SELECT alert_id, notified_at IS NOT NULL FROM sisnotify.alerts WHERE kind = $1 AND resolved_at IS NULL
		LIMIT 1`, kind, subject).Scan(&id, &notified)
	if err != nil {
		return fmt.Errorf("alert %s: %w", kind, err)
	}
	if notified || w.Mail == nil || len(to) == 0 {
		return nil
	}
	for i, to := range to {
		_, _, err := w.Mail.Send(ctx, mail.Message{
			To: to, Subject: subject, Text: body,
			MessageID: fmt.Sprintf("<alert.%d.%d@sisnotify>", id, i+1),
			Headers:   map[string]string{mail.HeaderKind: "alert", mail.HeaderAudience: "ops"},
		})
		if err != nil {
			return fmt.Errorf("alert %s: mail ops: %w", kind, err)
		}
	}
	if _, err := w.DB.ExecContext(ctx, `UPDATE sisnotify.alerts SET notified_at = now() WHERE alert_id = $1`, id); err != nil {
		return fmt.Errorf("alert %s: %w", kind, err)
	}
	w.log().WarnContext(ctx, "ops alerted", "kind", kind, "alert_id", id, "recipients", len(to))
	return nil
}

func feedGuardSubject(night date.Date) string {
	return fmt.Sprintf("[sisnotify] the night of %s was held: the SIS looks broken", night)
}

func feedGuardBody(night date.Date, cause string) string {
	return fmt.Sprintf("The night of %s was held by the feed guard:\n\n  %s\n\nNo notice was sent and the previous snapshot of the SIS is kept. Check the SIS export (a view that lost a join, an export cut short). When the data is right, or the change is real, run\n\n  sisnotify run --once --force --as-of %s\n", night, cause, night)
}

// MailFeedGuard tells recipients (operators and office) that a night was
// held by the feed guard.
func MailFeedGuard(ctx context.Context, sender jobs.MailSender, to []string, night date.Date, cause error) error {
	for i, addr := range to {
		if _, _, err := sender.Send(ctx, mail.Message{
			To: addr, Subject: feedGuardSubject(night), Text: feedGuardBody(night, cause.Error()),
			MessageID: fmt.Sprintf("<feed-guard.%s.%d@sisnotify>", night, i+1),
			Headers:   map[string]string{mail.HeaderKind: "alert", mail.HeaderAudience: "ops"},
		}); err != nil {
			return fmt.Errorf("feed guard alert: %w", err)
		}
	}
	return nil
}

func (w *Watchdog) resolve(ctx context.Context, kind string) error {
	r, err := w.DB.ExecContext(ctx, `UPDATE sisnotify.alerts SET resolved_at = now() WHERE kind = $1 AND resolved_at IS NULL`, kind)
	if err != nil {
		return fmt.Errorf("alert %s: %w", kind, err)
	}
	if n, _ := r.RowsAffected(); n > 0 {
		w.log().InfoContext(ctx, "alert resolved", "kind", kind)
	}
	return nil
}

func (w *Watchdog) log() *slog.Logger {
	if w.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return w.Log
}
