// Package sisdemo creates a demo SIS: the reference schema
// (integrations/sis/reference-schema.sql) filled with generated
// international students, their travel requests, the faculties and the
// academic calendar.
//
// The data is realistic enough to show every rule of docs/rules.md at work on a
// chosen as-of date: names, citizenships and visa regimes of the countries
// that send students to Kazakhstan; about 1% of the students with a notice
// due on the as-of date and the rest quiet (the first night of 1,000,000
// students creates about 20,000 notices; the shares are named in
// student.go); every rule's obligation open for some students on that date
// and on the days around it (stale obligations some weeks old, upcoming
// ones some weeks ahead); and a share of bad rows of known classes
// (Stats.Bad), so tests can check that the sync reports exactly those.
//
// Generation is deterministic: the same Seed and AsOf give byte-identical
// tables. Each student is generated from (Seed, index, AsOf) alone, streamed
// to PostgreSQL with COPY, so memory does not depend on the number of
// students and chunks could be generated in parallel.
package sisdemo

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/iec-almaty/sisnotify/integrations/sis"
	"github.com/iec-almaty/sisnotify/jobs/date"
)

// Options say what to generate.
type Options struct {
	// Students is the number of students (S0000001 ... ).
	Students int
	// Seed selects the data; the same Seed and AsOf give the same tables.
	Seed int64
	// AsOf is the date the data is generated around (required).
	AsOf date.Date
	// BadRowShare is the share of student rows, and separately of travel
	// requests, made bad on purpose. Zero means DefaultBadRowShare; a
	// negative value means none.
	BadRowShare float64
}

// DefaultBadRowShare is the share of bad rows when Options.BadRowShare is 0.
const DefaultBadRowShare = 0.01

// BadClass names one kind of bad row. Every bad row has exactly one class.
type BadClass string

// The bad classes. Student rows:
const (
	BadEmailMalformed       BadClass = "email_malformed"        // no @, a space, @@, no dotted domain, two addresses
	BadEmailMissing         BadClass = "email_missing"          // NULL (or, one time in five, '')
	BadPhoneInvalid         BadClass = "phone_invalid"          // not a phone number at all: 12345, n/a, +7 701
	BadPhoneNotE164         BadClass = "phone_not_e164"         // a valid Kazakh number in national format: 8 701 123 45 67
	BadPhoneMissing         BadClass = "phone_missing"          // NULL
	BadLanguageUnknown      BadClass = "language_unknown"       // de, uz, english, tr
	BadLanguageNonCanonical BadClass = "language_non_canonical" // a known code with other case or spaces: 'RU ', EN
	BadVisaRegimeUnknown    BadClass = "visa_regime_unknown"    // tourist, student, work, diplomatic
	BadStatusUnknown        BadClass = "status_unknown"         // suspended, transferred, academic_leave, alumni
	BadFacultyMissing       BadClass = "faculty_missing"        // NULL faculty_id (status always applicant, active or on_leave)
	BadRegistrationDates    BadClass = "registration_dates"     // registration_expires_on before registered_on
	BadPassportFar          BadClass = "passport_expiry_far"    // passport_expires_on ~150 years after AsOf
	BadNameControl          BadClass = "name_control_chars"     // a name with a line break or a tab
	BadNameMarkup           BadClass = "name_markup"            // HTML in a name: <b>O'Brien</b> (valid text; templates must escape it)
)

// Travel request rows:
const (
	BadTravelDates BadClass = "travel_return_before_departure" // return_on before departure_on
)

// studentClasses are the student bad classes with their relative weights.
var studentClasses = []struct {
	class  BadClass
	weight int
}{
	{BadEmailMalformed, 12},
	{BadEmailMissing, 10},
	{BadPhoneInvalid, 8},
	{BadPhoneNotE164, 12},
	{BadPhoneMissing, 8},
	{BadLanguageUnknown, 6},
	{BadLanguageNonCanonical, 6},
	{BadVisaRegimeUnknown, 5},
	{BadStatusUnknown, 5},
	{BadFacultyMissing, 8},
	{BadRegistrationDates, 6},
	{BadPassportFar, 4},
	{BadNameControl, 5},
	{BadNameMarkup, 5},
}

var badTotal = func() int {
	t := 0
	for _, c := range studentClasses {
		t += c.weight
	}
	return t
}()

// BadClasses lists every bad class, student classes first.
func BadClasses() []BadClass {
	cs := make([]BadClass, 0, len(studentClasses)+1)
	for _, c := range studentClasses {
		cs = append(cs, c.class)
	}
	return append(cs, BadTravelDates)
}

// Stats counts what Generate wrote.
type Stats struct {
	Faculties       int
	Students        int
	TravelRequests  int
	AcademicPeriods int
	// ByStatus counts students by the enrollment_status written (unknown
	// codes of status_unknown rows included).
	ByStatus map[string]int
	// BadStudents and BadTravelRequests count the rows made bad; Bad counts
	// them by class (each bad row has exactly one class).
	BadStudents       int
	BadTravelRequests int
	Bad               map[BadClass]int
}

// CreateSchema drops the schema sis, with everything in it, and creates it
// again as the reference schema, empty.
func CreateSchema(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if _, err := tx.ExecContext(ctx, `DROP SCHEMA IF EXISTS sis CASCADE`); err != nil {
		return fmt.Errorf("drop schema sis: %w", err)
	}
	if _, err := tx.ExecContext(ctx, sis.ReferenceSchema); err != nil {
		return fmt.Errorf("create the reference schema: %w", err)
	}
	return tx.Commit()
}

// Column lists of the COPY statements.
var (
	facultyColumns = []string{"faculty_id", "name", "dean_name", "dean_email", "dean_language"}
	periodColumns  = []string{"period_id", "kind", "starts_on", "ends_on"}
	studentColumns = []string{
		"student_id", "given_name", "family_name", "email", "phone",
		"preferred_language", "citizenship", "visa_regime", "faculty_id",
		"enrollment_status", "passport_number", "passport_expires_on",
		"planned_entry_on", "invitation_docs_on", "entered_on",
		"office_check_in_on", "registered_on", "registration_expires_on",
		"extension_requested_on", "moved_on", "address_registered_on",
		"updated_at"}
	travelColumns = []string{
		"request_id", "student_id", "kind", "submitted_on", "departure_on",
		"return_on", "dean_decision", "reason", "exit_visa_ready", "departed_on",
		"returned_on", "return_check_in_on", "cancelled", "updated_at"}
)

// Generate empties the four SIS tables and fills them, in one transaction:
// the faculties, the academic calendar (Calendar), opt.Students students
// and their travel requests. The schema must exist (CreateSchema). db must
// use the lib/pq driver: rows are streamed with COPY ... FROM STDIN.
//
// Students are generated twice, once for sis.students and once for
// sis.travel_requests (whose foreign key needs the students first):
// regenerating is cheaper than keeping a million students in memory.
func Generate(ctx context.Context, db *sql.DB, opt Options) (Stats, error) {
	st := Stats{ByStatus: map[string]int{}, Bad: map[BadClass]int{}}
	if opt.AsOf.IsZero() {
		return st, errors.New("sisdemo: Options.AsOf is required")
	}
	if opt.Students < 0 || opt.Students > 9_999_999 {
		return st, fmt.Errorf("sisdemo: %d students: want 0 to 9999999", opt.Students)
	}
	share := opt.BadRowShare
	switch {
	case share == 0:
		share = DefaultBadRowShare
	case share < 0:
		share = 0
	case share > 1:
		return st, fmt.Errorf("sisdemo: BadRowShare %v is more than 1", share)
	}
	g := newGen(opt, share)

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return st, err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if _, err := tx.ExecContext(ctx, `TRUNCATE sis.travel_requests, sis.students, sis.faculties, sis.academic_periods`); err != nil {
		return st, fmt.Errorf("empty the SIS tables: %w", err)
	}
	w := &rowWriter{}

	err = copyIn(ctx, tx, "sis.faculties", facultyColumns, func(put func(...any) error) error {
		for _, f := range faculties {
			if err := put(f.id, f.name, f.deanName, nullString(f.deanEmail), nullString(f.deanLanguage)); err != nil {
				return err
			}
			st.Faculties++
		}
		return nil
	})
	if err != nil {
		return st, err
	}

	err = copyIn(ctx, tx, "sis.academic_periods", periodColumns, func(put func(...any) error) error {
		for _, p := range Calendar(opt.AsOf) {
			if err := put(p.ID, p.Kind, p.StartsOn.String(), p.EndsOn.String()); err != nil {
				return err
			}
			st.AcademicPeriods++
		}
		return nil
	})
	if err != nil {
		return st, err
	}

	err = copyIn(ctx, tx, "sis.students", studentColumns, func(put func(...any) error) error {
		for i := range opt.Students {
			if i%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			g.build(i)
			if err := put(w.student(g)...); err != nil {
				return err
			}
			s := &g.s
			st.Students++
			st.ByStatus[s.status]++
			if s.bad != "" {
				st.BadStudents++
				st.Bad[s.bad]++
			}
		}
		return nil
	})
	if err != nil {
		return st, err
	}

	err = copyIn(ctx, tx, "sis.travel_requests", travelColumns, func(put func(...any) error) error {
		for i := range opt.Students {
			if i%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			g.build(i)
			s := &g.s
			if s.ntrips == 0 {
				continue
			}
			sid := studentID(i)
			for k := range s.ntrips {
				st.TravelRequests++
				t := &s.trips[k]
				if t.bad {
					st.BadTravelRequests++
					st.Bad[BadTravelDates]++
				}
				if err := put(w.trip(g, sid, st.TravelRequests, t)...); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return st, err
	}
	if err := tx.Commit(); err != nil {
		return st, fmt.Errorf("commit the demo SIS: %w", err)
	}
	return st, nil
}

// copyIn streams rows into table with COPY ... FROM STDIN.
func copyIn(ctx context.Context, tx *sql.Tx, table string, columns []string, fill func(put func(...any) error) error) error {
	stmt, err := tx.PrepareContext(ctx, "COPY "+table+" ("+strings.Join(columns, ", ")+") FROM STDIN")
	if err != nil {
		return fmt.Errorf("copy into %s: %w", table, err)
	}
	defer stmt.Close()
	err = fill(func(v ...any) error {
		_, err := stmt.ExecContext(ctx, v...)
		return err
	})
	if err == nil {
		_, err = stmt.ExecContext(ctx) // flush and wait for the server
	}
	if err != nil {
		return fmt.Errorf("copy into %s: %w", table, err)
	}
	return stmt.Close()
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// studentID is S followed by the 1-based index in (at least) 7 digits.
func studentID(i int) string { return padded('S', i+1) }

func padded(prefix byte, n int) string {
	var b [16]byte
	d := strconv.AppendInt(b[:0], int64(n), 10)
	out := make([]byte, 0, 8+len(d))
	out = append(out, prefix)
	for k := len(d); k < 7; k++ {
		out = append(out, '0')
	}
	return string(append(out, d...))
}

// rowWriter turns a generated student or trip into COPY values, reusing
// its slices and the boxed text of dates.
type rowWriter struct {
	srow  [22]any
	trow  [14]any
	dates map[date.Date]any
	buf   []byte
}

// date returns d as a boxed YYYY-MM-DD string, or nil when unset.
func (w *rowWriter) date(d date.Date) any {
	if d == 0 {
		return nil
	}
	if v, ok := w.dates[d]; ok {
		return v
	}
	if w.dates == nil {
		w.dates = make(map[date.Date]any, 4096)
	}
	var v any = d.String()
	if len(w.dates) < 200_000 { // a few centuries of days: bounded
		w.dates[d] = v
	}
	return v
}

// timestamp returns d at minute m of the day, Almaty time.
func (w *rowWriter) timestamp(d date.Date, m int) string {
	b := d.AppendISO(w.buf[:0])
	h, mm := m/60, m%60
	b = append(b, ' ', byte('0'+h/10), byte('0'+h%10), ':', byte('0'+mm/10), byte('0'+mm%10))
	b = append(b, ":00+05"...)
	w.buf = b
	return string(b)
}

func (w *rowWriter) student(g *gen) []any {
	s := &g.s
	r := &w.srow
	r[0] = studentID(s.idx)
	r[1] = s.given
	r[2] = s.family
	r[3] = nullString(s.email)
	if s.emailEmpty {
		r[3] = ""
	}
	r[4] = nullString(s.phone)
	r[5] = nullString(s.lang)
	r[6] = nullString(s.citizenship)
	r[7] = s.regime
	r[8] = s.facultyID
	if s.nullFaculty {
		r[8] = nil
	}
	r[9] = s.status
	r[10] = nullString(s.passportNo)
	r[11] = w.date(s.passportExpires)
	r[12] = w.date(s.plannedEntry)
	r[13] = w.date(s.invDocs)
	r[14] = w.date(s.entered)
	r[15] = w.date(s.checkIn)
	r[16] = w.date(s.registered)
	r[17] = w.date(s.regExpiry)
	r[18] = w.date(s.extRequested)
	r[19] = w.date(s.moved)
	r[20] = w.date(s.addrRegistered)
	r[21] = w.timestamp(s.updatedOn, s.updatedMinute)
	return r[:]
}

func (w *rowWriter) trip(g *gen, studentID string, n int, t *trip) []any {
	r := &w.trow
	r[0] = padded('T', n)
	r[1] = studentID
	r[2] = t.kind
	r[3] = w.date(t.submitted)
	r[4] = w.date(t.departure)
	r[5] = w.date(t.ret)
	r[6] = t.decision
	r[7] = nullString(g.reason(n, t.kind))
	switch t.exitVisa {
	case 1:
		r[8] = true
	case 0:
		r[8] = false
	default:
		r[8] = nil
	}
	r[9] = w.date(t.departed)
	r[10] = w.date(t.returned)
	r[11] = w.date(t.checkedIn)
	r[12] = t.cancelled
	// updated_at: the latest thing the request records, as of AsOf.
	last := t.submitted
	for _, d := range [...]date.Date{t.departed, t.returned, t.checkedIn} {
		if d <= g.asOf {
			last = max(last, d)
		}
	}
	r[13] = w.timestamp(last, 9*60+int(uint(n*37)%(10*60)))
	return r[:]
}
