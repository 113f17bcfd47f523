package jobs_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/iec-almaty/sisnotify/integrations/sis"
	"github.com/iec-almaty/sisnotify/integrations/testenv"
	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/store"
)

// A read by hashes (the SIS's row hashes first, then only the rows that
// changed) leaves the snapshot and its data problems exactly as a read of
// every row does, night after night, on a generated SIS whose changes do
// not move updated_at: every kind of column changes, rows arrive, leave
// and come back. A third worker gathers at most 5 changed rows and reads
// in full beyond that. (That the SIS's hash covers every column is
// integrations/sis's TestRowHashes.)
func TestSyncByHashesMatchesFullRead(t *testing.T) {
	e := newEnv(t)
	e.generate(t, 2000)
	fullDB := testenv.New(t, dbTemplate.Name).Open(t)
	capDB := testenv.New(t, dbTemplate.Name).Open(t)
	var logs bytes.Buffer
	byHashes := &jobs.Sync{SIS: sis.NewReader(e.sisURL), DB: e.db, Log: slog.New(slog.NewTextHandler(&logs, nil))}
	full := &jobs.Sync{SIS: sis.NewReader(e.sisURL), DB: fullDB}
	jobs.SetHashChanges(full, -1)
	capped := &jobs.Sync{SIS: sis.NewReader(e.sisURL), DB: capDB}
	jobs.SetHashChanges(capped, 5)
	// A fourth reads a SIS that cannot hash (before PostgreSQL 11): its
	// rows are hashed here, so only its hashes differ.
	plainDB := testenv.New(t, dbTemplate.Name).Open(t)
	plainSIS := sis.NewReader(e.sisURL)
	plainSIS.NoHashes = true
	plain := &jobs.Sync{SIS: plainSIS, DB: plainDB}
	pick := func(table, key, salt string, n int) string {
		return "(SELECT " + key + " FROM sis." + table + " ORDER BY md5(" + key + " || '" + salt + "') LIMIT " + itoa(n) + ")"
	}
	nights := []string{
		``,
		// Every column of the students, none moving updated_at.
		`UPDATE sis.students SET passport_expires_on = passport_expires_on + 365 WHERE student_id IN ` + pick("students", "student_id", "p", 40) + `;
		 UPDATE sis.students SET email = NULL WHERE student_id IN ` + pick("students", "student_id", "e", 15) + `;
		 UPDATE sis.students SET email = '' WHERE student_id IN ` + pick("students", "student_id", "e2", 2) + `;
		 UPDATE sis.students SET given_name = given_name || 'a', family_name = upper(family_name) WHERE student_id IN ` + pick("students", "student_id", "n", 3) + `;
		 UPDATE sis.students SET phone = '+77010000000', preferred_language = 'kk', citizenship = 'UZ' WHERE student_id IN ` + pick("students", "student_id", "c", 3) + `;
		 UPDATE sis.students SET visa_regime = 'visa-free', enrollment_status = 'graduated', passport_number = 'N' || student_id WHERE student_id IN ` + pick("students", "student_id", "v", 3) + `;
		 UPDATE sis.students SET planned_entry_on = DATE '2026-12-20', invitation_docs_on = DATE '2026-11-01', entered_on = DATE '2026-11-20' WHERE student_id IN ` + pick("students", "student_id", "d", 3) + `;
		 UPDATE sis.students SET office_check_in_on = DATE '2026-11-21', registered_on = DATE '2026-11-22', registration_expires_on = DATE '2027-11-22' WHERE student_id IN ` + pick("students", "student_id", "r", 3) + `;
		 UPDATE sis.students SET extension_requested_on = DATE '2026-11-23', moved_on = DATE '2026-11-24', address_registered_on = NULL WHERE student_id IN ` + pick("students", "student_id", "m", 3) + `;
		 UPDATE sis.students SET faculty_id = (SELECT min(faculty_id) FROM sis.faculties) WHERE student_id IN ` + pick("students", "student_id", "f", 3) + `;
		 UPDATE sis.students SET updated_at = now() - interval '1 year' WHERE student_id IN ` + pick("students", "student_id", "u", 50) + `;
		 INSERT INTO sis.students (student_id, given_name, family_name, email, visa_regime, enrollment_status, faculty_id)
		 SELECT 'NEW' || i, 'New', 'Student', 'bad-email', 'visa', 'active', NULL FROM generate_series(1, 5) i`,
		// Every column of the travel requests.
		`UPDATE sis.travel_requests SET dean_decision = 'approved' WHERE dean_decision = 'pending';
		 UPDATE sis.travel_requests SET exit_visa_ready = NOT coalesce(exit_visa_ready, false), cancelled = NOT cancelled WHERE request_id IN ` + pick("travel_requests", "request_id", "b", 3) + `;
		 UPDATE sis.travel_requests SET reason = 'a conference', kind = 'vacation', submitted_on = submitted_on - 1 WHERE request_id IN ` + pick("travel_requests", "request_id", "k", 3) + `;
		 UPDATE sis.travel_requests SET departure_on = departure_on + 1, return_on = return_on + 2, departed_on = NULL WHERE request_id IN ` + pick("travel_requests", "request_id", "t", 3) + `;
		 UPDATE sis.travel_requests SET returned_on = DATE '2026-11-20', return_check_in_on = DATE '2026-11-21' WHERE request_id IN ` + pick("travel_requests", "request_id", "x", 3) + `;
		 UPDATE sis.travel_requests SET student_id = (SELECT min(student_id) FROM sis.students) WHERE request_id IN ` + pick("travel_requests", "request_id", "s", 2),
		// Nothing changes.
		``,
		// Two rows: the capped worker reads by hashes too.
		`UPDATE sis.students SET entered_on = NULL WHERE student_id IN (SELECT student_id FROM sis.students WHERE entered_on IS NOT NULL ORDER BY md5(student_id) LIMIT 1);
		 DELETE FROM sis.travel_requests WHERE request_id IN ` + pick("travel_requests", "request_id", "del", 1),
		`DELETE FROM sis.students s WHERE student_id LIKE 'NEW%' AND NOT EXISTS (SELECT 1 FROM sis.travel_requests t WHERE t.student_id = s.student_id)`,
		// One comes back.
		`INSERT INTO sis.students (student_id, given_name, family_name, visa_regime, enrollment_status) VALUES ('NEW2', 'New', 'Again', 'visa', 'active')`,
	}
	ctx := context.Background()
	for i, q := range nights {
		if q != "" {
			e.exec(t, q)
		}
		day := asOf.AddDays(i)
		fres, err := full.Run(ctx, day)
		if err != nil {
			t.Fatalf("night %d, full: %v", i, err)
		}
		logs.Reset()
		for name, s := range map[string]*jobs.Sync{"by hashes": byHashes, "capped": capped, "hashed here": plain} {
			res, err := s.Run(ctx, day)
			if err != nil {
				t.Fatalf("night %d, %s: %v", i, name, err)
			}
			for ent, fc := range fres.Tables {
				if c := res.Tables[ent]; c.New != fc.New || c.Changed != fc.Changed || c.Removed != fc.Removed || c.Rejected != fc.Rejected {
					t.Errorf("night %d, %s, %s: %+v, full read %+v", i, name, ent, c, fc)
				}
			}
			if res.Errors != fres.Errors || res.Warnings != fres.Warnings {
				t.Errorf("night %d, %s: problems %d/%d, full read %d/%d", i, name, res.Errors, res.Warnings, fres.Errors, fres.Warnings)
			}
		}
		want := snapshotDigest(t, fullDB)
		if got := snapshotDigest(t, e.db); got != want {
			t.Fatalf("night %d: the snapshots differ:\n by hashes %s\n full      %s", i, got, want)
		}
		if got := snapshotDigest(t, capDB); got != want {
			t.Fatalf("night %d: the snapshots differ:\n capped %s\n full   %s", i, got, want)
		}
		if got, want := snapshotDigestOf(t, plainDB, "0"), snapshotDigestOf(t, fullDB, "0"); got != want {
			t.Fatalf("night %d: the snapshots differ:\n hashed here %s\n full        %s", i, got, want)
		}
		// After the first night, the students and travel requests are
		// read by their hashes.
		if n := strings.Count(logs.String(), "by_hashes=true"); i > 0 && n != 2 {
			t.Fatalf("night %d: %d tables read by hashes, want 2:\n%s", i, n, logs.String())
		}
		if i == 1 {
			// The night that changed every column of the students
			// changed them: not one change was missed.
			if c := fres.Tables[store.EntityStudent]; c.Changed < 70 {
				t.Fatalf("night 1: %d students changed, want every one changed", c.Changed)
			}
		}
	}
}

// A changed row that the SIS does not give back when asked for by key (a
// view that filters on how it is queried) fails the sync, naming the
// table; the snapshot stays as it was.
func TestSyncByHashesMissingRowFails(t *testing.T) {
	e := newEnv(t)
	e.exec(t, baseFixture)
	e.sync(t)
	e.exec(t, `UPDATE sis.students SET passport_expires_on = '2032-05-01' WHERE student_id = 'S1';
		ALTER TABLE sis.students RENAME TO students_base;
		CREATE VIEW sis.students AS SELECT * FROM sis.students_base
		WHERE student_id <> 'S1' OR current_query() NOT LIKE '%= ANY%'`)
	s := &jobs.Sync{SIS: sis.NewReader(e.sisURL), DB: e.db}
	_, err := s.Run(context.Background(), asOf)
	if err == nil || !strings.Contains(err.Error(), "sis.students: the SIS gave 0 of the 1 changed rows") {
		t.Fatalf("sync: %v, want the missing row named", err)
	}
	var exp string
	if err := e.db.Get(&exp, `SELECT passport_expires_on::text FROM sisnotify.students WHERE student_id = 'S1'`); err != nil || exp == "2032-05-01" {
		t.Fatalf("passport %s (%v): the failed sync changed the snapshot", exp, err)
	}
}
