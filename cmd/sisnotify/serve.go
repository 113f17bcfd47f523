package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/iec-almaty/sisnotify/console"
	"github.com/iec-almaty/sisnotify/integrations/mailbox"
	"github.com/iec-almaty/sisnotify/integrations/sis"
	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/pace"
	"github.com/iec-almaty/sisnotify/studentpage"
	"github.com/iec-almaty/sisnotify/worker"
	"github.com/jmoiron/sqlx"
)

func cmdServe(ctx context.Context, a *app, args []string) error {
	fs := flags(a, "serve", "serve [--shutdown-timeout 20s]",
		"The unattended service: runs the night at SISNOTIFY_SCHEDULE in SISNOTIFY_TIMEZONE (and the last\nnight at start when it was missed), delivers notices, and serves /healthz, /readyz, /metrics\nand the monitoring UI on SISNOTIFY_HTTP_ADDR. Any number of replicas may share one Redis and\none PostgreSQL. SIGTERM or SIGINT stops it: deliveries in flight finish first.")
	shutdown := fs.Duration("shutdown-timeout", 20*time.Second, "how long a stop waits for deliveries in flight")
	if err := parseFlags(a, fs, args); err != nil {
		return ignoreHelp(err)
	}
	cfg, err := loadConfig(a.lookup, need{sis: true, db: true, office: true})
	if err != nil {
		return err
	}
	file := cfg.File
	if cfg.ScheduleNote != "" {
		fmt.Fprintf(a.stderr, "sisnotify: note: %s\n", cfg.ScheduleNote)
	}
	db, err := openDB(ctx, a, cfg.DBURL)
	if err != nil {
		return err
	}
	defer db.Close()
	d, err := newDelivery(a, cfg, file, db)
	if err != nil {
		return err
	}
	defer d.Close()
	metrics := worker.NewMetrics()
	stopping := make(chan struct{})
	night := &worker.Night{
		Stopping: stopping,
		DB:       db, Client: d.queue.Client(), Log: a.log, Metrics: metrics,
		Sync:     &jobs.Sync{SIS: sis.NewReader(cfg.SISURL), TrustUpdatedAt: cfg.TrustUpdatedAt, DB: db, Log: a.log, Guard: guard(file, false)},
		Evaluate: &jobs.Evaluate{Config: file, OfficeEmails: cfg.OfficeEmails, Log: a.log},
		Enqueue:  d.enqueuer,
		Digest:   d.digest(cfg),
		Forecast: &worker.Forecast{DB: db, Limits: map[string][]pace.Limit{pace.Mail: cfg.MailRate, pace.SMS: cfg.SMSRate},
			Location: cfg.Location, Mail: d.mail, Ops: cfg.OpsEmails, Metrics: metrics, Log: a.log},
	}
	d.deliverer.Observe = metrics
	mux := worker.NewMux(d.deliverer)
	night.Register(mux)
	poller, err := newReceiptPoller(a, cfg, db, d)
	if err != nil {
		return err
	}
	if poller != nil {
		poller.Register(mux)
	}
	srv := worker.NewServer(worker.Options{Redis: d.rdb, Concurrency: deliveryConcurrency, ShutdownTimeout: *shutdown, Log: a.log})
	if err := srv.Start(mux); err != nil {
		return fmt.Errorf("serve: start workers: %w", err)
	}
	stopped := false
	defer func() {
		if !stopped {
			srv.Shutdown()
		}
	}()

	cons, err := newConsole(a, cfg, db, d, night)
	if err != nil {
		return err
	}
	page, err := newStudentPage(a, cfg, db, d)
	if err != nil {
		return err
	}
	hook, err := newTwilioHook(a, cfg, db)
	if err != nil {
		return err
	}
	http := worker.NewHTTP(worker.HTTPOptions{
		Addr: cfg.HTTPAddr, User: cfg.HTTPUser, Password: cfg.HTTPPassword,
		DB: db, Redis: d.rdb, Metrics: metrics, Console: cons, StudentPage: page, TwilioStatus: hook, Log: a.log,
	})
	if err := http.Start(ctx); err != nil {
		return fmt.Errorf("serve: %w", err)
	}

	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBG()
	sched := &worker.Scheduler{Spec: cfg.Schedule, Cron: cfg.Cron, Location: cfg.Location, Night: night, DB: db,
		Tasks: d.queue, Log: a.log}
	if n, started, err := sched.CatchUp(bg); err != nil {
		a.log.ErrorContext(ctx, "catch up", "err", err)
	} else if started {
		fmt.Fprintf(a.stdout, "serve: the night of %s had not run; started it\n", n)
	}
	watch := &worker.Watchdog{DB: db, Enqueue: d.enqueuer, Mail: d.mail, Ops: cfg.OpsEmails, Office: cfg.OfficeEmails, Since: time.Now(), Log: a.log}
	done := make(chan struct{}, 4) // the scheduler, the watchdog, the receipt poller, the bounce mailbox
	go func() { _ = sched.Run(bg); done <- struct{}{} }()
	go func() { watch.Run(bg, 5*time.Minute); done <- struct{}{} }()
	if poller != nil {
		go func() { poller.Run(bg); done <- struct{}{} }()
	} else {
		done <- struct{}{}
	}
	bounces := newBounces(a, cfg, db, metrics)
	go func() {
		if bounces != nil {
			bounces.Run(bg, bouncePollEvery(a))
		}
		done <- struct{}{}
	}()
	a.log.InfoContext(ctx, "serving", "http", cfg.HTTPAddr, "schedule", cfg.Schedule, "timezone", cfg.TimezoneName, "monitoring_ui", cfg.HTTPUser != "")
	fmt.Fprintf(a.stdout, "serve: http on %s, nights at %q (%s)\n", cfg.HTTPAddr, cfg.Schedule, cfg.TimezoneName)

	<-ctx.Done()
	close(stopping)
	a.log.InfoContext(context.Background(), "stopping: waiting for deliveries in flight", "timeout", shutdown.String())
	stopBG()
	for range cap(done) {
		<-done
	}
	srv.Shutdown() // stops taking tasks, waits for those running, requeues the rest
	stopped = true
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := http.Shutdown(sctx); err != nil && !errors.Is(err, context.Canceled) {
		a.log.Warn("http shutdown", "err", err)
	}
	a.log.Info("stopped")
	return nil
}

// newBounces reads the bounce mailbox of SISNOTIFY_BOUNCE_IMAP_URL; nil
// when it is not set.
func newBounces(a *app, cfg *Config, db *sqlx.DB, metrics *worker.Metrics) *jobs.Bounces {
	if cfg.BounceIMAP.Host == "" {
		return nil
	}
	box := cfg.BounceIMAP
	a.log.Info("reading bounces", "mailbox", box) // Config's LogValue: no user, no password
	return &jobs.Bounces{DB: db, Log: a.log, Observe: worker.NewBounceMetrics(metrics),
		Open: func(ctx context.Context) (jobs.BounceMailbox, error) { return mailbox.Open(ctx, box) }}
}

// bouncePollEvery is how often serve reads the bounce mailbox: every
// minute. SISNOTIFY_TEST_BOUNCE_EVERY (a duration from 100ms to 1m) makes
// it shorter for the tests, which should not wait a minute; it is not a
// setting (docs/configuration.md, the tests' variables).
func bouncePollEvery(a *app) time.Duration {
	if v, ok := a.lookup("SISNOTIFY_TEST_BOUNCE_EVERY"); ok {
		if d, err := time.ParseDuration(v); err == nil && d >= 100*time.Millisecond && d <= time.Minute {
			return d
		}
	}
	return time.Minute
}

// newConsole is the office console over serve's database, queue and night
// runner; nil (no /console/) when neither the single sign-on nor the
// break-glass login is configured: nobody could sign in.
func newConsole(a *app, cfg *Config, db *sqlx.DB, d *delivery, night *worker.Night) (http.Handler, error) {
	if cfg.OIDCIssuer == "" && cfg.HTTPUser == "" {
		return nil, nil
	}
	c, err := console.New(console.Options{
		DB: db, Redis: d.rdb,
		OIDC:        console.OIDC{Issuer: cfg.OIDCIssuer, ClientID: cfg.OIDCClientID, ClientSecret: cfg.OIDCClientSecret},
		StaffEmails: cfg.StaffEmails, BreakGlassUser: cfg.HTTPUser, BreakGlassPassword: cfg.HTTPPassword,
		PublicURL: cfg.PublicURL, Lang: cfg.File.Office.Language.String(), Location: cfg.Location,
		Releaser: releaser{night}, Requeuer: &worker.Requeuer{Enqueue: d.enqueuer}, Log: a.log,
	})
	if err != nil {
		return nil, fmt.Errorf("serve: console: %w", err)
	}
	return c, nil
}

// newStudentPage is the student page at /s/ over serve's database, Redis
// (its rate limit) and mail sender (the confirmations of reports); nil
// (no /s/) unless SISNOTIFY_PUBLIC_URL and SISNOTIFY_LINK_KEYS are both
// set.
func newStudentPage(a *app, cfg *Config, db *sqlx.DB, d *delivery) (http.Handler, error) {
	if d.links == nil {
		if cfg.PublicURL != "" {
			a.log.Info("student page off: SISNOTIFY_LINK_KEYS is not set")
		}
		return nil, nil
	}
	p, err := studentpage.New(studentpage.Options{
		DB: db, Redis: d.rdb, Keys: d.links, Templates: d.deliverer.Templates, Office: d.deliverer.Office,
		Mail: d.mail, Location: cfg.Location, Log: a.log,
		Acted: reportActor{db: db, cfg: cfg, enqueue: d.enqueuer},
	})
	if err != nil {
		return nil, fmt.Errorf("serve: student page: %w", err)
	}
	return p, nil
}

// releaser is the night runner as the console's Releaser: the worker's
// "not held" is the console's.
type releaser struct{ n *worker.Night }

func (r releaser) Release(ctx context.Context, night date.Date, who string) error {
	err := r.n.Release(ctx, night, who)
	if errors.Is(err, worker.ErrNotHeld) {
		return fmt.Errorf("%w: %w", console.ErrNotHeld, err)
	}
	return err
}

// reportActor evaluates a student at once after their report, and queues
// what it opened: a lost document's urgent office email goes out that
// minute, not at the next night.
type reportActor struct {
	db      *sqlx.DB
	cfg     *Config
	enqueue *worker.Enqueuer
}

func (r reportActor) ReportRecorded(ctx context.Context, studentID string, today date.Date) error {
	ids, err := jobs.EvaluateStudent(ctx, r.db, r.cfg.File, r.cfg.OfficeEmails, studentID, today)
	if err != nil {
		return fmt.Errorf("evaluate student %s: %w", studentID, err)
	}
	if len(ids) == 0 {
		return nil
	}
	if _, err := r.enqueue.Run(ctx, time.Now()); err != nil {
		return fmt.Errorf("queue the notices of student %s: %w", studentID, err)
	}
	return nil
}
