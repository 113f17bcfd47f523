package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/lib/pq"

	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/jobs/rules"
)

// A night need not evaluate every student. The rules give each student the
// first later date on which the result may change by the date alone (its
// wake date, kept in sisnotify.eval_wakes: a step reached, a trip that
// becomes moot, a step that repeats); until then only a change of the
// student's facts can change it. So a night may evaluate only the woken
// students (PlanWoken): those whose wake date has come, those whose facts
// changed since the last night, and those with reports. Record then
// closes only the woken students' obligations, and the obligations of the
// others keep their last_seen_on: the last night is eval_state's.
// sisnotify.eval_state says what the last night was built from, so that
// the job knows when it must evaluate everyone instead.

// EvalState is what the last night's evaluation was built from.
type EvalState struct {
	Night       date.Date // the last night evaluated
	SyncID      int64     // the latest sync it saw
	EvaluatedAt time.Time // when: the database's clock at its start
	FullOn      date.Date // the last night that evaluated every student
	Inputs      string    // the digest of the rules' inputs other than the facts
}

// LastEvalState reads eval_state; ok is false before the first night.
func (ev *Evaluation) LastEvalState(ctx context.Context) (st EvalState, ok bool, err error) {
	var night, full int32
	err = ev.conn.QueryRowContext(ctx, `SELECT `+dayNum("night")+`, sync_id, evaluated_at, `+dayNum("full_on")+`, inputs FROM sisnotify.eval_state`).
		Scan(&night, &st.SyncID, &st.EvaluatedAt, &full, &st.Inputs)
	if err == sql.ErrNoRows {
		return EvalState{}, false, nil
	}
	if err != nil {
		return EvalState{}, false, fmt.Errorf("evaluate: last state: %w", err)
	}
	st.Night, st.FullOn = date.Date(night), date.Date(full)
	return st, true, nil
}

// onlyWoken is the condition " AND col IN (the woken students)" of a plan
// of woken students, "" otherwise.
func (ev *Evaluation) onlyWoken(col string) string {
	if !ev.woken {
		return ""
	}
	return " AND " + col + " IN (SELECT student_id FROM eval_set)"
}

// travelRules are the ids of the rules whose subject is a travel request.
var travelRules = func() (ids []string) {
	for _, r := range rules.Defaults() {
		if r.Subject == rules.OnTravel {
			ids = append(ids, string(r.ID))
		}
	}
	return ids
}()

// reportsMargin is how far before the last night's start a report made or
// decided is still read as new. The student page and the console write
// reports outside the snapshot lock, so one of theirs can commit after a
// night that began after it; a sync cannot (it takes the lock before its
// transaction begins), so the snapshot's changes are found exactly, by the
// sync that made them.
const reportsMargin = time.Hour

// PlanAll prepares an evaluation of every student: the wake dates are
// forgotten and StageWake writes them again, those before wakeBefore (the
// night that evaluates every student again: a later one is of no use).
func (ev *Evaluation) PlanAll(ctx context.Context, wakeBefore date.Date) error {
	if _, err := ev.conn.ExecContext(ctx, `TRUNCATE sisnotify.eval_wakes`); err != nil {
		return fmt.Errorf("evaluate: wake dates: %w", err)
	}
	ev.wakeBefore = wakeBefore
	return nil
}

// PlanWoken prepares an evaluation of the students woken for asOf, given
// the last night's state: it fills the temporary table eval_set, which the
// cursors then read, with the students whose wake date is asOf or earlier
// (those wake dates are used up), the students and the students of travel
// requests that a sync changed or removed since the last night (and the
// students whose open obligations are about such a request: a trip the
// SIS moved to another student takes them with it), the students whose
// reports were made or decided since it began, and reported (the
// students with open reports). StageWake then writes the
// wake dates before wakeBefore. It returns how many students it woke.
func (ev *Evaluation) PlanWoken(ctx context.Context, asOf date.Date, last EvalState, reported []string, wakeBefore date.Date) (int64, error) {
	if _, err := ev.conn.ExecContext(ctx, `CREATE TEMP TABLE eval_set (student_id text COLLATE "C" PRIMARY KEY) ON COMMIT DROP`); err != nil {
		return 0, fmt.Errorf("evaluate: woken students: %w", err)
	}
	r, err := ev.conn.ExecContext(ctx, `
		WITH woken AS (DELETE FROM sisnotify.eval_wakes WHERE wake_on <= $1::date RETURNING student_id)
		INSERT INTO eval_set
		SELECT student_id FROM woken
		UNION SELECT student_id FROM sisnotify.students WHERE last_sync_id > $2
		UNION SELECT student_id FROM sisnotify.travel_requests WHERE last_sync_id > $2 AND student_id IS NOT NULL
		UNION SELECT o.student_id FROM sisnotify.travel_requests t
		      JOIN sisnotify.obligations o ON o.rule = ANY($5) AND o.subject_id = t.request_id
		      WHERE t.last_sync_id > $2 AND o.closed_at IS NULL
		UNION SELECT student_id FROM sisnotify.student_reports WHERE reported_at >= $3 OR decided_at >= $3
		UNION SELECT unnest($4::text[])`,
		asOf.String(), last.SyncID, last.EvaluatedAt.Add(-reportsMargin), pq.Array(reported), pq.Array(travelRules))
	if err != nil {
		return 0, fmt.Errorf("evaluate: woken students: %w", err)
	}
	n, _ := r.RowsAffected()
	if _, err := ev.conn.ExecContext(ctx, `ANALYZE eval_set`); err != nil {
		return 0, fmt.Errorf("evaluate: woken students: %w", err)
	}
	ev.woken, ev.wakeBefore = true, wakeBefore
	return n, nil
}

// StageWake stages student id's wake date, sent with the batch's
// obligations by CopyStaged, when it comes before the plan's wakeBefore
// (none without a plan: a one-student evaluation or a dry run).
func (ev *Evaluation) StageWake(id string, on date.Date) {
	if on == 0 || on >= ev.wakeBefore {
		return
	}
	l := &ev.line
	l.Reset()
	l.Str(id)
	l.Date(on)
	ev.wakeLines = append(ev.wakeLines, append([]byte(nil), l.B...))
}

// copyWakes copies the staged wake dates into sisnotify.eval_wakes.
func (ev *Evaluation) copyWakes(ctx context.Context) error {
	lines := ev.wakeLines
	ev.wakeLines = ev.wakeLines[:0]
	if err := ev.copyRows(ctx, "sisnotify.eval_wakes", "student_id, wake_on", lines); err != nil {
		return fmt.Errorf("evaluate: wake dates: %w", err)
	}
	return nil
}

// SaveEvalState records tonight's state: night asOf, the latest sync, the
// transaction's start, asOf as the last full night when full (else the
// last one is kept), and inputs.
func (ev *Evaluation) SaveEvalState(ctx context.Context, asOf date.Date, full bool, inputs string) error {
	if _, err := ev.conn.ExecContext(ctx, `
		INSERT INTO sisnotify.eval_state AS s (night, sync_id, evaluated_at, full_on, inputs)
		VALUES ($1, (SELECT coalesce(max(sync_id), 0) FROM sisnotify.syncs), now(), $1, $3)
		ON CONFLICT (one) DO UPDATE SET night = EXCLUDED.night, sync_id = EXCLUDED.sync_id, evaluated_at = EXCLUDED.evaluated_at, inputs = EXCLUDED.inputs,
		    full_on = CASE WHEN $2 THEN EXCLUDED.full_on ELSE s.full_on END`, asOf.String(), full, inputs); err != nil {
		return fmt.Errorf("evaluate: state: %w", err)
	}
	return nil
}
