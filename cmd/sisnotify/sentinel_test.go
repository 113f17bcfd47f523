package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/iec-almaty/sisnotify/integrations/testenv"
)

// The primary Redis dies (SIGKILL) in the middle of a night given a
// redis-sentinel:// URL: the three sentinels promote the replica, the
// binary's client finds the new primary through them, and the night
// completes (the operator's rerun with --retry-now, if the first run gave
// up, re-creates the tasks the old primary took with it): nothing lost,
// nothing twice but for the deliveries in flight at the kill.
func TestFaultRedisSentinelFailover(t *testing.T) {
	testenv.Long(t, "runs a Redis primary, a replica, three sentinels and the binary over 800 deliveries")
	if !testenv.HaveRedisServer() {
		t.Skip("redis-server is not installed (apt-get install redis-server): the Sentinel test needs processes of its own")
	}
	faultParallel(t)
	primary := testenv.StartRedis(t)
	replica := testenv.StartRedisReplica(t, primary)
	sentinels := testenv.StartSentinels(t, primary, "mymaster", 3, 1)
	e := newFaultEnv(t, sentinels.URL(redisDB), "")
	e.students(1, 200, faultNight, true) // 800 notices, 400 of them emails

	first := e.start("run", "--once", "--as-of", faultNight, "--timeout", "60s")
	if !e.smtp.WaitFor(100, 2*time.Minute) {
		first.kill()
		t.Fatalf("the first run delivered only %d emails in 2 minutes\n%s", e.smtp.Count(), faultTail(first.output(), 4000))
	}
	primary.Kill()
	atKill, inFlightAtKill := e.smtp.Count(), e.inFlight()
	killed := time.Now()
	if atKill >= 400 {
		t.Fatalf("%d emails before the primary died: the scenario did not happen", atKill)
	}

	// Sentinel promotes the replica: 1 s to judge the primary down, then
	// the election.
	var promoted time.Duration
	for {
		port, err := sentinels.PrimaryPort(context.Background())
		if err == nil && port == replica.Port() {
			promoted = time.Since(killed).Round(100 * time.Millisecond)
			break
		}
		if time.Since(killed) > 30*time.Second {
			first.kill()
			t.Fatalf("the sentinels did not promote the replica (port %d) in 30 s: primary port %d, %v", replica.Port(), port, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("the sentinels promoted the replica %s after the kill", promoted)

	err := first.wait(t, 3*time.Minute)
	faultLogFirst(t, first, err)
	inFlight, pending := e.inFlight(), e.pending()
	rerun := err != nil || pending > 0
	if rerun {
		// The operator's rerun, through the same sentinels, now pointing
		// at the promoted replica.
		if out, err := e.run(2*time.Minute, "run", "--once", "--retry-now", "--as-of", faultNight, "--timeout", "90s"); err != nil {
			t.Fatalf("the second run: %v\n%s", err, faultTail(out, 4000))
		}
	}
	f := e.figures()
	maxDup := max(inFlight, inFlightAtKill)
	f.report(t, "redis-sentinel-failover", maxDup, maxDup, "emails_at_kill", atKill, "promoted_after", promoted,
		"pending_after_first_run", pending, "first_exit", faultExit(err), "rerun", rerun)
	f.allSent(t, 800)
}

// serve given a redis-sentinel:// URL: /readyz says 503 while the primary
// is dead and no replica is promoted yet, and 200 once the sentinels have
// promoted one; the monitoring UI (which makes clients of its own from the
// shared one's options) reads the queues before and after.
func TestServeReadyzAcrossSentinelFailover(t *testing.T) {
	testenv.Long(t, "runs a Redis primary, a replica, three sentinels and a serve process")
	if !testenv.HaveRedisServer() {
		t.Skip("redis-server is not installed (apt-get install redis-server): the Sentinel test needs processes of its own")
	}
	primary := testenv.StartRedis(t)
	replica := testenv.StartRedisReplica(t, primary)
	sentinels := testenv.StartSentinels(t, primary, "mymaster", 3, 1)
	e := newServeEnv(t, "0 6 1 1 *")
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	e.env = append(e.env, "SISNOTIFY_REDIS_URL="+sentinels.URL(redisDB), // the last value wins
		"SISNOTIFY_HTTP_ADDR="+addr, "SISNOTIFY_HTTP_USER=ops", "SISNOTIFY_HTTP_PASSWORD=break-glass-pass")
	e.start(t)
	get := func(path string) int {
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		req.SetBasicAuth("ops", "break-glass-pass")
		c := &http.Client{Timeout: 10 * time.Second}
		resp, err := c.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	waitFor(t, "serve's /readyz", 30*time.Second, func() bool { return get("/readyz") == 200 })
	if code := get("/monitoring/api/queues"); code != 200 {
		t.Fatalf("GET /monitoring/api/queues before the failover: %d", code)
	}

	primary.Kill()
	killed := time.Now()
	saw503 := false
	for {
		code := get("/readyz")
		port, _ := sentinels.PrimaryPort(context.Background())
		if code == 503 && port != replica.Port() {
			saw503 = true
		}
		if code == 200 && port == replica.Port() {
			break
		}
		if time.Since(killed) > 30*time.Second {
			t.Fatalf("/readyz still %d 30 s after the primary died (sentinels name port %d, replica %d)", code, port, replica.Port())
		}
		time.Sleep(100 * time.Millisecond)
	}
	back := time.Since(killed).Round(100 * time.Millisecond)
	if !saw503 {
		t.Errorf("/readyz never said 503 while the primary was dead and not yet replaced")
	}
	if code := get("/monitoring/api/queues"); code != 200 {
		t.Errorf("GET /monitoring/api/queues after the failover: %d", code)
	}
	figure(t, fmt.Sprintf("scenario=serve-sentinel-failover readyz_503_seen=%v readyz_200_after=%s", saw503, back))
}

// A night over rediss:// (a Redis that speaks only TLS): the binary checks
// the server's certificate, so it refuses a certificate it has no reason
// to trust, and with the certificate's
// issuer trusted (SSL_CERT_FILE) it delivers the night.
func TestRunOverRediss(t *testing.T) {
	testenv.Long(t, "runs a TLS redis-server and the binary")
	rs, ca := testenv.StartRedisTLS(t)
	e := newFaultEnv(t, rs.URL(redisDB), "")
	e.students(1, 10, faultNight, false) // 20 email notices

	out, err := e.run(time.Minute, "run", "--once", "--as-of", faultNight, "--timeout", "30s")
	if faultExit(err) != 1 || !strings.Contains(out, "x509: certificate signed by unknown authority") {
		t.Fatalf("run --once over rediss:// with an untrusted certificate: %v, want exit 1 saying why the certificate is refused\n%s", err, faultTail(out, 2000))
	}
	if n := e.smtp.Count(); n != 0 {
		t.Fatalf("%d emails sent without a Redis", n)
	}

	e.extra = append(e.extra, "SSL_CERT_FILE="+ca)
	if out, err := e.run(2*time.Minute, "run", "--once", "--as-of", faultNight, "--timeout", "60s"); err != nil {
		t.Fatalf("run --once over rediss:// with the certificate trusted: %v\n%s", err, faultTail(out, 4000))
	}
	f := e.figures()
	// The notices of the refused run waited in PostgreSQL: this run sent them.
	f.report(t, "rediss", 0, 0)
	f.allSent(t, 20)
}
