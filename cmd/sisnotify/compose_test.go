package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"go.yaml.in/yaml/v3"

	"github.com/iec-almaty/sisnotify/integrations/mail/mailtest"
	"github.com/iec-almaty/sisnotify/integrations/testenv"
)

// The compose file is what operators start from: Docker must accept it, and
// it must keep the properties the design promises.
func TestComposeFile(t *testing.T) {
	raw, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	for _, want := range []string{
		`"--appendonly", "yes"`, `"--maxmemory-policy", "noeviction"`, // Redis keeps its queues
		"axllent/mailpit", `command: ["serve"]`, "SISNOTIFY_SIS_URL: postgres://sis_reader:", // a read-only SIS role
		"SISNOTIFY_HTTP_PASSWORD_FILE", // secrets as files
	} {
		if !strings.Contains(s, want) {
			t.Errorf("docker-compose.yml lacks %s", want)
		}
	}
	var cmd *exec.Cmd
	switch {
	case exec.Command("docker", "compose", "version").Run() == nil:
		cmd = exec.Command("docker", "compose", "-f", "../../docker-compose.yml", "config", "-q")
	default:
		path, err := exec.LookPath("docker-compose")
		if err != nil {
			t.Skip("neither `docker compose` nor docker-compose is installed (.ci/run installs docker-compose)")
		}
		cmd = exec.Command(path, "-f", "../../docker-compose.yml", "config", "-q")
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	}
}

// composeFile is what TestComposeUpRunsTheServices reads of
// docker-compose.yml.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Secrets  map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
}

type composeService struct {
	Image       string    `yaml:"image"`
	Build       string    `yaml:"build"`
	Command     []string  `yaml:"command"`
	Environment yaml.Node `yaml:"environment"`
	Volumes     []string  `yaml:"volumes"`
	Secrets     []string  `yaml:"secrets"`
	NetworkMode string    `yaml:"network_mode"`
	Restart     string    `yaml:"restart"`
	DependsOn   yaml.Node `yaml:"depends_on"`
}

// env is the service's environment, in either of compose's two forms.
func (s composeService) env(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	switch n := s.Environment; n.Kind {
	case 0:
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			out[n.Content[i].Value] = n.Content[i+1].Value
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			k, v, _ := strings.Cut(c.Value, "=")
			out[k] = v
		}
	default:
		t.Fatalf("docker-compose.yml: environment at line %d is neither a map nor a list", n.Line)
	}
	return out
}

// dependsOn is each service this one waits for, with its condition.
func (s composeService) dependsOn(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	switch n := s.DependsOn; n.Kind {
	case 0:
	case yaml.SequenceNode:
		for _, c := range n.Content {
			out[c.Value] = "service_started"
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			cond := "service_started"
			v := n.Content[i+1]
			for j := 0; j+1 < len(v.Content); j += 2 {
				if v.Content[j].Value == "condition" {
					cond = v.Content[j+1].Value
				}
			}
			out[n.Content[i].Value] = cond
		}
	default:
		t.Fatalf("docker-compose.yml: depends_on at line %d is neither a map nor a list", n.Line)
	}
	return out
}

// composeOrder is the order in which `docker compose up` starts the
// services: every one after those it depends on (ties by name).
func composeOrder(t *testing.T, services map[string]composeService) []string {
	t.Helper()
	var order []string
	done := map[string]bool{}
	for len(order) < len(services) {
		var ready []string
		for name, s := range services {
			if done[name] {
				continue
			}
			ok := true
			for dep := range s.dependsOn(t) {
				if _, known := services[dep]; !known {
					t.Fatalf("docker-compose.yml: %s depends on %s, which is not a service", name, dep)
				}
				ok = ok && done[dep]
			}
			if ok {
				ready = append(ready, name)
			}
		}
		if len(ready) == 0 {
			t.Fatal("docker-compose.yml: the services' depends_on form a cycle")
		}
		sort.Strings(ready)
		for _, name := range ready {
			done[name] = true
		}
		order = append(order, ready...)
	}
	return order
}

// composeWorld stands in for what Docker gives the services: the compose
// network's host names, each container's file system (bind mounts, named
// volumes, secrets) and its loopback, which only the containers of one
// network namespace share.
type composeWorld struct {
	t     *testing.T
	file  composeFile
	admin *sqlx.DB
	pg    string            // host:port of the PostgreSQL that stands for the postgres service
	hosts map[string]string // compose host:port (or loopback address of a namespace) -> local address
	roles map[string]string // role in the compose file -> throwaway role
	dbs   map[string]string // database in the compose file -> throwaway database
	redis string            // a Redis database of the test's own
	vols  map[string]string // named volume -> directory
	smtp  *mailtest.Server
	// closed is an address nothing listens on: a container's loopback,
	// where the compose file starts nothing.
	closed string
}

// TestComposeUpRunsTheServices runs docker-compose.yml's services the way
// `docker compose up` does, without Docker: in dependency order, each
// sisnotify service with its own command and only its own environment,
// the compose host names pointed at the local PostgreSQL (throwaway roles
// and databases made by deploy/postgres-init.sql), Redis and an in-process
// SMTP server for Mailpit. A one-shot service must exit 0 (the worker
// waits for service_completed_successfully); the worker must become ready,
// run the night it catches up on, mail the office and stop cleanly.
func TestComposeUpRunsTheServices(t *testing.T) {
	testenv.Long(t, "runs the compose file's services over a demo night")
	raw, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	w := &composeWorld{t: t, hosts: map[string]string{}, roles: map[string]string{}, dbs: map[string]string{}, vols: map[string]string{}}
	if err := yaml.Unmarshal(raw, &w.file); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	w.closed = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	// A container's own loopback has no PostgreSQL: the demo's built-in
	// local databases are not there.
	oldSIS, oldDB := demoSISURL, demoDBURL
	demoSISURL = "postgres://postgres@" + w.closed + "/sisnotify_demo_sis?sslmode=disable&connect_timeout=5"
	demoDBURL = "postgres://postgres@" + w.closed + "/sisnotify_demo?sslmode=disable&connect_timeout=5"
	t.Cleanup(func() { demoSISURL, demoDBURL = oldSIS, oldDB })

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type running struct {
		name   string
		done   chan error
		stderr *lockedBuffer
		env    map[string]string
	}
	// The images first: Mailpit starts after the worker in compose (it
	// joins its network namespace), and the night's first emails would
	// wait a minute for their retry.
	order := composeOrder(t, w.file.Services)
	for _, name := range order {
		if s := w.file.Services[name]; s.Build == "" {
			w.provide(name, s)
		}
	}
	var workers []*running
	for _, name := range order {
		s := w.file.Services[name]
		if s.Build == "" {
			continue
		}
		env, args := w.env(name, s), w.args(s)
		t.Logf("%s: sisnotify %s", name, strings.Join(args, " "))
		if s.Restart == "no" { // a one-shot service: the next ones wait for it to succeed
			var out, errb bytes.Buffer
			if err := run(ctx, args, composeLookup(env), &out, &errb); err != nil {
				t.Fatalf("service %s (sisnotify %s) failed, so `docker compose up` starts nothing that waits for it: %v\n%s%s",
					name, strings.Join(args, " "), err, out.String(), errb.String())
			}
			continue
		}
		r := &running{name: name, done: make(chan error, 1), stderr: &lockedBuffer{}, env: env}
		go func() { r.done <- run(ctx, args, composeLookup(env), io.Discard, r.stderr) }()
		workers = append(workers, r)
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("%s's log:\n%s", r.name, r.stderr.String())
			}
		})
		addr := env["SISNOTIFY_HTTP_ADDR"]
		waitFor(t, name+" to be ready", time.Minute, func() bool {
			select {
			case err := <-r.done:
				t.Fatalf("service %s exited: %v\n%s", name, err, r.stderr.String())
			default:
			}
			resp, err := http.Get("http://" + addr + "/readyz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
	}
	if len(workers) != 1 {
		t.Fatalf("docker-compose.yml runs %d long-running sisnotify services, want the worker", len(workers))
	}
	r := workers[0]

	// The worker catches up on tonight's night over the demo SIS and mails
	// the office through Mailpit.
	wdb := testenv.Database{URL: w.pgURL(r.env["SISNOTIFY_DB_URL"])}.Open(t)
	var status string
	waitFor(t, "the worker's night", 2*time.Minute, func() bool {
		select {
		case err := <-r.done:
			t.Fatalf("service %s exited: %v\n%s", r.name, err, r.stderr.String())
		default:
		}
		_ = wdb.Get(&status, `SELECT status FROM sisnotify.nights ORDER BY night DESC LIMIT 1`)
		return status == "ok" || status == "failed"
	})
	if status != "ok" {
		t.Fatalf("the worker's night: %s\n%s", status, r.stderr.String())
	}
	var notices, digests int
	if err := wdb.QueryRow(`SELECT (SELECT count(*) FROM sisnotify.notices), (SELECT count(*) FROM sisnotify.digests WHERE status = 'sent')`).Scan(&notices, &digests); err != nil {
		t.Fatal(err)
	}
	if notices == 0 || digests == 0 || w.smtp.Count() == 0 {
		t.Fatalf("the night created %d notices and sent %d digests; Mailpit received %d emails", notices, digests, w.smtp.Count())
	}
	office := r.env["SISNOTIFY_OFFICE_EMAILS"]
	if !slices.ContainsFunc(w.smtp.Messages(), func(m mailtest.Message) bool { return slices.Contains(m.To, office) }) {
		t.Errorf("no email to the office (%s) reached Mailpit", office)
	}

	// The monitoring UI answers with the password of the compose secret.
	pw, err := os.ReadFile(r.env["SISNOTIFY_HTTP_PASSWORD_FILE"])
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", "http://"+r.env["SISNOTIFY_HTTP_ADDR"]+"/monitoring/", nil)
	req.SetBasicAuth(r.env["SISNOTIFY_HTTP_USER"], strings.TrimSpace(string(pw)))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("GET /monitoring/ as %s: %v %v", r.env["SISNOTIFY_HTTP_USER"], resp, err)
	} else {
		resp.Body.Close()
	}

	// `docker compose down`: SIGTERM, exit 0.
	cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("%s exited with %v when stopped, want 0\n%s", r.name, err, r.stderr.String())
		}
	case <-time.After(45 * time.Second):
		t.Fatalf("%s did not stop within 45 s", r.name)
	}
}

func composeLookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

// provide stands in for an image service: PostgreSQL (its init scripts
// run on throwaway roles and databases), Redis and Mailpit.
func (w *composeWorld) provide(name string, s composeService) {
	t := w.t
	t.Helper()
	image := s.Image
	switch {
	case strings.HasPrefix(image, "postgres:"):
		u, err := url.Parse(testenv.AdminURL())
		if err != nil {
			t.Fatal(err)
		}
		w.pg = u.Host
		w.hosts[name+":5432"] = u.Host
		w.roles["postgres"] = u.User.Username() // the image's superuser
		w.admin = testenv.Database{URL: testenv.AdminURL()}.Open(t)
		for _, v := range s.Volumes {
			parts := strings.Split(v, ":")
			if len(parts) > 1 && strings.HasPrefix(parts[1], "/docker-entrypoint-initdb.d/") && strings.HasSuffix(parts[1], ".sql") {
				w.initPostgres(filepath.Join("../..", parts[0]))
			}
		}
	case strings.HasPrefix(image, "redis:"):
		w.redis = testenv.Redis(t, redisDB)
		w.hosts[name+":6379"] = strings.TrimPrefix(testenv.RedisURL(), "redis://")
	case strings.HasPrefix(image, "axllent/mailpit"):
		w.smtp = mailtest.NewServer(t)
		bind := s.env(t)["MP_SMTP_BIND_ADDR"]
		if bind == "" {
			bind = "0.0.0.0:1025"
		}
		ns := name // whose loopback it listens on
		if m, ok := strings.CutPrefix(s.NetworkMode, "service:"); ok {
			ns = m
		}
		_, port, _ := net.SplitHostPort(bind)
		w.hosts[ns+"/127.0.0.1:"+port] = w.smtp.Addr()
		w.hosts[name+":"+port] = w.smtp.Addr()
	default:
		t.Fatalf("docker-compose.yml: no stand-in for service %s (image %s): teach TestComposeUpRunsTheServices about it", name, image)
	}
}

// initPostgres runs an init script of the postgres image: its roles and
// databases are made under throwaway names (dropped at cleanup).
func (w *composeWorld) initPostgres(path string) {
	t := w.t
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "--") {
			lines = append(lines, l)
		}
	}
	createRole := regexp.MustCompile(`(?i)^CREATE ROLE (\w+)`)
	createDB := regexp.MustCompile(`(?i)^CREATE DATABASE (\w+)(?: OWNER (\w+))?$`)
	onDB := regexp.MustCompile(`(?i)(DATABASE\s+)(\w+)`)
	for _, stmt := range strings.Split(strings.Join(lines, "\n"), ";") {
		stmt = strings.Join(strings.Fields(stmt), " ")
		if stmt == "" {
			continue
		}
		if m := createRole.FindStringSubmatch(stmt); m != nil {
			w.roles[m[1]] = testenv.CreateRole(t, w.admin, "compose_"+m[1])
			continue
		}
		if m := createDB.FindStringSubmatch(stmt); m != nil {
			db, err := testenv.Create(context.Background(), "compose_"+m[1], "")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = testenv.Drop(context.Background(), db.Name) })
			w.dbs[m[1]] = db.Name
			if m[2] != "" {
				if _, err := w.admin.Exec(`ALTER DATABASE "` + db.Name + `" OWNER TO "` + w.role(m[2]) + `"`); err != nil {
					t.Fatalf("%s: %v", path, err)
				}
			}
			continue
		}
		stmt = onDB.ReplaceAllStringFunc(stmt, func(s string) string {
			m := onDB.FindStringSubmatch(s)
			return m[1] + `"` + w.db(m[2]) + `"`
		})
		for from, to := range w.roles {
			stmt = regexp.MustCompile(`\b`+from+`\b`).ReplaceAllString(stmt, `"`+to+`"`)
		}
		if _, err := w.admin.Exec(stmt); err != nil {
			t.Fatalf("%s: %s: %v", path, stmt, err)
		}
	}
}

func (w *composeWorld) role(name string) string {
	if r, ok := w.roles[name]; ok {
		return r
	}
	w.t.Fatalf("docker-compose.yml names role %s, which nothing creates", name)
	return ""
}

func (w *composeWorld) db(name string) string {
	if d, ok := w.dbs[name]; ok {
		return d
	}
	w.t.Fatalf("docker-compose.yml names database %s, which nothing creates", name)
	return ""
}

// env is the environment of sisnotify service name, as the process in its
// container would reach things: host names, its loopback, its files.
func (w *composeWorld) env(name string, s composeService) map[string]string {
	t := w.t
	files := map[string]string{} // path in the container -> local path
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 {
			t.Fatalf("docker-compose.yml: %s: volume %q without a path in the container", name, v)
		}
		if strings.HasPrefix(parts[0], ".") || strings.HasPrefix(parts[0], "/") {
			files[parts[1]] = filepath.Join("../..", parts[0])
			continue
		}
		if w.vols[parts[0]] == "" {
			w.vols[parts[0]] = t.TempDir()
		}
		files[parts[1]] = w.vols[parts[0]]
	}
	for _, sec := range s.Secrets {
		f, ok := w.file.Secrets[sec]
		if !ok {
			t.Fatalf("docker-compose.yml: %s uses secret %s, which is not declared", name, sec)
		}
		files["/run/secrets/"+sec] = filepath.Join("../..", f.File)
	}
	out := map[string]string{}
	for k, v := range s.env(t) {
		switch {
		case strings.HasPrefix(v, "postgres://"):
			v = w.pgEnvURL(name, v)
		case strings.HasPrefix(v, "redis://"):
			u, err := url.Parse(v)
			if err != nil || w.hosts[u.Host] == "" {
				t.Fatalf("%s: %s names Redis at %q, which compose does not run", name, k, u.Host)
			}
			v = w.redis
		case strings.HasPrefix(v, "smtp://"):
			u, err := url.Parse(v)
			if err != nil {
				t.Fatal(err)
			}
			u.Host = w.addr(name, u.Host)
			v = u.String()
		case strings.HasPrefix(v, "0.0.0.0:"): // a listening address
			v = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
		case strings.HasPrefix(v, "/"):
			mounted := false
			for ctr, local := range files {
				if !mounted && (v == ctr || strings.HasPrefix(v, ctr+"/")) {
					v, mounted = local+strings.TrimPrefix(v, ctr), true
				}
			}
			if !mounted {
				t.Fatalf("%s: %s=%s is not a file that compose mounts", name, k, v)
			}
		}
		out[k] = v
	}
	return out
}

// addr is where host:port, as service name reaches it, is here.
func (w *composeWorld) addr(name, hostport string) string {
	host, _, _ := net.SplitHostPort(hostport)
	if host == "127.0.0.1" || host == "localhost" || host == "::1" {
		if a, ok := w.hosts[name+"/127.0.0.1:"+strings.TrimPrefix(hostport, host+":")]; ok {
			return a
		}
		return w.closed
	}
	if a, ok := w.hosts[hostport]; ok {
		return a
	}
	w.t.Fatalf("%s reaches %s, which compose does not run", name, hostport)
	return ""
}

// pgEnvURL is a PostgreSQL URL of the compose file pointed at the
// throwaway roles and databases.
func (w *composeWorld) pgEnvURL(name, raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		w.t.Fatalf("%s: %v", name, err)
	}
	u.Host = w.addr(name, u.Host)
	if u.Host != w.closed {
		pw, _ := u.User.Password()
		u.User = url.UserPassword(w.role(u.User.Username()), pw)
		u.Path = "/" + w.db(strings.TrimPrefix(u.Path, "/"))
	}
	return u.String()
}

// pgURL is a URL the test itself connects with (as the admin user).
func (w *composeWorld) pgURL(envURL string) string {
	u, err := url.Parse(envURL)
	if err != nil {
		w.t.Fatal(err)
	}
	return testenv.URLFor(strings.TrimPrefix(u.Path, "/"), "")
}

// args is the service's command with the compose file's role names made
// the throwaway ones.
func (w *composeWorld) args(s composeService) []string {
	out := slices.Clone(s.Command)
	for i, a := range out {
		if r, ok := w.roles[a]; ok && a != "postgres" {
			out[i] = r
		}
	}
	return out
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
