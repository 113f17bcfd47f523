// Package mailboxtest runs a real IMAP server on 127.0.0.1 for tests: go-imap's
// own server (imapserver) over its in-memory backend (imapmemserver),
// with one user and an INBOX. Tests put messages in with Append, read
// what the mailbox holds with Messages (over IMAP, as any client), and
// can make the server drop a connection in the middle of a read
// (DropAtFetch).
//
// By default the server has MOVE, UIDPLUS and NAMESPACE; WithoutMove and
// FlagOnly take capabilities away, to exercise the other ways a processed
// message is put away. WithTLS adds STARTTLS.
package mailboxtest

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// The one user's credentials.
const (
	User     = "bounces"
	Password = "s3cret-imap-pass"
)

// Server is an IMAP server on 127.0.0.1. Its methods are safe for
// concurrent use.
type Server struct {
	tb   testing.TB
	srv  *imapserver.Server
	user *imapmemserver.User
	ln   net.Listener
	tls  *tls.Config

	mu      sync.Mutex
	dropAt  int // drop the connection at this many more fetches; 0: never
	fetches int
}

type options struct {
	caps imap.CapSet
	tls  *tls.Config
}

// Option changes what the server offers.
type Option func(*options)

// WithoutMove: no MOVE; UID COPY, UID STORE and UID EXPUNGE (UIDPLUS).
func WithoutMove() Option {
	return func(o *options) { o.caps = imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}} }
}

// FlagOnly: plain IMAP4rev1, neither MOVE nor UIDPLUS.
func FlagOnly() Option {
	return func(o *options) { o.caps = imap.CapSet{imap.CapIMAP4rev1: {}} }
}

// WithTLS offers STARTTLS with cfg (mailtest.SelfSignedTLS gives one).
func WithTLS(cfg *tls.Config) Option { return func(o *options) { o.tls = cfg } }

// NewServer starts a server with an empty INBOX; it stops at the end of
// the test.
func NewServer(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	o := options{caps: imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapMove: {}, imap.CapUIDPlus: {}, imap.CapNamespace: {}}}
	for _, f := range opts {
		f(&o)
	}
	mem := imapmemserver.New()
	user := imapmemserver.NewUser(User, Password)
	if err := user.Create("INBOX", nil); err != nil {
		tb.Fatal(err)
	}
	mem.AddUser(user)
	s := &Server{tb: tb, user: user, tls: o.tls}
	s.srv = imapserver.New(&imapserver.Options{
		NewSession: func(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			base := &session{Session: mem.NewSession(), s: s, conn: c}
			if o.caps.Has(imap.CapMove) {
				return moveSession{base}, nil, nil
			}
			return base, nil, nil
		},
		Caps:         o.caps,
		TLSConfig:    o.tls,
		InsecureAuth: o.tls == nil,
		Logger:       quietLog{},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s.ln = ln
	go func() { _ = s.srv.Serve(ln) }()
	tb.Cleanup(func() { _ = s.srv.Close() })
	return s
}

// Addr is host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the server as SISNOTIFY_BOUNCE_IMAP_URL: plain text (tls=none)
// without WithTLS, STARTTLS with it.
func (s *Server) URL() string {
	u := url.URL{Scheme: "imap", User: url.UserPassword(User, Password), Host: s.Addr(), Path: "/INBOX"}
	if s.tls == nil {
		u.RawQuery = "tls=none"
	}
	return u.String()
}

// Append puts raw into mailbox (created when missing) and returns its UID.
func (s *Server) Append(mailbox string, raw []byte) uint32 {
	s.tb.Helper()
	_ = s.user.Create(mailbox, nil)
	data, err := s.user.Append(mailbox, bytes.NewReader(raw), &imap.AppendOptions{Time: time.Date(2026, 11, 25, 1, 6, 0, 0, time.UTC)})
	if err != nil {
		s.tb.Fatalf("append to %s: %v", mailbox, err)
	}
	return uint32(data.UID)
}

// Stored is a message as the mailbox holds it.
type Stored struct {
	UID   uint32
	Flags []imap.Flag
	Raw   []byte
}

// Has reports whether the message has flag (any case).
func (m Stored) Has(flag imap.Flag) bool {
	for _, f := range m.Flags {
		if string(f) == string(flag) || bytes.EqualFold([]byte(f), []byte(flag)) {
			return true
		}
	}
	return false
}

// Messages are the messages of mailbox, read over IMAP; nil when it does
// not exist.
func (s *Server) Messages(mailbox string) []Stored {
	s.tb.Helper()
	c, err := imapclient.DialInsecure(s.Addr(), nil)
	if s.tls != nil {
		c, err = imapclient.DialStartTLS(s.Addr(), &imapclient.Options{TLSConfig: &tls.Config{InsecureSkipVerify: true}}) //nolint:gosec // a test reading its own server
	}
	if err != nil {
		s.tb.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(User, Password).Wait(); err != nil {
		s.tb.Fatal(err)
	}
	if _, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		var ie *imap.Error
		if errors.As(err, &ie) && ie.Type == imap.StatusResponseTypeNo {
			return nil
		}
		s.tb.Fatal(err)
	}
	section := &imap.FetchItemBodySection{Peek: true}
	bufs, err := c.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true, BodySection: []*imap.FetchItemBodySection{section}}).Collect()
	if err != nil {
		s.tb.Fatal(err)
	}
	out := make([]Stored, 0, len(bufs))
	for _, b := range bufs {
		out = append(out, Stored{UID: uint32(b.UID), Flags: b.Flags, Raw: b.FindBodySection(section)})
	}
	return out
}

// DropAtFetch makes the server drop the connection that asks for the
// n-th FETCH from now (1: the next one), without answering it.
func (s *Server) DropAtFetch(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropAt, s.fetches = n, 0
}

// Fetches is the number of FETCH commands since the last DropAtFetch.
func (s *Server) Fetches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetches
}

func (s *Server) drop() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fetches++
	if s.dropAt > 0 && s.fetches == s.dropAt {
		s.dropAt = 0
		return true
	}
	return false
}

// session is imapmemserver's session with the drop.
type session struct {
	imapserver.Session
	s    *Server
	conn *imapserver.Conn
}

func (ss *session) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	if ss.s.drop() {
		_ = ss.conn.NetConn().Close()
		return errors.New("mailboxtest: connection dropped")
	}
	return ss.Session.Fetch(w, numSet, options)
}

func (ss *session) Namespace() (*imap.NamespaceData, error) {
	return ss.Session.(imapserver.SessionNamespace).Namespace()
}

// moveSession adds MOVE.
type moveSession struct{ *session }

func (ms moveSession) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	return ms.Session.(imapserver.SessionMove).Move(w, numSet, dest)
}

type quietLog struct{}

func (quietLog) Printf(string, ...any) {}
