package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/pace"
)

// Options configure the asynq server of a worker process.
type Options struct {
	// Redis is the one go-redis client the process shares.
	Redis redis.UniversalClient
	// Concurrency is the number of tasks in flight; default 8. sisnotify
	// passes 64 (cmd/sisnotify's deliveryConcurrency), sharing 8 SMTP
	// connections: a delivery spends most of its time waiting.
	Concurrency int
	// ShutdownTimeout bounds how long a stop waits for deliveries in
	// flight; default 20 s.
	ShutdownTimeout time.Duration
	// RetryDelay replaces the production RetryDelay (tests use
	// milliseconds).
	RetryDelay asynq.RetryDelayFunc
	Log        *slog.Logger
}

// NewServer returns an asynq server with sisnotify's retry policy and
// queues, logging through slog.
func NewServer(o Options) *asynq.Server {
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 20 * time.Second
	}
	if o.RetryDelay == nil {
		o.RetryDelay = RetryDelay
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	retryDelay := o.RetryDelay
	return asynq.NewServerFromRedisClient(o.Redis, asynq.Config{
		Concurrency: o.Concurrency,
		// Strict priority: the night's chain (the digests among it), then
		// the office's and deans' notices, then the students'. With a rate
		// limit in force the students' mail is what waits.
		Queues:         map[string]int{QueueNight: 3, QueueOffice: 2, QueueNotices: 1},
		StrictPriority: true,
		// A task the rate limit postponed is no failure: asynq then does
		// not count it as a retry (processor.go, rdb.Retry with
		// isFailure false), and it runs again once the limit lets it.
		IsFailure: func(err error) bool { return !errors.Is(err, jobs.ErrPostponed) },
		RetryDelayFunc: func(n int, err error, t *asynq.Task) time.Duration {
			var p *jobs.PostponedError
			if errors.As(err, &p) {
				return pace.Jitter(p.After)
			}
			return retryDelay(n, err, t)
		},
		ShutdownTimeout:          o.ShutdownTimeout,
		DelayedTaskCheckInterval: time.Second,
		// When the queues are empty asynq's fetch loop sleeps 0.5–1.5 times
		// this, in a sleep a shutdown cannot cut short: the default (1 s)
		// made every drain of a night end up to 1.5 s after its last
		// delivery. An idle replica polls about 5 times a second instead.
		TaskCheckInterval: 200 * time.Millisecond,
		Logger:            slogAdapter{log.With("component", "asynq")},
		LogLevel:          asynq.WarnLevel,
		ErrorHandler: asynq.ErrorHandlerFunc(func(ctx context.Context, t *asynq.Task, err error) {
			// Payloads hold ids only, so the task can be named.
			var p DeliverPayload
			_ = json.Unmarshal(t.Payload(), &p)
			retried, _ := asynq.GetRetryCount(ctx)
			if errors.Is(err, jobs.ErrPostponed) {
				log.DebugContext(ctx, "task postponed by the rate limit", "type", t.Type(), "notice_id", p.NoticeID, "err", err)
				return
			}
			log.WarnContext(ctx, "task failed", "type", t.Type(), "notice_id", p.NoticeID, "retried", retried, "err", err)
		}),
	})
}

// QueueNight is the queue of the night's chain (sync, evaluate, enqueue,
// digest).
const QueueNight = "night"

// NewMux routes task types to their handlers: the deliveries to d's.
func NewMux(d *jobs.Deliverer) *asynq.ServeMux {
	mux := asynq.NewServeMux()
	mux.Handle(TypeDeliver, deliverHandler{d})
	return mux
}

// slogAdapter is asynq's Logger over slog.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Debug(args ...any) { a.l.Debug(fmt.Sprint(args...)) }
func (a slogAdapter) Info(args ...any)  { a.l.Info(fmt.Sprint(args...)) }
func (a slogAdapter) Warn(args ...any)  { a.l.Warn(fmt.Sprint(args...)) }
func (a slogAdapter) Error(args ...any) { a.l.Error(fmt.Sprint(args...)) }
func (a slogAdapter) Fatal(args ...any) { a.l.Error(fmt.Sprint(args...)) }
