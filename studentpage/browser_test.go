package studentpage

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/go-redis/redis_rate/v10"

	"github.com/iec-almaty/sisnotify/console"
	"github.com/iec-almaty/sisnotify/integrations/mail"
	"github.com/iec-almaty/sisnotify/integrations/mail/mailtest"
	"github.com/iec-almaty/sisnotify/integrations/sms"
	"github.com/iec-almaty/sisnotify/integrations/testenv"
	"github.com/iec-almaty/sisnotify/internal/browsertest"
	"github.com/iec-almaty/sisnotify/internal/nighttest"
	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/store"
	"github.com/iec-almaty/sisnotify/templates"
)

// The student page in a real browser: a student opens the link of a real
// email on a phone (390 px), switches the language and reports; the
// office decides the reports in the console, in a browser of its own, on
// the same server; the nights that follow are evaluated and delivered as
// the worker does, and every step is checked on what the browser shows
// and on what the database and the SMTP server then hold.

// The break-glass login of the rig's console (HTTP Basic).
const (
	bgUser = "office"
	bgPass = "correct horse battery staple"
	// bgActor is that login in the audit log and closed_by.
	bgActor = "break-glass:" + bgUser
)

// clock is the rig's "now", an input the test moves: the student page,
// the console and the deliveries read it, never the wall clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// set moves the clock to 10:00 in Almaty on day.
func (c *clock) set(day date.Date) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = day.Time(almaty).Add(10 * time.Hour)
}

// browserRig is the student page and the console on one HTTP server
// (the links in the emails point at it), the test's database and Redis,
// the SMTP server, and a headless Chromium.
type browserRig struct {
	*rig
	t     *testing.T
	clock *clock
	srv   *httptest.Server
	b     *browsertest.Browser
	links Linker
}

func newBrowserRig(t *testing.T, rate redis_rate.Limit) *browserRig {
	t.Helper()
	r := &browserRig{rig: newRig(t, rate), t: t, clock: &clock{}}
	r.clock.set(fixtureNight)
	r.h.opt.Now = r.clock.Now
	c, err := console.New(console.Options{DB: r.db, Redis: r.rdb, BreakGlassUser: bgUser, BreakGlassPassword: bgPass,
		Lang: "en", Location: almaty, Now: r.clock.Now, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(Path, r.h)
	mux.Handle(console.Path, c)
	r.srv = httptest.NewServer(mux)
	t.Cleanup(r.srv.Close)
	r.links = Linker{Base: r.srv.URL, Keys: r.keys}
	r.b = browsertest.Start(t, r.srv.URL)
	return r
}

// deliverer delivers as the worker does on day (06:30 in Almaty), with
// the student page's links.
func (r *browserRig) deliverer(day date.Date) *jobs.Deliverer {
	at := day.Time(almaty).Add(6*time.Hour + 30*time.Minute)
	return &jobs.Deliverer{DB: r.db, Mail: r.pool, SMS: sms.NewOutbox(r.t.TempDir()), Templates: r.set, Office: office,
		OfficeLang: "en", Links: r.links, Location: almaty, Now: func() time.Time { return at }}
}

// deliver delivers the pending notices that where (SQL on
// sisnotify.notices) selects, on day, and returns their ids.
func (r *browserRig) deliver(day date.Date, where string, args ...any) []int64 {
	r.t.Helper()
	var ids []int64
	if err := r.db.Select(&ids, `SELECT notice_id FROM sisnotify.notices WHERE status = 'pending' AND `+where+` ORDER BY notice_id`, args...); err != nil {
		r.t.Fatal(err)
	}
	d := r.deliverer(day)
	for _, id := range ids {
		if out, err := d.Deliver(context.Background(), id, false); err != nil || out != jobs.Sent {
			r.t.Fatalf("deliver notice %d on %s: %s, %v", id, day, out, err)
		}
	}
	return ids
}

// night evaluates the nights after the last one evaluated up to and with
// last, one by one, as the worker's nights do.
func (r *browserRig) night(last date.Date) {
	r.t.Helper()
	var seen string
	if err := r.db.Get(&seen, `SELECT max(last_seen_on)::text FROM sisnotify.obligations`); err != nil {
		r.t.Fatal(err)
	}
	for d := date.MustParse(seen).AddDays(1); d <= last; d = d.AddDays(1) {
		if err := nighttest.Evaluate(context.Background(), r.db, d); err != nil {
			r.t.Fatalf("evaluate %s: %v", d, err)
		}
	}
}

// mailTo waits for the messages to addr that match, at least n of them,
// and returns those there are.
func (r *browserRig) mailTo(addr string, n int, match func(mailtest.Message) bool) []mailtest.Message {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var out []mailtest.Message
		for _, m := range r.smtp.Messages() {
			if len(m.To) == 1 && m.To[0] == addr && match(m) {
				out = append(out, m)
			}
		}
		if len(out) >= n || time.Now().After(deadline) {
			return out
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// linkIn is the student page's link in a student email: the same in its
// text and HTML, on the rig's server.
func (r *browserRig) linkIn(m mailtest.Message) string {
	r.t.Helper()
	re := regexp.MustCompile(regexp.QuoteMeta(r.srv.URL) + `/s/[A-Za-z0-9_-]+`)
	text, html := re.FindString(m.Text()), re.FindString(m.HTML())
	if text == "" || text != html {
		r.t.Fatalf("the email's link: text %q, HTML %q", text, html)
	}
	return text
}

// emailOf is the student's email address in the snapshot.
func (r *browserRig) emailOf(student string) string {
	r.t.Helper()
	st, err := store.New(r.db).StudentPageStudentByID(context.Background(), student)
	if err != nil || st == nil || st.Email == "" {
		r.t.Fatalf("student %s: %+v, %v", student, st, err)
	}
	return st.Email
}

// office is the office at the console: a browser of its own that sends
// the break-glass login's credentials with every request.
func (r *browserRig) office(width int64) *browsertest.Person {
	r.t.Helper()
	p := r.b.Person("office", width)
	p.SetHeaders(map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(bgUser+":"+bgPass))})
	return p
}

func (r *browserRig) scalar(dst any, q string, args ...any) {
	r.t.Helper()
	if err := r.db.Get(dst, q, args...); err != nil {
		r.t.Fatalf("%s: %v", q, err)
	}
}

// doneForm is the CSS selector of the done form of obligation id.
func doneForm(id int64) string {
	return fmt.Sprintf(`form:has(input[name=obligation][value="%d"])`, id)
}

// nextStep finds, in a copy of the fixture whose nights go on without any
// report, the first student notice of a later night that follows an
// obligation whose student was emailed on the fixture's night: the
// obligation whose ladder a done report will pause.
func nextStep(t *testing.T, horizon int) (student string, obligation int64, rule string, level int, night date.Date) {
	t.Helper()
	db := testDB(t)
	for d := fixtureNight.AddDays(1); d <= fixtureNight.AddDays(horizon); d = d.AddDays(1) {
		if err := nighttest.Evaluate(context.Background(), db, d); err != nil {
			t.Fatal(err)
		}
	}
	var s struct {
		Student    string `db:"student_id"`
		Obligation int64  `db:"obligation_id"`
		Rule       string `db:"rule"`
		Level      int    `db:"level"`
		Night      string `db:"night"`
	}
	if err := db.Get(&s, `SELECT n.student_id, n.obligation_id, n.rule, n.level, n.night::text AS night FROM sisnotify.notices n
		WHERE n.audience = 'student' AND n.channel = 'email' AND n.night > $1
		  AND EXISTS (SELECT 1 FROM sisnotify.notices m WHERE m.obligation_id = n.obligation_id AND m.audience = 'student' AND m.channel = 'email' AND m.night = $1)
		ORDER BY n.night, n.notice_id LIMIT 1`, fixtureNight.String()); err != nil {
		t.Fatalf("no student step within %d nights of the fixture's that follows an email of its night: %v", horizon, err)
	}
	return s.Student, s.Obligation, s.Rule, s.Level, date.MustParse(s.Night)
}

// TestBrowserStudentDoneReports: a student opens the link of a real
// email, switches the language and reports an obligation done by keyboard
// (twice, from two tabs: recorded once); the next night sends them
// nothing for it and the office digest lists the report; the office
// confirms it in the console and the obligation closes. Another student's
// done report holds back the step that falls due during the pause, the
// office rejects it, and the night after sends that step.
func TestBrowserStudentDoneReports(t *testing.T) {
	testenv.Long(t, "drives the student page and the console in headless Chromium")
	ctx := context.Background()
	bStudent, bObligation, bRule, bLevel, bNight := nextStep(t, 20)
	t.Logf("without a report, obligation %d (%s) of student %s sends its student step %d on %s", bObligation, bRule, bStudent, bLevel, bNight)
	r := newBrowserRig(t, generous)
	start := time.Now()

	// a. The student of the fixture's first pending email (not B).
	var a struct {
		Notice     int64  `db:"notice_id"`
		Student    string `db:"student_id"`
		Obligation int64  `db:"obligation_id"`
		Rule       string `db:"rule"`
		Lang       string `db:"lang"`
	}
	r.scalar(&a, `SELECT n.notice_id, n.student_id, n.obligation_id, n.rule, coalesce(s.preferred_language, '') AS lang
		FROM sisnotify.notices n JOIN sisnotify.students s USING (student_id)
		WHERE n.audience = 'student' AND n.channel = 'email' AND n.status = 'pending' AND n.rule <> 'welcome'
		  AND s.passport_number IS NOT NULL AND n.student_id <> $1 ORDER BY n.notice_id LIMIT 1`, bStudent)
	email := r.emailOf(a.Student)
	// The night's deliveries to the student: every notice of theirs.
	sent := r.deliver(fixtureNight, `student_id = $1 AND audience = 'student'`, a.Student)
	msgs := r.mailTo(email, 1, func(m mailtest.Message) bool { return m.Header(mail.HeaderKind) == "notice" })
	if len(msgs) == 0 {
		t.Fatalf("no notice email to student %s", a.Student)
	}
	link := r.linkIn(msgs[0])
	t.Logf("student %s: %d notices delivered on %s, %d emails; the link opens %s/s/…", a.Student, len(sent), fixtureNight, len(msgs), r.srv.URL)

	student := r.b.Person("student", 390)
	if code := student.Open(link); code != 200 {
		t.Fatalf("the email's link: %d", code)
	}
	lang := templates.Lang(a.Lang)
	if got := student.Text("h1"); got != words[lang]["title"] {
		t.Errorf("the page's title %q, want the student's language %s: %q", got, lang, words[lang]["title"])
	}
	m := student.CheckA11y("the student page")
	if m.Lang != lang {
		t.Errorf("<html lang=%q>, want the student's %q", m.Lang, lang)
	}
	student.Screenshot("from the email")
	for _, l := range []string{"ru", "kk", "en"} {
		student.Do("choose "+l, chromedp.SetValue(chromedp.CSS("#lang"), l))
		if code := student.Click("form.lang button[type=submit]"); code != 200 || !strings.HasSuffix(student.At(), "?lang="+l) {
			t.Fatalf("switch to %s: %d at %s", l, code, student.At())
		}
		if got := student.Text("h1"); got != words[l]["title"] {
			t.Errorf("in %s the title is %q", l, got)
		}
		if m := student.CheckA11y("the page in " + l); m.Lang != l {
			t.Errorf("in %s: <html lang=%q>", l, m.Lang)
		}
		student.Screenshot("in " + l)
	}

	// b. Done, by keyboard: Tab to the obligation's button, Enter. The
	// same page in a second tab, opened before, sends it again.
	again := r.b.Person("student-again", 390)
	if code := again.Open(link + "?lang=en"); code != 200 || again.Count(doneForm(a.Obligation)) != 1 {
		t.Fatalf("the second tab: %d, %d done forms of obligation %d", code, again.Count(doneForm(a.Obligation)), a.Obligation)
	}
	tabs := 0
	// The obligation whose done button has the focus, "" when none has.
	const focused = `(() => { const f = document.activeElement && document.activeElement.closest('form'); const o = f && f.querySelector('input[name=obligation]');
		return document.activeElement.tagName === 'BUTTON' && o ? o.value : ''; })()`
	for ; browsertest.Eval[string](student, focused) != fmt.Sprint(a.Obligation); tabs++ {
		if tabs == 100 {
			t.Fatalf("100 tabs did not reach the done button of obligation %d", a.Obligation)
		}
		student.Do("tab", chromedp.KeyEvent("\t"))
	}
	mailsBefore := r.smtp.Count()
	if code := student.Load("press Enter", chromedp.KeyEvent("\r")); code != 200 || !strings.HasSuffix(student.At(), "?done=done&lang=en") {
		t.Fatalf("done by keyboard: %d at %s", code, student.At())
	}
	if got := student.Text("p.ok"); got != words["en"]["ok.done"] {
		t.Errorf("the confirmation on the page: %q", got)
	}
	if n := student.Count(doneForm(a.Obligation)); n != 0 || !strings.Contains(student.Text("main"), fmt.Sprintf(words["en"]["done.reported"], templates.FormatDate("en", fixtureNight))) {
		t.Errorf("after the report the page still offers the done form (%d) or does not say it was reported", n)
	}
	student.Screenshot("reported done")
	t.Logf("done by keyboard: %d tabs, Enter", tabs)
	if code := again.Click(doneForm(a.Obligation) + " button[type=submit]"); code != 200 || again.Text("p.ok") != words["en"]["ok.done"] {
		t.Fatalf("the second submission: %d, %q", code, again.Text("p.ok"))
	}
	confirmations := r.mailTo(email, 2, func(m mailtest.Message) bool { return m.Header(mail.HeaderKind) == "report" })
	var reports, audits int
	var reportID int64
	r.scalar(&reports, `SELECT count(*) FROM sisnotify.student_reports WHERE student_id = $1 AND kind = 'done' AND obligation_id = $2`, a.Student, a.Obligation)
	r.scalar(&audits, `SELECT count(*) FROM sisnotify.audit_log WHERE action = 'report-done' AND student_id = $1`, a.Student)
	r.scalar(&reportID, `SELECT report_id FROM sisnotify.student_reports WHERE student_id = $1 AND kind = 'done'`, a.Student)
	if reports != 1 || audits != 1 || len(confirmations) != 1 {
		t.Fatalf("submitted twice: %d reports, %d audits, %d confirmation emails; want 1 each", reports, audits, len(confirmations))
	}
	if c := confirmations[0]; c.Header(mail.HeaderStudent) != a.Student || c.Header("Subject") != words["en"]["mail.subject"] {
		t.Errorf("the confirmation: student %q, subject %q", c.Header(mail.HeaderStudent), c.Header("Subject"))
	}
	t.Logf("submitted twice (two tabs): report R%d recorded once, audited once, one confirmation email (%d emails since the first submit)", reportID, r.smtp.Count()-mailsBefore)

	// The next night: nothing to the student for the obligation; the
	// office digest lists the report.
	next := fixtureNight.AddDays(1)
	r.night(next)
	tonight := r.deliver(next, `student_id = $1 AND audience = 'student'`, a.Student)
	var forIt int
	r.scalar(&forIt, `SELECT count(*) FROM sisnotify.notices WHERE obligation_id = $1 AND audience = 'student' AND night > $2`, a.Obligation, fixtureNight.String())
	ofRule := r.mailTo(email, 0, func(m mailtest.Message) bool { return m.Header(mail.HeaderRule) == a.Rule })
	if forIt != 0 || len(ofRule) != 1 {
		t.Errorf("the night of %s: %d student notices of obligation %d; %d %s emails to the student in all, want the first night's 1", next, forIt, a.Obligation, len(ofRule), a.Rule)
	}
	dig := &jobs.Digest{DB: r.db, Mail: r.pool, Templates: r.set, Office: office, OfficeLang: "en", OfficeEmails: nighttest.OfficeEmails, Location: almaty}
	if _, err := dig.Run(ctx, next); err != nil {
		t.Fatal(err)
	}
	digests := r.mailTo(nighttest.OfficeEmails[0], 1, func(m mailtest.Message) bool { return m.Header(mail.HeaderKind) == "digest" })
	if len(digests) != 1 {
		t.Fatalf("%d office digests of %s", len(digests), next)
	}
	text := digests[0].Text()
	section := regexp.MustCompile(`(?s)== Reported by students: (\d+) ==(.*?)\n== `).FindStringSubmatch(text)
	if section == nil || !strings.Contains(section[2], a.Student+" / R"+fmt.Sprint(reportID)) || !strings.Contains(section[2], "says it is done") {
		t.Fatalf("the office digest of %s does not list R%d under what students reported:\n%s", next, reportID, text)
	}
	t.Logf("night %s: %d student notices delivered to %s, none of obligation %d; the office digest lists R%d under \"Reported by students\" (%s reports)", next, len(tonight), a.Student, a.Obligation, reportID, section[1])

	// c. The office confirms the report in the console; the obligation
	// closes.
	r.clock.set(next)
	office := r.office(1280)
	if code := office.Open("/console/students/" + a.Student); code != 200 || office.Count(fmt.Sprintf("#r%d", reportID)) != 1 {
		t.Fatalf("the console's student page: %d, report R%d shown %d times", code, reportID, office.Count(fmt.Sprintf("#r%d", reportID)))
	}
	office.CheckA11y("the console's student page")
	office.Screenshot("report to decide")
	const confirmWhy = "registration certificate seen at the desk"
	office.Do("type the reason", chromedp.SendKeys(chromedp.CSS(fmt.Sprintf("#confirm-reason-%d", reportID)), confirmWhy))
	if code := office.Click(fmt.Sprintf(`form[action="/console/reports/%d/confirm"] button[type=submit]`, reportID)); code != 200 || office.At() != "/console/students/"+a.Student+"?done=report-confirm" {
		t.Fatalf("confirm: %d at %s", code, office.At())
	}
	if office.Text("main .banner") == "" || office.Count(fmt.Sprintf("#r%d", reportID)) != 0 || !strings.Contains(office.Text(fmt.Sprintf("#o%d", a.Obligation)), "closed") {
		t.Errorf("after the confirm the console shows: banner %q, the report %d times, the obligation %q", office.Text("main .banner"), office.Count(fmt.Sprintf("#r%d", reportID)), office.Text(fmt.Sprintf("#o%d", a.Obligation)))
	}
	office.Screenshot("confirmed")
	var closed struct {
		On     string `db:"closed_on"`
		Reason string `db:"close_reason"`
		By     string `db:"closed_by"`
		State  string `db:"state"`
	}
	r.scalar(&closed, `SELECT o.closed_on::text AS closed_on, o.close_reason, o.closed_by, r.state FROM sisnotify.obligations o
		JOIN sisnotify.student_reports r ON r.obligation_id = o.obligation_id WHERE o.obligation_id = $1 AND o.closed_at IS NOT NULL`, a.Obligation)
	if closed.On != next.String() || closed.Reason != store.CloseOffice || closed.By != bgActor || closed.State != "confirmed" {
		t.Fatalf("obligation %d after the confirm: %+v", a.Obligation, closed)
	}
	if code := student.Open(link + "?lang=en"); code != 200 || student.Count(doneForm(a.Obligation)) != 0 || strings.Contains(student.Text("main"), "You reported this done") {
		t.Errorf("the student's page after the confirm: %d, still shows obligation %d", code, a.Obligation)
	}
	t.Logf("the office confirmed R%d in the console: obligation %d closed on %s (%s, by %s), gone from the student's page", reportID, a.Obligation, closed.On, closed.Reason, closed.By)

	// d. Student B reports the obligation whose step falls due the next
	// night, the night holds it back, the office rejects the report, and
	// the night after sends it.
	bEmail := r.emailOf(bStudent)
	r.deliver(fixtureNight, `obligation_id = $1 AND audience = 'student' AND channel = 'email' AND night = $2`, bObligation, fixtureNight.String())
	bMsgs := r.mailTo(bEmail, 1, func(m mailtest.Message) bool { return m.Header(mail.HeaderRule) == bRule })
	if len(bMsgs) == 0 {
		t.Fatalf("no %s email to student %s", bRule, bStudent)
	}
	bLink := r.linkIn(bMsgs[0])
	reportDay := bNight.AddDays(-1)
	r.night(reportDay)
	r.clock.set(reportDay)
	sb := r.b.Person("student-b", 390)
	if code := sb.Open(bLink + "?lang=en"); code != 200 {
		t.Fatalf("student B's link on %s: %d", reportDay, code)
	}
	if code := sb.Click(doneForm(bObligation) + " button[type=submit]"); code != 200 || sb.Text("p.ok") != words["en"]["ok.done"] {
		t.Fatalf("student B's done: %d, %q", code, sb.Text("p.ok"))
	}
	var bReport int64
	r.scalar(&bReport, `SELECT report_id FROM sisnotify.student_reports WHERE student_id = $1 AND kind = 'done' AND obligation_id = $2 AND reported_on = $3`, bStudent, bObligation, reportDay.String())
	r.night(bNight)
	var held int
	r.scalar(&held, `SELECT count(*) FROM sisnotify.notices WHERE obligation_id = $1 AND audience = 'student' AND night > $2`, bObligation, fixtureNight.String())
	if held != 0 {
		t.Fatalf("the night of %s made %d student notices of obligation %d despite the open report", bNight, held, bObligation)
	}
	r.clock.set(bNight)
	if code := office.Open("/console/students/" + bStudent); code != 200 {
		t.Fatalf("the console's page of student %s: %d", bStudent, code)
	}
	office.Do("type the reason", chromedp.SendKeys(chromedp.CSS(fmt.Sprintf("#reject-reason-%d", bReport)), "not in the SIS, and no paper shown"))
	if code := office.Click(fmt.Sprintf(`form[action="/console/reports/%d/reject"] button[type=submit]`, bReport)); code != 200 || office.At() != "/console/students/"+bStudent+"?done=report-reject" {
		t.Fatalf("reject: %d at %s", code, office.At())
	}
	office.Screenshot("rejected")
	var state string
	r.scalar(&state, `SELECT state || ':' || decided_by FROM sisnotify.student_reports WHERE report_id = $1`, bReport)
	if state != "rejected:"+bgActor {
		t.Fatalf("report R%d after the reject: %s", bReport, state)
	}
	after := bNight.AddDays(1)
	r.night(after)
	resumed := r.deliver(after, `obligation_id = $1 AND audience = 'student' AND night = $2`, bObligation, after.String())
	got := r.mailTo(bEmail, 2, func(m mailtest.Message) bool { return m.Header(mail.HeaderRule) == bRule })
	if len(resumed) == 0 || len(got) < 2 || got[len(got)-1].Header(mail.HeaderLevel) != fmt.Sprint(bLevel) {
		t.Fatalf("after the reject, night %s: %d student notices of obligation %d delivered, %d %s emails to student B (last at level %q, want %d)",
			after, len(resumed), bObligation, len(got), bRule, got[len(got)-1].Header(mail.HeaderLevel), bLevel)
	}
	t.Logf("student %s reported obligation %d done on %s; the night of %s held its step %d back; rejected on %s; the night of %s sent it (%d notices, the email at level %s)",
		bStudent, bObligation, reportDay, bNight, bLevel, bNight, after, len(resumed), got[len(got)-1].Header(mail.HeaderLevel))
	t.Logf("%d screenshots, %s in all", r.b.Shots(), time.Since(start).Round(time.Millisecond))
}

// TestBrowserStudentReportsActAtOnce: lost documents reach the office
// while the student is on the page (the office's urgent email within a
// minute of the click), and a reported move opens the address
// registration at once; the page shows it after a reload.
func TestBrowserStudentReportsActAtOnce(t *testing.T) {
	testenv.Long(t, "drives the student page in headless Chromium")
	r := newBrowserRig(t, generous)
	r.h.opt.Acted = deliverAtOnce{db: r.db, d: r.deliverer(fixtureNight)}
	id, student := studentEmailNotice(t, r.db)
	r.deliver(fixtureNight, `notice_id = $1`, id)
	msgs := r.mailTo(r.emailOf(student), 1, func(m mailtest.Message) bool { return m.Header(mail.HeaderKind) == "notice" })
	if len(msgs) != 1 {
		t.Fatalf("%d notice emails to student %s", len(msgs), student)
	}
	link := r.linkIn(msgs[0]) + "?lang=en"
	p := r.b.Person("student", 390)
	if code := p.Open(link); code != 200 {
		t.Fatalf("the link: %d", code)
	}
	items := p.Count("section.item form input[name=obligation]")

	// e. Lost documents.
	clicked := time.Now()
	if code := p.Click(`form:has(input[name=kind][value=lost-documents]) button[type=submit]`); code != 200 || !strings.HasSuffix(p.At(), "?done=lost-documents&lang=en") {
		t.Fatalf("lost documents: %d at %s", code, p.At())
	}
	if got := p.Text("p.ok"); got != words["en"]["ok.lost-documents"] {
		t.Errorf("the confirmation on the page: %q", got)
	}
	p.Screenshot("lost documents")
	var urgent []mailtest.Message
	for time.Since(clicked) < time.Minute {
		urgent = urgent[:0]
		for _, m := range r.smtp.Messages() {
			if m.Header(mail.HeaderRule) == "document-loss" && m.Header(mail.HeaderAudience) == "office" && m.Header(mail.HeaderStudent) == student {
				urgent = append(urgent, m)
			}
		}
		if len(urgent) > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(clicked)
	if len(urgent) != 1 || took >= time.Minute {
		t.Fatalf("%d urgent office emails with %s: document-loss within %s of the click, want 1 within a minute", len(urgent), mail.HeaderRule, took.Round(time.Millisecond))
	}
	t.Logf("lost documents: the office's urgent email (%s: document-loss) arrived %s after the click", mail.HeaderRule, took.Round(time.Millisecond))

	// f. A move, with its date.
	moved := fixtureNight.AddDays(-10)
	p.Do("type the date", chromedp.SendKeys(chromedp.CSS("#moved_on"), moved.Time(time.UTC).Format("01022006")))
	if v := browsertest.Eval[string](p, `document.querySelector('#moved_on').value`); v != moved.String() {
		t.Logf("the date field read the typed keys as %q: set by the picker's way", v)
		p.Do("pick the date", chromedp.SetValue(chromedp.CSS("#moved_on"), moved.String()))
	}
	if code := p.Click(`form:has(input[name=kind][value=address-changed]) button[type=submit]`); code != 200 || !strings.HasSuffix(p.At(), "?done=address-changed&lang=en") {
		t.Fatalf("the move: %d at %s", code, p.At())
	}
	if got := p.Text("p.ok"); got != words["en"]["ok.address-changed"] {
		t.Errorf("the confirmation on the page: %q", got)
	}
	var ob int64
	r.scalar(&ob, `SELECT obligation_id FROM sisnotify.obligations WHERE student_id = $1 AND rule = 'address-registration' AND anchor = $2 AND closed_at IS NULL`, student, moved.String())
	if code := p.Open(link); code != 200 || p.Count(doneForm(ob)) != 1 {
		t.Fatalf("after a reload the page does not show the address registration (obligation %d): %d", ob, code)
	}
	title := browsertest.Eval[string](p, fmt.Sprintf(`document.querySelector('%s').closest('section').querySelector('h3').textContent`, doneForm(ob)))
	now := p.Count("section.item form input[name=obligation]")
	p.Screenshot("moved")
	if now != items+2 {
		t.Errorf("%d obligations on the page after the two reports, %d before; want the document loss and the registration more", now, items)
	}
	t.Logf("moved on %s: obligation %d (address-registration) opened at once and shown after a reload as %q; %d obligations on the page, %d before", moved, ob, title, now, items)
}

// TestBrowserStudentLinksRefused: a tampered token, an expired one and
// one signed by a retired key get the same "link not valid" page, byte
// for byte; a form whose CSRF field was removed is refused and records
// nothing.
func TestBrowserStudentLinksRefused(t *testing.T) {
	testenv.Long(t, "drives the student page in headless Chromium")
	r := newBrowserRig(t, generous)
	id, student := studentEmailNotice(t, r.db)
	good := r.keys.StudentLink(student, id, fixtureNight)
	// The payload's last byte (of the student id) changed: the MAC no
	// longer matches.
	raw, err := base64.RawURLEncoding.DecodeString(good)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)-macLen-1] ^= 1
	tampered := base64.RawURLEncoding.EncodeToString(raw)
	// Signed with the link's key at a clock 61 days back: it expired the
	// day before the page's today.
	expired := r.keys.StudentLink(student, id, fixtureNight.AddDays(-61))
	retired := testKeys(t, keyC).StudentLink(student, id, fixtureNight)
	p := r.b.Person("visitor", 390)
	if code := p.Open(Path + good); code != 200 {
		t.Fatalf("the good link: %d", code)
	}
	bodies := map[string]string{}
	for _, c := range []struct{ name, token string }{{"tampered", tampered}, {"expired", expired}, {"retired key", retired}} {
		if code := p.Open(Path + c.token); code != http.StatusNotFound || p.Text("h1") != "Link not valid" {
			t.Errorf("%s: %d, %q", c.name, code, p.Text("h1"))
		}
		bodies[c.name] = p.HTML()
	}
	p.CheckA11y("link not valid")
	p.Screenshot("link not valid")
	if bodies["tampered"] != bodies["expired"] || bodies["tampered"] != bodies["retired key"] {
		t.Fatalf("the three answers differ:\n%v", bodies)
	}
	t.Logf("tampered, expired and retired-key links: 404, one page of %d bytes as the browser holds it", len(bodies["tampered"]))

	// h. The lost-documents form without its CSRF field.
	if code := p.Open(Path + good + "?lang=en"); code != 200 {
		t.Fatal(code)
	}
	form := `form:has(input[name=kind][value=lost-documents])`
	p.Do("drop the token", chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector('%s input[name=csrf]').remove()`, form)))
	if code := p.Click(form + " button[type=submit]"); code != http.StatusForbidden || p.Text("h1") != words["en"]["refused.title"] {
		t.Fatalf("a form without its token: %d, %q", code, p.Text("h1"))
	}
	p.Screenshot("no token")
	var rows int
	r.scalar(&rows, `SELECT (SELECT count(*) FROM sisnotify.student_reports) + (SELECT count(*) FROM sisnotify.audit_log)`)
	if rows != 0 || r.smtp.Count() != 0 {
		t.Fatalf("a form without its token: %d rows recorded, %d emails", rows, r.smtp.Count())
	}
	t.Logf("a form without its CSRF field: 403 %q, nothing recorded, no email", words["en"]["refused.title"])
}

// TestBrowserStudentPageThrottled: one client floods the page at about
// 100 requests a second through the reverse proxy (127.0.0.2, which
// appends the client's address, 198.51.100.7, to X-Forwarded-For), each
// request with a different address of its own forged before it, while
// the student's browser (127.0.0.1) keeps loading the page: the flood
// gets 429s once its burst is spent, the browser none.
func TestBrowserStudentPageThrottled(t *testing.T) {
	testenv.Long(t, "drives the student page in headless Chromium")
	r := newBrowserRig(t, DefaultRate)
	id, student := studentEmailNotice(t, r.db)
	target := r.srv.URL + Path + r.keys.StudentLink(student, id, fixtureNight)
	p := r.b.Person("student", 390)
	if code := p.Open(target); code != 200 {
		t.Fatalf("the link: %d", code)
	}
	flood := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext,
	}}
	var mu sync.Mutex
	codes := map[int]int{} // status: how many; -1: errors, -2: a 429 without Retry-After
	var flooded sync.WaitGroup
	// The flood lasts 2.5 s, and longer if the browser has not loaded
	// the page minLoads times by then (a busy machine): each of its
	// loads starts while the flood runs. hardStop bounds both.
	const minLoads = 4
	var browserLoads atomic.Int32
	start := time.Now()
	stop, hardStop := start.Add(2500*time.Millisecond), start.Add(20*time.Second)
	flooding := func() bool {
		now := time.Now()
		return now.Before(stop) || (browserLoads.Load() < minLoads && now.Before(hardStop))
	}
	var floodFor time.Duration
	tick := time.NewTicker(10 * time.Millisecond)
	flooded.Go(func() {
		defer tick.Stop()
		defer func() { floodFor = time.Since(start) }()
		for n := 0; flooding(); n++ {
			<-tick.C
			flooded.Go(func() {
				req, _ := http.NewRequest("GET", target, nil)
				req.Header.Set("X-Forwarded-For", fmt.Sprintf("203.0.113.%d, 198.51.100.7", n%250+1))
				resp, err := flood.Do(req)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					codes[-1]++
					return
				}
				resp.Body.Close()
				codes[resp.StatusCode]++
				if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
					codes[-2]++
				}
			})
		}
	})
	var loads []int64
	for flooding() {
		loads = append(loads, p.Load("reload", chromedp.Reload()))
		browserLoads.Store(int32(len(loads)))
		time.Sleep(100 * time.Millisecond)
	}
	flooded.Wait()
	p.Screenshot("served during the flood")
	browserOK := 0
	for _, c := range loads {
		if c == 200 {
			browserOK++
		}
	}
	total := codes[-1]
	for c, n := range codes {
		if c > 0 {
			total += n
		}
	}
	t.Logf("flood of 198.51.100.7 through the proxy at 127.0.0.2 for %.1f s: %d requests (%.0f/s): %d served, %d throttled, %d errors; the browser at 127.0.0.1 meanwhile: %d loads, %d served",
		floodFor.Seconds(), total, float64(total)/floodFor.Seconds(), codes[200], codes[429], codes[-1], len(loads), browserOK)
	if codes[-1] != 0 || codes[-2] != 0 || codes[200]+codes[429] != total {
		t.Errorf("the flood: %v (-1: errors, -2: a 429 without Retry-After)", codes)
	}
	// The burst (30) and the rate's half a request a second: about 31 in
	// 2.5 s, and one more for every 2 s the flood went on.
	perSecond := float64(DefaultRate.Rate) / DefaultRate.Period.Seconds()
	most := DefaultRate.Burst + 3 + int(math.Ceil(max(0, floodFor.Seconds()-2.5)*perSecond))
	if total < 125 || codes[200] < DefaultRate.Burst || codes[200] > most || codes[429] != total-codes[200] {
		t.Errorf("the flood of %d requests: %d served, %d throttled; want the burst of %d served (at most %d), the rest throttled", total, codes[200], codes[429], DefaultRate.Burst, most)
	}
	if browserOK != len(loads) || len(loads) < minLoads {
		t.Errorf("the browser during the flood: %d of %d loads served: %v", browserOK, len(loads), loads)
	}
}
