package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// The SSO sign-in: OpenID Connect's authorization code flow with PKCE
// (S256), a state and a nonce. The state, the nonce, the PKCE verifier and
// the page to return to wait in a short-lived cookie (authFlowCookie) on
// /console/auth/ between the sign-in page and the callback; they are
// random and good for one sign-in, so the cookie needs no signature (and
// any replica can read it).

const (
	// authFlowCookie holds one sign-in's state, nonce, verifier and back.
	authFlowCookie = "sisnotify_console_signin"
	// authFlowLife is how long a sign-in may take at the provider.
	authFlowLife = 10 * time.Minute
	// authIdPTimeout bounds each call to the provider (discovery, token
	// exchange, keys): a provider that hangs must not hang the console.
	authIdPTimeout = 10 * time.Second
)

// authIdPClient is the HTTP client for the provider.
var authIdPClient = &http.Client{Timeout: authIdPTimeout}

// authProvider is the OIDC provider, discovered on the first sign-in
// rather than in New: the console (and its break-glass login) must start
// when the SSO is down. A failed discovery is tried again at the next
// sign-in.
type authProvider struct {
	cfg OIDC

	mu         sync.Mutex
	p          *oidc.Provider
	endSession string // the provider's end_session_endpoint, if any
}

// provider is the discovered provider, discovering it now if need be.
func (a *authProvider) provider(ctx context.Context) (*oidc.Provider, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.p != nil {
		return a.p, nil
	}
	ctx, cancel := context.WithTimeout(ctx, authIdPTimeout)
	defer cancel()
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, authIdPClient), a.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("console: discover the OIDC provider: %w", err)
	}
	var meta struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if err := p.Claims(&meta); err == nil && strings.HasPrefix(meta.EndSession, "https://") {
		a.endSession = meta.EndSession
	}
	a.p = p
	return p, nil
}

// signOutURL is where a person signs out of the university account too,
// "" when the provider (discovered) names no such page.
func (a *authProvider) signOutURL() string {
	if a == nil {
		return ""
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.endSession == "" {
		return ""
	}
	return a.endSession + "?client_id=" + url.QueryEscape(a.cfg.ClientID)
}

// oauth2Config is the client's registration at p, redirecting to r's
// callback.
func (h *Handler) oauth2Config(p *oidc.Provider, r *http.Request) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     h.opt.OIDC.ClientID,
		ClientSecret: h.opt.OIDC.ClientSecret,
		Endpoint:     p.Endpoint(),
		RedirectURL:  h.authRedirectURL(r),
		Scopes:       []string{oidc.ScopeOpenID, "email", "profile"},
	}
}

// authRedirectURL is the callback's URL: under the public URL when it is
// set (production: register exactly this at the provider), else from the
// request (http unless it came over TLS, and its Host). X-Forwarded-Proto
// and -Host are not read: behind a proxy, set the public URL.
func (h *Handler) authRedirectURL(r *http.Request) string {
	if h.opt.PublicURL != "" {
		return h.opt.PublicURL + "/console/auth/callback"
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/console/auth/callback"
}

// authLogin is the sign-in page (GET /console/auth/login?back=…); with
// start=1 (its button) it starts the SSO's flow, and with basic=1 (its
// break-glass link) it asks for the break-glass login.
//
// It is a page rather than an immediate redirect to the provider so that
// a person sees where they are going, the office can reach the
// break-glass login when the SSO is down (the page says so), and a link
// preview or prefetch starts no flow.
func (h *Handler) authLogin(w http.ResponseWriter, r *http.Request) {
	if h.authLimited(w, r, 1) {
		return
	}
	q := r.URL.Query()
	back := authSafeBack(q.Get("back"))
	if q.Get("basic") == "1" {
		h.authBasicLogin(w, r, back)
		return
	}
	if v := h.sessionViewer(w, r); v != nil {
		http.Redirect(w, r, back, http.StatusSeeOther)
		return
	}
	page := authPageData{Back: back, SSO: h.auth.idp != nil, Basic: h.opt.BreakGlassUser != ""}
	if !page.SSO || q.Get("start") != "1" {
		h.authRender(w, r, http.StatusOK, "auth-signin", page)
		return
	}
	p, err := h.auth.idp.provider(r.Context())
	if err != nil {
		h.log.Error("console: sign-in unavailable", "err", err)
		page.Unavailable = true
		h.authRender(w, r, http.StatusServiceUnavailable, "auth-signin", page)
		return
	}
	var f authFlow
	if f.State, err = authRandom(32); err == nil {
		f.Nonce, err = authRandom(32)
	}
	if err != nil {
		h.log.Error("console: sign-in", "err", err)
		h.authMessage(w, r, http.StatusInternalServerError, "auth.failed.title", "auth.failed.text")
		return
	}
	f.Verifier, f.Back = oauth2.GenerateVerifier(), back
	h.authSetCookie(w, r, authFlowCookie, f.encode(), "/console/auth/", int(authFlowLife/time.Second))
	to := h.oauth2Config(p, r).AuthCodeURL(f.State, oidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier))
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// authBasicLogin is the break-glass login's entry: it asks for the
// credentials (401 and the Basic challenge) until the browser sends the
// right ones, then marks the browser as a break-glass one and goes back.
func (h *Handler) authBasicLogin(w http.ResponseWriter, r *http.Request, back string) {
	if h.opt.BreakGlassUser == "" {
		h.authMessage(w, r, http.StatusNotFound, "auth.nobasic.title", "auth.nobasic.text")
		return
	}
	v, limited := h.breakGlassChecked(w, r)
	if limited {
		return
	}
	if v == nil {
		authChallenge(w)
		h.authMessage(w, r, http.StatusUnauthorized, "auth.basic.title", "auth.basic.text")
		return
	}
	h.authSetCookie(w, r, authBasicCookie, "1", Path, 0)
	if err := h.store.ConsoleSessionAudit(r.Context(), h.opt.Now(), v.Email, string(v.Role), "sign-in", map[string]string{"via": "break-glass"}); err != nil {
		h.log.Error("console: audit a sign-in", "err", err)
	}
	h.log.Info("console: signed in", "role", v.Role, "via", "break-glass")
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// errSignIn is a sign-in that the console refuses (a forged or stale
// callback, a token that does not verify): the person starts again.
var errSignIn = errors.New("sign-in refused")

// authCallback is where the provider sends the browser back (GET
// /console/auth/callback?code=…&state=…): the state must be the flow
// cookie's, the code is exchanged with the PKCE verifier, the ID token
// verified and its nonce checked; then the person's role decides between
// a new session and the no-access page.
func (h *Handler) authCallback(w http.ResponseWriter, r *http.Request) {
	if h.authLimited(w, r, 1) {
		return
	}
	if h.auth.idp == nil {
		h.authMessage(w, r, http.StatusNotFound, "auth.nosso.title", "auth.nosso.text")
		return
	}
	// A flow is good for one callback, whatever comes of it.
	h.authSetCookie(w, r, authFlowCookie, "", "/console/auth/", -1)
	email, err := h.authCallbackEmail(r)
	if err != nil {
		h.log.Info("console: sign-in refused", "err", err)
		status, text := http.StatusBadRequest, "auth.refused.text"
		if !errors.Is(err, errSignIn) {
			status, text = http.StatusBadGateway, "auth.unavailable.text"
		}
		h.authMessage(w, r, status, "auth.refused.title", text)
		return
	}
	role, faculties, err := h.authRole(r.Context(), email)
	if err != nil {
		h.log.Error("console: sign-in", "err", err)
		h.authMessage(w, r, http.StatusInternalServerError, "auth.failed.title", "auth.failed.text")
		return
	}
	if role == "" {
		h.log.Info("console: sign-in of an account with no access")
		http.Redirect(w, r, "/console/auth/no-access", http.StatusSeeOther)
		return
	}
	if err := h.sessionStart(r.Context(), w, r, email, role, faculties); err != nil {
		h.log.Error("console: sign-in", "err", err)
		h.authMessage(w, r, http.StatusInternalServerError, "auth.failed.title", "auth.failed.text")
		return
	}
	f, _ := authFlowOf(r)
	http.Redirect(w, r, authSafeBack(f.Back), http.StatusSeeOther)
}

// authCallbackEmail is the verified email address of the callback r
// (lower case). The errors wrapping errSignIn are the request's fault;
// the others the provider's.
func (h *Handler) authCallbackEmail(r *http.Request) (string, error) {
	f, ok := authFlowOf(r)
	if !ok {
		return "", fmt.Errorf("%w: no sign-in under way (no or bad flow cookie)", errSignIn)
	}
	q := r.URL.Query()
	if !authCSRFEqual(q.Get("state"), f.State) {
		return "", fmt.Errorf("%w: state mismatch", errSignIn)
	}
	if e := q.Get("error"); e != "" {
		return "", fmt.Errorf("%w: the provider answered %.40q", errSignIn, e)
	}
	code := q.Get("code")
	if code == "" {
		return "", fmt.Errorf("%w: no code", errSignIn)
	}
	p, err := h.auth.idp.provider(r.Context())
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(r.Context(), authIdPTimeout)
	defer cancel()
	ctx = context.WithValue(ctx, oauth2.HTTPClient, authIdPClient)
	tok, err := h.oauth2Config(p, r).Exchange(ctx, code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 {
			return "", fmt.Errorf("%w: exchange the code: %v", errSignIn, err)
		}
		return "", fmt.Errorf("console: exchange the code: %w", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return "", errors.New("console: the provider's token answer has no id_token")
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: h.opt.OIDC.ClientID, Now: h.opt.Now}).Verify(ctx, raw)
	if err != nil {
		return "", fmt.Errorf("%w: verify the ID token: %v", errSignIn, err)
	}
	if !authCSRFEqual(idt.Nonce, f.Nonce) {
		return "", fmt.Errorf("%w: nonce mismatch", errSignIn)
	}
	var claims struct {
		Email         string `json:"email"`
		EmailVerified *bool  `json:"email_verified"`
	}
	if err := idt.Claims(&claims); err != nil {
		return "", fmt.Errorf("%w: the ID token's claims: %v", errSignIn, err)
	}
	email := strings.ToLower(strings.TrimSpace(claims.Email))
	if email == "" || !strings.Contains(email, "@") {
		return "", fmt.Errorf("%w: the ID token has no email claim", errSignIn)
	}
	if claims.EmailVerified != nil && !*claims.EmailVerified {
		return "", fmt.Errorf("%w: the email is not verified", errSignIn)
	}
	return email, nil
}

// authRole is what email may do: office when it is a staff address, dean
// of their faculties when it is the dean_email of current faculties, and
// "" (no access) otherwise. It is decided at sign-in and kept in the
// session: a change of the staff list or of a faculty's dean counts from
// the person's next sign-in.
func (h *Handler) authRole(ctx context.Context, email string) (Role, []string, error) {
	if slices.ContainsFunc(h.opt.StaffEmails, func(s string) bool { return strings.EqualFold(strings.TrimSpace(s), email) }) {
		return RoleOffice, nil, nil
	}
	ids, err := h.store.ConsoleSessionDeanFaculties(ctx, email)
	if err != nil {
		return "", nil, err
	}
	if len(ids) > 0 {
		return RoleDean, ids, nil
	}
	return "", nil, nil
}

// authNoAccess is the page of an account that may not use the console
// (403): it says whom to ask, and offers to sign out of the university
// account to use another one.
func (h *Handler) authNoAccess(w http.ResponseWriter, r *http.Request) {
	h.authRender(w, r, http.StatusForbidden, "auth-noaccess", authPageData{SignOutURL: h.auth.idp.signOutURL()})
}

// authSignedOut is the page after sign-out.
func (h *Handler) authSignedOut(w http.ResponseWriter, r *http.Request) {
	h.authRender(w, r, http.StatusOK, "auth-signedout", authPageData{SignOutURL: h.auth.idp.signOutURL()})
}

// authFlow is one sign-in under way.
type authFlow struct {
	State, Nonce, Verifier, Back string
}

// encode is f as a cookie value: its fields are base64url (back encoded
// here), joined by dots.
func (f authFlow) encode() string {
	return strings.Join([]string{f.State, f.Nonce, f.Verifier, authB64(f.Back)}, ".")
}

// authFlowOf is the sign-in under way in r's flow cookie.
func authFlowOf(r *http.Request) (authFlow, bool) {
	c, err := r.Cookie(authFlowCookie)
	if err != nil {
		return authFlow{}, false
	}
	parts := strings.Split(c.Value, ".")
	if len(parts) != 4 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return authFlow{}, false
	}
	back, ok := authUnB64(parts[3])
	if !ok {
		return authFlow{}, false
	}
	return authFlow{State: parts[0], Nonce: parts[1], Verifier: parts[2], Back: back}, true
}
