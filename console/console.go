// Package console is the office's and the deans' web console, the
// /console/ side of `sisnotify serve`: server-rendered pages in ru, kk and
// en that show every case (today's open obligations, a student's
// obligations and notices, the nights, the failed notices, the audit log)
// and the office's actions on them (close, snooze, retry, release), each
// audited.
//
// Who may see what: office staff (the addresses of StaffEmails, signed in
// through the university's OpenID Connect provider, or the break-glass
// login of SISNOTIFY_HTTP_USER/PASSWORD with HTTP Basic authentication)
// see everything and act; a dean (an address that is a faculty's
// dean_email in the snapshot) sees the students of their faculties and
// cannot act; anyone else gets a polite "no access" page.
//
// The files: auth.go (sign-in, sessions, CSRF, rate limit), pages.go (the
// pages), actions.go (the office's actions), i18n.go (the console's
// words), and ui/ (the templates and the stylesheet, embedded).
package console

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/redis/go-redis/v9"

	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/store"
)

// Path is where the console is mounted.
const Path = "/console/"

// Options configure the console.
type Options struct {
	// DB is the worker's database.
	DB *sqlx.DB
	// Redis holds the sign-in rate limit's counters.
	Redis redis.UniversalClient
	// OIDC is the university's single sign-on; a zero Issuer turns
	// sign-in by SSO off (the break-glass login still works).
	OIDC OIDC
	// StaffEmails are the office staff's addresses (SISNOTIFY_STAFF_EMAILS,
	// default the office emails); compared case-insensitively.
	StaffEmails []string
	// BreakGlassUser and BreakGlassPassword are the office login for when
	// the SSO is down (SISNOTIFY_HTTP_USER/PASSWORD), by HTTP Basic
	// authentication; an empty user turns it off.
	BreakGlassUser, BreakGlassPassword string
	// PublicURL is the base URL the console is reached under (its OIDC
	// redirect URL is PublicURL + Path + "auth/callback"); empty: taken
	// from each request's Host (for development and tests).
	PublicURL string
	// Lang is the office's language, the console's default: ru, kk or en.
	Lang string
	// Location is the university's time zone: "today" is a date there.
	Location *time.Location
	// Now replaces time.Now (tests); nil: time.Now.
	Now func() time.Time
	// IdleTimeout ends a session unused for this long; default 30 minutes.
	IdleTimeout time.Duration
	// Releaser releases a night the feed guard held (the same as
	// `run --once --force`); nil: the console cannot release nights.
	Releaser Releaser
	// Requeuer puts failed notices back on the queue; nil: the console
	// cannot retry notices.
	Requeuer Requeuer
	Log      *slog.Logger
}

// OIDC is an OpenID Connect provider and this client's registration there.
type OIDC struct {
	Issuer, ClientID, ClientSecret string
}

// Releaser releases a night held by the feed guard, for who; worker's
// night runner implements it. A night the guard does not hold is
// ErrNotHeld.
type Releaser interface {
	Release(ctx context.Context, night date.Date, who string) error
}

// ErrNotHeld is the Releaser's answer for a night the feed guard does not
// hold: it succeeded, failed otherwise, or never ran.
var ErrNotHeld = errors.New("the night is not held by the feed guard")

// Requeuer puts the failed notices ids back to pending and on the queue,
// recording who did it; it returns those it re-queued.
type Requeuer interface {
	Requeue(ctx context.Context, ids []int64, who string) ([]int64, error)
}

// Role is what a signed-in person may do.
type Role string

// The console's roles.
const (
	RoleOffice Role = "office" // sees everything, acts
	RoleDean   Role = "dean"   // sees their faculties' students, read-only
)

// Viewer is the person a request is for.
type Viewer struct {
	Email      string   // lower case; for the break-glass login "break-glass:<user>"
	Role       Role     // office or dean
	FacultyIDs []string // a dean's faculties
	CSRF       string   // the token every form of theirs carries
	Lang       string   // the language their pages are in
	BreakGlass bool     // signed in by HTTP Basic authentication
}

// CanAct says whether v may use the office's actions.
func (v *Viewer) CanAct() bool { return v != nil && v.Role == RoleOffice }

type viewerKey struct{}

// withViewer is ctx carrying v.
func withViewer(ctx context.Context, v *Viewer) context.Context {
	return context.WithValue(ctx, viewerKey{}, v)
}

// viewerOf is the viewer of a request that passed h.signedIn; nil
// otherwise.
func viewerOf(r *http.Request) *Viewer {
	v, _ := r.Context().Value(viewerKey{}).(*Viewer)
	return v
}

// Handler is the console, an http.Handler for everything under Path.
type Handler struct {
	opt   Options
	store *store.Store
	mux   *http.ServeMux
	log   *slog.Logger
	// auth is sign-in's state (auth.go), set by authRoutes.
	auth *authState
}

// New returns the console over opt.
func New(opt Options) (*Handler, error) {
	if opt.Location == nil {
		opt.Location = time.UTC
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.IdleTimeout <= 0 {
		opt.IdleTimeout = 30 * time.Minute
	}
	if opt.Lang == "" {
		opt.Lang = "ru"
	}
	h := &Handler{opt: opt, store: store.New(opt.DB), mux: http.NewServeMux(), log: opt.Log}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if err := h.authRoutes(); err != nil {
		return nil, err
	}
	h.pageRoutes()
	h.actionRoutes()
	return h, nil
}

// ServeHTTP serves the console with its security headers: a strict
// Content-Security-Policy (nothing but the console's own stylesheet, no
// scripts, no frames), no caching, no referrer.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cache-Control", "no-store")
	h.mux.ServeHTTP(w, r)
}

// today is the university's date now.
func (h *Handler) today() date.Date {
	return date.FromTime(h.opt.Now().In(h.opt.Location))
}

// checkCSRF says whether a form's token is the viewer's.
func checkCSRF(r *http.Request, v *Viewer) bool {
	got := r.PostFormValue("csrf")
	return v != nil && v.CSRF != "" && subtle.ConstantTimeCompare([]byte(got), []byte(v.CSRF)) == 1
}
