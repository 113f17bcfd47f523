package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/iec-almaty/sisnotify/integrations/sis"
	"github.com/iec-almaty/sisnotify/integrations/testenv"
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
		{"Sentinel URL without master", map[string]string{"SISNOTIFY_DB_URL": goodPG, "SISNOTIFY_REDIS_URL": "redis-sentinel://:s3cret-pw@h1:26379,h2:26379/0"}, []string{"migrate"}, "SISNOTIFY_REDIS_URL: no master name"},
		{"Sentinel URL with a bad port", map[string]string{"SISNOTIFY_DB_URL": goodPG, "SISNOTIFY_REDIS_URL": "redis-sentinel://:s3cret-pw@h1:0,h2:26379/0?master=m"}, []string{"migrate"}, "SISNOTIFY_REDIS_URL: a sentinel address has a bad port"},
		{"malformed SMTP URL", map[string]string{"SISNOTIFY_DB_URL": goodPG, "SISNOTIFY_SMTP_URL": "ftp://u:s3cret-pw@h"}, []string{"migrate"}, "SISNOTIFY_SMTP_URL"},
		{"clear-text SMTP to a remote host", map[string]string{"SISNOTIFY_DB_URL": goodPG, "SISNOTIFY_SMTP_URL": "smtp://u:s3cret-pw@mail.example:25?tls=none"}, []string{"migrate"}, "SISNOTIFY_SMTP_URL: mail: tls=none is only allowed for a loopback host"},
		{"malformed bounce mailbox URL", map[string]string{"SISNOTIFY_DB_URL": goodPG, "SISNOTIFY_BOUNCE_IMAP_URL": "pop3://u:s3cret-pw@h/INBOX"}, []string{"migrate"}, "SISNOTIFY_BOUNCE_IMAP_URL: mailbox: IMAP URL scheme"},
		{"clear-text IMAP to a remote host", map[string]string{"SISNOTIFY_DB_URL": goodPG, "SISNOTIFY_BOUNCE_IMAP_URL": "imap://u:s3cret-pw@imap.example/INBOX?tls=none"}, []string{"migrate"}, "SISNOTIFY_BOUNCE_IMAP_URL: mailbox: tls=none is only allowed for a loopback host"},
		{"bounce mailbox without password", map[string]string{"SISNOTIFY_DB_URL": goodPG, "SISNOTIFY_BOUNCE_IMAP_URL": "imaps://bounces@imap.example/INBOX"}, []string{"migrate"}, "SISNOTIFY_BOUNCE_IMAP_URL: mailbox: IMAP URL needs a user and a password"},
		{"SIS updated_at neither trusted nor ignored", map[string]string{"SISNOTIFY_DB_URL": goodPG, "SISNOTIFY_SIS_UPDATED_AT": "yes"}, []string{"migrate"}, `SISNOTIFY_SIS_UPDATED_AT: "yes" is neither trusted nor ignored`},
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
		{"OIDC issuer without client", map[string]string{"SISNOTIFY_DB_URL": goodPG, "SISNOTIFY_OIDC_ISSUER": "https://sso.uni.example/realms/staff", "SISNOTIFY_OIDC_CLIENT_SECRET": "s3cret-pw"}, []string{"migrate"}, "SISNOTIFY_OIDC_CLIENT_ID"},
		{"OIDC issuer not a URL", map[string]string{"SISNOTIFY_DB_URL": goodPG, "SISNOTIFY_OIDC_ISSUER": "sso.uni.example", "SISNOTIFY_OIDC_CLIENT_ID": "sisnotify", "SISNOTIFY_OIDC_CLIENT_SECRET": "s3cret-pw"}, []string{"migrate"}, "SISNOTIFY_OIDC_ISSUER"},
		{"public URL not a URL", map[string]string{"SISNOTIFY_DB_URL": goodPG, "SISNOTIFY_PUBLIC_URL": "notify.uni.example"}, []string{"migrate"}, "SISNOTIFY_PUBLIC_URL"},
		{"link key too short", map[string]string{"SISNOTIFY_DB_URL": goodPG, "SISNOTIFY_PUBLIC_URL": "https://notify.uni.example", "SISNOTIFY_LINK_KEYS": "s3cret-pw"}, []string{"migrate"}, "SISNOTIFY_LINK_KEYS: key 1 of 1 is 9 bytes"},
		{"second link key too short", map[string]string{"SISNOTIFY_DB_URL": goodPG, "SISNOTIFY_PUBLIC_URL": "https://notify.uni.example", "SISNOTIFY_LINK_KEYS": strings.Repeat("s3cret-pw", 4) + ",s3cret-pw"}, []string{"migrate"}, "SISNOTIFY_LINK_KEYS: key 2 of 2"},
		{"link keys without public URL", map[string]string{"SISNOTIFY_DB_URL": goodPG, "SISNOTIFY_LINK_KEYS": strings.Repeat("s3cret-pw", 4)}, []string{"migrate"}, "SISNOTIFY_LINK_KEYS needs SISNOTIFY_PUBLIC_URL"},
		{"bad staff email", map[string]string{"SISNOTIFY_DB_URL": goodPG, "SISNOTIFY_STAFF_EMAILS": "ann@uni.example, nonsense"}, []string{"migrate"}, "SISNOTIFY_STAFF_EMAILS: entry 2"},
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

// TestLinkKeys: SISNOTIFY_LINK_KEYS is comma-separated (spaces around a
// key ignored), the first key first, also from a file; PUBLIC_URL alone
// is valid (the console's sign-in) and leaves the links off.
func TestLinkKeys(t *testing.T) {
	k1, k2 := strings.Repeat("a", 32), strings.Repeat("b", 48)
	f := filepath.Join(t.TempDir(), "link-keys")
	if err := os.WriteFile(f, []byte(k1+", "+k2+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, env := range map[string]map[string]string{
		"value": {"SISNOTIFY_LINK_KEYS": k1 + " , " + k2},
		"file":  {"SISNOTIFY_LINK_KEYS_FILE": f},
	} {
		env["SISNOTIFY_DB_URL"], env["SISNOTIFY_PUBLIC_URL"] = goodPG, "https://notify.uni.example/"
		c, err := loadConfig(envOf(env), need{db: true})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(c.LinkKeys) != 2 || string(c.LinkKeys[0]) != k1 || string(c.LinkKeys[1]) != k2 {
			t.Errorf("%s: keys = %q", name, c.LinkKeys)
		}
		if k, err := linksOf(c); err != nil || k == nil {
			t.Errorf("%s: linksOf = %v, %v", name, k, err)
		}
	}
	c, err := loadConfig(envOf(map[string]string{"SISNOTIFY_DB_URL": goodPG, "SISNOTIFY_PUBLIC_URL": "https://notify.uni.example"}), need{db: true})
	if err != nil {
		t.Fatal(err)
	}
	if k, err := linksOf(c); k != nil || err != nil {
		t.Errorf("PUBLIC_URL without keys: linksOf = %v, %v; want no links", k, err)
	}
}

func TestConfigDefaults(t *testing.T) {
	c, err := loadConfig(envOf(map[string]string{}), need{})
	if err != nil {
		t.Fatal(err)
	}
	if c.RedisURL != "redis://127.0.0.1:6379/0" || c.Redis.Single.Addr != "127.0.0.1:6379" || c.SMS.Provider != "outbox" ||
		c.QuietHours.String() != "21:00-09:00" || c.TimezoneName != "Asia/Almaty" || c.Schedule != "0 6 * * *" || c.Cron == nil ||
		c.ScheduleNote != "" || c.HTTPAddr != "127.0.0.1:8080" || c.OutboxDir != "./outbox" || c.Mail.OutboxDir != "./outbox" ||
		c.SMS.OutboxDir != "./outbox" || c.Mail.Host != "" || c.Mail.From != "International Office <international@localhost>" ||
		c.File == nil || c.File.Name != "" {
		t.Errorf("defaults: %+v", c)
	}
	if off := c.Location.String(); off != "Asia/Almaty" {
		t.Errorf("location %s", off)
	}
	// Set and empty: SMS are never held.
	c, err = loadConfig(envOf(map[string]string{"SISNOTIFY_SMS_QUIET_HOURS": ""}), need{})
	if err != nil || c.QuietHours.Enabled {
		t.Errorf("empty quiet hours = %v, %v; want never held", c.QuietHours, err)
	}
	// The ops list falls back to the office list.
	c, err = loadConfig(envOf(map[string]string{"SISNOTIFY_OFFICE_EMAILS": "a@uni.example,b@uni.example"}), need{})
	if err != nil || strings.Join(c.OpsEmails, ",") != "a@uni.example,b@uni.example" {
		t.Errorf("ops emails = %v, %v", c.OpsEmails, err)
	}
	// So does the console's staff list.
	if strings.Join(c.StaffEmails, ",") != "a@uni.example,b@uni.example" {
		t.Errorf("staff emails = %v", c.StaffEmails)
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

// The environment and the YAML file are parsed once, into typed values:
// the file's quiet hours win over the environment's, the SMTP URL is the
// mail package's Config, the schedule a cron.Schedule.
func TestConfigIsParsedOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sisnotify.yaml")
	if err := os.WriteFile(path, []byte("sms:\n  quiet_hours: \"22:30-07:00\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := loadConfig(envOf(map[string]string{
		"SISNOTIFY_CONFIG": path, "SISNOTIFY_SMS_QUIET_HOURS": "20:00-08:00",
		"SISNOTIFY_SMTP_URL": "smtps://u:s3cret-pw@mail.example:2465", "SISNOTIFY_SMS_PROVIDER": "mobizon",
		"SISNOTIFY_MOBIZON_API_KEY": "k", "SISNOTIFY_REDIS_URL": "redis://:pw@cache.example:6380/4",
	}), need{})
	if err != nil {
		t.Fatal(err)
	}
	if c.File.Name != path || c.QuietHours.String() != "22:30-07:00" {
		t.Errorf("file %q, quiet hours %v: want the file's 22:30-07:00", c.File.Name, c.QuietHours)
	}
	if c.Mail.Host != "mail.example" || c.Mail.Port != 2465 || c.Mail.Password != "s3cret-pw" {
		t.Errorf("mail config %v", c.Mail)
	}
	if c.SMS.Provider != "mobizon" || c.SMS.MobizonAPIKey != "k" || c.Redis.Single.Addr != "cache.example:6380" || c.Redis.Single.DB != 4 {
		t.Errorf("sms %v, redis %s/%d", c.SMS, c.Redis.Single.Addr, c.Redis.Single.DB)
	}
	c, err = loadConfig(envOf(map[string]string{"SISNOTIFY_SMS_QUIET_HOURS": "20:00-08:00"}), need{})
	if err != nil || c.QuietHours.String() != "20:00-08:00" {
		t.Errorf("quiet hours of the environment: %v, %v", c.QuietHours, err)
	}
}

// Every problem of the YAML file is a line of its own, naming its key,
// among the environment's, and the command exits with 2.
func TestConfigFileErrorsOneLineEach(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	bad := "sms:\n  quiet_hours: late\nfeed_guard:\n  max_roster_drop: lots\nrules:\n  no-such-rule: {}\n"
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := runCmd(t, map[string]string{"SISNOTIFY_DB_URL": goodPG, "SISNOTIFY_CONFIG": path, "SISNOTIFY_TIMEZONE": "Mars/Olympus"}, "migrate")
	if exitStatus(err) != 2 {
		t.Fatalf("err = %v, want exit 2", err)
	}
	lines := strings.Split(err.Error(), "\n")
	want := []string{"SISNOTIFY_TIMEZONE", "sms.quiet_hours", "feed_guard.max_roster_drop", "rules.no-such-rule"}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d (one per problem):\n%s", len(lines), len(want), err)
	}
	for i, l := range lines {
		if !strings.HasPrefix(l, "SISNOTIFY_") || !strings.Contains(l, want[i]) {
			t.Errorf("line %d %q does not name %s", i+1, l, want[i])
		}
		if i > 0 && !strings.HasPrefix(l, "SISNOTIFY_CONFIG: "+path+":") {
			t.Errorf("line %d %q does not name the file and its line", i+1, l)
		}
	}
}

// main prints a configuration error one problem a line, each with the
// program's name.
func TestExitCodePrintsEachProblem(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	if code := exitCode(&ConfigError{Msg: "SISNOTIFY_A: bad\nSISNOTIFY_B: worse"}, f); code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	b, _ := os.ReadFile(f.Name())
	if got, want := string(b), "sisnotify: SISNOTIFY_A: bad\nsisnotify: SISNOTIFY_B: worse\n"; got != want {
		t.Errorf("printed %q, want %q", got, want)
	}
}

// Every flag of every help page reads "-name" or "-name type": a
// backquoted word in a usage text would replace the type (`-once serve`).
func TestHelpFlagLines(t *testing.T) {
	flagLine := regexp.MustCompile(`^  -(\S+)(?: (\S+))?$`)
	types := map[string]bool{"": true, "string": true, "int": true, "int64": true, "duration": true, "value": true, "uint": true, "float": true}
	for _, args := range [][]string{{"migrate"}, {"sync"}, {"demo"}, {"run"}, {"serve"}, {"notices"}, {"notices", "retry"}} {
		out, _, err := runCmd(t, nil, append(args, "--help")...)
		if err != nil {
			t.Fatalf("%v --help: %v", args, err)
		}
		n := 0
		for _, l := range strings.Split(out, "\n") {
			if m := flagLine.FindStringSubmatch(l); m != nil {
				n++
				if !types[m[2]] {
					t.Errorf("%v --help: %q shows %q as the flag's type", args, l, m[2])
				}
			}
		}
		if n == 0 && args[0] != "migrate" {
			t.Errorf("%v --help lists no flags:\n%s", args, out)
		}
	}
	out, _, _ := runCmd(t, nil, "run", "--help")
	if !strings.Contains(out, "  -once\n") {
		t.Errorf("run --help does not show -once alone:\n%s", out)
	}
}

// A bad flag prints the usage once on stderr and the error once (main
// prints the returned error); "-help=…" is help.
func TestBadFlagPrintedOnce(t *testing.T) {
	out, stderr, err := runCmd(t, nil, "sync", "--frobnicate")
	if exitStatus(err) != 2 || !strings.Contains(err.Error(), "frobnicate") {
		t.Fatalf("err = %v, want a usage error naming the flag", err)
	}
	if strings.Contains(stderr, "frobnicate") {
		t.Errorf("stderr repeats the error, which main prints:\n%s", stderr)
	}
	if c := strings.Count(stderr, "Usage: sisnotify sync"); c != 1 || out != "" {
		t.Errorf("usage printed %d times on stderr (want 1), stdout %q", c, out)
	}
	_, stderr, err = runCmd(t, nil, "sync", "--as-of", "2026-02-30")
	if exitStatus(err) != 2 || strings.Count(err.Error()+stderr, "want YYYY-MM-DD") != 1 {
		t.Errorf("bad --as-of: %v / %q, want the error once", err, stderr)
	}
	out, _, err = runCmd(t, nil, "sync", "-help=true")
	if err != nil || !strings.Contains(out, "Usage: sisnotify sync") {
		t.Errorf("-help=true: %v, %q", err, out)
	}
}

// A Redis nobody answers on is reported naming SISNOTIFY_REDIS_URL, without
// its password.
func TestUnreachableRedisNamesTheVariable(t *testing.T) {
	db := testenv.New(t, "")
	env := map[string]string{"SISNOTIFY_DB_URL": db.URL,
		"SISNOTIFY_REDIS_URL": fmt.Sprintf("redis://:s3cret-pw@127.0.0.1:%d/3?dial_timeout=2s&max_retries=-1", testenv.FreePort(t))}
	_, _, err := runCmd(t, env, "notices", "retry")
	if err == nil || exitStatus(err) != 1 {
		t.Fatalf("notices retry without Redis: %v, want a failure (exit 1)", err)
	}
	if !strings.Contains(err.Error(), "SISNOTIFY_REDIS_URL") || !strings.Contains(err.Error(), "127.0.0.1") || strings.Contains(err.Error(), "s3cret-pw") {
		t.Errorf("error %q does not name SISNOTIFY_REDIS_URL and its host, or quotes the password", err)
	}
}

// Sentinels nobody answers on are reported the same way.
func TestUnreachableSentinelsNameTheVariable(t *testing.T) {
	db := testenv.New(t, "")
	env := map[string]string{"SISNOTIFY_DB_URL": db.URL,
		"SISNOTIFY_REDIS_URL": fmt.Sprintf("redis-sentinel://:s3cret-pw@127.0.0.1:%d,127.0.0.1:%d/3?master=mymaster", testenv.FreePort(t), testenv.FreePort(t))}
	_, _, err := runCmd(t, env, "notices", "retry")
	if err == nil || exitStatus(err) != 1 {
		t.Fatalf("notices retry without sentinels: %v, want a failure (exit 1)", err)
	}
	if !strings.Contains(err.Error(), "SISNOTIFY_REDIS_URL") || !strings.Contains(err.Error(), "redis-sentinel://:xxxxx@127.0.0.1:") || strings.Contains(err.Error(), "s3cret-pw") {
		t.Errorf("error %q does not name SISNOTIFY_REDIS_URL and its sentinels, or quotes the password", err)
	}
}

// run --once with Redis away fails before its deliveries (exit 1), naming
// SISNOTIFY_REDIS_URL without its password.
func TestRunOnceWithoutRedisNamesTheVariable(t *testing.T) {
	sisDB, db := testenv.New(t, ""), testenv.New(t, "")
	s := sisDB.Open(t)
	// One student who entered that day: the night has notices to queue.
	if _, err := s.Exec(sis.ReferenceSchema + `
		INSERT INTO sis.faculties VALUES ('ENG', 'Engineering', 'Dean', 'dean@uni.example', 'en');
		INSERT INTO sis.students (student_id, given_name, family_name, email, preferred_language, visa_regime, faculty_id, enrollment_status, entered_on)
		VALUES ('K00001', 'Given', 'Family', 'student@student.example', 'en', 'visa', 'ENG', 'active', '2026-11-25')`); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SISNOTIFY_SIS_URL": sisDB.URL, "SISNOTIFY_DB_URL": db.URL, "SISNOTIFY_OFFICE_EMAILS": "office@uni.example",
		"SISNOTIFY_OUTBOX_DIR": t.TempDir(), "SISNOTIFY_REDIS_URL": fmt.Sprintf("redis://:s3cret-pw@127.0.0.1:%d/3", testenv.FreePort(t))}
	_, _, err := runCmd(t, env, "run", "--once", "--as-of", "2026-11-25")
	if exitStatus(err) != 1 || !strings.Contains(err.Error(), "cannot reach Redis at redis://:xxxxx@127.0.0.1:") ||
		!strings.Contains(err.Error(), "(SISNOTIFY_REDIS_URL)") || strings.Contains(err.Error(), "s3cret-pw") {
		t.Fatalf("run --once without Redis: %v (exit %d); want exit 1 naming SISNOTIFY_REDIS_URL, its password hidden", err, exitStatus(err))
	}
}

// A night runs at most once a day, whatever the schedule: a schedule that
// activates more often is accepted (replicas are tested on @every 15s)
// and serve says what it does.
func TestScheduleMoreThanDaily(t *testing.T) {
	for spec, sub := range map[string]bool{
		"0 6 * * *": false, "30 2 * * 1-5": false, "0 6 1 * *": false, "@daily": false,
		"@every 1h": true, "@every 15s": true, "0 6,18 * * *": true, "*/30 * * * *": true, "0 6,7 1 * *": true,
	} {
		c, err := loadConfig(envOf(map[string]string{"SISNOTIFY_SCHEDULE": spec}), need{})
		if err != nil {
			t.Fatalf("%s: %v", spec, err)
		}
		if (c.ScheduleNote != "") != sub || sub && !strings.Contains(c.ScheduleNote, "at most once a day") {
			t.Errorf("%s: note %q", spec, c.ScheduleNote)
		}
	}
	env := map[string]string{"SISNOTIFY_SIS_URL": goodPG, "SISNOTIFY_DB_URL": "postgres://postgres@127.0.0.1:1/x?sslmode=disable&connect_timeout=2",
		"SISNOTIFY_OFFICE_EMAILS": "office@uni.example", "SISNOTIFY_SCHEDULE": "@every 1h"}
	_, stderr, err := runCmd(t, env, "serve")
	if err == nil || !strings.Contains(stderr, `SISNOTIFY_SCHEDULE "@every 1h" activates more than once a day`) {
		t.Errorf("serve on @every 1h: %v, stderr %q: want the note", err, stderr)
	}
}
