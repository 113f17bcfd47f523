package worker

import (
	"testing"

	"github.com/hibiken/asynq"
	"time"
)

func TestRetryGivesUpWithinTheDay(t *testing.T) {
	want := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60}
	for i, w := range want {
		if got := RetryDelay(i, nil, nil); got != w*time.Minute {
			t.Errorf("retry %d waits %s, want %s", i, got, w*time.Minute)
		}
	}
	if got := RetryDelay(3, asynq.ErrLeaseExpired, nil); got != time.Second {
		t.Errorf("a task of a dead worker waits %s, want 1s", got)
	}
	if span := RetrySpan(); span >= 24*time.Hour || span < 4*time.Hour {
		t.Errorf("retries span %s; want several hours and less than a day", span)
	}
}
