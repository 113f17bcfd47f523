package console

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/hibiken/asynq"

	"github.com/iec-almaty/sisnotify/integrations/mail/mailtest"
	"github.com/iec-almaty/sisnotify/integrations/testenv"
	"github.com/iec-almaty/sisnotify/internal/browsertest"
	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/templates"
	"github.com/iec-almaty/sisnotify/worker"
)

// The console's acceptance in a real browser: a person at the office, on
// a phone's width (390 px), does the day's work through the pages only —
// signs in by the SSO, finds an overdue student, closes an obligation by
// keyboard, snoozes another, releases a held night — and the test checks
// what the pages show and what the database, the mail and the queue then
// hold; a dean, a forger and a stranger are refused what is not theirs.

// browserRow is a row of Today as the page shows it.
type browserRow struct {
	Student string `json:"student"`
	Faculty string `json:"faculty"`
	Overdue string `json:"overdue"`
}

// browserRows reads Today's open rows (not the recently closed).
const browserRows = `[...document.querySelectorAll('section.section:not(.section-closed) table.rows tbody tr')].map(tr => ({
	student: tr.cells[0].textContent.trim(), faculty: tr.cells[2].textContent.trim(), overdue: tr.cells[6].textContent.trim()}))`

// TestBrowserOfficeDay: the office's day in the browser, steps 1–5 and 8
// of the console's acceptance, and the form without its CSRF token.
func TestBrowserOfficeDay(t *testing.T) {
	testenv.Long(t, "drives the console in headless Chromium")
	r := newChromeRig(t)
	db, ctx := r.e.db, context.Background()
	start := time.Now()
	step := func(name string) func() {
		s := time.Now()
		return func() { t.Logf("step %q: %s", name, time.Since(s).Round(time.Millisecond)) }
	}

	// The obligation the office will snooze: one with a student email
	// notice waiting. Every other email notice of the fixture's night goes
	// out now, so that the student pages show notices sent.
	var snz struct {
		Obligation int64  `db:"obligation_id"`
		Student    string `db:"student_id"`
		Recipient  string `db:"recipient"`
	}
	if err := db.Get(&snz, `SELECT obligation_id, student_id, recipient FROM sisnotify.notices
		WHERE audience = 'student' AND channel = 'email' AND status = 'pending' ORDER BY notice_id LIMIT 1`); err != nil {
		t.Fatal(err)
	}
	var early []int64
	if err := db.Select(&early, `SELECT notice_id FROM sisnotify.notices WHERE channel = 'email' AND status = 'pending'
		AND NOT (obligation_id = $1 AND audience = 'student') ORDER BY notice_id`, snz.Obligation); err != nil {
		t.Fatal(err)
	}
	msrv, pool := actionMail(t)
	morning := actionDeliverer(t, db, pool, actionNow)
	for _, id := range early {
		if out, err := morning.Deliver(ctx, id, false); err != nil || out != jobs.Sent {
			t.Fatalf("deliver notice %d: %s, %v", id, out, err)
		}
	}
	t.Logf("fixture: %d email notices delivered before the office's day (%d messages); obligation %d of student %s kept waiting to snooze", len(early), msrv.Count(), snz.Obligation, snz.Student)

	office := r.person("office", 390)

	// 1. Sign in through the SSO: the sign-in page's button, the
	// provider, the callback, Today.
	done := step("sign in")
	if code := office.signIn(authStaff); code != 200 || office.At() != "/console/" {
		t.Fatalf("after sign-in: %d at %s, want 200 at /console/", code, office.At())
	}
	if got := office.Text("h1"); !strings.HasPrefix(got, browserEN("page.today.title")+" · 2026-11-25") {
		t.Fatalf("Today's title %q", got)
	}
	if n := r.e.sessions(); n != 1 {
		t.Fatalf("%d sessions after sign-in, want 1", n)
	}
	if a := r.e.audits(); len(a) != 1 || a[0] != "sign-in office@uni.example office sso" {
		t.Fatalf("audit after sign-in: %q", a)
	}
	office.Screenshot("today")
	office.CheckA11y("Today")
	allRows := browsertest.Eval[[]browserRow](office.Person, browserRows)
	done()

	// 2. The overdue filter, an overdue student, their page with the
	// notices sent.
	done = step("find an overdue student")
	office.Do("tick overdue", chromedp.Click(chromedp.CSS("#f-overdue")))
	if code := office.Click(`form.filters button[type=submit]`); code != 200 || office.At() != "/console/?rule=&level=&faculty=&overdue=1" {
		t.Fatalf("the overdue filter: %d at %s", code, office.At())
	}
	rows := browsertest.Eval[[]browserRow](office.Person, browserRows)
	var student string
	for _, row := range rows {
		if days, err := strconv.Atoi(strings.ReplaceAll(row.Overdue, ",", "")); err != nil || days <= 0 {
			t.Errorf("overdue filter shows a row not overdue: %+v", row)
		}
		if student == "" && row.Student != snz.Student {
			student = row.Student
		}
	}
	var overdueInDB int
	if err := db.Get(&overdueInDB, `SELECT count(*) FROM sisnotify.obligations WHERE closed_at IS NULL AND due_on < '2026-11-25'`); err != nil {
		t.Fatal(err)
	}
	t.Logf("Today: %d open rows; filtered on overdue: %d rows (the database: %d open obligations past due)", len(allRows), len(rows), overdueInDB)
	if len(rows) != overdueInDB || len(rows) >= len(allRows) || student == "" {
		t.Fatalf("overdue rows %d, database %d, all rows %d, a student to open %q", len(rows), overdueInDB, len(allRows), student)
	}
	office.Screenshot("today overdue")
	if code := office.Click(fmt.Sprintf(`table.rows a[href="/console/students/%s"]`, student)); code != 200 || office.At() != "/console/students/"+student {
		t.Fatalf("open the student: %d at %s", code, office.At())
	}
	shown := browsertest.Eval[[]shownNotice](office.Person, `[...document.querySelectorAll('tr[id^="n"]')].map(tr => {
		const s = tr.querySelector('.status'); return {id: tr.id.slice(1), class: s.className, text: s.textContent.trim()}; })`)
	var inDB []struct {
		ID     string `db:"id"`
		Status string `db:"status"`
	}
	if err := db.Select(&inDB, `SELECT notice_id::text AS id, status FROM sisnotify.notices WHERE student_id = $1`, student); err != nil {
		t.Fatal(err)
	}
	byID := map[string]string{}
	for _, n := range inDB {
		byID[n.ID] = n.Status
	}
	sent := 0
	for _, n := range shown {
		want := byID[n.ID]
		if n.status() != want || n.Text != browserEN("page.status."+want) {
			t.Errorf("notice %s shown as %q (%s), the database says %q", n.ID, n.Text, n.Class, want)
		}
		if want == "sent" {
			sent++
		}
	}
	if len(shown) != len(inDB) || sent == 0 {
		t.Fatalf("student %s: %d notices shown, %d in the database, %d shown sent", student, len(shown), len(inDB), sent)
	}
	t.Logf("student %s: %d notices shown, %d sent, statuses as in the database", student, len(shown), sent)
	office.Screenshot("student")
	office.CheckA11y("the student page")
	done()

	// 3. Close an obligation by keyboard only: Tab to its reason, type,
	// Enter. Then the next night, and the office digest.
	done = step("close by keyboard")
	closeID := browsertest.Eval[string](office.Person, `(() => { const f = document.querySelector('form[action$="/close"]'); return f ? f.action.split('/').slice(-2)[0] : ''; })()`)
	if closeID == "" {
		t.Fatalf("student %s: no obligation to close on the page", student)
	}
	var noticesBefore int
	if err := db.Get(&noticesBefore, `SELECT count(*) FROM sisnotify.notices WHERE obligation_id = $1`, closeID); err != nil {
		t.Fatal(err)
	}
	tabs := 0
	for ; browsertest.Eval[string](office.Person, `document.activeElement ? document.activeElement.id : ''`) != "close-reason-"+closeID; tabs++ {
		if tabs == 200 {
			t.Fatalf("200 tabs did not reach the close reason of obligation %s", closeID)
		}
		office.Do("tab", chromedp.KeyEvent("\t"))
	}
	const reason = "registered at the migration service on paper; SIS entry next week"
	office.Do("type the reason", chromedp.KeyEvent(reason))
	if code := office.Load("press Enter", chromedp.KeyEvent("\r")); code != 200 || office.At() != "/console/students/"+student+"?done=close" {
		t.Fatalf("close by keyboard: %d at %s", code, office.At())
	}
	if got := office.Text("main .banner"); got != browserEN("page.done.close") {
		t.Fatalf("close banner %q", got)
	}
	t.Logf("obligation %s closed by keyboard: %d tabs, %d characters typed, Enter", closeID, tabs, len(reason))
	var closed struct {
		Reason string `db:"close_reason"`
		By     string `db:"closed_by"`
		Audit  string `db:"audit"`
	}
	if err := db.Get(&closed, `SELECT close_reason, closed_by, (SELECT reason FROM sisnotify.audit_log a WHERE a.action = 'close' AND a.obligation_id = o.obligation_id) AS audit
		FROM sisnotify.obligations o WHERE obligation_id = $1 AND closed_at IS NOT NULL`, closeID); err != nil {
		t.Fatalf("obligation %s after the close: %v", closeID, err)
	}
	if closed.Reason != closeOffice || closed.By != authStaff || closed.Audit != reason {
		t.Fatalf("obligation %s after the close: %+v", closeID, closed)
	}
	if !strings.Contains(office.Text("#o"+closeID), browserEN("page.state.closed")) || !strings.Contains(office.Text("main"), reason) {
		t.Errorf("the student page does not show the closure and its reason")
	}
	office.Screenshot("closed")

	actionNextNight(t, db, date.MustParse("2026-11-26"))
	var after struct {
		Notices int `db:"notices"`
		Open    int `db:"open"`
	}
	if err := db.Get(&after, `SELECT (SELECT count(*) FROM sisnotify.notices n WHERE n.obligation_id = o.obligation_id) AS notices,
		(SELECT count(*) FROM sisnotify.obligations p WHERE p.rule = o.rule AND p.subject_id = o.subject_id AND p.anchor = o.anchor AND p.closed_at IS NULL) AS open
		FROM sisnotify.obligations o WHERE o.obligation_id = $1`, closeID); err != nil {
		t.Fatal(err)
	}
	if after.Notices != noticesBefore || after.Open != 0 {
		t.Fatalf("after the next night: obligation %s has %d notices (was %d), %d open again", closeID, after.Notices, noticesBefore, after.Open)
	}
	dsrv, dpool := actionMail(t)
	set, err := templates.New()
	if err != nil {
		t.Fatal(err)
	}
	dig := &jobs.Digest{DB: db, Mail: dpool, Templates: set, OfficeLang: "en", OfficeEmails: []string{authStaff}, Location: actionZone}
	if _, err := dig.Run(ctx, date.MustParse("2026-11-26")); err != nil {
		t.Fatal(err)
	}
	var digest string
	for _, m := range dsrv.Messages() {
		if len(m.To) == 1 && m.To[0] == authStaff && m.Header("X-Sisnotify-Kind") == "digest" {
			digest = m.Text()
		}
	}
	for _, want := range []string{"== Closed by the office: 1 ==", student, "by the office (" + authStaff + "): " + reason} {
		if !strings.Contains(digest, want) {
			t.Errorf("the office digest of 2026-11-26 lacks %q:\n%s", want, digest)
		}
	}
	t.Logf("next night 2026-11-26: obligation %s keeps its %d notices, none new; the office digest (%d messages sent) lists the closure", closeID, noticesBefore, dsrv.Count())
	done()

	// 4. Snooze the other obligation until a date: its student notices are
	// held, then delivered on the date.
	done = step("snooze")
	if code := office.Click(`nav a[href="/console/"]`); code != 200 {
		t.Fatalf("back to Today: %d", code)
	}
	if code := office.Click(fmt.Sprintf(`table.rows a[href="/console/students/%s"]`, snz.Student)); code != 200 || office.At() != "/console/students/"+snz.Student {
		t.Fatalf("open student %s: %d at %s", snz.Student, code, office.At())
	}
	until := fmt.Sprintf("#snooze-until-%d", snz.Obligation)
	// A person types the date into the date field (month, day, year in
	// the en-US browser); when the browser reads keys otherwise, the
	// field is set as a date picker would.
	office.Do("type the date", chromedp.SendKeys(chromedp.CSS(until), "12012026"))
	if v := browsertest.Eval[string](office.Person, fmt.Sprintf(`document.querySelector(%q).value`, until)); v != "2026-12-01" {
		t.Logf("the date field read the typed keys as %q: set by the picker's way", v)
		office.Do("pick the date", chromedp.SetValue(chromedp.CSS(until), "2026-12-01"))
	}
	office.Do("type the reason", chromedp.SendKeys(chromedp.CSS(fmt.Sprintf("#snooze-reason-%d", snz.Obligation)), "the student is in hospital"))
	if code := office.Click(fmt.Sprintf(`form[action="/console/obligations/%d/snooze"] button[type=submit]`, snz.Obligation)); code != 200 || office.At() != "/console/students/"+snz.Student+"?done=snooze" {
		t.Fatalf("snooze: %d at %s", code, office.At())
	}
	if got := office.Text("main .banner"); got != browserEN("page.done.snooze") {
		t.Fatalf("snooze banner %q", got)
	}
	if got := office.Text(fmt.Sprintf("#o%d", snz.Obligation)); !strings.Contains(got, "2026-12-01 ("+authStaff+")") {
		t.Errorf("the page does not show the snooze: %q", got)
	}
	office.Screenshot("snoozed")
	var held []struct {
		ID        int64     `db:"notice_id"`
		NotBefore time.Time `db:"not_before"`
	}
	if err := db.Select(&held, `SELECT notice_id, not_before FROM sisnotify.notices
		WHERE obligation_id = $1 AND audience = 'student' AND channel = 'email' AND status = 'pending' ORDER BY notice_id`, snz.Obligation); err != nil {
		t.Fatal(err)
	}
	if len(held) == 0 {
		t.Fatalf("obligation %d has no pending student notice after the snooze", snz.Obligation)
	}
	onDate := time.Date(2026, 12, 1, 0, 0, 0, 0, actionZone)
	toStudent := func(srv *mailtest.Server) int {
		n := 0
		for _, m := range srv.Messages() {
			if len(m.To) == 1 && m.To[0] == snz.Recipient {
				n++
			}
		}
		return n
	}
	ssrv, spool := actionMail(t)
	for _, h := range held {
		if !h.NotBefore.Equal(onDate) {
			t.Errorf("notice %d held until %s, want %s", h.ID, h.NotBefore, onDate)
		}
		// The afternoon after the snooze, and the eve of the date: held.
		for _, now := range []time.Time{actionNow, onDate.Add(-time.Minute)} {
			if out, err := actionDeliverer(t, db, spool, now).Deliver(ctx, h.ID, false); err != nil || out != jobs.Skipped {
				t.Fatalf("notice %d at %s: %s, %v; want skipped", h.ID, now, out, err)
			}
		}
	}
	if n := toStudent(ssrv); n != 0 || ssrv.Count() != 0 {
		t.Fatalf("%d messages sent while snoozed, %d to the student", ssrv.Count(), n)
	}
	for _, h := range held {
		if out, err := actionDeliverer(t, db, spool, onDate.Add(30*time.Minute)).Deliver(ctx, h.ID, false); err != nil || out != jobs.Sent {
			t.Fatalf("notice %d on the date: %s, %v; want sent", h.ID, out, err)
		}
	}
	if n := toStudent(ssrv); n != len(held) {
		t.Fatalf("on the date the student got %d messages, want %d", n, len(held))
	}
	t.Logf("snooze until 2026-12-01: %d student notices held (nothing sent at 15:00 on the 25th or at 23:59 on the eve), delivered at 00:30 on the date", len(held))
	done()

	// 5. Release a night the feed guard held: Nights, the form, a reason.
	done = step("release a night")
	if _, err := db.Exec(`INSERT INTO sisnotify.nights (night, status, phase, cause, error, counts, finished_at)
		VALUES ('2026-11-27', 'failed', 'sync', 'feed_guard', 'sync: feed guard: students 40% fewer', '{}', now())`); err != nil {
		t.Fatal(err)
	}
	if code := office.Click(`nav a[href="/console/nights"]`); code != 200 || office.At() != "/console/nights" {
		t.Fatalf("Nights: %d at %s", code, office.At())
	}
	const why = "the SIS export was checked by hand: the registrar archived a cohort"
	office.Do("type the reason", chromedp.SendKeys(chromedp.CSS("#release-2026-11-27"), why))
	if code := office.Click(`form[action="/console/nights/2026-11-27/release"] button[type=submit]`); code != 200 || office.At() != "/console/nights?done=release" {
		t.Fatalf("release: %d at %s", code, office.At())
	}
	if got := office.Text("main .banner"); got != browserEN("page.done.release") {
		t.Fatalf("release banner %q", got)
	}
	office.Screenshot("released")
	task, err := asynq.NewInspectorFromRedisClient(r.e.opt.Redis).GetTaskInfo(worker.QueueNight, "night-2026-11-27-sync-release")
	if err != nil {
		t.Fatalf("the released night's task: %v", err)
	}
	var payload worker.NightPayload
	if err := json.Unmarshal(task.Payload, &payload); err != nil || payload.Night != "2026-11-27" || !payload.Force {
		t.Fatalf("the released night's task: %s (%v)", task.Payload, err)
	}
	var audited string
	if err := db.Get(&audited, `SELECT night::text || ' ' || actor || ' ' || reason FROM sisnotify.audit_log WHERE action = 'release'`); err != nil {
		t.Fatal(err)
	}
	if audited != "2026-11-27 "+authStaff+" "+why {
		t.Fatalf("release audit %q", audited)
	}
	t.Logf("night 2026-11-27 released: the worker's Releaser queued %s (%s) in Redis, audited", task.ID, task.Payload)
	done()

	// 7. A form sent without its CSRF token is refused and changes
	// nothing.
	done = step("form without its token")
	var other struct {
		ID      int64  `db:"obligation_id"`
		Student string `db:"student_id"`
	}
	if err := db.Get(&other, `SELECT obligation_id, student_id FROM sisnotify.obligations
		WHERE closed_at IS NULL AND obligation_id <> $1 AND snoozed_until IS NULL ORDER BY obligation_id LIMIT 1`, snz.Obligation); err != nil {
		t.Fatal(err)
	}
	if code := office.Open("/console/students/" + other.Student); code != 200 {
		t.Fatalf("student %s: %d", other.Student, code)
	}
	form := fmt.Sprintf(`form[action="/console/obligations/%d/close"]`, other.ID)
	office.Do("drop the token", chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector('%s input[name=csrf]').remove()`, form)))
	office.Do("type the reason", chromedp.SendKeys(chromedp.CSS(fmt.Sprintf("#close-reason-%d", other.ID)), "no token"))
	if code := office.Click(form + " button[type=submit]"); code != 403 || office.Text("h1") != browserEN("auth.csrf.title") {
		t.Fatalf("a form without its token: %d, %q", code, office.Text("h1"))
	}
	office.Screenshot("no token")
	var still, closes int
	if err := db.Get(&still, `SELECT count(*) FROM sisnotify.obligations WHERE obligation_id = $1 AND closed_at IS NULL`, other.ID); err != nil {
		t.Fatal(err)
	}
	if err := db.Get(&closes, `SELECT count(*) FROM sisnotify.audit_log WHERE action = 'close'`); err != nil {
		t.Fatal(err)
	}
	if still != 1 || closes != 1 {
		t.Fatalf("a form without its token changed something: obligation %d open %d, %d close audits", other.ID, still, closes)
	}
	done()
	t.Logf("the office's day: %d screenshots, %s in all", r.b.Shots(), time.Since(start).Round(time.Millisecond))
}

// shownNotice is a notice as the student page shows it.
type shownNotice struct {
	ID    string `json:"id"`
	Class string `json:"class"`
	Text  string `json:"text"`
}

// status is the notice's status, from its status span's class.
func (n shownNotice) status() string {
	for _, c := range strings.Fields(n.Class) {
		if s, ok := strings.CutPrefix(c, "status-"); ok {
			return s
		}
	}
	return ""
}

// TestBrowserRefusals: a dean sees their faculties' rows only and no
// action, and a posted action is refused; a forged session cookie leads
// to sign-in; an account that is neither staff nor dean gets "no access".
func TestBrowserRefusals(t *testing.T) {
	testenv.Long(t, "drives the console in headless Chromium")
	r := newChromeRig(t)
	db := r.e.db

	// The dean of the faculty with the most open obligations, when it
	// does not have them all.
	var dean struct {
		Email     string `db:"dean_email"`
		Faculties string `db:"faculties"`
		Names     string `db:"names"`
		Open      int    `db:"open"`
		All       int    `db:"all"`
	}
	if err := db.Get(&dean, `SELECT f.dean_email, string_agg(DISTINCT f.faculty_id, ',') AS faculties, string_agg(DISTINCT f.name, '|') AS names,
		count(o.obligation_id) AS open, (SELECT count(*) FROM sisnotify.obligations WHERE closed_at IS NULL) AS all
		FROM sisnotify.faculties f
		JOIN sisnotify.students s ON s.faculty_id = f.faculty_id
		JOIN sisnotify.obligations o ON o.student_id = s.student_id AND o.closed_at IS NULL
		WHERE f.dean_email IS NOT NULL
		GROUP BY f.dean_email ORDER BY count(o.obligation_id) DESC, f.dean_email LIMIT 1`); err != nil {
		t.Fatal(err)
	}
	if dean.Open == 0 || dean.Open == dean.All {
		t.Fatalf("no dean with some but not all open obligations: %+v", dean)
	}

	// 6. The dean, in a browser of their own.
	d := r.person("dean", 390)
	if code := d.signIn(dean.Email); code != 200 || d.At() != "/console/" {
		t.Fatalf("the dean's sign-in: %d at %s", code, d.At())
	}
	rows := browsertest.Eval[[]browserRow](d.Person, browserRows)
	names := strings.Split(dean.Names, "|")
	for _, row := range rows {
		if !slices.Contains(names, row.Faculty) {
			t.Errorf("the dean of %s sees a row of %q: %+v", dean.Faculties, row.Faculty, row)
		}
	}
	if len(rows) != dean.Open {
		t.Fatalf("the dean sees %d rows, the database has %d open obligations of faculties %s", len(rows), dean.Open, dean.Faculties)
	}
	if n := d.Count(`nav a[href="/console/nights"], nav a[href="/console/failed"], nav a[href="/console/audit"]`); n != 0 {
		t.Errorf("the dean's navigation has %d office pages", n)
	}
	t.Logf("the dean of %s: %d of %d open rows, all of their faculties", dean.Faculties, len(rows), dean.All)
	d.Screenshot("today")
	d.CheckA11y("the dean's Today")
	if code := d.Click(fmt.Sprintf(`table.rows a[href="/console/students/%s"]`, rows[0].Student)); code != 200 {
		t.Fatalf("the dean opens student %s: %d", rows[0].Student, code)
	}
	if n := d.Count(`main form, main button, main input, main select, main textarea`); n != 0 {
		t.Fatalf("the dean's student page has %d forms or controls", n)
	}
	d.Screenshot("student")
	d.CheckA11y("the dean's student page")
	var obligation int64
	if err := db.Get(&obligation, `SELECT min(obligation_id) FROM sisnotify.obligations WHERE student_id = $1 AND closed_at IS NULL`, rows[0].Student); err != nil {
		t.Fatal(err)
	}
	// The dean's browser posts the office's close form anyway (built in
	// the page through DevTools, with the dean's own token).
	post := fmt.Sprintf(`(() => {
		const f = document.createElement('form');
		f.method = 'post'; f.action = '/console/obligations/%d/close';
		for (const [k, v] of [['csrf', document.querySelector('input[name=csrf]').value], ['reason', 'the dean tries']]) {
			const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v; f.appendChild(i);
		}
		document.body.appendChild(f); f.submit();
	})()`, obligation)
	if code := d.Load("post a close", chromedp.Evaluate[chromedp.Void](post)); code != 403 || d.Text("h1") != browserEN("auth.officeonly.title") {
		t.Fatalf("a dean's close: %d, %q", code, d.Text("h1"))
	}
	d.Screenshot("refused")
	var changed int
	if err := db.Get(&changed, `SELECT (SELECT count(*) FROM sisnotify.obligations WHERE obligation_id = $1 AND closed_at IS NOT NULL)
		+ (SELECT count(*) FROM sisnotify.audit_log WHERE action = 'close')`, obligation); err != nil {
		t.Fatal(err)
	}
	if changed != 0 {
		t.Fatalf("the dean's close changed something")
	}

	// 7. A forged session cookie: the console sends the browser to sign in.
	sessions := r.e.sessions()
	f := r.person("forger", 1280)
	f.setCookie(authSessionCookie, forgedToken(t))
	for _, path := range []string{"/console/", "/console/students/" + rows[0].Student} {
		if code := f.Open(path); code != 200 || !strings.HasPrefix(f.At(), "/console/auth/login?back=") || f.Text("h1") != browserEN("auth.signin.title") {
			t.Fatalf("a forged cookie at %s: %d at %s, %q", path, code, f.At(), f.Text("h1"))
		}
	}
	f.Screenshot("sign in")

	// An account that is neither staff nor dean: "no access".
	s := r.person("stranger", 1280)
	if code := s.signIn("student.s0000001@uni.example"); code != 403 || s.At() != "/console/auth/no-access" || s.Text("h1") != browserEN("auth.noaccess.title") {
		t.Fatalf("a stranger's sign-in: %d at %s, %q", code, s.At(), s.Text("h1"))
	}
	s.Screenshot("no access")
	if n := r.e.sessions(); n != sessions {
		t.Fatalf("%d sessions after the forger and the stranger, want %d", n, sessions)
	}
	t.Logf("refusals: the dean's post 403, a forged cookie to sign-in twice, a stranger 403 no access; %d sessions (the dean's); %d screenshots", sessions, r.b.Shots())
}
