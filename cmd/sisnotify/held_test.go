package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/iec-almaty/sisnotify/integrations/mail"
	"github.com/iec-almaty/sisnotify/integrations/testenv"
	"github.com/iec-almaty/sisnotify/worker"
)

// A night the feed guard held is released by run --once --force, and from
// then on it is a good night like any other: the watchdog resolves its
// alert and sends nothing more, and serve's catch-up at start does not run
// it again. run --once and serve record nights the same way.
func TestHeldNightReleasedStaysQuiet(t *testing.T) {
	testenv.Long(t, "nights over a broken SIS")
	ctx := context.Background()
	env, db, smtp := shrunkSIS(t, "300")
	night := func() (status, cause string) {
		t.Helper()
		if err := db.QueryRow(`SELECT status, coalesce(cause, '') FROM sisnotify.nights WHERE night = '2026-11-26'`).Scan(&status, &cause); err != nil {
			t.Fatal(err)
		}
		return status, cause
	}

	// 1. The night is held, and recorded as held.
	if _, _, err := runCmd(t, env, "run", "--once", "--as-of", "2026-11-26"); err == nil || exitStatus(err) != 1 {
		t.Fatalf("a 30%% drop: %v, want the night held (exit 1)", err)
	}
	if status, cause := night(); status != "failed" || cause != worker.CauseFeedGuard {
		t.Fatalf("the held night is recorded %s (%s), want failed (feed_guard)", status, cause)
	}

	// 2. The watchdog alerts the operators and the office, once.
	cfg, err := mail.ParseURL(smtp.URL())
	if err != nil {
		t.Fatal(err)
	}
	cfg.From = "sisnotify <sisnotify@uni.example>"
	sender, err := mail.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sender.Close()
	dog := &worker.Watchdog{DB: db, Mail: sender, Ops: []string{"ops@uni.example"}, Office: []string{"office@uni.example"},
		Now: func() time.Time { return time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC) }}
	held := func() int {
		n := 0
		for _, m := range smtp.Messages() {
			if strings.Contains(m.Header("Subject"), "was held") {
				n++
			}
		}
		return n
	}
	before := held() // run --once mailed ops and the office itself
	for range 2 {
		if err := dog.Check(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := held() - before; got != 2 {
		t.Fatalf("the watchdog sent %d held-night alerts over two checks, want one each to ops and the office", got)
	}

	// 3. A person checked the SIS: release the night.
	if out, _, err := runCmd(t, env, "run", "--once", "--as-of", "2026-11-26", "--force"); err != nil {
		t.Fatalf("--force: %v\n%s", err, out)
	}
	if status, cause := night(); status != "ok" || cause != "" {
		t.Fatalf("the released night is recorded %s (%q), want ok", status, cause)
	}

	// 4. The watchdog is quiet and resolves its alert.
	sent := smtp.Count()
	if err := dog.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if smtp.Count() != sent {
		t.Errorf("the watchdog mailed %d more after the release", smtp.Count()-sent)
	}
	var open int
	if err := db.Get(&open, `SELECT count(*) FROM sisnotify.alerts WHERE resolved_at IS NULL`); err != nil || open != 0 {
		t.Errorf("%d alerts still open (%v), want none", open, err)
	}

	// 5. serve restarts the morning after the release: its catch-up finds
	// the night done and starts nothing.
	loc, _ := time.LoadLocation("Asia/Almaty")
	sched := &worker.Scheduler{Spec: "0 6 * * *", Location: loc, DB: db,
		Now: func() time.Time { return time.Date(2026, 11, 26, 9, 0, 0, 0, loc) }}
	last, started, err := sched.CatchUp(ctx)
	if err != nil || started || last.String() != "2026-11-26" {
		t.Fatalf("catch-up at restart: night %s started %v (%v), want 2026-11-26 not started", last, started, err)
	}
}
