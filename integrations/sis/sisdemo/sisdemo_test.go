package sisdemo

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/nyaruka/phonenumbers"

	"github.com/iec-almaty/sisnotify/integrations/sis"
	"github.com/iec-almaty/sisnotify/integrations/testenv"
	"github.com/iec-almaty/sisnotify/jobs/date"
)

// tpl is a database with the empty reference schema, copied by every test.
var tpl testenv.Template

func TestMain(m *testing.M) {
	var err error
	tpl, err = testenv.NewTemplate(context.Background(), "sisdemo", func(ctx context.Context, db *sqlx.DB) error {
		return CreateSchema(ctx, db.DB)
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	tpl.Drop()
	os.Exit(code)
}

// newSIS returns a fresh database with the empty reference schema.
func newSIS(t testing.TB) *sql.DB {
	t.Helper()
	return testenv.New(t, tpl.Name).Open(t).DB
}

func generate(t testing.TB, db *sql.DB, opt Options) Stats {
	t.Helper()
	st, err := Generate(context.Background(), db, opt)
	if err != nil {
		t.Fatalf("Generate(%+v): %v", opt, err)
	}
	return st
}

// catalog describes the schema sis: relations, columns, constraints and
// indexes, one sorted line each.
func catalog(t *testing.T, db *sql.DB) string {
	t.Helper()
	var s sql.NullString
	err := db.QueryRow(`
SELECT string_agg(x, E'\n' ORDER BY x) FROM (
  SELECT 'rel ' || c.relname || ' ' || c.relkind::text
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'sis'
  UNION ALL
  SELECT 'col ' || table_name || '.' || column_name || ' #' || ordinal_position || ' ' || data_type
         || ' null=' || is_nullable || ' default=' || coalesce(column_default, '')
    FROM information_schema.columns WHERE table_schema = 'sis'
  UNION ALL
  SELECT 'con ' || conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid)
    FROM pg_constraint WHERE connamespace = 'sis'::regnamespace
  UNION ALL
  SELECT 'idx ' || indexname || ' ' || indexdef FROM pg_indexes WHERE schemaname = 'sis'
  UNION ALL
  SELECT 'fn ' || p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'sis'
) t(x)`).Scan(&s)
	if err != nil {
		t.Fatal(err)
	}
	return s.String
}

func TestCreateSchemaIsTheReference(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ref := testenv.New(t, "").Open(t)
	if _, err := ref.Exec(sis.ReferenceSchema); err != nil {
		t.Fatal(err)
	}
	want := catalog(t, ref.DB)
	for _, table := range []string{"faculties", "students", "travel_requests", "academic_periods"} {
		if !strings.Contains(want, "rel "+table+" r") {
			t.Fatalf("reference catalog lacks %s:\n%s", table, want)
		}
	}

	db := testenv.New(t, "").Open(t).DB
	// A schema sis left over by something else: other tables, other columns, data.
	for _, q := range []string{
		`CREATE SCHEMA sis`,
		`CREATE TABLE sis.students (student_id int PRIMARY KEY, extra text)`,
		`CREATE TABLE sis.leftover (x int)`,
		`CREATE VIEW sis.v AS SELECT 1 AS one`,
		`INSERT INTO sis.students VALUES (1, 'x')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 { // and again over its own result
		if err := CreateSchema(ctx, db); err != nil {
			t.Fatal(err)
		}
		if got := catalog(t, db); got != want {
			t.Fatalf("schema after CreateSchema differs from the reference:\n--- got\n%s\n--- want\n%s", got, want)
		}
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM sis.students`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("students after CreateSchema: %d, %v", n, err)
	}
}

func TestGenerateOptions(t *testing.T) {
	t.Parallel()
	db := newSIS(t)
	ctx := context.Background()
	for _, opt := range []Options{
		{Students: 10},
		{Students: -1, AsOf: date.MustParse("2026-03-16")},
		{Students: 10, AsOf: date.MustParse("2026-03-16"), BadRowShare: 1.5},
	} {
		if _, err := Generate(ctx, db, opt); err == nil {
			t.Errorf("Generate(%+v) succeeded", opt)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Generate(cancelled, db, Options{Students: 10, AsOf: date.MustParse("2026-03-16")}); err == nil {
		t.Error("Generate with a cancelled context succeeded")
	}
	st := generate(t, db, Options{Students: 0, AsOf: date.MustParse("2026-03-16")})
	if st.Students != 0 || st.TravelRequests != 0 || st.Faculties != 8 || st.AcademicPeriods != 12 {
		t.Errorf("no students: %+v", st)
	}
}

// digests returns an md5 of every table's full contents, ordered by key.
func digests(t *testing.T, db *sql.DB) map[string]string {
	t.Helper()
	out := map[string]string{}
	for table, key := range map[string]string{
		"faculties": "faculty_id", "students": "student_id",
		"travel_requests": "request_id", "academic_periods": "period_id",
	} {
		var h string
		q := fmt.Sprintf(`SELECT md5(coalesce(string_agg(t::text, E'\n' ORDER BY t.%s), '')) FROM sis.%s t`, key, table)
		if err := db.QueryRow(q).Scan(&h); err != nil {
			t.Fatal(err)
		}
		out[table] = h
	}
	return out
}

func TestGenerateIsDeterministic(t *testing.T) {
	t.Parallel()
	asOf := date.MustParse("2026-12-10")
	opt := Options{Students: 4000, Seed: 42, AsOf: asOf}
	a, b := newSIS(t), newSIS(t)
	sa := generate(t, a, opt)
	sb := generate(t, b, opt)
	if fmt.Sprint(sa) != fmt.Sprint(sb) {
		t.Errorf("stats differ:\n%+v\n%+v", sa, sb)
	}
	da, db := digests(t, a), digests(t, b)
	if fmt.Sprint(da) != fmt.Sprint(db) {
		t.Errorf("same seed, different tables:\n%v\n%v", da, db)
	}
	// Generating again into a filled database replaces its contents.
	generate(t, b, Options{Students: 100, Seed: 7, AsOf: asOf})
	generate(t, b, opt)
	if d := digests(t, b); fmt.Sprint(d) != fmt.Sprint(da) {
		t.Errorf("regenerated tables differ:\n%v\n%v", d, da)
	}

	generate(t, b, Options{Students: 4000, Seed: 43, AsOf: asOf})
	dc := digests(t, b)
	for _, table := range []string{"students", "travel_requests"} {
		if dc[table] == da[table] {
			t.Errorf("seeds 42 and 43 give the same %s", table)
		}
	}
	// A prefix is stable: the first students do not depend on how many follow.
	generate(t, b, Options{Students: 1000, Seed: 42, AsOf: asOf})
	var same int
	if err := a.QueryRow(`SELECT count(*) FROM sis.students WHERE student_id <= 'S0001000'`).Scan(&same); err != nil {
		t.Fatal(err)
	}
	var got string
	var want string
	q := `SELECT md5(string_agg(t::text, E'\n' ORDER BY t.student_id)) FROM sis.students t WHERE student_id <= 'S0001000'`
	if err := a.QueryRow(q).Scan(&want); err != nil {
		t.Fatal(err)
	}
	if err := b.QueryRow(q).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if same != 1000 || got != want {
		t.Errorf("the first 1000 students depend on the roster size (%d rows)", same)
	}
}

func TestGenerateCounts(t *testing.T) {
	t.Parallel()
	db := newSIS(t)
	asOf := date.MustParse("2026-03-16")
	st := generate(t, db, Options{Students: 20000, Seed: 1, AsOf: asOf})
	t.Logf("stats: %+v", st)

	count := func(q string, args ...any) int {
		t.Helper()
		var n int
		if err := db.QueryRow(q, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	if n := count(`SELECT count(*) FROM sis.students`); n != 20000 || st.Students != 20000 {
		t.Errorf("students: %d rows, stats %d", n, st.Students)
	}
	if n := count(`SELECT count(*) FROM sis.travel_requests`); n != st.TravelRequests || n < 20000*3/10 {
		t.Errorf("travel requests: %d rows, stats %d", n, st.TravelRequests)
	}
	if n := count(`SELECT count(*) FROM sis.faculties`); n != 8 || st.Faculties != 8 {
		t.Errorf("faculties: %d rows, stats %d", n, st.Faculties)
	}
	if n := count(`SELECT count(*) FROM sis.faculties WHERE dean_email IS NULL`); n != 1 {
		t.Errorf("faculties without a dean email: %d", n)
	}
	if n := count(`SELECT count(*) FROM sis.academic_periods`); n != 12 || st.AcademicPeriods != 12 {
		t.Errorf("academic periods: %d rows, stats %d", n, st.AcademicPeriods)
	}
	// Periods tile the calendar: each starts the day after the previous ends.
	if n := count(`SELECT count(*) FROM (SELECT starts_on, lag(ends_on) OVER (ORDER BY starts_on) AS prev FROM sis.academic_periods) p
		WHERE prev IS NOT NULL AND starts_on <> prev + 1`); n != 0 {
		t.Errorf("%d gaps or overlaps in the academic calendar", n)
	}
	if n := count(`SELECT count(*) FROM sis.academic_periods WHERE period_id !~ '^20[0-9]{2}-(fall|winter|spring|summer)$'`); n != 0 {
		t.Errorf("%d period ids not like 2026-fall", n)
	}
	if n := count(`SELECT count(*) FROM sis.students WHERE student_id !~ '^S[0-9]{7}$'`); n != 0 {
		t.Errorf("%d student ids not like S0000001", n)
	}
	if n := count(`SELECT count(*) FROM sis.travel_requests WHERE request_id !~ '^T[0-9]{7}$'`); n != 0 {
		t.Errorf("%d request ids not like T0000001", n)
	}
	rows, err := db.Query(`SELECT enrollment_status, count(*) FROM sis.students GROUP BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	byStatus := map[string]int{}
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			t.Fatal(err)
		}
		byStatus[s] = n
	}
	if fmt.Sprint(byStatus) != fmt.Sprint(st.ByStatus) {
		t.Errorf("by status: table %v, stats %v", byStatus, st.ByStatus)
	}
	if a := st.ByStatus["active"]; a < 20000*80/100 || a > 20000*90/100 {
		t.Errorf("%d active students of 20000", a)
	}
	for _, s := range []string{"applicant", "on_leave", "graduated", "withdrawn", "expelled"} {
		if st.ByStatus[s] == 0 {
			t.Errorf("no %s students", s)
		}
	}

	// Realism: visa regimes follow citizenship; no fact is dated after
	// AsOf; every travel request of a kind and decision the schema knows.
	if n := count(`SELECT count(*) FROM sis.students WHERE visa_regime IN ('visa', 'visa_free', 'eaeu') AND NOT (
		(citizenship IN ('RU', 'KG') AND visa_regime = 'eaeu') OR
		(citizenship IN ('UZ', 'TJ', 'AZ', 'MN', 'TR', 'KR') AND visa_regime = 'visa_free') OR
		(citizenship IN ('CN', 'IN', 'PK', 'AF', 'IR', 'TM') AND visa_regime = 'visa'))`); n != 0 {
		t.Errorf("%d students whose visa regime does not match their citizenship", n)
	}
	if n := count(`SELECT count(DISTINCT citizenship) FROM sis.students`); n < 14 {
		t.Errorf("%d citizenships", n)
	}
	if n := count(`SELECT count(*) FROM sis.students WHERE greatest(invitation_docs_on, entered_on, office_check_in_on,
		registered_on, extension_requested_on, moved_on, address_registered_on) > $1`, asOf.String()); n != 0 {
		t.Errorf("%d students with facts dated after AsOf", n)
	}
	if n := count(`SELECT count(*) FROM sis.travel_requests WHERE greatest(submitted_on, departed_on, returned_on, return_check_in_on) > $1`, asOf.String()); n != 0 {
		t.Errorf("%d travel requests with facts dated after AsOf", n)
	}
	if n := count(`SELECT count(*) FROM sis.travel_requests WHERE kind NOT IN ('vacation', 'term')
		OR dean_decision NOT IN ('not_required', 'pending', 'approved', 'rejected')`); n != 0 {
		t.Errorf("%d travel requests with unknown codes", n)
	}
	for _, q := range []string{
		`SELECT count(*) FROM sis.travel_requests WHERE kind = 'vacation' AND dean_decision = '%s'`,
		`SELECT count(*) FROM sis.travel_requests WHERE kind = 'term' AND dean_decision = '%s'`,
	} {
		for _, d := range []string{"not_required", "pending", "approved", "rejected"} {
			if strings.Contains(q, "'term'") && d == "not_required" {
				continue
			}
			if count(fmt.Sprintf(q, d)) == 0 {
				t.Errorf("no %q", fmt.Sprintf(q, d))
			}
		}
	}
	for _, v := range []string{"true", "false", "NULL"} {
		if n := count(`SELECT count(*) FROM sis.travel_requests t JOIN sis.students s USING (student_id)
			WHERE s.visa_regime = 'visa' AND t.kind = 'vacation' AND t.exit_visa_ready IS NOT DISTINCT FROM ` + v); n == 0 {
			t.Errorf("no vacation of a visa student with exit_visa_ready %s", v)
		}
	}
	if n := count(`SELECT count(*) FROM sis.travel_requests WHERE cancelled`); n == 0 {
		t.Error("no cancelled travel request")
	}
	// Stated reasons: most term trips give one, some do not; a trip in a
	// break sometimes has one.
	term := count(`SELECT count(*) FROM sis.travel_requests WHERE kind = 'term'`)
	if n := count(`SELECT count(*) FROM sis.travel_requests WHERE kind = 'term' AND reason IS NULL`); n == 0 || n > term/4 {
		t.Errorf("%d of %d term trips without a reason, want some but few", n, term)
	}
	if n := count(`SELECT count(DISTINCT reason) FROM sis.travel_requests WHERE kind = 'term'`); n < 8 {
		t.Errorf("%d distinct reasons of term trips", n)
	}
	if n := count(`SELECT count(*) FROM sis.travel_requests WHERE kind = 'vacation' AND reason IS NOT NULL`); n == 0 {
		t.Error("no vacation with a stated reason")
	}
	if n := count(`SELECT count(*) FROM sis.travel_requests WHERE reason = '' OR reason ~ '[[:cntrl:]]'`); n != 0 {
		t.Errorf("%d empty or unclean reasons", n)
	}
	if n := count(`SELECT count(*) FROM sis.students WHERE preferred_language IS NULL`); n < 200 {
		t.Errorf("only %d students without a preferred language", n)
	}
	if n := count(`SELECT count(*) FROM sis.students WHERE phone !~ '^\+77'`); n < 20000/10 {
		t.Errorf("only %d students with a foreign phone", n)
	}
	if n := count(`SELECT count(*) FROM sis.students WHERE updated_at > ($1::date + 1)::timestamptz`, asOf.String()); n != 0 {
		t.Errorf("%d students updated after AsOf", n)
	}
}

var (
	goodEmail = regexp.MustCompile(`^[a-z0-9.-]+@[a-z0-9-]+(\.[a-z0-9-]+)+$`)
	// kzE164 is a Kazakh mobile number in E.164, valid without asking
	// libphonenumber (slow under the race detector); TestContactsAreValid
	// checks every generated phone with it.
	kzE164 = regexp.MustCompile(`^\+77(0[0-25-8]|47|7[15-8])[0-9]{7}$`)
)

// classify finds the bad classes of the generated rows independently of
// the generator, the way a validator would.
func classify(t *testing.T, db *sql.DB, asOf date.Date) map[BadClass]int {
	t.Helper()
	got := map[BadClass]int{}
	rows, err := db.Query(`SELECT given_name, family_name, email, phone, preferred_language, visa_regime,
		faculty_id IS NULL, enrollment_status,
		coalesce(registration_expires_on < registered_on, false),
		coalesce(passport_expires_on > $1::date + interval '100 years', false),
		coalesce(registration_expires_on < entered_on, false)
		FROM sis.students`, asOf.String())
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	in := func(s string, xs ...string) bool {
		for _, x := range xs {
			if s == x {
				return true
			}
		}
		return false
	}
	for rows.Next() {
		var given, family, regime, status string
		var email, phone, lang sql.NullString
		var noFaculty, regDates, farPassport, beforeEntry bool
		if err := rows.Scan(&given, &family, &email, &phone, &lang, &regime, &noFaculty, &status, &regDates, &farPassport, &beforeEntry); err != nil {
			t.Fatal(err)
		}
		var classes []BadClass
		switch {
		case !email.Valid || email.String == "":
			classes = append(classes, BadEmailMissing)
		case !goodEmail.MatchString(email.String):
			classes = append(classes, BadEmailMalformed)
		}
		if !phone.Valid {
			classes = append(classes, BadPhoneMissing)
		} else if kzE164.MatchString(phone.String) {
			// valid
		} else if n, err := phonenumbers.Parse(phone.String, "KZ"); err != nil || !phonenumbers.IsValidNumber(n) {
			classes = append(classes, BadPhoneInvalid)
		} else if phonenumbers.Format(n, phonenumbers.E164) != phone.String {
			classes = append(classes, BadPhoneNotE164)
		}
		if lang.Valid && !in(lang.String, "en", "ru", "kk") {
			if in(strings.ToLower(strings.TrimSpace(lang.String)), "en", "ru", "kk") {
				classes = append(classes, BadLanguageNonCanonical)
			} else {
				classes = append(classes, BadLanguageUnknown)
			}
		}
		if !in(regime, "visa", "visa_free", "eaeu") {
			classes = append(classes, BadVisaRegimeUnknown)
		}
		if !in(status, "applicant", "active", "on_leave", "graduated", "withdrawn", "expelled") {
			classes = append(classes, BadStatusUnknown)
		}
		if noFaculty {
			classes = append(classes, BadFacultyMissing)
			if !in(status, "applicant", "active", "on_leave") {
				t.Errorf("a student without faculty has status %q", status)
			}
		}
		if regDates {
			classes = append(classes, BadRegistrationDates)
		} else if beforeEntry {
			t.Errorf("a student whose stay ends before the entry, not counted bad")
		}
		if farPassport {
			classes = append(classes, BadPassportFar)
		}
		if strings.ContainsAny(given+family, "\n\r\t") {
			classes = append(classes, BadNameControl)
		}
		if strings.ContainsAny(given+family, "<>") {
			classes = append(classes, BadNameMarkup)
		}
		if len(classes) > 1 {
			t.Errorf("a row with several bad classes: %v", classes)
		}
		for _, c := range classes {
			got[c]++
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM sis.travel_requests WHERE return_on < departure_on`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n > 0 {
		got[BadTravelDates] = n
	}
	if err := db.QueryRow(`SELECT count(*) FROM sis.travel_requests WHERE returned_on < departed_on
		OR return_check_in_on < returned_on AND return_check_in_on >= departed_on OR departure_on < submitted_on`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n > 0 {
		t.Errorf("%d travel requests with inconsistent actual dates", n)
	}
	return got
}

func TestBadRows(t *testing.T) {
	t.Parallel()
	asOf := date.MustParse("2026-03-16")
	db := newSIS(t)
	for _, c := range []struct {
		share float64
		n     int
	}{{0, 20000}, {0.05, 8000}, {-1, 4000}} {
		share, n := c.share, c.n
		st := generate(t, db, Options{Students: n, Seed: 3, AsOf: asOf, BadRowShare: share})
		got := classify(t, db, asOf)
		want := map[BadClass]int{}
		for c, k := range st.Bad {
			if k > 0 {
				want[c] = k
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("share %v: bad rows found %v, stats %v", share, got, want)
		}
		sum := 0
		for _, c := range BadClasses() {
			if c != BadTravelDates {
				sum += st.Bad[c]
			}
		}
		if sum != st.BadStudents || st.Bad[BadTravelDates] != st.BadTravelRequests {
			t.Errorf("share %v: totals %d/%d do not add up: %v", share, st.BadStudents, st.BadTravelRequests, st.Bad)
		}
		expect := share
		if share == 0 {
			expect = DefaultBadRowShare
		}
		if share < 0 {
			if st.BadStudents != 0 || st.BadTravelRequests != 0 {
				t.Errorf("share %v: %d bad students, %d bad requests", share, st.BadStudents, st.BadTravelRequests)
			}
			continue
		}
		if r := float64(st.BadStudents) / float64(n); r < expect*0.8 || r > expect*1.2 {
			t.Errorf("share %v: %.4f of the students are bad", share, r)
		}
		if r := float64(st.BadTravelRequests) / float64(st.TravelRequests); r < expect*0.6 || r > expect*1.4 {
			t.Errorf("share %v: %.4f of the travel requests are bad", share, r)
		}
		if share == 0.05 {
			for _, c := range BadClasses() {
				if st.Bad[c] == 0 {
					t.Errorf("share %v: no row of class %s", share, c)
				}
			}
		}
		t.Logf("share %v: %d bad students, %d bad travel requests of %d: %v", share, st.BadStudents, st.BadTravelRequests, st.TravelRequests, st.Bad)
	}
}
