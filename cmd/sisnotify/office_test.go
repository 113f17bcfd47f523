package main

import (
	"encoding/json"
	"html"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/iec-almaty/sisnotify/integrations/mail/mailtest"
	"github.com/iec-almaty/sisnotify/integrations/testenv"
	"github.com/iec-almaty/sisnotify/jobs/config"
)

// testOfficeYAML is the office of the tests' sending nights: a night that
// sends refuses to start without the university, phone, address and hours.
const testOfficeYAML = `office:
  university: Test University
  name: International Office
  address: "Room 112, 1 Test Street, Almaty"
  hours: "Mon-Fri 09:00-18:00"
  phone: "+7 727 355 05 67"
  email: io@uni.example
`

// noWelcomeYAML switches welcome off: the fault, crash and replica tests
// count the deliveries of entrants' arrival notices, and were written
// before welcome added one email per entrant. welcome itself is tested
// by the rules' and the night's tests, with the built-in configuration.
const noWelcomeYAML = `rules:
  welcome:
    enabled: false
`

// configFile writes a configuration file once for the package's tests
// (in-process and binaries alike) and returns its path.
type configFile struct {
	yaml string
	once sync.Once
	path string
	err  error
}

func (c *configFile) get(t testing.TB) string {
	t.Helper()
	c.once.Do(func() {
		dir, err := os.MkdirTemp("", "sisnotify-office")
		if err != nil {
			c.err = err
			return
		}
		c.path = filepath.Join(dir, "sisnotify.yaml")
		c.err = os.WriteFile(c.path, []byte(c.yaml), 0o600)
	})
	if c.err != nil {
		t.Fatal(c.err)
	}
	return c.path
}

var (
	officeFile          = &configFile{yaml: testOfficeYAML}
	officeNoWelcomeFile = &configFile{yaml: testOfficeYAML + noWelcomeYAML}
)

// officeConfig is the path of a configuration file holding testOfficeYAML.
func officeConfig(t testing.TB) string { return officeFile.get(t) }

// withCountedOffice is withOffice with welcome switched off
// (noWelcomeYAML), for the tests that count every delivery of a night.
func withCountedOffice(t testing.TB, env []string) []string {
	t.Helper()
	return append(env, "SISNOTIFY_CONFIG="+officeNoWelcomeFile.get(t))
}

// withOffice is env (KEY=value, as exec.Cmd takes it) with the tests'
// office configuration, unless env names a configuration of its own.
func withOffice(t testing.TB, env []string) []string {
	t.Helper()
	for _, kv := range env {
		if strings.HasPrefix(kv, "SISNOTIFY_CONFIG=") {
			return env
		}
	}
	return append(env, "SISNOTIFY_CONFIG="+officeConfig(t))
}

// withOfficeMap is withOffice for the map of runCmd; env is not modified.
func withOfficeMap(t testing.TB, env map[string]string) map[string]string {
	t.Helper()
	if _, ok := env["SISNOTIFY_CONFIG"]; ok {
		return env
	}
	out := make(map[string]string, len(env)+1)
	for k, v := range env {
		out[k] = v
	}
	out["SISNOTIFY_CONFIG"] = officeConfig(t)
	return out
}

// A night that sends refuses to start without the office's phone, address,
// hours and university: exit status 2, one line per missing key, naming
// it as the YAML file writes it. The dry run does not need them.
func TestSendingNightNeedsTheOffice(t *testing.T) {
	partial := filepath.Join(t.TempDir(), "partial.yaml")
	if err := os.WriteFile(partial, []byte("office:\n  university: Test University\n  address: Room 112\n  hours: 9-18\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// No database is reached: the check comes first.
	base := map[string]string{"SISNOTIFY_SIS_URL": goodPG, "SISNOTIFY_DB_URL": goodPG, "SISNOTIFY_OFFICE_EMAILS": "office@uni.example"}
	for _, c := range []struct {
		name, config string
		want         []string
	}{
		{"no configuration file", "", []string{"office.phone", "office.address", "office.hours", "office.university"}},
		{"a file without the phone", partial, []string{"office.phone"}},
	} {
		for _, args := range [][]string{{"run", "--once"}, {"serve"}} {
			t.Run(c.name+"/"+args[0], func(t *testing.T) {
				env := secWith(base, "SISNOTIFY_CONFIG", c.config)
				_, _, err := runCmd(t, env, args...)
				if exitStatus(err) != 2 {
					t.Fatalf("%v: exit %d (%v), want 2", args, exitStatus(err), err)
				}
				lines := strings.Split(err.Error(), "\n")
				if len(lines) != len(c.want) {
					t.Errorf("%d lines, want one per missing key %v:\n%s", len(lines), c.want, err)
				}
				for i, k := range c.want {
					if i < len(lines) && (!strings.HasPrefix(lines[i], "SISNOTIFY_CONFIG: "+k+" ") || !strings.Contains(lines[i], "required")) {
						t.Errorf("line %d %q does not name %s as required", i+1, lines[i], k)
					}
				}
			})
		}
	}
	// The dry run goes on without them (and fails only later, at the
	// database nobody listens on).
	env := secWith(secWith(base, "SISNOTIFY_CONFIG", ""), "SISNOTIFY_DB_URL", "postgres://postgres@127.0.0.1:1/x?sslmode=disable&connect_timeout=2")
	_, _, err := runCmd(t, env, "run", "--once", "--dry-run")
	if err == nil || exitStatus(err) == 2 || strings.Contains(err.Error(), "office.") {
		t.Errorf("dry run without the office: %v, want it past the configuration (a connection error)", err)
	}
}

// The demo's notices are complete without a configured office: fictitious
// example details, plainly marked, in every email and SMS.
func TestDemoNoticesCarryAnExampleOffice(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a demo night")
	}
	outbox := t.TempDir()
	env := map[string]string{
		"SISNOTIFY_SIS_URL":         testenv.New(t, "").URL,
		"SISNOTIFY_DB_URL":          testenv.New(t, "").URL,
		"SISNOTIFY_REDIS_URL":       testenv.Redis(t, redisDB),
		"SISNOTIFY_OUTBOX_DIR":      outbox,
		"SISNOTIFY_SMS_QUIET_HOURS": "",
		"SISNOTIFY_CONFIG":          "", // no office configured
	}
	out, errOut, err := runCmd(t, env, "demo", "--students", "300", "--seed", "7", "--as-of", "2026-11-25")
	if err != nil {
		t.Fatalf("demo: %v\n%s\n%s", err, out, errOut)
	}
	if !strings.Contains(out, "fictitious") {
		t.Errorf("the demo does not say its office details are fictitious:\n%s", out)
	}
	files, _ := filepath.Glob(filepath.Join(outbox, "*.eml"))
	if len(files) < 3 {
		t.Fatalf("%d emails in the outbox, want a demo night's", len(files))
	}
	students := 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		msg := decodeEmail(t, raw)
		if msg.audience != "student" {
			continue
		}
		students++
		for _, want := range []string{demoOffice.Address, demoOffice.Phone, demoOffice.Hours} {
			if !strings.Contains(msg.text, want) || !strings.Contains(msg.html, want) {
				t.Errorf("%s (%s): no %q in its text and HTML", filepath.Base(f), msg.rule, want)
				break
			}
		}
	}
	if students == 0 {
		t.Fatal("no student email in the demo's outbox")
	}
	raw, err := os.ReadFile(filepath.Join(outbox, "sms.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	for _, l := range lines {
		var m struct{ Text string }
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		compact := strings.ReplaceAll(m.Text, " ", "")
		if !strings.HasPrefix(m.Text, demoOffice.University) || !strings.HasSuffix(compact, strings.ReplaceAll(demoOffice.Phone, " ", "")) {
			t.Errorf("SMS %q: want it to start with %q and end with %q", m.Text, demoOffice.University, demoOffice.Phone)
			break
		}
	}
}

// A configured detail wins over the demo's example.
func TestFillDemoOfficeKeepsWhatIsConfigured(t *testing.T) {
	o := config.Default().Office
	o.Phone = "+7 727 355 05 67"
	filled := fillDemoOffice(&o)
	if o.Phone != "+7 727 355 05 67" || o.Name != "International Office" || o.Address != demoOffice.Address || o.University != demoOffice.University {
		t.Errorf("filled office %+v", o)
	}
	if strings.Join(filled, ",") != "office.university,office.address,office.hours,office.email" {
		t.Errorf("filled %v", filled)
	}
	if len(o.Missing()) != 0 {
		t.Errorf("a demo office still misses %v", o.Missing())
	}
}

// decodedEmail is an outbox email as its reader sees it.
type decodedEmail struct {
	rule, audience, text, html string
}

// decodeEmail reads an .eml of the outbox: its sisnotify headers and its
// text and HTML parts, decoded (HTML unescaped).
func decodeEmail(t *testing.T, raw []byte) decodedEmail {
	t.Helper()
	m := mailtest.Message{Data: raw}
	if _, err := m.Parts(); err != nil {
		t.Fatal(err)
	}
	return decodedEmail{rule: m.Header("X-Sisnotify-Rule"), audience: m.Header("X-Sisnotify-Audience"),
		text: m.Text(), html: html.UnescapeString(m.HTML())}
}

// `docker compose up` starts serve, which needs the office: the compose
// file mounts a configuration that gives it.
func TestComposeConfigurationHasTheOffice(t *testing.T) {
	raw, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"SISNOTIFY_CONFIG: /etc/sisnotify/sisnotify.yaml", "./deploy/sisnotify.yaml:/etc/sisnotify/sisnotify.yaml:ro"} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("docker-compose.yml lacks %s", want)
		}
	}
	f, err := config.Load("../../deploy/sisnotify.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if m := f.Office.Missing(); len(m) != 0 {
		t.Errorf("deploy/sisnotify.yaml misses %v", m)
	}
}
