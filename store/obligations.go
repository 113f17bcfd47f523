package store

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/jobs/rules"
	"github.com/iec-almaty/sisnotify/jobs/validate"
	"github.com/iec-almaty/sisnotify/store/internal/pgcopy"
)

// Evaluation is one night's evaluation on the connection of a snapshot
// transaction (SnapshotTx.Conn, or SyncWriter.Conn for a dry run): it
// reads the snapshot through two cursors, stages tonight's obligations in
// the temporary table eval_obligations and records them in
// sisnotify.obligations, obligation_steps and notices.
//
// It wraps the connection rather than the pool because every statement
// must run in the one session and transaction: the cursors, the
// temporary tables and the COPY live there. It is not safe for
// concurrent use. Its errors read "evaluate: …", like the job's.
type Evaluation struct {
	conn *sql.Conn
	// Tonight's obligations of the current batch, encoded as COPY lines
	// by Stage and sent by CopyStaged.
	line  pgcopy.Line
	lines [][]byte
	// only is the one student of NewStudentEvaluation, "" for all.
	only string
	// woken: the cursors read the students of eval_set (PlanWoken).
	woken bool
	// wakeBefore: StageWake stages the wake dates before it (PlanAll,
	// PlanWoken; 0: none); wakeLines are those of the current batch.
	wakeBefore date.Date
	wakeLines  [][]byte
	// faculties are the faculty ids read so far (FetchStudents).
	faculties map[string]string
}

// NewEvaluation returns the evaluation on conn, which is in a transaction
// begun with plain SQL (BEGIN) and holds the snapshot lock.
func NewEvaluation(conn *sql.Conn) *Evaluation { return &Evaluation{conn: conn} }

// EvalFetchSize is how many snapshot rows one FETCH of the evaluation's
// cursors reads: one round trip per batch, however large the roster.
const EvalFetchSize = 5000

// LastSeenNight is the latest night recorded (that of eval_state, or the
// latest last_seen_on of sisnotify.obligations, as YYYY-MM-DD), ok false
// when none is.
func (ev *Evaluation) LastSeenNight(ctx context.Context) (night string, ok bool, err error) {
	var last sql.NullString
	if err := ev.conn.QueryRowContext(ctx, `SELECT `+lastNight+`::text`).Scan(&last); err != nil {
		return "", false, fmt.Errorf("evaluate: %w", err)
	}
	return last.String, last.Valid, nil
}

// lastNight is the SQL of the latest night evaluated: the night of
// eval_state (an evaluation of the woken students leaves the others'
// last_seen_on as it was), or of a one-student evaluation since.
const lastNight = `greatest((SELECT night FROM sisnotify.eval_state), (SELECT max(last_seen_on) FROM sisnotify.obligations))`

// EvalPeriod is an academic period of the snapshot as the rules read it:
// Kind is the SIS's text ("" for none); a date is 0 when missing.
type EvalPeriod struct {
	ID       string
	Kind     string
	StartsOn date.Date
	EndsOn   date.Date
}

// Periods reads the academic periods of the snapshot, by start date.
func (ev *Evaluation) Periods(ctx context.Context) ([]EvalPeriod, error) {
	rows, err := ev.conn.QueryContext(ctx, `SELECT period_id, coalesce(kind, ''), `+dayNum("starts_on")+`, `+dayNum("ends_on")+`
		FROM sisnotify.academic_periods WHERE removed_at IS NULL ORDER BY starts_on, period_id`)
	if err != nil {
		return nil, fmt.Errorf("evaluate: periods: %w", err)
	}
	defer rows.Close()
	var periods []EvalPeriod
	for rows.Next() {
		var p EvalPeriod
		var s, en int32
		if err := rows.Scan(&p.ID, &p.Kind, &s, &en); err != nil {
			return nil, fmt.Errorf("evaluate: periods: %w", err)
		}
		p.StartsOn, p.EndsOn = date.Date(s), date.Date(en)
		periods = append(periods, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("evaluate: periods: %w", err)
	}
	return periods, nil
}

// CreateStage creates the temporary table eval_obligations (dropped on
// commit or rollback), where Stage and CopyStaged put tonight's
// obligations.
func (ev *Evaluation) CreateStage(ctx context.Context) error {
	if _, err := ev.conn.ExecContext(ctx, `CREATE TEMP TABLE eval_obligations (
		rule text, subject_id text COLLATE "C", anchor date, student_id text COLLATE "C", period_id text,
		due_on date, level int, step_on date, repeat_every int, actions int, moot text) ON COMMIT DROP`); err != nil {
		return fmt.Errorf("evaluate: %w", err)
	}
	return ev.reportsCreateStage(ctx)
}

// OpenCursors declares the cursors of the snapshot's students
// (FetchStudents) and travel requests (FetchTravel), both in student_id
// order so that one pass over each pairs them.
func (ev *Evaluation) OpenCursors(ctx context.Context) error {
	if _, err := ev.conn.ExecContext(ctx, `DECLARE eval_students NO SCROLL CURSOR FOR
		SELECT student_id, coalesce(faculty_id, ''), coalesce(enrollment_status, ''), coalesce(visa_regime, ''),
		       coalesce(preferred_language, ''), email IS NOT NULL, phone IS NOT NULL,
		       passport_expires_on, planned_entry_on, invitation_docs_on, entered_on, office_check_in_on,
		       registered_on, registration_expires_on, extension_requested_on, moved_on, address_registered_on
		FROM sisnotify.students WHERE removed_at IS NULL`+ev.onlyStudent("student_id")+ev.onlyWoken("student_id")+` ORDER BY student_id`); err != nil {
		return fmt.Errorf("evaluate: %w", err)
	}
	if _, err := ev.conn.ExecContext(ctx, `DECLARE eval_travel NO SCROLL CURSOR FOR
		SELECT request_id, student_id, coalesce(kind, ''),
		       submitted_on, departure_on, return_on, departed_on, returned_on, return_check_in_on,
		       coalesce(dean_decision, ''), exit_visa_ready, cancelled
		FROM sisnotify.travel_requests WHERE removed_at IS NULL`+ev.onlyStudent("student_id")+ev.onlyWoken("student_id")+` ORDER BY student_id, request_id`); err != nil {
		return fmt.Errorf("evaluate: %w", err)
	}
	return nil
}

// CloseCursors closes the cursors of OpenCursors.
func (ev *Evaluation) CloseCursors(ctx context.Context) error {
	for _, c := range []string{"eval_students", "eval_travel"} {
		if _, err := ev.conn.ExecContext(ctx, `CLOSE `+c); err != nil {
			return fmt.Errorf("evaluate: %w", err)
		}
	}
	return nil
}

// EvalStudent is a row of the students cursor: the SIS's text of the
// enumerations ("" for none), and the student's dates.
type EvalStudent struct {
	ID, FacultyID, Status, Regime, Language string
	HasEmail, HasPhone                      bool
	// Days are, in order (0 for none): passport_expires_on,
	// planned_entry_on, invitation_docs_on, entered_on,
	// office_check_in_on, registered_on, registration_expires_on,
	// extension_requested_on, moved_on, address_registered_on.
	Days [10]date.Date
}

// FetchStudents fetches the next batch of at most EvalFetchSize students
// and calls fn with each (the same *EvalStudent, overwritten: fn copies
// what it keeps). It returns how many were fetched, 0 at the end; an
// error of fn is returned as it is.
func (ev *Evaluation) FetchStudents(ctx context.Context, fn func(*EvalStudent) error) (int, error) {
	var s EvalStudent
	n, err := ev.fetch(ctx, "eval_students", 17, func(v [][]byte) error {
		s.ID, s.FacultyID = string(v[0]), ev.faculty(v[1])
		s.Status, s.Regime, s.Language = enum(v[2]), enum(v[3]), enum(v[4])
		s.HasEmail, s.HasPhone = binBool(v[5]), binBool(v[6])
		for i := range s.Days {
			s.Days[i] = binDate(v[7+i])
		}
		return fn(&s)
	})
	if err != nil {
		return n, fmt.Errorf("evaluate: read students: %w", err)
	}
	return n, nil
}

// EvalTravel is a row of the travel requests cursor: the SIS's text of
// the enumerations ("" for none), and the request's dates.
type EvalTravel struct {
	ID, StudentID, Kind string
	// Days are, in order (0 for none): submitted_on, departure_on,
	// return_on, departed_on, returned_on, return_check_in_on.
	Days          [6]date.Date
	DeanDecision  string
	ExitVisaReady sql.NullBool
	Cancelled     bool
}

// FetchTravel fetches the next batch of at most EvalFetchSize travel
// requests and calls fn with each (the same *EvalTravel, overwritten: fn
// copies what it keeps). It returns how many were fetched: fewer than
// EvalFetchSize at the end. An error of fn is returned as it is.
func (ev *Evaluation) FetchTravel(ctx context.Context, fn func(*EvalTravel) error) (int, error) {
	var t EvalTravel
	n, err := ev.fetch(ctx, "eval_travel", 12, func(v [][]byte) error {
		t.ID, t.StudentID, t.Kind = string(v[0]), string(v[1]), enum(v[2])
		for i := range t.Days {
			t.Days[i] = binDate(v[3+i])
		}
		t.DeanDecision = enum(v[9])
		t.ExitVisaReady = sql.NullBool{Valid: v[10] != nil, Bool: binBool(v[10])}
		t.Cancelled = binBool(v[11])
		return fn(&t)
	})
	if err != nil {
		return n, fmt.Errorf("evaluate: read travel: %w", err)
	}
	return n, nil
}

// fetch fetches the next EvalFetchSize rows of cursor in PostgreSQL's
// binary format through pgconn, on the transaction's own connection, and
// calls fn with each row's values (valid until fn returns). Read this way
// a row costs no conversion beyond what fn does: database/sql would
// convert every column, and dates as text would be formatted by the
// server and parsed here.
func (ev *Evaluation) fetch(ctx context.Context, cursor string, cols int, fn func([][]byte) error) (n int, err error) {
	err = ev.conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return errors.New("the snapshot transaction is not on a pgx connection")
		}
		rr := sc.Conn().PgConn().ExecParams(ctx, `FETCH `+strconv.Itoa(EvalFetchSize)+` FROM `+cursor, nil, nil, nil, []int16{pgx.BinaryFormatCode})
		var ferr error
		for ferr == nil && rr.NextRow() {
			v := rr.Values()
			if len(v) != cols {
				ferr = fmt.Errorf("%d columns, want %d", len(v), cols)
				break
			}
			if ferr = fn(v); ferr == nil {
				n++
			}
		}
		_, err := rr.Close()
		if ferr != nil {
			return ferr
		}
		return err
	})
	return n, err
}

// faculty returns the faculty id of b, the same string for every student
// of a faculty (there are a handful).
func (ev *Evaluation) faculty(b []byte) string {
	if f, ok := ev.faculties[string(b)]; ok {
		return f
	}
	if ev.faculties == nil {
		ev.faculties = map[string]string{}
	}
	f := string(b)
	if len(ev.faculties) < 10000 {
		ev.faculties[f] = f
	}
	return f
}

// enums are the values of the cursors' enumerations the rules know: read
// without allocating. Anything else is kept as it is.
var enums = func() map[string]string {
	m := map[string]string{}
	for _, vs := range [][]string{validate.Languages, validate.Regimes, validate.Statuses, validate.TravelKinds, validate.Decisions, {""}} {
		for _, v := range vs {
			m[v] = v
		}
	}
	return m
}()

func enum(b []byte) string {
	if s, ok := enums[string(b)]; ok {
		return s
	}
	return string(b)
}

// binBool reads a binary boolean; NULL is false.
func binBool(b []byte) bool { return len(b) == 1 && b[0] == 1 }

// binDate reads a binary date (days since 2000-01-01), 0 for NULL.
func binDate(b []byte) date.Date {
	if len(b) != 4 {
		return 0
	}
	return pgEpochDays + date.Date(int32(binary.BigEndian.Uint32(b)))
}

// pgEpochDays is PostgreSQL's day 0, 2000-01-01.
var pgEpochDays = date.Of(2000, time.January, 1)

// Stage encodes one of tonight's obligations for the next CopyStaged.
func (ev *Evaluation) Stage(o *rules.Obligation) {
	l := &ev.line
	l.Reset()
	l.Str(string(o.Rule))
	l.Str(o.SubjectID)
	l.Date(o.Anchor)
	l.Str(o.StudentID)
	l.Nullable(o.PeriodID)
	l.Date(o.Due)
	l.Int32(int32(o.Level))
	l.Date(o.StepDate)
	l.Int32(int32(o.RepeatEvery))
	l.Int32(int32(o.Actions))
	l.Nullable(o.Moot)
	ev.lines = append(ev.lines, append([]byte(nil), l.B...))
}

// Staged is how many obligations Stage encoded since the last CopyStaged.
func (ev *Evaluation) Staged() int { return len(ev.lines) }

// CopyStaged copies the staged obligations into eval_obligations with one
// COPY (none when there are none), and the staged wake dates into
// sisnotify.eval_wakes with another, and empties the stage.
func (ev *Evaluation) CopyStaged(ctx context.Context) error {
	lines := ev.lines
	ev.lines = ev.lines[:0]
	if err := ev.copyRows(ctx, "eval_obligations", "rule, subject_id, anchor, student_id, period_id, due_on, level, step_on, repeat_every, actions, moot", lines); err != nil {
		return fmt.Errorf("evaluate: stage: %w", err)
	}
	return ev.copyWakes(ctx)
}

// copyRows copies rows (encoded by pgcopy.Line) into table's cols with one
// COPY, none when there are none.
func (ev *Evaluation) copyRows(ctx context.Context, table, cols string, rows [][]byte) error {
	if len(rows) == 0 {
		return nil
	}
	cp, err := pgcopy.Start(ctx, ev.conn, table, cols)
	if err != nil {
		return err
	}
	for _, r := range rows {
		if err := cp.Row(r); err != nil {
			_ = cp.Finish()
			return err
		}
	}
	return cp.Finish()
}

// OpenObligations counts the obligations open in sisnotify.obligations.
func (ev *Evaluation) OpenObligations(ctx context.Context) (int64, error) {
	var n int64
	if err := ev.conn.QueryRowContext(ctx, `SELECT count(*) FROM sisnotify.obligations WHERE closed_at IS NULL`).Scan(&n); err != nil {
		return 0, fmt.Errorf("evaluate: %w", err)
	}
	return n, nil
}
