package simulation

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/iec-almaty/sisnotify/jobs/date"
)

// World changes the SIS night after night the way its people do, drawn
// from the seed: students enter and check in, register (most on time,
// some late, a few never), renew passports, move house, file trips (early,
// late or never) that deans approve or reject and students cancel, and
// graduate or withdraw. The office's work reaches the SIS some days late
// now and then, and on a few nights the export is broken.
//
// Every choice comes from one PCG stream over rows read in a fixed
// order, so the same seed gives the same world.
type World struct {
	db  *sql.DB
	rng *rand.Rand
	// later are writes the SIS records days after they happened.
	later []lateWrite
	// left is when each student left scope (graduated, withdrew): from
	// that night on, nothing may be sent to them.
	left map[string]date.Date
	// broken holds the values the broken export hides for one night.
	broken bool
	trips  int
}

type lateWrite struct {
	on   date.Date
	seq  int
	sql  string
	args []any
}

// Shares of the model, per student and day unless said otherwise.
const (
	enterShare        = 0.85 // applicants whose planned entry happens
	checkInLate       = 0.15 // a day's chance of a check-in after the third day
	checkInNever      = 0.03 // never check in (the ladder runs its course)
	sisLate           = 0.10 // office work recorded in the SIS 2-9 days late
	renewPerDay       = 1.0 / 45
	movePerDay        = 0.0004
	tripPerDay        = 0.0012
	tripNoRequest     = 0.05 // a trip filed on the day of departure (late)
	tripNeverFiled    = 0.03 // a trip never filed: the SIS only sees the new entry on return
	tripCancel        = 0.08
	tripReject        = 0.10
	withdrawPerDay    = 0.00015
	graduateShare     = 0.18 // of the active students, at the end of the spring semester
	brokenNightsShare = 0.006
)

// newWorld opens the model over the SIS at db.
func newWorld(db *sql.DB, seed uint64) *World {
	return &World{db: db, rng: rand.New(rand.NewPCG(seed, 0x5157)), left: map[string]date.Date{}}
}

// Left is the date a student left scope, and whether they did.
func (w *World) Left(student string) (date.Date, bool) {
	d, ok := w.left[student]
	return d, ok
}

// ids returns the first column of q, in its (ordered) order.
func (w *World) ids(ctx context.Context, q string, args ...any) ([]string, error) {
	rows, err := w.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func (w *World) exec(ctx context.Context, q string, args ...any) error {
	_, err := w.db.ExecContext(ctx, q, args...)
	return err
}

// record writes now, or some days late when the SIS lags.
func (w *World) record(ctx context.Context, today date.Date, q string, args ...any) error {
	if w.rng.Float64() < sisLate {
		w.later = append(w.later, lateWrite{on: today.AddDays(2 + w.rng.IntN(8)), seq: len(w.later), sql: q, args: args})
		return nil
	}
	return w.exec(ctx, q, args...)
}

// Advance applies what happened on the day before night (so that the
// night's sync sees it). It returns whether tonight's export is broken.
func (w *World) Advance(ctx context.Context, night date.Date) (broken bool, err error) {
	if err := w.restore(ctx); err != nil {
		return false, err
	}
	day := night.AddDays(-1)
	steps := []struct {
		name string
		fn   func(context.Context, date.Date) error
	}{
		{"late writes", w.lateWrites},
		{"entries", w.entries},
		{"check-ins", w.checkIns},
		{"registrations", w.registrations},
		{"passports", w.passports},
		{"moves", w.moves},
		{"trips", w.tripsFiled},
		{"trip decisions", w.tripDecisions},
		{"departures and returns", w.departuresReturns},
		{"leaving", w.leaving},
	}
	for _, s := range steps {
		if err := s.fn(ctx, day); err != nil {
			return false, fmt.Errorf("world %s: %s: %w", night, s.name, err)
		}
	}
	if w.rng.Float64() < brokenNightsShare {
		if err := w.breakExport(ctx); err != nil {
			return false, fmt.Errorf("world %s: break the export: %w", night, err)
		}
		return true, nil
	}
	return false, nil
}

func (w *World) lateWrites(ctx context.Context, day date.Date) error {
	sort.SliceStable(w.later, func(i, j int) bool {
		if w.later[i].on != w.later[j].on {
			return w.later[i].on < w.later[j].on
		}
		return w.later[i].seq < w.later[j].seq
	})
	n := 0
	for n < len(w.later) && w.later[n].on <= day {
		if err := w.exec(ctx, w.later[n].sql, w.later[n].args...); err != nil {
			return err
		}
		n++
	}
	w.later = w.later[n:]
	return nil
}

// entries: applicants whose planned entry was yesterday cross the border.
func (w *World) entries(ctx context.Context, day date.Date) error {
	ids, err := w.ids(ctx, `SELECT student_id FROM sis.students WHERE enrollment_status = 'applicant'
		AND planned_entry_on = $1 ORDER BY student_id`, day.String())
	if err != nil {
		return err
	}
	for _, id := range ids {
		if w.rng.Float64() >= enterShare {
			continue
		}
		if err := w.exec(ctx, `UPDATE sis.students SET enrollment_status = 'active', entered_on = $2,
			office_check_in_on = NULL, registered_on = NULL, updated_at = now() WHERE student_id = $1`, id, day.String()); err != nil {
			return err
		}
	}
	return nil
}

// checkIns: students who entered and have not handed their passport to
// the office do so: most within three days, some later, a few never (a
// share fixed per student, so that the ladder runs its course for them).
func (w *World) checkIns(ctx context.Context, day date.Date) error {
	rows, err := w.db.QueryContext(ctx, `SELECT student_id, $1::date - entered_on FROM sis.students WHERE enrollment_status = 'active'
		AND entered_on IS NOT NULL AND entered_on <= $1 AND entered_on >= $1::date - 40
		AND (office_check_in_on IS NULL OR office_check_in_on < entered_on)
		AND abs(hashtext(student_id || 'never')) % 1000 >= $2 ORDER BY student_id`, day.String(), int(checkInNever*1000))
	if err != nil {
		return err
	}
	type due struct {
		id   string
		days int
	}
	var list []due
	for rows.Next() {
		var d due
		if err := rows.Scan(&d.id, &d.days); err != nil {
			rows.Close()
			return err
		}
		list = append(list, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, d := range list {
		p := 0.5
		if d.days > 2 {
			p = checkInLate
		}
		if w.rng.Float64() >= p {
			continue
		}
		if err := w.record(ctx, day, `UPDATE sis.students SET office_check_in_on = $2, updated_at = now()
			WHERE student_id = $1 AND (office_check_in_on IS NULL OR office_check_in_on < entered_on)`, d.id, day.String()); err != nil {
			return err
		}
	}
	return nil
}

// registrations: the office registers students who checked in, a day or
// two later; the registration lasts a year.
func (w *World) registrations(ctx context.Context, day date.Date) error {
	ids, err := w.ids(ctx, `SELECT student_id FROM sis.students WHERE enrollment_status = 'active'
		AND office_check_in_on IS NOT NULL AND office_check_in_on <= $1
		AND (registered_on IS NULL OR registered_on < entered_on) ORDER BY student_id`, day.String())
	if err != nil {
		return err
	}
	for _, id := range ids {
		if w.rng.Float64() < 0.6 {
			if err := w.record(ctx, day, `UPDATE sis.students SET registered_on = $2, registration_expires_on = $2::date + 365,
				updated_at = now() WHERE student_id = $1 AND (registered_on IS NULL OR registered_on < entered_on)`, id, day.String()); err != nil {
				return err
			}
		}
	}
	return nil
}

// passports: a passport that expires within the renewal window is renewed
// now and then; some students never renew.
func (w *World) passports(ctx context.Context, day date.Date) error {
	ids, err := w.ids(ctx, `SELECT student_id FROM sis.students WHERE enrollment_status IN ('active', 'on_leave')
		AND passport_expires_on IS NOT NULL AND passport_expires_on < $1::date + 200 ORDER BY student_id`, day.String())
	if err != nil {
		return err
	}
	for _, id := range ids {
		if w.rng.Float64() < renewPerDay {
			if err := w.record(ctx, day, `UPDATE sis.students SET passport_expires_on = $2::date + 3650,
				passport_number = 'N' || substr(md5(student_id || $2), 1, 8), updated_at = now() WHERE student_id = $1`, id, day.String()); err != nil {
				return err
			}
		}
	}
	return nil
}

// moves: a student moves house; the office registers the new address
// some days later (or the SIS hears of it late).
func (w *World) moves(ctx context.Context, day date.Date) error {
	ids, err := w.ids(ctx, `SELECT student_id FROM sis.students WHERE enrollment_status = 'active'
		AND registered_on IS NOT NULL ORDER BY student_id`)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if w.rng.Float64() >= movePerDay {
			continue
		}
		if err := w.exec(ctx, `UPDATE sis.students SET moved_on = $2, updated_at = now() WHERE student_id = $1`, id, day.String()); err != nil {
			return err
		}
		if w.rng.Float64() < 0.9 {
			reg := day.AddDays(1 + w.rng.IntN(4))
			w.later = append(w.later, lateWrite{on: reg, seq: len(w.later),
				sql: `UPDATE sis.students SET address_registered_on = $2, updated_at = now() WHERE student_id = $1`, args: []any{id, reg.String()}})
		}
	}
	return nil
}

// tripsFiled: students file trips, vacation trips in breaks and term
// trips (which need the dean's permission) otherwise; most file early,
// some on the day they leave.
func (w *World) tripsFiled(ctx context.Context, day date.Date) error {
	ids, err := w.ids(ctx, `SELECT s.student_id FROM sis.students s WHERE s.enrollment_status = 'active'
		AND s.registered_on IS NOT NULL
		AND NOT EXISTS (SELECT 1 FROM sis.travel_requests t WHERE t.student_id = s.student_id AND NOT t.cancelled AND t.returned_on IS NULL)
		ORDER BY s.student_id`)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if w.rng.Float64() >= tripPerDay {
			continue
		}
		w.trips++
		lead := 3 + w.rng.IntN(25)
		switch r := w.rng.Float64(); {
		case r < tripNeverFiled:
			// Gone without a word; the border crossing back reaches the
			// SIS as a new entry, and with it check-in and registration.
			ret := day.AddDays(lead + 5 + w.rng.IntN(20))
			w.later = append(w.later, lateWrite{on: ret, seq: len(w.later),
				sql: `UPDATE sis.students SET entered_on = $2, updated_at = now() WHERE student_id = $1`, args: []any{id, ret.String()}})
			continue
		case r < tripNeverFiled+tripNoRequest:
			lead = 0
		}
		dep := day.AddDays(lead)
		ret := dep.AddDays(5 + w.rng.IntN(20))
		var inBreak bool
		if err := w.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM sis.academic_periods WHERE kind <> 'semester'
			AND $1::date BETWEEN starts_on AND ends_on)`, dep.String()).Scan(&inBreak); err != nil {
			return err
		}
		kind, decision := "term", "pending"
		if inBreak {
			kind, decision = "vacation", "not_required"
		}
		if err := w.exec(ctx, `INSERT INTO sis.travel_requests (request_id, student_id, kind, submitted_on, departure_on, return_on, dean_decision, reason, exit_visa_ready)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, true)`,
			fmt.Sprintf("SIM%06d", w.trips), id, kind, day.String(), dep.String(), ret.String(), decision, "family"); err != nil {
			return err
		}
	}
	return nil
}

// tripDecisions: deans decide pending term trips within a week; students
// cancel some trips before they leave.
func (w *World) tripDecisions(ctx context.Context, day date.Date) error {
	ids, err := w.ids(ctx, `SELECT request_id FROM sis.travel_requests WHERE NOT cancelled AND departed_on IS NULL
		AND departure_on >= $1 ORDER BY request_id`, day.String())
	if err != nil {
		return err
	}
	for _, id := range ids {
		switch r := w.rng.Float64(); {
		case r < tripCancel/10:
			if err := w.record(ctx, day, `UPDATE sis.travel_requests SET cancelled = true, updated_at = now() WHERE request_id = $1`, id); err != nil {
				return err
			}
		case r < 0.3:
			decision := "approved"
			if w.rng.Float64() < tripReject {
				decision = "rejected"
			}
			if err := w.record(ctx, day, `UPDATE sis.travel_requests SET dean_decision = $2, updated_at = now()
				WHERE request_id = $1 AND dean_decision = 'pending'`, id, decision); err != nil {
				return err
			}
		}
	}
	return nil
}

// departuresReturns: trips happen as planned (a rejected one does not);
// on return the student crosses the border again, which starts a new
// stay: check-in and registration are owed again.
func (w *World) departuresReturns(ctx context.Context, day date.Date) error {
	if err := w.exec(ctx, `UPDATE sis.travel_requests SET departed_on = departure_on, updated_at = now()
		WHERE NOT cancelled AND departed_on IS NULL AND departure_on = $1 AND dean_decision IN ('approved', 'not_required')`, day.String()); err != nil {
		return err
	}
	ids, err := w.ids(ctx, `SELECT request_id FROM sis.travel_requests WHERE NOT cancelled AND departed_on IS NOT NULL
		AND returned_on IS NULL AND return_on = $1 ORDER BY request_id`, day.String())
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := w.exec(ctx, `WITH t AS (UPDATE sis.travel_requests SET returned_on = $2, updated_at = now()
				WHERE request_id = $1 RETURNING student_id)
			UPDATE sis.students s SET entered_on = $2, updated_at = now() FROM t WHERE s.student_id = t.student_id`, id, day.String()); err != nil {
			return err
		}
		if w.rng.Float64() < 0.8 {
			on := day.AddDays(w.rng.IntN(4))
			w.later = append(w.later, lateWrite{on: on, seq: len(w.later),
				sql: `UPDATE sis.travel_requests SET return_check_in_on = $2, updated_at = now() WHERE request_id = $1`, args: []any{id, on.String()}})
		}
	}
	return nil
}

// leaving: a few students withdraw on any day; at the end of the spring
// semester a share graduates. Both are out of scope from the next night.
func (w *World) leaving(ctx context.Context, day date.Date) error {
	ids, err := w.ids(ctx, `SELECT student_id FROM sis.students WHERE enrollment_status IN ('active', 'on_leave') ORDER BY student_id`)
	if err != nil {
		return err
	}
	_, m, d := day.Civil()
	graduation := m == time.June && d == 25
	for _, id := range ids {
		status := ""
		switch {
		case graduation && w.rng.Float64() < graduateShare:
			status = "graduated"
		case w.rng.Float64() < withdrawPerDay:
			status = "withdrawn"
		}
		if status == "" {
			continue
		}
		if err := w.exec(ctx, `UPDATE sis.students SET enrollment_status = $2, updated_at = now() WHERE student_id = $1`, id, status); err != nil {
			return err
		}
		w.left[id] = day.AddDays(1)
	}
	return nil
}

// breakExport makes tonight's export look like a view that lost a join:
// a third of the students lose their passport expiry. The next Advance
// restores them.
func (w *World) breakExport(ctx context.Context) error {
	if err := w.exec(ctx, `CREATE TABLE IF NOT EXISTS public.sim_hidden (student_id text PRIMARY KEY, passport_expires_on date)`); err != nil {
		return err
	}
	if err := w.exec(ctx, `WITH h AS (
			INSERT INTO public.sim_hidden SELECT student_id, passport_expires_on FROM sis.students
			WHERE passport_expires_on IS NOT NULL AND abs(hashtext(student_id)) % 3 = 0 RETURNING student_id)
		UPDATE sis.students s SET passport_expires_on = NULL FROM h WHERE s.student_id = h.student_id`); err != nil {
		return err
	}
	w.broken = true
	return nil
}

func (w *World) restore(ctx context.Context) error {
	if !w.broken {
		return nil
	}
	if err := w.exec(ctx, `UPDATE sis.students s SET passport_expires_on = h.passport_expires_on
		FROM public.sim_hidden h WHERE s.student_id = h.student_id`); err != nil {
		return fmt.Errorf("world: restore the export: %w", err)
	}
	if err := w.exec(ctx, `TRUNCATE public.sim_hidden`); err != nil {
		return fmt.Errorf("world: restore the export: %w", err)
	}
	w.broken = false
	return nil
}
