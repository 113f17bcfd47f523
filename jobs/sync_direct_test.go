package jobs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/iec-almaty/sisnotify/integrations/sis"
	"github.com/iec-almaty/sisnotify/integrations/sis/sisdemo"
	"github.com/iec-almaty/sisnotify/integrations/testenv"
	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/store"
)

// syncLogged syncs into db and returns the result and, by table, whether
// it was loaded directly.
func (e *env) syncLogged(t *testing.T, db *sqlx.DB) (jobs.SyncResult, map[string]bool) {
	t.Helper()
	var buf bytes.Buffer
	s := &jobs.Sync{SIS: sis.NewReader(e.sisURL), DB: db, Log: slog.New(slog.NewJSONHandler(&buf, nil))}
	res, err := s.Run(context.Background(), asOf)
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	direct := map[string]bool{}
	for _, line := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
		var rec struct {
			Msg    string `json:"msg"`
			Table  string `json:"table"`
			Direct bool   `json:"direct_load"`
		}
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec.Msg == "sync table" {
			direct[rec.Table] = rec.Direct
		}
	}
	return res, direct
}

// dummyKey sorts after every key of the test's SIS.
const dummyKey = "~dummy"

// snapshotDump is every row of the snapshot and every problem, the
// timestamps written as "null", "now" (the sync's start) or "other".
func snapshotDump(t *testing.T, db *sqlx.DB) []string {
	t.Helper()
	when := func(col string) string {
		return fmt.Sprintf(`CASE WHEN %[1]s IS NULL THEN 'null' WHEN %[1]s = (SELECT max(started_at) FROM sisnotify.syncs WHERE status = 'ok') THEN 'now' ELSE 'other' END AS %[1]s`, col)
	}
	queries := []string{
		`SELECT 'faculty', faculty_id, name, dean_name, dean_email, dean_language, row_hash, ` + when("first_seen_at") + `, ` + when("changed_at") + `, ` + when("removed_at") + `
		 FROM sisnotify.faculties WHERE faculty_id <> '` + dummyKey + `'`,
		`SELECT 'period', period_id, kind, starts_on, ends_on, row_hash, ` + when("first_seen_at") + `, ` + when("changed_at") + `, ` + when("removed_at") + `
		 FROM sisnotify.academic_periods WHERE period_id <> '` + dummyKey + `'`,
		`SELECT 'student', student_id, given_name, family_name, email, phone, preferred_language, citizenship, visa_regime, faculty_id,
		   enrollment_status, passport_number, passport_expires_on, planned_entry_on, invitation_docs_on, entered_on, office_check_in_on,
		   registered_on, registration_expires_on, extension_requested_on, moved_on, address_registered_on, sis_updated_at, row_hash, last_sync_id,
		   ` + when("first_seen_at") + `, ` + when("changed_at") + `, ` + when("removed_at") + `, ` + when("passport_changed_at") + `,
		   ` + when("entry_changed_at") + `, ` + when("registration_changed_at") + `, ` + when("move_changed_at") + `
		 FROM sisnotify.students WHERE student_id <> '` + dummyKey + `'`,
		`SELECT 'travel', request_id, student_id, kind, submitted_on, departure_on, return_on, dean_decision, exit_visa_ready, departed_on,
		   returned_on, return_check_in_on, cancelled, sis_updated_at, row_hash, last_sync_id,
		   ` + when("first_seen_at") + `, ` + when("changed_at") + `, ` + when("removed_at") + `
		 FROM sisnotify.travel_requests WHERE request_id <> '` + dummyKey + `'`,
		`SELECT 'problem', entity, row_id, field, code, severity, message, last_sync_id, ` + when("first_seen_at") + `
		 FROM sisnotify.data_problems`,
	}
	var out []string
	for _, q := range queries {
		var rows []string
		if err := db.Select(&rows, `SELECT row_to_json(x)::text FROM (`+q+`) x`); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		out = append(out, rows...)
	}
	slices.Sort(out)
	return out
}

// The initial load writes an empty snapshot directly; a snapshot that is
// not empty is staged and merged. Both end in the same rows, the same
// facts' times and the same problems, bad rows of every class included.
func TestSyncDirectLoadEqualsMerge(t *testing.T) {
	e := newEnv(t)
	if err := sisdemo.CreateSchema(context.Background(), e.sisDB.DB); err != nil {
		t.Fatal(err)
	}
	if _, err := sisdemo.Generate(context.Background(), e.sisDB.DB, sisdemo.Options{Students: 3000, Seed: 7, AsOf: asOf, BadRowShare: 0.05}); err != nil {
		t.Fatal(err)
	}
	// Problems found across tables and rows, too.
	e.exec(t, `ALTER TABLE sis.students DROP CONSTRAINT students_faculty_id_fkey;
		ALTER TABLE sis.travel_requests DROP CONSTRAINT travel_requests_student_id_fkey;
		UPDATE sis.students SET faculty_id = 'MED' WHERE student_id IN ('S0000002', 'S0000003');
		UPDATE sis.students SET faculty_id = E'X\tY' WHERE student_id = 'S0000004';
		INSERT INTO sis.travel_requests (request_id, student_id, kind, submitted_on, departure_on, dean_decision)
		VALUES ('T-ORPHAN', 'NOBODY', 'term', '2026-11-01', '2026-12-01', 'pending');
		ALTER TABLE sis.students RENAME TO students_base;
		CREATE VIEW sis.students AS SELECT * FROM sis.students_base UNION ALL SELECT * FROM sis.students_base WHERE student_id = 'S0000005'`)

	direct, directTables := e.syncLogged(t, e.db)
	for _, table := range []store.Entity{store.EntityFaculty, store.EntityPeriod, store.EntityStudent, store.EntityTravel} {
		if !directTables[string(table)] {
			t.Errorf("initial load: %s not loaded directly (%v)", table, directTables)
		}
	}

	// The same SIS into a snapshot whose tables each hold one removed row.
	merged := testenv.New(t, dbTemplate.Name).Open(t)
	for _, q := range []string{
		`INSERT INTO sisnotify.faculties (faculty_id, name, dean_name, row_hash, removed_at) VALUES ($1, 'x', 'x', 0, now())`,
		`INSERT INTO sisnotify.academic_periods (period_id, row_hash, removed_at) VALUES ($1, 0, now())`,
		`INSERT INTO sisnotify.students (student_id, given_name, family_name, row_hash, last_sync_id, removed_at) VALUES ($1, 'x', 'x', 0, 0, now())`,
		`INSERT INTO sisnotify.travel_requests (request_id, student_id, row_hash, last_sync_id, removed_at) VALUES ($1, $1, 0, 0, now())`,
	} {
		if _, err := merged.Exec(q, dummyKey); err != nil {
			t.Fatal(err)
		}
	}
	viaMerge, mergeTables := e.syncLogged(t, merged)
	for table, d := range mergeTables {
		if d {
			t.Errorf("a snapshot that is not empty: %s loaded directly", table)
		}
	}

	if fmt.Sprint(direct.Tables) != fmt.Sprint(viaMerge.Tables) || direct.Errors != viaMerge.Errors || direct.Warnings != viaMerge.Warnings {
		t.Errorf("direct load: %+v, %d errors, %d warnings; merge: %+v, %d errors, %d warnings",
			direct.Tables, direct.Errors, direct.Warnings, viaMerge.Tables, viaMerge.Errors, viaMerge.Warnings)
	}
	got, want := snapshotDump(t, e.db), snapshotDump(t, merged)
	if len(got) != len(want) {
		t.Errorf("direct load: %d rows and problems; merge: %d", len(got), len(want))
	}
	for i := 0; i < len(got) && i < len(want); i++ {
		if got[i] != want[i] {
			t.Fatalf("first difference:\ndirect: %s\nmerge:  %s", got[i], want[i])
		}
	}
	for _, p := range []string{`"code":"unknown_faculty"`, `"code":"unknown_student"`, `"code":"duplicate_id"`, `"code":"invalid_phone"`, `"passport_changed_at":"now"`, `"removed_at":"null"`} {
		if !slices.ContainsFunc(got, func(s string) bool { return bytes.Contains([]byte(s), []byte(p)) }) {
			t.Errorf("no row with %s: the comparison misses a case", p)
		}
	}

	// And the next night over the directly loaded snapshot changes nothing.
	if again, _ := e.syncLogged(t, e.db); again.Changed() != 0 {
		t.Errorf("the night after the direct load changed %d rows", again.Changed())
	}
}
