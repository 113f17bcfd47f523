// Package studentpage is the public page a student reaches from the link
// in every student email: GET /s/<token> shows, in the student's language,
// their open obligations (what to do and by when), the office's address,
// hours and contacts and their passport number masked, and its forms record
// what the student reports (done, lost documents, address changed, status
// changed) in sisnotify.student_reports, audited, confirmed on screen and
// by email. What a report then does in the night is not this package's.
//
// The token (token.go) is signed with SISNOTIFY_LINK_KEYS and verified
// without the database; a bad, expired or forged token gets the one "link
// not valid" page. Requests are rate-limited per client address in Redis,
// forms carry a CSRF token derived from the link token, and every answer
// sends a strict Content-Security-Policy, no-referrer and no-store.
package studentpage

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"

	"github.com/iec-almaty/sisnotify/integrations/mail"
	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/store"
	"github.com/iec-almaty/sisnotify/templates"
)

// Path is where the page is mounted: /s/<token>.
const Path = "/s/"

// DefaultRate is how many requests one client address may make: 30 a
// minute, with a burst of 30 (GCRA, go-redis/redis_rate).
var DefaultRate = redis_rate.PerMinute(30)

// MoveWindow is how far back the date of a reported move may be.
const MoveWindow = 60

// Mailer sends the confirmation of a report; integrations/mail's sender
// implements it.
type Mailer interface {
	Send(ctx context.Context, msg mail.Message) (mail.Result, bool, error)
}

// Options configure the page.
type Options struct {
	DB *sqlx.DB
	// Redis holds the rate limit's counters; nil: no limit.
	Redis redis.UniversalClient
	// Keys verify the links (SISNOTIFY_LINK_KEYS). Required.
	Keys *Keys
	// Templates give each rule's wording; Office the office's details.
	Templates *templates.Set
	Office    templates.Office
	// Mail sends the confirmation of a report; nil: none is sent.
	Mail Mailer
	// Location is the university's time zone: "today" is a date there;
	// nil: UTC.
	Location *time.Location
	// Now replaces time.Now (tests); nil: time.Now.
	Now func() time.Time
	// Rate is the limit per client address; zero: DefaultRate.
	Rate redis_rate.Limit
	// Acted, when set, is told of every new report, so that what the
	// report opens (lost documents, a new status, a move) is evaluated and
	// queued at once instead of at the next night. Its failure is logged:
	// the report is recorded, and the night acts on it anyway.
	Acted ReportActor
	Log   *slog.Logger
}

// ReportActor acts on a report just recorded for studentID, on the
// university's date today.
type ReportActor interface {
	ReportRecorded(ctx context.Context, studentID string, today date.Date) error
}

// Handler serves the student page under Path.
type Handler struct {
	opt     Options
	store   *store.Store
	limiter *redis_rate.Limiter
	page    *template.Template
	log     *slog.Logger
}

//go:embed page.tmpl
var pageSrc string

//go:embed page.css
var pageCSS []byte

// New checks opt and builds the handler.
func New(opt Options) (*Handler, error) {
	if opt.DB == nil || opt.Keys == nil || opt.Templates == nil {
		return nil, errors.New("studentpage.New: DB, Keys and Templates are required")
	}
	if opt.Location == nil {
		opt.Location = time.UTC
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Rate.Rate <= 0 {
		opt.Rate = DefaultRate
	}
	h := &Handler{opt: opt, store: store.New(opt.DB), log: opt.Log}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.log = h.log.With("component", "studentpage")
	if opt.Redis != nil {
		h.limiter = redis_rate.NewLimiter(opt.Redis)
	}
	var err error
	h.page, err = template.New("page").Funcs(template.FuncMap{"w": func(string) string { return "" }}).Parse(pageSrc)
	if err != nil {
		return nil, err
	}
	return h, nil
}

// headers are sent with every answer: the page loads its own stylesheet
// and nothing else, runs no script, posts only to itself and is framed by
// nobody; the token in its address goes to no other site and into no
// cache.
func headers(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
}

// ServeHTTP serves /s/page.css and /s/<token> (GET, HEAD and POST).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	headers(w)
	if h.limited(w, r) {
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, Path)
	if !ok {
		h.invalid(w)
		return
	}
	if rest == "page.css" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=86400")
		_, _ = w.Write(pageCSS)
		return
	}
	today := today(h.opt.Now(), h.opt.Location)
	link, signer, err := h.opt.Keys.Verify(rest, today)
	if err != nil {
		h.invalid(w)
		return
	}
	st, err := h.store.StudentPageStudentByID(r.Context(), link.StudentID)
	if err != nil {
		h.log.ErrorContext(r.Context(), "student page: read the student", "student_id", link.StudentID, "err", err)
		h.message(w, http.StatusInternalServerError, "en", "limited.title", "limited.text")
		return
	}
	if st == nil {
		h.invalid(w)
		return
	}
	v := visit{token: rest, link: link, signer: signer, student: st, today: today}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		h.show(w, r, v, http.StatusOK, "")
	case http.MethodPost:
		h.report(w, r, v)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		h.message(w, http.StatusMethodNotAllowed, h.lang(r, st), "refused.title", "refused.text")
	}
}

// visit is one verified request.
type visit struct {
	token   string
	link    Link
	signer  int
	student *store.StudentPageStudent
	today   date.Date
}

// invalid is the one answer to a link that is not valid: the same status,
// headers and bytes whatever was wrong, and whether or not its student
// exists.
func (h *Handler) invalid(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(invalidPage)))
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write([]byte(invalidPage))
}

// lang is the page's language: the one chosen (?lang= or the form's
// field), else the student's preferred language.
func (h *Handler) lang(r *http.Request, st *store.StudentPageStudent) string {
	switch l := r.FormValue("lang"); l {
	case "ru", "kk", "en":
		return l
	}
	return templates.Lang(st.Language)
}

// limited counts r against its client's rate (clientOf) and, over it,
// answers 429; Redis holds a hash of the client's address. When Redis
// fails the request goes through (logged).
func (h *Handler) limited(w http.ResponseWriter, r *http.Request) bool {
	if h.limiter == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	res, err := h.limiter.Allow(ctx, limitKey(r), h.opt.Rate)
	if err != nil {
		h.log.Warn("student page: rate limit unavailable", "err", err)
		return false
	}
	if res.Allowed > 0 {
		return false
	}
	w.Header().Set("Retry-After", strconv.Itoa(max(int(math.Ceil(res.RetryAfter.Seconds())), 1)))
	h.message(w, http.StatusTooManyRequests, "en", "limited.title", "limited.text")
	return true
}

func limitKey(r *http.Request) string {
	sum := sha256.Sum256([]byte("sisnotify student page\x00" + clientOf(r)))
	return "sisnotify:student:rate:" + hex.EncodeToString(sum[:16])
}

// clientOf is the address a request counts against. It is the
// connection's, unless that is a loopback or private address: then the
// connection comes from the reverse proxy in front of the page (the
// service's own address stays private), and the client is the last
// address of X-Forwarded-For, the one that proxy appended. Whatever a
// client writes into the header itself comes before it and is ignored; a
// client that reaches a public address of the service directly cannot
// name itself at all.
func clientOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if ip := net.ParseIP(host); ip == nil || !(ip.IsLoopback() || ip.IsPrivate()) {
		return host
	}
	xff := r.Header.Values("X-Forwarded-For")
	if len(xff) == 0 {
		return host
	}
	last := xff[len(xff)-1]
	if i := strings.LastIndexByte(last, ','); i >= 0 {
		last = last[i+1:]
	}
	if a := strings.TrimSpace(last); net.ParseIP(a) != nil {
		return a
	}
	return host
}

// message answers a short page of a title and a sentence.
func (h *Handler) message(w http.ResponseWriter, status int, lang, title, text string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = messageTmpl.Execute(w, struct{ Lang, Title, Text string }{lang, word(lang, title), word(lang, text)})
}

var messageTmpl = template.Must(template.New("message").Parse(`<!DOCTYPE html>
<html lang="{{.Lang}}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<link rel="stylesheet" href="/s/page.css">
</head>
<body>
<main>
<h1>{{.Title}}</h1>
<p>{{.Text}}</p>
</main>
</body>
</html>
`))

// item is one open obligation on the page.
type item struct {
	ID       int64
	Title    string
	Lead     string
	Steps    []string
	Deadline string
	Reported string
}

type langOption struct {
	Code, Name string
	Selected   bool
}

// show renders the page with status (a form's error in errMsg).
func (h *Handler) show(w http.ResponseWriter, r *http.Request, v visit, status int, errMsg string) {
	ctx := r.Context()
	lang := h.lang(r, v.student)
	obs, err := h.store.StudentPageObligations(ctx, v.link.StudentID)
	if err != nil {
		h.log.ErrorContext(ctx, "student page: read the obligations", "student_id", v.link.StudentID, "err", err)
		h.message(w, http.StatusInternalServerError, lang, "limited.title", "limited.text")
		return
	}
	items := make([]item, 0, len(obs))
	for _, o := range obs {
		it := item{ID: o.ID}
		sum, err := h.opt.Templates.StudentSummary(templates.Notice{
			Rule: o.Rule, Level: o.Level, Lang: lang, AsOf: v.today, Due: o.Due, Anchor: o.Anchor,
			StudentID: v.link.StudentID, SubjectID: o.SubjectID, Departure: o.Departure, Return: o.Return,
			Office: h.opt.Office,
		})
		if err != nil {
			// A rule without student wording: its title and the due date.
			it.Title = h.opt.Templates.RuleTitle(lang, o.Rule)
			it.Deadline = word(lang, "due") + ": " + templates.FormatDate(lang, o.Due)
		} else {
			it.Title, it.Lead, it.Steps, it.Deadline = sum.Title, sum.Lead, sum.Steps, sum.Deadline
		}
		if !o.ReportedDone.IsZero() {
			it.Reported = fmt.Sprintf(word(lang, "done.reported"), templates.FormatDate(lang, o.ReportedDone))
		}
		items = append(items, it)
	}
	office := h.opt.Office.Localized(lang)
	if office.Name == "" {
		office.Name = word(lang, "office")
	}
	data := map[string]any{
		"Lang": lang, "Self": Path + v.token, "CSRF": h.opt.Keys.csrf(v.token, v.signer),
		"Passport": maskPassport(v.student.Passport), "Items": items, "Office": office,
		"Phone": dialable(office.Phone), "Today": v.today.String(), "MinMove": v.today.AddDays(-MoveWindow).String(),
		"Error": errMsg,
	}
	if k := r.URL.Query().Get("done"); k != "" && errMsg == "" {
		if msg, ok := words[lang]["ok."+k]; ok {
			data["OK"] = msg
		}
	}
	var langs []langOption
	for _, l := range []struct{ code, name string }{{"ru", "Русский"}, {"kk", "Қазақша"}, {"en", "English"}} {
		langs = append(langs, langOption{l.code, l.name, l.code == lang})
	}
	data["Langs"] = langs
	t, err := h.page.Clone()
	if err == nil {
		t.Funcs(template.FuncMap{"w": func(k string) string { return word(lang, k) }})
	}
	var b strings.Builder
	if err == nil {
		err = t.Execute(&b, data)
	}
	if err != nil {
		h.log.ErrorContext(ctx, "student page: render", "student_id", v.link.StudentID, "err", err)
		h.message(w, http.StatusInternalServerError, lang, "limited.title", "limited.text")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte(b.String()))
	}
}

// maskPassport shows the last 3 characters of a passport number.
func maskPassport(p string) string {
	p = strings.TrimSpace(p)
	if p == "" {
		return ""
	}
	r := []rune(p)
	if len(r) <= 3 {
		return "•••••"
	}
	return "•••••" + string(r[len(r)-3:])
}

// dialable is a phone number as a tel: link takes it: + and digits.
func dialable(p string) string {
	var b strings.Builder
	for _, c := range p {
		if c == '+' || c >= '0' && c <= '9' {
			b.WriteRune(c)
		}
	}
	return b.String()
}

// report records a report posted from the page and answers 303 to the
// page with ?done=<kind>; a form without its CSRF token is refused (403)
// and records nothing.
func (h *Handler) report(w http.ResponseWriter, r *http.Request, v visit) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		h.message(w, http.StatusBadRequest, templates.Lang(v.student.Language), "refused.title", "refused.text")
		return
	}
	lang := h.lang(r, v.student)
	if !h.opt.Keys.checkCSRF(v.token, v.signer, r.PostForm.Get("csrf")) {
		h.log.InfoContext(ctx, "student page: form refused (CSRF)", "student_id", v.link.StudentID)
		h.message(w, http.StatusForbidden, lang, "refused.title", "refused.text")
		return
	}
	rep := store.StudentReport{StudentID: v.link.StudentID, Kind: r.PostForm.Get("kind"), ReportedOn: v.today, NoticeID: v.link.NoticeID}
	switch rep.Kind {
	case store.StudentReportDone:
		id, err := strconv.ParseInt(r.PostForm.Get("obligation"), 10, 64)
		if err != nil || id <= 0 {
			h.show(w, r, v, http.StatusBadRequest, word(lang, "err.obligation"))
			return
		}
		rep.ObligationID = id
	case store.StudentReportLostDocuments:
	case store.StudentReportAddress:
		d, err := date.Parse(r.PostForm.Get("moved_on"))
		if err != nil || d > v.today || d < v.today.AddDays(-MoveWindow) {
			h.show(w, r, v, http.StatusBadRequest, word(lang, "err.date"))
			return
		}
		rep.MovedOn = d
	case store.StudentReportStatus:
		switch s := r.PostForm.Get("new_status"); s {
		case "rvp", "residence-permit", "citizenship":
			rep.NewStatus = s
		default:
			h.show(w, r, v, http.StatusBadRequest, word(lang, "err.status"))
			return
		}
	default:
		h.message(w, http.StatusBadRequest, lang, "refused.title", "refused.text")
		return
	}
	id, created, err := h.store.StudentReportRecord(ctx, rep)
	if errors.Is(err, store.ErrStudentReportObligation) {
		h.show(w, r, v, http.StatusBadRequest, word(lang, "err.obligation"))
		return
	}
	if err != nil {
		h.log.ErrorContext(ctx, "student page: record a report", "student_id", rep.StudentID, "kind", rep.Kind, "err", err)
		h.message(w, http.StatusInternalServerError, lang, "limited.title", "limited.text")
		return
	}
	h.log.InfoContext(ctx, "student page: report", "student_id", rep.StudentID, "kind", rep.Kind, "report_id", id, "new", created)
	if created {
		h.confirm(ctx, v, lang, rep, id)
		if h.opt.Acted != nil {
			if err := h.opt.Acted.ReportRecorded(ctx, rep.StudentID, v.today); err != nil {
				h.log.WarnContext(ctx, "student page: act on a report at once (the night will)", "student_id", rep.StudentID, "report_id", id, "err", err)
			}
		}
	}
	q := url.Values{"done": {rep.Kind}}
	if r.PostForm.Get("lang") != "" {
		q.Set("lang", lang)
	}
	http.Redirect(w, r, Path+v.token+"?"+q.Encode(), http.StatusSeeOther)
}
