package mailbox_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/iec-almaty/sisnotify/integrations/mail/mailtest"
	"github.com/iec-almaty/sisnotify/integrations/mailbox"
	"github.com/iec-almaty/sisnotify/integrations/mailbox/mailboxtest"
)

func msg(i int) []byte {
	return []byte(fmt.Sprintf("From: MAILER-DAEMON@mx.example\r\nMessage-ID: <m%d@mx.example>\r\nSubject: test %d\r\n\r\nbody %d\r\n", i, i, i))
}

func open(t *testing.T, srv *mailboxtest.Server, opts ...func(*mailbox.Config)) *mailbox.Session {
	t.Helper()
	cfg, err := mailbox.ParseURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Timeout = 5 * time.Second
	for _, o := range opts {
		o(&cfg)
	}
	s, err := mailbox.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// In each mode a processed message leaves the unprocessed list and is
// kept: moved whole to the processed folder, or flagged where it is;
// the others are untouched, and nothing is expunged that was not put
// away.
func TestPutAwayModes(t *testing.T) {
	for _, c := range []struct {
		name string
		opts []mailboxtest.Option
		mode string
	}{
		{"move", nil, mailbox.ModeMove},
		{"copy", []mailboxtest.Option{mailboxtest.WithoutMove()}, mailbox.ModeCopy},
		{"flag", []mailboxtest.Option{mailboxtest.FlagOnly()}, mailbox.ModeFlag},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := mailboxtest.NewServer(t, c.opts...)
			for i := 1; i <= 3; i++ {
				srv.Append("INBOX", msg(i))
			}
			s := open(t, srv)
			if s.Mode() != c.mode {
				t.Fatalf("mode %s, want %s", s.Mode(), c.mode)
			}
			ctx := context.Background()
			uids, err := s.Unprocessed(ctx)
			if err != nil || len(uids) != 3 {
				t.Fatalf("unprocessed %v, %v; want 3", uids, err)
			}
			m, err := s.Fetch(ctx, uids[1])
			if err != nil {
				t.Fatal(err)
			}
			if string(m.Raw) != string(msg(2)) || m.Truncated || m.UIDValidity == 0 || m.Received.IsZero() {
				t.Fatalf("fetched %+v", m)
			}
			if err := s.Done(ctx, uids[1]); err != nil {
				t.Fatal(err)
			}
			left, err := s.Unprocessed(ctx)
			if err != nil || len(left) != 2 || left[0] != uids[0] || left[1] != uids[2] {
				t.Fatalf("unprocessed after one put away: %v, %v", left, err)
			}
			inbox := srv.Messages("INBOX")
			for _, st := range inbox {
				if st.Has(imap.FlagSeen) && st.UID != uids[1] {
					t.Errorf("uid %d was marked seen by reading another", st.UID)
				}
			}
			switch c.mode {
			case mailbox.ModeFlag:
				if len(inbox) != 3 {
					t.Fatalf("INBOX holds %d messages, want all 3", len(inbox))
				}
				for _, st := range inbox {
					if want := st.UID == uids[1]; st.Has(imap.FlagSeen) != want || st.Has(mailbox.ProcessedKeyword) != want {
						t.Errorf("uid %d flags %v", st.UID, st.Flags)
					}
				}
			default:
				moved := srv.Messages(mailbox.ProcessedFolder)
				if len(inbox) != 2 || len(moved) != 1 || string(moved[0].Raw) != string(msg(2)) {
					t.Fatalf("INBOX holds %d, %s %d; want 2 and the one put away", len(inbox), mailbox.ProcessedFolder, len(moved))
				}
				if moved[0].Has(imap.FlagDeleted) {
					t.Errorf("the moved copy is flagged deleted")
				}
			}
		})
	}
}

// A second session finds the processed folder already there.
func TestProcessedFolderReused(t *testing.T) {
	srv := mailboxtest.NewServer(t)
	srv.Append("INBOX", msg(1))
	srv.Append("INBOX", msg(2))
	for i := 0; i < 2; i++ {
		s := open(t, srv)
		uids, err := s.Unprocessed(context.Background())
		if err != nil || len(uids) != 2-i {
			t.Fatalf("session %d: %v, %v", i, uids, err)
		}
		if err := s.Done(context.Background(), uids[0]); err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	if n := len(srv.Messages(mailbox.ProcessedFolder)); n != 2 {
		t.Fatalf("%d messages in %s, want 2", n, mailbox.ProcessedFolder)
	}
}

// imap:// requires STARTTLS: with a server that offers it, the session is
// encrypted; one that does not is refused.
func TestStartTLS(t *testing.T) {
	serverTLS, clientTLS := mailtest.SelfSignedTLS(t)
	srv := mailboxtest.NewServer(t, mailboxtest.WithTLS(serverTLS))
	srv.Append("INBOX", msg(1))
	s := open(t, srv, func(c *mailbox.Config) { c.TLSConfig = clientTLS })
	if uids, err := s.Unprocessed(context.Background()); err != nil || len(uids) != 1 {
		t.Fatalf("%v, %v", uids, err)
	}

	plain := mailboxtest.NewServer(t)
	cfg, err := mailbox.ParseURL(strings.Replace(plain.URL(), "?tls=none", "", 1))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Timeout = 5 * time.Second
	if s, err := mailbox.Open(context.Background(), cfg); err == nil {
		s.Close()
		t.Fatal("a server without STARTTLS was accepted for imap://")
	}
}

// A wrong password fails without repeating the user or the password.
func TestLoginFailureHidesCredentials(t *testing.T) {
	srv := mailboxtest.NewServer(t)
	cfg, err := mailbox.ParseURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Password = "wrong-password-42"
	_, err = mailbox.Open(context.Background(), cfg)
	if err == nil {
		t.Fatal("logged in with a wrong password")
	}
	if strings.Contains(err.Error(), "wrong-password-42") || strings.Contains(err.Error(), mailboxtest.User) {
		t.Fatalf("error %q repeats a credential", err)
	}
}

// A server that drops the connection mid-read gives an error, not a
// hang, and the message stays unprocessed for the next session.
func TestDroppedConnection(t *testing.T) {
	srv := mailboxtest.NewServer(t)
	srv.Append("INBOX", msg(1))
	srv.Append("INBOX", msg(2))
	s := open(t, srv)
	ctx := context.Background()
	uids, err := s.Unprocessed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	srv.DropAtFetch(1)
	start := time.Now()
	if _, err := s.Fetch(ctx, uids[0]); err == nil {
		t.Fatal("fetch over a dropped connection succeeded")
	}
	if time.Since(start) > 4*time.Second {
		t.Fatalf("the dropped fetch took %s", time.Since(start))
	}
	if err := s.Done(ctx, uids[0]); err == nil {
		t.Fatal("put away over a dropped connection succeeded")
	}
	again := open(t, srv)
	if left, err := again.Unprocessed(ctx); err != nil || len(left) != 2 {
		t.Fatalf("after the drop: %v, %v; want both unprocessed", left, err)
	}
}

// Cancelling the context ends a session's commands.
func TestCancelClosesSession(t *testing.T) {
	srv := mailboxtest.NewServer(t)
	srv.Append("INBOX", msg(1))
	cfg, _ := mailbox.ParseURL(srv.URL())
	ctx, cancel := context.WithCancel(context.Background())
	s, err := mailbox.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cancel()
	if _, err := s.Unprocessed(ctx); err == nil {
		t.Fatal("search after cancel succeeded")
	}
}

// A message longer than MaxMessageBytes is cut and says so.
func TestFetchTruncates(t *testing.T) {
	srv := mailboxtest.NewServer(t)
	big := append(msg(1), []byte(strings.Repeat("x", mailbox.MaxMessageBytes))...)
	srv.Append("INBOX", big)
	s := open(t, srv)
	uids, _ := s.Unprocessed(context.Background())
	m, err := s.Fetch(context.Background(), uids[0])
	if err != nil {
		t.Fatal(err)
	}
	if !m.Truncated || len(m.Raw) != mailbox.MaxMessageBytes {
		t.Fatalf("truncated %v, %d bytes", m.Truncated, len(m.Raw))
	}
}
