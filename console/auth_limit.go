package console

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"math"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/go-redis/redis_rate/v10"
)

// authRate is how many sign-in requests (the sign-in page, the SSO's
// callback, a wrong break-glass password) one client address may make: 20
// a minute, with a burst of 20 (GCRA, go-redis/redis_rate), counted in
// Redis so that every replica sees the same count.
var authRate = redis_rate.PerMinute(20)

// authLimited counts cost sign-in requests of r's client and, when that
// is over authRate, answers 429 with Retry-After and says so. A cost of 0
// only asks whether one more would be refused (a break-glass request is
// refused before its password is checked, and counted only when the
// password is wrong).
//
// The client is r.RemoteAddr's host: X-Forwarded-For is not trusted,
// since anyone can send it; behind a reverse proxy every client shares
// the proxy's limit. Redis keys hold a hash of the address, not the
// address. Without Redis (Options.Redis nil) there is no limit, and when
// Redis fails the request goes through (logged): the break-glass login
// must work when other things are down.
func (h *Handler) authLimited(w http.ResponseWriter, r *http.Request, cost int) bool {
	if h.auth.limiter == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	res, err := h.auth.limiter.AllowN(ctx, authLimitKey(r), authRate, cost)
	if err != nil {
		h.log.Warn("console: sign-in rate limit unavailable", "err", err)
		return false
	}
	var retry time.Duration
	switch {
	case cost > 0 && res.Allowed == 0:
		retry = res.RetryAfter
	case cost == 0 && res.Remaining < 1:
		retry = authRate.Period / time.Duration(authRate.Rate)
	default:
		return false
	}
	secs := int(math.Ceil(retry.Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	h.log.Info("console: sign-in rate limit reached")
	h.authMessage(w, r, http.StatusTooManyRequests, "auth.limited.title", "auth.limited.text")
	return true
}

// authLimitKey is the Redis key of r's client: a hash of its address, so
// that Redis holds no address.
func authLimitKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	sum := sha256.Sum256([]byte("sisnotify console sign-in\x00" + host))
	return "sisnotify:console:signin:" + hex.EncodeToString(sum[:16])
}
