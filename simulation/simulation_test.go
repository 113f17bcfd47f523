package simulation

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"
	"github.com/redis/go-redis/v9"

	"github.com/iec-almaty/sisnotify/integrations/mail/mailtest"
	"github.com/iec-almaty/sisnotify/integrations/testenv"
	"github.com/iec-almaty/sisnotify/jobs/date"
)

// yearStart is the first night of the simulated academic year.
var yearStart = date.MustParse("2026-09-01")

var binPath string

func TestMain(m *testing.M) {
	if os.Getenv("SISNOTIFY_TEST_LONG") == "" {
		os.Exit(m.Run()) // the simulation skips itself
	}
	dir, err := os.MkdirTemp("", "sisnotify-sim")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "sisnotify")
	if out, err := exec.Command("go", "build", "-o", binPath, "../cmd/sisnotify").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// officeYAML is the office a sending night needs.
const officeYAML = `office:
  university: Simulated University
  name: International Office
  address: "Room 112, 1 Test Street, Almaty"
  hours: "Mon-Fri 09:00-18:00"
  phone: "+7 727 355 05 67"
  email: io@uni.example
`

// simConfig is what a run simulates: SISNOTIFY_SIM_NIGHTS (default 30),
// SISNOTIFY_SIM_STUDENTS (300), SISNOTIFY_SIM_SEED (5),
// SISNOTIFY_SIM_FAULTS (on unless 0).
type simConfig struct {
	nights, students int
	seed             uint64
	faults           bool
}

func configFromEnv(t *testing.T) simConfig {
	c := simConfig{nights: 30, students: 300, seed: 5, faults: true}
	num := func(name string, def int) int {
		v := os.Getenv(name)
		if v == "" {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number", name, v)
		}
		return n
	}
	c.nights = num("SISNOTIFY_SIM_NIGHTS", c.nights)
	c.students = num("SISNOTIFY_SIM_STUDENTS", c.students)
	c.seed = uint64(num("SISNOTIFY_SIM_SEED", int(c.seed)))
	c.faults = os.Getenv("SISNOTIFY_SIM_FAULTS") != "0"
	return c
}

// TestSimulation runs the simulated year (or its first nights) and fails
// at the first night that breaks an invariant, naming the seed, the night
// and the evidence; its last line is the summary.
func TestSimulation(t *testing.T) {
	testenv.Long(t, "simulates nights of the academic year with real processes and faults")
	cfg := configFromEnv(t)
	h := newHarness(t, cfg)
	start := time.Now()
	for i := 0; i < cfg.nights; i++ {
		night := yearStart.AddDays(i)
		h.night(night)
	}
	t.Logf("%d nights of %d students (seed %d) in %s; students reported %v on their page", cfg.nights, cfg.students, cfg.seed,
		time.Since(start).Round(time.Second), h.reports)
	line := h.sum.String()
	t.Log(line)
	if f := os.Getenv("SISNOTIFY_SIM_SUMMARY"); f != "" {
		if err := os.WriteFile(f, []byte(line+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// summary is the simulation's last line.
type summary struct {
	nights, faults, notices, duplicates, lost, afterClose, outOfScope, missingDigests int
}

func (s summary) String() string {
	return fmt.Sprintf("simulation: nights=%d faults=%d notices=%d duplicates=%d lost=%d after_close=%d out_of_scope=%d missing_digests=%d",
		s.nights, s.faults, s.notices, s.duplicates, s.lost, s.afterClose, s.outOfScope, s.missingDigests)
}

type harness struct {
	t     *testing.T
	cfg   simConfig
	ctx   context.Context
	sisDB *sql.DB
	db    *sqlx.DB
	redis string
	rdb   *redis.Client
	// The worker's Redis and PostgreSQL are servers of the simulation's
	// own, so that it can restart them.
	redisServer *testenv.RedisServer
	pg          *testenv.PostgresServer
	smtp        *mailtest.Server
	sms         *smsStub
	world       *World
	rng         *rand.Rand // the fault schedule
	env         []string

	sum summary
	// What the record held after the previous night.
	mailSeen, smsSeen int
	seenMail          map[string]int // Message-ID → copies
	seenSMS           map[string]int // reference → copies
	// steps are the student steps of the three rules the SIS alone
	// decides (arrival check-in, registration, passport renewal), by
	// rule, student, level, channel and the SIS value they are anchored
	// on, with the night each was received: a step goes once.
	steps map[string]date.Date
	// page is the student page the links in student emails open;
	// reports counts what the students reported there, by kind.
	page     *studentPage
	console  *httptest.Server // the office's console
	reports  map[string]int
	rejected map[string]bool
}

func newHarness(t *testing.T, cfg simConfig) *harness {
	h := &harness{t: t, cfg: cfg, ctx: context.Background(), smtp: mailtest.NewServer(t), sms: newSMSStub(t),
		rng: rand.New(rand.NewPCG(cfg.seed, 0xfa17)), seenMail: map[string]int{}, seenSMS: map[string]int{}, steps: map[string]date.Date{}, reports: map[string]int{}, rejected: map[string]bool{}}
	h.redisServer, h.pg = testenv.StartRedis(t), testenv.StartPostgres(t)
	sisDB, workerDB := testenv.New(t, ""), testenv.Database{URL: h.pg.URL()}
	h.redis = h.redisServer.URL(0)
	opt, err := redis.ParseURL(h.redis)
	if err != nil {
		t.Fatal(err)
	}
	h.rdb = redis.NewClient(opt)
	t.Cleanup(func() { h.rdb.Close() })
	conf := filepath.Join(t.TempDir(), "sisnotify.yaml")
	if err := os.WriteFile(conf, []byte(officeYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	h.env = append(os.Environ(),
		"SISNOTIFY_SIS_URL="+sisDB.URL, "SISNOTIFY_DB_URL="+workerDB.URL, "SISNOTIFY_REDIS_URL="+h.redis,
		"SISNOTIFY_SMTP_URL="+h.smtp.URL(), "SISNOTIFY_SMS_PROVIDER=webhook", "SISNOTIFY_SMS_WEBHOOK_URL="+h.sms.URL(),
		"SISNOTIFY_SMS_QUIET_HOURS=", "SISNOTIFY_OFFICE_EMAILS=office@uni.example", "SISNOTIFY_OPS_EMAILS=ops@uni.example",
		"SISNOTIFY_OUTBOX_DIR="+t.TempDir(), "SISNOTIFY_PUBLIC_URL="+publicURL, "SISNOTIFY_LINK_KEYS="+linkKey, "SISNOTIFY_CONFIG="+conf)
	if out, err := h.run(2*time.Minute, nil, "demo", "--sis-only", "--students", strconv.Itoa(cfg.students),
		"--seed", strconv.FormatUint(cfg.seed, 10), "--as-of", yearStart.AddDays(-1).String()); err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	if h.sisDB, err = sql.Open("postgres", sisDB.URL); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.sisDB.Close() })
	h.db = workerDB.Open(t)
	h.startStudentPage()
	h.startConsole()
	h.startConsole()
	h.world = newWorld(h.sisDB, cfg.seed)
	return h
}

// run runs the binary with args to its end (limit at most) and returns
// its output; extra replaces variables of the environment.
func (h *harness) run(limit time.Duration, extra []string, args ...string) (string, error) {
	p := h.start(extra, args...)
	return p.wait(limit)
}

// proc is a running sisnotify process.
type proc struct{ *testenv.Process }

func (h *harness) start(extra []string, args ...string) *proc {
	return &proc{testenv.StartProcess(h.t, binPath, append(append([]string(nil), h.env...), extra...), args...)}
}

// wait waits for the process to end, limit at most (then it is killed),
// and returns what it printed.
func (p *proc) wait(limit time.Duration) (string, error) {
	select {
	case <-p.Done():
		return p.Output(), p.Err()
	case <-time.After(limit):
		p.Kill()
		return p.Output(), fmt.Errorf("still running after %s: killed", limit)
	}
}

func (p *proc) kill() { p.Kill() }

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// fault is what goes wrong on a night.
type fault string

const (
	faultNone           fault = ""
	faultKill           fault = "sigkill mid-delivery"
	faultRedisFlush     fault = "redis flushed mid-night"
	faultSMTPTemp       fault = "smtp 4xx"
	faultSMTPReject     fault = "smtp 5xx for some addresses"
	faultSMS429         fault = "sms 429"
	faultSMS500         fault = "sms 500"
	faultSISUnreachable fault = "sis unreachable"
	faultRedisRestart   fault = "redis restarted mid-night"
	faultPGRestart      fault = "postgres restarted mid-night"
	faultReplicas       fault = "two replicas"
)

var faults = []fault{faultKill, faultRedisFlush, faultSMTPTemp, faultSMTPReject, faultSMS429, faultSMS500, faultSISUnreachable,
	faultRedisRestart, faultPGRestart, faultReplicas}

// draw is tonight's fault: about one night in four has one.
func (h *harness) draw() fault {
	if !h.cfg.faults || h.rng.IntN(4) != 0 {
		return faultNone
	}
	return faults[h.rng.IntN(len(faults))]
}

// night advances the world to night, runs it with tonight's fault, lets
// the day's retries run, and checks the invariants.
func (h *harness) night(night date.Date) {
	t := h.t
	broken, err := h.world.Advance(h.ctx, night)
	if err != nil {
		t.Fatal(err)
	}
	f := faultNone
	if !broken {
		f = h.draw()
	}
	sis := h.sisState()
	h.sum.nights++
	if f != faultNone {
		h.sum.faults++
	}
	began := time.Now()
	runArgs := func(timeout string) []string {
		return []string{"run", "--once", "--as-of", night.String(), "--timeout", timeout}
	}
	args := runArgs("90s")
	inFlight := 0
	var out string
	switch f {
	case faultKill, faultRedisFlush, faultRedisRestart, faultPGRestart:
		before := h.smtp.Count()
		k := 1 + h.rng.IntN(10)
		p := h.start(nil, runArgs("20s")...)
		// Mid-delivery: once k messages went, or the night is about to
		// end (a quiet night sends a few), whichever comes first.
		for deadline := time.Now().Add(15 * time.Second); h.smtp.Count() < before+k && time.Now().Before(deadline); {
			select {
			case <-p.Done():
				deadline = time.Now()
			case <-time.After(5 * time.Millisecond):
			}
		}
		if err := h.db.Get(&inFlight, `SELECT count(*) FROM sisnotify.notices WHERE status = 'sending'`); err != nil {
			t.Fatal(err)
		}
		inFlight += 2 // the night's digests, whose state is not a notice's
		switch f {
		case faultKill:
			p.kill()
		case faultRedisFlush:
			if err := h.rdb.FlushDB(h.ctx).Err(); err != nil {
				t.Fatal(err)
			}
		case faultRedisRestart:
			h.redisServer.Kill()
			time.Sleep(time.Second)
			h.redisServer.Start()
		case faultPGRestart:
			if out, err := h.pg.Ctl("restart", "-m", "fast"); err != nil {
				t.Fatalf("pg_ctl restart: %v\n%s\n%s", err, out, h.pg.Log())
			}
		}
		out, err = p.wait(3 * time.Minute)
		if exitCode(err) != 0 && exitCode(err) != 3 || f == faultKill {
			// The operator runs the night again, sending what waits for
			// a retry now.
			out, err = h.run(3*time.Minute, nil, append(runArgs("60s"), "--retry-now")...)
		}
	case faultReplicas:
		// Two replicas run the same night at once.
		p := h.start(nil, args...)
		out, err = h.run(3*time.Minute, nil, args...)
		if out2, err2 := p.wait(3 * time.Minute); exitCode(err2) != 0 && exitCode(err2) != 3 {
			out, err = out2, err2
		}
	case faultSMTPTemp:
		h.smtp.TempFail(5 + h.rng.IntN(40))
		out, err = h.run(3*time.Minute, nil, runArgs("5s")...)
		h.smtp.TempFail(0)
	case faultSMTPReject:
		var addrs []string
		if err := h.db.Select(&addrs, `SELECT email FROM sisnotify.students WHERE email IS NOT NULL AND removed_at IS NULL
			ORDER BY md5(student_id || $1) LIMIT 3`, night.String()); err != nil {
			t.Fatal(err)
		}
		for _, a := range addrs {
			h.rejected[strings.ToLower(a)] = true
		}
		h.smtp.Reject(addrs...)
		out, err = h.run(3*time.Minute, nil, args...)
	case faultSMS429, faultSMS500:
		code := 429
		if f == faultSMS500 {
			code = 500
		}
		h.sms.Fail(3+h.rng.IntN(10), code)
		out, err = h.run(3*time.Minute, nil, runArgs("5s")...)
		h.sms.Fail(0, 0)
	case faultSISUnreachable:
		out, err = h.run(3*time.Minute, []string{"SISNOTIFY_SIS_URL=postgres://postgres@127.0.0.1:1/sis?sslmode=disable&connect_timeout=2"}, args...)
	default:
		out, err = h.run(3*time.Minute, nil, args...)
	}
	code := exitCode(err)
	if code == 1 && f != faultNone && f != faultSISUnreachable && !broken {
		// A phase failed (a digest met the SMTP server's 4xx, the
		// database went away): as the operator's guide says, the
		// operator runs that night again once the cause is gone.
		h.t.Logf("night %s (%s): the night failed; run again as an operator would\n%s", night, f, tail(out))
		out, err = h.run(3*time.Minute, nil, append(runArgs("60s"), "--retry-now")...)
		code = exitCode(err)
	}
	if os.Getenv("SISNOTIFY_SIM_VERBOSE") != "" {
		t.Logf("night %s output:\n%s", night, tail(out))
	}
	switch {
	case broken && code != 1:
		t.Fatalf("seed %d night %s: a broken export: run exited %d, want 1 (held by the feed guard)\n%s", h.cfg.seed, night, code, tail(out))
	case f == faultSISUnreachable && code != 1:
		t.Fatalf("seed %d night %s: the SIS unreachable: run exited %d, want 1\n%s", h.cfg.seed, night, code, tail(out))
	case !broken && f != faultSISUnreachable && code != 0 && code != 3:
		t.Fatalf("seed %d night %s (%s): run exited %d\n%s", h.cfg.seed, night, orNone(f), code, tail(out))
	}
	// The day: what waits for a retry goes (serve would send it during
	// the day; an operator after an outage runs the same command).
	if code == 3 || (f != faultNone && f != faultSISUnreachable) {
		if out, err := h.run(3*time.Minute, nil, "notices", "retry", "--pending", "--timeout", "90s"); exitCode(err) != 0 && exitCode(err) != 3 {
			t.Fatalf("seed %d night %s: notices retry --pending: %v\n%s", h.cfg.seed, night, err, tail(out))
		}
	}
	from := h.mailSeen
	h.check(night, f, broken, code, began, inFlight, sis)
	h.answerBack(night, h.smtp.Messages()[from:h.mailSeen])
	h.decideReports(night)
	h.decideReports(night)
	t.Logf("night %s: fault %q, exit %d, %d mails and %d SMS so far, %s", night, orNone(f), code, h.smtp.Count(), len(h.sms.Messages()), time.Since(began).Round(time.Millisecond))
}

func orNone(f fault) string {
	if f == faultNone {
		return "none"
	}
	return string(f)
}

func tail(s string) string {
	if len(s) > 3000 {
		return "…" + s[len(s)-3000:]
	}
	return s
}
