package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/iec-almaty/sisnotify/integrations/mail"
	"github.com/iec-almaty/sisnotify/integrations/mail/mailtest"
	"github.com/iec-almaty/sisnotify/integrations/sms"
	"github.com/iec-almaty/sisnotify/integrations/testenv"
	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/templates"
	"github.com/iec-almaty/sisnotify/worker"
)

// redisDB is this package's Redis database number (README, Tests).
const redisDB = 1

// rig is a delivery setup against real SMTP (mailtest), Redis and an SMS
// outbox folder.
type rig struct {
	e      *env
	smtp   *mailtest.Server
	smsDir string
	rdb    *redis.Client
	d      *jobs.Deliverer
	q      *worker.Enqueuer
}

func newRig(t *testing.T, e *env) *rig { return newRigTB(t, e) }

func newRigTB(t testing.TB, e *env, opts ...mailtest.Option) *rig {
	t.Helper()
	srv := mailtest.NewServer(t, opts...)
	cfg, err := mail.ParseURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	cfg.From, cfg.Connections = "International Office <international@uni.example>", rigConnections
	pool, err := mail.NewPool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	dir := t.TempDir()
	opt, err := redis.ParseURL(testenv.Redis(t, redisDB))
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	set, err := templates.New()
	if err != nil {
		t.Fatal(err)
	}
	// As cmd/sisnotify does: enough idle connections for the deliveries in
	// flight (database/sql keeps 2 by default, and a new PostgreSQL
	// connection costs a process fork).
	e.db.SetMaxIdleConns(rigConcurrency + 4)
	r := &rig{e: e, smtp: srv, smsDir: dir, rdb: rdb}
	r.d = &jobs.Deliverer{DB: e.db, Mail: pool, SMS: sms.NewOutbox(dir), Templates: set,
		Office:     templates.Office{University: "Test University", Name: "International Office", Address: "Room 112", Hours: "9-18", Phone: "+7 727 355 05 67", Email: "io@uni.example"},
		OfficeLang: "ru"}
	r.q = &worker.Enqueuer{DB: e.db, Queue: worker.NewQueue(rdb), MaxRetry: 5, Location: time.UTC}
	return r
}

// night enqueues the pending notices and runs a worker until none may go
// now (or the timeout passes). Retries wait milliseconds, not minutes.
// rigConcurrency is the deliveries in flight, rigConnections the SMTP
// connections they share (as cmd/sisnotify).
const (
	rigConcurrency = 64
	rigConnections = 8
)

func (r *rig) night(t testing.TB) jobs.EnqueueResult {
	t.Helper()
	er := r.enqueue(t)
	r.drain(t)
	return er
}

// enqueue queues the pending notices.
func (r *rig) enqueue(t testing.TB) jobs.EnqueueResult {
	t.Helper()
	er, err := r.q.Run(context.Background(), time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	return er
}

// drain runs a worker until no notice is pending or sending.
func (r *rig) drain(t testing.TB) {
	t.Helper()
	defer r.serve(t)()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var left int
		if err := r.e.db.Get(&left, `SELECT count(*) FROM sisnotify.notices WHERE status IN ('pending', 'sending')`); err != nil {
			t.Fatal(err)
		}
		if left == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d notices still pending after 2 minutes", left)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// serve starts the rig's asynq server, as serve runs one all the time;
// the returned func stops it.
func (r *rig) serve(t testing.TB) (stop func()) {
	t.Helper()
	srv := worker.NewServer(worker.Options{Redis: r.rdb, Concurrency: rigConcurrency,
		RetryDelay: func(int, error, *asynq.Task) time.Duration { return 20 * time.Millisecond }})
	if err := srv.Start(worker.NewMux(r.d)); err != nil {
		t.Fatal(err)
	}
	return srv.Shutdown
}

func (r *rig) smsLines(t *testing.T) []map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(r.smsDir, "sms.jsonl"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func (e *env) statuses(t *testing.T) map[string]int {
	t.Helper()
	var rows []struct {
		Status string
		N      int
	}
	if err := e.db.Select(&rows, `SELECT status, count(*) AS n FROM sisnotify.notices GROUP BY 1`); err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, r := range rows {
		out[r.Status] = r.N
	}
	return out
}

func TestDeliverNightExactlyOnce(t *testing.T) {
	e := newEnv(t)
	e.exec(t, baseFixture)
	e.sync(t)
	e.evaluate(t, "2026-11-25")
	r := newRig(t, e)
	r.night(t)
	if st := e.statuses(t); st["sent"] != 7 || len(st) != 1 {
		t.Fatalf("statuses after the night: %v, want 7 sent", st)
	}
	msgs := r.smtp.Messages()
	if len(msgs) != 4 {
		t.Fatalf("SMTP received %d messages, want 4 emails", len(msgs))
	}
	var keys []struct {
		Key, Rule, Audience, Student string
		Level                        int
	}
	if err := e.db.Select(&keys, `SELECT notice_key AS key, rule, audience, student_id AS student, level FROM sisnotify.notices WHERE channel = 'email'`); err != nil {
		t.Fatal(err)
	}
	byID := map[string]int{}
	for i, k := range keys {
		byID[strings.Trim(jobs.MessageID(k.Key), "<>")] = i
	}
	for _, m := range msgs {
		i, ok := byID[m.MessageID()]
		if !ok {
			t.Fatalf("message %s has a Message-ID not derived from a notice key", m.MessageID())
		}
		k := keys[i]
		for h, want := range map[string]string{"X-Sisnotify-Kind": "notice", "X-Sisnotify-Rule": k.Rule, "X-Sisnotify-Level": itoa(k.Level),
			"X-Sisnotify-Student": k.Student, "X-Sisnotify-Audience": k.Audience, "Auto-Submitted": "auto-generated"} {
			if got := m.Header(h); got != want {
				t.Errorf("%s: %s = %q, want %q", k.Rule, h, got, want)
			}
		}
		if len(m.To) != 1 {
			t.Errorf("%d recipients, want 1", len(m.To))
		}
		if !strings.Contains(string(m.Data), "multipart/alternative") {
			t.Errorf("not multipart text+HTML")
		}
	}
	// The student is Kazakh-speaking: the notice is in Kazakh; the office's is Russian.
	var langs []string
	if err := e.db.Select(&langs, `SELECT audience || ':' || language FROM sisnotify.notices WHERE channel = 'email' ORDER BY 1`); err != nil {
		t.Fatal(err)
	}
	if strings.Join(langs, ",") != "office:ru,student:kk,student:kk,student:kk" {
		t.Errorf("languages %v", langs)
	}
	sms := r.smsLines(t)
	if len(sms) != 3 {
		t.Fatalf("%d SMS, want 3", len(sms))
	}
	for _, s := range sms {
		// The office's phone ends the SMS, written with or without spaces
		// (an SMS may write it compactly to save characters).
		if s["to"] != "+77011234567" || !strings.HasSuffix(strings.ReplaceAll(s["text"].(string), " ", ""), "+77273550567") {
			t.Errorf("SMS %v: wrong number or no office phone at the end", s)
		}
	}
	// Running the night again (Redis still holds nothing) sends nothing.
	if er := r.night(t); er.Pending != 0 {
		t.Errorf("second pass found %d pending", er.Pending)
	}
	if r.smtp.Count() != 4 || len(r.smsLines(t)) != 3 {
		t.Errorf("second pass sent again: %d emails, %d SMS", r.smtp.Count(), len(r.smsLines(t)))
	}
}

func TestDeliverTemporaryThenAccepted(t *testing.T) {
	e := newEnv(t)
	e.exec(t, baseFixture+`; UPDATE sis.students SET phone = NULL`)
	e.sync(t)
	e.evaluate(t, "2026-11-25")
	r := newRig(t, e)
	r.smtp.TempFail(3) // 451 three times, then accept
	r.night(t)
	if st := e.statuses(t); st["sent"] != 4 {
		t.Fatalf("statuses %v, want 4 sent", st)
	}
	if got, dups := r.smtp.Count(), r.smtp.DuplicatesByMessageID(); got != 4 || dups != 0 {
		t.Fatalf("SMTP received %d (%d duplicates), want 4 and 0", got, dups)
	}
	var attempts int
	if err := e.db.Get(&attempts, `SELECT sum(attempts) FROM sisnotify.notices`); err != nil || attempts != 4+3 {
		t.Fatalf("attempts %d (%v), want 7 (4 + 3 refused)", attempts, err)
	}
}

func TestDeliverRejectedAddressFailsOnce(t *testing.T) {
	e := newEnv(t)
	e.exec(t, baseFixture+`; UPDATE sis.students SET phone = NULL`)
	e.sync(t)
	e.evaluate(t, "2026-11-25")
	r := newRig(t, e)
	r.smtp.Reject("aigerim@student.example") // 550 for the student, not the office
	r.night(t)
	st := e.statuses(t)
	if st["failed"] != 3 || st["sent"] != 1 {
		t.Fatalf("statuses %v, want the student's 3 failed and the office's 1 sent", st)
	}
	var rows []struct {
		Attempts int
		Class    string
		Err      string
	}
	if err := e.db.Select(&rows, `SELECT attempts, error_class AS class, last_error AS err FROM sisnotify.notices WHERE status = 'failed'`); err != nil {
		t.Fatal(err)
	}
	for _, row := range rows {
		if row.Attempts != 1 || row.Class != "permanent" {
			t.Errorf("failed notice: %d attempts, class %s; want 1 attempt, permanent (never retried)", row.Attempts, row.Class)
		}
		if strings.Contains(row.Err, "aigerim") {
			t.Errorf("last_error %q carries the address", row.Err)
		}
	}
}

func TestDeliverAfterRedisLostEverything(t *testing.T) {
	e := newEnv(t)
	e.exec(t, baseFixture)
	e.sync(t)
	e.evaluate(t, "2026-11-25")
	r := newRig(t, e)
	ctx := context.Background()
	if er, err := r.q.Run(ctx, time.Now()); err != nil || er.Enqueued != 7 {
		t.Fatalf("enqueue: %+v, %v", er, err)
	}
	if err := r.rdb.FlushDB(ctx).Err(); err != nil { // FLUSHALL, limited to this package's database
		t.Fatal(err)
	}
	er := r.night(t)
	if er.Enqueued != 7 {
		t.Errorf("after the flush, %d re-enqueued, want 7", er.Enqueued)
	}
	if st := e.statuses(t); st["sent"] != 7 {
		t.Fatalf("statuses %v, want 7 sent", st)
	}
	if r.smtp.Count() != 4 || r.smtp.DuplicatesByMessageID() != 0 || len(r.smsLines(t)) != 3 {
		t.Fatalf("sent %d emails (%d dup), %d SMS; want 4, 0, 3", r.smtp.Count(), r.smtp.DuplicatesByMessageID(), len(r.smsLines(t)))
	}
}

func TestDeliverCancelsNoticesOfClosedObligations(t *testing.T) {
	e := newEnv(t)
	e.exec(t, baseFixture)
	e.sync(t)
	e.evaluate(t, "2026-11-25")
	// Before the worker gets to them, the student registers.
	e.exec(t, `UPDATE sis.students SET registered_on = '2026-11-25'`)
	e.sync(t)
	e.evaluate(t, "2026-11-25")
	r := newRig(t, e)
	r.night(t)
	var cancelled int
	if err := e.db.Get(&cancelled, `SELECT count(*) FROM sisnotify.notices WHERE status = 'cancelled' AND rule = 'registration'`); err != nil || cancelled != 3 {
		t.Fatalf("%d registration notices cancelled (%v), want 3", cancelled, err)
	}
}

func TestHoldUntilQuietHoursEnd(t *testing.T) {
	almaty, _ := time.LoadLocation("Asia/Almaty")
	quiet := mustQuiet(t, "21:00-09:00")
	at := func(s string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04", s, almaty)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	for _, c := range []struct {
		now, due, want string
	}{
		{"2026-11-25 12:00", "2026-11-30", ""},                 // daytime: now
		{"2026-11-25 23:30", "2026-11-30", "2026-11-26 09:00"}, // night: the morning
		{"2026-11-26 06:00", "2026-11-30", "2026-11-26 09:00"}, // early morning: 09:00
		{"2026-11-25 23:30", "2026-11-25", ""},                 // due today: holding passes the deadline day
		{"2026-11-25 23:30", "2026-11-20", "2026-11-26 09:00"}, // already overdue: no deadline to save
	} {
		got := jobs.HoldUntil(at(c.now), almaty, quiet, mustDate(c.due))
		want := time.Time{}
		if c.want != "" {
			want = at(c.want)
		}
		if !got.Equal(want) {
			t.Errorf("now %s, due %s: hold until %v, want %v", c.now, c.due, got, want)
		}
	}
}

// Deliveries in flight share batched claims and records (one statement
// each for all those waiting): every notice still goes exactly once, even
// when asynq runs its task several times at once.
func TestConcurrentDeliveriesSendEachNoticeOnce(t *testing.T) {
	e := newEnv(t)
	e.entrants(t, 300)
	r := newRig(t, e)
	var ids []int64
	if err := e.db.Select(&ids, `SELECT notice_id FROM sisnotify.notices ORDER BY notice_id`); err != nil {
		t.Fatal(err)
	}
	if len(ids) != 600 {
		t.Fatalf("%d notices, want 600 (2 rules x 300 students)", len(ids))
	}
	work := make(chan int64)
	outcomes := make(chan jobs.Outcome, 3*len(ids))
	var wg sync.WaitGroup
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range work {
				out, err := r.d.Deliver(context.Background(), id, false)
				if out == jobs.Retry && !errors.Is(err, jobs.ErrClaimed) || out != jobs.Retry && out != jobs.Sent && out != jobs.Skipped {
					t.Errorf("notice %d: %s, %v", id, out, err)
				}
				outcomes <- out
			}
		}()
	}
	for _, id := range ids { // each task three times at once
		for range 3 {
			work <- id
		}
	}
	close(work)
	wg.Wait()
	close(outcomes)
	count := map[jobs.Outcome]int{}
	for o := range outcomes {
		count[o]++
	}
	if count[jobs.Sent] != 600 {
		t.Errorf("outcomes %v, want 600 sent", count)
	}
	if got, dups := r.smtp.Count(), r.smtp.DuplicatesByMessageID(); got != 600 || dups != 0 {
		t.Fatalf("SMTP received %d (%d duplicates), want 600 and 0", got, dups)
	}
	if st := e.statuses(t); st["sent"] != 600 || len(st) != 1 {
		t.Fatalf("statuses %v, want 600 sent", st)
	}
}

// entrants fills the SIS with n students who entered on 2026-11-25 and
// have no phone, syncs and evaluates that night: 2n student emails
// (arrival check-in and registration, step 1), pending.
func (e *env) entrants(t testing.TB, n int) {
	t.Helper()
	e.exec(t, `INSERT INTO sis.faculties VALUES ('ENG', 'Engineering', 'Dean', 'dean@uni.example', 'en')`)
	e.exec(t, `INSERT INTO sis.students (student_id, given_name, family_name, email, preferred_language, visa_regime, faculty_id, enrollment_status, entered_on)
		SELECT 'E' || lpad(i::text, 7, '0'), 'Given', 'Family', 'student' || i || '@student.example', 'en', 'visa', 'ENG', 'active', DATE '2026-11-25'
		FROM generate_series(1, $1::int) AS i`, n)
	e.sync(t)
	e.evaluate(t, "2026-11-25")
}

// asynqCeiling measures what asynq alone processes on this machine: n
// tasks with a handler that does nothing, enqueued as the Enqueuer does
// (16 at once over the one client) and run by one server with the
// worker's concurrency, in tasks/s, and the machine's CPU time per task
// while they ran (asynq and Redis; 0 without /proc/stat). Benchmarks
// print both beside their own: one asynq task per notice (the design)
// bounds delivery by them.
func (r *rig) asynqCeiling(t testing.TB, n int) (rate float64, cpuPerTask time.Duration) {
	t.Helper()
	const queue = "ceiling"
	client := asynq.NewClientFromRedisClient(r.rdb)
	work := make(chan int)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if _, err := client.Enqueue(asynq.NewTask("ceiling:noop", []byte(`{"notice_id":1}`)), asynq.Queue(queue), asynq.TaskID("ceiling-"+itoa(i))); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	var done atomic.Int64
	all := make(chan struct{})
	srv := asynq.NewServerFromRedisClient(r.rdb, asynq.Config{Concurrency: rigConcurrency, Queues: map[string]int{queue: 1}, LogLevel: asynq.ErrorLevel})
	cpu0, cpuOK := testenv.MachineCPU()
	start := time.Now()
	if err := srv.Start(asynq.HandlerFunc(func(context.Context, *asynq.Task) error {
		if done.Add(1) == int64(n) {
			close(all)
		}
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	select {
	case <-all:
	case <-time.After(2 * time.Minute):
		t.Fatalf("asynq ran %d of %d no-op tasks in 2 minutes", done.Load(), n)
	}
	rate = float64(n) / time.Since(start).Seconds()
	if cpu1, ok := testenv.MachineCPU(); ok && cpuOK {
		cpuPerTask = cpu1.Sub(cpu0).Busy / time.Duration(n)
	}
	srv.Shutdown()
	if err := asynq.NewInspectorFromRedisClient(r.rdb).DeleteQueue(queue, true); err != nil {
		t.Fatal(err)
	}
	return rate, cpuPerTask
}
