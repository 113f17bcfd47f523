package main

// Security checks of the whole program ("Hardening", item 4): no personal
// data in logs, metrics or Redis; no header injection through a name; no
// secret given as NAME_FILE in any output; a SELECT-only SIS role is
// enough; clear-text SMTP only to loopback; the monitoring UI behind its
// password.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	netmail "net/mail"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hibiken/asynq"
	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"

	"github.com/iec-almaty/sisnotify/integrations/mail"
	"github.com/iec-almaty/sisnotify/integrations/mail/mailtest"
	"github.com/iec-almaty/sisnotify/integrations/sis"
	"github.com/iec-almaty/sisnotify/integrations/sms"
	"github.com/iec-almaty/sisnotify/integrations/testenv"
	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/jobs/rules"
)

// ---------------------------------------------------------------------------
// 1. No personal data in logs, stdout, metrics, Redis or task payloads.

// secFixtureStudent is a student whose personal values are distinctive
// strings, so that any of them found outside the mail and PostgreSQL is a
// leak.
type secFixtureStudent struct {
	id, given, family, email, phone, passport string
}

// secRejectedEmail is refused by the SMTP server (550 naming the mailbox), so
// that an error text carrying an address goes through the logs and Redis.
const secRejectedEmail = "rejectme.kjhgfdsa@student.example"

var secLeakFixture = []secFixtureStudent{
	{"ZA", "Zyxwvutsrq", "Qwertyuiop", "zyxw.qwer@student.example", "+77019876543", "N98765432"},
	// Bad rows: a malformed email, an invalid phone, CR/LF in a name.
	{"ZB", "Plokijuhyg\r\nTgbyhnujmk", "Mnbvcxzasd", "zyxw bad@", "+7701XYZ", "P55501234"},
	// The address the SMTP server refuses; a phone in national format.
	{"ZC", "Lkjhgfdsaq", "Poiuytrewq", secRejectedEmail, "8 701 555 66 77", "K11223344"},
	// Markup in a name.
	{"ZD", "Wqxzvbnmrt", "<i>Xqzvbnrtyu</i>", "wqxz.xqzv@student.example", "+77017654321", "M13572468"},
}

// secBigNight is a night on which every rule fires: 21 days before the
// winter break every active student gets the break briefing.
const secBigNight = "2026-12-04"

// A night of 2,000 students (every rule fires) as `run --once`, then the
// same SIS under `serve` (its catch-up runs tonight's night): nothing
// personal in the logs, stdout, /metrics, the monitoring API, any Redis key
// or value, or any task payload.
func TestNoPersonalDataInLogsMetricsOrRedis(t *testing.T) {
	testenv.Long(t, "runs a night of 2,000 students and serve as processes")
	const spec = "0 6 * * *"
	e := newServeEnv(t, spec)
	// Every rule must fire, welcome included: the built-in rules.
	e.env = slices.DeleteFunc(e.env, func(kv string) bool { return strings.HasPrefix(kv, "SISNOTIFY_CONFIG=") })
	e.env = append(withOffice(t, e.env), "SISNOTIFY_HTTP_USER=operator", "SISNOTIFY_HTTP_PASSWORD=monitor-pw-1")
	redisURL := secEnvValue(e.env, "SISNOTIFY_REDIS_URL")
	tonight := today(t, spec)
	if _, _, err := runCmd(t, map[string]string{"SISNOTIFY_SIS_URL": e.sisURL, "SISNOTIFY_DB_URL": e.dbURL},
		"demo", "--sis-only", "--students", "2000", "--seed", "5", "--as-of", secBigNight); err != nil {
		t.Fatalf("demo --sis-only: %v", err)
	}
	sdb := testenv.Database{URL: e.sisURL}.Open(t)
	var faculty string
	if err := sdb.Get(&faculty, `SELECT min(faculty_id) FROM sis.faculties WHERE dean_email IS NOT NULL`); err != nil {
		t.Fatal(err)
	}
	// Each fixture student twice: entering on the big night (run --once)
	// and tonight (serve), so both send to them.
	entries := slices.Compact([]string{secBigNight, tonight.String()})
	for _, s := range secLeakFixture {
		for _, entered := range entries {
			if _, err := sdb.Exec(`INSERT INTO sis.students (student_id, given_name, family_name, email, phone, preferred_language,
				citizenship, visa_regime, faculty_id, enrollment_status, passport_number, passport_expires_on, entered_on)
				VALUES ($1, $2, $3, $4, $5, 'en', 'IN', 'visa', $6, 'active', $7, '2031-01-31', $8)`,
				s.id+strings.ReplaceAll(entered, "-", ""), s.given, s.family, s.email, s.phone, faculty, s.passport, entered); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A trip notified a day before its departure, tomorrow: the demo's
	// late-notified trips of this seed have all departed by the big night
	// (moot), and every rule must fire.
	late := secLeakFixture[0].id + strings.ReplaceAll(secBigNight, "-", "")
	if _, err := sdb.Exec(`INSERT INTO sis.travel_requests (request_id, student_id, kind, submitted_on, departure_on, return_on, dean_decision)
		VALUES ('SEC-LATE', $1, 'vacation', $2::date, $2::date + 1, $2::date + 10, 'not_required')`, late, secBigNight); err != nil {
		t.Fatal(err)
	}
	e.smtp.Reject(secRejectedEmail)
	var c secCorpus

	// The big night, in the foreground, into a worker database of its own
	// (serve runs tonight's night, which may be earlier).
	runDB := testenv.New(t, "")
	runEnv := append(slices.Clone(e.env), "SISNOTIFY_DB_URL="+runDB.URL)
	out, errOut, err := secRunBinary(t, runEnv, "run", "--once", "--as-of", secBigNight, "--timeout", "2m")
	c.add(secKindLog, "run --once", errOut)
	c.add(secKindStdout, "run --once", out)
	if err != nil {
		t.Fatalf("run --once: %v\n%s", err, secTail(errOut))
	}
	for _, args := range [][]string{{"notices", "--limit", "100000"}, {"notices", "--status", "failed", "--format", "json"}} {
		out, errOut, err := secRunBinary(t, runEnv, args...)
		c.add(secKindLog, strings.Join(args, " "), errOut)
		c.add(secKindStdout, strings.Join(args, " "), out)
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, errOut)
		}
	}
	rdb := runDB.Open(t)
	var fired, notices, failed int
	if err := rdb.QueryRow(`SELECT count(DISTINCT rule), count(*), count(*) FILTER (WHERE status = 'failed') FROM sisnotify.notices`).Scan(&fired, &notices, &failed); err != nil {
		t.Fatal(err)
	}
	// Every rule the SIS alone can open: the rules of students' reports
	// (document-loss, status-change) need a report, which the SIS has not.
	fromSIS := 0
	for _, r := range rules.Defaults() {
		if r.Subject != rules.OnReport {
			fromSIS++
		}
	}
	if fired != fromSIS || failed == 0 {
		var sent []string
		_ = rdb.Select(&sent, `SELECT DISTINCT rule FROM sisnotify.notices ORDER BY 1`)
		t.Fatalf("the big night sent notices of %d rules %v (want all %d of the SIS's), %d failed (want the refused address)", fired, sent, fromSIS, failed)
	}
	var problems int
	if err := rdb.Get(&problems, `SELECT count(*) FROM sisnotify.data_problems WHERE row_id LIKE 'Z%'`); err != nil || problems < 3 {
		t.Fatalf("%d data problems recorded for the fixture's bad rows (%v), want the email, the phone and the name", problems, err)
	}
	c.addRedis(t, "after run --once", redisURL)
	secFlushRedis(t, redisURL) // serve's night has a database of its own: its notice keys may equal the big night's

	// Tonight's night under serve.
	srv := secStartServe(t, e.env)
	db := testenv.Database{URL: e.dbURL}.Open(t)
	secWaitNight(t, db, tonight, 3*time.Minute)
	var servedFailed int
	if err := db.Get(&servedFailed, `SELECT count(*) FROM sisnotify.notices WHERE status = 'failed'`); err != nil || servedFailed == 0 {
		t.Fatalf("serve's night failed %d notices (%v), want the refused address", servedFailed, err)
	}
	code, metrics := secHTTPGet(t, srv.base+"/metrics", "", "")
	if code != 200 || !strings.Contains(metrics, "sisnotify_notices{") {
		t.Fatalf("/metrics: %d\n%.500s", code, metrics)
	}
	c.add(secKindMetrics, "/metrics", metrics)
	for _, p := range []string{"/monitoring/api/queues", "/monitoring/api/queues/notices/archived_tasks?size=1000",
		"/monitoring/api/queues/night/completed_tasks?size=1000"} {
		code, body := secHTTPGet(t, srv.base+p, "operator", "monitor-pw-1")
		if code != 200 {
			t.Fatalf("%s: %d %.300s", p, code, body)
		}
		c.add(secKindHTTP, p, body)
	}
	c.addRedis(t, "while serving", redisURL)
	srv.stop(t)
	c.add(secKindLog, "serve", srv.stderr.String())
	c.add(secKindStdout, "serve", srv.stdout.String())

	f := secNewFinder()
	n := secAddPersonalData(t, f, sdb)
	leaks := c.find(f)
	counts := c.counts()
	t.Logf("checked %d log lines, %d stdout lines, %d metric lines, %d monitoring API responses, %d Redis keys and values (%d keys), %d task fields (%d tasks) for %d personal values of %d students and deans (%s)",
		counts[secKindLog], counts[secKindStdout], counts[secKindMetrics], counts[secKindHTTP], counts[secKindRedis], c.redisKeys, counts[secKindTask], c.tasks,
		f.size(), n, f.summary())
	if c.tasks == 0 || c.redisKeys == 0 {
		t.Fatal("the Redis dumps held no tasks: nothing was checked")
	}
	for _, bad := range c.payloads {
		t.Errorf("task payload %q holds more than an id", bad)
	}
	secReportLeaks(t, "personal data", leaks)

	// The control: the same search finds the values where they belong, in
	// the messages and SMS sent.
	var sent secCorpus
	for _, m := range e.smtp.Messages() {
		head, _, _ := bytes.Cut(m.Data, []byte("\r\n\r\n"))
		parts := secMimeParts(t, m.Data)
		sent.add("mail", m.MessageID(), string(head)+"\n"+parts["text/plain"]+"\n"+parts["text/html"])
	}
	raw, err := os.ReadFile(filepath.Join(e.outbox, "sms.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	sent.add("sms", "sms.jsonl", string(raw))
	found := map[string]bool{}
	for _, l := range sent.find(f) {
		found[l.value] = true
	}
	for _, v := range []string{"Zyxwvutsrq", "Qwertyuiop", "Xqzvbnrtyu", "zyxw.qwer@student.example", "+77019876543", "+77017654321", "77015556677"} {
		if !found[v] {
			t.Errorf("control: %q is not found in the messages sent: the search would miss it elsewhere too", v)
		}
	}
	t.Logf("control: %d of the personal values found in the %d emails and %d SMS sent", len(found), e.smtp.Count(), bytes.Count(raw, []byte("\n")))
}

// ---------------------------------------------------------------------------
// 2. A name cannot add headers or markup.

func TestStudentNameCannotInjectHeadersOrMarkup(t *testing.T) {
	sisDB, db := testenv.New(t, ""), testenv.New(t, "")
	s := sisDB.Open(t)
	if _, err := s.Exec(sis.ReferenceSchema); err != nil {
		t.Fatal(err)
	}
	const student = "ann.obrien@student.example"
	if _, err := s.Exec(`
		INSERT INTO sis.faculties VALUES ('ENG', 'Engineering', 'Dean', 'dean@uni.example', 'en');
		INSERT INTO sis.students (student_id, given_name, family_name, email, preferred_language, visa_regime, faculty_id, enrollment_status, entered_on)
		VALUES ('A0001', E'Ann\r\nBcc: evil@attacker.example', '<b>O''Brien</b>', '` + student + `', 'en', 'visa', 'ENG', 'active', '2026-11-25');
		INSERT INTO sis.travel_requests (request_id, student_id, kind, submitted_on, departure_on, return_on, dean_decision)
		VALUES ('T0001', 'A0001', 'term', '2026-11-25', '2026-12-10', '2026-12-15', 'pending')`); err != nil {
		t.Fatal(err)
	}
	smtp := mailtest.NewServer(t)
	env := map[string]string{
		"SISNOTIFY_SIS_URL": sisDB.URL, "SISNOTIFY_DB_URL": db.URL, "SISNOTIFY_REDIS_URL": testenv.Redis(t, redisDB),
		"SISNOTIFY_SMTP_URL": smtp.URL(), "SISNOTIFY_OUTBOX_DIR": t.TempDir(),
		"SISNOTIFY_OFFICE_EMAILS": "office@uni.example", "SISNOTIFY_SMS_QUIET_HOURS": "",
	}
	if out, errOut, err := runCmd(t, env, "run", "--once", "--as-of", "2026-11-25", "--timeout", "2m"); err != nil {
		t.Fatalf("run --once: %v\n%s\n%s", err, out, secTail(errOut))
	}
	msgs := smtp.Messages()
	toStudent := 0
	for i, m := range msgs {
		head, _, _ := bytes.Cut(m.Data, []byte("\r\n\r\n"))
		if len(m.To) != 1 || strings.Contains(strings.Join(m.To, ","), "attacker") {
			t.Errorf("message %d: envelope recipients %v, want one", i, m.To)
		}
		parsed, err := netmail.ReadMessage(bytes.NewReader(m.Data))
		if err != nil {
			t.Fatalf("message %d does not parse: %v\n%s", i, err, head)
		}
		h := parsed.Header
		for _, name := range []string{"Bcc", "Cc", "Resent-To", "Resent-Bcc", "Reply-To"} {
			if len(h[name]) > 0 {
				t.Errorf("message %d has a %s header: %q", i, name, h[name])
			}
		}
		if to, err := h.AddressList("To"); err != nil || len(to) != 1 || len(h["To"]) != 1 || to[0].Address != m.To[0] {
			t.Errorf("message %d: To %q (%v), want only %s", i, h["To"], err, m.To[0])
		}
		if len(h["Subject"]) != 1 || strings.ContainsAny(m.Header("Subject"), "\r\n") {
			t.Errorf("message %d: Subject %q is not one line", i, h["Subject"])
		}
		for name, vals := range h {
			if name != "Subject" && strings.Contains(strings.Join(vals, " "), "attacker") {
				t.Errorf("message %d: header %s = %q carries the injected address", i, name, vals)
			}
		}
		parts := secMimeParts(t, m.Data)
		if html := parts["text/html"]; strings.Contains(html, "<b>O'Brien") || strings.Contains(html, "O'Brien</b>") {
			t.Errorf("message %d (%s) shows the name's markup as HTML:\n%s", i, m.Header("X-Sisnotify-Kind"), secExcerpt(html, "Brien"))
		}
		if m.To[0] != student {
			continue
		}
		toStudent++
		html := parts["text/html"]
		escaped := false
		for _, want := range []string{"&lt;b&gt;O&#39;Brien&lt;/b&gt;", "&lt;b&gt;O&#x27;Brien&lt;/b&gt;", "&lt;b&gt;O&apos;Brien&lt;/b&gt;"} {
			escaped = escaped || strings.Contains(html, want)
		}
		if !escaped {
			t.Errorf("the student's notice does not show the escaped family name:\n%s", secExcerpt(html, "Brien"))
		}
		if toStudent == 1 {
			t.Logf("student notice: Subject %q; HTML shows %s", m.Header("Subject"), secExcerpt(html, "Brien"))
		}
	}
	if toStudent == 0 {
		t.Fatalf("no notice reached %s among %d messages", student, len(msgs))
	}
	for _, m := range msgs {
		if slices.Contains(m.To, "evil@attacker.example") {
			t.Fatal("a message went to the injected address")
		}
	}
	t.Logf("%d messages checked (%d to the student): one recipient each, no Bcc/Cc, one-line Subject, markup escaped", len(msgs), toStudent)
}

// ---------------------------------------------------------------------------
// 3. Secrets given as NAME_FILE never leak.

func TestSecretsFromFilesNeverLeak(t *testing.T) {
	testenv.Long(t, "runs the binary several times")
	const (
		pgSecret      = "Pg-Secret-123"
		sisSecret     = "Sis-Secret-321"
		smtpSecret    = "Smtp-Secret-456"
		smtpWrong     = "Smtp-Wrong-654"
		httpSecret    = "Http-Secret-789"
		httpWrong     = "Http-Wrong-999"
		mobizonSecret = "Mob-Secret-000"
		twilioSecret  = "Twilio-Secret-111"
		twilioSID     = "AC0123456789abcdef0123456789abcdef"
		spec          = "0 6 * * *"
	)
	tonight := today(t, spec)
	yesterday := tonight.AddDays(-1)
	sisDB, db := testenv.New(t, ""), testenv.New(t, "")
	s := sisDB.Open(t)
	if _, err := s.Exec(sis.ReferenceSchema); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Exec(`INSERT INTO sis.faculties VALUES ('ENG', 'Engineering', 'Dean', 'dean@uni.example', 'en')`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Exec(`
		INSERT INTO sis.students (student_id, given_name, family_name, email, phone, preferred_language, visa_regime, faculty_id, enrollment_status, entered_on)
		VALUES ('K0001', 'Given', 'Family', 'k1@student.example', '+77019876543', 'en', 'visa', 'ENG', 'active', $1),
		       ('K0002', 'Given', 'Family', 'k2@student.example', '+77017654321', 'en', 'visa', 'ENG', 'active', $2)`,
		yesterday.String(), tonight.String()); err != nil {
		t.Fatal(err)
	}

	// A provider that refuses every SMS and quotes the request back,
	// secrets included, in its error.
	var mu sync.Mutex
	var twilioTokens, mobizonKeys []string
	provider := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasSuffix(r.URL.Path, "/Messages.json"):
			_, pw, _ := r.BasicAuth()
			mu.Lock()
			twilioTokens = append(twilioTokens, pw)
			mu.Unlock()
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"code":21211,"message":"The 'To' number %s is not a valid phone number (token %s, request %s)","status":400}`,
				r.PostForm.Get("To"), pw, r.Header.Get("Authorization"))
		case strings.HasSuffix(r.URL.Path, "/sendsmsmessage"):
			key := r.URL.Query().Get("apiKey")
			mu.Lock()
			mobizonKeys = append(mobizonKeys, key)
			mu.Unlock()
			fmt.Fprintf(w, `{"code":1,"data":{"recipient":"%s"},"message":"Invalid recipient %s for apiKey=%s (%s)"}`,
				r.PostForm.Get("recipient"), r.PostForm.Get("recipient"), key, r.URL.String())
		default:
			http.NotFound(w, r)
		}
	}))
	defer provider.Close()
	smtp := mailtest.NewServer(t, mailtest.WithAuth("sisnotify", smtpSecret))

	dir := t.TempDir()
	secretFile := func(name, value string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(value+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	withPassword := func(raw, pw string) string {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		u.User = url.UserPassword(u.User.Username(), pw)
		return u.String()
	}
	dbURL := withPassword(db.URL, pgSecret) // trust authentication ignores it
	sisURL := withPassword(sisDB.URL, sisSecret)
	if !strings.Contains(smtp.URL(), smtpSecret) {
		t.Fatalf("mailtest URL %q does not carry the password", smtp.URL())
	}
	redisURL := testenv.Redis(t, redisDB)
	env := withOffice(t, append(secCleanEnviron(),
		"SISNOTIFY_SIS_URL_FILE="+secretFile("sis-url", sisURL),
		"SISNOTIFY_DB_URL_FILE="+secretFile("db-url", dbURL),
		"SISNOTIFY_SMTP_URL_FILE="+secretFile("smtp-url", smtp.URL()),
		"SISNOTIFY_HTTP_USER=operator",
		"SISNOTIFY_HTTP_PASSWORD_FILE="+secretFile("http-password", httpSecret),
		"SISNOTIFY_MOBIZON_API_KEY_FILE="+secretFile("mobizon-key", mobizonSecret),
		"SISNOTIFY_TWILIO_AUTH_TOKEN_FILE="+secretFile("twilio-token", twilioSecret),
		"SISNOTIFY_TWILIO_ACCOUNT_SID="+twilioSID, "SISNOTIFY_TWILIO_FROM=+15005550006",
		"SISNOTIFY_SMS_API_URL="+provider.URL,
		"SISNOTIFY_REDIS_URL="+redisURL, "SISNOTIFY_OUTBOX_DIR="+t.TempDir(),
		"SISNOTIFY_OFFICE_EMAILS=office@uni.example", "SISNOTIFY_SMS_QUIET_HOURS=",
		"SISNOTIFY_SCHEDULE="+spec, "SISNOTIFY_HTTP_ADDR=127.0.0.1:0"))
	var c secCorpus
	run := func(what string, env []string, wantOK bool, args ...string) {
		t.Helper()
		out, errOut, err := secRunBinary(t, env, args...)
		c.add(secKindLog, what, errOut)
		c.add(secKindStdout, what, out)
		if (err == nil) != wantOK {
			t.Fatalf("%s: %v, want success %v\n%s\n%s", what, err, wantOK, out, secTail(errOut))
		}
	}

	// Yesterday's night in the foreground, SMS through Twilio, which refuses.
	run("run --once (twilio)", append(slices.Clone(env), "SISNOTIFY_SMS_PROVIDER=twilio"), true,
		"run", "--once", "--as-of", yesterday.String(), "--timeout", "30s")
	run("notices", env, true, "notices", "--limit", "1000")

	// Tonight's under serve, SMS through Mobizon, which refuses too; a
	// wrong password at the monitoring UI.
	srv := secStartServe(t, append(slices.Clone(env), "SISNOTIFY_SMS_PROVIDER=mobizon"))
	w := db.Open(t)
	secWaitNight(t, w, tonight, 2*time.Minute)
	for _, r := range []struct {
		path, user, pass string
		want             int
	}{
		{"/monitoring/", "", "", 401},
		{"/monitoring/", "operator", httpWrong, 401},
		{"/monitoring/api/queues", "operator", httpWrong, 401},
		{"/monitoring/", "operator", httpSecret, 200},
		{"/monitoring/api/queues/notices/archived_tasks?size=1000", "operator", httpSecret, 200},
		{"/readyz", "", "", 200},
		{"/metrics", "", "", 200},
	} {
		code, body := secHTTPGet(t, srv.base+r.path, r.user, r.pass)
		if code != r.want {
			t.Errorf("GET %s as %q: %d, want %d", r.path, r.user, code, r.want)
		}
		kind := secKindHTTP
		if r.path == "/metrics" {
			kind = secKindMetrics
		}
		c.add(kind, r.path, body)
	}
	c.addRedis(t, "while serving", redisURL)
	srv.stop(t)
	c.add(secKindLog, "serve", srv.stderr.String())
	c.add(secKindStdout, "serve", srv.stdout.String())

	// Failures on purpose: a wrong SMTP password, databases that cannot
	// be reached, configuration mistakes around the secrets.
	withFile := func(name, value string) []string {
		out := slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, name+"=") })
		return append(out, name+"="+secretFile(strings.ToLower(name), value))
	}
	wrongSMTP := strings.Replace(smtp.URL(), smtpSecret, smtpWrong, 1)
	run("run --once, wrong SMTP password", withFile("SISNOTIFY_SMTP_URL_FILE", wrongSMTP), false,
		"run", "--once", "--as-of", tonight.AddDays(1).String(), "--timeout", "5s")
	missingDB := withPassword(testenv.URLFor("sisnotify_test_no_such_database", ""), pgSecret)
	run("migrate, no such database", withFile("SISNOTIFY_DB_URL_FILE", missingDB), false, "migrate")
	run("migrate, nobody listening", withFile("SISNOTIFY_DB_URL_FILE", "postgres://postgres:"+pgSecret+"@127.0.0.1:1/x?sslmode=disable&connect_timeout=2"), false, "migrate")
	run("migrate, malformed URL", withFile("SISNOTIFY_DB_URL_FILE", "postgres://postgres:"+pgSecret+"@127.0.0.1:port/x"), false, "migrate")
	run("sync, no such SIS", withFile("SISNOTIFY_SIS_URL_FILE", withPassword(testenv.URLFor("sisnotify_test_no_such_sis", ""), sisSecret)), false, "sync")
	run("migrate, value and file", append(slices.Clone(env), "SISNOTIFY_DB_URL="+dbURL), false, "migrate")
	run("serve, clear text to a remote SMTP host", withFile("SISNOTIFY_SMTP_URL_FILE", "smtp://sisnotify:"+smtpSecret+"@mail.example.com:25?tls=none"), false, "serve")
	run("serve, a bad SMTP parameter", withFile("SISNOTIFY_SMTP_URL_FILE", "smtp://sisnotify:"+smtpSecret+"@127.0.0.1:25?tls=none&x="+smtpSecret), false, "serve")
	run("notices --status failed", env, true, "notices", "--status", "failed", "--format", "json")
	c.addRedis(t, "at the end", redisURL)

	// The secrets were used: the SMTP server saw logins, the providers the
	// token and the key.
	authed := 0
	for _, m := range smtp.Messages() {
		if m.Authed {
			authed++
		}
	}
	mu.Lock()
	tokens, keys := slices.Compact(slices.Sorted(slices.Values(twilioTokens))), slices.Compact(slices.Sorted(slices.Values(mobizonKeys)))
	mu.Unlock()
	if authed == 0 || authed != smtp.Count() || !slices.Equal(tokens, []string{twilioSecret}) || !slices.Equal(keys, []string{mobizonSecret}) {
		t.Fatalf("secrets not used as configured: %d of %d emails authenticated, Twilio saw %q, Mobizon %q", authed, smtp.Count(), tokens, keys)
	}
	var smsFailed int
	if err := w.Get(&smsFailed, `SELECT count(*) FROM sisnotify.notices WHERE channel = 'sms' AND status = 'failed'`); err != nil || smsFailed < 2 {
		t.Fatalf("%d SMS failed (%v), want the ones both providers refused", smsFailed, err)
	}
	// Nor are they in the worker's own tables (the errors it recorded).
	var tables []string
	if err := w.Select(&tables, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'sisnotify' AND table_type = 'BASE TABLE'`); err != nil {
		t.Fatal(err)
	}
	rows := 0
	for _, tbl := range tables {
		var texts []string
		if err := w.Select(&texts, `SELECT t::text FROM sisnotify.`+tbl+` t`); err != nil {
			t.Fatal(err)
		}
		rows += len(texts)
		c.add(secKindDB, "sisnotify."+tbl, strings.Join(texts, "\n"))
	}

	f := secNewFinder()
	for _, sec := range []string{pgSecret, sisSecret, smtpSecret, smtpWrong, httpSecret, httpWrong, mobizonSecret, twilioSecret} {
		f.add("secret", sec, secExact)
		f.add("secret", url.QueryEscape(sec), secExact)
	}
	for _, cred := range []string{"operator:" + httpSecret, "operator:" + httpWrong, twilioSID + ":" + twilioSecret, "\x00sisnotify\x00" + smtpSecret, "sisnotify:" + smtpSecret} {
		f.add("secret (base64)", base64.StdEncoding.EncodeToString([]byte(cred)), secExact)
	}
	counts := c.counts()
	t.Logf("checked %d log lines, %d stdout lines, %d metric lines, %d HTTP responses, %d Redis keys and values, %d task fields, %d rows of the worker's tables for %d secret forms; %d emails sent with SMTP AUTH, %d SMS refused by Twilio and Mobizon",
		counts[secKindLog], counts[secKindStdout], counts[secKindMetrics], counts[secKindHTTP], counts[secKindRedis], counts[secKindTask], rows, f.size(), authed, smsFailed)
	for _, bad := range c.payloads {
		t.Errorf("task payload %q holds more than an id", bad)
	}
	secReportLeaks(t, "secrets", c.find(f))
}

// ---------------------------------------------------------------------------
// 4. A SELECT-only SIS role is enough, and cannot write.

func TestNightRunsWithASelectOnlySISRole(t *testing.T) {
	sisDB, db := testenv.New(t, ""), testenv.New(t, "")
	outbox := t.TempDir()
	env := map[string]string{
		"SISNOTIFY_SIS_URL": sisDB.URL, "SISNOTIFY_DB_URL": db.URL, "SISNOTIFY_REDIS_URL": testenv.Redis(t, redisDB),
		"SISNOTIFY_OUTBOX_DIR": outbox, "SISNOTIFY_OFFICE_EMAILS": "office@uni.example", "SISNOTIFY_SMS_QUIET_HOURS": "",
	}
	if _, _, err := runCmd(t, env, "demo", "--sis-only", "--students", "500", "--seed", "7", "--as-of", "2026-11-25"); err != nil {
		t.Fatalf("demo --sis-only: %v", err)
	}
	admin := sisDB.Open(t)
	role := testenv.CreateRole(t, admin, "sis_reader",
		`GRANT CONNECT ON DATABASE "`+sisDB.Name+`" TO {role}`,
		`GRANT USAGE ON SCHEMA sis TO {role}`,
		`GRANT SELECT ON ALL TABLES IN SCHEMA sis TO {role}`)
	readerURL := testenv.URLFor(sisDB.Name, role)
	env["SISNOTIFY_SIS_URL"] = readerURL

	out, errOut, err := runCmd(t, env, "run", "--once", "--as-of", "2026-11-25", "--timeout", "2m")
	if err != nil {
		t.Fatalf("run --once as %s: %v\n%s\n%s", role, err, out, secTail(errOut))
	}
	w := db.Open(t)
	var students, notices, sent int
	if err := w.QueryRow(`SELECT (SELECT count(*) FROM sisnotify.students), count(*), count(*) FILTER (WHERE status = 'sent') FROM sisnotify.notices`).Scan(&students, &notices, &sent); err != nil {
		t.Fatal(err)
	}
	emails, smsLines := outboxCounts(t, outbox)
	if students != 500 || notices == 0 || sent != notices || emails+smsLines != notices {
		t.Fatalf("as %s: %d students synced, %d of %d notices sent, outbox %d emails + %d SMS", role, students, sent, notices, emails, smsLines)
	}

	// The same role cannot change the SIS.
	reader := testenv.Database{URL: readerURL}.Open(t)
	refused := 0
	for _, q := range []string{
		`UPDATE sis.students SET given_name = given_name`,
		`INSERT INTO sis.faculties VALUES ('X', 'X', 'X', NULL, NULL)`,
		`DELETE FROM sis.travel_requests`,
		`TRUNCATE sis.academic_periods`,
		`SELECT student_id FROM sis.students LIMIT 1 FOR UPDATE`,
		`CREATE TABLE sis.scratch (i int)`,
		`CREATE TABLE public.scratch (i int)`,
	} {
		_, err := reader.Exec(q)
		if err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("as %s, %q: %v, want permission denied", role, q, err)
			continue
		}
		refused++
	}
	var rows int
	if err := reader.Get(&rows, `SELECT count(*) FROM sis.students`); err != nil || rows != 500 {
		t.Fatalf("the role reads %d students (%v)", rows, err)
	}
	t.Logf("as %s (CONNECT, USAGE on sis, SELECT on its tables): synced %d students, sent %d notices; %d writes refused with permission denied", role, students, sent, refused)
}

// ---------------------------------------------------------------------------
// 5. Clear-text SMTP only to a loopback host; STARTTLS is required
// otherwise.

func TestClearTextSMTPOnlyToLoopback(t *testing.T) {
	accepted := []struct {
		url  string
		mode mail.TLSMode
		port int
	}{
		{"smtp://user:s3cret-pw@mail.example.com:587", mail.TLSStartTLS, 587},
		{"smtp://user:s3cret-pw@mail.example.com", mail.TLSStartTLS, 587},
		{"smtps://user:s3cret-pw@mail.example.com:465", mail.TLSImplicit, 465},
		{"smtp://user:s3cret-pw@127.0.0.1:2525?tls=none", mail.TLSNone, 2525},
		{"smtp://localhost:25?tls=none", mail.TLSNone, 25},
		{"smtp://[::1]:25?tls=none", mail.TLSNone, 25},
	}
	for _, a := range accepted {
		cfg, err := loadConfig(envOf(map[string]string{"SISNOTIFY_SMTP_URL": a.url}), need{})
		if err != nil {
			t.Errorf("%s: refused: %v", a.url, err)
			continue
		}
		if mc := cfg.Mail; mc.TLS != a.mode || mc.Port != a.port {
			t.Errorf("%s: mail config %v, want tls=%s port %d", a.url, mc, a.mode, a.port)
		}
	}
	refused := []string{
		"smtp://user:s3cret-pw@mail.example.com:587?tls=none",
		"smtp://user:s3cret-pw@mail.example.com:25?tls=none",
		"smtps://user:s3cret-pw@mail.example.com:465?tls=none",
		"smtp://user:s3cret-pw@10.0.0.25:25?tls=none",
		"smtp://user:s3cret-pw@0.0.0.0:25?tls=none",
		"smtp://user:s3cret-pw@127.0.0.1.nip.io:25?tls=none",
		"smtp://user:s3cret-pw@localhost.attacker.example:25?tls=none",
	}
	base := map[string]string{"SISNOTIFY_DB_URL": goodPG, "SISNOTIFY_SIS_URL": goodPG, "SISNOTIFY_OFFICE_EMAILS": "office@uni.example"}
	for _, u := range refused {
		for _, args := range [][]string{{"migrate"}, {"run", "--once"}, {"serve"}} {
			env := secWith(base, "SISNOTIFY_SMTP_URL", u)
			_, _, err := runCmd(t, env, args...)
			if exitStatus(err) != 2 || !strings.HasPrefix(err.Error(), "SISNOTIFY_SMTP_URL: ") || !strings.Contains(err.Error(), "tls=none") {
				t.Errorf("%s with %s: %v, want exit 2 naming SISNOTIFY_SMTP_URL", args[0], u, err)
				continue
			}
			if strings.Contains(err.Error(), "s3cret-pw") {
				t.Errorf("%s: the error quotes the password: %v", u, err)
			}
		}
		if _, err := mail.ParseURL(u); err == nil || strings.Contains(err.Error(), "s3cret-pw") {
			t.Errorf("mail.ParseURL(%s): %v, want a refusal without the password", u, err)
		}
	}

	// smtp:// without tls=none requires STARTTLS, also on loopback: a
	// server that does not offer it gets neither the password nor the
	// message.
	const secret = "Smtp-Secret-456"
	plain := mailtest.NewServer(t, mailtest.WithAuth("user", secret))
	mc, err := mail.ParseURL("smtp://user:" + secret + "@" + plain.Addr())
	if err != nil {
		t.Fatal(err)
	}
	mc.Timeout = 10 * time.Second
	send := func(mc mail.Config) error {
		sender, err := mail.New(mc)
		if err != nil {
			t.Fatal(err)
		}
		defer sender.Close()
		_, _, err = sender.Send(context.Background(), mail.Message{To: "someone@uni.example", Subject: "TLS check", Text: "hello",
			MessageID: "<tls-check@sisnotify>"})
		return err
	}
	err = send(mc)
	if err == nil || plain.Count() != 0 {
		t.Fatalf("STARTTLS required, server without it: err %v, %d messages received", err, plain.Count())
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("the error quotes the password: %v", err)
	}
	t.Logf("no STARTTLS offered: %v", err)
	// With STARTTLS offered, the same URL sends, encrypted and logged in.
	serverTLS, clientTLS := mailtest.SelfSignedTLS(t)
	withTLS := mailtest.NewServer(t, mailtest.WithTLS(serverTLS), mailtest.WithAuth("user", secret))
	mc, err = mail.ParseURL("smtp://user:" + secret + "@" + withTLS.Addr())
	if err != nil {
		t.Fatal(err)
	}
	mc.TLSConfig = clientTLS.Clone()
	if err := send(mc); err != nil {
		t.Fatalf("STARTTLS offered: %v", err)
	}
	if m := withTLS.Messages(); len(m) != 1 || !m[0].TLS || !m[0].Authed {
		t.Fatalf("STARTTLS offered: %d messages, want one over TLS and authenticated", len(m))
	}
}

// secWith returns a copy of m with k set to v.
func secWith(m map[string]string, k, v string) map[string]string {
	out := maps.Clone(m)
	out[k] = v
	return out
}

// ---------------------------------------------------------------------------
// 6. The monitoring UI needs its password, and is off without a user.

func TestServeMonitoringUINeedsItsPassword(t *testing.T) {
	testenv.Long(t, "runs serve twice")
	e := newServeEnv(t, "0 6 * * *")
	s := testenv.Database{URL: e.sisURL}.Open(t)
	if _, err := s.Exec(sis.ReferenceSchema); err != nil {
		t.Fatal(err)
	}
	const user, password = "operator", "Monitor-Pass-42"
	srv := secStartServe(t, append(slices.Clone(e.env), "SISNOTIFY_HTTP_USER="+user, "SISNOTIFY_HTTP_PASSWORD="+password))
	for _, r := range []struct {
		path, user, pass string
		want             int
	}{
		{"/monitoring/", "", "", 401},
		{"/monitoring/api/queues", "", "", 401},
		{"/monitoring/", user, "wrong", 401},
		{"/monitoring/", "admin", password, 401},
		{"/monitoring/", user, password, 200},
		{"/monitoring/api/queues", user, password, 200},
		{"/healthz", "", "", 200},
	} {
		if code, body := secHTTPGet(t, srv.base+r.path, r.user, r.pass); code != r.want {
			t.Errorf("with the UI on, GET %s as %q/%q: %d, want %d\n%.200s", r.path, r.user, r.pass, code, r.want, body)
		}
	}
	srv.stop(t)
	if strings.Contains(srv.stderr.String()+srv.stdout.String(), password) {
		t.Error("serve printed the monitoring password")
	}

	srv = secStartServe(t, e.env) // no SISNOTIFY_HTTP_USER
	for _, r := range []struct {
		path, user, pass string
		want             int
	}{
		{"/monitoring/", "", "", 404},
		{"/monitoring/", user, password, 404},
		{"/monitoring/api/queues", user, password, 404},
		{"/healthz", "", "", 200},
	} {
		if code, _ := secHTTPGet(t, srv.base+r.path, r.user, r.pass); code != r.want {
			t.Errorf("with the UI off, GET %s: %d, want %d", r.path, code, r.want)
		}
	}
	srv.stop(t)
}

// ---------------------------------------------------------------------------
// Running the binary.

// secCleanEnviron is the test's environment without SISNOTIFY_ variables, so
// that a developer's own settings cannot meet the _FILE twins of a test.
func secCleanEnviron() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "SISNOTIFY_") && !strings.HasPrefix(kv, "SISNOTIFY_TEST_")
	})
}

// secEnvValue is the last value of name in env.
func secEnvValue(env []string, name string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == name {
			v = val
		}
	}
	return v
}

// secRunBinary runs the built sisnotify to its end.
func secRunBinary(t *testing.T, env []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}

// secSyncBuffer collects a running process's output.
type secSyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *secSyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *secSyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// secServed is a running `sisnotify serve`.
type secServed struct {
	cmd            *exec.Cmd
	stdout, stderr *secSyncBuffer
	base           string // http://host:port, from its "http: listening" log line
	exited         chan struct{}
	err            error // of Wait, once exited is closed
}

func secStartServe(t *testing.T, env []string) *secServed {
	t.Helper()
	s := &secServed{cmd: exec.Command(binary(t), "serve"), stdout: &secSyncBuffer{}, stderr: &secSyncBuffer{}, exited: make(chan struct{})}
	s.cmd.Env = env
	s.cmd.Stdout, s.cmd.Stderr = s.stdout, s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.err = s.cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() {
		select {
		case <-s.exited:
		default:
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	})
	deadline := time.Now().Add(time.Minute)
	for s.base == "" {
		for _, line := range strings.Split(s.stderr.String(), "\n") {
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "http: listening" {
				s.base = "http://" + rec.Addr
			}
		}
		select {
		case <-s.exited:
			t.Fatalf("serve exited: %v\n%s", s.err, secTail(s.stderr.String()))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve does not listen after a minute\n%s", secTail(s.stderr.String()))
		}
		time.Sleep(50 * time.Millisecond)
	}
	return s
}

// stop sends SIGTERM and wants exit status 0.
func (s *secServed) stop(t *testing.T) {
	t.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(45 * time.Second):
		t.Fatal("serve did not stop within 45 s of SIGTERM")
	}
	if s.err != nil {
		t.Errorf("serve exited with %v after SIGTERM, want 0\n%s", s.err, secTail(s.stderr.String()))
	}
}

// secWaitNight waits until the night is recorded as run, and wants it ok.
func secWaitNight(t *testing.T, db *sqlx.DB, night date.Date, d time.Duration) {
	t.Helper()
	var status string
	waitFor(t, "the night of "+night.String(), d, func() bool {
		_ = db.Get(&status, `SELECT status FROM sisnotify.nights WHERE night = $1`, night.String())
		return status == "ok" || status == "failed"
	})
	if status != "ok" {
		t.Fatalf("the night of %s %s", night, status)
	}
}

func secHTTPGet(t *testing.T, u, user, pass string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" || pass != "" {
		req.SetBasicAuth(user, pass)
	}
	client := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return resp.StatusCode, string(b)
}

func secFlushRedis(t *testing.T, u string) {
	t.Helper()
	c := secRedisClient(t, u)
	defer c.Close()
	if err := c.FlushDB(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
}

func secRedisClient(t *testing.T, u string) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	return redis.NewClient(opt)
}

func secTail(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n")
}

// ---------------------------------------------------------------------------
// What the processes said, and where a value is found in it.

const (
	secKindLog     = "log"
	secKindStdout  = "stdout"
	secKindMetrics = "metrics"
	secKindHTTP    = "http"
	secKindRedis   = "redis"
	secKindTask    = "task"
	secKindDB      = "db"
)

type secTextPart struct{ kind, source, text string }

// secCorpus is every text a test checks.
type secCorpus struct {
	parts     []secTextPart
	redisKeys int
	tasks     int
	payloads  []string // task payloads that are not just an id
}

func (c *secCorpus) add(kind, source, text string) {
	c.parts = append(c.parts, secTextPart{kind, source, text})
}

// counts are the lines of the logs, stdout and metrics, and the values of
// the other kinds.
func (c *secCorpus) counts() map[string]int {
	n := map[string]int{}
	for _, p := range c.parts {
		switch p.kind {
		case secKindLog, secKindStdout, secKindMetrics:
			for _, l := range strings.Split(p.text, "\n") {
				if strings.TrimSpace(l) != "" {
					n[p.kind]++
				}
			}
		default:
			n[p.kind]++
		}
	}
	return n
}

// secIdPayload is every shape a task's payload may have: a notice's id, a
// night's date, or the period of an SMS receipt poll (a time, nothing of
// anyone's).
var secIdPayload = regexp.MustCompile(`^\{"(notice_id":[0-9]+|night":"[0-9]{4}-[0-9]{2}-[0-9]{2}"|period":"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")\}$`)

// addRedis adds every key of the Redis database and every value in it
// (read as its type needs: GET, HGETALL, LRANGE, SMEMBERS, ZRANGE, XRANGE),
// and every asynq task's id, type, payload, last error and result.
func (c *secCorpus) addRedis(t *testing.T, when, u string) {
	t.Helper()
	rc := secRedisClient(t, u)
	defer rc.Close()
	ctx := context.Background()
	seen := map[string]bool{}
	var cursor uint64
	for {
		keys, next, err := rc.Scan(ctx, cursor, "*", 1000).Result()
		if err != nil {
			t.Fatalf("redis scan: %v", err)
		}
		for _, k := range keys {
			if seen[k] {
				continue
			}
			seen[k] = true
			src := "redis " + when + ": " + k
			c.add(secKindRedis, src+" (key)", k)
			typ, err := rc.Type(ctx, k).Result()
			if err != nil {
				t.Fatalf("redis type %s: %v", k, err)
			}
			var vals []string
			switch typ {
			case "string":
				v, err := rc.Get(ctx, k).Result()
				if err == nil {
					vals = []string{v}
				}
			case "hash":
				m, _ := rc.HGetAll(ctx, k).Result()
				for f, v := range m {
					vals = append(vals, f, v)
				}
			case "list":
				vals, _ = rc.LRange(ctx, k, 0, -1).Result()
			case "set":
				vals, _ = rc.SMembers(ctx, k).Result()
			case "zset":
				vals, _ = rc.ZRange(ctx, k, 0, -1).Result()
			case "stream":
				msgs, _ := rc.XRange(ctx, k, "-", "+").Result()
				for _, m := range msgs {
					vals = append(vals, fmt.Sprint(m.ID, m.Values))
				}
			case "none": // expired meanwhile
			default:
				t.Errorf("redis key %s of type %s not read", k, typ)
			}
			for _, v := range vals {
				c.add(secKindRedis, src, v)
			}
		}
		if next == 0 {
			break
		}
		cursor = next
	}
	c.redisKeys += len(seen)

	insp := asynq.NewInspectorFromRedisClient(rc)
	queues, err := insp.Queues()
	if err != nil {
		t.Fatalf("asynq queues: %v", err)
	}
	for _, q := range queues {
		for _, list := range []func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){
			insp.ListPendingTasks, insp.ListActiveTasks, insp.ListScheduledTasks,
			insp.ListRetryTasks, insp.ListArchivedTasks, insp.ListCompletedTasks,
		} {
			for page := 1; ; page++ {
				tasks, err := list(q, asynq.PageSize(1000), asynq.Page(page))
				if err != nil {
					t.Fatalf("asynq list %s: %v", q, err)
				}
				for _, ti := range tasks {
					c.tasks++
					src := fmt.Sprintf("task %s %s/%s (%s)", when, q, ti.ID, ti.State)
					for _, v := range []string{ti.ID, ti.Type, string(ti.Payload), ti.LastErr, string(ti.Result)} {
						c.add(secKindTask, src, v)
					}
					if !secIdPayload.Match(ti.Payload) {
						c.payloads = append(c.payloads, string(ti.Payload))
					}
				}
				if len(tasks) < 1000 {
					break
				}
			}
		}
	}
}

// secLeak is one value found where it must not be.
type secLeak struct {
	what, value, kind, source, context string
}

// find scans every part for every needle.
func (c *secCorpus) find(f *secFinder) []secLeak {
	var out []secLeak
	for _, p := range c.parts {
		for _, h := range f.scan(p.text) {
			out = append(out, secLeak{h.n.what, h.n.s, p.kind, p.source, h.context})
		}
	}
	return out
}

func secReportLeaks(t *testing.T, what string, leaks []secLeak) {
	t.Helper()
	if len(leaks) == 0 {
		return
	}
	byValue := map[string]int{}
	for _, l := range leaks {
		byValue[l.what+" "+l.value]++
	}
	t.Errorf("%d occurrences of %s (%d distinct values) where none may be", len(leaks), what, len(byValue))
	for i, l := range leaks {
		if i == 30 {
			t.Errorf("... and %d more", len(leaks)-i)
			break
		}
		t.Errorf("%s %q in %s (%s): %s", l.what, l.value, l.kind, l.source, l.context)
	}
}

type secNeedleKind int

const (
	secExact  secNeedleKind = iota // anywhere
	secWord                        // not inside a longer word (a name)
	secNumber                      // not inside a longer number (a phone, a passport of digits)
)

type secNeedle struct {
	what, s string
	kind    secNeedleKind
}

// secFinder looks for many values at once: needles are indexed by their
// first bytes, so a text is read once whatever their number.
type secFinder struct {
	by   map[string][]secNeedle
	seen map[secNeedle]bool
	what map[string]int
}

const secPrefixLen = 4

func secNewFinder() *secFinder {
	return &secFinder{by: map[string][]secNeedle{}, seen: map[secNeedle]bool{}, what: map[string]int{}}
}

// add registers s; values shorter than 4 bytes are too common to look for
// on their own.
func (f *secFinder) add(what, s string, kind secNeedleKind) {
	if len(s) < secPrefixLen {
		return
	}
	n := secNeedle{what, s, kind}
	if f.seen[n] {
		return
	}
	f.seen[n] = true
	f.what[what]++
	f.by[s[:secPrefixLen]] = append(f.by[s[:secPrefixLen]], n)
}

func (f *secFinder) size() int { return len(f.seen) }

func (f *secFinder) summary() string {
	var parts []string
	for _, w := range slices.Sorted(maps.Keys(f.what)) {
		parts = append(parts, fmt.Sprintf("%d %s", f.what[w], w))
	}
	return strings.Join(parts, ", ")
}

type secHit struct {
	n       secNeedle
	context string
}

func (f *secFinder) scan(text string) []secHit {
	var out []secHit
	for i := 0; i+secPrefixLen <= len(text); i++ {
		for _, n := range f.by[text[i:i+secPrefixLen]] {
			if strings.HasPrefix(text[i:], n.s) && secBounded(text, i, i+len(n.s), n.kind) {
				out = append(out, secHit{n, secLineAround(text, i, i+len(n.s))})
			}
		}
	}
	return out
}

func secBounded(text string, i, j int, kind secNeedleKind) bool {
	switch kind {
	case secWord:
		if r, _ := utf8.DecodeLastRuneInString(text[:i]); i > 0 && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			return false
		}
		if r, _ := utf8.DecodeRuneInString(text[j:]); j < len(text) && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			return false
		}
	case secNumber:
		isDigit := func(b byte) bool { return b >= '0' && b <= '9' }
		// Nor the fraction of a number (the nanoseconds of a timestamp).
		if i > 0 && (isDigit(text[i-1]) || text[i-1] == '.') || j < len(text) && isDigit(text[j]) {
			return false
		}
	}
	return true
}

func secLineAround(text string, i, j int) string {
	start := strings.LastIndexByte(text[:i], '\n') + 1
	end := len(text)
	if k := strings.IndexByte(text[j:], '\n'); k >= 0 {
		end = j + k
	}
	if i-start > 150 {
		start = i - 150
	}
	if end-j > 150 {
		end = j + 150
	}
	return fmt.Sprintf("%q", text[start:end])
}

var (
	secMarkup  = regexp.MustCompile(`<[^>]*>`)
	secNonWord = func(r rune) bool { return !unicode.IsLetter(r) && r != '\'' && r != '-' }
)

// secAddPersonalData reads every personal value of the SIS (students' names,
// emails, phones and passport numbers; deans' names and emails) into f,
// with the forms in which the worker might print them: names whole and
// word by word, phones as written, in E.164 and as bare digits. It returns
// the number of people read.
func secAddPersonalData(t *testing.T, f *secFinder, db *sqlx.DB) int {
	t.Helper()
	var people []struct {
		Given    string `db:"given_name"`
		Family   string `db:"family_name"`
		Email    string `db:"email"`
		Phone    string `db:"phone"`
		Passport string `db:"passport_number"`
	}
	if err := db.Select(&people, `
		SELECT given_name, family_name, coalesce(email, '') AS email, coalesce(phone, '') AS phone, coalesce(passport_number, '') AS passport_number
		FROM sis.students
		UNION ALL
		SELECT dean_name, '', coalesce(dean_email, ''), '', '' FROM sis.faculties`); err != nil {
		t.Fatal(err)
	}
	for _, p := range people {
		f.add("name", strings.TrimSpace(p.Given+" "+p.Family), secExact)
		for _, part := range []string{p.Given, p.Family} {
			f.add("name", strings.TrimSpace(part), secExact)
			for _, w := range strings.FieldsFunc(secMarkup.ReplaceAllString(part, " "), secNonWord) {
				// Capitalised words only: "alert" of <script>alert(1)</script>
				// is markup, not a name.
				if r, _ := utf8.DecodeRuneInString(w); unicode.IsUpper(r) {
					f.add("name", w, secWord)
				}
			}
		}
		if e := strings.TrimSpace(p.Email); e != "" {
			f.add("email", e, secExact)
			f.add("email", strings.ToLower(e), secExact)
		}
		if ph := strings.TrimSpace(p.Phone); ph != "" {
			digits := strings.Map(func(r rune) rune {
				if r >= '0' && r <= '9' {
					return r
				}
				return -1
			}, ph)
			if len(digits) >= 7 {
				f.add("phone", digits, secNumber)
			}
			// As written, unless it is a short run of digits (an invalid
			// "12345" is no one's number, and is in every timestamp).
			if digits != ph || len(digits) >= 7 {
				f.add("phone", ph, secExact)
			}
			if e164, err := sms.NormalizePhone(ph); err == nil {
				f.add("phone", e164, secExact)
				f.add("phone", strings.TrimPrefix(e164, "+"), secNumber)
				if len(e164) > 11 {
					f.add("phone", e164[len(e164)-10:], secNumber) // the national number
				}
			}
		}
		if pp := strings.TrimSpace(p.Passport); pp != "" {
			if strings.Trim(pp, "0123456789") == "" {
				f.add("passport", pp, secNumber)
			} else {
				f.add("passport", pp, secExact)
			}
		}
	}
	for _, s := range secLeakFixture {
		if !f.seen[secNeedle{"email", s.email, secExact}] || !f.seen[secNeedle{"passport", s.passport, secExact}] {
			t.Fatalf("the fixture student %s was not read from the SIS", s.id)
		}
	}
	return len(people)
}

// ---------------------------------------------------------------------------
// Reading an email.

// secMimeParts returns the decoded bodies of a message's leaf parts by media
// type.
func secMimeParts(t *testing.T, data []byte) map[string]string {
	t.Helper()
	parts, err := mailtest.Message{Data: data}.Parts()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, p := range parts {
		out[p.MediaType] += string(p.Body)
	}
	return out
}

// secExcerpt is the text around the first occurrence of s.
func secExcerpt(text, s string) string {
	i := strings.Index(text, s)
	if i < 0 {
		return fmt.Sprintf("(no %q in %d bytes)", s, len(text))
	}
	return secLineAround(text, i, i+len(s))
}
