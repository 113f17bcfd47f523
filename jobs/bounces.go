package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/iec-almaty/sisnotify/integrations/bounce"
	"github.com/iec-almaty/sisnotify/integrations/mailbox"
	"github.com/iec-almaty/sisnotify/store"
)

// Why a message of the bounce mailbox was ignored
// (store.DeliveryEvent.Reason with store.OutcomeIgnored).
const (
	// ReasonMalformed: a bounce whose status or original Message-ID cannot
	// be read.
	ReasonMalformed = "malformed"
	// ReasonUnknownNotice: a bounce of a message that is no notice of this
	// database (another sender's mail, a notice since deleted).
	ReasonUnknownNotice = "unknown-notice"
	// ReasonNotABounce: an ordinary message, an auto-reply, a read
	// receipt.
	ReasonNotABounce = "not-a-bounce"
	// ReasonDigest: a bounce of an office or dean digest: a staff address
	// that does not receive; logged as a warning for the operators.
	ReasonDigest = "digest"
)

// BounceMailbox is one session on the bounce mailbox (mailbox.Session).
type BounceMailbox interface {
	Mailbox() string
	Unprocessed(ctx context.Context) ([]uint32, error)
	Fetch(ctx context.Context, uid uint32) (mailbox.Message, error)
	Done(ctx context.Context, uid uint32) error
	Close() error
}

// BounceObserver counts what the bounce mailbox said, by outcome
// (store.Outcome*), once per message recorded.
type BounceObserver interface {
	Bounce(outcome string)
}

// Bounces reads the bounce mailbox: every message not yet processed is
// parsed (package bounce), matched to its notice by the returned
// Message-ID, recorded as a delivery event (a hard bounce turns the notice
// bounced and its address unreachable; a soft one is recorded only;
// anything else is recorded as ignored with its reason), and only then put
// away, so a crash in between makes the next poll read it again, which
// the event's external id makes harmless.
type Bounces struct {
	DB *sqlx.DB
	// Open opens a session on the mailbox (mailbox.Open).
	Open    func(ctx context.Context) (BounceMailbox, error)
	Log     *slog.Logger
	Observe BounceObserver // optional
}

// BounceCounts is what one poll did.
type BounceCounts struct {
	// Busy: another process was reading the mailbox; this poll did not.
	Busy bool
	// Read: messages read; Bounced, Soft, Delivered and Ignored are the
	// ones recorded with each outcome, Again those recorded before (read
	// again after a crash or a failed put-away).
	Read, Bounced, Soft, Delivered, Ignored, Again int
}

// maxPerPoll bounds one poll; the rest waits for the next.
const maxPerPoll = 1000

// Poll reads the mailbox once, if no other process is reading it. now is
// the time of events whose message has no arrival time. An error (the
// mailbox or the database unreachable, the connection lost) ends the poll:
// what was recorded stays, what was not is read next time.
func (b *Bounces) Poll(ctx context.Context, now time.Time) (BounceCounts, error) {
	var c BounceCounts
	st := store.New(b.DB)
	unlock, ok, err := st.TryLockBounces(ctx)
	if err != nil {
		return c, err
	}
	if !ok {
		c.Busy = true
		return c, nil
	}
	defer unlock()
	box, err := b.Open(ctx)
	if err != nil {
		return c, err
	}
	defer box.Close()
	uids, err := box.Unprocessed(ctx)
	if err != nil {
		return c, err
	}
	if len(uids) > maxPerPoll {
		uids = uids[:maxPerPoll]
	}
	for _, uid := range uids {
		m, err := box.Fetch(ctx, uid)
		if errors.Is(err, mailbox.ErrGone) {
			continue
		}
		if err != nil {
			return c, err
		}
		c.Read++
		e, err := b.event(ctx, st, box.Mailbox(), m, now)
		if err != nil {
			return c, err
		}
		recorded, err := st.RecordDeliveryEvent(ctx, e)
		if err != nil {
			return c, fmt.Errorf("bounce uid %d: %w", uid, err)
		}
		if recorded {
			c.count(e.Outcome)
			if b.Observe != nil {
				b.Observe.Bounce(e.Outcome)
			}
		} else {
			c.Again++
		}
		b.log().DebugContext(ctx, "bounce mailbox message", "uid", uid, "outcome", e.Outcome, "reason", e.Reason,
			"notice_id", e.NoticeID, "recorded", recorded)
		if err := box.Done(ctx, uid); err != nil {
			return c, err
		}
	}
	return c, nil
}

func (c *BounceCounts) count(outcome string) {
	switch outcome {
	case store.OutcomeBounced:
		c.Bounced++
	case store.OutcomeSoftBounce:
		c.Soft++
	case store.OutcomeDelivered:
		c.Delivered++
	default:
		c.Ignored++
	}
}

// event is what m says, as a delivery event; err only when the database
// cannot be asked.
func (b *Bounces) event(ctx context.Context, st *store.Store, box string, m mailbox.Message, now time.Time) (store.DeliveryEvent, error) {
	r, perr := bounce.Parse(m.Raw)
	e := store.DeliveryEvent{Source: store.SourceIMAP, ExternalID: externalID(r.MessageID, m, box), At: m.Received}
	if e.At.IsZero() {
		e.At = now
	}
	ignore := func(reason, detail string) (store.DeliveryEvent, error) {
		e.Outcome, e.Reason, e.Detail = store.OutcomeIgnored, reason, detail
		return e, nil
	}
	switch {
	case perr != nil:
		detail := strings.TrimPrefix(perr.Error(), bounce.ErrMalformed.Error()+": ")
		if m.Truncated {
			detail += fmt.Sprintf(" (message cut at %d bytes)", mailbox.MaxMessageBytes)
		}
		return ignore(ReasonMalformed, detail)
	case r.Kind == bounce.NotABounce:
		return ignore(ReasonNotABounce, "")
	}
	detail := strings.TrimSpace(r.Status + " " + r.Diagnostic)
	hash, ok := MessageHash(r.OriginalID)
	if !ok {
		if isDigestID(r.OriginalID) {
			b.log().WarnContext(ctx, "a digest bounced: an office or dean address does not receive", "status", r.Status, "uid", m.UID)
			return ignore(ReasonDigest, detail)
		}
		return ignore(ReasonUnknownNotice, detail)
	}
	n, found, err := st.NoticeByMessageHash(ctx, hash)
	if err != nil {
		return e, fmt.Errorf("bounce uid %d: %w", m.UID, err)
	}
	if !found {
		return ignore(ReasonUnknownNotice, detail)
	}
	e.NoticeID, e.Reason, e.Detail = n.ID, r.Status, r.Diagnostic
	switch r.Kind {
	case bounce.Failed:
		e.Outcome = store.OutcomeBounced
	case bounce.Delayed:
		e.Outcome = store.OutcomeSoftBounce
	default:
		e.Outcome = store.OutcomeDelivered
	}
	return e, nil
}

// externalID names a message of the mailbox: its own Message-ID, else
// its place (mailbox, UIDVALIDITY, UID). A long one is hashed, to keep
// within the index.
func externalID(id string, m mailbox.Message, box string) string {
	if id == "" {
		id = m.StandIn(box)
	}
	if len(id) > 200 {
		sum := sha256.Sum256([]byte(id))
		id = "sha256:" + hex.EncodeToString(sum[:])
	}
	return id
}

// isDigestID reports whether id has the shape of DigestMessageID.
func isDigestID(id string) bool {
	id = strings.Trim(strings.TrimSpace(id), "<>")
	h, ok := strings.CutPrefix(id, "digest.")
	if !ok {
		return false
	}
	h, ok = strings.CutSuffix(h, "@sisnotify")
	_, err := hex.DecodeString(h)
	return ok && len(h) == 32 && err == nil
}

func (b *Bounces) log() *slog.Logger {
	if b.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return b.Log
}

// Run polls at once and then every interval until ctx ends, logging what
// each poll did (counts only: no addresses).
func (b *Bounces) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		c, err := b.Poll(ctx, time.Now())
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			b.log().ErrorContext(ctx, "bounce mailbox", "err", err, "read", c.Read, "bounced", c.Bounced, "soft", c.Soft, "ignored", c.Ignored)
		case c.Busy:
			b.log().DebugContext(ctx, "bounce mailbox: another replica is reading it")
		case c.Read > 0:
			b.log().InfoContext(ctx, "bounce mailbox read", "read", c.Read, "bounced", c.Bounced, "soft", c.Soft,
				"delivered", c.Delivered, "ignored", c.Ignored, "again", c.Again)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
