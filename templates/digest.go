package templates

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	"github.com/iec-almaty/sisnotify/jobs/date"
)

// Digest is one daily digest: the office's (to every office address) or one
// dean's (the dean of FacultyName).
type Digest struct {
	Lang        string // en, ru, kk; anything else is English
	AsOf        date.Date
	Office      Office
	Audience    string // AudienceOffice or AudienceDean
	DeanName    string // dean digests
	FacultyName string // dean digests
	Groups      []DigestGroup
	Failed      []FailedNotice // office digest: notices that failed permanently
	Problems    []DataProblem  // office digest: data problems found in the SIS

	// A long list is cut: Failed and Problems then hold the most recent
	// ones, and these say how many there are in all (0, or less than the
	// list's length: the list is whole). ProblemCounts, problems per code,
	// is shown when Problems was cut.
	FailedTotal   int
	ProblemsTotal int
	ProblemCounts []ProblemCount
}

// ProblemCount is how many data problems have one code.
type ProblemCount struct {
	Code string
	N    int
}

// DigestGroup is the open obligations of one rule.
type DigestGroup struct {
	Rule  string
	Title string // empty: the rule's translated title
	Rows  []DigestRow
}

// DigestRow is one open obligation.
type DigestRow struct {
	StudentID   string
	SubjectID   string // the travel request id, for travel rules; empty or the student id otherwise
	Name        string
	Faculty     string
	Due         date.Date
	DaysOverdue int    // negative: days left
	Level       int    // the reached step
	Sent        string // what was already sent, e.g. "email L1 12 Dec; sms L2 15 Dec"
	New         bool   // listed for the first time today
}

// FailedNotice is a notice that failed permanently.
type FailedNotice struct {
	NoticeID, StudentID, Rule, Channel, Reason string
}

// DataProblem is a problem found in the SIS data: where it is, never the
// value of a personal field.
type DataProblem struct {
	Entity, RowID, Field, Code, Message string
}

// digestView is what a digest template sees. README.md documents it.
type digestView struct {
	Digest
	Groups  []digestGroupView // non-empty groups, rows most overdue first
	Dean    bool              // a dean's digest
	Total   int               // rows in all groups
	Overdue int               // rows with DaysOverdue > 0
	New     int               // rows marked New

	FailedAll    int // failed notices in all, listed or not
	FailedMore   int // failed notices left out of the list
	ProblemsAll  int // data problems in all, listed or not
	ProblemsMore int // data problems left out of the list
}

type digestGroupView struct {
	DigestGroup
	Travel  bool // some row has a travel request id
	Overdue int  // rows with DaysOverdue > 0
}

// Digest renders a daily digest. Groups keep their order; within a group
// rows are sorted most overdue first (then by student id); empty groups are
// left out. With nothing overdue the digest says so.
func (s *Set) Digest(d Digest) (Rendered, error) {
	d.Lang = Lang(d.Lang)
	if d.AsOf.IsZero() {
		return Rendered{}, fmt.Errorf("templates: digest: AsOf is required")
	}
	switch d.Audience {
	case "":
		d.Audience = AudienceOffice
	case AudienceOffice, AudienceDean:
	default:
		return Rendered{}, fmt.Errorf("templates: digest for audience %q: want office or dean", d.Audience)
	}
	for _, f := range []*string{&d.DeanName, &d.FacultyName,
		&d.Office.Name, &d.Office.Address, &d.Office.Hours, &d.Office.Phone, &d.Office.Email} {
		*f = cleanField(*f)
	}
	v := digestView{Digest: d, Dean: d.Audience == AudienceDean}
	for _, g := range d.Groups {
		if len(g.Rows) == 0 {
			continue
		}
		g.Rule = cleanField(g.Rule)
		g.Title = cleanField(g.Title)
		if g.Title == "" {
			g.Title = s.RuleTitle(d.Lang, g.Rule)
		}
		gv := digestGroupView{}
		rows := make([]DigestRow, len(g.Rows))
		for i, r := range g.Rows {
			for _, f := range []*string{&r.StudentID, &r.SubjectID, &r.Name, &r.Faculty, &r.Sent} {
				*f = cleanField(*f)
			}
			if r.SubjectID == r.StudentID {
				r.SubjectID = ""
			}
			rows[i] = r
			gv.Travel = gv.Travel || r.SubjectID != ""
			v.Total++
			if r.DaysOverdue > 0 {
				v.Overdue++
				gv.Overdue++
			}
			if r.New {
				v.New++
			}
		}
		sort.SliceStable(rows, func(i, j int) bool {
			if rows[i].DaysOverdue != rows[j].DaysOverdue {
				return rows[i].DaysOverdue > rows[j].DaysOverdue
			}
			return rows[i].StudentID < rows[j].StudentID
		})
		g.Rows = rows
		gv.DigestGroup = g
		v.Groups = append(v.Groups, gv)
	}
	v.Failed = make([]FailedNotice, len(d.Failed))
	for i, f := range d.Failed {
		for _, p := range []*string{&f.NoticeID, &f.StudentID, &f.Rule, &f.Channel, &f.Reason} {
			*p = cleanField(*p)
		}
		v.Failed[i] = f
	}
	v.Problems = make([]DataProblem, len(d.Problems))
	for i, p := range d.Problems {
		for _, q := range []*string{&p.Entity, &p.RowID, &p.Field, &p.Code, &p.Message} {
			*q = cleanField(*q)
		}
		v.Problems[i] = p
	}
	v.FailedAll, v.FailedMore = listed(len(v.Failed), d.FailedTotal)
	v.ProblemsAll, v.ProblemsMore = listed(len(v.Problems), d.ProblemsTotal)
	if v.ProblemsMore == 0 {
		v.ProblemCounts = nil
	} else {
		v.ProblemCounts = make([]ProblemCount, len(d.ProblemCounts))
		for i, c := range d.ProblemCounts {
			v.ProblemCounts[i] = ProblemCount{Code: cleanField(c.Code), N: c.N}
		}
	}
	p := s.digests[d.Lang]
	var subj, text, html bytes.Buffer
	if err := p.text.ExecuteTemplate(&subj, "subject", v); err != nil {
		return Rendered{}, fmt.Errorf("templates: %s digest subject: %w", d.Lang, err)
	}
	if err := p.text.ExecuteTemplate(&text, "text", v); err != nil {
		return Rendered{}, fmt.Errorf("templates: %s digest text: %w", d.Lang, err)
	}
	if err := p.html.ExecuteTemplate(&html, "html", v); err != nil {
		return Rendered{}, fmt.Errorf("templates: %s digest html: %w", d.Lang, err)
	}
	return Rendered{
		Subject: finish(d.Lang, oneLine(subj.String())),
		Text:    finish(d.Lang, tidyText(text.String())),
		HTML:    finish(d.Lang, strings.TrimSpace(html.String())+"\n"),
		Lang:    d.Lang,
		Version: s.version,
	}, nil
}

// listed returns how many items there are in all and how many of them a
// list of n leaves out, for a total that may be 0 (unknown: the list is
// whole).
func listed(n, total int) (all, more int) {
	if total <= n {
		return n, 0
	}
	return total, total - n
}
