package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/lib/pq"

	"github.com/iec-almaty/sisnotify/jobs/date"
)

// ConsolePageStudent is a student of the snapshot as the console shows
// them. The passport number is read whole: the console masks it.
type ConsolePageStudent struct {
	ID                 string     `db:"student_id"`
	GivenName          string     `db:"given_name"`
	FamilyName         string     `db:"family_name"`
	Email              string     `db:"email"`
	Phone              string     `db:"phone"`
	Language           string     `db:"preferred_language"`
	Citizenship        string     `db:"citizenship"`
	VisaRegime         string     `db:"visa_regime"`
	FacultyID          string     `db:"faculty_id"`
	Faculty            string     `db:"faculty"`
	Status             string     `db:"enrollment_status"`
	Passport           string     `db:"passport_number"`
	PassportExpires    date.Date  `db:"passport_expires_on"`
	PlannedEntry       date.Date  `db:"planned_entry_on"`
	InvitationDocs     date.Date  `db:"invitation_docs_on"`
	Entered            date.Date  `db:"entered_on"`
	OfficeCheckIn      date.Date  `db:"office_check_in_on"`
	Registered         date.Date  `db:"registered_on"`
	RegistrationExpiry date.Date  `db:"registration_expires_on"`
	ExtensionRequested date.Date  `db:"extension_requested_on"`
	Moved              date.Date  `db:"moved_on"`
	AddressRegistered  date.Date  `db:"address_registered_on"`
	SISUpdatedAt       *time.Time `db:"sis_updated_at"`
	RemovedAt          *time.Time `db:"removed_at"`
}

// ConsolePageStudentByID reads a student of the snapshot (also one the SIS
// no longer lists); nil when there is none.
func (s *Store) ConsolePageStudentByID(ctx context.Context, id string) (*ConsolePageStudent, error) {
	var st ConsolePageStudent
	err := s.db.GetContext(ctx, &st, `SELECT s.student_id, s.given_name, s.family_name, coalesce(s.email, '') AS email,
		coalesce(s.phone, '') AS phone, coalesce(s.preferred_language, '') AS preferred_language,
		coalesce(s.citizenship, '') AS citizenship, coalesce(s.visa_regime, '') AS visa_regime,
		coalesce(s.faculty_id, '') AS faculty_id, coalesce(fa.name, s.faculty_id, '') AS faculty,
		coalesce(s.enrollment_status, '') AS enrollment_status, coalesce(s.passport_number, '') AS passport_number,
		`+dayNum("s.passport_expires_on")+` AS passport_expires_on, `+dayNum("s.planned_entry_on")+` AS planned_entry_on,
		`+dayNum("s.invitation_docs_on")+` AS invitation_docs_on, `+dayNum("s.entered_on")+` AS entered_on,
		`+dayNum("s.office_check_in_on")+` AS office_check_in_on, `+dayNum("s.registered_on")+` AS registered_on,
		`+dayNum("s.registration_expires_on")+` AS registration_expires_on, `+dayNum("s.extension_requested_on")+` AS extension_requested_on,
		`+dayNum("s.moved_on")+` AS moved_on, `+dayNum("s.address_registered_on")+` AS address_registered_on,
		s.sis_updated_at, s.removed_at
		FROM sisnotify.students s LEFT JOIN sisnotify.faculties fa ON fa.faculty_id = s.faculty_id
		WHERE s.student_id = $1`, id)
	if isNoRows(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("console student %s: %w", id, err)
	}
	return &st, nil
}

// ConsolePageStudentObligations reads every obligation of a student, open
// and closed: the open ones first, each group the latest due first.
func (s *Store) ConsolePageStudentObligations(ctx context.Context, id string) ([]ConsolePageObligation, error) {
	var out []ConsolePageObligation
	if err := s.db.SelectContext(ctx, &out, `SELECT `+consoleObligationCols+`, 0 AS section
		FROM sisnotify.obligations o
		LEFT JOIN sisnotify.students s ON s.student_id = o.student_id
		LEFT JOIN sisnotify.faculties fa ON fa.faculty_id = s.faculty_id
		WHERE o.student_id = $1
		ORDER BY o.closed_at IS NOT NULL, o.due_on DESC, o.obligation_id DESC`, id); err != nil {
		return nil, fmt.Errorf("console student %s obligations: %w", id, err)
	}
	return out, nil
}

// ConsolePageStep is a step recorded for an obligation.
type ConsolePageStep struct {
	ObligationID int64     `db:"obligation_id"`
	Level        int       `db:"level"`
	Repeat       int       `db:"repeat"`
	Status       string    `db:"status"`
	RecordedOn   date.Date `db:"recorded_on"`
}

// ConsolePageStudentSteps reads the steps recorded for a student's
// obligations, by obligation, then in the order they were recorded.
func (s *Store) ConsolePageStudentSteps(ctx context.Context, id string) ([]ConsolePageStep, error) {
	var out []ConsolePageStep
	if err := s.db.SelectContext(ctx, &out, `SELECT st.obligation_id, st.level, st.repeat, st.status, `+dayNum("st.recorded_on")+` AS recorded_on
		FROM sisnotify.obligations o JOIN sisnotify.obligation_steps st ON st.obligation_id = o.obligation_id
		WHERE o.student_id = $1
		ORDER BY st.obligation_id, st.recorded_on, st.level, st.repeat`, id); err != nil {
		return nil, fmt.Errorf("console student %s steps: %w", id, err)
	}
	return out, nil
}

// ConsolePageNotice is a notice as the console shows it. LastError is the
// provider's reply as the worker recorded it.
type ConsolePageNotice struct {
	ID           int64      `db:"notice_id"`
	ObligationID int64      `db:"obligation_id"`
	Night        date.Date  `db:"night"`
	StudentID    string     `db:"student_id"`
	Rule         string     `db:"rule"`
	Level        int        `db:"level"`
	Repeat       int        `db:"repeat"`
	Audience     string     `db:"audience"`
	Channel      string     `db:"channel"`
	Status       string     `db:"status"`
	Attempts     int        `db:"attempts"`
	ErrorClass   string     `db:"error_class"`
	LastError    string     `db:"last_error"`
	SentAt       *time.Time `db:"sent_at"`
}

var consoleNoticeCols = `n.notice_id, n.obligation_id, ` + dayNum("n.night") + ` AS night, n.student_id, n.rule, n.level, n.repeat,
	n.audience, n.channel, n.status, n.attempts, coalesce(n.error_class, '') AS error_class, coalesce(n.last_error, '') AS last_error, n.sent_at`

// ConsolePageStudentNotices reads every notice of a student, the newest
// first.
func (s *Store) ConsolePageStudentNotices(ctx context.Context, id string) ([]ConsolePageNotice, error) {
	var out []ConsolePageNotice
	if err := s.db.SelectContext(ctx, &out, `SELECT `+consoleNoticeCols+` FROM sisnotify.notices n
		WHERE n.student_id = $1 ORDER BY n.night DESC, n.notice_id DESC`, id); err != nil {
		return nil, fmt.Errorf("console student %s notices: %w", id, err)
	}
	return out, nil
}

// ConsolePageAttempt is one delivery attempt of a notice.
type ConsolePageAttempt struct {
	NoticeID   int64     `db:"notice_id"`
	Attempt    int       `db:"attempt"`
	At         time.Time `db:"at"`
	Outcome    string    `db:"outcome"`
	ErrorClass string    `db:"error_class"`
	Error      string    `db:"error"`
}

// ConsolePageStudentAttempts reads the delivery attempts of a student's
// notices, by notice, then in order.
func (s *Store) ConsolePageStudentAttempts(ctx context.Context, id string) ([]ConsolePageAttempt, error) {
	var out []ConsolePageAttempt
	if err := s.db.SelectContext(ctx, &out, `SELECT a.notice_id, a.attempt, a.at, a.outcome,
		coalesce(a.error_class, '') AS error_class, coalesce(a.error, '') AS error
		FROM sisnotify.notices n JOIN sisnotify.notice_attempts a ON a.notice_id = n.notice_id
		WHERE n.student_id = $1 ORDER BY a.notice_id DESC, a.attempt`, id); err != nil {
		return nil, fmt.Errorf("console student %s attempts: %w", id, err)
	}
	return out, nil
}

// ConsolePageProblem is a problem of the SIS's data on a student's row.
type ConsolePageProblem struct {
	Field     string    `db:"field"`
	Code      string    `db:"code"`
	Severity  string    `db:"severity"`
	Message   string    `db:"message"`
	FirstSeen time.Time `db:"first_seen_at"`
}

// ConsolePageStudentProblems reads the data problems of a student's row.
func (s *Store) ConsolePageStudentProblems(ctx context.Context, id string) ([]ConsolePageProblem, error) {
	var out []ConsolePageProblem
	if err := s.db.SelectContext(ctx, &out, `SELECT field, code, severity, message, first_seen_at
		FROM sisnotify.data_problems WHERE entity = 'student' AND row_id = $1
		ORDER BY severity = 'error' DESC, field, code`, id); err != nil {
		return nil, fmt.Errorf("console student %s data problems: %w", id, err)
	}
	return out, nil
}

// ConsolePageAuditRow is a row of the audit log.
type ConsolePageAuditRow struct {
	ID           int64     `db:"audit_id"`
	At           time.Time `db:"at"`
	Actor        string    `db:"actor"`
	Role         string    `db:"role"`
	Action       string    `db:"action"`
	StudentID    string    `db:"student_id"`
	ObligationID int64     `db:"obligation_id"`
	NoticeID     int64     `db:"notice_id"`
	Night        date.Date `db:"night"`
	Reason       string    `db:"reason"`
}

var consoleAuditCols = `audit_id, at, actor, role, action, coalesce(student_id, '') AS student_id,
	coalesce(obligation_id, 0) AS obligation_id, coalesce(notice_id, 0) AS notice_id, ` + dayNum("night") + ` AS night, reason`

// ConsolePageStudentAudit reads the audit log rows of a student, the
// newest first, at most limit.
func (s *Store) ConsolePageStudentAudit(ctx context.Context, id string, limit int) ([]ConsolePageAuditRow, error) {
	var out []ConsolePageAuditRow
	if err := s.db.SelectContext(ctx, &out, `SELECT `+consoleAuditCols+` FROM sisnotify.audit_log
		WHERE student_id = $1 ORDER BY at DESC, audit_id DESC LIMIT $2`, id, limit); err != nil {
		return nil, fmt.Errorf("console student %s audit: %w", id, err)
	}
	return out, nil
}

// ConsolePageMatch is a student a search found.
type ConsolePageMatch struct {
	ID      string `db:"student_id"`
	Name    string `db:"name"`
	Faculty string `db:"faculty"`
}

// ConsolePageSearch finds the students whose given or family name (or
// "given family", "family given") contains q, case-insensitively, of
// facultyIDs when scoped, by name, at most limit. A search reads the
// roster (names have no index): it is a person's occasional query.
func (s *Store) ConsolePageSearch(ctx context.Context, q string, scoped bool, facultyIDs []string, limit int) ([]ConsolePageMatch, error) {
	pat := "%" + likeEscape(q) + "%"
	// A query with a space can only match a whole name: "given family"
	// or "family given"; one without, a single name. Half the work on a
	// roster that is read whole either way.
	match := `(s.given_name ILIKE $1 OR s.family_name ILIKE $1)`
	if strings.Contains(q, " ") {
		match = `(s.given_name || ' ' || s.family_name ILIKE $1 OR s.family_name || ' ' || s.given_name ILIKE $1)`
	}
	var out []ConsolePageMatch
	if err := s.db.SelectContext(ctx, &out, `SELECT s.student_id, btrim(s.given_name || ' ' || s.family_name) AS name,
		coalesce(fa.name, s.faculty_id, '') AS faculty
		FROM sisnotify.students s LEFT JOIN sisnotify.faculties fa ON fa.faculty_id = s.faculty_id
		WHERE `+match+`
		  AND (NOT $2 OR s.faculty_id = ANY($3))
		ORDER BY s.family_name, s.given_name, s.student_id LIMIT $4`, pat, scoped, pq.Array(facultyIDs), limit); err != nil {
		return nil, fmt.Errorf("console search: %w", err)
	}
	return out, nil
}

// likeEscape escapes LIKE's wildcards in s.
func likeEscape(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '%' || c == '_' || c == '\\' {
			out = append(out, '\\')
		}
		out = append(out, s[i])
	}
	return string(out)
}
