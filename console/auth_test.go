package console

import (
	"crypto/rand"
	"encoding/base64"
	"html"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lib/pq"
	"github.com/oauth2-proxy/mockoidc"
)

// Office staff sign in through the SSO (their address matched whatever
// its case) and reach the page they asked for; the session is kept
// server-side under the token's hash, its cookie is HttpOnly and Lax on
// /console/, and the sign-in is audited.
func TestAuthStaffSignsIn(t *testing.T) {
	e := newAuthEnv(t, nil)
	b := e.browser()
	resp, body := b.signIn("Office@UNI.example")
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != authWhoAmI {
		t.Fatalf("sign-in ended at %s with %d: %s", resp.Request.URL, resp.StatusCode, body)
	}
	v, _ := b.whoami()
	if v == nil || v.Email != authStaff || v.Role != RoleOffice || v.BreakGlass || v.CSRF == "" || v.Lang != "en" {
		t.Fatalf("viewer %+v; want the office, by SSO, with a CSRF token, in English", v)
	}
	c := b.lastCookie(authSessionCookie)
	if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/console/" || c.Secure {
		t.Fatalf("session cookie %+v; want HttpOnly, SameSite=Lax, Path=/console/, not Secure over plain http", c)
	}
	if f := b.lastCookie(authFlowCookie); f == nil || f.MaxAge >= 0 || f.Path != "/console/auth/" {
		t.Errorf("the flow cookie was not cleared after the callback: %+v", f)
	}
	var stored [][]byte
	if err := e.db.Select(&stored, `SELECT token_hash FROM sisnotify.console_sessions`); err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(b.cookie(authSessionCookie))
	want, _ := authTokenHash(b.cookie(authSessionCookie))
	if len(stored) != 1 || string(stored[0]) != string(want) || string(stored[0]) == string(raw) {
		t.Fatalf("stored %x; want only the token's hash %x", stored, want)
	}
	if got := e.audits(); !slices.Equal(got, []string{"sign-in office@uni.example office sso"}) {
		t.Errorf("audit %q", got)
	}
	// The language is the viewer's choice.
	u, _ := url.Parse(e.srv.URL + "/console/")
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: authLangCookie, Value: "kk", Path: "/console/"}})
	if v, _ := b.whoami(); v == nil || v.Lang != "kk" {
		t.Errorf("viewer %+v; want Lang kk from the cookie", v)
	}
}

// A dean signs in as a dean of their faculties.
func TestAuthDeanSignsIn(t *testing.T) {
	e := newAuthEnv(t, nil)
	var dean struct {
		Email string         `db:"dean_email"`
		IDs   pq.StringArray `db:"ids"`
	}
	if err := e.db.Get(&dean, `SELECT dean_email, array_agg(faculty_id ORDER BY faculty_id) AS ids FROM sisnotify.faculties
		WHERE removed_at IS NULL AND dean_email IS NOT NULL GROUP BY dean_email ORDER BY dean_email LIMIT 1`); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.signIn(strings.ToUpper(dean.Email))
	v, resp := b.whoami()
	if v == nil {
		t.Fatalf("the dean is not signed in: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	if v.Role != RoleDean || v.Email != strings.ToLower(dean.Email) || !slices.Equal(v.FacultyIDs, []string(dean.IDs)) || v.CanAct() {
		t.Fatalf("viewer %+v; want a dean of %v who cannot act", v, dean.IDs)
	}
	// A dean is refused the office's actions even with the right token.
	resp, _ = b.do("POST", authActRoute, url.Values{"csrf": {v.CSRF}}, nil)
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a dean's action: %d; want 403", resp.StatusCode)
	}
	// Office staff who are also deans are office.
	e2 := newAuthEnv(t, func(o *Options) { o.StaffEmails = []string{dean.Email} })
	b2 := e2.browser()
	b2.signIn(dean.Email)
	if v, _ := b2.whoami(); v == nil || v.Role != RoleOffice || len(v.FacultyIDs) != 0 {
		t.Errorf("staff and dean: %+v; want office", v)
	}
}

// Anyone else gets the polite no-access page in the console's language,
// and no session.
func TestAuthNoAccess(t *testing.T) {
	e := newAuthEnv(t, func(o *Options) { o.Lang = "ru" })
	b := e.browser()
	resp, body := b.signIn("stranger@uni.example")
	if resp.StatusCode != http.StatusForbidden || resp.Request.URL.Path != "/console/auth/no-access" {
		t.Fatalf("stranger: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	for _, want := range []string{`lang="ru"`, t2("ru", "auth.noaccess.title"), "международный отдел", `action="/console/auth/logout"`} {
		if !strings.Contains(body, want) {
			t.Errorf("no-access page lacks %q:\n%s", want, body)
		}
	}
	if n := e.sessions(); n != 0 || b.cookie(authSessionCookie) != "" {
		t.Errorf("%d sessions, cookie %q; want none", n, b.cookie(authSessionCookie))
	}
	if v, _ := b.whoami(); v != nil {
		t.Errorf("stranger is %+v", v)
	}
	// Its sign-out button works without a session.
	resp, body = b.do("POST", "/console/auth/logout", url.Values{}, nil)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/console/auth/signed-out" {
		t.Errorf("sign-out without a session: %d at %s: %s", resp.StatusCode, resp.Request.URL, body)
	}
	if got := e.audits(); len(got) != 0 {
		t.Errorf("audit %q; want nothing for a stranger", got)
	}
}

// t2 is t, for tests that read the console's words.
func t2(lang, key string) string { return t(lang, key) }

// A forged or unknown session cookie signs nobody in; it is cleared and
// the browser sent to sign in.
func TestAuthForgedCookie(t *testing.T) {
	e := newAuthEnv(t, nil)
	random := make([]byte, 32)
	_, _ = rand.Read(random)
	for _, value := range []string{base64.RawURLEncoding.EncodeToString(random), "not-a-token", strings.Repeat("A", 43)} {
		b := e.browser()
		u, _ := url.Parse(e.srv.URL + "/console/")
		b.c.Jar.SetCookies(u, []*http.Cookie{{Name: authSessionCookie, Value: value, Path: "/console/"}})
		resp, err := b.noRedirects().Get(e.srv.URL + authWhoAmI)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/console/auth/login?back="+url.QueryEscape(authWhoAmI) {
			t.Errorf("cookie %q: %d to %q; want 303 to sign-in", value, resp.StatusCode, loc)
		}
		if c := b.lastCookie(authSessionCookie); c == nil || c.MaxAge >= 0 {
			t.Errorf("cookie %q was not cleared: %+v", value, c)
		}
		resp, _ = b.do("POST", authActRoute, url.Values{"csrf": {"x"}}, nil)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("cookie %q: a POST got %d; want 401", value, resp.StatusCode)
		}
	}
}

// A POST needs the session's CSRF token.
func TestAuthCSRF(t *testing.T) {
	e := newAuthEnv(t, nil)
	b := e.browser()
	b.signIn(authStaff)
	v, _ := b.whoami()
	if v == nil {
		t.Fatal("not signed in")
	}
	for name, form := range map[string]url.Values{"none": {}, "wrong": {"csrf": {v.CSRF + "x"}}, "empty": {"csrf": {""}}} {
		resp, body := b.do("POST", authActRoute, form, nil)
		if resp.StatusCode != http.StatusForbidden || strings.Contains(body, "done") {
			t.Errorf("%s token: %d %s; want 403", name, resp.StatusCode, body)
		}
	}
	resp, body := b.do("POST", authActRoute, url.Values{"csrf": {v.CSRF}}, nil)
	if resp.StatusCode != http.StatusOK || body != "done" {
		t.Errorf("right token: %d %s; want 200 done", resp.StatusCode, body)
	}
	// Another session's token is not this one's.
	b2 := e.browser()
	b2.signIn(authStaff)
	if resp, _ := b2.do("POST", authActRoute, url.Values{"csrf": {v.CSRF}}, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("another session's token: %d; want 403", resp.StatusCode)
	}
}

// A cross-site POST is refused whatever it carries: a session cookie, or
// the Basic credentials a browser keeps, and the right token.
func TestAuthCrossOrigin(t *testing.T) {
	e := newAuthEnv(t, nil)
	bg := e.browser()
	bg.c.Jar = nil
	basic := func(r *http.Request) { r.SetBasicAuth(authBGUser, authBGPass) }
	_, body := bg.do("GET", authWhoAmI, nil, basic)
	if !strings.Contains(body, `"BreakGlass":true`) {
		t.Fatalf("break-glass whoami: %s", body)
	}
	csrf := e.h.breakGlass(basicRequest()).CSRF
	crossSite := func(r *http.Request) {
		basic(r)
		r.Header.Set("Origin", "https://evil.example")
		r.Header.Set("Sec-Fetch-Site", "cross-site")
	}
	if resp, body := bg.do("POST", authActRoute, url.Values{"csrf": {csrf}}, crossSite); resp.StatusCode != http.StatusForbidden || body == "done" {
		t.Errorf("cross-site POST with Basic: %d; want 403", resp.StatusCode)
	}
	oldBrowser := func(r *http.Request) { basic(r); r.Header.Set("Origin", "https://evil.example") }
	if resp, _ := bg.do("POST", authActRoute, url.Values{"csrf": {csrf}}, oldBrowser); resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin POST (Origin only) with Basic: %d; want 403", resp.StatusCode)
	}
	sameOrigin := func(r *http.Request) { basic(r); r.Header.Set("Sec-Fetch-Site", "same-origin") }
	if resp, body := bg.do("POST", authActRoute, url.Values{"csrf": {csrf}}, sameOrigin); resp.StatusCode != http.StatusOK || body != "done" {
		t.Errorf("same-origin POST with Basic: %d %s; want 200", resp.StatusCode, body)
	}

	b := e.browser()
	b.signIn(authStaff)
	v, _ := b.whoami()
	resp, _ := b.do("POST", authActRoute, url.Values{"csrf": {v.CSRF}}, func(r *http.Request) {
		r.Header.Set("Origin", "https://evil.example")
		r.Header.Set("Sec-Fetch-Site", "cross-site")
	})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site POST with a session: %d; want 403", resp.StatusCode)
	}
	resp, _ = b.do("POST", "/console/auth/logout", url.Values{"csrf": {v.CSRF}}, func(r *http.Request) {
		r.Header.Set("Sec-Fetch-Site", "cross-site")
	})
	if resp.StatusCode != http.StatusForbidden || e.sessions() != 1 {
		t.Errorf("cross-site sign-out: %d, %d sessions; want 403 and the session kept", resp.StatusCode, e.sessions())
	}
}

// basicRequest is a request with the break-glass credentials.
func basicRequest() *http.Request {
	r, _ := http.NewRequest("GET", "/console/", nil)
	r.SetBasicAuth(authBGUser, authBGPass)
	return r
}

// A session unused for the idle timeout ends, and so does one past its
// absolute limit however busy; reading touches it at most once a minute.
func TestAuthSessionEnds(t *testing.T) {
	e := newAuthEnv(t, func(o *Options) { o.IdleTimeout = 30 * time.Minute })
	b := e.browser()
	b.signIn(authStaff)
	lastSeen := func() time.Time {
		var at time.Time
		if err := e.db.Get(&at, `SELECT last_seen_at FROM sisnotify.console_sessions`); err != nil {
			t.Fatal(err)
		}
		return at
	}
	e.advance(30 * time.Second)
	if v, _ := b.whoami(); v == nil || !lastSeen().Equal(authStart) {
		t.Fatalf("after 30 s: viewer %+v, last seen %v; want signed in, not touched", v, lastSeen())
	}
	e.advance(29 * time.Minute)
	if v, _ := b.whoami(); v == nil || !lastSeen().Equal(e.clock.Now()) {
		t.Fatalf("after 29.5 min: viewer %+v, last seen %v; want signed in and touched", v, lastSeen())
	}
	e.advance(29 * time.Minute)
	if v, _ := b.whoami(); v == nil {
		t.Fatal("signed out after 29 idle minutes")
	}
	e.advance(30 * time.Minute)
	if v, resp := b.whoami(); v != nil || resp.Request.URL.Path != "/console/auth/login" {
		t.Fatalf("after 30 idle minutes: %+v at %s; want the sign-in page", v, resp.Request.URL)
	}
	if n := e.sessions(); n != 0 {
		t.Errorf("%d sessions left after the idle timeout", n)
	}

	// Busy all day: the session still ends after 12 hours.
	b.signIn(authStaff)
	start := e.clock.Now()
	for e.clock.Now().Sub(start) < authSessionLife {
		if v, _ := b.whoami(); v == nil {
			t.Fatalf("signed out after %v", e.clock.Now().Sub(start))
		}
		e.advance(20 * time.Minute)
	}
	if v, _ := b.whoami(); v != nil {
		t.Fatalf("still signed in after %v", e.clock.Now().Sub(start))
	}
	// Ended sessions are deleted at the next sign-in.
	other := e.browser()
	other.signIn(authStaff)
	e.advance(31 * time.Minute)
	b.signIn(authStaff)
	if n := e.sessions(); n != 1 {
		t.Errorf("%d sessions; want the ended ones deleted at sign-in", n)
	}
}

// Sign-out needs the token, ends the session (row and cookie), shows the
// signed-out page and is audited.
func TestAuthLogout(t *testing.T) {
	e := newAuthEnv(t, nil)
	b := e.browser()
	b.signIn(authStaff)
	v, _ := b.whoami()
	if resp, _ := b.do("POST", "/console/auth/logout", url.Values{"csrf": {"wrong"}}, nil); resp.StatusCode != http.StatusForbidden || e.sessions() != 1 {
		t.Fatalf("sign-out with a wrong token: %d; want 403, session kept", resp.StatusCode)
	}
	resp, body := b.do("POST", "/console/auth/logout", url.Values{"csrf": {v.CSRF}}, nil)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/console/auth/signed-out" || !strings.Contains(body, t2("en", "auth.signedout.title")) {
		t.Fatalf("sign-out: %d at %s: %s", resp.StatusCode, resp.Request.URL, body)
	}
	if n := e.sessions(); n != 0 || b.cookie(authSessionCookie) != "" {
		t.Errorf("after sign-out: %d sessions, cookie %q", n, b.cookie(authSessionCookie))
	}
	if v, _ := b.whoami(); v != nil {
		t.Errorf("still signed in: %+v", v)
	}
	want := []string{"sign-in office@uni.example office sso", "sign-out office@uni.example office sso"}
	if got := e.audits(); !slices.Equal(got, want) {
		t.Errorf("audit %q; want %q", got, want)
	}
}

// A callback whose state is not the browser's, or whose ID token carries
// another nonce, signs nobody in.
func TestAuthStateAndNonce(t *testing.T) {
	e := newAuthEnv(t, nil)
	for _, param := range []string{"state", "nonce"} {
		b := e.browser()
		b.stopAt = strings.TrimPrefix(strings.TrimSuffix(e.idp.Issuer(), "/oidc"), "http://")
		e.idp.QueueUser(&mockoidc.MockUser{Subject: "s", Email: authStaff, EmailVerified: true})
		resp, _ := b.get("/console/auth/login?start=1")
		authorize, err := url.Parse(resp.Header.Get("Location"))
		if err != nil || resp.StatusCode != http.StatusSeeOther || !strings.HasSuffix(authorize.Path, "/oidc/authorize") {
			t.Fatalf("start: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		q := authorize.Query()
		if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("nonce") == "" || q.Get("scope") != "openid email profile" {
			t.Errorf("authorize request %v; want PKCE S256, a nonce, scopes openid email profile", q)
		}
		q.Set(param, "forged")
		authorize.RawQuery = q.Encode()
		b.stopAt = ""
		resp, body := b.get(authorize.String())
		if resp.StatusCode != http.StatusBadRequest || resp.Request.URL.Path != "/console/auth/callback" {
			t.Errorf("forged %s: %d at %s: %s", param, resp.StatusCode, resp.Request.URL, body)
		}
		if n := e.sessions(); n != 0 {
			t.Errorf("forged %s: %d sessions", param, n)
		}
	}
	// A callback with no sign-in under way is refused too.
	b := e.browser()
	if resp, _ := b.get("/console/auth/callback?code=x&state=y"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("callback out of the blue: %d; want 400", resp.StatusCode)
	}
}

// An ID token whose email is not verified signs nobody in.
func TestAuthUnverifiedEmail(t *testing.T) {
	e := newAuthEnv(t, nil)
	b := e.browser()
	e.idp.QueueUser(unverifiedUser{&mockoidc.MockUser{Subject: "u", Email: authStaff}})
	resp, _ := b.get("/console/auth/login?start=1")
	if resp.StatusCode != http.StatusBadRequest || e.sessions() != 0 {
		t.Errorf("unverified email: %d, %d sessions; want 400 and none", resp.StatusCode, e.sessions())
	}
}

// The sign-in is rate-limited per client address: over 20 a minute the
// console answers 429 with Retry-After; wrong break-glass passwords count,
// and once over the limit even the right one is not checked.
func TestAuthRateLimit(t *testing.T) {
	e := newAuthEnv(t, nil)
	b := e.browser()
	for i := range 20 {
		if resp, _ := b.get("/console/auth/login"); resp.StatusCode != http.StatusOK {
			t.Fatalf("sign-in page %d: %d", i+1, resp.StatusCode)
		}
	}
	resp, body := b.get("/console/auth/login")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, t2("en", "auth.limited.title")) {
		t.Fatalf("21st: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if resp, _ := b.get("/console/auth/callback?code=x&state=y"); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("callback over the limit: %d", resp.StatusCode)
	}
	keys, err := e.opt.Redis.Keys(t.Context(), "*").Result()
	if err != nil || len(keys) != 1 || strings.Contains(keys[0], "127.0.0.1") {
		t.Errorf("redis keys %q (%v); want one, with no address in it", keys, err)
	}

	// Without SSO a wrong password is answered by the challenge (401).
	e2 := newAuthEnvWith(t, nil, "", nil)
	b2 := e2.browser()
	b2.c.Jar = nil
	for i := range 20 {
		if resp, _ := b2.do("GET", authWhoAmI, nil, func(r *http.Request) { r.SetBasicAuth(authBGUser, "guess") }); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %d; want 401", i+1, resp.StatusCode)
		}
	}
	resp, _ = b2.do("GET", authWhoAmI, nil, func(r *http.Request) { r.SetBasicAuth(authBGUser, authBGPass) })
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("right password over the limit: %d; want 429 with Retry-After", resp.StatusCode)
	}
}

// The break-glass login: an office viewer whose CSRF token every replica
// derives alike; without credentials the browser is sent to sign in
// (SSO on) or challenged (SSO off).
func TestAuthBreakGlass(t *testing.T) {
	e := newAuthEnv(t, nil)
	v := e.h.breakGlass(basicRequest())
	if v == nil || v.Role != RoleOffice || !v.BreakGlass || v.Email != "break-glass:"+authBGUser {
		t.Fatalf("break-glass viewer %+v", v)
	}
	again, err := New(e.opt) // another replica, or after a restart
	if err != nil {
		t.Fatal(err)
	}
	if w := again.breakGlass(basicRequest()); w.CSRF != v.CSRF {
		t.Error("the break-glass CSRF token differs between two consoles")
	}
	other := e.opt
	other.BreakGlassPassword = "another"
	h3, _ := New(other)
	r := basicRequest()
	r.SetBasicAuth(authBGUser, "another")
	if w := h3.breakGlass(r); w.CSRF == v.CSRF {
		t.Error("the break-glass CSRF token does not depend on the password")
	}

	// A break-glass user without a password is a mistake, not an open door.
	nopw := e.opt
	nopw.BreakGlassPassword = ""
	if _, err := New(nopw); err == nil {
		t.Error("New accepted a break-glass user without a password")
	}

	// The sign-in page's break-glass link asks for the credentials, then
	// marks the browser so that its pages challenge rather than redirect.
	b := e.browser()
	resp, _ := b.get("/console/auth/login?basic=1&back=" + url.QueryEscape(authWhoAmI))
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
		t.Fatalf("break-glass link without credentials: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	resp, body := b.do("GET", "/console/auth/login?basic=1&back="+url.QueryEscape(authWhoAmI), nil, func(r *http.Request) { r.SetBasicAuth(authBGUser, authBGPass) })
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"BreakGlass":true`) {
		t.Fatalf("break-glass sign-in: %d at %s: %s", resp.StatusCode, resp.Request.URL, body)
	}
	if resp, _ := b.noRedirects().Get(e.srv.URL + authWhoAmI); resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("a break-glass browser without credentials: %d; want the challenge", resp.StatusCode)
	}
	if got := e.audits(); !slices.Equal(got, []string{"sign-in break-glass:office office break-glass"}) {
		t.Errorf("audit %q", got)
	}

	// Without SSO, a page challenges for Basic.
	noSSO := newAuthEnvWith(t, nil, "", nil)
	resp, _ = noSSO.browser().noRedirects().Get(noSSO.srv.URL + authWhoAmI)
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("no SSO: %d %q; want 401 with the Basic challenge", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	if _, body := noSSO.browser().get("/console/auth/login"); strings.Contains(body, "start") {
		t.Errorf("the sign-in page offers SSO when there is none:\n%s", body)
	}
}

// The provider being down at start does not stop the console: sign-in
// says the SSO is unavailable, and works once the provider is back.
func TestAuthProviderDown(t *testing.T) {
	addr := closedAddr(t)
	idp, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	e := newAuthEnvWith(t, idp, "http://"+addr+"/oidc", nil)
	b := e.browser()
	resp, body := b.get("/console/auth/login?start=1")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, html.EscapeString(t2("en", "auth.unavailable.text"))) {
		t.Fatalf("provider down: %d: %s", resp.StatusCode, body)
	}
	if !strings.Contains(body, "basic=1") {
		t.Error("the sign-in page does not offer the break-glass login when the SSO is down")
	}
	ln, err := listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := idp.Start(ln, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = idp.Shutdown() })
	b.signIn(authStaff)
	if v, resp := b.whoami(); v == nil || v.Role != RoleOffice {
		t.Fatalf("provider back: %d at %s", resp.StatusCode, resp.Request.URL)
	}
}

// Only console pages are places to go back to after sign-in.
func TestAuthSafeBack(t *testing.T) {
	for in, want := range map[string]string{
		"/console/students/S1?x=1": "/console/students/S1?x=1",
		"":                         "/console/",
		"https://evil.example/":    "/console/",
		"//evil.example/console/":  "/console/",
		"/console//evil.example":   "/console/",
		"/console/\\evil.example":  "/console/",
		"/console/auth/logout":     "/console/",
		"/other":                   "/console/",
	} {
		if got := authSafeBack(in); got != want {
			t.Errorf("authSafeBack(%q) = %q; want %q", in, got, want)
		}
	}
}
