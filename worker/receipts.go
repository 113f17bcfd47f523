package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
)

// TypeReceiptPoll asks an SMS provider for the receipts of its messages
// (receipts.MobizonPoll): one task a period, whichever replica queues it.
const TypeReceiptPoll = "receipts:poll"

// ReceiptPollPayload is the payload of a receipt poll: the period it is
// for (its start), which is also when its events are recorded.
type ReceiptPollPayload struct {
	Period time.Time `json:"period"`
}

// ReceiptPoller runs Poll once every Every on one replica at a time: every
// replica's Run queues, at each period's start, a task whose TaskID names
// the provider and the period ("receipts-mobizon-1764576000"), retained
// for two periods; asynq keeps the second queueing of a period from
// running, and only one replica takes the task.
type ReceiptPoller struct {
	// Provider names the provider in the TaskID ("mobizon").
	Provider string
	Client   *asynq.Client
	// Poll asks the provider and records what it says; now is the
	// period's start.
	Poll func(ctx context.Context, now time.Time) error
	// Every is the period; default 10 minutes.
	Every time.Duration
	Log   *slog.Logger
	// Now replaces time.Now (tests).
	Now func() time.Time
}

func (p *ReceiptPoller) every() time.Duration {
	if p.Every <= 0 {
		return 10 * time.Minute
	}
	return p.Every
}

func (p *ReceiptPoller) log() *slog.Logger {
	if p.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Log
}

// Register routes receipt polls to p.
func (p *ReceiptPoller) Register(mux *asynq.ServeMux) {
	mux.HandleFunc(TypeReceiptPoll, func(ctx context.Context, t *asynq.Task) error {
		var pl ReceiptPollPayload
		if err := json.Unmarshal(t.Payload(), &pl); err != nil || pl.Period.IsZero() {
			return fmt.Errorf("receipt poll: bad payload: %w", asynq.SkipRetry)
		}
		if err := p.Poll(ctx, pl.Period); err != nil {
			// The next period asks again: no retry of this one.
			p.log().WarnContext(ctx, "receipt poll failed", "provider", p.Provider, "err", err)
			return fmt.Errorf("receipt poll: %w: %w", err, asynq.SkipRetry)
		}
		return nil
	})
}

// Queue queues the poll of the period that holds at; false when it was
// queued already (by this replica or another).
func (p *ReceiptPoller) Queue(ctx context.Context, at time.Time) (bool, error) {
	period := at.UTC().Truncate(p.every())
	payload, _ := json.Marshal(ReceiptPollPayload{Period: period})
	_, err := p.Client.EnqueueContext(ctx, asynq.NewTask(TypeReceiptPoll, payload),
		asynq.TaskID(fmt.Sprintf("receipts-%s-%d", p.Provider, period.Unix())), asynq.Queue(QueueNight),
		asynq.MaxRetry(0), asynq.Retention(2*p.every()), asynq.Timeout(p.every()))
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("queue receipt poll: %w", err)
	}
	return true, nil
}

// Run queues the current period's poll, then each next one at its start,
// until ctx ends.
func (p *ReceiptPoller) Run(ctx context.Context) {
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	for {
		if _, err := p.Queue(ctx, now()); err != nil && ctx.Err() == nil {
			p.log().WarnContext(ctx, "receipt poll not queued", "provider", p.Provider, "err", err)
		}
		t := now()
		next := t.UTC().Truncate(p.every()).Add(p.every())
		timer := time.NewTimer(next.Sub(t))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
	}
}
