// Package worker runs sisnotify unattended: the asynq server that executes
// the night's jobs and delivers notices, the scheduler that starts each
// night, and the HTTP side (health, metrics, monitoring UI), with their
// lifecycle and graceful shutdown.
package worker

import (
	"errors"
	"time"

	"github.com/hibiken/asynq"
)

// MaxRetry is how often a delivery is retried after a temporary failure
// (SMTP 4xx, a dropped connection, HTTP 429/5xx). asynq's default, 25
// retries over about 20 days, outlasts most deadlines; these give up within
// the day, and the notice is then marked failed in PostgreSQL and listed in
// the office digest.
const MaxRetry = 12

// retryCap is the longest wait between two attempts.
const retryCap = time.Hour

// RetryDelay is asynq's RetryDelayFunc for sisnotify: 1, 2, 4, 8, 16 and 32
// minutes, then hourly: MaxRetry retries span about seven hours. A task
// whose worker died (its lease expired) is no provider's fault: it is
// retried after a second, and the notice's claim in PostgreSQL decides
// whether it still needs sending.
func RetryDelay(n int, err error, _ *asynq.Task) time.Duration {
	if errors.Is(err, asynq.ErrLeaseExpired) || errors.Is(err, ErrStopping) {
		return time.Second
	}
	if n < 0 {
		n = 0
	}
	if n >= 6 {
		return retryCap
	}
	return time.Minute << n
}

// RetrySpan is the time from the first attempt to the last retry.
func RetrySpan() time.Duration {
	var total time.Duration
	for i := 0; i < MaxRetry; i++ {
		total += RetryDelay(i, nil, nil)
	}
	return total
}
