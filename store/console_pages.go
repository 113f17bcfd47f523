package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/lib/pq"

	"github.com/iec-almaty/sisnotify/jobs/date"
)

// The console's pages (package console) read here: today's open
// obligations as the digest sorts them, a student's whole case, the
// nights, the failed notices and the audit log. Every read is bounded (a
// page of rows, one student) and served by an index (migrations 00010 and
// 00011), so that a page stays fast on a national roster.

// Console section ranks: an open obligation's section of the digest
// (templates.SectionOf), as the rank the Today page sorts by. The order is
// the digest's (templates.DigestSections without the sections no open
// obligation is in); console's tests check the SQL against SectionOf.
const (
	ConsoleSectionToday    = 0 // due today or tomorrow
	ConsoleSectionLegal    = 1 // past due on a registration duty
	ConsoleSectionOverdue  = 2 // other past due
	ConsoleSectionLate     = 3 // found late, neither of the first two
	ConsoleSectionUpcoming = 4 // due in 2 days or more
)

// ConsolePageFilter selects the open obligations of the Today page.
type ConsolePageFilter struct {
	Today date.Date // the university's date: overdue and sections are relative to it
	// LastNight is the last evaluated night: "new" is opened on it.
	LastNight date.Date
	// Scoped limits the rows to the students of FacultyIDs (a dean's);
	// false: every student (the office).
	Scoped     bool
	FacultyIDs []string
	// The page's filters; zero values select everything.
	Rule    string
	Level   int
	Faculty string
	Overdue bool // due before Today
	New     bool // opened on LastNight
	// LegalRules are the registration duties (templates.RegistrationDuties)
	// and LateMask the digest bits of found_late that mark a row found
	// late, for the sections.
	LegalRules []string
	LateMask   int
}

// where renders f as the conditions on o (the obligations),
// and the arguments $1… it uses: $1 today, $2 legal rules, $3 late mask.
func (f ConsolePageFilter) where() (string, []any) {
	args := []any{f.Today.String(), pq.Array(f.LegalRules), f.LateMask}
	conds := []string{"o.closed_at IS NULL"}
	add := func(c string, v any) {
		args = append(args, v)
		conds = append(conds, strings.ReplaceAll(c, "?", fmt.Sprintf("$%d", len(args))))
	}
	if f.Scoped {
		add(consoleFacultyOf+" = ANY(?)", pq.Array(f.FacultyIDs))
	}
	if f.Rule != "" {
		add("o.rule = ?", f.Rule)
	}
	if f.Level > 0 {
		add("o.level = ?", f.Level)
	}
	if f.Faculty != "" {
		add(consoleFacultyOf+" = ?", f.Faculty)
	}
	if f.Overdue {
		conds = append(conds, "o.due_on < $1::date")
	}
	if f.New {
		add("o.opened_on = ?::date", consoleDate(f.LastNight))
	}
	return strings.Join(conds, " AND "), args
}

// consoleFacultyOf is the faculty of an obligation's student, looked up
// by its primary key for each open obligation: a faculty filter (and a
// dean's scope) then costs one index probe per open obligation (some
// 10,000 on a million students), where a join let the planner hash the
// faculty's whole roster (a seq scan of the students, 350 ms at a
// million).
const consoleFacultyOf = `(SELECT sf.faculty_id FROM sisnotify.students sf WHERE sf.student_id = o.student_id)`

// consoleSection is the SQL of an open obligation's section rank, with $1
// today, $2 the legal rules and $3 the late mask (templates.SectionOf).
const consoleSection = `CASE
	WHEN o.due_on - $1::date IN (0, 1) THEN 0
	WHEN o.due_on < $1::date AND o.rule = ANY($2) THEN 1
	WHEN o.found_late & $3 <> 0 THEN 3
	WHEN o.due_on < $1::date THEN 2
	ELSE 4 END`

// ConsolePageObligation is an obligation as the console shows it. Dates
// are zero when unset.
type ConsolePageObligation struct {
	ID           int64     `db:"obligation_id"`
	Rule         string    `db:"rule"`
	StudentID    string    `db:"student_id"`
	SubjectID    string    `db:"subject_id"`
	Anchor       date.Date `db:"anchor"`
	Due          date.Date `db:"due_on"`
	Level        int       `db:"level"`
	Repeat       int       `db:"repeat"`
	StepOn       date.Date `db:"step_on"`
	Actions      int       `db:"actions"`
	FoundLate    int       `db:"found_late"`
	OpenedOn     date.Date `db:"opened_on"`
	ClosedOn     date.Date `db:"closed_on"`
	CloseReason  string    `db:"close_reason"`
	ClosedBy     string    `db:"closed_by"`
	SnoozedUntil date.Date `db:"snoozed_until"`
	SnoozedBy    string    `db:"snoozed_by"`
	Name         string    `db:"name"`
	FacultyID    string    `db:"faculty_id"`
	Faculty      string    `db:"faculty"`
	// Section is the rank of the Today page (ConsoleSection…); 0 elsewhere.
	Section int `db:"section"`
}

// consoleObligationCols are the columns of ConsolePageObligation from o,
// s (students) and fa (faculties).
var consoleObligationCols = `o.obligation_id, o.rule, o.student_id, o.subject_id,
	` + dayNum("o.anchor") + ` AS anchor, ` + dayNum("o.due_on") + ` AS due_on, o.level, o.repeat,
	` + dayNum("o.step_on") + ` AS step_on, o.actions, o.found_late, ` + dayNum("o.opened_on") + ` AS opened_on,
	` + dayNum("o.closed_on") + ` AS closed_on, coalesce(o.close_reason, '') AS close_reason, coalesce(o.closed_by, '') AS closed_by,
	` + dayNum("o.snoozed_until") + ` AS snoozed_until, coalesce(o.snoozed_by, '') AS snoozed_by,
	btrim(coalesce(s.given_name, '') || ' ' || coalesce(s.family_name, '')) AS name,
	coalesce(s.faculty_id, '') AS faculty_id, coalesce(fa.name, s.faculty_id, '') AS faculty`

// ConsolePageToday reads a page of the open obligations f selects, in the
// digest's order: by section, then the most urgent first (the earliest
// due date), then rule, student, subject and id, so that a page boundary
// is stable. It reads limit rows from offset.
//
// The page of obligations is chosen first, then joined to the students
// and faculties for its names: the roster is never joined whole.
func (s *Store) ConsolePageToday(ctx context.Context, f ConsolePageFilter, offset, limit int) ([]ConsolePageObligation, error) {
	cond, args := f.where()
	args = append(args, limit, offset)
	q := `WITH page AS (
		SELECT o.obligation_id, ` + consoleSection + ` AS section
		FROM sisnotify.obligations o
		WHERE ` + cond + `
		ORDER BY section, o.due_on, o.rule, o.student_id, o.subject_id, o.obligation_id
		LIMIT $` + fmt.Sprint(len(args)-1) + ` OFFSET $` + fmt.Sprint(len(args)) + `)
	SELECT ` + consoleObligationCols + `, page.section
	FROM page JOIN sisnotify.obligations o ON o.obligation_id = page.obligation_id
	LEFT JOIN sisnotify.students s ON s.student_id = o.student_id
	LEFT JOIN sisnotify.faculties fa ON fa.faculty_id = s.faculty_id
	ORDER BY page.section, o.due_on, o.rule, o.student_id, o.subject_id, o.obligation_id`
	var out []ConsolePageObligation
	if err := s.db.SelectContext(ctx, &out, q, args...); err != nil {
		return nil, fmt.Errorf("console today: %w", err)
	}
	return out, nil
}

// ConsolePageCount is how many of the selected open obligations have a
// section, rule and level, and of them how many are overdue and new.
type ConsolePageCount struct {
	Section int    `db:"section"`
	Rule    string `db:"rule"`
	Level   int    `db:"level"`
	N       int    `db:"n"`
	Overdue int    `db:"overdue"`
	New     int    `db:"new"`
}

// ConsolePageTodayCounts counts the open obligations f selects by
// section, rule and level.
func (s *Store) ConsolePageTodayCounts(ctx context.Context, f ConsolePageFilter) ([]ConsolePageCount, error) {
	cond, args := f.where()
	args = append(args, consoleDate(f.LastNight))
	q := `SELECT ` + consoleSection + ` AS section, o.rule, o.level, count(*) AS n,
		count(*) FILTER (WHERE o.due_on < $1::date) AS overdue,
		count(*) FILTER (WHERE o.opened_on = $` + fmt.Sprint(len(args)) + `::date) AS new
		FROM sisnotify.obligations o WHERE ` + cond + `
		GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`
	var out []ConsolePageCount
	if err := s.db.SelectContext(ctx, &out, q, args...); err != nil {
		return nil, fmt.Errorf("console today counts: %w", err)
	}
	return out, nil
}

// ConsolePageLastNight is the last night the obligations were evaluated
// on (lastNight), zero before the first.
func (s *Store) ConsolePageLastNight(ctx context.Context) (date.Date, error) {
	var d date.Date
	if err := s.db.GetContext(ctx, &d, `SELECT `+dayNum(lastNight)); err != nil {
		return 0, fmt.Errorf("console last night: %w", err)
	}
	return d, nil
}

// ConsolePageRecentlyClosed reads the obligations closed on or after since
// as moot (moot are those reasons) or by the office (office is that
// reason), of the students of facultyIDs when scoped, the latest first,
// at most limit.
func (s *Store) ConsolePageRecentlyClosed(ctx context.Context, since date.Date, reasons []string, scoped bool, facultyIDs []string, limit int) ([]ConsolePageObligation, error) {
	q := `SELECT ` + consoleObligationCols + `, 0 AS section
		FROM sisnotify.obligations o
		LEFT JOIN sisnotify.students s ON s.student_id = o.student_id
		LEFT JOIN sisnotify.faculties fa ON fa.faculty_id = s.faculty_id
		WHERE o.closed_on >= $1::date AND o.close_reason = ANY($2) AND (NOT $3 OR s.faculty_id = ANY($4))
		ORDER BY o.closed_on DESC, o.obligation_id DESC LIMIT $5`
	var out []ConsolePageObligation
	if err := s.db.SelectContext(ctx, &out, q, since.String(), pq.Array(reasons), scoped, pq.Array(facultyIDs), limit); err != nil {
		return nil, fmt.Errorf("console recently closed: %w", err)
	}
	return out, nil
}

// ConsolePageFaculty is a faculty for the Today page's filter.
type ConsolePageFaculty struct {
	ID   string `db:"faculty_id"`
	Name string `db:"name"`
}

// ConsolePageFaculties reads the faculties the SIS lists, of ids when
// scoped, by name.
func (s *Store) ConsolePageFaculties(ctx context.Context, scoped bool, ids []string) ([]ConsolePageFaculty, error) {
	var out []ConsolePageFaculty
	if err := s.db.SelectContext(ctx, &out, `SELECT faculty_id, name FROM sisnotify.faculties
		WHERE removed_at IS NULL AND (NOT $1 OR faculty_id = ANY($2)) ORDER BY name, faculty_id`, scoped, pq.Array(ids)); err != nil {
		return nil, fmt.Errorf("console faculties: %w", err)
	}
	return out, nil
}

// errNoRows is sql.ErrNoRows, for the callers' errors.Is.
var errNoRows = sql.ErrNoRows

// isNoRows says whether err is "no rows".
func isNoRows(err error) bool { return errors.Is(err, errNoRows) }

// consoleDate is d as a query argument: NULL for no date (a database with
// no night evaluated yet has no last night), never the empty string.
func consoleDate(d date.Date) any {
	if d == 0 {
		return nil
	}
	return d.String()
}
