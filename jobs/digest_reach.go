package jobs

import (
	"cmp"
	"slices"
	"strings"

	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/jobs/rules"
	"github.com/iec-almaty/sisnotify/store"
	"github.com/iec-almaty/sisnotify/templates"
)

// unreachableRows orders the students' contacts that cannot receive for
// the office digest of night, in the digest's order of urgency: by the
// student's most urgent row of the office digest (office), in the order
// of the sections (templates.DigestSections) and then the earliest due
// date, as the rows themselves are ordered (sortMostUrgent); the students
// the digest lists nowhere else come last, the longest unreachable first.
// Each row names the student's most urgent obligation, which is why it
// stands where it does.
func (d *Digest) unreachableRows(night date.Date, contacts []store.DigestUnreachable, office []*digestItem) []templates.Unreachable {
	if len(contacts) == 0 {
		return nil
	}
	type urgency struct {
		section int
		it      *digestItem
	}
	sectionIndex := make(map[string]int, len(templates.DigestSections))
	for i, k := range templates.DigestSections {
		sectionIndex[k] = i
	}
	byStudent := map[string]urgency{}
	for _, c := range contacts {
		byStudent[c.StudentID] = urgency{section: len(templates.DigestSections)}
	}
	for _, it := range office {
		u, ok := byStudent[it.StudentID]
		if !ok {
			continue
		}
		s := sectionIndex[templates.SectionOf(it.Rule, night.Sub(date.Date(it.Due)), it.FoundLate&int(rules.OfficeDigest) != 0)]
		if u.it == nil || s < u.section || s == u.section && moreUrgent(it, u.it) {
			byStudent[it.StudentID] = urgency{section: s, it: it}
		}
	}
	loc := d.location()
	type row struct {
		templates.Unreachable
		section int
	}
	rows := make([]row, len(contacts))
	for i, c := range contacts {
		u := byStudent[c.StudentID]
		r := row{section: u.section, Unreachable: templates.Unreachable{
			StudentID: c.StudentID, Name: c.Name, Faculty: c.Faculty, Channel: c.Channel,
			Since: date.FromTime(c.Since.In(loc)), LastError: c.LastError,
		}}
		if u.it != nil {
			r.Rule, r.Due, r.DaysOverdue = u.it.Rule, date.Date(u.it.Due), night.Sub(date.Date(u.it.Due))
		}
		rows[i] = r
	}
	slices.SortFunc(rows, func(a, b row) int {
		return cmp.Or(cmp.Compare(a.section, b.section), cmp.Compare(a.Due, b.Due), cmp.Compare(a.Since, b.Since),
			strings.Compare(a.StudentID, b.StudentID), strings.Compare(a.Channel, b.Channel))
	})
	out := make([]templates.Unreachable, len(rows))
	for i, r := range rows {
		out[i] = r.Unreachable
	}
	return out
}

// moreUrgent reports whether a comes before b in a section (sortMostUrgent).
func moreUrgent(a, b *digestItem) bool {
	return cmp.Or(cmp.Compare(a.Due, b.Due), strings.Compare(a.Rule, b.Rule), strings.Compare(a.SubjectID, b.SubjectID), cmp.Compare(a.ID, b.ID)) < 0
}
