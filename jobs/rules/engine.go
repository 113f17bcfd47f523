// Package rules is the rules engine: the catalog of docs/rules.md (catalog.go,
// one declaration per rule) and its pure, deterministic evaluation.
//
// How a rule works (docs/rules.md, "How a rule works"):
//
//   - A rule looks at a subject (a student, one of the student's travel
//     requests, or the student and one academic break). When the student's
//     enrollment status is in the rule's Statuses (graduated, withdrawn,
//     expelled and unknown never are), the regime and kind filters allow
//     it, the anchor field is set and every Scope condition holds, and not
//     every Done condition holds, the obligation is open.
//   - Its identity is (rule, subject id, anchor); break-briefing's anchor is
//     the break's start, so each break is its own obligation.
//   - Due is computed from the anchor (or the trip's departure_on); step
//     dates from the anchor or the due date. d adds calendar days, wd
//     working days of the calendar (see calendar.AddWorkingDays), m
//     calendar months clamped to the last day of the month.
//   - The reached step is the last step of the ladder (highest level) whose
//     date is on or before the as-of date. Earlier steps are never reported
//     once a later one is reached. An obligation with no reached step is
//     not reported.
//   - A step with repeat N is delivered again N days after its last
//     delivery while it is the reached step: the engine reports N
//     (Obligation.RepeatEvery); the evaluation, which has the record of
//     deliveries, decides whether tonight is a repeat.
//   - An open obligation whose rule has a Moot field set and before the
//     as-of date is reported with Obligation.Moot, its reason (the trip
//     has started, the planned entry has passed): the evaluation closes it
//     and never opens one that is moot when first seen. A departure on the
//     night itself is not moot.
//   - Travel requests that are cancelled are no rule's subject.
//   - EvaluateWake also reports the first later date on which the result
//     may differ for the same facts: the nearest step date not reached yet,
//     the day after a moot field's date, the start of an upcoming break,
//     the end of a look-back window, and the next day while the reached
//     step repeats. Before that date only a change of the facts (the
//     student, the trips, the reports, the periods, the calendar or the
//     configuration) changes the result: the night evaluates a student
//     again on that date, or when the student's facts change.
//   - A student's open reports (Student.Reports) of a rule's Reports kind
//     are that rule's subjects (OnReport): subject id "R<report id>",
//     anchor the report's date.
//
// Evaluate allocates nothing beyond growing the caller's out slice.
package rules

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/iec-almaty/sisnotify/jobs/calendar"
	"github.com/iec-almaty/sisnotify/jobs/date"
)

// Engine evaluates a catalog. It is immutable and safe for concurrent use.
type Engine struct {
	cal   *calendar.Calendar
	rules []Rule
	// breaks[i] are the periods of rule i's Periods kinds, by start.
	breaks    [][]Period
	semesters []Period    // by start
	semMaxEnd []date.Date // semMaxEnd[i] = max EndsOn of semesters[:i+1]
}

// New builds an engine for the enabled rules of catalog (built with
// Defaults, possibly changed by a configuration), the academic periods
// and the working-day calendar (nil: the shipped calendar without
// overrides).
func New(catalog []Rule, ps []Period, cal *calendar.Calendar) (*Engine, error) {
	if cal == nil {
		cal = calendar.Default()
	}
	e := &Engine{cal: cal}
	seen := map[ID]bool{}
	for _, r := range catalog {
		if _, ok := Lookup(r.ID); !ok {
			return nil, fmt.Errorf("rule %q: not in the catalog", r.ID)
		}
		if seen[r.ID] {
			return nil, fmt.Errorf("rule %s: given twice", r.ID)
		}
		seen[r.ID] = true
		if r.Disabled {
			continue
		}
		if err := r.Validate(); err != nil {
			return nil, err
		}
		e.rules = append(e.rules, r.Clone())
	}
	sorted := slices.Clone(ps)
	slices.SortStableFunc(sorted, func(a, b Period) int {
		return cmp.Or(cmp.Compare(a.StartsOn, b.StartsOn), cmp.Compare(a.ID, b.ID))
	})
	e.breaks = make([][]Period, len(e.rules))
	for i := range e.rules {
		r := &e.rules[i]
		if r.Subject != OnBreak {
			continue
		}
		for _, p := range sorted {
			if r.Periods.Has(p.Kind) && p.StartsOn != 0 {
				e.breaks[i] = append(e.breaks[i], p)
			}
		}
	}
	for _, p := range sorted {
		if p.Kind == Semester && p.StartsOn != 0 && p.EndsOn >= p.StartsOn {
			end := p.EndsOn
			if n := len(e.semMaxEnd); n > 0 {
				end = max(end, e.semMaxEnd[n-1])
			}
			e.semesters = append(e.semesters, p)
			e.semMaxEnd = append(e.semMaxEnd, end)
		}
	}
	return e, nil
}

// Rules returns the enabled rules, in evaluation order.
func (e *Engine) Rules() []Rule {
	out := make([]Rule, len(e.rules))
	for i := range e.rules {
		out[i] = e.rules[i].Clone()
	}
	return out
}

// Digest returns a digest of what the engine evaluates with besides the
// facts: the enabled rules as configured, the academic periods and the
// calendar's working days in the years it has data for. Two engines with
// the same digest give the same results for the same facts (the same
// program assumed).
func (e *Engine) Digest() string {
	h := sha256.New()
	fmt.Fprintf(h, "%+v\n%+v\n%+v\n", e.rules, e.breaks, e.semesters)
	first, last := e.cal.Years()
	from, to := date.Of(first, time.January, 1), date.Of(last, time.December, 31)
	fmt.Fprintf(h, "%s..%s\n", from, to)
	bits := make([]byte, 0, (to-from)/8+1)
	var b byte
	for d := from; d <= to; d++ {
		if e.cal.IsWorkingDay(d) {
			b |= 1 << ((d - from) % 8)
		}
		if (d-from)%8 == 7 || d == to {
			bits, b = append(bits, b), 0
		}
	}
	h.Write(bits)
	return hex.EncodeToString(h.Sum(nil))
}

// Calendar returns the engine's working-day calendar.
func (e *Engine) Calendar() *calendar.Calendar { return e.cal }

// facts is what one rule evaluation reads. It lives on Evaluate's stack.
type facts struct {
	r       *Rule
	s       *Student
	t       *Travel
	p       *Period
	rep     *Report
	travels []Travel
	asOf    date.Date
	// next is the first date after asOf on which the result may differ
	// (0: none seen yet).
	next date.Date
}

// until notes that the result may differ from date d on.
func (f *facts) until(d date.Date) {
	if d > f.asOf && (f.next == 0 || d < f.next) {
		f.next = d
	}
}

func (f *facts) get(x Field) date.Date {
	switch x {
	case PassportExpiresOn:
		return f.s.PassportExpiresOn
	case PlannedEntryOn:
		return f.s.PlannedEntryOn
	case InvitationDocsOn:
		return f.s.InvitationDocsOn
	case EnteredOn:
		return f.s.EnteredOn
	case OfficeCheckInOn:
		return f.s.OfficeCheckInOn
	case RegisteredOn:
		return f.s.RegisteredOn
	case RegistrationExpiresOn:
		return f.s.RegistrationExpiresOn
	case ExtensionRequestedOn:
		return f.s.ExtensionRequestedOn
	case MovedOn:
		return f.s.MovedOn
	case AddressRegisteredOn:
		return f.s.AddressRegisteredOn
	}
	if f.t != nil {
		switch x {
		case SubmittedOn:
			return f.t.SubmittedOn
		case DepartureOn:
			return f.t.DepartureOn
		case DepartedOn:
			return f.t.DepartedOn
		case ReturnedOn:
			return f.t.ReturnedOn
		case ReturnCheckInOn:
			return f.t.ReturnCheckInOn
		}
	}
	if f.p != nil && x == StartsOn {
		return f.p.StartsOn
	}
	if f.rep != nil && x == ReportedOn {
		return f.rep.ReportedOn
	}
	return 0
}

// Evaluate appends to out the open obligations of student s (and of s's
// travel requests, and of s and each upcoming break) whose reached step
// exists on asOf, in catalog order, then in the order of travels and
// breaks. travels are s's requests; one of another student is ignored.
func (e *Engine) Evaluate(s Student, travels []Travel, asOf date.Date, out []Obligation) []Obligation {
	out, _ = e.EvaluateWake(s, travels, asOf, out)
	return out
}

// EvaluateWake is Evaluate, and also returns the first date after asOf on
// which the result may differ while the facts stay as they are: on every
// date from asOf to the day before wake, Evaluate returns the same
// obligations. wake is 0 when no date alone changes the result. The date
// is never late, and may be early: a step reached only after a later
// step, say, still counts.
func (e *Engine) EvaluateWake(s Student, travels []Travel, asOf date.Date, out []Obligation) (_ []Obligation, wake date.Date) {
	f := facts{s: &s, travels: travels, asOf: asOf}
	for i := range e.rules {
		r := &e.rules[i]
		if !r.Statuses.Has(s.Status) || !r.Regimes.Allows(s.Regime) {
			continue
		}
		f.r, f.t, f.p, f.rep = r, nil, nil, nil
		switch r.Subject {
		case OnStudent:
			out, _ = e.open(out, &f, s.ID)
		case OnTravel:
			for j := range travels {
				t := &travels[j]
				if t.Cancelled || t.StudentID != s.ID || !r.Kinds.Allows(t.Kind) {
					continue
				}
				f.t = t
				out, _ = e.open(out, &f, t.ID)
			}
		case OnBreak:
			bs := e.breaks[i]
			// Breaks that have started are out of scope; past the first
			// upcoming break whose first step is not reached, no later
			// break's is (step dates do not decrease with the anchor).
			k, _ := slices.BinarySearchFunc(bs, asOf+1, func(p Period, d date.Date) int { return cmp.Compare(p.StartsOn, d) })
			for ; k < len(bs); k++ {
				f.p = &bs[k]
				f.until(f.p.StartsOn) // a break that starts is out of scope
				var reached bool
				if out, reached = e.open(out, &f, s.ID); !reached {
					break
				}
			}
		case OnReport:
			for j := range s.Reports {
				rep := &s.Reports[j]
				if rep.Kind != r.Reports || rep.Kind == ReportUnknown {
					continue
				}
				f.rep = rep
				out, _ = e.open(out, &f, rep.SubjectID())
			}
		}
	}
	return out, f.next
}

// open appends f's obligation when it is open and a step is reached; it
// reports whether a step is reached (false also when out of scope).
func (e *Engine) open(out []Obligation, f *facts, subjectID string) ([]Obligation, bool) {
	r := f.r
	anchor := f.get(r.Anchor)
	if anchor == 0 {
		return out, false
	}
	for k := range r.Scope {
		if !e.holds(&r.Scope[k], f) {
			return out, false
		}
	}
	if len(r.Done) > 0 {
		done := true
		for k := range r.Done {
			if !e.holds(&r.Done[k], f) {
				done = false
				break
			}
		}
		if done {
			return out, false
		}
	}
	dueExpr := r.Due.Expr
	switch r.Due.By {
	case ByRegime:
		dueExpr = r.Due.PerRegime[f.s.Regime%numRegimes]
	case ByKind:
		if f.t == nil {
			return out, false
		}
		dueExpr = r.Due.PerKind[f.t.Kind%numKinds]
	}
	var due date.Date
	switch dueExpr.Base {
	case BaseAnchor:
		due = dueExpr.Off.Apply(anchor, e.cal)
	case BaseDeparture:
		if f.t == nil || f.t.DepartureOn == 0 {
			return out, false
		}
		due = dueExpr.Off.Apply(f.t.DepartureOn, e.cal)
	default: // no due for this regime or kind: the rule does not apply
		return out, false
	}
	for k := len(r.Steps) - 1; k >= 0; k-- {
		st := &r.Steps[k]
		base := anchor
		if st.At.Base == BaseDue {
			base = due
		}
		at := st.At.Off.Apply(base, e.cal)
		if at > f.asOf {
			f.until(at)
			continue
		}
		if st.Repeat > 0 {
			// Whether tonight repeats the step is the record's to say.
			f.until(f.asOf + 1)
		}
		o := Obligation{
			Rule: r.ID, Subject: r.Subject, SubjectID: subjectID, StudentID: f.s.ID,
			Anchor: anchor, Due: due, Level: k + 1, StepDate: at, RepeatEvery: st.Repeat, Actions: st.Actions,
		}
		if f.p != nil {
			o.PeriodID = f.p.ID
		}
		if r.Moot.Field != noField {
			if m := f.get(r.Moot.Field); m != 0 && m < f.asOf {
				o.Moot = r.Moot.Reason
			} else if m != 0 {
				f.until(m + 1)
			}
		}
		return append(out, o), true
	}
	return out, false
}

func (e *Engine) holds(c *Cond, f *facts) bool {
	switch c.op {
	case opSet:
		return f.get(c.a) != 0
	case opNotSet:
		return f.get(c.a) == 0
	case opOnOrAfter:
		a := f.get(c.a)
		return a != 0 && a >= f.get(c.b)
	case opOnOrAfterWindow:
		a, b := f.get(c.a), f.get(c.b)
		return a != 0 && b != 0 && a >= e.back(b, f.r.Window)
	case opAfterWindow:
		a, b := f.get(c.a), f.get(c.b)
		return a != 0 && b != 0 && a > e.back(b, f.r.Window)
	case opDecisionIn:
		return f.t != nil && c.decisions&(1<<f.t.DeanDecision) != 0
	case opExitVisaReady:
		return f.t != nil && f.t.ExitVisaReady == TriTrue
	case opEarlierTermTrip:
		return f.t != nil && e.earlierTermTrip(f.t, f.travels)
	case opBreakNotStarted:
		if f.p == nil || f.asOf >= f.p.StartsOn {
			return false
		}
		f.until(f.p.StartsOn)
		return true
	case opRecent:
		a := f.get(c.a)
		if a == 0 || a < e.back(f.asOf, f.r.Window) {
			return false // for good: the window only moves on
		}
		f.until(e.windowPasses(a, f.r.Window))
		return true
	}
	return false
}

// windowPasses returns the first date D whose look-back window w starts
// after a: back(D, w) > a. back only moves forward with D, so a search
// finds it.
func (e *Engine) windowPasses(a date.Date, w Offset) date.Date {
	if w.Unit == Days {
		return a.AddDays(w.N + 1)
	}
	lo, hi := a, a.AddDays(max(w.N, 1)) // back(lo) <= a
	for e.back(hi, w) <= a {
		lo, hi = hi, hi.AddDays(int(hi-a)+31)
	}
	for hi-lo > 1 { // back(lo) <= a < back(hi)
		mid := lo + (hi-lo)/2
		if e.back(mid, w) <= a {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi
}

// back returns d − w.
func (e *Engine) back(d date.Date, w Offset) date.Date {
	w.N = -w.N
	return w.Apply(d, e.cal)
}

// termTrip is term-travel-limit's "such request": a term-time request, not
// cancelled, with a known dean decision other than rejected.
func termTrip(t *Travel) bool {
	return t.Kind == Term && !t.Cancelled && t.DepartureOn != 0 &&
		t.DeanDecision != DecisionUnknown && t.DeanDecision != Rejected
}

// earlierTermTrip reports whether t departs in a semester in which the same
// student has an earlier such request (earlier departure_on; ties broken by
// request id).
func (e *Engine) earlierTermTrip(t *Travel, travels []Travel) bool {
	if !termTrip(t) {
		return false
	}
	sem := e.semesterOf(t.DepartureOn)
	if sem < 0 {
		return false
	}
	for i := range travels {
		u := &travels[i]
		if u == t || u.StudentID != t.StudentID || !termTrip(u) {
			continue
		}
		if u.DepartureOn > t.DepartureOn || u.DepartureOn == t.DepartureOn && u.ID >= t.ID {
			continue
		}
		if e.semesterOf(u.DepartureOn) == sem {
			return true
		}
	}
	return false
}

// semesterOf returns the index of the semester containing d (the latest
// starting one if semesters overlap), or -1.
func (e *Engine) semesterOf(d date.Date) int {
	i, _ := slices.BinarySearchFunc(e.semesters, d+1, func(p Period, d date.Date) int { return cmp.Compare(p.StartsOn, d) })
	for i--; i >= 0 && e.semMaxEnd[i] >= d; i-- {
		if e.semesters[i].EndsOn >= d {
			return i
		}
	}
	return -1
}
