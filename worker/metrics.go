package worker

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/store"
)

// The phases of a night, as ObservePhase names them.
const (
	PhaseSync     = "sync"
	PhaseEvaluate = "evaluate"
	PhaseEnqueue  = "enqueue"
	PhaseDeliver  = "deliver"
	PhaseDigest   = "digest"
)

// Phases are the night's phases in order.
var Phases = []string{PhaseSync, PhaseEvaluate, PhaseEnqueue, PhaseDeliver, PhaseDigest}

// NoticeStatuses are the statuses of sisnotify.notices; sisnotify_notices
// reports every one of them (0 included) for each rule and channel that
// has notices, so a series does not vanish when its last notice moves on.
var NoticeStatuses = []string{
	string(store.NoticePending), string(store.NoticeSending), string(store.NoticeSent), string(store.NoticeDelivered), string(store.NoticeBounced),
	string(store.NoticeFailed), string(store.NoticeCancelled),
}

// QueueStates are the asynq task states sisnotify_queue_tasks reports.
var QueueStates = []string{"pending", "active", "scheduled", "retry", "archived"}

// Metrics are the values the process itself records (the night's phases,
// deliveries, the last successful night) and the Go and process
// collectors, in a private Prometheus registry. The values read from
// PostgreSQL and Redis at scrape time belong to the HTTP server that
// exposes them (NewHTTP). Every method is safe for concurrent use and a
// no-op on a nil *Metrics, so callers need not check.
//
// Labels carry rule ids, channels, statuses, outcomes and phases, never
// student data.
type Metrics struct {
	reg           *prometheus.Registry
	phaseSeconds  *prometheus.GaugeVec
	phaseFailures *prometheus.CounterVec
	phaseLastRun  *prometheus.GaugeVec
	deliveries    *prometheus.CounterVec
	finish        *prometheus.GaugeVec
	late          *prometheus.GaugeVec
	lastNight     atomic.Int64 // unix nanoseconds; 0: unknown
}

// NewMetrics returns Metrics with its own registry.
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.phaseSeconds = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "sisnotify_phase_duration_seconds",
		Help: "Duration of the last run of each phase of the night (sync, evaluate, enqueue, deliver, digest), failed or not.",
	}, []string{"phase"})
	m.phaseFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sisnotify_phase_failures_total",
		Help: "Runs of each phase of the night that failed.",
	}, []string{"phase"})
	m.phaseLastRun = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "sisnotify_phase_last_run_timestamp_seconds",
		Help: "When the last run of each phase of the night ended (Unix time).",
	}, []string{"phase"})
	m.deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sisnotify_deliveries_total",
		Help: "Delivery attempts by channel and outcome (sent, failed, retry, cancelled, skipped, postponed by the rate limit).",
	}, []string{"channel", "outcome"})
	m.finish = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "sisnotify_delivery_expected_finish_seconds",
		Help: "When the last notice of each channel queued by the last night is expected to go at the configured rate limits (Unix time); set after each night's enqueue.",
	}, []string{"channel"})
	m.late = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "sisnotify_delivery_late_notices",
		Help: "Notices of each channel that the rate limits will let go only after the office opens, as forecast after the last night's enqueue.",
	}, []string{"channel"})
	night := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sisnotify_last_successful_night_timestamp_seconds",
		Help: "When the last successful night ended (Unix time); 0 when none is known. Read from PostgreSQL at start (sisnotify.nights, or sisnotify.syncs before that table exists), then set by the night runner.",
	}, func() float64 {
		return float64(m.lastNight.Load()) / 1e9
	})
	m.reg.MustRegister(m.phaseSeconds, m.phaseFailures, m.phaseLastRun, m.deliveries, m.finish, m.late, night,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Counters start at 0, so rate() and increase() see their first event.
	for _, p := range Phases {
		m.phaseFailures.WithLabelValues(p)
	}
	for _, ch := range []string{"email", "sms"} {
		for _, o := range []jobs.Outcome{jobs.Sent, jobs.Failed, jobs.Retry, jobs.Cancelled, jobs.Skipped, jobs.Postponed} {
			m.deliveries.WithLabelValues(ch, string(o))
		}
	}
	return m
}

// Registry is the registry of the process's own metrics.
func (m *Metrics) Registry() *prometheus.Registry {
	if m == nil {
		return nil
	}
	return m.reg
}

// ObservePhase records a run of one phase of the night (PhaseSync…): its
// duration, and a failure when err is not nil.
func (m *Metrics) ObservePhase(phase string, d time.Duration, err error) {
	if m == nil {
		return
	}
	m.phaseSeconds.WithLabelValues(phase).Set(d.Seconds())
	m.phaseLastRun.WithLabelValues(phase).Set(float64(time.Now().UnixNano()) / 1e9)
	if err != nil {
		m.phaseFailures.WithLabelValues(phase).Inc()
	}
}

// NightSucceeded records that a night ended successfully at t. An earlier
// time than the one recorded is ignored.
func (m *Metrics) NightSucceeded(t time.Time) {
	if m == nil || t.IsZero() {
		return
	}
	n := t.UnixNano()
	for {
		old := m.lastNight.Load()
		if n <= old || m.lastNight.CompareAndSwap(old, n) {
			return
		}
	}
}

// LastNight returns when the last successful night ended, or the zero time.
func (m *Metrics) LastNight() time.Time {
	if m == nil {
		return time.Time{}
	}
	n := m.lastNight.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// Delivered counts one delivery attempt on channel (email, sms) with its
// outcome (jobs.Outcome: sent, failed, retry, cancelled, skipped).
func (m *Metrics) Delivered(channel, outcome string) {
	if m == nil {
		return
	}
	m.deliveries.WithLabelValues(channel, outcome).Inc()
}

// SetForecast records the forecast of channel's deliveries: when the last
// should go, and how many will go after the office opens.
func (m *Metrics) SetForecast(channel string, finish time.Time, late int) {
	if m == nil {
		return
	}
	m.finish.WithLabelValues(channel).Set(float64(finish.UnixNano()) / 1e9)
	m.late.WithLabelValues(channel).Set(float64(late))
}

// LoadLastNight sets the last successful night from PostgreSQL: the end of
// the latest night whose status is ok in sisnotify.nights, or, in a
// database without that table, of the latest sync whose status is ok. A
// later NightSucceeded wins.
func (m *Metrics) LoadLastNight(ctx context.Context, db *sqlx.DB) error {
	if m == nil {
		return nil
	}
	t, err := store.New(db).LastNightOK(ctx)
	if err != nil {
		return err
	}
	m.NightSucceeded(t)
	return nil
}

// stateCollector reads PostgreSQL and Redis at scrape time: the notices by
// rule, channel and status, and asynq's queues. What it read is kept for
// ttl, so a scrape storm costs one query per ttl; concurrent scrapes wait
// for the one read in progress.
type stateCollector struct {
	db        *sqlx.DB
	inspector *asynq.Inspector
	queues    []string // always reported, even before their first task
	metrics   *Metrics
	ttl       time.Duration
	timeout   time.Duration
	log       *slog.Logger

	mu     sync.Mutex
	readAt time.Time
	cached []prometheus.Metric
	now    func() time.Time // time.Now; tests move it to expire the cache
}

var (
	noticesDesc = prometheus.NewDesc("sisnotify_notices",
		"Notices in PostgreSQL by rule, channel and status (read at scrape time, cached for a few seconds).",
		[]string{"rule", "channel", "status"}, nil)
	queueTasksDesc = prometheus.NewDesc("sisnotify_queue_tasks",
		"Tasks in each asynq queue by state (pending, active, scheduled, retry, archived).",
		[]string{"queue", "state"}, nil)
	queueLatencyDesc = prometheus.NewDesc("sisnotify_queue_latency_seconds",
		"Age of the oldest pending task of each asynq queue.",
		[]string{"queue"}, nil)
	sourceUpDesc = prometheus.NewDesc("sisnotify_scrape_source_up",
		"1 when the last read of a source of scrape-time metrics (postgresql, redis) succeeded, else 0 and its series are missing.",
		[]string{"source"}, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- noticesDesc
	ch <- queueTasksDesc
	ch <- queueLatencyDesc
	ch <- sourceUpDesc
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now
	if c.now != nil {
		now = c.now
	}
	if c.cached == nil || now().Sub(c.readAt) >= c.ttl {
		c.cached = c.read()
		c.readAt = now()
	}
	for _, m := range c.cached {
		ch <- m
	}
}

// read queries both sources at once, each bounded by the timeout.
func (c *stateCollector) read() []prometheus.Metric {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	var (
		wg              sync.WaitGroup
		notices, queues []prometheus.Metric
		pgErr, redisErr error
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		notices, pgErr = c.readNotices(ctx)
		if pgErr == nil && c.metrics.LastNight().IsZero() {
			// Start could not read it (PostgreSQL was away, the schema
			// not migrated yet) or there was none yet.
			if err := c.metrics.LoadLastNight(ctx, c.db); err != nil {
				c.log.Warn("metrics: cannot read the last successful night", "err", err)
			}
		}
	}()
	go func() {
		defer wg.Done()
		queues, redisErr = c.readQueues(ctx)
	}()
	wg.Wait()
	out := make([]prometheus.Metric, 0, len(notices)+len(queues)+2)
	up := func(source string, err error) {
		v := 1.0
		if err != nil {
			v = 0
			c.log.Warn("metrics: cannot read "+source, "err", err)
		}
		out = append(out, prometheus.MustNewConstMetric(sourceUpDesc, prometheus.GaugeValue, v, source))
	}
	up("postgresql", pgErr)
	up("redis", redisErr)
	if pgErr == nil {
		out = append(out, notices...)
	}
	if redisErr == nil {
		out = append(out, queues...)
	}
	return out
}

func (c *stateCollector) readNotices(ctx context.Context) ([]prometheus.Metric, error) {
	rows, err := store.New(c.db).NoticeTallies(ctx)
	if err != nil {
		return nil, err
	}
	type key struct{ rule, channel, status string }
	counts := map[key]int64{}
	for _, r := range rows {
		counts[key{r.Rule, r.Channel, string(r.Status)}] = r.N
		for _, s := range NoticeStatuses {
			k := key{r.Rule, r.Channel, s}
			if _, ok := counts[k]; !ok {
				counts[k] = 0
			}
		}
	}
	out := make([]prometheus.Metric, 0, len(counts))
	for k, n := range counts {
		out = append(out, prometheus.MustNewConstMetric(noticesDesc, prometheus.GaugeValue, float64(n), k.rule, k.channel, k.status))
	}
	return out, nil
}

// readQueues asks asynq's Inspector, whose calls take no context: they run
// in a goroutine bounded by ctx (and by the Redis client's own timeouts).
func (c *stateCollector) readQueues(ctx context.Context) ([]prometheus.Metric, error) {
	type result struct {
		out []prometheus.Metric
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := c.inspectQueues()
		done <- result{out, err}
	}()
	select {
	case r := <-done:
		return r.out, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("queues: %w", ctx.Err())
	}
}

func (c *stateCollector) inspectQueues() ([]prometheus.Metric, error) {
	names, err := c.inspector.Queues()
	if err != nil {
		return nil, fmt.Errorf("queues: %w", err)
	}
	// asynq knows a queue once a task was put on it; the configured ones
	// are reported from the start, with zeros.
	known := map[string]bool{}
	for _, q := range names {
		known[q] = true
	}
	all := append([]string(nil), names...)
	for _, q := range c.queues {
		if !known[q] {
			all = append(all, q)
		}
	}
	sort.Strings(all)
	var out []prometheus.Metric
	for _, q := range all {
		info := &asynq.QueueInfo{Queue: q}
		if known[q] {
			if info, err = c.inspector.GetQueueInfo(q); err != nil {
				return nil, fmt.Errorf("queue %s: %w", q, err)
			}
		}
		for i, n := range []int{info.Pending, info.Active, info.Scheduled, info.Retry, info.Archived} {
			out = append(out, prometheus.MustNewConstMetric(queueTasksDesc, prometheus.GaugeValue, float64(n), q, QueueStates[i]))
		}
		out = append(out, prometheus.MustNewConstMetric(queueLatencyDesc, prometheus.GaugeValue, info.Latency.Seconds(), q))
	}
	return out, nil
}
