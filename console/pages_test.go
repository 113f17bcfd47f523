package console

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/iec-almaty/sisnotify/integrations/testenv"
	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/migrations"
	"github.com/iec-almaty/sisnotify/store"
	"github.com/iec-almaty/sisnotify/templates"
)

// The pages' tests run against the fixture's database (main_test.go) with
// the break-glass login as the office. A dean is built in the test and put
// in the request's context (withViewer), and the page's handler is called
// directly, behind no sign-in: the SSO that makes deans is the auth
// helper's, and these tests are about what a dean sees.

const (
	testUser = "office"
	testPass = "break-glass-secret"
)

// almaty is the university's zone in the tests.
var almaty = time.FixedZone("+05", 5*3600)

// fakeRequeuer and fakeReleaser stand for the worker's: the pages only
// ask whether they exist, to show the forms.
type fakeRequeuer struct{}

func (fakeRequeuer) Requeue(_ context.Context, ids []int64, _ string) ([]int64, error) {
	return ids, nil
}

type fakeReleaser struct{}

func (fakeReleaser) Release(context.Context, date.Date, string) error { return nil }

// newTestConsole is the console over db on the fixture's night, at 10:00
// in Almaty, in English.
func newTestConsole(t testing.TB, db *sqlx.DB) *Handler {
	t.Helper()
	h, err := New(Options{
		DB: db, BreakGlassUser: testUser, BreakGlassPassword: testPass, Lang: "en", Location: almaty,
		Now:      func() time.Time { return fixtureNight.Time(almaty).Add(10 * time.Hour) },
		Requeuer: fakeRequeuer{}, Releaser: fakeReleaser{},
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// get fetches path as the office; it returns the response and its body.
func get(t testing.TB, h http.Handler, path string) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.SetBasicAuth(testUser, testPass)
	return do(t, h, req)
}

// post posts form to path as the office, with its CSRF token.
func post(t testing.TB, h *Handler, path string, form url.Values) (*http.Response, string) {
	t.Helper()
	form.Set("csrf", breakGlassCSRF(testPass, testUser))
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(testUser, testPass)
	return do(t, h, req)
}

func do(t testing.TB, h http.Handler, req *http.Request) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// asDean calls handler with a dean of faculties as the viewer, on a
// request of method and path (the path value id set when not empty).
func asDean(t *testing.T, handler http.HandlerFunc, method, target, id string, form url.Values, faculties ...string) (int, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequest(method, target, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if id != "" {
		req.SetPathValue("id", id)
	}
	v := &Viewer{Email: "dean@uni.example", Role: RoleDean, FacultyIDs: faculties, CSRF: "dean-token", Lang: "en"}
	req = req.WithContext(withViewer(req.Context(), v))
	rec := httptest.NewRecorder()
	handler(rec, req)
	return rec.Code, rec.Body.String()
}

// scalar runs a query of one value.
func scalar[T any](t testing.TB, db *sqlx.DB, q string, args ...any) T {
	t.Helper()
	var v T
	if err := db.Get(&v, q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return v
}

// openSummary finds Today's "Open: N" count.
var openSummary = regexp.MustCompile(`Open: <strong>([^<]*)</strong>`)

func openCount(t *testing.T, body string) string {
	t.Helper()
	m := openSummary.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no open count in the page:\n%s", body)
	}
	return m[1]
}

// rowCount counts the rows of Today's obligation tables.
func rowCount(body string) int {
	n := 0
	for _, part := range strings.Split(body, `<table class="rows">`)[1:] {
		part = part[:strings.Index(part, "</table>")]
		n += strings.Count(part, "<tr>") - 1 // the header's
	}
	return n
}

func TestTodayListsTheOpenObligations(t *testing.T) {
	db := testDB(t)
	h := newTestConsole(t, db)
	open := scalar[int](t, db, `SELECT count(*) FROM sisnotify.obligations WHERE closed_at IS NULL`)
	res, body := get(t, h, "/console/")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d\n%s", res.StatusCode, body)
	}
	if got := openCount(t, body); got != fmt.Sprint(open) {
		t.Errorf("open count %s, want %d", got, open)
	}
	if n := rowCount(body); n != open {
		t.Errorf("%d rows, want %d", n, open)
	}
	var ids []string
	if err := db.Select(&ids, `SELECT DISTINCT student_id FROM sisnotify.obligations WHERE closed_at IS NULL`); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if !strings.Contains(body, `href="/console/students/`+id+`"`) {
			t.Errorf("student %s not linked", id)
		}
	}
	// The fixture's obligations were all opened on its only night: new.
	if !strings.Contains(body, "New: <strong>"+fmt.Sprint(open)+"</strong>") {
		t.Errorf("every open obligation should be new")
	}
}

func TestTodayFilters(t *testing.T) {
	db := testDB(t)
	h := newTestConsole(t, db)
	today := fixtureNight.String()
	var rule string
	var level int
	if err := db.QueryRow(`SELECT rule, level FROM sisnotify.obligations WHERE closed_at IS NULL
		GROUP BY rule, level ORDER BY count(*) DESC, rule LIMIT 1`).Scan(&rule, &level); err != nil {
		t.Fatal(err)
	}
	var faculty string
	if err := db.Get(&faculty, `SELECT s.faculty_id FROM sisnotify.obligations o JOIN sisnotify.students s USING (student_id)
		WHERE o.closed_at IS NULL GROUP BY 1 ORDER BY count(*) DESC LIMIT 1`); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		query string
		want  int
	}{
		{"rule=" + url.QueryEscape(rule), scalar[int](t, db, `SELECT count(*) FROM sisnotify.obligations WHERE closed_at IS NULL AND rule = $1`, rule)},
		{"level=" + fmt.Sprint(level), scalar[int](t, db, `SELECT count(*) FROM sisnotify.obligations WHERE closed_at IS NULL AND level = $1`, level)},
		{"rule=" + url.QueryEscape(rule) + "&level=" + fmt.Sprint(level), scalar[int](t, db, `SELECT count(*) FROM sisnotify.obligations WHERE closed_at IS NULL AND rule = $1 AND level = $2`, rule, level)},
		{"overdue=1", scalar[int](t, db, `SELECT count(*) FROM sisnotify.obligations WHERE closed_at IS NULL AND due_on < $1`, today)},
		{"new=1", scalar[int](t, db, `SELECT count(*) FROM sisnotify.obligations WHERE closed_at IS NULL AND opened_on = $1`, today)},
		{"faculty=" + url.QueryEscape(faculty), scalar[int](t, db, `SELECT count(*) FROM sisnotify.obligations o JOIN sisnotify.students s USING (student_id) WHERE o.closed_at IS NULL AND s.faculty_id = $1`, faculty)},
	}
	for _, c := range cases {
		res, body := get(t, h, "/console/?"+c.query)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d", c.query, res.StatusCode)
		}
		if got := openCount(t, body); got != fmt.Sprint(c.want) {
			t.Errorf("%s: open count %s, want %d", c.query, got, c.want)
		}
		if n := rowCount(body); n != c.want {
			t.Errorf("%s: %d rows, want %d", c.query, n, c.want)
		}
	}
	if c := cases[0]; c.want == 0 {
		t.Fatalf("the most frequent rule has no rows")
	}
}

// TestTodaySectionsAreTheDigests checks the store's section of every open
// obligation against the digest's own (templates.SectionOf), with rows
// added so that every section has some.
func TestTodaySectionsAreTheDigests(t *testing.T) {
	db := testDB(t)
	h := newTestConsole(t, db)
	student := scalar[string](t, db, `SELECT student_id FROM sisnotify.students ORDER BY student_id LIMIT 1`)
	for i, c := range []struct {
		rule      string
		due       int // days from today
		foundLate int
	}{{"registration", 0, 0}, {"registration", 1, 0}, {"registration", -3, 0}, {"passport-expiry", -3, 0}, {"passport-expiry", 5, lateMask}, {"passport-expiry", 9, 0}} {
		if _, err := db.Exec(`INSERT INTO sisnotify.obligations (rule, subject_id, anchor, student_id, due_on, level, step_on, actions, opened_on, last_seen_on, found_late)
			VALUES ($1, $2, $3::date, $2, $3::date + $4::int, 1, $3::date, 0, $3::date, $3::date, $5)`,
			c.rule, student, fixtureNight.AddDays(-100-i).String(), 100+i+c.due, c.foundLate); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := h.store.ConsolePageToday(context.Background(), store.ConsolePageFilter{
		Today: fixtureNight, LastNight: fixtureNight, LegalRules: templates.RegistrationDuties, LateMask: lateMask,
	}, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range rows {
		if got, want := sectionKinds[o.Section], templates.SectionOf(o.Rule, fixtureNight.Sub(o.Due), o.FoundLate&lateMask != 0); got != want {
			t.Errorf("obligation %d (%s, due %s): section %s, the digest's %s", o.ID, o.Rule, o.Due, got, want)
		}
	}
	_, body := get(t, h, "/console/")
	last := -1
	for _, kind := range sectionKinds {
		i := strings.Index(body, `class="section section-`+kind+`"`)
		if i < 0 {
			t.Errorf("section %s missing", kind)
			continue
		}
		if i < last {
			t.Errorf("section %s out of the digest's order", kind)
		}
		last = i
	}
}

func TestTodayPages(t *testing.T) {
	db := testDB(t)
	h := newTestConsole(t, db)
	student := scalar[string](t, db, `SELECT student_id FROM sisnotify.students ORDER BY student_id LIMIT 1`)
	if _, err := db.Exec(`INSERT INTO sisnotify.obligations (rule, subject_id, anchor, student_id, due_on, level, step_on, actions, opened_on, last_seen_on)
		SELECT 'test-rule', $1, $2::date - g, $1, $2::date + 30, 1, $2::date, 0, $2::date, $2::date FROM generate_series(1, 250) g`, student, fixtureNight.String()); err != nil {
		t.Fatal(err)
	}
	open := scalar[int](t, db, `SELECT count(*) FROM sisnotify.obligations WHERE closed_at IS NULL`)
	_, body := get(t, h, "/console/")
	if n := rowCount(body); n != pageRows {
		t.Errorf("page 1: %d rows, want %d", n, pageRows)
	}
	if !strings.Contains(body, fmt.Sprintf("and more: %d", open-pageRows)) || !strings.Contains(body, `href="/console/?page=2"`) {
		t.Errorf("page 1 does not say how many more, or has no next link")
	}
	_, body = get(t, h, "/console/?page=2")
	if n := rowCount(body); n != min(open-pageRows, pageRows) {
		t.Errorf("page 2: %d rows, want %d", n, min(open-pageRows, pageRows))
	}
}

func TestStudentPage(t *testing.T) {
	db := testDB(t)
	h := newTestConsole(t, db)
	var id string
	var notice int64
	if err := db.QueryRow(`SELECT student_id, notice_id FROM sisnotify.notices ORDER BY notice_id LIMIT 1`).Scan(&id, &notice); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE sisnotify.students SET passport_number = 'N12345678', email = 'x@student.example' WHERE student_id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE sisnotify.notices SET status = 'failed', attempts = 3, error_class = 'permanent', last_error = 'mail: 550 5.1.1 no such user' WHERE notice_id = $1`, notice); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO sisnotify.notice_attempts (notice_id, attempt, outcome, error_class, error) VALUES ($1, 1, 'failed', 'permanent', 'mail: 550 5.1.1 no such user')`, notice); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO sisnotify.audit_log (actor, role, action, student_id, reason) VALUES ('a@uni.example', 'office', 'close', $1, 'called the student')`, id); err != nil {
		t.Fatal(err)
	}
	res, body := get(t, h, "/console/students/"+id+"?done=close")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d\n%s", res.StatusCode, body)
	}
	for _, want := range []string{"•••••678", "x@student.example", "550 5.1.1 no such user", `class="status status-failed"`, "called the student",
		`action="/console/notices/` + fmt.Sprint(notice) + `/retry"`, "/close\"", "/snooze\"", `name="until" type="date"`, "The obligation was closed.", "Steps recorded"} {
		if !strings.Contains(body, want) {
			t.Errorf("the student page lacks %q", want)
		}
	}
	if strings.Contains(body, "N12345678") {
		t.Error("the passport number is shown whole")
	}
	obligations := scalar[int](t, db, `SELECT count(*) FROM sisnotify.obligations WHERE student_id = $1`, id)
	if n := strings.Count(body, `<article class="obligation`); n != obligations {
		t.Errorf("%d obligations shown, want %d", n, obligations)
	}
	notices := scalar[int](t, db, `SELECT count(*) FROM sisnotify.notices WHERE student_id = $1`, id)
	if n := strings.Count(body, `<tr id="n`); n != notices {
		t.Errorf("%d notices shown, want %d", n, notices)
	}

	if res, _ := get(t, h, "/console/students/NOSUCH"); res.StatusCode != http.StatusNotFound {
		t.Errorf("unknown student: status %d, want 404", res.StatusCode)
	}
}

func TestDeanSeesTheirFacultyOnly(t *testing.T) {
	db := testDB(t)
	h := newTestConsole(t, db)
	var id, faculty string
	if err := db.QueryRow(`SELECT s.student_id, s.faculty_id FROM sisnotify.notices n JOIN sisnotify.students s USING (student_id)
		WHERE s.faculty_id IS NOT NULL ORDER BY n.notice_id LIMIT 1`).Scan(&id, &faculty); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE sisnotify.notices SET status = 'failed' WHERE student_id = $1`, id); err != nil {
		t.Fatal(err)
	}
	other := scalar[string](t, db, `SELECT faculty_id FROM sisnotify.faculties WHERE faculty_id <> $1 ORDER BY faculty_id LIMIT 1`, faculty)

	code, body := asDean(t, h.studentPage, http.MethodGet, "/console/students/"+id, id, nil, faculty)
	if code != http.StatusOK {
		t.Fatalf("own faculty's student: status %d", code)
	}
	if strings.Contains(body, "<form method=\"post\" action=\"/console/obligations") || strings.Contains(body, "/retry\"") {
		t.Error("a dean sees action forms")
	}
	if strings.Contains(body, `href="/console/nights"`) {
		t.Error("a dean sees the office's navigation")
	}
	code, body404 := asDean(t, h.studentPage, http.MethodGet, "/console/students/"+id, id, nil, other)
	_, unknown := asDean(t, h.studentPage, http.MethodGet, "/console/students/NOSUCH", "NOSUCH", nil, other)
	// The same page but for the path the dean asked for (the language
	// form's "back").
	if code != http.StatusNotFound || strings.ReplaceAll(body404, id, "X") != strings.ReplaceAll(unknown, "NOSUCH", "X") {
		t.Errorf("another faculty's student: status %d, or unlike an unknown id", code)
	}

	want := scalar[int](t, db, `SELECT count(*) FROM sisnotify.obligations o JOIN sisnotify.students s USING (student_id) WHERE o.closed_at IS NULL AND s.faculty_id = $1`, faculty)
	code, body = asDean(t, h.todayPage, http.MethodGet, "/console/", "", nil, faculty)
	if code != http.StatusOK {
		t.Fatalf("today: status %d", code)
	}
	if got := openCount(t, body); got != fmt.Sprint(want) {
		t.Errorf("dean's today: open %s, want %d", got, want)
	}
	var outside []string
	if err := db.Select(&outside, `SELECT DISTINCT o.student_id FROM sisnotify.obligations o JOIN sisnotify.students s USING (student_id)
		WHERE o.closed_at IS NULL AND s.faculty_id IS DISTINCT FROM $1`, faculty); err != nil {
		t.Fatal(err)
	}
	for _, sid := range outside {
		if strings.Contains(body, "/console/students/"+sid+`"`) {
			t.Errorf("dean's today lists %s of another faculty", sid)
		}
	}

	// A search by another faculty's id or name finds nothing.
	var given, family string
	if err := db.QueryRow(`SELECT given_name, family_name FROM sisnotify.students WHERE student_id = $1`, id).Scan(&given, &family); err != nil {
		t.Fatal(err)
	}
	_, body = asDean(t, h.search, http.MethodPost, "/console/search", "", url.Values{"q": {family}}, other)
	if strings.Contains(body, "/console/students/"+id+`"`) {
		t.Error("a dean's search finds another faculty's student")
	}
	code, _ = asDean(t, h.search, http.MethodPost, "/console/search", "", url.Values{"q": {id}}, other)
	if code == http.StatusSeeOther {
		t.Error("a dean's search by id goes to another faculty's student")
	}
}

func TestSearch(t *testing.T) {
	db := testDB(t)
	h := newTestConsole(t, db)
	var id, given, family string
	if err := db.QueryRow(`SELECT student_id, given_name, family_name FROM sisnotify.students WHERE length(family_name) > 3 ORDER BY student_id LIMIT 1`).Scan(&id, &given, &family); err != nil {
		t.Fatal(err)
	}
	res, _ := post(t, h, "/console/search", url.Values{"q": {id}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/console/students/"+id {
		t.Errorf("search by id: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	res, body := post(t, h, "/console/search", url.Values{"q": {strings.ToUpper(family)}})
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `href="/console/students/`+id+`"`) {
		t.Errorf("search by name: status %d, %s not found", res.StatusCode, id)
	}
	for _, q := range []string{given + "  " + family, strings.ToLower(family + " " + given)} {
		if _, body := post(t, h, "/console/search", url.Values{"q": {q}}); !strings.Contains(body, `href="/console/students/`+id+`"`) {
			t.Errorf("search by the whole name %q: %s not found", q, id)
		}
	}
	if n := strings.Count(body, `<tr><td><a href="/console/students/`); n > searchMax {
		t.Errorf("%d matches listed, at most %d", n, searchMax)
	}
	res, body = post(t, h, "/console/search", url.Values{"q": {"a"}})
	if n := strings.Count(body, `<tr><td><a href="/console/students/`); res.StatusCode != http.StatusOK || n != 0 {
		t.Errorf("a one-letter search lists %d", n)
	}
}

func TestOfficePagesRenderRows(t *testing.T) {
	db := testDB(t)
	h := newTestConsole(t, db)
	if _, err := db.Exec(`INSERT INTO sisnotify.nights (night, status, phase, cause, error, counts, finished_at) VALUES
		('2026-11-24', 'ok', 'digest', NULL, NULL, '{"sync": {"students": {"read": 2000}}, "evaluate": {"open": 21}}', now()),
		('2026-11-25', 'failed', 'sync', 'feed_guard', 'sync: feed guard: students 40% fewer', '{}', now())`); err != nil {
		t.Fatal(err)
	}
	var notice int64
	var student string
	if err := db.QueryRow(`UPDATE sisnotify.notices SET status = 'failed', error_class = 'permanent', last_error = 'sms: HTTP 400, code 21211'
		WHERE notice_id = (SELECT min(notice_id) FROM sisnotify.notices) RETURNING notice_id, student_id`).Scan(&notice, &student); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO sisnotify.audit_log (actor, role, action, student_id, notice_id, night, reason) VALUES
		('a@uni.example', 'office', 'retry', $1, $2, '2026-11-25', 'number fixed')`, student, notice); err != nil {
		t.Fatal(err)
	}

	_, body := get(t, h, "/console/nights")
	for _, want := range []string{"2026-11-25", "Held by the feed guard", `action="/console/nights/2026-11-25/release"`, "students.read", "2,000", "feed guard: students 40% fewer"} {
		if !strings.Contains(body, want) {
			t.Errorf("nights lacks %q", want)
		}
	}
	if strings.Count(body, "/release\"") != 1 {
		t.Error("a night that was not held has a release form")
	}
	_, body = get(t, h, "/console/failed")
	for _, want := range []string{"sms: HTTP 400, code 21211", `href="/console/students/` + student + `#n`, fmt.Sprintf(`action="/console/notices/%d/retry"`, notice)} {
		if !strings.Contains(body, want) {
			t.Errorf("failed notices lacks %q", want)
		}
	}
	_, body = get(t, h, "/console/audit")
	for _, want := range []string{"number fixed", "a@uni.example", `href="/console/students/` + student + `"`, "2026-11-25"} {
		if !strings.Contains(body, want) {
			t.Errorf("audit lacks %q", want)
		}
	}
	// The office's pages are the office's.
	for _, path := range []string{"/console/nights", "/console/failed", "/console/audit"} {
		res, _ := do(t, h, httptest.NewRequest(http.MethodGet, path, nil))
		if res.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s without sign-in: %d", path, res.StatusCode)
		}
	}
}

func TestLanguageSwitch(t *testing.T) {
	db := testDB(t)
	h := newTestConsole(t, db)
	res, _ := post(t, h, "/console/lang", url.Values{"lang": {"kk"}, "back": {"/console/failed?page=1"}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/console/failed?page=1" {
		t.Fatalf("switch: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	var cookie *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == langCookie {
			cookie = c
		}
	}
	if cookie == nil || cookie.Value != "kk" || !cookie.HttpOnly {
		t.Fatalf("cookie %+v", cookie)
	}
	req := httptest.NewRequest(http.MethodGet, "/console/", nil)
	req.SetBasicAuth(testUser, testPass)
	req.AddCookie(cookie)
	_, body := do(t, h, req)
	if !strings.Contains(body, `<html lang="kk">`) || !strings.Contains(body, "Бүгін") {
		t.Error("the page is not in Kazakh after the switch")
	}
	for _, back := range []string{"https://evil.example/", "//evil.example/", "/elsewhere"} {
		res, _ := post(t, h, "/console/lang", url.Values{"lang": {"en"}, "back": {back}})
		if res.Header.Get("Location") != "/console/" {
			t.Errorf("back %q: to %q", back, res.Header.Get("Location"))
		}
	}
	if res, _ := post(t, h, "/console/lang", url.Values{"lang": {"de"}}); res.StatusCode != http.StatusBadRequest {
		t.Errorf("lang de: %d", res.StatusCode)
	}
}

func TestStylesheet(t *testing.T) {
	h := newTestConsole(t, testDB(t))
	res, body := do(t, h, httptest.NewRequest(http.MethodGet, "/console/static/console.css", nil))
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/css") || !strings.Contains(body, ".scroll") {
		t.Errorf("stylesheet: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
}

// TestEveryPageIsAccessible parses every page, in every language, as
// the office and as a dean: <html lang>, a <title>, a label for every
// control, no inline style or script, and the CSP header.
func TestEveryPageIsAccessible(t *testing.T) {
	db := testDB(t)
	h := newTestConsole(t, db)
	id := scalar[string](t, db, `SELECT student_id FROM sisnotify.notices ORDER BY notice_id LIMIT 1`)
	faculty := scalar[string](t, db, `SELECT faculty_id FROM sisnotify.students WHERE student_id = $1`, id)
	if _, err := db.Exec(`UPDATE sisnotify.notices SET status = 'failed' WHERE student_id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO sisnotify.nights (night, status, phase, cause, error) VALUES ('2026-11-25', 'failed', 'sync', 'feed_guard', 'feed guard')`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO sisnotify.audit_log (actor, role, action, student_id, reason) VALUES ('a@uni.example', 'office', 'close', $1, 'x')`, id); err != nil {
		t.Fatal(err)
	}
	paths := []string{"/console/", "/console/?overdue=1&new=1", "/console/students/" + id + "?done=snooze", "/console/students/NOSUCH", "/console/nights", "/console/failed", "/console/audit"}
	for _, lang := range []string{"ru", "kk", "en"} {
		for _, path := range paths {
			req := httptest.NewRequest(http.MethodGet, path, nil)
			req.SetBasicAuth(testUser, testPass)
			req.AddCookie(&http.Cookie{Name: langCookie, Value: lang})
			res, body := do(t, h, req)
			if res.Header.Get("Content-Security-Policy") == "" {
				t.Errorf("%s: no CSP", path)
			}
			checkPage(t, lang+" "+path, lang, body)
		}
	}
	res, body := post(t, h, "/console/search", url.Values{"q": {"an"}})
	if res.StatusCode != http.StatusOK {
		t.Fatalf("search: %d", res.StatusCode)
	}
	checkPage(t, "search", "en", body)
	for _, c := range []struct {
		name    string
		handler http.HandlerFunc
		path    string
	}{{"dean today", h.todayPage, "/console/"}, {"dean student", h.studentPage, "/console/students/" + id}} {
		_, body := asDean(t, c.handler, http.MethodGet, c.path, strings.TrimPrefix(c.path, "/console/students/"), nil, faculty)
		checkPage(t, c.name, "en", body)
	}
}

// checkPage checks one page's HTML, tokenized by encoding/xml in its
// lenient HTML mode (golang.org/x/net/html is not a dependency).
func checkPage(t *testing.T, name, lang, body string) {
	t.Helper()
	if strings.Contains(body, "<script") || regexp.MustCompile(`\sstyle=`).MatchString(body) {
		t.Errorf("%s: inline script or style", name)
	}
	d := xml.NewDecoder(strings.NewReader(body))
	d.Strict, d.AutoClose, d.Entity = false, xml.HTMLAutoClose, xml.HTMLEntity
	labels := map[string]bool{}
	var controls []string
	htmlLang, title, inTitle := "", "", false
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: parse: %v", name, err)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			attr := func(k string) string {
				for _, a := range el.Attr {
					if a.Name.Local == k {
						return a.Value
					}
				}
				return ""
			}
			switch el.Name.Local {
			case "html":
				htmlLang = attr("lang")
			case "title":
				inTitle = true
			case "label":
				labels[attr("for")] = true
			case "input", "select", "textarea":
				if typ := attr("type"); typ == "hidden" || typ == "submit" {
					continue
				}
				controls = append(controls, el.Name.Local+"#"+attr("id"))
			}
		case xml.EndElement:
			if el.Name.Local == "title" {
				inTitle = false
			}
		case xml.CharData:
			if inTitle {
				title += string(el)
			}
		}
	}
	if htmlLang != lang {
		t.Errorf("%s: <html lang=%q>, want %q", name, htmlLang, lang)
	}
	if strings.TrimSpace(title) == "" {
		t.Errorf("%s: no title", name)
	}
	for _, c := range controls {
		id := c[strings.Index(c, "#")+1:]
		if id == "" || !labels[id] {
			t.Errorf("%s: %s has no label", name, c)
		}
	}
}

// A console installed before the first night (nothing evaluated yet)
// shows empty pages, not an error.
func TestPagesBeforeTheFirstNight(t *testing.T) {
	db := testenv.New(t, "").Open(t)
	if _, err := migrations.Up(context.Background(), db.DB); err != nil {
		t.Fatal(err)
	}
	h := newTestConsole(t, db)
	for _, p := range []string{"/console/", "/console/?new=1", "/console/?overdue=1", "/console/nights", "/console/failed", "/console/audit"} {
		if resp, body := get(t, h, p); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s on an empty database: %d %.300s", p, resp.StatusCode, body)
		}
	}
}
