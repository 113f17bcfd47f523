package worker

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
)

// MonitoringPath is where the asynq monitoring UI is served.
const MonitoringPath = "/monitoring"

// ConsolePath is where the office console is served (package console).
const ConsolePath = "/console/"

// StudentPagePath is where the student page is served (package
// studentpage).
const StudentPagePath = "/s/"

// TwilioStatusPath is where Twilio posts SMS delivery receipts (package
// receipts); SISNOTIFY_PUBLIC_URL + this path is the messages'
// StatusCallback.
const TwilioStatusPath = "/hooks/twilio/status"

// HTTPOptions configure the HTTP side of `sisnotify serve`.
type HTTPOptions struct {
	// Addr is the listen address (SISNOTIFY_HTTP_ADDR); default
	// 127.0.0.1:8080. Port 0 picks a free port (see HTTP.Addr).
	Addr string
	// User and Password protect the monitoring UI with basic auth
	// (SISNOTIFY_HTTP_USER, SISNOTIFY_HTTP_PASSWORD). An empty User turns
	// the UI off: /monitoring/ is then 404.
	User, Password string
	// DB is the worker's database: /readyz pings it, sisnotify_notices
	// counts its notices.
	DB *sqlx.DB
	// Redis is the process's shared go-redis client (a *redis.Client or
	// *redis.ClusterClient for the UI): /readyz pings it, the queue gauges
	// read it. The UI gets a small client of its own with the same options.
	Redis redis.UniversalClient
	// Metrics are the process's own metrics (the night runner and the
	// deliveries record into them); nil: NewHTTP makes its own.
	Metrics *Metrics
	// Queues are reported in sisnotify_queue_tasks even before their first
	// task; default the night, office and notices queues.
	Queues []string
	// ReadyTimeout bounds each check of /readyz; default 2 s.
	ReadyTimeout time.Duration
	// ScrapeCache is how long what /metrics read from PostgreSQL and Redis
	// is reused; default 10 s.
	ScrapeCache time.Duration
	// ScrapeTimeout bounds those reads; default 5 s.
	ScrapeTimeout time.Duration
	// Console, when set, serves the office console under ConsolePath.
	Console http.Handler
	// StudentPage, when set, serves the student page under
	// StudentPagePath.
	StudentPage http.Handler
	// TwilioStatus, when set, takes Twilio's status callbacks (POST) at
	// TwilioStatusPath.
	TwilioStatus http.Handler
	Log          *slog.Logger

	// now replaces time.Now for the scrape cache (tests).
	now func() time.Time
}

// HTTP is the HTTP side of `sisnotify serve`:
//
//	/healthz      200 "ok" while the process runs (checks nothing else)
//	/readyz       200 when PostgreSQL and Redis answer, else 503 naming which
//	/metrics      Prometheus exposition
//	/monitoring/  the asynq monitoring UI, read-only, behind basic auth
//	/console/     the office console, when HTTPOptions.Console is set
//	/s/           the student page, when HTTPOptions.StudentPage is set
//	/hooks/twilio/status  Twilio's SMS receipts, when HTTPOptions.TwilioStatus is set
//
// Every other path is 404. HTTP is also an http.Handler (for tests).
type HTTP struct {
	opts    HTTPOptions
	err     error // options NewHTTP could not use
	log     *slog.Logger
	metrics *Metrics
	handler http.Handler
	srv     *http.Server
	mon     *asynqmon.HTTPHandler // nil when the UI is off

	mu       sync.Mutex
	ln       net.Listener
	done     chan struct{} // closed when Serve returns
	serveErr error
	closed   bool
}

// NewHTTP builds the handlers; Start listens. Options it cannot use (no
// DB, no Redis, a user without a password, a Redis client the UI cannot
// use) are reported by Start, and every request then answers 500.
func NewHTTP(o HTTPOptions) *HTTP {
	h, err := newHTTP(o)
	if err != nil {
		h = &HTTP{opts: o, err: err, metrics: o.Metrics, log: o.Log}
		if h.log == nil {
			h.log = slog.New(slog.DiscardHandler)
		}
		h.handler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		})
	}
	return h
}

func newHTTP(o HTTPOptions) (*HTTP, error) {
	if o.DB == nil {
		return nil, errors.New("worker.NewHTTP: DB is required")
	}
	if o.Redis == nil {
		return nil, errors.New("worker.NewHTTP: Redis is required")
	}
	if o.User != "" && o.Password == "" {
		return nil, errors.New("worker.NewHTTP: the monitoring UI needs a password with its user")
	}
	if o.Addr == "" {
		o.Addr = "127.0.0.1:8080"
	}
	if o.Queues == nil {
		o.Queues = []string{QueueNight, QueueOffice, QueueNotices}
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = 2 * time.Second
	}
	if o.ScrapeCache <= 0 {
		o.ScrapeCache = 10 * time.Second
	}
	if o.ScrapeTimeout <= 0 {
		o.ScrapeTimeout = 5 * time.Second
	}
	h := &HTTP{opts: o, log: o.Log, metrics: o.Metrics}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.log = h.log.With("component", "http")
	if h.metrics == nil {
		h.metrics = NewMetrics()
	}

	// The values read at scrape time belong to this server (its DB and
	// Redis), the process's own to Metrics: one exposition of both. The
	// state is gathered first: a read of it may set the last night.
	state := prometheus.NewRegistry()
	state.MustRegister(&stateCollector{
		db:        o.DB,
		inspector: asynq.NewInspectorFromRedisClient(o.Redis), // shared client: never closed here
		queues:    o.Queues,
		metrics:   h.metrics,
		ttl:       o.ScrapeCache,
		timeout:   o.ScrapeTimeout,
		log:       h.log,
		now:       o.now,
	})
	metricsHandler := promhttp.HandlerFor(prometheus.Gatherers{state, h.metrics.Registry()}, promhttp.HandlerOpts{
		ErrorLog:            promLogger{h.log},
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 32,
		CoalesceGather:      true,
		Timeout:             o.ScrapeTimeout + 5*time.Second,
	})

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", h.readyz)
	mux.Handle("GET /metrics", metricsHandler)
	if o.User != "" {
		connOpt, err := monitoringConnOpt(o.Redis)
		if err != nil {
			return nil, err
		}
		h.mon = asynqmon.New(asynqmon.Options{
			RootPath:     MonitoringPath,
			RedisConnOpt: connOpt,
			ReadOnly:     true,
			// Payloads hold notice ids only ({"notice_id":42}): shown as is.
			PayloadFormatter: asynqmon.PayloadFormatterFunc(func(_ string, payload []byte) string {
				return string(payload)
			}),
		})
		mux.Handle(MonitoringPath+"/", basicAuth(o.User, o.Password, readOnly(localAssets(h.mon))))
	}
	if o.Console != nil {
		mux.Handle(ConsolePath, o.Console)
	}
	if o.StudentPage != nil {
		mux.Handle(StudentPagePath, o.StudentPage)
	}
	if o.TwilioStatus != nil {
		mux.Handle(TwilioStatusPath, o.TwilioStatus)
	}
	h.handler = mux
	h.srv = &http.Server{
		Addr:              o.Addr,
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      o.ScrapeTimeout + 20*time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(h.log.Handler(), slog.LevelWarn),
	}
	return h, nil
}

// ServeHTTP serves the routes without a listener of HTTP's own.
func (h *HTTP) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.handler.ServeHTTP(w, r) }

// Metrics are the metrics this server exposes.
func (h *HTTP) Metrics() *Metrics { return h.metrics }

// Start reads the last successful night from PostgreSQL (a failure is
// logged and retried at the next scrape), listens on Addr and serves in the
// background until Shutdown. ctx bounds the start only.
func (h *HTTP) Start(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err != nil {
		return h.err
	}
	if h.closed || h.ln != nil {
		return errors.New("worker.HTTP: already started or shut down")
	}
	lctx, cancel := context.WithTimeout(ctx, h.opts.ScrapeTimeout)
	err := h.metrics.LoadLastNight(lctx, h.opts.DB)
	cancel()
	if err != nil {
		h.log.WarnContext(ctx, "metrics: cannot read the last successful night yet", "err", err)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", h.opts.Addr)
	if err != nil {
		return fmt.Errorf("http: %w", err)
	}
	h.ln = ln
	h.done = make(chan struct{})
	go func() {
		defer close(h.done)
		if err := h.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			h.log.Error("http: serve", "err", err)
			h.mu.Lock()
			h.serveErr = err
			h.mu.Unlock()
		}
	}()
	h.log.InfoContext(ctx, "http: listening", "addr", ln.Addr().String(), "monitoring_ui", h.mon != nil)
	return nil
}

// Addr is the address HTTP listens on once started (with the port Addr's
// port 0 picked), else the configured one.
func (h *HTTP) Addr() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ln != nil {
		return h.ln.Addr().String()
	}
	return h.opts.Addr
}

// Done is closed when the server stops serving (after Shutdown, or when
// serving failed); nil before Start.
func (h *HTTP) Done() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.done
}

// Shutdown stops listening, waits for the requests in progress until ctx
// ends (then closes their connections), and closes the UI's Redis clients.
// It returns an error if serving had failed. Safe to call more than once,
// and without Start.
func (h *HTTP) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	started := h.ln != nil
	done := h.done
	h.mu.Unlock()

	var errs []error
	if started {
		if err := h.srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http: shutdown: %w", err))
			_ = h.srv.Close()
		}
		<-done
		h.mu.Lock()
		if h.serveErr != nil {
			errs = append(errs, fmt.Errorf("http: serve: %w", h.serveErr))
		}
		h.mu.Unlock()
	}
	if h.mon != nil {
		if err := h.mon.Close(); err != nil {
			errs = append(errs, fmt.Errorf("http: monitoring UI: %w", err))
		}
	}
	return errors.Join(errs...)
}

// readyz answers 200 when PostgreSQL and Redis both answer within
// ReadyTimeout, else 503. The body names each dependency and whether it
// answered; errors (which may hold addresses) go to the log only.
func (h *HTTP) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), h.opts.ReadyTimeout)
	defer cancel()
	var (
		wg              sync.WaitGroup
		pgErr, redisErr error
	)
	wg.Add(2)
	go func() { defer wg.Done(); pgErr = h.opts.DB.PingContext(ctx) }()
	go func() { defer wg.Done(); redisErr = h.opts.Redis.Ping(ctx).Err() }()
	wg.Wait()

	var b strings.Builder
	status := http.StatusOK
	for _, c := range []struct {
		name string
		err  error
	}{{"postgresql", pgErr}, {"redis", redisErr}} {
		if c.err == nil {
			fmt.Fprintf(&b, "%s: ok\n", c.name)
			continue
		}
		status = http.StatusServiceUnavailable
		fmt.Fprintf(&b, "%s: unavailable\n", c.name)
		h.log.WarnContext(ctx, "not ready", "dependency", c.name, "err", c.err)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

// basicAuth lets a request through when it carries user and password. Both
// are compared in constant time (as SHA-256 digests, so their lengths do
// not leak either).
func basicAuth(user, password string, next http.Handler) http.Handler {
	wantUser := sha256.Sum256([]byte(user))
	wantPass := sha256.Sum256([]byte(password))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		gotUser := sha256.Sum256([]byte(u))
		gotPass := sha256.Sum256([]byte(p))
		userOK := subtle.ConstantTimeCompare(gotUser[:], wantUser[:])
		passOK := subtle.ConstantTimeCompare(gotPass[:], wantPass[:])
		if !ok || userOK&passOK != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="sisnotify monitoring", charset="UTF-8"`)
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte("401 Unauthorized: the sisnotify monitoring UI needs SISNOTIFY_HTTP_USER and SISNOTIFY_HTTP_PASSWORD\n"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// readOnly admits GET and HEAD only. asynqmon's ReadOnly already refuses
// the API's other methods; this also covers anything it routes elsewhere.
func readOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "the monitoring UI is read-only", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.Header().Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// monitoringConnOpt is the asynq.RedisConnOpt asynqmon needs. asynqmon
// makes clients from it and closes them on Close, so it must not get the
// shared client: it gets new clients with the shared one's options (its
// address, credentials, TLS, database and dialer), and a small pool. A
// Sentinel client (redis.NewFailoverClient) is a *redis.Client whose
// dialer asks the sentinels for the primary: its copies follow a failover.
func monitoringConnOpt(c redis.UniversalClient) (asynq.RedisConnOpt, error) {
	switch c.(type) {
	case *redis.Client, *redis.ClusterClient:
		return clientConnOpt{c}, nil
	}
	return nil, fmt.Errorf("worker.NewHTTP: the monitoring UI needs a *redis.Client or *redis.ClusterClient, not %T", c)
}

type clientConnOpt struct{ c redis.UniversalClient }

const monitoringPoolSize = 4

func (o clientConnOpt) MakeRedisClient() any {
	switch c := o.c.(type) {
	case *redis.Client:
		opt := *c.Options()
		opt.PoolSize = monitoringPoolSize
		opt.MinIdleConns = 0
		return redis.NewClient(&opt)
	case *redis.ClusterClient:
		opt := *c.Options()
		opt.PoolSize = monitoringPoolSize
		opt.MinIdleConns = 0
		return redis.NewClusterClient(&opt)
	}
	return nil
}

// promLogger is promhttp's error log over slog.
type promLogger struct{ l *slog.Logger }

func (p promLogger) Println(v ...any) { p.l.Warn("metrics: " + strings.TrimSpace(fmt.Sprintln(v...))) }
