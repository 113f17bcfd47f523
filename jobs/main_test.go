package jobs_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/iec-almaty/sisnotify/integrations/sis"
	"github.com/iec-almaty/sisnotify/integrations/testenv"
	"github.com/iec-almaty/sisnotify/migrations"
)

// Templates built once for the package; every test copies its own.
var sisTemplate, dbTemplate testenv.Template

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx := context.Background()
	var err error
	sisTemplate, err = testenv.NewTemplate(ctx, "jobs_sis", func(ctx context.Context, db *sqlx.DB) error {
		_, err := db.ExecContext(ctx, sis.ReferenceSchema)
		return err
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer sisTemplate.Drop()
	dbTemplate, err = testenv.NewTemplate(ctx, "jobs_db", func(ctx context.Context, db *sqlx.DB) error {
		_, err := migrations.Up(ctx, db.DB)
		return err
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer dbTemplate.Drop()
	return m.Run()
}

// env is one test's SIS and worker database.
type env struct {
	sisDB  *sqlx.DB
	sisURL string
	db     *sqlx.DB
	dbURL  string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	s := testenv.New(t, sisTemplate.Name)
	d := testenv.New(t, dbTemplate.Name)
	return &env{sisDB: s.Open(t), sisURL: s.URL, db: d.Open(t), dbURL: d.URL}
}

func (e *env) exec(t testing.TB, q string, args ...any) {
	t.Helper()
	if _, err := e.sisDB.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}
