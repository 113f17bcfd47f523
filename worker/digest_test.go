package worker

import (
	"context"
	"errors"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/jobs/date"
)

// A digest that cannot succeed is not retried, and says so as it did when
// the digest named asynq itself.
func TestNightDigestPermanentIsNotRetried(t *testing.T) {
	night, _ := date.Parse("2026-11-25")
	_, err := NightDigest(&jobs.Digest{}).Run(context.Background(), night)
	if !errors.Is(err, asynq.SkipRetry) || !errors.Is(err, jobs.ErrPermanent) {
		t.Fatalf("err = %v: want a permanent failure, not retried", err)
	}
	if want := "digest 2026-11-25: DB, Mail and Templates are required: skip retry for the task"; err.Error() != want {
		t.Fatalf("err = %q, want %q", err, want)
	}
}
