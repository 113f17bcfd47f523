package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/iec-almaty/sisnotify/integrations/testenv"
)

// serve mounts the student page at /s/ when SISNOTIFY_PUBLIC_URL and
// SISNOTIFY_LINK_KEYS are both set: its stylesheet answers, and a link
// that is not valid gets the page's "link not valid" answer under its
// Content-Security-Policy.
func TestServeServesTheStudentPage(t *testing.T) {
	testenv.Long(t, "starts a serve process")
	e := newServeEnv(t, "0 6 1 1 *")
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	e.env = append(e.env, "SISNOTIFY_HTTP_ADDR="+addr, "SISNOTIFY_PUBLIC_URL=https://notify.uni.example",
		"SISNOTIFY_LINK_KEYS="+strings.Repeat("k", 40))
	cmd := e.start(t)
	base := "http://" + addr
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			return nil, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	waitFor(t, "serve's HTTP side", 30*time.Second, func() bool { r, _ := get("/readyz"); return r != nil && r.StatusCode == 200 })
	if r, css := get("/s/page.css"); r.StatusCode != 200 || !strings.Contains(css, "max-width") {
		t.Fatalf("GET /s/page.css: %d", r.StatusCode)
	}
	r, body := get("/s/AQAAUWoCUzAwMDAxMTLVG3W3bTtQQzU7fR6M3wLIYJRB781HMMJ_dg1SK_c-xg")
	if r.StatusCode != http.StatusNotFound || !strings.Contains(body, "Link not valid") ||
		!strings.Contains(r.Header.Get("Content-Security-Policy"), "default-src 'none'") || r.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Fatalf("GET /s/<forged>: %d %v %.200s", r.StatusCode, r.Header, body)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("serve exited with %v after SIGTERM, want 0", err)
	}
}
