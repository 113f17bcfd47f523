package store

import (
	"context"
	"fmt"
)

// DigestReport is an open report of a student as the office digest lists
// it under what students reported: Rule is the rule it is about (a done
// report's obligation's, or the one the report opens); ReportedOn a day
// number (date.Date).
type DigestReport struct {
	ID         int64  `db:"report_id"`
	Kind       string `db:"kind"`
	Rule       string `db:"rule"`
	StudentID  string `db:"student_id"`
	ReportedOn int32  `db:"reported_on"`
	Name       string `db:"name"`
	Faculty    string `db:"faculty"`
}

// ReportsForDigest returns the open reports, newest first, in the
// digest's snapshot.
func (r *DigestRead) ReportsForDigest(ctx context.Context) ([]DigestReport, error) {
	var rows []DigestReport
	if err := r.tx.SelectContext(ctx, &rows, `
		SELECT p.report_id, p.kind,
		       coalesce(o.rule, CASE p.kind WHEN 'lost-documents' THEN 'document-loss' WHEN 'status-changed' THEN 'status-change'
		                                    WHEN 'address-changed' THEN 'address-registration' ELSE '' END) AS rule,
		       p.student_id, `+dayNum("p.reported_on")+` AS reported_on,
		       btrim(coalesce(s.given_name, '') || ' ' || coalesce(s.family_name, '')) AS name, coalesce(f.name, '') AS faculty
		FROM sisnotify.student_reports p
		LEFT JOIN sisnotify.obligations o ON o.obligation_id = p.obligation_id
		LEFT JOIN sisnotify.students s ON s.student_id = p.student_id
		LEFT JOIN sisnotify.faculties f ON f.faculty_id = s.faculty_id
		WHERE p.state = 'open' AND (p.kind <> 'done' OR o.obligation_id IS NOT NULL)
		ORDER BY p.reported_on DESC, p.report_id DESC`); err != nil {
		return nil, fmt.Errorf("open reports: %w", err)
	}
	return rows, nil
}
