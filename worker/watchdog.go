package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/iec-almaty/sisnotify/integrations/mail"
	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/store"
)

// Watchdog keeps the service honest between nights: it re-queues notices
// that Redis lost or that a dead worker left behind, and tells the
// operators, once, when a night failed or when no night has succeeded for
// too long.
type Watchdog struct {
	DB      *sqlx.DB
	Enqueue *Enqueuer
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
	nights, err := store.New(w.DB).WatchNights(ctx)
	if err != nil {
		return fmt.Errorf("watchdog: %w", err)
	}
	now := w.now()
	lastOK, failed := nights.LastOK, nights.Failed
	quiet := (!lastOK.IsZero() && now.Sub(lastOK) > silence) || (lastOK.IsZero() && !w.Since.IsZero() && now.Sub(w.Since) > silence)
	var errs []error
	if failed != nil && failed.Cause == CauseFeedGuard {
		night, _ := date.Parse(failed.Night)
		errs = append(errs, w.raiseTo(ctx, "feed_guard", append(append([]string{}, w.Ops...), w.Office...),
			feedGuardSubject(night), feedGuardBody(night, failed.Error)))
	} else if failed != nil {
		errs = append(errs, w.raise(ctx, "night_failed", fmt.Sprintf("[sisnotify] the night of %s failed (%s)", failed.Night, failed.Phase),
			fmt.Sprintf("The night of %s failed in its %s phase after its retries:\n\n  %s\n\nNothing half-evaluated was sent. Fix the cause, then run `sisnotify run --once --as-of %s` or restart `sisnotify serve`, which catches up the last night.\n",
				failed.Night, failed.Phase, failed.Error, failed.Night)))
	} else {
		errs = append(errs, w.resolve(ctx, "night_failed"), w.resolve(ctx, "feed_guard"))
	}
	if quiet {
		since := "the service started"
		if !lastOK.IsZero() {
			since = lastOK.UTC().Format(time.RFC3339)
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
	st := store.New(w.DB)
	id, notified, err := st.OpenAlert(ctx, kind, subject)
	if err != nil {
		return err
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
	if err := st.AlertNotified(ctx, id); err != nil {
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
	resolved, err := store.New(w.DB).ResolveAlert(ctx, kind)
	if err != nil {
		return err
	}
	if resolved {
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
