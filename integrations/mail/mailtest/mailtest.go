// Package mailtest runs a real SMTP server on loopback for tests, in the
// manner of net/http/httptest. The server records what it receives and can
// be told to fail the way real servers do: greylisting (451), unknown
// mailboxes (550), connections dropped at DATA, a server that stops
// answering, idle connections closed from its side.
//
//	srv := mailtest.NewServer(t) // closed at t.Cleanup
//	t.Setenv("SISNOTIFY_SMTP_URL", srv.URL())
//	srv.TempFail(2)                // the next 2 RCPT TO answer 451
//	// ... run the code under test ...
//	if !srv.WaitFor(3, 5*time.Second) {
//		t.Fatalf("server got %d messages, want 3", srv.Count())
//	}
//	for _, m := range srv.Messages() {
//		_ = m.To                     // envelope recipients
//		_ = m.Header("Subject")      // decoded header
//		_ = m.MessageID()            // without angle brackets
//	}
//	if d := srv.DuplicatesByMessageID(); d != 0 {
//		t.Errorf("%d messages were delivered twice", d)
//	}
//
// A server without TLS options speaks plain text, which sisnotify accepts
// for loopback hosts only (tls=none in the URL). WithTLS and
// WithImplicitTLS add STARTTLS or implicit TLS; SelfSignedTLS gives a
// certificate for them and a client configuration that trusts it.
//
// Failure injection (TempFail, Reject, DropData, Stall) may be changed at
// any time, also while clients are connected; it applies from the next
// command. All methods are safe for concurrent use.
package mailtest

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Domain is the name the server gives in its greeting and EHLO reply.
const Domain = "mailtest.local"

// Server is an SMTP server listening on 127.0.0.1. It accepts any sender
// and recipient unless told otherwise, and keeps every accepted message in
// memory (see Discard). Create it with NewServer.
type Server struct {
	srv    *smtp.Server
	ln     net.Listener
	port   int
	o      options
	done   chan struct{} // closed by Close
	served chan struct{} // closed when Serve has returned
	once   sync.Once

	mu       sync.Mutex
	closed   bool
	conns    int                       // connections accepted
	open     map[*trackedConn]struct{} // connections not yet closed
	count    int                       // messages accepted
	msgs     []Message                 // unless discarding
	waiters  []waiter
	reject   map[string]bool // lower-cased recipients answered 550
	tempFail int             // RCPT TO attempts still to answer 451
	dropData int             // DATA commands still to hang up on
	stall    chan struct{}   // when set, DATA waits for it to close
}

type options struct {
	tls        *tls.Config
	tlsSet     bool
	implicit   bool
	user, pass string
	discard    bool
}

// An Option configures a Server at NewServer.
type Option func(*options)

// WithTLS makes the server offer STARTTLS with cfg (nil: the SelfSignedTLS
// certificate). The server still accepts mail without it, so a client that
// must refuse plain text can be tested against it too.
func WithTLS(cfg *tls.Config) Option {
	return func(o *options) { o.tls, o.tlsSet, o.implicit = cfg, true, false }
}

// WithImplicitTLS makes the server speak TLS from the first byte, as on
// port 465 (smtps://), with cfg (nil: the SelfSignedTLS certificate).
func WithImplicitTLS(cfg *tls.Config) Option {
	return func(o *options) { o.tls, o.tlsSet, o.implicit = cfg, true, true }
}

// WithAuth makes the server offer AUTH PLAIN and refuse MAIL FROM (502
// 5.7.0) until the client has authenticated as user with pass. A wrong
// password answers 535 5.7.8. AUTH is allowed without TLS.
func WithAuth(user, pass string) Option {
	return func(o *options) { o.user, o.pass = user, pass }
}

// Discard makes the server count accepted messages without keeping them,
// for benchmarks and long runs: Messages returns nothing and
// DuplicatesByMessageID 0; Count and WaitFor work as usual.
func Discard() Option { return func(o *options) { o.discard = true } }

// NewServer starts a server on 127.0.0.1 on a free port. It is closed at
// tb.Cleanup.
func NewServer(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s := &Server{
		done:   make(chan struct{}),
		served: make(chan struct{}),
		open:   map[*trackedConn]struct{}{},
		reject: map[string]bool{},
	}
	for _, o := range opts {
		o(&s.o)
	}
	if s.o.tlsSet && s.o.tls == nil {
		s.o.tls, _ = SelfSignedTLS(tb)
	}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("mailtest: %v", err)
	}
	s.port = raw.Addr().(*net.TCPAddr).Port
	// Connections are tracked under the TLS layer, so that go-smtp still
	// sees a *tls.Conn for implicit TLS.
	s.ln = &trackingListener{Listener: raw, s: s}
	if s.o.implicit {
		s.ln = tls.NewListener(s.ln, s.o.tls)
	}

	s.srv = smtp.NewServer(backend{s})
	s.srv.Domain = Domain
	s.srv.AllowInsecureAuth = true
	s.srv.ReadTimeout = 30 * time.Second
	s.srv.WriteTimeout = 30 * time.Second
	s.srv.ErrorLog = quietLog{}
	if s.o.tlsSet && !s.o.implicit {
		s.srv.TLSConfig = s.o.tls
	}
	go func() {
		defer close(s.served)
		_ = s.srv.Serve(s.ln)
	}()
	tb.Cleanup(s.Close)
	return s
}

// Addr is the address the server listens on, "127.0.0.1:port".
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Port is the port the server listens on.
func (s *Server) Port() int { return s.port }

// URL is the server as SISNOTIFY_SMTP_URL takes it, credentials included
// when the server has WithAuth:
//
//	smtp://127.0.0.1:port?tls=none     plain text
//	smtp://127.0.0.1:port              WithTLS (STARTTLS)
//	smtps://127.0.0.1:port             WithImplicitTLS
//
// With TLS the client must also trust the certificate (SelfSignedTLS).
func (s *Server) URL() string {
	u := url.URL{Scheme: "smtp", Host: s.Addr()}
	switch {
	case s.o.implicit:
		u.Scheme = "smtps"
	case !s.o.tlsSet:
		u.RawQuery = "tls=none"
	}
	if s.o.user != "" {
		u.User = url.UserPassword(s.o.user, s.o.pass)
	}
	return u.String()
}

// Close stops the server: it closes the listener and every connection,
// releases any Stall, and waits (a few seconds at most) for the sessions to
// end, so that nothing is received after it returns. It is called at
// tb.Cleanup and may be called earlier, more than once.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.done)
		_ = s.ln.Close()
		s.closeConns(true)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.srv.Shutdown(ctx) // waits for the connection handlers
		select {
		case <-s.served:
		case <-ctx.Done():
		}
	})
}

// CloseClientConnections closes every open connection from the server side,
// as an idle timeout or a restart would; the server goes on accepting new
// ones.
func (s *Server) CloseClientConnections() { s.closeConns(false) }

func (s *Server) closeConns(final bool) {
	s.mu.Lock()
	if final {
		s.closed = true
	}
	cs := make([]*trackedConn, 0, len(s.open))
	for c := range s.open {
		cs = append(cs, c)
	}
	s.mu.Unlock()
	for _, c := range cs {
		_ = c.Close()
	}
}

// Messages returns copies of the messages accepted so far, in the order
// the server accepted them.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, len(s.msgs))
	for i, m := range s.msgs {
		m.To = append([]string(nil), m.To...)
		m.Data = append([]byte(nil), m.Data...)
		out[i] = m
	}
	return out
}

// Count is the number of messages accepted so far (answered 250 after
// DATA, or about to be).
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

// Connections is the number of connections accepted so far.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// WaitFor waits until the server has accepted at least n messages, or
// timeout has passed, or the server is closed, and reports whether it has.
func (s *Server) WaitFor(n int, timeout time.Duration) bool {
	s.mu.Lock()
	if s.count >= n {
		s.mu.Unlock()
		return true
	}
	w := waiter{n: n, ch: make(chan struct{})}
	s.waiters = append(s.waiters, w)
	s.mu.Unlock()

	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-w.ch:
		return true
	case <-t.C:
	case <-s.done:
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.waiters {
		if s.waiters[i].ch == w.ch {
			s.waiters = append(s.waiters[:i], s.waiters[i+1:]...)
			break
		}
	}
	return s.count >= n
}

type waiter struct {
	n  int
	ch chan struct{}
}

// DuplicatesByMessageID is the number of accepted messages whose
// Message-ID had already been seen on an earlier message: 0 when every
// notice went out exactly once. Messages without a Message-ID are not
// counted.
func (s *Server) DuplicatesByMessageID() int {
	s.mu.Lock()
	msgs := s.msgs // appended to, never changed: safe to read unlocked
	s.mu.Unlock()
	seen := make(map[string]bool, len(msgs))
	dups := 0
	for _, m := range msgs {
		id := m.MessageID()
		if id == "" {
			continue
		}
		if seen[id] {
			dups++
		}
		seen[id] = true
	}
	return dups
}

// TempFail makes the next n RCPT TO commands answer
// "451 4.7.1 greylisted, try again later" (0 stops it). Reject wins over
// TempFail for a rejected recipient.
func (s *Server) TempFail(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tempFail = n
}

// Reject makes RCPT TO answer "550 5.1.1 mailbox unavailable" for these
// recipients (compared without regard to case), from now on.
func (s *Server) Reject(addrs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range addrs {
		s.reject[strings.ToLower(a)] = true
	}
}

// DropData makes the server hang up, without a reply, on the next n
// messages at DATA (after its 354), as a crash or a network failure would
// (0 stops it). The client cannot know whether those were delivered; they
// were not.
func (s *Server) DropData(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropData = n
}

// Stall makes every DATA from now on wait, before reading the message, until
// release is called (or the server is closed): a server that stops
// answering. release may be called more than once.
func (s *Server) Stall() (release func()) {
	ch := make(chan struct{})
	s.mu.Lock()
	s.stall = ch
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			if s.stall == ch {
				s.stall = nil
			}
			s.mu.Unlock()
			close(ch)
		})
	}
}

// accepted records a message and wakes the waiters it satisfies.
func (s *Server) accepted(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count++
	if m.Received.IsZero() {
		m.Received = time.Now()
	}
	if !s.o.discard {
		s.msgs = append(s.msgs, m)
	}
	kept := s.waiters[:0]
	for _, w := range s.waiters {
		if s.count >= w.n {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	s.waiters = kept
}

type backend struct{ s *Server }

func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{s: b.s, c: c}, nil
}

// session is one SMTP session; go-smtp starts a new one after STARTTLS.
type session struct {
	s      *Server
	c      *smtp.Conn
	authed bool
	from   string
	to     []string
}

func (ss *session) AuthMechanisms() []string {
	if ss.s.o.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != ss.s.o.user || pass != ss.s.o.pass {
			return smtp.ErrAuthFailed
		}
		ss.authed = true
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.o.user != "" && !ss.authed {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s := ss.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reject[strings.ToLower(to)] {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1},
			Message: "mailbox <" + to + "> unavailable"}
	}
	if s.tempFail > 0 {
		s.tempFail--
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1},
			Message: "greylisted <" + to + ">, try again later"}
	}
	ss.to = append(ss.to, to)
	return nil
}

var errClosing = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 0},
	Message: "server shutting down"}

func (ss *session) Data(r io.Reader) error {
	s := ss.s
	s.mu.Lock()
	drop := s.dropData > 0
	if drop {
		s.dropData--
	}
	stall := s.stall
	s.mu.Unlock()
	if drop {
		_ = ss.c.Conn().Close()
		return errors.New("mailtest: hung up at DATA")
	}
	if stall != nil {
		select {
		case <-stall:
		case <-s.done:
			return errClosing
		}
	}
	if s.o.discard {
		if _, err := io.Copy(io.Discard, r); err != nil {
			return err
		}
		s.accepted(Message{Received: time.Now()})
		return nil
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := ss.c.TLSConnectionState()
	s.accepted(Message{
		From:   ss.from,
		To:     append([]string(nil), ss.to...),
		Data:   b,
		TLS:    isTLS,
		Authed: ss.authed,
	})
	return nil
}

func (ss *session) Reset() { ss.from, ss.to = "", nil }

func (ss *session) Logout() error { return nil }

// trackingListener counts the connections it accepts and keeps them, so
// that CloseClientConnections and Close can close them.
type trackingListener struct {
	net.Listener
	s *Server
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, s: l.s}
	l.s.mu.Lock()
	if l.s.closed {
		l.s.mu.Unlock()
		_ = c.Close()
		return nil, net.ErrClosed
	}
	l.s.conns++
	l.s.open[tc] = struct{}{}
	l.s.mu.Unlock()
	return tc, nil
}

type trackedConn struct {
	net.Conn
	s    *Server
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.s.mu.Lock()
		delete(c.s.open, c)
		c.s.mu.Unlock()
	})
	return c.Conn.Close()
}

type quietLog struct{}

func (quietLog) Printf(string, ...any) {}
func (quietLog) Println(...any)        {}
