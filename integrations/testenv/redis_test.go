package testenv

import (
	"context"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// dbOf returns the database number at the end of a Redis URL.
func dbOf(t *testing.T, u string) int {
	t.Helper()
	opt, err := redis.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	return opt.DB
}

func TestRedisGivesEachTestADatabaseOfItsOwn(t *testing.T) {
	ctx := context.Background()
	// Two holders asking for the same number, as two runs of one package
	// at once would: they get different databases, and neither sees the
	// other's keys.
	u1, u2 := Redis(t, 5), Redis(t, 5)
	d1, d2 := dbOf(t, u1), dbOf(t, u2)
	if d1 == d2 || d1 == 0 || d2 == 0 {
		t.Fatalf("two holders got databases %d and %d, want two different ones, not 0", d1, d2)
	}
	o1, _ := redis.ParseURL(u1)
	o2, _ := redis.ParseURL(u2)
	c1, c2 := redis.NewClient(o1), redis.NewClient(o2)
	defer c1.Close()
	defer c2.Close()
	if err := c1.Set(ctx, "k", "one", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := c2.Exists(ctx, "k").Result(); err != nil || n != 0 {
		t.Fatalf("the second database sees the first's key (%d, %v)", n, err)
	}

	// A lease ends with its test: the key that held it is gone or taken
	// by somebody else, and the database is flushed.
	admin := redis.NewClient(&redis.Options{Addr: o1.Addr, Username: o1.Username, Password: o1.Password})
	defer admin.Close()
	var held, token string
	t.Run("holder", func(t *testing.T) {
		u := Redis(t, 9)
		held = u
		token = admin.Get(ctx, redisLeaseKey(dbOf(t, u))).Val()
		if !strings.Contains(token, "-") {
			t.Fatalf("no lease recorded for %s (%q)", u, token)
		}
		o, _ := redis.ParseURL(u)
		c := redis.NewClient(o)
		defer c.Close()
		if err := c.Set(ctx, "left", "behind", 0).Err(); err != nil {
			t.Fatal(err)
		}
	})
	if now := admin.Get(ctx, redisLeaseKey(dbOf(t, held))).Val(); now == token {
		t.Errorf("the lease of %s outlived its test", held)
	}
	o, _ := redis.ParseURL(held)
	c := redis.NewClient(o)
	defer c.Close()
	// Whoever holds it now flushed it too when they took it: the key is
	// gone either way.
	if n, err := c.Exists(ctx, "left").Result(); err != nil || n != 0 {
		t.Errorf("database %d was not flushed when its test ended (%d, %v)", o.DB, n, err)
	}
}
