package pace

import (
	"context"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/iec-almaty/sisnotify/integrations/testenv"
)

// redisDB is this package's Redis database number (README, Tests).
const redisDB = 8

func TestParse(t *testing.T) {
	got, err := Parse(" 10000/d, 30/m ")
	if err != nil || len(got) != 2 || got[0] != (Limit{30, time.Minute}) || got[1] != (Limit{10000, 24 * time.Hour}) {
		t.Fatalf("Parse: %v, %v; want 30/m then 10000/d", got, err)
	}
	if got, err := Parse(""); err != nil || got != nil {
		t.Fatalf("Parse(\"\"): %v, %v; want no limit", got, err)
	}
	for _, bad := range []string{"30", "30/w", "0/s", "-1/m", "x/m", "1.5/s", "30/m,40/m", "30/m,", "/s"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q): no error", bad)
		}
	}
}

// Finish is the time the GCRA limits take: a pace one message per
// interval, a budget half its count at once.
func TestFinish(t *testing.T) {
	for _, c := range []struct {
		limits []Limit
		n      int
		want   time.Duration
	}{
		{nil, 1000, 0},
		// A pace: 2 at once, then N-1-m per period (m = 3 at 50/s).
		{[]Limit{{50, time.Second}}, 1000, 998 * (time.Second / 46)},
		{[]Limit{{30, time.Minute}}, 2, 0},
		{[]Limit{{30, time.Minute}}, 30, 28 * (time.Minute / 28)},
		{[]Limit{{3, time.Minute}}, 4, 3 * (time.Minute / 3)},
		// The day's budget lends 5,000 at the minute's pace, then 5,000 a day.
		{[]Limit{{30, time.Minute}, {10000, 24 * time.Hour}}, 5000, 4998 * (time.Minute / 28)},
		{[]Limit{{50, time.Second}, {1000, time.Hour}}, 1000, 500 * (time.Hour / 500)},
	} {
		if got := Finish(c.limits, c.n); got != c.want {
			t.Errorf("Finish(%v, %d) = %s, want %s", c.limits, c.n, got, c.want)
		}
	}
}

func newClient(t *testing.T, url string) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c
}

// take runs callers goroutines on each limiter taking n tokens in all, and
// returns when each was granted.
func take(t *testing.T, ls []*Limiter, callers, n int, urgent func(i int) bool) []time.Time {
	t.Helper()
	var mu sync.Mutex
	var at []time.Time
	work := make(chan int, n)
	for i := 0; i < n; i++ {
		work <- i
	}
	close(work)
	var wg sync.WaitGroup
	for _, l := range ls {
		for c := 0; c < callers; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range work {
					for {
						d, err := l.Take(context.Background(), Mail, urgent != nil && urgent(i))
						if err != nil {
							t.Error(err)
							return
						}
						if d == 0 {
							break
						}
						time.Sleep(d)
					}
					mu.Lock()
					at = append(at, time.Now())
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	sort.Slice(at, func(i, j int) bool { return at[i].Before(at[j]) })
	return at
}

// maxInWindow is the most grants in any half-open window of length w.
func maxInWindow(at []time.Time, w time.Duration) int {
	best, j := 0, 0
	for i := range at {
		for at[i].Sub(at[j]) >= w {
			j++
		}
		best = max(best, i-j+1)
	}
	return best
}

// Two replicas (two clients of one Redis) with many callers each share
// one limit of 20 a second: no second ever holds more than 20 grants, and
// 60 take about 3 seconds (2 at once, then 18 a second).
func TestTwoReplicasShareOneLimit(t *testing.T) {
	url := testenv.Redis(t, redisDB)
	limits := map[string][]Limit{Mail: {{20, time.Second}}}
	a, b := New(newClient(t, url), limits), New(newClient(t, url), limits)
	at := take(t, []*Limiter{a, b}, 8, 60, nil)
	if len(at) != 60 {
		t.Fatalf("%d grants, want 60", len(at))
	}
	// The limiter keeps one grant of margin (19 a second); the moments
	// are taken here after each answer, so a loaded machine may bunch one
	// more into a second. The provider's limit is what must hold.
	if m := maxInWindow(at, time.Second); m > 20 {
		t.Errorf("%d grants within one second, limit 20", m)
	}
	if took := at[59].Sub(at[0]); took < 2900*time.Millisecond {
		t.Errorf("60 grants in %s at 20/s, want at least 2.9 s", took)
	}
}

// A day's budget is not spent by the minute's refusals: limits 20/s and
// 10/d let exactly 5 go (half the day's 10 at once) however often the
// pace said no meanwhile, then say to wait hours.
func TestBudgetNotWastedByThePace(t *testing.T) {
	url := testenv.Redis(t, redisDB)
	limits := map[string][]Limit{Mail: {{20, time.Second}, {10, 24 * time.Hour}}}
	ls := []*Limiter{New(newClient(t, url), limits), New(newClient(t, url), limits)}
	var mu sync.Mutex
	granted, refusedLong := 0, 0
	var wg sync.WaitGroup
	for _, l := range ls {
		l.MaxWait = 200 * time.Millisecond
		for c := 0; c < 4; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 5; i++ {
					d, err := l.Take(context.Background(), Mail, false)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					switch {
					case d == 0:
						granted++
					case d > time.Hour:
						refusedLong++
					}
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	if granted != 5 || refusedLong == 0 {
		t.Fatalf("%d granted, %d told to wait hours; want 5 (half the day's 10) and some", granted, refusedLong)
	}
}

// Urgent callers of one replica go before the routine callers of both,
// which were waiting first.
func TestUrgentGoesFirstAcrossReplicas(t *testing.T) {
	url := testenv.Redis(t, redisDB)
	limits := map[string][]Limit{Mail: {{10, time.Second}}}
	a, b := New(newClient(t, url), limits), New(newClient(t, url), limits)
	a.MaxWait, b.MaxWait = time.Minute, time.Minute
	type grant struct {
		urgent bool
		at     time.Time
	}
	var mu sync.Mutex
	var grants []grant
	var wg sync.WaitGroup
	run := func(l *Limiter, urgent bool) {
		defer wg.Done()
		d, err := l.Take(context.Background(), Mail, urgent)
		if err != nil || d != 0 {
			t.Errorf("Take: %s, %v", d, err)
			return
		}
		mu.Lock()
		grants = append(grants, grant{urgent, time.Now()})
		mu.Unlock()
	}
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go run([]*Limiter{a, b}[i%2], false)
	}
	time.Sleep(300 * time.Millisecond) // the routine callers wait their turns
	urgentFrom := time.Now()
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go run(b, true)
	}
	wg.Wait()
	sort.Slice(grants, func(i, j int) bool { return grants[i].at.Before(grants[j].at) })
	last, before := -1, 0
	for i, g := range grants {
		if g.urgent {
			last = i
		} else if g.at.Before(urgentFrom) {
			before++
		}
	}
	// The routine grants made before the urgent callers came; then at
	// most one more (the other replica's, asked before the urgent mark
	// was up); then the three urgent ones, ahead of the other dozen
	// routine callers waiting since before — also the one of their own
	// replica that held the turn, which yields it.
	if want := before + 1 + 3; last < 0 || last+1 > want {
		t.Fatalf("the last urgent grant was number %d of %d; want among the first %d (%d routine grants before they asked)", last+1, len(grants), want, before)
	}
}
