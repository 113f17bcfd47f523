package worker

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// RunNowResult says what RunNow did with each task it was given.
type RunNowResult struct {
	// Moved are the indexes (into the keys given) of the tasks that waited
	// in the retry or scheduled state (or were archived) and are pending
	// now: the workers take them at once.
	Moved []int
	// Queued counts tasks that were pending or running already; Missing
	// those Redis does not hold (the next enqueue re-creates them).
	Queued, Missing int
}

// runNowWorkers bounds the Redis round trips of RunNow in flight.
const runNowWorkers = 16

// RunNow moves the delivery tasks of keys (notice keys, which are their
// TaskIDs on their audience's queue) that wait for a retry or a scheduled time
// to pending, so that they are delivered now whatever their back-off:
// what an operator asks for once an outage is over. The task keeps its
// retry count, so the retries left are not reset. The caller chooses the
// keys: a student SMS held for quiet hours must not be among them
// (the store's WaitingNotices leaves those out).
func RunNow(ctx context.Context, rdb redis.UniversalClient, keys []string) (RunNowResult, error) {
	var res RunNowResult
	if len(keys) == 0 {
		return res, nil
	}
	insp := asynq.NewInspectorFromRedisClient(rdb)
	type answer struct {
		i     int
		moved bool
		found bool
		err   error
	}
	work := make(chan int)
	answers := make(chan answer)
	var wg sync.WaitGroup
	for w := 0; w < min(runNowWorkers, len(keys)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				a := answer{i: i}
				// The notice's task is on its audience's queue.
				queue := QueueNotices
				info, err := insp.GetTaskInfo(queue, keys[i])
				if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
					queue = QueueOffice
					info, err = insp.GetTaskInfo(queue, keys[i])
				}
				switch {
				case errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound):
				case err != nil:
					a.err = err
				default:
					a.found = true
					switch info.State {
					case asynq.TaskStateRetry, asynq.TaskStateScheduled, asynq.TaskStateArchived:
						err := insp.RunTask(queue, keys[i])
						switch {
						case err == nil:
							a.moved = true
						case errors.Is(err, asynq.ErrTaskNotFound):
							// Ran and finished meanwhile.
						default:
							// Taken by a worker meanwhile ("already
							// running" or "already pending"): not ours to
							// move, and not an error.
							if st, serr := insp.GetTaskInfo(queue, keys[i]); serr != nil || (st.State != asynq.TaskStateActive && st.State != asynq.TaskStatePending) {
								a.err = err
							}
						}
					}
				}
				answers <- a
			}
		}()
	}
	go func() {
		defer close(work)
		for i := range keys {
			select {
			case work <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(answers) }()
	var errs []error
	for a := range answers {
		switch {
		case a.err != nil:
			errs = append(errs, fmt.Errorf("task %s: %w", keys[a.i], a.err))
		case a.moved:
			res.Moved = append(res.Moved, a.i)
		case a.found:
			res.Queued++
		default:
			res.Missing++
		}
	}
	sort.Ints(res.Moved)
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if len(errs) > 0 {
		return res, fmt.Errorf("run now: %d tasks not moved: %w", len(errs), errs[0])
	}
	return res, nil
}
