package console

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/iec-almaty/sisnotify/worker"
)

// The browser tests' rig: the console of newAuthEnv (SSO through an
// in-process mockoidc, the fixture database, a Redis database of the
// test's own) with the worker's own Releaser and Requeuer, and a headless
// Chromium in which each person has a browser context of their own
// (cookies included), as if on their own computer.

// browserChromium is the browser (CI installs Debian's chromium package).
const browserChromium = "/usr/bin/chromium"

// browserStep bounds each step a person takes in the browser.
const browserStep = 30 * time.Second

type chromeRig struct {
	t     *testing.T
	e     *authEnv
	queue *worker.Queue
	root  context.Context // the browser; every person's context derives from it
	shots string          // where the screenshots go
	shot  int             // screenshots taken, for their order
}

// newChromeRig starts the console and the browser, or skips the test when
// there is no Chromium.
func newChromeRig(t *testing.T) *chromeRig {
	t.Helper()
	if _, err := os.Stat(browserChromium); err != nil {
		t.Skipf("%s not found: install Debian's chromium package to drive the console in a browser", browserChromium)
	}
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
	r.shots = os.Getenv("SISNOTIFY_SCREENSHOTS")
	if r.shots == "" {
		r.shots = t.TempDir()
	} else if err := os.MkdirAll(r.shots, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(browserChromium),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	t.Cleanup(cancelAlloc)
	root, cancelRoot := chromedp.NewContext(alloc)
	t.Cleanup(cancelRoot)
	start := time.Now()
	if err := chromedp.Do(root); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	t.Logf("chromium started in %s; screenshots in %s", time.Since(start).Round(time.Millisecond), r.shots)
	r.root = root
	return r
}

// person is someone at the console: a tab in a browser context of their
// own, width px wide.
type person struct {
	r    *chromeRig
	name string
	ctx  context.Context
}

func (r *chromeRig) person(name string, width int64) *person {
	r.t.Helper()
	ctx, cancel := chromedp.NewContext(r.root, chromedp.WithNewBrowserContext())
	r.t.Cleanup(cancel)
	p := &person{r: r, name: name, ctx: ctx}
	// The first Run opens the tab for as long as its context lives: not
	// under a step's timeout.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(width, 844)); err != nil {
		r.t.Fatalf("%s: open a tab: %v", name, err)
	}
	return p
}

// step is a context for one step.
func (p *person) step() (context.Context, context.CancelFunc) {
	return context.WithTimeout(p.ctx, browserStep)
}

// do runs steps that load no page.
func (p *person) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.r.t.Helper()
	ctx, cancel := p.step()
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		p.r.t.Fatalf("%s: %s: %v", p.name, what, err)
	}
}

// load runs steps that load a page and returns its HTTP status (after
// any redirects).
func (p *person) load(what string, steps ...chromedp.Action[chromedp.Void]) int64 {
	p.r.t.Helper()
	ctx, cancel := p.step()
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, steps...)
	if err != nil {
		p.r.t.Fatalf("%s: %s: %v", p.name, what, err)
	}
	if resp == nil {
		p.r.t.Fatalf("%s: %s: no response", p.name, what)
	}
	return resp.Status
}

// open goes to the console's path as if typed into the address bar.
func (p *person) open(path string) int64 {
	p.r.t.Helper()
	ctx, cancel := p.step()
	defer cancel()
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(p.r.e.srv.URL+path))
	if err != nil || resp == nil {
		p.r.t.Fatalf("%s: open %s: %v", p.name, path, err)
	}
	return resp.Status
}

// click clicks sel and waits for the page it loads.
func (p *person) click(sel string) int64 {
	p.r.t.Helper()
	return p.load("click "+sel, chromedp.Click(chromedp.CSS(sel)))
}

// at is the path and query the tab is at.
func (p *person) at() string {
	p.r.t.Helper()
	ctx, cancel := p.step()
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		p.r.t.Fatalf("%s: location: %v", p.name, err)
	}
	u, err := url.Parse(loc)
	if err != nil {
		p.r.t.Fatalf("%s: location %q: %v", p.name, loc, err)
	}
	return u.RequestURI()
}

// eval is the value of the JavaScript expression js in p's page
// (DevTools' evaluation: the page's CSP does not apply).
func eval[T any](p *person, js string) T {
	p.r.t.Helper()
	ctx, cancel := p.step()
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		p.r.t.Fatalf("%s: evaluate %.80q: %v", p.name, js, err)
	}
	return v
}

// text is the text of the first element of the CSS selector sel, "" when
// there is none.
func (p *person) text(sel string) string {
	p.r.t.Helper()
	return eval[string](p, fmt.Sprintf(`(document.querySelector(%q) || {textContent: ""}).textContent.trim()`, sel))
}

// count is how many elements match the CSS selector sel.
func (p *person) count(sel string) int {
	p.r.t.Helper()
	return eval[int](p, fmt.Sprintf(`document.querySelectorAll(%q).length`, sel))
}

var shotName = regexp.MustCompile(`[^a-z0-9]+`)

// screenshot keeps the whole page as <test>-<n>-<person>-<what>.png.
func (p *person) screenshot(what string) {
	p.r.t.Helper()
	ctx, cancel := p.step()
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.r.t.Fatalf("%s: screenshot: %v", p.name, err)
	}
	p.r.shot++
	name := fmt.Sprintf("%s-%02d-%s-%s.png", shotName.ReplaceAllString(strings.ToLower(p.r.t.Name()), "-"), p.r.shot, p.name, shotName.ReplaceAllString(strings.ToLower(what), "-"))
	if err := os.WriteFile(filepath.Join(p.r.shots, name), png, 0o644); err != nil {
		p.r.t.Fatal(err)
	}
}

// signIn signs email in through the whole SSO flow, as a person does: the
// console sends the browser to its sign-in page, whose button goes to the
// provider, which (mockoidc) answers at once with email's account and
// sends the browser to the callback; it returns the last page's status.
func (p *person) signIn(email string) int64 {
	p.r.t.Helper()
	if code := p.open("/console/"); code != 200 || !strings.HasPrefix(p.at(), "/console/auth/login?") {
		p.r.t.Fatalf("%s: the console without a session: %d at %s, want the sign-in page", p.name, code, p.at())
	}
	if got, want := p.text("h1"), browserEN("auth.signin.title"); got != want {
		p.r.t.Fatalf("%s: sign-in page's title %q, want %q", p.name, got, want)
	}
	p.screenshot("sign-in page")
	p.r.e.idp.QueueUser(&mockoidc.MockUser{Subject: "sub-" + email, Email: email, EmailVerified: true})
	return p.click(`main a.button[href^="/console/auth/login?start=1"]`)
}

// setCookie sets a cookie for the console in p's browser.
func (p *person) setCookie(name, value string) {
	p.r.t.Helper()
	ctx, cancel := p.step()
	defer cancel()
	if _, err := chromedp.Call(ctx, network.SetCookie, network.SetCookieParams{
		Name: name, Value: value, URL: p.r.e.srv.URL + Path, Path: Path, HTTPOnly: new(true), SameSite: network.CookieSameSiteLax,
	}); err != nil {
		p.r.t.Fatalf("%s: set cookie %s: %v", p.name, name, err)
	}
}

// a11y is what browserA11y measures of a page.
type a11y struct {
	Lang       string   `json:"lang"`
	Scroll     int      `json:"scroll"`
	Window     int      `json:"window"`
	Widest     int      `json:"widest"`
	WidestTag  string   `json:"widestTag"`
	Controls   int      `json:"controls"`
	Unlabelled []string `json:"unlabelled"`
}

// browserA11y measures the page: <html lang>, the document's width
// against the window's (a table's .scroll wrapper may scroll inside, so
// what is in one is not measured), and the form controls without a
// label (a <label for>, a wrapping <label>, or an aria-label).
const browserA11y = `(() => {
	const unlabelled = [];
	let controls = 0;
	for (const el of document.querySelectorAll('input, select, textarea')) {
		if (el.type === 'hidden') continue;
		controls++;
		const byLabel = el.labels && [...el.labels].some(l => l.textContent.trim() !== '');
		const byAria = (el.getAttribute('aria-label') || '').trim() !== '';
		if (!byLabel && !byAria) unlabelled.push(el.outerHTML.slice(0, 160));
	}
	let widest = 0, widestTag = '';
	for (const el of document.body.querySelectorAll('*')) {
		const s = el.parentElement && el.parentElement.closest('.scroll');
		if (s) continue;
		const r = el.getBoundingClientRect();
		if (r.width > 0 && r.right > widest) { widest = r.right; widestTag = el.tagName.toLowerCase() + (el.className ? '.' + el.className : ''); }
	}
	return {lang: document.documentElement.lang, scroll: document.documentElement.scrollWidth, window: window.innerWidth,
		widest: Math.ceil(widest), widestTag: widestTag, controls: controls, unlabelled: unlabelled};
})()`

// checkA11y checks the page p is on: a language, no sideways scrolling at
// its width, a label on every control.
func (p *person) checkA11y(page string) a11y {
	p.r.t.Helper()
	m := eval[a11y](p, browserA11y)
	if m.Lang == "" {
		p.r.t.Errorf("%s: %s has no <html lang>", p.name, page)
	}
	if m.Scroll > m.Window {
		p.r.t.Errorf("%s: %s at %d px scrolls sideways: scrollWidth %d (widest element %s ends at %d)", p.name, page, m.Window, m.Scroll, m.WidestTag, m.Widest)
	}
	if len(m.Unlabelled) > 0 {
		p.r.t.Errorf("%s: %s has %d controls without a label: %q", p.name, page, len(m.Unlabelled), m.Unlabelled)
	}
	p.r.t.Logf("%s: %s at %d px: lang %q, scrollWidth %d, %d controls, all labelled: %v", p.name, page, m.Window, m.Lang, m.Scroll, m.Controls, len(m.Unlabelled) == 0)
	return m
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
