package worker

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"

	"github.com/iec-almaty/sisnotify/integrations/testenv"
	"github.com/iec-almaty/sisnotify/internal/workerdb"
	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/migrations"
)

// httpRedisDB is the Redis database number of package worker's tests.
const httpRedisDB = 2

// httpTestDB is a throwaway worker database with every migration applied.
// (Migrated per test rather than copied from a template: the package has
// no TestMain of its own to build one.)
func httpTestDB(t *testing.T) (*sqlx.DB, testenv.Database) {
	t.Helper()
	d := testenv.New(t, "")
	db := d.Open(t)
	if _, err := migrations.Up(context.Background(), db.DB); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return db, d
}

// httpTestRedis is a client of this package's Redis database, like the one
// client `serve` shares.
func httpTestRedis(t *testing.T) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(testenv.Redis(t, httpRedisDB))
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c
}

func testHTTP(t *testing.T, o HTTPOptions) *HTTP {
	t.Helper()
	h := NewHTTP(o)
	if h.err != nil {
		t.Fatal(h.err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return h
}

type httpResponse struct {
	code   int
	header http.Header
	body   string
}

// serveRequest sends one request through the handler, without a listener.
func serveRequest(t *testing.T, h http.Handler, method, path string, auth ...string) httpResponse {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	if len(auth) == 2 {
		r.SetBasicAuth(auth[0], auth[1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return httpResponse{w.Code, w.Header(), w.Body.String()}
}

func TestHealthzAndUnknownPaths(t *testing.T) {
	db, _ := httpTestDB(t)
	h := testHTTP(t, HTTPOptions{DB: db, Redis: httpTestRedis(t)})
	if r := serveRequest(t, h, "GET", "/healthz"); r.code != 200 || r.body != "ok\n" {
		t.Errorf("/healthz: %d %q, want 200 ok", r.code, r.body)
	}
	if r := serveRequest(t, h, "HEAD", "/healthz"); r.code != 200 {
		t.Errorf("HEAD /healthz: %d", r.code)
	}
	if r := serveRequest(t, h, "POST", "/healthz"); r.code != http.StatusMethodNotAllowed {
		t.Errorf("POST /healthz: %d, want 405", r.code)
	}
	for _, p := range []string{"/", "/nope", "/healthz/x", "/metrics/x", "/debug/pprof/", "/monitoring/"} {
		if r := serveRequest(t, h, "GET", p); r.code != 404 {
			t.Errorf("GET %s: %d, want 404", p, r.code)
		}
	}
}

func TestReadyzWhenBothAnswer(t *testing.T) {
	db, _ := httpTestDB(t)
	h := testHTTP(t, HTTPOptions{DB: db, Redis: httpTestRedis(t)})
	r := serveRequest(t, h, "GET", "/readyz")
	if r.code != 200 || r.body != "postgresql: ok\nredis: ok\n" {
		t.Errorf("/readyz: %d %q", r.code, r.body)
	}
}

// redisProcess runs a redis-server of its own on a free port.
type redisProcess struct {
	cmd  *exec.Cmd
	addr string
}

func startRedisProcess(t *testing.T) *redisProcess {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed (apt-get install redis-server)")
	}
	port := testenv.FreePort(t)
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &redisProcess{cmd: cmd, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	t.Cleanup(s.stop)
	c := redis.NewClient(&redis.Options{Addr: s.addr, MaxRetries: -1})
	defer c.Close()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c.Ping(context.Background()).Err() == nil {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s did not answer", s.addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *redisProcess) stop() {
	if s.cmd.ProcessState == nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
}

func TestReadyzFailsWhenRedisIsStopped(t *testing.T) {
	db, _ := httpTestDB(t)
	rs := startRedisProcess(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.addr})
	t.Cleanup(func() { rdb.Close() })
	h := testHTTP(t, HTTPOptions{DB: db, Redis: rdb, ReadyTimeout: time.Second})
	if r := serveRequest(t, h, "GET", "/readyz"); r.code != 200 {
		t.Fatalf("/readyz with Redis running: %d %q", r.code, r.body)
	}
	rs.stop()
	start := time.Now()
	r := serveRequest(t, h, "GET", "/readyz")
	if r.code != http.StatusServiceUnavailable || r.body != "postgresql: ok\nredis: unavailable\n" {
		t.Errorf("/readyz with Redis stopped: %d %q, want 503 naming redis", r.code, r.body)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("/readyz took %s with Redis stopped", d)
	}
	port := rs.addr[strings.LastIndex(rs.addr, ":")+1:]
	if strings.Contains(r.body, port) || strings.Contains(r.body, "127.0.0.1") {
		t.Errorf("/readyz body names an address: %q", r.body)
	}
	// /healthz checks nothing but the process.
	if r := serveRequest(t, h, "GET", "/healthz"); r.code != 200 {
		t.Errorf("/healthz with Redis stopped: %d", r.code)
	}
}

func TestReadyzFailsWhenPostgreSQLIsUnavailable(t *testing.T) {
	t.Run("database dropped", func(t *testing.T) {
		db, d := httpTestDB(t)
		h := testHTTP(t, HTTPOptions{DB: db, Redis: httpTestRedis(t)})
		if r := serveRequest(t, h, "GET", "/readyz"); r.code != 200 {
			t.Fatalf("/readyz: %d %q", r.code, r.body)
		}
		if err := testenv.Drop(context.Background(), d.Name); err != nil {
			t.Fatal(err)
		}
		r := serveRequest(t, h, "GET", "/readyz")
		if r.code != http.StatusServiceUnavailable || r.body != "postgresql: unavailable\nredis: ok\n" {
			t.Errorf("/readyz with the database gone: %d %q", r.code, r.body)
		}
		if strings.Contains(r.body, d.Name) {
			t.Errorf("/readyz names the database: %q", r.body)
		}
	})
	t.Run("server unreachable", func(t *testing.T) {
		db, err := workerdb.Open(fmt.Sprintf("postgres://sisnotify:secret@127.0.0.1:%d/sisnotify?sslmode=disable&connect_timeout=1", testenv.FreePort(t)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		h := testHTTP(t, HTTPOptions{DB: db, Redis: httpTestRedis(t)})
		r := serveRequest(t, h, "GET", "/readyz")
		if r.code != http.StatusServiceUnavailable || r.body != "postgresql: unavailable\nredis: ok\n" {
			t.Errorf("/readyz with PostgreSQL unreachable: %d %q", r.code, r.body)
		}
		if strings.Contains(r.body, "secret") {
			t.Errorf("/readyz shows the password: %q", r.body)
		}
	})
}

// insertTestNotices adds an obligation of rule with one notice per
// (channel, status).
func insertTestNotices(t *testing.T, db *sqlx.DB, rule string, notices ...[2]string) {
	t.Helper()
	var obl int64
	err := db.Get(&obl, `
		INSERT INTO sisnotify.obligations (rule, subject_id, anchor, student_id, due_on, level, step_on, actions, opened_on, last_seen_on)
		VALUES ($1, 'S0000001', '2026-11-01', 'S0000001', '2026-11-04', 1, '2026-11-01', 1, '2026-11-01', '2026-11-01')
		ON CONFLICT (rule, subject_id, anchor) DO UPDATE SET level = excluded.level
		RETURNING obligation_id`, rule)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range notices {
		_, err := db.Exec(`
			INSERT INTO sisnotify.notices (notice_key, obligation_id, rule, level, student_id, subject_id, audience, channel, recipient, due_on, night, status)
			VALUES ($1, $2, $3, 1, 'S0000001', 'S0000001', 'student', $4, 'student@example.org', '2026-11-04', '2026-11-01', $5)`,
			fmt.Sprintf("%s/%d", rule, time.Now().UnixNano()), obl, rule, n[0], n[1])
		if err != nil {
			t.Fatal(err)
		}
	}
}

// scrapeMetrics returns the samples of /metrics by series ("name{labels}").
func scrapeMetrics(t *testing.T, h http.Handler) map[string]string {
	t.Helper()
	r := serveRequest(t, h, "GET", "/metrics")
	if r.code != 200 {
		t.Fatalf("/metrics: %d %s", r.code, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("/metrics Content-Type %q", ct)
	}
	return parseSamples(r.body)
}

func parseSamples(exposition string) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(exposition))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		out[line[:i]] = line[i+1:]
	}
	return out
}

// wantSample checks that series is exposed, with value (compared as a
// number) unless value is empty.
func wantSample(t *testing.T, samples map[string]string, series, value string) {
	t.Helper()
	got, ok := samples[series]
	if !ok {
		t.Errorf("/metrics has no %s", series)
		return
	}
	if value == "" {
		return
	}
	g, err1 := strconv.ParseFloat(got, 64)
	w, err2 := strconv.ParseFloat(value, 64)
	if err1 != nil || err2 != nil || g != w {
		t.Errorf("%s = %s, want %s", series, got, value)
	}
}

func unixSeconds(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

func TestMetricsExposeEverySeries(t *testing.T) {
	db, _ := httpTestDB(t)
	rdb := httpTestRedis(t)
	insertTestNotices(t, db, "registration", [2]string{"email", "pending"}, [2]string{"email", "pending"}, [2]string{"email", "sent"}, [2]string{"sms", "failed"})
	insertTestNotices(t, db, "passport-renewal", [2]string{"email", "sent"})

	client := asynq.NewClientFromRedisClient(rdb)
	for i, opts := range [][]asynq.Option{
		{asynq.Queue(QueueNotices)},
		{asynq.Queue(QueueNotices)},
		{asynq.Queue(QueueNotices), asynq.ProcessIn(time.Hour)},
	} {
		if _, err := client.Enqueue(asynq.NewTask(TypeDeliver, fmt.Appendf(nil, `{"notice_id":%d}`, i+1)), opts...); err != nil {
			t.Fatal(err)
		}
	}

	m := NewMetrics()
	m.ObservePhase(PhaseSync, 1500*time.Millisecond, nil)
	m.ObservePhase(PhaseEvaluate, 250*time.Millisecond, nil)
	m.ObservePhase(PhaseEnqueue, 2*time.Second, errors.New("redis down"))
	m.ObservePhase(PhaseDeliver, 3*time.Second, nil)
	m.ObservePhase(PhaseDigest, 500*time.Millisecond, nil)
	m.Delivered("email", string(jobs.Sent))
	m.Delivered("email", string(jobs.Sent))
	m.Delivered("sms", string(jobs.Retry))
	night := time.Date(2026, 11, 25, 1, 30, 0, 0, time.UTC)
	m.NightSucceeded(night)

	h := testHTTP(t, HTTPOptions{DB: db, Redis: rdb, Metrics: m})
	s := scrapeMetrics(t, h)

	wantSample(t, s, `sisnotify_notices{channel="email",rule="registration",status="pending"}`, "2")
	wantSample(t, s, `sisnotify_notices{channel="email",rule="registration",status="sent"}`, "1")
	wantSample(t, s, `sisnotify_notices{channel="email",rule="registration",status="failed"}`, "0")
	wantSample(t, s, `sisnotify_notices{channel="sms",rule="registration",status="failed"}`, "1")
	wantSample(t, s, `sisnotify_notices{channel="sms",rule="registration",status="pending"}`, "0")
	wantSample(t, s, `sisnotify_notices{channel="email",rule="passport-renewal",status="sent"}`, "1")
	if _, ok := s[`sisnotify_notices{channel="sms",rule="passport-renewal",status="sent"}`]; ok {
		t.Error("sisnotify_notices reports a channel a rule has no notice on")
	}

	wantSample(t, s, `sisnotify_phase_duration_seconds{phase="sync"}`, "1.5")
	wantSample(t, s, `sisnotify_phase_duration_seconds{phase="evaluate"}`, "0.25")
	wantSample(t, s, `sisnotify_phase_duration_seconds{phase="enqueue"}`, "2")
	wantSample(t, s, `sisnotify_phase_duration_seconds{phase="deliver"}`, "3")
	wantSample(t, s, `sisnotify_phase_duration_seconds{phase="digest"}`, "0.5")
	wantSample(t, s, `sisnotify_phase_failures_total{phase="enqueue"}`, "1")
	wantSample(t, s, `sisnotify_phase_failures_total{phase="sync"}`, "0")
	wantSample(t, s, `sisnotify_phase_last_run_timestamp_seconds{phase="sync"}`, "")

	wantSample(t, s, `sisnotify_queue_tasks{queue="notices",state="pending"}`, "2")
	wantSample(t, s, `sisnotify_queue_tasks{queue="notices",state="scheduled"}`, "1")
	for _, st := range []string{"active", "retry", "archived"} {
		wantSample(t, s, `sisnotify_queue_tasks{queue="notices",state="`+st+`"}`, "0")
	}
	// The night queue has had no task yet: reported with zeros.
	wantSample(t, s, `sisnotify_queue_tasks{queue="night",state="pending"}`, "0")
	wantSample(t, s, `sisnotify_queue_latency_seconds{queue="notices"}`, "")

	wantSample(t, s, `sisnotify_last_successful_night_timestamp_seconds`, unixSeconds(night))
	wantSample(t, s, `sisnotify_deliveries_total{channel="email",outcome="sent"}`, "2")
	wantSample(t, s, `sisnotify_deliveries_total{channel="sms",outcome="retry"}`, "1")
	wantSample(t, s, `sisnotify_deliveries_total{channel="sms",outcome="failed"}`, "0")
	wantSample(t, s, `sisnotify_scrape_source_up{source="postgresql"}`, "1")
	wantSample(t, s, `sisnotify_scrape_source_up{source="redis"}`, "1")
	wantSample(t, s, `go_goroutines`, "")
	wantSample(t, s, `process_resident_memory_bytes`, "")

	for series := range s {
		if strings.Contains(series, "S0000001") || strings.Contains(series, "example.org") {
			t.Errorf("a metric names a student: %s", series)
		}
	}
}

func TestMetricsWhenASourceIsDown(t *testing.T) {
	db, _ := httpTestDB(t)
	rs := startRedisProcess(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.addr})
	t.Cleanup(func() { rdb.Close() })
	insertTestNotices(t, db, "registration", [2]string{"email", "pending"})
	h := testHTTP(t, HTTPOptions{DB: db, Redis: rdb, ScrapeCache: time.Millisecond, ScrapeTimeout: 2 * time.Second})
	rs.stop()
	s := scrapeMetrics(t, h)
	wantSample(t, s, `sisnotify_scrape_source_up{source="redis"}`, "0")
	wantSample(t, s, `sisnotify_scrape_source_up{source="postgresql"}`, "1")
	wantSample(t, s, `sisnotify_notices{channel="email",rule="registration",status="pending"}`, "1")
	if _, ok := s[`sisnotify_queue_tasks{queue="notices",state="pending"}`]; ok {
		t.Error("queue gauges reported while Redis is down")
	}
}

// The notices gauge is read at most once per ScrapeCache: a storm of
// scrapes within it is answered from the cache, the first scrape after it
// reads PostgreSQL again. The cache's clock is the test's, so the result
// does not depend on how fast the machine is.
func TestNoticesGaugeIsCached(t *testing.T) {
	db, _ := httpTestDB(t)
	const series = `sisnotify_notices{channel="email",rule="registration",status="pending"}`
	insertTestNotices(t, db, "registration", [2]string{"email", "pending"})
	var mu sync.Mutex
	clock := time.Date(2026, 11, 25, 6, 0, 0, 0, time.UTC)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	h := testHTTP(t, HTTPOptions{DB: db, Redis: httpTestRedis(t), ScrapeCache: 10 * time.Second, now: now})
	wantSample(t, scrapeMetrics(t, h), series, "1")
	insertTestNotices(t, db, "registration", [2]string{"email", "pending"})
	// A storm of scrapes within the cache's life is answered from the cache.
	advance(10*time.Second - time.Nanosecond)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			r := serveRequest(t, h, "GET", "/metrics")
			if got := parseSamples(r.body)[series]; r.code != 200 || got != "1" {
				t.Errorf("/metrics: %d, %s = %q within the cache's life, want the cached 1", r.code, series, got)
			}
		})
	}
	wg.Wait()
	// Once it has expired, the next scrape reads again.
	advance(time.Nanosecond)
	wantSample(t, scrapeMetrics(t, h), series, "2")
	insertTestNotices(t, db, "registration", [2]string{"email", "pending"})
	wantSample(t, scrapeMetrics(t, h), series, "2")
}

// The last successful night is read at Start from sisnotify.nights (a
// sync that succeeded in a night that failed does not count), or from
// sisnotify.syncs in a database without that table.
func TestLastSuccessfulNightFromTheDatabase(t *testing.T) {
	ok := time.Date(2026, 11, 24, 1, 12, 0, 0, time.UTC)
	later := ok.Add(24 * time.Hour)
	for _, table := range []string{"nights", "syncs"} {
		t.Run(table, func(t *testing.T) {
			db, _ := httpTestDB(t)
			var nights bool
			if err := db.Get(&nights, `SELECT to_regclass('sisnotify.nights') IS NOT NULL`); err != nil {
				t.Fatal(err)
			}
			// Syncs succeeded on both nights; only the first night did.
			_, err := db.Exec(`INSERT INTO sisnotify.syncs (as_of, status, finished_at) VALUES
				('2026-11-24', 'ok', $1), ('2026-11-25', 'ok', $2), ('2026-11-26', 'running', NULL)`, ok, later)
			if err != nil {
				t.Fatal(err)
			}
			want := later
			switch {
			case table == "nights" && !nights:
				t.Skip("no sisnotify.nights table in this schema")
			case table == "nights":
				_, err := db.Exec(`INSERT INTO sisnotify.nights (night, status, started_at, finished_at) VALUES
					('2026-11-24', 'ok', $1, $1), ('2026-11-25', 'failed', $2, $2), ('2026-11-26', 'running', $2, NULL)`, ok, later)
				if err != nil {
					t.Fatal(err)
				}
				want = ok
			case nights:
				if _, err := db.Exec(`DROP TABLE sisnotify.nights CASCADE`); err != nil {
					t.Fatal(err)
				}
			}
			h := testHTTP(t, HTTPOptions{Addr: "127.0.0.1:0", DB: db, Redis: httpTestRedis(t)})
			if got := h.Metrics().LastNight(); !got.IsZero() {
				t.Fatalf("last night %s before Start", got)
			}
			if err := h.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := h.Metrics().LastNight(); !got.Equal(want) {
				t.Errorf("last night after Start: %s, want %s", got, want)
			}
			const series = "sisnotify_last_successful_night_timestamp_seconds"
			wantSample(t, scrapeMetrics(t, h), series, unixSeconds(want))
			h.Metrics().NightSucceeded(want.Add(-time.Hour)) // older: ignored
			if got := h.Metrics().LastNight(); !got.Equal(want) {
				t.Errorf("an older night replaced the last: %s", got)
			}
			h.Metrics().NightSucceeded(later.Add(time.Hour))
			wantSample(t, scrapeMetrics(t, h), series, unixSeconds(later.Add(time.Hour)))
		})
	}
}

// A start that could not read the last night (here: the schema was not
// migrated yet) does not keep the metric at 0: the next scrape reads it.
func TestLastSuccessfulNightReadLaterWhenTheStartCouldNot(t *testing.T) {
	d := testenv.New(t, "")
	db := d.Open(t)
	h := testHTTP(t, HTTPOptions{Addr: "127.0.0.1:0", DB: db, Redis: httpTestRedis(t), ScrapeCache: time.Millisecond})
	if err := h.Start(context.Background()); err != nil {
		t.Fatalf("Start with an unmigrated database: %v", err)
	}
	if _, err := migrations.Up(context.Background(), db.DB); err != nil {
		t.Fatal(err)
	}
	ok := time.Date(2026, 11, 24, 1, 12, 0, 0, time.UTC)
	if _, err := db.Exec(`INSERT INTO sisnotify.syncs (as_of, status, finished_at) VALUES ('2026-11-24', 'ok', $1)`, ok); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DO $$ BEGIN IF to_regclass('sisnotify.nights') IS NOT NULL THEN
		INSERT INTO sisnotify.nights (night, status, finished_at) VALUES ('2026-11-24', 'ok', '2026-11-24 01:12:00+00'); END IF; END $$`); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	wantSample(t, scrapeMetrics(t, h), "sisnotify_last_successful_night_timestamp_seconds", unixSeconds(ok))
}

func TestLastSuccessfulNightOnAnEmptyDatabase(t *testing.T) {
	db, _ := httpTestDB(t)
	h := testHTTP(t, HTTPOptions{DB: db, Redis: httpTestRedis(t)})
	wantSample(t, scrapeMetrics(t, h), "sisnotify_last_successful_night_timestamp_seconds", "0")
}

func TestMetricsMethodsOnNilAreNoOps(t *testing.T) {
	var m *Metrics
	m.ObservePhase(PhaseSync, time.Second, errors.New("x"))
	m.NightSucceeded(time.Now())
	m.Delivered("email", "sent")
	if !m.LastNight().IsZero() || m.Registry() != nil {
		t.Error("nil Metrics has values")
	}
}

func TestMonitoringUINeedsCredentials(t *testing.T) {
	db, _ := httpTestDB(t)
	rdb := httpTestRedis(t)
	client := asynq.NewClientFromRedisClient(rdb)
	if _, err := client.Enqueue(asynq.NewTask(TypeDeliver, []byte(`{"notice_id":7}`)), asynq.Queue(QueueNotices), asynq.TaskID("registration/S0000001/1")); err != nil {
		t.Fatal(err)
	}
	h := testHTTP(t, HTTPOptions{DB: db, Redis: rdb, User: "ops", Password: "s3cret-pass"})

	r := serveRequest(t, h, "GET", "/monitoring/")
	if r.code != 401 || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic ") {
		t.Errorf("no credentials: %d, WWW-Authenticate %q", r.code, r.header.Get("WWW-Authenticate"))
	}
	for _, auth := range [][2]string{{"ops", "wrong"}, {"admin", "s3cret-pass"}, {"ops", ""}, {"", ""}, {"ops", "s3cret-pass "}} {
		for _, p := range []string{"/monitoring/", "/monitoring/api/queues"} {
			if r := serveRequest(t, h, "GET", p, auth[0], auth[1]); r.code != 401 {
				t.Errorf("GET %s as %q/%q: %d, want 401", p, auth[0], auth[1], r.code)
			}
		}
	}

	r = serveRequest(t, h, "GET", "/monitoring/", "ops", "s3cret-pass")
	if r.code != 200 || !strings.Contains(r.body, `<div id="root">`) || !strings.Contains(r.body, `window.FLAG_ROOT_PATH="\/monitoring"`) || !strings.Contains(r.body, `window.FLAG_READ_ONLY="true"`) {
		t.Errorf("the UI: %d %.300s", r.code, r.body)
	}
	// Nothing from a third party: the fonts are ours, and the policy
	// allows this server and the page's own two inline scripts only.
	if strings.Contains(r.body, "googleapis") || strings.Count(r.body, `href="/monitoring/fonts/fonts.css"`) != 1 {
		t.Errorf("the UI's page still links third-party fonts, or not ours once:\n%.1500s", r.body)
	}
	csp := r.header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'self'") || strings.Count(csp, "'sha256-") != 2 || strings.Contains(csp, "http") {
		t.Errorf("the UI's Content-Security-Policy: %q", csp)
	}
	for _, p := range []string{"/monitoring/fonts/fonts.css", "/monitoring/fonts/material-icons.woff2", "/monitoring/fonts/roboto-latin-400-normal.woff2"} {
		if f := serveRequest(t, h, "GET", p, "ops", "s3cret-pass"); f.code != 200 || len(f.body) < 1000 {
			t.Errorf("GET %s: %d, %d bytes", p, f.code, len(f.body))
		}
		if f := serveRequest(t, h, "GET", p); f.code != 401 {
			t.Errorf("GET %s without credentials: %d, want 401", p, f.code)
		}
	}
	// The UI's own routes serve the app too.
	if r := serveRequest(t, h, "GET", "/monitoring/queues/notices", "ops", "s3cret-pass"); r.code != 200 || !strings.Contains(r.body, `<div id="root">`) {
		t.Errorf("/monitoring/queues/notices: %d", r.code)
	}
	if r := serveRequest(t, h, "GET", "/monitoring", "ops", "s3cret-pass"); r.code/100 != 3 || r.header.Get("Location") != "/monitoring/" {
		t.Errorf("/monitoring: %d to %q", r.code, r.header.Get("Location"))
	}

	r = serveRequest(t, h, "GET", "/monitoring/api/queues", "ops", "s3cret-pass")
	var queues struct {
		Queues []struct {
			Queue   string `json:"queue"`
			Pending int    `json:"pending"`
		} `json:"queues"`
	}
	if err := json.Unmarshal([]byte(r.body), &queues); r.code != 200 || err != nil || len(queues.Queues) != 1 || queues.Queues[0].Queue != QueueNotices || queues.Queues[0].Pending != 1 {
		t.Errorf("/monitoring/api/queues: %d %s (%v)", r.code, r.body, err)
	}
	// The UI's Redis page needs a *redis.Client of its own.
	if r := serveRequest(t, h, "GET", "/monitoring/api/redis_info", "ops", "s3cret-pass"); r.code != 200 || !strings.Contains(r.body, "redis_version") {
		t.Errorf("/monitoring/api/redis_info: %d %.200s", r.code, r.body)
	}
	// The payload is shown as is (notice ids only).
	r = serveRequest(t, h, "GET", "/monitoring/api/queues/notices/pending_tasks", "ops", "s3cret-pass")
	if r.code != 200 || !strings.Contains(r.body, `{\"notice_id\":7}`) {
		t.Errorf("pending tasks: %d %s", r.code, r.body)
	}

	// Read-only: nothing changes the queues.
	for _, req := range [][2]string{
		{"POST", "/monitoring/api/queues/notices:pause"},
		{"DELETE", "/monitoring/api/queues/notices/pending_tasks:delete_all"},
		{"DELETE", "/monitoring/api/queues/notices"},
		{"POST", "/monitoring/api/queues/notices/pending_tasks:archive_all"},
	} {
		if r := serveRequest(t, h, req[0], req[1], "ops", "s3cret-pass"); r.code != http.StatusMethodNotAllowed {
			t.Errorf("%s %s: %d, want 405", req[0], req[1], r.code)
		}
		if r := serveRequest(t, h, req[0], req[1]); r.code != 401 {
			t.Errorf("%s %s without credentials: %d, want 401", req[0], req[1], r.code)
		}
	}
	info, err := asynq.NewInspectorFromRedisClient(rdb).GetQueueInfo(QueueNotices)
	if err != nil || info.Pending != 1 || info.Paused {
		t.Errorf("queue after the refused requests: %+v %v", info, err)
	}
}

func TestMonitoringUIOffWithoutUser(t *testing.T) {
	db, _ := httpTestDB(t)
	h := testHTTP(t, HTTPOptions{DB: db, Redis: httpTestRedis(t)})
	for _, p := range []string{"/monitoring/", "/monitoring", "/monitoring/api/queues"} {
		if r := serveRequest(t, h, "GET", p); r.code != 404 {
			t.Errorf("GET %s without a user: %d, want 404", p, r.code)
		}
		if r := serveRequest(t, h, "GET", p, "ops", "x"); r.code != 404 {
			t.Errorf("GET %s with credentials, without a user: %d, want 404", p, r.code)
		}
	}
}

func TestNewHTTPRefusesBadOptions(t *testing.T) {
	db, _ := httpTestDB(t)
	rdb := httpTestRedis(t)
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1"}})
	t.Cleanup(func() { ring.Close() })
	for name, o := range map[string]HTTPOptions{
		"no DB":                 {Redis: rdb},
		"no Redis":              {DB: db},
		"user without password": {DB: db, Redis: rdb, User: "ops"},
		"UI on a ring":          {DB: db, Redis: ring, User: "ops", Password: "x"},
	} {
		h := NewHTTP(o)
		if err := h.Start(context.Background()); err == nil {
			t.Errorf("%s: Start did not fail", name)
		}
		if r := serveRequest(t, h, "GET", "/healthz"); r.code != http.StatusInternalServerError {
			t.Errorf("%s: /healthz %d, want 500", name, r.code)
		}
		if err := h.Shutdown(context.Background()); err != nil {
			t.Errorf("%s: Shutdown: %v", name, err)
		}
	}
}

func httpGet(t *testing.T, url string) (int, string, error) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func TestStartAndShutdown(t *testing.T) {
	db, _ := httpTestDB(t)
	h := testHTTP(t, HTTPOptions{Addr: "127.0.0.1:0", DB: db, Redis: httpTestRedis(t), User: "ops", Password: "pw"})
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := h.Start(context.Background()); err == nil {
		t.Error("a second Start did not fail")
	}
	base := "http://" + h.Addr()
	if code, body, err := httpGet(t, base+"/healthz"); err != nil || code != 200 || body != "ok\n" {
		t.Fatalf("/healthz over TCP: %d %q %v", code, body, err)
	}
	if code, _, err := httpGet(t, base+"/readyz"); err != nil || code != 200 {
		t.Fatalf("/readyz over TCP: %d %v", code, err)
	}

	// The address is taken: a second server cannot start on it.
	other := testHTTP(t, HTTPOptions{Addr: h.Addr(), DB: db, Redis: httpTestRedis(t)})
	if err := other.Start(context.Background()); err == nil {
		t.Error("a second server started on a busy address")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.Done():
	default:
		t.Error("Done not closed after Shutdown")
	}
	if _, _, err := httpGet(t, base+"/healthz"); err == nil {
		t.Error("still serving after Shutdown")
	}
	if err := h.Shutdown(ctx); err != nil {
		t.Errorf("a second Shutdown: %v", err)
	}
	if err := h.Start(context.Background()); err == nil {
		t.Error("Start after Shutdown did not fail")
	}
}

// A request in progress when Shutdown starts is answered: /readyz waits on
// a Redis that does not answer (stopped with SIGSTOP) until its timeout.
func TestShutdownWaitsForRequestsInProgress(t *testing.T) {
	db, _ := httpTestDB(t)
	rs := startRedisProcess(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.addr, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	h := testHTTP(t, HTTPOptions{Addr: "127.0.0.1:0", DB: db, Redis: rdb, ReadyTimeout: 1500 * time.Millisecond})
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := rs.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer rs.cmd.Process.Signal(syscall.SIGCONT)

	type result struct {
		code int
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, body, err := httpGet(t, "http://"+h.Addr()+"/readyz")
		done <- result{code, body, err}
	}()
	time.Sleep(300 * time.Millisecond) // the request is waiting on Redis
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := h.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 500*time.Millisecond {
		t.Errorf("Shutdown returned after %s, before the request in progress ended", d)
	}
	r := <-done
	if r.err != nil || r.code != http.StatusServiceUnavailable || r.body != "postgresql: ok\nredis: unavailable\n" {
		t.Errorf("the request in progress: %d %q %v", r.code, r.body, r.err)
	}
}
