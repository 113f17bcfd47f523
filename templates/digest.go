package templates

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/iec-almaty/sisnotify/jobs/date"
)

// The sections of a digest (docs/rules.md, "The daily digests"), in the order
// the digest shows them, after a line that counts the rows of each:
//
//   - SectionToday: due today or tomorrow (days left 0 or 1): acting now
//     still avoids the consequence;
//   - SectionLegal: past due on a registration duty (RegistrationDuties,
//     the rules whose notices name a fine);
//   - SectionOverdue: every other row past due, most overdue first;
//   - SectionLate: rows marked "found late" (a stale step whose urgent
//     email was not sent) that are neither act-today nor legal exposure;
//   - SectionMoot: obligations closed as moot since the recipient's
//     previous office digest (the office digest only), listed once;
//   - SectionClosed: obligations the office closed in the console since
//     the recipient's previous office digest, with the reason given (the
//     office digest only), listed once; an empty section has no heading;
//   - SectionReported: what students reported from the student page; the
//     page does not exist yet, so the digest job never fills it, and an
//     empty section has no heading;
//   - SectionUpcoming: the rest, due in 2 days or more.
//
// Every row is in exactly one section. Act today and legal exposure come
// before found late: a found-late row due today or tomorrow, or past due on
// a registration duty, stays there, marked "found late"; a found-late row
// that would otherwise be "other overdue" or "upcoming" goes to found
// late. SectionOf decides it; the CSV names each row's section.
const (
	SectionToday    = "today"
	SectionLegal    = "legal"
	SectionOverdue  = "overdue"
	SectionLate     = "late"
	SectionMoot     = "moot"
	SectionClosed   = "closed"
	SectionReported = "reported"
	SectionUpcoming = "upcoming"
)

// DigestSections are the sections in the order a digest shows them.
var DigestSections = []string{SectionToday, SectionLegal, SectionOverdue, SectionLate, SectionMoot, SectionClosed, SectionReported, SectionUpcoming}

// CloseOffice is the Reason of a row the office closed in the console.
const CloseOffice = "office"

// RegistrationDuties are the rules whose notices name a fine (docs/rules.md,
// "What a notice may say"): past due, they are legal exposure.
var RegistrationDuties = []string{"arrival-check-in", "registration", "stay-extension", "return-check-in", "address-registration"}

// Reasons an obligation closed as moot (the obligations' close_reason).
const (
	MootDeparturePassed = "departure passed"
	MootEntryPassed     = "entry date passed"
)

// SectionOf returns the section of an open obligation of rule that is
// daysOverdue past due (negative: days left), marked found late or not.
func SectionOf(rule string, daysOverdue int, foundLate bool) string {
	switch {
	case daysOverdue == 0 || daysOverdue == -1:
		return SectionToday
	case daysOverdue > 0 && slices.Contains(RegistrationDuties, rule):
		return SectionLegal
	case foundLate:
		return SectionLate
	case daysOverdue > 0:
		return SectionOverdue
	}
	return SectionUpcoming
}

// rowSection is the section of r: its own, or SectionOf.
func rowSection(rule string, r DigestRow) string {
	switch {
	case r.Section != "":
		return r.Section
	case r.Reason != "":
		return SectionMoot
	}
	return SectionOf(rule, r.DaysOverdue, r.FoundLate)
}

// Digest is one daily digest: the office's (to every office address) or one
// dean's (the dean of FacultyName).
type Digest struct {
	Lang        string // en, ru, kk; anything else is English
	AsOf        date.Date
	Office      Office
	Audience    string // AudienceOffice or AudienceDean
	DeanName    string // dean digests
	FacultyName string // dean digests

	// Sections hold the rows sorted into their sections, as the digest
	// job cuts them: each section's groups hold the rows shown, and its
	// Total counts every row of the section (0, or not more than the rows
	// shown: the section is whole). A section may come more than once:
	// its groups are joined.
	Sections []DigestSection
	// Groups hold rows not sorted into sections yet: each row goes to its
	// section (DigestRow.Section, else SectionMoot for a row with a
	// Reason, else SectionOf); a group's rows left out (its Total) count
	// in the section of its first row, or of an overdue row of its rule
	// when none is shown.
	Groups []DigestGroup

	Failed   []FailedNotice // office digest: notices that failed permanently
	Problems []DataProblem  // office digest: data problems found in the SIS

	// A long list is cut: Failed and Problems then hold the most recent
	// ones, and these say how many there are in all (0, or less than the
	// list's length: the list is whole). ProblemCounts, problems per code,
	// is shown when Problems was cut.
	FailedTotal   int
	ProblemsTotal int
	ProblemCounts []ProblemCount

	// Waiting counts the notices still waiting to be sent (pending: a
	// temporary failure retried on its own, or not tried yet), of this
	// night and the ones before; WaitingWhy says why, by last error, most
	// frequent first. The office digest says so under its failed notices,
	// so that an outage of the relay never reads as "nothing undelivered".
	Waiting    int
	WaitingWhy []WaitingReason

	// Unreachable (the office digest) are the students whose email
	// bounced or whose SMS was not delivered, one row per student and
	// channel, in the digest's order of urgency: the office has to reach
	// them another way. A long list is cut: UnreachableTotal is how many
	// there are in all (0, or not more than the list: it is whole). An
	// empty list has no heading.
	Unreachable      []Unreachable
	UnreachableTotal int

	// When the rows are cut, RowsTotal, OverdueTotal, NewTotal and
	// TodayTotal count every row of the digest (open obligations; the
	// closed-as-moot rows are counted in their section only), for the
	// subject and the summary. RowsTotal 0, or not more than the rows
	// shown: the rows shown are counted. Attachment is the name of the
	// file that lists every row (DigestCSVName), which the digest points
	// to when rows were left out.
	RowsTotal, OverdueTotal, NewTotal, TodayTotal int
	Attachment                                    string
}

// DigestSection is the rows of one section (SectionToday…), grouped by
// rule, most urgent group first.
type DigestSection struct {
	Kind   string
	Groups []DigestGroup
	Total  int // rows of the section in all; 0 or not more than those shown: whole
}

// ProblemCount is how many data problems have one code.
type ProblemCount struct {
	Code string
	N    int
}

// DigestGroup is the rows of one rule.
type DigestGroup struct {
	Rule  string
	Title string // empty: the rule's translated title
	Rows  []DigestRow
	// Total is how many rows of the rule the section has when it is cut:
	// Rows are the ones shown, maybe none. 0 or not more than len(Rows):
	// Rows are all of them.
	Total int
}

// DigestRow is one obligation.
type DigestRow struct {
	StudentID   string
	SubjectID   string // the travel request id, for travel rules; empty or the student id otherwise
	Name        string
	Faculty     string
	Due         date.Date
	DaysOverdue int    // negative: days left
	Level       int    // the reached step
	Steps       int    // steps of the rule's ladder as configured; 0: the built-in ladder's
	Sent        string // what was already sent, in the digest's language (SentStep joined by "; ")
	New         bool   // listed for the first time today
	// FoundLate: a stale step's urgent email was not sent, and the digest
	// lists the obligation in its place (docs/rules.md, "When a step is no
	// longer news").
	FoundLate bool
	// Reason: the obligation closed as moot (MootDeparturePassed,
	// MootEntryPassed) or by the office (CloseOffice) on ClosedOn; "" for
	// an open obligation.
	Reason   string
	ClosedOn date.Date
	// ClosedBy and Note: who in the office closed it, and the reason they
	// gave (CloseOffice).
	ClosedBy, Note string
	// SnoozedUntil: the office snoozed the student's notices until this
	// date (an open obligation); zero: not snoozed.
	SnoozedUntil date.Date
	// Section is the row's section; "": SectionOf (or SectionMoot with a
	// Reason).
	Section string
	// Reported is the kind of a student's report (SectionReported: done,
	// lost-documents, address-changed, status-changed), reported on Due;
	// "" for an obligation.
	Reported string
}

// FailedNotice is a notice that failed permanently.
type FailedNotice struct {
	NoticeID, StudentID, Rule string
	Audience                  string // student, office, dean; "" is student
	Channel                   string // email, sms
	// Code says why, as the digest explains it in its language:
	// FailAddressInvalid…; "" or unknown: "could not be delivered".
	Code string
	// Detail is the provider's code, language-neutral ("550 5.1.1",
	// "HTTP 400, code 21211"); Reason, free text that is shown only when
	// Code is empty.
	Detail, Reason string
}

// Unreachable is a contact of a student that cannot receive: a bounce of
// the address, an SMS the provider could not deliver. No notice goes to it
// any more until the SIS holds another one.
type Unreachable struct {
	StudentID, Name, Faculty string
	Channel                  string    // email, sms
	Since                    date.Date // the first bounce or undelivered receipt
	// LastError is what the last bounce or receipt said (its status
	// code and diagnostic, shortened).
	LastError string
	// Rule, Due and DaysOverdue are the student's most urgent row in the
	// digest, which puts the student in its place; Rule "" for none.
	Rule        string
	Due         date.Date
	DaysOverdue int
}

// maxWaitingWhy bounds the reasons the digest gives for waiting notices.
const maxWaitingWhy = 4

// WaitingReason is how many waiting notices last failed one way: Class
// "temporary" or "permanent" (a failed notice re-queued by an operator),
// or "" (not tried yet); Detail the provider's code ("451 4.7.1",
// "HTTP 503"), "" when none.
type WaitingReason struct {
	Class, Detail string
	N             int
}

// Why a notice failed (FailedNotice.Code).
const (
	FailAddressInvalid  = "address_invalid"  // the email address cannot be used
	FailMailboxRejected = "mailbox_rejected" // the server refused the recipient (5.1.x)
	FailMailRejected    = "mail_rejected"    // the server refused the message
	FailPhoneInvalid    = "phone_invalid"    // the phone number cannot be used
	FailSMSRejected     = "sms_rejected"     // the SMS provider refused it
	FailSMSDisabled     = "sms_disabled"     // SMS switched off in the configuration
	FailGaveUp          = "gave_up"          // temporary failures until the retries ran out
)

// DataProblem is a problem found in the SIS data: where it is, never the
// value of a personal field. The digest explains Code in its language;
// Message (the validator's English text) is not shown.
type DataProblem struct {
	Entity, RowID, Field, Code, Message string
}

// digestView is what a digest template sees. README.md documents it.
type digestView struct {
	Digest
	Sections []sectionView // the audience's sections in order, empty ones too
	Dean     bool          // a dean's digest
	Total    int           // open rows in all
	Overdue  int           // open rows with DaysOverdue > 0
	New      int           // rows marked New
	Today    int           // rows of SectionToday

	FailedAll    int // failed notices in all, listed or not
	FailedMore   int // failed notices left out of the list
	Waiting      int // notices still waiting to be sent
	WaitingWhy   []WaitingReason
	ProblemsAll  int // data problems in all, listed or not
	ProblemsMore int // data problems left out of the list

	RowsShown int // rows shown in the sections
	RowsMore  int // rows left out (they are in the attachment)
	RowsAll   int // RowsShown + RowsMore

	Failed []failedView

	Unreachable     []unreachableView
	UnreachableAll  int // unreachable contacts in all, listed or not
	UnreachableMore int // left out of the list
}

type sectionView struct {
	Kind       string
	Groups     []digestGroupView
	All        int    // rows of the section in all
	Shown      int    // rows shown
	More       int    // rows left out
	Attachment string // the digest's attachment
	Dean       bool
	Lang       string
}

type digestGroupView struct {
	DigestGroup
	Rows    []rowView
	Overdue int // rows shown with DaysOverdue > 0
	All     int // rows of the rule in the section, shown or not
	More    int // rows of the rule left out
}

type rowView struct {
	DigestRow
	Step string // "step 3 of 5", in the digest's language
}

type failedView struct {
	FailedNotice
	RuleTitle string
}

type unreachableView struct {
	Unreachable
	RuleTitle string
}

// Digest renders a daily digest. Within a section, groups keep their
// order and rows are sorted most overdue first (then by student id); empty
// groups and sections are left out. With nothing overdue the digest says
// so.
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
	d.Office = d.Office.in(d.Lang)
	for _, f := range []*string{&d.DeanName, &d.FacultyName,
		&d.Office.Name, &d.Office.Address, &d.Office.Hours, &d.Office.Phone, &d.Office.Email} {
		*f = cleanField(*f)
	}
	d.Attachment = cleanField(d.Attachment)
	v := digestView{Digest: d, Dean: d.Audience == AudienceDean}
	byKind := map[string]*sectionView{}
	for _, kind := range DigestSections {
		if v.Dean && (kind == SectionMoot || kind == SectionClosed) {
			continue
		}
		v.Sections = append(v.Sections, sectionView{Kind: kind, Attachment: d.Attachment, Dean: v.Dean, Lang: d.Lang})
	}
	for i := range v.Sections {
		byKind[v.Sections[i].Kind] = &v.Sections[i]
	}
	sections := slices.Clone(d.Sections)
	if len(d.Groups) > 0 {
		sections = append(sections, sectionsOf(d.Groups)...)
	}
	extra := map[string]int{} // rows left out, per section
	for _, sec := range sections {
		sv := byKind[sec.Kind]
		if sv == nil {
			continue // unknown, or the moot rows of a dean
		}
		shown := 0
		for _, g := range sec.Groups {
			if len(g.Rows) == 0 && g.Total == 0 {
				continue
			}
			gv := s.groupView(d.Lang, g)
			for _, r := range gv.Rows {
				if r.Reason != "" {
					continue // closed: counted in its section only
				}
				if sec.Kind == SectionToday {
					v.Today++
				}
				v.Total++
				if r.DaysOverdue > 0 {
					v.Overdue++
				}
				if r.New {
					v.New++
				}
			}
			shown += len(gv.Rows)
			extra[sec.Kind] += gv.More
			// A rule that comes twice in a section (the Groups of two
			// calls) is one group.
			if j := slices.IndexFunc(sv.Groups, func(x digestGroupView) bool { return x.Rule == gv.Rule }); j >= 0 {
				x := &sv.Groups[j]
				x.Rows = append(x.Rows, gv.Rows...)
				sortRows(x.Rows)
				x.All += gv.All
				x.More += gv.More
				x.Overdue += gv.Overdue
				continue
			}
			sv.Groups = append(sv.Groups, gv)
		}
		sv.Shown += shown
		if sec.Total > 0 {
			sv.All += max(sec.Total, shown)
		} else {
			sv.All += shown
		}
	}
	for i := range v.Sections {
		sv := &v.Sections[i]
		// Within a section the most urgent group first: in every section
		// that is the row with the highest DaysOverdue (due today before
		// tomorrow, the most overdue, the soonest upcoming).
		sort.SliceStable(sv.Groups, func(a, b int) bool { return groupUrgency(sv.Groups[a]) > groupUrgency(sv.Groups[b]) })
		if extra[sv.Kind] > 0 && sv.All < sv.Shown+extra[sv.Kind] {
			sv.All = sv.Shown + extra[sv.Kind]
		}
		sv.More = sv.All - sv.Shown
		v.RowsShown += sv.Shown
		v.RowsMore += sv.More
	}
	v.RowsAll = v.RowsShown + v.RowsMore
	if d.RowsTotal > v.Total {
		// Cut: the counts are the whole digest's.
		v.Total, v.Overdue, v.New = d.RowsTotal, d.OverdueTotal, d.NewTotal
		v.Today = max(v.Today, d.TodayTotal)
	}
	v.Failed = make([]failedView, len(d.Failed))
	for i, f := range d.Failed {
		for _, p := range []*string{&f.NoticeID, &f.StudentID, &f.Rule, &f.Audience, &f.Channel, &f.Code, &f.Detail, &f.Reason} {
			*p = cleanField(*p)
		}
		if f.Audience == "" {
			f.Audience = AudienceStudent
		}
		v.Failed[i] = failedView{FailedNotice: f, RuleTitle: s.RuleTitle(d.Lang, f.Rule)}
	}
	v.Problems = make([]DataProblem, len(d.Problems))
	for i, p := range d.Problems {
		for _, q := range []*string{&p.Entity, &p.RowID, &p.Field, &p.Code, &p.Message} {
			*q = cleanField(*q)
		}
		v.Problems[i] = p
	}
	v.FailedAll, v.FailedMore = listed(len(v.Failed), d.FailedTotal)
	if !v.Dean && d.Waiting > 0 {
		v.Waiting = d.Waiting
		for i, r := range d.WaitingWhy {
			if i == maxWaitingWhy {
				break
			}
			r.Class, r.Detail = cleanField(r.Class), cleanField(r.Detail)
			v.WaitingWhy = append(v.WaitingWhy, r)
		}
	}
	v.ProblemsAll, v.ProblemsMore = listed(len(v.Problems), d.ProblemsTotal)
	if !v.Dean {
		for _, u := range d.Unreachable {
			for _, p := range []*string{&u.StudentID, &u.Name, &u.Faculty, &u.Channel, &u.Rule} {
				*p = cleanField(*p)
			}
			u.LastError = shorten(cleanField(u.LastError), maxUnreachableError)
			uv := unreachableView{Unreachable: u}
			if u.Rule != "" {
				uv.RuleTitle = s.RuleTitle(d.Lang, u.Rule)
			}
			v.Unreachable = append(v.Unreachable, uv)
		}
		v.UnreachableAll, v.UnreachableMore = listed(len(v.Unreachable), d.UnreachableTotal)
	}
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
	html.Grow(16 << 10)
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

// groupView cleans a group and its rows for the templates.
func (s *Set) groupView(lang string, g DigestGroup) digestGroupView {
	g.Rule = cleanField(g.Rule)
	g.Title = cleanField(g.Title)
	if g.Title == "" {
		g.Title = s.RuleTitle(lang, g.Rule)
	}
	gv := digestGroupView{Rows: make([]rowView, len(g.Rows))}
	for i, r := range g.Rows {
		for _, f := range []*string{&r.StudentID, &r.SubjectID, &r.Name, &r.Faculty, &r.Sent, &r.Reason, &r.ClosedBy, &r.Note} {
			*f = cleanField(*f)
		}
		if r.SubjectID == r.StudentID {
			r.SubjectID = ""
		}
		steps := r.Steps
		if steps <= 0 {
			steps = builtinSteps[g.Rule]
		}
		gv.Rows[i] = rowView{DigestRow: r, Step: StepText(lang, r.Level, steps)}
		if r.DaysOverdue > 0 && r.Reason == "" {
			gv.Overdue++
		}
	}
	sortRows(gv.Rows)
	gv.All, gv.More = listed(len(gv.Rows), g.Total)
	g.Rows = nil
	gv.DigestGroup = g
	return gv
}

// groupUrgency is the DaysOverdue of a group's most urgent row shown; a
// group with none shown comes last.
func groupUrgency(g digestGroupView) int {
	if len(g.Rows) == 0 {
		return math.MinInt
	}
	return g.Rows[0].DaysOverdue
}

func sortRows(rows []rowView) {
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].DaysOverdue != rows[j].DaysOverdue {
			return rows[i].DaysOverdue > rows[j].DaysOverdue
		}
		return rows[i].StudentID < rows[j].StudentID
	})
}

// sectionsOf sorts the rows of groups into sections (Digest.Groups).
func sectionsOf(groups []DigestGroup) []DigestSection {
	var out []DigestSection
	add := func(kind string, g DigestGroup) {
		for i := range out {
			if out[i].Kind == kind {
				out[i].Groups = append(out[i].Groups, g)
				return
			}
		}
		out = append(out, DigestSection{Kind: kind, Groups: []DigestGroup{g}})
	}
	for _, g := range groups {
		if len(g.Rows) == 0 && g.Total == 0 {
			continue
		}
		parts := map[string]*DigestGroup{}
		var order []string
		for _, r := range g.Rows {
			kind := rowSection(g.Rule, r)
			if parts[kind] == nil {
				parts[kind] = &DigestGroup{Rule: g.Rule, Title: g.Title}
				order = append(order, kind)
			}
			parts[kind].Rows = append(parts[kind].Rows, r)
		}
		if more := g.Total - len(g.Rows); more > 0 {
			kind := SectionOf(g.Rule, 2, false)
			if len(order) > 0 {
				kind = order[0]
			}
			if parts[kind] == nil {
				parts[kind] = &DigestGroup{Rule: g.Rule, Title: g.Title}
				order = append(order, kind)
			}
			parts[kind].Total = len(parts[kind].Rows) + more
		}
		for _, kind := range order {
			add(kind, *parts[kind])
		}
	}
	return out
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

// StepText names the reached step of a ladder in words, for a reader who
// does not know the ladders: en "step 3 of 5", ru "шаг 3 из 5", kk
// "3-қадам (барлығы 5)"; without a known ladder length (steps 0) only the
// step. The digest shows it for each row and in what was already sent.
func StepText(lang string, level, steps int) string {
	l := strconv.Itoa(level)
	switch Lang(lang) {
	case "ru":
		if steps > 0 {
			return "шаг " + l + " из " + strconv.Itoa(steps)
		}
		return "шаг " + l
	case "kk":
		if steps > 0 {
			return l + "-қадам (барлығы " + strconv.Itoa(steps) + ")"
		}
		return l + "-қадам"
	}
	if steps > 0 {
		return "step " + l + " of " + strconv.Itoa(steps)
	}
	return "step " + l
}

// BuiltinSteps is the length of rule's built-in ladder (docs/rules.md), 0 for
// a rule it does not know.
func BuiltinSteps(rule string) int { return builtinSteps[rule] }

// DigestCSVName is the name of the file attached to a cut digest of asOf:
// digest-YYYY-MM-DD.csv.
func DigestCSVName(asOf date.Date) string { return "digest-" + asOf.String() + ".csv" }

// DigestCSVType is the content type of the attached file.
const DigestCSVType = "text/csv; charset=utf-8; header=present"

// digestCSVColumns are the blocks that name the columns of the attached
// file, in order.
var digestCSVColumns = []string{"l.section", "l.rule", "l.student", "l.request", "l.name", "l.faculty", "l.due", "l.days", "l.level", "l.sent", "l.new", "l.late", "l.moot"}

// DigestCSV writes the file attached to a cut digest: every row of the
// digest, one line each, for a spreadsheet. It is UTF-8 with a byte order
// mark (without it Excel reads Cyrillic as mojibake), the header row is in
// the digest's language (the words of its l.* blocks), and the separator
// is the one Excel expects in the language's locale: a semicolon in ru and
// kk, a comma in en. Columns: the row's section (its title), rule id,
// student id, travel request id (empty for other rules), name, faculty,
// due date (YYYY-MM-DD), days overdue (negative: days left), level,
// already sent, the l.new word for a row new since the previous digest,
// the l.late word for a row found late, and for a row closed as moot the
// reason and the date it closed. Text cells are cleaned like every digest
// field, and one that a spreadsheet would take for a formula (= + - @) is
// prefixed with an apostrophe.
type DigestCSV struct {
	w         *csv.Writer
	new, late string
	sections  map[string]string
	reasons   map[string]string
	rec       []string
}

// NewDigestCSV starts the attached file of a digest in lang on w: it
// writes the byte order mark and the header row. Write the rows with Row,
// then call Flush.
func (s *Set) NewDigestCSV(w io.Writer, lang string) (*DigestCSV, error) {
	lang = Lang(lang)
	p := s.digests[lang]
	word := func(name string, data any) (string, error) {
		var b strings.Builder
		if err := p.text.ExecuteTemplate(&b, name, data); err != nil {
			return "", fmt.Errorf("templates: %s digest csv: %w", lang, err)
		}
		return oneLine(b.String()), nil
	}
	view := digestView{Digest: Digest{Lang: lang}}
	header := make([]string, len(digestCSVColumns))
	for i, name := range digestCSVColumns {
		var err error
		if header[i], err = word(name, view); err != nil {
			return nil, err
		}
	}
	c := &DigestCSV{new: header[10], late: header[11], sections: map[string]string{}, reasons: map[string]string{}, rec: make([]string, len(header))}
	for _, kind := range DigestSections {
		t, err := word("section.title", sectionView{Kind: kind, Lang: lang})
		if err != nil {
			return nil, err
		}
		c.sections[kind] = t
	}
	for _, r := range []string{MootDeparturePassed, MootEntryPassed, CloseOffice} {
		t, err := word("moot.reason", r)
		if err != nil {
			return nil, err
		}
		c.reasons[r] = t
	}
	if _, err := io.WriteString(w, "\uFEFF"); err != nil {
		return nil, err
	}
	c.w = csv.NewWriter(w)
	if lang != "en" {
		c.w.Comma = ';'
	}
	c.w.UseCRLF = true
	if err := c.w.Write(header); err != nil {
		return nil, err
	}
	return c, nil
}

// Row writes one obligation of rule, with r.DaysOverdue as given, in its
// section (r.Section, else as SectionOf decides).
func (c *DigestCSV) Row(rule string, r DigestRow) error {
	subject := r.SubjectID
	if subject == r.StudentID {
		subject = ""
	}
	kind := rowSection(rule, r)
	section := c.sections[kind]
	if section == "" {
		section = kind
	}
	c.rec[0] = section
	c.rec[1] = csvText(rule)
	c.rec[2] = csvText(r.StudentID)
	c.rec[3] = csvText(subject)
	c.rec[4] = csvText(r.Name)
	c.rec[5] = csvText(r.Faculty)
	c.rec[6] = r.Due.String()
	c.rec[7] = strconv.Itoa(r.DaysOverdue)
	c.rec[8] = strconv.Itoa(r.Level)
	c.rec[9] = csvText(r.Sent)
	c.rec[10], c.rec[11], c.rec[12] = "", "", ""
	if r.New {
		c.rec[10] = c.new
	}
	if r.FoundLate {
		c.rec[11] = c.late
	}
	if r.Reported != "" {
		c.rec[12] = csvText(r.Reported)
	}
	if r.Reason != "" {
		reason := c.reasons[r.Reason]
		if reason == "" {
			reason = csvText(r.Reason)
		}
		if !r.ClosedOn.IsZero() {
			reason = r.ClosedOn.String() + ": " + reason
		}
		if r.ClosedBy != "" {
			reason += " (" + cleanField(r.ClosedBy) + ")"
		}
		if r.Note != "" {
			reason += ": " + cleanField(r.Note)
		}
		c.rec[12] = reason
	}
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

// maxUnreachableError bounds, in characters, the last error the digest
// shows for an unreachable contact: a server's diagnostic can run long,
// and the console shows it whole.
const maxUnreachableError = 120

// shorten cuts s to at most n characters, ending it with "…" when cut.
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return strings.TrimSpace(string(r[:n-1])) + "…"
}
