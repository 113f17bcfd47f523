// Package config reads sisnotify's optional YAML configuration file, named
// by SISNOTIFY_CONFIG: overrides of the rule catalog (rules.Defaults), of
// the working-day calendar, the office's details used in notices, and the
// SMS quiet hours. Without a file every built-in default applies.
//
// The file is strict: an unknown key, an unknown rule id, audience or
// channel, a malformed date expression, offset or date is an error that
// names the file, the line and the key, for example
//
//	config.yaml:12: rules.passport-renewl: unknown rule id (did you mean passport-renewal?) (known: visa-invitation, …)
//
// Every error of the file is reported at once, in line order.
//
// # Keys
//
// All sections and keys are optional (but see below what a night that
// sends needs of the office). example.yaml beside this file is a complete
// example that restates every default.
//
//	office:
//	  language: ru          # en | ru | kk: the office digest's language and
//	                        # the deans' default (default ru)
//	  university: …         # the university in a few words ("KazNU"): every
//	                        # SMS starts with it
//	  name: International Office   # shown in notices (default "International Office")
//	  address: …            # free text shown in notices
//	  hours: …              # free text
//	  phone: …              # free text; every SMS ends with it
//	  email: …              # an email address
//	  ru:                   # the name, address and hours in a language
//	    name: …             # (en, ru, kk), for the notices in it;
//	    address: …          # what it leaves out is shown as above
//	    hours: …
//	sms:
//	  quiet_hours: "21:00-09:00"   # local hours when student SMS are held;
//	                               # "" never holds; absent: the environment's
//	                               # SISNOTIFY_SMS_QUIET_HOURS or its default
//	calendar:
//	  days_off: [2026-08-31]       # extra days off (YYYY-MM-DD)
//	  working_days: []             # extra working days (a decree's working Saturday)
//	  verified_through: 2028       # last year the operator has checked: no
//	                               # fallback warning up to it
//	stale_after: 7d                # a step first reached more than this many
//	                               # days after its date sends no office
//	                               # urgent or dean email: the digests list
//	                               # it, marked "found late" (default 7d)
//	report_pause: 5wd              # a student's "done" report pauses the
//	                               # obligation's student notices this many
//	                               # working days while the office decides
//	registration:                  # the registration rule's period after
//	  default: 3d                  # entered_on, per visa regime, in d or wd;
//	  visa: 3d                     # default is for a missing or unknown regime
//	  visa_free: 3wd
//	  eaeu: 3d
//	rules:
//	  <rule id>:                   # an id of docs/rules.md
//	    enabled: false             # switch the rule off (default true)
//	    due: anchor-45d            # the due date (see below)
//	    window: 90d                # stay-extension: look-back of its done
//	                               # condition; travel-late-notice: notice period
//	    steps:                     # replaces the whole ladder, in date order
//	      - at: due-14d            # anchor or due, optionally ±N d|wd|m
//	        repeat: 30d            # optional: again every N days
//	        student: [email, sms]  # any of email, sms
//	        office: [digest, urgent]   # any of digest, urgent
//	        dean: [digest, email]  # any of digest, email
//
// A due expression keeps its rule's base: anchor±N for most rules,
// departure±N for travel-dean-approval, travel-late-notice and
// term-travel-limit. return-check-in takes one expression for both kinds
// or a mapping {vacation: anchor+3wd, term: anchor+1d}; registration's due
// is set in the registration section. Units: d calendar days, wd working
// days, m months (clamped to the month's last day). A list of channels may
// also be written as one word (student: email) or [] for none.
//
// A night that sends (run --once without --dry-run, serve) needs
// office.university, office.phone, office.address and office.hours (the
// address and hours either as such or in each of en, ru and kk): a notice
// that cannot say where to go is worse than none. The dry run and the
// other commands do without them.
package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/mail"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/iec-almaty/sisnotify/jobs/calendar"
	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/jobs/rules"
)

// File is a parsed configuration with the defaults filled in.
type File struct {
	Name      string // the file name errors were reported against; "" for defaults
	Office    Office
	SMS       SMS
	Calendar  calendar.Overrides
	FeedGuard FeedGuard
	// StaleAfter is stale_after in days: a step first reached more than
	// this many days after its date sends no office-urgent or dean email;
	// the digests list its obligation, marked "found late". Default 7.
	StaleAfter int
	// ReportPause is report_pause in working days: a student's report
	// that an obligation is done pauses the obligation's student notices
	// for this many working days from the report's date while the office
	// has not decided. Default 5.
	ReportPause int
	rules       []rules.Rule
}

// FeedGuard is the feed_guard section: how much a night's SIS may differ
// from the last good snapshot before every send is held. Shares are
// fractions (0.2 = 20 %).
type FeedGuard struct {
	// MaxRosterDrop is the largest share of the students of the last good
	// snapshot that may disappear in one night; default 0.2.
	MaxRosterDrop float64
	// MaxEmptied is the largest share of students whose passport expiry,
	// registration expiry or entry date may turn empty in one night;
	// default 0.2.
	MaxEmptied float64
}

// Office is who the notices say to contact.
type Office struct {
	Language rules.Language // default Russian
	// University names the university in a few words ("KazNU"): every
	// SMS starts with it, so the student knows who writes.
	University string
	OfficeText // name, address and hours, in every language
	Phone      string
	Email      string
	// In is the name, address and hours written in a language ("en", "ru",
	// "kk"), for the notices in that language; what it leaves out is
	// shown as above.
	In map[string]OfficeText
}

// SendingKeys are the office's keys a night that sends cannot do without,
// in the order Missing reports them.
var SendingKeys = []string{"office.phone", "office.address", "office.hours", "office.university"}

// Missing returns the keys of SendingKeys that o leaves empty. The address
// and the hours count as given when set for every language (office.en,
// office.ru and office.kk all set them) even without the common one.
func (o Office) Missing() []string {
	inAll := func(get func(OfficeText) string) bool {
		for _, lang := range []string{"en", "ru", "kk"} {
			if strings.TrimSpace(get(o.In[lang])) == "" {
				return false
			}
		}
		return true
	}
	var out []string
	for _, k := range SendingKeys {
		var v string
		all := false
		switch k {
		case "office.phone":
			v = o.Phone
		case "office.address":
			v, all = o.Address, inAll(func(t OfficeText) string { return t.Address })
		case "office.hours":
			v, all = o.Hours, inAll(func(t OfficeText) string { return t.Hours })
		case "office.university":
			v = o.University
		}
		if strings.TrimSpace(v) == "" && !all {
			out = append(out, k)
		}
	}
	return out
}

// OfficeText is what of the office's details is written in a language.
type OfficeText struct {
	Name, Address, Hours string
}

// set sets the field that key (name, address, hours) names.
func (t *OfficeText) set(key, s string) {
	switch key {
	case "name":
		t.Name = s
	case "address":
		t.Address = s
	case "hours":
		t.Hours = s
	}
}

// SMS is the sms section.
type SMS struct {
	// QuietHours is nil when the file does not set it (the environment or
	// the built-in default applies).
	QuietHours *QuietHours
}

// QuietHours are the local hours when student SMS are held, not dropped.
// Start and End are minutes after midnight; the range may wrap midnight
// (21:00-09:00). The zero value holds nothing.
type QuietHours struct {
	Enabled    bool
	Start, End int
}

// Contains reports whether minute (after local midnight) is quiet.
func (q QuietHours) Contains(minute int) bool {
	switch {
	case !q.Enabled:
		return false
	case q.Start < q.End:
		return minute >= q.Start && minute < q.End
	}
	return minute >= q.Start || minute < q.End
}

func (q QuietHours) String() string {
	if !q.Enabled {
		return ""
	}
	return fmt.Sprintf("%02d:%02d-%02d:%02d", q.Start/60, q.Start%60, q.End/60, q.End%60)
}

var quietRE = regexp.MustCompile(`^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$`)

// ParseQuietHours reads "HH:MM-HH:MM" (24-hour, local time); "" means
// never quiet.
func ParseQuietHours(s string) (QuietHours, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return QuietHours{}, nil
	}
	m := quietRE.FindStringSubmatch(s)
	if m == nil {
		return QuietHours{}, fmt.Errorf("%q: want HH:MM-HH:MM, like 21:00-09:00, or \"\" for none", s)
	}
	n := func(i int) int { v, _ := strconv.Atoi(m[i]); return v }
	q := QuietHours{Enabled: true, Start: n(1)*60 + n(2), End: n(3)*60 + n(4)}
	if q.Start == q.End {
		return QuietHours{}, fmt.Errorf("%q: start and end are the same", s)
	}
	return q, nil
}

// Default is the configuration without a file.
func Default() *File {
	return &File{
		Office:      Office{Language: rules.Russian, OfficeText: OfficeText{Name: "International Office"}},
		FeedGuard:   FeedGuard{MaxRosterDrop: 0.2, MaxEmptied: 0.2},
		StaleAfter:  DefaultStaleAfter,
		ReportPause: DefaultReportPause,
		rules:       rules.Defaults(),
	}
}

// Load reads the file at path; an empty path is Default.
func Load(path string) (*File, error) {
	if path == "" {
		return Default(), nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data)
}

// Rules returns the rule catalog with the file's overrides applied,
// disabled rules included (marked Disabled).
func (f *File) Rules() []rules.Rule {
	if f == nil {
		return rules.Defaults()
	}
	out := make([]rules.Rule, len(f.rules))
	for i := range f.rules {
		out[i] = f.rules[i].Clone()
	}
	return out
}

// NewCalendar builds this run's working-day calendar with the file's
// overrides; log receives its one fallback warning.
func (f *File) NewCalendar(log *slog.Logger) (*calendar.Calendar, error) {
	if f == nil {
		return calendar.New(calendar.Overrides{}, log)
	}
	return calendar.New(f.Calendar, log)
}

// Engine builds the rules engine from the overridden catalog, the academic
// periods and the run's calendar (nil: NewCalendar(nil)).
func (f *File) Engine(periods []rules.Period, cal *calendar.Calendar) (*rules.Engine, error) {
	if cal == nil {
		var err error
		if cal, err = f.NewCalendar(nil); err != nil {
			return nil, err
		}
	}
	return rules.New(f.Rules(), periods, cal)
}

// Error is one problem of a configuration file.
type Error struct {
	File string
	Line int    // 0 when unknown
	Path string // dotted key path, like rules.passport-renewal.steps[2].at
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem of a file, in line order.
type Errors []*Error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// Parse reads a configuration from data; name is used in error messages.
func Parse(name string, data []byte) (*File, error) {
	f := Default()
	f.Name = name
	var doc yaml.Node
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return f, nil // empty file: defaults
		}
		e := &Error{File: name, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
		if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
			e.Line, _ = strconv.Atoi(m[1])
			e.Msg = m[2]
		}
		return nil, Errors{e}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		line := extra.Line
		if err != nil {
			line = 0
		}
		return nil, Errors{{File: name, Line: line, Msg: "only one YAML document is allowed"}}
	}
	p := &parser{file: f}
	if len(doc.Content) > 0 {
		p.top(doc.Content[0])
	}
	if len(p.errs) > 0 {
		slices.SortStableFunc(p.errs, func(a, b *Error) int { return a.Line - b.Line })
		return nil, p.errs
	}
	return f, nil
}

type parser struct {
	file *File
	errs Errors
}

func (p *parser) errorf(n *yaml.Node, path, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file.Name, Line: n.Line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// mapping walks a mapping node: each key must be one of keys (in the
// order given, for messages), appear once, and is handed to visit with its
// value. A null node is an empty mapping.
func (p *parser) mapping(n *yaml.Node, path string, keys []string, visit func(key string, k, v *yaml.Node)) {
	n = deref(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, path, "want a mapping of %s", strings.Join(keys, ", "))
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], deref(n.Content[i+1])
		key := k.Value
		switch {
		case seen[key]:
			p.errorf(k, join(path, key), "duplicate key")
		case keys != nil && !slices.Contains(keys, key):
			p.errorf(k, join(path, key), "unknown key (want %s)", strings.Join(keys, ", "))
		default:
			seen[key] = true
			visit(key, k, v)
		}
	}
}

// scalar returns the text of a scalar node, or reports a type error.
func (p *parser) scalar(n *yaml.Node, path, want string) (string, bool) {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		p.errorf(n, path, "want %s", want)
		return "", false
	}
	return n.Value, true
}

// list returns the scalars of a sequence (or of a single scalar).
func (p *parser) list(n *yaml.Node, path, want string) []*yaml.Node {
	switch {
	case isNull(n):
		return nil
	case n.Kind == yaml.ScalarNode:
		return []*yaml.Node{n}
	case n.Kind != yaml.SequenceNode:
		p.errorf(n, path, "want a list of %s", want)
		return nil
	}
	var out []*yaml.Node
	for i, x := range n.Content {
		x = deref(x)
		if x.Kind != yaml.ScalarNode || isNull(x) {
			p.errorf(x, fmt.Sprintf("%s[%d]", path, i+1), "want %s", want)
			continue
		}
		out = append(out, x)
	}
	return out
}

// DefaultStaleAfter is stale_after when the file does not set it.
const DefaultStaleAfter = 7

// DefaultReportPause is report_pause when the file does not set it.
const DefaultReportPause = 5

func (p *parser) top(n *yaml.Node) {
	p.mapping(n, "", []string{"office", "sms", "calendar", "registration", "rules", "feed_guard", "stale_after", "report_pause"}, func(key string, _, v *yaml.Node) {
		switch key {
		case "stale_after":
			p.staleAfter(v)
		case "report_pause":
			p.reportPause(v)
		case "feed_guard":
			p.feedGuard(v)
		case "office":
			p.office(v)
		case "sms":
			p.sms(v)
		case "calendar":
			p.calendar(v)
		case "registration":
			p.registration(v)
		case "rules":
			p.rules(v)
		}
	})
}

func (p *parser) office(n *yaml.Node) {
	o := &p.file.Office
	p.mapping(n, "office", []string{"language", "university", "name", "address", "hours", "phone", "email", "en", "ru", "kk"}, func(key string, _, v *yaml.Node) {
		path := "office." + key
		if key == "en" || key == "ru" || key == "kk" {
			p.officeIn(v, path, key)
			return
		}
		s, ok := p.scalar(v, path, "text")
		if !ok {
			return
		}
		switch key {
		case "language":
			if o.Language = rules.ParseLanguage(s); o.Language == rules.LanguageUnknown {
				p.errorf(v, path, "unknown language %q (want en, ru or kk)", s)
			}
		case "university":
			o.University = s
		case "name", "address", "hours":
			o.OfficeText.set(key, s)
		case "phone":
			o.Phone = s
		case "email":
			if a, err := mail.ParseAddress(s); err != nil || a.Name != "" {
				p.errorf(v, path, "%q is not an email address", s)
				return
			}
			o.Email = s
		}
	})
}

// officeIn reads office.<lang>: the name, address and hours in a language.
func (p *parser) officeIn(n *yaml.Node, path, lang string) {
	var t OfficeText
	p.mapping(n, path, []string{"name", "address", "hours"}, func(key string, _, v *yaml.Node) {
		if s, ok := p.scalar(v, path+"."+key, "text"); ok {
			t.set(key, s)
		}
	})
	o := &p.file.Office
	if o.In == nil {
		o.In = map[string]OfficeText{}
	}
	o.In[lang] = t
}

// staleAfter reads stale_after: a number of calendar days, written 7 or
// 7d, from 0 (every step reached late is stale) to 366.
func (p *parser) staleAfter(n *yaml.Node) {
	s, ok := p.scalar(n, "stale_after", "a number of days such as 7d")
	if !ok {
		return
	}
	v, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(s), "d"))
	if err != nil || v < 0 || v > 366 {
		p.errorf(n, "stale_after", "%q: want a number of calendar days from 0 to 366, such as 7d", s)
		return
	}
	p.file.StaleAfter = v
}

// reportPause reads report_pause: a number of working days, written 5wd
// (or 5), from 1 to 30.
func (p *parser) reportPause(n *yaml.Node) {
	s, ok := p.scalar(n, "report_pause", "a number of working days such as 5wd")
	if !ok {
		return
	}
	t := strings.TrimSpace(s)
	if strings.HasSuffix(t, "wd") {
		t = strings.TrimSuffix(t, "wd")
	} else if strings.HasSuffix(t, "d") {
		p.errorf(n, "report_pause", "%q: the pause is in working days, such as 5wd", s)
		return
	}
	v, err := strconv.Atoi(t)
	if err != nil || v < 1 || v > 30 {
		p.errorf(n, "report_pause", "%q: want a number of working days from 1 to 30, such as 5wd", s)
		return
	}
	p.file.ReportPause = v
}

func (p *parser) feedGuard(n *yaml.Node) {
	g := &p.file.FeedGuard
	p.mapping(n, "feed_guard", []string{"max_roster_drop", "max_emptied"}, func(key string, _, v *yaml.Node) {
		path := "feed_guard." + key
		s, ok := p.scalar(v, path, "a share such as 20%")
		if !ok {
			return
		}
		share, err := parseShare(s)
		if err != nil {
			p.errorf(v, path, "%v", err)
			return
		}
		switch key {
		case "max_roster_drop":
			g.MaxRosterDrop = share
		case "max_emptied":
			g.MaxEmptied = share
		}
	})
}

// parseShare reads "20%" or "0.2" as 0.2.
func parseShare(s string) (float64, error) {
	t := strings.TrimSpace(s)
	pct := strings.HasSuffix(t, "%")
	v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(t, "%")), 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a share (want 20%% or 0.2)", s)
	}
	if pct {
		v /= 100
	}
	if !(v > 0 && v <= 1) { // NaN too: no share compares above NaN, so it would disable the guard
		return 0, fmt.Errorf("%q: a share must be above 0 and at most 100%%", s)
	}
	return v, nil
}

func (p *parser) sms(n *yaml.Node) {
	p.mapping(n, "sms", []string{"quiet_hours"}, func(_ string, _, v *yaml.Node) {
		s := ""
		if !isNull(v) {
			var ok bool
			if s, ok = p.scalar(v, "sms.quiet_hours", `"HH:MM-HH:MM" or ""`); !ok {
				return
			}
		}
		q, err := ParseQuietHours(s)
		if err != nil {
			p.errorf(v, "sms.quiet_hours", "%v", err)
			return
		}
		p.file.SMS.QuietHours = &q
	})
}

func (p *parser) calendar(n *yaml.Node) {
	c := &p.file.Calendar
	where := map[date.Date]string{}
	dates := func(v *yaml.Node, path string, kind string) []date.Date {
		var out []date.Date
		for i, x := range p.list(v, path, "dates (YYYY-MM-DD)") {
			d, err := date.Parse(x.Value)
			if err != nil {
				p.errorf(x, fmt.Sprintf("%s[%d]", path, i+1), "bad date %q: want YYYY-MM-DD, a real calendar day", x.Value)
				continue
			}
			if prev, ok := where[d]; ok && prev != kind {
				p.errorf(x, fmt.Sprintf("%s[%d]", path, i+1), "%s is also listed in calendar.%s", d, prev)
				continue
			}
			where[d] = kind
			out = append(out, d)
		}
		return out
	}
	p.mapping(n, "calendar", []string{"days_off", "working_days", "verified_through"}, func(key string, _, v *yaml.Node) {
		path := "calendar." + key
		switch key {
		case "days_off":
			c.DaysOff = dates(v, path, key)
		case "working_days":
			c.WorkingDays = dates(v, path, key)
		case "verified_through":
			s, ok := p.scalar(v, path, "a year")
			if !ok {
				return
			}
			y, err := strconv.Atoi(s)
			if err != nil || y < 2000 || y > 2200 {
				p.errorf(v, path, "%q: want a year, like 2028", s)
				return
			}
			c.VerifiedThrough = y
		}
	})
}

func (p *parser) rule(id rules.ID) *rules.Rule {
	for i := range p.file.rules {
		if p.file.rules[i].ID == id {
			return &p.file.rules[i]
		}
	}
	panic("config: rule " + string(id) + " missing from the catalog")
}

var regimeKeys = []string{"default", "visa", "visa_free", "eaeu"}

func (p *parser) registration(n *yaml.Node) {
	r := p.rule(rules.Registration)
	p.mapping(n, "registration", regimeKeys, func(key string, _, v *yaml.Node) {
		path := "registration." + key
		s, ok := p.scalar(v, path, "a period like 3d or 3wd")
		if !ok {
			return
		}
		o, err := rules.ParseOffset(s)
		if err == nil && o.Unit == rules.Months {
			err = fmt.Errorf("%q: the registration period is in d (calendar days) or wd (working days)", s)
		}
		if err != nil {
			p.errorf(v, path, "%v", err)
			return
		}
		e := rules.Expr{Base: rules.BaseAnchor, Off: o}
		if key == "default" {
			r.Due.Expr = e
			r.Due.PerRegime[rules.RegimeUnknown] = e
			return
		}
		r.Due.PerRegime[rules.ParseRegime(key)] = e
	})
}

func (p *parser) rules(n *yaml.Node) {
	n = deref(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "rules", "want a mapping of rule ids")
		return
	}
	p.mapping(n, "rules", nil, func(key string, k, v *yaml.Node) {
		id := rules.ID(key)
		if _, ok := rules.Lookup(id); !ok {
			msg := "unknown rule id"
			if s := nearest(key, rules.KnownIDs()); s != "" {
				msg += " (did you mean " + s + "?)"
			}
			p.errorf(k, "rules."+key, "%s (known: %s)", msg, strings.Join(rules.KnownIDs(), ", "))
			return
		}
		p.ruleOverrides(p.rule(id), v)
	})
}

func (p *parser) ruleOverrides(r *rules.Rule, n *yaml.Node) {
	base := "rules." + string(r.ID)
	keys := []string{"enabled", "due", "window", "steps"}
	var stepsKey *yaml.Node
	before := len(p.errs)
	p.mapping(n, base, keys, func(key string, k, v *yaml.Node) {
		path := base + "." + key
		switch key {
		case "enabled":
			if v.Kind != yaml.ScalarNode || v.Tag != "!!bool" {
				p.errorf(v, path, "want true or false")
				return
			}
			var b bool
			if err := v.Decode(&b); err != nil {
				p.errorf(v, path, "want true or false")
				return
			}
			r.Disabled = !b
		case "due":
			p.due(r, v, path)
		case "window":
			if r.Window.IsZero() {
				p.errorf(k, path, "%s has no window (only %s and %s have one)", r.ID, rules.StayExtension, rules.TravelLateNotice)
				return
			}
			s, ok := p.scalar(v, path, "a period like 3d")
			if !ok {
				return
			}
			o, err := rules.ParseOffset(s)
			if err != nil {
				p.errorf(v, path, "%v", err)
				return
			}
			r.Window = o
		case "steps":
			stepsKey = k
			p.steps(r, v, path)
		}
	})
	if stepsKey != nil && !r.Disabled && len(p.errs) == before {
		if err := r.Validate(); err != nil {
			p.errorf(stepsKey, base+".steps", "%s", strings.TrimPrefix(err.Error(), "rule "+string(r.ID)+": "))
		}
	}
}

func (p *parser) due(r *rules.Rule, v *yaml.Node, path string) {
	switch r.ID {
	case rules.Registration:
		p.errorf(v, path, "set the registration period per visa regime in the registration section")
		return
	case rules.ReturnCheckIn:
		if v.Kind == yaml.MappingNode {
			p.mapping(v, path, []string{"vacation", "term"}, func(key string, _, x *yaml.Node) {
				if e, ok := p.dueExpr(x, path+"."+key, rules.BaseAnchor); ok {
					r.Due.PerKind[rules.ParseTravelKind(key)] = e
					if key == "vacation" {
						r.Due.Expr = e
					}
				}
			})
			return
		}
		if e, ok := p.dueExpr(v, path, rules.BaseAnchor); ok {
			r.Due.Expr = e
			r.Due.PerKind[rules.Vacation] = e
			r.Due.PerKind[rules.Term] = e
		}
		return
	}
	if e, ok := p.dueExpr(v, path, r.Due.Expr.Base); ok {
		r.Due.Expr = e
	}
}

func (p *parser) dueExpr(v *yaml.Node, path string, base rules.Base) (rules.Expr, bool) {
	s, ok := p.scalar(v, path, "a date expression like "+base.String()+"-30d")
	if !ok {
		return rules.Expr{}, false
	}
	e, err := rules.ParseExpr(s, base)
	if err != nil {
		p.errorf(v, path, "bad due date: %v", err)
		return rules.Expr{}, false
	}
	return e, true
}

func (p *parser) steps(r *rules.Rule, n *yaml.Node, path string) {
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, path, "want a list of steps (each with at: and what it sends)")
		return
	}
	steps := make([]rules.Step, 0, len(n.Content))
	for i, x := range n.Content {
		x = deref(x)
		sp := fmt.Sprintf("%s[%d]", path, i+1)
		var st rules.Step
		sawAt := false
		p.mapping(x, sp, []string{"at", "repeat", "student", "office", "dean"}, func(key string, _, v *yaml.Node) {
			kp := sp + "." + key
			switch key {
			case "at":
				sawAt = true
				s, ok := p.scalar(v, kp, "a date expression like due-14d")
				if !ok {
					return
				}
				e, err := rules.ParseExpr(s, rules.BaseAnchor, rules.BaseDue)
				if err != nil {
					p.errorf(v, kp, "bad step date: %v", err)
					return
				}
				st.At = e
			case "repeat":
				s, ok := p.scalar(v, kp, "a number of days like 30d")
				if !ok {
					return
				}
				o, err := rules.ParseOffset(s)
				if err == nil && (o.Unit != rules.Days || o.N == 0) {
					err = fmt.Errorf("%q: a repeat is a positive number of calendar days, like 30d", s)
				}
				if err != nil {
					p.errorf(v, kp, "%v", err)
					return
				}
				st.Repeat = o.N
			default:
				for j, w := range p.list(v, kp, "channels") {
					a, err := rules.ParseAction(key, w.Value)
					if err != nil {
						p.errorf(w, fmt.Sprintf("%s[%d]", kp, j+1), "%v", err)
						continue
					}
					st.Actions |= a
				}
			}
		})
		if x.Kind == yaml.MappingNode && !sawAt {
			p.errorf(x, sp, "missing at: (the step's date, like due-14d)")
		}
		steps = append(steps, st)
	}
	r.Steps = steps
}

// nearest returns the candidate closest to s by edit distance, if close.
func nearest(s string, candidates []string) string {
	best, bestD := "", 4
	for _, c := range candidates {
		if d := levenshtein(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
