package console

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-redis/redis_rate/v10"
)

// Who signs in, and how (the files auth_*.go):
//
//   - office staff and deans sign in through the university's OpenID
//     Connect provider (auth_oidc.go) and get a server-side session
//     (auth_session.go): the cookie carries a random token, the database
//     only its hash;
//   - the office's break-glass login (HTTP Basic) is for when the SSO is
//     down: every request carries the credentials, no session is kept;
//   - sign-in attempts are rate-limited per client address in Redis
//     (auth_limit.go), so that several replicas share the count;
//   - every request that changes something passes Go's cross-origin
//     protection and carries the viewer's CSRF token.

// authState is what sign-in keeps between requests: the OIDC provider,
// found lazily, the rate limiter, the cross-origin check and the pages.
type authState struct {
	cop     *http.CrossOriginProtection
	limiter *redis_rate.Limiter // nil: no Redis, no limit
	idp     *authProvider       // nil: SSO is off
	pages   *authPages
}

// authRoutes registers sign-in and sign-out.
func (h *Handler) authRoutes() error {
	a := &authState{cop: http.NewCrossOriginProtection()}
	if h.opt.BreakGlassUser != "" && h.opt.BreakGlassPassword == "" {
		return fmt.Errorf("console: the break-glass user %q has no password", h.opt.BreakGlassUser)
	}
	if h.opt.PublicURL != "" {
		u, err := url.Parse(h.opt.PublicURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("console: the public URL %q is not an http(s) URL", h.opt.PublicURL)
		}
		h.opt.PublicURL = strings.TrimSuffix(h.opt.PublicURL, "/")
		// Behind a proxy that rewrites Host, a browser's Origin is the
		// public one: trust it.
		if err := a.cop.AddTrustedOrigin(u.Scheme + "://" + u.Host); err != nil {
			return fmt.Errorf("console: the public URL: %w", err)
		}
	}
	if h.opt.Redis != nil {
		a.limiter = redis_rate.NewLimiter(h.opt.Redis)
	}
	if h.opt.OIDC.Issuer != "" {
		a.idp = &authProvider{cfg: h.opt.OIDC}
	}
	var err error
	if a.pages, err = newAuthPages(); err != nil {
		return err
	}
	h.auth = a
	h.mux.HandleFunc("GET /console/auth/login", h.authLogin)
	h.mux.HandleFunc("GET /console/auth/callback", h.authCallback)
	h.mux.HandleFunc("POST /console/auth/logout", h.authLogout)
	h.mux.HandleFunc("GET /console/auth/no-access", h.authNoAccess)
	h.mux.HandleFunc("GET /console/auth/signed-out", h.authSignedOut)
	return nil
}

// signedIn lets a request through with its Viewer in the context when it
// comes from office staff or a dean; a request that changes something
// (any method but GET and HEAD) must also come from the console's own
// pages (Go's cross-origin protection: a cross-site form post is refused
// even when the browser would add cached Basic credentials) and carry the
// viewer's CSRF token.
//
// A request without a viewer: a GET goes to the sign-in page (or gets the
// Basic challenge when the SSO is off, or when this browser used the
// break-glass login); anything else gets 401.
func (h *Handler) signedIn(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		safe := r.Method == http.MethodGet || r.Method == http.MethodHead
		if !safe {
			if err := h.auth.cop.Check(r); err != nil {
				h.authMessage(w, r, http.StatusForbidden, "auth.crossorigin.title", "auth.crossorigin.text")
				return
			}
		}
		v := h.sessionViewer(w, r)
		if v == nil {
			var limited bool
			if v, limited = h.breakGlassChecked(w, r); limited {
				return
			}
		}
		if v == nil {
			h.notSignedIn(w, r, safe)
			return
		}
		if !safe && !checkCSRF(r, v) {
			h.authMessage(w, r, http.StatusForbidden, "auth.csrf.title", "auth.csrf.text")
			return
		}
		next(w, r.WithContext(withViewer(r.Context(), v)))
	})
}

// notSignedIn answers a request that has no viewer.
func (h *Handler) notSignedIn(w http.ResponseWriter, r *http.Request, safe bool) {
	basic := h.opt.BreakGlassUser != "" && (h.auth.idp == nil || authUsedBasic(r))
	if basic {
		authChallenge(w)
	}
	if safe && !basic && h.auth.idp != nil {
		http.Redirect(w, r, "/console/auth/login?back="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return
	}
	h.authMessage(w, r, http.StatusUnauthorized, "auth.ended.title", "auth.ended.text")
}

// officeOnly is signedIn for the office: a dean gets 403.
func (h *Handler) officeOnly(next http.HandlerFunc) http.Handler {
	return h.signedIn(func(w http.ResponseWriter, r *http.Request) {
		if !viewerOf(r).CanAct() {
			h.authMessage(w, r, http.StatusForbidden, "auth.officeonly.title", "auth.officeonly.text")
			return
		}
		next(w, r)
	})
}

// breakGlass is the office viewer of a request with the break-glass
// login's HTTP Basic credentials; nil otherwise. Its CSRF token is an
// HMAC under the break-glass password, so that every replica, before and
// after a restart, derives the same one, and nobody without the password
// can.
func (h *Handler) breakGlass(r *http.Request) *Viewer {
	if h.opt.BreakGlassUser == "" {
		return nil
	}
	u, p, ok := r.BasicAuth()
	if !ok {
		return nil
	}
	gu, wu := sha256.Sum256([]byte(u)), sha256.Sum256([]byte(h.opt.BreakGlassUser))
	gp, wp := sha256.Sum256([]byte(p)), sha256.Sum256([]byte(h.opt.BreakGlassPassword))
	if subtle.ConstantTimeCompare(gu[:], wu[:])&subtle.ConstantTimeCompare(gp[:], wp[:]) != 1 {
		return nil
	}
	return &Viewer{Email: "break-glass:" + u, Role: RoleOffice, CSRF: breakGlassCSRF(h.opt.BreakGlassPassword, u), Lang: h.authLang(r), BreakGlass: true}
}

// breakGlassCSRF is the form token of the break-glass login user: an HMAC
// keyed by its password.
func breakGlassCSRF(password, user string) string {
	m := hmac.New(sha256.New, []byte(password))
	m.Write([]byte("sisnotify console csrf\x00" + user))
	return hex.EncodeToString(m.Sum(nil))
}

// breakGlassChecked is breakGlass under the sign-in rate limit: a client
// over the limit is answered 429 (limited) before its credentials are
// checked, and a wrong password counts against its limit.
func (h *Handler) breakGlassChecked(w http.ResponseWriter, r *http.Request) (v *Viewer, limited bool) {
	if h.opt.BreakGlassUser == "" {
		return nil, false
	}
	if _, _, ok := r.BasicAuth(); !ok {
		return nil, false
	}
	if h.authLimited(w, r, 0) {
		return nil, true
	}
	if v = h.breakGlass(r); v == nil {
		h.log.Info("console: break-glass login refused")
		if h.authLimited(w, r, 1) {
			return nil, true
		}
	}
	return v, false
}

// authChallenge asks the browser for the break-glass credentials.
func authChallenge(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Basic realm="sisnotify console", charset="UTF-8"`)
}
