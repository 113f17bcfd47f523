package main

import (
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/iec-almaty/sisnotify/integrations/mail/mailtest"
	"github.com/iec-almaty/sisnotify/integrations/testenv"
	"github.com/iec-almaty/sisnotify/internal/workerdb"
)

// The feed guard holds a night whose SIS lost 30 % of its students (nothing
// sent, operators and office told, exit non-zero) and lets through one
// that lost 5 %; --force lets the held one through after a person looked.
func TestFeedGuardHoldsABrokenSIS(t *testing.T) {
	testenv.Long(t, "nights over a broken SIS")
	for _, c := range []struct {
		name string
		drop string // how many of the 1,000 students to delete
		held bool
	}{
		{"30% gone", "300", true},
		{"5% gone", "50", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			env, db, smtp := shrunkSIS(t, c.drop)
			before := smtp.Count()
			out, _, err := runCmd(t, env, "run", "--once", "--as-of", "2026-11-26")
			var next int
			if err := db.Get(&next, `SELECT count(*) FROM sisnotify.notices WHERE night = '2026-11-26'`); err != nil {
				t.Fatal(err)
			}
			if !c.held {
				if err != nil {
					t.Fatalf("a 5%% drop was held: %v\n%s", err, out)
				}
				return
			}
			if err == nil || exitStatus(err) != 1 || !strings.Contains(err.Error(), "feed guard") || !strings.Contains(err.Error(), "--force") {
				t.Fatalf("a 30%% drop: %v, want a failed night naming the feed guard and --force", err)
			}
			if next != 0 {
				t.Fatalf("the held night created %d notices", next)
			}
			var present int
			if err := db.Get(&present, `SELECT count(*) FROM sisnotify.students WHERE removed_at IS NULL`); err != nil || present != 1000 {
				t.Fatalf("snapshot has %d students (%v), want the previous 1,000", present, err)
			}
			alerts := map[string]bool{}
			for _, m := range smtp.Messages()[before:] {
				if strings.Contains(m.Header("Subject"), "was held") {
					alerts[m.To[0]] = true
				}
			}
			if !alerts["ops@uni.example"] || !alerts["office@uni.example"] || smtp.Count() != before+2 {
				t.Fatalf("alerts to %v (%d mails), want exactly one each to ops and the office", alerts, smtp.Count()-before)
			}
			if _, _, err := runCmd(t, env, "run", "--once", "--as-of", "2026-11-26", "--force"); err != nil {
				t.Fatalf("--force: %v", err)
			}
		})
	}
}

// shrunkSIS runs a good night of 1,000 demo students on 2026-11-25, then
// deletes drop of them (and their trips) from the SIS, as a broken export
// would. Mail goes to the returned SMTP server; ops@uni.example hears of
// alerts.
func shrunkSIS(t *testing.T, drop string) (map[string]string, *sqlx.DB, *mailtest.Server) {
	t.Helper()
	env, db := nightEnv(t, "1000")
	smtp := mailtest.NewServer(t)
	env["SISNOTIFY_SMTP_URL"] = smtp.URL()
	env["SISNOTIFY_OPS_EMAILS"] = "ops@uni.example"
	if _, _, err := runCmd(t, env, "run", "--once", "--as-of", "2026-11-25"); err != nil {
		t.Fatal(err)
	}
	if _, err := openURL(t, env["SISNOTIFY_SIS_URL"]).Exec(`DELETE FROM sis.travel_requests WHERE student_id IN (SELECT student_id FROM sis.students ORDER BY student_id LIMIT ` + drop + `);
		DELETE FROM sis.students WHERE student_id IN (SELECT student_id FROM sis.students ORDER BY student_id LIMIT ` + drop + `)`); err != nil {
		t.Fatal(err)
	}
	return env, db, smtp
}

func openURL(t *testing.T, url string) *sqlx.DB {
	t.Helper()
	db, err := workerdb.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
