package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/iec-almaty/sisnotify/integrations/sis"
	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/jobs/config"
	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/jobs/rules"
	"github.com/iec-almaty/sisnotify/store"
	"github.com/iec-almaty/sisnotify/worker"
)

func cmdRun(ctx context.Context, a *app, args []string) error {
	fs := flags(a, "run", "run --once [--as-of YYYY-MM-DD] [--dry-run] [--format table|json]",
		"One full nightly cycle in the foreground: sync, evaluate, deliver, digests; prints a summary.\nWith --dry-run it sends nothing and records nothing, and lists every notice the night\nwould send (and every obligation tonight's digests would list).")
	once := fs.Bool("once", false, "run one cycle and exit (required; sisnotify serve runs on a schedule)")
	dry := fs.Bool("dry-run", false, "send and record nothing; list what would be sent")
	format := fs.String("format", "table", "output of --dry-run: table or json (one object per line)")
	timeout := fs.Duration("timeout", 10*time.Minute, "how long to wait for tonight's deliveries before leaving the rest to retries")
	force := fs.Bool("force", false, "let the night through the feed guard after a person has checked the SIS")
	retryNowFlag := fs.Bool("retry-now", false, "after an outage: send the notices waiting for a retry now, whatever their back-off (as notices retry --pending does)")
	var asOf dateFlag
	fs.Var(&asOf, "as-of", "the night to run (default: today in SISNOTIFY_TIMEZONE)")
	if err := parseFlags(a, fs, args); err != nil {
		return ignoreHelp(err)
	}
	if !*once {
		return &UsageError{Msg: "run: --once is required (the scheduled service is `sisnotify serve`)"}
	}
	if *format != "table" && *format != "json" {
		return &UsageError{Msg: fmt.Sprintf("run: --format %q: want table or json", printable(*format))}
	}
	cfg, err := loadConfig(a.lookup, need{sis: true, db: true, office: !*dry})
	if err != nil {
		return err
	}
	rulesCfg := cfg.File
	db, err := openDB(ctx, a, cfg.DBURL)
	if err != nil {
		return err
	}
	defer db.Close()
	day := asOf.asOf(cfg.Location)
	sync := &jobs.Sync{SIS: sis.NewReader(cfg.SISURL), TrustUpdatedAt: cfg.TrustUpdatedAt, DB: db, Log: a.log, Guard: guard(rulesCfg, *force)}

	if *dry {
		// The whole night in one transaction that is rolled back.
		w, _, err := sync.Stage(ctx, day)
		if err != nil {
			return err
		}
		defer w.Rollback()
		ev := &jobs.Evaluate{Config: rulesCfg, OfficeEmails: cfg.OfficeEmails, Log: a.log}
		if _, err := ev.Run(ctx, w.Conn(), day, true); err != nil {
			return err
		}
		if len(cfg.OfficeEmails) == 0 {
			// Previewing needs no office; but say what the real night does.
			fmt.Fprintln(a.stderr, "dry run: SISNOTIFY_OFFICE_EMAILS is not set, so the office digest is not listed; a night that sends refuses to start without it")
		}
		list, err := plannedNotices(ctx, w.Conn(), day, len(cfg.OfficeEmails))
		if err != nil {
			return err
		}
		if *format == "json" {
			return writeJSONLines(a.stdout, list)
		}
		writePlanTable(a.stdout, day, list)
		return nil
	}

	if *retryNowFlag {
		if err := retryNow(ctx, a, cfg, db); err != nil {
			return err
		}
	}
	return runNight(ctx, a, cfg, rulesCfg, db, day, *timeout, sync)
}

// runNight runs the night of day through the same phases, recorded the
// same way in sisnotify.nights, as serve (worker.Night): sync (unless sync
// is nil: the caller synced), evaluate, deliver — here the worker runs in
// the foreground until the notices that may go now are sent or timeout
// passes — and digest, printing what each did. Deliveries still pending
// when it stops waiting make it return a *PendingError (exit status 3)
// after the digests.
func runNight(ctx context.Context, a *app, cfg *Config, file *config.File, db *sqlx.DB, day date.Date, timeout time.Duration, sync *jobs.Sync) error {
	d, err := newDelivery(a, cfg, file, db)
	if err != nil {
		return err
	}
	defer d.Close()
	night := &worker.Night{
		DB: db, Sync: sync, Evaluate: &jobs.Evaluate{Config: file, OfficeEmails: cfg.OfficeEmails, Log: a.log},
		Enqueue: d.enqueuer, Digest: d.digest(cfg), Log: a.log,
		DigestWait: time.Millisecond, // the foreground worker has waited already
	}
	phase := func(name string) (any, error) { return night.RunPhase(ctx, name, day, nil) }
	if sync != nil {
		res, err := phase("sync")
		if errors.Is(err, store.ErrFeedGuard) {
			alertFeedGuard(ctx, a, cfg, file, db, day, err)
			return fmt.Errorf("%w\nnothing was sent and the previous snapshot is kept; after checking the SIS, run again with --force", err)
		}
		if err != nil {
			return err
		}
		printSync(a.stdout, res.(jobs.SyncResult))
	}
	res, err := phase("evaluate")
	if err != nil {
		return err
	}
	evRes := res.(jobs.EvalResult)
	which := "every student"
	if !evRes.Full {
		which = "the students whose dates came or facts changed"
	}
	fmt.Fprintf(a.stdout, "evaluate %s: %s students (%s), %s open obligations (%s new, %s closed, %s of them moot), %s steps due, %s skipped, %s found late, %s notices created in %s\n",
		evRes.AsOf, n(evRes.Students), which, n(evRes.Open), n(evRes.Opened), n(evRes.Closed), n(evRes.ClosedMoot), n(evRes.StepsDue), n(evRes.StepsSkipped),
		n(evRes.FoundLate), n(evRes.Notices), evRes.Duration.Round(1e6))

	dstart := time.Now()
	// The deliveries need Redis: say so, naming the variable, rather than
	// fail inside the enqueue with the client's error. The night's sync
	// and evaluation stay done; a rerun goes on from here.
	if err := d.reachable(ctx); err != nil {
		return err
	}
	if res, err = phase("deliver"); err != nil {
		return err
	}
	er := res.(jobs.EnqueueResult)
	_, err = d.drain(ctx, a, db, timeout)
	var pending *PendingError
	if errors.As(err, &pending) {
		// The night ran: its summary and digests still go out, and the
		// exit status (3) says deliveries are left.
		err = nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "deliver: %s pending, %s queued (%s already in Redis), %s SMS held for quiet hours, in %s\n",
		n(er.Pending), n(er.Enqueued), n(er.Queued), n(er.Held), time.Since(dstart).Round(time.Millisecond))
	if err := printNightSummary(ctx, a.stdout, db, day); err != nil {
		return err
	}
	if res, err = phase("digest"); err != nil {
		return fmt.Errorf("digest: %w", err)
	}
	if dg, ok := res.(jobs.DigestResult); ok {
		fmt.Fprintf(a.stdout, "digests: %d to the office, %d to deans (%d obligations listed), %d already sent, %d refused\n",
			dg.Office, dg.Deans, dg.Rows, dg.Skipped, dg.Failed)
	}
	if pending != nil {
		return pending
	}
	return nil
}

// printNightSummary prints tonight's notices by rule, channel and status,
// and the failures.
func printNightSummary(ctx context.Context, w io.Writer, db *sqlx.DB, day date.Date) error {
	st := store.New(db)
	rows, err := st.NightNoticeTallies(ctx, day)
	if err != nil {
		return fmt.Errorf("summary: %w", err)
	}
	cells := make([][]string, len(rows))
	for i, r := range rows {
		cells[i] = []string{r.Rule, r.Channel, string(r.Status), n(r.N)}
	}
	fmt.Fprintf(w, "notices of %s:\n", day)
	if len(cells) == 0 {
		fmt.Fprintln(w, "  none")
	} else {
		table(w, []string{"rule", "to", "status", "notices"}, cells)
	}
	failed, total, err := st.NightFailedNotices(ctx, day)
	if err != nil {
		return fmt.Errorf("summary: %w", err)
	}
	if len(failed) > 0 {
		fmt.Fprintln(w, "failed (see `sisnotify notices --status failed`):")
		for _, f := range failed {
			fmt.Fprintf(w, "  notice %d  student %s  %s %s: %s\n", f.ID, f.StudentID, f.Rule, f.Channel, f.Err)
		}
		if more := total - int64(len(failed)); more > 0 {
			fmt.Fprintf(w, "  and %s more: `sisnotify notices --status failed --night %s --limit %d` lists them all\n", n(more), day, total)
		}
	}
	return printPending(ctx, w, db, day)
}

// printPending says how many notices, of this night and the ones before,
// are still waiting to be sent, and why (their last error), so a run that
// met an outage does not end looking done.
func printPending(ctx context.Context, w io.Writer, db *sqlx.DB, day date.Date) error {
	total, reasons, err := jobs.PendingSummary(ctx, db, day, false)
	if err != nil {
		return fmt.Errorf("summary: %w", err)
	}
	if total == 0 {
		return nil
	}
	fmt.Fprintf(w, "still waiting to be sent: %s notices (%s); after an outage, `sisnotify notices retry --pending` sends them now\n",
		n(int64(total)), pendingWhy(reasons))
	return nil
}

// pendingWhy says why pending notices wait: their last errors by class
// and code ("temporary 451 4.7.1: 2,000"), at most five, then how many
// more.
func pendingWhy(reasons []jobs.PendingReason) string {
	var parts []string
	rest := 0
	for i, r := range reasons {
		if i >= 5 {
			rest += r.N
			continue
		}
		what := "not tried yet"
		switch {
		case r.Class != "" && r.Detail != "":
			what = r.Class + " " + r.Detail
		case r.Class != "":
			what = r.Class + " error"
		}
		parts = append(parts, what+": "+n(int64(r.N)))
	}
	if rest > 0 {
		parts = append(parts, "and "+n(int64(rest))+" for other reasons")
	}
	return strings.Join(parts, ", ")
}

// guard is the feed guard of the configuration file.
func guard(file *config.File, force bool) *store.Guard {
	return &store.Guard{MaxRosterDrop: file.FeedGuard.MaxRosterDrop, MaxEmptied: file.FeedGuard.MaxEmptied, Force: force}
}

// alertFeedGuard tells the operators and the office that the night was
// held; a failure to mail is logged, the held night is the error.
func alertFeedGuard(ctx context.Context, a *app, cfg *Config, file *config.File, db *sqlx.DB, day date.Date, cause error) {
	d, err := newDelivery(a, cfg, file, db)
	if err != nil {
		a.log.ErrorContext(ctx, "feed guard alert", "err", err)
		return
	}
	defer d.Close()
	if err := worker.MailFeedGuard(ctx, d.mail, append(append([]string{}, cfg.OpsEmails...), cfg.OfficeEmails...), day, cause); err != nil {
		a.log.ErrorContext(ctx, "feed guard alert", "err", err)
	}
}

// planned is one line of the dry run: a notice the night would send, or an
// obligation a digest would list; store.PlannedNotice with the names of
// the JSON output (--format json).
type planned struct {
	Rule      string `json:"rule"`
	Level     int    `json:"level"`
	StudentID string `json:"student_id"`
	SubjectID string `json:"subject_id"`
	Audience  string `json:"audience"`
	Channel   string `json:"channel"`
	DueOn     string `json:"due_on"`
	Repeat    int    `json:"repeat"`
}

// plannedNotices lists, inside the night's transaction, the notices that
// would be sent and the obligations tonight's digests would list, in a
// stable order (store.PlannedNotices); offices is the number of the
// office's addresses.
func plannedNotices(ctx context.Context, conn *sql.Conn, night date.Date, offices int) ([]planned, error) {
	list, err := store.PlannedNotices(ctx, conn, night, offices, int(rules.OfficeDigest), int(rules.DeanDigest))
	if err != nil {
		return nil, err
	}
	out := make([]planned, len(list))
	for i, p := range list {
		out[i] = planned(p)
	}
	return out, nil
}

func writeJSONLines(w io.Writer, list []planned) error {
	enc := json.NewEncoder(w)
	for _, p := range list {
		if err := enc.Encode(p); err != nil {
			return err
		}
	}
	return nil
}

// writePlanTable prints the dry run for office staff: one row per
// obligation, with who gets what.
func writePlanTable(w io.Writer, asOf date.Date, list []planned) {
	type key struct {
		student, rule, subject string
		level                  int
	}
	var order []key
	what := map[key]map[string][]string{}
	due := map[key]string{}
	for _, p := range list {
		k := key{p.StudentID, p.Rule, p.SubjectID, p.Level}
		if what[k] == nil {
			what[k] = map[string][]string{}
			order = append(order, k)
			due[k] = p.DueOn
		}
		what[k][p.Audience] = appendOnce(what[k][p.Audience], p.Channel)
	}
	rows := make([][]string, 0, len(order))
	for _, k := range order {
		var parts []string
		for _, aud := range []string{"student", "office", "dean"} {
			if ch := what[k][aud]; len(ch) > 0 {
				parts = append(parts, aud+": "+strings.Join(ch, ", "))
			}
		}
		subject := k.subject
		if subject == k.student {
			subject = "-"
		}
		rows = append(rows, []string{k.student, k.rule, subject, strconv.Itoa(k.level), due[k], daysWord(asOf, due[k]), strings.Join(parts, "; ")})
	}
	fmt.Fprintf(w, "Dry run for %s: %d notices and digest lines for %d obligations (nothing sent, nothing recorded)\n\n", asOf, len(list), len(order))
	if len(rows) == 0 {
		fmt.Fprintln(w, "Nothing is due.")
		return
	}
	table(w, []string{"STUDENT", "RULE", "TRIP", "LEVEL", "DUE", "WHEN", "WHO GETS WHAT"}, rows)
}

func appendOnce(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

func daysWord(asOf date.Date, due string) string {
	d, err := date.Parse(due)
	if err != nil {
		return ""
	}
	switch n := d.Sub(asOf); {
	case n == 0:
		return "due today"
	case n == 1:
		return "1 day left"
	case n > 1:
		return strconv.Itoa(n) + " days left"
	case n == -1:
		return "1 day overdue"
	default:
		return strconv.Itoa(-n) + " days overdue"
	}
}
