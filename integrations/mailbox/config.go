package mailbox

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/iec-almaty/sisnotify/integrations/internal/serverurl"
)

// Defaults for Config.
const (
	DefaultIMAPPort  = 143 // imap:// (STARTTLS)
	DefaultIMAPSPort = 993 // imaps:// (implicit TLS)
	DefaultMailbox   = "INBOX"
	DefaultTimeout   = 30 * time.Second
	// ProcessedFolder is where processed messages are moved (created when
	// missing, inside the personal namespace's prefix when the server
	// has one).
	ProcessedFolder = "sisnotify-processed"
	// ProcessedKeyword marks a processed message (with \Seen) on a server
	// that can neither MOVE nor expunge one message by its UID.
	ProcessedKeyword = "$SisnotifyProcessed"
)

// TLSMode says how the connection to the server is protected (the modes
// of every mail server URL: serverurl).
type TLSMode = serverurl.TLS

const (
	// TLSStartTLS (imap://) connects in plain text and requires STARTTLS
	// before anything else; a server that does not offer it is refused.
	TLSStartTLS = serverurl.StartTLS
	// TLSImplicit (imaps://) speaks TLS from the first byte.
	TLSImplicit = serverurl.Implicit
	// TLSNone (imap://…?tls=none) never encrypts. ParseURL allows it only
	// for loopback hosts.
	TLSNone = serverurl.None
)

// Config is the bounce mailbox: where it is and how to log in.
type Config struct {
	Host     string
	Port     int
	Username string
	Password string
	TLS      TLSMode
	// Mailbox is the folder read; empty means DefaultMailbox.
	Mailbox string
	// TLSConfig, when set, is used for STARTTLS and implicit TLS (a
	// private CA, say). ServerName defaults to Host.
	TLSConfig *tls.Config
	// Timeout bounds the dial and each command; <= 0 means
	// DefaultTimeout.
	Timeout time.Duration
}

// String describes the configuration without the user and password.
func (c Config) String() string {
	return fmt.Sprintf("imap host=%s port=%d tls=%s mailbox=%q", c.Host, c.Port, c.TLS, c.mailbox())
}

// GoString is String, so that %#v does not print the password either.
func (c Config) GoString() string { return c.String() }

// LogValue keeps the password out of slog output.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

func (c Config) mailbox() string {
	if c.Mailbox == "" {
		return DefaultMailbox
	}
	return c.Mailbox
}

func (c Config) timeout() time.Duration {
	if c.Timeout <= 0 {
		return DefaultTimeout
	}
	return c.Timeout
}

// ParseURL parses SISNOTIFY_BOUNCE_IMAP_URL, with the rules of the SMTP
// URL (integrations/mail.ParseURL):
//
//	imaps://user:pass@host[:port][/mailbox]        implicit TLS, port 993
//	imap://user:pass@host[:port][/mailbox]         STARTTLS required, port 143
//	imap://user:pass@host[:port][/mailbox]?tls=none no TLS: loopback hosts only
//
// User and password are required and, like the mailbox, percent-encoded
// ("Bounces%2F2026"); the mailbox defaults to INBOX. The only query
// parameter is tls (starttls, none; tls for imaps). Errors never repeat
// the URL, the user or the password.
func ParseURL(raw string) (Config, error) {
	var cfg Config
	u, err := serverurl.Parse(raw, imapURL)
	if err != nil {
		return cfg, err
	}
	cfg.TLS, cfg.Host, cfg.Port, cfg.Username, cfg.Password = u.TLS, u.Host, u.Port, u.Username, u.Password
	if cfg.Username == "" || cfg.Password == "" {
		return cfg, errors.New("mailbox: IMAP URL needs a user and a password (imaps://user:pass@host/INBOX)")
	}
	cfg.Mailbox = strings.TrimPrefix(u.Path, "/")
	if cfg.Mailbox == "" {
		cfg.Mailbox = DefaultMailbox
	}
	if strings.ContainsAny(cfg.Mailbox, "\r\n\x00*%") {
		return cfg, errors.New("mailbox: IMAP URL mailbox has a character a mailbox name cannot have")
	}
	if u.Fragment != "" {
		return cfg, errors.New("mailbox: IMAP URL must not have a fragment")
	}
	return cfg, nil
}

// imapURL is what an IMAP URL looks like (the rules: serverurl).
var imapURL = serverurl.Kind{Pkg: "mailbox", Name: "IMAP URL", Plain: "imap", Port: DefaultIMAPPort, Secure: "imaps", SecurePort: DefaultIMAPSPort,
	Example: "imaps://user:pass@host:993/INBOX", Encoded: "user, password or mailbox"}
