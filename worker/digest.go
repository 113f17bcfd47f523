package worker

import (
	"context"
	"errors"
	"fmt"

	"github.com/hibiken/asynq"

	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/jobs/date"
)

// NightDigest is the night's digest phase (Night.Digest) over d, as a task
// runs it: the digest learns which try of the task this is (its last
// records a temporary failure as failed), and a digest that cannot succeed
// however often it is tried (jobs.ErrPermanent) is not retried.
func NightDigest(d *jobs.Digest) DigestSender { return nightDigest{d} }

type nightDigest struct{ d *jobs.Digest }

func (n nightDigest) Run(ctx context.Context, night date.Date) (jobs.DigestResult, error) {
	if a, ok := taskAttempt(ctx); ok {
		ctx = jobs.WithAttempt(ctx, a)
	}
	res, err := n.d.Run(ctx, night)
	if errors.Is(err, jobs.ErrPermanent) {
		err = fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	return res, err
}
