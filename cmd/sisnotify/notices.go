package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jmoiron/sqlx"

	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/jobs/config"
)

var noticeStatuses = map[string]bool{"pending": true, "sending": true, "sent": true, "failed": true, "cancelled": true}

func cmdNotices(ctx context.Context, a *app, args []string) error {
	retry := len(args) > 0 && args[0] == "retry"
	if retry {
		args = args[1:]
	}
	synopsis := "notices [--status S] [--student ID] [--rule R] [--night D] [--limit N] [--format table|json]"
	about := "The notice log: what was sent, when, how, and what failed (newest first).\n`sisnotify notices retry [filters]` puts failed notices back in the queue after a fix."
	if retry {
		synopsis = "notices retry [--student ID] [--rule R] [--night D] [--id N]"
		about = "Re-queues failed notices (all of them, or those the filters select) and delivers them now."
	}
	fs := flags(a, "notices", synopsis, about)
	var f jobs.NoticeFilter
	var night dateFlag
	if !retry {
		fs.StringVar(&f.Status, "status", "", "only notices in this status: pending, sending, sent, failed, cancelled")
	}
	fs.StringVar(&f.StudentID, "student", "", "only this student's notices")
	fs.StringVar(&f.Rule, "rule", "", "only this rule's notices")
	fs.Var(&night, "night", "only notices created by this night (YYYY-MM-DD)")
	limit := fs.Int("limit", 100, "at most this many rows")
	format := fs.String("format", "table", "table or json (one object per line)")
	id := fs.Int64("id", 0, "only this notice")
	timeout := fs.Duration("timeout", 5*time.Minute, "retry: how long to wait for the deliveries")
	if err := parseFlags(a, fs, args); err != nil {
		return ignoreHelp(err)
	}
	if f.Status != "" && !noticeStatuses[f.Status] {
		return &UsageError{Msg: fmt.Sprintf("notices: --status %q: want pending, sending, sent, failed or cancelled", printable(f.Status))}
	}
	if *format != "table" && *format != "json" {
		return &UsageError{Msg: "notices: --format: want table or json"}
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

	if retry {
		file, err := config.Load(cfg.ConfigPath)
		if err != nil {
			return &ConfigError{Msg: "SISNOTIFY_CONFIG: " + err.Error()}
		}
		d, err := newDelivery(a, cfg, file, db)
		if err != nil {
			return err
		}
		defer d.Close()
		insp := asynq.NewInspectorFromRedisClient(d.rdb)
		n, err := jobs.RequeueFailed(ctx, db, insp, f)
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "re-queued %d failed notices\n", n)
		if n == 0 {
			return nil
		}
		er, err := d.drain(ctx, a, db, *timeout)
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "deliver: %d pending, %d queued\n", er.Pending, er.Enqueued)
		f.Status, f.Night = "", 0
		return printNotices(ctx, a, db, f, *limit, *format)
	}
	return printNotices(ctx, a, db, f, *limit, *format)
}

func printNotices(ctx context.Context, a *app, db *sqlx.DB, f jobs.NoticeFilter, limit int, format string) error {
	rows, err := jobs.ListNotices(ctx, db, f, limit)
	if err != nil {
		return err
	}
	if format == "json" {
		enc := json.NewEncoder(a.stdout)
		for _, r := range rows {
			type out struct {
				jobs.NoticeRow
				Language  string `json:"language,omitempty"`
				SentAt    string `json:"sent_at,omitempty"`
				LastError string `json:"last_error,omitempty"`
				Class     string `json:"error_class,omitempty"`
			}
			if err := enc.Encode(out{r, r.Language.String, r.SentAt.String, r.LastError.String, r.Class.String}); err != nil {
				return err
			}
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
	return nil
}
