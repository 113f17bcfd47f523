package mail

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// sink is an in-process SMTP server on 127.0.0.1 for the tests: it records
// what it receives and can be told to fail.
type sink struct {
	srv  *smtp.Server
	ln   net.Listener
	port int

	// settings, fixed before the first connection
	user, pass string      // AUTH PLAIN required when set
	tlsConfig  *tls.Config // offers STARTTLS when set (and not implicit)
	implicit   bool        // the listener speaks TLS from the start
	discard    bool        // count messages, keep nothing (benchmarks)

	conns     atomic.Int64
	delivered atomic.Int64

	mu       sync.Mutex
	msgs     []received
	reject   map[string]bool // 550 at RCPT TO
	tempFail int             // 451 at RCPT TO for this many attempts
	dropData int             // hang up at DATA for this many messages
	stall    chan struct{}   // when set, DATA waits for it to close
	live     map[*smtp.Conn]bool
}

type received struct {
	From    string
	To      []string
	Data    []byte
	TLS     bool
	Authed  bool
	ConnSeq int64
}

type sinkOption func(*sink)

func withAuth(user, pass string) sinkOption { return func(s *sink) { s.user, s.pass = user, pass } }
func withTLS(implicit bool) sinkOption {
	return func(s *sink) { s.tlsConfig, s.implicit = serverTLS(), implicit }
}
func discarding() sinkOption { return func(s *sink) { s.discard = true } }

func newSink(t testing.TB, opts ...sinkOption) *sink {
	t.Helper()
	s := &sink{reject: map[string]bool{}, live: map[*smtp.Conn]bool{}}
	for _, o := range opts {
		o(s)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if s.implicit {
		ln = tls.NewListener(ln, s.tlsConfig)
	}
	s.ln = &countingListener{Listener: ln, n: &s.conns}
	s.port = ln.Addr().(*net.TCPAddr).Port
	s.srv = smtp.NewServer(s)
	s.srv.Domain = "sink.test"
	s.srv.AllowInsecureAuth = true
	s.srv.ReadTimeout = 30 * time.Second
	s.srv.WriteTimeout = 30 * time.Second
	s.srv.ErrorLog = quietLog{}
	if !s.implicit {
		s.srv.TLSConfig = s.tlsConfig
	}
	go func() { _ = s.srv.Serve(s.ln) }()
	t.Cleanup(func() { _ = s.srv.Close() })
	return s
}

// config is a pool configuration for this sink, tls=none on loopback (or
// TLS with the test CA when the sink has TLS).
func (s *sink) config(t testing.TB, conns int) Config {
	t.Helper()
	var raw string
	switch {
	case s.implicit:
		raw = fmt.Sprintf("smtps://127.0.0.1:%d", s.port)
	case s.tlsConfig != nil:
		raw = fmt.Sprintf("smtp://127.0.0.1:%d", s.port)
	default:
		raw = fmt.Sprintf("smtp://127.0.0.1:%d?tls=none", s.port)
	}
	cfg, err := ParseURL(raw)
	if err != nil {
		t.Fatal(err)
	}
	if s.user != "" {
		cfg.Username, cfg.Password = s.user, s.pass
	}
	if s.tlsConfig != nil {
		cfg.TLSConfig = clientTLS()
	}
	cfg.Connections = conns
	cfg.Timeout = 10 * time.Second
	return cfg
}

func (s *sink) messages() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.msgs...)
}

// hangUpAll closes every open connection from the server side, as an idle
// timeout or a restart would.
func (s *sink) hangUpAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.live {
		_ = c.Conn().Close()
	}
}

func (s *sink) NewSession(c *smtp.Conn) (smtp.Session, error) {
	s.mu.Lock()
	s.live[c] = true
	s.mu.Unlock()
	return &session{s: s, c: c, seq: s.conns.Load()}, nil
}

type session struct {
	s      *sink
	c      *smtp.Conn
	seq    int64
	authed bool
	from   string
	to     []string
}

func (ss *session) AuthMechanisms() []string {
	if ss.s.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != ss.s.user || pass != ss.s.pass {
			return smtp.ErrAuthFailed
		}
		ss.authed = true
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.user != "" && !ss.authed {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s := ss.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reject[to] {
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
		return errors.New("hung up")
	}
	if stall != nil {
		<-stall
	}
	if s.discard {
		if _, err := io.Copy(io.Discard, r); err != nil {
			return err
		}
		s.delivered.Add(1)
		return nil
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, isTLS := ss.c.TLSConnectionState()
	s.mu.Lock()
	s.msgs = append(s.msgs, received{From: ss.from, To: ss.to, Data: b, TLS: isTLS, Authed: ss.authed, ConnSeq: ss.seq})
	s.mu.Unlock()
	s.delivered.Add(1)
	return nil
}

func (ss *session) Reset() { ss.from, ss.to = "", nil }

func (ss *session) Logout() error {
	ss.s.mu.Lock()
	delete(ss.s.live, ss.c)
	ss.s.mu.Unlock()
	return nil
}

type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

type quietLog struct{}

func (quietLog) Printf(string, ...any) {}
func (quietLog) Println(...any)        {}

// A throwaway CA-less certificate for 127.0.0.1 and localhost, made once.
var (
	certOnce sync.Once
	testCert tls.Certificate
	testPool *x509.CertPool
)

func makeCert() {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "sink.test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	testCert = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	testPool = x509.NewCertPool()
	testPool.AddCert(leaf)
}

func serverTLS() *tls.Config {
	certOnce.Do(makeCert)
	return &tls.Config{Certificates: []tls.Certificate{testCert}, MinVersion: tls.VersionTLS12}
}

func clientTLS() *tls.Config {
	certOnce.Do(makeCert)
	return &tls.Config{RootCAs: testPool}
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
