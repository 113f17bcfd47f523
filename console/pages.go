package console

import (
	"bytes"
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/store"
	"github.com/iec-almaty/sisnotify/templates"
)

// The pages: server-rendered html/template, one layout (ui/layout.html)
// around each page's "content" (ui/page_*.html), one stylesheet, no
// scripts. Every page reads what it shows fresh from the store; nothing is
// cached, since the office acts on what it sees.

//go:embed ui/layout.html ui/page_*.html ui/console.css
var pageFiles embed.FS

// langCookie keeps the language a viewer chose.
const langCookie = "sisnotify_console_lang"

// pageRows is how many rows a list page shows at most.
const pageRows = 200

// pageTemplates are the pages by name (page_<name>.html), each with the
// layout.
var pageTemplates = sync.OnceValue(func() map[string]*template.Template {
	names, err := fs.Glob(pageFiles, "ui/page_*.html")
	if err != nil {
		panic(err)
	}
	out := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "ui/page_"), ".html")
		out[name] = template.Must(template.New("layout.html").Funcs(pageFuncs).ParseFS(pageFiles, "ui/layout.html", n))
	}
	return out
})

// pageFuncs are the templates' helpers that need no request.
var pageFuncs = template.FuncMap{
	"date": func(d date.Date) string {
		if d == 0 {
			return "—"
		}
		return d.String()
	},
	// auditOf is the data of the "audit" block (layout.html).
	"auditOf": func(p *page, rows []store.ConsolePageAuditRow) auditRows {
		return auditRows{P: p, Rows: rows}
	},
	// rowsOf is the data of Today's "rows" block.
	"rowsOf": func(p *todayPage, rows []todayRow, closed bool) todayRows {
		return todayRows{P: p, Rows: rows, Closed: closed}
	},
}

// ruleTitles names the rules in each language (the notices' templates
// hold the titles); nil when they do not load, and the pages show rule ids.
var ruleTitles = sync.OnceValue(func() *templates.Set {
	s, err := templates.New()
	if err != nil {
		return nil
	}
	return s
})

// page is what every page's data starts with: the viewer, the language,
// the title, and the helpers the layout and the pages call.
type page struct {
	Viewer *Viewer
	Lang   string
	Title  string
	Nav    string // the navigation entry of this page
	Back   string // this page's path and query, for the language switch
	Done   string // the action just done (?done=), for its banner
	loc    *time.Location
	num    *message.Printer
}

// T is the word key in the page's language.
func (p *page) T(key string) string { return t(p.Lang, key) }

// Num is n with the language's digit grouping.
func (p *page) Num(n int) string { return p.num.Sprintf("%d", n) }

// Time is when t was, in the university's zone, to the minute.
func (p *page) Time(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.In(p.loc).Format("2006-01-02 15:04")
}

// TimePtr is Time of *t, "—" for nil.
func (p *page) TimePtr(t *time.Time) string {
	if t == nil {
		return "—"
	}
	return p.Time(*t)
}

// Rule is the title of rule in the page's language.
func (p *page) Rule(rule string) string {
	if s := ruleTitles(); s != nil {
		return s.RuleTitle(p.Lang, rule)
	}
	return rule
}

// Step is "step 2 of 3" in the page's language.
func (p *page) Step(rule string, level int) string {
	return templates.StepText(p.Lang, level, templates.BuiltinSteps(rule))
}

// Office says whether the viewer is the office (sees the office's pages).
func (p *page) Office() bool { return p.Viewer.CanAct() }

// Base is the page itself, for the blocks that take it.
func (p *page) Base() *page { return p }

// auditRows is the data of the "audit" block: rows of the audit log.
type auditRows struct {
	P    *page
	Rows []store.ConsolePageAuditRow
}

// newPage is the page data of r for its viewer, titled by the word key.
func (h *Handler) newPage(r *http.Request, nav, titleKey string) *page {
	v := viewerOf(r)
	lang := h.langOf(r, v)
	p := &page{Viewer: v, Lang: lang, Nav: nav, Back: r.URL.RequestURI(), loc: h.opt.Location, num: message.NewPrinter(language.Make(lang))}
	p.Title = p.T(titleKey)
	if d := r.URL.Query().Get("done"); slices.Contains([]string{"close", "snooze", "retry", "release", "report-confirm", "report-reject"}, d) {
		p.Done = d
	}
	return p
}

// langOf is the language of r's pages: the cookie's, else the viewer's,
// else the office's.
func (h *Handler) langOf(r *http.Request, v *Viewer) string {
	if c, err := r.Cookie(langCookie); err == nil && validLang(c.Value) {
		return c.Value
	}
	if v != nil && validLang(v.Lang) {
		return v.Lang
	}
	if validLang(h.opt.Lang) {
		return h.opt.Lang
	}
	return "ru"
}

func validLang(l string) bool { return l == "ru" || l == "kk" || l == "en" }

// render writes page name with data, or a 500 when it fails (rendered to
// a buffer first, so that a failure never sends half a page).
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	var buf bytes.Buffer
	if err := pageTemplates()[name].Execute(&buf, data); err != nil {
		h.log.ErrorContext(r.Context(), "console: render page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// fail answers a store error: logged with the path (ids only), 500.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	h.log.ErrorContext(r.Context(), "console: page", "path", r.URL.Path, "err", err)
	http.Error(w, "internal error", http.StatusInternalServerError)
}

// notFound answers the "not found" page: an unknown id and a student
// outside a dean's faculties look the same.
func (h *Handler) notFound(w http.ResponseWriter, r *http.Request) {
	p := h.newPage(r, "", "page.notfound.title")
	h.render(w, r, http.StatusNotFound, "notfound", p)
}

// pageRoutes registers the pages.
func (h *Handler) pageRoutes() {
	h.mux.Handle("GET /console/{$}", h.signedIn(h.todayPage))
	h.mux.Handle("GET /console/students/{id}", h.signedIn(h.studentPage))
	h.mux.Handle("POST /console/search", h.signedIn(h.search))
	h.mux.Handle("GET /console/nights", h.officeOnly(h.nightsPage))
	h.mux.Handle("GET /console/failed", h.officeOnly(h.failedPage))
	h.mux.Handle("GET /console/audit", h.officeOnly(h.auditPage))
	h.mux.HandleFunc("GET /console/static/console.css", serveCSS)
	h.mux.Handle("POST /console/lang", h.signedIn(h.setLang))
}

// serveCSS serves the stylesheet (public: it holds nothing of anyone).
func serveCSS(w http.ResponseWriter, r *http.Request) {
	b, err := pageFiles.ReadFile("ui/console.css")
	if err != nil {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	_, _ = w.Write(b)
}

// setLang keeps the chosen language in a cookie and goes back to the page
// the form was on (only a console path: never an open redirect).
func (h *Handler) setLang(w http.ResponseWriter, r *http.Request) {
	lang := r.PostFormValue("lang")
	if !validLang(lang) {
		http.Error(w, "lang: ru, kk or en", http.StatusBadRequest)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: langCookie, Value: lang, Path: Path, MaxAge: 365 * 24 * 3600,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil || strings.HasPrefix(h.opt.PublicURL, "https:"),
	})
	http.Redirect(w, r, safeBack(r.PostFormValue("back")), http.StatusSeeOther)
}

// safeBack is back when it is a path of the console, else the console's
// start page.
func safeBack(back string) string {
	u, err := url.Parse(back)
	if err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(back, Path) || strings.ContainsAny(back, "\\\r\n") {
		return Path
	}
	return back
}

// pageOffset reads the page number (?page=, from 1) as an offset of rows.
func pageOffset(r *http.Request) (page, offset int) {
	page, err := strconv.Atoi(r.URL.Query().Get("page"))
	if err != nil || page < 1 || page > 100000 {
		page = 1
	}
	return page, (page - 1) * pageRows
}

// pageLink is the path of page n of a list with the query q.
func pageLink(path string, q url.Values, n int) string {
	q = maps(q)
	q.Set("page", strconv.Itoa(n))
	q.Del("done")
	return path + "?" + q.Encode()
}

// maps copies q.
func maps(q url.Values) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = slices.Clone(v)
	}
	return out
}
