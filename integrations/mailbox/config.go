package mailbox

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
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

// TLSMode says how the connection to the IMAP server is protected.
type TLSMode int

const (
	// TLSStartTLS (imap://) connects in plain text and requires STARTTLS
	// before anything else; a server that does not offer it is refused.
	TLSStartTLS TLSMode = iota
	// TLSImplicit (imaps://) speaks TLS from the first byte.
	TLSImplicit
	// TLSNone (imap://…?tls=none) never encrypts; ParseURL allows it only
	// for loopback hosts.
	TLSNone
)

func (m TLSMode) String() string {
	switch m {
	case TLSStartTLS:
		return "starttls"
	case TLSImplicit:
		return "tls"
	case TLSNone:
		return "none"
	}
	return "TLSMode(" + strconv.Itoa(int(m)) + ")"
}

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
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return cfg, errors.New("mailbox: IMAP URL is empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the whole URL, password included: drop it.
		return cfg, errors.New("mailbox: IMAP URL does not parse (special characters in user, password or mailbox must be percent-encoded)")
	}
	switch strings.ToLower(u.Scheme) {
	case "imap":
		cfg.TLS, cfg.Port = TLSStartTLS, DefaultIMAPPort
	case "imaps":
		cfg.TLS, cfg.Port = TLSImplicit, DefaultIMAPSPort
	case "":
		return cfg, errors.New("mailbox: IMAP URL has no scheme: use imaps:// or imap://")
	default:
		return cfg, fmt.Errorf("mailbox: IMAP URL scheme %q is not supported: use imaps:// or imap://", u.Scheme)
	}
	if u.Opaque != "" {
		return cfg, errors.New("mailbox: IMAP URL must look like imaps://user:pass@host:993/INBOX")
	}
	cfg.Host = u.Hostname()
	if cfg.Host == "" {
		return cfg, errors.New("mailbox: IMAP URL has no host")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return cfg, errors.New("mailbox: IMAP URL port is not a number between 1 and 65535")
		}
		cfg.Port = n
	}
	if u.User != nil {
		cfg.Username = u.User.Username()
		cfg.Password, _ = u.User.Password()
	}
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
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return cfg, errors.New("mailbox: IMAP URL query does not parse")
	}
	for k, v := range q {
		if k != "tls" {
			return cfg, fmt.Errorf("mailbox: IMAP URL parameter %q is not supported (only tls)", k)
		}
		if len(v) != 1 {
			return cfg, errors.New("mailbox: IMAP URL parameter tls is given more than once")
		}
	}
	if q.Has("tls") {
		switch mode := strings.ToLower(q.Get("tls")); {
		case mode == "none" && cfg.TLS == TLSStartTLS:
			if !isLoopback(cfg.Host) {
				return cfg, fmt.Errorf("mailbox: tls=none is only allowed for a loopback host (127.0.0.0/8, ::1, localhost), not %q: use STARTTLS or imaps://", cfg.Host)
			}
			cfg.TLS = TLSNone
		case mode == "starttls" && cfg.TLS == TLSStartTLS:
		case mode == "tls" && cfg.TLS == TLSImplicit:
		default:
			return cfg, fmt.Errorf("mailbox: tls=%s is not valid with %s:// (imap: starttls or none; imaps: tls)", q.Get("tls"), strings.ToLower(u.Scheme))
		}
	}
	return cfg, nil
}

// isLoopback reports whether host is localhost or a loopback IP literal.
// Other names are not resolved: what they point to can change.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
