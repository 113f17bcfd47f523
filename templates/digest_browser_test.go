package templates

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/iec-almaty/sisnotify/integrations/testenv"
)

// chromiumPath is the browser that renders the digests (CI installs
// Debian's chromium package).
const chromiumPath = "/usr/bin/chromium"

// The office digest is read at 9 am on a phone: at 390 px nothing scrolls
// sideways, and every row's due date and status stay on the screen; the
// same at a desktop's width. A screenshot at 390 px is kept in
// $SISNOTIFY_SCREENSHOTS (a temporary directory when unset), to look at.
func TestDigestBrowserWidths(t *testing.T) {
	testenv.Long(t, "renders digests in a headless browser")
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Skipf("%s not found: install Debian's chromium package to render the digests in a browser", chromiumPath)
	}
	s := set(t)
	pages := map[string]string{}
	for _, c := range []struct {
		name string
		d    Digest
	}{
		{"ru-office", sampleDigest("ru", AudienceOffice)},
		{"kk-office-cut", sampleCutDigest("kk")},
		{"en-dean", sampleDigest("en", AudienceDean)},
		{"en-office-long-values", longValuesDigest()},
		{"kk-office-unreachable", unreachableDigest("kk")},
	} {
		out, err := s.Digest(c.d)
		if err != nil {
			t.Fatal(err)
		}
		pages["/"+c.name] = out.HTML
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page, ok := pages[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(page))
	}))
	srv.Listener = ln
	srv.Start()
	defer srv.Close()

	shots := os.Getenv("SISNOTIFY_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("start chromium: %v", err)
	}

	// widest is the right edge of the widest element, and statuses the
	// rows' due-and-status lines that do not fit the window.
	const measure = `(() => {
		let widest = 0, outside = [];
		for (const el of document.body.querySelectorAll('*')) {
			const r = el.getBoundingClientRect();
			if (r.width > 0) widest = Math.max(widest, r.right);
		}
		for (const b of document.querySelectorAll('h2[id] ~ div > div:nth-child(3)')) {
			const r = b.getBoundingClientRect();
			if (r.left < 0 || r.right > window.innerWidth || r.height === 0) outside.push(b.textContent);
		}
		return {scroll: document.documentElement.scrollWidth, window: window.innerWidth, widest: Math.ceil(widest), outside: outside,
			rows: document.querySelectorAll('h2[id] ~ div > div:nth-child(3)').length};
	})()`
	for path := range pages {
		for _, w := range []int64{390, 1280} {
			type measured struct {
				Scroll  int      `json:"scroll"`
				Window  int      `json:"window"`
				Widest  int      `json:"widest"`
				Outside []string `json:"outside"`
				Rows    int      `json:"rows"`
			}
			tab, cancelTab := chromedp.NewContext(browser)
			err := chromedp.Do(tab,
				chromedp.EmulateViewport(w, 844),
				chromedp.Navigate(srv.URL+path),
				chromedp.WaitReady("body"),
			)
			var got measured
			if err == nil {
				got, err = chromedp.Run(tab, chromedp.Evaluate[measured](measure))
			}
			if err != nil {
				cancelTab()
				t.Fatalf("%s at %d px: %v", path, w, err)
			}
			if got.Window != int(w) || got.Scroll > got.Window || got.Widest > got.Window {
				t.Errorf("%s at %d px: scrollWidth %d, widest element ends at %d, window %d: the page scrolls sideways", path, w, got.Scroll, got.Widest, got.Window)
			}
			if len(got.Outside) > 0 || (got.Rows == 0 && path != "/en-dean") {
				t.Errorf("%s at %d px: %d due-and-status lines, %d not on the screen: %q", path, w, got.Rows, len(got.Outside), got.Outside)
			}
			if w == 390 {
				png, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
				if err != nil {
					t.Fatalf("%s: screenshot: %v", path, err)
				}
				file := filepath.Join(shots, "digest"+strings.ReplaceAll(path, "/", "-")+"-390.png")
				if err := os.WriteFile(file, png, 0o644); err != nil {
					t.Fatal(err)
				}
				t.Logf("%s at 390 px: %s", path, file)
			}
			cancelTab()
		}
	}
}

// longValuesDigest has the longest values the SIS lets through (names and
// faculties of 200 characters, some without a space) and the longest ids,
// which must wrap rather than widen the page.
func longValuesDigest() Digest {
	d := sampleDigest("en", AudienceOffice)
	long := strings.Repeat("Abdurakhmonovich", 13)[:200]
	d.Groups[0].Rows[0].Name = long
	d.Groups[0].Rows[0].Faculty = strings.Repeat("Faculty of International Relations and ", 6)[:200]
	d.Groups[1].Rows[0].SubjectID = strings.Repeat("TR-2026-", 8)
	d.Groups[1].Rows[0].StudentID = strings.Repeat("S", 60)
	d.Failed[0].StudentID = strings.Repeat("S", 60)
	d.Problems[0].RowID = strings.Repeat("R", 80)
	d.Problems[0].Field = strings.Repeat("field_", 12)
	return d
}
