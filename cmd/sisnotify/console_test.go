package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/iec-almaty/sisnotify/integrations/testenv"
)

// serve serves the office console when the break-glass login is set, with
// the night runner behind its release: the pages answer, and releasing a
// night the feed guard does not hold is refused as such (409) by the real
// runner.
func TestServeServesTheConsole(t *testing.T) {
	testenv.Long(t, "starts a serve process")
	e := newServeEnv(t, "0 6 1 1 *") // the last activation was January 1st
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	e.env = append(e.env, "SISNOTIFY_HTTP_ADDR="+addr, "SISNOTIFY_HTTP_USER=office", "SISNOTIFY_HTTP_PASSWORD=break-glass-pass")
	cmd := e.start(t)
	base := "http://" + addr
	do := func(method, path string, form url.Values) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		req.SetBasicAuth("office", "break-glass-pass")
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitFor(t, "serve's HTTP side", 30*time.Second, func() bool { code, _ := do("GET", "/readyz", nil); return code == 200 })

	code, today := do("GET", "/console/", nil)
	if code != 200 || !strings.Contains(today, `<html lang="`) {
		t.Fatalf("GET /console/: %d %.300s", code, today)
	}
	if code, _ := do("GET", "/console/nights", nil); code != 200 {
		t.Fatalf("GET /console/nights: %d", code)
	}
	m := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindStringSubmatch(today)
	if m == nil {
		t.Fatalf("no form token on Today:\n%.2000s", today)
	}
	code, body := do("POST", "/console/nights/2026-01-01/release", url.Values{"csrf": {m[1]}, "reason": {"checked the SIS"}})
	if code != http.StatusConflict {
		t.Fatalf("releasing a night the guard does not hold: %d %.300s", code, body)
	}
	// Without credentials, a page asks for them.
	if resp, err := http.Get(base + "/console/"); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /console/ without credentials: %v %v", resp, err)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("serve exited with %v after SIGTERM, want 0", err)
	}
}
