package browsertest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/iec-almaty/sisnotify/integrations/testenv"
)

// The rig itself: a person opens a page, reads it and follows a link,
// and the accessibility measure finds what is wrong with a page that
// scrolls sideways at a phone's width, has a control without a label and
// no language, and nothing on one that is right.
func TestBrowserRig(t *testing.T) {
	testenv.Long(t, "drives a page in headless Chromium")
	pages := map[string]string{
		"/good": `<!DOCTYPE html><html lang="en"><head><title>Good</title><meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><h1>Good</h1><form><label for="q">Query</label><input id="q" name="q"></form><p><a id="next" href="/bad">next</a></p></body></html>`,
		"/bad": `<!DOCTYPE html><html><head><title>Bad</title><meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><h1>Bad</h1><div style="width:900px">wide</div><input name="q"><select name="s"><option>a</option></select></body></html>`,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page, ok := pages[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(page))
	}))
	t.Cleanup(srv.Close)
	b := Start(t, srv.URL)
	p := b.Person("reader", 390)
	if code := p.Open("/good"); code != 200 || p.At() != "/good" || p.Text("h1") != "Good" || p.Count("input") != 1 {
		t.Fatalf("/good: %d at %s, h1 %q", code, p.At(), p.Text("h1"))
	}
	good := p.CheckA11y("the good page")
	if good.Window != 390 || good.Controls != 1 {
		t.Errorf("the good page measured %+v", good)
	}
	p.Screenshot("good")
	if code := p.Click("#next"); code != 200 || p.At() != "/bad" {
		t.Fatalf("the link: %d at %s", code, p.At())
	}
	bad := p.Measure().Problems()
	t.Logf("the bad page's problems: %q", bad)
	if len(bad) != 3 || !strings.Contains(bad[0], "lang") || !strings.Contains(bad[1], "sideways") || !strings.Contains(bad[2], "2 controls without a label") {
		t.Errorf("the bad page's problems: %q, want no lang, sideways scrolling, 2 controls without a label", bad)
	}
	if code := p.Open("/missing"); code != 404 {
		t.Errorf("/missing: %d", code)
	}
	if b.Shots() != 1 {
		t.Errorf("%d screenshots, want 1", b.Shots())
	}
}
