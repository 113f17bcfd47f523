package jobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/jobs/rules"
	"github.com/iec-almaty/sisnotify/pace"
	"github.com/iec-almaty/sisnotify/worker"
)

// countingPacer is the real limiter, counting what it told the deliverer.
type countingPacer struct {
	*pace.Limiter
	postponed chan struct{}
}

func (c countingPacer) Take(ctx context.Context, channel string, urgent bool) (time.Duration, error) {
	d, err := c.Limiter.Take(ctx, channel, urgent)
	if d > 0 {
		select {
		case c.postponed <- struct{}{}:
		default:
		}
	}
	return d, err
}

// A notice over the mail limit is postponed: it stays pending with its
// attempts unchanged, no line in its history, asynq's retry counter at
// 0, and it is sent once the limit lets it.
func TestDeliverOverTheLimitIsPostponedNotAttempted(t *testing.T) {
	e := newEnv(t)
	e.entrants(t, 2) // 4 student emails
	r := newRig(t, e)
	lim := pace.New(r.rdb, map[string][]pace.Limit{pace.Mail: {{N: 1, Period: time.Minute}}})
	lim.MaxWait = 10 * time.Millisecond
	p := countingPacer{lim, make(chan struct{}, 16)}
	r.d.Pace = p
	r.enqueue(t)
	srv := worker.NewServer(worker.Options{Redis: r.rdb, Concurrency: 4})
	if err := srv.Start(worker.NewMux(r.d)); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	if !r.smtp.WaitFor(1, 30*time.Second) {
		t.Fatal("no email went out")
	}
	// The other three are postponed: a minute's limit of 1 lets one go.
	for i := 0; i < 3; i++ {
		select {
		case <-p.postponed:
		case <-time.After(30 * time.Second):
			t.Fatal("no notice was postponed")
		}
	}
	time.Sleep(2 * time.Second) // postponed tasks come back, and are postponed again
	if got := r.smtp.Count(); got != 1 {
		t.Fatalf("%d emails sent under a limit of 1 a minute, want 1", got)
	}
	var rows []struct {
		Status   string `db:"status"`
		Attempts int    `db:"attempts"`
		History  int    `db:"history"`
	}
	if err := e.db.Select(&rows, `SELECT status, attempts,
		(SELECT count(*) FROM sisnotify.notice_attempts a WHERE a.notice_id = n.notice_id) AS history
		FROM sisnotify.notices n WHERE status <> 'sent'`); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Fatalf("%d notices not sent, want 3", len(rows))
	}
	for _, row := range rows {
		if row.Status == "failed" || row.Attempts != 0 || row.History != 0 {
			t.Errorf("postponed notice: status %s, attempts %d, history %d; want pending or sending, 0, 0", row.Status, row.Attempts, row.History)
		}
	}
	insp := asynq.NewInspectorFromRedisClient(r.rdb)
	retries, err := insp.ListRetryTasks(worker.QueueNotices)
	if err != nil {
		t.Fatal(err)
	}
	if len(retries) == 0 {
		t.Fatal("no task waits in the retry set")
	}
	for _, task := range retries {
		if task.Retried != 0 {
			t.Errorf("task %s: asynq counted %d retries for postponements, want 0", task.ID, task.Retried)
		}
	}
}

// With a limit in force and both ready, the office's urgent email and the
// dean's go before the students' routine ones.
func TestDeliverOfficeMailGoesFirstUnderTheLimit(t *testing.T) {
	e := newEnv(t)
	e.exec(t, staffFixture)
	e.exec(t, `INSERT INTO sis.students (student_id, given_name, family_name, email, preferred_language, visa_regime, faculty_id, enrollment_status, entered_on)
		SELECT 'E' || lpad(i::text, 7, '0'), 'Given', 'Family', 'student' || i || '@student.example', 'en', 'visa', 'LAW', 'active', DATE '2026-11-25'
		FROM generate_series(1, 40) AS i`)
	e.sync(t)
	e.evaluate(t, "2026-11-25")
	r := newRig(t, e)
	r.d.Ladders = jobs.Ladders(rules.Defaults())
	r.d.Pace = pace.New(r.rdb, map[string][]pace.Limit{pace.Mail: {{N: 20, Period: time.Second}}})
	var staff, students int
	if err := e.db.QueryRow(`SELECT count(*) FILTER (WHERE audience <> 'student'), count(*) FILTER (WHERE audience = 'student')
		FROM sisnotify.notices WHERE channel = 'email'`).Scan(&staff, &students); err != nil {
		t.Fatal(err)
	}
	if staff < 2 || students < 80 {
		t.Fatalf("fixture: %d staff and %d student emails, want at least 2 and 80", staff, students)
	}
	r.night(t)
	msgs := r.smtp.Messages()
	last := -1
	for i, m := range msgs {
		if m.Header("X-Sisnotify-Audience") != "student" {
			last = i
		}
	}
	t.Logf("%d emails; the last of the %d staff emails was number %d", len(msgs), staff, last+1)
	if last < 0 || last >= staff+8 {
		t.Fatalf("the last staff email went out as number %d of %d; want among the first %d (the staff's %d, and the few student emails already in flight)", last+1, len(msgs), staff+8, staff)
	}
}
