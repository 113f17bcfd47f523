package migrations_test

import (
	"context"
	"sync"
	"testing"

	"github.com/iec-almaty/sisnotify/integrations/testenv"
	"github.com/iec-almaty/sisnotify/migrations"
)

func TestUpIsIdempotentAndConcurrent(t *testing.T) {
	ctx := context.Background()
	db := testenv.New(t, "").Open(t)
	if _, err := db.Exec(`CREATE TABLE public.unrelated (id int)`); err != nil {
		t.Fatal(err)
	}
	n, err := migrations.Pending(ctx, db.DB)
	if err != nil || n == 0 {
		t.Fatalf("Pending on an empty database = %d, %v; want > 0", n, err)
	}

	// Several replicas starting at once: exactly one applies each version.
	var wg sync.WaitGroup
	applied := make([][]int64, 4)
	errs := make([]error, 4)
	for i := range applied {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := migrations.Up(ctx, db.DB)
			applied[i], errs[i] = r.Applied, err
		}()
	}
	wg.Wait()
	total := 0
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		total += len(applied[i])
	}
	if total != n {
		t.Errorf("%d migrations applied across replicas, want %d", total, n)
	}

	r, err := migrations.Up(ctx, db.DB)
	if err != nil || len(r.Applied) != 0 || r.Current == 0 {
		t.Fatalf("second Up = %+v, %v; want nothing applied and a version", r, err)
	}
	if n, err := migrations.Pending(ctx, db.DB); err != nil || n != 0 {
		t.Fatalf("Pending after Up = %d, %v; want 0", n, err)
	}
	// Everything lives in its own schema; the public schema is untouched.
	var public int
	if err := db.Get(&public, `SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'`); err != nil {
		t.Fatal(err)
	}
	if public != 1 {
		t.Errorf("public schema has %d tables, want only the unrelated one", public)
	}
	var ours int
	if err := db.Get(&ours, `SELECT count(*) FROM information_schema.tables WHERE table_schema = 'sisnotify'`); err != nil {
		t.Fatal(err)
	}
	if ours < 7 {
		t.Errorf("sisnotify schema has %d tables, want the snapshot tables and goose's", ours)
	}
}
