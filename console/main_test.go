package console

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/iec-almaty/sisnotify/integrations/testenv"
	"github.com/iec-almaty/sisnotify/internal/nighttest"
	"github.com/iec-almaty/sisnotify/jobs/date"
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
	f, err := nighttest.New(context.Background(), "console", fixtureStudents, 3, fixtureNight)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer f.Drop()
	sisTemplate, dbTemplate = f.SIS, f.DB
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
