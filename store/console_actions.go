package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/iec-almaty/sisnotify/jobs/date"
)

// CloseOffice is the close reason of an obligation the office closed in
// the console (handled outside the SIS).
const CloseOffice = "office"

// The console's actions as the audit log names them.
const (
	AuditClose   = "close"
	AuditSnooze  = "snooze"
	AuditRetry   = "retry"
	AuditRelease = "release"
)

// OfficeActionAudit is one act of a person in the console, as
// sisnotify.audit_log keeps it. Zero ids and night are not recorded.
type OfficeActionAudit struct {
	Actor, Role, Action string
	StudentID           string
	ObligationID        int64
	NoticeID            int64
	Night               date.Date
	Reason              string
	Detail              map[string]string // kept as jsonb; nil: {}
}

// AuditRecordAction appends a to the audit log.
func (s *Store) AuditRecordAction(ctx context.Context, a OfficeActionAudit) error {
	return auditInsert(ctx, s.db, a)
}

// auditInsert appends a to the audit log through q (the pool, or the
// transaction of the act it records).
func auditInsert(ctx context.Context, q sqlx.ExecerContext, a OfficeActionAudit) error {
	detail := []byte("{}")
	if len(a.Detail) > 0 {
		var err error
		if detail, err = json.Marshal(a.Detail); err != nil {
			return fmt.Errorf("audit %s: %w", a.Action, err)
		}
	}
	var night sql.NullString
	if a.Night != 0 {
		night = sql.NullString{String: a.Night.String(), Valid: true}
	}
	if _, err := q.ExecContext(ctx, `INSERT INTO sisnotify.audit_log (actor, role, action, student_id, obligation_id, notice_id, night, reason, detail)
		VALUES ($1, $2, $3, NULLIF($4, ''), NULLIF($5, 0), NULLIF($6, 0), $7::date, $8, $9::jsonb)`,
		a.Actor, a.Role, a.Action, a.StudentID, a.ObligationID, a.NoticeID, night, a.Reason, string(detail)); err != nil {
		return fmt.Errorf("audit %s: %w", a.Action, err)
	}
	return nil
}

// OfficeActionOn is what an office action on an obligation changed.
type OfficeActionOn struct {
	StudentID string
	// Done: the action changed the obligation; false: there was nothing to
	// do (closing a closed obligation) or it could not be done (snoozing a
	// closed one), and nothing was written.
	Done bool
	// AlreadyClosed: the obligation was closed before the action.
	AlreadyClosed bool
	// Cancelled counts the pending notices a close cancelled; Held the
	// pending student notices a snooze held.
	Cancelled, Held int64
}

// ErrNoObligation is an obligation id that does not exist.
var ErrNoObligation = errors.New("no such obligation")

// lockObligation locks obligation id in tx and returns its student and
// whether it is closed.
func lockObligation(ctx context.Context, tx *sqlx.Tx, id int64) (studentID string, closed bool, err error) {
	err = tx.QueryRowxContext(ctx, `SELECT student_id, closed_at IS NOT NULL FROM sisnotify.obligations WHERE obligation_id = $1 FOR UPDATE`, id).
		Scan(&studentID, &closed)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, ErrNoObligation
	}
	return studentID, closed, err
}

// ObligationCloseByOffice closes open obligation a.ObligationID for the
// office on today (closed_on; closed_at is the database's now), with
// close_reason 'office' and closed_by a.Actor, cancels its pending notices
// and records a (action close) in the audit log, in one transaction. A
// closed obligation is left as it is, with no audit row (Done false);
// an unknown one is ErrNoObligation. The evaluation never reopens a
// closed obligation, and a delivery cancels a notice of one, so it never
// sends again.
func (s *Store) ObligationCloseByOffice(ctx context.Context, today date.Date, a OfficeActionAudit) (res OfficeActionOn, err error) {
	err = s.officeTx(ctx, func(tx *sqlx.Tx) error {
		sid, closed, err := lockObligation(ctx, tx, a.ObligationID)
		if err != nil {
			return err
		}
		res.StudentID = sid
		if closed {
			res.AlreadyClosed = true
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE sisnotify.obligations
			SET closed_on = $2, closed_at = now(), close_reason = '`+CloseOffice+`', closed_by = $3
			WHERE obligation_id = $1`, a.ObligationID, today.String(), a.Actor); err != nil {
			return fmt.Errorf("close obligation %d: %w", a.ObligationID, err)
		}
		r, err := tx.ExecContext(ctx, `UPDATE sisnotify.notices SET status = '`+string(NoticeCancelled)+`', last_error = 'closed by the office', updated_at = now()
			WHERE obligation_id = $1 AND status = '`+string(NoticePending)+`'`, a.ObligationID)
		if err != nil {
			return fmt.Errorf("close obligation %d: cancel notices: %w", a.ObligationID, err)
		}
		res.Cancelled, _ = r.RowsAffected()
		a.Action, a.StudentID = AuditClose, res.StudentID
		res.Done = true
		return auditInsert(ctx, tx, a)
	})
	return res, err
}

// ObligationSnoozeByOffice snoozes open obligation a.ObligationID until
// until (snoozed_until, snoozed_by a.Actor; a second snooze replaces the
// date): its student notices are not claimed nor queued before that date
// in the university's zone. Its pending student notices are held
// (not_before) until heldUntil, that date's start there, so that no night
// waits for them. It records a (action snooze, detail until) in the audit
// log, in the same transaction. A closed obligation is left as it is
// (Done false, AlreadyClosed); an unknown one is ErrNoObligation.
func (s *Store) ObligationSnoozeByOffice(ctx context.Context, until date.Date, heldUntil time.Time, a OfficeActionAudit) (res OfficeActionOn, err error) {
	err = s.officeTx(ctx, func(tx *sqlx.Tx) error {
		sid, closed, err := lockObligation(ctx, tx, a.ObligationID)
		if err != nil {
			return err
		}
		res.StudentID = sid
		if closed {
			res.AlreadyClosed = true
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE sisnotify.obligations SET snoozed_until = $2, snoozed_by = $3 WHERE obligation_id = $1`,
			a.ObligationID, until.String(), a.Actor); err != nil {
			return fmt.Errorf("snooze obligation %d: %w", a.ObligationID, err)
		}
		r, err := tx.ExecContext(ctx, `UPDATE sisnotify.notices SET not_before = $2, updated_at = now()
			WHERE obligation_id = $1 AND audience = 'student' AND status = '`+string(NoticePending)+`'`, a.ObligationID, heldUntil)
		if err != nil {
			return fmt.Errorf("snooze obligation %d: hold notices: %w", a.ObligationID, err)
		}
		res.Held, _ = r.RowsAffected()
		a.Action, a.StudentID = AuditSnooze, res.StudentID
		a.Detail = map[string]string{"until": until.String()}
		res.Done = true
		return auditInsert(ctx, tx, a)
	})
	return res, err
}

// officeTx runs fn in a transaction, committed when fn returns nil.
func (s *Store) officeTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// NoticeForOfficeAction is a notice as an office action needs it.
type NoticeForOfficeAction struct {
	ID        int64        `db:"notice_id"`
	StudentID string       `db:"student_id"`
	Status    NoticeStatus `db:"status"`
}

// NoticeForOffice reads notice id; false when there is no such notice.
func (s *Store) NoticeForOffice(ctx context.Context, id int64) (NoticeForOfficeAction, bool, error) {
	var n NoticeForOfficeAction
	err := s.db.GetContext(ctx, &n, `SELECT notice_id, student_id, status FROM sisnotify.notices WHERE notice_id = $1`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return n, false, nil
	}
	if err != nil {
		return n, false, fmt.Errorf("notice %d: %w", id, err)
	}
	return n, true, nil
}
