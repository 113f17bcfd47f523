package jobs_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/iec-almaty/sisnotify/integrations/sis"
	"github.com/iec-almaty/sisnotify/integrations/testenv"
	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/store"
)

// syncChanges runs a sync that trusts the SIS's updated_at, as of day.
func (e *env) syncChanges(t *testing.T, day date.Date) jobs.SyncResult {
	t.Helper()
	s := &jobs.Sync{SIS: sis.NewReader(e.sisURL), DB: e.db, TrustUpdatedAt: true}
	res, err := s.Run(context.Background(), day)
	if err != nil {
		t.Fatalf("sync as of %s: %v", day, err)
	}
	return res
}

func (e *env) snapshotText(t *testing.T, q string) string {
	t.Helper()
	var v string
	if err := e.db.Get(&v, q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return v
}

// With SISNOTIFY_SIS_UPDATED_AT=trusted a night reads the students and
// travel requests whose updated_at moved, and finds what changed among
// them; a deletion, which a read of changes cannot see, makes the table
// read in full; a change that did not move updated_at waits for the
// weekly full read.
func TestSyncReadsOnlyChanges(t *testing.T) {
	e := newEnv(t)
	e.exec(t, baseFixture)
	// The rows were last changed days ago.
	e.exec(t, `UPDATE sis.students SET updated_at = now() - interval '3 days';
		UPDATE sis.travel_requests SET updated_at = now() - interval '3 days'`)

	first := e.syncChanges(t, asOf)
	if first.ChangesSince != nil {
		t.Fatalf("first sync read changes since %v, want a full read (none before it)", first.ChangesSince)
	}
	if c := first.Tables[store.EntityStudent]; c.Read != 2 || c.New != 2 {
		t.Fatalf("first sync students = %+v, want 2 read, 2 new", c)
	}

	day := asOf.AddDays(1)
	second := e.syncChanges(t, day)
	if second.ChangesSince == nil {
		t.Fatal("second sync read in full, want changes only")
	}
	for _, ent := range []store.Entity{store.EntityStudent, store.EntityTravel} {
		if c := second.Tables[ent]; c.Read != 0 || c.New+c.Changed+c.Removed != 0 {
			t.Fatalf("unchanged SIS: %s = %+v, want nothing read", ent, c)
		}
	}
	if c := second.Tables[store.EntityFaculty]; c.Read != 2 {
		t.Fatalf("faculties = %+v, want read in full (2)", c)
	}

	// A new passport for S1, S2 touched without a change, S3 arrives,
	// and the travel request is approved.
	e.exec(t, `UPDATE sis.students SET passport_expires_on = '2032-05-01', updated_at = now() WHERE student_id = 'S1';
		UPDATE sis.students SET updated_at = now() WHERE student_id = 'S2';
		INSERT INTO sis.students (student_id, given_name, family_name, email, visa_regime, enrollment_status) VALUES ('S3', 'Ali', 'Khan', 'not-an-email', 'visa', 'active');
		UPDATE sis.travel_requests SET dean_decision = 'approved', updated_at = now()`)
	passportBefore := e.snapshotText(t, `SELECT passport_changed_at::text FROM sisnotify.students WHERE student_id = 'S2'`)
	day = day.AddDays(1)
	third := e.syncChanges(t, day)
	if third.ChangesSince == nil {
		t.Fatal("third sync read in full, want changes only")
	}
	if c := third.Tables[store.EntityStudent]; c.Read != 3 || c.New != 1 || c.Changed != 1 || c.Removed != 0 {
		t.Fatalf("students = %+v, want 3 read, 1 new, 1 changed", c)
	}
	if c := third.Tables[store.EntityTravel]; c.Read != 1 || c.Changed != 1 {
		t.Fatalf("travel = %+v, want 1 read, 1 changed", c)
	}
	if v := e.snapshotText(t, `SELECT passport_expires_on::text FROM sisnotify.students WHERE student_id = 'S1'`); v != "2032-05-01" {
		t.Fatalf("S1's passport in the snapshot = %s, want the new one", v)
	}
	if v := e.snapshotText(t, `SELECT passport_changed_at::text FROM sisnotify.students WHERE student_id = 'S2'`); v != passportBefore {
		t.Fatalf("S2, touched but unchanged: passport_changed_at %s, was %s", v, passportBefore)
	}
	if v := e.snapshotText(t, `SELECT dean_decision FROM sisnotify.travel_requests WHERE request_id = 'T1'`); v != "approved" {
		t.Fatalf("T1's decision = %s, want approved", v)
	}
	if _, ok := e.problems(t)["student/S3/email/malformed_email"]; !ok {
		t.Fatalf("S3's bad email is not a data problem: %v", e.problems(t))
	}

	// Two days pass (a read of changes reads back a day before the last
	// read). Then the SIS changes S2's email without moving updated_at: a
	// SIS that does not keep the promise. Nights that read changes miss
	// it...
	e.exec(t, `UPDATE sis.students SET updated_at = updated_at - interval '2 days';
		UPDATE sis.travel_requests SET updated_at = updated_at - interval '2 days'`)
	if res := e.syncChanges(t, day.AddDays(1)); res.ChangesSince == nil || res.Tables[store.EntityStudent].Read != 0 {
		t.Fatalf("sync = %+v, want changes only, none read", res)
	}
	e.exec(t, `UPDATE sis.students SET email = 'wei.new@student.example' WHERE student_id = 'S2'`)
	day = day.AddDays(2)
	if res := e.syncChanges(t, day); res.ChangesSince == nil || res.Changed() != 0 {
		t.Fatalf("sync = %+v, want changes only, none found", res)
	}
	// ...and a week after the last full read, the night reads in full.
	day = asOf.AddDays(7)
	full := e.syncChanges(t, day)
	if full.ChangesSince != nil {
		t.Fatalf("a week after the full read: changes since %v, want a full read", full.ChangesSince)
	}
	if c := full.Tables[store.EntityStudent]; c.Read != 3 || c.Changed != 1 {
		t.Fatalf("full read = %+v, want 3 read, S2's email changed", c)
	}
	if v := e.snapshotText(t, `SELECT email FROM sisnotify.students WHERE student_id = 'S2'`); v != "wei.new@student.example" {
		t.Fatalf("S2's email = %s after the full read", v)
	}

	// A student leaves the SIS: the count of keys gives it away, and the
	// students are read in full; the travel requests, untouched, are not.
	e.exec(t, `DELETE FROM sis.students WHERE student_id = 'S3'`)
	day = day.AddDays(1)
	gone := e.syncChanges(t, day)
	if c := gone.Tables[store.EntityStudent]; c.Read != 2 || c.Removed != 1 {
		t.Fatalf("after a deletion: students = %+v, want read in full, 1 removed", c)
	}
	if c := gone.Tables[store.EntityTravel]; c.Read != 0 {
		t.Fatalf("after a deletion: travel = %+v, want changes only (none)", c)
	}
	if v := e.snapshotText(t, `SELECT full_read::text FROM sisnotify.syncs ORDER BY sync_id DESC LIMIT 1`); v != "false" {
		t.Fatalf("the deletion's night recorded full_read %s, want false (the travel requests read changes)", v)
	}
	if v := e.snapshotText(t, `SELECT (removed_at IS NOT NULL)::text FROM sisnotify.students WHERE student_id = 'S3'`); v != "true" {
		t.Fatal("S3 is not removed from the snapshot")
	}
	if _, ok := e.problems(t)["student/S3/email/malformed_email"]; ok {
		t.Fatal("the removed student's problem stays")
	}
	// Still a read of changes since the last read: nothing more.
	day = day.AddDays(1)
	if res := e.syncChanges(t, day); res.ChangesSince == nil || res.Changed() != 0 {
		t.Fatalf("after the deletion's night: %+v, want changes only, none", res)
	}
	// A student leaves with their travel request: both tables are read in
	// full, and the night counts as a full read.
	e.exec(t, `DELETE FROM sis.travel_requests; DELETE FROM sis.students WHERE student_id = 'S2'`)
	both := e.syncChanges(t, day.AddDays(1))
	if both.ChangesSince != nil || both.Tables[store.EntityStudent].Removed != 1 || both.Tables[store.EntityTravel].Removed != 1 {
		t.Fatalf("after deletions in both tables: %+v, want both read in full, 1 removed each", both)
	}
	if v := e.snapshotText(t, `SELECT full_read::text FROM sisnotify.syncs ORDER BY sync_id DESC LIMIT 1`); v != "true" {
		t.Fatalf("a night that fell back to full reads recorded full_read %s", v)
	}
}

// The feed guard measures a read of changes as it does a full one: too
// many students losing a deadline date holds the night.
func TestSyncChangesFeedGuard(t *testing.T) {
	e := newEnv(t)
	e.exec(t, baseFixture)
	e.exec(t, `UPDATE sis.students SET updated_at = now() - interval '3 days'`)
	e.syncChanges(t, asOf)
	e.exec(t, `UPDATE sis.students SET passport_expires_on = NULL, updated_at = now() WHERE student_id = 'S1'`)
	s := &jobs.Sync{SIS: sis.NewReader(e.sisURL), DB: e.db, TrustUpdatedAt: true,
		Guard: &store.Guard{MaxRosterDrop: 0.2, MaxEmptied: 0.2}}
	_, err := s.Run(context.Background(), asOf.AddDays(1))
	if !errors.Is(err, store.ErrFeedGuard) {
		t.Fatalf("1 of 2 students lost a passport date: %v, want the feed guard", err)
	}
	if v := e.snapshotText(t, `SELECT passport_expires_on::text FROM sisnotify.students WHERE student_id = 'S1'`); v != "2027-05-01" {
		t.Fatalf("held night changed the snapshot: %s", v)
	}
}

// A read of changes leaves the snapshot and its data problems exactly as a
// full read does, night after night, on a generated SIS where students
// change, arrive and leave and travel requests are decided and deleted.
func TestSyncChangesMatchFullRead(t *testing.T) {
	e := newEnv(t)
	e.generate(t, 2000)
	// A second worker database, synced in full from the same SIS.
	fullDB := testenv.New(t, dbTemplate.Name).Open(t)
	full := &jobs.Sync{SIS: sis.NewReader(e.sisURL), DB: fullDB}
	changes := &jobs.Sync{SIS: sis.NewReader(e.sisURL), DB: e.db, TrustUpdatedAt: true}
	nights := []string{
		``,
		`UPDATE sis.students SET passport_expires_on = passport_expires_on + 365, updated_at = now() WHERE student_id IN (SELECT student_id FROM sis.students ORDER BY md5(student_id) LIMIT 40);
		 UPDATE sis.students SET email = NULL, updated_at = now() WHERE student_id IN (SELECT student_id FROM sis.students ORDER BY md5(student_id || 'e') LIMIT 15);
		 UPDATE sis.travel_requests SET dean_decision = 'approved', updated_at = now() WHERE dean_decision = 'pending';
		 INSERT INTO sis.students (student_id, given_name, family_name, email, visa_regime, enrollment_status, faculty_id, updated_at)
		 SELECT 'NEW' || i, 'New', 'Student', 'bad-email', 'visa', 'active', NULL, now() FROM generate_series(1, 5) i`,
		`UPDATE sis.students SET updated_at = now() WHERE student_id IN (SELECT student_id FROM sis.students ORDER BY md5(student_id || 't') LIMIT 100)`,
		`DELETE FROM sis.travel_requests WHERE request_id IN (SELECT request_id FROM sis.travel_requests ORDER BY md5(request_id) LIMIT 3);
		 UPDATE sis.students SET entered_on = NULL, updated_at = now() WHERE student_id IN (SELECT student_id FROM sis.students WHERE entered_on IS NOT NULL ORDER BY md5(student_id) LIMIT 10)`,
		`DELETE FROM sis.students s WHERE student_id LIKE 'NEW%' AND NOT EXISTS (SELECT 1 FROM sis.travel_requests t WHERE t.student_id = s.student_id)`,
		// One comes back.
		`INSERT INTO sis.students (student_id, given_name, family_name, visa_regime, enrollment_status, updated_at) VALUES ('NEW1', 'New', 'Again', 'visa', 'active', now())`,
	}
	ctx := context.Background()
	for i, q := range nights {
		if q != "" {
			e.exec(t, q)
		}
		day := asOf.AddDays(i)
		cres, err := changes.Run(ctx, day)
		if err != nil {
			t.Fatalf("night %d, changes: %v", i, err)
		}
		fres, err := full.Run(ctx, day)
		if err != nil {
			t.Fatalf("night %d, full: %v", i, err)
		}
		if i > 0 && cres.ChangesSince == nil {
			t.Fatalf("night %d read in full", i)
		}
		for ent, fc := range fres.Tables {
			cc := cres.Tables[ent]
			if cc.New != fc.New || cc.Changed != fc.Changed || cc.Removed != fc.Removed {
				t.Errorf("night %d, %s: changes read %+v, full read %+v", i, ent, cc, fc)
			}
		}
		if cres.Errors != fres.Errors || cres.Warnings != fres.Warnings {
			t.Errorf("night %d: problems %d/%d, full read %d/%d", i, cres.Errors, cres.Warnings, fres.Errors, fres.Warnings)
		}
		if a, b := snapshotDigest(t, e.db), snapshotDigest(t, fullDB); a != b {
			t.Fatalf("night %d: the snapshots differ:\n changes %s\n full    %s", i, a, b)
		}
		// What each sync recorded as present, which the next read of
		// changes starts from, is what the tables hold.
		for _, db := range []*sqlx.DB{e.db, fullDB} {
			var recorded, actual string
			if err := db.QueryRow(`SELECT (SELECT present::text FROM sisnotify.syncs ORDER BY sync_id DESC LIMIT 1),
				jsonb_build_object('faculty', (SELECT count(*) FROM sisnotify.faculties WHERE removed_at IS NULL),
					'academic_period', (SELECT count(*) FROM sisnotify.academic_periods WHERE removed_at IS NULL),
					'student', (SELECT count(*) FROM sisnotify.students WHERE removed_at IS NULL),
					'travel_request', (SELECT count(*) FROM sisnotify.travel_requests WHERE removed_at IS NULL))::text`).Scan(&recorded, &actual); err != nil {
				t.Fatal(err)
			}
			if recorded != actual {
				t.Fatalf("night %d: recorded present %s, the tables hold %s", i, recorded, actual)
			}
		}
	}
}

// snapshotDigest sums up what the night's evaluation reads of a snapshot:
// every row's data, hash and presence, and the data problems.
func snapshotDigest(t *testing.T, db *sqlx.DB) string {
	t.Helper()
	return snapshotDigestOf(t, db, "row_hash")
}

// snapshotDigestOf is snapshotDigest with hash for the rows' hash: the
// column, or a constant to leave the hashes out.
func snapshotDigestOf(t *testing.T, db *sqlx.DB, hash string) string {
	t.Helper()
	var d string
	if err := db.Get(&d, `SELECT concat_ws(' ',
		(SELECT count(*) || ':' || md5(string_agg(concat_ws('|', student_id, given_name, family_name, email, phone, preferred_language, citizenship, visa_regime, faculty_id, enrollment_status, passport_number, passport_expires_on, planned_entry_on, invitation_docs_on, entered_on, office_check_in_on, registered_on, registration_expires_on, extension_requested_on, moved_on, address_registered_on, `+hash+`, removed_at IS NULL), ',' ORDER BY student_id)) FROM sisnotify.students),
		(SELECT count(*) || ':' || md5(string_agg(concat_ws('|', request_id, student_id, kind, submitted_on, departure_on, return_on, dean_decision, reason, exit_visa_ready, departed_on, returned_on, return_check_in_on, cancelled, `+hash+`, removed_at IS NULL), ',' ORDER BY request_id)) FROM sisnotify.travel_requests),
		(SELECT count(*) || ':' || md5(string_agg(concat_ws('|', entity, row_id, field, code, severity, message), ',' ORDER BY entity, row_id, field, code)) FROM sisnotify.data_problems))`); err != nil {
		t.Fatal(err)
	}
	return d
}
