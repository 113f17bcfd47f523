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

	"github.com/iec-almaty/sisnotify/integrations/mail"
	"github.com/iec-almaty/sisnotify/integrations/mail/mailtest"
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

// A real student link through serve: serve's night emails the seeded
// entrants with links to its own address (SISNOTIFY_PUBLIC_URL); the link
// of a student's email opens their page with their open obligations; the
// page's done form, posted with its CSRF field, is recorded; a report of
// lost documents reaches the office as an urgent email through serve's own
// queue (its reportActor) within a minute.
func TestServeStudentLinkFromItsNight(t *testing.T) {
	testenv.Long(t, "starts a serve process and follows a student's link")
	const spec = "0 6 * * *"
	e := newServeEnv(t, spec)
	night := today(t, spec)
	e.seedEntrants(t, 3, night) // 6 student emails
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	base := "http://" + addr
	e.env = append(e.env, "SISNOTIFY_HTTP_ADDR="+addr, "SISNOTIFY_PUBLIC_URL="+base, "SISNOTIFY_LINK_KEYS="+strings.Repeat("k", 40))
	cmd := e.start(t)
	db := testenv.Database{URL: e.dbURL}.Open(t)
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, target string, form url.Values) (*http.Response, string) {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequest(method, target, body)
		if err != nil {
			t.Fatal(err)
		}
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, target, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	student := func(m mailtest.Message) bool {
		return m.Header(mail.HeaderAudience) == "student" && m.Header(mail.HeaderKind) == "notice"
	}
	waitFor(t, "the night's student emails", 90*time.Second, func() bool {
		n := 0
		for _, m := range e.smtp.Messages() {
			if student(m) {
				n++
			}
		}
		return n == 6
	})
	var m mailtest.Message
	for _, msg := range e.smtp.Messages() {
		if student(msg) {
			m = msg
			break
		}
	}
	id := m.Header(mail.HeaderStudent)
	link := regexp.MustCompile(regexp.QuoteMeta(base) + `/s/[A-Za-z0-9_-]+`).FindString(m.Text())
	if link == "" {
		t.Fatalf("student %s's email has no link to %s/s/:\n%s", id, base, m.Text())
	}
	var open []int64
	if err := db.Select(&open, `SELECT obligation_id FROM sisnotify.obligations WHERE student_id = $1 AND closed_at IS NULL ORDER BY obligation_id`, id); err != nil || len(open) == 0 {
		t.Fatalf("student %s's open obligations: %v, %v", id, open, err)
	}
	resp, page := do("GET", link, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET the email's link: %d", resp.StatusCode)
	}
	for _, o := range open {
		if !strings.Contains(page, fmt.Sprintf(`name="obligation" value="%d"`, o)) {
			t.Errorf("student %s's page does not show obligation %d", id, o)
		}
	}
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
	if csrf == nil {
		t.Fatal("no csrf field on the page")
	}
	resp, _ = do("POST", link, url.Values{"csrf": {csrf[1]}, "kind": {"done"}, "obligation": {fmt.Sprint(open[0])}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST done: %d", resp.StatusCode)
	}
	var reports int
	if err := db.Get(&reports, `SELECT count(*) FROM sisnotify.student_reports WHERE student_id = $1 AND kind = 'done' AND obligation_id = $2`, id, open[0]); err != nil || reports != 1 {
		t.Fatalf("%d done reports of obligation %d (%v), want 1", reports, open[0], err)
	}

	posted := time.Now()
	resp, _ = do("POST", link, url.Values{"csrf": {csrf[1]}, "kind": {"lost-documents"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST lost-documents: %d", resp.StatusCode)
	}
	waitFor(t, "the office's urgent document-loss email", time.Minute, func() bool {
		for _, m := range e.smtp.Messages() {
			if m.Header(mail.HeaderRule) == "document-loss" && m.Header(mail.HeaderAudience) == "office" && m.Header(mail.HeaderStudent) == id {
				return true
			}
		}
		return false
	})
	took := time.Since(posted)
	// The sink has the email before the worker has its server's reply,
	// and the outcome is recorded after that (with the other deliveries
	// of its batch): the notice reads sent a moment later.
	waitFor(t, "the document-loss notice recorded as sent", 10*time.Second, func() bool {
		var status string
		err := db.Get(&status, `SELECT status FROM sisnotify.notices WHERE student_id = $1 AND rule = 'document-loss' AND audience = 'office' AND channel = 'email'`, id)
		return err == nil && status == "sent"
	})
	figure(t, fmt.Sprintf("serve: a student's link from its night opens the page (%d obligations shown), done recorded; lost documents reached the office %s after the POST, through serve's queue",
		len(open), took.Round(time.Millisecond)))
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("serve exited with %v after SIGTERM, want 0", err)
	}
}
