package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/iec-almaty/sisnotify/integrations/testenv"
	"github.com/iec-almaty/sisnotify/migrations"
	"github.com/iec-almaty/sisnotify/store"
)

// An owner is alive while its session lives; when the session dies (as it
// does with its process) its claims are free at once, and a living
// process takes its lock again.
func TestOwnerDiesWithItsSession(t *testing.T) {
	ctx := context.Background()
	db := testenv.New(t, "").Open(t)
	if _, err := migrations.Up(ctx, db.DB); err != nil {
		t.Fatal(err)
	}
	o, err := store.AcquireOwner(ctx, db.DB, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	other, err := store.AcquireOwner(ctx, db.DB, nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.ID() == other.ID() {
		t.Fatalf("two owners share id %d", o.ID())
	}
	dead := func(id int64) bool {
		t.Helper()
		var d bool
		if err := db.QueryRowContext(ctx, `SELECT `+store.OwnerDead("$1::bigint"), id).Scan(&d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	if dead(o.ID()) || dead(other.ID()) {
		t.Fatal("a live owner is dead")
	}
	if !dead(o.ID() + 1000) {
		t.Error("an owner id nobody holds is alive")
	}
	var none bool
	if err := db.QueryRowContext(ctx, `SELECT `+store.OwnerDead("NULL::bigint")).Scan(&none); err != nil || none {
		t.Errorf("a claim without an owner: dead = %v, %v; want false (it waits for its lease)", none, err)
	}
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	if !dead(other.ID()) {
		t.Error("a closed owner is alive")
	}
	// The session of o's lock ends, as it would if PostgreSQL restarted:
	// dead until the keeper takes the lock again on a new connection.
	if _, err := db.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_locks
		WHERE locktype = 'advisory' AND objid = $1::oid AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`, o.ID()); err != nil {
		t.Fatal(err)
	}
	// pg_terminate_backend only signals the session: it ends a moment
	// later, well before the keeper's next look (2 s).
	for end := time.Now().Add(time.Second); !dead(o.ID()); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("the owner is alive a second after its session was ended")
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for dead(o.ID()) {
		if time.Now().After(deadline) {
			t.Fatal("the keeper did not take the lock again within 15 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
