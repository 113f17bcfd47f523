package jobs_test

import (
	"context"
	"errors"
	"testing"

	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/store"
)

// A digest a process was sending when it died is sent by the process that
// runs the night again, at once: its claim knew its owner, as a notice's
// does, and does not wait out the 10-minute lease. (The simulated year
// found this: a night killed mid-digest, run again by the operator,
// failed with "digest claimed by another worker".)
func TestDigestOfADeadOwnerIsFreeAtOnce(t *testing.T) {
	e := newEnv(t)
	e.sync(t) // an empty SIS: one office digest
	r := newDigestRig(t, e, "office@uni.example")
	ctx := context.Background()
	e.evaluate(t, "2026-11-25")
	a, err := store.AcquireOwner(ctx, e.db.DB, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := store.AcquireOwner(ctx, e.db.DB, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	withOwner := func(o jobs.ClaimOwner) *jobs.Digest {
		d := *r.d
		d.Owner = o
		return &d
	}

	// A claims the office digest as its night's digest does, and is killed
	// before it records the outcome.
	if _, ok, err := store.New(e.db).ClaimDigest(ctx, store.DigestClaim{Night: mustDate("2026-11-25"), Audience: "office",
		RecipientKey: "office1", Recipient: "office@uni.example", Language: "ru",
		MessageID: jobs.DigestMessageID(mustDate("2026-11-25"), "office1")}, 600, a.ID()); err != nil || !ok {
		t.Fatalf("A's claim: %v, %v", ok, err)
	}
	if _, err := withOwner(b).Run(ctx, mustDate("2026-11-25")); !errors.Is(err, jobs.ErrDigestClaimed) {
		t.Fatalf("B while A lives: %v; want the digest claimed by another worker", err)
	}
	// A's process is gone: PostgreSQL drops its lock, and B sends.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	res, err := withOwner(b).Run(ctx, mustDate("2026-11-25"))
	if err != nil || res.Office != 1 {
		t.Fatalf("B after A died: %+v, %v; want the office digest sent", res, err)
	}
	var status string
	var claimedBy int64
	if err := e.db.QueryRow(`SELECT status, claimed_by FROM sisnotify.digests`).Scan(&status, &claimedBy); err != nil || status != "sent" || claimedBy != b.ID() {
		t.Fatalf("digest %s claimed by %d (%v); want sent by B (%d)", status, claimedBy, err, b.ID())
	}
}
