package receipts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/iec-almaty/sisnotify/integrations/sms"
	"github.com/iec-almaty/sisnotify/store"
)

// Defaults of a MobizonPoll.
const (
	// DefaultWindow: messages older than this are not asked about any more
	// (Mobizon's statuses are final a day after sending at the latest).
	DefaultWindow = 48 * time.Hour
	// pageSize is how many waiting notices are read from the database at
	// once; they are asked about sms.MobizonMaxIDs at a time.
	pageSize = 500
)

// MobizonStatuses is what the poll needs of Mobizon (*sms.Mobizon).
type MobizonStatuses interface {
	Statuses(ctx context.Context, ids []string) ([]sms.MobizonStatus, error)
}

// MobizonPoll asks Mobizon for the status of the SMS notices still sent
// (store.SMSAwaitingReceipt) of the last Window, and records each status
// of each message once (external id messageId/STATUS).
type MobizonPoll struct {
	DB      *sqlx.DB
	Mobizon MobizonStatuses
	// Window is how far back to ask; default DefaultWindow.
	Window time.Duration
	// Batch is how many ids one request asks about; default (and at
	// most) sms.MobizonMaxIDs.
	Batch int
	Log   *slog.Logger
}

// PollResult counts what one poll did.
type PollResult struct {
	Asked     int // message ids asked about
	Answered  int // statuses Mobizon gave
	Recorded  int // events new to the database
	Delivered int // of those, delivered
	Bounced   int // of those, bounced
	Skipped   int // notices whose provider id is not a Mobizon message id
}

// Poll asks about the notices sent since now - Window; events are recorded
// at now. It stops at the first failed request (the next poll asks again;
// what was recorded stays).
func (p *MobizonPoll) Poll(ctx context.Context, now time.Time) (PollResult, error) {
	var res PollResult
	if p.DB == nil || p.Mobizon == nil {
		return res, errors.New("receipts: the Mobizon poll needs the database and Mobizon")
	}
	st := store.New(p.DB)
	window := p.Window
	if window <= 0 {
		window = DefaultWindow
	}
	batchSize := p.Batch
	if batchSize <= 0 || batchSize > sms.MobizonMaxIDs {
		batchSize = sms.MobizonMaxIDs
	}
	since := now.Add(-window)
	seen := map[int64]bool{}
	for {
		page, err := st.SMSAwaitingReceipt(ctx, since, pageSize)
		if err != nil {
			return res, fmt.Errorf("mobizon receipts: %w", err)
		}
		byID := map[string]int64{}
		var ids []string
		for _, n := range page {
			if seen[n.ID] {
				continue
			}
			seen[n.ID] = true
			if sms.MobizonMessageID(n.ProviderID) != nil {
				res.Skipped++
				continue
			}
			if _, dup := byID[n.ProviderID]; !dup {
				ids = append(ids, n.ProviderID)
			}
			byID[n.ProviderID] = n.ID
		}
		for len(ids) > 0 {
			batch := ids[:min(len(ids), batchSize)]
			ids = ids[len(batch):]
			if err := p.ask(ctx, st, batch, byID, now, &res); err != nil {
				return res, err
			}
		}
		if len(page) < pageSize {
			break
		}
		// The next page starts at the last sent_at read (inclusive: the
		// notices seen are skipped); a page all sent at one instant moves
		// on by a microsecond.
		last := page[len(page)-1].SentAt
		if !last.After(since) {
			last = since.Add(time.Microsecond)
			p.log().WarnContext(ctx, "mobizon receipts: more notices sent at one instant than a page; some not asked about", "sent_at", since)
		}
		since = last
	}
	p.log().InfoContext(ctx, "mobizon receipts", "asked", res.Asked, "answered", res.Answered, "recorded", res.Recorded,
		"delivered", res.Delivered, "bounced", res.Bounced, "skipped", res.Skipped)
	return res, nil
}

func (p *MobizonPoll) ask(ctx context.Context, st *store.Store, ids []string, byID map[string]int64, now time.Time, res *PollResult) error {
	res.Asked += len(ids)
	statuses, err := p.Mobizon.Statuses(ctx, ids)
	if err != nil {
		return fmt.Errorf("mobizon receipts: %w", err)
	}
	for _, s := range statuses {
		notice, ok := byID[s.ID]
		if !ok {
			continue // not asked about: nothing to say
		}
		res.Answered++
		o := mobizonOutcome(s.Status)
		rec, err := st.RecordDeliveryEvent(ctx, store.DeliveryEvent{Source: store.SourceMobizon, ExternalID: s.ID + "/" + short(s.Status, 16),
			NoticeID: notice, Outcome: o.Outcome, Reason: o.Reason, Detail: o.Detail, At: now})
		if err != nil {
			return fmt.Errorf("mobizon receipts: %w", err)
		}
		if !rec {
			continue
		}
		res.Recorded++
		switch o.Outcome {
		case store.OutcomeDelivered:
			res.Delivered++
		case store.OutcomeBounced:
			res.Bounced++
		}
		p.log().InfoContext(ctx, "mobizon receipt", "notice_id", notice, "status", s.Status, "outcome", o.Outcome)
	}
	return nil
}

func (p *MobizonPoll) log() *slog.Logger {
	if p.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Log
}
