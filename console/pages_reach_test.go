package console

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/iec-almaty/sisnotify/store"
)

// A student whose email bounced: their page shows the contact that cannot
// receive (the office: the address, since when, the last error, the
// notice that showed it; a dean: the channel and since when only), marks
// the address in the SIS fields, and names the notice's status; a new
// address in the snapshot takes it off.
func TestStudentPageShowsUnreachableContacts(t *testing.T) {
	db := testDB(t)
	h := newTestConsole(t, db)
	var n struct {
		ID        int64  `db:"notice_id"`
		Student   string `db:"student_id"`
		Recipient string `db:"recipient"`
		Faculty   string `db:"faculty_id"`
	}
	// The fixture sent nothing: the notice is sent as the delivery records it.
	if err := db.Get(&n, `WITH x AS (UPDATE sisnotify.notices SET status = 'sent', sent_at = now(), attempts = 1
		WHERE notice_id = (SELECT min(n.notice_id) FROM sisnotify.notices n JOIN sisnotify.students s USING (student_id)
		                   WHERE n.audience = 'student' AND n.channel = 'email' AND s.faculty_id IS NOT NULL)
		RETURNING notice_id, student_id, recipient)
		SELECT x.notice_id, x.student_id, x.recipient, s.faculty_id FROM x JOIN sisnotify.students s USING (student_id)`); err != nil {
		t.Fatal(err)
	}
	at := fixtureNight.Time(almaty).Add(-14 * time.Hour) // 10:00 the day before, in Almaty
	if _, err := store.New(db).RecordDeliveryEvent(context.Background(), store.DeliveryEvent{Source: store.SourceIMAP,
		ExternalID: "<dsn-1@mx.example>", NoticeID: n.ID, Outcome: store.OutcomeBounced, Reason: "5.1.1", Detail: "user unknown", At: at}); err != nil {
		t.Fatal(err)
	}

	res, body := get(t, h, "/console/students/"+n.Student)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	section := between(body, `<section id="unreachable">`, `</section>`)
	for _, want := range []string{"Contacts we cannot reach", "<td>email</td>", "<td>" + n.Recipient + "</td>", "2026-11-24 10:00",
		"5.1.1 user unknown", fmt.Sprintf(`href="#n%d"`, n.ID)} {
		if !strings.Contains(section, want) {
			t.Errorf("the unreachable section lacks %q:\n%s", want, section)
		}
	}
	if strings.Count(section, `<tr class="unreachable">`) != 1 {
		t.Errorf("want one unreachable contact:\n%s", section)
	}
	if !strings.Contains(body, n.Recipient+` <a class="flag flag-unreachable" href="#unreachable">unreachable</a>`) {
		t.Error("the address in the SIS fields is not marked unreachable")
	}
	if !strings.Contains(body, `<span class="status status-bounced">bounced</span>`) {
		t.Error("the notice's status is not shown as bounced")
	}
	for _, lang := range []string{"ru", "kk", "en"} {
		req := httptest.NewRequest(http.MethodGet, "/console/students/"+n.Student, nil)
		req.SetBasicAuth(testUser, testPass)
		req.AddCookie(&http.Cookie{Name: langCookie, Value: lang})
		_, body := do(t, h, req)
		checkPage(t, lang+" student with an unreachable contact", lang, body)
		if strings.Contains(body, "page.") {
			t.Errorf("%s: an untranslated key in the page", lang)
		}
	}

	// A dean of the student's faculty sees that email does not reach the
	// student, not the address or the server's reply.
	code, dean := asDean(t, h.studentPage, http.MethodGet, "/console/students/"+n.Student, n.Student, nil, n.Faculty)
	if code != http.StatusOK {
		t.Fatalf("dean: status %d", code)
	}
	section = between(dean, `<section id="unreachable">`, `</section>`)
	if !strings.Contains(section, "<td>email</td>") || strings.Contains(dean, n.Recipient) || strings.Contains(section, "5.1.1") {
		t.Errorf("the dean's unreachable section:\n%s", section)
	}

	// The SIS gives a new address: reachable again.
	if _, err := db.Exec(`UPDATE sisnotify.students SET email = 'new.' || email WHERE student_id = $1`, n.Student); err != nil {
		t.Fatal(err)
	}
	_, body = get(t, h, "/console/students/"+n.Student)
	if strings.Contains(body, `id="unreachable"`) || strings.Contains(body, "flag-unreachable") {
		t.Error("the page still shows the old address as unreachable")
	}
}

// between is the part of s from the first from to the next to, "" when
// there is none.
func between(s, from, to string) string {
	i := strings.Index(s, from)
	if i < 0 {
		return ""
	}
	j := strings.Index(s[i:], to)
	if j < 0 {
		return s[i:]
	}
	return s[i : i+j]
}
