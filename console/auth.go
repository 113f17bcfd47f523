package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
)

// randomKey is a new random 32-byte key.
func randomKey() ([]byte, error) {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("console: random key: %w", err)
	}
	return k, nil
}

// authRoutes registers sign-in and sign-out.
func (h *Handler) authRoutes() error { return nil }

// signedIn lets a request through with its Viewer in the context when it
// comes from office staff or a dean; a request that changes something
// (any method but GET and HEAD) must also carry the viewer's CSRF token.
func (h *Handler) signedIn(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := h.breakGlass(r)
		if v == nil {
			w.Header().Set("WWW-Authenticate", `Basic realm="sisnotify console", charset="UTF-8"`)
			http.Error(w, "sign in", http.StatusUnauthorized)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead && !checkCSRF(r, v) {
			http.Error(w, "the form is out of date: go back, reload the page and try again", http.StatusForbidden)
			return
		}
		next(w, r.WithContext(withViewer(r.Context(), v)))
	})
}

// officeOnly is signedIn for the office: a dean gets 403.
func (h *Handler) officeOnly(next http.HandlerFunc) http.Handler {
	return h.signedIn(func(w http.ResponseWriter, r *http.Request) {
		if !viewerOf(r).CanAct() {
			http.Error(w, "only the International Office may do this", http.StatusForbidden)
			return
		}
		next(w, r)
	})
}

// breakGlass is the office viewer of a request with the break-glass
// login's HTTP Basic credentials; nil otherwise.
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
	return &Viewer{Email: "break-glass:" + u, Role: RoleOffice, CSRF: h.derive("csrf:" + u), Lang: h.opt.Lang, BreakGlass: true}
}
