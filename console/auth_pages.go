package console

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
)

// The sign-in's own pages (ui/auth_*.html): small, on the console's
// stylesheet, with no script, in the viewer's language.

//go:embed ui/auth_*.html
var authUI embed.FS

// authPages are the sign-in's templates.
type authPages struct{ t *template.Template }

// newAuthPages parses the templates.
func newAuthPages() (*authPages, error) {
	t, err := template.ParseFS(authUI, "ui/auth_*.html")
	if err != nil {
		return nil, fmt.Errorf("console: the sign-in's templates: %w", err)
	}
	return &authPages{t: t}, nil
}

// authPageData is what a sign-in page shows.
type authPageData struct {
	Lang        string
	Title, Text string // keys of the message page
	Back        string // the console page to return to after sign-in
	SSO, Basic  bool   // the sign-in ways on offer
	Unavailable bool   // the SSO did not answer
	SignOutURL  string // the provider's sign-out page, if known
	Home        bool   // the message page links to the console, not to sign-in
}

// T is the word key in the page's language.
func (d authPageData) T(key string) string { return t(d.Lang, key) }

// authRender writes the page name with status.
func (h *Handler) authRender(w http.ResponseWriter, r *http.Request, status int, name string, d authPageData) {
	d.Lang = h.authLang(r)
	if v := viewerOf(r); v != nil {
		d.Lang = v.Lang
	}
	var b bytes.Buffer
	if err := h.auth.pages.t.ExecuteTemplate(&b, name, d); err != nil {
		h.log.Error("console: render a sign-in page", "page", name, "err", err)
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// authMessage writes a short page (title, text, and a way on) with
// status: a 403 (refused, but signed in) links to the console's front
// page, anything else to sign-in.
func (h *Handler) authMessage(w http.ResponseWriter, r *http.Request, status int, title, text string) {
	h.authRender(w, r, status, "auth-message", authPageData{Title: title, Text: text, Home: status == http.StatusForbidden})
}

// WithTitle is d with the title key title.
func (d authPageData) WithTitle(title string) authPageData {
	d.Title = title
	return d
}
