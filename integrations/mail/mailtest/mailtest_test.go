package mailtest_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"net/textproto"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iec-almaty/sisnotify/integrations/mail/mailtest"
)

func dial(t *testing.T, s *mailtest.Server) *smtp.Client {
	t.Helper()
	c, err := smtp.Dial(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func msg(id, subject string) string {
	return "From: <office@example.org>\r\nTo: <a@example.org>\r\n" +
		"Message-ID: <" + id + ">\r\nSubject: " + subject + "\r\n\r\nbody\r\n"
}

func send(c *smtp.Client, to, data string) error {
	if err := c.Mail("office@example.org"); err != nil {
		return err
	}
	if err := c.Rcpt(to); err != nil {
		_ = c.Reset()
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(data)); err != nil {
		return err
	}
	return w.Close()
}

func code(err error) int {
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}

func TestRecordsMessages(t *testing.T) {
	s := mailtest.NewServer(t)
	if want := fmt.Sprintf("smtp://127.0.0.1:%d?tls=none", s.Port()); s.URL() != want {
		t.Errorf("URL = %q, want %q", s.URL(), want)
	}
	c := dial(t, s)
	for _, m := range []string{
		msg("n1@x", "=?utf-8?b?0J/RgNC+0LTQu9C40YLQtQ==?="), // "Продлите"
		msg("n2@x", "second"),
		msg("n1@x", "again"),
	} {
		if err := send(c, "a@example.org", m); err != nil {
			t.Fatal(err)
		}
	}
	if !s.WaitFor(3, time.Second) || s.Count() != 3 || s.Connections() != 1 {
		t.Fatalf("count %d, connections %d", s.Count(), s.Connections())
	}
	got := s.Messages()
	if len(got) != 3 {
		t.Fatalf("%d messages", len(got))
	}
	m := got[0]
	if m.From != "office@example.org" || len(m.To) != 1 || m.To[0] != "a@example.org" || m.TLS || m.Authed {
		t.Errorf("message = %+v", m)
	}
	if m.Header("subject") != "Продлите" || m.MessageID() != "n1@x" || m.Header("X-None") != "" {
		t.Errorf("Subject %q, MessageID %q", m.Header("subject"), m.MessageID())
	}
	if !bytes.HasSuffix(m.Data, []byte("\r\n\r\nbody\r\n")) {
		t.Errorf("Data = %q", m.Data)
	}
	if d := s.DuplicatesByMessageID(); d != 1 {
		t.Errorf("DuplicatesByMessageID = %d, want 1", d)
	}
	// Messages returns copies.
	got[0].Data[0], got[0].To[0] = 'X', "changed"
	if again := s.Messages()[0]; again.Data[0] != 'F' || again.To[0] != "a@example.org" {
		t.Error("changing what Messages returned changed the server's record")
	}
}

func TestWaitFor(t *testing.T) {
	s := mailtest.NewServer(t)
	if !s.WaitFor(0, 0) {
		t.Error("WaitFor(0) = false")
	}
	if s.WaitFor(1, 50*time.Millisecond) {
		t.Error("WaitFor(1) = true with no message")
	}
	c := dial(t, s)
	go func() {
		time.Sleep(50 * time.Millisecond)
		_ = send(c, "a@example.org", msg("w1@x", "s"))
		_ = send(c, "a@example.org", msg("w2@x", "s"))
	}()
	if !s.WaitFor(2, 5*time.Second) {
		t.Fatalf("WaitFor(2) = false, count %d", s.Count())
	}
	start := time.Now()
	go func() { time.Sleep(50 * time.Millisecond); s.Close() }()
	if s.WaitFor(3, time.Minute) || time.Since(start) > 10*time.Second {
		t.Error("WaitFor did not give up when the server closed")
	}
}

func TestTempFailAndReject(t *testing.T) {
	s := mailtest.NewServer(t)
	c := dial(t, s)
	s.TempFail(2)
	s.Reject("Bad@Example.org")
	for i, want := range []int{451, 451, 0} {
		if err := send(c, "a@example.org", msg("t@x", "s")); code(err) != want {
			t.Errorf("attempt %d: %v, want code %d", i+1, err, want)
		}
	}
	err := send(c, "bad@example.org", msg("r@x", "s"))
	if code(err) != 550 || !strings.Contains(err.Error(), "5.1.1") {
		t.Errorf("rejected recipient: %v", err)
	}
	s.TempFail(5)
	s.TempFail(0)
	if err := send(c, "a@example.org", msg("t2@x", "s")); err != nil {
		t.Errorf("after TempFail(0): %v", err)
	}
	if s.Count() != 2 || s.Connections() != 1 {
		t.Errorf("count %d, connections %d", s.Count(), s.Connections())
	}
}

func TestDropData(t *testing.T) {
	s := mailtest.NewServer(t)
	s.DropData(1)
	if err := send(dial(t, s), "a@example.org", msg("d@x", "s")); err == nil {
		t.Fatal("dropped DATA reported success")
	}
	if err := send(dial(t, s), "a@example.org", msg("d@x", "s")); err != nil {
		t.Fatal(err)
	}
	if s.Count() != 1 || s.Connections() != 2 {
		t.Errorf("count %d, connections %d", s.Count(), s.Connections())
	}
}

func TestStall(t *testing.T) {
	s := mailtest.NewServer(t)
	release := s.Stall()
	c := dial(t, s)
	done := make(chan error, 1)
	go func() { done <- send(c, "a@example.org", msg("s@x", "s")) }()
	if s.WaitFor(1, 200*time.Millisecond) {
		t.Fatal("a stalled server accepted the message")
	}
	release()
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := send(c, "a@example.org", msg("s2@x", "s")); err != nil {
		t.Fatal(err)
	}
	if s.Count() != 2 {
		t.Errorf("count %d", s.Count())
	}
}

func TestCloseReleasesStalledSessions(t *testing.T) {
	s := mailtest.NewServer(t)
	s.Stall() // never released
	c := dial(t, s)
	done := make(chan error, 1)
	go func() { done <- send(c, "a@example.org", msg("c@x", "s")) }()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	s.Close()
	s.Close()
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Close took %v", d)
	}
	if err := <-done; err == nil {
		t.Error("the stalled send succeeded")
	}
	if s.Count() != 0 {
		t.Errorf("count %d", s.Count())
	}
	if c, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
		c.Close()
		t.Error("the closed server still accepts connections")
	}
}

func TestCloseClientConnections(t *testing.T) {
	s := mailtest.NewServer(t)
	c := dial(t, s)
	if err := c.Noop(); err != nil {
		t.Fatal(err)
	}
	s.CloseClientConnections()
	if err := c.Noop(); err == nil {
		t.Error("connection still answers")
	}
	if err := send(dial(t, s), "a@example.org", msg("x@x", "s")); err != nil {
		t.Fatal(err)
	}
	if s.Connections() != 2 {
		t.Errorf("connections %d", s.Connections())
	}
}

func TestSTARTTLSAndAuth(t *testing.T) {
	srvTLS, cliTLS := mailtest.SelfSignedTLS(t)
	s := mailtest.NewServer(t, mailtest.WithTLS(srvTLS), mailtest.WithAuth("u@x", "p:w@d"))
	u, err := url.Parse(s.URL())
	if err != nil || u.Scheme != "smtp" || u.RawQuery != "" || u.Host != s.Addr() || u.User.Username() != "u@x" {
		t.Fatalf("URL = %q (%v)", s.URL(), err)
	}
	if p, _ := u.User.Password(); p != "p:w@d" {
		t.Errorf("URL password = %q", p)
	}

	c := dial(t, s)
	if ok, _ := c.Extension("STARTTLS"); !ok {
		t.Fatal("no STARTTLS")
	}
	if err := c.Mail("office@example.org"); err == nil {
		t.Error("MAIL FROM accepted before AUTH")
	}
	_ = c.Reset()
	cliTLS.ServerName = "127.0.0.1" // net/smtp does not fill it in
	if err := c.StartTLS(cliTLS); err != nil {
		t.Fatal(err)
	}
	if err := c.Auth(smtp.PlainAuth("", "u@x", "p:w@d", "127.0.0.1")); err != nil {
		t.Fatal(err)
	}
	if err := send(c, "a@example.org", msg("tls@x", "s")); err != nil {
		t.Fatal(err)
	}
	if m := s.Messages(); len(m) != 1 || !m[0].TLS || !m[0].Authed {
		t.Errorf("messages = %+v", m)
	}

	// A wrong password answers 535 (and net/smtp hangs up).
	c2 := dial(t, s)
	if err := c2.StartTLS(cliTLS); err != nil {
		t.Fatal(err)
	}
	if err := c2.Auth(smtp.PlainAuth("", "u@x", "wrong", "127.0.0.1")); code(err) != 535 {
		t.Errorf("wrong password: %v", err)
	}
}

func TestImplicitTLS(t *testing.T) {
	s := mailtest.NewServer(t, mailtest.WithImplicitTLS(nil))
	if want := fmt.Sprintf("smtps://127.0.0.1:%d", s.Port()); s.URL() != want {
		t.Errorf("URL = %q, want %q", s.URL(), want)
	}
	_, cliTLS := mailtest.SelfSignedTLS(t)
	conn, err := tls.Dial("tcp", s.Addr(), cliTLS)
	if err != nil {
		t.Fatal(err)
	}
	c, err := smtp.NewClient(conn, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := send(c, "a@example.org", msg("i@x", "s")); err != nil {
		t.Fatal(err)
	}
	if m := s.Messages(); len(m) != 1 || !m[0].TLS || m[0].Authed {
		t.Errorf("messages = %+v", m)
	}
	// A client that does not trust the certificate gets nothing through.
	if conn, err := tls.Dial("tcp", s.Addr(), &tls.Config{}); err == nil {
		conn.Close()
		t.Error("handshake without the test CA succeeded")
	}
}

func TestDiscard(t *testing.T) {
	s := mailtest.NewServer(t, mailtest.Discard())
	var wg sync.WaitGroup
	for range 3 {
		c := dial(t, s)
		wg.Go(func() {
			for range 10 {
				if err := send(c, "a@example.org", msg("same@x", "s")); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if s.Count() != 30 || len(s.Messages()) != 0 || s.DuplicatesByMessageID() != 0 || s.Connections() != 3 {
		t.Errorf("count %d, messages %d, connections %d", s.Count(), len(s.Messages()), s.Connections())
	}
}
