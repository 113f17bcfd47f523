package pgcopy_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/iec-almaty/sisnotify/integrations/testenv"
	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/store/internal/pgcopy"
)

// pgxConn opens a connection of pgx's database/sql driver on a throwaway
// database.
func pgxConn(t testing.TB) *sql.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(testenv.New(t, "").URL)
	if err != nil {
		t.Fatal(err)
	}
	db := stdlib.OpenDB(*cfg)
	t.Cleanup(func() { db.Close() })
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// Every kind of value the worker writes comes back as PostgreSQL reads it,
// through the binary format, across several batches.
func TestRowsRoundTrip(t *testing.T) {
	ctx := context.Background()
	conn := pgxConn(t)
	if _, err := conn.ExecContext(ctx, `CREATE TABLE t (n int, s text, e text, d date, i int, b bigint, ok boolean, j jsonb, ts timestamptz)`); err != nil {
		t.Fatal(err)
	}
	cp, err := pgcopy.Start(ctx, conn, "t", "n, s, e, d, i, b, ok, j, ts")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 3, 9, 30, 15, 123456000, time.FixedZone("", 5*3600))
	odd := "tab\there\nnew line \\ back slash, «Алматы» 日本"
	var l pgcopy.Line
	const rows = 5000 // several batches
	for n := 0; n < rows; n++ {
		l.Reset()
		l.Int32(int32(n))
		l.Str(odd)
		l.Nullable("")
		l.Date(date.Of(2026, time.February, 28).AddDays(n % 3))
		l.Int32(-7)
		l.Int64(-1 << 40)
		l.Bool(n%2 == 0, n%3 != 0)
		l.JSONB([]byte(`{"f":"email","c":"malformed_email"}`))
		l.Timestamp(at)
		if err := cp.Row(l.B); err != nil {
			t.Fatal(err)
		}
	}
	if err := cp.Finish(); err != nil {
		t.Fatal(err)
	}
	var count, withNull, knownBool int
	if err := conn.QueryRowContext(ctx, `SELECT count(*), count(*) FILTER (WHERE e IS NULL), count(ok) FROM t`).Scan(&count, &withNull, &knownBool); err != nil {
		t.Fatal(err)
	}
	if count != rows || withNull != rows || knownBool != rows-(rows+2)/3 {
		t.Errorf("rows %d, NULL e %d, known booleans %d; want %d, %d, %d", count, withNull, knownBool, rows, rows, rows-(rows+2)/3)
	}
	var s, d, j, ts string
	var i int
	var b int64
	var ok sql.NullBool
	if err := conn.QueryRowContext(ctx, `SELECT s, d::text, i, b, ok, j->>'c', to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') FROM t WHERE n = 4`).Scan(&s, &d, &i, &b, &ok, &j, &ts); err != nil {
		t.Fatal(err)
	}
	if s != odd || d != "2026-03-01" || i != -7 || b != -1<<40 || ok.Valid != true || ok.Bool != true || j != "malformed_email" || ts != "2026-12-03 04:30:15.123456" {
		t.Errorf("row 4 = %q %s %d %d %v %s %s", s, d, i, b, ok, j, ts)
	}
}

// A value of the wrong size for its column fails the COPY with the
// server's error, at the latest by Finish, and nothing of it is kept.
func TestWrongTypeFails(t *testing.T) {
	ctx := context.Background()
	conn := pgxConn(t)
	if _, err := conn.ExecContext(ctx, `CREATE TABLE t (i int)`); err != nil {
		t.Fatal(err)
	}
	cp, err := pgcopy.Start(ctx, conn, "t", "i")
	if err != nil {
		t.Fatal(err)
	}
	var l pgcopy.Line
	l.Reset()
	l.Int64(1) // an integer column takes 4 bytes
	err = cp.Row(l.B)
	if ferr := cp.Finish(); err == nil {
		err = ferr
	}
	if err == nil || !strings.Contains(err.Error(), "binary data") {
		t.Fatalf("err = %v, want the server's complaint about the binary data", err)
	}
	var n int
	if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM t`).Scan(&n); err != nil || n != 0 {
		t.Errorf("rows = %d (%v), want 0 and the connection usable", n, err)
	}
}

// A connection that is gone fails Start with an error at once, rather than
// leaving it waiting for a COPY that never begins.
func TestStartOnAClosedConnection(t *testing.T) {
	conn := pgxConn(t)
	conn.Close()
	done := make(chan error, 1)
	go func() {
		_, err := pgcopy.Start(context.Background(), conn, "t", "i")
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Start on a closed connection: no error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Start on a closed connection did not return within 5 s")
	}
}
