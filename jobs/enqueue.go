package jobs

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

	"github.com/iec-almaty/sisnotify/jobs/config"
	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/store"
)

// QueueNotices is the asynq queue of notice deliveries.
const QueueNotices = "notices"

// Enqueuer puts every pending notice on the queue: one task per notice,
// TaskID = the notice key, payload = the notice id. A notice Redis already
// holds is a TaskID conflict and is left alone, so running it again after
// Redis lost its data re-creates exactly the missing tasks.
type Enqueuer struct {
	DB     *sqlx.DB
	Client *asynq.Client
	// MaxRetry and Retention configure each task (see worker.MaxRetry).
	MaxRetry int
	// Workers enqueue concurrently over the one client; default 16.
	Workers int
	// Quiet are the local hours when student SMS are held, in Location.
	Quiet    config.QuietHours
	Location *time.Location
	// Lease: a notice "sending" for longer, or whose claim's owner has
	// died, is stuck and is queued again.
	Lease time.Duration
	Log   *slog.Logger
}

// EnqueueResult counts what one pass did.
type EnqueueResult struct {
	Pending  int64 // notices pending (or stuck sending) in PostgreSQL
	Enqueued int64 // tasks created
	Queued   int64 // already in Redis
	Held     int64 // SMS held for quiet hours (created with a later ProcessAt)
}

// Run enqueues every pending notice, as of now.
func (q *Enqueuer) Run(ctx context.Context, now time.Time) (EnqueueResult, error) {
	var res EnqueueResult
	lease := q.Lease
	if lease <= 0 {
		lease = store.NoticeLease
	}
	loc := q.Location
	if loc == nil {
		loc = time.UTC
	}
	workers := q.Workers
	if workers <= 0 {
		workers = 16
	}
	st := store.New(q.DB)
	rows, err := st.ClaimableNotices(ctx, lease)
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
				payload, _ := json.Marshal(DeliverPayload{NoticeID: n.ID})
				opts := []asynq.Option{asynq.TaskID(n.Key), asynq.Queue(QueueNotices), asynq.MaxRetry(q.MaxRetry), asynq.Timeout(2 * time.Minute)}
				if n.Channel == "sms" && n.Audience == "student" {
					if at := HoldUntil(now, loc, q.Quiet, date.Date(n.DueOn)); !at.IsZero() {
						opts = append(opts, asynq.ProcessAt(at))
						held.Add(1)
						heldMu.Lock()
						heldAt[at] = append(heldAt[at], n.ID)
						heldMu.Unlock()
					}
				}
				_, err := q.Client.EnqueueContext(wctx, asynq.NewTask(TypeDeliver, payload), opts...)
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

// HoldUntil returns when a student SMS due on dueOn may go out, or the zero
// time to send it now: during quiet hours it is held until they end, unless
// holding it would pass the step's deadline day (the due date is today or
// later, and the quiet hours end after it).
func HoldUntil(now time.Time, loc *time.Location, quiet config.QuietHours, dueOn date.Date) time.Time {
	local := now.In(loc)
	minute := local.Hour()*60 + local.Minute()
	if !quiet.Contains(minute) {
		return time.Time{}
	}
	today := date.FromTime(local)
	end := time.Date(local.Year(), local.Month(), local.Day(), quiet.End/60, quiet.End%60, 0, 0, loc)
	if !end.After(local) {
		end = end.AddDate(0, 0, 1)
	}
	if today <= dueOn && date.FromTime(end) > dueOn {
		return time.Time{}
	}
	return end
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
func (q *Enqueuer) Rescue(ctx context.Context, insp *asynq.Inspector) (int, error) {
	lease := q.Lease
	if lease <= 0 {
		lease = store.NoticeLease
	}
	var ids []int64
	for page := 1; ; page++ {
		tasks, err := insp.ListActiveTasks(QueueNotices, asynq.PageSize(500), asynq.Page(page))
		if errors.Is(err, asynq.ErrQueueNotFound) {
			return 0, nil
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
	// The notices of orphaned tasks that may be claimed, and those claimed
	// by an owner that died, whose tasks asynq does not show orphaned yet
	// (for up to 30 s after the death).
	rows, err := store.New(q.DB).RescuableNotices(ctx, lease, ids)
	if err != nil {
		return 0, fmt.Errorf("rescue: %w", err)
	}
	n := 0
	for _, r := range rows {
		payload, _ := json.Marshal(DeliverPayload{NoticeID: r.ID})
		_, err := q.Client.EnqueueContext(ctx, asynq.NewTask(TypeDeliver, payload),
			asynq.TaskID(r.Key+"#"+strconv.Itoa(r.Attempts)), asynq.Queue(QueueNotices), asynq.MaxRetry(q.MaxRetry), asynq.Timeout(2*time.Minute))
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
