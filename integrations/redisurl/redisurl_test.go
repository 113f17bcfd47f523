package redisurl

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseSingle(t *testing.T) {
	o, err := Parse("redis://:s3cret@10.0.0.5:6380/4")
	if err != nil {
		t.Fatal(err)
	}
	if o.Failover != nil || o.Single == nil {
		t.Fatalf("redis:// gave %+v, want a single server", o)
	}
	if s := o.Single; s.Addr != "10.0.0.5:6380" || s.DB != 4 || s.Password != "s3cret" || s.TLSConfig != nil {
		t.Errorf("redis:// parsed to addr %q db %d password %q tls %v", s.Addr, s.DB, s.Password, s.TLSConfig != nil)
	}
	o, err = Parse("rediss://redis.example.org/2")
	if err != nil {
		t.Fatal(err)
	}
	if s := o.Single; s.Addr != "redis.example.org:6379" || s.DB != 2 || s.TLSConfig == nil || s.TLSConfig.ServerName != "redis.example.org" {
		t.Errorf("rediss:// parsed to addr %q db %d tls %+v, want TLS to redis.example.org", s.Addr, s.DB, s.TLSConfig)
	}
}

func TestParseSentinel(t *testing.T) {
	o, err := Parse("redis-sentinel://:s3cret@10.0.0.1:26379,sentinel-3,10.0.0.2:26380/3?master=mymaster")
	if err != nil {
		t.Fatal(err)
	}
	if o.Single != nil || o.Failover == nil {
		t.Fatalf("redis-sentinel:// gave %+v, want failover options", o)
	}
	f := o.Failover
	if want := []string{"10.0.0.1:26379", "sentinel-3:26379", "10.0.0.2:26380"}; !reflect.DeepEqual(f.SentinelAddrs, want) {
		t.Errorf("sentinels %q, want %q", f.SentinelAddrs, want)
	}
	if f.MasterName != "mymaster" || f.DB != 3 || f.Password != "s3cret" || f.SentinelPassword != "s3cret" || f.TLSConfig != nil {
		t.Errorf("parsed master %q db %d password %q sentinel password %q tls %v", f.MasterName, f.DB, f.Password, f.SentinelPassword, f.TLSConfig != nil)
	}

	// asynq's own example form: no database (0), no password.
	o, err = Parse("redis-sentinel://localhost:5000,localhost:5001,localhost:5002?master=mymaster")
	if err != nil {
		t.Fatal(err)
	}
	if f := o.Failover; f.DB != 0 || f.Password != "" || f.SentinelPassword != "" || len(f.SentinelAddrs) != 3 {
		t.Errorf("asynq's form parsed to %+v", f)
	}

	o, err = Parse("redis-sentinel://:nodes@h1:26379/1?master=m&sentinel_password=&tls=true")
	if err != nil {
		t.Fatal(err)
	}
	if f := o.Failover; f.Password != "nodes" || f.SentinelPassword != "" || f.TLSConfig == nil {
		t.Errorf("sentinel_password= and tls=true parsed to password %q sentinel password %q tls %v", f.Password, f.SentinelPassword, f.TLSConfig != nil)
	}
}

func TestParseRejectsBadURLsWithoutQuotingThem(t *testing.T) {
	for _, raw := range []string{
		"",
		"http://:pw0rd@h:6379/0",
		"redis://:pw0rd@h:6379/notanumber",
		"redis-sentinel://:pw0rd@h1:26379,h2:26379/0",                   // no master
		"redis-sentinel://:pw0rd@h1:26379,h2:26379/x?master=m",          // bad db
		"redis-sentinel://:pw0rd@h1:26379,,h2:26379/0?master=m",         // empty address
		"redis-sentinel://:pw0rd@h1:99999/0?master=m",                   // bad port
		"redis-sentinel://:pw0rd@h1:26379/0?master=m&mastr=n",           // typo
		"redis-sentinel://:pw0rd@h1:26379/0?master=m&tls=maybe",         // not a bool
		"redis-sentinel://:pw0rd@h1:26379/0?master=m&sentinel_password", // ok: empty
		"redis-sentinel://:pw0rd@%zz/0?master=m",
	} {
		_, err := Parse(raw)
		if strings.HasSuffix(raw, "sentinel_password") {
			if err != nil {
				t.Errorf("Parse(%q): %v", raw, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("Parse(%q) accepted it", raw)
			continue
		}
		if strings.Contains(err.Error(), "pw0rd") || strings.Contains(err.Error(), "h1") {
			t.Errorf("Parse(%q) error quotes the URL: %v", raw, err)
		}
	}
}

func TestRedactHidesPasswordsInAllForms(t *testing.T) {
	for raw, want := range map[string]string{
		"redis://:s3cret@h:6379/0":   "redis://:xxxxx@h:6379/0",
		"rediss://u:s3cret@h:6380/1": "rediss://u:xxxxx@h:6380/1",
		"redis://h:6379/0":           "redis://h:6379/0",
		"redis-sentinel://:s3cret@h1:26379,h2:26379/3?master=mymaster":                  "redis-sentinel://:xxxxx@h1:26379,h2:26379/3?master=mymaster",
		"redis-sentinel://h1:26379,h2:26379/3?master=mymaster&sentinel_password=s3cret": "redis-sentinel://h1:26379,h2:26379/3?master=mymaster&sentinel_password=xxxxx",
		"redis://:s3cret@%zz": "(unprintable URL)",
	} {
		if got := Redact(raw); got != want {
			t.Errorf("Redact(%q) = %q, want %q", raw, got, want)
		}
	}
}

func TestNewClientFollowsTheForm(t *testing.T) {
	single, _ := Parse("redis://127.0.0.1:6379/0")
	c := single.NewClient()
	defer c.Close()
	if single.Single.PoolSize != 0 {
		t.Errorf("NewClient changed the parsed options (pool size %d)", single.Single.PoolSize)
	}
	failover, _ := Parse("redis-sentinel://127.0.0.1:1/0?master=m")
	f := failover.NewClient()
	defer f.Close()
	if reflect.TypeOf(c) != reflect.TypeOf(f) {
		t.Errorf("single gives %T, sentinel %T: asynqmon and the monitoring UI need the same *redis.Client", c, f)
	}
}
