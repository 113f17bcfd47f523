package studentpage

import (
	"context"
	"fmt"
	"os"
	"strconv"
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
const fixtureStudents = 500

// Built once for the package; every test copies its own.
var dbTemplate testenv.Template // the worker database after one night's sync and evaluation

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	ctx := context.Background()
	var err error
	var drop func()
	dbTemplate, drop, err = newFixture(ctx, "studentpage", fixtureStudents)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer drop()
	return m.Run()
}

// newFixture makes a demo SIS of n students and a worker database after
// its first night's sync and evaluation (as console's fixture does).
func newFixture(ctx context.Context, name string, n int) (testenv.Template, func(), error) {
	sisT, err := testenv.NewTemplate(ctx, name+"_sis"+strconv.Itoa(n), func(ctx context.Context, db *sqlx.DB) error {
		if err := sisdemo.CreateSchema(ctx, db.DB); err != nil {
			return err
		}
		_, err := sisdemo.Generate(ctx, db.DB, sisdemo.Options{Students: n, Seed: 5, AsOf: fixtureNight})
		return err
	})
	if err != nil {
		return testenv.Template{}, nil, err
	}
	sisURL := testenv.URLFor(sisT.Name, "")
	dbT, err := testenv.NewTemplate(ctx, name+"_db"+strconv.Itoa(n), func(ctx context.Context, db *sqlx.DB) error {
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
		sisT.Drop()
		return testenv.Template{}, nil, err
	}
	return dbT, func() { dbT.Drop(); sisT.Drop() }, nil
}

// testDB is a worker database of the test's own: the fixture's night,
// synced and evaluated, nothing sent.
func testDB(t testing.TB) *sqlx.DB {
	t.Helper()
	return testenv.New(t, dbTemplate.Name).Open(t)
}
