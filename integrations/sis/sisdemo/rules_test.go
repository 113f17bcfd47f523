package sisdemo

import (
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/iec-almaty/sisnotify/jobs/date"
)

// ruleChecks are SQL predicates, one per rule of docs/rules.md, that select the
// students with an open obligation of that rule whose reached step on $1
// (the evaluation date) exists: scope holds, done does not, and the first
// step's date is on or before $1. Working days are approximated by
// calendar days; that only moves a step by a day or two.
var ruleChecks = []struct{ rule, query string }{
	{"visa-invitation", `
SELECT s.student_id FROM sis.students s
WHERE s.enrollment_status = 'applicant' AND s.visa_regime = 'visa'
  AND s.planned_entry_on IS NOT NULL AND s.invitation_docs_on IS NULL
  AND s.planned_entry_on - 45 - 14 <= $1`},
	{"arrival-check-in", `
SELECT s.student_id FROM sis.students s
WHERE s.enrollment_status IN ('applicant', 'active') AND s.entered_on <= $1
  AND (s.office_check_in_on IS NULL OR s.office_check_in_on < s.entered_on)`},
	{"registration", `
SELECT s.student_id FROM sis.students s
WHERE s.enrollment_status IN ('applicant', 'active', 'on_leave') AND s.entered_on <= $1
  AND (s.registered_on IS NULL OR s.registered_on < s.entered_on)`},
	{"stay-extension", `
SELECT s.student_id FROM sis.students s
WHERE s.enrollment_status IN ('active', 'on_leave')
  AND s.registration_expires_on - 30 - 14 <= $1
  AND (s.extension_requested_on IS NULL OR s.extension_requested_on < s.registration_expires_on - 90)`},
	{"passport-renewal", `
SELECT s.student_id FROM sis.students s
WHERE s.enrollment_status IN ('applicant', 'active', 'on_leave')
  AND (s.passport_expires_on - interval '6 months')::date - 30 <= $1`},
	{"travel-late-notice", `
SELECT s.student_id FROM sis.travel_requests t JOIN sis.students s USING (student_id)
WHERE s.enrollment_status IN ('active', 'on_leave') AND NOT t.cancelled
  AND t.submitted_on > t.departure_on - 3 AND t.departed_on IS NULL AND t.submitted_on <= $1`},
	{"travel-dean-approval", `
SELECT s.student_id FROM sis.travel_requests t JOIN sis.students s USING (student_id)
WHERE s.enrollment_status IN ('active', 'on_leave') AND NOT t.cancelled
  AND t.kind = 'term' AND t.dean_decision = 'pending' AND t.submitted_on <= $1`},
	{"term-travel-limit", `
SELECT s.student_id FROM sis.travel_requests t JOIN sis.students s USING (student_id)
JOIN sis.academic_periods p ON p.kind = 'semester' AND t.departure_on BETWEEN p.starts_on AND p.ends_on
WHERE s.enrollment_status IN ('active', 'on_leave') AND NOT t.cancelled
  AND t.kind = 'term' AND t.dean_decision <> 'rejected' AND t.departed_on IS NULL AND t.submitted_on <= $1
  AND EXISTS (SELECT 1 FROM sis.travel_requests e
              WHERE e.student_id = t.student_id AND e.kind = 'term' AND NOT e.cancelled
                AND e.dean_decision <> 'rejected' AND e.departure_on BETWEEN p.starts_on AND p.ends_on
                AND (e.departure_on, e.request_id) < (t.departure_on, t.request_id))`},
	{"exit-visa", `
SELECT s.student_id FROM sis.travel_requests t JOIN sis.students s USING (student_id)
WHERE s.enrollment_status IN ('active', 'on_leave') AND s.visa_regime = 'visa' AND NOT t.cancelled
  AND t.kind = 'vacation' AND t.departed_on IS NULL AND t.exit_visa_ready IS NOT TRUE
  AND t.departure_on - 21 <= $1`},
	{"return-check-in", `
SELECT s.student_id FROM sis.travel_requests t JOIN sis.students s USING (student_id)
WHERE s.enrollment_status IN ('active', 'on_leave') AND NOT t.cancelled
  AND t.returned_on <= $1 AND (t.return_check_in_on IS NULL OR t.return_check_in_on < t.returned_on)`},
	{"address-registration", `
SELECT s.student_id FROM sis.students s
WHERE s.enrollment_status IN ('active', 'on_leave') AND s.moved_on <= $1
  AND (s.address_registered_on IS NULL OR s.address_registered_on < s.moved_on)`},
	{"break-briefing", `
SELECT s.student_id FROM sis.students s
WHERE s.enrollment_status = 'active'
  AND EXISTS (SELECT 1 FROM sis.academic_periods p
              WHERE p.kind IN ('winter_break', 'summer_break') AND p.starts_on > $1 AND p.starts_on - 21 <= $1)`},
}

// reachedToday narrows a rule to the students whose obligation is fresh on
// $1: its anchor (or first step) in the last days, not an old obligation
// still listed. It shows the rule firing on the day, not only lingering.
var reachedToday = map[string]string{
	"visa-invitation":      `AND s.planned_entry_on - 45 - 14 > $1 - 10`,
	"arrival-check-in":     `AND s.entered_on > $1 - 10`,
	"registration":         `AND s.entered_on > $1 - 10`,
	"stay-extension":       `AND s.registration_expires_on - 44 > $1 - 10`,
	"passport-renewal":     `AND (s.passport_expires_on - interval '6 months')::date - 30 > $1 - 10`,
	"travel-late-notice":   `AND t.submitted_on > $1 - 10`,
	"travel-dean-approval": `AND t.submitted_on > $1 - 10`,
	"term-travel-limit":    `AND t.submitted_on > $1 - 10`,
	"exit-visa":            `AND t.departure_on - 21 > $1 - 10`,
	"return-check-in":      `AND t.returned_on > $1 - 10`,
	"address-registration": `AND s.moved_on > $1 - 10`,
	"break-briefing":       ``,
}

func countStudents(t *testing.T, db *sql.DB, q string, d date.Date) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT count(DISTINCT student_id) FROM (`+q+`) x`, d.String()).Scan(&n); err != nil {
		t.Fatalf("%v\n%s", err, q)
	}
	return n
}

func TestEveryRuleFires(t *testing.T) {
	t.Parallel()
	// About 1% of the students are due a notice on a night, a few dozen
	// per rule in this roster; the rarest obligations (a visa student's
	// undeclared departure a month ago) need this many students to show on
	// AsOf-30.
	const n = 40000
	for _, asOf := range []string{"2026-12-10", "2026-03-16", "2026-07-15", "2025-09-05"} {
		t.Run(asOf, func(t *testing.T) {
			t.Parallel()
			T := date.MustParse(asOf)
			db := newSIS(t)
			generate(t, db, Options{Students: n, Seed: 11, AsOf: T})
			periods := Calendar(T)
			for _, off := range []int{-30, -7, 0, 7, 30} {
				d := T.AddDays(off)
				var counts []string
				for _, rc := range ruleChecks {
					if rc.rule == "term-travel-limit" && d < periods[0].StartsOn {
						continue // no semester of the SIS calendar can hold an earlier trip
					}
					if rc.rule == "break-briefing" {
						want := false
						for _, p := range periods {
							if p.Kind != Semester && p.StartsOn > d && p.StartsOn.AddDays(-21) <= d {
								want = true
							}
						}
						if got := countStudents(t, db, rc.query, d) > 0; got != want {
							t.Errorf("%s on %s: fires %v, want %v", rc.rule, d, got, want)
						}
						continue
					}
					k := countStudents(t, db, rc.query, d)
					counts = append(counts, fmt.Sprintf("%s=%d", rc.rule, k))
					if k == 0 {
						t.Errorf("%s: no student with an open obligation on %s (AsOf%+d)", rc.rule, d, off)
					}
					if off == 0 {
						if f := countStudents(t, db, rc.query+"\n"+reachedToday[rc.rule], d); f == 0 {
							t.Errorf("%s: no obligation that became due in the last 10 days on %s", rc.rule, d)
						}
					}
				}
				if off == 0 {
					t.Logf("%s: %s", d, strings.Join(counts, " "))
				}
			}

			// A realistic night: about 1% of the students are due a notice
			// (break-briefing, which reaches every active student before a
			// break, aside): 20,000 notices a night for 1,000,000 students,
			// the scale issue's figure.
			var union []string
			for _, rc := range ruleChecks {
				if rc.rule != "break-briefing" {
					union = append(union, rc.query)
				}
			}
			due := countStudents(t, db, strings.Join(union, "\nUNION ALL\n"), T)
			share := float64(due) / n
			t.Logf("%s: %d of %d students (%.2f%%) due a notice", asOf, due, n, 100*share)
			if share < 0.007 || share > 0.02 {
				t.Errorf("%.2f%% of the students are due a notice on %s; want about 1%%", 100*share, asOf)
			}
		})
	}
}
