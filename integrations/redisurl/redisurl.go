// Package redisurl owns SISNOTIFY_REDIS_URL: it parses the three forms of
// the Redis URL (redis://, rediss:// and redis-sentinel://), builds the one
// go-redis client every part of the process shares, and prints the URL
// without its secrets.
//
// redis:// and rediss:// are go-redis's own ParseURL. redis-sentinel:// is
// the form asynq's ParseRedisURI accepts,
//
//	redis-sentinel://[:password@]host1:26379,host2:26379[/db]?master=NAME
//
// which go-redis has no parser for (its ParseFailoverURL reads a redis://
// URL with addr= parameters), so it is parsed here into
// redis.FailoverOptions. asynq reads the password as the sentinels' only;
// here it is sent to the Redis nodes too, since a Redis that needs a
// password usually has sentinels that need the same one. A sentinel_password
// parameter overrides the sentinels' password (empty: sentinels without one).
package redisurl

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Options is a parsed SISNOTIFY_REDIS_URL: exactly one of Single and
// Failover is set.
type Options struct {
	// Single is a redis:// or rediss:// URL: one Redis server.
	Single *redis.Options
	// Failover is a redis-sentinel:// URL: the primary the sentinels name.
	Failover *redis.FailoverOptions
}

// Parse parses raw. Its errors never quote the URL nor its password.
func Parse(raw string) (Options, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Options{}, errors.New("not a URL")
	}
	switch u.Scheme {
	case "redis", "rediss":
		opt, err := redis.ParseURL(raw)
		if err != nil {
			return Options{}, fmt.Errorf("not a Redis URL (want %s://host:6379/0)", u.Scheme)
		}
		return Options{Single: opt}, nil
	case "redis-sentinel":
		f, err := parseSentinel(u)
		if err != nil {
			return Options{}, err
		}
		return Options{Failover: f}, nil
	}
	return Options{}, errors.New("want redis://, rediss:// or redis-sentinel://")
}

const sentinelForm = "redis-sentinel://[:password@]host1:26379,host2:26379[/db]?master=NAME"

func parseSentinel(u *url.URL) (*redis.FailoverOptions, error) {
	bad := func(why string) error { return fmt.Errorf("%s (want %s)", why, sentinelForm) }
	f := &redis.FailoverOptions{}
	if u.User != nil {
		f.Username = u.User.Username()
		f.Password, _ = u.User.Password()
		f.SentinelPassword = f.Password
	}
	for _, a := range strings.Split(u.Host, ",") {
		h, p, err := net.SplitHostPort(a)
		if err != nil {
			if a == "" || strings.Contains(a, ":") {
				return nil, bad("a sentinel address is not host:port")
			}
			h, p = a, "26379"
		}
		if h == "" {
			return nil, bad("a sentinel address has no host")
		}
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, bad("a sentinel address has a bad port")
		}
		f.SentinelAddrs = append(f.SentinelAddrs, net.JoinHostPort(h, p))
	}
	if path := strings.Trim(u.Path, "/"); path != "" {
		db, err := strconv.Atoi(path)
		if err != nil || db < 0 {
			return nil, bad("the path is not a database number")
		}
		f.DB = db
	}
	q := u.Query()
	f.MasterName = q.Get("master")
	if f.MasterName == "" {
		return nil, bad("no master name")
	}
	for k := range q {
		switch k {
		case "master":
		case "sentinel_password":
			f.SentinelPassword = q.Get(k)
		case "tls":
			on, err := strconv.ParseBool(q.Get(k))
			if err != nil {
				return nil, bad("tls is not true or false")
			}
			if on {
				// The Redis nodes' addresses come from the sentinels, so
				// the server name is checked per connection by crypto/tls
				// against the address dialled.
				f.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
			}
		default:
			return nil, bad("unknown parameter " + strconv.Quote(k))
		}
	}
	return f, nil
}

// NewClient returns a new client for o: a *redis.Client in both cases (for
// Sentinel, one that asks the sentinels for the primary and follows a
// failover).
func (o Options) NewClient() redis.UniversalClient {
	if o.Failover != nil {
		f := *o.Failover
		return redis.NewFailoverClient(&f)
	}
	opt := *o.Single // NewClient fills in defaults: keep o as parsed
	return redis.NewClient(&opt)
}

// Redact is raw for printing: the password of the user part and the
// sentinel_password parameter hidden.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unprintable URL)"
	}
	if q := u.Query(); q.Has("sentinel_password") {
		q.Set("sentinel_password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}
