package worker

import (
	"context"
	"fmt"
	"time"

	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/store"
)

// Requeuer puts failed notices back on the queue for a person (the
// console's retry, as `notices retry` does from the command line): back
// to pending, their old tasks deleted, the re-queue recorded with who, and
// queued at once.
type Requeuer struct {
	Enqueue *Enqueuer
	Now     func() time.Time
}

// Requeue re-queues those of ids that are failed and returns them.
func (r *Requeuer) Requeue(ctx context.Context, ids []int64, who string) ([]int64, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	done, err := jobs.RequeueFailed(ctx, r.Enqueue.DB, r.Enqueue.Queue, store.NoticeFilter{IDs: ids}, who)
	if err != nil {
		return done, err
	}
	if len(done) == 0 {
		return nil, nil
	}
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	if _, err := r.Enqueue.Run(ctx, now()); err != nil {
		return done, fmt.Errorf("requeue: %w", err)
	}
	return done, nil
}
