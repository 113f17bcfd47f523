//go:build unix

package worker

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/iec-almaty/sisnotify/integrations/testenv"
)

// chromiumPath is the browser the UI check drives (CI installs Debian's
// chromium package).
const chromiumPath = "/usr/bin/chromium"

// browserRequestLog records the requests a browser made.
type browserRequestLog struct {
	mu   sync.Mutex
	seen []string // "METHOD path status"
}

type browserStatusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *browserStatusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

func (l *browserRequestLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &browserStatusRecorder{ResponseWriter: w, code: 200}
		h.ServeHTTP(rec, r)
		l.mu.Lock()
		l.seen = append(l.seen, r.Method+" "+r.URL.Path+" "+http.StatusText(rec.code))
		l.mu.Unlock()
	})
}

func (l *browserRequestLog) has(prefix string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.seen {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

func (l *browserRequestLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen = nil
}

func (l *browserRequestLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.seen, "\n")
}

// runChromium runs a headless Chromium on url with extra flags (--dump-dom,
// --screenshot=…), bounded by a timeout, and returns its standard output
// and error. Every process it starts is killed when it ends.
func runChromium(t *testing.T, url string, extra ...string) (stdout, stderr string) {
	t.Helper()
	dir := t.TempDir()
	args := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
		"--user-data-dir=" + filepath.Join(dir, "profile"),
		"--window-size=1280,800",
		// The UI links Google Fonts; the test stays on loopback.
		"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
		// Let the app fetch its API and render before the DOM is dumped.
		"--virtual-time-budget=15000",
	}, extra...)
	args = append(args, url)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromiumPath, args...)
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+dir, "XDG_CACHE_HOME="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	err := cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // helpers left behind
	}
	t.Logf("chromium %s: %s", strings.Join(extra, " "), time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("chromium: %v (timeout: %v)\n%s", err, ctx.Err() != nil, tailOf(errOut.String(), 2000))
	}
	return out.String(), errOut.String()
}

func tailOf(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// A real browser renders the monitoring UI with the right credentials (the
// app runs and reads the queues through the API) and gets the 401 page
// without them.
func TestMonitoringUIRendersInABrowser(t *testing.T) {
	testenv.Long(t, "renders the UI in a headless browser")
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("%s not found: install Debian's chromium package to check the monitoring UI in a browser", chromiumPath)
	}
	if testing.Short() {
		t.Skip("-short: no browser")
	}
	db, _ := httpTestDB(t)
	rdb := httpTestRedis(t)
	if _, err := asynq.NewClientFromRedisClient(rdb).Enqueue(asynq.NewTask(TypeDeliver, []byte(`{"notice_id":1}`)), asynq.Queue(QueueNotices)); err != nil {
		t.Fatal(err)
	}
	h := testHTTP(t, HTTPOptions{DB: db, Redis: rdb, User: "ops", Password: "browser-pass"})
	var log browserRequestLog
	srv := httptest.NewServer(log.wrap(h))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")

	t.Run("with credentials", func(t *testing.T) {
		dom, _ := runChromium(t, "http://ops:browser-pass@"+host+"/monitoring/", "--dump-dom")
		for _, want := range []string{`id="root"`, "Queues", QueueNotices} {
			if !strings.Contains(dom, want) {
				t.Errorf("the rendered UI has no %q:\n%s\nrequests:\n%s", want, tailOf(dom, 3000), &log)
			}
		}
		if !log.has("GET /monitoring/api/queues OK") {
			t.Errorf("the app did not read its queues through the API; requests:\n%s", &log)
		}
		// Under its Content-Security-Policy the app runs (the queues above)
		// and takes its fonts from this server.
		if !log.has("GET /monitoring/fonts/fonts.css OK") {
			t.Errorf("the page did not load the local fonts; requests:\n%s", &log)
		}

		png := filepath.Join(t.TempDir(), "monitoring.png")
		runChromium(t, "http://ops:browser-pass@"+host+"/monitoring/", "--screenshot="+png)
		b, err := os.ReadFile(png)
		if err != nil {
			t.Fatalf("no screenshot: %v", err)
		}
		if !bytes.HasPrefix(b, []byte("\x89PNG")) || len(b) < 20_000 {
			t.Errorf("screenshot: %d bytes, want a PNG of a rendered page", len(b))
		}
		t.Logf("screenshot: %d bytes", len(b))
	})

	// Headless Chromium has no login dialog: it ends the load with
	// ERR_INVALID_AUTH_CREDENTIALS (or, in other versions, shows the 401
	// page); either way the app never runs.
	for name, url := range map[string]string{
		"without credentials":   srv.URL + "/monitoring/",
		"with a wrong password": "http://ops:wrong@" + host + "/monitoring/",
	} {
		t.Run(name, func(t *testing.T) {
			log.reset()
			dom, stderr := runChromium(t, url, "--dump-dom")
			if !strings.Contains(dom, "401 Unauthorized") && !strings.Contains(stderr, "ERR_INVALID_AUTH_CREDENTIALS") {
				t.Errorf("the browser neither shows the 401 page nor reports the refused credentials:\n%s\n%s", tailOf(dom, 1000), tailOf(stderr, 1000))
			}
			if strings.Contains(dom, "Queues") {
				t.Errorf("the UI rendered:\n%s", tailOf(dom, 1000))
			}
			if !log.has("GET /monitoring/ Unauthorized") || log.has("GET /monitoring/ OK") || log.has("GET /monitoring/api/") {
				t.Errorf("want a 401 and nothing served; requests:\n%s", &log)
			}
		})
	}
}
