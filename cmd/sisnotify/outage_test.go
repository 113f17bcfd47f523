package main

import (
	"strings"
	"testing"
	"time"

	"github.com/iec-almaty/sisnotify/integrations/testenv"
)

// Issue 13, "Getting a night out after an outage": the relay refuses every
// notice of a night with 451 (greylisting, an upstream down), then
// recovers. The night's run ends with all of them waiting for their
// retries (1, 2, 4… minutes of back-off), and its summary and the office
// digest say so, with the error. Once the relay is back, the next run of
// that night with --retry-now sends every one of them at once, each
// exactly once (counted at the SMTP server), and the history keeps both
// attempts of each notice and who re-queued them. Nothing here moves a
// clock or rewrites a Redis key or a row: the retries are asynq's own,
// moved by the command an operator would type.
func TestOutageRetryNow(t *testing.T) {
	testenv.Long(t, "runs the binary over 2,000 deliveries")
	faultParallel(t)
	url := faultRedisURL(t)
	e := newFaultEnv(t, url, "")
	const students = 1000
	const notices = 2 * students // an email for each of two rules
	e.students(1, students, faultNight, false)
	// Every notice's RCPT TO answers 451 once: with asynq's first retry a
	// minute away, each is tried exactly once tonight, and the relay is
	// back by the time the digest goes. A refused RCPT costs its
	// connection, so 2,000 refusals take some 25 s: the night waits 45.
	e.smtp.TempFail(notices)

	out, err := e.run(3*time.Minute, "run", "--once", "--as-of", faultNight, "--timeout", "45s")
	if code := faultExit(err); code != 0 && code != 3 {
		t.Fatalf("the night of the outage: exit %d, want 0 or 3 (deliveries left pending)\n%s", code, faultTail(out, 4000))
	}
	if got := e.pending(); got != notices {
		t.Fatalf("%d notices pending after the outage, want all %d\n%s", got, notices, faultTail(out, 3000))
	}
	if !strings.Contains(out, "still waiting to be sent: 2,000 notices (temporary 451 4.7.1: 2,000)") {
		t.Errorf("the run's summary does not say what is still pending and why:\n%s", faultTail(out, 3000))
	}
	digest := faultOfficeDigest(t, e.smtp)
	if !strings.Contains(digest, "2000") || !strings.Contains(digest, "451 4.7.1") || !strings.Contains(digest, "notices retry --pending") {
		t.Errorf("the office digest of the outage's night does not say that 2000 notices are waiting, and why:\n%s", digest)
	}
	var retries int
	if err := e.db.Get(&retries, `SELECT count(*) FROM sisnotify.notice_attempts
		WHERE attempt = 1 AND outcome = 'retry' AND error_class = 'temporary' AND error LIKE '%451%'`); err != nil {
		t.Fatal(err)
	}
	if retries != notices {
		t.Errorf("%d first attempts recorded as a 451 to retry, want %d", retries, notices)
	}

	// The relay is back: the operator says so.
	start := time.Now()
	out, err = e.run(2*time.Minute, "run", "--once", "--as-of", faultNight, "--retry-now", "--timeout", "60s")
	wall := time.Since(start)
	if err != nil {
		t.Fatalf("the run after the outage: %v\n%s", err, faultTail(out, 4000))
	}
	for _, l := range strings.Split(out, "\n") {
		if l != "" && !strings.HasPrefix(l, "{") {
			t.Logf("after the outage: %s", l)
		}
	}
	f := e.figures()
	f.report(t, "smtp-outage-retry-now", 0, 0, "refusals", notices, "wall", wall.Round(time.Millisecond))
	f.allSent(t, notices)
	if f.emails != notices {
		t.Errorf("the SMTP server received %d notice emails, want each of the %d exactly once", f.emails, notices)
	}
	if wall > 60*time.Second {
		t.Errorf("the run after the outage took %s, want the night out within 60 s", wall)
	}
	if !strings.Contains(out, "sending now 2000 pending notices that waited for a retry") {
		t.Errorf("--retry-now did not say what it moved:\n%s", faultTail(out, 3000))
	}
	if strings.Contains(out, "still waiting to be sent") {
		t.Errorf("the summary still reports pending notices:\n%s", faultTail(out, 3000))
	}
	var hist struct {
		Sent, Kept int
	}
	if err := e.db.Get(&hist.Sent, `SELECT count(*) FROM sisnotify.notice_attempts WHERE attempt = 2 AND outcome = 'sent'`); err != nil {
		t.Fatal(err)
	}
	if err := e.db.Get(&hist.Kept, `SELECT count(*) FROM sisnotify.notice_attempts WHERE attempt = 1 AND outcome = 'retry'`); err != nil {
		t.Fatal(err)
	}
	if hist.Sent != notices || hist.Kept != notices {
		t.Errorf("history: %d second attempts sent and %d first attempts kept, want %d of each", hist.Sent, hist.Kept, notices)
	}
	var rq struct {
		Who     string `db:"who"`
		Kind    string `db:"kind"`
		Notices int    `db:"notices"`
	}
	if err := e.db.Get(&rq, `SELECT who, kind, notices FROM sisnotify.notice_requeues`); err != nil {
		t.Fatalf("the re-queue is not recorded once: %v", err)
	}
	if rq.Who == "" || rq.Kind != "pending" || rq.Notices != notices {
		t.Errorf("re-queue recorded as %+v, want an operator, kind pending, %d notices", rq, notices)
	}
}

// The relay refused a night's notices with 451, so they wait for their
// retries in Redis; then Redis loses everything (restarted empty). Once
// the relay is back, `notices retry --pending` sends every one of them,
// each once: their tasks are queued again from PostgreSQL. (The simulated
// year found the command doing nothing here: no task to move, so it did
// not deliver, and the notices waited for the next night.)
func TestRetryPendingAfterRedisLostTheTasks(t *testing.T) {
	testenv.Long(t, "runs the binary over 200 deliveries")
	faultParallel(t)
	url := faultRedisURL(t)
	e := newFaultEnv(t, url, "")
	const notices = 200
	e.students(1, notices/2, faultNight, false)
	e.smtp.TempFail(notices)
	out, err := e.run(3*time.Minute, "run", "--once", "--as-of", faultNight, "--timeout", "5s")
	if code := faultExit(err); code != 3 {
		t.Fatalf("the night of the outage: exit %d, want 3 (deliveries left pending)\n%s", code, faultTail(out, 4000))
	}
	if got := e.pending(); got != notices {
		t.Fatalf("%d notices pending after the outage, want %d", got, notices)
	}
	if err := faultRedisClient(t, url).FlushDB(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	out, err = e.run(2*time.Minute, "notices", "retry", "--pending", "--timeout", "60s")
	if err != nil {
		t.Fatalf("notices retry --pending: %v\n%s", err, faultTail(out, 4000))
	}
	if !strings.Contains(out, "200 re-created from PostgreSQL") {
		t.Errorf("the retry does not say it queued the lost tasks again:\n%s", faultTail(out, 2000))
	}
	f := e.figures()
	f.report(t, "retry-pending-after-redis-lost", 0, 0)
	f.allSent(t, notices)
	if f.emails != notices {
		t.Errorf("the SMTP server received %d notice emails, want each of the %d once", f.emails, notices)
	}
}
