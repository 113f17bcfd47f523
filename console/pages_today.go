package console

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/iec-almaty/sisnotify/jobs"
	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/jobs/rules"
	"github.com/iec-almaty/sisnotify/store"
	"github.com/iec-almaty/sisnotify/templates"
)

// closeOffice is the close reason of an obligation the office closed
// (migration 00010).
const closeOffice = "office"

// lateMask: a row is "found late" when its found_late has a digest's bit,
// as the digest marks it.
const lateMask = int(rules.OfficeDigest | rules.DeanDigest)

// sectionKinds are the store's section ranks (store.ConsoleSection…) as
// the digest's sections (templates.Section…).
var sectionKinds = [...]string{
	store.ConsoleSectionToday:    templates.SectionToday,
	store.ConsoleSectionLegal:    templates.SectionLegal,
	store.ConsoleSectionOverdue:  templates.SectionOverdue,
	store.ConsoleSectionLate:     templates.SectionLate,
	store.ConsoleSectionUpcoming: templates.SectionUpcoming,
}

// todayPage is the Today page's data.
type todayPage struct {
	*page
	Today, LastNight date.Date
	Filter           todayFilter
	Rules            []string
	Levels           []int
	Faculties        []store.ConsolePageFaculty
	Total, Overdue   int
	New              int
	Counts           []todayCount
	Sections         []todaySection
	From, To, More   int    // rows shown (1-based) and how many follow
	Next, Prev       string // links to the next and previous pages
	Closed           []todayRow
	ClosedSince      date.Date
}

// todayFilter is the page's filters, from its query (no personal data).
type todayFilter struct {
	Rule, Faculty string
	Level         int
	Overdue, New  bool
	Any           bool // some filter is set
}

// todayCount is a line of the counts per rule and level.
type todayCount struct {
	Rule            string
	Level           int
	N, Overdue, New int
	FilterURL       string
}

// todaySection is a section of the rows of this page.
type todaySection struct {
	Kind  string
	Total int // in the section, on every page
	Rows  []todayRow
}

// todayRow is an obligation as a row of Today.
type todayRow struct {
	store.ConsolePageObligation
	DaysOverdue          int
	New, Late, Snoozed   bool
	ClosedByOffice, Moot bool
}

// todayPage serves Today: the open obligations, as the digest lists them,
// live, with filters and counts; a dean sees their faculties' only.
func (h *Handler) todayPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	v := viewerOf(r)
	p := &todayPage{page: h.newPage(r, "today", "page.today.title"), Today: h.today()}
	q := r.URL.Query()
	p.Filter = todayFilter{Rule: limitLen(q.Get("rule"), 64), Faculty: limitLen(q.Get("faculty"), 64), Overdue: q.Get("overdue") == "1", New: q.Get("new") == "1"}
	if l, err := strconv.Atoi(q.Get("level")); err == nil && l > 0 && l < 100 {
		p.Filter.Level = l
	}
	p.Filter.Any = p.Filter.Rule != "" || p.Filter.Faculty != "" || p.Filter.Level > 0 || p.Filter.Overdue || p.Filter.New
	var err error
	if p.LastNight, err = h.store.ConsolePageLastNight(ctx); err != nil {
		h.fail(w, r, err)
		return
	}
	f := store.ConsolePageFilter{
		Today: p.Today, LastNight: p.LastNight, Scoped: v.Role != RoleOffice, FacultyIDs: v.FacultyIDs,
		Rule: p.Filter.Rule, Level: p.Filter.Level, Faculty: p.Filter.Faculty, Overdue: p.Filter.Overdue, New: p.Filter.New,
		LegalRules: templates.RegistrationDuties, LateMask: lateMask,
	}
	counts, err := h.store.ConsolePageTodayCounts(ctx, f)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	pageNo, offset := pageOffset(r)
	rows, err := h.store.ConsolePageToday(ctx, f, offset, pageRows)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if p.Faculties, err = h.store.ConsolePageFaculties(ctx, f.Scoped, v.FacultyIDs); err != nil {
		h.fail(w, r, err)
		return
	}
	if s := ruleTitles(); s != nil {
		p.Rules = s.Rules()
	}
	p.tally(counts, q)
	for i := 1; i <= 6; i++ {
		p.Levels = append(p.Levels, i)
	}
	for _, o := range rows {
		kind := sectionKinds[o.Section]
		if n := len(p.Sections); n == 0 || p.Sections[n-1].Kind != kind {
			total := 0
			for _, c := range counts {
				if c.Section == o.Section {
					total += c.N
				}
			}
			p.Sections = append(p.Sections, todaySection{Kind: kind, Total: total})
		}
		s := &p.Sections[len(p.Sections)-1]
		s.Rows = append(s.Rows, p.row(o))
	}
	if len(rows) > 0 {
		p.From, p.To = offset+1, offset+len(rows)
	}
	p.More = max(0, p.Total-offset-len(rows))
	if p.More > 0 {
		p.Next = pageLink(Path, q, pageNo+1)
	}
	if pageNo > 1 {
		p.Prev = pageLink(Path, q, pageNo-1)
	}
	// What closed lately, as moot or by the office: the digest's "closed
	// as moot" section, for the last nights it would list them.
	if pageNo == 1 && !p.Filter.Any {
		p.ClosedSince = p.Today.AddDays(-jobs.MootDays)
		closed, err := h.store.ConsolePageRecentlyClosed(ctx, p.ClosedSince,
			[]string{rules.MootDeparturePassed, rules.MootEntryPassed, closeOffice}, f.Scoped, v.FacultyIDs, 50)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		for _, o := range closed {
			p.Closed = append(p.Closed, p.row(o))
		}
	}
	h.render(w, r, http.StatusOK, "today", p)
}

// tally sums the counts and lists them per rule and level, each with the
// link that filters on it.
func (p *todayPage) tally(counts []store.ConsolePageCount, q url.Values) {
	type key struct {
		rule  string
		level int
	}
	at := map[key]int{}
	for _, c := range counts {
		p.Total += c.N
		p.Overdue += c.Overdue
		p.New += c.New
		k := key{c.Rule, c.Level}
		i, ok := at[k]
		if !ok {
			i = len(p.Counts)
			at[k] = i
			fq := maps(q)
			fq.Del("page")
			fq.Del("done")
			fq.Set("rule", c.Rule)
			fq.Set("level", strconv.Itoa(c.Level))
			p.Counts = append(p.Counts, todayCount{Rule: c.Rule, Level: c.Level, FilterURL: Path + "?" + fq.Encode()})
		}
		p.Counts[i].N += c.N
		p.Counts[i].Overdue += c.Overdue
		p.Counts[i].New += c.New
	}
}

// todayRows is a table of Today's rows: open ones, or the recently
// closed (Closed).
type todayRows struct {
	P      *todayPage
	Rows   []todayRow
	Closed bool
}

// row is o as a row of Today.
func (p *todayPage) row(o store.ConsolePageObligation) todayRow {
	return todayRow{
		ConsolePageObligation: o,
		DaysOverdue:           p.Today.Sub(o.Due),
		New:                   o.ClosedOn == 0 && p.LastNight != 0 && o.OpenedOn == p.LastNight,
		Late:                  o.FoundLate&lateMask != 0,
		Snoozed:               o.ClosedOn == 0 && o.SnoozedUntil > p.Today,
		ClosedByOffice:        o.CloseReason == closeOffice,
		Moot:                  o.CloseReason == rules.MootDeparturePassed || o.CloseReason == rules.MootEntryPassed,
	}
}

// limitLen is s cut to n bytes (a filter value, never shown raw).
func limitLen(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
