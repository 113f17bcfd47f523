package studentpage

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"

	"github.com/iec-almaty/sisnotify/integrations/mail"
	"github.com/iec-almaty/sisnotify/integrations/mail/mailtest"
	"github.com/iec-almaty/sisnotify/integrations/sms"
	"github.com/iec-almaty/sisnotify/integrations/testenv"
	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/store"
	"github.com/iec-almaty/sisnotify/templates"
)

// redisDB is this package's Redis database number (README, Tests).
const redisDB = 5

const publicURL = "https://notify.uni.example"

var almaty = func() *time.Location {
	l, err := time.LoadLocation("Asia/Almaty")
	if err != nil {
		panic(err)
	}
	return l
}()

// fixtureNow is the morning after the fixture's night, in Almaty.
var fixtureNow = time.Date(2026, 11, 25, 10, 0, 0, 0, almaty)

var office = templates.Office{University: "KazNU", Name: "International Office", Address: "Room 112, 71 al-Farabi Ave",
	Hours: "Mon-Fri 09:00-18:00", Phone: "+7 (727) 355-05-67", Email: "io@uni.example",
	In: map[string]templates.OfficeText{"ru": {Name: "Международный отдел", Address: "каб. 112, пр. аль-Фараби, 71"}}}

type rig struct {
	db   *sqlx.DB
	keys *Keys
	smtp *mailtest.Server
	pool *mail.Pool
	set  *templates.Set
	rdb  *redis.Client
	h    *Handler
}

func newRig(t testing.TB, rate redis_rate.Limit) *rig {
	t.Helper()
	r := &rig{db: testDB(t), keys: testKeys(t, keyA), smtp: mailtest.NewServer(t), set: templates.MustNew()}
	cfg, err := mail.ParseURL(r.smtp.URL())
	if err != nil {
		t.Fatal(err)
	}
	cfg.From = "International Office <international@uni.example>"
	if r.pool, err = mail.NewPool(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.pool.Close() })
	opt, err := redis.ParseURL(testenv.Redis(t, redisDB))
	if err != nil {
		t.Fatal(err)
	}
	r.rdb = redis.NewClient(opt)
	t.Cleanup(func() { r.rdb.Close() })
	if r.h, err = New(Options{DB: r.db, Redis: r.rdb, Keys: r.keys, Templates: r.set, Office: office, Mail: r.pool,
		Location: almaty, Now: func() time.Time { return fixtureNow }, Rate: rate}); err != nil {
		t.Fatal(err)
	}
	return r
}

var generous = redis_rate.PerMinute(10000)

// do serves one request from the client at remote.
func (r *rig) do(method, target, remote string, form url.Values) *httptest.ResponseRecorder {
	var req *http.Request
	if form != nil {
		req = httptest.NewRequest(method, target, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req = httptest.NewRequest(method, target, nil)
	}
	req.RemoteAddr = remote
	w := httptest.NewRecorder()
	r.h.ServeHTTP(w, req)
	return w
}

var linkRE = regexp.MustCompile(regexp.QuoteMeta(publicURL) + `/s/[A-Za-z0-9_-]+`)

// studentEmailNotice is a pending student email of a student with an
// email address, open obligations and a passport number.
func studentEmailNotice(t testing.TB, db *sqlx.DB) (noticeID int64, studentID string) {
	t.Helper()
	err := db.QueryRow(`SELECT n.notice_id, n.student_id FROM sisnotify.notices n JOIN sisnotify.students s USING (student_id)
		WHERE n.audience = 'student' AND n.channel = 'email' AND n.status = 'pending' AND s.passport_number IS NOT NULL
		ORDER BY n.notice_id LIMIT 1`).Scan(&noticeID, &studentID)
	if err != nil {
		t.Fatalf("no pending student email in the fixture: %v", err)
	}
	return noticeID, studentID
}

// linkFromEmail delivers notice id through a jobs.Deliverer with the
// link settings, to the mailtest server, and returns the link the email
// carries (the same in its text and HTML).
func (r *rig) linkFromEmail(t testing.TB, id int64) string {
	t.Helper()
	d := &jobs.Deliverer{DB: r.db, Mail: r.pool, SMS: sms.NewOutbox(t.TempDir()), Templates: r.set, Office: office,
		OfficeLang: "ru", Links: Linker{Base: publicURL, Keys: r.keys}, Location: almaty, Now: func() time.Time { return fixtureNow }}
	before := r.smtp.Count()
	if out, err := d.Deliver(context.Background(), id, true); out != jobs.Sent {
		t.Fatalf("Deliver = %s, %v", out, err)
	}
	if !r.smtp.WaitFor(before+1, 10*time.Second) {
		t.Fatal("no email received")
	}
	msgs := r.smtp.Messages()
	m := msgs[len(msgs)-1]
	text, html := linkRE.FindString(m.Text()), linkRE.FindString(m.HTML())
	if text == "" || text != html {
		t.Fatalf("email's link: text %q, HTML %q\n%s", text, html, m.Text())
	}
	if !strings.Contains(m.HTML(), `<a href="`+text+`">`) {
		t.Errorf("the HTML's link is not a link")
	}
	return text
}

func pathOf(t testing.TB, link string) string {
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	return u.Path
}

// TestLinkFromEmail: a real student email carries the link, and the link
// opens the student's page: their open obligations, the office's
// contacts, the passport masked, in their language, with the page's
// security headers.
func TestLinkFromEmail(t *testing.T) {
	r := newRig(t, generous)
	id, student := studentEmailNotice(t, r.db)
	link := r.linkFromEmail(t, id)
	w := r.do("GET", pathOf(t, link), "192.0.2.10:5000", nil)
	if w.Code != http.StatusOK {
		t.Fatalf("GET = %d\n%s", w.Code, w.Body)
	}
	body := w.Body.String()

	st, err := store.New(r.db).StudentPageStudentByID(context.Background(), student)
	if err != nil || st == nil {
		t.Fatal(st, err)
	}
	lang := templates.Lang(st.Language)
	if !strings.Contains(body, `<html lang="`+lang+`">`) {
		t.Errorf("page not in the student's language %s", lang)
	}
	obs, err := store.New(r.db).StudentPageObligations(context.Background(), student)
	if err != nil || len(obs) == 0 {
		t.Fatalf("obligations: %v, %v", obs, err)
	}
	for _, o := range obs {
		title := esc(r.set.RuleTitle(lang, o.Rule))
		if !strings.Contains(body, title) {
			t.Errorf("page lacks the open obligation %s (%q)", o.Rule, title)
		}
		if !strings.Contains(body, fmt.Sprintf(`name="obligation" value="%d"`, o.ID)) {
			t.Errorf("page has no done form for obligation %d", o.ID)
		}
		if !strings.Contains(body, esc(templates.FormatDate(lang, o.Due))) {
			t.Errorf("page lacks the due date of %s", o.Rule)
		}
	}
	if p := st.Passport; len(p) > 3 {
		if strings.Contains(body, p) || strings.Contains(body, p[:len(p)-3]) {
			t.Errorf("the passport number is shown unmasked")
		}
		if !strings.Contains(body, "•••••"+p[len(p)-3:]) {
			t.Errorf("the passport's last 3 characters are not shown")
		}
	}
	if st.Email != "" && strings.Contains(body, st.Email) {
		t.Errorf("the page shows the student's email")
	}
	loc := office.Localized(lang)
	for _, s := range []string{loc.Name, loc.Address, loc.Hours, office.Phone, office.Email} {
		if !strings.Contains(body, esc(s)) {
			t.Errorf("page lacks the office's %q", s)
		}
	}
	checkHeaders(t, w)
	checkAccessible(t, body)

	// The language switch.
	for _, l := range []string{"ru", "kk", "en"} {
		w := r.do("GET", pathOf(t, link)+"?lang="+l, "192.0.2.10:5000", nil)
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `<html lang="`+l+`">`) ||
			!strings.Contains(w.Body.String(), esc(words[l]["title"])) {
			t.Errorf("?lang=%s: %d, not in %s", l, w.Code, l)
		}
	}
}

// esc is s as html/template escapes text.
func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;", "+", "&#43;").Replace(s)
}

func checkHeaders(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	want := map[string]string{
		"Content-Security-Policy": "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
		"Referrer-Policy":         "no-referrer",
		"Cache-Control":           "no-store",
		"X-Content-Type-Options":  "nosniff",
	}
	for k, v := range want {
		if got := w.Header().Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

var (
	controlRE = regexp.MustCompile(`<(input|select)\b[^>]*>`)
	idRE      = regexp.MustCompile(`\bid="([^"]+)"`)
)

// checkAccessible: no script, no resource of another site, a label for
// every visible control.
func checkAccessible(t *testing.T, body string) {
	t.Helper()
	if strings.Contains(body, "<script") || strings.Contains(body, "http://") || strings.Contains(body, "https://") {
		t.Errorf("the page has a script or a third-party address")
	}
	for _, c := range controlRE.FindAllString(body, -1) {
		if strings.Contains(c, `type="hidden"`) {
			continue
		}
		m := idRE.FindStringSubmatch(c)
		if m == nil || !strings.Contains(body, `<label for="`+m[1]+`">`) {
			t.Errorf("control without a label: %s", c)
		}
	}
}

// TestReports: each kind of report, posted twice, is recorded once,
// audited once and confirmed once by email; the page confirms it.
func TestReports(t *testing.T) {
	r := newRig(t, generous)
	ctx := context.Background()
	id, student := studentEmailNotice(t, r.db)
	link := r.linkFromEmail(t, id)
	path := pathOf(t, link)
	const client = "192.0.2.20:4000"
	page := r.do("GET", path+"?lang=en", client, nil).Body.String()
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
	if csrf == nil {
		t.Fatal("no form token on the page")
	}
	obs, err := store.New(r.db).StudentPageObligations(ctx, student)
	if err != nil || len(obs) == 0 {
		t.Fatal(obs, err)
	}
	today := date.FromTime(fixtureNow)
	mailsBefore := r.smtp.Count()
	forms := []url.Values{
		{"kind": {"done"}, "obligation": {fmt.Sprint(obs[0].ID)}},
		{"kind": {"lost-documents"}},
		{"kind": {"address-changed"}, "moved_on": {today.AddDays(-10).String()}},
		{"kind": {"status-changed"}, "new_status": {"rvp"}},
	}
	for _, f := range forms {
		f.Set("csrf", csrf[1])
		f.Set("lang", "en")
		for range 2 {
			w := r.do("POST", path, client, f)
			if w.Code != http.StatusSeeOther {
				t.Fatalf("POST %s = %d\n%s", f.Get("kind"), w.Code, w.Body)
			}
			loc := w.Header().Get("Location")
			if loc != path+"?done="+f.Get("kind")+"&lang=en" {
				t.Errorf("POST %s: Location %q", f.Get("kind"), loc)
			}
			shown := r.do("GET", loc, client, nil).Body.String()
			if !strings.Contains(shown, esc(words["en"]["ok."+f.Get("kind")])) {
				t.Errorf("%s: the page does not confirm it", f.Get("kind"))
			}
		}
	}
	var reports []struct {
		Kind       string  `db:"kind"`
		Obligation *int64  `db:"obligation_id"`
		Status     *string `db:"new_status"`
		Notice     int64   `db:"notice_id"`
	}
	if err := r.db.Select(&reports, `SELECT kind, obligation_id, new_status, notice_id FROM sisnotify.student_reports WHERE student_id = $1 ORDER BY report_id`, student); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, rep := range reports {
		kinds = append(kinds, rep.Kind)
		if rep.Notice != id {
			t.Errorf("report %s: notice %d, want the link's %d", rep.Kind, rep.Notice, id)
		}
	}
	if want := []string{"done", "lost-documents", "address-changed", "status-changed"}; !slices.Equal(kinds, want) {
		t.Fatalf("reports = %v, want each once: %v", kinds, want)
	}
	if *reports[0].Obligation != obs[0].ID || *reports[3].Status != "rvp" {
		t.Errorf("reports recorded wrongly: %+v", reports)
	}
	var audits []string
	if err := r.db.Select(&audits, `SELECT action FROM sisnotify.audit_log WHERE actor = $1 AND role = 'student' AND student_id = $2 ORDER BY audit_id`,
		"student:"+student, student); err != nil {
		t.Fatal(err)
	}
	if want := []string{"report-done", "report-lost-documents", "report-address-changed", "report-status-changed"}; !slices.Equal(audits, want) {
		t.Errorf("audit = %v, want %v", audits, want)
	}
	if !r.smtp.WaitFor(mailsBefore+4, 10*time.Second) {
		t.Fatalf("%d confirmations, want 4", r.smtp.Count()-mailsBefore)
	}
	time.Sleep(100 * time.Millisecond)
	msgs := r.smtp.Messages()[mailsBefore:]
	if len(msgs) != 4 {
		t.Fatalf("%d confirmations, want 4 (one per report)", len(msgs))
	}
	st, _ := store.New(r.db).StudentPageStudentByID(ctx, student)
	for _, m := range msgs {
		if len(m.To) != 1 || m.To[0] != st.Email || m.Header("X-Sisnotify-Kind") != "report" || m.Header("X-Sisnotify-Student") != student {
			t.Errorf("confirmation to %v, kind %q", m.To, m.Header("X-Sisnotify-Kind"))
		}
		if m.Header("Subject") != words["en"]["mail.subject"] || !strings.Contains(m.Text(), office.Phone) {
			t.Errorf("confirmation: %q\n%s", m.Header("Subject"), m.Text())
		}
	}
	if !strings.Contains(msgs[2].Text(), templates.FormatDate("en", today.AddDays(-10))) {
		t.Errorf("the move's confirmation lacks its date:\n%s", msgs[2].Text())
	}
	// The page now shows the obligation reported done.
	page = r.do("GET", path+"?lang=en", client, nil).Body.String()
	if !strings.Contains(page, esc(fmt.Sprintf(words["en"]["done.reported"], templates.FormatDate("en", today)))) {
		t.Errorf("the page does not show the done report")
	}
}

// TestReportValidation: a move in the future or more than 60 days back,
// an unknown status, or another student's obligation records nothing.
func TestReportValidation(t *testing.T) {
	r := newRig(t, generous)
	id, student := studentEmailNotice(t, r.db)
	tok := r.keys.StudentLink(student, id, fixtureNight)
	path := Path + tok
	csrf := r.keys.csrf(tok, 0)
	today := date.FromTime(fixtureNow)
	var other int64
	if err := r.db.Get(&other, `SELECT obligation_id FROM sisnotify.obligations WHERE student_id <> $1 AND closed_at IS NULL LIMIT 1`, student); err != nil {
		t.Fatal(err)
	}
	for _, f := range []url.Values{
		{"kind": {"address-changed"}, "moved_on": {today.AddDays(1).String()}},
		{"kind": {"address-changed"}, "moved_on": {today.AddDays(-61).String()}},
		{"kind": {"address-changed"}, "moved_on": {"yesterday"}},
		{"kind": {"status-changed"}, "new_status": {"visa"}},
		{"kind": {"done"}, "obligation": {fmt.Sprint(other)}},
		{"kind": {"done"}, "obligation": {"x"}},
		{"kind": {"something"}},
	} {
		f.Set("csrf", csrf)
		if w := r.do("POST", path, "192.0.2.30:1", f); w.Code != http.StatusBadRequest {
			t.Errorf("POST %v = %d, want 400", f, w.Code)
		}
	}
	for _, f := range []url.Values{
		{"kind": {"address-changed"}, "moved_on": {today.String()}},
		{"kind": {"address-changed"}, "moved_on": {today.AddDays(-60).String()}},
	} {
		f.Set("csrf", csrf)
		if w := r.do("POST", path, "192.0.2.30:1", f); w.Code != http.StatusSeeOther {
			t.Errorf("POST %v = %d, want 303", f, w.Code)
		}
	}
	if n := count(t, r.db, `SELECT count(*) FROM sisnotify.student_reports`); n != 2 {
		t.Errorf("%d reports, want the 2 valid moves", n)
	}
}

func count(t *testing.T, db *sqlx.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.Get(&n, q, args...); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestInvalidLinks: a malformed, expired, forged or retired-key token,
// and a valid token of a student who does not exist, all get the same
// answer, byte for byte, headers included; a POST too.
func TestInvalidLinks(t *testing.T) {
	r := newRig(t, generous)
	id, student := studentEmailNotice(t, r.db)
	good := r.keys.StudentLink(student, id, fixtureNight)
	expired := r.keys.StudentLink(student, id, fixtureNight.AddDays(-61))
	forged := good[:len(good)-2] + map[bool]string{true: "AA", false: "BB"}[good[len(good)-2:] != "AA"]
	retired := testKeys(t, keyC).StudentLink(student, id, fixtureNight)
	nobody := r.keys.StudentLink("NO-SUCH-STUDENT", id, fixtureNight)
	if w := r.do("GET", Path+good, "192.0.2.40:1", nil); w.Code != http.StatusOK {
		t.Fatalf("the good link = %d", w.Code)
	}
	type answer struct {
		code   int
		header http.Header
		body   string
	}
	var first *answer
	for name, target := range map[string]string{
		"malformed": Path + "not-a-token", "empty": Path, "expired": Path + expired, "forged": Path + forged,
		"retired key": Path + retired, "unknown student": Path + nobody, "nested": Path + good + "/x",
		"post forged": Path + forged,
	} {
		method := "GET"
		var form url.Values
		if strings.HasPrefix(name, "post") {
			method, form = "POST", url.Values{"kind": {"lost-documents"}, "csrf": {r.keys.csrf(forged, 0)}}
		}
		w := r.do(method, target, "192.0.2.40:1", form)
		a := answer{w.Code, w.Header().Clone(), w.Body.String()}
		if a.code != http.StatusNotFound || !strings.Contains(a.body, "Link not valid") {
			t.Errorf("%s: %d", name, a.code)
		}
		if first == nil {
			first = &a
			continue
		}
		if a.code != first.code || a.body != first.body || fmt.Sprint(a.header) != fmt.Sprint(first.header) {
			t.Errorf("%s: the answer differs: %d %v", name, a.code, a.header)
		}
	}
	if n := count(t, r.db, `SELECT count(*) FROM sisnotify.student_reports`); n != 0 {
		t.Errorf("%d reports recorded from invalid links", n)
	}
}

// TestCSRFRefused: a POST without its form token, or with another page's,
// is refused and records nothing.
func TestCSRFRefused(t *testing.T) {
	r := newRig(t, generous)
	id, student := studentEmailNotice(t, r.db)
	tok := r.keys.StudentLink(student, id, fixtureNight)
	other := r.keys.StudentLink(student, id+1, fixtureNight)
	for name, csrf := range map[string]string{"none": "", "another page's": r.keys.csrf(other, 0), "garbage": "abc"} {
		f := url.Values{"kind": {"lost-documents"}}
		if csrf != "" {
			f.Set("csrf", csrf)
		}
		if w := r.do("POST", Path+tok, "192.0.2.50:1", f); w.Code != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, w.Code)
		}
	}
	if n := count(t, r.db, `SELECT count(*) FROM sisnotify.student_reports`) + count(t, r.db, `SELECT count(*) FROM sisnotify.audit_log`); n != 0 {
		t.Errorf("%d rows recorded by refused forms", n)
	}
	if r.smtp.Count() != 0 {
		t.Errorf("refused forms sent email")
	}
}

// TestRateLimit: 100 requests within a second from one client are
// throttled (429) past the rate; another client is still served.
func TestRateLimit(t *testing.T) {
	r := newRig(t, DefaultRate)
	id, student := studentEmailNotice(t, r.db)
	path := Path + r.keys.StudentLink(student, id, fixtureNight)
	ok, limited := 0, 0
	start := time.Now()
	for range 100 {
		w := r.do("GET", path, "198.51.100.7:1111", nil)
		switch w.Code {
		case http.StatusOK:
			ok++
		case http.StatusTooManyRequests:
			limited++
			if w.Header().Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
		default:
			t.Fatalf("status %d", w.Code)
		}
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Logf("100 requests took %s", el)
	}
	if ok > DefaultRate.Burst+2 || limited < 100-DefaultRate.Burst-2 {
		t.Errorf("%d served, %d throttled; want about %d served", ok, limited, DefaultRate.Burst)
	}
	if w := r.do("GET", path, "198.51.100.8:2222", nil); w.Code != http.StatusOK {
		t.Errorf("another client: %d, want 200", w.Code)
	}
	// Same address, another port: the same client.
	if w := r.do("GET", path, "198.51.100.7:3333", nil); w.Code != http.StatusTooManyRequests {
		t.Errorf("the first client on another port: %d, want 429", w.Code)
	}
}

// TestStylesheet: the page's own stylesheet, under the same CSP.
func TestStylesheet(t *testing.T) {
	r := newRig(t, generous)
	w := r.do("GET", Path+"page.css", "192.0.2.60:1", nil)
	if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/css") || !strings.Contains(w.Body.String(), "max-width") {
		t.Fatalf("page.css: %d %s", w.Code, w.Header().Get("Content-Type"))
	}
}

// The client a request counts against: the connection's address, or,
// when the connection comes from a private address (the reverse proxy),
// the address that proxy appended last to X-Forwarded-For; what a client
// forges before it, or sends straight to a public address, names nobody.
func TestClientOf(t *testing.T) {
	for _, c := range []struct {
		remote string
		xff    []string
		want   string
	}{
		{"192.0.2.10:5000", nil, "192.0.2.10"},
		{"192.0.2.10:5000", []string{"198.51.100.7"}, "192.0.2.10"}, // public peer: the header is the client's own
		{"127.0.0.1:5000", nil, "127.0.0.1"},
		{"127.0.0.1:5000", []string{"198.51.100.7"}, "198.51.100.7"},
		{"10.0.0.5:5000", []string{"203.0.113.9, 198.51.100.7"}, "198.51.100.7"}, // forged first, appended last
		{"10.0.0.5:5000", []string{"203.0.113.9", "198.51.100.8"}, "198.51.100.8"},
		{"[::1]:5000", []string{"2001:db8::7"}, "2001:db8::7"},
		{"10.0.0.5:5000", []string{"not an address"}, "10.0.0.5"},
	} {
		req := httptest.NewRequest("GET", "/s/x", nil)
		req.RemoteAddr = c.remote
		for _, v := range c.xff {
			req.Header.Add("X-Forwarded-For", v)
		}
		if got := clientOf(req); got != c.want {
			t.Errorf("clientOf(%s, %q) = %s, want %s", c.remote, c.xff, got, c.want)
		}
	}
}
