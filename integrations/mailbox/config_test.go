package mailbox_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/iec-almaty/sisnotify/integrations/mailbox"
)

func TestParseURL(t *testing.T) {
	good := []struct {
		raw     string
		host    string
		port    int
		tls     mailbox.TLSMode
		mailbox string
	}{
		{"imaps://bounces%40uni.example:p%40ss@imap.uni.example/INBOX", "imap.uni.example", 993, mailbox.TLSImplicit, "INBOX"},
		{"imaps://u:p@imap.uni.example:1993", "imap.uni.example", 1993, mailbox.TLSImplicit, "INBOX"},
		{"imap://u:p@imap.uni.example/Bounces%2F2026", "imap.uni.example", 143, mailbox.TLSStartTLS, "Bounces/2026"},
		{"imap://u:p@imap.uni.example/?tls=starttls", "imap.uni.example", 143, mailbox.TLSStartTLS, "INBOX"},
		{"imap://u:p@127.0.0.1:1143/INBOX?tls=none", "127.0.0.1", 1143, mailbox.TLSNone, "INBOX"},
		{"IMAP://u:p@localhost/INBOX?tls=none", "localhost", 143, mailbox.TLSNone, "INBOX"},
		{"imap://u:p@[::1]:1143/INBOX?tls=none", "::1", 1143, mailbox.TLSNone, "INBOX"},
	}
	for _, g := range good {
		c, err := mailbox.ParseURL(g.raw)
		if err != nil {
			t.Errorf("%s: %v", g.raw, err)
			continue
		}
		if c.Host != g.host || c.Port != g.port || c.TLS != g.tls || c.Mailbox != g.mailbox || c.Username == "" || c.Password == "" {
			t.Errorf("%s: got %+v", g.raw, c.String())
		}
	}
	bad := []struct{ raw, want string }{
		{"", "empty"},
		{"smtp://u:p@host", "not supported"},
		{"//u:p@host", "no scheme"},
		{"imaps://host/INBOX", "user and a password"},
		{"imaps://u@host/INBOX", "user and a password"},
		{"imaps://u:p@:993/INBOX", "no host"},
		{"imaps://u:p@host:99999/INBOX", "port"},
		{"imap://u:p@imap.uni.example/INBOX?tls=none", "loopback"},
		{"imap://u:p@10.0.0.1/INBOX?tls=none", "loopback"},
		{"imaps://u:p@host/INBOX?tls=none", "not valid"},
		{"imaps://u:p@host/INBOX?folder=x", "only tls"},
		{"imaps://u:p@host/INBOX?tls=tls&tls=tls", "more than once"},
		{"imaps://u:p%zz@host/INBOX", "percent-encoded"},
		{"imaps://u:p@host/IN%2ABOX", "cannot have"},
	}
	for _, b := range bad {
		_, err := mailbox.ParseURL(b.raw)
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%q: err = %v, want it to say %q", b.raw, err, b.want)
			continue
		}
		if strings.Contains(err.Error(), ":p@") || strings.Contains(err.Error(), "p%zz") {
			t.Errorf("%q: the error repeats the password: %v", b.raw, err)
		}
	}
}

// The configuration prints without the user and the password, however it
// is formatted.
func TestConfigHidesCredentials(t *testing.T) {
	c, err := mailbox.ParseURL("imaps://bounce-user:hunter2-secret@imap.uni.example/INBOX")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{c.String(), fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), c.LogValue().String()} {
		if strings.Contains(s, "hunter2") || strings.Contains(s, "bounce-user") {
			t.Errorf("printed %q", s)
		}
	}
}
