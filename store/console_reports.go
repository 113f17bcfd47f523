package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/iec-almaty/sisnotify/jobs/date"
)

// The office's decisions on a student's report, as the audit log names
// them.
const (
	AuditReportConfirm = "report-confirm"
	AuditReportReject  = "report-reject"
)

// ErrNoReport is a report id that does not exist.
var ErrNoReport = errors.New("no such report")

// ReportDecision is what ReportsConfirm or ReportsReject did.
type ReportDecision struct {
	StudentID string
	Kind      string
	// Done: the report was open and is now decided; false: it was already
	// decided (State says how) and nothing was written.
	Done  bool
	State string
	// ObligationID is the obligation a confirm closed (0: none was open).
	ObligationID int64
	Cancelled    int64 // pending notices the close cancelled
}

// ReportsConfirm records the office's confirm of open report id for
// today: the report becomes confirmed (decided_by a.Actor, the reason
// a.Reason) and the obligation it is about closes with close_reason
// 'office' (its pending notices cancelled), as the console's close does:
// the obligation a done report names; the document-loss or status-change
// obligation a lost-documents or status-changed report opened; the open
// address-registration obligation anchored on the reported move. It is
// audited (action report-confirm) in the same transaction. A decided
// report is left as it is (Done false); an unknown one is ErrNoReport.
func (s *Store) ReportsConfirm(ctx context.Context, today date.Date, a OfficeActionAudit, id int64) (ReportDecision, error) {
	return s.reportsDecide(ctx, today, a, id, true)
}

// ReportsReject records the office's reject of open report id: the report
// becomes rejected (decided_by a.Actor, the reason a.Reason), audited
// (action report-reject) in the same transaction. The next evaluation (the
// night, or one of the student alone) resumes what the report paused: the
// student notices of a done report's obligation, starting with those of
// its current step.
func (s *Store) ReportsReject(ctx context.Context, today date.Date, a OfficeActionAudit, id int64) (ReportDecision, error) {
	return s.reportsDecide(ctx, today, a, id, false)
}

func (s *Store) reportsDecide(ctx context.Context, today date.Date, a OfficeActionAudit, id int64, confirm bool) (res ReportDecision, err error) {
	err = s.officeTx(ctx, func(tx *sqlx.Tx) error {
		var obligation sql.NullInt64
		var moved sql.NullString
		err := tx.QueryRowxContext(ctx, `SELECT student_id, kind, state, obligation_id, moved_on::text FROM sisnotify.student_reports WHERE report_id = $1 FOR UPDATE`, id).
			Scan(&res.StudentID, &res.Kind, &res.State, &obligation, &moved)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNoReport
		}
		if err != nil {
			return fmt.Errorf("report %d: %w", id, err)
		}
		if res.State != "open" {
			return nil
		}
		state, action := "rejected", AuditReportReject
		if confirm {
			state, action = "confirmed", AuditReportConfirm
		}
		if _, err := tx.ExecContext(ctx, `UPDATE sisnotify.student_reports SET state = $2, decided_by = $3, decided_at = now(), decision_reason = $4
			WHERE report_id = $1`, id, state, a.Actor, a.Reason); err != nil {
			return fmt.Errorf("report %d: %w", id, err)
		}
		res.State, res.Done = state, true
		if confirm {
			var q string
			args := []any{res.StudentID}
			switch res.Kind {
			case "done":
				q, args = `obligation_id = $2`, append(args, obligation.Int64)
			case "lost-documents":
				q, args = `rule = 'document-loss' AND subject_id = $2`, append(args, "R"+strconv.FormatInt(id, 10))
			case "status-changed":
				q, args = `rule = 'status-change' AND subject_id = $2`, append(args, "R"+strconv.FormatInt(id, 10))
			case "address-changed":
				q, args = `rule = 'address-registration' AND anchor = $2::date`, append(args, moved.String)
			}
			if q != "" && (res.Kind != "done" || obligation.Valid) && (res.Kind != "address-changed" || moved.Valid) {
				err := tx.QueryRowxContext(ctx, `SELECT obligation_id FROM sisnotify.obligations
					WHERE student_id = $1 AND closed_at IS NULL AND `+q+` ORDER BY obligation_id LIMIT 1 FOR UPDATE`, args...).Scan(&res.ObligationID)
				if err != nil && !errors.Is(err, sql.ErrNoRows) {
					return fmt.Errorf("report %d: obligation: %w", id, err)
				}
			}
			if res.ObligationID != 0 {
				if _, err := tx.ExecContext(ctx, `UPDATE sisnotify.obligations
					SET closed_on = $2, closed_at = now(), close_reason = '`+CloseOffice+`', closed_by = $3
					WHERE obligation_id = $1`, res.ObligationID, today.String(), a.Actor); err != nil {
					return fmt.Errorf("report %d: close obligation: %w", id, err)
				}
				r, err := tx.ExecContext(ctx, `UPDATE sisnotify.notices SET status = '`+string(NoticeCancelled)+`', last_error = 'closed by the office', updated_at = now()
					WHERE obligation_id = $1 AND status = '`+string(NoticePending)+`'`, res.ObligationID)
				if err != nil {
					return fmt.Errorf("report %d: cancel notices: %w", id, err)
				}
				res.Cancelled, _ = r.RowsAffected()
			}
		}
		a.Action, a.StudentID, a.ObligationID = action, res.StudentID, res.ObligationID
		a.Detail = map[string]string{"report": strconv.FormatInt(id, 10), "kind": res.Kind}
		return auditInsert(ctx, tx, a)
	})
	return res, err
}

// ReportRow is a student's report as the console and the digest show it.
type ReportRow struct {
	ID         int64     `db:"report_id"`
	StudentID  string    `db:"student_id"`
	Kind       string    `db:"kind"`
	ReportedOn string    `db:"reported_on"` // YYYY-MM-DD
	MovedOn    string    `db:"moved_on"`    // YYYY-MM-DD or ""
	NewStatus  string    `db:"new_status"`
	Rule       string    `db:"rule"` // of the obligation a done report names, or ""
	State      string    `db:"state"`
	ReportedAt time.Time `db:"reported_at"`
}

const reportRowCols = `r.report_id, r.student_id, r.kind, r.reported_on::text AS reported_on, coalesce(r.moved_on::text, '') AS moved_on,
	coalesce(r.new_status, '') AS new_status, coalesce(o.rule, '') AS rule, r.state, r.reported_at`

// ReportsOpenOfStudent returns student id's open reports, newest first.
func (s *Store) ReportsOpenOfStudent(ctx context.Context, id string) ([]ReportRow, error) {
	var rows []ReportRow
	if err := s.db.SelectContext(ctx, &rows, `SELECT `+reportRowCols+`
		FROM sisnotify.student_reports r LEFT JOIN sisnotify.obligations o ON o.obligation_id = r.obligation_id
		WHERE r.student_id = $1 AND r.state = 'open' ORDER BY r.reported_on DESC, r.report_id DESC`, id); err != nil {
		return nil, fmt.Errorf("reports of %s: %w", id, err)
	}
	return rows, nil
}

// ReportsOpen returns the open reports of every student, newest first, at
// most limit of them, and how many there are in all.
func (s *Store) ReportsOpen(ctx context.Context, limit int) ([]ReportRow, int64, error) {
	var rows []ReportRow
	if err := s.db.SelectContext(ctx, &rows, `SELECT `+reportRowCols+`
		FROM sisnotify.student_reports r LEFT JOIN sisnotify.obligations o ON o.obligation_id = r.obligation_id
		WHERE r.state = 'open' ORDER BY r.reported_on DESC, r.report_id DESC LIMIT $1`, limit); err != nil {
		return nil, 0, fmt.Errorf("open reports: %w", err)
	}
	var n int64
	if len(rows) == limit {
		if err := s.db.GetContext(ctx, &n, `SELECT count(*) FROM sisnotify.student_reports WHERE state = 'open'`); err != nil {
			return nil, 0, fmt.Errorf("open reports: %w", err)
		}
	} else {
		n = int64(len(rows))
	}
	return rows, n, nil
}
