package mail

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"strings"
	"time"

	"github.com/iec-almaty/sisnotify/integrations/internal/serverurl"
)

// Defaults for Config.
const (
	DefaultFrom        = "International Office <international@localhost>"
	DefaultOutboxDir   = "./outbox"
	DefaultConnections = 4
	DefaultTimeout     = 30 * time.Second
	DefaultSMTPPort    = 587 // smtp:// (STARTTLS); go-mail's own default is 25
	DefaultSMTPSPort   = 465 // smtps:// (implicit TLS)
)

// TLSMode says how the connection to the server is protected (the modes
// of every mail server URL: serverurl).
type TLSMode = serverurl.TLS

const (
	// TLSStartTLS (smtp://) connects in plain text and requires STARTTLS
	// before anything else; a server that does not offer it is refused.
	TLSStartTLS = serverurl.StartTLS
	// TLSImplicit (smtps://) speaks TLS from the first byte.
	TLSImplicit = serverurl.Implicit
	// TLSNone (smtp://…?tls=none) never encrypts. ParseURL allows it only
	// for loopback hosts: a local relay or a test sink.
	TLSNone = serverurl.None
)

// Config configures the mail senders. Use ParseURL to fill the SMTP part
// (cmd/sisnotify reads SISNOTIFY_SMTP_URL and the rest of the environment);
// the zero value (no Host) means "write to the outbox".
type Config struct {
	Host     string
	Port     int
	Username string
	Password string
	TLS      TLSMode

	// From is the From header and envelope sender
	// (SISNOTIFY_MAIL_FROM); empty means DefaultFrom.
	From string
	// OutboxDir is where the outbox sender writes .eml files
	// (SISNOTIFY_OUTBOX_DIR); empty means DefaultOutboxDir.
	OutboxDir string

	// Connections is the number of SMTP connections the pool keeps, at most
	// one per concurrent Send; <= 0 means DefaultConnections.
	Connections int
	// Timeout bounds each dial and each SMTP command; <= 0 means
	// DefaultTimeout. The ctx given to Send bounds it further.
	Timeout time.Duration
	// TLSConfig, when set, is used for STARTTLS and implicit TLS (for a
	// private CA, say). ServerName defaults to Host.
	TLSConfig *tls.Config
	// HELO is the name sent in EHLO; empty means the machine's host name.
	HELO string
}

// String describes the configuration without the password.
func (c Config) String() string {
	if c.Host == "" {
		return fmt.Sprintf("outbox dir=%s", c.outboxDir())
	}
	user := ""
	if c.Username != "" {
		user = "(user set)"
	}
	return fmt.Sprintf("smtp host=%s port=%d tls=%s auth=%s connections=%d",
		c.Host, c.Port, c.TLS, user, c.connections())
}

// GoString is String, so that %#v does not print the password either.
func (c Config) GoString() string { return c.String() }

// LogValue keeps the password out of slog output.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

func (c Config) from() string {
	if c.From == "" {
		return DefaultFrom
	}
	return c.From
}

func (c Config) outboxDir() string {
	if c.OutboxDir == "" {
		return DefaultOutboxDir
	}
	return c.OutboxDir
}

func (c Config) connections() int {
	if c.Connections <= 0 {
		return DefaultConnections
	}
	return c.Connections
}

func (c Config) timeout() time.Duration {
	if c.Timeout <= 0 {
		return DefaultTimeout
	}
	return c.Timeout
}

// ParseURL parses SISNOTIFY_SMTP_URL into the SMTP part of a Config:
//
//	smtp://user:pass@host[:port]          STARTTLS required, port 587
//	smtps://user:pass@host[:port]         implicit TLS, port 465
//	smtp://host[:port]?tls=none           no TLS: loopback hosts only
//
// User and password are optional and must be percent-encoded. The only
// query parameter is tls (starttls, none; tls for smtps). Errors never
// repeat the URL or the password.
func ParseURL(raw string) (Config, error) {
	var cfg Config
	u, err := serverurl.Parse(raw, smtpURL)
	if err != nil {
		return cfg, err
	}
	if u.Path != "" && u.Path != "/" {
		return cfg, errors.New("mail: SMTP URL must not have a path")
	}
	cfg.TLS, cfg.Host, cfg.Port, cfg.Username, cfg.Password = u.TLS, u.Host, u.Port, u.Username, u.Password
	return cfg, nil
}

// smtpURL is what an SMTP URL looks like (the rules: serverurl).
var smtpURL = serverurl.Kind{Pkg: "mail", Name: "SMTP URL", Plain: "smtp", Port: DefaultSMTPPort, Secure: "smtps", SecurePort: DefaultSMTPSPort,
	Example: "smtp://user:pass@host:port", Encoded: "user or password"}

// parseFrom parses the configured sender. The error does not repeat it.
func parseFrom(from string) (*mail.Address, error) {
	if strings.ContainsAny(from, "\r\n") {
		return nil, errors.New("mail: SISNOTIFY_MAIL_FROM must be one line")
	}
	addr, err := mail.ParseAddress(from)
	if err != nil {
		return nil, errors.New(`mail: SISNOTIFY_MAIL_FROM is not an address like "Office <office@example.org>"`)
	}
	return addr, nil
}
