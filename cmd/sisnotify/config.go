package main

import (
	"errors"
	"fmt"
	"net"
	netmail "net/mail"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/robfig/cron/v3"

	"github.com/iec-almaty/sisnotify/integrations/mail"

	"github.com/iec-almaty/sisnotify/jobs/config"
)

// Config is the environment (docs/configuration.md), validated. Every variable can
// also be given as NAME_FILE, the path of a file holding the value (for
// secrets mounted by Docker or Kubernetes).
type Config struct {
	SISURL       string
	DBURL        string
	RedisURL     string
	SMTPURL      string
	MailFrom     string
	OutboxDir    string
	SMSProvider  string
	TwilioSID    string
	TwilioToken  string
	TwilioFrom   string
	MobizonKey   string
	MobizonFrom  string
	SMSAPIURL    string
	QuietHours   string // "" when SMS are never held
	WebhookURL   string
	OfficeEmails []string
	OpsEmails    []string
	TimezoneName string
	Location     *time.Location
	Schedule     string
	ConfigPath   string
	HTTPAddr     string
	HTTPUser     string
	HTTPPassword string
}

// need says which variables a command cannot do without.
type need struct {
	sis, db, office bool
}

// ConfigError is a bad or missing variable; the program exits with 2.
type ConfigError struct{ Msg string }

func (e *ConfigError) Error() string { return e.Msg }

func configErr(format string, args ...any) error {
	return &ConfigError{Msg: fmt.Sprintf(format, args...)}
}

// env reads variables and their _FILE twins.
type env struct {
	lookup func(string) (string, bool)
	bad    map[string]bool // variables already reported, so one mistake is one line
}

// get returns the value of name (or of the file named by name_FILE), and
// whether either was set.
func (e env) get(name string) (string, bool, error) {
	v, ok := e.lookup(name)
	f, fok := e.lookup(name + "_FILE")
	switch {
	case ok && fok && f != "":
		e.bad[name] = true
		return "", false, configErr("%s and %s_FILE are both set; set one", name, name)
	case fok && f != "":
		b, err := os.ReadFile(f)
		if err != nil {
			// The error names the file, never its content.
			e.bad[name] = true
			return "", false, configErr("%s_FILE: cannot read %s: %v", name, f, errors.Unwrap(err))
		}
		return strings.TrimRight(string(b), "\r\n"), true, nil
	}
	return v, ok, nil
}

func (e env) str(name, def string, errs *[]string) string {
	v, ok, err := e.get(name)
	if err != nil {
		*errs = append(*errs, err.Error())
		return def
	}
	if !ok || v == "" {
		return def
	}
	return v
}

// loadConfig reads and validates the environment for one command. Every
// problem is reported at once, one line each, naming the variable and never
// quoting a secret.
func loadConfig(lookup func(string) (string, bool), n need) (*Config, error) {
	e := env{lookup: lookup, bad: map[string]bool{}}
	var errs []string
	c := &Config{
		SISURL:       e.str("SISNOTIFY_SIS_URL", "", &errs),
		DBURL:        e.str("SISNOTIFY_DB_URL", "", &errs),
		RedisURL:     e.str("SISNOTIFY_REDIS_URL", "redis://127.0.0.1:6379/0", &errs),
		SMTPURL:      e.str("SISNOTIFY_SMTP_URL", "", &errs),
		MailFrom:     e.str("SISNOTIFY_MAIL_FROM", "International Office <international@localhost>", &errs),
		OutboxDir:    e.str("SISNOTIFY_OUTBOX_DIR", "./outbox", &errs),
		SMSProvider:  e.str("SISNOTIFY_SMS_PROVIDER", "outbox", &errs),
		TwilioSID:    e.str("SISNOTIFY_TWILIO_ACCOUNT_SID", "", &errs),
		TwilioToken:  e.str("SISNOTIFY_TWILIO_AUTH_TOKEN", "", &errs),
		TwilioFrom:   e.str("SISNOTIFY_TWILIO_FROM", "", &errs),
		MobizonKey:   e.str("SISNOTIFY_MOBIZON_API_KEY", "", &errs),
		MobizonFrom:  e.str("SISNOTIFY_MOBIZON_FROM", "", &errs),
		SMSAPIURL:    e.str("SISNOTIFY_SMS_API_URL", "", &errs),
		WebhookURL:   e.str("SISNOTIFY_SMS_WEBHOOK_URL", "", &errs),
		TimezoneName: e.str("SISNOTIFY_TIMEZONE", "Asia/Almaty", &errs),
		Schedule:     e.str("SISNOTIFY_SCHEDULE", "0 6 * * *", &errs),
		ConfigPath:   e.str("SISNOTIFY_CONFIG", "", &errs),
		HTTPAddr:     e.str("SISNOTIFY_HTTP_ADDR", "127.0.0.1:8080", &errs),
		HTTPUser:     e.str("SISNOTIFY_HTTP_USER", "", &errs),
		HTTPPassword: e.str("SISNOTIFY_HTTP_PASSWORD", "", &errs),
	}
	// Quiet hours: unset means the default; set and empty means never hold.
	if v, ok, err := e.get("SISNOTIFY_SMS_QUIET_HOURS"); err != nil {
		errs = append(errs, err.Error())
	} else if !ok {
		c.QuietHours = "21:00-09:00"
	} else {
		c.QuietHours = strings.TrimSpace(v)
	}

	check := func(err error) {
		if err != nil {
			errs = append(errs, err.Error())
		}
	}
	if n.sis && !e.bad["SISNOTIFY_SIS_URL"] {
		check(requirePostgres("SISNOTIFY_SIS_URL", c.SISURL, "PostgreSQL URL of the SIS (read-only role)"))
	} else if c.SISURL != "" {
		check(checkPostgres("SISNOTIFY_SIS_URL", c.SISURL))
	}
	if n.db && !e.bad["SISNOTIFY_DB_URL"] {
		check(requirePostgres("SISNOTIFY_DB_URL", c.DBURL, "PostgreSQL URL of the worker's own database"))
	} else if c.DBURL != "" {
		check(checkPostgres("SISNOTIFY_DB_URL", c.DBURL))
	}
	if _, err := redis.ParseURL(c.RedisURL); err != nil {
		check(configErr("SISNOTIFY_REDIS_URL: not a Redis URL (want redis://host:6379/0)"))
	}
	if c.SMTPURL != "" {
		check(checkSMTP(c.SMTPURL))
	}
	if a, err := netmail.ParseAddress(c.MailFrom); err != nil || a.Address == "" {
		check(configErr("SISNOTIFY_MAIL_FROM: not an email address (want \"Name <address@host>\")"))
	}
	switch c.SMSProvider {
	case "outbox", "none":
	case "twilio":
		for _, v := range []struct{ name, val string }{
			{"SISNOTIFY_TWILIO_ACCOUNT_SID", c.TwilioSID}, {"SISNOTIFY_TWILIO_AUTH_TOKEN", c.TwilioToken}, {"SISNOTIFY_TWILIO_FROM", c.TwilioFrom}} {
			if v.val == "" {
				check(configErr("%s is required when SISNOTIFY_SMS_PROVIDER=twilio", v.name))
			}
		}
	case "mobizon":
		if c.MobizonKey == "" {
			check(configErr("SISNOTIFY_MOBIZON_API_KEY is required when SISNOTIFY_SMS_PROVIDER=mobizon"))
		}
	case "webhook":
		if c.WebhookURL == "" {
			check(configErr("SISNOTIFY_SMS_WEBHOOK_URL is required when SISNOTIFY_SMS_PROVIDER=webhook"))
		} else {
			check(checkHTTP("SISNOTIFY_SMS_WEBHOOK_URL", c.WebhookURL))
		}
	default:
		check(configErr("SISNOTIFY_SMS_PROVIDER: unknown provider %q (want twilio, mobizon, webhook, outbox or none)", printable(c.SMSProvider)))
	}
	if c.SMSAPIURL != "" {
		check(checkHTTP("SISNOTIFY_SMS_API_URL", c.SMSAPIURL))
	}
	if _, err := config.ParseQuietHours(c.QuietHours); err != nil {
		check(configErr("SISNOTIFY_SMS_QUIET_HOURS: %v", err))
	}
	var err error
	if c.OfficeEmails, err = emailList("SISNOTIFY_OFFICE_EMAILS", e.str("SISNOTIFY_OFFICE_EMAILS", "", &errs)); err != nil {
		check(err)
	} else if n.office && len(c.OfficeEmails) == 0 {
		check(configErr("SISNOTIFY_OFFICE_EMAILS is required (comma-separated digest recipients)"))
	}
	if c.OpsEmails, err = emailList("SISNOTIFY_OPS_EMAILS", e.str("SISNOTIFY_OPS_EMAILS", "", &errs)); err != nil {
		check(err)
	} else if len(c.OpsEmails) == 0 {
		c.OpsEmails = c.OfficeEmails
	}
	if c.Location, err = time.LoadLocation(c.TimezoneName); err != nil {
		check(configErr("SISNOTIFY_TIMEZONE: unknown time zone %q (want an IANA name such as Asia/Almaty)", printable(c.TimezoneName)))
	}
	if _, err := cron.ParseStandard(c.Schedule); err != nil {
		check(configErr("SISNOTIFY_SCHEDULE: not a cron spec (%v); want five fields such as \"0 6 * * *\"", err))
	}
	if c.ConfigPath != "" {
		if _, err := os.Stat(c.ConfigPath); err != nil {
			check(configErr("SISNOTIFY_CONFIG: cannot read %s: %v", c.ConfigPath, errors.Unwrap(err)))
		}
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		check(configErr("SISNOTIFY_HTTP_ADDR: not host:port (%v)", err))
	}
	if (c.HTTPUser == "") != (c.HTTPPassword == "") {
		check(configErr("SISNOTIFY_HTTP_USER and SISNOTIFY_HTTP_PASSWORD must be set together"))
	}
	if len(errs) > 0 {
		return nil, &ConfigError{Msg: strings.Join(errs, "\n")}
	}
	return c, nil
}

// requireOffice refuses a night that sends without the office's details
// that every notice gives (phone, address, hours, and the university every
// SMS starts with): a notice that cannot say where to go is worse than
// none. One line per missing key, naming it as the YAML file writes it.
func requireOffice(cfg *Config, file *config.File) error {
	missing := file.Office.Missing()
	if len(missing) == 0 {
		return nil
	}
	where := "set it in the file of SISNOTIFY_CONFIG"
	if cfg.ConfigPath == "" {
		where = "SISNOTIFY_CONFIG names no file; set it in one"
	}
	lines := make([]string, len(missing))
	for i, k := range missing {
		lines[i] = fmt.Sprintf("SISNOTIFY_CONFIG: %s is required to send notices (%s)", k, where)
	}
	return &ConfigError{Msg: strings.Join(lines, "\n")}
}

func requirePostgres(name, v, what string) error {
	if v == "" {
		return configErr("%s is required (%s)", name, what)
	}
	return checkPostgres(name, v)
}

// checkPostgres accepts postgres:// and postgresql:// URLs. The message
// never quotes the URL: it may hold a password.
func checkPostgres(name, v string) error {
	u, err := url.Parse(v)
	if err != nil {
		return configErr("%s: malformed URL (want postgres://user:password@host:5432/dbname)", name)
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return configErr("%s: scheme %q is not postgres:// (want postgres://user:password@host:5432/dbname)", name, printable(u.Scheme))
	}
	if u.Host == "" && u.Query().Get("host") == "" {
		return configErr("%s: no host (want postgres://user:password@host:5432/dbname)", name)
	}
	return nil
}

func checkHTTP(name, v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return configErr("%s: not an http(s) URL", name)
	}
	return nil
}

// checkSMTP validates SISNOTIFY_SMTP_URL with the mail package's own
// parser, so the configuration check and the sender agree.
func checkSMTP(v string) error {
	if _, err := mail.ParseURL(v); err != nil {
		return configErr("SISNOTIFY_SMTP_URL: %v", err)
	}
	return nil
}

func emailList(name, v string) ([]string, error) {
	var out []string
	for i, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		a, err := netmail.ParseAddress(part)
		if err != nil {
			return nil, configErr("%s: entry %d is not an email address", name, i+1)
		}
		out = append(out, a.Address)
	}
	return out, nil
}

// printable keeps a value that is echoed in an error short and on one line.
func printable(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}
