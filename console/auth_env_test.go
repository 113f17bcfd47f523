package console

import (
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jmoiron/sqlx"
	"github.com/oauth2-proxy/mockoidc"
	"github.com/redis/go-redis/v9"

	"github.com/iec-almaty/sisnotify/integrations/testenv"
)

// authRedisDB is the console tests' preferred Redis database (README's
// table: jobs 1, worker 2, cmd/sisnotify 3).
const authRedisDB = 4

// The fixture's office and break-glass login.
const (
	authStaff    = "office@uni.example"
	authBGUser   = "office"
	authBGPass   = "correct horse battery staple"
	authWhoAmI   = "/console/authtest/whoami"
	authActRoute = "/console/authtest/act"
)

// authClock is the console's clock in a test: an input the test moves.
type authClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *authClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *authClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// authEnv is a console with SSO (an in-process mockoidc), the break-glass
// login, a database and a Redis of the test's own, served over HTTP.
type authEnv struct {
	t     *testing.T
	db    *sqlx.DB
	h     *Handler
	srv   *httptest.Server
	idp   *mockoidc.MockOIDC
	clock *authClock
	opt   Options
}

// authStart is the time the tests' clocks start at: the fixture's night,
// in the morning in Almaty.
var authStart = time.Date(2026, 11, 25, 9, 0, 0, 0, time.FixedZone("Asia/Almaty", 5*3600))

// newAuthEnv starts an environment; edit may change the options.
func newAuthEnv(t *testing.T, edit func(*Options)) *authEnv {
	t.Helper()
	idp, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = idp.Shutdown() })
	return newAuthEnvWith(t, idp, idp.Issuer(), edit)
}

// newAuthEnvWith is newAuthEnv with the provider idp (not started, or
// nil) at issuer.
func newAuthEnvWith(t *testing.T, idp *mockoidc.MockOIDC, issuer string, edit func(*Options)) *authEnv {
	t.Helper()
	e := &authEnv{t: t, db: testDB(t), idp: idp, clock: &authClock{now: authStart}}
	ropt, err := redis.ParseURL(testenv.Redis(t, authRedisDB))
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(ropt)
	t.Cleanup(func() { rdb.Close() })
	e.opt = Options{
		DB: e.db, Redis: rdb, StaffEmails: []string{"  Office@Uni.Example "},
		BreakGlassUser: authBGUser, BreakGlassPassword: authBGPass,
		Lang: "en", Now: e.clock.Now, Log: slog.New(slog.NewTextHandler(testLog{t}, nil)),
	}
	if idp != nil {
		e.opt.OIDC = OIDC{Issuer: issuer, ClientID: idp.ClientID, ClientSecret: idp.ClientSecret}
		// The provider signs its tokens at the console's time.
		idp.FastForward(authStart.Sub(time.Now()))
	}
	if edit != nil {
		edit(&e.opt)
	}
	if e.h, err = New(e.opt); err != nil {
		t.Fatal(err)
	}
	authTestRoutes(e.h)
	e.srv = httptest.NewServer(e.h)
	t.Cleanup(e.srv.Close)
	return e
}

// testLog writes the console's log to the test's.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// authTestRoutes adds two test-only routes: a page that shows its viewer,
// and an office action that answers "done".
func authTestRoutes(h *Handler) {
	h.mux.Handle("GET "+authWhoAmI, h.signedIn(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(viewerOf(r))
	}))
	h.mux.Handle("POST "+authActRoute, h.officeOnly(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "done")
	}))
}

// browser is a client with cookies; it follows redirects unless told
// to stop (stopAt: a host whose redirects it returns instead).
type browser struct {
	e      *authEnv
	c      *http.Client
	stopAt string
	// cookies are the Set-Cookie headers the console answered, in order.
	mu      sync.Mutex
	cookies []*http.Cookie
}

func (e *authEnv) browser() *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	b := &browser{e: e}
	b.c = &http.Client{Jar: jar, Transport: recorder{b}, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if b.stopAt != "" && req.URL.Host == b.stopAt {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	return b
}

// recorder keeps the console's Set-Cookie headers for the browser.
type recorder struct{ b *browser }

func (rt recorder) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil && strings.HasPrefix("http://"+r.URL.Host, rt.b.e.srv.URL) {
		rt.b.mu.Lock()
		rt.b.cookies = append(rt.b.cookies, resp.Cookies()...)
		rt.b.mu.Unlock()
	}
	return resp, err
}

// lastCookie is the last Set-Cookie of name the console answered.
func (b *browser) lastCookie(name string) *http.Cookie {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := len(b.cookies) - 1; i >= 0; i-- {
		if b.cookies[i].Name == name {
			return b.cookies[i]
		}
	}
	return nil
}

// cookie is the value the browser would send for name to the console.
func (b *browser) cookie(name string) string {
	u, _ := url.Parse(b.e.srv.URL + "/console/")
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// do sends a request to the console (or to an absolute URL) and returns
// the final response with its body read.
func (b *browser) do(method, path string, form url.Values, edit func(*http.Request)) (*http.Response, string) {
	b.e.t.Helper()
	u := path
	if strings.HasPrefix(path, "/") {
		u = b.e.srv.URL + path
	}
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		b.e.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if edit != nil {
		edit(req)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	text, err := io.ReadAll(resp.Body)
	if err != nil {
		b.e.t.Fatal(err)
	}
	return resp, string(text)
}

func (b *browser) get(path string) (*http.Response, string) { return b.do("GET", path, nil, nil) }

// signIn queues email at the provider and signs in through the whole
// flow, ending at the test's whoami page; it returns the last response.
func (b *browser) signIn(email string) (*http.Response, string) {
	b.e.t.Helper()
	b.e.idp.QueueUser(&mockoidc.MockUser{Subject: "sub-" + email, Email: email, EmailVerified: true})
	return b.get("/console/auth/login?start=1&back=" + url.QueryEscape(authWhoAmI))
}

// whoami is the viewer the console sees for the browser; nil when it
// answers otherwise (the response is returned then).
func (b *browser) whoami() (*Viewer, *http.Response) {
	b.e.t.Helper()
	resp, body := b.get(authWhoAmI)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != authWhoAmI {
		return nil, resp
	}
	var v Viewer
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		b.e.t.Fatalf("whoami: %v: %s", err, body)
	}
	return &v, resp
}

// noRedirects returns a copy of b that does not follow redirects.
func (b *browser) noRedirects() *http.Client {
	c := *b.c
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

// advance moves the console's clock, and the provider's with it.
func (e *authEnv) advance(d time.Duration) {
	e.clock.Advance(d)
	if e.idp != nil {
		e.idp.FastForward(d)
	}
}

// sessions is how many console sessions the database holds.
func (e *authEnv) sessions() int {
	e.t.Helper()
	var n int
	if err := e.db.Get(&n, `SELECT count(*) FROM sisnotify.console_sessions`); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// audits are the audit log's sign-in and sign-out rows, "action actor role via".
func (e *authEnv) audits() []string {
	e.t.Helper()
	var rows []string
	if err := e.db.Select(&rows, `SELECT action || ' ' || actor || ' ' || role || ' ' || coalesce(detail->>'via', '')
		FROM sisnotify.audit_log WHERE action IN ('sign-in', 'sign-out') ORDER BY audit_id`); err != nil {
		e.t.Fatal(err)
	}
	return rows
}

// closedAddr is an address nothing listens on (until the test does).
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// listen listens on addr.
func listen(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }

// unverifiedUser is a provider account whose ID token says its email is
// not verified (mockoidc's own user leaves a false email_verified out).
type unverifiedUser struct{ *mockoidc.MockUser }

func (u unverifiedUser) Claims(_ []string, base *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	return jwt.MapClaims{
		"iss": base.Issuer, "sub": u.Subject, "aud": []string(base.Audience), "jti": base.ID,
		"exp": base.ExpiresAt.Unix(), "iat": base.IssuedAt.Unix(), "nbf": base.NotBefore.Unix(),
		"nonce": base.Nonce, "email": u.Email, "email_verified": false,
	}, nil
}
