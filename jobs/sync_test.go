package jobs_test

import (
	"context"
	"strings"
	"testing"

	"github.com/iec-almaty/sisnotify/integrations/sis"
	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/store"
)

var asOf = date.MustParse("2026-11-25")

func (e *env) sync(t testing.TB) jobs.SyncResult {
	t.Helper()
	s := &jobs.Sync{SIS: sis.NewReader(e.sisURL), DB: e.db}
	res, err := s.Run(context.Background(), asOf)
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	return res
}

type problem struct {
	Entity, RowID, Field, Code, Severity, Message string
}

func (e *env) problems(t testing.TB) map[string]problem {
	t.Helper()
	var ps []problem
	if err := e.db.Select(&ps, `SELECT entity, row_id AS rowid, field, code, severity, message FROM sisnotify.data_problems ORDER BY 1,2,3,4`); err != nil {
		t.Fatal(err)
	}
	out := map[string]problem{}
	for _, p := range ps {
		out[p.Entity+"/"+p.RowID+"/"+p.Field+"/"+p.Code] = p
	}
	return out
}

const baseFixture = `
INSERT INTO sis.faculties VALUES
 ('ENG', 'Engineering', 'Dean Engineering', 'dean.eng@uni.example', 'ru'),
 ('LAW', 'Law', 'Dean Law', NULL, NULL);
INSERT INTO sis.academic_periods VALUES
 ('2026-fall', 'semester', '2026-09-01', '2026-12-24'),
 ('2026-winter', 'winter_break', '2026-12-25', '2027-01-24');
INSERT INTO sis.students (student_id, given_name, family_name, email, phone, preferred_language, citizenship, visa_regime, faculty_id, enrollment_status, passport_number, passport_expires_on, entered_on, registered_on, registration_expires_on)
VALUES
 ('S1', 'Aigerim', 'Bekova', 'aigerim@student.example', '+77011234567', 'kk', 'KG', 'eaeu', 'ENG', 'active', 'P1', '2027-05-01', '2026-11-20', NULL, '2027-06-30'),
 ('S2', 'Wei', 'Zhang', 'wei@student.example', '+77021234567', 'en', 'CN', 'visa', 'LAW', 'active', 'P2', '2030-01-01', NULL, NULL, NULL);
INSERT INTO sis.travel_requests (request_id, student_id, kind, submitted_on, departure_on, return_on, dean_decision)
VALUES ('T1', 'S2', 'term', '2026-11-20', '2026-12-01', '2026-12-05', 'pending');
`

func TestSyncDetectsChangesAndRemovals(t *testing.T) {
	e := newEnv(t)
	e.exec(t, baseFixture)

	first := e.sync(t)
	if c := first.Tables[store.EntityStudent]; c.Read != 2 || c.New != 2 || c.Changed != 0 {
		t.Fatalf("first sync students = %+v, want 2 read, 2 new", c)
	}
	if c := first.Tables[store.EntityTravel]; c.New != 1 {
		t.Fatalf("first sync travel = %+v, want 1 new", c)
	}
	if got := first.Changed(); got != 2+1+2+2 {
		t.Errorf("first sync changed %d rows, want 7 (all new)", got)
	}

	second := e.sync(t)
	if got := second.Changed(); got != 0 {
		t.Fatalf("unchanged SIS: second sync changed %d rows, want 0 (%+v)", got, second.Tables)
	}

	// A new passport for S1, and only updated_at touched for S2: one change.
	e.exec(t, `UPDATE sis.students SET passport_expires_on = '2032-05-01' WHERE student_id = 'S1'`)
	e.exec(t, `UPDATE sis.students SET updated_at = now() + interval '1 day' WHERE student_id = 'S2'`)
	third := e.sync(t)
	if c := third.Tables[store.EntityStudent]; c.Changed != 1 || c.New != 0 {
		t.Fatalf("after a passport change: %+v, want exactly 1 changed", c)
	}
	var passportChanged, entryChanged, firstSeen string
	if err := e.db.QueryRow(`SELECT passport_changed_at::text, entry_changed_at::text, first_seen_at::text FROM sisnotify.students WHERE student_id = 'S1'`).Scan(&passportChanged, &entryChanged, &firstSeen); err != nil {
		t.Fatal(err)
	}
	if passportChanged <= entryChanged {
		t.Errorf("passport_changed_at %s should be later than entry_changed_at %s", passportChanged, entryChanged)
	}
	var expires string
	if err := e.db.Get(&expires, `SELECT passport_expires_on::text FROM sisnotify.students WHERE student_id = 'S1'`); err != nil || expires != "2032-05-01" {
		t.Fatalf("snapshot passport_expires_on = %q, %v", expires, err)
	}

	// A student leaves the SIS, with their travel request.
	e.exec(t, `DELETE FROM sis.travel_requests; DELETE FROM sis.students WHERE student_id = 'S2'`)
	fourth := e.sync(t)
	if c := fourth.Tables[store.EntityStudent]; c.Removed != 1 || c.Changed != 0 {
		t.Fatalf("after a removal: %+v, want 1 removed", c)
	}
	if c := fourth.Tables[store.EntityTravel]; c.Removed != 1 {
		t.Fatalf("after a removal: travel %+v, want 1 removed", c)
	}
	var removed int
	if err := e.db.Get(&removed, `SELECT count(*) FROM sisnotify.students WHERE removed_at IS NOT NULL`); err != nil || removed != 1 {
		t.Fatalf("removed students in snapshot = %d, %v; want 1 kept with removed_at", removed, err)
	}
	// And comes back: a change, not a new row.
	e.exec(t, `INSERT INTO sis.students (student_id, given_name, family_name, visa_regime, enrollment_status) VALUES ('S2', 'Wei', 'Zhang', 'visa', 'active')`)
	fifth := e.sync(t)
	if c := fifth.Tables[store.EntityStudent]; c.Changed != 1 || c.New != 0 {
		t.Fatalf("a returning student: %+v, want 1 changed", c)
	}

	var statuses []string
	if err := e.db.Select(&statuses, `SELECT status FROM sisnotify.syncs ORDER BY sync_id`); err != nil {
		t.Fatal(err)
	}
	if strings.Join(statuses, ",") != "ok,ok,ok,ok,ok" {
		t.Errorf("sync log statuses = %v", statuses)
	}
}

func TestSyncRunsWithASelectOnlyRole(t *testing.T) {
	e := newEnv(t)
	e.exec(t, baseFixture)
	role := createReadOnlyRole(t, e)
	ro := &jobs.Sync{SIS: sis.NewReader(withUser(t, e.sisURL, role)), DB: e.db}
	res, err := ro.Run(context.Background(), asOf)
	if err != nil {
		t.Fatalf("sync as a SELECT-only role: %v", err)
	}
	if res.Tables[store.EntityStudent].New != 2 {
		t.Fatalf("read %+v", res.Tables)
	}
	// The role really cannot write.
	roDB := openAs(t, e.sisURL, role)
	if _, err := roDB.Exec(`UPDATE sis.students SET email = NULL`); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("UPDATE as the read-only role: %v, want permission denied", err)
	}
}

// A SIS that fails in the middle of the read leaves the previous snapshot
// untouched and the failure on record.
func TestSyncFailureKeepsPreviousSnapshot(t *testing.T) {
	e := newEnv(t)
	e.exec(t, baseFixture)
	e.sync(t)
	// Students change, then the read fails on the next table.
	e.exec(t, `UPDATE sis.students SET passport_expires_on = '2031-01-01'`)
	e.exec(t, `ALTER TABLE sis.travel_requests RENAME TO travel_requests_gone`)
	s := &jobs.Sync{SIS: sis.NewReader(e.sisURL), DB: e.db}
	if _, err := s.Run(context.Background(), asOf); err == nil || !strings.Contains(err.Error(), "travel_requests") {
		t.Fatalf("sync with a broken SIS: %v, want an error naming the table", err)
	}
	var changed int
	if err := e.db.Get(&changed, `SELECT count(*) FROM sisnotify.students WHERE passport_expires_on = '2031-01-01'`); err != nil || changed != 0 {
		t.Fatalf("%d students took the half-read change (err %v), want 0", changed, err)
	}
	var status, msg string
	if err := e.db.QueryRow(`SELECT status, error FROM sisnotify.syncs ORDER BY sync_id DESC LIMIT 1`).Scan(&status, &msg); err != nil || status != "failed" || msg == "" {
		t.Fatalf("last sync = %s %q (%v), want failed with the error", status, msg, err)
	}
	// The SIS recovers: the change arrives.
	e.exec(t, `ALTER TABLE sis.travel_requests_gone RENAME TO travel_requests`)
	if res := e.sync(t); res.Tables[store.EntityStudent].Changed != 2 {
		t.Fatalf("after recovery: %+v", res.Tables[store.EntityStudent])
	}
}

// A faculty or an academic period that leaves the SIS is kept, marked
// removed, and the sync goes on: those tables keep no last sync of their
// own, and marking them used to fail every night's sync from then on.
func TestSyncRemovedFacultyAndPeriod(t *testing.T) {
	e := newEnv(t)
	e.exec(t, baseFixture)
	e.sync(t)
	e.exec(t, `UPDATE sis.students SET faculty_id = 'ENG' WHERE faculty_id = 'LAW';
		DELETE FROM sis.faculties WHERE faculty_id = 'LAW';
		DELETE FROM sis.academic_periods WHERE period_id = '2026-winter'`)
	res := e.sync(t)
	if f, p := res.Tables[store.EntityFaculty].Removed, res.Tables[store.EntityPeriod].Removed; f != 1 || p != 1 {
		t.Fatalf("removed %d faculties and %d periods, want 1 and 1", f, p)
	}
	var gone []string
	if err := e.db.Select(&gone, `SELECT faculty_id FROM sisnotify.faculties WHERE removed_at IS NOT NULL
		UNION ALL SELECT period_id FROM sisnotify.academic_periods WHERE removed_at IS NOT NULL ORDER BY 1`); err != nil {
		t.Fatal(err)
	}
	if strings.Join(gone, ",") != "2026-winter,LAW" {
		t.Fatalf("marked removed: %v", gone)
	}
}
