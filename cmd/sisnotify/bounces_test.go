package main

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/iec-almaty/sisnotify/integrations/mailbox"
	"github.com/iec-almaty/sisnotify/integrations/mailbox/mailboxtest"
	"github.com/iec-almaty/sisnotify/integrations/testenv"
	"github.com/iec-almaty/sisnotify/jobs"
)

// serve with SISNOTIFY_BOUNCE_IMAP_URL reads the bounce mailbox: the
// night's notices go out, a DSN for one of them lands in the mailbox, and
// within about one poll the notice is bounced, its address unreachable,
// the DSN moved to the processed folder; the log gives counts, never the
// address or the mailbox's password.
func TestServeReadsBounces(t *testing.T) {
	testenv.Long(t, "runs serve until a night's notices are sent and a bounce is read")
	const spec = "0 6 * * *"
	e := newServeEnv(t, spec)
	e.seedEntrants(t, 3, today(t, spec))
	imap := mailboxtest.NewServer(t)
	const every = time.Second
	e.env = append(e.env, "SISNOTIFY_BOUNCE_IMAP_URL="+imap.URL(), "SISNOTIFY_TEST_BOUNCE_EVERY="+every.String())
	cmd, log := e.startLogged(t)
	db := testenv.Database{URL: e.dbURL}.Open(t)

	var sent int
	waitFor(t, "the night's student emails to be sent", 90*time.Second, func() bool {
		_ = db.Get(&sent, `SELECT count(*) FROM sisnotify.notices WHERE channel = 'email' AND audience = 'student' AND status = 'sent'`)
		return sent >= 6
	})
	var n struct {
		ID        int64  `db:"notice_id"`
		Key       string `db:"notice_key"`
		Student   string `db:"student_id"`
		Recipient string `db:"recipient"`
	}
	if err := db.Get(&n, `SELECT notice_id, notice_key, student_id, recipient FROM sisnotify.notices
		WHERE channel = 'email' AND audience = 'student' AND status = 'sent' ORDER BY notice_id LIMIT 1`); err != nil {
		t.Fatal(err)
	}
	var msgID string
	for _, m := range e.smtp.Messages() {
		if "<"+m.MessageID()+">" == jobs.MessageID(n.Key) {
			msgID = "<" + m.MessageID() + ">"
		}
	}
	if msgID == "" {
		t.Fatalf("notice %d's email is not among the %d the SMTP server received", n.ID, e.smtp.Count())
	}
	dsn := strings.ReplaceAll(fmt.Sprintf(`From: MAILER-DAEMON@mx.uni.example
To: office@uni.example
Subject: Undelivered Mail Returned to Sender
Message-Id: <serve-bounce-1@mx.uni.example>
Content-Type: multipart/report; report-type=delivery-status; boundary=b

--b
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.uni.example

Final-Recipient: rfc822; %s
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <%s>: user unknown

--b
Content-Type: text/rfc822-headers

Message-ID: %s

--b--
`, n.Recipient, n.Recipient, msgID), "\n", "\r\n")
	appended := time.Now()
	imap.Append("INBOX", []byte(dsn))
	var status string
	waitFor(t, "the notice to be bounced", 10*every+5*time.Second, func() bool {
		_ = db.Get(&status, `SELECT status FROM sisnotify.notices WHERE notice_id = $1`, n.ID)
		return status == "bounced"
	})
	took := time.Since(appended)
	var unreachable int
	if err := db.Get(&unreachable, `SELECT count(*) FROM sisnotify.unreachable_contacts WHERE student_id = $1 AND channel = 'email' AND contact = $2`, n.Student, n.Recipient); err != nil {
		t.Fatal(err)
	}
	if unreachable != 1 {
		t.Fatalf("%d unreachable rows for the bounced address, want 1", unreachable)
	}
	waitFor(t, "the DSN to be moved", 5*time.Second, func() bool {
		return len(imap.Messages(mailbox.ProcessedFolder)) == 1 && len(imap.Messages("INBOX")) == 0
	})
	figure(t, fmt.Sprintf("serve's bounce mailbox (poll every %s): a DSN bounced its notice %.1fs after it arrived", every, took.Seconds()))
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("serve exited with %v after SIGTERM", err)
	}
	out := log.String()
	if !strings.Contains(out, `"msg":"bounce mailbox read"`) || !strings.Contains(out, `"bounced":1`) {
		t.Errorf("the log does not report the bounce read:\n%s", out)
	}
	for _, secret := range []string{n.Recipient, mailboxtest.Password, mailboxtest.User + ":"} {
		if strings.Contains(out, secret) {
			t.Errorf("the log holds %q", secret)
		}
	}
}
