package main

import (
	"sort"
	"strings"
	"testing"

	"github.com/iec-almaty/sisnotify/integrations/sis"
	"github.com/iec-almaty/sisnotify/integrations/testenv"
)

// TestDryRunShowsMootAndStaleBoundaries runs the dry run of the night of
// 2026-12-17 over the boundary cases of docs/rules.md's "When a step is no
// longer news": a departure on the night itself is not moot, the day
// before is; a step 7 days old is not stale, one 8 days old is (its
// office-urgent email gives way to a digest line). The dry run lists
// exactly what the night sends.
func TestDryRunShowsMootAndStaleBoundaries(t *testing.T) {
	sisDB := testenv.New(t, "")
	db := testenv.New(t, "")
	if _, err := sisDB.Open(t).Exec(sis.ReferenceSchema + `
INSERT INTO sis.faculties VALUES ('ENG', 'Engineering', 'Dean Engineering', 'dean.eng@uni.example', 'en');
INSERT INTO sis.academic_periods VALUES ('2026-fall', 'semester', '2026-09-01', '2026-12-24');
INSERT INTO sis.students (student_id, given_name, family_name, email, phone, preferred_language, visa_regime, faculty_id, enrollment_status, entered_on, office_check_in_on)
VALUES ('R7', 'A', 'B', 'r7@student.example', '+77011234561', 'en', 'eaeu', 'ENG', 'active', '2026-12-06', '2026-12-06'),
       ('R8', 'A', 'B', 'r8@student.example', '+77011234562', 'en', 'eaeu', 'ENG', 'active', '2026-12-05', '2026-12-05'),
       ('T', 'A', 'B', 't@student.example', '+77011234563', 'en', 'eaeu', 'ENG', 'active', NULL, NULL);
INSERT INTO sis.travel_requests (request_id, student_id, kind, submitted_on, departure_on, return_on, dean_decision)
VALUES ('TODAY', 'T', 'term', '2026-12-15', '2026-12-17', '2026-12-20', 'pending'),
       ('PAST', 'T', 'term', '2026-12-10', '2026-12-16', '2026-12-20', 'pending'),
       -- after the semester: no term-travel-limit; the dean was asked 7 and 8 days ago
       ('ASK7', 'T', 'term', '2026-12-10', '2027-01-20', NULL, 'pending'),
       ('ASK8', 'T', 'term', '2026-12-09', '2027-01-20', NULL, 'pending');
`); err != nil {
		t.Fatal(err)
	}
	env := localEnv(t, sisDB.URL, db.URL)
	out, stderr, err := runCmd(t, env, "run", "--once", "--dry-run", "--as-of", "2026-12-17", "--format", "json")
	if err != nil {
		t.Fatalf("dry run: %v\n%s", err, stderr)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		// Keep the fields that tell the cases apart.
		var keep []string
		for _, f := range strings.Split(strings.Trim(l, "{}"), ",") {
			if strings.HasPrefix(f, `"due_on"`) || strings.HasPrefix(f, `"repeat"`) || strings.HasPrefix(f, `"student_id"`) {
				continue
			}
			keep = append(keep, strings.ReplaceAll(strings.SplitN(f, ":", 2)[1], `"`, ""))
		}
		got = append(got, strings.Join(keep, " "))
	}
	sort.Strings(got)
	want := []string{
		// R7's registration step 3 (due+1d = 10 December) is 7 days old:
		// not stale, the office hears at once.
		"registration 3 R7 dean digest",
		"registration 3 R7 office digest",
		"registration 3 R7 office email",
		"registration 3 R7 student email",
		"registration 3 R7 student sms",
		// R8's is 8 days old: stale. The student still hears; the office
		// gets a digest line (found late) instead of an urgent email.
		"registration 3 R8 dean digest",
		"registration 3 R8 office digest",
		"registration 3 R8 student email",
		"registration 3 R8 student sms",
		// A departure on the night itself: the dean's last call and the
		// student's notice go out, the office hears at once (3 days ago the
		// trip was filed: not stale).
		"term-travel-limit 1 TODAY dean email",
		"term-travel-limit 1 TODAY office digest",
		"travel-dean-approval 3 TODAY office digest",
		"travel-dean-approval 3 TODAY office email",
		"travel-dean-approval 3 TODAY student email",
		"travel-dean-approval 3 TODAY dean email",
		"travel-late-notice 1 TODAY office digest",
		"travel-late-notice 1 TODAY student email",
		// PAST departed yesterday: moot, never opened, nothing listed.
		// The dean's first request (level 1: dean email only) 7 days old
		// is sent; 8 days old, the dean's digest lists it instead.
		"travel-dean-approval 1 ASK7 dean email",
		"travel-dean-approval 1 ASK8 dean digest",
		// R7 and R8 entered within 30 days: welcomed once.
		"welcome 1 R7 student email",
		"welcome 1 R8 student email",
	}
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("dry run:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
