package jobs

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/iec-almaty/sisnotify/jobs/config"
	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/jobs/rules"
	"github.com/iec-almaty/sisnotify/store"
)

// Evaluate applies the rules to the snapshot for one as-of date: it keeps
// the obligations (open, reached, closed), records which steps became due
// tonight and which were skipped, and creates tonight's notices in the
// outbox. It reads the snapshot in batches through cursors and writes in
// bulk, so memory does not grow with the roster.
//
// A night evaluates only the students whose obligations can have changed
// since the last night (store.Evaluation.PlanWoken): the rules say when
// each student's result next changes by the date alone. It evaluates
// every student on the first night, when the rules' other inputs changed
// (configuration, academic periods, calendar, program), once a week
// (fullEvery), in a dry run, and when Full is set.
type Evaluate struct {
	Config       *config.File
	OfficeEmails []string // one office urgent notice per address
	Log          *slog.Logger
	Full         bool // evaluate every student tonight
}

// fullEvery is how many days a night may rely on the wake dates before
// it evaluates every student again: a safety net, like the sync's weekly
// full read.
const fullEvery = 7

// EvalResult is what one evaluation did.
type EvalResult struct {
	AsOf     string `json:"as_of"`
	Students int64  `json:"students"` // students evaluated
	// Full: every student was evaluated; otherwise only those woken by
	// their date, a change of their facts or a report.
	Full         bool          `json:"full"`
	Reached      int64         `json:"reached"` // open in the rules' eyes, with a step reached tonight, of the students evaluated
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

var discardLog = slog.New(slog.DiscardHandler)

// ErrPastNight is returned when asked to record a night earlier than one
// already recorded: obligations only move forward. A dry run may preview
// any date.
var ErrPastNight = errors.New("a later night is already recorded")

// Run evaluates in the transaction open on conn; the caller commits it or,
// for a dry run, rolls it back.
func (e *Evaluate) Run(ctx context.Context, conn *sql.Conn, asOf date.Date, dryRun bool) (res EvalResult, err error) {
	start := time.Now()
	res.AsOf = asOf.String()
	log := e.Log
	if log == nil {
		log = discardLog
	}
	ev := store.NewEvaluation(conn)
	if !dryRun {
		last, ok, err := ev.LastSeenNight(ctx)
		if err != nil {
			return res, err
		}
		if ok && last > res.AsOf {
			return res, fmt.Errorf("evaluate %s: %w (%s); preview earlier dates with --dry-run", res.AsOf, ErrPastNight, last)
		}
	}
	engine, err := e.engine(ctx, ev, log)
	if err != nil {
		return res, err
	}
	if err := ev.CreateStage(ctx); err != nil {
		return res, err
	}
	reps, err := e.loadReports(ctx, ev, engine.Calendar(), asOf)
	if err != nil {
		return res, err
	}
	inputs := inputsDigest(engine)
	if !dryRun {
		if res.Full, err = e.plan(ctx, ev, log, asOf, inputs, reps); err != nil {
			return res, err
		}
	} else {
		res.Full = true
	}
	if res.Students, res.Reached, err = e.evaluateAll(ctx, ev, engine, reps, asOf); err != nil {
		return res, err
	}
	// On a failure res still counts what was recorded before it.
	rec, err := ev.Record(ctx, asOf, e.staleAfter(), e.OfficeEmails)
	res.Opened, res.Closed, res.ClosedMoot, res.FoundLate = rec.Opened, rec.Closed, rec.ClosedMoot, rec.FoundLate
	res.StepsDue, res.StepsSkipped, res.Notices = rec.StepsDue, rec.StepsSkipped, rec.Notices
	if err != nil {
		return res, err
	}
	settled, err := ev.ReportsSettle(ctx, asOf, reps.lapsed)
	res.Notices += settled.Notices
	if err != nil {
		return res, err
	}
	if settled != (store.ReportsSettled{}) {
		log.InfoContext(ctx, "evaluate reports", "as_of", res.AsOf, "paused", len(reps.paused), "lapsed", settled.Lapsed,
			"confirmed", settled.Confirmed, "resumed_notices", settled.Notices)
	}
	if res.Open, err = ev.OpenObligations(ctx); err != nil {
		return res, err
	}
	if !dryRun {
		if err := ev.SaveEvalState(ctx, asOf, res.Full, inputs); err != nil {
			return res, err
		}
	}
	res.Duration = time.Since(start)
	log.InfoContext(ctx, "evaluate", "as_of", res.AsOf, "students", res.Students, "full", res.Full, "reached", res.Reached, "open", res.Open, "opened", res.Opened,
		"closed", res.Closed, "closed_moot", res.ClosedMoot, "found_late", res.FoundLate, "steps_due", res.StepsDue, "steps_skipped", res.StepsSkipped, "notices", res.Notices,
		"dry_run", dryRun, "duration", res.Duration.Round(time.Millisecond))
	return res, nil
}

// plan decides whether tonight evaluates every student or only the woken
// ones, and prepares the evaluation for it; it reports whether it is
// every student.
func (e *Evaluate) plan(ctx context.Context, ev *store.Evaluation, log *slog.Logger, asOf date.Date, inputs string, reps *studentReports) (full bool, err error) {
	last, ok, err := ev.LastEvalState(ctx)
	if err != nil {
		return false, err
	}
	why := ""
	switch {
	case e.Full:
		why = "asked"
	case !ok:
		why = "first night"
	case last.Inputs != inputs:
		why = "rules, periods, calendar or program changed"
	case asOf.Sub(last.FullOn) >= fullEvery:
		why = "weekly"
	}
	if why != "" {
		log.InfoContext(ctx, "evaluate every student", "as_of", asOf.String(), "why", why)
		return true, ev.PlanAll(ctx, asOf.AddDays(fullEvery))
	}
	// A wake date on or after the next night that evaluates everyone is of
	// no use: most students' are, and are not written.
	woken, err := ev.PlanWoken(ctx, asOf, last, reps.students(), last.FullOn.AddDays(fullEvery))
	if err != nil {
		return false, err
	}
	log.InfoContext(ctx, "evaluate woken students", "as_of", asOf.String(), "woken", woken, "last_night", last.Night.String(), "last_full", last.FullOn.String())
	return false, nil
}

// inputsDigest is the digest of what tonight's results depend on besides
// the facts: the engine's inputs and this program (a new build may
// evaluate differently, so its first night evaluates every student).
func inputsDigest(engine *rules.Engine) string {
	return engine.Digest() + " " + programDigest()
}

// programDigest identifies this build: the SHA-256 of its executable (an
// image built without its git history has no revision to tell builds
// apart), or, when the file cannot be read, the module's version.
var programDigest = sync.OnceValue(func() string {
	if path, err := os.Executable(); err == nil {
		if f, err := os.Open(path); err == nil {
			defer f.Close()
			h := sha256.New()
			if _, err := io.Copy(h, f); err == nil {
				return hex.EncodeToString(h.Sum(nil))
			}
		}
	}
	prog := "sisnotify"
	if bi, ok := debug.ReadBuildInfo(); ok {
		prog += " " + bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" || s.Key == "vcs.modified" {
				prog += " " + s.Value
			}
		}
	}
	return prog
})

// engine builds the rules with the configuration and tonight's academic
// periods.
func (e *Evaluate) engine(ctx context.Context, ev *store.Evaluation, log *slog.Logger) (*rules.Engine, error) {
	cfg := e.Config
	if cfg == nil {
		cfg = config.Default()
	}
	rows, err := ev.Periods(ctx)
	if err != nil {
		return nil, err
	}
	var periods []rules.Period
	for _, r := range rows {
		if r.StartsOn == 0 {
			continue // a period without a start has a data problem already
		}
		periods = append(periods, rules.Period{ID: r.ID, Kind: rules.ParsePeriodKind(r.Kind), StartsOn: r.StartsOn, EndsOn: r.EndsOn})
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

// evaluateAll streams students with their travel requests (both in
// student_id order) through the engine and stages the open, reached
// obligations with COPY.
//
// The connection and the rules take turns otherwise, so one batch is
// evaluated on another goroutine while this one fetches the next batch
// and copies the previous batch's obligations: PostgreSQL produces and
// stores rows while the rules run. Two batches are in memory at most.
func (e *Evaluate) evaluateAll(ctx context.Context, ev *store.Evaluation, engine *rules.Engine, reps *studentReports, asOf date.Date) (students, open int64, err error) {
	if err := ev.OpenCursors(ctx); err != nil {
		return 0, 0, err
	}
	tr := &travelCursor{ev: ev}
	todo, done := make(chan *evalBatch, 1), make(chan *evalBatch, 1)
	go func() {
		defer close(done)
		for b := range todo {
			b.out = b.out[:0]
			b.wakes = b.wakes[:0]
			for i := range b.students {
				reps.apply(&b.students[i])
				var wake date.Date
				b.out, wake = engine.EvaluateWake(b.students[i], b.travels[i], asOf, b.out)
				b.wakes = append(b.wakes, wake)
			}
			done <- b
		}
	}()
	defer func() {
		close(todo)
		for range done {
		}
	}()
	batches := [2]*evalBatch{{}, {}}
	next := 0
	fetch := func() (*evalBatch, error) {
		b := batches[next]
		next = 1 - next
		if err := b.fetch(ctx, ev, tr); err != nil {
			return nil, err
		}
		return b, nil
	}
	cur, err := fetch()
	if err != nil {
		return 0, 0, err
	}
	if len(cur.students) > 0 {
		todo <- cur
	}
	// Each turn: cur is being evaluated. Fetch the next batch meanwhile,
	// hand it over once cur is done, and copy cur's obligations while it
	// is evaluated.
	for len(cur.students) > 0 {
		nb, err := fetch()
		if err != nil {
			return students, open, err
		}
		<-done // cur: the one batch in flight
		if len(nb.students) > 0 {
			todo <- nb
		}
		for j := range cur.out {
			ev.Stage(&cur.out[j])
		}
		for j, wake := range cur.wakes {
			ev.StageWake(cur.students[j].ID, wake)
		}
		students += int64(len(cur.students))
		open += int64(len(cur.out))
		if err := ev.CopyStaged(ctx); err != nil {
			return students, open, err
		}
		cur = nb
	}
	if err := ev.CloseCursors(ctx); err != nil {
		return students, open, err
	}
	return students, open, nil
}

// evalBatch is one batch of students with their travel requests, and
// the obligations the rules found for them.
type evalBatch struct {
	students []rules.Student
	travels  [][]rules.Travel // travels[i] are students[i]'s
	out      []rules.Obligation
	wakes    []date.Date // wakes[i] is students[i]'s wake date
}

// fetch reads the next batch of students and their travel requests into
// b: no students at the end.
func (b *evalBatch) fetch(ctx context.Context, ev *store.Evaluation, tr *travelCursor) error {
	var err error
	if b.students, err = fetchStudents(ctx, ev, b.students[:0]); err != nil {
		return err
	}
	b.travels = b.travels[:0]
	for i := range b.students {
		ts, err := tr.upTo(ctx, b.students[i].ID)
		if err != nil {
			return err
		}
		b.travels = append(b.travels, ts)
	}
	return nil
}

// fetchStudents appends the next batch of students to batch: none at the
// end.
func fetchStudents(ctx context.Context, ev *store.Evaluation, batch []rules.Student) ([]rules.Student, error) {
	_, err := ev.FetchStudents(ctx, func(r *store.EvalStudent) error {
		s := rules.Student{ID: r.ID, FacultyID: r.FacultyID, HasEmail: r.HasEmail, HasPhone: r.HasPhone}
		s.Status, s.Regime, s.Language = rules.ParseStatus(r.Status), rules.ParseRegime(r.Regime), rules.ParseLanguage(r.Language)
		days := &r.Days
		s.PassportExpiresOn, s.PlannedEntryOn, s.InvitationDocsOn = days[0], days[1], days[2]
		s.EnteredOn, s.OfficeCheckInOn, s.RegisteredOn = days[3], days[4], days[5]
		s.RegistrationExpiresOn, s.ExtensionRequestedOn = days[6], days[7]
		s.MovedOn, s.AddressRegisteredOn = days[8], days[9]
		batch = append(batch, s)
		return nil
	})
	return batch, err
}

// travelCursor hands out travel requests grouped by student, in the
// students' order, fetching in batches.
type travelCursor struct {
	ev  *store.Evaluation
	buf []rules.Travel
	pos int
	eof bool
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
	// A new array, sized for a whole fetch (earlier slices stay valid):
	// growing it from nothing took a fifth of the fetching's CPU.
	c.buf, c.pos = make([]rules.Travel, 0, store.EvalFetchSize), 0
	n, err := c.ev.FetchTravel(ctx, func(r *store.EvalTravel) error {
		t := rules.Travel{ID: r.ID, StudentID: r.StudentID, Cancelled: r.Cancelled}
		t.Kind, t.DeanDecision = rules.ParseTravelKind(r.Kind), rules.ParseDecision(r.DeanDecision)
		days := &r.Days
		t.SubmittedOn, t.DepartureOn, t.ReturnOn = days[0], days[1], days[2]
		t.DepartedOn, t.ReturnedOn, t.ReturnCheckInOn = days[3], days[4], days[5]
		t.ExitVisaReady = rules.TriOf(r.ExitVisaReady.Valid, r.ExitVisaReady.Bool)
		c.buf = append(c.buf, t)
		return nil
	})
	if err != nil {
		return err
	}
	if n < store.EvalFetchSize {
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
