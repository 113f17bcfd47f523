package jobs_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iec-almaty/sisnotify/integrations/mailbox"
	"github.com/iec-almaty/sisnotify/integrations/mailbox/mailboxtest"
	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/store"
)

// sentNotice is an email notice as sent: its row and the Message-ID the
// SMTP server received.
type sentNotice struct {
	ID        int64  `db:"notice_id"`
	Key       string `db:"notice_key"`
	Student   string `db:"student_id"`
	Recipient string `db:"recipient"`
	MessageID string `db:"-"`
}

// sentNotices sends the night's notices of n entrants to the rig's SMTP
// server and returns them with the Message-IDs read from what it received.
func sentNotices(t *testing.T, n int) (*env, []sentNotice) {
	t.Helper()
	e := newEnv(t)
	e.entrants(t, n)
	r := newRig(t, e)
	r.night(t)
	var rows []sentNotice
	if err := e.db.Select(&rows, `SELECT notice_id, notice_key, student_id, recipient FROM sisnotify.notices
		WHERE channel = 'email' AND status = 'sent' ORDER BY notice_id`); err != nil {
		t.Fatal(err)
	}
	byID := map[string]int{}
	for i, row := range rows {
		byID[jobs.MessageID(row.Key)] = i
	}
	for _, m := range r.smtp.Messages() {
		if i, ok := byID["<"+m.MessageID()+">"]; ok {
			rows[i].MessageID = "<" + m.MessageID() + ">"
		}
	}
	for _, row := range rows {
		if row.MessageID == "" {
			t.Fatalf("notice %d was not received by the SMTP server", row.ID)
		}
	}
	return e, rows
}

// dsn is an RFC 3464 report from the university's relay about the message
// with originalID: action failed or delayed with status.
func dsn(ownID, originalID, action, status string) []byte {
	return []byte(strings.ReplaceAll(fmt.Sprintf(`From: MAILER-DAEMON@mx.uni.example (Mail Delivery System)
To: international@uni.example
Subject: Undelivered Mail Returned to Sender
Message-Id: %s
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b1"

--b1
Content-Type: text/plain

Your message could not be delivered.

--b1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.uni.example

Final-Recipient: rfc822; someone@student.example
Action: %s
Status: %s
Diagnostic-Code: smtp; %s3 %s <someone@student.example>: no such mailbox here

--b1
Content-Type: text/rfc822-headers

From: International Office <international@uni.example>
Message-ID: %s
Subject: a notice

--b1--
`, ownID, action, status, status[:1]+"5", status, originalID), "\n", "\r\n"))
}

func newBounces(t *testing.T, e *env, srv *mailboxtest.Server) *jobs.Bounces {
	t.Helper()
	cfg, err := mailbox.ParseURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Timeout = 5 * time.Second
	return &jobs.Bounces{DB: e.db, Open: func(ctx context.Context) (jobs.BounceMailbox, error) {
		return mailbox.Open(ctx, cfg)
	}}
}

var bounceNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func noticeStatus(t *testing.T, e *env, id int64) string {
	t.Helper()
	var s string
	if err := e.db.Get(&s, `SELECT status FROM sisnotify.notices WHERE notice_id = $1`, id); err != nil {
		t.Fatal(err)
	}
	return s
}

// One poll over a mailbox with a hard bounce, a soft one, a malformed DSN,
// a bounce of an unknown notice, a digest's bounce, an ordinary reply and
// a message without a Message-ID: the hard bounce's notice is bounced and
// its address unreachable, the soft one is recorded and changes nothing,
// the rest are recorded as ignored with their reasons; every message is
// moved to the processed folder, whole, and none deleted. A second poll
// records nothing more.
func TestBouncesPoll(t *testing.T) {
	e, sent := sentNotices(t, 2)
	srv := mailboxtest.NewServer(t)
	hard, soft := sent[0], sent[len(sent)-1]
	if hard.Student == soft.Student {
		t.Fatalf("want the two notices of different students, got %s twice", hard.Student)
	}
	inbox := [][]byte{
		dsn("<b1@mx.uni.example>", hard.MessageID, "failed", "5.1.1"),
		dsn("<b2@mx.uni.example>", soft.MessageID, "delayed", "4.4.1"),
		[]byte("From: MAILER-DAEMON@mx.uni.example\r\nMessage-Id: <b3@mx.uni.example>\r\nSubject: Undelivered Mail Returned to Sender\r\n" +
			"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nsomething\r\n--x--\r\n"),
		dsn("<b4@mx.uni.example>", "<notice.00000000000000000000000000000000@sisnotify>", "failed", "5.1.1"),
		dsn("<b5@mx.uni.example>", jobs.DigestMessageID(mustDate("2026-11-25"), "office1"), "failed", "5.1.1"),
		[]byte("From: Student <s@student.example>\r\nMessage-Id: <b6@student.example>\r\nSubject: Re: arrival\r\nIn-Reply-To: " + hard.MessageID + "\r\n\r\nThanks!\r\n"),
		[]byte("From: MAILER-DAEMON@mx.uni.example\r\nSubject: failure notice\r\n\r\nno id, no status\r\n"),
	}
	for _, m := range inbox {
		srv.Append("INBOX", m)
	}
	var counter outcomeCounter
	b := newBounces(t, e, srv)
	b.Observe = &counter
	ctx := context.Background()
	c, err := b.Poll(ctx, bounceNow)
	if err != nil {
		t.Fatal(err)
	}
	if c.Read != 7 || c.Bounced != 1 || c.Soft != 1 || c.Ignored != 5 || c.Again != 0 {
		t.Fatalf("poll: %+v; want 7 read, 1 bounced, 1 soft, 5 ignored", c)
	}
	if got := counter.snapshot(); got[store.OutcomeBounced] != 1 || got[store.OutcomeSoftBounce] != 1 || got[store.OutcomeIgnored] != 5 {
		t.Errorf("observed %v", got)
	}
	for _, n := range sent {
		want := "sent"
		if n.ID == hard.ID {
			want = "bounced"
		}
		if got := noticeStatus(t, e, n.ID); got != want {
			t.Errorf("notice %d is %s, want %s", n.ID, got, want)
		}
	}
	st := store.New(e.db)
	un, err := st.UnreachableContacts(ctx, hard.Student)
	if err != nil {
		t.Fatal(err)
	}
	if len(un) != 1 || un[0].Channel != "email" || un[0].Contact != hard.Recipient || un[0].NoticeID != hard.ID || !strings.HasPrefix(un[0].LastError, "5.1.1") {
		t.Fatalf("unreachable contacts of %s: %+v", hard.Student, un)
	}
	if un, err := st.UnreachableContacts(ctx, soft.Student); err != nil || len(un) != 0 {
		t.Fatalf("the soft bounce made %+v unreachable (%v)", un, err)
	}
	events, err := st.DeliveryEvents(ctx, store.SourceIMAP, 20)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, ev := range events {
		got[ev.ExternalID] = ev.Outcome + "/" + ev.Reason
		if strings.Contains(ev.Detail, "@") {
			t.Errorf("event %s keeps an address in its detail: %q", ev.ExternalID, ev.Detail)
		}
	}
	want := map[string]string{
		"<b1@mx.uni.example>":  "bounced/5.1.1",
		"<b2@mx.uni.example>":  "soft-bounce/4.4.1",
		"<b3@mx.uni.example>":  "ignored/malformed",
		"<b4@mx.uni.example>":  "ignored/unknown-notice",
		"<b5@mx.uni.example>":  "ignored/digest",
		"<b6@student.example>": "ignored/not-a-bounce",
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("event %s: %q, want %q", id, got[id], w)
		}
	}
	var standIn string
	for id, g := range got {
		if strings.HasPrefix(id, "imap:INBOX/") {
			standIn = id + " " + g
		}
	}
	if len(events) != 7 || !strings.HasSuffix(standIn, "/7 ignored/malformed") {
		t.Fatalf("%d events; the one without a Message-ID: %q; all: %v", len(events), standIn, got)
	}
	if left := srv.Messages("INBOX"); len(left) != 0 {
		t.Fatalf("%d messages left in INBOX", len(left))
	}
	moved := srv.Messages(mailbox.ProcessedFolder)
	if len(moved) != len(inbox) {
		t.Fatalf("%d messages in %s, want %d", len(moved), mailbox.ProcessedFolder, len(inbox))
	}
	for i, m := range moved {
		if string(m.Raw) != string(inbox[i]) {
			t.Errorf("processed message %d differs from the one put in", i)
		}
	}

	// Polling again reads nothing; the same bounce delivered twice (or
	// read again after a crash before it was moved) is recorded once.
	if c, err := b.Poll(ctx, bounceNow); err != nil || c.Read != 0 {
		t.Fatalf("second poll: %+v, %v", c, err)
	}
	srv.Append("INBOX", inbox[0])
	if c, err := b.Poll(ctx, bounceNow); err != nil || c.Read != 1 || c.Again != 1 || c.Bounced != 0 {
		t.Fatalf("poll of a bounce read before: %+v, %v", c, err)
	}
	if events, _ := st.DeliveryEvents(ctx, store.SourceIMAP, 20); len(events) != 7 {
		t.Fatalf("%d events after reading one again, want 7", len(events))
	}
}

// A server that drops the connection in the middle of a poll: the poll
// ends with an error, what it recorded stays recorded and put away, and
// the next poll reads the rest.
func TestBouncesPollDroppedMidway(t *testing.T) {
	e, sent := sentNotices(t, 2)
	srv := mailboxtest.NewServer(t)
	for i, n := range sent[:3] {
		srv.Append("INBOX", dsn(fmt.Sprintf("<d%d@mx.uni.example>", i), n.MessageID, "failed", "5.1.1"))
	}
	b := newBounces(t, e, srv)
	srv.DropAtFetch(2)
	c, err := b.Poll(context.Background(), bounceNow)
	if err == nil {
		t.Fatalf("poll over a dropped connection: %+v, no error", c)
	}
	if c.Read != 1 || c.Bounced != 1 {
		t.Fatalf("before the drop: %+v; want the first bounce recorded", c)
	}
	if left, moved := len(srv.Messages("INBOX")), len(srv.Messages(mailbox.ProcessedFolder)); left != 2 || moved != 1 {
		t.Fatalf("after the drop: %d in INBOX, %d processed; want 2 and 1", left, moved)
	}
	c, err = b.Poll(context.Background(), bounceNow)
	if err != nil || c.Read != 2 || c.Bounced != 2 {
		t.Fatalf("next poll: %+v, %v; want the other 2 bounced", c, err)
	}
	for _, n := range sent[:3] {
		if s := noticeStatus(t, e, n.ID); s != "bounced" {
			t.Errorf("notice %d is %s", n.ID, s)
		}
	}
}

// Two pollers at once (two replicas): one reads, the other finds the
// mailbox busy; each bounce is recorded once.
func TestBouncesPollOneAtATime(t *testing.T) {
	e, sent := sentNotices(t, 1)
	srv := mailboxtest.NewServer(t)
	for i, n := range sent {
		srv.Append("INBOX", dsn(fmt.Sprintf("<o%d@mx.uni.example>", i), n.MessageID, "failed", "5.1.1"))
	}
	b := newBounces(t, e, srv)
	var wg sync.WaitGroup
	results := make([]jobs.BounceCounts, 4)
	errs := make([]error, 4)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = b.Poll(context.Background(), bounceNow)
		}()
	}
	wg.Wait()
	bounced := 0
	for i, r := range results {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		bounced += r.Bounced
		if r.Again != 0 {
			t.Errorf("poller %d read a bounce another had recorded: %+v", i, r)
		}
	}
	if bounced != len(sent) {
		t.Fatalf("%d bounces recorded by 4 pollers, want %d", bounced, len(sent))
	}
}

type outcomeCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (o *outcomeCounter) Bounce(outcome string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.n == nil {
		o.n = map[string]int{}
	}
	o.n[outcome]++
}

func (o *outcomeCounter) snapshot() map[string]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[string]int{}
	for k, v := range o.n {
		out[k] = v
	}
	return out
}
