package jobs_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/store"
)

// A notice claimed by a process that is alive is not claimed again; the
// moment that process is gone (its owner lock with it), another claims it,
// long before the claim's 10-minute lease.
func TestClaimOfADeadOwnerIsFreeAtOnce(t *testing.T) {
	e := newEnv(t)
	e.entrants(t, 1)
	r := newRig(t, e)
	ctx := context.Background()
	var id int64
	if err := e.db.Get(&id, `SELECT min(notice_id) FROM sisnotify.notices`); err != nil {
		t.Fatal(err)
	}
	deliverer := func(o *store.Owner) *jobs.Deliverer {
		return &jobs.Deliverer{DB: e.db, Mail: r.d.Mail, SMS: r.d.SMS, Templates: r.d.Templates, Office: r.d.Office,
			OfficeLang: r.d.OfficeLang, Owner: o}
	}
	a, err := store.AcquireOwner(ctx, e.db.DB, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := store.AcquireOwner(ctx, e.db.DB, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	// A's delivery hangs at the SMTP server, its claim held.
	release := r.smtp.Stall()
	defer release()
	first := make(chan jobs.Outcome, 1)
	go func() {
		out, _ := deliverer(a).Deliver(ctx, id, false)
		first <- out
	}()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var claimedBy int64
		if err := e.db.Get(&claimedBy, `SELECT coalesce(claimed_by, 0) FROM sisnotify.notices WHERE notice_id = $1 AND status = 'sending'`, id); err == nil && claimedBy == a.ID() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("A never claimed the notice")
		}
	}
	if out, err := deliverer(b).Deliver(ctx, id, false); out != jobs.Retry || !errors.Is(err, jobs.ErrClaimed) {
		t.Fatalf("B while A lives: %s, %v; want a retry (claimed by another worker)", out, err)
	}
	// A's process is gone: PostgreSQL drops its lock. B takes the notice
	// over at once.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	second := make(chan jobs.Outcome, 1)
	go func() {
		out, _ := deliverer(b).Deliver(ctx, id, false)
		second <- out
	}()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var claimedBy int64
		if err := e.db.Get(&claimedBy, `SELECT coalesce(claimed_by, 0) FROM sisnotify.notices WHERE notice_id = $1`, id); err != nil {
			t.Fatal(err)
		}
		if claimedBy == b.ID() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("B did not take over the claim of a dead owner")
		}
	}
	release()
	if out := <-second; out != jobs.Sent {
		t.Errorf("B's delivery: %s, want sent", out)
	}
	<-first // A was in flight at its death: the one duplicate the guarantees allow
	var status string
	if err := e.db.Get(&status, `SELECT status FROM sisnotify.notices WHERE notice_id = $1`, id); err != nil || status != "sent" {
		t.Errorf("status %q, %v; want sent", status, err)
	}
}
