// Package browsertest drives the service's pages in a headless Chromium
// for the browser tests (the console's, the student page's): a Browser per
// test, and in it a Person per visitor — a tab in a browser context of
// their own (cookies included), at a width, as if on their own device —
// whose steps (open, click, type, evaluate, screenshot, the accessibility
// checks) each run under a timeout and fail the test with the person's
// name and the step. Only tests import it.
package browsertest

import (
	"context"
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
)

// Chromium is the browser (CI installs Debian's chromium package).
const Chromium = "/usr/bin/chromium"

// StepTimeout bounds each step a person takes in the browser.
const StepTimeout = 30 * time.Second

// Browser is one headless Chromium for one test, in front of the server
// at Base.
type Browser struct {
	t     testing.TB
	base  string
	root  context.Context // the browser; every person's context derives from it
	shots string          // where the screenshots go
	shot  int             // screenshots taken, for their order
}

// Start starts Chromium for t, in front of the server at base (its URL,
// e.g. an httptest.Server's): a Person's Open of a path goes there. It
// skips the test when Chromium is not installed; what it starts ends with
// the test. Screenshots go to $SISNOTIFY_SCREENSHOTS, or a temporary
// directory.
func Start(t testing.TB, base string) *Browser {
	t.Helper()
	if _, err := os.Stat(Chromium); err != nil {
		t.Skipf("%s not found: install Debian's chromium package to run the browser tests", Chromium)
	}
	b := &Browser{t: t, base: strings.TrimRight(base, "/")}
	b.shots = os.Getenv("SISNOTIFY_SCREENSHOTS")
	if b.shots == "" {
		b.shots = t.TempDir()
	} else if err := os.MkdirAll(b.shots, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(Chromium),
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
	t.Logf("chromium started in %s; screenshots in %s", time.Since(start).Round(time.Millisecond), b.shots)
	b.root = root
	return b
}

// Base is the URL of the server the browser is in front of.
func (b *Browser) Base() string { return b.base }

// Shots is how many screenshots the test took.
func (b *Browser) Shots() int { return b.shot }

// Person is someone at a page: a tab in a browser context of their own.
type Person struct {
	b    *Browser
	Name string
	ctx  context.Context
}

// Person opens a tab for name in a new browser context, width px wide.
func (b *Browser) Person(name string, width int64) *Person {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.root, chromedp.WithNewBrowserContext())
	b.t.Cleanup(cancel)
	p := &Person{b: b, Name: name, ctx: ctx}
	// The first Run opens the tab for as long as its context lives: not
	// under a step's timeout.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(width, 844)); err != nil {
		b.t.Fatalf("%s: open a tab: %v", name, err)
	}
	return p
}

// Browser is the browser p is in.
func (p *Person) Browser() *Browser { return p.b }

// Step is a context for one step.
func (p *Person) Step() (context.Context, context.CancelFunc) {
	return context.WithTimeout(p.ctx, StepTimeout)
}

// Do runs steps that load no page.
func (p *Person) Do(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.b.t.Helper()
	ctx, cancel := p.Step()
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		p.b.t.Fatalf("%s: %s: %v", p.Name, what, err)
	}
}

// Load runs steps that load a page and returns its HTTP status (after
// any redirects).
func (p *Person) Load(what string, steps ...chromedp.Action[chromedp.Void]) int64 {
	p.b.t.Helper()
	ctx, cancel := p.Step()
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, steps...)
	if err != nil {
		p.b.t.Fatalf("%s: %s: %v", p.Name, what, err)
	}
	if resp == nil {
		p.b.t.Fatalf("%s: %s: no response", p.Name, what)
	}
	return resp.Status
}

// Open goes to target as if typed into the address bar: a path on the
// browser's server, or an absolute URL; it returns the HTTP status.
func (p *Person) Open(target string) int64 {
	p.b.t.Helper()
	if strings.HasPrefix(target, "/") {
		target = p.b.base + target
	}
	ctx, cancel := p.Step()
	defer cancel()
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(target))
	if err != nil || resp == nil {
		p.b.t.Fatalf("%s: open %s: %v", p.Name, target, err)
	}
	return resp.Status
}

// Click clicks sel and waits for the page it loads.
func (p *Person) Click(sel string) int64 {
	p.b.t.Helper()
	return p.Load("click "+sel, chromedp.Click(chromedp.CSS(sel)))
}

// Location is the address the tab is at.
func (p *Person) Location() string {
	p.b.t.Helper()
	ctx, cancel := p.Step()
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		p.b.t.Fatalf("%s: location: %v", p.Name, err)
	}
	return loc
}

// At is the path and query the tab is at.
func (p *Person) At() string {
	p.b.t.Helper()
	loc := p.Location()
	u, err := url.Parse(loc)
	if err != nil {
		p.b.t.Fatalf("%s: location %q: %v", p.Name, loc, err)
	}
	return u.RequestURI()
}

// Eval is the value of the JavaScript expression js in p's page
// (DevTools' evaluation: the page's CSP does not apply).
func Eval[T any](p *Person, js string) T {
	p.b.t.Helper()
	ctx, cancel := p.Step()
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		p.b.t.Fatalf("%s: evaluate %.80q: %v", p.Name, js, err)
	}
	return v
}

// Text is the text of the first element of the CSS selector sel, "" when
// there is none.
func (p *Person) Text(sel string) string {
	p.b.t.Helper()
	return Eval[string](p, fmt.Sprintf(`(document.querySelector(%q) || {textContent: ""}).textContent.trim()`, sel))
}

// Count is how many elements match the CSS selector sel.
func (p *Person) Count(sel string) int {
	p.b.t.Helper()
	return Eval[int](p, fmt.Sprintf(`document.querySelectorAll(%q).length`, sel))
}

// HTML is the page's markup as the browser holds it.
func (p *Person) HTML() string {
	p.b.t.Helper()
	return Eval[string](p, `document.documentElement.outerHTML`)
}

var shotName = regexp.MustCompile(`[^a-z0-9]+`)

// Screenshot keeps the whole page as <test>-<n>-<person>-<what>.png.
func (p *Person) Screenshot(what string) {
	p.b.t.Helper()
	ctx, cancel := p.Step()
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.b.t.Fatalf("%s: screenshot: %v", p.Name, err)
	}
	p.b.shot++
	name := fmt.Sprintf("%s-%02d-%s-%s.png", shotName.ReplaceAllString(strings.ToLower(p.b.t.Name()), "-"), p.b.shot, p.Name, shotName.ReplaceAllString(strings.ToLower(what), "-"))
	if err := os.WriteFile(filepath.Join(p.b.shots, name), png, 0o644); err != nil {
		p.b.t.Fatal(err)
	}
}

// SetCookie sets an HTTP-only, SameSite=Lax cookie for path on the
// browser's server in p's browser.
func (p *Person) SetCookie(name, value, path string) {
	p.b.t.Helper()
	ctx, cancel := p.Step()
	defer cancel()
	if _, err := chromedp.Call(ctx, network.SetCookie, network.SetCookieParams{
		Name: name, Value: value, URL: p.b.base + path, Path: path, HTTPOnly: new(true), SameSite: network.CookieSameSiteLax,
	}); err != nil {
		p.b.t.Fatalf("%s: set cookie %s: %v", p.Name, name, err)
	}
}

// SetHeaders makes p's tab send headers with every request from now on
// (e.g. HTTP Basic credentials).
func (p *Person) SetHeaders(headers map[string]string) {
	p.b.t.Helper()
	h := network.Headers{}
	for k, v := range headers {
		h[k] = v
	}
	ctx, cancel := p.Step()
	defer cancel()
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		p.b.t.Fatalf("%s: enable the network domain: %v", p.Name, err)
	}
	if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: h}); err != nil {
		p.b.t.Fatalf("%s: set headers: %v", p.Name, err)
	}
}

// A11y is what CheckA11y measures of a page.
type A11y struct {
	Lang       string   `json:"lang"`
	Scroll     int      `json:"scroll"`
	Window     int      `json:"window"`
	Widest     int      `json:"widest"`
	WidestTag  string   `json:"widestTag"`
	Controls   int      `json:"controls"`
	Unlabelled []string `json:"unlabelled"`
}

// a11yJS measures the page: <html lang>, the document's width against the
// window's (a table's .scroll wrapper may scroll inside, so what is in
// one is not measured), and the form controls without a label (a <label
// for>, a wrapping <label>, or an aria-label).
const a11yJS = `(() => {
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

// Measure measures the page p is on (see A11y).
func (p *Person) Measure() A11y {
	p.b.t.Helper()
	return Eval[A11y](p, a11yJS)
}

// Problems are what is wrong with a measured page: no language, sideways
// scrolling, controls without a label.
func (m A11y) Problems() []string {
	var out []string
	if m.Lang == "" {
		out = append(out, "no <html lang>")
	}
	if m.Scroll > m.Window {
		out = append(out, fmt.Sprintf("at %d px it scrolls sideways: scrollWidth %d (widest element %s ends at %d)", m.Window, m.Scroll, m.WidestTag, m.Widest))
	}
	if len(m.Unlabelled) > 0 {
		out = append(out, fmt.Sprintf("%d controls without a label: %q", len(m.Unlabelled), m.Unlabelled))
	}
	return out
}

// CheckA11y checks the page p is on: a language, no sideways scrolling at
// its width, a label on every control; it logs what it measured.
func (p *Person) CheckA11y(page string) A11y {
	p.b.t.Helper()
	m := p.Measure()
	for _, problem := range m.Problems() {
		p.b.t.Errorf("%s: %s: %s", p.Name, page, problem)
	}
	p.b.t.Logf("%s: %s at %d px: lang %q, scrollWidth %d, %d controls, all labelled: %v", p.Name, page, m.Window, m.Lang, m.Scroll, m.Controls, len(m.Unlabelled) == 0)
	return m
}
