package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq" // the worker's database driver

	"github.com/iec-almaty/sisnotify/internal/workerdb"
	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/migrations"
)

// UsageError is a bad command line; the program exits with 2.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// app is what every command gets: the injected environment and outputs.
type app struct {
	lookup func(string) (string, bool)
	stdout io.Writer
	stderr io.Writer
	log    *slog.Logger
}

// command is one subcommand of sisnotify.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, a *app, args []string) error
}

func commands() []command {
	return []command{
		{"migrate", "create or upgrade the worker's own tables", cmdMigrate},
		{"sync", "read the SIS into the snapshot; print rows read, changed, rejected", cmdSync},
		{"demo", "create a demo SIS with generated students and run a cycle on it", cmdDemo},
		{"run", "one full nightly cycle in the foreground (--once)", cmdRun},
		{"serve", "the unattended service: scheduler, workers and HTTP", cmdServe},
		{"notices", "the notice log; `notices retry` re-queues failed notices", cmdNotices},
	}
}

// run is the whole program with its environment injected, so tests run it
// in-process. lookup is os.LookupEnv: a variable set to the empty string
// differs from an unset one (SISNOTIFY_SMS_QUIET_HOURS).
func run(ctx context.Context, args []string, lookup func(string) (string, bool), stdout, stderr io.Writer) error {
	a := &app{lookup: lookup, stdout: stdout, stderr: stderr, log: newLogger(stderr)}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		if len(args) == 0 {
			return &UsageError{Msg: "no command given"}
		}
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, a, args[1:])
		}
	}
	usage(stderr)
	return &UsageError{Msg: fmt.Sprintf("unknown command %q", printable(args[0]))}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "sisnotify: migration-deadline notices for international students")
	fmt.Fprintln(w, "\nUsage: sisnotify <command> [flags]   (sisnotify <command> --help for its flags)")
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nConfiguration is read from SISNOTIFY_* environment variables; see README.md.")
}

// flags makes a command's flag set with a usage text; parse it with
// parseFlags.
func flags(a *app, name, synopsis, about string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: sisnotify %s\n\n%s\n", synopsis, about)
		var n int
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintln(w, "\nFlags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

// errHelp ends a command that printed its help.
var errHelp = errors.New("help")

func parseFlags(a *app, fs *flag.FlagSet, args []string) error {
	for _, arg := range args {
		if arg == "-h" || arg == "--help" || arg == "-help" {
			fs.SetOutput(a.stdout)
			fs.Usage()
			return errHelp
		}
	}
	// The flag package would print the error and the usage itself; the
	// error is returned (and printed once, by main) and the usage printed
	// here, once.
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.SetOutput(a.stderr)
	if errors.Is(err, flag.ErrHelp) { // -help=…
		fs.SetOutput(a.stdout)
		fs.Usage()
		return errHelp
	}
	if err != nil {
		fs.Usage()
		return &UsageError{Msg: fmt.Sprintf("%s: %v", fs.Name(), err)}
	}
	if fs.NArg() > 0 {
		return &UsageError{Msg: fmt.Sprintf("%s: unexpected argument %q", fs.Name(), printable(fs.Arg(0)))}
	}
	return nil
}

// dateFlag is a --as-of YYYY-MM-DD flag.
type dateFlag struct{ d date.Date }

func (f *dateFlag) String() string { return f.d.String() }
func (f *dateFlag) Set(s string) error {
	d, err := date.Parse(s)
	if err != nil {
		return errors.New("want YYYY-MM-DD")
	}
	f.d = d
	return nil
}

// asOf returns the flag's date, or today in the university's time zone.
func (f *dateFlag) asOf(loc *time.Location) date.Date {
	if f.d != 0 {
		return f.d
	}
	return date.Today(time.Now(), loc)
}

func newLogger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			return slog.New(slog.NewTextHandler(w, opts))
		}
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// dbConnections bounds one process's connections to the worker database.
const dbConnections = 24

// openDB opens the worker's database and brings its schema up to date.
func openDB(ctx context.Context, a *app, url string) (*sqlx.DB, error) {
	db, err := workerdb.Open(url)
	if err != nil {
		return nil, fmt.Errorf("open SISNOTIFY_DB_URL: %w", err)
	}
	// database/sql keeps only 2 idle connections by default, and a new
	// PostgreSQL connection costs a fork: keep enough for the batched
	// claims and records, the deliveries that look a notice up on their
	// own, and the night's phases; bounded well under PostgreSQL's default
	// max_connections (100), as replicas share it.
	db.SetMaxIdleConns(dbConnections)
	db.SetMaxOpenConns(dbConnections)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to the worker database (SISNOTIFY_DB_URL): %w", err)
	}
	res, err := migrations.Up(ctx, db.DB)
	if err != nil {
		db.Close()
		return nil, err
	}
	if len(res.Applied) > 0 {
		a.log.InfoContext(ctx, "migrated", "applied", len(res.Applied), "version", res.Current)
	}
	return db, nil
}

func cmdMigrate(ctx context.Context, a *app, args []string) error {
	fs := flags(a, "migrate", "migrate", "Creates or upgrades the worker's own tables (schema \"sisnotify\" of SISNOTIFY_DB_URL).\nSafe to run at any time, from several replicas at once.")
	if err := parseFlags(a, fs, args); err != nil {
		return ignoreHelp(err)
	}
	cfg, err := loadConfig(a.lookup, need{db: true})
	if err != nil {
		return err
	}
	db, err := workerdb.Open(cfg.DBURL)
	if err != nil {
		return fmt.Errorf("open SISNOTIFY_DB_URL: %w", err)
	}
	defer db.Close()
	res, err := migrations.Up(ctx, db.DB)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "migrated: %d applied, schema version %d\n", len(res.Applied), res.Current)
	return nil
}

func ignoreHelp(err error) error {
	if errors.Is(err, errHelp) {
		return nil
	}
	return err
}
