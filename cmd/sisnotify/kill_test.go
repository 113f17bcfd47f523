package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iec-almaty/sisnotify/integrations/mail/mailtest"
	"github.com/iec-almaty/sisnotify/integrations/sis"
	"github.com/iec-almaty/sisnotify/integrations/testenv"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// binary builds sisnotify once for the tests that run it as a process.
func binary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sisnotify-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "sisnotify")
		out, err := exec.Command("go", "build", "-race", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// The process is killed (SIGKILL) in the middle of 3,000 deliveries and
// run again at once: the rerun delivers everything in under a minute of
// its own, without anyone moving a clock or a lease, and duplicates are at
// most the deliveries that were in flight.
func TestKilledMidNightLosesNothing(t *testing.T) {
	testenv.Long(t, "runs the binary over 3,000 deliveries")
	bin := binary(t)
	sisDB := testenv.New(t, "")
	db := testenv.New(t, "")
	sdb := sisDB.Open(t)
	if _, err := sdb.Exec(sis.ReferenceSchema); err != nil {
		t.Fatal(err)
	}
	// 750 students who crossed the border today: each owes the office a
	// visit (arrival-check-in) and a registration, both at step 1 with an
	// email and an SMS: 1,500 emails and 1,500 SMS.
	if _, err := sdb.Exec(`
		INSERT INTO sis.faculties VALUES ('ENG', 'Engineering', 'Dean', 'dean@uni.example', 'en');
		INSERT INTO sis.students (student_id, given_name, family_name, email, phone, preferred_language, visa_regime, faculty_id, enrollment_status, entered_on)
		SELECT 'K' || lpad(i::text, 5, '0'), 'Given' || i, 'Family' || i, 'student' || i || '@student.example',
		       '+7701' || lpad((1000000 + i)::text, 7, '0'), 'en', 'visa', 'ENG', 'active', DATE '2026-11-25'
		FROM generate_series(1, 750) AS i`); err != nil {
		t.Fatal(err)
	}
	smtp := mailtest.NewServer(t)
	outbox := t.TempDir()
	redisURL := testenv.Redis(t, redisDB)
	env := withCountedOffice(t, append(os.Environ(),
		"SISNOTIFY_SIS_URL="+sisDB.URL, "SISNOTIFY_DB_URL="+db.URL,
		"SISNOTIFY_REDIS_URL="+redisURL, "SISNOTIFY_SMTP_URL="+smtp.URL(),
		"SISNOTIFY_OUTBOX_DIR="+outbox, "SISNOTIFY_OFFICE_EMAILS=office@uni.example", "SISNOTIFY_SMS_QUIET_HOURS="))
	night := func() *exec.Cmd {
		cmd := exec.Command(bin, "run", "--once", "--as-of", "2026-11-25")
		cmd.Env = env
		cmd.Stdout, cmd.Stderr = nil, nil
		return cmd
	}

	first := night()
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	if !smtp.WaitFor(400, 2*time.Minute) {
		first.Process.Kill()
		t.Fatalf("the first run delivered only %d emails in 2 minutes", smtp.Count())
	}
	if err := first.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	_ = first.Wait()
	w := db.Open(t)
	var inFlight, sentBefore int
	if err := w.QueryRow(`SELECT count(*) FILTER (WHERE status = 'sending'), count(*) FILTER (WHERE status = 'sent') FROM sisnotify.notices`).Scan(&inFlight, &sentBefore); err != nil {
		t.Fatal(err)
	}
	receivedBefore := smtp.Count()

	// Nothing is moved: no clock, no lease, no Redis key. The dead
	// process's claims are free because its owner lock died with it, and
	// its running tasks are queued again once asynq's leases show them
	// orphaned (30 s), without waiting for asynq's own recoverer.
	second := night()
	start := time.Now()
	out, err := second.CombinedOutput()
	took := time.Since(start)
	if err != nil {
		t.Fatalf("the second run: %v\n%s", err, out)
	}
	var total, sent, emails int
	if err := w.QueryRow(`SELECT count(*), count(*) FILTER (WHERE status = 'sent'), count(*) FILTER (WHERE channel = 'email') FROM sisnotify.notices`).Scan(&total, &sent, &emails); err != nil {
		t.Fatal(err)
	}
	if total != 3000 || sent != total {
		t.Fatalf("%d of %d notices sent, want all 3,000", sent, total)
	}
	ids := map[string]int{}
	received := 0
	for _, m := range smtp.Messages() {
		if m.Header("X-Sisnotify-Kind") != "notice" {
			continue // the digests
		}
		received++
		ids[m.MessageID()]++
	}
	smsRefs := map[string]int{}
	f, err := os.Open(filepath.Join(outbox, "sms.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	smsLines := 0
	for sc.Scan() {
		smsLines++
		i := strings.Index(sc.Text(), `"reference":"`)
		ref := sc.Text()[i+13:]
		smsRefs[ref[:strings.IndexByte(ref, '"')]]++
	}
	emailDups, smsDups := received-len(ids), smsLines-len(smsRefs)
	figure(t, fmt.Sprintf("killed after %d emails accepted (%d notices recorded sent, %d in flight); the rerun took %s; after it: %d emails for %d email notices (%d duplicates), %d SMS for %d SMS notices (%d duplicates)",
		receivedBefore, sentBefore, inFlight, took.Round(100*time.Millisecond), received, emails, emailDups, smsLines, total-emails, smsDups))
	if len(ids) != emails || len(smsRefs) != total-emails {
		t.Fatalf("lost: %d distinct emails for %d notices, %d distinct SMS for %d", len(ids), emails, len(smsRefs), total-emails)
	}
	if emailDups+smsDups > inFlight {
		t.Fatalf("%d duplicates, more than the %d deliveries in flight at the kill", emailDups+smsDups, inFlight)
	}
	if took > time.Minute {
		t.Errorf("the rerun took %s to deliver what the dead process left, want under a minute", took.Round(time.Second))
	}
}
