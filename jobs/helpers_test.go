package jobs_test

import (
	"net/url"
	"strconv"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/iec-almaty/sisnotify/integrations/testenv"
	"github.com/iec-almaty/sisnotify/internal/workerdb"
	"github.com/iec-almaty/sisnotify/jobs/config"
	"github.com/iec-almaty/sisnotify/jobs/date"
)

// createReadOnlyRole makes a login role that can only read the sis schema.
func createReadOnlyRole(t *testing.T, e *env) string {
	t.Helper()
	var dbname string
	if err := e.sisDB.Get(&dbname, `SELECT current_database()`); err != nil {
		t.Fatal(err)
	}
	return testenv.CreateRole(t, e.sisDB, "sis_reader",
		`GRANT CONNECT ON DATABASE "`+dbname+`" TO {role}`,
		`GRANT USAGE ON SCHEMA sis TO {role}`,
		`GRANT SELECT ON ALL TABLES IN SCHEMA sis TO {role}`)
}

func withUser(t *testing.T, raw, user string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(user)
	return u.String()
}

func openAs(t *testing.T, raw, user string) *sqlx.DB {
	t.Helper()
	db, err := workerdb.Open(withUser(t, raw, user))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func itoa(n int) string { return strconv.Itoa(n) }

func mustDate(s string) date.Date { return date.MustParse(s) }

func mustQuiet(t *testing.T, s string) config.QuietHours {
	t.Helper()
	q, err := config.ParseQuietHours(s)
	if err != nil {
		t.Fatal(err)
	}
	return q
}
