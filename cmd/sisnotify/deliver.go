package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"

	"github.com/iec-almaty/sisnotify/integrations/mail"
	"github.com/iec-almaty/sisnotify/integrations/redisurl"
	"github.com/iec-almaty/sisnotify/integrations/sms"
	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/jobs/config"
	"github.com/iec-almaty/sisnotify/pace"
	"github.com/iec-almaty/sisnotify/store"
	"github.com/iec-almaty/sisnotify/studentpage"
	"github.com/iec-almaty/sisnotify/templates"
	"github.com/iec-almaty/sisnotify/worker"
)

// deliveryConcurrency is the number of deliveries in flight per process;
// they share smtpConnections SMTP connections. A delivery spends most of
// its time waiting on PostgreSQL (claim, record) and the SMTP or SMS
// server, so many in flight keep both busy; the claims and records of
// those in flight go to PostgreSQL as one statement each (jobs.Deliverer),
// so they need few database connections.
const (
	deliveryConcurrency = 64
	smtpConnections     = 8
)

// delivery is everything that sends: Redis, the queue, the senders, the
// handler.
type delivery struct {
	owner     *store.Owner
	rdb       redis.UniversalClient
	redisURL  string // SISNOTIFY_REDIS_URL without its password
	queue     *worker.Queue
	deliverer *jobs.Deliverer
	enqueuer  *worker.Enqueuer
	mail      mail.Sender
	// links sign the student page's links; nil: no links, no page.
	links *studentpage.Keys
	// pace holds the sends to SISNOTIFY_MAIL_RATE and SISNOTIFY_SMS_RATE;
	// nil: no limit.
	pace *pace.Limiter
}

// digestPaceWait is how long a digest waits in its task for its turn
// under the mail rate limit before the task is postponed.
const digestPaceWait = time.Minute

// linksOf is the student page's keys: nil unless both SISNOTIFY_PUBLIC_URL
// and SISNOTIFY_LINK_KEYS are set.
func linksOf(cfg *Config) (*studentpage.Keys, error) {
	if cfg.PublicURL == "" || len(cfg.LinkKeys) == 0 {
		return nil, nil
	}
	k, err := studentpage.NewKeys(cfg.LinkKeys...)
	if err != nil {
		return nil, &ConfigError{Msg: "SISNOTIFY_LINK_KEYS: " + err.Error()}
	}
	return k, nil
}

func newDelivery(a *app, cfg *Config, file *config.File, db *sqlx.DB) (*delivery, error) {
	mailCfg := cfg.Mail
	mailCfg.Connections = smtpConnections
	mailer, err := mail.New(mailCfg)
	if err != nil {
		return nil, fmt.Errorf("mail: %w", err)
	}
	smsCfg := cfg.SMS
	smsCfg.TwilioStatusCallback = twilioCallbackURL(cfg) // receipts come back to serve
	texter, err := sms.New(smsCfg)
	if err != nil {
		mailer.Close()
		return nil, &ConfigError{Msg: "SISNOTIFY_SMS_PROVIDER: " + err.Error()}
	}
	set, err := templates.New()
	if err != nil {
		mailer.Close()
		return nil, fmt.Errorf("templates: %w", err)
	}
	o := file.Office
	rdb := cfg.Redis.NewClient() // the one client of the process
	d := &delivery{
		rdb:      rdb,
		redisURL: redisurl.Redact(cfg.RedisURL),
		queue:    worker.NewQueue(rdb),
		mail:     mailer,
		deliverer: &jobs.Deliverer{
			DB: db, Mail: mailer, SMS: texter, Templates: set,
			Office:     officeOf(o),
			OfficeLang: o.Language.String(), Ladders: jobs.Ladders(file.Rules()), Log: a.log,
			Location: cfg.Location,
		},
	}
	// The claims of this process's deliveries name it, so that another
	// process may take them over the moment this one dies.
	octx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if d.owner, err = store.AcquireOwner(octx, db.DB, a.log); err != nil {
		d.Close()
		return nil, fmt.Errorf("deliver: %w", err)
	}
	d.deliverer.Owner = d.owner
	if d.links, err = linksOf(cfg); err != nil {
		d.Close()
		return nil, err
	}
	if d.links != nil {
		d.deliverer.Links = studentpage.Linker{Base: cfg.PublicURL, Keys: d.links}
	}
	if len(cfg.MailRate)+len(cfg.SMSRate) > 0 {
		d.pace = pace.New(rdb, map[string][]pace.Limit{pace.Mail: cfg.MailRate, pace.SMS: cfg.SMSRate})
		d.deliverer.Pace = d.pace
	}
	d.enqueuer = &worker.Enqueuer{DB: db, Queue: d.queue, MaxRetry: worker.MaxRetry, Quiet: cfg.QuietHours, Location: cfg.Location, Log: a.log}
	return d, nil
}

// digest is the night's digest job over the same senders, as the night's
// phase runs it.
func (d *delivery) digest(cfg *Config) worker.DigestSender {
	steps := make(map[string]int, len(d.deliverer.Ladders))
	for rule, ladder := range d.deliverer.Ladders {
		steps[rule] = len(ladder)
	}
	var p jobs.Pacer
	if d.pace != nil {
		p = d.pace.WithWait(digestPaceWait)
	}
	return worker.NightDigest(&jobs.Digest{
		DB: d.deliverer.DB, Mail: d.mail, Pace: p, Templates: d.deliverer.Templates, Office: d.deliverer.Office,
		OfficeLang: d.deliverer.OfficeLang, OfficeEmails: cfg.OfficeEmails, Location: cfg.Location, Log: d.deliverer.Log, Owner: d.deliverer.Owner,
		Steps: steps,
	})
}

func (d *delivery) Close() {
	if d.owner != nil {
		d.owner.Close()
	}
	d.queue.Close()
	d.rdb.Close()
	d.mail.Close()
}

// rescueEvery is how often drain looks for the orphaned tasks of a dead
// process (worker.Enqueuer.Rescue).
const rescueEvery = 5 * time.Second

// reachable checks that Redis answers, so that a command in the
// foreground says which variable to look at (serve waits for it instead).
func (d *delivery) reachable(ctx context.Context) error {
	if err := d.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("cannot reach Redis at %s (SISNOTIFY_REDIS_URL): %w", d.redisURL, err)
	}
	return nil
}

// drain enqueues the pending notices, runs a worker until every notice
// that may go now is sent or failed, and stops it. When timeout passes
// first it returns a *PendingError that says how many are left and why.
func (d *delivery) drain(ctx context.Context, a *app, db *sqlx.DB, timeout time.Duration) (jobs.EnqueueResult, error) {
	if err := d.reachable(ctx); err != nil {
		return jobs.EnqueueResult{}, err
	}
	er, err := d.enqueuer.Run(ctx, time.Now())
	if err != nil {
		return er, err
	}
	srv := worker.NewServer(worker.Options{Redis: d.rdb, Concurrency: deliveryConcurrency, Log: a.log})
	if err := srv.Start(worker.NewMux(d.deliverer)); err != nil {
		return er, fmt.Errorf("deliver: start worker: %w", err)
	}
	defer srv.Shutdown()
	deadline := time.Now().Add(timeout)
	var lastRescue time.Time
	progress := newProgress(a.stdout)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	total := int64(-1)
	var lastOK time.Time // the last successful count
	for {
		left, err := store.New(db).NoticesToGo(ctx, 0)
		if err != nil {
			// The database may be restarting: keep delivering, and give up
			// only after a while without it.
			if lastOK.IsZero() || time.Since(lastOK) < 30*time.Second {
				a.log.WarnContext(ctx, "deliver: cannot count pending notices; retrying", "err", err)
				if lastOK.IsZero() {
					lastOK = time.Now()
				}
				select {
				case <-ctx.Done():
					return er, ctx.Err()
				case <-tick.C:
				}
				continue
			}
			return er, fmt.Errorf("deliver: %w", err)
		}
		lastOK = time.Now()
		if total < left {
			total = left
		}
		progress.show(total-left, left)
		if left == 0 {
			progress.end()
			return er, nil
		}
		if time.Now().After(deadline) {
			progress.end()
			_, reasons, err := jobs.PendingSummary(ctx, db, 0, false)
			if err != nil {
				return er, fmt.Errorf("deliver: %w", err)
			}
			pending := &PendingError{N: left, Why: pendingWhy(reasons), After: timeout}
			fmt.Fprintf(a.stdout, "deliver: %s\n", pending)
			return er, pending
		}
		// A process that died mid-night (SIGKILL, a crash) left tasks
		// running that asynq gives back only a minute or more later: queue
		// their notices again as soon as their leases show them orphaned.
		if time.Since(lastRescue) >= rescueEvery {
			lastRescue = time.Now()
			if _, err := d.enqueuer.Rescue(ctx); err != nil {
				a.log.WarnContext(ctx, "deliver: rescue orphaned tasks", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			progress.end()
			return er, ctx.Err()
		case <-tick.C:
		}
	}
}

// progress is a one-line progress bar on a terminal, and a plain line
// every few seconds elsewhere.
type progress struct {
	w        io.Writer
	terminal bool
	last     time.Time
	shown    bool
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.terminal = true
		}
	}
	return p
}

func (p *progress) show(done, left int64) {
	total := done + left
	if p.terminal {
		const width = 30
		filled := 0
		if total > 0 {
			filled = int(done * width / total)
		}
		fmt.Fprintf(p.w, "\rdelivering [%s%s] %d/%d", strings.Repeat("#", filled), strings.Repeat(".", width-filled), done, total)
		p.shown = true
		return
	}
	if time.Since(p.last) >= 5*time.Second && left > 0 {
		fmt.Fprintf(p.w, "delivering: %d done, %d to go\n", done, left)
		p.last = time.Now()
	}
}

func (p *progress) end() {
	if p.terminal && p.shown {
		fmt.Fprintln(p.w)
	}
}

// officeOf is the office of the configuration as the templates show it.
func officeOf(o config.Office) templates.Office {
	t := templates.Office{University: o.University, Name: o.Name, Address: o.Address, Hours: o.Hours, Phone: o.Phone, Email: o.Email}
	for lang, in := range o.In {
		if t.In == nil {
			t.In = map[string]templates.OfficeText{}
		}
		t.In[lang] = templates.OfficeText{Name: in.Name, Address: in.Address, Hours: in.Hours}
	}
	return t
}
