package jobs

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/lib/pq"

	"github.com/iec-almaty/sisnotify/jobs/config"
	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/jobs/rules"
	"github.com/iec-almaty/sisnotify/store/pgcopy"
)

// Evaluate applies the rules to the snapshot for one as-of date: it keeps
// the obligations (open, reached, closed), records which steps became due
// tonight and which were skipped, and creates tonight's notices in the
// outbox. It reads the snapshot in batches through cursors and writes in
// bulk, so memory does not grow with the roster.
type Evaluate struct {
	Config       *config.File
	OfficeEmails []string // one office urgent notice per address
	Log          *slog.Logger
}

// Close reasons of sisnotify.obligations besides the moot ones of the
// rules (rules.MootDeparturePassed, rules.MootEntryPassed).
const (
	CloseResolved  = "resolved"   // done, or out of scope
	CloseNewAnchor = "new_anchor" // replaced by an obligation with a new anchor
)

// EvalResult is what one evaluation did.
type EvalResult struct {
	AsOf         string        `json:"as_of"`
	Students     int64         `json:"students"`
	Reached      int64         `json:"reached"` // open in the rules' eyes, with a step reached tonight
	Open         int64         `json:"open"`    // open in sisnotify.obligations after tonight (a closed one never reopens)
	Opened       int64         `json:"opened"`
	Closed       int64         `json:"closed"`
	ClosedMoot   int64         `json:"closed_moot"` // of Closed: the action can no longer be taken
	FoundLate    int64         `json:"found_late"`  // stale steps: digest listings instead of urgent emails
	StepsDue     int64         `json:"steps_due"`
	StepsSkipped int64         `json:"steps_skipped"`
	Notices      int64         `json:"notices"`
	Duration     time.Duration `json:"duration_ns"`
}

// ErrPastNight is returned when asked to record a night earlier than one
// already recorded: obligations only move forward. A dry run may preview
// any date.
var ErrPastNight = errors.New("a later night is already recorded")

// fetchSize is how many snapshot rows one round trip fetches.
const fetchSize = 5000

// Run evaluates in the transaction open on conn; the caller commits it or,
// for a dry run, rolls it back.
func (e *Evaluate) Run(ctx context.Context, conn *sql.Conn, asOf date.Date, dryRun bool) (res EvalResult, err error) {
	start := time.Now()
	res.AsOf = asOf.String()
	log := e.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if !dryRun {
		var last sql.NullString
		if err := conn.QueryRowContext(ctx, `SELECT max(last_seen_on)::text FROM sisnotify.obligations`).Scan(&last); err != nil {
			return res, fmt.Errorf("evaluate: %w", err)
		}
		if last.Valid && last.String > res.AsOf {
			return res, fmt.Errorf("evaluate %s: %w (%s); preview earlier dates with --dry-run", res.AsOf, ErrPastNight, last.String)
		}
	}
	engine, err := e.engine(ctx, conn, log)
	if err != nil {
		return res, err
	}
	if _, err := conn.ExecContext(ctx, `CREATE TEMP TABLE eval_obligations (
		rule text, subject_id text COLLATE "C", anchor date, student_id text COLLATE "C", period_id text,
		due_on date, level int, step_on date, repeat_every int, actions int, moot text) ON COMMIT DROP`); err != nil {
		return res, fmt.Errorf("evaluate: %w", err)
	}
	if res.Students, res.Reached, err = e.evaluateAll(ctx, conn, engine, asOf); err != nil {
		return res, err
	}
	if err := e.record(ctx, conn, asOf, &res); err != nil {
		return res, err
	}
	if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM sisnotify.obligations WHERE closed_at IS NULL`).Scan(&res.Open); err != nil {
		return res, fmt.Errorf("evaluate: %w", err)
	}
	res.Duration = time.Since(start)
	log.InfoContext(ctx, "evaluate", "as_of", res.AsOf, "students", res.Students, "reached", res.Reached, "open", res.Open, "opened", res.Opened,
		"closed", res.Closed, "closed_moot", res.ClosedMoot, "found_late", res.FoundLate, "steps_due", res.StepsDue, "steps_skipped", res.StepsSkipped, "notices", res.Notices,
		"dry_run", dryRun, "duration", res.Duration.Round(time.Millisecond))
	return res, nil
}

// engine builds the rules with the configuration and tonight's academic
// periods.
func (e *Evaluate) engine(ctx context.Context, conn *sql.Conn, log *slog.Logger) (*rules.Engine, error) {
	cfg := e.Config
	if cfg == nil {
		cfg = config.Default()
	}
	rows, err := conn.QueryContext(ctx, `SELECT period_id, coalesce(kind, ''), `+dayNum("starts_on")+`, `+dayNum("ends_on")+`
		FROM sisnotify.academic_periods WHERE removed_at IS NULL ORDER BY starts_on, period_id`)
	if err != nil {
		return nil, fmt.Errorf("evaluate: periods: %w", err)
	}
	defer rows.Close()
	var periods []rules.Period
	for rows.Next() {
		var p rules.Period
		var kind string
		var s, en int32
		if err := rows.Scan(&p.ID, &kind, &s, &en); err != nil {
			return nil, fmt.Errorf("evaluate: periods: %w", err)
		}
		if s == 0 {
			continue // a period without a start has a data problem already
		}
		p.Kind, p.StartsOn, p.EndsOn = rules.ParsePeriodKind(kind), date.Date(s), date.Date(en)
		periods = append(periods, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("evaluate: periods: %w", err)
	}
	cal, err := cfg.NewCalendar(log)
	if err != nil {
		return nil, fmt.Errorf("evaluate: calendar: %w", err)
	}
	eng, err := cfg.Engine(periods, cal)
	if err != nil {
		return nil, fmt.Errorf("evaluate: rules: %w", err)
	}
	return eng, nil
}

// dayNum selects a date column as a date.Date day number (0 for NULL), so
// rows scan into integers instead of parsed timestamps.
func dayNum(col string) string {
	return "coalesce((" + col + " - DATE '1970-01-01') + " + strconv.Itoa(int(date.UnixEpoch)) + ", 0)"
}

// dayNums is the dayNum of each column, as one text column of day numbers
// separated by commas (parseDays reads it). One column instead of one per
// date: database/sql scans each column through its conversions, and at a
// million students the scans of ten int columns cost more than the rules.
func dayNums(cols ...string) string {
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = dayNum(c)
	}
	return "concat_ws(',', " + strings.Join(parts, ", ") + ")"
}

// evaluateAll streams students with their travel requests (both in
// student_id order) through the engine and stages the open, reached
// obligations with COPY.
func (e *Evaluate) evaluateAll(ctx context.Context, conn *sql.Conn, engine *rules.Engine, asOf date.Date) (students, open int64, err error) {
	if _, err := conn.ExecContext(ctx, `DECLARE eval_students NO SCROLL CURSOR FOR
		SELECT student_id, coalesce(faculty_id, ''), coalesce(enrollment_status, ''), coalesce(visa_regime, ''),
		       coalesce(preferred_language, ''), email IS NOT NULL, phone IS NOT NULL, `+
		dayNums("passport_expires_on", "planned_entry_on", "invitation_docs_on", "entered_on", "office_check_in_on",
			"registered_on", "registration_expires_on", "extension_requested_on", "moved_on", "address_registered_on")+`
		FROM sisnotify.students WHERE removed_at IS NULL ORDER BY student_id`); err != nil {
		return 0, 0, fmt.Errorf("evaluate: %w", err)
	}
	if _, err := conn.ExecContext(ctx, `DECLARE eval_travel NO SCROLL CURSOR FOR
		SELECT request_id, student_id, coalesce(kind, ''),
		       `+dayNums("submitted_on", "departure_on", "return_on", "departed_on", "returned_on", "return_check_in_on")+`,
		       coalesce(dean_decision, ''), exit_visa_ready, cancelled
		FROM sisnotify.travel_requests WHERE removed_at IS NULL ORDER BY student_id, request_id`); err != nil {
		return 0, 0, fmt.Errorf("evaluate: %w", err)
	}
	tr := &travelCursor{conn: conn}
	var (
		batch   []rules.Student
		travels [][]rules.Travel
		out     []rules.Obligation
		line    pgcopy.Line
		lines   [][]byte
	)
	for {
		batch, err = fetchStudents(ctx, conn, batch[:0])
		if err != nil {
			return students, open, err
		}
		if len(batch) == 0 {
			break
		}
		// Travel rows of this batch's students, in order.
		travels = travels[:0]
		for i := range batch {
			ts, err := tr.upTo(ctx, batch[i].ID)
			if err != nil {
				return students, open, err
			}
			travels = append(travels, ts)
		}
		lines = lines[:0]
		for i := range batch {
			out = engine.Evaluate(batch[i], travels[i], asOf, out[:0])
			for j := range out {
				o := &out[j]
				line.Reset()
				line.Str(string(o.Rule))
				line.Str(o.SubjectID)
				line.Date(o.Anchor)
				line.Str(o.StudentID)
				line.Nullable(o.PeriodID)
				line.Date(o.Due)
				line.Int(int64(o.Level))
				line.Date(o.StepDate)
				line.Int(int64(o.RepeatEvery))
				line.Int(int64(o.Actions))
				line.Nullable(o.Moot)
				lines = append(lines, append([]byte(nil), line.B...))
			}
		}
		students += int64(len(batch))
		open += int64(len(lines))
		if len(lines) > 0 {
			cp, err := pgcopy.Start(ctx, conn, "eval_obligations", "rule, subject_id, anchor, student_id, period_id, due_on, level, step_on, repeat_every, actions, moot")
			if err != nil {
				return students, open, fmt.Errorf("evaluate: %w", err)
			}
			for _, l := range lines {
				if err := cp.Line(ctx, l); err != nil {
					_ = cp.Finish()
					return students, open, fmt.Errorf("evaluate: stage: %w", err)
				}
			}
			if err := cp.Finish(); err != nil {
				return students, open, fmt.Errorf("evaluate: stage: %w", err)
			}
		}
	}
	for _, c := range []string{"eval_students", "eval_travel"} {
		if _, err := conn.ExecContext(ctx, `CLOSE `+c); err != nil {
			return students, open, fmt.Errorf("evaluate: %w", err)
		}
	}
	return students, open, nil
}

func fetchStudents(ctx context.Context, conn *sql.Conn, batch []rules.Student) ([]rules.Student, error) {
	rows, err := conn.QueryContext(ctx, `FETCH `+strconv.Itoa(fetchSize)+` FROM eval_students`)
	if err != nil {
		return batch, fmt.Errorf("evaluate: read students: %w", err)
	}
	defer rows.Close()
	var status, regime, lang string
	var d sql.RawBytes
	for rows.Next() {
		var s rules.Student
		if err := rows.Scan(&s.ID, &s.FacultyID, &status, &regime, &lang, &s.HasEmail, &s.HasPhone, &d); err != nil {
			return batch, fmt.Errorf("evaluate: read students: %w", err)
		}
		s.Status, s.Regime, s.Language = rules.ParseStatus(status), rules.ParseRegime(regime), rules.ParseLanguage(lang)
		var days [10]date.Date
		if err := parseDays(days[:], d); err != nil {
			return batch, fmt.Errorf("evaluate: read student %s: %w", s.ID, err)
		}
		s.PassportExpiresOn, s.PlannedEntryOn, s.InvitationDocsOn = days[0], days[1], days[2]
		s.EnteredOn, s.OfficeCheckInOn, s.RegisteredOn = days[3], days[4], days[5]
		s.RegistrationExpiresOn, s.ExtensionRequestedOn = days[6], days[7]
		s.MovedOn, s.AddressRegisteredOn = days[8], days[9]
		batch = append(batch, s)
	}
	if err := rows.Err(); err != nil {
		return batch, fmt.Errorf("evaluate: read students: %w", err)
	}
	return batch, nil
}

// parseDays reads the column of dayNums into dst: exactly len(dst) day
// numbers separated by commas.
func parseDays(dst []date.Date, b []byte) error {
	for i := range dst {
		end := bytes.IndexByte(b, ',')
		if end < 0 {
			end = len(b)
		}
		if i < len(dst)-1 && end == len(b) || i == len(dst)-1 && end != len(b) {
			// The column's dates are the student's: say how many, not which.
			return fmt.Errorf("want %d day numbers, got %d", len(dst), bytes.Count(b, []byte{','})+i+1)
		}
		// ParseInt copies its input only into an error: the conversion does
		// not allocate (TestParseDays checks).
		v, err := strconv.ParseInt(string(b[:end]), 10, 32)
		if err != nil {
			return dayNumError(i, err)
		}
		dst[i] = date.Date(v)
		b = b[min(end+1, len(b)):]
	}
	return nil
}

// dayNumError reports the i-th day number as malformed, without its value
// (the dates are the student's).
func dayNumError(i int, err error) error {
	if ne := (*strconv.NumError)(nil); errors.As(err, &ne) {
		err = ne.Err
	}
	return fmt.Errorf("day number %d: %w", i+1, err)
}

// travelCursor hands out travel requests grouped by student, in the
// students' order, fetching in batches.
type travelCursor struct {
	conn *sql.Conn
	buf  []rules.Travel
	pos  int
	eof  bool
}

// upTo returns the requests of student id, skipping those of students
// before it (requests of unknown students: a data problem already). The
// slice is valid until the next batch is fetched; Evaluate copies nothing
// out of it.
func (c *travelCursor) upTo(ctx context.Context, id string) ([]rules.Travel, error) {
	for {
		for c.pos < len(c.buf) && c.buf[c.pos].StudentID < id {
			c.pos++
		}
		if c.pos < len(c.buf) || c.eof {
			break
		}
		if err := c.fetch(ctx); err != nil {
			return nil, err
		}
	}
	start := c.pos
	for {
		for c.pos < len(c.buf) && c.buf[c.pos].StudentID == id {
			c.pos++
		}
		if c.pos < len(c.buf) || c.eof {
			return c.buf[start:c.pos:c.pos], nil
		}
		// The student's requests continue in the next batch: keep them.
		keep := append([]rules.Travel(nil), c.buf[start:c.pos]...)
		if err := c.fetch(ctx); err != nil {
			return nil, err
		}
		c.buf = append(keep, c.buf...)
		start, c.pos = 0, len(keep)
	}
}

func (c *travelCursor) fetch(ctx context.Context) error {
	rows, err := c.conn.QueryContext(ctx, `FETCH `+strconv.Itoa(fetchSize)+` FROM eval_travel`)
	if err != nil {
		return fmt.Errorf("evaluate: read travel: %w", err)
	}
	defer rows.Close()
	c.buf, c.pos = c.buf[:0:0], 0 // a new array: earlier slices stay valid
	var kind, decision string
	var visa sql.NullBool
	var d sql.RawBytes
	n := 0
	for rows.Next() {
		var t rules.Travel
		if err := rows.Scan(&t.ID, &t.StudentID, &kind, &d, &decision, &visa, &t.Cancelled); err != nil {
			return fmt.Errorf("evaluate: read travel: %w", err)
		}
		t.Kind, t.DeanDecision = rules.ParseTravelKind(kind), rules.ParseDecision(decision)
		var days [6]date.Date
		if err := parseDays(days[:], d); err != nil {
			return fmt.Errorf("evaluate: read travel request %s: %w", t.ID, err)
		}
		t.SubmittedOn, t.DepartureOn, t.ReturnOn = days[0], days[1], days[2]
		t.DepartedOn, t.ReturnedOn, t.ReturnCheckInOn = days[3], days[4], days[5]
		t.ExitVisaReady = rules.TriOf(visa.Valid, visa.Bool)
		c.buf = append(c.buf, t)
		n++
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("evaluate: read travel: %w", err)
	}
	if n < fetchSize {
		c.eof = true
	}
	return nil
}

// staleAfter is the configured stale_after, in days.
func (e *Evaluate) staleAfter() int {
	if e.Config == nil {
		return config.DefaultStaleAfter
	}
	return e.Config.StaleAfter
}

// record merges tonight's obligations into sisnotify.obligations, closes
// the ones that are gone, records the steps that became due (and the lower
// ones skipped) and creates their notices.
func (e *Evaluate) record(ctx context.Context, conn *sql.Conn, asOf date.Date, res *EvalResult) error {
	night := asOf.String()
	exec := func(what, q string, args ...any) (int64, error) {
		r, err := conn.ExecContext(ctx, q, args...)
		if err != nil {
			return 0, fmt.Errorf("evaluate: %s: %w", what, err)
		}
		n, _ := r.RowsAffected()
		return n, nil
	}
	var err error
	if _, err = exec("index", `CREATE INDEX ON eval_obligations (rule, subject_id, anchor)`); err != nil {
		return err
	}
	if _, err = exec("analyze", `ANALYZE eval_obligations`); err != nil {
		return err
	}
	// New obligations; open ones move to their reached step. A closed
	// obligation never reopens: it never sends again. One that is moot when
	// first seen is never opened.
	if res.Opened, err = exec("open obligations", `
		INSERT INTO sisnotify.obligations AS o (rule, subject_id, anchor, student_id, period_id, due_on, level, step_on, repeat, actions, opened_on, last_seen_on)
		SELECT rule, subject_id, anchor, student_id, period_id, due_on, level, step_on, 0, actions, $1, $1 FROM eval_obligations
		WHERE moot IS NULL
		ON CONFLICT (rule, subject_id, anchor) DO NOTHING`, night); err != nil {
		return err
	}
	// A repeat step is due again repeat_every days after its last
	// delivery (the night its current repeat was recorded due), however
	// late the first one came: never on two nights closer than that.
	if _, err = exec("update obligations", `
		UPDATE sisnotify.obligations o
		SET due_on = e.due_on, level = e.level, step_on = e.step_on, actions = e.actions,
		    period_id = e.period_id, last_seen_on = $1,
		    repeat = CASE
		        WHEN e.level <> o.level THEN 0
		        WHEN e.repeat_every > 0 AND EXISTS (
		            SELECT 1 FROM sisnotify.obligation_steps st
		            WHERE st.obligation_id = o.obligation_id AND st.level = o.level AND st.repeat = o.repeat
		              AND st.status = 'due' AND st.recorded_on <= $1::date - e.repeat_every) THEN o.repeat + 1
		        ELSE o.repeat END
		FROM eval_obligations e
		WHERE o.rule = e.rule AND o.subject_id = e.subject_id AND o.anchor = e.anchor AND o.closed_at IS NULL AND e.moot IS NULL
		  AND (o.last_seen_on, o.level, o.due_on, o.actions) IS DISTINCT FROM ($1::date, e.level, e.due_on, e.actions)`, night); err != nil {
		return err
	}
	// Gone tonight: done, out of scope, replaced by a new anchor, or moot
	// (the action can no longer be taken: the reason is the rule's).
	if res.Closed, err = exec("close obligations", `
		UPDATE sisnotify.obligations o
		SET closed_on = $1, closed_at = now(),
		    close_reason = CASE
		        WHEN EXISTS (SELECT 1 FROM eval_obligations e WHERE e.rule = o.rule AND e.subject_id = o.subject_id AND e.moot IS NULL)
		            THEN '`+CloseNewAnchor+`'
		        ELSE coalesce((SELECT min(e.moot) FROM eval_obligations e WHERE e.rule = o.rule AND e.subject_id = o.subject_id), '`+CloseResolved+`') END
		WHERE o.closed_at IS NULL
		  AND NOT EXISTS (SELECT 1 FROM eval_obligations e WHERE e.rule = o.rule AND e.subject_id = o.subject_id AND e.anchor = o.anchor AND e.moot IS NULL)`, night); err != nil {
		return err
	}
	if err = conn.QueryRowContext(ctx, `SELECT count(*) FROM sisnotify.obligations WHERE closed_on = $1 AND close_reason = ANY($2)`,
		night, pq.Array([]string{rules.MootDeparturePassed, rules.MootEntryPassed})).Scan(&res.ClosedMoot); err != nil {
		return fmt.Errorf("evaluate: count moot: %w", err)
	}
	if _, err = exec("steps table", `CREATE TEMP TABLE eval_due (obligation_id bigint, level int, repeat int, stale bool) ON COMMIT DROP`); err != nil {
		return err
	}
	// A step reached for the first time more than stale_after days after
	// its date is stale: its student parts are sent, worded for how late
	// they are, but its office-urgent and dean emails are not; the digests
	// list the obligation instead, marked found late, while it stays open.
	if res.StepsDue, err = exec("due steps", `
		WITH due AS (
			INSERT INTO sisnotify.obligation_steps (obligation_id, level, repeat, status, recorded_on)
			SELECT o.obligation_id, o.level, o.repeat, 'due', $1
			FROM sisnotify.obligations o
			WHERE o.closed_at IS NULL AND o.last_seen_on = $1
			ON CONFLICT (obligation_id, level, repeat) DO NOTHING
			RETURNING obligation_id, level, repeat)
		INSERT INTO eval_due
		SELECT d.obligation_id, d.level, d.repeat, d.repeat = 0 AND o.step_on < $1::date - $2::int
		FROM due d JOIN sisnotify.obligations o ON o.obligation_id = d.obligation_id`, night, e.staleAfter()); err != nil {
		return err
	}
	if res.FoundLate, err = exec("found late", `
		UPDATE sisnotify.obligations o
		SET found_late = o.found_late
		        | CASE WHEN o.actions & `+strconv.Itoa(int(rules.OfficeUrgent))+` <> 0 THEN `+strconv.Itoa(int(rules.OfficeDigest))+` ELSE 0 END
		        | CASE WHEN o.actions & `+strconv.Itoa(int(rules.DeanEmail))+` <> 0 THEN `+strconv.Itoa(int(rules.DeanDigest))+` ELSE 0 END,
		    found_late_on = coalesce(o.found_late_on, $1)
		FROM eval_due d
		WHERE d.obligation_id = o.obligation_id AND d.stale
		  AND o.actions & `+strconv.Itoa(int(rules.OfficeUrgent|rules.DeanEmail))+` <> 0`, night); err != nil {
		return err
	}
	// Earlier steps never delivered are skipped, not sent in a burst.
	if res.StepsSkipped, err = exec("skipped steps", `
		INSERT INTO sisnotify.obligation_steps (obligation_id, level, repeat, status, recorded_on)
		SELECT d.obligation_id, l, 0, 'skipped', $1
		FROM eval_due d, generate_series(1, d.level - 1) AS l
		ON CONFLICT (obligation_id, level, repeat) DO NOTHING`, night); err != nil {
		return err
	}
	// The notices of the due steps, one per recipient and channel. A
	// recipient without a usable address or phone gets none: that is a
	// data problem, reported by the sync.
	b := int64(rules.StudentEmail)
	notices := []struct{ what, q string }{
		{"student email", `SELECT 'student', 'email', 'student', s.email, s.preferred_language FROM sisnotify.students s
			WHERE s.student_id = o.student_id AND s.email IS NOT NULL AND o.actions & ` + strconv.FormatInt(b, 10) + ` <> 0`},
		{"student sms", `SELECT 'student', 'sms', 'student', s.phone, s.preferred_language FROM sisnotify.students s
			WHERE s.student_id = o.student_id AND s.phone IS NOT NULL AND o.actions & ` + strconv.Itoa(int(rules.StudentSMS)) + ` <> 0`},
		{"office urgent", `SELECT 'office', 'email', 'office' || a.n, a.addr, NULL FROM unnest($2::text[]) WITH ORDINALITY AS a(addr, n)
			WHERE NOT d.stale AND o.actions & ` + strconv.Itoa(int(rules.OfficeUrgent)) + ` <> 0`},
		{"dean email", `SELECT 'dean', 'email', 'dean-' || f.faculty_id, f.dean_email, f.dean_language
			FROM sisnotify.students s JOIN sisnotify.faculties f ON f.faculty_id = s.faculty_id AND f.removed_at IS NULL
			WHERE NOT d.stale AND s.student_id = o.student_id AND f.dean_email IS NOT NULL AND o.actions & ` + strconv.Itoa(int(rules.DeanEmail)) + ` <> 0`},
	}
	for _, n := range notices {
		args := []any{night}
		if n.what == "office urgent" {
			args = append(args, pq.Array(e.OfficeEmails))
		}
		c, err := exec(n.what+" notices", `
			INSERT INTO sisnotify.notices (notice_key, obligation_id, rule, level, repeat, student_id, subject_id, audience, channel, recipient, language, due_on, night)
			SELECT o.rule || '/' || o.subject_id || '/' || o.anchor || '/L' || d.level || '/R' || d.repeat || '/' || r.role || '/' || r.channel,
			       o.obligation_id, o.rule, d.level, d.repeat, o.student_id, o.subject_id, r.audience, r.channel, r.recipient, r.lang, o.due_on, $1
			FROM eval_due d
			JOIN sisnotify.obligations o ON o.obligation_id = d.obligation_id
			CROSS JOIN LATERAL (`+n.q+`) AS r(audience, channel, role, recipient, lang)
			ON CONFLICT (notice_key) DO NOTHING`, args...)
		if err != nil {
			return err
		}
		res.Notices += c
	}
	return nil
}
