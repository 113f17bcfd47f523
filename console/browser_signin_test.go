package console

import (
	"strings"
	"testing"
)

// TestSignInButtonIsALink: the sign-in page's way to the provider is a
// link. The browser test found that a form (GET, to
// /console/auth/login?start=1) never reached the provider in Chromium:
// the console's CSP form-action 'self' applies to the redirects that
// follow a form's submission, and the provider is another origin.
func TestSignInButtonIsALink(t *testing.T) {
	e := newAuthEnv(t, nil)
	resp, body := e.browser().get("/console/auth/login?back=%2Fconsole%2Fnights")
	if resp.StatusCode != 200 {
		t.Fatalf("sign-in page: %d", resp.StatusCode)
	}
	if !strings.Contains(body, `<a class="button" href="/console/auth/login?start=1&amp;back=%2fconsole%2fnights">`) {
		t.Errorf("the sign-in page has no link that starts the sign-in:\n%s", body)
	}
	if strings.Contains(body, "<form") {
		t.Errorf("the sign-in page has a form, which the CSP's form-action would stop on its way to the provider:\n%s", body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self'") {
		t.Errorf("CSP %q", csp)
	}
}
