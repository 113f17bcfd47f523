package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/iec-almaty/sisnotify/integrations/sis"
	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/store"
)

func cmdSync(ctx context.Context, a *app, args []string) error {
	fs := flags(a, "sync", "sync [--as-of YYYY-MM-DD]",
		"Reads the SIS (SISNOTIFY_SIS_URL, read-only) in one consistent pass into the snapshot\nin the worker's database, records data problems, and prints rows read, changed, rejected.")
	var asOf dateFlag
	fs.Var(&asOf, "as-of", "judge dates as of this day (default: today in SISNOTIFY_TIMEZONE)")
	if err := parseFlags(a, fs, args); err != nil {
		return ignoreHelp(err)
	}
	cfg, err := loadConfig(a.lookup, need{sis: true, db: true})
	if err != nil {
		return err
	}
	db, err := openDB(ctx, a, cfg.DBURL)
	if err != nil {
		return err
	}
	defer db.Close()
	s := &jobs.Sync{SIS: sis.NewReader(cfg.SISURL), TrustUpdatedAt: cfg.TrustUpdatedAt, DB: db, Log: a.log}
	res, err := s.Run(ctx, asOf.asOf(cfg.Location))
	if err != nil {
		return err
	}
	printSync(a.stdout, res)
	return nil
}

func printSync(w io.Writer, res jobs.SyncResult) {
	var read, changed, rejected int64
	rows := [][]string{}
	for _, e := range []store.Entity{store.EntityFaculty, store.EntityPeriod, store.EntityStudent, store.EntityTravel} {
		c := res.Tables[e]
		read += c.Read
		changed += c.New + c.Changed + c.Removed
		rejected += c.Rejected
		rows = append(rows, []string{string(e), n(c.Read), n(c.New), n(c.Changed), n(c.Removed), n(c.Rejected)})
	}
	fmt.Fprintf(w, "sync %d as of %s: %s rows read, %s changed, %s rejected in %s\n",
		res.SyncID, res.AsOf, n(read), n(changed), n(rejected), res.Duration.Round(1e6))
	table(w, []string{"table", "read", "new", "changed", "removed", "rejected"}, rows)
	if res.ChangesSince != nil {
		fmt.Fprintf(w, "read only the students and travel requests whose updated_at is %s or later (SISNOTIFY_SIS_UPDATED_AT=trusted)\n", res.ChangesSince.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(w, "data problems now: %s errors, %s warnings (sisnotify.data_problems; listed in the office digest)\n", n(res.Errors), n(res.Warnings))
}
