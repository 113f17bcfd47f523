package store_test

import (
	"context"
	"testing"

	"github.com/iec-almaty/sisnotify/integrations/testenv"
	"github.com/iec-almaty/sisnotify/store"
)

// One process at a time holds the bounce mailbox's lock; it is free
// again once released.
func TestTryLockBounces(t *testing.T) {
	ctx := context.Background()
	d := testenv.New(t, "")
	a, b := store.New(d.Open(t)), store.New(d.Open(t))
	unlock, ok, err := a.TryLockBounces(ctx)
	if err != nil || !ok {
		t.Fatalf("first lock: %v, %v", ok, err)
	}
	if _, ok, err := b.TryLockBounces(ctx); err != nil || ok {
		t.Fatalf("second lock while held: %v, %v; want not taken", ok, err)
	}
	unlock()
	unlock2, ok, err := b.TryLockBounces(ctx)
	if err != nil || !ok {
		t.Fatalf("lock after release: %v, %v", ok, err)
	}
	unlock2()
}
