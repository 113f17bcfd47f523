package studentpage

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
const fixtureStudents = 500

// Built once for the package; every test copies its own.
var dbTemplate testenv.Template // the worker database after one night's sync and evaluation

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	f, err := nighttest.New(context.Background(), "studentpage", fixtureStudents, 5, fixtureNight)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer f.Drop()
	dbTemplate = f.DB
	return m.Run()
}

// testDB is a worker database of the test's own: the fixture's night,
// synced and evaluated, nothing sent.
func testDB(t testing.TB) *sqlx.DB {
	t.Helper()
	return testenv.New(t, dbTemplate.Name).Open(t)
}
