package templates

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"sort"
	"strconv"
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

	// A long list of obligations is cut (the digest job keeps the most
	// overdue rows): Groups then hold only the rows shown, and RowsTotal,
	// OverdueTotal and NewTotal count every row of the digest, for the
	// subject and the summary. RowsTotal 0, or not more than the rows in
	// Groups: the list is whole and the rows are counted. Attachment is the
	// name of the file that lists every row (DigestCSVName), which the
	// digest points to when the list is cut.
	RowsTotal, OverdueTotal, NewTotal int
	Attachment                        string
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
	// Total is how many obligations of the rule the digest has when the
	// list is cut (Digest.RowsTotal): Rows are the ones shown, maybe none.
	// 0 or not more than len(Rows): Rows are all of them.
	Total int
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

	RowsShown int // rows shown in the groups
	RowsMore  int // rows left out of the groups (they are in the attachment)
}

type digestGroupView struct {
	DigestGroup
	Travel  bool // some row has a travel request id
	Overdue int  // rows shown with DaysOverdue > 0
	All     int  // rows of the rule in all, shown or not
	More    int  // rows of the rule left out
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
	d.Attachment = cleanField(d.Attachment)
	v := digestView{Digest: d, Dean: d.Audience == AudienceDean}
	for _, g := range d.Groups {
		if len(g.Rows) == 0 && g.Total == 0 {
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
		gv.All, gv.More = listed(len(rows), g.Total)
		v.Groups = append(v.Groups, gv)
	}
	v.RowsShown = v.Total
	if d.RowsTotal > v.Total {
		// Cut: the counts are the whole digest's.
		v.Total, v.Overdue, v.New = d.RowsTotal, d.OverdueTotal, d.NewTotal
		v.RowsMore = d.RowsTotal - v.RowsShown
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

// DigestCSVName is the name of the file attached to a cut digest of asOf:
// digest-YYYY-MM-DD.csv.
func DigestCSVName(asOf date.Date) string { return "digest-" + asOf.String() + ".csv" }

// DigestCSVType is the content type of the attached file.
const DigestCSVType = "text/csv; charset=utf-8; header=present"

// digestCSVColumns are the blocks that name the columns of the attached
// file, in order.
var digestCSVColumns = []string{"l.rule", "l.student", "l.request", "l.name", "l.faculty", "l.due", "l.days", "l.level", "l.sent", "l.new"}

// DigestCSV writes the file attached to a cut digest: every row of the
// digest, one line each, for a spreadsheet. It is UTF-8 with a byte order
// mark (without it Excel reads Cyrillic as mojibake), the header row is in
// the digest's language (the words of its l.* blocks), and the separator
// is the one Excel expects in the language's locale: a semicolon in ru and
// kk, a comma in en. Columns: rule id, student id, travel request id (empty
// for other rules), name, faculty, due date (YYYY-MM-DD), days overdue
// (negative: days left), level, already sent, and the l.new word for a row
// new since the previous digest. Text cells are cleaned like every digest
// field, and one that a spreadsheet would take for a formula (= + - @) is
// prefixed with an apostrophe.
type DigestCSV struct {
	w   *csv.Writer
	new string
	rec []string
}

// NewDigestCSV starts the attached file of a digest in lang on w: it
// writes the byte order mark and the header row. Write the rows with Row,
// then call Flush.
func (s *Set) NewDigestCSV(w io.Writer, lang string) (*DigestCSV, error) {
	lang = Lang(lang)
	p := s.digests[lang]
	header := make([]string, len(digestCSVColumns))
	for i, name := range digestCSVColumns {
		var b strings.Builder
		if err := p.text.ExecuteTemplate(&b, name, digestView{Digest: Digest{Lang: lang}}); err != nil {
			return nil, fmt.Errorf("templates: %s digest csv header: %w", lang, err)
		}
		header[i] = oneLine(b.String())
	}
	if _, err := io.WriteString(w, "\uFEFF"); err != nil {
		return nil, err
	}
	c := &DigestCSV{w: csv.NewWriter(w), new: header[len(header)-1], rec: make([]string, len(header))}
	if lang != "en" {
		c.w.Comma = ';'
	}
	c.w.UseCRLF = true
	if err := c.w.Write(header); err != nil {
		return nil, err
	}
	return c, nil
}

// Row writes one obligation of rule, with r.DaysOverdue as given.
func (c *DigestCSV) Row(rule string, r DigestRow) error {
	subject := r.SubjectID
	if subject == r.StudentID {
		subject = ""
	}
	newWord := ""
	if r.New {
		newWord = c.new
	}
	c.rec[0] = csvText(rule)
	c.rec[1] = csvText(r.StudentID)
	c.rec[2] = csvText(subject)
	c.rec[3] = csvText(r.Name)
	c.rec[4] = csvText(r.Faculty)
	c.rec[5] = r.Due.String()
	c.rec[6] = strconv.Itoa(r.DaysOverdue)
	c.rec[7] = strconv.Itoa(r.Level)
	c.rec[8] = csvText(r.Sent)
	c.rec[9] = newWord
	return c.w.Write(c.rec)
}

// Flush writes what is buffered and returns the first error of any write.
func (c *DigestCSV) Flush() error {
	c.w.Flush()
	return c.w.Error()
}

// csvText is a cleaned text cell that no spreadsheet runs as a formula.
func csvText(s string) string {
	s = cleanField(s)
	if s != "" && strings.ContainsRune("=+-@", rune(s[0])) {
		return "'" + s
	}
	return s
}
