// Package nighttest builds, for tests, the databases of a night that has
// run: a demo SIS and a worker database after that night's sync and
// evaluation (nothing sent). The packages that show what a night made (the
// console, the student page) start their tests from it.
package nighttest

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/iec-almaty/sisnotify/integrations/sis"
	"github.com/iec-almaty/sisnotify/integrations/sis/sisdemo"
	"github.com/iec-almaty/sisnotify/integrations/testenv"
	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/migrations"
	"github.com/iec-almaty/sisnotify/store"
)

// OfficeEmails is the office the evaluation writes urgent notices to.
var OfficeEmails = []string{"office@uni.example"}

// Fixture is the templates of one night; a test copies its own databases
// from them (testenv.New).
type Fixture struct {
	SIS testenv.Template // the demo SIS
	DB  testenv.Template // the worker database after the night
}

// New builds a demo SIS of students (seed) as of night, and a worker
// database migrated, synced from it and evaluated on night. name prefixes
// the templates' names.
func New(ctx context.Context, name string, students int, seed int64, night date.Date) (Fixture, error) {
	var f Fixture
	var err error
	f.SIS, err = testenv.NewTemplate(ctx, fmt.Sprintf("%s_sis%d", name, students), func(ctx context.Context, db *sqlx.DB) error {
		if err := sisdemo.CreateSchema(ctx, db.DB); err != nil {
			return err
		}
		_, err := sisdemo.Generate(ctx, db.DB, sisdemo.Options{Students: students, Seed: seed, AsOf: night})
		return err
	})
	if err != nil {
		return f, fmt.Errorf("nighttest: SIS: %w", err)
	}
	sisURL := testenv.URLFor(f.SIS.Name, "")
	f.DB, err = testenv.NewTemplate(ctx, fmt.Sprintf("%s_db%d", name, students), func(ctx context.Context, db *sqlx.DB) error {
		if _, err := migrations.Up(ctx, db.DB); err != nil {
			return err
		}
		if _, err := (&jobs.Sync{SIS: sis.NewReader(sisURL), DB: db}).Run(ctx, night); err != nil {
			return err
		}
		return Evaluate(ctx, db, night)
	})
	if err != nil {
		f.SIS.Drop()
		return f, fmt.Errorf("nighttest: worker database: %w", err)
	}
	return f, nil
}

// Evaluate evaluates night on db, as the night's evaluate phase does.
func Evaluate(ctx context.Context, db *sqlx.DB, night date.Date) error {
	tx, err := store.BeginSnapshotTx(ctx, db)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := (&jobs.Evaluate{OfficeEmails: OfficeEmails}).Run(ctx, tx.Conn(), night, false); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// Drop drops both templates.
func (f Fixture) Drop() {
	f.DB.Drop()
	f.SIS.Drop()
}
