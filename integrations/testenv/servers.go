package testenv

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Servers of a test's own, for the tests that break them on purpose (a
// Redis killed mid-night, a PostgreSQL restarted): the shared servers are
// never touched that way.

// RedisServer is a redis-server process of the test's own, without
// persistence: killed and started again on the same port it comes back
// empty, as a Redis without AOF does after a crash.
type RedisServer struct {
	tb   testing.TB
	bin  string
	port int
	dir  string
	args []string    // more arguments of redis-server (a replica's --replicaof)
	tls  *tls.Config // a server that speaks only TLS (StartRedisTLS)
	mu   sync.Mutex
	cmd  *exec.Cmd
}

// HaveRedisServer reports whether redis-server is installed.
func HaveRedisServer() bool {
	_, err := exec.LookPath("redis-server")
	return err == nil
}

// StartRedis starts a redis-server on a free port of 127.0.0.1, killed
// when the test ends; the test is skipped when redis-server is not
// installed (apt-get install redis-server).
func StartRedis(tb testing.TB) *RedisServer {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Skip("redis-server is not installed (apt-get install redis-server)")
	}
	r := &RedisServer{tb: tb, bin: bin, port: FreePort(tb), dir: tb.TempDir()}
	r.Start()
	tb.Cleanup(r.Kill)
	return r
}

// URL is database db of the server.
func (r *RedisServer) URL(db int) string {
	if r.tls != nil {
		return fmt.Sprintf("rediss://127.0.0.1:%d/%d", r.port, db)
	}
	return fmt.Sprintf("redis://127.0.0.1:%d/%d", r.port, db)
}

// Start runs the server and waits (10 s at most) until it answers.
func (r *RedisServer) Start() {
	r.tb.Helper()
	args := append([]string{"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--daemonize", "no", "--dir", r.dir}, r.args...)
	cmd := exec.Command(r.bin, args...)
	if err := cmd.Start(); err != nil {
		r.tb.Fatal(err)
	}
	r.mu.Lock()
	r.cmd = cmd
	r.mu.Unlock()
	c := redis.NewClient(&redis.Options{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)), MaxRetries: -1, TLSConfig: r.tls})
	defer c.Close()
	for deadline := time.Now().Add(10 * time.Second); c.Ping(context.Background()).Err() != nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			r.tb.Fatalf("redis-server on port %d did not answer in 10 s", r.port)
		}
	}
}

// Kill SIGKILLs the server: it dies with everything it held.
func (r *RedisServer) Kill() {
	r.mu.Lock()
	cmd := r.cmd
	r.cmd = nil
	r.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
}

// PostgresServer is a PostgreSQL cluster of the test's own (initdb into a
// temporary folder), so that the test can restart it.
type PostgresServer struct {
	bin    string   // the folder of initdb and pg_ctl
	as     []string // runuser -u postgres -- when the test runs as root
	data   string
	socket string
	logf   string
	port   int
}

// StartPostgres creates and starts a cluster (trust authentication, user
// postgres) on a free port of 127.0.0.1, stopped when the test ends; the
// test is skipped when the server's binaries are not installed
// (apt-get install postgresql).
func StartPostgres(tb testing.TB) *PostgresServer {
	tb.Helper()
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if path, err := exec.LookPath("initdb"); err == nil {
		found = append(found, path)
	}
	if len(found) == 0 {
		tb.Skip("no PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql/*/bin or on PATH: apt-get install postgresql")
	}
	// The newest version: /usr/lib/postgresql/<major>/bin.
	sort.Slice(found, func(i, j int) bool { return pgMajor(found[i]) < pgMajor(found[j]) })
	p := &PostgresServer{bin: filepath.Dir(found[len(found)-1]), port: FreePort(tb)}
	base := tb.TempDir()
	if os.Geteuid() == 0 {
		// initdb refuses to run as root: run the cluster as the postgres
		// user, in a folder it owns, under parents it may traverse.
		u, err := user.Lookup("postgres")
		if err != nil {
			tb.Skip("running as root and there is no postgres user to run initdb as")
		}
		if _, err := exec.LookPath("runuser"); err != nil {
			tb.Skip("running as root without runuser to run initdb as postgres")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for _, d := range []string{filepath.Dir(base), base} {
			if err := os.Chmod(d, 0o755); err != nil {
				tb.Fatal(err)
			}
		}
		if err := os.Chown(base, uid, gid); err != nil {
			tb.Fatal(err)
		}
		p.as = []string{"runuser", "-u", "postgres", "--"}
	}
	p.data, p.socket, p.logf = filepath.Join(base, "data"), base, filepath.Join(base, "postgres.log")
	if out, err := p.command(time.Minute, filepath.Join(p.bin, "initdb"), "-D", p.data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"); err != nil {
		tb.Fatalf("initdb: %v\n%s", err, out)
	}
	if out, err := p.Ctl("start"); err != nil {
		tb.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, p.Log())
	}
	tb.Cleanup(func() { _, _ = p.Ctl("stop", "-m", "immediate") })
	return p
}

func pgMajor(initdb string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(filepath.Dir(initdb))), 64)
	return v
}

// URL is the cluster's postgres database.
func (p *PostgresServer) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.port)
}

// Ctl runs pg_ctl (start, stop, restart, …) with the cluster's folder,
// port and socket; start and restart wait (30 s at most) until the server
// accepts connections.
func (p *PostgresServer) Ctl(args ...string) (string, error) {
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", p.port, p.socket)
	args = append(args, "-D", p.data, "-l", p.logf, "-w", "-t", "30", "-o", opts)
	return p.command(time.Minute, filepath.Join(p.bin, "pg_ctl"), args...)
}

func (p *PostgresServer) command(limit time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	argv := append(append(append([]string{}, p.as...), name), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = os.TempDir() // a folder the postgres user may enter
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Log is the end of the server's log.
func (p *PostgresServer) Log() string {
	b, _ := os.ReadFile(p.logf)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}
