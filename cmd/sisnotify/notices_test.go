package main

import (
	"strings"
	"testing"

	"github.com/iec-almaty/sisnotify/integrations/mail/mailtest"
	"github.com/iec-almaty/sisnotify/integrations/sis"
	"github.com/iec-almaty/sisnotify/integrations/testenv"
)

// A 550 is failed at once and shown by `notices --status failed`; after
// the address is fixed on the server side, `notices retry` delivers it.
func TestFailedNoticesListedAndRetried(t *testing.T) {
	sisDB := testenv.New(t, "")
	db := testenv.New(t, "")
	if _, err := sisDB.Open(t).Exec(sis.ReferenceSchema + `
		INSERT INTO sis.faculties VALUES ('ENG', 'Engineering', 'Dean', 'dean@uni.example', 'en');
		INSERT INTO sis.students (student_id, given_name, family_name, email, preferred_language, visa_regime, faculty_id, enrollment_status, entered_on)
		VALUES ('S1', 'Ann', 'Lee', 'ann@student.example', 'en', 'visa', 'ENG', 'active', '2026-11-25'),
		       ('S2', 'Bob', 'Kim', 'bob@student.example', 'en', 'visa', 'ENG', 'active', '2026-11-25')`); err != nil {
		t.Fatal(err)
	}
	smtp := mailtest.NewServer(t)
	smtp.Reject("bob@student.example")
	env := map[string]string{
		"SISNOTIFY_SIS_URL": sisDB.URL, "SISNOTIFY_DB_URL": db.URL, "SISNOTIFY_REDIS_URL": testenv.Redis(t, redisDB),
		"SISNOTIFY_SMTP_URL": smtp.URL(), "SISNOTIFY_OUTBOX_DIR": t.TempDir(), "SISNOTIFY_OFFICE_EMAILS": "office@uni.example",
	}
	out, _, err := runCmd(t, env, "run", "--once", "--as-of", "2026-11-25")
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out)
	}
	if !strings.Contains(out, "failed (see `sisnotify notices --status failed`)") {
		t.Errorf("the night's summary does not point at the failures:\n%s", out)
	}
	list, _, err := runCmd(t, env, "notices", "--status", "failed")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(list), "\n")
	if len(lines) != 4 || !strings.Contains(list, "S2") || strings.Contains(list, "S1") || !strings.Contains(list, "permanent") {
		t.Fatalf("notices --status failed:\n%s\nwant a header and S2's three emails (arrival, registration, welcome), permanent", list)
	}
	if strings.Contains(list, "bob@") {
		t.Errorf("the log shows the address:\n%s", list)
	}
	if smtp.Count() != 4 { // S1's three emails and the office digest
		t.Fatalf("SMTP accepted %d, want 4", smtp.Count())
	}

	// The mailbox is fixed: a new server that accepts it.
	fixed := mailtest.NewServer(t)
	env["SISNOTIFY_SMTP_URL"] = fixed.URL()
	out, _, err = runCmd(t, env, "notices", "retry", "--student", "S2")
	if err != nil {
		t.Fatalf("retry: %v\n%s", err, out)
	}
	if !strings.Contains(out, "re-queued 3 failed notices") || fixed.Count() != 3 {
		t.Fatalf("retry printed:\n%s\nand the fixed server got %d messages, want 3", out, fixed.Count())
	}
	if left, _, _ := runCmd(t, env, "notices", "--status", "failed"); !strings.Contains(left, "no notices match") {
		t.Errorf("failed notices after the retry:\n%s", left)
	}
}
