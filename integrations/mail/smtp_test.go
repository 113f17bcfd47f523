package mail

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iec-almaty/sisnotify/integrations/mail/mailtest"
)

const student = "aigerim.student@example.edu.kz"

func notice(to string) Message {
	return Message{
		To:        to,
		Subject:   "Продлите паспорт / Renew your passport",
		Text:      "Dear student,\nyour passport expires on 2025-03-01.\n",
		HTML:      "<p>Dear student,<br>your passport expires on <b>2025-03-01</b>.</p>",
		MessageID: "notice.passport-renewal.2.S0042@sisnotify.local",
		Headers: map[string]string{
			HeaderKind:     "notice",
			HeaderRule:     "passport-renewal",
			HeaderLevel:    "2",
			HeaderStudent:  "S0042",
			HeaderAudience: "student",
		},
	}
}

func newPool(t *testing.T, cfg Config) *Pool {
	t.Helper()
	p, err := NewPool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func mustSend(t *testing.T, s Sender, msg Message) Result {
	t.Helper()
	res, retry, err := s.Send(context.Background(), msg)
	if err != nil {
		t.Fatalf("Send: retryable=%v err=%v", retry, err)
	}
	return res
}

// poolConfig is a pool configuration for srv (from its URL, so tls=none
// for a plain server, and its credentials when it has WithAuth), trusting
// the mailtest certificate when the server speaks TLS.
func poolConfig(t testing.TB, srv *mailtest.Server, conns int) Config {
	t.Helper()
	cfg, err := ParseURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TLS != TLSNone {
		_, cfg.TLSConfig = mailtest.SelfSignedTLS(t)
	}
	cfg.Connections = conns
	cfg.Timeout = 10 * time.Second
	return cfg
}

// assertClean fails when the text of err contains any of the given strings
// (addresses, passwords, user names).
func assertClean(t *testing.T, err error, forbidden ...string) {
	t.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	for _, f := range forbidden {
		if f != "" && strings.Contains(strings.ToLower(msg), strings.ToLower(f)) {
			t.Errorf("error text %q contains %q", msg, f)
		}
	}
	if strings.Contains(msg, "@") {
		t.Errorf("error text %q contains an @", msg)
	}
}

// parsed is a received message taken apart.
type parsed struct {
	Header mail.Header
	Parts  map[string]string // content type (without params) -> decoded body
	Raw    []byte
}

func parse(t *testing.T, raw []byte) parsed {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("message does not parse: %v", err)
	}
	p := parsed{Header: m.Header, Parts: map[string]string{}, Raw: raw}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("Content-Type: %v", err)
	}
	if !strings.HasPrefix(mt, "multipart/") {
		body, _ := io.ReadAll(m.Body)
		p.Parts[mt] = string(body)
		return p
	}
	p.Parts["multipart"] = mt
	r := multipart.NewReader(m.Body, params["boundary"])
	for {
		part, err := r.NextPart() // decodes quoted-printable
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		pt, pp, _ := mime.ParseMediaType(part.Header.Get("Content-Type"))
		if pp["charset"] != "" && !strings.EqualFold(pp["charset"], "utf-8") {
			t.Errorf("part %s has charset %s", pt, pp["charset"])
		}
		b, _ := io.ReadAll(part)
		p.Parts[pt] = string(b)
	}
	return p
}

func TestSendHeadersAndMultipart(t *testing.T) {
	s := mailtest.NewServer(t)
	p := newPool(t, poolConfig(t, s, 1))
	msg := notice(student)
	res := mustSend(t, p, msg)
	if !strings.Contains(res.Reply, "2.0.0") {
		t.Errorf("Reply = %q, want the server's 250 text", res.Reply)
	}

	msgs := s.Messages()
	if len(msgs) != 1 {
		t.Fatalf("server got %d messages", len(msgs))
	}
	got := msgs[0]
	if got.From != "international@localhost" {
		t.Errorf("envelope from = %q", got.From)
	}
	if len(got.To) != 1 || got.To[0] != student {
		t.Errorf("envelope recipients = %q, want exactly [%s]", got.To, student)
	}
	m := parse(t, got.Data)
	dec := new(mime.WordDecoder)
	subject, _ := dec.DecodeHeader(m.Header.Get("Subject"))
	want := map[string]string{
		"From":                     `"International Office" <international@localhost>`,
		"To":                       "<" + student + ">",
		"Message-Id":               "<notice.passport-renewal.2.S0042@sisnotify.local>",
		"Auto-Submitted":           "auto-generated",
		"X-Auto-Response-Suppress": "All",
		"X-Sisnotify-Kind":         "notice",
		"X-Sisnotify-Rule":         "passport-renewal",
		"X-Sisnotify-Level":        "2",
		"X-Sisnotify-Student":      "S0042",
		"X-Sisnotify-Audience":     "student",
		"Mime-Version":             "1.0",
	}
	for k, v := range want {
		if vs := m.Header[k]; len(vs) != 1 || vs[0] != v {
			t.Errorf("header %s = %q, want exactly [%q]", k, vs, v)
		}
	}
	if subject != msg.Subject {
		t.Errorf("Subject = %q, want %q", subject, msg.Subject)
	}
	if _, err := m.Header.Date(); err != nil {
		t.Errorf("Date header: %v", err)
	}
	for _, k := range []string{"Cc", "Bcc", "User-Agent", "X-Mailer"} {
		if m.Header.Get(k) != "" {
			t.Errorf("unexpected header %s: %q", k, m.Header.Get(k))
		}
	}
	if m.Parts["multipart"] != "multipart/alternative" {
		t.Errorf("top-level type = %q, want multipart/alternative", m.Parts["multipart"])
	}
	if got := strings.ReplaceAll(m.Parts["text/plain"], "\r\n", "\n"); got != msg.Text {
		t.Errorf("text part = %q, want %q", got, msg.Text)
	}
	if got := m.Parts["text/html"]; got != msg.HTML {
		t.Errorf("html part = %q, want %q", got, msg.HTML)
	}
}

func TestTextOnlyAndCustomFrom(t *testing.T) {
	s := mailtest.NewServer(t)
	cfg := poolConfig(t, s, 1)
	cfg.From = "Международный офис <io@university.kz>"
	p := newPool(t, cfg)
	msg := notice("Айгерим Сапарова <" + student + ">")
	msg.HTML = ""
	mustSend(t, p, msg)
	got := s.Messages()[0]
	if got.From != "io@university.kz" || len(got.To) != 1 || got.To[0] != student {
		t.Errorf("envelope = %q -> %q", got.From, got.To)
	}
	m := parse(t, got.Data)
	if to, err := m.Header.AddressList("To"); err != nil || len(to) != 1 || to[0].Name != "Айгерим Сапарова" || to[0].Address != student {
		t.Errorf("To = %v (%v)", to, err)
	}
	from, err := m.Header.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Name != "Международный офис" || from[0].Address != "io@university.kz" {
		t.Errorf("From = %v (%v)", from, err)
	}
	if _, ok := m.Parts["text/plain"]; !ok || len(m.Parts) != 1 {
		t.Errorf("parts = %v, want a single text/plain body", m.Parts)
	}
}

func TestNoHeaderInjection(t *testing.T) {
	s := mailtest.NewServer(t)
	p := newPool(t, poolConfig(t, s, 1))
	msg := notice(student)
	msg.Subject = "Reminder\r\nBcc: x@y"
	msg.Headers["X-Sisnotify-Student"] = "S0042\r\nBcc: x@y"
	msg.Headers["X-Sisnotify-Rule"] = "rule\nBcc: x@y\rX: y"
	mustSend(t, p, msg)
	got := s.Messages()[0]
	if len(got.To) != 1 || got.To[0] != student {
		t.Fatalf("envelope recipients = %q", got.To)
	}
	m := parse(t, got.Data)
	if len(m.Header["Bcc"]) != 0 || len(m.Header["X"]) != 0 {
		t.Errorf("injected headers present: %v", m.Header)
	}
	head, _, _ := bytes.Cut(got.Data, []byte("\r\n\r\n"))
	sc := bufio.NewScanner(bytes.NewReader(head))
	for sc.Scan() {
		if strings.HasPrefix(strings.ToLower(sc.Text()), "bcc:") {
			t.Errorf("header block has a Bcc line: %q", sc.Text())
		}
	}
	dec := new(mime.WordDecoder)
	subject, _ := dec.DecodeHeader(m.Header.Get("Subject"))
	if subject != "Reminder  Bcc: x@y" {
		t.Errorf("Subject = %q", subject)
	}
	if v := m.Header.Get("X-Sisnotify-Student"); v != "S0042  Bcc: x@y" {
		t.Errorf("X-Sisnotify-Student = %q", v)
	}

	// A From with a line break is refused when configured.
	for _, from := range []string{"Office\r\nBcc: x@y <io@example.org>", "Office <io@example.org>\r\nBcc: x@y"} {
		cfg := poolConfig(t, s, 1)
		cfg.From = from
		if _, err := NewPool(cfg); err == nil {
			t.Errorf("NewPool accepted From %q", from)
		}
		if _, err := NewOutbox(t.TempDir(), from); err == nil {
			t.Errorf("NewOutbox accepted From %q", from)
		}
	}
}

func TestInvalidMessagesArePermanent(t *testing.T) {
	s := mailtest.NewServer(t)
	p := newPool(t, poolConfig(t, s, 1))
	cases := []struct {
		name   string
		edit   func(*Message)
		target error
	}{
		{"empty to", func(m *Message) { m.To = "" }, ErrInvalidAddress},
		{"no at", func(m *Message) { m.To = "aigerim.student.example.edu.kz" }, ErrInvalidAddress},
		{"two recipients", func(m *Message) { m.To = student + ", other.student@example.edu.kz" }, ErrInvalidAddress},
		{"crlf in to", func(m *Message) { m.To = student + "\r\nBcc: x@y" }, ErrInvalidAddress},
		{"crlf in name", func(m *Message) { m.To = "Aigerim\r\nBcc: x@y <" + student + ">" }, ErrInvalidAddress},
		{"quoted crlf in name", func(m *Message) { m.To = "\"Aigerim\r\nBcc: x@y\" <" + student + ">" }, ErrInvalidAddress},
		{"garbage", func(m *Message) { m.To = "<<" + student }, ErrInvalidAddress},
		{"no message id", func(m *Message) { m.MessageID = "" }, ErrInvalidMessage},
		{"message id with space", func(m *Message) { m.MessageID = "a b@c" }, ErrInvalidMessage},
		{"message id without at", func(m *Message) { m.MessageID = "notice-1" }, ErrInvalidMessage},
		{"no body", func(m *Message) { m.Text, m.HTML = "", "" }, ErrInvalidMessage},
		{"bad header name", func(m *Message) { m.Headers["Bcc"] = "x@y" }, ErrInvalidMessage},
		{"header name with colon", func(m *Message) { m.Headers["X-A: b"] = "c" }, ErrInvalidMessage},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			msg := notice(student)
			tc.edit(&msg)
			_, retry, err := p.Send(context.Background(), msg)
			if err == nil || retry {
				t.Fatalf("got retryable=%v err=%v, want a permanent error", retry, err)
			}
			if !errors.Is(err, tc.target) {
				t.Errorf("err = %v, want errors.Is %v", err, tc.target)
			}
			assertClean(t, err, student, "other.student", "aigerim")
		})
	}
	if n := s.Connections(); n != 0 {
		t.Errorf("invalid messages opened %d connections", n)
	}
}

func TestTemporaryFailureThenDelivered(t *testing.T) {
	s := mailtest.NewServer(t)
	s.TempFail(3)
	p := newPool(t, poolConfig(t, s, 1))
	msg := notice(student)
	for i := range 3 {
		_, retry, err := p.Send(context.Background(), msg)
		if err == nil || !retry {
			t.Fatalf("attempt %d: retryable=%v err=%v, want a retryable 451", i+1, retry, err)
		}
		var me *Error
		if !errors.As(err, &me) || me.Code != 451 || me.Enhanced != "4.7.1" || me.Op != "RCPT TO" || !me.Temporary {
			t.Errorf("attempt %d: err = %#v", i+1, err)
		}
		assertClean(t, err, student)
	}
	mustSend(t, p, msg)
	if n := len(s.Messages()); n != 1 {
		t.Errorf("delivered %d times, want once", n)
	}
	if n := s.Connections(); n != 1 {
		t.Errorf("%d connections, want the one connection reused through the 4xx answers", n)
	}
}

func TestPermanentRejection(t *testing.T) {
	s := mailtest.NewServer(t)
	s.Reject(student)
	p := newPool(t, poolConfig(t, s, 1))
	_, retry, err := p.Send(context.Background(), notice(student))
	if err == nil || retry {
		t.Fatalf("retryable=%v err=%v, want a permanent 550", retry, err)
	}
	var me *Error
	if !errors.As(err, &me) || me.Code != 550 || me.Enhanced != "5.1.1" || me.Temporary {
		t.Errorf("err = %#v", err)
	}
	if !strings.Contains(err.Error(), "unavailable") {
		t.Errorf("err = %q, want the server's reason", err)
	}
	assertClean(t, err, student, "aigerim")

	// The connection stays usable for the next recipient.
	mustSend(t, p, notice("other.student@example.edu.kz"))
	if n := s.Connections(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

func TestDroppedConnectionIsRetryableAndRedialled(t *testing.T) {
	s := mailtest.NewServer(t)
	s.DropData(1)
	p := newPool(t, poolConfig(t, s, 1))
	_, retry, err := p.Send(context.Background(), notice(student))
	if err == nil || !retry {
		t.Fatalf("retryable=%v err=%v, want retryable", retry, err)
	}
	var me *Error
	if !errors.As(err, &me) || me.Code != 0 || !me.Temporary {
		t.Errorf("err = %#v, want code 0, temporary", err)
	}
	assertClean(t, err, student)
	mustSend(t, p, notice(student))
	if n := len(s.Messages()); n != 1 {
		t.Errorf("delivered %d, want 1", n)
	}
	if n := s.Connections(); n != 2 {
		t.Errorf("%d connections, want 2 (the dropped one and a new one)", n)
	}
}

func TestIdleConnectionClosedByServerIsRedialled(t *testing.T) {
	s := mailtest.NewServer(t)
	p := newPool(t, poolConfig(t, s, 1))
	mustSend(t, p, notice(student))
	s.CloseClientConnections()
	// The NOOP check finds the connection dead (ErrConnCheck): the pool
	// dials again and sends, and the caller sees a plain success.
	mustSend(t, p, notice(student))
	if n := len(s.Messages()); n != 2 {
		t.Errorf("delivered %d, want 2", n)
	}
	if n := s.Connections(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

func TestConnectionReuse(t *testing.T) {
	s := mailtest.NewServer(t)
	p := newPool(t, poolConfig(t, s, 1))
	for i := range 100 {
		msg := notice(student)
		msg.MessageID = fmt.Sprintf("notice-%d@sisnotify.local", i)
		mustSend(t, p, msg)
	}
	if n := len(s.Messages()); n != 100 {
		t.Errorf("delivered %d, want 100", n)
	}
	if n := s.Connections(); n != 1 {
		t.Errorf("100 messages over one worker used %d connections, want 1", n)
	}
}

func TestConcurrentSendersShareFourConnections(t *testing.T) {
	s := mailtest.NewServer(t)
	p := newPool(t, poolConfig(t, s, 4))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 25 {
				msg := notice(student)
				msg.MessageID = fmt.Sprintf("n-%d-%d@sisnotify.local", g, i)
				if _, _, err := p.Send(context.Background(), msg); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if n := len(s.Messages()); n != 200 {
		t.Errorf("delivered %d, want 200", n)
	}
	if n := s.Connections(); n < 1 || n > 4 {
		t.Errorf("%d connections, want at most 4", n)
	}
}

func TestSTARTTLSIsRequired(t *testing.T) {
	// In the URL: plain text only for loopback.
	for _, raw := range []string{
		"smtp://user:hunter2secret@mail.example.org?tls=none",
		"smtp://user:hunter2secret@10.0.0.5:25?tls=none",
		"smtp://user:hunter2secret@localhost.example.org?tls=none",
	} {
		_, err := ParseURL(raw)
		if err == nil {
			t.Errorf("ParseURL(%q) accepted tls=none for a remote host", raw)
			continue
		}
		assertClean(t, err, "hunter2secret")
	}
	// On the wire: a server that offers no STARTTLS gets nothing.
	s := mailtest.NewServer(t)
	cfg, err := ParseURL(fmt.Sprintf("smtp://user:hunter2secret@127.0.0.1:%d", s.Port()))
	if err != nil {
		t.Fatal(err)
	}
	p := newPool(t, cfg)
	_, retry, err := p.Send(context.Background(), notice(student))
	if err == nil || !retry {
		t.Fatalf("retryable=%v err=%v, want a retryable connect error", retry, err)
	}
	if !strings.Contains(err.Error(), "STARTTLS") {
		t.Errorf("err = %q, want it to say STARTTLS is missing", err)
	}
	assertClean(t, err, "hunter2secret", student)
	if n := len(s.Messages()); n != 0 {
		t.Errorf("%d messages went out in plain text", n)
	}
}

func TestSTARTTLSWithAuth(t *testing.T) {
	srvTLS, cliTLS := mailtest.SelfSignedTLS(t)
	s := mailtest.NewServer(t, mailtest.WithTLS(srvTLS), mailtest.WithAuth("notify@university.kz", "s3cr3t-pass"))
	cfg, err := ParseURL(fmt.Sprintf("smtp://notify%%40university.kz:s3cr3t-pass@127.0.0.1:%d", s.Port()))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Username != "notify@university.kz" || cfg.Password != "s3cr3t-pass" || cfg.TLS != TLSStartTLS {
		t.Fatalf("config = %+v", cfg)
	}
	cfg.TLSConfig = cliTLS
	p := newPool(t, cfg)
	mustSend(t, p, notice(student))
	got := s.Messages()
	if len(got) != 1 || !got[0].TLS || !got[0].Authed {
		t.Fatalf("received %+v, want one message over TLS after AUTH", got)
	}

	// A wrong password: retryable (the message is fine, the configuration
	// is not) and the error names neither user nor password.
	cfg.Password = "wrong-pass-123"
	p2 := newPool(t, cfg)
	_, retry, err := p2.Send(context.Background(), notice(student))
	if err == nil || !retry {
		t.Fatalf("retryable=%v err=%v, want a retryable connect error", retry, err)
	}
	var me *Error
	if !errors.As(err, &me) || me.Op != "connect" || me.Code != 535 {
		t.Errorf("err = %#v", err)
	}
	assertClean(t, err, "wrong-pass-123", "notify@university.kz", student)

	// An untrusted certificate is refused.
	cfg.Password = "s3cr3t-pass"
	cfg.TLSConfig = nil
	p3 := newPool(t, cfg)
	if _, retry, err := p3.Send(context.Background(), notice(student)); err == nil || !retry {
		t.Errorf("untrusted certificate: retryable=%v err=%v", retry, err)
	}
}

func TestImplicitTLS(t *testing.T) {
	s := mailtest.NewServer(t, mailtest.WithImplicitTLS(nil), mailtest.WithAuth("notify", "s3cr3t-pass"))
	cfg := poolConfig(t, s, 2)
	if cfg.TLS != TLSImplicit {
		t.Fatalf("TLS = %v", cfg.TLS)
	}
	p := newPool(t, cfg)
	mustSend(t, p, notice(student))
	mustSend(t, p, notice(student))
	got := s.Messages()
	if len(got) != 2 || !got[0].TLS || !got[0].Authed {
		t.Fatalf("received %+v", got)
	}
	if n := s.Connections(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

func TestContextInterruptsSend(t *testing.T) {
	s := mailtest.NewServer(t)
	release := s.Stall()
	cfg := poolConfig(t, s, 1)
	cfg.Timeout = time.Minute // only the ctx can end this send early
	p := newPool(t, cfg)

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, retry, err := p.Send(ctx, notice(student))
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Send returned after %v, want about the ctx timeout", d)
	}
	if err == nil || !retry || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("retryable=%v err=%v, want retryable and DeadlineExceeded", retry, err)
	}
	assertClean(t, err, student)
	release()

	// The interrupted connection is not reused.
	mustSend(t, p, notice(student))
	if n := s.Connections(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}

	// A ctx that is already done never reaches the server.
	done, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if _, retry, err := p.Send(done, notice(student)); !retry || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled ctx: retryable=%v err=%v", retry, err)
	}
}

func TestWaitingForAConnectionHonoursContext(t *testing.T) {
	s := mailtest.NewServer(t)
	release := s.Stall()
	p := newPool(t, poolConfig(t, s, 1))
	started := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		close(started)
		_, _, _ = p.Send(context.Background(), notice(student))
	})
	<-started
	time.Sleep(100 * time.Millisecond) // let it take the only connection
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, retry, err := p.Send(ctx, notice(student)); !retry || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("retryable=%v err=%v, want a retryable deadline error", retry, err)
	}
	release()
	wg.Wait()
}

func TestClose(t *testing.T) {
	s := mailtest.NewServer(t)
	p, err := NewPool(poolConfig(t, s, 2))
	if err != nil {
		t.Fatal(err)
	}
	mustSend(t, p, notice(student))
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	_, retry, err := p.Send(context.Background(), notice(student))
	if !retry || !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: retryable=%v err=%v", retry, err)
	}
}

func TestNewSelectsSender(t *testing.T) {
	s, err := New(Config{OutboxDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(*Outbox); !ok {
		t.Errorf("New without host = %T, want *Outbox", s)
	}
	sk := mailtest.NewServer(t)
	s, err = New(poolConfig(t, sk, 1))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok := s.(*Pool); !ok {
		t.Errorf("New with host = %T, want *Pool", s)
	}
}
