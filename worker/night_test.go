package worker

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"

	"github.com/iec-almaty/sisnotify/integrations/mail"
	"github.com/iec-almaty/sisnotify/integrations/mail/mailtest"
	"github.com/iec-almaty/sisnotify/integrations/sis"
	"github.com/iec-almaty/sisnotify/integrations/testenv"
	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/store"
)

var almaty, _ = time.LoadLocation("Asia/Almaty")

func TestSchedulerLastActivation(t *testing.T) {
	s := &Scheduler{Spec: "0 6 * * *", Location: almaty}
	for _, c := range []struct{ now, want string }{
		{"2026-11-25T03:00:00Z", "2026-11-25 06:00"}, // 08:00 in Almaty: this morning's
		{"2026-11-25T00:30:00Z", "2026-11-24 06:00"}, // 05:30 in Almaty: yesterday's
		{"2026-11-25T01:00:00Z", "2026-11-25 06:00"}, // exactly 06:00
	} {
		now, _ := time.Parse(time.RFC3339, c.now)
		got, err := s.Last(now)
		if err != nil {
			t.Fatal(err)
		}
		if got.In(almaty).Format("2006-01-02 15:04") != c.want {
			t.Errorf("last activation at %s = %s, want %s", c.now, got.In(almaty).Format("2006-01-02 15:04"), c.want)
		}
	}
}

// nightRig is a SIS with one student due tonight, a worker database, and
// the night's phases wired like serve wires them.
type nightRig struct {
	sis    *sqlx.DB
	db     *sqlx.DB
	rdb    *redis.Client
	client *asynq.Client
	night  *Night
}

func newNightRig(t *testing.T) *nightRig {
	t.Helper()
	s := testenv.New(t, "")
	sisDB := s.Open(t)
	if _, err := sisDB.Exec(sis.ReferenceSchema + `
		INSERT INTO sis.faculties VALUES ('ENG', 'Engineering', 'Dean', 'dean@uni.example', 'en');
		INSERT INTO sis.students (student_id, given_name, family_name, email, preferred_language, visa_regime, faculty_id, enrollment_status, entered_on)
		VALUES ('S1', 'Ann', 'Lee', 'ann@student.example', 'en', 'visa', 'ENG', 'active', '2026-11-25')`); err != nil {
		t.Fatal(err)
	}
	db, _ := httpTestDB(t)
	rdb := httpTestRedis(t)
	client := asynq.NewClientFromRedisClient(rdb)
	r := &nightRig{sis: sisDB, db: db, rdb: rdb, client: client}
	r.night = &Night{
		DB: db, Client: client,
		Sync:       &jobs.Sync{SIS: sis.NewReader(s.URL), DB: db},
		Evaluate:   &jobs.Evaluate{OfficeEmails: []string{"office@uni.example"}},
		Enqueue:    &Enqueuer{DB: db, Queue: NewQueue(rdb), MaxRetry: 3, Location: almaty},
		DigestWait: time.Second,
		Now:        func() time.Time { return time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC) },
	}
	return r
}

// runUntil runs an asynq server with the night's handlers (and none for
// deliveries: the notices stay queued) until done holds.
func (r *nightRig) runUntil(t *testing.T, done func() bool) {
	t.Helper()
	mux := asynq.NewServeMux()
	r.night.Register(mux)
	srv := NewServer(Options{Redis: r.rdb, Concurrency: 2})
	if err := srv.Start(mux); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	deadline := time.Now().Add(30 * time.Second)
	for !done() {
		if time.Now().After(deadline) {
			t.Fatal("the night did not finish in 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (r *nightRig) nightStatus(t *testing.T, night string) string {
	var s string
	_ = r.db.Get(&s, `SELECT status FROM sisnotify.nights WHERE night = $1`, night)
	return s
}

// Any number of starts of the same night, from any number of schedulers,
// run it once.
func TestNightRunsOnceHoweverOftenStarted(t *testing.T) {
	r := newNightRig(t)
	ctx := context.Background()
	night := date.MustParse("2026-11-25")
	other := &Night{Client: asynq.NewClientFromRedisClient(r.rdb)} // a second replica's scheduler
	started := 0
	for i := 0; i < 3; i++ {
		for _, n := range []*Night{r.night, other} {
			ok, err := n.Start(ctx, night)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				started++
			}
		}
	}
	if started != 1 {
		t.Fatalf("%d starts took effect, want 1", started)
	}
	r.runUntil(t, func() bool { return r.nightStatus(t, "2026-11-25") == "ok" })
	// Started again after it finished: its tasks are retained, so nothing.
	if ok, err := r.night.Start(ctx, night); err != nil || ok {
		t.Fatalf("starting a finished night: %v, %v; want a no-op", ok, err)
	}
	var syncs, evaluations, notices int
	if err := r.db.QueryRow(`SELECT (SELECT count(*) FROM sisnotify.syncs), (SELECT count(DISTINCT recorded_on) FROM sisnotify.obligation_steps), (SELECT count(*) FROM sisnotify.notices)`).Scan(&syncs, &evaluations, &notices); err != nil {
		t.Fatal(err)
	}
	if syncs != 1 || evaluations != 1 || notices != 3 {
		t.Fatalf("%d syncs, %d evaluations, %d notices; want 1, 1 and 3 (the arrival, registration and welcome emails)", syncs, evaluations, notices)
	}
	var counts string
	if err := r.db.Get(&counts, `SELECT counts::text FROM sisnotify.nights WHERE night = '2026-11-25'`); err != nil {
		t.Fatal(err)
	}
	for _, phase := range []string{"sync", "evaluate", "deliver", "digest"} {
		if !strings.Contains(counts, `"`+phase+`"`) {
			t.Errorf("night counts %s lack the %s phase", counts, phase)
		}
	}
}

// A night missed while the service was down runs when it starts; a night
// that failed is cleared from the archive and runs again.
func TestCatchUpAMissedNight(t *testing.T) {
	r := newNightRig(t)
	ctx := context.Background()
	s := &Scheduler{Spec: "0 6 * * *", Location: almaty, Night: r.night, DB: r.db,
		Tasks: asynq.NewInspectorFromRedisClient(r.rdb), Now: r.night.Now}
	// 08:00 UTC is 13:00 in Almaty: this morning's 06:00 night was missed.
	night, started, err := s.CatchUp(ctx)
	if err != nil || !started || night.String() != "2026-11-25" {
		t.Fatalf("catch up = %s, %v, %v; want the night of 2026-11-25 started", night, started, err)
	}
	r.runUntil(t, func() bool { return r.nightStatus(t, "2026-11-25") == "ok" })
	if _, started, err := s.CatchUp(ctx); err != nil || started {
		t.Fatalf("catch up after the night ran: %v, %v; want nothing", started, err)
	}

	// The next morning's night fails for good (the SIS is gone) …
	r.night.Now = func() time.Time { return time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC) }
	s.Now = r.night.Now
	good := r.night.Sync
	r.night.Sync = &jobs.Sync{SIS: sis.NewReader("postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=1"), DB: r.db}
	if _, err := r.night.queue(ctx, 0, date.MustParse("2026-11-26")); err != nil {
		t.Fatal(err)
	}
	insp := asynq.NewInspectorFromRedisClient(r.rdb)
	// Its retries take minutes; archive it as asynq would after them.
	if err := insp.ArchiveTask(QueueNight, "night-2026-11-26-sync"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.db.Exec(`INSERT INTO sisnotify.nights (night, status, phase, error) VALUES ('2026-11-26', 'failed', 'sync', 'connect to the SIS: refused')`); err != nil {
		t.Fatal(err)
	}
	// … and after a fix, a restart catches it up.
	r.night.Sync = good
	if _, started, err := s.CatchUp(ctx); err != nil || !started {
		t.Fatalf("catch up of a failed night: %v, %v; want it started again", started, err)
	}
	r.runUntil(t, func() bool { return r.nightStatus(t, "2026-11-26") == "ok" })
}

func TestWatchdogAlertsOpsOnce(t *testing.T) {
	db, _ := httpTestDB(t)
	smtp := mailtest.NewServer(t)
	cfg, err := mail.ParseURL(smtp.URL())
	if err != nil {
		t.Fatal(err)
	}
	pool, err := mail.NewPool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	now := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	w := &Watchdog{DB: db, Mail: pool, Ops: []string{"ops@uni.example"}, Since: now.Add(-time.Hour), Now: func() time.Time { return now }}
	ctx := context.Background()

	if _, err := db.Exec(`INSERT INTO sisnotify.nights (night, status, phase, started_at, finished_at) VALUES ('2026-11-24', 'ok', 'digest', '2026-11-24 06:00Z', '2026-11-24 06:30Z'),
		('2026-11-25', 'failed', 'sync', '2026-11-25 01:00Z', '2026-11-25 01:40Z')`); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := w.Check(ctx); err != nil {
			t.Fatal(err)
		}
	}
	msgs := smtp.Messages()
	if len(msgs) != 1 || !strings.Contains(msgs[0].Header("Subject"), "night of 2026-11-25 failed (sync)") || msgs[0].Header("X-Sisnotify-Kind") != "alert" {
		t.Fatalf("after a failed night and three checks: %d mails, want one alert", len(msgs))
	}
	// The next night succeeds: the alert resolves; a new failure alerts anew.
	if _, err := db.Exec(`INSERT INTO sisnotify.nights (night, status, phase, finished_at) VALUES ('2026-11-26', 'ok', 'digest', '2026-11-26 01:30Z')`); err != nil {
		t.Fatal(err)
	}
	now = time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	if err := w.Check(ctx); err != nil {
		t.Fatal(err)
	}
	var open int
	if err := db.Get(&open, `SELECT count(*) FROM sisnotify.alerts WHERE resolved_at IS NULL`); err != nil || open != 0 {
		t.Fatalf("%d open alerts after a good night (%v)", open, err)
	}
	// No night for 26 hours: one alert.
	now = time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC) // 28.5 h after the last success
	for i := 0; i < 2; i++ {
		if err := w.Check(ctx); err != nil {
			t.Fatal(err)
		}
	}
	msgs = smtp.Messages()
	if len(msgs) != 2 || !strings.Contains(msgs[1].Header("Subject"), "no night has succeeded") {
		t.Fatalf("after 28 h without a night: %d mails, want a second alert", len(msgs))
	}
}

// A night the feed guard held runs when a person releases it (the
// console's release, as run --once --force), once however often it is
// released, and is then ok: the watchdog and the catch-up see a night
// that succeeded.
func TestReleaseAHeldNight(t *testing.T) {
	r := newNightRig(t)
	ctx := context.Background()
	r.night.Sync.Guard = &store.Guard{MaxRosterDrop: 0.2, MaxEmptied: 0.2}
	first, held := date.MustParse("2026-11-25"), date.MustParse("2026-11-26")
	if _, err := r.night.Start(ctx, first); err != nil {
		t.Fatal(err)
	}
	r.runUntil(t, func() bool { return r.nightStatus(t, first.String()) == "ok" })
	// The export loses every student: the guard holds the next night.
	if _, err := r.sis.Exec(`DELETE FROM sis.students`); err != nil {
		t.Fatal(err)
	}
	if err := r.night.Release(ctx, held, "office@uni.example"); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("releasing a night that has not run: %v, want ErrNotHeld", err)
	}
	if _, err := r.night.Start(ctx, held); err != nil {
		t.Fatal(err)
	}
	r.runUntil(t, func() bool { return r.nightStatus(t, held.String()) == "failed" })
	if cause, err := store.New(r.db).NightHeldBy(ctx, held); err != nil || cause != CauseFeedGuard {
		t.Fatalf("held night's cause %q, %v; want %q", cause, err, CauseFeedGuard)
	}
	for i := 0; i < 2; i++ {
		if err := r.night.Release(ctx, held, "office@uni.example"); err != nil {
			t.Fatalf("release %d: %v", i+1, err)
		}
	}
	r.runUntil(t, func() bool { return r.nightStatus(t, held.String()) == "ok" })
	var syncs int
	if err := r.db.Get(&syncs, `SELECT count(*) FROM sisnotify.syncs WHERE as_of = $1 AND status = 'ok'`, held.String()); err != nil {
		t.Fatal(err)
	}
	if syncs != 1 {
		t.Fatalf("%d successful syncs of the released night, want 1", syncs)
	}
	if err := r.night.Release(ctx, held, "office@uni.example"); !errors.Is(err, ErrNotHeld) {
		t.Fatalf("releasing a night that succeeded: %v, want ErrNotHeld", err)
	}
}

// asynq may run a phase's task again (a lease that looked lost on a busy
// machine): a phase of the night already done is not done twice, and the
// chain goes on.
func TestNightPhaseRedeliveredRunsOnce(t *testing.T) {
	r := newNightRig(t)
	ctx := context.Background()
	task := asynq.NewTask(TypeNightSync, []byte(`{"night":"2026-11-25"}`))
	for i := 0; i < 2; i++ {
		if err := r.night.handler("sync")(ctx, task); err != nil {
			t.Fatalf("sync task, run %d: %v", i+1, err)
		}
	}
	var syncs int
	if err := r.db.Get(&syncs, `SELECT count(*) FROM sisnotify.syncs`); err != nil {
		t.Fatal(err)
	}
	if syncs != 1 || r.nightStatus(t, "2026-11-25") != "running" {
		t.Fatalf("%d syncs after the sync task ran twice (night %s), want 1", syncs, r.nightStatus(t, "2026-11-25"))
	}
	// The chain is whole: the evaluate phase is queued, once.
	info, err := asynq.NewInspectorFromRedisClient(r.rdb).GetTaskInfo(QueueNight, "night-2026-11-25-evaluate")
	if err != nil || info.Type != TypeNightEvaluate {
		t.Fatalf("the evaluate phase after the sync: %+v, %v", info, err)
	}
}

// The digest's wait counts again after half of what the deliveries'
// last pace says the rest will take: soon near the end of a fast night,
// rarely in a long or stalled one.
func TestDigestPoll(t *testing.T) {
	for _, c := range []struct {
		left, gone int64
		last, want time.Duration
	}{
		{100, -101, 0, 250 * time.Millisecond},                     // the first count: no pace yet
		{15000, 700, 250 * time.Millisecond, 2 * time.Second},      // 5 s to go: at most 2 s
		{1800, 3600, 2 * time.Second, 500 * time.Millisecond},      // 1 s to go: half of it
		{20, 1800, time.Second, 100 * time.Millisecond},            // 11 ms to go: at least 100 ms
		{500, 0, 2 * time.Second, 2 * time.Second},                 // nothing moved
		{500, -10, 250 * time.Millisecond, 250 * time.Millisecond}, // more to go than before
	} {
		if got := digestPoll(c.left, c.gone, c.last); got != c.want {
			t.Errorf("digestPoll(%d, %d, %s) = %s, want %s", c.left, c.gone, c.last, got, c.want)
		}
	}
}

// WaitDeliveries returns once the night's last notice has gone, at its
// deadline with notices still to go, and at once when the worker stops.
func TestWaitDeliveries(t *testing.T) {
	db, _ := httpTestDB(t)
	st := store.New(db)
	ctx := context.Background()
	night := date.MustParse("2026-11-01")
	insertTestNotices(t, db, "registration", [2]string{"email", "pending"}, [2]string{"email", "pending"}, [2]string{"email", "sent"})
	// Another night's pending notice is not waited for.
	if err := WaitDeliveries(ctx, st, night.AddDays(1), time.Now().Add(time.Minute), nil); err != nil {
		t.Fatal(err)
	}
	// At the deadline, with two to go.
	if err := WaitDeliveries(ctx, st, night, time.Now(), nil); err != nil {
		t.Fatal(err)
	}
	stopping := make(chan struct{})
	close(stopping)
	if err := WaitDeliveries(ctx, st, night, time.Now().Add(time.Minute), stopping); !errors.Is(err, ErrStopping) {
		t.Fatalf("stopping: %v, want ErrStopping", err)
	}
	// The deliveries finish while it waits.
	done := make(chan error, 1)
	go func() { done <- WaitDeliveries(ctx, st, night, time.Now().Add(time.Minute), nil) }()
	if _, err := db.Exec(`UPDATE sisnotify.notices SET status = 'sent' WHERE notice_id = (SELECT min(notice_id) FROM sisnotify.notices WHERE status = 'pending')`); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		t.Fatalf("returned with a notice still to go: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	if _, err := db.Exec(`UPDATE sisnotify.notices SET status = 'sent' WHERE status = 'pending'`); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("still waiting after the last notice went")
	}
}
