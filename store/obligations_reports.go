package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/lib/pq"

	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/jobs/rules"
)

// What the evaluation does with the students' reports
// (sisnotify.student_reports, from the student page):
//
//   - lost-documents and status-changed reports that are open are the
//     subjects of document-loss and status-change (EvalReports);
//   - an open address-changed report stands in for moved_on (the job folds
//     it into the student's dates);
//   - an open done report pauses its obligation's student notices
//     (eval_paused, filled by ReportsPause) until report_pause runs out;
//     then the night marks it lapsed, and a lapsed or rejected report's
//     obligation gets the student notices of its current step that the
//     pause held back (ReportsSettle);
//   - a report whose obligation closed, or whose move the SIS shows
//     registered, is settled: confirmed, decided by the SIS (or by whoever
//     closed the obligation).

// ReportDecidedBySIS is decided_by of a report the night settled because
// the SIS (or a close in the console) agreed with it.
const ReportDecidedBySIS = "sis"

// NewStudentEvaluation is NewEvaluation for student id alone: its cursors
// read that student only, and Record closes and records only that
// student's obligations.
func NewStudentEvaluation(conn *sql.Conn, id string) *Evaluation {
	return &Evaluation{conn: conn, only: id}
}

// onlyStudent is the condition " AND col = '<id>'" of a one-student
// evaluation, "" otherwise.
func (ev *Evaluation) onlyStudent(col string) string {
	if ev.only == "" {
		return ""
	}
	return " AND " + col + " = " + pq.QuoteLiteral(ev.only)
}

// reportsNotPaused keeps the student notices of the obligations in
// eval_paused from being created.
const reportsNotPaused = ` AND NOT EXISTS (SELECT 1 FROM eval_paused p WHERE p.obligation_id = o.obligation_id)`

// reportsCreateStage creates eval_paused (the obligations whose student
// notices a done report pauses tonight) and eval_resume (the current
// steps whose student notices a pause held back).
func (ev *Evaluation) reportsCreateStage(ctx context.Context) error {
	if _, err := ev.conn.ExecContext(ctx, `CREATE TEMP TABLE eval_paused (obligation_id bigint PRIMARY KEY) ON COMMIT DROP;
		CREATE TEMP TABLE eval_resume (obligation_id bigint, level int, repeat int, stale bool) ON COMMIT DROP`); err != nil {
		return fmt.Errorf("evaluate: %w", err)
	}
	return nil
}

// EvalReport is an open report as the evaluation reads it. Dates are 0
// when missing; ObligationID is 0 when none.
type EvalReport struct {
	ID           int64
	StudentID    string
	Kind         string
	ReportedOn   date.Date
	MovedOn      date.Date
	ObligationID int64
}

// EvalReports reads the open reports (of the one student of a student
// evaluation), by student and report id. Open reports are few (what
// students said since the office last decided), so they are read at once,
// not through a cursor.
func (ev *Evaluation) EvalReports(ctx context.Context) ([]EvalReport, error) {
	rows, err := ev.conn.QueryContext(ctx, `SELECT report_id, student_id, kind, `+dayNum("reported_on")+`, `+dayNum("moved_on")+`, coalesce(obligation_id, 0)
		FROM sisnotify.student_reports WHERE state = 'open'`+ev.onlyStudent("student_id")+` ORDER BY student_id, report_id`)
	if err != nil {
		return nil, fmt.Errorf("evaluate: reports: %w", err)
	}
	defer rows.Close()
	var out []EvalReport
	for rows.Next() {
		var r EvalReport
		var rep, moved int32
		if err := rows.Scan(&r.ID, &r.StudentID, &r.Kind, &rep, &moved, &r.ObligationID); err != nil {
			return nil, fmt.Errorf("evaluate: reports: %w", err)
		}
		r.ReportedOn, r.MovedOn = date.Date(rep), date.Date(moved)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("evaluate: reports: %w", err)
	}
	return out, nil
}

// ReportsPause records the obligations whose student notices open done
// reports pause tonight: Record creates none for them.
func (ev *Evaluation) ReportsPause(ctx context.Context, obligations []int64) error {
	if len(obligations) == 0 {
		return nil
	}
	if _, err := ev.conn.ExecContext(ctx, `INSERT INTO eval_paused SELECT DISTINCT unnest($1::bigint[]) ON CONFLICT DO NOTHING`, pq.Array(obligations)); err != nil {
		return fmt.Errorf("evaluate: paused: %w", err)
	}
	return nil
}

// ReportsSettled is what ReportsSettle changed.
type ReportsSettled struct {
	Lapsed    int64 // done reports whose pause ran out tonight
	Confirmed int64 // reports the SIS (or a close in the console) agreed with
	Notices   int64 // student notices the end of a pause let go
}

// ReportsSettle runs after Record for night: it marks lapsed the done
// reports whose pause ran out (lapsed), creates the student notices of
// the current step of each open obligation whose done report lapsed or
// was rejected and that the pause held back (once: a notice's key is
// unique), and settles the open reports the records agree with: a done,
// lost-documents or status-changed report whose obligation closed, an
// address-changed one whose move the SIS shows registered on or after
// the reported date. Those become confirmed, decided_by "sis" (or the
// person who closed the obligation in the console).
func (ev *Evaluation) ReportsSettle(ctx context.Context, asOf date.Date, lapsed []int64) (res ReportsSettled, err error) {
	night := asOf.String()
	exec := func(what, q string, args ...any) (int64, error) {
		r, err := ev.conn.ExecContext(ctx, q, args...)
		if err != nil {
			return 0, fmt.Errorf("evaluate: reports: %s: %w", what, err)
		}
		n, _ := r.RowsAffected()
		return n, nil
	}
	if len(lapsed) > 0 {
		if res.Lapsed, err = exec("lapse", `UPDATE sisnotify.student_reports SET state = 'lapsed', decided_at = now(), decided_by = '`+ReportDecidedBySIS+`',
			decision_reason = 'report_pause ran out'
			WHERE report_id = ANY($1) AND state = 'open'`, pq.Array(lapsed)); err != nil {
			return res, err
		}
	}
	if _, err = exec("resume", `INSERT INTO eval_resume
		SELECT DISTINCT o.obligation_id, o.level, o.repeat, false
		FROM sisnotify.student_reports r JOIN sisnotify.obligations o ON o.obligation_id = r.obligation_id
		WHERE r.kind = 'done' AND r.state IN ('lapsed', 'rejected') AND o.closed_at IS NULL AND o.last_seen_on = $1`+ev.onlyStudent("r.student_id")+`
		  AND EXISTS (SELECT 1 FROM sisnotify.obligation_steps st WHERE st.obligation_id = o.obligation_id
		      AND st.level = o.level AND st.repeat = o.repeat AND st.status = '`+string(StepDue)+`')`, night); err != nil {
		return res, err
	}
	if res.Notices, err = ev.insertStepNotices(ctx, "eval_resume", night, nil, evalNoticeRecipients[:2]); err != nil {
		return res, err
	}
	c, err := exec("settle", `UPDATE sisnotify.student_reports r
		SET state = 'confirmed', decided_at = now(), decided_by = coalesce(o.closed_by, '`+ReportDecidedBySIS+`'), decision_reason = o.close_reason
		FROM sisnotify.obligations o
		WHERE r.state = 'open' AND o.closed_at IS NOT NULL`+ev.onlyStudent("r.student_id")+`
		  AND (r.kind = 'done' AND o.obligation_id = r.obligation_id
		    OR r.kind = 'lost-documents' AND o.rule = '`+string(rules.DocumentLoss)+`' AND o.subject_id = 'R' || r.report_id
		    OR r.kind = 'status-changed' AND o.rule = '`+string(rules.StatusChange)+`' AND o.subject_id = 'R' || r.report_id)`)
	if err != nil {
		return res, err
	}
	res.Confirmed += c
	if c, err = exec("settle moves", `UPDATE sisnotify.student_reports r
		SET state = 'confirmed', decided_at = now(), decided_by = '`+ReportDecidedBySIS+`', decision_reason = 'address registered'
		FROM sisnotify.students s
		WHERE r.state = 'open' AND r.kind = 'address-changed' AND s.student_id = r.student_id`+ev.onlyStudent("r.student_id")+`
		  AND r.moved_on IS NOT NULL AND s.address_registered_on >= r.moved_on`); err != nil {
		return res, err
	}
	res.Confirmed += c
	return res, nil
}

// NoticeIDsAfter returns the ids of the notices of student id above
// after, in order: the notices a one-student evaluation created.
func (ev *Evaluation) NoticeIDsAfter(ctx context.Context, id string, after int64) ([]int64, error) {
	rows, err := ev.conn.QueryContext(ctx, `SELECT notice_id FROM sisnotify.notices WHERE student_id = $1 AND notice_id > $2 ORDER BY notice_id`, id, after)
	if err != nil {
		return nil, fmt.Errorf("evaluate: notices: %w", err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var n int64
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("evaluate: notices: %w", err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// MaxNoticeID is the largest notice id, 0 when there is none.
func (ev *Evaluation) MaxNoticeID(ctx context.Context) (int64, error) {
	var n int64
	if err := ev.conn.QueryRowContext(ctx, `SELECT coalesce(max(notice_id), 0) FROM sisnotify.notices`).Scan(&n); err != nil {
		return 0, fmt.Errorf("evaluate: %w", err)
	}
	return n, nil
}
