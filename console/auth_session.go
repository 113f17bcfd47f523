package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/iec-almaty/sisnotify/store"
)

// The session cookie and its limits.
const (
	// authSessionCookie carries the session's random token (Path
	// /console/, HttpOnly, SameSite=Lax, Secure over https).
	authSessionCookie = "sisnotify_console"
	// authBasicCookie marks a browser that used the break-glass login, so
	// that a page it asks for without credentials gets the Basic
	// challenge (the browser then resends the ones it keeps) rather than
	// the SSO's sign-in page. It holds no secret.
	authBasicCookie = "sisnotify_console_basic"
	// authLangCookie is the language the viewer chose (POST /console/lang).
	authLangCookie = "sisnotify_console_lang"
	// authSessionLife is a session's absolute limit, however busy.
	authSessionLife = 12 * time.Hour
	// authTouchEvery is how often a session's last_seen_at is written: at
	// most once a minute, not on every request.
	authTouchEvery = time.Minute
)

// authRandom is n random bytes, base64url without padding.
func authRandom(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("console: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// authTokenHash is the hash a session is stored under; ok is false for a
// value that cannot be a token of ours.
func authTokenHash(token string) (hash []byte, ok bool) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) != 32 {
		return nil, false
	}
	sum := sha256.Sum256(raw)
	return sum[:], true
}

// authSecure says whether the console's cookies get the Secure flag: when
// the request came over TLS or the console's public URL is https. Plain
// http on a development machine (no PublicURL, no TLS) gets cookies
// without it, or the browser would not send them back.
func (h *Handler) authSecure(r *http.Request) bool {
	return r.TLS != nil || strings.HasPrefix(h.opt.PublicURL, "https://")
}

// authSetCookie sets (maxAge > 0 or 0: a browser-session cookie) or
// clears (maxAge < 0) a console cookie at path.
func (h *Handler) authSetCookie(w http.ResponseWriter, r *http.Request, name, value, path string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: path, MaxAge: maxAge,
		HttpOnly: true, Secure: h.authSecure(r), SameSite: http.SameSiteLaxMode,
	})
}

// authLang is the language r's pages are in: the viewer's choice, else
// the office's.
func (h *Handler) authLang(r *http.Request) string {
	if c, err := r.Cookie(authLangCookie); err == nil {
		switch c.Value {
		case "ru", "kk", "en":
			return c.Value
		}
	}
	return h.opt.Lang
}

// authUsedBasic says whether r's browser used the break-glass login.
func authUsedBasic(r *http.Request) bool {
	_, err := r.Cookie(authBasicCookie)
	return err == nil
}

// sessionViewer is the viewer of r's session, nil when it has none that
// is alive. A cookie that names no live session (forged, signed out,
// idle too long, past its limit) is cleared, and an ended session's row
// deleted. The session's last_seen_at is moved at most once a minute.
func (h *Handler) sessionViewer(w http.ResponseWriter, r *http.Request) *Viewer {
	c, err := r.Cookie(authSessionCookie)
	if err != nil {
		return nil
	}
	hash, ok := authTokenHash(c.Value)
	var cs store.ConsoleSession
	if ok {
		if cs, ok, err = h.store.ConsoleSessionGet(r.Context(), hash); err != nil {
			h.log.Error("console: session", "err", err)
			return nil // not cleared: the database may be back soon
		}
	}
	now := h.opt.Now()
	if ok && (!now.Before(cs.ExpiresAt) || now.Sub(cs.LastSeenAt) >= h.opt.IdleTimeout) {
		if _, err := h.store.ConsoleSessionDelete(r.Context(), hash); err != nil {
			h.log.Error("console: end a session", "err", err)
		}
		ok = false
	}
	if !ok {
		h.authSetCookie(w, r, authSessionCookie, "", Path, -1)
		return nil
	}
	if now.Sub(cs.LastSeenAt) >= authTouchEvery {
		if err := h.store.ConsoleSessionTouch(r.Context(), hash, now); err != nil {
			h.log.Error("console: touch a session", "err", err)
		}
	}
	return &Viewer{Email: cs.Email, Role: Role(cs.Role), FacultyIDs: cs.FacultyIDs, CSRF: cs.CSRF, Lang: h.authLang(r)}
}

// sessionStart signs email in with role (and a dean's faculties): it
// deletes the sessions that have ended (lazily, here rather than by a
// job), stores a new one, sets its cookie and audits the sign-in.
func (h *Handler) sessionStart(ctx context.Context, w http.ResponseWriter, r *http.Request, email string, role Role, faculties []string) error {
	now := h.opt.Now()
	if _, err := h.store.ConsoleSessionDeleteExpired(ctx, now, now.Add(-h.opt.IdleTimeout)); err != nil {
		h.log.Error("console: delete ended sessions", "err", err)
	}
	token, err := authRandom(32)
	if err != nil {
		return err
	}
	csrf, err := authRandom(32)
	if err != nil {
		return err
	}
	hash, _ := authTokenHash(token)
	if err := h.store.ConsoleSessionCreate(ctx, store.ConsoleSession{
		TokenHash: hash, Email: email, Role: string(role), FacultyIDs: faculties, CSRF: csrf,
		CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(authSessionLife),
	}); err != nil {
		return err
	}
	// A browser cookie (no Max-Age): the server's limits end the session.
	h.authSetCookie(w, r, authSessionCookie, token, Path, 0)
	h.authSetCookie(w, r, authBasicCookie, "", Path, -1)
	if err := h.store.ConsoleSessionAudit(ctx, now, email, string(role), "sign-in", map[string]string{"via": "sso"}); err != nil {
		h.log.Error("console: audit a sign-in", "err", err)
	}
	h.log.Info("console: signed in", "role", role, "via", "sso")
	return nil
}

// authLogout ends the viewer's session: the row and the cookie go, the
// sign-out is audited, and the browser lands on the signed-out page. It
// passes the cross-origin check and, when there is a session, its CSRF
// token; without a session (it had ended, or the person was never let
// in) it only clears the cookies.
func (h *Handler) authLogout(w http.ResponseWriter, r *http.Request) {
	if err := h.auth.cop.Check(r); err != nil {
		h.authMessage(w, r, http.StatusForbidden, "auth.crossorigin.title", "auth.crossorigin.text")
		return
	}
	v := h.sessionViewer(w, r)
	if v == nil {
		v = h.breakGlass(r)
	}
	if v != nil {
		if !checkCSRF(r, v) {
			h.authMessage(w, r, http.StatusForbidden, "auth.csrf.title", "auth.csrf.text")
			return
		}
		via := "sso"
		if v.BreakGlass {
			via = "break-glass"
		} else if c, err := r.Cookie(authSessionCookie); err == nil {
			if hash, ok := authTokenHash(c.Value); ok {
				if _, err := h.store.ConsoleSessionDelete(r.Context(), hash); err != nil {
					h.log.Error("console: sign out", "err", err)
					h.authMessage(w, r, http.StatusInternalServerError, "auth.failed.title", "auth.failed.text")
					return
				}
			}
		}
		if err := h.store.ConsoleSessionAudit(r.Context(), h.opt.Now(), v.Email, string(v.Role), "sign-out", map[string]string{"via": via}); err != nil {
			h.log.Error("console: audit a sign-out", "err", err)
		}
		h.log.Info("console: signed out", "role", v.Role, "via", via)
	}
	h.authSetCookie(w, r, authSessionCookie, "", Path, -1)
	h.authSetCookie(w, r, authBasicCookie, "", Path, -1)
	http.Redirect(w, r, "/console/auth/signed-out", http.StatusSeeOther)
}

// authSafeBack is back when it is a console page to return to after
// sign-in, else the console's front page: only a path under /console/
// (not sign-in's own), never one a browser could read as another host.
func authSafeBack(back string) string {
	if !strings.HasPrefix(back, Path) || strings.HasPrefix(back, "/console/auth/") ||
		strings.Contains(back, "//") || strings.ContainsAny(back, "\\\r\n\t") {
		return Path
	}
	return back
}

// authCSRFEqual compares two tokens in constant time.
func authCSRFEqual(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// authB64 is s in base64url without padding.
func authB64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// authUnB64 undoes authB64.
func authUnB64(s string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	return string(b), err == nil
}
