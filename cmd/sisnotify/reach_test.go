package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/iec-almaty/sisnotify/integrations/sis"
	"github.com/iec-almaty/sisnotify/integrations/testenv"
	"github.com/iec-almaty/sisnotify/store"
)

// The dry run lists a notice that goes by SMS because the student's
// address bounced, as the night would create it, and no email to that
// address.
func TestDryRunListsTheFallbackNotices(t *testing.T) {
	testenv.Long(t, "a night and two dry runs")
	sisDB := testenv.New(t, "")
	dbEnv := testenv.New(t, "")
	if _, err := sisDB.Open(t).Exec(sis.ReferenceSchema + `
INSERT INTO sis.faculties VALUES ('ENG', 'Engineering', 'Dean Engineering', 'dean.eng@uni.example', 'en');
INSERT INTO sis.students (student_id, given_name, family_name, email, phone, preferred_language, visa_regime, faculty_id, enrollment_status, passport_number, passport_expires_on, entered_on, office_check_in_on, registered_on, registration_expires_on)
VALUES ('S1', 'A', 'B', 's1@student.example', '+77011234561', 'en', 'eaeu', 'ENG', 'active', 'P1', '2030-01-01', '2026-09-01', '2026-09-01', '2026-09-02', '2027-01-10');
`); err != nil {
		t.Fatal(err)
	}
	env := localEnv(t, sisDB.URL, dbEnv.URL)
	// 27 November: stay-extension's first step emails the student.
	if out, errOut, err := runCmd(t, env, "run", "--once", "--as-of", "2026-11-27"); err != nil {
		t.Fatalf("run --once: %v\n%s\n%s", err, out, errOut)
	}
	db := dbEnv.Open(t)
	var id int64
	if err := db.Get(&id, `SELECT notice_id FROM sisnotify.notices WHERE audience = 'student' AND channel = 'email' AND status = 'sent'`); err != nil {
		t.Fatal(err)
	}
	if _, err := store.New(db).RecordDeliveryEvent(context.Background(), store.DeliveryEvent{Source: store.SourceIMAP, ExternalID: "<dsn@mx>",
		NoticeID: id, Outcome: store.OutcomeBounced, Reason: "5.1.1", At: time.Date(2026, 11, 28, 3, 0, 0, 0, time.UTC)}); err != nil {
		t.Fatal(err)
	}
	// 12 December: the step is email only; the student is texted instead.
	out, errOut, err := runCmd(t, env, "run", "--once", "--dry-run", "--as-of", "2026-12-12", "--format", "json")
	if err != nil {
		t.Fatalf("dry run: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, `{"rule":"stay-extension","level":3,"student_id":"S1","subject_id":"S1","audience":"student","channel":"sms",`) ||
		strings.Contains(out, `"audience":"student","channel":"email"`) {
		t.Errorf("dry run:\n%s", out)
	}
	table, _, err := runCmd(t, env, "run", "--once", "--dry-run", "--as-of", "2026-12-12")
	if err != nil || !strings.Contains(table, "student: sms; office: digest") {
		t.Errorf("dry run table (%v):\n%s", err, table)
	}
}
