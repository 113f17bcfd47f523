package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/iec-almaty/sisnotify/store"
)

// nightsShown is how many nights the Nights page lists.
const nightsShown = 60

// causeFeedGuard is the cause of a night the feed guard held
// (worker.CauseFeedGuard; console does not import worker).
const causeFeedGuard = "feed_guard"

// nightsPage is the Nights page's data.
type nightsPage struct {
	*page
	Nights     []nightRow
	CanRelease bool
}

// nightRow is a night with its counts as a table.
type nightRow struct {
	store.ConsolePageNight
	Held     bool
	Duration string
	Counts   []nightCount
}

// nightCount is a phase's count: "sync", "students.read", 2000.
type nightCount struct {
	Phase, Name, Value string
}

// nightsPage serves the nights, the newest first; a night the feed guard
// held has the release form.
func (h *Handler) nightsPage(w http.ResponseWriter, r *http.Request) {
	nights, err := h.store.ConsolePageNights(r.Context(), nightsShown)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	p := &nightsPage{page: h.newPage(r, "nights", "page.nights.title"), CanRelease: h.opt.Releaser != nil}
	for _, n := range nights {
		row := nightRow{ConsolePageNight: n, Held: n.Status == string(store.RunFailed) && n.Cause == causeFeedGuard}
		if n.FinishedAt != nil {
			row.Duration = n.FinishedAt.Sub(n.StartedAt).Round(time.Second).String()
		}
		row.Counts = p.counts(n.Counts)
		p.Nights = append(p.Nights, row)
	}
	h.render(w, r, http.StatusOK, "nights", p)
}

// counts flattens a night's counts (phase → its result as JSON) into
// lines, numbers grouped; a phase's nested objects as "a.b".
func (p *nightsPage) counts(raw []byte) []nightCount {
	var byPhase map[string]any
	if json.Unmarshal(raw, &byPhase) != nil {
		return nil
	}
	var out []nightCount
	var walk func(phase, prefix string, v any)
	walk = func(phase, prefix string, v any) {
		switch x := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				name := k
				if prefix != "" {
					name = prefix + "." + k
				}
				walk(phase, name, x[k])
			}
		case float64:
			s := strconv.FormatFloat(x, 'f', -1, 64)
			if x == float64(int(x)) {
				s = p.Num(int(x))
			}
			out = append(out, nightCount{phase, prefix, s})
		default:
			out = append(out, nightCount{phase, prefix, fmt.Sprint(x)})
		}
	}
	phases := make([]string, 0, len(byPhase))
	for k := range byPhase {
		phases = append(phases, k)
	}
	slices.Sort(phases)
	for _, ph := range phases {
		walk(ph, "", byPhase[ph])
	}
	return out
}

// failedPage is the Failed notices page's data.
type failedPage struct {
	*page
	Notices        []store.ConsolePageNotice
	Total          int
	From, To, More int
	Next, Prev     string
	CanRetry       bool
}

// failedPage serves the notices that failed for good, the newest first,
// a page at a time, each with its retry form.
func (h *Handler) failedPage(w http.ResponseWriter, r *http.Request) {
	pageNo, offset := pageOffset(r)
	notices, total, err := h.store.ConsolePageFailedNotices(r.Context(), offset, pageRows)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	p := &failedPage{page: h.newPage(r, "failed", "page.failed.title"), Notices: notices, Total: total, CanRetry: h.opt.Requeuer != nil}
	p.From, p.To, p.More, p.Next, p.Prev = pager(r, "/console/failed", pageNo, offset, len(notices), total)
	h.render(w, r, http.StatusOK, "failed", p)
}

// auditPage is the Audit log page's data.
type auditPage struct {
	*page
	Rows           []store.ConsolePageAuditRow
	Total          int
	From, To, More int
	Next, Prev     string
}

// auditPage serves the audit log, the newest first, a page at a time.
func (h *Handler) auditPage(w http.ResponseWriter, r *http.Request) {
	pageNo, offset := pageOffset(r)
	rows, total, err := h.store.ConsolePageAudit(r.Context(), offset, pageRows)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	p := &auditPage{page: h.newPage(r, "audit", "page.audit.title"), Rows: rows, Total: total}
	p.From, p.To, p.More, p.Next, p.Prev = pager(r, "/console/audit", pageNo, offset, len(rows), total)
	h.render(w, r, http.StatusOK, "audit", p)
}

// pager is the rows a page of a list shows (1-based), how many follow,
// and the links to the next and previous pages.
func pager(r *http.Request, path string, pageNo, offset, n, total int) (from, to, more int, next, prev string) {
	if n > 0 {
		from, to = offset+1, offset+n
	}
	more = max(0, total-offset-n)
	q := r.URL.Query()
	if more > 0 {
		next = pageLink(path, q, pageNo+1)
	}
	if pageNo > 1 {
		prev = pageLink(path, q, pageNo-1)
	}
	return from, to, more, next, prev
}
