// Package mailbox reads the bounce mailbox over IMAP: the messages not yet
// processed, one at a time, and puts each away once the caller has
// recorded it, never deleting one unread.
//
// A processed message is moved to ProcessedFolder: with MOVE (RFC 6851,
// part of IMAP4rev2) when the server has it, else with UID COPY, UID STORE
// \Deleted and UID EXPUNGE of that one UID (UIDPLUS, RFC 4315), so no
// other message marked \Deleted is expunged. A server with neither keeps
// it where it is, flagged \Seen and ProcessedKeyword. Either way the next
// read skips it.
//
// The IMAP client is github.com/emersion/go-imap/v2 (imapclient): the
// maintained Go IMAP library (v1 is in maintenance), from the author of
// go-smtp and go-message, which sisnotify already uses; the same module
// has an in-process server (imapserver, imapmemserver) that the tests run
// against (mailboxtest). v2 is still tagged beta (v2.0.0-beta.8 here);
// sisnotify uses its plain commands only.
//
// Errors never hold the user name or the password, nor any address the
// server's replies may have had.
package mailbox

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// MaxMessageBytes is how much of a message Fetch reads: a bounce's report
// comes before the returned message, so a longer message is cut and
// Message.Truncated says so.
const MaxMessageBytes = 2 << 20

// How a Session puts a processed message away.
const (
	ModeMove = "move" // MOVE
	ModeCopy = "copy" // UID COPY + UID STORE \Deleted + UID EXPUNGE of that UID
	ModeFlag = "flag" // \Seen and ProcessedKeyword, left in place
)

// Session is one connection to the mailbox, logged in with the mailbox
// selected. It is not safe for concurrent use.
type Session struct {
	cfg         Config
	conn        net.Conn
	c           *imapclient.Client
	stop        func() bool
	uidValidity uint32
	mode        string
	processed   string
}

// Message is one message as read.
type Message struct {
	UID         uint32
	UIDValidity uint32
	// Raw is the message, at most MaxMessageBytes of it.
	Raw       []byte
	Truncated bool
	// Received is when the server received it (INTERNALDATE); zero when
	// the server did not say.
	Received time.Time
}

// StandIn names a message that has no Message-ID of its own: stable for as
// long as the mailbox keeps its UIDVALIDITY.
func (m Message) StandIn(mailbox string) string {
	return "imap:" + mailbox + "/" + strconv.FormatUint(uint64(m.UIDValidity), 10) + "/" + strconv.FormatUint(uint64(m.UID), 10)
}

// Open connects, logs in and selects the mailbox, and prepares where
// processed messages go. Cancelling ctx closes the connection, and each
// command of the session.
func Open(ctx context.Context, cfg Config) (*Session, error) {
	s := &Session{cfg: cfg}
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	d := net.Dialer{Timeout: cfg.timeout()}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("mailbox: connect to %s: %w", addr, err)
	}
	s.conn = conn
	s.stop = context.AfterFunc(ctx, func() { conn.Close() })
	s.deadline()
	tlsCfg := &tls.Config{ServerName: cfg.Host, MinVersion: tls.VersionTLS12}
	if cfg.TLSConfig != nil {
		tlsCfg = cfg.TLSConfig.Clone()
		if tlsCfg.ServerName == "" {
			tlsCfg.ServerName = cfg.Host
		}
	}
	opts := &imapclient.Options{TLSConfig: tlsCfg}
	switch cfg.TLS {
	case TLSImplicit:
		tc := tls.Client(conn, tlsCfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			s.Close()
			return nil, fmt.Errorf("mailbox: TLS with %s: %w", addr, err)
		}
		s.c = imapclient.New(tc, opts)
	case TLSStartTLS:
		if s.c, err = imapclient.NewStartTLS(conn, opts); err != nil {
			s.Close()
			return nil, fmt.Errorf("mailbox: STARTTLS with %s: %s", addr, s.clean(err))
		}
	default:
		s.c = imapclient.New(conn, opts)
	}
	if err := s.c.WaitGreeting(); err != nil {
		s.Close()
		return nil, fmt.Errorf("mailbox: greeting of %s: %s", addr, s.clean(err))
	}
	if err := s.c.Login(cfg.Username, cfg.Password).Wait(); err != nil {
		s.Close()
		return nil, fmt.Errorf("mailbox: login to %s: %s", addr, s.clean(err))
	}
	sel, err := s.c.Select(cfg.mailbox(), nil).Wait()
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("mailbox: select %q: %s", cfg.mailbox(), s.clean(err))
	}
	s.uidValidity = sel.UIDValidity
	caps := s.c.Caps()
	switch {
	case caps.Has(imap.CapMove):
		s.mode = ModeMove
	case caps.Has(imap.CapUIDPlus):
		s.mode = ModeCopy
	default:
		s.mode = ModeFlag
	}
	if s.mode != ModeFlag {
		if err := s.prepareFolder(caps); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// prepareFolder finds or creates ProcessedFolder, in the personal
// namespace.
func (s *Session) prepareFolder(caps imap.CapSet) error {
	s.processed = ProcessedFolder
	if caps.Has(imap.CapNamespace) {
		if ns, err := s.c.Namespace().Wait(); err == nil && len(ns.Personal) > 0 {
			s.processed = ns.Personal[0].Prefix + ProcessedFolder
		}
	}
	s.deadline()
	list, err := s.c.List("", s.processed, nil).Collect()
	if err != nil {
		return fmt.Errorf("mailbox: list %q: %s", s.processed, s.clean(err))
	}
	if len(list) > 0 {
		return nil
	}
	if err := s.c.Create(s.processed, nil).Wait(); err != nil {
		var ie *imap.Error
		if errors.As(err, &ie) && ie.Code == imap.ResponseCodeAlreadyExists {
			return nil
		}
		return fmt.Errorf("mailbox: create %q: %s", s.processed, s.clean(err))
	}
	return nil
}

// Mode is how processed messages are put away: ModeMove, ModeCopy or
// ModeFlag.
func (s *Session) Mode() string { return s.mode }

// Mailbox is the folder read.
func (s *Session) Mailbox() string { return s.cfg.mailbox() }

// ProcessedFolder is where processed messages go ("" in ModeFlag).
func (s *Session) ProcessedFolder() string { return s.processed }

// Unprocessed are the UIDs of the messages still to read, oldest first:
// not flagged \Deleted nor ProcessedKeyword.
func (s *Session) Unprocessed(ctx context.Context) ([]uint32, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.deadline()
	data, err := s.c.UIDSearch(&imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagDeleted, ProcessedKeyword}}, nil).Wait()
	if err != nil {
		return nil, fmt.Errorf("mailbox: search: %s", s.clean(err))
	}
	uids := data.AllUIDs()
	out := make([]uint32, len(uids))
	for i, u := range uids {
		out[i] = uint32(u)
	}
	return out, nil
}

// Fetch reads one message without marking it \Seen.
func (s *Session) Fetch(ctx context.Context, uid uint32) (Message, error) {
	if err := ctx.Err(); err != nil {
		return Message{}, err
	}
	s.deadline()
	section := &imap.FetchItemBodySection{Peek: true, Partial: &imap.SectionPartial{Offset: 0, Size: MaxMessageBytes}}
	bufs, err := s.c.Fetch(imap.UIDSetNum(imap.UID(uid)), &imap.FetchOptions{
		UID: true, InternalDate: true, RFC822Size: true, BodySection: []*imap.FetchItemBodySection{section},
	}).Collect()
	if err != nil {
		return Message{}, fmt.Errorf("mailbox: fetch uid %d: %s", uid, s.clean(err))
	}
	for _, b := range bufs {
		if uint32(b.UID) != uid {
			continue
		}
		raw := b.FindBodySection(section)
		if raw == nil {
			return Message{}, fmt.Errorf("mailbox: fetch uid %d: the server sent no body", uid)
		}
		return Message{UID: uid, UIDValidity: s.uidValidity, Raw: raw, Received: b.InternalDate,
			Truncated: b.RFC822Size > int64(len(raw))}, nil
	}
	return Message{}, fmt.Errorf("mailbox: fetch uid %d: %w", uid, ErrGone)
}

// ErrGone: the message is no longer in the mailbox (another reader put it
// away).
var ErrGone = errors.New("message no longer in the mailbox")

// Done puts a processed message away: moved to ProcessedFolder, or
// flagged (see the package doc). It never expunges another message.
func (s *Session) Done(ctx context.Context, uid uint32) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.deadline()
	set := imap.UIDSetNum(imap.UID(uid))
	var err error
	switch s.mode {
	case ModeMove, ModeCopy:
		// imapclient's Move falls back to UID COPY, UID STORE and, with
		// UIDPLUS (which ModeCopy has), UID EXPUNGE of set alone.
		_, err = s.c.Move(set, s.processed).Wait()
	default:
		err = s.c.Store(set, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true,
			Flags: []imap.Flag{imap.FlagSeen, ProcessedKeyword}}, nil).Close()
	}
	if err != nil {
		return fmt.Errorf("mailbox: put away uid %d (%s): %s", uid, s.mode, s.clean(err))
	}
	return nil
}

// Close logs out (briefly) and closes the connection.
func (s *Session) Close() error {
	if s.stop != nil {
		s.stop()
	}
	if s.c != nil {
		_ = s.conn.SetDeadline(time.Now().Add(2 * time.Second))
		_ = s.c.Logout().Wait()
		return s.c.Close()
	}
	return s.conn.Close()
}

// deadline bounds the next command.
func (s *Session) deadline() {
	_ = s.conn.SetDeadline(time.Now().Add(s.cfg.timeout()))
}

// clean is err's text without the user, the password or any address.
func (s *Session) clean(err error) string {
	msg := err.Error()
	for _, sec := range []string{s.cfg.Password, s.cfg.Username} {
		if len(sec) >= 3 {
			msg = strings.ReplaceAll(msg, sec, "[redacted]")
		}
	}
	return emailRE.ReplaceAllString(msg, "[address]")
}

// emailRE matches anything that looks like an address.
var emailRE = regexp.MustCompile(`[^\s<>"'(),;:\[\]]*@[^\s<>"'(),;:\[\]]+`)
