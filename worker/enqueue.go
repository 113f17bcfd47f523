package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jmoiron/sqlx"

	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/jobs/config"
	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/store"
)

// Enqueuer puts every pending notice on the queue: one task per notice,
// TaskID = the notice key, payload = the notice id. A notice Redis already
// holds is a TaskID conflict and is left alone, so running it again after
// Redis lost its data re-creates exactly the missing tasks.
type Enqueuer struct {
	DB    *sqlx.DB
	Queue *Queue
	// MaxRetry configures each task (see MaxRetry).
	MaxRetry int
	// Workers enqueue concurrently over the one client; default 16.
	Workers int
	// Quiet are the local hours when student SMS are held, in Location.
	Quiet    config.QuietHours
	Location *time.Location
	// Lease: a notice "sending" for longer, or whose claim's owner has
	// died, is stuck and is queued again. Default store.NoticeLease.
	Lease time.Duration
	Log   *slog.Logger
}

func (q *Enqueuer) lease() time.Duration {
	if q.Lease <= 0 {
		return store.NoticeLease
	}
	return q.Lease
}

// Run enqueues every pending notice, as of now.
func (q *Enqueuer) Run(ctx context.Context, now time.Time) (jobs.EnqueueResult, error) {
	var res jobs.EnqueueResult
	lease := q.lease()
	loc := q.Location
	if loc == nil {
		loc = time.UTC
	}
	workers := q.Workers
	if workers <= 0 {
		workers = 16
	}
	st := store.New(q.DB)
	rows, err := st.ClaimableNotices(ctx, lease, date.FromTime(now.In(loc)))
	if err != nil {
		return res, fmt.Errorf("enqueue: %w", err)
	}
	defer rows.Close()

	work := make(chan store.QueuedNotice, 4*workers)
	var (
		wg                     sync.WaitGroup
		enq, queued, held, bad atomic.Int64
		firstErr               error
		errOnce                sync.Once
		heldMu                 sync.Mutex
		heldAt                 = map[time.Time][]int64{}
	)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range work {
				task, opts := deliverTask(n.ID, n.Key, n.Audience, q.MaxRetry)
				if n.Channel == "sms" && n.Audience == "student" {
					if at := jobs.HoldUntil(now, loc, q.Quiet, date.Date(n.DueOn)); !at.IsZero() {
						opts = append(opts, asynq.ProcessAt(at))
						held.Add(1)
						heldMu.Lock()
						heldAt[at] = append(heldAt[at], n.ID)
						heldMu.Unlock()
					}
				}
				_, err := q.Queue.client.EnqueueContext(wctx, task, opts...)
				switch {
				case err == nil:
					enq.Add(1)
				case errors.Is(err, asynq.ErrTaskIDConflict):
					queued.Add(1)
				default:
					bad.Add(1)
					errOnce.Do(func() { firstErr = err; cancel() })
				}
			}
		}()
	}
	for rows.Next() {
		var n store.QueuedNotice
		if err := rows.Scan(&n); err != nil {
			close(work)
			wg.Wait()
			return res, fmt.Errorf("enqueue: %w", err)
		}
		res.Pending++
		select {
		case work <- n:
		case <-wctx.Done():
		}
		if wctx.Err() != nil {
			break
		}
	}
	close(work)
	wg.Wait()
	res.Enqueued, res.Queued, res.Held = enq.Load(), queued.Load(), held.Load()
	if firstErr != nil {
		return res, fmt.Errorf("enqueue: %d tasks not queued: %w", bad.Load(), firstErr)
	}
	if err := rows.Err(); err != nil {
		return res, fmt.Errorf("enqueue: %w", err)
	}
	// PostgreSQL records when held SMS may go, so a night knows they are
	// not late.
	for at, ids := range heldAt {
		if err := st.HoldNotices(ctx, at, ids); err != nil {
			return res, fmt.Errorf("enqueue: record held SMS: %w", err)
		}
	}
	if q.Log != nil {
		q.Log.InfoContext(ctx, "enqueue", "pending", res.Pending, "enqueued", res.Enqueued, "already_queued", res.Queued, "held_quiet_hours", res.Held)
	}
	return res, nil
}

// Rescue queues again the notices whose tasks a dead process left running.
// asynq gives such a task back only when its recoverer next runs (every
// minute, for leases expired 30 s before), and until then the task's
// TaskID keeps the notice from being queued again; so a rerun after a
// crash would wait a minute or more for work it could do now. Rescue lists
// the queue's active tasks whose lease has expired (their worker is gone),
// and gives each notice of theirs that may be claimed, and each notice
// claimed by an owner that died (known at once, before asynq's lease
// shows its task orphaned), a second task, TaskID = key + "#" + attempts. The
// claim in PostgreSQL still lets only one of the two send; the orphan,
// when asynq returns it, finds the notice sent.
func (q *Enqueuer) Rescue(ctx context.Context) (int, error) {
	lease := q.lease()
	var ids []int64
	for _, queue := range NoticeQueues {
		for page := 1; ; page++ {
			tasks, err := q.Queue.insp.ListActiveTasks(queue, asynq.PageSize(500), asynq.Page(page))
			if errors.Is(err, asynq.ErrQueueNotFound) {
				break
			}
			if err != nil {
				return 0, fmt.Errorf("rescue: %w", err)
			}
			for _, t := range tasks {
				var p DeliverPayload
				if t.IsOrphaned && json.Unmarshal(t.Payload, &p) == nil && p.NoticeID > 0 {
					ids = append(ids, p.NoticeID)
				}
			}
			if len(tasks) < 500 {
				break
			}
		}
	}
	// The notices of orphaned tasks that may be claimed, and those claimed
	// by an owner that died, whose tasks asynq does not show orphaned yet
	// (for up to 30 s after the death).
	rows, err := store.New(q.DB).RescuableNotices(ctx, lease, ids)
	if err != nil {
		return 0, fmt.Errorf("rescue: %w", err)
	}
	n := 0
	for _, r := range rows {
		task, opts := deliverTask(r.ID, r.Key+"#"+strconv.Itoa(r.Attempts), r.Audience, q.MaxRetry)
		_, err := q.Queue.client.EnqueueContext(ctx, task, opts...)
		switch {
		case err == nil:
			n++
		case errors.Is(err, asynq.ErrTaskIDConflict): // rescued already
		default:
			return n, fmt.Errorf("rescue: %w", err)
		}
	}
	if n > 0 && q.Log != nil {
		q.Log.InfoContext(ctx, "rescued notices of a dead worker", "orphaned_tasks", len(ids), "queued_again", n)
	}
	return n, nil
}
