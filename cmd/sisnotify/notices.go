package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"

	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/store"
	"github.com/iec-almaty/sisnotify/worker"
)

var noticeStatuses = map[string]bool{
	string(store.NoticePending): true, string(store.NoticeSending): true, string(store.NoticeSent): true,
	string(store.NoticeDelivered): true, string(store.NoticeBounced): true, string(store.NoticeFailed): true, string(store.NoticeCancelled): true,
}

func cmdNotices(ctx context.Context, a *app, args []string) error {
	retry := len(args) > 0 && args[0] == "retry"
	if retry {
		args = args[1:]
	}
	// Each page registers only its own flags, so that its help lists what
	// it takes: the log its --status, the retry its --pending and --timeout.
	var (
		fs      *flag.FlagSet
		f       store.NoticeFilter
		night   dateFlag
		pending *bool
		timeout *time.Duration
	)
	if retry {
		fs = flags(a, "notices retry", "notices retry [--pending] [--student ID] [--rule R] [--night D] [--id N] [--timeout 5m] [--limit N] [--format table|json]",
			"Re-queues notices and delivers them now, then lists exactly the notices it re-queued.\n"+
				"Without --pending: failed notices (all of them, or those the filters select) go back to pending,\n"+
				"after the cause was fixed. With --pending: pending notices waiting for a retry after a temporary\n"+
				"failure (an SMTP 4xx, a provider's 5xx) go now, whatever their back-off: say so once an outage is\n"+
				"over. SMS held for quiet hours stay held. Each re-queue is recorded (who, when, which notices),\n"+
				"and a notice keeps its attempts and its last error.")
		pending = fs.Bool("pending", false, "send the pending notices waiting for a retry now, instead of re-queueing failed ones")
		timeout = fs.Duration("timeout", 5*time.Minute, "how long to wait for the deliveries; the rest stays pending for serve or the next run")
	} else {
		fs = flags(a, "notices", "notices [--status S] [--student ID] [--rule R] [--night D] [--id N] [--limit N] [--format table|json]",
			"The notice log: what was sent, when, how, and what failed (newest first).\n"+
				"`sisnotify notices retry [filters]` puts failed notices back in the queue after a fix;\n"+
				"`sisnotify notices retry --pending` sends the notices waiting for a retry now, after an outage.")
		fs.StringVar(&f.Status, "status", "", "only notices in this status: pending, sending, sent, delivered, bounced, failed, cancelled")
	}
	fs.StringVar(&f.StudentID, "student", "", "only this student's notices")
	fs.StringVar(&f.Rule, "rule", "", "only this rule's notices")
	fs.Var(&night, "night", "only notices created by this night (YYYY-MM-DD)")
	id := fs.Int64("id", 0, "only this notice")
	limit := fs.Int("limit", 100, "list at most this many notices (the output says how many more there are)")
	format := fs.String("format", "table", "table or json (one object per line)")
	if err := parseFlags(a, fs, args); err != nil {
		return ignoreHelp(err)
	}
	if f.Status != "" && !noticeStatuses[f.Status] {
		return &UsageError{Msg: fmt.Sprintf("notices: --status %q: want pending, sending, sent, delivered, bounced, failed or cancelled", printable(f.Status))}
	}
	if *format != "table" && *format != "json" {
		return &UsageError{Msg: "notices: --format: want table or json"}
	}
	if *limit < 1 {
		return &UsageError{Msg: "notices: --limit: want 1 or more"}
	}
	f.Night = night.d
	if *id > 0 {
		f.IDs = []int64{*id}
	}
	cfg, err := loadConfig(a.lookup, need{db: true})
	if err != nil {
		return err
	}
	db, err := openDB(ctx, a, cfg.DBURL)
	if err != nil {
		return err
	}
	defer db.Close()
	if !retry {
		return printNotices(ctx, a, db, f, *limit, *format)
	}

	d, err := newDelivery(a, cfg, cfg.File, db)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.reachable(ctx); err != nil {
		return err
	}
	var ids []int64
	missing := 0
	if *pending {
		if ids, missing, err = retryPending(ctx, a, d.rdb, db, f); err != nil {
			return err
		}
	} else {
		if ids, err = jobs.RequeueFailed(ctx, db, d.queue, f, operator()); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "re-queued %d failed notices\n", len(ids))
	}
	// A notice whose task Redis lost (flushed, or restarted empty) has
	// nothing to move: the drain queues it again from PostgreSQL.
	if len(ids) == 0 && missing == 0 {
		return nil
	}
	er, err := d.drain(ctx, a, db, *timeout)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "deliver: %d pending, %d queued\n", er.Pending, er.Enqueued)
	// Exactly the notices re-queued, as they are now.
	return printNotices(ctx, a, db, store.NoticeFilter{IDs: ids}, *limit, *format)
}

// retryPending sends now the pending notices that match f and wait for a
// retry (or a scheduled time) in asynq, leaving SMS held for quiet hours
// held, records the re-queue and returns the notices it moved, and how
// many pending notices have no task in Redis at all (the enqueue of the
// drain that follows queues those again).
func retryPending(ctx context.Context, a *app, rdb redis.UniversalClient, db *sqlx.DB, f store.NoticeFilter) ([]int64, int, error) {
	st := store.New(db)
	waiting, err := st.WaitingNotices(ctx, f)
	if err != nil {
		return nil, 0, err
	}
	keys := make([]string, len(waiting))
	for i, n := range waiting {
		keys[i] = n.Key
	}
	res, err := worker.RunNow(ctx, rdb, keys)
	ids := make([]int64, len(res.Moved))
	for i, k := range res.Moved {
		ids[i] = waiting[k].ID
	}
	if rerr := st.RecordRequeue(ctx, operator(), string(store.NoticePending), ids); rerr != nil && err == nil {
		err = rerr
	}
	if err != nil {
		return ids, res.Missing, err
	}
	fmt.Fprintf(a.stdout, "sending now %d pending notices that waited for a retry (%d already queued, %d re-created from PostgreSQL)\n",
		len(ids), res.Queued, res.Missing)
	return ids, res.Missing, nil
}

// retryNow is `run --once --retry-now`: every pending notice that waits
// for a retry goes now (retryPending), before the night's deliveries.
func retryNow(ctx context.Context, a *app, cfg *Config, db *sqlx.DB) error {
	rdb := cfg.Redis.NewClient() // parsed with the configuration
	defer rdb.Close()
	_, _, err := retryPending(ctx, a, rdb, db, store.NoticeFilter{})
	return err
}

// operator names who asked for a re-queue: the OS user running the
// command.
func operator() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if s := os.Getenv("USER"); s != "" {
		return s
	}
	return "unknown"
}

func printNotices(ctx context.Context, a *app, db *sqlx.DB, f store.NoticeFilter, limit int, format string) error {
	rows, total, err := store.New(db).ListNotices(ctx, f, limit)
	if err != nil {
		return err
	}
	more := total - len(rows)
	if format == "json" {
		enc := json.NewEncoder(a.stdout)
		for _, r := range rows {
			type out struct {
				store.NoticeRow
				Language  string `json:"language,omitempty"`
				SentAt    string `json:"sent_at,omitempty"`
				LastError string `json:"last_error,omitempty"`
				Class     string `json:"error_class,omitempty"`
			}
			if err := enc.Encode(out{r, r.Language.String, r.SentAt.String, r.LastError.String, r.Class.String}); err != nil {
				return err
			}
		}
		if more > 0 {
			// stdout stays one notice per line; the cut is said beside it.
			fmt.Fprintf(a.stderr, "and %s more (--limit %d shows the newest %d)\n", n(int64(more)), limit, limit)
		}
		return nil
	}
	if len(rows) == 0 {
		fmt.Fprintln(a.stdout, "no notices match")
		return nil
	}
	cells := make([][]string, len(rows))
	for i, r := range rows {
		detail := r.SentAt.String
		if r.LastError.Valid {
			detail = r.Class.String + ": " + r.LastError.String
		}
		cells[i] = []string{strconv.FormatInt(r.ID, 10), r.Night, r.StudentID, r.Rule, strconv.Itoa(r.Level), r.Audience + " " + r.Channel,
			r.Language.String, r.Status, strconv.Itoa(r.Attempts), detail}
	}
	table(a.stdout, []string{"ID", "NIGHT", "STUDENT", "RULE", "LEVEL", "TO", "LANG", "STATUS", "ATTEMPTS", "SENT / LAST ERROR"}, cells)
	if more > 0 {
		fmt.Fprintf(a.stdout, "and %s more (--limit %d shows the newest %d)\n", n(int64(more)), limit, limit)
	}
	return nil
}
