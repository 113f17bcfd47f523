// Package pace owns the providers' sending limits: how many emails and
// SMS may go per second, minute, hour or day across every replica
// (SISNOTIFY_MAIL_RATE, SISNOTIFY_SMS_RATE). The limits are kept in Redis
// by a GCRA limiter (github.com/go-redis/redis_rate), so every process
// that shares the Redis shares one count; a message takes a token of its
// channel before it goes to its provider.
//
// Keys are "rate:sisnotify:pace:<channel>:<period>": a channel name and a
// period, nothing about a student.
package pace

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// Channels a limit applies to.
const (
	Mail = "email"
	SMS  = "sms"
)

// Limit is one of a provider's limits: N messages per Period.
type Limit struct {
	N      int
	Period time.Duration
}

func (l Limit) String() string { return strconv.Itoa(l.N) + "/" + unit(l.Period) }

// unit is the letter of period p.
func unit(p time.Duration) string {
	return map[time.Duration]string{time.Second: "s", time.Minute: "m", time.Hour: "h", 24 * time.Hour: "d"}[p]
}

var periods = map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour}

// Parse reads a channel's limits: "N/s", "N/m", "N/h" or "N/d",
// comma-separated ("30/m,10000/d"). An empty value is no limit. Two limits
// of one period, a count that is not a whole number above 0, or an unknown
// unit are errors.
func Parse(v string) ([]Limit, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil, nil
	}
	var out []Limit
	seen := map[time.Duration]bool{}
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		num, unit, ok := strings.Cut(part, "/")
		if !ok {
			return nil, fmt.Errorf("%q is not N/s, N/m, N/h or N/d", part)
		}
		n, err := strconv.Atoi(strings.TrimSpace(num))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q: the count must be a whole number above 0", part)
		}
		p, ok := periods[strings.TrimSpace(unit)]
		if !ok {
			return nil, fmt.Errorf("%q: unknown period %q (want s, m, h or d)", part, strings.TrimSpace(unit))
		}
		if seen[p] {
			return nil, fmt.Errorf("two limits per %s", strings.TrimSpace(unit))
		}
		seen[p] = true
		out = append(out, Limit{N: n, Period: p})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Period < out[j].Period })
	return out, nil
}

// budgetFrom is the shortest period of a budget: limits of an hour or
// more are budgets, shorter ones paces (see gcra).
const budgetFrom = time.Hour

// gcra is how limit l becomes the GCRA limit the limiter enforces. GCRA
// lets at most burst + rate - 1 messages through in any window of one
// period, so a limit taken as redis_rate's PerMinute(N) (burst N) would
// let up to 2N go in a minute, and a day limit 2N in a day: enough, with
// Microsoft 365, to have the mailbox blocked for a day. Instead:
//
//   - a pace (a limit per second or per minute) has a burst of 2 and a
//     rate of N-1-m per Period: never more than N-m tokens in any window
//     of Period, and the m left (jitterMargin) are the margin for the
//     send's own jitter (messages that took their tokens apart may reach
//     the provider together: measured at the SMTP server with a margin of
//     one, 50/s showed 51 in one second of the clock, when the machine's
//     two cores were busy with other work). The burst of 2 is what keeps the pace: a
//     message that asks a moment after its token became due (a timer, a
//     round trip to Redis) still finds it, where with a burst of 1 every
//     such moment is lost for good (at 50/s that cost a fifth of the
//     rate). Below 4 a pace is exact: burst 1, N per Period;
//   - a budget (per hour or per day) keeps its whole use within N per
//     Period by lending half of it at once (burst ⌈N/2⌉) and refilling the
//     other half over the period (⌊N/2⌋ per Period): a night's backlog may
//     use half the day's quota at the pace's speed, instead of trickling at
//     N per day.
func gcra(l Limit) redis_rate.Limit {
	switch {
	case l.Period >= budgetFrom && l.N >= 2:
		return redis_rate.Limit{Rate: l.N / 2, Period: l.Period, Burst: (l.N + 1) / 2}
	case l.Period < budgetFrom && l.N >= 4:
		return redis_rate.Limit{Rate: l.N - 1 - jitterMargin(l), Period: l.Period, Burst: 2}
	}
	return redis_rate.Limit{Rate: l.N, Period: l.Period, Burst: 1}
}

// jitterMargin is how many of a pace's N tokens a Period are left unused,
// for the send's jitter: the time between a message's token and its
// arrival at the provider moves by tens of milliseconds on a busy
// machine, nothing beside a minute. Per second, 6 % of N (3 at 50/s: the
// most seen over the limit was 1 with a margin of 1); per minute, one.
func jitterMargin(l Limit) int {
	if l.Period >= time.Minute {
		return 1
	}
	return max(1, (l.N*6+99)/100)
}

// Finish is how long sending n messages takes at limits, from a limiter
// that has been idle (every budget full): the forecast of a night's
// deliveries. No limits: 0.
func Finish(limits []Limit, n int) time.Duration {
	var longest time.Duration
	for _, l := range limits {
		g := gcra(l)
		if n <= g.Burst {
			continue
		}
		interval := g.Period / time.Duration(g.Rate)
		if d := time.Duration(n-g.Burst) * interval; d > longest {
			longest = d
		}
	}
	return longest
}

// Limiter takes tokens of each channel's limits in Redis. Its methods are
// safe for concurrent use.
//
// Several limits of a channel (a minute's and a day's) are checked
// shortest period first, each taking its token, and the message may go
// when all allow it. redis_rate cannot take from several keys at once nor
// give a token back, so an order must be chosen, and this one wastes the
// least: a later, longer limit that says no wastes only the token the
// shorter ones gave, which refills within a pace's interval (and while a
// budget says no, the pace is not what holds the messages back). Checking
// the day first would spend a token of the day on every message the
// minute then holds back, which with many waiting messages is most checks.
// AllowAtMost does not help: it grants part of a batch, and a message is
// one token.
//
// Within a process, one caller per channel at a time asks Redis (the
// others wait their turn, urgent ones first), so waiting messages do not
// stampede Redis at every token; across processes, an urgent caller that
// is told to wait marks it in Redis (key "…:urgent"), and routine callers
// of every replica leave the tokens alone until it has had one.
type Limiter struct {
	rdb    redis.UniversalClient
	rl     *redis_rate.Limiter
	limits map[string][]Limit
	gates  map[string]*gate
	// MaxWait is how long Take waits for a token in the process before it
	// tells the caller to postpone; default 5 s.
	MaxWait time.Duration
	// UrgentWait is the same for urgent callers; default MaxWait.
	UrgentWait time.Duration
}

// New returns the limiter of limits (by channel: Mail, SMS) in rdb. A
// channel without limits is never held.
func New(rdb redis.UniversalClient, limits map[string][]Limit) *Limiter {
	l := &Limiter{rdb: rdb, rl: redis_rate.NewLimiter(rdb), limits: map[string][]Limit{}, gates: map[string]*gate{}}
	for ch, ls := range limits {
		if len(ls) == 0 {
			continue
		}
		ls = append([]Limit(nil), ls...)
		sort.Slice(ls, func(i, j int) bool { return ls[i].Period < ls[j].Period })
		l.limits[ch] = ls
		l.gates[ch] = &gate{}
	}
	return l
}

// WithWait is l waiting up to wait for every caller (its tokens and turns
// shared with l): the digests, one task that sends few messages, may wait
// longer than a notice.
func (l *Limiter) WithWait(wait time.Duration) *Limiter {
	if l == nil {
		return nil
	}
	c := *l
	c.MaxWait, c.UrgentWait = wait, wait
	return &c
}

// Limits are channel's limits, shortest period first; none: no limit.
func (l *Limiter) Limits(channel string) []Limit {
	if l == nil {
		return nil
	}
	return l.limits[channel]
}

// ErrRedis wraps a failure to reach the limiter's Redis: the caller
// postpones rather than sends unmetered.
var ErrRedis = errors.New("rate limiter")

func key(channel string, p time.Duration) string {
	return "sisnotify:pace:" + channel + ":" + unit(p)
}

func urgentKey(channel string) string { return "sisnotify:pace:" + channel + ":urgent" }

// urgentMargin is how much longer than its wait an urgent caller's mark
// holds routine callers back: the time it takes to ask again.
const urgentMargin = 100 * time.Millisecond

// Take takes one token of channel, waiting in the process up to MaxWait
// (UrgentWait when urgent) for it. It returns 0 when the message may go,
// or how long from now the caller should postpone it (its turn did not
// come in time). urgent callers (digests, the office's and the deans'
// notices) go before routine ones. An error (Redis away, ctx done) means
// the message must not go now.
func (l *Limiter) Take(ctx context.Context, channel string, urgent bool) (time.Duration, error) {
	if l == nil || len(l.limits[channel]) == 0 {
		return 0, nil
	}
	wait := l.MaxWait
	if wait <= 0 {
		wait = 5 * time.Second
	}
	if urgent && l.UrgentWait > 0 {
		wait = l.UrgentWait
	}
	deadline := time.Now().Add(wait)
	g := l.gates[channel]
	if !g.acquire(ctx, urgent, deadline) {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		return g.lastWait(), nil
	}
	held := true
	defer func() {
		if held {
			g.release()
		}
	}()
	for {
		after, err := l.try(ctx, channel, urgent)
		if err != nil {
			return 0, err
		}
		if after <= 0 {
			return 0, nil
		}
		g.setLastWait(after)
		if time.Now().Add(after).After(deadline) {
			return after, nil
		}
		var poke <-chan struct{}
		if !urgent {
			poke = g.urgentPoke()
		}
		t := time.NewTimer(after)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, ctx.Err()
		case <-t.C:
		case <-poke:
			// An urgent caller came while this routine one waited for
			// its token: it asks first, and this one's turn comes back
			// before the other routine callers'.
			t.Stop()
			if held = g.yield(ctx, deadline); !held {
				if err := ctx.Err(); err != nil {
					return 0, err
				}
				return g.lastWait(), nil
			}
		}
	}
}

// try asks Redis once: 0 when the token is taken, else how long to wait.
func (l *Limiter) try(ctx context.Context, channel string, urgent bool) (time.Duration, error) {
	if !urgent {
		pttl, err := l.rdb.PTTL(ctx, urgentKey(channel)).Result()
		if err != nil {
			return 0, fmt.Errorf("%w: %w", ErrRedis, err)
		}
		if pttl > 0 {
			return pttl, nil
		}
	}
	for _, lim := range l.limits[channel] {
		res, err := l.rl.Allow(ctx, key(channel, lim.Period), gcra(lim))
		if err != nil {
			return 0, fmt.Errorf("%w: %w", ErrRedis, err)
		}
		if res.Allowed == 0 {
			after := res.RetryAfter
			if after <= 0 {
				after = time.Millisecond
			}
			if urgent {
				if err := l.rdb.Set(ctx, urgentKey(channel), 1, after+urgentMargin).Err(); err != nil {
					return 0, fmt.Errorf("%w: %w", ErrRedis, err)
				}
			}
			return after, nil
		}
	}
	return 0, nil
}

// Jitter is d plus up to a tenth of it (at least 50 ms, at most a second)
// at random: postponed messages do not all come back at once.
func Jitter(d time.Duration) time.Duration {
	j := d / 10
	j = max(j, 50*time.Millisecond)
	j = min(j, time.Second)
	return d + rand.N(j)
}

// gate lets one caller of a process at a time ask Redis for a channel's
// tokens: urgent callers first, then routine ones, each in turn.
type gate struct {
	mu      sync.Mutex
	busy    bool
	urgent  []chan struct{}
	routine []chan struct{}
	last    time.Duration // the last wait Redis asked for
	poke    chan struct{} // closed when an urgent caller starts to wait
}

// urgentPoke is closed when an urgent caller next starts to wait.
func (g *gate) urgentPoke() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.poke == nil {
		g.poke = make(chan struct{})
	}
	return g.poke
}

// yield hands the turn of a routine holder to the urgent callers waiting,
// and waits for it to come back, ahead of the other routine callers,
// until deadline; false when it did not (or ctx ended). With no urgent
// caller waiting the holder keeps its turn.
func (g *gate) yield(ctx context.Context, deadline time.Time) bool {
	g.mu.Lock()
	if len(g.urgent) == 0 {
		g.mu.Unlock()
		return true
	}
	ch := make(chan struct{})
	g.routine = append([]chan struct{}{ch}, g.routine...)
	g.handOff()
	g.mu.Unlock()
	return g.wait(ctx, ch, deadline)
}

// acquire waits for the caller's turn until deadline; false when it did
// not come (or ctx ended).
func (g *gate) acquire(ctx context.Context, urgent bool, deadline time.Time) bool {
	g.mu.Lock()
	if !g.busy {
		g.busy = true
		g.mu.Unlock()
		return true
	}
	ch := make(chan struct{})
	if urgent {
		g.urgent = append(g.urgent, ch)
		if g.poke != nil {
			close(g.poke)
			g.poke = nil
		}
	} else {
		g.routine = append(g.routine, ch)
	}
	g.mu.Unlock()
	return g.wait(ctx, ch, deadline)
}

// wait waits for ch, the caller's turn, until deadline; false when it did
// not come (or ctx ended), and then the caller is no longer queued.
func (g *gate) wait(ctx context.Context, ch chan struct{}, deadline time.Time) bool {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-ctx.Done():
	case <-t.C:
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-ch: // handed the turn meanwhile: pass it on
		g.handOff()
		return false
	default:
	}
	g.urgent = remove(g.urgent, ch)
	g.routine = remove(g.routine, ch)
	return false
}

func (g *gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.handOff()
}

// handOff gives the turn to the next waiter (g.mu held).
func (g *gate) handOff() {
	switch {
	case len(g.urgent) > 0:
		close(g.urgent[0])
		g.urgent = g.urgent[1:]
	case len(g.routine) > 0:
		close(g.routine[0])
		g.routine = g.routine[1:]
	default:
		g.busy = false
	}
}

func (g *gate) setLastWait(d time.Duration) {
	g.mu.Lock()
	g.last = d
	g.mu.Unlock()
}

// lastWait is how long a caller that did not get its turn postpones: the
// last wait Redis asked for, at least a second.
func (g *gate) lastWait() time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	return max(g.last, time.Second)
}

func remove(s []chan struct{}, ch chan struct{}) []chan struct{} {
	for i, c := range s {
		if c == ch {
			return append(s[:i], s[i+1:]...)
		}
	}
	return s
}
