package simulation

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/iec-almaty/sisnotify/console"
	"github.com/iec-almaty/sisnotify/integrations/mail"
	"github.com/iec-almaty/sisnotify/integrations/mail/mailtest"
	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/studentpage"
	"github.com/iec-almaty/sisnotify/templates"
)

// The students answer back: the links in the night's student emails lead
// to the real student page (served in-process, over the worker's
// database, at the morning after the night), and a few students use
// them: they report an obligation done, lost documents or a move. What the
// reports do (a pause, an obligation opened) shows in the nights that
// follow, under the same invariants.

// publicURL is the base of the links in the simulation's emails.
const publicURL = "https://notify.sim.example"

// linkKey signs them.
const linkKey = "simulation-link-key-0123456789abcdef0123"

// Shares of the student emails whose student reports something.
const (
	reportDone    = 0.04
	reportLost    = 0.003
	reportAddress = 0.004
)

var (
	linkRE     = regexp.MustCompile(regexp.QuoteMeta(publicURL) + `(/s/[A-Za-z0-9_-]+)`)
	csrfRE     = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	doneFormRE = regexp.MustCompile(`name="obligation" value="(\d+)"`)
)

// studentPage is the page the links open, and its clock.
type studentPage struct {
	srv *httptest.Server
	now time.Time
}

func (h *harness) startStudentPage() {
	keys, err := studentpage.NewKeys([]byte(linkKey))
	if err != nil {
		h.t.Fatal(err)
	}
	set, err := templates.New()
	if err != nil {
		h.t.Fatal(err)
	}
	almaty, err := time.LoadLocation("Asia/Almaty")
	if err != nil {
		h.t.Fatal(err)
	}
	p := &studentPage{}
	handler, err := studentpage.New(studentpage.Options{DB: h.db, Keys: keys, Templates: set,
		Office: templates.Office{University: "Simulated University", Name: "International Office", Address: "Room 112",
			Hours: "Mon-Fri 09:00-18:00", Phone: "+7 727 355 05 67", Email: "io@uni.example"},
		Location: almaty, Now: func() time.Time { return p.now }})
	if err != nil {
		h.t.Fatal(err)
	}
	p.srv = httptest.NewServer(handler)
	h.t.Cleanup(p.srv.Close)
	h.page = p
}

// answerBack lets the students who got an email tonight use its link, on
// the morning after the night.
func (h *harness) answerBack(night date.Date, mails []mailtest.Message) {
	almaty, _ := time.LoadLocation("Asia/Almaty")
	h.page.now = night.Time(almaty).Add(10 * time.Hour)
	for _, m := range mails {
		if m.Header(mail.HeaderAudience) != "student" {
			continue
		}
		link := linkRE.FindStringSubmatch(m.Text())
		if link == nil {
			continue
		}
		r := h.world.rng.Float64() // the world's stream: the faults' schedule stays the seed's
		var form url.Values
		switch {
		case r < reportDone:
			form = url.Values{"kind": {"done"}}
		case r < reportDone+reportLost:
			form = url.Values{"kind": {"lost-documents"}}
		case r < reportDone+reportLost+reportAddress:
			form = url.Values{"kind": {"address-changed"}, "moved_on": {night.AddDays(-1).String()}}
		default:
			continue
		}
		page, code := h.pageGet(link[1])
		if code != http.StatusOK {
			h.t.Fatalf("seed %d night %s: the link of an email of student %s: %d", h.cfg.seed, night, m.Header(mail.HeaderStudent), code)
		}
		csrf := csrfRE.FindStringSubmatch(page)
		if csrf == nil {
			h.t.Fatalf("seed %d night %s: the page of student %s has no form", h.cfg.seed, night, m.Header(mail.HeaderStudent))
		}
		if form.Get("kind") == "done" {
			ob := doneFormRE.FindStringSubmatch(page)
			if ob == nil {
				continue // nothing open any more
			}
			form.Set("obligation", ob[1])
		}
		form.Set("csrf", csrf[1])
		if code := h.pagePost(link[1], form); code != http.StatusSeeOther {
			h.t.Fatalf("seed %d night %s: student %s reporting %s: %d", h.cfg.seed, night, m.Header(mail.HeaderStudent), form.Get("kind"), code)
		}
		h.reports[form.Get("kind")]++
	}
}

func (h *harness) pageGet(path string) (string, int) {
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, h.page.srv.URL+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return string(b), resp.StatusCode
}

func (h *harness) pagePost(path string, form url.Values) int {
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.PostForm(h.page.srv.URL+path, form)
	if err != nil {
		h.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// The office at the console: each morning it decides the students' open
// done reports through the console's own forms (the break-glass login),
// confirming most (the obligation closes) and rejecting some (the
// reminders resume).
const (
	officeUser, officePass = "office", "simulation office password"
	reportConfirm          = 0.7
)

var consoleCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (h *harness) startConsole() {
	almaty, _ := time.LoadLocation("Asia/Almaty")
	c, err := console.New(console.Options{DB: h.db, StaffEmails: []string{"office@uni.example"},
		BreakGlassUser: officeUser, BreakGlassPassword: officePass, Lang: "en", Location: almaty,
		Now: func() time.Time { return h.page.now }})
	if err != nil {
		h.t.Fatal(err)
	}
	h.console = httptest.NewServer(c)
	h.t.Cleanup(h.console.Close)
}

// decideReports has the office confirm or reject every open done report.
func (h *harness) decideReports(night date.Date) {
	var open []struct {
		ID      int64  `db:"report_id"`
		Student string `db:"student_id"`
	}
	if err := h.db.Select(&open, `SELECT report_id, student_id FROM sisnotify.student_reports
		WHERE kind = 'done' AND state = 'open' ORDER BY report_id`); err != nil {
		h.t.Fatal(err)
	}
	for _, r := range open {
		page, code := h.consoleDo(http.MethodGet, "/console/students/"+r.Student, nil)
		csrf := consoleCSRF.FindStringSubmatch(page)
		if code != http.StatusOK || csrf == nil {
			h.t.Fatalf("seed %d night %s: the console's page of student %s: %d, form token found: %v", h.cfg.seed, night, r.Student, code, csrf != nil)
		}
		action := "reject"
		if h.world.rng.Float64() < reportConfirm {
			action = "confirm"
		}
		form := url.Values{"csrf": {csrf[1]}, "reason": {"checked by the simulated office"}}
		if _, code := h.consoleDo(http.MethodPost, fmt.Sprintf("/console/reports/%d/%s", r.ID, action), form); code != http.StatusSeeOther {
			h.t.Fatalf("seed %d night %s: %s report %d of student %s at the console: %d", h.cfg.seed, night, action, r.ID, r.Student, code)
		}
		h.reports[action+"ed"]++
	}
}

func (h *harness) consoleDo(method, path string, form url.Values) (string, int) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequestWithContext(context.Background(), method, h.console.URL+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.SetBasicAuth(officeUser, officePass)
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return string(b), resp.StatusCode
}
