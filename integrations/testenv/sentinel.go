package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// A Redis that survives the loss of a node: a primary (StartRedis), its
// replicas (StartRedisReplica) and the sentinels that watch them
// (StartSentinels), all processes of the test's own on loopback.

// Port is the server's TCP port on 127.0.0.1.
func (r *RedisServer) Port() int { return r.port }

// StartRedisReplica starts a redis-server that replicates primary, killed
// when the test ends, and waits (20 s at most) until its first
// synchronisation is done.
func StartRedisReplica(tb testing.TB, primary *RedisServer) *RedisServer {
	tb.Helper()
	r := &RedisServer{tb: tb, bin: primary.bin, port: FreePort(tb), dir: tb.TempDir(),
		args: []string{"--replicaof", "127.0.0.1", strconv.Itoa(primary.port)}}
	r.Start()
	tb.Cleanup(r.Kill)
	c := redis.NewClient(&redis.Options{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)), MaxRetries: -1})
	defer c.Close()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		info, _ := c.Info(context.Background(), "replication").Result()
		if strings.Contains(info, "master_link_status:up") {
			return r
		}
		if time.Now().After(deadline) {
			tb.Fatalf("the replica on port %d did not synchronise with port %d in 20 s:\n%s", r.port, primary.port, info)
		}
	}
}

// Sentinels are redis-server processes in sentinel mode watching one
// primary under a master name.
type Sentinels struct {
	Master string
	ports  []int
	procs  []*exec.Cmd
}

// StartSentinels starts n sentinels (quorum n/2+1) that watch primary as
// master, judge a node down after 1 s without an answer and may fail over
// every 5 s; they are killed when the test ends. It waits (20 s at most)
// until every sentinel has found the primary's replicas and the other
// sentinels, so that a failover can happen.
func StartSentinels(tb testing.TB, primary *RedisServer, master string, n, replicas int) *Sentinels {
	tb.Helper()
	s := &Sentinels{Master: master}
	for i := 0; i < n; i++ {
		port := FreePort(tb)
		dir := tb.TempDir()
		conf := filepath.Join(dir, "sentinel.conf") // sentinel rewrites it: a file of its own
		body := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor %s 127.0.0.1 %d %d\n"+
			"sentinel down-after-milliseconds %s 1000\nsentinel failover-timeout %s 5000\n",
			port, dir, master, primary.port, n/2+1, master, master)
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			tb.Fatal(err)
		}
		cmd := exec.Command(primary.bin, conf, "--sentinel")
		cmd.Dir = dir
		if err := cmd.Start(); err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		s.ports = append(s.ports, port)
		s.procs = append(s.procs, cmd)
	}
	for _, port := range s.ports {
		c := redis.NewSentinelClient(&redis.Options{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), MaxRetries: -1})
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			m, err := c.Master(context.Background(), master).Result()
			if err == nil && m["num-slaves"] == strconv.Itoa(replicas) && m["num-other-sentinels"] == strconv.Itoa(n-1) {
				break
			}
			if time.Now().After(deadline) {
				c.Close()
				tb.Fatalf("sentinel on port %d did not see %d replicas and %d other sentinels in 20 s: %v %v", port, replicas, n-1, m, err)
			}
		}
		c.Close()
	}
	return s
}

// Addrs are the sentinels' host:port, comma-separated, as a
// redis-sentinel:// URL lists them.
func (s *Sentinels) Addrs() string {
	var a []string
	for _, p := range s.ports {
		a = append(a, net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	}
	return strings.Join(a, ",")
}

// URL is database db of the primary the sentinels name.
func (s *Sentinels) URL(db int) string {
	return fmt.Sprintf("redis-sentinel://%s/%d?master=%s", s.Addrs(), db, s.Master)
}

// PrimaryPort asks the first sentinel that answers which port the
// primary is on now.
func (s *Sentinels) PrimaryPort(ctx context.Context) (int, error) {
	var last error
	for _, p := range s.ports {
		c := redis.NewSentinelClient(&redis.Options{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), MaxRetries: -1})
		addr, err := c.GetMasterAddrByName(ctx, s.Master).Result()
		c.Close()
		if err == nil && len(addr) == 2 {
			return strconv.Atoi(addr[1])
		}
		last = err
	}
	return 0, fmt.Errorf("no sentinel named the primary: %v", last)
}
