package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iec-almaty/sisnotify/jobs/config"
	"github.com/iec-almaty/sisnotify/templates"
)

// envOf is a LookupEnv over a map.
func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// runCmd runs sisnotify in-process with env, plus the tests' office
// configuration (withOfficeMap) unless env sets SISNOTIFY_CONFIG: set it
// to "" for none.
func runCmd(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	err = run(context.Background(), args, envOf(withOfficeMap(t, env)), &out, &errb)
	return out.String(), errb.String(), err
}

func exitStatus(err error) int {
	if err == nil {
		return 0
	}
	var ce *ConfigError
	var ue *UsageError
	if errors.As(err, &ce) || errors.As(err, &ue) {
		return 2
	}
	return 1
}

const goodPG = "postgres://sisnotify:s3cret-pw@db.example:5432/sisnotify"

func TestConfigErrorsNameTheVariable(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		args    []string
		wantVar string
	}{
		{"sync without SIS URL", map[string]string{"SISNOTIFY_DB_URL": goodPG}, []string{"sync"}, "SISNOTIFY_SIS_URL is required"},
		{"sync without DB URL", map[string]string{"SISNOTIFY_SIS_URL": goodPG}, []string{"sync"}, "SISNOTIFY_DB_URL is required"},
		{"migrate without DB URL", map[string]string{}, []string{"migrate"}, "SISNOTIFY_DB_URL is required"},
		{"malformed DB URL", map[string]string{"SISNOTIFY_DB_URL": "postgres://sisnotify:s3cret-pw@db.example:bad/x"}, []string{"migrate"}, "SISNOTIFY_DB_URL: malformed URL"},
		{"DB URL of another scheme", map[string]string{"SISNOTIFY_DB_URL": "mysql://u:s3cret-pw@h/x"}, []string{"migrate"}, "SISNOTIFY_DB_URL: scheme"},
		{"malformed SIS URL", map[string]string{"SISNOTIFY_DB_URL": goodPG, "SISNOTIFY_SIS_URL": "::s3cret-pw"}, []string{"sync"}, "SISNOTIFY_SIS_URL: malformed URL"},
		{"malformed Redis URL", map[string]string{"SISNOTIFY_DB_URL": goodPG, "SISNOTIFY_REDIS_URL": "http://s3cret-pw@h"}, []string{"migrate"}, "SISNOTIFY_REDIS_URL"},
		{"malformed SMTP URL", map[string]string{"SISNOTIFY_DB_URL": goodPG, "SISNOTIFY_SMTP_URL": "ftp://u:s3cret-pw@h"}, []string{"migrate"}, "SISNOTIFY_SMTP_URL"},
		{"clear-text SMTP to a remote host", map[string]string{"SISNOTIFY_DB_URL": goodPG, "SISNOTIFY_SMTP_URL": "smtp://u:s3cret-pw@mail.example:25?tls=none"}, []string{"migrate"}, "SISNOTIFY_SMTP_URL: mail: tls=none is only allowed for a loopback host"},
		{"unknown SMS provider", map[string]string{"SISNOTIFY_DB_URL": goodPG, "SISNOTIFY_SMS_PROVIDER": "pigeon"}, []string{"migrate"}, "SISNOTIFY_SMS_PROVIDER: unknown provider"},
		{"twilio without credentials", map[string]string{"SISNOTIFY_DB_URL": goodPG, "SISNOTIFY_SMS_PROVIDER": "twilio"}, []string{"migrate"}, "SISNOTIFY_TWILIO_AUTH_TOKEN is required"},
		{"mobizon without key", map[string]string{"SISNOTIFY_DB_URL": goodPG, "SISNOTIFY_SMS_PROVIDER": "mobizon"}, []string{"migrate"}, "SISNOTIFY_MOBIZON_API_KEY is required"},
		{"webhook without URL", map[string]string{"SISNOTIFY_DB_URL": goodPG, "SISNOTIFY_SMS_PROVIDER": "webhook"}, []string{"migrate"}, "SISNOTIFY_SMS_WEBHOOK_URL is required"},
		{"bad quiet hours", map[string]string{"SISNOTIFY_DB_URL": goodPG, "SISNOTIFY_SMS_QUIET_HOURS": "late"}, []string{"migrate"}, "SISNOTIFY_SMS_QUIET_HOURS"},
		{"bad office email", map[string]string{"SISNOTIFY_DB_URL": goodPG, "SISNOTIFY_OFFICE_EMAILS": "office@uni.example, nonsense"}, []string{"migrate"}, "SISNOTIFY_OFFICE_EMAILS: entry 2"},
		{"unknown time zone", map[string]string{"SISNOTIFY_DB_URL": goodPG, "SISNOTIFY_TIMEZONE": "Mars/Olympus"}, []string{"migrate"}, "SISNOTIFY_TIMEZONE"},
		{"bad schedule", map[string]string{"SISNOTIFY_DB_URL": goodPG, "SISNOTIFY_SCHEDULE": "every night"}, []string{"migrate"}, "SISNOTIFY_SCHEDULE"},
		{"bad HTTP address", map[string]string{"SISNOTIFY_DB_URL": goodPG, "SISNOTIFY_HTTP_ADDR": "8080"}, []string{"migrate"}, "SISNOTIFY_HTTP_ADDR"},
		{"user without password", map[string]string{"SISNOTIFY_DB_URL": goodPG, "SISNOTIFY_HTTP_USER": "op"}, []string{"migrate"}, "SISNOTIFY_HTTP_PASSWORD"},
		{"missing config file", map[string]string{"SISNOTIFY_DB_URL": goodPG, "SISNOTIFY_CONFIG": "/nonexistent/sisnotify.yaml"}, []string{"migrate"}, "SISNOTIFY_CONFIG"},
		{"secret file missing", map[string]string{"SISNOTIFY_DB_URL_FILE": "/nonexistent/db-url"}, []string{"migrate"}, "SISNOTIFY_DB_URL_FILE"},
		{"both value and file", map[string]string{"SISNOTIFY_DB_URL": goodPG, "SISNOTIFY_DB_URL_FILE": "/etc/hostname"}, []string{"migrate"}, "SISNOTIFY_DB_URL and SISNOTIFY_DB_URL_FILE are both set"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := runCmd(t, c.env, c.args...)
			if exitStatus(err) != 2 {
				t.Fatalf("err = %v, want a configuration error (exit 2)", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, c.wantVar) {
				t.Errorf("error %q does not say %q", msg, c.wantVar)
			}
			// One line per problem, each naming its variable.
			lines := strings.Split(msg, "\n")
			for _, l := range lines {
				if !strings.HasPrefix(l, "SISNOTIFY_") {
					t.Errorf("error line %q does not start with the variable", l)
				}
			}
			if want := strings.Count(c.name, "credentials") * 2; len(lines) != 1+want {
				t.Errorf("error %q has %d lines, want %d", msg, len(lines), 1+want)
			}
			if strings.Contains(msg, "s3cret-pw") {
				t.Errorf("error %q quotes a secret", msg)
			}
		})
	}
}

func TestSecretsFromFiles(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "db-url")
	if err := os.WriteFile(f, []byte(goodPG+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := loadConfig(envOf(map[string]string{
		"SISNOTIFY_DB_URL_FILE": f, "SISNOTIFY_HTTP_USER": "op", "SISNOTIFY_HTTP_PASSWORD_FILE": pw,
	}), need{db: true})
	if err != nil {
		t.Fatal(err)
	}
	if c.DBURL != goodPG || c.HTTPPassword != "hunter2" {
		t.Errorf("read %q / %q from files", c.DBURL, c.HTTPPassword)
	}
}

func TestConfigDefaults(t *testing.T) {
	c, err := loadConfig(envOf(map[string]string{}), need{})
	if err != nil {
		t.Fatal(err)
	}
	if c.RedisURL != "redis://127.0.0.1:6379/0" || c.SMSProvider != "outbox" || c.QuietHours != "21:00-09:00" ||
		c.TimezoneName != "Asia/Almaty" || c.Schedule != "0 6 * * *" || c.HTTPAddr != "127.0.0.1:8080" || c.OutboxDir != "./outbox" ||
		c.MailFrom != "International Office <international@localhost>" {
		t.Errorf("defaults: %+v", c)
	}
	if off := c.Location.String(); off != "Asia/Almaty" {
		t.Errorf("location %s", off)
	}
	// Set and empty: SMS are never held.
	c, err = loadConfig(envOf(map[string]string{"SISNOTIFY_SMS_QUIET_HOURS": ""}), need{})
	if err != nil || c.QuietHours != "" {
		t.Errorf("empty quiet hours = %q, %v; want never held", c.QuietHours, err)
	}
	// The ops list falls back to the office list.
	c, err = loadConfig(envOf(map[string]string{"SISNOTIFY_OFFICE_EMAILS": "a@uni.example,b@uni.example"}), need{})
	if err != nil || strings.Join(c.OpsEmails, ",") != "a@uni.example,b@uni.example" {
		t.Errorf("ops emails = %v, %v", c.OpsEmails, err)
	}
}

func TestUsage(t *testing.T) {
	for _, cmd := range []string{"migrate", "sync", "demo", "run", "serve", "notices"} {
		out, _, err := runCmd(t, nil, cmd, "--help")
		if err != nil {
			t.Errorf("%s --help: %v", cmd, err)
		}
		if !strings.Contains(out, "Usage: sisnotify "+cmd) {
			t.Errorf("%s --help printed %q", cmd, out)
		}
	}
	if _, _, err := runCmd(t, nil, "frobnicate"); exitStatus(err) != 2 {
		t.Errorf("unknown command: %v, want exit 2", err)
	}
	if _, _, err := runCmd(t, nil, "sync", "--as-of", "2026-02-30"); exitStatus(err) != 2 || !strings.Contains(err.Error(), "as-of") {
		t.Errorf("bad --as-of: %v, want a usage error naming the flag", err)
	}
	if _, _, err := runCmd(t, nil); exitStatus(err) != 2 {
		t.Errorf("no command: %v, want exit 2", err)
	}
}

func TestOfficeOfKeepsEachLanguage(t *testing.T) {
	got := officeOf(config.Office{OfficeText: config.OfficeText{Name: "International Office"}, Phone: "+7 727 000 00 00",
		In: map[string]config.OfficeText{"ru": {Name: "Международный отдел", Hours: "Пн-Пт"}}})
	if got.Name != "International Office" || got.Phone != "+7 727 000 00 00" {
		t.Errorf("officeOf = %+v: the default details are lost", got)
	}
	if len(got.In) != 1 || got.In["ru"] != (templates.OfficeText{Name: "Международный отдел", Hours: "Пн-Пт"}) {
		t.Errorf("officeOf(...).In = %+v, want the Russian name and hours", got.In)
	}
}
