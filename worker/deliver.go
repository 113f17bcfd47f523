package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/iec-almaty/sisnotify/jobs"
)

// TypeDeliver is the asynq task type that delivers one notice.
const TypeDeliver = "notice:deliver"

// QueueNotices is the asynq queue of the students' notices.
const QueueNotices = "notices"

// QueueOffice is the asynq queue of the office's and the deans' notices
// (the urgent office emails): served before QueueNotices (NewServer's
// strict priority), so with a rate limit in force they are not stuck
// behind a night of student mail. A notice's queue follows from its
// audience, so each notice still has one task, TaskID its key, in one
// queue.
const QueueOffice = "office"

// NoticeQueues are the queues of notice deliveries.
var NoticeQueues = []string{QueueOffice, QueueNotices}

// noticeQueue is the queue of a notice to audience.
func noticeQueue(audience string) string {
	if audience == "" || audience == "student" {
		return QueueNotices
	}
	return QueueOffice
}

// deliverTimeout bounds one delivery task.
const deliverTimeout = 2 * time.Minute

// DeliverPayload is the whole payload of a delivery task: the notice id,
// nothing personal. Everything else is read from PostgreSQL when the task
// runs.
type DeliverPayload struct {
	NoticeID int64 `json:"notice_id"`
}

// deliverTask is the task that delivers notice id, and its options:
// TaskID id (the notice key, or the key of a rescue), on its audience's
// queue, with maxRetry retries.
//
// asynq is told one retry more than maxRetry: the handler counts the
// last try itself (deliverAttempt) and ends the task there (a failure is
// recorded and not retried). The spare retry is for a postponement (the
// rate limit): it is not counted, but asynq archives a task that returns
// an error on its last retry whatever IsFailure says, and a notice
// postponed then would be left pending with no task.
func deliverTask(notice int64, id, audience string, maxRetry int) (*asynq.Task, []asynq.Option) {
	payload, _ := json.Marshal(DeliverPayload{NoticeID: notice})
	return asynq.NewTask(TypeDeliver, payload),
		[]asynq.Option{asynq.TaskID(id), asynq.Queue(noticeQueue(audience)), asynq.MaxRetry(maxRetry + 1), asynq.Timeout(deliverTimeout)}
}

// deliverHandler is the asynq handler of TypeDeliver over d: a permanent
// failure (jobs.Failed) is not retried, and the last retry records a
// temporary failure as failed.
type deliverHandler struct{ d *jobs.Deliverer }

func (h deliverHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var p DeliverPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.NoticeID <= 0 {
		return fmt.Errorf("deliver: bad payload: %w", asynq.SkipRetry)
	}
	a, ok := deliverAttempt(ctx)
	out, channel, err := h.d.DeliverOn(ctx, p.NoticeID, ok && a.Last())
	if h.d.Observe != nil && channel != "" {
		h.d.Observe.Delivered(channel, string(out))
	}
	if out == jobs.Failed {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	return err
}

// deliverAttempt is which try of its delivery task ctx runs, the spare
// retry left out (deliverTask); false outside a task.
func deliverAttempt(ctx context.Context) (jobs.Attempt, bool) {
	a, ok := taskAttempt(ctx)
	if ok && a.MaxRetry > 0 {
		a.MaxRetry--
	}
	return a, ok
}

// taskAttempt is which try of its task ctx runs; false outside a task.
func taskAttempt(ctx context.Context) (jobs.Attempt, bool) {
	retried, _ := asynq.GetRetryCount(ctx)
	maxRetry, ok := asynq.GetMaxRetry(ctx)
	return jobs.Attempt{Retried: retried, MaxRetry: maxRetry}, ok
}

// Queue is the process's hand on the queues in Redis: it puts tasks on
// them and finds, runs and deletes those waiting there. It shares the
// process's Redis client, which its Close leaves open.
type Queue struct {
	client *asynq.Client
	insp   *asynq.Inspector
}

// NewQueue returns the queues over rdb.
func NewQueue(rdb redis.UniversalClient) *Queue {
	return &Queue{client: asynq.NewClientFromRedisClient(rdb), insp: asynq.NewInspectorFromRedisClient(rdb)}
}

// Client is the asynq client of q, for Night.Client.
func (q *Queue) Client() *asynq.Client { return q.client }

// DeleteTask deletes task id of queue (Scheduler.Tasks: a failed night's
// tasks), with asynq's errors.
func (q *Queue) DeleteTask(queue, id string) error { return q.insp.DeleteTask(queue, id) }

// DeleteNoticeTask deletes the delivery task of the notice whose key is
// key, whatever its state but running; a task (or a queue) that is not
// there is not an error (jobs.TaskDeleter).
func (q *Queue) DeleteNoticeTask(key string) error {
	for _, queue := range NoticeQueues {
		if err := q.insp.DeleteTask(queue, key); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) && !errors.Is(err, asynq.ErrQueueNotFound) {
			return err
		}
	}
	return nil
}

// Close releases q (not the Redis client it shares).
func (q *Queue) Close() {
	// On a shared Redis client both only say so: nothing to release.
	_ = q.client.Close()
	_ = q.insp.Close()
}
