package jobs_test

import (
	"context"
	"slices"
	"testing"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/iec-almaty/sisnotify/integrations/sis"
	"github.com/iec-almaty/sisnotify/integrations/testenv"
	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/jobs/config"
	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/store"
)

// TestEvaluateWokenMatchesEveryStudent syncs one generated SIS into two
// worker databases night after night. One evaluates only the woken
// students, as every night does; the other evaluates every student every
// night. Through changes of passports, entries, registrations, trips and
// contacts, a trip moved to another student, students who arrive and
// leave, reports from the student page
// and their decisions, a configuration change and three nights the
// service did not run, both must record the same obligations, steps and
// notices, night by night.
func TestEvaluateWokenMatchesEveryStudent(t *testing.T) {
	e := newEnv(t)
	e.generate(t, 1500)
	fullDB := testenv.New(t, dbTemplate.Name).Open(t)
	dbs := []*sqlx.DB{e.db, fullDB}
	ctx := context.Background()
	sync := func(db *sqlx.DB, day date.Date) {
		t.Helper()
		if _, err := (&jobs.Sync{SIS: sis.NewReader(e.sisURL), DB: db}).Run(ctx, day); err != nil {
			t.Fatalf("sync %s: %v", day, err)
		}
	}
	evaluate := func(db *sqlx.DB, day date.Date, cfg *config.File, full bool) jobs.EvalResult {
		t.Helper()
		tx, err := store.BeginSnapshotTx(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		res, err := (&jobs.Evaluate{Config: cfg, OfficeEmails: officeEmails, Full: full}).Run(ctx, tx.Conn(), day, false)
		if err != nil {
			t.Fatalf("evaluate %s: %v", day, err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		return res
	}
	both := func(q string, args ...any) {
		t.Helper()
		for _, db := range dbs {
			if _, err := db.Exec(q, args...); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	}
	// A report made on the student page the day before the night (here a
	// second before it, so it is stamped a day earlier: what wakes its
	// student is that it is open, not when it came).
	report := func(student, kind, on string, moved any) {
		both(`INSERT INTO sisnotify.student_reports (student_id, kind, moved_on, reported_on, reported_at, dedup_key)
			VALUES ($1, $2, $3::date, $4::date, now() - interval '1 day', $1 || '/' || $2 || '/' || $4)`,
			student, kind, moved, on)
	}
	pick := func(q string) string {
		t.Helper()
		var id string
		if err := e.sisDB.Get(&id, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return id
	}
	quiet := pick(`SELECT student_id FROM sis.students WHERE enrollment_status = 'active' AND entered_on < '2026-06-01' ORDER BY md5(student_id) LIMIT 1`)
	mover := pick(`SELECT student_id FROM sis.students WHERE enrollment_status = 'active' AND student_id <> '` + quiet + `' ORDER BY md5(student_id || 'm') LIMIT 1`)

	// What changes before each night (by night number; the night's date is
	// asOf plus its number, and nights 11 to 13 do not run).
	changes := map[int]func(){
		2: func() {
			e.exec(t, `UPDATE sis.students SET passport_expires_on = (date '2026-11-25' + 200 + (hashtext(student_id) & 63)) WHERE student_id IN (SELECT student_id FROM sis.students ORDER BY md5(student_id) LIMIT 40)`)
			e.exec(t, `UPDATE sis.students SET entered_on = date '2026-11-26', registered_on = NULL, office_check_in_on = NULL WHERE student_id IN (SELECT student_id FROM sis.students WHERE enrollment_status = 'active' ORDER BY md5(student_id || 'e') LIMIT 10)`)
		},
		4: func() {
			e.exec(t, `UPDATE sis.travel_requests SET dean_decision = 'approved' WHERE dean_decision = 'pending' AND request_id IN (SELECT request_id FROM sis.travel_requests ORDER BY md5(request_id) LIMIT 20)`)
			e.exec(t, `UPDATE sis.students SET email = NULL WHERE student_id IN (SELECT student_id FROM sis.students ORDER BY md5(student_id || 'c') LIMIT 10)`)
			report(quiet, "lost-documents", "2026-11-29", nil)
		},
		6: func() {
			e.exec(t, `UPDATE sis.students SET registered_on = entered_on + 2 WHERE entered_on = date '2026-11-26'`)
			e.exec(t, `INSERT INTO sis.travel_requests (request_id, student_id, kind, submitted_on, departure_on, return_on, dean_decision)
				SELECT 'TNEW' || student_id, student_id, 'vacation', date '2026-12-01', date '2026-12-20', date '2027-01-10', 'not_required'
				FROM sis.students WHERE enrollment_status = 'active' ORDER BY md5(student_id || 't') LIMIT 15`)
			report(mover, "address-changed", "2026-12-01", "2026-11-30")
		},
		8: func() {
			e.exec(t, `DELETE FROM sis.travel_requests WHERE request_id IN (SELECT request_id FROM sis.travel_requests WHERE request_id NOT LIKE 'TNEW%' ORDER BY md5(request_id) LIMIT 5)`)
			e.exec(t, `INSERT INTO sis.students (student_id, given_name, family_name, email, visa_regime, enrollment_status, entered_on, passport_expires_on)
				SELECT 'NEW' || i, 'New', 'Student', 'new' || i || '@uni.example', 'visa', 'active', date '2026-12-02', date '2027-03-01' FROM generate_series(1, 5) i`)
			both(`UPDATE sisnotify.student_reports SET state = 'confirmed', decided_by = 'office', decided_at = now() WHERE kind = 'lost-documents'`)
		},
		10: func() {
			e.exec(t, `UPDATE sis.students SET enrollment_status = 'graduated' WHERE student_id IN (SELECT student_id FROM sis.students WHERE enrollment_status = 'active' ORDER BY md5(student_id || 'g') LIMIT 10)`)
		},
		16: func() {
			// A trip the SIS now files under another student, one out of
			// every rule's scope: its obligations go with it and close.
			var trips []string
			if err := e.db.Select(&trips, `SELECT DISTINCT subject_id FROM sisnotify.obligations
				WHERE closed_at IS NULL AND subject_id IN (SELECT request_id FROM sisnotify.travel_requests) ORDER BY 1 LIMIT 3`); err != nil || len(trips) == 0 {
				t.Fatalf("trips with open obligations: %v %v", trips, err)
			}
			e.exec(t, `UPDATE sis.travel_requests SET student_id = (SELECT min(student_id) FROM sis.students WHERE enrollment_status = 'graduated')
				WHERE request_id = ANY($1)`, pq.Array(trips))
		},
		15: func() {
			e.exec(t, `DELETE FROM sis.students WHERE student_id IN ('NEW1', 'NEW2')`)
			e.exec(t, `UPDATE sis.travel_requests SET cancelled = true WHERE request_id IN (SELECT request_id FROM sis.travel_requests WHERE request_id LIKE 'TNEW%' ORDER BY request_id LIMIT 5)`)
		},
	}
	const nights = 30
	var woken, everyone int64
	for i := 0; i < nights; i++ {
		if i >= 11 && i <= 13 {
			continue // the service was down
		}
		if f := changes[i]; f != nil {
			f()
		}
		day := asOf.AddDays(i)
		// The built-in configuration from night 20 on: welcome is switched on.
		cfg := fixtureConfig
		if i >= 20 {
			cfg = nil
		}
		for _, db := range dbs {
			sync(db, day)
		}
		w := evaluate(e.db, day, cfg, false)
		f := evaluate(fullDB, day, cfg, true)
		if !f.Full {
			t.Fatalf("night %d: the full evaluation says it was not", i)
		}
		wantFull := i == 0 || i == 7 || i == 14 || i == 20 || i == 27 // first, weekly, after the outage, new configuration
		if w.Full != wantFull {
			t.Errorf("night %d: woken evaluation full = %v, want %v", i, w.Full, wantFull)
		}
		if !w.Full {
			woken += w.Students
			everyone += f.Students
		}
		w.Students, f.Students, w.Reached, f.Reached, w.Full, f.Full, w.Duration, f.Duration = 0, 0, 0, 0, false, false, 0, 0
		if w != f {
			t.Errorf("night %d: woken evaluation %+v, every student %+v", i, w, f)
		}
		for _, what := range []string{"obligations", "steps", "notices"} {
			a, b := evalRecord(t, e.db, what), evalRecord(t, fullDB, what)
			if !slices.Equal(a, b) {
				k := 0
				for k < min(len(a), len(b)) && a[k] == b[k] {
					k++
				}
				a, b = append(a, ""), append(b, "")
				t.Fatalf("night %d (%s): the %s differ:\n  woken students: %s\n  every student:  %s", i, day, what, a[k], b[k])
			}
		}
	}
	t.Logf("nights that evaluated the woken students only: %d students evaluated of %d", woken, everyone)
	if woken*4 > everyone {
		t.Fatalf("the woken nights evaluated %d students of %d: more than a quarter", woken, everyone)
	}
}

// evalRecord lists what the evaluations recorded, one line per row, by
// identity (obligation ids differ between databases).
func evalRecord(t *testing.T, db *sqlx.DB, what string) []string {
	t.Helper()
	q := map[string]string{
		// Not last_seen_on: a night leaves it as it was for the students it
		// did not evaluate.
		"obligations": `SELECT concat_ws('|', rule, subject_id, anchor, student_id, period_id, due_on, level, step_on, repeat, actions,
			opened_on, closed_on, close_reason, found_late, found_late_on) FROM sisnotify.obligations`,
		"steps": `SELECT concat_ws('|', o.rule, o.subject_id, o.anchor, s.level, s.repeat, s.status, s.recorded_on)
			FROM sisnotify.obligation_steps s JOIN sisnotify.obligations o USING (obligation_id)`,
		"notices": `SELECT concat_ws('|', notice_key, student_id, audience, channel, recipient, language, due_on, night, not_before) FROM sisnotify.notices`,
	}[what]
	var rows []string
	if err := db.Select(&rows, q+` ORDER BY 1`); err != nil {
		t.Fatal(err)
	}
	return rows
}
