package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/iec-almaty/sisnotify/jobs/date"
)

// Kinds of student report (sisnotify.student_reports.kind).
const (
	StudentReportDone          = "done"
	StudentReportLostDocuments = "lost-documents"
	StudentReportAddress       = "address-changed"
	StudentReportStatus        = "status-changed"
)

// StudentReport is one report a student makes from their page.
type StudentReport struct {
	StudentID    string
	Kind         string    // a StudentReport* kind
	ObligationID int64     // done: the obligation reported done
	MovedOn      date.Date // address-changed: the date of the move
	NewStatus    string    // status-changed: rvp | residence-permit | citizenship
	ReportedOn   date.Date // the university's date of the report
	NoticeID     int64     // the notice whose link was used
}

// DedupKey identifies a report so that the same report submitted twice
// (the same kind, student, obligation, move date or status, on the same
// day) is recorded once.
func (r StudentReport) DedupKey() string {
	k := r.Kind + "|" + r.StudentID
	switch r.Kind {
	case StudentReportDone:
		k += "|" + strconv.FormatInt(r.ObligationID, 10)
	case StudentReportAddress:
		k += "|" + r.MovedOn.String()
	case StudentReportStatus:
		k += "|" + r.NewStatus
	}
	return k + "|" + r.ReportedOn.String()
}

// ErrStudentReportObligation is a done report of an obligation that is
// not an open obligation of the student.
var ErrStudentReportObligation = errors.New("not an open obligation of the student")

// StudentReportRecord records r once, and audits it (actor
// "student:<id>", role "student", action "report-<kind>") in the same
// transaction. created is false when the same report was recorded before
// (nothing is written then); id is the report's either way.
func (s *Store) StudentReportRecord(ctx context.Context, r StudentReport) (id int64, created bool, err error) {
	if r.Kind == StudentReportDone && r.ObligationID == 0 {
		return 0, false, ErrStudentReportObligation
	}
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return 0, false, fmt.Errorf("student report: %w", err)
	}
	defer tx.Rollback()
	if r.Kind == StudentReportDone {
		var ok bool
		if err := tx.GetContext(ctx, &ok, `SELECT EXISTS (SELECT 1 FROM sisnotify.obligations
			WHERE obligation_id = $1 AND student_id = $2 AND closed_at IS NULL)`, r.ObligationID, r.StudentID); err != nil {
			return 0, false, fmt.Errorf("student report: %w", err)
		}
		if !ok {
			return 0, false, ErrStudentReportObligation
		}
	}
	key := r.DedupKey()
	err = tx.GetContext(ctx, &id, `INSERT INTO sisnotify.student_reports
		(student_id, kind, obligation_id, moved_on, new_status, reported_on, notice_id, dedup_key)
		VALUES ($1, $2, NULLIF($3, 0), $4::date, NULLIF($5, ''), $6::date, NULLIF($7, 0), $8)
		ON CONFLICT (dedup_key) DO NOTHING RETURNING report_id`,
		r.StudentID, r.Kind, r.ObligationID, nullDate(r.MovedOn), r.NewStatus, r.ReportedOn.String(), r.NoticeID, key)
	if isNoRows(err) {
		if err := tx.GetContext(ctx, &id, `SELECT report_id FROM sisnotify.student_reports WHERE dedup_key = $1`, key); err != nil {
			return 0, false, fmt.Errorf("student report: %w", err)
		}
		return id, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("student report: %w", err)
	}
	detail := map[string]string{"report_id": strconv.FormatInt(id, 10)}
	if !r.MovedOn.IsZero() {
		detail["moved_on"] = r.MovedOn.String()
	}
	if r.NewStatus != "" {
		detail["new_status"] = r.NewStatus
	}
	d, err := json.Marshal(detail)
	if err != nil {
		return 0, false, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO sisnotify.audit_log (actor, role, action, student_id, obligation_id, notice_id, reason, detail)
		VALUES ($1, 'student', $2, $3, NULLIF($4, 0), NULLIF($5, 0), '', $6::jsonb)`,
		"student:"+r.StudentID, "report-"+r.Kind, r.StudentID, r.ObligationID, r.NoticeID, string(d)); err != nil {
		return 0, false, fmt.Errorf("student report: audit: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, false, fmt.Errorf("student report: %w", err)
	}
	return id, true, nil
}

func nullDate(d date.Date) sql.NullString {
	if d.IsZero() {
		return sql.NullString{}
	}
	return sql.NullString{String: d.String(), Valid: true}
}
