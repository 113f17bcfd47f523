package jobs_test

import (
	"strings"
	"testing"

	"github.com/iec-almaty/sisnotify/integrations/testenv"
	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/jobs/rules"
)

// The tests of this file check docs/rules.md's "When a step is no longer news"
// and the repeat of a step after its last delivery, night after night
// through the real evaluation and PostgreSQL.

const newsFaculty = `
INSERT INTO sis.faculties VALUES ('ENG', 'Engineering', 'Dean Engineering', 'dean.eng@uni.example', 'ru');
INSERT INTO sis.academic_periods VALUES ('2026-fall', 'semester', '2026-09-01', '2026-12-24');
`

// closeReason returns the close reason of the obligation of rule for
// subject ("" while open, "none" when there is no obligation).
func (e *env) closeReason(t *testing.T, rule, subject string) string {
	t.Helper()
	var reasons []string
	if err := e.db.Select(&reasons, `SELECT coalesce(close_reason, '') FROM sisnotify.obligations WHERE rule = $1 AND subject_id = $2`, rule, subject); err != nil {
		t.Fatal(err)
	}
	switch len(reasons) {
	case 0:
		return "none"
	case 1:
		return reasons[0]
	}
	t.Fatalf("%s/%s: %d obligations", rule, subject, len(reasons))
	return ""
}

func TestMootObligationsClose(t *testing.T) {
	e := newEnv(t)
	e.exec(t, newsFaculty+`
INSERT INTO sis.students (student_id, given_name, family_name, email, phone, preferred_language, visa_regime, faculty_id, enrollment_status, planned_entry_on)
VALUES ('S1', 'A', 'B', 's1@student.example', '+77011234567', 'en', 'visa', 'ENG', 'active', NULL),
       ('A1', 'C', 'D', 'a1@student.example', '+77011234568', 'ru', 'visa', 'ENG', 'applicant', '2026-12-20');
INSERT INTO sis.travel_requests (request_id, student_id, kind, submitted_on, departure_on, return_on, dean_decision)
VALUES ('T1', 'S1', 'term', '2026-12-01', '2026-12-10', '2026-12-15', 'pending'),
       -- first seen after its departure: never opened
       ('T0', 'S1', 'term', '2026-11-01', '2026-11-20', '2026-11-25', 'pending');
`)
	e.sync(t)
	// The departure day itself is not moot: the dean's last call (level 3,
	// on the departure day) goes out.
	e.evaluate(t, "2026-12-10")
	if got := e.closeReason(t, string(rules.TravelDeanApproval), "T1"); got != "" {
		t.Fatalf("on the departure day: close reason %q, want open", got)
	}
	if got := strings.Join(e.notices(t, "2026-12-10"), "\n"); !strings.Contains(got, "travel-dean-approval L3 R0 dean/email") {
		t.Errorf("departure day notices:\n%s\nwant the dean's level 3", got)
	}
	if got := e.closeReason(t, string(rules.TravelDeanApproval), "T0"); got != "none" {
		t.Errorf("a trip already departed when first seen: %q, want no obligation", got)
	}
	// The day after: the trip has started; the obligation closes as moot and
	// sends nothing.
	res := e.evaluate(t, "2026-12-11")
	if got := e.closeReason(t, string(rules.TravelDeanApproval), "T1"); got != rules.MootDeparturePassed {
		t.Errorf("the day after the departure: close reason %q, want %q", got, rules.MootDeparturePassed)
	}
	if res.ClosedMoot < 1 || res.Notices != 0 {
		t.Errorf("the day after the departure: %+v, want a moot close and no notice", res)
	}
	// The applicant's planned entry passes on the 21st.
	e.evaluate(t, "2026-12-20")
	if got := e.closeReason(t, string(rules.VisaInvitation), "A1"); got != "" {
		t.Errorf("on the planned entry: %q, want open", got)
	}
	e.evaluate(t, "2026-12-21")
	if got := e.closeReason(t, string(rules.VisaInvitation), "A1"); got != rules.MootEntryPassed {
		t.Errorf("after the planned entry: %q, want %q", got, rules.MootEntryPassed)
	}
	// A closed obligation never reopens, even if the SIS moves the date.
	e.exec(t, `UPDATE sis.travel_requests SET departure_on = '2026-12-30' WHERE request_id = 'T1'`)
	e.sync(t)
	if res := e.evaluate(t, "2026-12-22"); res.Notices != 0 {
		t.Errorf("after the SIS moved the departure: %d notices, want 0", res.Notices)
	}
}

// TestStaleStepsGoToTheDigest checks the boundary of stale_after (7 days):
// a step 7 days old still sends its urgent emails, one 8 days old sends
// only the student's parts and is listed found late in the digests.
func TestStaleStepsGoToTheDigest(t *testing.T) {
	e := newEnv(t)
	night := date.MustParse("2026-12-17")
	// registration: due = entry + 3 d, level 3 (urgent, dean digest) at due+1d
	// = entry + 4 d. Step 7 days old: entry = night − 11; 8 days: − 12.
	e.exec(t, newsFaculty)
	e.exec(t, `
INSERT INTO sis.students (student_id, given_name, family_name, email, phone, preferred_language, visa_regime, faculty_id, enrollment_status, entered_on, office_check_in_on)
VALUES ('S7', 'A', 'B', 's7@student.example', '+77011234567', 'en', 'eaeu', 'ENG', 'active', $1, $1),
       ('S8', 'C', 'D', 's8@student.example', '+77011234568', 'ru', 'eaeu', 'ENG', 'active', $2, $2)`,
		night.AddDays(-11).String(), night.AddDays(-12).String())
	e.exec(t, `INSERT INTO sis.travel_requests (request_id, student_id, kind, submitted_on, departure_on, return_on, dean_decision)
VALUES ('T8', 'S7', 'term', $1, '2027-01-20', NULL, 'pending')`, night.AddDays(-8).String())
	e.sync(t)
	res := e.evaluate(t, night.String())
	var got []string
	if err := e.db.Select(&got, `SELECT student_id || ' ' || rule || ' L' || level || ' ' || audience || '/' || channel
		FROM sisnotify.notices ORDER BY 1`); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"S7 registration L3 office/email", // 7 days old: not stale
		"S7 registration L3 student/email",
		"S7 registration L3 student/sms",
		// T8: the dean's level 1 (submitted 8 days ago) is stale: no email
		"S8 registration L3 student/email", // 8 days old: the student still hears
		"S8 registration L3 student/sms",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("notices:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var late []struct {
		Subject   string `db:"subject_id"`
		FoundLate int    `db:"found_late"`
		On        string `db:"found_late_on"`
	}
	if err := e.db.Select(&late, `SELECT subject_id, found_late, coalesce(found_late_on::text, '') AS found_late_on
		FROM sisnotify.obligations WHERE found_late <> 0 ORDER BY 1`); err != nil {
		t.Fatal(err)
	}
	if len(late) != 2 || late[0].Subject != "S8" || late[0].FoundLate != int(rules.OfficeDigest) ||
		late[1].Subject != "T8" || late[1].FoundLate != int(rules.DeanDigest) || late[0].On != night.String() {
		t.Errorf("found late: %+v, want S8 in the office digest and T8 in the dean's, since %s", late, night)
	}
	if res.FoundLate != 2 {
		t.Errorf("evaluate counted %d found late, want 2", res.FoundLate)
	}
	// The mark stays while the obligation is open, and the rerun of the
	// night changes nothing.
	if again := e.evaluate(t, night.String()); again.Notices != 0 || again.FoundLate != 0 {
		t.Errorf("rerun: %+v", again)
	}
}

// TestRepeatAfterLastDelivery runs passport-renewal's level 3 (repeat 30d)
// night after night: first seen long after the step's date, the step is
// sent that night and then every 30 days after, never on two nights closer.
func TestRepeatAfterLastDelivery(t *testing.T) {
	e := newEnv(t)
	// Passport expires 2027-08-31: due 2027-02-28, level 3 at due+30d =
	// 2027-03-30, level 4 at anchor−30d = 2027-08-01. First night 2027-05-14:
	// (asOf − step date) = 45 days, which the old arithmetic made repeat 1
	// at once and repeat 2 fifteen days later.
	e.exec(t, newsFaculty+`
INSERT INTO sis.students (student_id, given_name, family_name, email, phone, preferred_language, visa_regime, faculty_id, enrollment_status, passport_expires_on)
VALUES ('S1', 'A', 'B', 's1@student.example', '+77011234567', 'en', 'eaeu', 'ENG', 'active', '2027-08-31');
`)
	e.sync(t)
	var sent []string
	for d := date.MustParse("2027-05-14"); d <= date.MustParse("2027-07-31"); d = d.AddDays(1) {
		e.evaluate(t, d.String())
		for _, n := range e.notices(t, d.String()) {
			sent = append(sent, d.String()+" "+n)
		}
	}
	want := []string{
		"2027-05-14 passport-renewal L3 R0 student/email",
		"2027-06-13 passport-renewal L3 R1 student/email",
		"2027-07-13 passport-renewal L3 R2 student/email",
	}
	if strings.Join(sent, "\n") != strings.Join(want, "\n") {
		t.Errorf("sent:\n%s\nwant:\n%s", strings.Join(sent, "\n"), strings.Join(want, "\n"))
	}
	// Level 4 replaces the repeat step.
	for _, d := range []string{"2027-08-01", "2027-08-02"} {
		e.evaluate(t, d)
	}
	if got := e.notices(t, "2027-08-01"); strings.Join(got, ",") != "passport-renewal L4 R0 student/email,passport-renewal L4 R0 student/sms" {
		t.Errorf("level 4: %v", got)
	}
}

// TestFortyNightsRepeatAtMostOnceIn30Days runs 40 real nights, one after
// another, over a generated SIS of 2,000 students: each repeated step
// reaches a student at most once in any 30 days, however late the student
// was first seen.
func TestFortyNightsRepeatAtMostOnceIn30Days(t *testing.T) {
	testenv.Long(t, "40 nights: not in -short")
	e := newEnv(t)
	e.generate(t, 2000)
	e.sync(t)
	first := date.MustParse("2026-12-01")
	for d := first; d < first.AddDays(40); d = d.AddDays(1) {
		e.evaluate(t, d.String())
	}
	var repeats []struct {
		Key   string `db:"k"`
		Night string `db:"night"`
	}
	// Every delivery of a repeat step, first (R0) included, per student,
	// obligation, step and channel.
	if err := e.db.Select(&repeats, `
		SELECT n.student_id || ' ' || n.obligation_id || ' L' || n.level || ' ' || n.audience || '/' || n.channel AS k, n.night::text AS night
		FROM sisnotify.notices n
		WHERE EXISTS (SELECT 1 FROM sisnotify.notices r WHERE r.obligation_id = n.obligation_id AND r.level = n.level AND r.repeat > 0)
		ORDER BY 1, 2`); err != nil {
		t.Fatal(err)
	}
	var sent int
	last := map[string]date.Date{}
	for _, r := range repeats {
		night := date.MustParse(r.Night)
		if prev, ok := last[r.Key]; ok {
			sent++
			if gap := night.Sub(prev); gap < 30 {
				t.Errorf("%s: sent on %s and again %d days later", r.Key, prev, gap)
			}
		}
		last[r.Key] = night
	}
	if sent == 0 {
		t.Fatal("no step was repeated in 40 nights: the test shows nothing")
	}
	t.Logf("40 nights over 2,000 students: %d repeats sent, none within 30 days of the previous", sent)
}
