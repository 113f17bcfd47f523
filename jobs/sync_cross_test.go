package jobs_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/iec-almaty/sisnotify/integrations/sis"
	"github.com/iec-almaty/sisnotify/integrations/testenv"
	"github.com/iec-almaty/sisnotify/jobs"
)

// The checks across tables look only at the rows a sync changed, yet
// leave exactly the problems that checking every row leaves, night after
// night, whether the sync read every row or only the rows whose
// updated_at moved: students moved to unknown faculties and back,
// students removed under their travel requests and restored, trips of unknown students
// moved to known ones, a faculty removed and restored, and a night with
// nothing new. A problem that stays keeps its first_seen_at, and every
// row is checked again a week after the last full check.
func TestCrossChecksOfChangedRowsMatchEveryRow(t *testing.T) {
	e := newEnv(t)
	e.generate(t, 2000)
	// A SIS without its foreign keys (a view, an export) can name a
	// faculty or a student it does not hold.
	e.exec(t, `ALTER TABLE sis.students DROP CONSTRAINT students_faculty_id_fkey;
		ALTER TABLE sis.travel_requests DROP CONSTRAINT travel_requests_student_id_fkey`)
	everyDB := testenv.New(t, dbTemplate.Name).Open(t)
	var logs bytes.Buffer
	changed := &jobs.Sync{SIS: sis.NewReader(e.sisURL), DB: e.db, Log: slog.New(slog.NewTextHandler(&logs, nil))}
	every := &jobs.Sync{SIS: sis.NewReader(e.sisURL), DB: everyDB}
	jobs.SetCheckEveryRow(every)
	// A third reads only the rows whose updated_at moved (the changes
	// below move it), in full when a row was deleted.
	changesDB := testenv.New(t, dbTemplate.Name).Open(t)
	changes := &jobs.Sync{SIS: sis.NewReader(e.sisURL), DB: changesDB, TrustUpdatedAt: true}
	pick := func(q, salt string, n int) string {
		return "(" + q + " ORDER BY md5(" + strings.Fields(q)[1] + " || '" + salt + "') LIMIT " + itoa(n) + ")"
	}
	travelled := "SELECT student_id FROM sis.travel_requests"
	ghost := func(id, student string) string {
		return `INSERT INTO sis.travel_requests (request_id, student_id, kind, submitted_on, departure_on, dean_decision)
			VALUES ('` + id + `', '` + student + `', 'vacation', DATE '2026-11-20', DATE '2026-12-20', 'not_required');`
	}
	nights := []struct {
		sql string
		// at least this many problems of each code on the full check's
		// side: the night made them, so the comparison is not vacuous.
		faculty, student int
	}{
		{``, 0, 0},
		{`UPDATE sis.students SET faculty_id = 'NOFAC', updated_at = now() WHERE student_id IN ` + pick("SELECT student_id FROM sis.students", "f", 5) + `;
		  CREATE TABLE sis.gone AS SELECT * FROM sis.students WHERE student_id IN ` + pick(travelled, "g", 3) + `;
		  DELETE FROM sis.students WHERE student_id IN (SELECT student_id FROM sis.gone);
		  ` + ghost("GHOST-1", "GHOST") + ghost("GHOST-2", "GHOST"), 5, 5},
		// Two students back to a faculty, one removed student restored,
		// one ghost trip moved to a known student.
		{`UPDATE sis.students SET faculty_id = (SELECT min(faculty_id) FROM sis.faculties), updated_at = now()
		    WHERE student_id IN (SELECT student_id FROM sis.students WHERE faculty_id = 'NOFAC' ORDER BY student_id LIMIT 2);
		  INSERT INTO sis.students SELECT * FROM sis.gone WHERE student_id = (SELECT min(student_id) FROM sis.gone);
		  UPDATE sis.travel_requests SET student_id = (SELECT min(student_id) FROM sis.students), updated_at = now() WHERE request_id = 'GHOST-1'`, 3, 2},
		// A faculty leaves the SIS, with its students' problems.
		{`CREATE TABLE sis.gone_faculty AS SELECT * FROM sis.faculties WHERE faculty_id = (SELECT max(faculty_id) FROM sis.faculties);
		  DELETE FROM sis.faculties WHERE faculty_id IN (SELECT faculty_id FROM sis.gone_faculty)`, 50, 2},
		// Nothing changes.
		{``, 50, 2},
		// It comes back; a known student's trip moves to a removed one.
		{`INSERT INTO sis.faculties SELECT * FROM sis.gone_faculty;
		  UPDATE sis.travel_requests SET student_id = (SELECT max(student_id) FROM sis.gone), updated_at = now()
		    WHERE request_id = (SELECT min(request_id) FROM sis.travel_requests WHERE request_id LIKE 'T%')`, 3, 3},
		// The removed students come back; the last ghost trip goes.
		{`INSERT INTO sis.students SELECT * FROM sis.gone g WHERE NOT EXISTS (SELECT 1 FROM sis.students s WHERE s.student_id = g.student_id);
		  DELETE FROM sis.travel_requests WHERE request_id = 'GHOST-2'`, 3, 0},
		// A week after the first night: every row is checked again.
		{`UPDATE sis.students SET faculty_id = 'NOFAC2', updated_at = now() WHERE student_id IN ` + pick("SELECT student_id FROM sis.students", "w", 1), 4, 0},
	}
	ctx := context.Background()
	readChanges := 0
	var kept string
	var keptSeen time.Time
	for i, n := range nights {
		if n.sql != "" {
			e.exec(t, n.sql)
		}
		day := asOf.AddDays(i)
		if _, err := every.Run(ctx, day); err != nil {
			t.Fatalf("night %d, every row: %v", i, err)
		}
		logs.Reset()
		if _, err := changed.Run(ctx, day); err != nil {
			t.Fatalf("night %d, changed rows: %v", i, err)
		}
		cres, err := changes.Run(ctx, day)
		if err != nil {
			t.Fatalf("night %d, reading changes: %v", i, err)
		}
		if cres.ChangesSince != nil {
			readChanges++
		}
		want, got := crossProblems(t, everyDB), crossProblems(t, e.db)
		if got != want {
			t.Fatalf("night %d: the problems differ:\n changed rows: %s\n every row:    %s", i, got, want)
		}
		if got := crossProblems(t, changesDB); got != want {
			t.Fatalf("night %d: the problems differ:\n reading changes: %s\n every row:       %s", i, got, want)
		}
		var faculty, student int
		if err := everyDB.QueryRow(`SELECT count(*) FILTER (WHERE code = 'unknown_faculty'), count(*) FILTER (WHERE code = 'unknown_student')
			FROM sisnotify.data_problems`).Scan(&faculty, &student); err != nil {
			t.Fatal(err)
		}
		if faculty < n.faculty || student < n.student {
			t.Fatalf("night %d: %d unknown faculties and %d unknown students, want at least %d and %d", i, faculty, student, n.faculty, n.student)
		}
		// Every row on the first night and a week later, the changed
		// rows between.
		wantEvery := i == 0 || i == 7
		if has := strings.Contains(logs.String(), "every_row=true"); has != wantEvery {
			t.Fatalf("night %d: checked every row %v, want %v:\n%s", i, has, wantEvery, logs.String())
		}
		// A problem that stays is the same problem, first seen when it
		// appeared.
		switch i {
		case 1:
			kept = "GHOST-2" // a trip of an unknown student until night 6
			if err := e.db.QueryRow(`SELECT first_seen_at FROM sisnotify.data_problems WHERE code = 'unknown_student' AND row_id = $1`, kept).Scan(&keptSeen); err != nil {
				t.Fatal(err)
			}
		case 5:
			var seen time.Time
			if err := e.db.QueryRow(`SELECT first_seen_at FROM sisnotify.data_problems WHERE code = 'unknown_student' AND row_id = $1`, kept).Scan(&seen); err != nil {
				t.Fatalf("the problem of %s: %v", kept, err)
			}
			if !seen.Equal(keptSeen) {
				t.Fatalf("the problem of %s was first seen at %s, now %s", kept, keptSeen, seen)
			}
		}
	}
	// The third worker read a table by its changes on most nights (a
	// row deleted, or back with an old updated_at, sends that table to a
	// full read).
	if readChanges < 3 {
		t.Fatalf("the third worker read only the changes on %d nights, want at least 3", readChanges)
	}
}

// crossProblems lists db's problems across tables, in order.
func crossProblems(t *testing.T, db interface {
	Get(dest any, query string, args ...any) error
}) string {
	t.Helper()
	var s string
	if err := db.Get(&s, `SELECT count(*) || ': ' || coalesce(string_agg(concat_ws('|', entity, row_id, field, code, severity, message), ', ' ORDER BY entity, row_id, code), '')
		FROM sisnotify.data_problems WHERE code IN ('unknown_faculty', 'unknown_student', 'duplicate_id')`); err != nil {
		t.Fatal(err)
	}
	return s
}
