package jobs_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iec-almaty/sisnotify/integrations/mail"
	"github.com/iec-almaty/sisnotify/integrations/mail/mailtest"
	"github.com/iec-almaty/sisnotify/integrations/testenv"
	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/jobs/rules"
	"github.com/iec-almaty/sisnotify/templates"
)

// digestFixture, as of 2026-11-25. Everyone visited the office after
// entry; the ones not registered have a registration obligation:
//
//	S1 ENG  entered 10 Nov: registration L3, 12 days overdue (office + dean)
//	S2 ENG  entered 20 Nov: registration L3, 2 days overdue (office + dean)
//	S3 ECO  entered 18 Nov: registration L3, 4 days overdue (office + dean)
//	S4 LAW  entered 19 Nov: registration L3, 3 days overdue (office; Law has no dean email)
//	S5 none entered 21 Nov: registration L3, 1 day overdue (office; no faculty: a data problem)
//	S6 MED  registered: nothing (the Medicine dean gets no digest)
//	S7 ECO  passport expires 1 Apr 2027: passport-renewal L3, 55 days overdue (office only)
//	S8 ENG  entered 25 Nov: registration L1, 3 days left (office only)
const digestFixture = `
INSERT INTO sis.faculties VALUES
 ('ENG', 'Engineering', 'Dean Engineering', 'dean.eng@uni.example', 'en'),
 ('ECO', 'Economics', 'Dean Economics', 'dean.eco@uni.example', NULL),
 ('LAW', 'Law', 'Dean Law', NULL, NULL),
 ('MED', 'Medicine', 'Dean Medicine', 'dean.med@uni.example', 'kk');
INSERT INTO sis.students (student_id, given_name, family_name, email, phone, preferred_language, citizenship, visa_regime, faculty_id, enrollment_status, passport_number, passport_expires_on, entered_on, office_check_in_on, registered_on)
VALUES
 ('S1', 'Aigerim', 'Bekova', 's1@student.example', '+77011234561', 'kk', 'KG', 'eaeu', 'ENG', 'active', 'P1', '2030-01-01', '2026-11-10', '2026-11-10', NULL),
 ('S2', 'Wei', 'Zhang', 's2@student.example', '+77011234562', 'en', 'CN', 'visa_free', 'ENG', 'active', 'P2', '2030-01-01', '2026-11-20', '2026-11-20', NULL),
 ('S3', 'Ali', 'Karimov', 's3@student.example', '+77011234563', 'ru', 'UZ', 'visa_free', 'ECO', 'active', 'P3', '2030-01-01', '2026-11-18', '2026-11-18', NULL),
 ('S4', 'Liam', 'O''Brien', 's4@student.example', '+77011234564', 'en', 'IE', 'visa_free', 'LAW', 'active', 'P4', '2030-01-01', '2026-11-19', '2026-11-19', NULL),
 ('S5', 'Nodir', 'Aliev', 's5@student.example', '+77011234565', 'ru', 'UZ', 'visa_free', NULL, 'active', 'P5', '2030-01-01', '2026-11-21', '2026-11-21', NULL),
 ('S6', 'Anna', 'Petrova', 's6@student.example', '+77011234566', 'ru', 'RU', 'eaeu', 'MED', 'active', 'P6', '2030-01-01', '2026-11-01', '2026-11-01', '2026-11-02'),
 ('S7', 'Van An', 'Nguyen', 's7@student.example', '+77011234567', 'en', 'VN', 'visa_free', 'ECO', 'active', 'P7', '2027-04-01', '2026-09-01', '2026-09-01', '2026-09-02'),
 ('S8', 'Fatima', 'Yusupova', 's8@student.example', '+77011234568', 'ru', 'TJ', 'visa_free', 'ENG', 'active', 'P8', '2030-01-01', '2026-11-25', '2026-11-25', NULL);
`

var digestOffice = templates.Office{Name: "International Office", Address: "Room 112", Hours: "9-18", Phone: "+7 727 355 05 67", Email: "io@uni.example"}

// digestSet is parsed once for the package's digest tests.
var digestSet = sync.OnceValues(templates.New)

// digestRig is a digest job against a real SMTP server (mailtest).
type digestRig struct {
	e    *env
	smtp *mailtest.Server
	d    *jobs.Digest
}

func newDigestRig(t *testing.T, e *env, office ...string) *digestRig {
	t.Helper()
	srv := mailtest.NewServer(t)
	cfg, err := mail.ParseURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	cfg.From = "International Office <international@uni.example>"
	pool, err := mail.NewPool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	set, err := digestSet()
	if err != nil {
		t.Fatal(err)
	}
	return &digestRig{e: e, smtp: srv, d: &jobs.Digest{DB: e.db, Mail: pool, Templates: set, Office: digestOffice,
		OfficeLang: "ru", OfficeEmails: office, Location: time.UTC}}
}

// night evaluates day and runs its digests.
func (r *digestRig) night(t *testing.T, day string) jobs.DigestResult {
	t.Helper()
	r.e.evaluate(t, day)
	return r.run(t, day)
}

func (r *digestRig) run(t *testing.T, day string) jobs.DigestResult {
	t.Helper()
	res, err := r.d.Run(context.Background(), mustDate(day))
	if err != nil {
		t.Fatalf("digest %s: %v", day, err)
	}
	return res
}

// received is one digest as the SMTP server got it.
type received struct {
	msg           mailtest.Message
	subject, text string
}

// mailTo returns the digests each address received, in order.
func (r *digestRig) mailTo(t *testing.T) map[string][]received {
	t.Helper()
	return digestsByRecipient(t, r.smtp)
}

func digestsByRecipient(t *testing.T, srv *mailtest.Server) map[string][]received {
	t.Helper()
	out := map[string][]received{}
	for _, m := range srv.Messages() {
		if m.Header("X-Sisnotify-Kind") != "digest" {
			continue
		}
		if len(m.To) != 1 {
			t.Fatalf("a digest with %d recipients, want 1", len(m.To))
		}
		out[m.To[0]] = append(out[m.To[0]], received{msg: m, subject: m.Header("Subject"), text: plainText(t, m)})
	}
	return out
}

// one returns the only digest addr received.
func one(t *testing.T, got map[string][]received, addr string) received {
	t.Helper()
	if len(got[addr]) != 1 {
		t.Fatalf("%s received %d digests, want 1", addr, len(got[addr]))
	}
	return got[addr][0]
}

// plainText decodes the text/plain part of a message.
func plainText(t *testing.T, m mailtest.Message) string {
	t.Helper()
	text := m.Text()
	if text == "" {
		t.Fatalf("no text/plain part")
	}
	return text
}

// mimeParts walks the MIME tree of a message (mailtest.Message.Parts).
func mimeParts(t *testing.T, m mailtest.Message) []mailtest.Part {
	t.Helper()
	parts, err := m.Parts()
	if err != nil {
		t.Fatal(err)
	}
	return parts
}

// attachments returns the attached files of a message.
func attachments(t *testing.T, m mailtest.Message) []mailtest.Part {
	t.Helper()
	var out []mailtest.Part
	for _, p := range mimeParts(t, m) {
		if p.Disposition == "attachment" {
			out = append(out, p)
		}
	}
	return out
}

// order checks that the substrings appear in text in this order.
func order(t *testing.T, what, text string, subs ...string) {
	t.Helper()
	last := -1
	for _, s := range subs {
		i := strings.Index(text, s)
		if i < 0 {
			t.Errorf("%s: no %q in\n%s", what, s, text)
			return
		}
		if i < last {
			t.Errorf("%s: %q comes too early (want the order %q) in\n%s", what, s, subs, text)
			return
		}
		last = i
	}
}

// listed returns "S1 S2 …": the student ids of the open obligations' rows
// of a digest text ("- S1, … Reminders: step 3 of 3." or "- [new] [found
// late] S1 / T1, …"), in order.
func listed(text string) string {
	var ids []string
	for _, l := range strings.Split(text, "\n") {
		l, ok := strings.CutPrefix(l, "- ")
		if !ok || !strings.Contains(l, "Reminders: ") && !strings.Contains(l, "Напоминания: ") && !strings.Contains(l, "Ескертулер: ") {
			continue // not an open row: a moot one, a failed notice, a data problem
		}
		for strings.HasPrefix(l, "[") {
			_, l, _ = strings.Cut(l, "] ")
		}
		id, _, _ := strings.Cut(l, ", ")
		id, _, _ = strings.Cut(id, " / ")
		ids = append(ids, id)
	}
	return strings.Join(ids, " ")
}

func TestDigestOfficeAndDeans(t *testing.T) {
	e := newEnv(t)
	e.exec(t, digestFixture)
	e.sync(t)
	r := newDigestRig(t, e, "office1@uni.example", "office2@uni.example")
	res := r.night(t, "2026-11-25")
	if res != (jobs.DigestResult{Office: 2, Deans: 2, Rows: 7 + 7 + 2 + 1}) {
		t.Errorf("result %+v, want 2 office digests, 2 deans, 17 rows", res)
	}
	got := r.mailTo(t)
	if len(got) != 4 {
		t.Fatalf("digests went to %d addresses, want 2 office and 2 deans: %v", len(got), keys(got))
	}
	set, _ := digestSet()

	// The office digest, in Russian, in sections after their counts:
	// the overdue registrations (a fine) before the passport renewal (55
	// days, but no fine), then what is upcoming; most overdue first
	// within a section.
	office := one(t, got, "office1@uni.example")
	order(t, "office digest", office.text,
		"Сделать сегодня: 0 · Просрочено, правовой риск: 5 · Прочие просроченные: 1 · ",
		"Закрыто как неактуальное: 0 · Предстоящие: 1 · Недоставленные уведомления: 0 · Ошибки в данных SIS: ",
		"== Просрочено, правовой риск: 5 ==", set.RuleTitle("ru", "registration")+" (registration): 5", "S1", "S3", "S4", "S2", "S5",
		"== Прочие просроченные: 1 ==", set.RuleTitle("ru", "passport-renewal")+" (passport-renewal): 1", "S7",
		"== Предстоящие: 1 ==", "S8")
	if ids := listed(office.text); ids != "S1 S3 S4 S2 S5 S7 S8" {
		t.Errorf("office digest lists %q, want S1 S3 S4 S2 S5 S7 S8", ids)
	}
	for _, want := range []string{
		"Просрочено: 6.", "Aigerim Bekova, Engineering", "просрочено с 13 ноября 2026 г. (12 дней)", "осталось 3 дня",
		// the student without a faculty is a data problem, in Russian
		"- Студент S5, поле faculty_id: факультет не указан: сообщить декану нельзя",
		"Недоставленных уведомлений нет.",
	} {
		if !strings.Contains(office.text, want) {
			t.Errorf("office digest has no %q:\n%s", want, office.text)
		}
	}
	if !strings.HasPrefix(office.subject, "Сводка Международного отдела за 25 ноября 2026 г.: просрочено 6") {
		t.Errorf("office subject %q", office.subject)
	}
	if other := one(t, got, "office2@uni.example"); listed(other.text) != listed(office.text) {
		t.Errorf("the two office addresses got different lists")
	}

	// Deans: Engineering's in English with its two students; Economics's
	// in the office language with its one; Law (no email) and Medicine
	// (nothing to see) get nothing.
	eng := one(t, got, "dean.eng@uni.example")
	if ids := listed(eng.text); ids != "S1 S2" {
		t.Errorf("Engineering dean digest lists %q, want S1 S2", ids)
	}
	if !strings.Contains(eng.text, "Dear Dean Engineering,") || !strings.HasPrefix(eng.subject, "Dean's digest, Engineering") {
		t.Errorf("Engineering dean digest not in English or not to the dean: %q\n%s", eng.subject, eng.text)
	}
	eco := one(t, got, "dean.eco@uni.example")
	if ids := listed(eco.text); ids != "S3" {
		t.Errorf("Economics dean digest lists %q, want S3", ids)
	}
	if !strings.Contains(eco.text, "Здравствуйте, Dean Economics!") {
		t.Errorf("Economics dean digest not in Russian:\n%s", eco.text)
	}
	for _, dean := range []received{eng, eco} {
		if strings.Contains(dean.text, "S5") || strings.Contains(dean.text, "S7") || strings.Contains(dean.text, "SIS:") {
			t.Errorf("a dean digest shows office matters:\n%s", dean.text)
		}
	}

	// The headers and the Message-ID, from (night, recipient key).
	keysByAddr := map[string]string{"office1@uni.example": "office1", "office2@uni.example": "office2",
		"dean.eng@uni.example": "dean-ENG", "dean.eco@uni.example": "dean-ECO"}
	for addr, key := range keysByAddr {
		m := got[addr][0].msg
		aud := "office"
		if strings.HasPrefix(key, "dean") {
			aud = "dean"
		}
		for h, want := range map[string]string{"X-Sisnotify-Kind": "digest", "X-Sisnotify-Audience": aud, "Auto-Submitted": "auto-generated"} {
			if v := m.Header(h); v != want {
				t.Errorf("%s: %s = %q, want %q", key, h, v, want)
			}
		}
		if a := attachments(t, m); len(a) != 0 {
			t.Errorf("%s: a digest of a few rows has %d attachments, want none", key, len(a))
		}
		if id := m.MessageID(); "<"+id+">" != jobs.DigestMessageID(mustDate("2026-11-25"), key) {
			t.Errorf("%s: Message-ID %s, want %s", key, id, jobs.DigestMessageID(mustDate("2026-11-25"), key))
		}
	}
	// The keys name roles, never addresses.
	var recorded []string
	if err := e.db.Select(&recorded, `SELECT recipient_key || ':' || audience || ':' || status || ':' || listed || ':' || language
		FROM sisnotify.digests ORDER BY recipient_key`); err != nil {
		t.Fatal(err)
	}
	if strings.Join(recorded, " ") != "dean-ECO:dean:sent:1:ru dean-ENG:dean:sent:2:en office1:office:sent:7:ru office2:office:sent:7:ru" {
		t.Errorf("digests recorded: %v", recorded)
	}

	// The same night again sends nothing.
	again := r.run(t, "2026-11-25")
	if again != (jobs.DigestResult{Skipped: 4}) {
		t.Errorf("rerun: %+v, want 4 skipped and nothing sent", again)
	}
	if n := r.smtp.Count(); n != 4 {
		t.Errorf("after the rerun the server has %d messages, want 4", n)
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestDigestNothingOverdueIsStillSent(t *testing.T) {
	e := newEnv(t)
	e.sync(t) // an empty SIS
	r := newDigestRig(t, e, "office@uni.example")
	r.d.OfficeLang = "" // the default: Russian
	if res := r.night(t, "2026-11-25"); res != (jobs.DigestResult{Office: 1}) {
		t.Errorf("result %+v, want one office digest and no dean", res)
	}
	d := one(t, r.mailTo(t), "office@uni.example")
	for _, want := range []string{"Сегодня просроченных нет.", "Недоставленных уведомлений нет.", "Ошибок в данных не найдено."} {
		if !strings.Contains(d.text, want) {
			t.Errorf("empty digest has no %q:\n%s", want, d.text)
		}
	}
	if !strings.HasSuffix(d.subject, "просроченных нет") {
		t.Errorf("subject %q", d.subject)
	}
	// In the office's configured language.
	r.d.OfficeLang = "en"
	r.night(t, "2026-11-26")
	got := r.mailTo(t)["office@uni.example"]
	if len(got) != 2 || !strings.Contains(got[1].text, "Nothing is overdue today.") {
		t.Errorf("English empty digest missing or wrong: %d digests", len(got))
	}
}

func TestDigestMarksRowsNewSinceYesterday(t *testing.T) {
	e := newEnv(t)
	e.exec(t, digestFixture)
	e.sync(t)
	r := newDigestRig(t, e, "office1@uni.example", "old-office2@uni.example")
	// The first night's digest to office2 is refused: it saw nothing.
	r.smtp.Reject("old-office2@uni.example")
	first := r.night(t, "2026-11-25")
	if first.Office != 1 || first.Failed != 1 {
		t.Errorf("first night %+v, want 1 office digest sent and 1 failed (5xx is recorded, not retried)", first)
	}
	var st struct {
		Status, Class, Err string
		Attempts           int
	}
	if err := e.db.Get(&st, `SELECT status, error_class AS class, last_error AS err, attempts FROM sisnotify.digests WHERE recipient_key = 'office2'`); err != nil {
		t.Fatal(err)
	}
	if st.Status != "failed" || st.Class != "permanent" || st.Attempts != 1 || !strings.Contains(st.Err, "550") || strings.Contains(st.Err, "old-office2") {
		t.Errorf("refused digest recorded as %+v", st)
	}
	// On the first digest every row is new.
	if d := one(t, r.mailTo(t), "office1@uni.example"); strings.Count(d.text, "[новое]") != 7 {
		t.Errorf("first digest: %d rows marked new, want all 7", strings.Count(d.text, "[новое]"))
	}

	// Next day: S9 of Engineering, entered 22 November, is now overdue;
	// nothing else changed. The office's second address was fixed.
	e.exec(t, `INSERT INTO sis.students (student_id, given_name, family_name, email, phone, preferred_language, citizenship, visa_regime, faculty_id, enrollment_status, passport_number, passport_expires_on, entered_on, office_check_in_on)
		VALUES ('S9', 'Omar', 'Said', 's9@student.example', '+77011234569', 'en', 'EG', 'visa_free', 'ENG', 'active', 'P9', '2030-01-01', '2026-11-22', '2026-11-22')`)
	e.sync(t)
	r.d.OfficeEmails[1] = "office2@uni.example"
	second := r.night(t, "2026-11-26")
	if second != (jobs.DigestResult{Office: 2, Deans: 2, Rows: 8 + 8 + 3 + 1}) {
		t.Errorf("second night %+v", second)
	}
	got := r.mailTo(t)
	office := got["office1@uni.example"][1]
	if n := strings.Count(office.text, "[новое]"); n != 1 || !strings.Contains(office.text, "- [новое] S9, Omar Said") {
		t.Errorf("second office digest: %d rows marked new, want only S9's:\n%s", n, office.text)
	}
	if l := lineOf(office.text, "S1, Aigerim Bekova"); l == "" || strings.Contains(l, "[новое]") {
		t.Errorf("yesterday's S1 not listed unmarked:\n%s", office.text)
	}
	// office2 never received a digest: everything is new to it.
	if d := one(t, got, "office2@uni.example"); strings.Count(d.text, "[новое]") != 8 {
		t.Errorf("office2, whose only digest was refused: %d rows new, want 8", strings.Count(d.text, "[новое]"))
	}
	// The dean's digest marks its own new rows.
	if eng := got["dean.eng@uni.example"]; len(eng) != 2 || strings.Count(eng[1].text, "[new]") != 1 || !strings.Contains(eng[1].text, "- [new] S9,") {
		t.Errorf("Engineering's second digest does not mark only S9 new")
	}
	var news []string
	if err := e.db.Select(&news, `SELECT recipient_key || ':' || new_rows FROM sisnotify.digests WHERE night = '2026-11-26' ORDER BY 1`); err != nil {
		t.Fatal(err)
	}
	if strings.Join(news, " ") != "dean-ECO:0 dean-ENG:1 office1:1 office2:8" {
		t.Errorf("new rows recorded: %v", news)
	}

	// An earlier night cannot be sent once a later one is.
	if _, err := r.d.Run(context.Background(), mustDate("2026-11-25")); !errors.Is(err, jobs.ErrPastNight) {
		t.Errorf("digest of an earlier night: %v, want ErrPastNight", err)
	}
}

func TestDigestListsFailedNoticesAndWhatWasSent(t *testing.T) {
	e := newEnv(t)
	e.exec(t, baseFixture)
	e.sync(t)
	e.evaluate(t, "2026-11-25")
	rg := newRig(t, e)
	rg.smtp.Reject("aigerim@student.example") // the student's emails fail for good; SMS and the office's go
	rg.night(t)
	d := &jobs.Digest{DB: e.db, Mail: rg.d.Mail, Templates: rg.d.Templates, Office: rg.d.Office, OfficeLang: "ru", OfficeEmails: officeEmails}
	res, err := d.Run(context.Background(), mustDate("2026-11-25"))
	if err != nil {
		t.Fatal(err)
	}
	// Office, and the Engineering dean (registration L3); Law has no email.
	if res.Office != 1 || res.Deans != 1 {
		t.Errorf("result %+v", res)
	}
	office := one(t, digestsByRecipient(t, rg.smtp), "office@uni.example")
	var failed []struct {
		ID   string
		Rule string
	}
	if err := e.db.Select(&failed, `SELECT notice_id::text AS id, rule FROM sisnotify.notices WHERE status = 'failed' ORDER BY notice_id`); err != nil {
		t.Fatal(err)
	}
	if len(failed) != 3 {
		t.Fatalf("%d failed notices, want the student's 3 emails", len(failed))
	}
	if !strings.Contains(office.text, "== Недоставленные уведомления: 3 ==") {
		t.Errorf("failed notices not counted:\n%s", office.text)
	}
	// In the office's language, with the server's code but not its text.
	for _, f := range failed {
		want := "- S1, " + rg.d.Templates.RuleTitle("ru", f.Rule) + ", письмо студенту: Почтовый сервер получателя отклонил адрес (такого ящика нет): исправьте его в SIS. [550 5.1.1] (" + f.ID + ")"
		if !strings.Contains(office.text, want) {
			t.Errorf("failed notice %s (%s) not listed with its reason %q:\n%s", f.ID, f.Rule, want, office.text)
		}
	}
	for _, en := range []string{"mail: RCPT", "mailbox unavailable", "(permanent)"} {
		if strings.Contains(office.text, en) {
			t.Errorf("the digest shows the server's English text %q:\n%s", en, office.text)
		}
	}
	if strings.Contains(office.text, "aigerim@") {
		t.Errorf("the digest shows the student's address")
	}
	// What was sent for the registration obligation: the office's urgent
	// email and the student's SMS; the failed email is not "sent".
	line := ""
	for _, l := range strings.Split(office.text, "\n") {
		if strings.Contains(l, "S1, Aigerim Bekova") && strings.Contains(l, "Напоминания: шаг 3 из 3") {
			line = l
		}
	}
	if !strings.Contains(line, "Уже отправлено: SMS + письмо отделу, шаг 3 из 3, ") {
		t.Errorf("registration row does not say what was sent: %q", line)
	}
}

func TestDigestTemporaryFailureIsRetriedAlone(t *testing.T) {
	e := newEnv(t)
	e.exec(t, digestFixture)
	e.sync(t)
	e.evaluate(t, "2026-11-25")
	r := newDigestRig(t, e, "office1@uni.example", "office2@uni.example")
	r.smtp.TempFail(1) // 451 for the first digest (office1's)
	res, err := r.d.Run(context.Background(), mustDate("2026-11-25"))
	if err == nil || !strings.Contains(err.Error(), "451") {
		t.Fatalf("a greylisted digest: err %v, want a 451 error for the task to retry", err)
	}
	if res != (jobs.DigestResult{Office: 1, Deans: 2, Rows: 7 + 2 + 1}) {
		t.Errorf("first attempt %+v, want the other three sent", res)
	}
	var status string
	if err := e.db.Get(&status, `SELECT status || '/' || error_class FROM sisnotify.digests WHERE recipient_key = 'office1'`); err != nil || status != "pending/temporary" {
		t.Errorf("office1 after 451: %s (%v), want pending/temporary", status, err)
	}
	// The retry sends office1 only.
	if res := r.run(t, "2026-11-25"); res != (jobs.DigestResult{Office: 1, Skipped: 3, Rows: 7}) {
		t.Errorf("retry %+v, want office1 sent and 3 skipped", res)
	}
	if r.smtp.Count() != 4 || r.smtp.DuplicatesByMessageID() != 0 {
		t.Errorf("server got %d digests (%d duplicates), want 4 and 0", r.smtp.Count(), r.smtp.DuplicatesByMessageID())
	}
}

func TestDigestResumesACrashedRun(t *testing.T) {
	e := newEnv(t)
	e.exec(t, digestFixture)
	e.sync(t)
	e.evaluate(t, "2026-11-25")
	r := newDigestRig(t, e, "office1@uni.example", "office2@uni.example")
	// A run died while sending office1 an hour ago; another worker is
	// sending Engineering's right now; a crashed run had claimed Medicine's
	// (which has nothing tonight) and an address since removed.
	e.dbExec(t, `INSERT INTO sisnotify.digests (night, audience, recipient_key, recipient, status, attempts, claimed_at, message_id) VALUES
		('2026-11-25', 'office', 'office1', 'office1@uni.example', 'sending', 1, now() - interval '1 hour', 'x@y'),
		('2026-11-25', 'dean', 'dean-ENG', 'dean.eng@uni.example', 'sending', 1, now(), 'x@y'),
		('2026-11-25', 'dean', 'dean-MED', 'dean.med@uni.example', 'pending', 0, NULL, 'x@y'),
		('2026-11-25', 'office', 'office3', 'office3@uni.example', 'sending', 1, now() - interval '1 hour', 'x@y')`)
	res, err := r.d.Run(context.Background(), mustDate("2026-11-25"))
	if !errors.Is(err, jobs.ErrDigestClaimed) {
		t.Errorf("err %v, want ErrDigestClaimed (retry after the other worker's lease)", err)
	}
	if res != (jobs.DigestResult{Office: 2, Deans: 1, Skipped: 1, Rows: 7 + 7 + 1}) {
		t.Errorf("result %+v", res)
	}
	got := r.mailTo(t)
	if len(got["dean.eng@uni.example"]) != 0 || len(got["dean.med@uni.example"]) != 0 || len(got["office3@uni.example"]) != 0 || len(got["office1@uni.example"]) != 1 {
		t.Errorf("sent to %v", keys(got))
	}
	var states []string
	if err := e.db.Select(&states, `SELECT recipient_key || ':' || status || ':' || attempts FROM sisnotify.digests ORDER BY 1`); err != nil {
		t.Fatal(err)
	}
	if strings.Join(states, " ") != "dean-ECO:sent:1 dean-ENG:sending:1 dean-MED:cancelled:0 office1:sent:2 office2:sent:1 office3:cancelled:1" {
		t.Errorf("digests after the resumed run: %v", states)
	}
	// The other worker finishes: the retry has nothing left.
	e.dbExec(t, `UPDATE sisnotify.digests SET status = 'sent' WHERE recipient_key = 'dean-ENG'`)
	if res := r.run(t, "2026-11-25"); res != (jobs.DigestResult{Skipped: 4}) {
		t.Errorf("retry %+v, want 4 skipped", res)
	}
}

func (e *env) dbExec(t testing.TB, q string, args ...any) {
	t.Helper()
	if _, err := e.db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func TestDigestResendKeepsHeadersAndMessageID(t *testing.T) {
	e := newEnv(t)
	e.exec(t, digestFixture)
	e.sync(t)
	r := newDigestRig(t, e, "office@uni.example")
	r.night(t, "2026-11-25")
	// The SMTP server accepted it but the worker died before recording
	// that: the lease passes and the digest is sent again.
	e.dbExec(t, `UPDATE sisnotify.digests SET status = 'sending', claimed_at = now() - interval '1 hour' WHERE recipient_key = 'office1'`)
	if res := r.run(t, "2026-11-25"); res.Office != 1 {
		t.Fatalf("resend: %+v", res)
	}
	msgs := r.mailTo(t)["office@uni.example"]
	if len(msgs) != 2 {
		t.Fatalf("%d digests, want 2", len(msgs))
	}
	for _, h := range []string{"Message-ID", "X-Sisnotify-Kind", "X-Sisnotify-Audience", "Auto-Submitted", "Subject"} {
		if a, b := msgs[0].msg.Header(h), msgs[1].msg.Header(h); a != b || a == "" {
			t.Errorf("%s: %q then %q", h, a, b)
		}
	}
	if r.smtp.DuplicatesByMessageID() != 1 || "<"+msgs[0].msg.MessageID()+">" != jobs.DigestMessageID(mustDate("2026-11-25"), "office1") {
		t.Errorf("the resend does not carry the first one's Message-ID")
	}
	if msgs[0].text != msgs[1].text {
		t.Errorf("the resend's content differs")
	}
}

func TestDigestCutsLongLists(t *testing.T) {
	e := newEnv(t)
	e.sync(t)
	// 10 data problems, the newest last; 5 notices failed in the last
	// week and one before it.
	e.dbExec(t, `INSERT INTO sisnotify.data_problems (entity, row_id, field, code, severity, message, first_seen_at, last_sync_id)
		SELECT 'student', 'P' || lpad(i::text, 2, '0'), 'phone', CASE WHEN i <= 6 THEN 'invalid_phone' ELSE 'missing' END, 'error', 'm',
		       now() - (20 - i) * interval '1 hour', 1
		FROM generate_series(1, 10) i`)
	e.dbExec(t, `INSERT INTO sisnotify.obligations (rule, subject_id, anchor, student_id, due_on, level, step_on, actions, opened_on, last_seen_on)
		VALUES ('registration', 'F1', '2026-11-01', 'F1', '2026-11-04', 3, '2026-11-05', 0, '2026-11-05', '2026-11-05')`)
	e.dbExec(t, `INSERT INTO sisnotify.notices (notice_key, obligation_id, rule, level, student_id, subject_id, audience, channel, recipient, due_on, night, status, last_error)
		SELECT 'k' || i, 1, 'registration', 3, 'F1', 'F1', 'student', 'email', 'x@y.example', '2026-11-04',
		       CASE WHEN i = 0 THEN DATE '2026-11-10' ELSE DATE '2026-11-20' + i END, 'failed', 'mail: RCPT TO: 55' || i || ' 5.1.1: gone (permanent)'
		FROM generate_series(0, 5) i`)
	r := newDigestRig(t, e, "office@uni.example")
	r.d.OfficeLang, r.d.MaxFailed, r.d.MaxProblems = "en", 2, 3
	r.run(t, "2026-11-25")
	d := one(t, r.mailTo(t), "office@uni.example")
	order(t, "cut lists", d.text,
		"== Notices that failed: 5 ==", "[555 5.1.1]", "[554 5.1.1]", "Not shown here: 3 more; `sisnotify notices --status failed` lists them all.",
		"== Data problems in the SIS: 10 ==", "Student P10", "Student P09", "Student P08",
		"Shown above: the most recent 3; left out: 7. The table sisnotify.data_problems holds them all. By problem:",
		"- not a valid phone number: 6", "- required field is empty: 4")
	for _, no := range []string{"[553 5.1.1]", "[550 5.1.1]", "Student P07"} {
		if strings.Contains(d.text, no) {
			t.Errorf("%q should be left out:\n%s", no, d.text)
		}
	}
}

// The digests list exactly the obligations that the dry run
// (cmd/sisnotify, plannedNotices) announces with channel "digest".
func TestDigestListsWhatTheDryRunPlans(t *testing.T) {
	e := newEnv(t)
	e.generate(t, 4000)
	e.sync(t)
	r := newDigestRig(t, e, "office1@uni.example", "office2@uni.example")
	r.d.MaxSectionRows = 1000 // every row in the email
	res := r.night(t, "2026-11-25")
	// The dry run's predicates (cmd/sisnotify/night.go), with found_late.
	var planned []string
	if err := e.db.Select(&planned, `
		SELECT 'office' || n || ' ' || o.obligation_id
		FROM sisnotify.obligations o, generate_series(1, 2) n
		WHERE o.closed_at IS NULL AND (o.actions | o.found_late) & $1 <> 0
		UNION ALL
		SELECT 'dean-' || f.faculty_id || ' ' || o.obligation_id
		FROM sisnotify.obligations o
		JOIN sisnotify.students s ON s.student_id = o.student_id
		JOIN sisnotify.faculties f ON f.faculty_id = s.faculty_id AND f.removed_at IS NULL AND f.dean_email IS NOT NULL
		WHERE o.closed_at IS NULL AND (o.actions | o.found_late) & $2 <> 0
		ORDER BY 1`, int(rules.OfficeDigest), int(rules.DeanDigest)); err != nil {
		t.Fatal(err)
	}
	var listedRows []string
	if err := e.db.Select(&listedRows, `SELECT g.recipient_key || ' ' || r.obligation_id
		FROM sisnotify.digest_rows r JOIN sisnotify.digests g USING (digest_id) WHERE g.status = 'sent' ORDER BY 1`); err != nil {
		t.Fatal(err)
	}
	if len(planned) < 50 {
		t.Fatalf("only %d planned digest lines: the generated SIS does not exercise the digests", len(planned))
	}
	if strings.Join(planned, "\n") != strings.Join(listedRows, "\n") {
		t.Fatalf("digests list %d rows, the dry run plans %d; first difference: %s", len(listedRows), len(planned), firstDiff(planned, listedRows))
	}
	if res.Rows != len(planned) {
		t.Errorf("result rows %d, want %d", res.Rows, len(planned))
	}
	// And the emails show them: every planned student in its recipient's
	// digest, and as many rows.
	var who []struct {
		Addr    string `db:"recipient"`
		Student string `db:"student_id"`
		Key     string `db:"recipient_key"`
	}
	if err := e.db.Select(&who, `SELECT g.recipient, g.recipient_key, o.student_id FROM sisnotify.digest_rows r
		JOIN sisnotify.digests g USING (digest_id) JOIN sisnotify.obligations o USING (obligation_id)`); err != nil {
		t.Fatal(err)
	}
	got := r.mailTo(t)
	want := map[string][]string{}
	for _, w := range who {
		want[w.Addr] = append(want[w.Addr], w.Student)
	}
	for addr, students := range want {
		if len(got[addr]) != 1 {
			t.Fatalf("%s received %d digests, want 1", addr, len(got[addr]))
		}
		inMail := strings.Fields(listed(got[addr][0].text))
		sort.Strings(inMail)
		sort.Strings(students)
		if strings.Join(inMail, " ") != strings.Join(students, " ") {
			t.Errorf("%s: the email lists %d rows (%v…), digest_rows %d", addr, len(inMail), inMail[:min(5, len(inMail))], len(students))
		}
	}
	rows := want
	if len(got) != len(rows) {
		t.Errorf("%d recipients got a digest, %d have rows", len(got), len(rows))
	}
}

// A digest with a section longer than MaxSectionRows shows each section's
// most urgent rows, says how many more there are in each language, and
// attaches a CSV whose open rows are exactly the obligations the dry run
// plans for its recipient, each with its section; a digest whose sections
// are all short has no attachment.
func TestDigestCutAttachesEveryRow(t *testing.T) {
	e := newEnv(t)
	e.generate(t, 4000)
	e.sync(t)
	r := newDigestRig(t, e, "office1@uni.example", "office2@uni.example")
	const maxRows = 5
	r.d.MaxSectionRows = maxRows
	more := map[string]string{ // shown, in the section, left out, the file
		"en": "Shown here: the %d most urgent of %d. The other %d are in the attached file %s.",
		"ru": "Здесь показаны самые срочные: %d из %d. Остальные %d — во вложенном файле %s.",
		"kk": "Мұнда ең шұғылдары көрсетілді: %d (%d ішінен). Қалған %d — тіркелген %s файлында.",
	}
	header := map[string]string{
		"en": "Section,Rule,Student ID,request,Name,Faculty,Due,Days overdue (negative: days left),Reminders,Already sent,new,found late,Closed as moot",
		"ru": "Раздел;Правило;ID студента;заявка;ФИО;Факультет;Срок;Дней просрочки (минус — осталось дней);Напоминания;Уже отправлено;новое;с опозданием;Закрыто как неактуальное",
		"kk": "Бөлім;Ереже;Студент ID;өтінім;Аты-жөні;Факультет;Мерзімі;Мерзімінен өткен күн (минус — қалған күн);Ескертулер;Жіберілгені;жаңа;кеш анықталды;Өзектілігі жойылып, жабылды",
	}
	var cut, whole int
	for i, lang := range []string{"ru", "en", "kk"} {
		night := mustDate("2026-11-25").AddDays(i)
		r.d.OfficeLang = lang
		before := len(r.smtp.Messages())
		res := r.night(t, night.String())

		// What the dry run plans for each recipient, as in
		// TestDigestListsWhatTheDryRunPlans: rule|student|subject|due|level.
		var planned []struct {
			Key, Row string
		}
		if err := e.db.Select(&planned, `
			SELECT 'office' || n AS key, concat_ws('|', o.rule, o.student_id, o.subject_id, o.due_on, o.level) AS row
			FROM sisnotify.obligations o, generate_series(1, 2) n
			WHERE o.closed_at IS NULL AND (o.actions | o.found_late) & $1 <> 0
			UNION ALL
			SELECT 'dean-' || f.faculty_id, concat_ws('|', o.rule, o.student_id, o.subject_id, o.due_on, o.level)
			FROM sisnotify.obligations o
			JOIN sisnotify.students s ON s.student_id = o.student_id
			JOIN sisnotify.faculties f ON f.faculty_id = s.faculty_id AND f.removed_at IS NULL AND f.dean_email IS NOT NULL
			WHERE o.closed_at IS NULL AND (o.actions | o.found_late) & $2 <> 0`, int(rules.OfficeDigest), int(rules.DeanDigest)); err != nil {
			t.Fatal(err)
		}
		plan := map[string][]string{}
		for _, p := range planned {
			plan[p.Key] = append(plan[p.Key], p.Row)
		}
		var sent []struct {
			Key  string `db:"recipient_key"`
			Addr string `db:"recipient"`
			Lang string `db:"language"`
			N    int    `db:"listed"`
		}
		if err := e.db.Select(&sent, `SELECT recipient_key, recipient, language, listed FROM sisnotify.digests WHERE night = $1 AND status = 'sent'`, night.String()); err != nil {
			t.Fatal(err)
		}
		if len(sent) != len(plan) || res.Office+res.Deans != len(plan) {
			t.Fatalf("%s: %d digests sent (%+v), %d recipients planned", night, len(sent), res, len(plan))
		}
		got := map[string]received{}
		for _, m := range r.smtp.Messages()[before:] {
			got[m.To[0]] = received{msg: m, subject: m.Header("Subject"), text: plainText(t, m)}
		}
		for _, g := range sent {
			d, want := got[g.Addr], plan[g.Key]
			if d.text == "" || g.N != len(want) {
				t.Fatalf("%s %s: recorded %d rows, the dry run plans %d (received: %v)", night, g.Key, g.N, len(want), d.text != "")
			}
			files := attachments(t, d.msg)
			shown := strings.Fields(listed(d.text))
			html := ""
			for _, p := range mimeParts(t, d.msg) {
				if p.MediaType == "text/html" {
					html = string(p.Body)
				}
			}
			if len(html) >= 100_000 {
				t.Errorf("%s %s: %d bytes of HTML", night, g.Key, len(html))
			}
			if len(files) == 0 {
				// Every section short: every row in the email.
				whole++
				if len(shown) != len(want) {
					t.Errorf("%s %s: %d rows, %d shown and no attachment", night, g.Key, len(want), len(shown))
				}
				continue
			}
			cut++
			if len(files) != 1 {
				t.Fatalf("%s %s: %d rows and %d attachments, want the CSV", night, g.Key, len(want), len(files))
			}
			f := files[0]
			name := "digest-" + night.String() + ".csv"
			if f.Filename != name || f.MediaType != "text/csv" || f.Params["charset"] != "utf-8" {
				t.Errorf("%s %s: attachment %q of type %s %v, want %s, text/csv, utf-8", night, g.Key, f.Filename, f.MediaType, f.Params, name)
			}
			// The CSV: a byte order mark, the header in the digest's
			// language, and exactly the planned obligations.
			if !bytes.HasPrefix(f.Body, []byte("\uFEFF")) {
				t.Errorf("%s %s: the CSV has no byte order mark", night, g.Key)
			}
			cr := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(f.Body, []byte("\uFEFF"))))
			sep := ","
			if g.Lang != "en" {
				cr.Comma, sep = ';', ";"
			}
			recs, err := cr.ReadAll()
			if err != nil {
				t.Fatalf("%s %s: CSV: %v", night, g.Key, err)
			}
			if h := strings.Join(recs[0], sep); h != header[g.Lang] {
				t.Errorf("%s %s: CSV header %q, want %q", night, g.Key, h, header[g.Lang])
			}
			var rows []string
			bySection := map[string][]int{} // days overdue of each open row, per section
			var sections []string
			for _, rec := range recs[1:] {
				n, err := strconv.Atoi(rec[7])
				if err != nil || mustDate(rec[6]).AddDays(n) != night {
					t.Fatalf("%s %s: days overdue %q do not follow from the due date %s", night, g.Key, rec[7], rec[6])
				}
				if rec[12] != "" {
					continue // closed as moot: not an open obligation
				}
				subject := rec[3]
				if subject == "" {
					subject = rec[2]
				}
				rows = append(rows, strings.Join([]string{rec[1], rec[2], subject, rec[6], rec[8]}, "|"))
				if bySection[rec[0]] == nil {
					sections = append(sections, rec[0])
				}
				bySection[rec[0]] = append(bySection[rec[0]], n)
			}
			sort.Strings(rows)
			sort.Strings(want)
			if strings.Join(rows, "\n") != strings.Join(want, "\n") {
				t.Fatalf("%s %s: the CSV lists %d rows, the dry run plans %d; first difference: %s", night, g.Key, len(rows), len(want), firstDiff(want, rows))
			}
			// Each section shows its maxRows most urgent rows and says
			// how many more there are; every row more urgent than the
			// last one shown is shown.
			inMail := map[string]int{}
			for _, id := range shown {
				inMail[id]++
			}
			wantShown := 0
			for _, sec := range sections {
				days := bySection[sec]
				wantShown += min(len(days), maxRows)
				if len(days) <= maxRows {
					continue
				}
				sentence := fmt.Sprintf(more[g.Lang], maxRows, len(days), len(days)-maxRows, name)
				if !strings.Contains(d.text, "== "+sec+": "+strconv.Itoa(len(days))+" ==") || !strings.Contains(d.text, sentence) || !strings.Contains(html, sentence) {
					t.Errorf("%s %s (%s): section %q of %d rows does not say %q:\n%s", night, g.Key, g.Lang, sec, len(days), sentence, d.text)
				}
				sorted := slices.Sorted(slices.Values(days))
				slices.Reverse(sorted)
				limit := sorted[maxRows-1]
				for i, rec := range recs[1:] {
					if rec[0] == sec && rec[12] == "" {
						if n, _ := strconv.Atoi(rec[7]); n > limit && inMail[rec[2]] == 0 {
							t.Errorf("%s %s: %s is %d days overdue in %q and not in the email, which shows rows down to %d (row %d)", night, g.Key, rec[2], n, sec, limit, i+1)
						}
					}
				}
			}
			if len(shown) != wantShown {
				t.Errorf("%s %s: the email shows %d rows, want %d (at most %d per section)", night, g.Key, len(shown), wantShown, maxRows)
			}
		}
	}
	if cut == 0 || whole == 0 {
		t.Errorf("%d digests cut and %d whole: the test wants both", cut, whole)
	}
}

// lineOf returns the first line of text that holds sub, or "".
func lineOf(text, sub string) string {
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

func firstDiff(a, b []string) string {
	for i := 0; i < len(a) || i < len(b); i++ {
		var x, y string
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			return "planned " + x + ", listed " + y
		}
	}
	return ""
}

// seedDigest puts n open obligations of the office digest straight into the
// worker's database, as of 2026-11-25: students with Cyrillic names in ten
// faculties, five rules, due 0 to 89 days ago, each with three notices sent
// (student email, student SMS, office email).
func seedDigest(t testing.TB, e *env, n int) {
	t.Helper()
	e.dbExec(t, `INSERT INTO sisnotify.faculties (faculty_id, name, dean_name, row_hash)
		SELECT 'F' || k, 'Факультет ' || k, 'Декан ' || k, 0 FROM generate_series(0, 9) k`)
	e.dbExec(t, `INSERT INTO sisnotify.students (student_id, given_name, family_name, faculty_id, row_hash, last_sync_id)
		SELECT 'S' || lpad(i::text, 7, '0'), 'Айгерим', 'Бекова-' || i, 'F' || (i % 10), 0, 1 FROM generate_series(1, $1) i`, n)
	e.dbExec(t, `INSERT INTO sisnotify.obligations (rule, subject_id, anchor, student_id, due_on, level, step_on, actions, opened_on, last_seen_on)
		SELECT (ARRAY['registration', 'passport-renewal', 'stay-extension', 'address-registration', 'arrival-check-in'])[1 + i % 5],
		       'S' || lpad(i::text, 7, '0'), DATE '2026-11-01', 'S' || lpad(i::text, 7, '0'), DATE '2026-11-25' - i % 90, 3,
		       DATE '2026-11-20', $2, DATE '2026-11-01', DATE '2026-11-25'
		FROM generate_series(1, $1) i`, n, int(rules.OfficeDigest))
	e.dbExec(t, `INSERT INTO sisnotify.notices (notice_key, obligation_id, rule, level, student_id, subject_id, audience, channel, recipient, due_on, night, status, sent_at)
		SELECT o.obligation_id || '/' || k, o.obligation_id, o.rule, k, o.student_id, o.subject_id,
		       (ARRAY['student', 'student', 'office'])[k], (ARRAY['email', 'sms', 'email'])[k], 'x@y.example', o.due_on,
		       DATE '2026-11-20' + k, 'sent', TIMESTAMPTZ '2026-11-20 10:00Z' + k * interval '1 day'
		FROM sisnotify.obligations o, generate_series(1, 3) k`)
}

// BenchmarkDigest30k sends the office digest of 30,000 open obligations
// through a real SMTP pool into a discarding mailtest server, and reports
// the peak Go heap during Digest.Run above what was live before it
// (runtime/metrics sampled every 100µs), the bytes it allocated, and the
// process's peak RSS (VmHWM) during the run.
//
//	go test -run '^$' -bench Digest30k -benchtime 3x ./jobs/
func BenchmarkDigest30k(b *testing.B) {
	e := newEnv(b)
	e.sync(b)
	seedDigest(b, e, 30_000)
	srv := mailtest.NewServer(b, mailtest.Discard())
	cfg, err := mail.ParseURL(srv.URL())
	if err != nil {
		b.Fatal(err)
	}
	pool, err := mail.NewPool(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	set, err := digestSet()
	if err != nil {
		b.Fatal(err)
	}
	var peak, alloc, rss uint64
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		e.dbExec(b, `DELETE FROM sisnotify.digests`) // each iteration sends the night's digest again
		d := &jobs.Digest{DB: e.db, Mail: pool, Templates: set, Office: digestOffice, OfficeLang: "ru",
			OfficeEmails: []string{"office@uni.example"}, Location: time.UTC}
		debug.FreeOSMemory()
		testenv.ResetPeakRSS()
		b.StartTimer()
		var res jobs.DigestResult
		p, a := heapDuring(func() {
			if res, err = d.Run(context.Background(), mustDate("2026-11-25")); err != nil {
				b.Fatal(err)
			}
		})
		b.StopTimer()
		if res.Rows != 30_000 {
			b.Fatalf("digest listed %d rows, want 30000", res.Rows)
		}
		peak, alloc, rss = max(peak, p), max(alloc, a), max(rss, uint64(testenv.PeakRSS()))
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(alloc)/(1<<20), "alloc-MiB")
	b.ReportMetric(float64(rss)/(1<<20), "peak-RSS-MiB")
}

// heapDuring runs f and returns the highest heap (live and not yet swept
// objects) seen while it ran, above the live heap before it, and the bytes
// f allocated.
func heapDuring(f func()) (peak, allocated uint64) {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	stop, done := make(chan struct{}), make(chan uint64)
	go func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		var top uint64
		tick := time.NewTicker(100 * time.Microsecond)
		defer tick.Stop()
		for {
			metrics.Read(s)
			top = max(top, s[0].Value.Uint64())
			select {
			case <-stop:
				done <- top
				return
			case <-tick.C:
			}
		}
	}()
	f()
	close(stop)
	top := <-done
	runtime.ReadMemStats(&after)
	if top > before.HeapAlloc {
		peak = top - before.HeapAlloc
	}
	return peak, after.TotalAlloc - before.TotalAlloc
}
