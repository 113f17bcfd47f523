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

	"github.com/robfig/cron/v3"

	"github.com/iec-almaty/sisnotify/integrations/mail"
	"github.com/iec-almaty/sisnotify/integrations/mailbox"
	"github.com/iec-almaty/sisnotify/integrations/redisurl"
	"github.com/iec-almaty/sisnotify/integrations/sms"
	"github.com/iec-almaty/sisnotify/jobs/config"
	"github.com/iec-almaty/sisnotify/pace"
	"github.com/iec-almaty/sisnotify/studentpage"
)

// Config is the whole configuration of a command, parsed and validated
// once by loadConfig: the environment (docs/configuration.md) and the YAML
// file it names. Commands use these values and parse nothing again. Every
// variable can also be given as NAME_FILE, the path of a file holding the
// value (for secrets mounted by Docker or Kubernetes).
type Config struct {
	SISURL string
	// TrustUpdatedAt is SISNOTIFY_SIS_UPDATED_AT=trusted: the SIS moves
	// updated_at on every change, and a sync may read only changed rows.
	TrustUpdatedAt bool
	DBURL          string
	// RedisURL is SISNOTIFY_REDIS_URL as given (print it with
	// redisurl.Redact); Redis is its parsed form (one server or Sentinel),
	// whose NewClient makes the process's Redis client.
	RedisURL string
	Redis    redisurl.Options
	// Mail is the SMTP server of SISNOTIFY_SMTP_URL (no Host: the outbox),
	// the sender and the outbox folder.
	Mail mail.Config
	// SMS is the provider and its credentials.
	SMS       sms.Config
	OutboxDir string
	// QuietHours are the hours student SMS are held: the YAML file's
	// sms.quiet_hours, else SISNOTIFY_SMS_QUIET_HOURS, else 21:00-09:00;
	// the zero value holds nothing.
	QuietHours   config.QuietHours
	OfficeEmails []string
	OpsEmails    []string
	TimezoneName string
	Location     *time.Location
	// Schedule is SISNOTIFY_SCHEDULE as given; Cron its parsed form.
	Schedule string
	Cron     cron.Schedule
	// ScheduleNote, when not empty, says that Cron activates more than
	// once on some day while a night runs at most once a day; serve
	// prints it.
	ScheduleNote string
	ConfigPath   string
	// File is the YAML file of SISNOTIFY_CONFIG, or the built-in defaults.
	File         *config.File
	HTTPAddr     string
	HTTPUser     string
	HTTPPassword string
	// PublicURL is the base URL the service is reached under (the
	// console's sign-in returns there); empty: each request's own host.
	PublicURL string
	// LinkKeys sign and verify the student page's links
	// (SISNOTIFY_LINK_KEYS, comma-separated, each at least 32 bytes): the
	// first signs, every one verifies. With PublicURL they turn on the
	// links in student emails and the page at /s/; without, both are off.
	LinkKeys [][]byte
	// OIDC is the university's single sign-on for the console (all three
	// of SISNOTIFY_OIDC_ISSUER, _CLIENT_ID, _CLIENT_SECRET, or none).
	OIDCIssuer, OIDCClientID, OIDCClientSecret string
	// StaffEmails sign in to the console as office staff; default the
	// office emails.
	StaffEmails []string
	// BounceIMAP is the bounce mailbox of SISNOTIFY_BOUNCE_IMAP_URL, which
	// serve reads every minute; no Host: bounces are not read.
	BounceIMAP mailbox.Config
	// MailRate and SMSRate are the providers' limits
	// (SISNOTIFY_MAIL_RATE, SISNOTIFY_SMS_RATE: "30/m,10000/d"), kept
	// across every replica; none: no limit.
	MailRate, SMSRate []pace.Limit
}

// need says which variables a command cannot do without. office: the
// command sends, so it needs the digest recipients and the office's
// details of the YAML file.
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

// loadConfig reads and validates the environment and the YAML file of
// SISNOTIFY_CONFIG for one command, in one pass. Every problem is reported
// at once, one line each, naming the variable (or the file's key) and never
// quoting a secret.
func loadConfig(lookup func(string) (string, bool), n need) (*Config, error) {
	e := env{lookup: lookup, bad: map[string]bool{}}
	var errs []string
	c := &Config{
		SISURL:       e.str("SISNOTIFY_SIS_URL", "", &errs),
		DBURL:        e.str("SISNOTIFY_DB_URL", "", &errs),
		RedisURL:     e.str("SISNOTIFY_REDIS_URL", "redis://127.0.0.1:6379/0", &errs),
		OutboxDir:    e.str("SISNOTIFY_OUTBOX_DIR", "./outbox", &errs),
		TimezoneName: e.str("SISNOTIFY_TIMEZONE", "Asia/Almaty", &errs),
		Schedule:     e.str("SISNOTIFY_SCHEDULE", "0 6 * * *", &errs),
		ConfigPath:   e.str("SISNOTIFY_CONFIG", "", &errs),
		HTTPAddr:     e.str("SISNOTIFY_HTTP_ADDR", "127.0.0.1:8080", &errs),
		HTTPUser:     e.str("SISNOTIFY_HTTP_USER", "", &errs),
		HTTPPassword: e.str("SISNOTIFY_HTTP_PASSWORD", "", &errs),
		PublicURL:    strings.TrimRight(e.str("SISNOTIFY_PUBLIC_URL", "", &errs), "/"),
		OIDCIssuer:   e.str("SISNOTIFY_OIDC_ISSUER", "", &errs),
		OIDCClientID: e.str("SISNOTIFY_OIDC_CLIENT_ID", "", &errs),
		// The secret is read like every other, and never printed.
		OIDCClientSecret: e.str("SISNOTIFY_OIDC_CLIENT_SECRET", "", &errs),
	}
	switch v := e.str("SISNOTIFY_SIS_UPDATED_AT", "ignored", &errs); v {
	case "ignored":
	case "trusted":
		c.TrustUpdatedAt = true
	default:
		errs = append(errs, configErr("SISNOTIFY_SIS_UPDATED_AT: %q is neither trusted nor ignored", printable(v)).Error())
	}
	smtpURL := e.str("SISNOTIFY_SMTP_URL", "", &errs)
	bounceURL := e.str("SISNOTIFY_BOUNCE_IMAP_URL", "", &errs)
	mailFrom := e.str("SISNOTIFY_MAIL_FROM", mail.DefaultFrom, &errs)
	c.SMS = sms.Config{
		Provider:         e.str("SISNOTIFY_SMS_PROVIDER", "outbox", &errs),
		TwilioAccountSID: e.str("SISNOTIFY_TWILIO_ACCOUNT_SID", "", &errs),
		TwilioAuthToken:  e.str("SISNOTIFY_TWILIO_AUTH_TOKEN", "", &errs),
		TwilioFrom:       e.str("SISNOTIFY_TWILIO_FROM", "", &errs),
		MobizonAPIKey:    e.str("SISNOTIFY_MOBIZON_API_KEY", "", &errs),
		MobizonFrom:      e.str("SISNOTIFY_MOBIZON_FROM", "", &errs),
		APIURL:           e.str("SISNOTIFY_SMS_API_URL", "", &errs),
		WebhookURL:       e.str("SISNOTIFY_SMS_WEBHOOK_URL", "", &errs),
		OutboxDir:        c.OutboxDir,
	}
	// Quiet hours: unset means the default; set and empty means never hold.
	quiet := "21:00-09:00"
	if v, ok, err := e.get("SISNOTIFY_SMS_QUIET_HOURS"); err != nil {
		errs = append(errs, err.Error())
	} else if ok {
		quiet = strings.TrimSpace(v)
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
	var err error
	// redisurl's errors never quote the URL nor its password.
	if c.Redis, err = redisurl.Parse(c.RedisURL); err != nil {
		check(configErr("SISNOTIFY_REDIS_URL: %v", err))
	}
	if smtpURL != "" {
		// The mail package's own parser, so the check and the sender agree.
		if c.Mail, err = mail.ParseURL(smtpURL); err != nil {
			check(configErr("SISNOTIFY_SMTP_URL: %v", err))
		}
	}
	c.Mail.From, c.Mail.OutboxDir = mailFrom, c.OutboxDir
	if bounceURL != "" {
		// The mailbox package's own parser; its errors never quote the URL.
		if c.BounceIMAP, err = mailbox.ParseURL(bounceURL); err != nil {
			check(configErr("SISNOTIFY_BOUNCE_IMAP_URL: %v", err))
		}
	}
	if a, err := netmail.ParseAddress(mailFrom); err != nil || a.Address == "" {
		check(configErr("SISNOTIFY_MAIL_FROM: not an email address (want \"Name <address@host>\")"))
	}
	switch s := c.SMS; s.Provider {
	case "outbox", "none":
	case "twilio":
		for _, v := range []struct{ name, val string }{
			{"SISNOTIFY_TWILIO_ACCOUNT_SID", s.TwilioAccountSID}, {"SISNOTIFY_TWILIO_AUTH_TOKEN", s.TwilioAuthToken}, {"SISNOTIFY_TWILIO_FROM", s.TwilioFrom}} {
			if v.val == "" {
				check(configErr("%s is required when SISNOTIFY_SMS_PROVIDER=twilio", v.name))
			}
		}
	case "mobizon":
		if s.MobizonAPIKey == "" {
			check(configErr("SISNOTIFY_MOBIZON_API_KEY is required when SISNOTIFY_SMS_PROVIDER=mobizon"))
		}
	case "webhook":
		if s.WebhookURL == "" {
			check(configErr("SISNOTIFY_SMS_WEBHOOK_URL is required when SISNOTIFY_SMS_PROVIDER=webhook"))
		} else {
			check(checkHTTP("SISNOTIFY_SMS_WEBHOOK_URL", s.WebhookURL))
		}
	default:
		check(configErr("SISNOTIFY_SMS_PROVIDER: unknown provider %q (want twilio, mobizon, webhook, outbox or none)", printable(s.Provider)))
	}
	if c.SMS.APIURL != "" {
		check(checkHTTP("SISNOTIFY_SMS_API_URL", c.SMS.APIURL))
	}
	if c.QuietHours, err = config.ParseQuietHours(quiet); err != nil {
		check(configErr("SISNOTIFY_SMS_QUIET_HOURS: %v", err))
	}
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
	if c.StaffEmails, err = emailList("SISNOTIFY_STAFF_EMAILS", e.str("SISNOTIFY_STAFF_EMAILS", "", &errs)); err != nil {
		check(err)
	} else if len(c.StaffEmails) == 0 {
		c.StaffEmails = c.OfficeEmails
	}
	if c.Location, err = time.LoadLocation(c.TimezoneName); err != nil {
		check(configErr("SISNOTIFY_TIMEZONE: unknown time zone %q (want an IANA name such as Asia/Almaty)", printable(c.TimezoneName)))
	}
	if c.Cron, err = cron.ParseStandard(c.Schedule); err != nil {
		check(configErr("SISNOTIFY_SCHEDULE: not a cron spec (%v); want five fields such as \"0 6 * * *\" (the night runs at most once a day)", err))
	} else if c.Location != nil {
		c.ScheduleNote = scheduleNote(c.Schedule, c.Cron, c.Location)
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		check(configErr("SISNOTIFY_HTTP_ADDR: not host:port (%v)", err))
	}
	if (c.HTTPUser == "") != (c.HTTPPassword == "") {
		check(configErr("SISNOTIFY_HTTP_USER and SISNOTIFY_HTTP_PASSWORD must be set together"))
	}
	if set := btoi(c.OIDCIssuer != "") + btoi(c.OIDCClientID != "") + btoi(c.OIDCClientSecret != ""); set != 0 && set != 3 {
		check(configErr("SISNOTIFY_OIDC_ISSUER, SISNOTIFY_OIDC_CLIENT_ID and SISNOTIFY_OIDC_CLIENT_SECRET must be set together (the console's single sign-on)"))
	}
	if c.OIDCIssuer != "" {
		check(checkHTTP("SISNOTIFY_OIDC_ISSUER", c.OIDCIssuer))
	}
	if c.PublicURL != "" {
		check(checkHTTP("SISNOTIFY_PUBLIC_URL", c.PublicURL))
	}
	if c.LinkKeys, err = linkKeys(e.str("SISNOTIFY_LINK_KEYS", "", &errs)); err != nil {
		check(err)
	} else if len(c.LinkKeys) > 0 && c.PublicURL == "" {
		check(configErr("SISNOTIFY_LINK_KEYS needs SISNOTIFY_PUBLIC_URL: the links in student emails start with it"))
	}
	for _, r := range []struct {
		name string
		to   *[]pace.Limit
	}{{"SISNOTIFY_MAIL_RATE", &c.MailRate}, {"SISNOTIFY_SMS_RATE", &c.SMSRate}} {
		if *r.to, err = pace.Parse(e.str(r.name, "", &errs)); err != nil {
			check(configErr("%s: %v (want N/s, N/m, N/h or N/d, comma-separated, such as 30/m,10000/d)", r.name, err))
		}
	}
	if !e.bad["SISNOTIFY_CONFIG"] {
		c.File, err = config.Load(c.ConfigPath)
		var fileErrs config.Errors
		switch {
		case errors.As(err, &fileErrs):
			// One line per problem of the file, each naming its line and key.
			for _, fe := range fileErrs {
				check(configErr("SISNOTIFY_CONFIG: %v", fe))
			}
		case err != nil:
			check(configErr("SISNOTIFY_CONFIG: cannot read %s: %v", c.ConfigPath, errors.Unwrap(errors.Unwrap(err))))
		default:
			if c.File.SMS.QuietHours != nil {
				c.QuietHours = *c.File.SMS.QuietHours
			}
			if n.office {
				errs = append(errs, missingOffice(c.ConfigPath, c.File)...)
			}
		}
	}
	if len(errs) > 0 {
		return nil, &ConfigError{Msg: strings.Join(errs, "\n")}
	}
	return c, nil
}

// linkKeys parses SISNOTIFY_LINK_KEYS: comma-separated secrets of at
// least studentpage.MinKeyLen bytes each. Its errors say which key (by
// position) and how long it is, never what it is.
func linkKeys(v string) ([][]byte, error) {
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	parts := strings.Split(v, ",")
	keys := make([][]byte, 0, len(parts))
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if len(p) < studentpage.MinKeyLen {
			return nil, configErr("SISNOTIFY_LINK_KEYS: key %d of %d is %d bytes; want at least %d (e.g. openssl rand -base64 48)", i+1, len(parts), len(p), studentpage.MinKeyLen)
		}
		keys = append(keys, []byte(p))
	}
	return keys, nil
}

// scheduleNote says so when the schedule activates more than once on some
// day: a night runs once a day (the day's first activation starts it, the
// others find it started), so "@every 1h" does not run one an hour.
func scheduleNote(spec string, s cron.Schedule, loc *time.Location) string {
	// Two activations on one day show within 400 days (every day of the
	// week and of the month, leap years aside) unless the spec is sparse.
	from := time.Date(2025, 1, 1, 0, 0, 0, 0, loc)
	prev := s.Next(from)
	for t := prev; !t.IsZero() && t.Before(from.AddDate(0, 0, 400)); prev, t = t, s.Next(t) {
		if !t.Equal(prev) && sameDay(t, prev) {
			return fmt.Sprintf("SISNOTIFY_SCHEDULE %q activates more than once a day; a night runs at most once a day, at the day's first activation (the others do nothing)", printable(spec))
		}
	}
	return ""
}

func sameDay(a, b time.Time) bool {
	ay, am, ad := a.Date()
	by, bm, bd := b.Date()
	return ay == by && am == bm && ad == bd
}

// missingOffice refuses a night that sends without the office's details
// that every notice gives (phone, address, hours, and the university every
// SMS starts with): a notice that cannot say where to go is worse than
// none. One line per missing key, naming it as the YAML file writes it.
func missingOffice(path string, file *config.File) []string {
	where := "set it in the file of SISNOTIFY_CONFIG"
	if path == "" {
		where = "SISNOTIFY_CONFIG names no file; set it in one"
	}
	var lines []string
	for _, k := range file.Office.Missing() {
		lines = append(lines, fmt.Sprintf("SISNOTIFY_CONFIG: %s is required to send notices (%s)", k, where))
	}
	return lines
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

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
