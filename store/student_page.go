package store

import (
	"context"
	"fmt"

	"github.com/iec-almaty/sisnotify/jobs/date"
)

// StudentPageStudent is what the student page reads of the student its
// link names: their language, the passport number (the page shows its last
// characters only) and the email the confirmation of a report goes to
// (never shown).
type StudentPageStudent struct {
	ID       string `db:"student_id"`
	Language string `db:"preferred_language"`
	Passport string `db:"passport_number"`
	Email    string `db:"email"`
}

// StudentPageStudentByID reads a student the SIS still lists; nil when
// there is none (or the SIS no longer lists them).
func (s *Store) StudentPageStudentByID(ctx context.Context, id string) (*StudentPageStudent, error) {
	var st StudentPageStudent
	err := s.db.GetContext(ctx, &st, `SELECT student_id, coalesce(preferred_language, '') AS preferred_language,
		coalesce(passport_number, '') AS passport_number, coalesce(email, '') AS email
		FROM sisnotify.students WHERE student_id = $1 AND removed_at IS NULL`, id)
	if isNoRows(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("student page %s: %w", id, err)
	}
	return &st, nil
}

// StudentPageObligation is an open obligation of a student as their page
// shows it. ReportedDone is the day the student last reported it done
// while that report is still open (0: not reported).
type StudentPageObligation struct {
	ID           int64     `db:"obligation_id"`
	Rule         string    `db:"rule"`
	SubjectID    string    `db:"subject_id"`
	Anchor       date.Date `db:"anchor"`
	Due          date.Date `db:"due_on"`
	Level        int       `db:"level"`
	Departure    date.Date `db:"departure_on"`
	Return       date.Date `db:"return_on"`
	ReportedDone date.Date `db:"reported_done_on"`
}

// StudentPageObligations reads the open obligations of a student, the
// soonest due first.
func (s *Store) StudentPageObligations(ctx context.Context, id string) ([]StudentPageObligation, error) {
	var out []StudentPageObligation
	if err := s.db.SelectContext(ctx, &out, `SELECT o.obligation_id, o.rule, o.subject_id,
		`+dayNum("o.anchor")+` AS anchor, `+dayNum("o.due_on")+` AS due_on, o.level,
		`+dayNum("t.departure_on")+` AS departure_on, `+dayNum("t.return_on")+` AS return_on,
		`+dayNum("(SELECT max(r.reported_on) FROM sisnotify.student_reports r WHERE r.obligation_id = o.obligation_id AND r.kind = 'done' AND r.state = 'open')")+` AS reported_done_on
		FROM sisnotify.obligations o
		LEFT JOIN sisnotify.travel_requests t ON t.request_id = o.subject_id AND o.subject_id <> o.student_id
		WHERE o.student_id = $1 AND o.closed_at IS NULL
		ORDER BY o.due_on, o.rule, o.obligation_id`, id); err != nil {
		return nil, fmt.Errorf("student page %s obligations: %w", id, err)
	}
	return out, nil
}
