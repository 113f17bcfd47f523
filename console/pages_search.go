package console

import (
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/iec-almaty/sisnotify/store"
)

// searchMax is how many students a search by name lists at most.
const searchMax = 50

// searchPage is the search results' data.
type searchPage struct {
	*page
	Query    string
	Matches  []store.ConsolePageMatch
	More     bool // there may be more than searchMax
	TooShort bool
}

// search finds a student: an id goes straight to their page; anything
// else is a name, searched case-insensitively in given and family names
// (a dean's faculties only). It is a POST so that a name never goes in a
// URL (nor in a log or the browser's history).
func (h *Handler) search(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	v := viewerOf(r)
	q := strings.Join(strings.Fields(r.PostFormValue("q")), " ")
	if q == "" {
		http.Redirect(w, r, Path, http.StatusSeeOther)
		return
	}
	if len(q) <= 64 && !strings.ContainsAny(q, " \t") {
		st, err := h.store.ConsolePageStudentByID(ctx, q)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		if st != nil && canSee(v, st.FacultyID) {
			http.Redirect(w, r, Path+"students/"+url.PathEscape(st.ID), http.StatusSeeOther)
			return
		}
	}
	p := &searchPage{page: h.newPage(r, "", "page.search.title"), Query: q}
	p.Back = Path
	if utf8.RuneCountInString(q) < 2 || len(q) > 200 {
		p.TooShort = true
		h.render(w, r, http.StatusOK, "search", p)
		return
	}
	m, err := h.store.ConsolePageSearch(ctx, q, v.Role != RoleOffice, v.FacultyIDs, searchMax+1)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if len(m) > searchMax {
		m, p.More = m[:searchMax], true
	}
	p.Matches = m
	h.render(w, r, http.StatusOK, "search", p)
}
