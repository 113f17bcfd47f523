package jobs_test

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/iec-almaty/sisnotify/integrations/testenv"
	"github.com/iec-almaty/sisnotify/jobs/rules"
)

// mootRow puts an obligation closed as moot on closedOn into the worker's
// database, as the evaluation closes one (docs/rules.md, "When a step is no
// longer news").
func mootRow(t *testing.T, e *env, rule, student, subject, closedOn, reason string) {
	t.Helper()
	e.dbExec(t, `INSERT INTO sisnotify.obligations (rule, subject_id, anchor, student_id, due_on, level, step_on, actions, opened_on, last_seen_on, closed_on, closed_at, close_reason)
		VALUES ($1, $2, $4::date, $3, $4::date - 3, 1, $4::date - 10, $5, $4::date - 10, $4::date, $4::date, now(), $6)`,
		rule, subject, student, closedOn, int(rules.StudentEmail|rules.OfficeDigest), reason)
}

// htmlPart is the text/html part of a message.
func htmlPart(t *testing.T, r received) string {
	t.Helper()
	for _, p := range mimeParts(t, r.msg) {
		if p.MediaType == "text/html" {
			return string(p.Body)
		}
	}
	t.Fatal("no text/html part")
	return ""
}

// Found late: an obligation whose stale step's urgent emails were not sent
// is listed, marked, in the office digest and the dean's (even when the
// step itself has no digest), in the found-late section. Closed as moot:
// each office address lists a moot close once, in its next digest that
// goes out; an address without a previous digest, only those of the last
// 7 nights. Neither kind is a row of digest_rows beyond the open ones.
func TestDigestFoundLateAndClosedAsMoot(t *testing.T) {
	e := newEnv(t)
	e.exec(t, digestFixture)
	e.sync(t)
	r := newDigestRig(t, e, "office1@uni.example", "old-office2@uni.example")
	r.smtp.Reject("old-office2@uni.example") // office2's first digest is refused

	mootRow(t, e, "travel-late-notice", "S3", "TR-1", "2026-11-25", "departure passed")
	mootRow(t, e, "exit-visa", "S2", "TR-2", "2026-11-19", "departure passed")
	mootRow(t, e, "visa-invitation", "S4", "S4", "2026-11-10", "entry date passed") // 15 days ago: history
	e.evaluate(t, "2026-11-25")
	// S6 (Medicine, whose dean reads Kazakh) has a passport renewal whose
	// stale step sends only the student's email: its urgent emails were
	// not sent, so both digests list it, found late. It is upcoming
	// otherwise; S1's registration, found late too, stays in legal
	// exposure.
	e.dbExec(t, `INSERT INTO sisnotify.obligations (rule, subject_id, anchor, student_id, due_on, level, step_on, actions, found_late, found_late_on, opened_on, last_seen_on)
		VALUES ('passport-renewal', 'S6', '2027-06-20', 'S6', '2026-12-20', 2, '2026-11-10', $1, $2, '2026-11-25', '2026-11-25', '2026-11-25')`,
		int(rules.StudentEmail), int(rules.OfficeDigest|rules.DeanDigest))
	e.dbExec(t, `UPDATE sisnotify.obligations SET found_late = $1, found_late_on = '2026-11-25' WHERE student_id = 'S1' AND rule = 'registration'`,
		int(rules.OfficeDigest|rules.DeanDigest))
	res := r.run(t, "2026-11-25")
	if res.Failed != 1 {
		t.Errorf("first night %+v, want office2's digest refused", res)
	}
	got := r.mailTo(t)
	office := one(t, got, "office1@uni.example")
	order(t, "office digest", office.text,
		"Закрыто как неактуальное: 2 · ",
		"== Просрочено, правовой риск: 5 ==", "- [новое] [с опозданием] S1, Aigerim Bekova",
		"== Обнаружено с опозданием: 1 ==", "- [новое] [с опозданием] S6, Anna Petrova, Medicine — Срок: 20 декабря 2026 г., осталось 25 дней.",
		"== Закрыто как неактуальное: 2 ==",
		"- S2 / TR-2, Wei Zhang, Engineering — Срок: 16 ноября 2026 г., закрыто 19 ноября: дата выезда прошла; проверьте поездку в SIS.",
		"- S3 / TR-1, Ali Karimov, Economics — Срок: 22 ноября 2026 г., закрыто 25 ноября: дата выезда прошла; проверьте поездку в SIS.",
		"== Предстоящие: 1 ==")
	if strings.Contains(office.text, "S4 /") || strings.Contains(office.text, "плановая дата въезда") {
		t.Errorf("a moot close of 15 days ago is listed by a first digest:\n%s", office.text)
	}
	// The Medicine dean, who had nothing to see, hears of S6, in Kazakh.
	med := one(t, got, "dean.med@uni.example")
	order(t, "Medicine dean", med.text, "== Кеш анықталды: 1 ==", "- [жаңа] [кеш анықталды] S6, Anna Petrova — ")
	if strings.Contains(med.text, "Өзектілігі") {
		t.Errorf("a dean digest lists moot closes:\n%s", med.text)
	}
	html := htmlPart(t, office)
	for _, want := range []string{`id="late"`, `id="moot"`, ">с опозданием</span>"} {
		if !strings.Contains(html, want) {
			t.Errorf("office HTML has no %q", want)
		}
	}
	// digest_rows: the open obligations listed, S6 included, no moot one.
	var rows []string
	if err := e.db.Select(&rows, `SELECT g.recipient_key || ':' || o.student_id || ':' || o.rule FROM sisnotify.digest_rows d
		JOIN sisnotify.digests g USING (digest_id) JOIN sisnotify.obligations o USING (obligation_id)
		WHERE g.status = 'sent' AND (o.closed_at IS NOT NULL OR o.student_id = 'S6') ORDER BY 1`); err != nil {
		t.Fatal(err)
	}
	if strings.Join(rows, " ") != "dean-MED:S6:passport-renewal office1:S6:passport-renewal" {
		t.Errorf("digest_rows of found-late and moot obligations: %v", rows)
	}

	// The next night: office1 lists only what closed since its digest;
	// office2, whose only digest was refused, lists the last 7 nights
	// (20 to 26 November), not TR-2 (closed 19 November).
	mootRow(t, e, "term-travel-limit", "S1", "TR-3", "2026-11-26", "departure passed")
	r.d.OfficeEmails[1] = "office2@uni.example" // fixed
	e.evaluate(t, "2026-11-26")
	r.run(t, "2026-11-26")
	got = r.mailTo(t)
	second := got["office1@uni.example"][1]
	if !strings.Contains(second.text, "== Закрыто как неактуальное: 1 ==") || !strings.Contains(second.text, "- S1 / TR-3,") ||
		strings.Contains(second.text, "TR-1,") || strings.Contains(second.text, "TR-2,") {
		t.Errorf("office1's second digest does not list only the new moot close:\n%s", second.text)
	}
	other := one(t, got, "office2@uni.example")
	if !strings.Contains(other.text, "== Закрыто как неактуальное: 2 ==") || !strings.Contains(other.text, "- S3 / TR-1,") ||
		!strings.Contains(other.text, "- S1 / TR-3,") || strings.Contains(other.text, "TR-2,") || strings.Contains(other.text, "S4 /") {
		t.Errorf("office2's first digest does not list the last 7 nights' moot closes:\n%s", other.text)
	}
}

// seedSections puts n open obligations of the office digest straight into
// the worker's database, as of 2026-11-25, spread over every section: ten
// rules, due from 60 days ago to 29 days ahead, a tenth found late, each
// with three notices sent; and n/100 moot closes of that night.
func seedSections(t testing.TB, e *env, n int) {
	t.Helper()
	e.dbExec(t, `INSERT INTO sisnotify.faculties (faculty_id, name, dean_name, row_hash)
		SELECT 'F' || k, 'Факультет международных отношений и права ' || k, 'Декан ' || k, 0 FROM generate_series(0, 9) k`)
	e.dbExec(t, `INSERT INTO sisnotify.students (student_id, given_name, family_name, faculty_id, row_hash, last_sync_id)
		SELECT 'S' || lpad(i::text, 7, '0'), 'Айгерим-Гульнара', 'Бекова-Абдурахмонова-' || i, 'F' || (i % 10), 0, 1 FROM generate_series(1, $1) i`, n)
	e.dbExec(t, `INSERT INTO sisnotify.obligations (rule, subject_id, anchor, student_id, due_on, level, step_on, actions, found_late, opened_on, last_seen_on)
		SELECT (ARRAY['registration', 'passport-renewal', 'stay-extension', 'address-registration', 'arrival-check-in',
		              'exit-visa', 'travel-dean-approval', 'return-check-in', 'visa-invitation', 'term-travel-limit'])[1 + i % 10],
		       'T' || lpad(i::text, 7, '0'), DATE '2026-11-01', 'S' || lpad(i::text, 7, '0'), DATE '2026-11-25' + 29 - i % 90, 3,
		       DATE '2026-11-20', $2, CASE WHEN i % 10 = 3 THEN $3 ELSE 0 END, DATE '2026-11-01', DATE '2026-11-25'
		FROM generate_series(1, $1) i`, n, int(rules.OfficeDigest), int(rules.OfficeDigest|rules.DeanDigest))
	e.dbExec(t, `INSERT INTO sisnotify.notices (notice_key, obligation_id, rule, level, student_id, subject_id, audience, channel, recipient, due_on, night, status, sent_at)
		SELECT o.obligation_id || '/' || k, o.obligation_id, o.rule, k, o.student_id, o.subject_id,
		       (ARRAY['student', 'student', 'office'])[k], (ARRAY['email', 'sms', 'email'])[k], 'x@y.example', o.due_on,
		       DATE '2026-11-20' + k, 'sent', TIMESTAMPTZ '2026-11-20 10:00Z' + k * interval '1 day'
		FROM sisnotify.obligations o, generate_series(1, 3) k`)
	e.dbExec(t, `INSERT INTO sisnotify.obligations (rule, subject_id, anchor, student_id, due_on, level, step_on, actions, opened_on, last_seen_on, closed_on, closed_at, close_reason)
		SELECT 'exit-visa', 'M' || lpad(i::text, 7, '0'), DATE '2026-11-01', 'S' || lpad(i::text, 7, '0'), DATE '2026-11-20', 1,
		       DATE '2026-11-10', $2, DATE '2026-11-01', DATE '2026-11-25', DATE '2026-11-25', now(), 'departure passed'
		FROM generate_series(1, $1) i`, n/100, int(rules.OfficeDigest))
}

// A digest of tens of thousands of rows stays under 100 KB of HTML, shows
// each section's most urgent rows, says how many more each has, and
// attaches every row.
func TestDigestOfTensOfThousandsStaysSmall(t *testing.T) {
	testenv.Long(t, "seeds 40,000 obligations")
	const n = 40_000
	e := newEnv(t)
	e.sync(t)
	seedSections(t, e, n)
	r := newDigestRig(t, e, "office@uni.example")
	res := r.run(t, "2026-11-25")
	if res.Office != 1 || res.Rows != n {
		t.Fatalf("result %+v, want one office digest of %d rows", res, n)
	}
	d := one(t, r.mailTo(t), "office@uni.example")
	html := htmlPart(t, d)
	t.Logf("%d rows: %d bytes of HTML, %d of text", n, len(html), len(d.text))
	if len(html) >= 100_000 {
		t.Errorf("%d bytes of HTML, want under 100 KB", len(html))
	}
	// Every section says how many it has, and the cut ones how many more.
	heading := regexp.MustCompile(`(?m)^== (.+): (\d+) ==$`)
	sections := 0
	total := 0
	for _, m := range heading.FindAllStringSubmatch(d.text, -1) {
		all, _ := strconv.Atoi(m[2])
		if strings.HasPrefix(m[1], "Недоставленные") || strings.HasPrefix(m[1], "Ошибки") {
			continue
		}
		sections++
		total += all
		if all <= 12 {
			continue
		}
		want := fmt.Sprintf("Здесь показаны самые срочные: 12 из %d. Остальные %d — во вложенном файле digest-2026-11-25.csv.", all, all-12)
		if !strings.Contains(d.text, want) || !strings.Contains(html, want) {
			t.Errorf("section %q of %d rows does not say %q", m[1], all, want)
		}
	}
	if sections != 6 || total != n+n/100 {
		t.Errorf("%d sections of %d rows in all, want 6 of %d:\n%s", sections, total, n+n/100, d.text[:min(len(d.text), 3000)])
	}
	files := attachments(t, d.msg)
	if len(files) != 1 {
		t.Fatalf("%d attachments, want the CSV", len(files))
	}
	cr := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(files[0].Body, []byte("\uFEFF"))))
	cr.Comma = ';'
	recs, err := cr.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1+n+n/100 {
		t.Errorf("the CSV has %d lines, want the header and %d rows", len(recs), n+n/100)
	}
}
