package rules

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/iec-almaty/sisnotify/jobs/calendar"
	"github.com/iec-almaty/sisnotify/jobs/date"
)

// Unit is the unit of an Offset.
type Unit uint8

const (
	UnitNone    Unit = iota // no offset set
	Days                    // d: calendar days
	WorkingDays             // wd: working days of the calendar
	Months                  // m: calendar months, clamped to the month's last day
)

func (u Unit) String() string {
	return [...]string{"", "d", "wd", "m"}[u%4]
}

// MaxOffset bounds N in an offset (about 27 years of days).
const MaxOffset = 9999

// Offset is a signed distance: N days, working days or months.
type Offset struct {
	N    int
	Unit Unit
}

// IsZero reports whether o is unset (distinct from 0d).
func (o Offset) IsZero() bool { return o.Unit == UnitNone }

// String writes o as 3d, 1wd, 6m (the sign is the caller's).
func (o Offset) String() string {
	if o.Unit == UnitNone {
		return ""
	}
	return strconv.Itoa(o.N) + o.Unit.String()
}

// Apply returns d moved by o: AddDays, cal.AddWorkingDays or AddMonths.
func (o Offset) Apply(d date.Date, cal *calendar.Calendar) date.Date {
	switch o.Unit {
	case Days:
		return d.AddDays(o.N)
	case WorkingDays:
		return cal.AddWorkingDays(d, o.N)
	case Months:
		return d.AddMonths(o.N)
	}
	return d
}

// ParseOffset reads an unsigned length: 3d, 3wd, 6m.
func ParseOffset(s string) (Offset, error) {
	o, err := parseOffset(s)
	if err != nil {
		return Offset{}, fmt.Errorf("%q: %w", s, err)
	}
	return o, nil
}

func parseOffset(s string) (Offset, error) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return Offset{}, fmt.Errorf("want a number and a unit (d, wd or m), like 3d")
	}
	n, err := strconv.Atoi(s[:i])
	if err != nil || n > MaxOffset {
		return Offset{}, fmt.Errorf("number out of range (0-%d)", MaxOffset)
	}
	var u Unit
	switch s[i:] {
	case "d":
		u = Days
	case "wd":
		u = WorkingDays
	case "m":
		u = Months
	default:
		return Offset{}, fmt.Errorf("unit %q: want d (days), wd (working days) or m (months)", s[i:])
	}
	return Offset{N: n, Unit: u}, nil
}

// Base is what a date expression is relative to.
type Base uint8

const (
	BaseAnchor    Base = iota + 1 // the obligation's anchor
	BaseDue                       // the obligation's due date
	BaseDeparture                 // a travel request's departure_on (due dates only)
)

func (b Base) String() string {
	return [...]string{"", "anchor", "due", "departure"}[b%4]
}

// Expr is a date expression: anchor, due-14d, due+1wd, anchor-6m,
// departure-3d.
type Expr struct {
	Base Base
	Off  Offset // N signed; zero Offset means the base itself
}

func (e Expr) String() string {
	if e.Off.Unit == UnitNone || e.Off.N == 0 && e.Off.Unit == Days {
		return e.Base.String()
	}
	if e.Off.N < 0 {
		return e.Base.String() + "-" + Offset{-e.Off.N, e.Off.Unit}.String()
	}
	return e.Base.String() + "+" + e.Off.String()
}

// ParseExpr reads base[(+|-)N(d|wd|m)] where base is one of allowed.
func ParseExpr(s string, allowed ...Base) (Expr, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexAny(s, "+-")
	name, rest := s, ""
	if i >= 0 {
		name, rest = s[:i], s[i:]
	}
	var e Expr
	for _, b := range allowed {
		if name == b.String() {
			e.Base = b
		}
	}
	if e.Base == 0 {
		names := make([]string, len(allowed))
		for i, b := range allowed {
			names[i] = b.String()
		}
		return Expr{}, fmt.Errorf("%q: want %s, optionally followed by +N or -N and a unit (d, wd, m), like %s-14d",
			s, strings.Join(names, " or "), names[0])
	}
	if rest == "" {
		return e, nil
	}
	o, err := parseOffset(rest[1:])
	if err != nil {
		return Expr{}, fmt.Errorf("%q: %w", s, err)
	}
	if rest[0] == '-' {
		o.N = -o.N
	}
	e.Off = o
	return e, nil
}

// Audience is who a notice goes to.
type Audience uint8

const (
	ToStudent Audience = iota + 1
	ToOffice
	ToDean
)

func (a Audience) String() string { return [...]string{"", "student", "office", "dean"}[a%4] }

// Channel is how a notice goes.
type Channel uint8

const (
	Email Channel = iota + 1
	SMS
	Digest
)

func (c Channel) String() string { return [...]string{"", "email", "sms", "digest"}[c%4] }

// Notice is one (audience, channel) that a step implies. docs/rules.md's
// office: urgent is {ToOffice, Email}; dean: email is {ToDean, Email}.
type Notice struct {
	Audience Audience
	Channel  Channel
}

// Actions is the set of what a step sends, as in docs/rules.md's table columns.
type Actions uint8

const (
	StudentEmail Actions = 1 << iota // student: email
	StudentSMS                       // student: sms
	OfficeDigest                     // office: digest
	OfficeUrgent                     // office: urgent (one immediate email)
	DeanDigest                       // dean: digest
	DeanEmail                        // dean: email (one immediate email)
	numActions   = iota
)

// actionNames are the YAML / docs/rules.md words, in bit order.
var actionNames = [numActions]struct {
	audience, word string
	notice         Notice
}{
	{"student", "email", Notice{ToStudent, Email}},
	{"student", "sms", Notice{ToStudent, SMS}},
	{"office", "digest", Notice{ToOffice, Digest}},
	{"office", "urgent", Notice{ToOffice, Email}},
	{"dean", "digest", Notice{ToDean, Digest}},
	{"dean", "email", Notice{ToDean, Email}},
}

// noticeTable[a] is a.Notices(), computed once so Notices never allocates.
var noticeTable = func() (t [1 << numActions][]Notice) {
	for a := range t {
		for i, n := range actionNames {
			if a&(1<<i) != 0 {
				t[a] = append(t[a], n.notice)
			}
		}
	}
	return t
}()

// Notices lists the (audience, channel) pairs of a, student first, then
// office, then dean. The slice is shared: do not modify it.
func (a Actions) Notices() []Notice { return noticeTable[a&(1<<numActions-1)] }

// Words returns the channel words of a for one audience, as docs/rules.md and
// the YAML write them (for example "email, sms" → [email sms]).
func (a Actions) Words(audience string) []string {
	var out []string
	for i, n := range actionNames {
		if n.audience == audience && a&(1<<i) != 0 {
			out = append(out, n.word)
		}
	}
	return out
}

func (a Actions) String() string {
	var parts []string
	for _, aud := range audienceWords {
		if w := a.Words(aud); len(w) > 0 {
			parts = append(parts, aud+": "+strings.Join(w, ", "))
		}
	}
	return strings.Join(parts, "; ")
}

// audienceWords are the audience words, in docs/rules.md's column order.
var audienceWords = [...]string{"student", "office", "dean"}

// ParseAction maps one audience word and one channel word (student: email,
// sms; office: digest, urgent; dean: digest, email) to its Actions bit.
func ParseAction(audience, channel string) (Actions, error) {
	var valid []string
	found := false
	for i, n := range actionNames {
		if n.audience != audience {
			continue
		}
		found = true
		if n.word == channel {
			return 1 << i, nil
		}
		valid = append(valid, n.word)
	}
	if !found {
		return 0, fmt.Errorf("unknown audience %q (want student, office or dean)", audience)
	}
	return 0, fmt.Errorf("%s: unknown channel %q (want %s)", audience, channel, strings.Join(valid, " or "))
}

// Step is one rung of a rule's ladder.
type Step struct {
	At      Expr    // relative to anchor or due
	Repeat  int     // days; 0: delivered once
	Actions Actions // what it sends
}

func (s Step) String() string {
	out := s.At.String()
	if s.Repeat > 0 {
		out += fmt.Sprintf(", repeat %dd", s.Repeat)
	}
	return out + " | " + s.Actions.String()
}
