// Package testenv gives tests real PostgreSQL databases and Redis database
// numbers of their own, so test packages run in parallel, and on a shared
// machine, without stepping on each other.
//
// Every database it creates is named sisnotify_test_<unix time>_<pid>_<n>_<name>,
// and dropped when the test (or, for NewTemplate, the package) ends. A run
// that crashed leaves its databases behind; `go run ./cmd/testdb clean`
// drops those older than an hour.
//
// The servers come from SISNOTIFY_TEST_PG_URL (default
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable) and
// SISNOTIFY_TEST_REDIS_URL (default redis://127.0.0.1:6379).
package testenv

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq" // the driver every sisnotify database uses
	"github.com/redis/go-redis/v9"

	"github.com/iec-almaty/sisnotify/internal/workerdb"
)

// Prefix starts the name of every database this package creates.
const Prefix = "sisnotify_test_"

var counter atomic.Int64

// AdminURL is the URL of the maintenance database tests connect to first.
func AdminURL() string {
	if u := os.Getenv("SISNOTIFY_TEST_PG_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// RedisURL is the base URL of the Redis server tests use.
func RedisURL() string {
	if u := os.Getenv("SISNOTIFY_TEST_REDIS_URL"); u != "" {
		return strings.TrimRight(u, "/")
	}
	return "redis://127.0.0.1:6379"
}

// URLFor returns AdminURL pointed at database name (and, when user is not
// empty, connecting as user).
func URLFor(name, user string) string {
	u, err := url.Parse(AdminURL())
	if err != nil {
		panic(fmt.Sprintf("SISNOTIFY_TEST_PG_URL: %v", err))
	}
	u.Path = "/" + name
	if user != "" {
		u.User = url.User(user)
	}
	return u.String()
}

var safeName = regexp.MustCompile(`[^a-z0-9_]+`)

// Database is a throwaway PostgreSQL database.
type Database struct {
	Name string
	URL  string
}

// Open connects to the database with sqlx and closes the pool at cleanup.
func (d Database) Open(tb testing.TB) *sqlx.DB {
	tb.Helper()
	db, err := workerdb.Open(d.URL)
	if err != nil {
		tb.Fatalf("open %s: %v", d.Name, err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// Create makes a new empty database (or a copy of template, when not empty)
// and returns it without registering any cleanup. Most tests want New.
func Create(ctx context.Context, name, template string) (Database, error) {
	admin, err := sql.Open("postgres", AdminURL())
	if err != nil {
		return Database{}, err
	}
	defer admin.Close()
	full := fmt.Sprintf("%s%d_%d_%d_%s", Prefix, time.Now().Unix(), os.Getpid(), counter.Add(1), safeName.ReplaceAllString(strings.ToLower(name), "_"))
	if len(full) > 63 {
		full = full[:63]
	}
	q := `CREATE DATABASE "` + full + `"`
	if template != "" {
		q += ` TEMPLATE "` + template + `"`
	}
	// CREATE DATABASE ... TEMPLATE fails while another session is connected
	// to the template; templates here are only connected to while built.
	for attempt := 0; ; attempt++ {
		_, err = admin.ExecContext(ctx, q)
		if err == nil || attempt == 20 || !strings.Contains(err.Error(), "being accessed by other users") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		return Database{}, fmt.Errorf("create database %s: %w", full, err)
	}
	return Database{Name: full, URL: URLFor(full, "")}, nil
}

// Drop removes a database, disconnecting whoever is still connected.
func Drop(ctx context.Context, name string) error {
	admin, err := sql.Open("postgres", AdminURL())
	if err != nil {
		return err
	}
	defer admin.Close()
	_, err = admin.ExecContext(ctx, `DROP DATABASE IF EXISTS "`+name+`" WITH (FORCE)`)
	return err
}

// New creates a throwaway database for one test (a copy of template when it
// is not empty) and drops it when the test ends.
func New(tb testing.TB, template string) Database {
	tb.Helper()
	ctx := context.Background()
	db, err := Create(ctx, tb.Name(), template)
	if err != nil {
		tb.Fatalf("testenv: %v (is PostgreSQL running? see README)", err)
	}
	tb.Cleanup(func() {
		if err := Drop(context.Background(), db.Name); err != nil {
			tb.Errorf("testenv: drop %s: %v", db.Name, err)
		}
	})
	return db
}

// Template is a database built once per test package (for example migrated,
// or filled with the SIS reference schema) that tests copy with New.
// Call Drop from TestMain when the package ends.
type Template struct{ Database }

// NewTemplate creates a database and runs build on it. The connection that
// build receives is closed before the template is used, since PostgreSQL
// copies a template only while nobody is connected to it.
func NewTemplate(ctx context.Context, name string, build func(ctx context.Context, db *sqlx.DB) error) (Template, error) {
	d, err := Create(ctx, name+"_tpl", "")
	if err != nil {
		return Template{}, err
	}
	if build != nil {
		db, err := workerdb.Open(d.URL)
		if err == nil {
			err = build(ctx, db)
			db.Close()
		}
		if err != nil {
			_ = Drop(ctx, d.Name)
			return Template{}, fmt.Errorf("build template %s: %w", d.Name, err)
		}
	}
	return Template{d}, nil
}

// Drop removes the template.
func (t Template) Drop() { _ = Drop(context.Background(), t.Name) }

// CreateRole creates a login role (dropped at cleanup) and returns its name.
// Under the trust authentication of a development machine it needs no
// password.
func CreateRole(tb testing.TB, db *sqlx.DB, name string, grants ...string) string {
	tb.Helper()
	role := fmt.Sprintf("%s_%d_%d", safeName.ReplaceAllString(strings.ToLower(name), "_"), time.Now().UnixNano()%1e9, counter.Add(1))
	if _, err := db.Exec(`CREATE ROLE "` + role + `" LOGIN`); err != nil {
		tb.Fatalf("create role: %v", err)
	}
	for _, g := range grants {
		if _, err := db.Exec(strings.ReplaceAll(g, "{role}", `"`+role+`"`)); err != nil {
			tb.Fatalf("grant %q: %v", g, err)
		}
	}
	tb.Cleanup(func() {
		ctx := context.Background()
		_, _ = db.ExecContext(ctx, `DROP OWNED BY "`+role+`"`)
		_, _ = db.ExecContext(ctx, `DROP ROLE IF EXISTS "`+role+`"`)
	})
	return role
}

// Redis returns the URL of a Redis database of the test's own, after
// flushing it, and flushes it again when the test ends. n is the number
// the package prefers (see the table in README.md's "Tests" section).
// The test holds it by a lease in database 0, renewed while it runs; a
// number another test or another run on the machine holds is skipped for
// the next free one (1 to 15), so two runs at once never share, or flush,
// a database.
func Redis(tb testing.TB, n int) string {
	tb.Helper()
	ctx := context.Background()
	opt, err := redis.ParseURL(RedisURL())
	if err != nil {
		tb.Fatalf("SISNOTIFY_TEST_REDIS_URL: %v", err)
	}
	admin := redis.NewClient(opt)
	token := fmt.Sprintf("%d-%d-%d", os.Getpid(), time.Now().UnixNano(), counter.Add(1))
	db := -1
	for i := range redisDatabases - 1 {
		k := 1 + (max(n, 1)-1+i)%(redisDatabases-1)
		ok, err := admin.SetNX(ctx, redisLeaseKey(k), token, redisLeaseTTL).Result()
		if err != nil {
			admin.Close()
			tb.Fatalf("testenv: lease a redis database: %v (is Redis running? see README)", err)
		}
		if ok {
			db = k
			break
		}
	}
	if db < 0 {
		admin.Close()
		tb.Fatalf("testenv: Redis databases 1-%d are all leased by other tests", redisDatabases-1)
	}
	stop, renewed := make(chan struct{}), make(chan struct{})
	go func() { // renew the lease while the test runs
		defer close(renewed)
		t := time.NewTicker(redisLeaseTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				_ = renewLease.Run(ctx, admin, []string{redisLeaseKey(db)}, token, redisLeaseTTL.Milliseconds()).Err()
			}
		}
	}()
	u := fmt.Sprintf("%s/%d", RedisURL(), db)
	dbOpt, err := redis.ParseURL(u)
	if err != nil {
		tb.Fatalf("SISNOTIFY_TEST_REDIS_URL: %v", err)
	}
	flush := func() error {
		c := redis.NewClient(dbOpt)
		defer c.Close()
		return c.FlushDB(ctx).Err()
	}
	tb.Cleanup(func() {
		_ = flush()
		close(stop)
		<-renewed
		_ = releaseLease.Run(ctx, admin, []string{redisLeaseKey(db)}, token).Err()
		admin.Close()
	})
	if err := flush(); err != nil {
		tb.Fatalf("testenv: flush redis db %d: %v (is Redis running? see README)", db, err)
	}
	return u
}

// redisDatabases is how many databases a Redis server has by default
// (its "databases" setting); 0 is left alone for the leases.
const redisDatabases = 16

// redisLeaseTTL bounds how long the lease of a test that was killed
// outlives it.
const redisLeaseTTL = time.Minute

func redisLeaseKey(db int) string { return fmt.Sprintf("sisnotify-test:lease:db%d", db) }

// renewLease and releaseLease touch a lease only while it is still ours.
var (
	renewLease   = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) end return 0`)
	releaseLease = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)
)

// Clean drops the test databases older than age that crashed runs left.
func Clean(ctx context.Context, age time.Duration) ([]string, error) {
	admin, err := workerdb.Open(AdminURL())
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	var names []string
	if err := admin.SelectContext(ctx, &names, `SELECT datname FROM pg_database WHERE datname LIKE $1`, Prefix+"%"); err != nil {
		return nil, err
	}
	var dropped []string
	for _, n := range names {
		var ts int64
		if _, err := fmt.Sscanf(strings.TrimPrefix(n, Prefix), "%d_", &ts); err != nil {
			continue
		}
		if time.Since(time.Unix(ts, 0)) < age {
			continue
		}
		if err := Drop(ctx, n); err != nil {
			return dropped, fmt.Errorf("drop %s: %w", n, err)
		}
		dropped = append(dropped, n)
	}
	return dropped, nil
}

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on now,
// for a test that starts a server of its own (redis-server, PostgreSQL).
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
