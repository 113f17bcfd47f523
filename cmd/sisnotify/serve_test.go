package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/iec-almaty/sisnotify/integrations/mail/mailtest"
	"github.com/iec-almaty/sisnotify/integrations/sis"
	"github.com/iec-almaty/sisnotify/integrations/testenv"
	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/worker"
)

// serveEnv is a worker database, an SMTP server and the environment of a
// serve process; the SIS is filled by the caller.
type serveEnv struct {
	env    []string
	smtp   *mailtest.Server
	sisURL string
	dbURL  string
	outbox string
}

func newServeEnv(t *testing.T, schedule string) *serveEnv {
	t.Helper()
	s := testenv.New(t, "")
	db := testenv.New(t, "")
	e := &serveEnv{smtp: mailtest.NewServer(t), sisURL: s.URL, dbURL: db.URL, outbox: t.TempDir()}
	e.env = withCountedOffice(t, append(os.Environ(),
		"SISNOTIFY_SIS_URL="+s.URL, "SISNOTIFY_DB_URL="+db.URL, "SISNOTIFY_REDIS_URL="+testenv.Redis(t, redisDB),
		"SISNOTIFY_SMTP_URL="+e.smtp.URL(), "SISNOTIFY_OUTBOX_DIR="+e.outbox,
		"SISNOTIFY_OFFICE_EMAILS=office@uni.example", "SISNOTIFY_SMS_QUIET_HOURS=",
		"SISNOTIFY_SCHEDULE="+schedule, "SISNOTIFY_HTTP_ADDR=127.0.0.1:0"))
	return e
}

func (e *serveEnv) start(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(binary(t), "serve")
	cmd.Env = e.env
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd
}

// seedEntrants creates the reference SIS with n students who entered on
// night and have no phone: each is due two emails (arrival check-in and
// registration, step 1) that night.
func (e *serveEnv) seedEntrants(t *testing.T, n int, night date.Date) {
	t.Helper()
	s := testenv.Database{URL: e.sisURL}.Open(t)
	if _, err := s.Exec(sis.ReferenceSchema); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Exec(`INSERT INTO sis.faculties VALUES ('ENG', 'Engineering', 'Dean', 'dean@uni.example', 'en')`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Exec(`
		INSERT INTO sis.students (student_id, given_name, family_name, email, preferred_language, visa_regime, faculty_id, enrollment_status, entered_on)
		SELECT 'K' || lpad(i::text, 5, '0'), 'Given' || i, 'Family' || i, 'student' || i || '@student.example', 'en', 'visa', 'ENG', 'active', $1::date
		FROM generate_series(1, $2) AS i`, night.String(), n); err != nil {
		t.Fatal(err)
	}
}

// startLogged starts serve with its log (JSON lines) kept in memory.
func (e *serveEnv) startLogged(t *testing.T) (*exec.Cmd, *lockedBuffer) {
	t.Helper()
	var log lockedBuffer
	cmd := exec.Command(binary(t), "serve")
	cmd.Env, cmd.Stderr = e.env, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd, &log
}

// lockedBuffer is a bytes.Buffer a child process's output can be copied
// into while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// sentIDs returns the notice ids the log says were sent.
func (l *lockedBuffer) sentIDs(t *testing.T) []int64 {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var ids []int64
	for _, line := range strings.Split(l.b.String(), "\n") {
		var rec struct {
			Msg      string `json:"msg"`
			NoticeID int64  `json:"notice_id"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "notice sent" {
			ids = append(ids, rec.NoticeID)
		}
	}
	return ids
}

// today is the night serve runs now: the date of the last 06:00 in Almaty,
// as its catch-up computes it.
func today(t *testing.T, spec string) date.Date {
	t.Helper()
	loc, _ := time.LoadLocation("Asia/Almaty")
	last, err := (&worker.Scheduler{Spec: spec, Location: loc}).Last(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return date.FromTime(last.In(loc))
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Two replicas against one Redis and PostgreSQL, the night scheduled
// every 15 seconds for about a minute: the night runs once, and no notice
// or digest goes out twice.
func TestServeTwoReplicasRunEachNightOnce(t *testing.T) {
	testenv.Long(t, "runs two serve processes for a minute")
	const spec = "@every 15s"
	e := newServeEnv(t, spec)
	night := today(t, spec)
	env := map[string]string{"SISNOTIFY_SIS_URL": e.sisURL}
	if _, _, err := runCmd(t, env, "demo", "--sis-only", "--students", "2000", "--seed", "3", "--as-of", night.String()); err != nil {
		t.Fatal(err)
	}
	a, b := e.start(t), e.start(t)
	db := testenv.Database{URL: e.dbURL}.Open(t)
	var status string
	waitFor(t, "the night to finish", 90*time.Second, func() bool {
		_ = db.Get(&status, `SELECT status FROM sisnotify.nights WHERE night = $1`, night.String())
		return status == "ok"
	})
	time.Sleep(35 * time.Second) // two more activations on each replica
	for _, p := range []*exec.Cmd{a, b} {
		_ = p.Process.Signal(syscall.SIGTERM)
		if err := p.Wait(); err != nil {
			t.Errorf("serve exited with %v after SIGTERM, want 0", err)
		}
	}
	var nights, syncs, notices, sent, digests int
	if err := db.QueryRow(`SELECT (SELECT count(*) FROM sisnotify.nights), (SELECT count(*) FROM sisnotify.syncs),
		(SELECT count(*) FROM sisnotify.notices WHERE channel = 'email'), (SELECT count(*) FROM sisnotify.notices WHERE channel = 'email' AND status = 'sent'),
		(SELECT count(*) FROM sisnotify.digests WHERE status = 'sent')`).Scan(&nights, &syncs, &notices, &sent, &digests); err != nil {
		t.Fatal(err)
	}
	if nights != 1 || syncs != 1 {
		var failures []string
		_ = db.Select(&failures, `SELECT coalesce(error, status) FROM sisnotify.syncs WHERE status <> 'ok' ORDER BY sync_id`)
		t.Fatalf("%d nights and %d syncs recorded, want the one night once; syncs not ok: %q", nights, syncs, failures)
	}
	if notices == 0 || sent != notices {
		t.Fatalf("%d of %d email notices sent", sent, notices)
	}
	dups := e.smtp.DuplicatesByMessageID()
	figure(t, fmt.Sprintf("two replicas, 4+ starts each: 1 night, %d email notices, %d emails received (%d duplicates), %d digests", notices, e.smtp.Count(), dups, digests))
	if dups != 0 || e.smtp.Count() != notices+digests {
		t.Fatalf("received %d emails (%d duplicates) for %d notices and %d digests", e.smtp.Count(), dups, notices, digests)
	}
}

// Two replicas on one Redis and one PostgreSQL share the deliveries of a
// night: each sends part of them, together every notice once.
func TestServeTwoReplicasShareTheDeliveries(t *testing.T) {
	testenv.Long(t, "runs two serve processes over 4,000 deliveries")
	const spec = "0 6 * * *"
	e := newServeEnv(t, spec)
	night := today(t, spec)
	e.seedEntrants(t, 2000, night) // 4,000 emails
	release := e.smtp.Stall()      // no delivery ends before both replicas run
	a, logA := e.startLogged(t)
	b, logB := e.startLogged(t)
	db := testenv.Database{URL: e.dbURL}.Open(t)
	waitFor(t, "the night's notices", 60*time.Second, func() bool {
		var n int
		_ = db.Get(&n, `SELECT count(*) FROM sisnotify.notices`)
		return n == 4000
	})
	time.Sleep(2 * time.Second) // both replicas' servers are polling the queue
	release()
	waitFor(t, "every notice sent", 2*time.Minute, func() bool {
		var left int
		_ = db.Get(&left, `SELECT count(*) FROM sisnotify.notices WHERE status <> 'sent'`)
		return left == 0
	})
	for _, p := range []*exec.Cmd{a, b} {
		_ = p.Process.Signal(syscall.SIGTERM)
		if err := p.Wait(); err != nil {
			t.Errorf("serve exited with %v after SIGTERM, want 0", err)
		}
	}
	byA, byB := logA.sentIDs(t), logB.sentIDs(t)
	seen := map[int64]int{}
	for _, id := range append(append([]int64(nil), byA...), byB...) {
		seen[id]++
	}
	twice := 0
	for _, n := range seen {
		if n > 1 {
			twice++
		}
	}
	dups := e.smtp.DuplicatesByMessageID()
	figure(t, fmt.Sprintf("two replicas share one night: %d and %d of 4000 notices sent, %d sent by both, %d duplicate emails", len(byA), len(byB), twice, dups))
	if len(seen) != 4000 || twice != 0 || dups != 0 {
		t.Fatalf("replicas logged %d distinct notices sent (%d twice), SMTP saw %d duplicates; want 4000, 0, 0", len(seen), twice, dups)
	}
	if len(byA) < 400 || len(byB) < 400 {
		t.Fatalf("replica A sent %d, B %d: want each at least a tenth of the 4,000", len(byA), len(byB))
	}
}

// SIGTERM in the middle of the night's deliveries: the process exits
// within its shutdown timeout, and after a restart (which catches the
// night up) every notice is delivered once.
func TestServeSIGTERMMidDeliveries(t *testing.T) {
	testenv.Long(t, "runs serve over 2,600 deliveries")
	const spec = "0 6 * * *"
	e := newServeEnv(t, spec)
	night := today(t, spec)
	e.seedEntrants(t, 1300, night) // 2,600 emails
	release := e.smtp.Stall()      // hold deliveries until the test has SIGTERMed
	first := e.start(t)
	db := testenv.Database{URL: e.dbURL}.Open(t)
	waitFor(t, "deliveries to start", 60*time.Second, func() bool {
		var n int
		_ = db.Get(&n, `SELECT count(*) FROM sisnotify.notices WHERE status = 'sending'`)
		return n > 0
	})
	release()
	waitFor(t, "500 emails", 60*time.Second, func() bool { return e.smtp.Count() >= 500 })
	stopAt := time.Now()
	_ = first.Process.Signal(syscall.SIGTERM)
	if err := first.Wait(); err != nil {
		t.Fatalf("serve exited with %v after SIGTERM, want 0", err)
	}
	took := time.Since(stopAt)
	if took > 25*time.Second {
		t.Fatalf("serve took %s to stop, more than its 20 s shutdown timeout", took)
	}
	var inFlight, sentAtStop int
	_ = db.QueryRow(`SELECT count(*) FILTER (WHERE status = 'sending'), count(*) FILTER (WHERE status = 'sent') FROM sisnotify.notices`).Scan(&inFlight, &sentAtStop)

	e.start(t)
	waitFor(t, "every notice sent after the restart", 2*time.Minute, func() bool {
		var left int
		_ = db.Get(&left, `SELECT count(*) FROM sisnotify.notices WHERE status <> 'sent'`)
		return left == 0
	})
	var total int
	if err := db.Get(&total, `SELECT count(*) FROM sisnotify.notices`); err != nil || total != 2600 {
		t.Fatalf("%d notices (%v), want 2,600", total, err)
	}
	waitFor(t, "the office digest", time.Minute, func() bool {
		return e.smtp.Count()-e.smtp.DuplicatesByMessageID() >= total+1
	})
	dups := e.smtp.DuplicatesByMessageID()
	figure(t, fmt.Sprintf("SIGTERM after %d sent: stopped in %s with %d left sending; after the restart %d emails for %d notices and the digest, %d duplicates",
		sentAtStop, took.Round(time.Millisecond), inFlight, e.smtp.Count(), total, dups))
	if dups > 0 {
		t.Fatalf("%d duplicate emails after a graceful stop", dups)
	}
}
