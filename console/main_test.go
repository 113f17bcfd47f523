package console

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/iec-almaty/sisnotify/integrations/sis"
	"github.com/iec-almaty/sisnotify/integrations/sis/sisdemo"
	"github.com/iec-almaty/sisnotify/integrations/testenv"
	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/migrations"
	"github.com/iec-almaty/sisnotify/store"
)

// fixtureNight is the night the fixture's obligations were evaluated on.
var fixtureNight = date.MustParse("2026-11-25")

// fixtureStudents is the size of the fixture's demo SIS.
const fixtureStudents = 2000

// Built once for the package; every test copies its own.
var (
	sisTemplate testenv.Template // the demo SIS of the fixture
	dbTemplate  testenv.Template // the worker database after one night's sync and evaluation
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	ctx := context.Background()
	var err error
	sisTemplate, err = testenv.NewTemplate(ctx, "console_sis", func(ctx context.Context, db *sqlx.DB) error {
		if err := sisdemo.CreateSchema(ctx, db.DB); err != nil {
			return err
		}
		_, err := sisdemo.Generate(ctx, db.DB, sisdemo.Options{Students: fixtureStudents, Seed: 3, AsOf: fixtureNight})
		return err
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer sisTemplate.Drop()
	sisURL := testenv.URLFor(sisTemplate.Name, "")
	dbTemplate, err = testenv.NewTemplate(ctx, "console_db", func(ctx context.Context, db *sqlx.DB) error {
		if _, err := migrations.Up(ctx, db.DB); err != nil {
			return err
		}
		if _, err := (&jobs.Sync{SIS: sis.NewReader(sisURL), DB: db}).Run(ctx, fixtureNight); err != nil {
			return err
		}
		tx, err := store.BeginSnapshotTx(ctx, db)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if _, err := (&jobs.Evaluate{OfficeEmails: []string{"office@uni.example"}}).Run(ctx, tx.Conn(), fixtureNight, false); err != nil {
			return err
		}
		return tx.Commit(ctx)
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer dbTemplate.Drop()
	return m.Run()
}

// testDB is a worker database of the test's own: the fixture's night,
// synced and evaluated, nothing sent.
func testDB(t testing.TB) *sqlx.DB {
	t.Helper()
	return testenv.New(t, dbTemplate.Name).Open(t)
}

// TestFixture checks the fixture has what the console's tests need: open
// obligations, notices, and faculties with deans.
func TestFixture(t *testing.T) {
	db := testDB(t)
	var open, notices, deans int
	if err := db.QueryRow(`SELECT (SELECT count(*) FROM sisnotify.obligations WHERE closed_at IS NULL),
		(SELECT count(*) FROM sisnotify.notices), (SELECT count(*) FROM sisnotify.faculties WHERE dean_email IS NOT NULL)`).Scan(&open, &notices, &deans); err != nil {
		t.Fatal(err)
	}
	if open < 20 || notices < 20 || deans < 2 {
		t.Fatalf("fixture: %d open obligations, %d notices, %d faculties with a dean; want at least 20, 20, 2", open, notices, deans)
	}
	t.Logf("fixture: %d open obligations, %d notices, %d faculties with a dean", open, notices, deans)
}
