package main

// The fault suite (issue "Hardening", item 1). Each test breaks one service
// a night depends on, in the middle of a night, against the real thing
// (the built binary, PostgreSQL, redis-server, an SMTP server on loopback),
// then checks the guarantees of docs/reliability.md: nothing lost, and nothing sent twice
// but for the deliveries in flight at a crash. Each prints one line,
//
//	scenario=<name> notices=N delivered=N lost=N duplicated=N in_flight=N ...
//
// where notices are the outbox rows, delivered those the SMTP server or the
// SMS outbox received at least once, lost those that should have gone out
// and never did, duplicated the extra copies received, and in_flight the
// notices left "sending" by the fault (the only ones the design allows to
// go twice).
//
// Not here: two replicas and two schedulers sharing one Redis and one
// PostgreSQL, and SIGTERM mid-deliveries, are serve_test.go's
// TestServeTwoReplicasRunEachNightOnce and TestServeSIGTERMMidDeliveries.
//
// Redis: every test that can runs its own redis-server (as
// worker/http_test.go's startRedisProcess does), on a free port, with this
// package's database number 3. The shared Redis on 6379 is used only when
// redis-server is not installed. A private server keeps these tests from
// meeting the tasks of another test process that uses database 3 of the
// shared server at the same time: a worker of that process would take our
// tasks (their payload is a notice id of *our* database) and the night
// would wait out its --timeout.
//
// Every wait is bounded: a process that does not end in time is killed
// and the test fails saying it hung.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	netmail "net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
	"github.com/hibiken/asynq"
	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"

	"github.com/iec-almaty/sisnotify/integrations/mail"
	"github.com/iec-almaty/sisnotify/integrations/mail/mailtest"
	"github.com/iec-almaty/sisnotify/integrations/sis"
	"github.com/iec-almaty/sisnotify/integrations/testenv"
	"github.com/iec-almaty/sisnotify/internal/workerdb"
	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/worker"
)

// faultNight is the night every scenario runs (faultNextNight the one
// after, for the SIS scenarios).
const (
	faultNight     = "2026-11-25"
	faultNextNight = "2026-11-26"
)

// --- Redis -----------------------------------------------------------------

// faultRedisURL is database 3 of a private redis-server, or of the shared
// one (flushed, as testenv does) when redis-server is not installed.
func faultRedisURL(t *testing.T) string {
	t.Helper()
	if !testenv.HaveRedisServer() {
		return testenv.Redis(t, redisDB)
	}
	return testenv.StartRedis(t).URL(redisDB)
}

// faultParallel lets a test run beside the other fault tests when every
// one of them has a private Redis (and so nothing shared but PostgreSQL,
// where each has databases of its own): most of their time is waiting
// out a --timeout. On the shared Redis they run one at a time.
func faultParallel(t *testing.T) {
	if testenv.HaveRedisServer() {
		t.Parallel()
	}
}

func faultRedisClient(t *testing.T, url string) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c
}

// --- the night's environment -------------------------------------------------

// faultEnv is a SIS, the worker's database, Redis, an SMTP server and an
// outbox folder for SMS: the environment of the binary.
type faultEnv struct {
	t      *testing.T
	sis    testenv.Database
	sisDB  *sqlx.DB
	dbURL  string
	db     *sqlx.DB
	redis  string
	smtp   *mailtest.Server
	outbox string
	extra  []string
}

// newFaultEnv makes an SIS with the reference schema and one faculty, on
// the shared PostgreSQL; the worker's database is dbURL (empty: a new one
// on the shared PostgreSQL).
func newFaultEnv(t *testing.T, redisURL, dbURL string) *faultEnv {
	t.Helper()
	if dbURL == "" {
		dbURL = testenv.New(t, "").URL
	}
	e := &faultEnv{t: t, sis: testenv.New(t, ""), dbURL: dbURL, redis: redisURL, smtp: mailtest.NewServer(t), outbox: t.TempDir()}
	e.sisDB = faultOpen(t, e.sis.URL)
	e.db = faultOpen(t, dbURL)
	if _, err := e.sisDB.Exec(sis.ReferenceSchema + `
		INSERT INTO sis.faculties VALUES ('ENG', 'Engineering', 'Dean', 'dean@uni.example', 'en')`); err != nil {
		t.Fatal(err)
	}
	return e
}

func faultOpen(t *testing.T, url string) *sqlx.DB {
	t.Helper()
	db, err := workerdb.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// students adds n students, numbered from first, who crossed the border
// on entered: each owes the office a visit (arrival-check-in) and a
// registration, both at step 1 with an email (and an SMS when withPhone):
// 2 or 4 notices a student.
func (e *faultEnv) students(first, n int, entered string, withPhone bool) {
	e.t.Helper()
	phone := "NULL"
	if withPhone {
		phone = `'+7701' || lpad((1000000 + i)::text, 7, '0')`
	}
	if _, err := e.sisDB.Exec(`
		INSERT INTO sis.students (student_id, given_name, family_name, email, phone, preferred_language, visa_regime, faculty_id, enrollment_status, entered_on)
		SELECT 'K' || lpad(i::text, 5, '0'), 'Given' || i, 'Family' || i, 'student' || i || '@student.example', `+phone+`,
		       'en', 'visa', 'ENG', 'active', $3::date
		FROM generate_series($1::int, $2::int) AS i`, first, first+n-1, entered); err != nil {
		e.t.Fatal(err)
	}
}

func (e *faultEnv) environ() []string {
	return append(withCountedOffice(e.t, append(os.Environ(),
		"SISNOTIFY_SIS_URL="+e.sis.URL, "SISNOTIFY_DB_URL="+e.dbURL, "SISNOTIFY_REDIS_URL="+e.redis,
		"SISNOTIFY_SMTP_URL="+e.smtp.URL(), "SISNOTIFY_OUTBOX_DIR="+e.outbox, "SISNOTIFY_SMS_PROVIDER=outbox",
		"SISNOTIFY_OFFICE_EMAILS=office@uni.example", "SISNOTIFY_OPS_EMAILS=ops@uni.example", "SISNOTIFY_SMS_QUIET_HOURS=")),
		e.extra...)
}

// faultProc is a running sisnotify process.
type faultProc struct {
	name string
	*testenv.Process
}

// start runs the binary with args in the background; it is killed at the
// end of the test if still running.
func (e *faultEnv) start(args ...string) *faultProc {
	e.t.Helper()
	return &faultProc{name: strings.Join(args, " "), Process: testenv.StartProcess(e.t, binary(e.t), e.environ(), args...)}
}

// run runs the binary to its end, limit at most.
func (e *faultEnv) run(limit time.Duration, args ...string) (string, error) {
	e.t.Helper()
	p := e.start(args...)
	err := p.wait(e.t, limit)
	return p.output(), err
}

// wait waits for the process to end; after limit it is killed and the test
// fails: it hung.
func (p *faultProc) wait(t *testing.T, limit time.Duration) error {
	t.Helper()
	select {
	case <-p.Done():
		return p.Err()
	case <-time.After(limit):
	}
	p.Kill()
	t.Fatalf("sisnotify %s still ran after %s: it hangs\n%s", p.name, limit, faultTail(p.Output(), 4000))
	return nil
}

// kill SIGKILLs the process.
func (p *faultProc) kill() { p.Kill() }

// output is what the process printed; call it once the process ended.
func (p *faultProc) output() string {
	select {
	case <-p.Done():
		return p.Output()
	default:
		return ""
	}
}

func faultExit(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

func faultTail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// --- counting ----------------------------------------------------------------

// faultFigures are what a scenario prints and checks.
type faultFigures struct {
	notices    int // outbox rows
	delivered  int // received at least once (SMTP server or SMS outbox)
	lost       int // not received, and not failed for good
	duplicated int // copies received beyond the first
	sent       int // rows recorded sent
	failed     int // rows recorded failed
	emails     int // notice emails received
	sms        int // SMS lines written
}

// figures matches the outbox rows against what the SMTP server (by
// Message-ID, derived from the notice key) and the SMS outbox (by
// reference, the notice id) received.
func (e *faultEnv) figures() faultFigures {
	e.t.Helper()
	var rows []struct {
		ID      int64  `db:"notice_id"`
		Key     string `db:"notice_key"`
		Channel string `db:"channel"`
		Status  string `db:"status"`
	}
	if err := e.db.Select(&rows, `SELECT notice_id, notice_key, channel, status FROM sisnotify.notices`); err != nil {
		e.t.Fatal(err)
	}
	emails := map[string]int{}
	var f faultFigures
	for _, m := range e.smtp.Messages() {
		if m.Header("X-Sisnotify-Kind") == "notice" {
			emails[m.MessageID()]++
			f.emails++
		}
	}
	texts := map[string]int{}
	if fh, err := os.Open(filepath.Join(e.outbox, "sms.jsonl")); err == nil {
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var line struct {
				Reference string `json:"reference"`
			}
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				e.t.Fatalf("sms.jsonl: %v", err)
			}
			texts[line.Reference]++
			f.sms++
		}
		fh.Close()
		if err := sc.Err(); err != nil {
			e.t.Fatal(err)
		}
	} else if !os.IsNotExist(err) {
		e.t.Fatal(err)
	}
	f.notices = len(rows)
	for _, r := range rows {
		var got int
		switch r.Channel {
		case "email":
			got = emails[strings.Trim(jobs.MessageID(r.Key), "<>")]
		case "sms":
			got = texts[strconv.FormatInt(r.ID, 10)]
		}
		switch {
		case got > 0:
			f.delivered++
			f.duplicated += got - 1
		case r.Status != "failed":
			f.lost++
		}
		switch r.Status {
		case "sent":
			f.sent++
		case "failed":
			f.failed++
		}
	}
	return f
}

// report prints the scenario's line and checks lost == 0 and duplicated <=
// maxDup.
func (f faultFigures) report(t *testing.T, scenario string, inFlight, maxDup int, extra ...any) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "scenario=%s notices=%d delivered=%d lost=%d duplicated=%d in_flight=%d", scenario, f.notices, f.delivered, f.lost, f.duplicated, inFlight)
	for i := 0; i+1 < len(extra); i += 2 {
		fmt.Fprintf(&b, " %v=%v", extra[i], extra[i+1])
	}
	figure(t, b.String())
	if f.lost != 0 {
		t.Errorf("%d notices lost", f.lost)
	}
	if f.duplicated > maxDup {
		t.Errorf("%d duplicates, want at most %d", f.duplicated, maxDup)
	}
}

// inFlight counts the notices a fault left claimed ("sending").
func (e *faultEnv) inFlight() int {
	e.t.Helper()
	var n int
	if err := e.db.Get(&n, `SELECT count(*) FROM sisnotify.notices WHERE status = 'sending'`); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// pending counts the notices waiting to be sent.
func (e *faultEnv) pending() int {
	e.t.Helper()
	var n int
	if err := e.db.Get(&n, `SELECT count(*) FROM sisnotify.notices WHERE status = 'pending'`); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// faultLogFirst logs how the run that met the fault ended: failing is
// allowed, hanging is not (wait saw to that).
func faultLogFirst(t *testing.T, p *faultProc, err error) {
	t.Helper()
	if err == nil {
		t.Logf("the first run ended by itself, exit 0")
		return
	}
	last := ""
	for _, l := range strings.Split(strings.TrimSpace(p.output()), "\n") {
		if strings.HasPrefix(l, "sisnotify: ") {
			last = l
		}
	}
	t.Logf("the first run failed (allowed): %v: %s", err, last)
}

// allSent fails the test unless there are want notices (0: any number),
// every one of them sent.
func (f faultFigures) allSent(t *testing.T, want int) {
	t.Helper()
	if (want > 0 && f.notices != want) || f.sent != f.notices || f.notices == 0 {
		t.Fatalf("%d of %d notices sent, want all %d", f.sent, f.notices, want)
	}
}

// --- 1. Redis flushed in the middle of a night -------------------------------

// Redis loses every task (FLUSHDB) while a night of 2,200 deliveries is
// going: the run ends at its --timeout with the rest pending in
// PostgreSQL, and the next run re-creates their tasks and delivers them:
// nothing lost, nothing twice.
func TestFaultRedisFlushedMidNight(t *testing.T) {
	testenv.Long(t, "runs the binary over 2,200 deliveries")
	faultParallel(t)
	url := faultRedisURL(t)
	e := newFaultEnv(t, url, "")
	e.students(1, 550, faultNight, true) // 2,200 notices

	first := e.start("run", "--once", "--as-of", faultNight, "--timeout", "30s")
	if !e.smtp.WaitFor(300, 2*time.Minute) {
		first.kill()
		t.Fatalf("the first run delivered only %d emails in 2 minutes\n%s", e.smtp.Count(), faultTail(first.output(), 4000))
	}
	// FLUSHDB of database 3, this package's own: never FLUSHALL, which on
	// the shared server would also empty the databases of the other test
	// packages (README, Tests).
	if err := faultRedisClient(t, url).FlushDB(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	atFlush := e.smtp.Count()
	err := first.wait(t, 90*time.Second) // its --timeout, the worker's shutdown, the digest
	inFlight, pending := e.inFlight(), e.pending()
	faultLogFirst(t, first, err)
	if pending == 0 {
		t.Fatal("every notice was delivered before the flush: the scenario did not happen")
	}

	if out, err := e.run(2*time.Minute, "run", "--once", "--as-of", faultNight, "--timeout", "90s"); err != nil {
		t.Fatalf("the second run: %v\n%s", err, faultTail(out, 4000))
	}
	f := e.figures()
	f.report(t, "redis-flushdb", inFlight, 0, "emails_at_flush", atFlush, "pending_after_first_run", pending, "first_exit", faultExit(err))
	f.allSent(t, 2200)
}

// --- 2. Redis restarted in the middle of a night -----------------------------

// The Redis server dies (SIGKILL, no persistence) in the middle of the
// deliveries and comes back empty on the same port: the running night
// ends by its --timeout instead of hanging (failing is allowed), and the
// next run delivers the rest.
func TestFaultRedisRestartedMidNight(t *testing.T) {
	testenv.Long(t, "runs the binary over 2,200 deliveries")
	faultParallel(t)
	rs := testenv.StartRedis(t)
	e := newFaultEnv(t, rs.URL(redisDB), "")
	e.students(1, 550, faultNight, true)

	first := e.start("run", "--once", "--as-of", faultNight, "--timeout", "30s")
	if !e.smtp.WaitFor(300, 2*time.Minute) {
		first.kill()
		t.Fatalf("the first run delivered only %d emails in 2 minutes\n%s", e.smtp.Count(), faultTail(first.output(), 4000))
	}
	rs.Kill()
	atKill := e.smtp.Count()
	time.Sleep(2 * time.Second) // the worker meets a dead Redis for a while
	rs.Start()
	began := time.Now()
	err := first.wait(t, 2*time.Minute)
	ended := time.Since(began).Round(time.Second)
	faultLogFirst(t, first, err)
	inFlight, pending := e.inFlight(), e.pending()
	if pending == 0 {
		t.Fatal("every notice was delivered before Redis died: the scenario did not happen")
	}

	// The operator knows Redis is back: the rerun sends what waits for a
	// retry now (--retry-now); nothing else is moved.
	if out, err := e.run(2*time.Minute, "run", "--once", "--retry-now", "--as-of", faultNight, "--timeout", "90s"); err != nil {
		t.Fatalf("the second run: %v\n%s", err, faultTail(out, 4000))
	}
	f := e.figures()
	f.report(t, "redis-restart", inFlight, inFlight, "emails_at_kill", atKill, "pending_after_first_run", pending, "first_exit", faultExit(err), "first_ended_after_restart", ended)
	f.allSent(t, 2200)
}

// --- 3. SMTP 4xx for a while; 5xx -------------------------------------------

// The SMTP server answers 451 to three times as many RCPT TO as there are
// notices, then accepts: every notice is delivered once, after about three
// retries each.
//
// Retries are 1, 2, 4… minutes apart in production. Rather than wait, or
// change the binary's retry policy, the test moves time for asynq: every
// few hundred milliseconds it makes the tasks waiting in the retry set due
// now, which is what the minutes would do. Everything else (the handler,
// the 4xx classification, the retry count, PostgreSQL's record of each
// attempt) runs as in production, in one run of the binary.
func TestFaultSMTPTemporaryFailures(t *testing.T) {
	testenv.Long(t, "SMTP greylisting over a night")
	faultParallel(t)
	url := faultRedisURL(t)
	e := newFaultEnv(t, url, "")
	const students = 100
	e.students(1, students, faultNight, false) // 200 emails
	const refusals = 3 * 2 * students
	e.smtp.TempFail(refusals)

	// An operator who knows the relay is back sends what waits for a
	// retry now, again and again (notices retry --pending), instead of the
	// test sleeping through minutes of back-off.
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-stop:
				return
			case <-time.After(300 * time.Millisecond):
			}
			// The main run's worker delivers: this one only moves the
			// waiting tasks and leaves at once (exit 3, pending left).
			_, _ = e.run(30*time.Second, "notices", "retry", "--pending", "--timeout", "1ms")
		}
	}()
	out, err := e.run(3*time.Minute, "run", "--once", "--as-of", faultNight, "--timeout", "2m")
	close(stop)
	<-stopped
	if err != nil {
		t.Fatalf("run: %v\n%s", err, faultTail(out, 4000))
	}
	f := e.figures()
	var attempts, maxAttempts int
	if err := e.db.QueryRow(`SELECT sum(attempts), max(attempts) FROM sisnotify.notices`).Scan(&attempts, &maxAttempts); err != nil {
		t.Fatal(err)
	}
	f.report(t, "smtp-4xx", 0, 0, "refusals", refusals, "attempts", attempts, "max_attempts", maxAttempts, "retry_delay", "notices retry --pending")
	f.allSent(t, 2*students)
	if attempts != f.notices+refusals {
		t.Errorf("%d attempts recorded for %d notices and %d refusals, want one attempt per refusal and one to deliver", attempts, f.notices, refusals)
	}
	if maxAttempts < 3 || maxAttempts > worker.MaxRetry {
		t.Errorf("at most %d attempts for a notice; want several retries, fewer than the %d allowed", maxAttempts, worker.MaxRetry+1)
	}
}

// A mailbox the server rejects (550): its notices are failed at the first
// attempt, never retried, and listed, by notice id, in the office digest.
func TestFaultSMTPRejectedAddress(t *testing.T) {
	testenv.Long(t, "a night with rejected addresses")
	faultParallel(t)
	url := faultRedisURL(t)
	e := newFaultEnv(t, url, "")
	e.students(1, 20, faultNight, false) // 40 emails
	e.smtp.Reject("student7@student.example")

	if out, err := e.run(2*time.Minute, "run", "--once", "--as-of", faultNight, "--timeout", "1m"); err != nil {
		t.Fatalf("run: %v\n%s", err, faultTail(out, 4000))
	}
	// The night runs again, sending what waits for a retry now: a failed
	// notice is not retried.
	if out, err := e.run(2*time.Minute, "run", "--once", "--retry-now", "--as-of", faultNight, "--timeout", "1m"); err != nil {
		t.Fatalf("rerun: %v\n%s", err, faultTail(out, 4000))
	}
	var failed []struct {
		ID       int64  `db:"notice_id"`
		Attempts int    `db:"attempts"`
		Class    string `db:"error_class"`
		Key      string `db:"notice_key"`
	}
	if err := e.db.Select(&failed, `SELECT notice_id, attempts, coalesce(error_class, '') AS error_class, notice_key
		FROM sisnotify.notices WHERE status = 'failed' ORDER BY notice_id`); err != nil {
		t.Fatal(err)
	}
	rdb := faultRedisClient(t, url)
	archived := 0
	for _, n := range failed {
		if n.Attempts != 1 || n.Class != "permanent" {
			t.Errorf("failed notice %d: %d attempts, class %q; want 1 attempt, permanent", n.ID, n.Attempts, n.Class)
		}
		if rdb.ZScore(context.Background(), "asynq:{"+worker.QueueNotices+"}:retry", n.Key).Err() == nil {
			t.Errorf("failed notice %d waits for a retry in Redis", n.ID)
		}
		if rdb.ZScore(context.Background(), "asynq:{"+worker.QueueNotices+"}:archived", n.Key).Err() == nil {
			archived++
		}
	}
	digest := faultOfficeDigest(t, e.smtp)
	listed := 0
	for _, n := range failed {
		if strings.Contains(digest, "("+strconv.FormatInt(n.ID, 10)+")") {
			listed++
		}
	}
	f := e.figures()
	f.report(t, "smtp-5xx", 0, 0, "failed", len(failed), "attempts_each", 1, "archived_in_redis", archived, "listed_in_digest", listed)
	if len(failed) != 2 || f.failed != 2 || f.sent != f.notices-2 || f.notices != 40 {
		t.Fatalf("%d failed, %d sent of %d notices; want the rejected student's 2 failed, the other 38 sent", f.failed, f.sent, f.notices)
	}
	if listed != len(failed) || !strings.Contains(digest, "K00007") {
		t.Errorf("the office digest lists %d of the %d failed notices by id:\n%s", listed, len(failed), digest)
	}
}

// The SMTP server hangs up connections left idle past its timeout, saying
// so first ("421 4.4.2 Idle timeout", as go-smtp, Postfix and Exim do),
// which happens to the pool's connections between two bursts of a night
// (a --timeout wait, a retry delay) and between nights under serve. The
// first send on such a connection gets that 421 in answer to MAIL FROM:
// nothing of the message was accepted, so the pool must dial again and
// send, not fail the notice (or the night's digest) with a temporary
// error. Here lost counts the sends that failed so: the notice layer would
// retry such a notice a minute later, but `run --once` failed its night
// when the digest met one (seen in TestFaultRedisFlushedMidNight, whose
// first run idles through its --timeout; fixed in integrations/mail's
// stale). The server is go-smtp's own with a 2-second idle timeout, the
// pool the binary's (integrations/mail) with its 8 connections,
// in-process.
func TestFaultSMTPIdleTimeout(t *testing.T) {
	b := &faultSMTPBackend{ids: map[string]int{}}
	srv := gosmtp.NewServer(b)
	srv.Domain = "idle.local"
	srv.ReadTimeout = 2 * time.Second // generous: a slow client must not meet it within a send
	srv.ErrorLog = log.New(io.Discard, "", 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	cfg, err := mail.ParseURL(fmt.Sprintf("smtp://%s?tls=none", ln.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	const conns = smtpConnections
	cfg.Connections = conns
	sender, err := mail.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sender.Close()

	failures := 0
	burst := func(round int) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		for i := range conns {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				_, _, err := sender.Send(ctx, mail.Message{To: "student@student.example", Subject: "notice", Text: "text",
					MessageID: fmt.Sprintf("<fault.%d.%d@sisnotify>", round, i)})
				if err != nil {
					mu.Lock()
					failures++
					mu.Unlock()
					t.Errorf("round %d, send %d: %v", round, i, err)
				}
			})
		}
		wg.Wait()
	}
	burst(1)
	time.Sleep(3 * time.Second) // past the server's idle timeout: it says 421 and hangs up
	burst(2)

	b.mu.Lock()
	delivered, dups := len(b.ids), b.count-len(b.ids)
	b.mu.Unlock()
	f := faultFigures{notices: 2 * conns, delivered: delivered, lost: 2*conns - delivered, duplicated: dups}
	f.report(t, "smtp-idle-timeout", 0, 0, "failed_sends", failures, "connections", b.sessions())
}

// faultSMTPBackend accepts every message and counts them by Message-ID.
type faultSMTPBackend struct {
	mu    sync.Mutex
	ids   map[string]int
	count int
	conns int
}

func (b *faultSMTPBackend) NewSession(*gosmtp.Conn) (gosmtp.Session, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.conns++
	return faultSMTPSession{b}, nil
}

func (b *faultSMTPBackend) sessions() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.conns
}

type faultSMTPSession struct{ b *faultSMTPBackend }

func (faultSMTPSession) Mail(string, *gosmtp.MailOptions) error { return nil }
func (faultSMTPSession) Rcpt(string, *gosmtp.RcptOptions) error { return nil }
func (faultSMTPSession) Reset()                                 {}
func (faultSMTPSession) Logout() error                          { return nil }
func (s faultSMTPSession) Data(r io.Reader) error {
	m, err := netmail.ReadMessage(r)
	if err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, m.Body); err != nil {
		return err
	}
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.b.ids[m.Header.Get("Message-ID")]++
	s.b.count++
	return nil
}

// faultOfficeDigest is the text of the office digest the SMTP server got.
func faultOfficeDigest(t *testing.T, srv *mailtest.Server) string {
	t.Helper()
	var found []string
	for _, m := range srv.Messages() {
		if m.Header("X-Sisnotify-Kind") == "digest" && len(m.To) == 1 && m.To[0] == "office@uni.example" {
			found = append(found, m.Text())
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d office digests received, want 1", len(found))
	}
	return found[0]
}

// --- 4. The SIS unreachable, or failing mid-stream --------------------------

// faultGoodNight runs a good first night on 40 students (160 notices) and
// 20 travel requests, then adds 10 students who entered on the next night,
// so that the next night has notices of its own to create.
func faultGoodNight(t *testing.T, e *faultEnv) {
	t.Helper()
	e.students(1, 40, faultNight, true)
	if _, err := e.sisDB.Exec(`
		INSERT INTO sis.travel_requests (request_id, student_id, kind, submitted_on, departure_on, return_on, dean_decision)
		SELECT 'T' || lpad(i::text, 5, '0'), 'K' || lpad(i::text, 5, '0'), 'vacation', DATE '2026-11-01', DATE '2026-12-28', DATE '2027-01-10', 'not_required'
		FROM generate_series(1, 20) AS i`); err != nil {
		t.Fatal(err)
	}
	if out, err := e.run(2*time.Minute, "run", "--once", "--as-of", faultNight, "--timeout", "1m"); err != nil {
		t.Fatalf("the good night: %v\n%s", err, faultTail(out, 4000))
	}
	e.students(41, 10, faultNextNight, true)
	// …and a changed row, which must not reach the snapshot either.
	if _, err := e.sisDB.Exec(`UPDATE sis.students SET email = 'changed@student.example', updated_at = now() WHERE student_id = 'K00001'`); err != nil {
		t.Fatal(err)
	}
}

// faultState fingerprints the worker's snapshot and outbox: every table
// but the logs (syncs, nights, alerts).
func faultState(t *testing.T, db *sqlx.DB) string {
	t.Helper()
	var parts []string
	for _, table := range []string{"faculties", "students", "travel_requests", "academic_periods", "data_problems",
		"obligations", "obligation_steps", "notices", "digests", "digest_rows"} {
		var sum string
		if err := db.Get(&sum, `SELECT count(*) || ':' || md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM sisnotify.`+table+` x`); err != nil {
			t.Fatal(err)
		}
		parts = append(parts, table+"="+sum)
	}
	return strings.Join(parts, " ")
}

// faultFailedNight runs the next night against a broken SIS and checks
// that it fails loudly and changes nothing: exit status 1, nothing sent,
// no notice created, the snapshot and obligations as they were, the
// failure on record.
func faultFailedNight(t *testing.T, e *faultEnv) (exit int, out string) {
	t.Helper()
	before, mails, f := faultState(t, e.db), e.smtp.Count(), e.figures()
	out, err := e.run(time.Minute, "run", "--once", "--as-of", faultNextNight, "--timeout", "30s")
	exit = faultExit(err)
	if exit != 1 {
		t.Fatalf("the night with a broken SIS exited %d (%v), want 1\n%s", exit, err, faultTail(out, 4000))
	}
	if after := faultState(t, e.db); after != before {
		t.Errorf("the failed night changed the worker's state:\nbefore %s\nafter  %s", before, after)
	}
	if g := e.figures(); e.smtp.Count() != mails || g.sms != f.sms {
		t.Errorf("the failed night sent %d emails and %d SMS", e.smtp.Count()-mails, g.sms-f.sms)
	}
	var created, failedSyncs int
	if err := e.db.QueryRow(`SELECT (SELECT count(*) FROM sisnotify.notices WHERE night = $1),
		(SELECT count(*) FROM sisnotify.syncs WHERE as_of = $1 AND status = 'failed')`, faultNextNight).Scan(&created, &failedSyncs); err != nil {
		t.Fatal(err)
	}
	if created != 0 || failedSyncs != 1 {
		t.Errorf("the failed night: %d notices created, %d failed syncs recorded; want 0 and 1", created, failedSyncs)
	}
	return exit, out
}

// The SIS does not answer (its URL points at a closed port): the night
// fails, sends nothing and keeps the previous snapshot; once the SIS is
// back the night runs and delivers.
func TestFaultSISUnreachable(t *testing.T) {
	testenv.Long(t, "nights with the SIS unreachable")
	faultParallel(t)
	url := faultRedisURL(t)
	e := newFaultEnv(t, url, "")
	faultGoodNight(t, e)

	e.extra = []string{fmt.Sprintf("SISNOTIFY_SIS_URL=postgres://sis_reader@127.0.0.1:%d/sis?sslmode=disable&connect_timeout=5", testenv.FreePort(t))}
	exit, out := faultFailedNight(t, e)
	if !strings.Contains(out, "connect") && !strings.Contains(out, "refused") {
		t.Errorf("the failure does not say the SIS could not be reached:\n%s", faultTail(out, 2000))
	}

	e.extra = nil
	if out, err := e.run(2*time.Minute, "run", "--once", "--as-of", faultNextNight, "--timeout", "1m"); err != nil {
		t.Fatalf("the night once the SIS is back: %v\n%s", err, faultTail(out, 4000))
	}
	f := e.figures()
	var next int
	if err := e.db.Get(&next, `SELECT count(*) FROM sisnotify.notices WHERE night = $1`, faultNextNight); err != nil {
		t.Fatal(err)
	}
	f.report(t, "sis-unreachable", 0, 0, "exit", exit, "snapshot_kept", !t.Failed(), "next_night_notices", next)
	f.allSent(t, 0)
	if next < 40 {
		t.Errorf("the next night created %d notices once the SIS was back, want at least the 10 new students' 40", next)
	}
}

// The SIS's travel_requests is a view that raises an error after 5 rows,
// after the students have been read in full: the night fails (exit 1),
// creates and sends nothing, and keeps the previous snapshot. Under serve
// the same night is marked failed after its retries and the operators
// are mailed once. When the view is fixed the night runs and delivers.
func TestFaultSISFailsMidStream(t *testing.T) {
	testenv.Long(t, "the SIS failing mid-stream")
	faultParallel(t)
	url := faultRedisURL(t)
	e := newFaultEnv(t, url, "")
	faultGoodNight(t, e)

	if _, err := e.sisDB.Exec(`
		ALTER TABLE sis.travel_requests RENAME TO travel_requests_data;
		CREATE FUNCTION sis.export_row(n bigint) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
		BEGIN
			IF n > 5 THEN
				RAISE EXCEPTION 'travel export broke at row %', n;
			END IF;
			RETURN true;
		END $$;
		CREATE VIEW sis.travel_requests AS
		SELECT request_id, student_id, kind, submitted_on, departure_on, return_on, dean_decision, reason, exit_visa_ready,
		       departed_on, returned_on, return_check_in_on, cancelled, updated_at
		FROM (SELECT t.*, row_number() OVER (ORDER BY request_id COLLATE "C") AS n FROM sis.travel_requests_data t) r
		WHERE sis.export_row(r.n)`); err != nil {
		t.Fatal(err)
	}
	exit, out := faultFailedNight(t, e)
	if !strings.Contains(out, "travel export broke at row 6") {
		t.Errorf("the failure does not carry the SIS's error:\n%s", faultTail(out, 2000))
	}
	before := faultState(t, e.db)

	// The same night under serve: the sync phase fails, is retried (here
	// 10 ms apart instead of minutes), the night is marked failed, and the
	// watchdog mails the operators once.
	alert := faultServeNightFails(t, e, url)
	if after := faultState(t, e.db); after != before {
		t.Errorf("the failed serve night changed the worker's state:\nbefore %s\nafter  %s", before, after)
	}

	if _, err := e.sisDB.Exec(`DROP VIEW sis.travel_requests; ALTER TABLE sis.travel_requests_data RENAME TO travel_requests`); err != nil {
		t.Fatal(err)
	}
	if out, err := e.run(2*time.Minute, "run", "--once", "--as-of", faultNextNight, "--timeout", "1m"); err != nil {
		t.Fatalf("the night once the view is fixed: %v\n%s", err, faultTail(out, 4000))
	}
	f := e.figures()
	var next int
	if err := e.db.Get(&next, `SELECT count(*) FROM sisnotify.notices WHERE night = $1`, faultNextNight); err != nil {
		t.Fatal(err)
	}
	f.report(t, "sis-fails-mid-stream", 0, 0, "exit", exit, "snapshot_kept", !t.Failed(), "ops_alert", strconv.Quote(alert), "next_night_notices", next)
	f.allSent(t, 0)
	if next < 40 {
		t.Errorf("the next night created %d notices once the view was fixed, want at least the 10 new students' 40", next)
	}
}

// faultServeNightFails runs the next night's chain as serve does (the
// worker package's Night and Watchdog, in-process, on the test's Redis
// and databases) with retries 10 ms apart, waits until the night is
// marked failed, and returns the subject of the one alert the operators
// got.
func faultServeNightFails(t *testing.T, e *faultEnv, redisURL string) string {
	t.Helper()
	ctx := context.Background()
	rdb := faultRedisClient(t, redisURL)
	client := asynq.NewClientFromRedisClient(rdb)
	defer client.Close()
	srv := worker.NewServer(worker.Options{Redis: rdb, Concurrency: 2,
		RetryDelay: func(int, error, *asynq.Task) time.Duration { return 10 * time.Millisecond }})
	night := &worker.Night{DB: e.db, Client: client, Sync: &jobs.Sync{SIS: sis.NewReader(e.sis.URL), DB: e.db}}
	mux := asynq.NewServeMux()
	night.Register(mux)
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	d, _ := date.Parse(faultNextNight)
	// run --once recorded this night failed already (nights are recorded
	// the same way whoever runs them): wait for serve's own failure.
	var began time.Time
	if err := e.db.Get(&began, `SELECT now()`); err != nil {
		t.Fatal(err)
	}
	if _, err := night.Start(ctx, d); err != nil {
		t.Fatal(err)
	}
	var status, nightErr string
	for deadline := time.Now().Add(time.Minute); status != "failed"; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the serve night is %q after a minute, want failed after its retries", status)
		}
		_ = e.db.QueryRow(`SELECT status, coalesce(error, '') FROM sisnotify.nights WHERE night = $1 AND finished_at > $2`, faultNextNight, began).Scan(&status, &nightErr)
	}
	if !strings.Contains(nightErr, "travel export broke") {
		t.Errorf("the failed night records %q, not the SIS's error", nightErr)
	}
	cfg, err := mail.ParseURL(e.smtp.URL())
	if err != nil {
		t.Fatal(err)
	}
	sender, err := mail.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sender.Close()
	before := len(e.smtp.Messages())
	w := &worker.Watchdog{DB: e.db, Mail: sender, Ops: []string{"ops@uni.example"}, Office: []string{"office@uni.example"}}
	for i := 0; i < 3; i++ { // the watchdog runs every 5 minutes: it alerts once
		if err := w.Check(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var alerts []mailtest.Message
	for _, m := range e.smtp.Messages()[before:] {
		if m.Header("X-Sisnotify-Kind") == "alert" {
			alerts = append(alerts, m)
		}
	}
	want := "night of " + faultNextNight + " failed (sync)"
	if len(alerts) != 1 || alerts[0].To[0] != "ops@uni.example" || !strings.Contains(alerts[0].Header("Subject"), want) {
		subjects := []string{}
		for _, m := range alerts {
			subjects = append(subjects, m.To[0]+": "+m.Header("Subject"))
		}
		t.Fatalf("after three watchdog rounds the alerts were %q, want one to ops@uni.example saying %q", subjects, want)
	}
	return alerts[0].Header("Subject")
}

// --- 5. The worker's PostgreSQL restarted mid-night --------------------------

// The worker's database (a private cluster) is restarted (pg_ctl restart
// -m fast) in the middle of 2,200 deliveries: the night fails or recovers,
// either is fine; the next run delivers the rest, and only deliveries in
// flight at the restart may go twice.
func TestFaultPostgresRestartedMidNight(t *testing.T) {
	testenv.Long(t, "runs a PostgreSQL cluster and the binary over 2,200 deliveries")
	faultParallel(t)
	pg := testenv.StartPostgres(t)
	url := faultRedisURL(t)
	e := newFaultEnv(t, url, pg.URL())
	e.students(1, 550, faultNight, true)

	first := e.start("run", "--once", "--as-of", faultNight, "--timeout", "30s")
	if !e.smtp.WaitFor(300, 2*time.Minute) {
		first.kill()
		t.Fatalf("the first run delivered only %d emails in 2 minutes\n%s", e.smtp.Count(), faultTail(first.output(), 4000))
	}
	atRestart := e.smtp.Count()
	if out, err := pg.Ctl("restart", "-m", "fast"); err != nil {
		t.Fatalf("pg_ctl restart: %v\n%s\n%s", err, out, pg.Log())
	}
	err := first.wait(t, 2*time.Minute)
	faultLogFirst(t, first, err)
	inFlight, pending := e.inFlight(), e.pending()
	if pending+inFlight == 0 {
		t.Fatal("every notice was delivered before the restart: the scenario did not happen")
	}

	if out, err := e.run(2*time.Minute, "run", "--once", "--retry-now", "--as-of", faultNight, "--timeout", "90s"); err != nil {
		t.Fatalf("the second run: %v\n%s", err, faultTail(out, 4000))
	}
	f := e.figures()
	f.report(t, "postgres-restart", inFlight, inFlight, "emails_at_restart", atRestart, "pending_after_first_run", pending, "first_exit", faultExit(err))
	f.allSent(t, 2200)
}

// --- 6. SIGKILL in the middle of 10,000 deliveries ---------------------------

// kill_test.go's scenario at 10,000 deliveries: 2,500 students, an email
// and an SMS for each of two rules; the process is SIGKILLed after 2,000
// emails and run again.
func TestFaultKilledMidTenThousand(t *testing.T) {
	testenv.Long(t, "runs the binary over 10,000 deliveries")
	url := faultRedisURL(t)
	e := newFaultEnv(t, url, "")
	e.students(1, 2500, faultNight, true)

	first := e.start("run", "--once", "--as-of", faultNight)
	if !e.smtp.WaitFor(2000, 3*time.Minute) {
		first.kill()
		t.Fatalf("the first run delivered only %d emails in 3 minutes\n%s", e.smtp.Count(), faultTail(first.output(), 4000))
	}
	first.kill() // SIGKILL
	atKill := e.smtp.Count()
	inFlight := e.inFlight()

	// Nothing is moved: the dead process's claims are free with its owner
	// lock, and its running tasks are queued again as soon as their leases
	// show them orphaned.
	began := time.Now()
	if out, err := e.run(4*time.Minute, "run", "--once", "--as-of", faultNight); err != nil {
		t.Fatalf("the second run: %v\n%s", err, faultTail(out, 4000))
	}
	f := e.figures()
	f.report(t, "sigkill-10k", inFlight, inFlight, "emails_at_kill", atKill, "emails", f.emails, "sms", f.sms,
		"rerun", time.Since(began).Round(time.Second))
	f.allSent(t, 10000)
}
