package jobs_test

import (
	"strings"
	"testing"

	"github.com/iec-almaty/sisnotify/store"
)

// Every class of bad SIS data: reported as a problem that names the row
// and field (never the value), the field dropped or normalised, the rest of
// the row kept, and the sync succeeding.
func TestSyncDataProblems(t *testing.T) {
	const student = `INSERT INTO sis.students (student_id, given_name, family_name, email, phone, preferred_language, visa_regime, faculty_id, enrollment_status, passport_expires_on, entered_on, registered_on, registration_expires_on) VALUES `
	cases := []struct {
		name    string
		setup   string
		problem string // entity/row/field/code
		check   string // a query on the snapshot that must return true
	}{
		{"malformed email", student + `('S9', 'A', 'B', 'not an email', '+77011234567', 'en', 'visa', 'ENG', 'active', '2030-01-01', NULL, NULL, NULL)`,
			"student/S9/email/malformed_email", `SELECT email IS NULL AND phone = '+77011234567' FROM sisnotify.students WHERE student_id = 'S9'`},
		{"missing email", student + `('S9', 'A', 'B', NULL, '+77011234567', 'en', 'visa', 'ENG', 'active', '2030-01-01', NULL, NULL, NULL)`,
			"student/S9/email/missing", `SELECT email IS NULL FROM sisnotify.students WHERE student_id = 'S9'`},
		{"invalid phone", student + `('S9', 'A', 'B', 'a@b.example', '12345', 'en', 'visa', 'ENG', 'active', '2030-01-01', NULL, NULL, NULL)`,
			"student/S9/phone/invalid_phone", `SELECT phone IS NULL AND email = 'a@b.example' FROM sisnotify.students WHERE student_id = 'S9'`},
		{"phone not in E.164 is normalised", student + `('S9', 'A', 'B', 'a@b.example', '8 701 123 45 67', 'en', 'visa', 'ENG', 'active', '2030-01-01', NULL, NULL, NULL)`,
			"student/S9/phone/phone_not_e164", `SELECT phone = '+77011234567' FROM sisnotify.students WHERE student_id = 'S9'`},
		{"unknown language", student + `('S9', 'A', 'B', 'a@b.example', '+77011234567', 'de', 'visa', 'ENG', 'active', '2030-01-01', NULL, NULL, NULL)`,
			"student/S9/preferred_language/unknown_code", `SELECT preferred_language IS NULL FROM sisnotify.students WHERE student_id = 'S9'`},
		{"language with other case", student + `('S9', 'A', 'B', 'a@b.example', '+77011234567', 'RU ', 'visa', 'ENG', 'active', '2030-01-01', NULL, NULL, NULL)`,
			"student/S9/preferred_language/non_canonical_code", `SELECT preferred_language = 'ru' FROM sisnotify.students WHERE student_id = 'S9'`},
		{"unknown regime", student + `('S9', 'A', 'B', 'a@b.example', '+77011234567', 'en', 'tourist', 'ENG', 'active', '2030-01-01', NULL, NULL, NULL)`,
			"student/S9/visa_regime/unknown_code", `SELECT visa_regime IS NULL AND passport_expires_on = '2030-01-01' FROM sisnotify.students WHERE student_id = 'S9'`},
		{"unknown status", student + `('S9', 'A', 'B', 'a@b.example', '+77011234567', 'en', 'visa', 'ENG', 'studying', '2030-01-01', NULL, NULL, NULL)`,
			"student/S9/enrollment_status/unknown_code", `SELECT enrollment_status IS NULL FROM sisnotify.students WHERE student_id = 'S9'`},
		{"unknown travel kind", `INSERT INTO sis.travel_requests (request_id, student_id, kind, submitted_on, departure_on, dean_decision) VALUES ('T9', 'S1', 'holiday', '2026-11-01', '2026-12-01', 'pending')`,
			"travel_request/T9/kind/unknown_code", `SELECT kind IS NULL AND departure_on = '2026-12-01' FROM sisnotify.travel_requests WHERE request_id = 'T9'`},
		{"unknown dean decision", `INSERT INTO sis.travel_requests (request_id, student_id, kind, submitted_on, departure_on, dean_decision) VALUES ('T9', 'S1', 'term', '2026-11-01', '2026-12-01', 'maybe')`,
			"travel_request/T9/dean_decision/unknown_code", `SELECT dean_decision IS NULL FROM sisnotify.travel_requests WHERE request_id = 'T9'`},
		{"return before departure", `INSERT INTO sis.travel_requests (request_id, student_id, kind, submitted_on, departure_on, return_on, dean_decision) VALUES ('T9', 'S1', 'vacation', '2026-11-01', '2026-12-20', '2026-12-10', 'not_required')`,
			"travel_request/T9/return_on/impossible_date", `SELECT return_on IS NULL AND departure_on = '2026-12-20' FROM sisnotify.travel_requests WHERE request_id = 'T9'`},
		{"stay expiring before it was registered", student + `('S9', 'A', 'B', 'a@b.example', '+77011234567', 'en', 'visa', 'ENG', 'active', '2030-01-01', '2026-09-01', '2026-09-02', '2026-08-01')`,
			"student/S9/registration_expires_on/impossible_date", `SELECT registration_expires_on IS NULL AND registered_on = '2026-09-02' FROM sisnotify.students WHERE student_id = 'S9'`},
		{"a date 150 years away", student + `('S9', 'A', 'B', 'a@b.example', '+77011234567', 'en', 'visa', 'ENG', 'active', '2176-01-01', NULL, NULL, NULL)`,
			"student/S9/passport_expires_on/impossible_date", `SELECT passport_expires_on IS NULL FROM sisnotify.students WHERE student_id = 'S9'`},
		{"no faculty", student + `('S9', 'A', 'B', 'a@b.example', '+77011234567', 'en', 'visa', NULL, 'active', '2030-01-01', NULL, NULL, NULL)`,
			"student/S9/faculty_id/no_faculty", `SELECT faculty_id IS NULL FROM sisnotify.students WHERE student_id = 'S9'`},
		{"faculty that does not exist", `ALTER TABLE sis.students DROP CONSTRAINT students_faculty_id_fkey; ` + student + `('S9', 'A', 'B', 'a@b.example', '+77011234567', 'en', 'visa', 'MED', 'active', '2030-01-01', NULL, NULL, NULL)`,
			"student/S9/faculty_id/unknown_faculty", `SELECT faculty_id = 'MED' FROM sisnotify.students WHERE student_id = 'S9'`},
		{"travel request of an unknown student", `ALTER TABLE sis.travel_requests DROP CONSTRAINT travel_requests_student_id_fkey; INSERT INTO sis.travel_requests (request_id, student_id, kind, submitted_on, departure_on, dean_decision) VALUES ('T9', 'NOBODY', 'term', '2026-11-01', '2026-12-01', 'pending')`,
			"travel_request/T9/student_id/unknown_student", `SELECT true FROM sisnotify.travel_requests WHERE request_id = 'T9'`},
		{"duplicate student id", `ALTER TABLE sis.students RENAME TO students_base; CREATE VIEW sis.students AS SELECT * FROM sis.students_base UNION ALL SELECT * FROM sis.students_base WHERE student_id = 'S1'`,
			"student/S1/id/duplicate_id", `SELECT count(*) = 1 FROM sisnotify.students WHERE student_id = 'S1'`},
		{"name with a newline and HTML", student + `('S9', E'Ann\r\nBcc: x@evil.example', '<b>O''Brien</b>', 'a@b.example', '+77011234567', 'en', 'visa', 'ENG', 'active', '2030-01-01', NULL, NULL, NULL)`,
			"student/S9/given_name/control_characters", `SELECT given_name = 'Ann Bcc: x@evil.example' AND family_name = '<b>O''Brien</b>' FROM sisnotify.students WHERE student_id = 'S9'`},
		{"a very long name", student + `('S9', repeat('Ж', 5000), 'B', 'a@b.example', '+77011234567', 'en', 'visa', 'ENG', 'active', '2030-01-01', NULL, NULL, NULL)`,
			"student/S9/given_name/too_long", `SELECT char_length(given_name) = 200 FROM sisnotify.students WHERE student_id = 'S9'`},
		{"faculty without a dean email", ``,
			"faculty/LAW/dean_email/missing", `SELECT dean_email IS NULL AND dean_name = 'Dean Law' FROM sisnotify.faculties WHERE faculty_id = 'LAW'`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.exec(t, baseFixture)
			if c.setup != "" {
				e.exec(t, c.setup)
			}
			res := e.sync(t) // fails the test on error: bad data never stops the sync
			ps := e.problems(t)
			p, ok := ps[c.problem]
			if !ok {
				keys := make([]string, 0, len(ps))
				for k := range ps {
					keys = append(keys, k)
				}
				t.Fatalf("problem %s not reported; got %v", c.problem, keys)
			}
			for _, secret := range []string{"not an email", "12345", "8 701", "x@evil", "O'Brien", "ЖЖЖ"} {
				if strings.Contains(p.Message, secret) {
					t.Errorf("problem message %q quotes the field's value", p.Message)
				}
			}
			var ok2 bool
			if err := e.db.Get(&ok2, c.check); err != nil || !ok2 {
				t.Errorf("snapshot check %q = %v, %v", c.check, ok2, err)
			}
			// The good rows are all there.
			if n := res.Tables[store.EntityStudent].Read; n < 2 {
				t.Errorf("read %d students", n)
			}
			// A second sync of the same data changes nothing and keeps the problem.
			if again := e.sync(t); again.Changed() != 0 {
				t.Errorf("second sync changed %d rows", again.Changed())
			}
			if _, still := e.problems(t)[c.problem]; !still {
				t.Errorf("problem %s gone after an unchanged sync", c.problem)
			}
		})
	}
}

// A fixed row loses its problem.
func TestSyncProblemClearsWhenFixed(t *testing.T) {
	e := newEnv(t)
	e.exec(t, baseFixture)
	e.exec(t, `UPDATE sis.students SET email = 'broken' WHERE student_id = 'S1'`)
	e.sync(t)
	if _, ok := e.problems(t)["student/S1/email/malformed_email"]; !ok {
		t.Fatal("malformed email not reported")
	}
	e.exec(t, `UPDATE sis.students SET email = 'fixed@student.example' WHERE student_id = 'S1'`)
	e.sync(t)
	if _, ok := e.problems(t)["student/S1/email/malformed_email"]; ok {
		t.Fatal("problem still reported after the SIS fixed it")
	}
}
