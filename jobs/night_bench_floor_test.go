package jobs_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/jackc/pgx/v5"
)

// floorTables are the snapshot's tables an initial load fills with the
// SIS's students and travel requests (the faculties and periods are a
// handful of rows).
var floorTables = []string{"students", "travel_requests"}

// loadFloor measures the first sync's floor on this machine: PostgreSQL
// alone writing the rows the first night's sync wrote. The snapshot's
// students and travel requests are copied out, in PostgreSQL's binary
// format and with the columns the sync writes, to files; then, as one
// phase, they are copied back into empty copies of the two tables (with
// their indexes and defaults) in one transaction, as the sync writes
// them: no SIS read, no validation, no hashing, no Go between the rows.
// The sync cannot be faster than this load, whatever the worker does.
// The copies are dropped after.
func (nb *nightBench) loadFloor(plain phaseRow) phaseRow {
	b := nb.b
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, nb.e.dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	dir := b.TempDir()
	cols := map[string]string{}
	for _, t := range floorTables {
		// The columns the sync writes: what it leaves to the defaults
		// (first seen, changed, removed) is left to them here too.
		var c string
		if err := conn.QueryRow(ctx, `
			SELECT string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position)
			FROM information_schema.columns
			WHERE table_schema = 'sisnotify' AND table_name = $1
			  AND column_name NOT IN ('first_seen_at', 'changed_at', 'removed_at')`, t).Scan(&c); err != nil {
			b.Fatal(err)
		}
		cols[t] = c
	}
	for _, t := range floorTables {
		f, err := os.Create(filepath.Join(dir, t))
		if err != nil {
			b.Fatal(err)
		}
		w := bufio.NewWriterSize(f, 1<<20)
		if _, err := conn.PgConn().CopyTo(ctx, w, "COPY sisnotify."+t+" ("+cols[t]+") TO STDOUT (FORMAT binary)"); err != nil {
			b.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
	exec := func(q string) {
		if _, err := conn.Exec(ctx, q); err != nil {
			b.Fatalf("%s: %v", q, err)
		}
	}
	exec(`CREATE SCHEMA bench_floor`)
	defer func() {
		// Not exec: after a Fatal in the load this runs while the
		// goroutine is already exiting, and it must only report.
		if _, err := conn.Exec(ctx, `DROP SCHEMA bench_floor CASCADE`); err != nil {
			b.Errorf("drop the floor's copies: %v", err)
		}
	}()
	for _, t := range floorTables {
		exec(fmt.Sprintf(`CREATE TABLE bench_floor.%s (LIKE sisnotify.%[1]s INCLUDING ALL)`, t))
	}
	// As the sync found PostgreSQL: not writing out the night's dirty
	// pages. CHECKPOINT needs a superuser (or pg_checkpoint); without
	// one the load is measured as it comes.
	_, _ = conn.Exec(ctx, `CHECKPOINT`)
	p := measure("the rows' load alone", "rows", func() int64 {
		tx, err := conn.Begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		var rows int64
		for _, t := range floorTables {
			f, err := os.Open(filepath.Join(dir, t))
			if err != nil {
				b.Fatal(err)
			}
			tag, err := conn.PgConn().CopyFrom(ctx, bufio.NewReaderSize(f, 1<<20), "COPY bench_floor."+t+" ("+cols[t]+") FROM STDIN (FORMAT binary)")
			f.Close()
			if err != nil {
				b.Fatal(err)
			}
			rows += tag.RowsAffected()
		}
		if err := tx.Commit(ctx); err != nil {
			b.Fatal(err)
		}
		return rows
	})
	p.note = fmt.Sprintf("%.2f× the plain read: PostgreSQL writing the students and travel requests the sync wrote, from files, in one transaction, after the night (the first sync's floor here)",
		ratio(p.d, plain.d))
	return p
}
