package worker

import (
	"context"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// RunNow moves a task that waits (here: scheduled an hour away, as a
// retry's back-off is) to pending, leaves a pending task alone, and counts
// a key Redis does not hold as missing: what `notices retry --pending`
// does once an outage is over.
func TestRunNowMovesWaitingTasks(t *testing.T) {
	rs := startRedisProcess(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.addr})
	t.Cleanup(func() { rdb.Close() })
	client := asynq.NewClientFromRedisClient(rdb)
	task := func(key string, opts ...asynq.Option) {
		t.Helper()
		opts = append(opts, asynq.TaskID(key), asynq.Queue(QueueNotices))
		if _, err := client.Enqueue(asynq.NewTask(TypeDeliver, []byte(`{"notice_id":1}`)), opts...); err != nil {
			t.Fatal(err)
		}
	}
	task("waiting", asynq.ProcessIn(time.Hour))
	task("queued")
	res, err := RunNow(context.Background(), rdb, []string{"queued", "waiting", "gone"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Moved) != 1 || res.Moved[0] != 1 || res.Queued != 1 || res.Missing != 1 {
		t.Fatalf("RunNow = %+v, want the waiting task (index 1) moved, one queued, one missing", res)
	}
	info, err := asynq.NewInspectorFromRedisClient(rdb).GetTaskInfo(QueueNotices, "waiting")
	if err != nil {
		t.Fatal(err)
	}
	if info.State != asynq.TaskStatePending {
		t.Errorf("the waiting task is %s after RunNow, want pending", info.State)
	}
	if res, err := RunNow(context.Background(), rdb, nil); err != nil || len(res.Moved) != 0 {
		t.Errorf("RunNow of nothing = %+v, %v", res, err)
	}
}
