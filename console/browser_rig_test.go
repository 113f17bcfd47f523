package console

import (
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/oauth2-proxy/mockoidc"

	"github.com/iec-almaty/sisnotify/internal/browsertest"
	"github.com/iec-almaty/sisnotify/worker"
)

// The browser tests' rig: the console of newAuthEnv (SSO through an
// in-process mockoidc, the fixture database, a Redis database of the
// test's own) with the worker's own Releaser and Requeuer, and a headless
// Chromium (internal/browsertest) in which each person has a browser
// context of their own (cookies included), as if on their own computer.

type chromeRig struct {
	t     *testing.T
	e     *authEnv
	queue *worker.Queue
	b     *browsertest.Browser
}

// newChromeRig starts the console and the browser, or skips the test when
// there is no Chromium (browsertest.Start).
func newChromeRig(t *testing.T) *chromeRig {
	t.Helper()
	r := &chromeRig{t: t}
	r.e = newAuthEnv(t, func(o *Options) {
		o.Location = actionZone
		r.queue = worker.NewQueue(o.Redis)
		// The worker's own: Release queues the night's forced sync in
		// Redis (asynq), as `run --once --force` does; Requeue re-queues
		// there.
		o.Releaser = &worker.Night{DB: o.DB, Client: r.queue.Client()}
		o.Requeuer = &worker.Requeuer{Enqueue: &worker.Enqueuer{DB: o.DB, Queue: r.queue, MaxRetry: 3, Location: actionZone}, Now: func() time.Time { return r.e.clock.Now() }}
	})
	r.b = browsertest.Start(t, r.e.srv.URL)
	return r
}

// person is someone at the console: a browser person, and the console's
// sign-in.
type person struct {
	*browsertest.Person
	r *chromeRig
}

func (r *chromeRig) person(name string, width int64) *person {
	r.t.Helper()
	return &person{Person: r.b.Person(name, width), r: r}
}

// signIn signs email in through the whole SSO flow, as a person does: the
// console sends the browser to its sign-in page, whose button goes to the
// provider, which (mockoidc) answers at once with email's account and
// sends the browser to the callback; it returns the last page's status.
func (p *person) signIn(email string) int64 {
	p.r.t.Helper()
	if code := p.Open("/console/"); code != 200 || !strings.HasPrefix(p.At(), "/console/auth/login?") {
		p.r.t.Fatalf("%s: the console without a session: %d at %s, want the sign-in page", p.Name, code, p.At())
	}
	if got, want := p.Text("h1"), browserEN("auth.signin.title"); got != want {
		p.r.t.Fatalf("%s: sign-in page's title %q, want %q", p.Name, got, want)
	}
	p.Screenshot("sign-in page")
	p.r.e.idp.QueueUser(&mockoidc.MockUser{Subject: "sub-" + email, Email: email, EmailVerified: true})
	return p.Click(`main a.button[href^="/console/auth/login?start=1"]`)
}

// setCookie sets a cookie for the console in p's browser.
func (p *person) setCookie(name, value string) {
	p.r.t.Helper()
	p.SetCookie(name, value, Path)
}

// forgedToken is a value shaped like a session token that names no
// session.
func forgedToken(t *testing.T) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// browserEN is the console's English words of key (the rig's console
// speaks English), for the tests whose *testing.T hides t.
func browserEN(key string) string { return t("en", key) }
