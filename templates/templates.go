// Package templates renders what sisnotify sends: the notices of every rule
// of docs/rules.md to each audience (student email and SMS, the office's urgent
// email, the dean's email) and the office's and deans' daily digests, in
// English, Russian and Kazakh.
//
// The templates are files under notices/ and digests/, embedded in the
// binary and parsed once by New. A translator edits them without touching
// Go: see README.md beside this file for the layout, the blocks each file
// defines and the data and functions a template can use.
//
// Each notice file is parsed twice from the same source: with text/template
// for the subject, the plain-text body and the SMS, and with html/template
// for the HTML body, so a value like <b>O'Brien</b> is escaped in HTML and
// left as written in text. Every interpolated string is first made
// single-line (control characters, line separators and bidi overrides
// become spaces), and subjects and SMS texts are single-line whatever the
// template writes.
package templates

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io"
	"io/fs"
	"sort"
	"strings"
	texttemplate "text/template"
	"text/template/parse"

	"github.com/iec-almaty/sisnotify/jobs/date"
)

//go:embed notices digests
var files embed.FS

// Audiences of a notice.
const (
	AudienceStudent = "student"
	AudienceOffice  = "office"
	AudienceDean    = "dean"
)

// Audiences lists every audience a notice can have.
var Audiences = []string{AudienceStudent, AudienceOffice, AudienceDean}

// ErrNoTemplate is returned (wrapped) for a notice whose rule, audience and
// language have no template.
var ErrNoTemplate = errors.New("no template")

// Office is the International Office as notices show it: where to go
// and how to reach it. It comes from the configuration.
type Office struct {
	// University names the university in a few words ("KazNU"): every
	// SMS starts with it, so the student knows who writes.
	University string
	Name       string // "International Office"
	Address    string // "Room 105, 1 Example Street, Almaty"
	Hours      string // "Mon-Fri 09:00-18:00"
	Phone      string // "+7 727 355 05 67"; an SMS ends with it
	Email      string // "international@example.edu.kz"
	// In holds the name, address and hours in a language ("ru", "kk",
	// "en") where the configuration gives them: a notice or digest in
	// that language shows them instead of the fields above, each one
	// that is set.
	In map[string]OfficeText
}

// OfficeText is what of the office's details is written in a language.
type OfficeText struct {
	Name, Address, Hours string
}

// in returns o as a notice in lang shows it.
func (o Office) in(lang string) Office {
	t, ok := o.In[lang]
	if !ok {
		return o
	}
	for _, f := range []struct {
		dst *string
		v   string
	}{{&o.Name, t.Name}, {&o.Address, t.Address}, {&o.Hours, t.Hours}} {
		if f.v != "" {
			*f.dst = f.v
		}
	}
	return o
}

// Notice is one notice to render: a step of an obligation of a rule, for one
// audience.
type Notice struct {
	Rule     string // rule id of docs/rules.md: "registration"
	Level    int    // 1-based step of the ladder
	Steps    int    // steps in the rule's ladder as configured; 0: the built-in ladder's
	Audience string // AudienceStudent, AudienceOffice or AudienceDean: "student", "office", "dean"
	Lang     string // en, ru, kk; anything else is English

	AsOf   date.Date // the run's date
	Due    date.Date // the obligation's due date (required)
	Anchor date.Date // the fact that started it: entry, expiry, departure...

	StudentID   string
	GivenName   string
	FamilyName  string
	FacultyName string
	DeanName    string
	VisaRegime  string // "visa" when the student needs a visa (break-briefing, exit-visa)

	SubjectID string    // the student id, or the travel request id for travel rules
	Departure date.Date // travel rules
	Return    date.Date // travel rules
	Reason    string    // travel rules: the trip's stated reason, when the SIS has one

	// Staff notices show how to reach the student; a student's own notice
	// never uses them.
	StudentEmail string
	StudentPhone string

	// OfficeUrgent: the step is office: urgent in docs/rules.md's ladder (as
	// configured). Such a step is urgent in every form it takes (subject
	// prefix, banner, tone), and no other step is.
	OfficeUrgent bool
	// StudentNotified: the step also sends the student a notice of its
	// own, so a staff notice may say the student is told separately.
	StudentNotified bool

	// Link is the student page's address (SISNOTIFY_PUBLIC_URL + "/s/" +
	// a signed token) that a student's email ends with; empty: none.
	Link string

	Office Office
}

// Rendered is a rendered notice or digest.
type Rendered struct {
	Subject string // one line
	Text    string // plain-text body
	HTML    string // HTML body, a whole document
	Lang    string // the language actually used
	Version string // the template version, to record with the sent notice
}

// Set holds every parsed template. It is safe for concurrent use.
type Set struct {
	notices map[noticeKey]*pair
	digests map[string]*pair             // by language
	titles  map[string]map[string]string // language -> rule -> title
	rules   []string
	version string
}

type noticeKey struct{ lang, rule, audience string }

type pair struct {
	text *texttemplate.Template
	html *htmltemplate.Template
}

// builtinSteps is the length of each rule's built-in ladder (docs/rules.md), used
// for the tone of the last step when a Notice does not say (Steps = 0).
var builtinSteps = map[string]int{
	"visa-invitation":      3,
	"arrival-check-in":     2,
	"registration":         3,
	"stay-extension":       5,
	"passport-renewal":     5,
	"travel-late-notice":   1,
	"travel-dean-approval": 3,
	"term-travel-limit":    1,
	"exit-visa":            3,
	"return-check-in":      3,
	"address-registration": 3,
	"break-briefing":       1,
	"welcome":              1,
	"document-loss":        2,
	"status-change":        2,
}

// required blocks of a notice file, by audience.
var requiredBlocks = map[string][]string{
	AudienceStudent: {"subject", "lead", "consequence", "sms"},
	AudienceOffice:  {"subject", "lead", "action"},
	AudienceDean:    {"subject", "lead", "action"},
}

// New parses every embedded template, checks that every rule has every
// audience in every language with the blocks it needs, and renders each
// once with sample data so that a broken template fails here, at start,
// and not in the night.
func New() (*Set, error) {
	s := &Set{
		notices: map[noticeKey]*pair{},
		digests: map[string]*pair{},
		titles:  map[string]map[string]string{},
	}
	var err error
	if s.version, err = version(); err != nil {
		return nil, err
	}
	layout, err := files.ReadFile("notices/layout.tmpl")
	if err != nil {
		return nil, err
	}
	dlayout, err := files.ReadFile("digests/layout.tmpl")
	if err != nil {
		return nil, err
	}
	rules := map[string]bool{}
	for _, lang := range Languages {
		common, err := files.ReadFile("notices/" + lang + "/common.tmpl")
		if err != nil {
			return nil, err
		}
		base, err := parsePair(lang, "notices/"+lang, layout, common)
		if err != nil {
			return nil, err
		}
		entries, err := fs.ReadDir(files, "notices/"+lang)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			name := e.Name()
			if name == "common.tmpl" || !strings.HasSuffix(name, ".tmpl") {
				continue
			}
			rule, audience, ok := strings.Cut(strings.TrimSuffix(name, ".tmpl"), ".")
			if !ok || requiredBlocks[audience] == nil {
				return nil, fmt.Errorf("templates: notices/%s/%s: want RULE.{student,office,dean}.tmpl", lang, name)
			}
			src, err := files.ReadFile("notices/" + lang + "/" + name)
			if err != nil {
				return nil, err
			}
			p, err := base.extend("notices/"+lang+"/"+name, src)
			if err != nil {
				return nil, err
			}
			for _, b := range requiredBlocks[audience] {
				if t := p.text.Lookup(b); t == nil || isEmptyTree(t) {
					return nil, fmt.Errorf("templates: notices/%s/%s: no %q block", lang, name, b)
				}
			}
			s.notices[noticeKey{lang, rule, audience}] = p
			rules[rule] = true
		}
		s.titles[lang] = map[string]string{}
		dsrc, err := files.ReadFile("digests/" + lang + "/digest.tmpl")
		if err != nil {
			return nil, err
		}
		d, err := parsePair(lang, "digests/"+lang, dlayout, dsrc)
		if err != nil {
			return nil, err
		}
		s.digests[lang] = d
		// Rule titles come from "rule.<id>" blocks of common.tmpl.
		for _, t := range base.text.Templates() {
			if id, ok := strings.CutPrefix(t.Name(), "rule."); ok {
				var b strings.Builder
				if err := t.Execute(&b, nil); err != nil {
					return nil, fmt.Errorf("templates: notices/%s/common.tmpl: %s: %w", lang, t.Name(), err)
				}
				s.titles[lang][id] = oneLine(b.String())
			}
		}
	}
	for r := range rules {
		s.rules = append(s.rules, r)
	}
	sort.Strings(s.rules)
	// Every rule in every audience and language, and a title for it.
	var missing []string
	for _, r := range s.rules {
		for _, lang := range Languages {
			if s.titles[lang][r] == "" {
				missing = append(missing, fmt.Sprintf("notices/%s/common.tmpl: rule.%s", lang, r))
			}
			for _, a := range Audiences {
				if s.notices[noticeKey{lang, r, a}] == nil {
					missing = append(missing, fmt.Sprintf("notices/%s/%s.%s.tmpl", lang, r, a))
				}
			}
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("templates: missing %s: %w", strings.Join(missing, ", "), ErrNoTemplate)
	}
	if err := s.selfCheck(); err != nil {
		return nil, err
	}
	return s, nil
}

// MustNew is New for programs and tests that cannot go on without
// templates; it panics on error.
func MustNew() *Set {
	s, err := New()
	if err != nil {
		panic(err)
	}
	return s
}

// Version identifies the templates' content: the first 12 hex digits of a
// SHA-256 over every embedded file's path and content. It changes whenever
// any template changes.
func (s *Set) Version() string { return s.version }

// Rules returns the rule ids that have templates, sorted.
func (s *Set) Rules() []string { return append([]string(nil), s.rules...) }

// Has reports whether a notice template exists for rule and audience in
// lang (exactly, without falling back to English).
func (s *Set) Has(rule, audience, lang string) bool {
	return s.notices[noticeKey{lang, rule, audience}] != nil
}

// RuleTitle returns the translated title of a rule ("Migration
// registration"), or the rule id when it has none.
func (s *Set) RuleTitle(lang, rule string) string {
	if t := s.titles[Lang(lang)][rule]; t != "" {
		return t
	}
	return rule
}

func version() (string, error) {
	h := sha256.New()
	err := fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(b))
		h.Write(b)
		return nil
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}

// funcs are the template functions of one language. "has" is bound to each
// template set separately (see extend).
func funcs(lang string) map[string]any {
	return map[string]any{
		"date":   func(d date.Date) string { return FormatDate(lang, d) },
		"dm":     func(d date.Date) string { return FormatDayMonth(lang, d) },
		"days":   func(n int) string { return Days(lang, n) },
		"plural": func(n int, forms ...string) string { return Plural(lang, n, forms...) },
		"dat":    caseFunc(lang, kkDative),
		"loc":    caseFunc(lang, kkLocative),
		"abl":    caseFunc(lang, kkAblative),
		"attr":   caseFunc(lang, kkLocativeAttr),
		"abs": func(n int) int {
			if n < 0 {
				return -n
			}
			return n
		},
		"has": func(string, any) (bool, error) { return false, nil },
	}
}

func parsePair(lang, name string, srcs ...[]byte) (*pair, error) {
	f := funcs(lang)
	t := texttemplate.New(name).Funcs(f)
	h := htmltemplate.New(name).Funcs(f)
	for _, src := range srcs {
		var err error
		if t, err = t.Parse(string(src)); err != nil {
			return nil, fmt.Errorf("templates: %w", err)
		}
		if h, err = h.Parse(string(src)); err != nil {
			return nil, fmt.Errorf("templates: %w", err)
		}
	}
	p := &pair{t, h}
	p.bindHas()
	return p, nil
}

// extend returns a copy of p with one more file parsed into it; the file's
// blocks replace p's blocks of the same name.
func (p *pair) extend(name string, src []byte) (*pair, error) {
	// A block with an empty body does not replace an existing one (the
	// template packages ignore it), which would silently keep the common
	// wording: refuse it.
	trees, err := parse.Parse(name, string(src), "", "", funcs("en"), builtins)
	if err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	for def, tree := range trees {
		if old := p.text.Lookup(def); old != nil && !isEmptyTree(old) && parse.IsEmptyTree(tree.Root) {
			return nil, fmt.Errorf("templates: %s: block %q is empty and would not replace the common one; write {{template \"tone.none\" .}} or another empty block call instead", name, def)
		}
	}
	t, err := p.text.Clone()
	if err != nil {
		return nil, err
	}
	h, err := p.html.Clone()
	if err != nil {
		return nil, err
	}
	if t, err = t.New(name).Parse(string(src)); err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	if h, err = h.New(name).Parse(string(src)); err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	q := &pair{t, h}
	q.bindHas()
	return q, nil
}

// bindHas gives both halves of p a "has NAME DATA" function that reports
// whether block NAME renders to anything but white space for DATA, so a
// layout can leave out an empty list item or section.
func (p *pair) bindHas() {
	text := p.text
	has := func(name string, data any) (bool, error) {
		t := text.Lookup(name)
		if t == nil {
			return false, nil
		}
		var b strings.Builder
		if err := t.Execute(&b, data); err != nil {
			return false, err
		}
		return strings.TrimSpace(b.String()) != "", nil
	}
	p.text.Funcs(map[string]any{"has": has})
	p.html.Funcs(map[string]any{"has": has})
}

func isEmptyTree(t *texttemplate.Template) bool {
	return t.Tree == nil || parse.IsEmptyTree(t.Root)
}

// builtins are the template packages' predefined functions, for parse.Parse.
var builtins = map[string]any{
	"and": true, "or": true, "not": true, "len": true, "index": true, "slice": true,
	"print": true, "printf": true, "println": true, "call": true,
	"html": true, "js": true, "urlquery": true,
	"eq": true, "ne": true, "lt": true, "le": true, "gt": true, "ge": true,
}

// noticeView is what a notice template sees: the cleaned Notice and what
// follows from it. README.md documents every field.
type noticeView struct {
	// The notice's own fields, copied rather than embedded: text/template
	// finds a promoted field through reflect's slow path (a breadth-first
	// search that allocates) on every use, a fifth of a render.
	// TestNoticeViewHasEveryNoticeField keeps the two in step.
	Rule, Audience, Lang                         string
	Level, Steps                                 int
	AsOf, Due, Anchor, Departure, Return         date.Date
	StudentID, GivenName, FamilyName             string
	FacultyName, DeanName, VisaRegime, SubjectID string
	Reason, StudentEmail, StudentPhone           string
	OfficeUrgent, StudentNotified                bool
	Link                                         string
	Office                                       Office

	Name        string // given and family name
	RuleTitle   string
	DaysLeft    int  // Due - AsOf when not overdue, else 0
	DaysOverdue int  // AsOf - Due when overdue, else 0
	Overdue     bool // AsOf is after Due
	DueToday    bool
	AnchorIn    int    // Anchor - AsOf: days until the anchor (negative: since)
	Tone        string // reminder, warning, urgent
	Reminder    bool
	Urgent      bool // OfficeUrgent: the only steps urgent in any form
	Final       bool // the last step of the ladder
	Travel      bool // the subject is a travel request
	NeedsVisa   bool // VisaRegime is "visa"
}

func (s *Set) view(n Notice) (noticeView, error) {
	n.Lang = Lang(n.Lang)
	n.Office = n.Office.in(n.Lang)
	for _, f := range []*string{&n.Rule, &n.Audience, &n.StudentID, &n.GivenName, &n.FamilyName,
		&n.FacultyName, &n.DeanName, &n.VisaRegime, &n.SubjectID,
		&n.Reason, &n.StudentEmail, &n.StudentPhone, &n.Link, &n.Office.University,
		&n.Office.Name, &n.Office.Address, &n.Office.Hours, &n.Office.Phone, &n.Office.Email} {
		*f = cleanField(*f)
	}
	if n.Audience == "" {
		n.Audience = AudienceStudent
	}
	if n.Due.IsZero() || n.AsOf.IsZero() {
		return noticeView{}, fmt.Errorf("templates: notice %s/%s for %s: AsOf and Due are required", n.Rule, n.Audience, n.StudentID)
	}
	if n.SubjectID == "" {
		n.SubjectID = n.StudentID
	}
	if n.Level < 1 {
		n.Level = 1
	}
	v := noticeView{
		Rule: n.Rule, Audience: n.Audience, Lang: n.Lang, Level: n.Level, Steps: n.Steps,
		AsOf: n.AsOf, Due: n.Due, Anchor: n.Anchor, Departure: n.Departure, Return: n.Return,
		StudentID: n.StudentID, GivenName: n.GivenName, FamilyName: n.FamilyName,
		FacultyName: n.FacultyName, DeanName: n.DeanName, VisaRegime: n.VisaRegime, SubjectID: n.SubjectID,
		Reason: n.Reason, StudentEmail: n.StudentEmail, StudentPhone: n.StudentPhone,
		OfficeUrgent: n.OfficeUrgent, StudentNotified: n.StudentNotified, Link: n.Link,
		Office:    n.Office,
		Name:      strings.TrimSpace(n.GivenName + " " + n.FamilyName),
		RuleTitle: s.RuleTitle(n.Lang, n.Rule),
		Travel:    n.SubjectID != n.StudentID,
		NeedsVisa: strings.EqualFold(n.VisaRegime, "visa"),
	}
	switch diff := n.AsOf.Sub(n.Due); {
	case diff > 0:
		v.Overdue, v.DaysOverdue = true, diff
	case diff == 0:
		v.DueToday = true
	default:
		v.DaysLeft = -diff
	}
	if !n.Anchor.IsZero() {
		v.AnchorIn = n.Anchor.Sub(n.AsOf)
	}
	steps := n.Steps
	if steps <= 0 {
		steps = builtinSteps[n.Rule]
	}
	v.Final = steps > 1 && n.Level >= steps
	switch {
	case n.OfficeUrgent:
		v.Tone, v.Urgent = "urgent", true
	case n.Level <= 1:
		v.Tone, v.Reminder = "reminder", true
	default:
		v.Tone = "warning"
	}
	return v, nil
}

func (s *Set) lookup(n Notice) (*pair, error) {
	aud := n.Audience
	if aud == "" {
		aud = AudienceStudent
	}
	if requiredBlocks[aud] == nil {
		return nil, fmt.Errorf("templates: unknown audience %q", n.Audience)
	}
	p := s.notices[noticeKey{Lang(n.Lang), n.Rule, aud}]
	if p == nil {
		return nil, fmt.Errorf("templates: rule %q, audience %s, language %s: %w", n.Rule, aud, Lang(n.Lang), ErrNoTemplate)
	}
	return p, nil
}

// Notice renders a notice: its subject, plain-text body and HTML body.
func (s *Set) Notice(n Notice) (Rendered, error) {
	p, err := s.lookup(n)
	if err != nil {
		return Rendered{}, err
	}
	v, err := s.view(n)
	if err != nil {
		return Rendered{}, err
	}
	body := "staff"
	if v.Audience == AudienceStudent {
		body = "student"
	}
	var subj, text, html bytes.Buffer
	if err := p.text.ExecuteTemplate(&subj, "subject.full", v); err != nil {
		return Rendered{}, fmt.Errorf("templates: %s/%s/%s subject: %w", v.Lang, v.Rule, v.Audience, err)
	}
	if err := p.text.ExecuteTemplate(&text, body+".text", v); err != nil {
		return Rendered{}, fmt.Errorf("templates: %s/%s/%s text: %w", v.Lang, v.Rule, v.Audience, err)
	}
	if err := p.html.ExecuteTemplate(&html, body+".html", v); err != nil {
		return Rendered{}, fmt.Errorf("templates: %s/%s/%s html: %w", v.Lang, v.Rule, v.Audience, err)
	}
	return Rendered{
		Subject: finish(v.Lang, oneLine(subj.String())),
		Text:    finish(v.Lang, tidyText(text.String())),
		HTML:    finish(v.Lang, strings.TrimSpace(html.String())+"\n"),
		Lang:    v.Lang,
		Version: s.version,
	}, nil
}

// SMS renders the short text of a student notice for an SMS step: one line
// that ends with the office's phone. It names no student (an SMS may be read
// by anyone holding the phone) and keeps to two SMS segments for realistic
// office data.
func (s *Set) SMS(n Notice) (string, error) {
	if n.Audience != "" && n.Audience != AudienceStudent {
		return "", fmt.Errorf("templates: SMS for audience %q: only students get SMS", n.Audience)
	}
	p, err := s.lookup(n)
	if err != nil {
		return "", err
	}
	v, err := s.view(n)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	if err := p.text.ExecuteTemplate(&b, "sms.full", v); err != nil {
		return "", fmt.Errorf("templates: %s/%s sms: %w", v.Lang, v.Rule, err)
	}
	return finish(v.Lang, oneLine(b.String())), nil
}

// selfCheck renders every template once with sample data, in a few states
// (early, due today, overdue, last step), so that an error in a template
// fails New.
func (s *Set) selfCheck() error {
	asOf := date.MustParse("2026-12-16")
	office := Office{University: "Uni", Name: "Office", Address: "Address", Hours: "9-18", Phone: "+7 727 000 00 00", Email: "office@example.org"}
	for k := range s.notices {
		for _, st := range []struct{ due, anchor date.Date }{
			{asOf.AddDays(5), asOf.AddDays(30)},
			{asOf, asOf},
			{asOf.AddDays(-3), asOf.AddDays(-5)},
		} {
			for _, level := range []int{1, 5} {
				n := Notice{
					Rule: k.rule, Level: level, Audience: k.audience, Lang: k.lang,
					AsOf: asOf, Due: st.due, Anchor: st.anchor,
					StudentID: "S1", GivenName: "A", FamilyName: "B", FacultyName: "F", DeanName: "D",
					VisaRegime: "visa", SubjectID: "T1", Departure: asOf.AddDays(3), Return: asOf.AddDays(10),
					Office: office,
				}
				if _, err := s.Notice(n); err != nil {
					return err
				}
				if k.audience == AudienceStudent {
					if _, err := s.SMS(n); err != nil {
						return err
					}
				}
			}
		}
	}
	for _, lang := range Languages {
		for _, d := range []Digest{
			{Lang: lang, AsOf: asOf, Office: office, Audience: AudienceOffice},
			{Lang: lang, AsOf: asOf, Office: office, Audience: AudienceDean, DeanName: "D", FacultyName: "F",
				Groups:      []DigestGroup{{Rule: "registration", Rows: []DigestRow{{StudentID: "S1", Name: "N", Due: asOf, DaysOverdue: 1, Level: 3, New: true}}}},
				Failed:      []FailedNotice{{NoticeID: "n", StudentID: "S1", Rule: "registration", Channel: "email", Reason: "r"}},
				Problems:    []DataProblem{{Entity: "student", RowID: "S1", Field: "email", Code: "invalid", Message: "m"}},
				FailedTotal: 3, ProblemsTotal: 5, ProblemCounts: []ProblemCount{{Code: "invalid", N: 5}}},
			// A cut digest: one rule with a row shown, one with none.
			{Lang: lang, AsOf: asOf, Office: office, Audience: AudienceOffice,
				Groups: []DigestGroup{{Rule: "registration", Total: 3, Rows: []DigestRow{{StudentID: "S1", Name: "N", Due: asOf, DaysOverdue: 1, Level: 3}}},
					{Rule: "passport-renewal", Total: 2}},
				RowsTotal: 5, OverdueTotal: 4, NewTotal: 2, Attachment: DigestCSVName(asOf),
				// Students it cannot reach, one with a row, one without; cut.
				Unreachable: []Unreachable{{StudentID: "S1", Name: "N", Channel: "email", Since: asOf.AddDays(-2), LastError: "5.1.1",
					Rule: "registration", Due: asOf, DaysOverdue: 1}, {StudentID: "S2", Name: "M", Channel: "sms", Since: asOf}},
				UnreachableTotal: 3},
		} {
			if _, err := s.Digest(d); err != nil {
				return err
			}
		}
		c, err := s.NewDigestCSV(io.Discard, lang)
		if err != nil {
			return err
		}
		if err := c.Row("registration", DigestRow{StudentID: "S1", Name: "N", Due: asOf, DaysOverdue: 1, Level: 3, New: true}); err != nil {
			return err
		}
		if err := c.Flush(); err != nil {
			return err
		}
	}
	return nil
}
