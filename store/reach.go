package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Where a delivery event comes from (sisnotify.delivery_events.source).
const (
	SourceIMAP    = "imap"    // a message in the bounce mailbox
	SourceTwilio  = "twilio"  // Twilio's status callback
	SourceMobizon = "mobizon" // Mobizon's status, asked for
)

// What a delivery event says (sisnotify.delivery_events.outcome).
const (
	// OutcomeDelivered: the provider says the message arrived.
	OutcomeDelivered = "delivered"
	// OutcomeBounced: it never will (a 5.x.x DSN, an undelivered or
	// failed SMS): the notice is bounced and its contact unreachable.
	OutcomeBounced = "bounced"
	// OutcomeSoftBounce: a 4.x.x DSN, the server still trying; recorded.
	OutcomeSoftBounce = "soft-bounce"
	// OutcomeSent: an intermediate receipt (queued, sent); recorded.
	OutcomeSent = "sent"
	// OutcomeIgnored: nothing to act on (Reason says why: malformed,
	// unknown-notice, not-a-bounce, ...); recorded.
	OutcomeIgnored = "ignored"
)

// DeliveryEvent is one bounce or receipt as read.
type DeliveryEvent struct {
	Source string // a Source* constant
	// ExternalID names the event at its source, so that reading it twice
	// records it once: the mailbox message's Message-ID, the provider's
	// message id with its status.
	ExternalID string
	NoticeID   int64  // the notice it is about; 0 when it matched none
	Outcome    string // an Outcome* constant
	Reason     string // the status code, or why it was ignored
	Detail     string // the diagnostic, shortened by the caller
	At         time.Time
}

// ReachNotice is a sent notice a bounce or a receipt may be about.
type ReachNotice struct {
	ID         int64        `db:"notice_id"`
	StudentID  string       `db:"student_id"`
	Channel    string       `db:"channel"`
	Recipient  string       `db:"recipient"`
	Status     NoticeStatus `db:"status"`
	ProviderID string       `db:"provider_id"`
	SentAt     time.Time    `db:"sent_at"`
}

const reachNoticeCols = `notice_id, student_id, channel, recipient, status, coalesce(provider_id, '') AS provider_id, coalesce(sent_at, created_at) AS sent_at`

// NoticeByMessageHash is the email notice whose Message-ID carries hash
// (the first 16 bytes of the SHA-256 of its key, jobs.MessageID); ok is
// false when there is none.
func (s *Store) NoticeByMessageHash(ctx context.Context, hash []byte) (n ReachNotice, ok bool, err error) {
	err = s.db.GetContext(ctx, &n, `SELECT `+reachNoticeCols+` FROM sisnotify.notices
		WHERE channel = 'email' AND sisnotify.message_hash(notice_key) = $1`, hash)
	return reachOne(n, err)
}

// NoticeBySMSProviderID is the SMS notice the provider knows as id; ok is
// false when there is none.
func (s *Store) NoticeBySMSProviderID(ctx context.Context, id string) (n ReachNotice, ok bool, err error) {
	err = s.db.GetContext(ctx, &n, `SELECT `+reachNoticeCols+` FROM sisnotify.notices
		WHERE channel = 'sms' AND provider_id = $1 ORDER BY notice_id DESC LIMIT 1`, id)
	return reachOne(n, err)
}

func reachOne(n ReachNotice, err error) (ReachNotice, bool, error) {
	if errors.Is(err, sql.ErrNoRows) {
		return ReachNotice{}, false, nil
	}
	if err != nil {
		return ReachNotice{}, false, fmt.Errorf("find notice: %w", err)
	}
	return n, true, nil
}

// SMSAwaitingReceipt are the SMS notices sent since since whose provider
// has not yet said whether they arrived (status still sent), oldest
// first, at most limit.
func (s *Store) SMSAwaitingReceipt(ctx context.Context, since time.Time, limit int) ([]ReachNotice, error) {
	var out []ReachNotice
	err := s.db.SelectContext(ctx, &out, `SELECT `+reachNoticeCols+` FROM sisnotify.notices
		WHERE channel = 'sms' AND status = 'sent' AND provider_id IS NOT NULL AND sent_at >= $1
		ORDER BY sent_at, notice_id LIMIT $2`, since, limit)
	if err != nil {
		return nil, fmt.Errorf("sms awaiting receipt: %w", err)
	}
	return out, nil
}

// RecordDeliveryEvent records e once (by its source and external id) and,
// in the same transaction, applies it to its notice: delivered turns a
// sent notice delivered; bounced turns a sent or delivered notice bounced
// and marks the notice's contact unreachable for its student. Other
// outcomes are recorded only. recorded is false when the event was read
// before (nothing changes then).
func (s *Store) RecordDeliveryEvent(ctx context.Context, e DeliveryEvent) (recorded bool, err error) {
	if e.At.IsZero() {
		return false, errors.New("record delivery event: no time")
	}
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("record delivery event: %w", err)
	}
	defer tx.Rollback()
	var id int64
	err = tx.GetContext(ctx, &id, `INSERT INTO sisnotify.delivery_events (source, external_id, notice_id, outcome, reason, detail, received_at)
		VALUES ($1, $2, NULLIF($3, 0), $4, $5, $6, $7)
		ON CONFLICT (source, external_id) DO NOTHING RETURNING event_id`,
		e.Source, e.ExternalID, e.NoticeID, e.Outcome, e.Reason, e.Detail, e.At)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("record delivery event: %w", err)
	}
	if e.NoticeID != 0 {
		switch e.Outcome {
		case OutcomeDelivered:
			_, err = tx.ExecContext(ctx, `UPDATE sisnotify.notices SET status = 'delivered', receipt_at = $2, updated_at = now()
				WHERE notice_id = $1 AND status = 'sent'`, e.NoticeID, e.At)
		case OutcomeBounced:
			_, err = tx.ExecContext(ctx, `
				WITH n AS (
					UPDATE sisnotify.notices SET status = 'bounced', receipt_at = $2, last_error = $3, updated_at = now()
					WHERE notice_id = $1 AND status IN ('sent', 'delivered')
					RETURNING notice_id, student_id, channel, recipient)
				INSERT INTO sisnotify.unreachable_contacts (student_id, channel, contact, since, notice_id, last_error)
				SELECT student_id, channel, recipient, $2, notice_id, $3 FROM n
				ON CONFLICT (student_id, channel, contact) DO UPDATE
				SET notice_id = EXCLUDED.notice_id, last_error = EXCLUDED.last_error, updated_at = now()`,
				e.NoticeID, e.At, bounceError(e))
		}
		if err != nil {
			return false, fmt.Errorf("record delivery event: notice %d: %w", e.NoticeID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("record delivery event: %w", err)
	}
	return true, nil
}

func bounceError(e DeliveryEvent) string {
	switch {
	case e.Reason != "" && e.Detail != "":
		return e.Reason + " " + e.Detail
	case e.Reason != "":
		return e.Reason
	}
	return e.Detail
}

// UnreachableContact is a contact of a student that cannot receive.
type UnreachableContact struct {
	StudentID string    `db:"student_id"`
	Channel   string    `db:"channel"` // email | sms
	Contact   string    `db:"contact"`
	Since     time.Time `db:"since"`
	NoticeID  int64     `db:"notice_id"`
	LastError string    `db:"last_error"`
}

// unreachableNow holds the unreachable contacts u that still apply: the
// student's snapshot holds the same address or number (a new value in the
// SIS is reachable again).
const unreachableNow = `EXISTS (SELECT 1 FROM sisnotify.students s WHERE s.student_id = u.student_id
	AND CASE u.channel WHEN 'email' THEN s.email ELSE s.phone END = u.contact)`

// UnreachableContacts are the student's contacts that cannot receive,
// email first.
func (s *Store) UnreachableContacts(ctx context.Context, studentID string) ([]UnreachableContact, error) {
	var out []UnreachableContact
	err := s.db.SelectContext(ctx, &out, `SELECT u.student_id, u.channel, u.contact, u.since, u.notice_id, u.last_error
		FROM sisnotify.unreachable_contacts u WHERE u.student_id = $1 AND `+unreachableNow+`
		ORDER BY u.channel, u.since`, studentID)
	if err != nil {
		return nil, fmt.Errorf("unreachable contacts of %s: %w", studentID, err)
	}
	return out, nil
}

// DeliveryEvents are the last limit events recorded from source, newest
// first (the console, the tests).
func (s *Store) DeliveryEvents(ctx context.Context, source string, limit int) ([]DeliveryEvent, error) {
	var rows []struct {
		Source     string        `db:"source"`
		ExternalID string        `db:"external_id"`
		NoticeID   sql.NullInt64 `db:"notice_id"`
		Outcome    string        `db:"outcome"`
		Reason     string        `db:"reason"`
		Detail     string        `db:"detail"`
		At         time.Time     `db:"received_at"`
	}
	if err := s.db.SelectContext(ctx, &rows, `SELECT source, external_id, notice_id, outcome, reason, detail, received_at
		FROM sisnotify.delivery_events WHERE source = $1 ORDER BY event_id DESC LIMIT $2`, source, limit); err != nil {
		return nil, fmt.Errorf("delivery events: %w", err)
	}
	out := make([]DeliveryEvent, len(rows))
	for i, r := range rows {
		out[i] = DeliveryEvent{Source: r.Source, ExternalID: r.ExternalID, NoticeID: r.NoticeID.Int64, Outcome: r.Outcome,
			Reason: r.Reason, Detail: r.Detail, At: r.At}
	}
	return out, nil
}
