package jobs_test

import (
	"strings"
	"testing"
	"time"
)

// The office digest lists, first, the students it cannot reach: each
// contact that bounced once, in the order of the student's most urgent row
// (legal exposure before other overdue before upcoming, then the most
// overdue: neither the student ids' order nor the due dates'), with the
// day it stopped and the error. A dean's digest does
// not. A new address in the SIS takes the student off the list.
func TestDigestListsUnreachableStudents(t *testing.T) {
	e := newEnv(t)
	e.exec(t, digestFixture)
	e.sync(t)
	r := newRig(t, e)
	d := newDigestRig(t, e, "office@uni.example")
	e.evaluate(t, "2026-11-25")
	r.night(t)

	at := time.Date(2026, 11, 25, 4, 0, 0, 0, time.UTC)
	bounced := map[string]bool{"s3@student.example": true, "s7@student.example": true, "s8@student.example": true}
	for _, m := range r.smtp.Messages() {
		if len(m.To) == 1 && bounced[m.To[0]] {
			for i, want := range []bool{true, false} { // read twice: recorded once
				if _, rec := bounceMail(t, e, m, at); rec != want {
					t.Fatalf("bounce of %s read %d times: recorded %v", m.To[0], i+1, rec)
				}
			}
		}
	}
	var s2sms int64
	if err := e.db.Get(&s2sms, `SELECT notice_id FROM sisnotify.notices WHERE student_id = 'S2' AND channel = 'sms' AND status = 'sent'`); err != nil {
		t.Fatal(err)
	}
	failSMS(t, e, s2sms, at.Add(time.Hour))

	d.run(t, "2026-11-25")
	got := d.mailTo(t)
	office := one(t, got, "office@uni.example")
	if !strings.HasPrefix(office.text, "Студенты, с которыми нет связи: 4 · ") {
		t.Errorf("the line of counts does not start with the students it cannot reach:\n%s", office.text)
	}
	order(t, "office digest", office.text,
		"== Студенты, с которыми нет связи: 4 ==",
		// S3: registration 4 days overdue (legal exposure).
		"- S3, Ali Karimov, Economics — письма не доставляются с 25 ноября [5.1.1 user unknown]. Самое срочное: Миграционная регистрация, просрочено с 21 ноября 2026 г. (4 дня).",
		// S2: registration 2 days overdue (legal exposure).
		"- S2, Wei Zhang, Engineering — SMS не доставляются с 25 ноября [30003 Unreachable destination handset]. Самое срочное: Миграционная регистрация, просрочено с 23 ноября 2026 г. (2 дня).",
		// S7: passport 55 days overdue, but other overdue.
		"- S7, Van An Nguyen, Economics — письма не доставляются с 25 ноября [5.1.1 user unknown]. Самое срочное: Продление или замена паспорта, просрочено с 1 октября 2026 г. (55 дней).",
		// S8: registration in 3 days (upcoming).
		"- S8, Fatima Yusupova, Engineering — письма не доставляются с 25 ноября [5.1.1 user unknown]. Самое срочное: Миграционная регистрация, осталось 3 дня.",
		"== Просрочено, правовой риск: 5 ==")
	if n := strings.Count(office.text, "не доставляются с"); n != 4 {
		t.Errorf("%d unreachable rows, want 4", n)
	}
	html := htmlPart(t, office)
	if !strings.Contains(html, `<h2 id="unreachable"`) || !strings.Contains(html, `href="#unreachable"`) {
		t.Error("the HTML has no unreachable section")
	}
	for addr, ds := range got {
		if strings.HasPrefix(addr, "dean.") && strings.Contains(ds[0].text, "нет связи") {
			t.Errorf("%s's digest lists unreachable students", addr)
		}
	}

	// The next night S3 has a new address in the SIS, S7's is the same:
	// S3 is off the list.
	e.exec(t, `UPDATE sis.students SET email = 'ali.karimov@student.example' WHERE student_id = 'S3'`)
	e.sync(t)
	e.evaluate(t, "2026-11-26")
	d.run(t, "2026-11-26")
	next := d.mailTo(t)["office@uni.example"][1]
	if !strings.Contains(next.text, "== Студенты, с которыми нет связи: 3 ==") || strings.Contains(next.text, "- S3, Ali Karimov, Economics — письма") ||
		!strings.Contains(next.text, "- S7, Van An Nguyen, Economics — письма не доставляются с 25 ноября") {
		t.Errorf("the next digest after S3's new address:\n%s", next.text)
	}
}
