package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/iec-almaty/sisnotify/integrations/testenv"
	"github.com/iec-almaty/sisnotify/internal/nighttest"
	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/store"
)

// A bounce of a sent email, read twice, marks the notice bounced and the
// address unreachable once; a receipt of an SMS marks it delivered; a new
// address in the snapshot is reachable again.
func TestDeliveryEventsReachAndUnreach(t *testing.T) {
	ctx := context.Background()
	f, err := nighttest.New(ctx, "store_reach", 60, 3, date.MustParse("2026-11-25"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Drop)
	db := testenv.New(t, f.DB.Name).Open(t)
	st := store.New(db)
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

	var email struct {
		ID        int64  `db:"notice_id"`
		Key       string `db:"notice_key"`
		Student   string `db:"student_id"`
		Recipient string `db:"recipient"`
	}
	if err := db.Get(&email, `UPDATE sisnotify.notices SET status = 'sent', sent_at = now()
		WHERE notice_id = (SELECT min(notice_id) FROM sisnotify.notices WHERE audience = 'student' AND channel = 'email')
		RETURNING notice_id, notice_key, student_id, recipient`); err != nil {
		t.Fatal(err)
	}
	hash, ok := jobs.MessageHash(jobs.MessageID(email.Key))
	if !ok {
		t.Fatalf("MessageHash(%s) not ok", jobs.MessageID(email.Key))
	}
	n, ok, err := st.NoticeByMessageHash(ctx, hash)
	if err != nil || !ok || n.ID != email.ID || n.Status != store.NoticeSent {
		t.Fatalf("NoticeByMessageHash = %+v, %v, %v; want notice %d sent", n, ok, err, email.ID)
	}
	if _, ok, _ := st.NoticeByMessageHash(ctx, make([]byte, 16)); ok {
		t.Fatal("an unknown hash found a notice")
	}

	bounce := store.DeliveryEvent{Source: store.SourceIMAP, ExternalID: "<dsn-1@mx.example>", NoticeID: email.ID,
		Outcome: store.OutcomeBounced, Reason: "5.1.1", Detail: "user unknown", At: at}
	for i, want := range []bool{true, false} {
		rec, err := st.RecordDeliveryEvent(ctx, bounce)
		if err != nil || rec != want {
			t.Fatalf("reading %d: recorded %v, %v; want %v", i+1, rec, err, want)
		}
	}
	var status, lastError string
	if err := db.QueryRow(`SELECT status, last_error FROM sisnotify.notices WHERE notice_id = $1`, email.ID).Scan(&status, &lastError); err != nil {
		t.Fatal(err)
	}
	if status != string(store.NoticeBounced) || lastError != "5.1.1 user unknown" {
		t.Fatalf("notice after the bounce: %s %q", status, lastError)
	}
	u, err := st.UnreachableContacts(ctx, email.Student)
	if err != nil || len(u) != 1 || u[0].Channel != "email" || u[0].Contact != email.Recipient || u[0].NoticeID != email.ID || !u[0].Since.Equal(at) {
		t.Fatalf("unreachable = %+v, %v", u, err)
	}

	// A delivered receipt after the bounce does not undo it.
	if _, err := st.RecordDeliveryEvent(ctx, store.DeliveryEvent{Source: store.SourceIMAP, ExternalID: "late", NoticeID: email.ID,
		Outcome: store.OutcomeDelivered, At: at}); err != nil {
		t.Fatal(err)
	}
	if err := db.Get(&status, `SELECT status FROM sisnotify.notices WHERE notice_id = $1`, email.ID); err != nil || status != "bounced" {
		t.Fatalf("status %s, %v after a late delivered receipt", status, err)
	}

	// An ignored message is recorded with no notice.
	if rec, err := st.RecordDeliveryEvent(ctx, store.DeliveryEvent{Source: store.SourceIMAP, ExternalID: "<newsletter@x>",
		Outcome: store.OutcomeIgnored, Reason: "not-a-bounce", At: at}); err != nil || !rec {
		t.Fatal(rec, err)
	}
	ev, err := st.DeliveryEvents(ctx, store.SourceIMAP, 10)
	if err != nil || len(ev) != 3 || ev[0].Reason != "not-a-bounce" || ev[0].NoticeID != 0 || ev[2].NoticeID != email.ID {
		t.Fatalf("events = %+v, %v", ev, err)
	}

	// The SIS gets a new address: reachable again.
	if _, err := db.Exec(`UPDATE sisnotify.students SET email = 'new.' || email WHERE student_id = $1`, email.Student); err != nil {
		t.Fatal(err)
	}
	if u, err := st.UnreachableContacts(ctx, email.Student); err != nil || len(u) != 0 {
		t.Fatalf("after a new address: unreachable = %+v, %v", u, err)
	}

	// An SMS receipt by the provider's id.
	var sms int64
	if err := db.Get(&sms, `UPDATE sisnotify.notices SET status = 'sent', sent_at = $1, provider_id = 'SM123'
		WHERE notice_id = (SELECT min(notice_id) FROM sisnotify.notices WHERE channel = 'sms') RETURNING notice_id`, at); err != nil {
		t.Fatal(err)
	}
	waiting, err := st.SMSAwaitingReceipt(ctx, at.Add(-48*time.Hour), 100)
	if err != nil || len(waiting) != 1 || waiting[0].ID != sms || waiting[0].ProviderID != "SM123" {
		t.Fatalf("awaiting receipt = %+v, %v", waiting, err)
	}
	n, ok, err = st.NoticeBySMSProviderID(ctx, "SM123")
	if err != nil || !ok || n.ID != sms {
		t.Fatalf("NoticeBySMSProviderID = %+v, %v, %v", n, ok, err)
	}
	if _, err := st.RecordDeliveryEvent(ctx, store.DeliveryEvent{Source: store.SourceTwilio, ExternalID: "SM123/delivered", NoticeID: sms,
		Outcome: store.OutcomeDelivered, At: at}); err != nil {
		t.Fatal(err)
	}
	if err := db.Get(&status, `SELECT status FROM sisnotify.notices WHERE notice_id = $1`, sms); err != nil || status != "delivered" {
		t.Fatalf("SMS status %s, %v after a delivered receipt", status, err)
	}
	if waiting, _ := st.SMSAwaitingReceipt(ctx, at.Add(-48*time.Hour), 100); len(waiting) != 0 {
		t.Fatalf("a delivered SMS still awaits its receipt")
	}
}
