package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"mime"
	netmail "net/mail"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/lib/pq"

	"github.com/iec-almaty/sisnotify/integrations/sis"
	"github.com/iec-almaty/sisnotify/integrations/sis/sisdemo"
	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/jobs/config"
	"github.com/iec-almaty/sisnotify/store"
)

// Where the demo keeps its databases when SISNOTIFY_SIS_URL and
// SISNOTIFY_DB_URL are not set: the local PostgreSQL of a developer
// machine. (Variables so that the compose test can stand for a container,
// whose loopback has no PostgreSQL.)
var (
	demoSISURL = "postgres://postgres@127.0.0.1:5432/sisnotify_demo_sis?sslmode=disable"
	demoDBURL  = "postgres://postgres@127.0.0.1:5432/sisnotify_demo?sslmode=disable"
)

// demoMark is the comment the demo leaves on the sis schema it creates; it
// never overwrites a sis schema without it.
const demoMark = "sisnotify demo data"

func cmdDemo(ctx context.Context, a *app, args []string) error {
	fs := flags(a, "demo", "demo [--students N] [--seed S] [--as-of YYYY-MM-DD] [--sis-only]",
		"Creates a demo SIS (reference schema) with generated students, then syncs it and runs a\nnight on it. Uses SISNOTIFY_SIS_URL and SISNOTIFY_DB_URL when set, else the databases\nsisnotify_demo_sis and sisnotify_demo on the local PostgreSQL (created if missing).\nThe demo only ever replaces a sis schema that it created itself.")
	students := fs.Int("students", 2000, "number of students to generate")
	seed := fs.Int64("seed", 1, "random seed; the same seed and date give the same SIS")
	sisOnly := fs.Bool("sis-only", false, "only create the demo SIS, then stop")
	reader := fs.String("reader", "", "also grant this existing role SELECT on the demo SIS (as a read-only SIS role)")
	var asOf dateFlag
	fs.Var(&asOf, "as-of", "the night to simulate (default: today in SISNOTIFY_TIMEZONE)")
	if err := parseFlags(a, fs, args); err != nil {
		return ignoreHelp(err)
	}
	if *students < 1 {
		return &UsageError{Msg: "demo: --students must be at least 1"}
	}
	cfg, err := loadConfig(a.lookup, need{})
	if err != nil {
		return err
	}
	if cfg.SISURL == "" {
		cfg.SISURL = demoSISURL
	}
	// --sis-only needs and touches the SIS alone: docker-compose.yml's
	// sis-demo service runs it with SISNOTIFY_SIS_URL only, in a container
	// whose loopback has no PostgreSQL.
	dbs := []string{cfg.SISURL}
	if !*sisOnly {
		if cfg.DBURL == "" {
			cfg.DBURL = demoDBURL
		}
		dbs = append(dbs, cfg.DBURL)
	}
	day := asOf.asOf(cfg.Location)

	for _, u := range dbs {
		if err := ensureDatabase(ctx, u); err != nil {
			return err
		}
	}
	sisDB, err := sql.Open("postgres", cfg.SISURL)
	if err != nil {
		return fmt.Errorf("demo: open SISNOTIFY_SIS_URL: %w", err)
	}
	defer sisDB.Close()
	if err := checkDemoSchema(ctx, sisDB); err != nil {
		return err
	}
	start := time.Now()
	if err := sisdemo.CreateSchema(ctx, sisDB); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if _, err := sisDB.ExecContext(ctx, `COMMENT ON SCHEMA sis IS '`+demoMark+`'`); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if *reader != "" {
		for _, q := range []string{`GRANT USAGE ON SCHEMA sis TO `, `GRANT SELECT ON ALL TABLES IN SCHEMA sis TO `} {
			if _, err := sisDB.ExecContext(ctx, q+pq.QuoteIdentifier(*reader)); err != nil {
				return fmt.Errorf("demo: grant SELECT to --reader role: %w", err)
			}
		}
	}
	stats, err := sisdemo.Generate(ctx, sisDB, sisdemo.Options{Students: *students, Seed: *seed, AsOf: day})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	fmt.Fprintf(a.stdout, "demo SIS: %s students, %s travel requests (seed %d, as of %s) in %s\n",
		n(int64(stats.Students)), n(int64(stats.TravelRequests)), *seed, day, time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(a.stdout, "  SIS database: %s\n", redactURL(cfg.SISURL))
	if *sisOnly {
		return nil
	}

	db, err := openDB(ctx, a, cfg.DBURL)
	if err != nil {
		return err
	}
	defer db.Close()
	s := &jobs.Sync{SIS: sis.NewReader(cfg.SISURL), DB: db, Log: a.log}
	res, err := s.Run(ctx, day)
	if err != nil {
		return err
	}
	printSync(a.stdout, res)
	if len(cfg.OfficeEmails) == 0 {
		cfg.OfficeEmails = []string{"international-office@university.example"}
	}
	file := cfg.File
	if filled := fillDemoOffice(&file.Office); len(filled) > 0 {
		fmt.Fprintf(a.stdout, "office details not configured (%s): the demo's notices show fictitious examples\n", strings.Join(filled, ", "))
	}
	if err := runNight(ctx, a, cfg, file, db, day, 5*time.Minute, nil); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "\nworker database: %s (schema sisnotify)\n", redactURL(cfg.DBURL))
	if cfg.Mail.Host == "" {
		dir, _ := filepath.Abs(cfg.OutboxDir)
		fmt.Fprintf(a.stdout, "mail: %s/*.eml   SMS: %s/sms.jsonl\n", dir, dir)
		showExamples(a.stdout, cfg.OutboxDir, 4)
	} else {
		fmt.Fprintln(a.stdout, "mail went to SISNOTIFY_SMTP_URL")
	}
	fmt.Fprintf(a.stdout, "the notice log: %s\n", noticesCommand(cfg.DBURL))
	fmt.Fprintln(a.stdout, "data problems: "+store.DataProblemsByCode)
	return nil
}

// noticesCommand is a shell command that lists the demo's notices: `sisnotify
// notices` needs SISNOTIFY_DB_URL, which the demo may have chosen itself.
// A password in the URL is not printed; the command then says to put it back.
func noticesCommand(dbURL string) string {
	shown, note := dbURL, ""
	if u, err := url.Parse(dbURL); err == nil {
		if _, ok := u.User.Password(); ok {
			shown, note = u.Redacted(), "   (with the password in place of xxxxx)"
		}
	}
	prog := "sisnotify"
	if len(os.Args) > 0 && filepath.Base(os.Args[0]) == "sisnotify" {
		prog = os.Args[0] // ./sisnotify after `make demo`
	}
	return "SISNOTIFY_DB_URL=" + shellQuote(shown) + " " + shellQuote(prog) + " notices" + note
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./:@%+=,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// demoOffice is the office of the demo's notices where the configuration
// gives none: plainly fictitious, so that nobody mistakes a demo notice
// for a real office's, and complete, so that demo notices look like real
// ones (every SMS starts with the university and ends with the phone).
var demoOffice = config.Office{
	University: "DemoU",
	OfficeText: config.OfficeText{
		Name:    "International Office (example)",
		Address: "Room 000, 1 Example Street, Almaty (example)",
		Hours:   "Mon-Fri 09:00-18:00 (example)",
	},
	Phone: "+7 700 000 00 00",
	Email: "international@example.edu",
}

// fillDemoOffice gives o demoOffice's value for each detail it leaves
// empty and returns their YAML keys. A name that is the built-in default
// counts as given.
func fillDemoOffice(o *config.Office) []string {
	var filled []string
	for _, f := range []struct {
		key      string
		dst      *string
		fallback string
	}{
		{"office.university", &o.University, demoOffice.University},
		{"office.name", &o.Name, demoOffice.Name},
		{"office.address", &o.Address, demoOffice.Address},
		{"office.hours", &o.Hours, demoOffice.Hours},
		{"office.phone", &o.Phone, demoOffice.Phone},
		{"office.email", &o.Email, demoOffice.Email},
	} {
		if strings.TrimSpace(*f.dst) == "" {
			*f.dst = f.fallback
			filled = append(filled, f.key)
		}
	}
	return filled
}

// showExamples prints the subject lines of a few notices from the outbox.
func showExamples(w io.Writer, dir string, max int) {
	files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	sort.Strings(files)
	if len(files) == 0 {
		return
	}
	fmt.Fprintln(w, "a few of tonight's emails:")
	dec := new(mime.WordDecoder)
	step := len(files)/max + 1
	for i := 0; i < len(files); i += step {
		f, err := os.Open(files[i])
		if err != nil {
			continue
		}
		m, err := netmail.ReadMessage(f)
		if err == nil {
			subj, _ := dec.DecodeHeader(m.Header.Get("Subject"))
			fmt.Fprintf(w, "  [%s %s, student %s] %s\n", m.Header.Get("X-Sisnotify-Rule"), m.Header.Get("X-Sisnotify-Audience"), m.Header.Get("X-Sisnotify-Student"), subj)
		}
		f.Close()
	}
}

// ensureDatabase creates the database named in u when it does not exist,
// connecting to the server's postgres database to do so.
func ensureDatabase(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("demo: malformed database URL")
	}
	name := strings.TrimPrefix(u.Path, "/")
	if name == "" {
		return nil
	}
	admin := *u
	admin.Path = "/postgres"
	db, err := sql.Open("postgres", admin.String())
	if err != nil {
		return err
	}
	defer db.Close()
	var exists bool
	if err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return fmt.Errorf("demo: connect to PostgreSQL at %s: %w (is it running? see README)", u.Host, err)
	}
	if exists {
		return nil
	}
	if _, err := db.ExecContext(ctx, `CREATE DATABASE `+pq.QuoteIdentifier(name)); err != nil {
		var pqErr *pq.Error
		if errors.As(err, &pqErr) && pqErr.Code == "42P04" { // created meanwhile
			return nil
		}
		return fmt.Errorf("demo: create database %s: %w", name, err)
	}
	return nil
}

// checkDemoSchema refuses to replace a sis schema the demo did not make:
// SISNOTIFY_SIS_URL may point at a real SIS.
func checkDemoSchema(ctx context.Context, db *sql.DB) error {
	var comment sql.NullString
	var exists bool
	err := db.QueryRowContext(ctx, `SELECT true, obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = 'sis'`).Scan(&exists, &comment)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("demo: connect to the SIS database: %w", err)
	}
	if comment.String != demoMark {
		return errors.New("demo: the SIS database already has a sis schema that the demo did not create; refusing to replace it (point SISNOTIFY_SIS_URL at a scratch database, or unset it)")
	}
	return nil
}

// redactURL hides the password of a URL that is printed.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unprintable URL)"
	}
	return u.Redacted()
}
