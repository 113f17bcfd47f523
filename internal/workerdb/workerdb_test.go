package workerdb_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"

	"github.com/iec-almaty/sisnotify/integrations/testenv"
	"github.com/iec-almaty/sisnotify/internal/workerdb"
)

// A pool from Open is an ordinary lib/pq pool that knows its URL; one
// opened otherwise says it does not, and MustURL says what to do.
func TestOpenRemembersTheURL(t *testing.T) {
	d := testenv.New(t, "")
	db, err := workerdb.Open(d.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var one int
	if err := db.GetContext(context.Background(), &one, `SELECT $1::int`, 1); err != nil || one != 1 {
		t.Fatalf("query through the pool: %d, %v", one, err)
	}
	if u, ok := workerdb.URL(db); !ok || u != d.URL {
		t.Errorf("URL = %q, %v; want %q", u, ok, d.URL)
	}

	plain, err := sqlx.Open("postgres", d.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, ok := workerdb.URL(plain); ok {
		t.Error("URL of a pool not opened by Open: ok")
	}
	if _, err := workerdb.MustURL(plain); err == nil || !strings.Contains(err.Error(), "workerdb.Open") {
		t.Errorf("MustURL: %v, want an error naming workerdb.Open", err)
	}
}

// A URL lib/pq cannot read is refused at Open, not at the first query.
func TestOpenRefusesABadURL(t *testing.T) {
	if _, err := workerdb.Open("postgres://%zz"); err == nil {
		t.Fatal("Open accepted a malformed URL")
	}
}
