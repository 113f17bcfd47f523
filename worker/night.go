package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jmoiron/sqlx"

	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/store"
)

// The night's chain: each phase is a task that, when it succeeds, queues
// the next. Every task's TaskID carries the night's date
// ("night-2026-11-25-sync"), and completed tasks are retained for a week,
// so however many replicas and schedulers start a night, each phase of it
// runs once.
const (
	TypeNightSync     = "night:sync"
	TypeNightEvaluate = "night:evaluate"
	TypeNightDeliver  = "night:deliver"
	TypeNightDigest   = "night:digest"
)

var phases = []struct{ name, typ string }{
	{"sync", TypeNightSync}, {"evaluate", TypeNightEvaluate}, {"deliver", TypeNightDeliver}, {"digest", TypeNightDigest},
}

// nightRetention keeps a night's completed tasks (and so their TaskIDs)
// long enough that no replica can start the same night twice.
const nightRetention = 7 * 24 * time.Hour

// nightMaxRetry: a phase that keeps failing (the SIS down, the database
// away) is retried for about half an hour, then the night is failed and
// the operators alerted.
const nightMaxRetry = 5

// NightPayload is the payload of every night task.
type NightPayload struct {
	Night string `json:"night"` // YYYY-MM-DD
	// Force lets the sync through the feed guard: a person released the
	// night after checking the SIS (Night.Release).
	Force bool `json:"force,omitempty"`
}

// PhaseObserver receives the duration and outcome of each phase (the
// /metrics side implements it).
type PhaseObserver interface {
	ObservePhase(phase string, d time.Duration, err error)
	NightSucceeded(t time.Time)
}

// DigestSender sends the night's digests (jobs.Digest).
type DigestSender interface {
	Run(ctx context.Context, night date.Date) (jobs.DigestResult, error)
}

// Night runs the phases of a night: sync, evaluate, deliver (queue the
// notices; the deliveries themselves are tasks of their own, spread over
// every replica) and digest.
type Night struct {
	DB       *sqlx.DB
	Client   *asynq.Client
	Sync     *jobs.Sync
	Evaluate *jobs.Evaluate
	Enqueue  *Enqueuer
	Digest   DigestSender
	Metrics  PhaseObserver
	Log      *slog.Logger
	// DigestWait is how long the digest waits for the night's deliveries
	// to finish before it goes out anyway; default 30 minutes.
	DigestWait time.Duration
	// Stopping, when closed, ends the digest's wait at once (serve closes
	// it at SIGTERM, so a stop does not wait out the shutdown timeout); the
	// task is retried a second later by whichever replica runs.
	Stopping <-chan struct{}
	Now      func() time.Time
	// Forecast, when set, says after the night's notices are queued
	// whether the rate limits let them all go before the office opens.
	Forecast *Forecast
}

// ErrStopping ends a task because the process is stopping.
var ErrStopping = errors.New("the worker is stopping")

// Register routes the night's task types to n.
func (n *Night) Register(mux *asynq.ServeMux) {
	for _, p := range phases {
		mux.HandleFunc(p.typ, n.handler(p.name))
	}
}

// Start queues the first phase of night. Starting a night that is queued,
// running or done is a no-op.
func (n *Night) Start(ctx context.Context, night date.Date) (bool, error) {
	return n.queue(ctx, 0, night)
}

func (n *Night) queue(ctx context.Context, i int, night date.Date) (bool, error) {
	payload, _ := json.Marshal(NightPayload{Night: night.String()})
	_, err := n.Client.EnqueueContext(ctx, asynq.NewTask(phases[i].typ, payload),
		asynq.TaskID(fmt.Sprintf("night-%s-%s", night, phases[i].name)), asynq.Queue(QueueNight),
		asynq.MaxRetry(nightMaxRetry), asynq.Retention(nightRetention), asynq.Timeout(2*time.Hour))
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("queue night %s %s: %w", night, phases[i].name, err)
	}
	return true, nil
}

// ErrNotHeld is a release of a night that the feed guard does not hold.
var ErrNotHeld = errors.New("the night is not held by the feed guard")

// Release lets a night the feed guard held run again through the guard,
// as `run --once --force` does: a person has checked the SIS. It queues
// the night's sync with Force (TaskID "night-<date>-sync-release"), whose
// success queues the rest of the night as usual; releasing twice queues
// once. who is recorded in the log (the console audits it).
func (n *Night) Release(ctx context.Context, night date.Date, who string) error {
	cause, err := store.New(n.DB).NightHeldBy(ctx, night)
	if err != nil {
		return fmt.Errorf("release night %s: %w", night, err)
	}
	if cause != CauseFeedGuard {
		return fmt.Errorf("release night %s: %w", night, ErrNotHeld)
	}
	payload, _ := json.Marshal(NightPayload{Night: night.String(), Force: true})
	_, err = n.Client.EnqueueContext(ctx, asynq.NewTask(phases[0].typ, payload),
		asynq.TaskID(fmt.Sprintf("night-%s-%s-release", night, phases[0].name)), asynq.Queue(QueueNight),
		asynq.MaxRetry(nightMaxRetry), asynq.Retention(nightRetention), asynq.Timeout(2*time.Hour))
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("release night %s: %w", night, err)
	}
	n.log().InfoContext(ctx, "night released through the feed guard", "night", night.String(), "by_break_glass", strings.HasPrefix(who, "break-glass:"))
	return nil
}

func (n *Night) now() time.Time {
	if n.Now != nil {
		return n.Now()
	}
	return time.Now()
}

func (n *Night) log() *slog.Logger {
	if n.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return n.Log
}

func (n *Night) handler(phase string) asynq.HandlerFunc {
	return func(ctx context.Context, t *asynq.Task) error {
		var p NightPayload
		if err := json.Unmarshal(t.Payload(), &p); err != nil {
			return fmt.Errorf("night task: %w: %w", err, asynq.SkipRetry)
		}
		night, err := date.Parse(p.Night)
		if err != nil {
			return fmt.Errorf("night task: %w: %w", err, asynq.SkipRetry)
		}
		// asynq runs a task again when its lease looks lost (a busy
		// machine misses a heartbeat), even while the first run goes on or
		// after it succeeded: a phase of this night already done is not
		// done twice; the chain goes on.
		done, err := store.New(n.DB).NightPhaseDone(ctx, night, phase)
		if err != nil {
			return err
		}
		if done {
			n.log().InfoContext(ctx, "night phase already done", "night", night.String(), "phase", phase)
		} else if _, err = n.runPhase(ctx, phase, night, p.Force, func(err error) bool {
			retried, _ := asynq.GetRetryCount(ctx)
			maxRetry, _ := asynq.GetMaxRetry(ctx)
			return retried >= maxRetry || errors.Is(err, asynq.SkipRetry)
		}); err != nil {
			return err
		}
		for i, ph := range phases {
			if ph.name == phase && i+1 < len(phases) {
				_, err := n.queue(ctx, i+1, night)
				return err
			}
		}
		return nil
	}
}

// Causes of a failed night (sisnotify.nights.cause).
const (
	CauseFeedGuard = "feed_guard" // the SIS looked broken: held until a person releases it
	CausePastNight = "past_night" // a later night is already recorded
	CauseError     = "error"      // anything else, after its retries
)

// Cause is the typed cause of a night's failure.
func Cause(err error) string {
	switch {
	case errors.Is(err, store.ErrFeedGuard):
		return CauseFeedGuard
	case errors.Is(err, jobs.ErrPastNight):
		return CausePastNight
	}
	return CauseError
}

// RunPhase runs one phase of night and records it in sisnotify.nights, as
// every night is recorded, whoever runs it (serve's tasks, run --once):
// the phase running, its counts, and when final says a failure is the last
// try, the night failed with its typed cause. After the last phase the
// night is ok. It returns the phase's counts (jobs.SyncResult,
// jobs.EvalResult, jobs.EnqueueResult, jobs.DigestResult).
func (n *Night) RunPhase(ctx context.Context, phase string, night date.Date, final func(error) bool) (any, error) {
	return n.runPhase(ctx, phase, night, false, final)
}

// runPhase is RunPhase; force lets the sync through the feed guard.
func (n *Night) runPhase(ctx context.Context, phase string, night date.Date, force bool, final func(error) bool) (any, error) {
	log := n.log().With("night", night.String(), "phase", phase)
	st := store.New(n.DB)
	if err := st.RecordNightPhase(ctx, night, phase); err != nil {
		return nil, err
	}
	start := time.Now()
	counts, err := n.run(ctx, phase, night, force)
	d := time.Since(start)
	if errors.Is(err, jobs.ErrPostponed) {
		// The rate limit held a digest back: the task runs again when it
		// lets it, and that is not a failure of the night.
		log.InfoContext(ctx, "night phase postponed by the rate limit", "err", err)
		return counts, err
	}
	if err != nil {
		last := final == nil || final(err)
		log.ErrorContext(ctx, "night phase failed", "err", err, "final", last, "duration", d.Round(time.Millisecond))
		if n.Metrics != nil {
			n.Metrics.ObservePhase(phase, d, err)
		}
		if last {
			if derr := st.RecordNightFailed(context.WithoutCancel(ctx), night, err.Error(), Cause(err)); derr != nil {
				log.ErrorContext(ctx, "record failed night", "err", derr)
			}
		}
		return counts, err
	}
	if n.Metrics != nil {
		n.Metrics.ObservePhase(phase, d, nil)
	}
	log.InfoContext(ctx, "night phase done", "duration", d.Round(time.Millisecond), "counts", counts)
	if err := st.RecordNightCounts(ctx, night, phase, counts); err != nil {
		return counts, err
	}
	if phase != phases[len(phases)-1].name {
		return counts, nil
	}
	if err := st.RecordNightOK(ctx, night); err != nil {
		return counts, err
	}
	if n.Metrics != nil {
		n.Metrics.NightSucceeded(n.now())
	}
	log.InfoContext(ctx, "night done")
	return counts, nil
}

// run does one phase and returns its counts for the log.
func (n *Night) run(ctx context.Context, phase string, night date.Date, force bool) (any, error) {
	switch phase {
	case "sync":
		sync := n.Sync
		if force {
			forced := *n.Sync
			if forced.Guard != nil {
				g := *forced.Guard
				g.Force = true
				forced.Guard = &g
			}
			sync = &forced
		}
		res, err := sync.Run(ctx, night)
		if errors.Is(err, store.ErrFeedGuard) {
			// Retrying reads the same SIS: hold the night until a person
			// looks (run --once --force).
			return res, fmt.Errorf("%w: %w", err, asynq.SkipRetry)
		}
		return res, err
	case "evaluate":
		tx, err := store.BeginSnapshotTx(ctx, n.DB)
		if err != nil {
			return nil, fmt.Errorf("evaluate: %w", err)
		}
		defer tx.Rollback()
		res, err := n.Evaluate.Run(ctx, tx.Conn(), night, false)
		if err != nil {
			if errors.Is(err, jobs.ErrPastNight) {
				return nil, fmt.Errorf("%w: %w", err, asynq.SkipRetry)
			}
			return nil, err
		}
		return res, tx.Commit(ctx)
	case "deliver":
		res, err := n.Enqueue.Run(ctx, n.now())
		if err == nil && n.Forecast != nil {
			// A forecast that cannot be made does not fail the night.
			if _, ferr := n.Forecast.Check(ctx, night, n.now()); ferr != nil {
				n.log().WarnContext(ctx, "delivery forecast", "night", night.String(), "err", ferr)
			}
		}
		return res, err
	case "digest":
		// The digest says what was sent: wait (a while) for the night's
		// deliveries, which run on every replica.
		wait := n.DigestWait
		if wait <= 0 {
			wait = 30 * time.Minute
		}
		if err := WaitDeliveries(ctx, store.New(n.DB), night, time.Now().Add(wait), n.Stopping); err != nil {
			return nil, err
		}
		if n.Digest == nil {
			return nil, nil
		}
		return n.Digest.Run(ctx, night)
	}
	return nil, fmt.Errorf("unknown phase %q: %w", phase, asynq.SkipRetry)
}

// WaitDeliveries waits until no notice of night is left to go
// (store.Store.NoticesToGo), or until deadline, whichever comes first:
// the digest says what was sent. It counts again after digestPoll, so
// the digest follows the last delivery within a fraction of a second
// without counting ten times a second through a long, rate-limited
// night. It returns ErrStopping when stopping closes.
func WaitDeliveries(ctx context.Context, st *store.Store, night date.Date, deadline time.Time, stopping <-chan struct{}) error {
	before, last := int64(-1), time.Duration(0)
	for {
		left, err := st.NoticesToGo(ctx, night)
		if err != nil {
			return fmt.Errorf("digest: %w", err)
		}
		if left == 0 || time.Now().After(deadline) {
			return nil
		}
		last = digestPoll(left, before-left, last)
		before = left
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-stopping:
			return ErrStopping
		case <-time.After(last):
		}
	}
}

// digestPoll is how long WaitDeliveries sleeps before it counts again,
// left notices being left, gone of them having gone in the last sleep
// (of length last; gone < 0 before the first): half of what that pace
// says the rest will take, between 100 ms and 2 s; 250 ms at first, and
// 2 s while nothing moves (a provider that is down, a rate limit's
// wait).
func digestPoll(left, gone int64, last time.Duration) time.Duration {
	const least, most = 100 * time.Millisecond, 2 * time.Second
	switch {
	case gone < 0 || last <= 0:
		return 250 * time.Millisecond
	case gone == 0:
		return most
	}
	d := time.Duration(float64(last) * float64(left) / float64(gone) / 2)
	return min(max(d, least), most)
}
