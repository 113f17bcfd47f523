package studentpage

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/iec-almaty/sisnotify/integrations/mail"
	"github.com/iec-almaty/sisnotify/integrations/sms"
	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/jobs/date"
)

// deliverAtOnce is what serve does after a report (evaluate the student,
// queue what it opened), with the queue replaced by delivering at once.
type deliverAtOnce struct {
	db *sqlx.DB
	d  *jobs.Deliverer
}

func (a deliverAtOnce) ReportRecorded(ctx context.Context, studentID string, today date.Date) error {
	ids, err := jobs.EvaluateStudent(ctx, a.db, nil, []string{"io@uni.example"}, studentID, today)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if _, err := a.d.Deliver(ctx, id, true); err != nil {
			return err
		}
	}
	return nil
}

// A student reports lost documents: the office's urgent email for the
// document-loss rule goes out while the student is still on the page,
// not at the next night.
func TestLostDocumentsReachTheOfficeAtOnce(t *testing.T) {
	r := newRig(t, generous)
	id, _ := studentEmailNotice(t, r.db)
	path := pathOf(t, r.linkFromEmail(t, id))
	d := &jobs.Deliverer{DB: r.db, Mail: r.pool, SMS: sms.NewOutbox(t.TempDir()), Templates: r.set, Office: office,
		OfficeLang: "ru", Location: almaty, Now: func() time.Time { return fixtureNow }}
	r.h.opt.Acted = deliverAtOnce{db: r.db, d: d}
	const client = "192.0.2.30:4000"
	page := r.do("GET", path, client, nil).Body.String()
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
	if csrf == nil {
		t.Fatal("no form token on the page")
	}
	before := r.smtp.Count()
	if w := r.do("POST", path, client, url.Values{"kind": {"lost-documents"}, "csrf": {csrf[1]}}); w.Code != http.StatusSeeOther {
		t.Fatalf("report: %d %s", w.Code, w.Body)
	}
	// The confirmation to the student, and the notices the report opened.
	if !r.smtp.WaitFor(before+2, 10*time.Second) {
		t.Fatalf("%d emails after the report, want the confirmation and the office's urgent one", r.smtp.Count()-before)
	}
	var urgent int
	for _, m := range r.smtp.Messages()[before:] {
		if m.Header(mail.HeaderRule) == "document-loss" && m.Header(mail.HeaderAudience) == "office" {
			urgent++
		}
	}
	if urgent != 1 {
		t.Fatalf("%d office emails with %s: document-loss, want 1", urgent, mail.HeaderRule)
	}
}
