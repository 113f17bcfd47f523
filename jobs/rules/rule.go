package rules

import (
	"fmt"
	"slices"
	"strings"

	"github.com/iec-almaty/sisnotify/jobs/date"
)

// ID is a rule id of docs/rules.md.
type ID string

// SubjectKind is what one obligation of a rule is about.
type SubjectKind uint8

const (
	OnStudent SubjectKind = iota + 1 // the student; subject id = student id
	OnTravel                         // one travel request, not cancelled; subject id = request id
	OnBreak                          // the student and one academic break; subject id = student id, anchor = the break's start
	OnReport                         // one open report of the student; subject id = "R" + report id, anchor = the report's date
)

func (k SubjectKind) String() string {
	return [...]string{"", "student", "travel request", "student in a break", "student's report"}[k%5]
}

// Field is a date column a rule reads.
type Field uint8

const (
	noField Field = iota
	// sis.students
	PassportExpiresOn
	PlannedEntryOn
	InvitationDocsOn
	EnteredOn
	OfficeCheckInOn
	RegisteredOn
	RegistrationExpiresOn
	ExtensionRequestedOn
	MovedOn
	AddressRegisteredOn
	// sis.travel_requests
	SubmittedOn
	DepartureOn
	DepartedOn
	ReturnedOn
	ReturnCheckInOn
	// sis.academic_periods
	StartsOn
	// sisnotify.student_reports
	ReportedOn
)

var fieldNames = [...]string{"", "passport_expires_on", "planned_entry_on", "invitation_docs_on",
	"entered_on", "office_check_in_on", "registered_on", "registration_expires_on",
	"extension_requested_on", "moved_on", "address_registered_on",
	"submitted_on", "departure_on", "departed_on", "returned_on", "return_check_in_on",
	"starts_on", "reported_on"}

func (f Field) String() string { return fieldNames[int(f)%len(fieldNames)] }

// StatusSet is a set of enrollment statuses.
type StatusSet uint16

func statuses(s ...Status) (set StatusSet) {
	for _, x := range s {
		set |= 1 << x
	}
	return set
}

// Has reports whether s is in the set; StatusUnknown never is.
func (set StatusSet) Has(s Status) bool { return s != StatusUnknown && set&(1<<s) != 0 }

// RegimeSet is a set of visa regimes; the empty set means any regime,
// unknown included.
type RegimeSet uint8

func regimes(r ...Regime) (set RegimeSet) {
	for _, x := range r {
		set |= 1 << x
	}
	return set
}

// Allows reports whether a student of regime r is in scope.
func (set RegimeSet) Allows(r Regime) bool { return set == 0 || r != RegimeUnknown && set&(1<<r) != 0 }

// KindSet is a set of travel kinds; the empty set means any kind, unknown
// included.
type KindSet uint8

func kinds(k ...TravelKind) (set KindSet) {
	for _, x := range k {
		set |= 1 << x
	}
	return set
}

// Allows reports whether a travel request of kind k is in scope.
func (set KindSet) Allows(k TravelKind) bool { return set == 0 || k != KindUnknown && set&(1<<k) != 0 }

// PeriodSet is a set of academic period kinds.
type PeriodSet uint8

func periods(k ...PeriodKind) (set PeriodSet) {
	for _, x := range k {
		set |= 1 << x
	}
	return set
}

// Has reports whether k is in the set.
func (set PeriodSet) Has(k PeriodKind) bool { return k != PeriodUnknown && set&(1<<k) != 0 }

// DecisionSet is a set of dean decisions.
type DecisionSet uint8

// Cond is one condition of a rule's scope or done clause. Conditions are
// data, evaluated by the engine without allocating.
type Cond struct {
	op        condOp
	a, b      Field
	decisions DecisionSet
}

type condOp uint8

const (
	opSet             condOp = iota + 1 // a set
	opNotSet                            // a not set
	opOnOrAfter                         // a >= b
	opOnOrAfterWindow                   // a >= b − window
	opAfterWindow                       // a > b − window
	opDecisionIn                        // dean_decision in decisions
	opExitVisaReady                     // exit_visa_ready = true
	opEarlierTermTrip                   // the student has an earlier such term-time request in the same semester
	opBreakNotStarted                   // the as-of date is before the break's start
	opRecent                            // a >= the as-of date − window
)

func set(a Field) Cond                { return Cond{op: opSet, a: a} }
func notSet(a Field) Cond             { return Cond{op: opNotSet, a: a} }
func onOrAfter(a, b Field) Cond       { return Cond{op: opOnOrAfter, a: a, b: b} }
func onOrAfterWindow(a, b Field) Cond { return Cond{op: opOnOrAfterWindow, a: a, b: b} }
func afterWindow(a, b Field) Cond     { return Cond{op: opAfterWindow, a: a, b: b} }
func exitVisaReady() Cond             { return Cond{op: opExitVisaReady} }
func earlierTermTripSameSemester() Cond {
	return Cond{op: opEarlierTermTrip}
}
func breakNotStarted() Cond { return Cond{op: opBreakNotStarted, a: StartsOn} }
func recent(a Field) Cond   { return Cond{op: opRecent, a: a} }
func deanDecision(d ...Decision) Cond {
	c := Cond{op: opDecisionIn}
	for _, x := range d {
		c.decisions |= 1 << x
	}
	return c
}

// deanDecisionNot is "dean_decision not X": every known decision but X
// (an unknown code is a data problem and matches nothing).
func deanDecisionNot(x Decision) Cond {
	c := deanDecision(NotRequired, Pending, Approved, Rejected)
	c.decisions &^= 1 << x
	return c
}

// String writes c the way docs/rules.md does.
func (c Cond) String() string {
	switch c.op {
	case opSet:
		return c.a.String() + " set"
	case opNotSet:
		return c.a.String() + " not set"
	case opOnOrAfter:
		return c.a.String() + " >= " + c.b.String()
	case opOnOrAfterWindow:
		return c.a.String() + " >= " + c.b.String() + " - window"
	case opAfterWindow:
		return c.a.String() + " > " + c.b.String() + " - window"
	case opDecisionIn:
		var ds []string
		for d := NotRequired; d <= Rejected; d++ {
			if c.decisions&(1<<d) != 0 {
				ds = append(ds, d.String())
			}
		}
		return "dean_decision in (" + strings.Join(ds, ", ") + ")"
	case opExitVisaReady:
		return "exit_visa_ready = true"
	case opEarlierTermTrip:
		return "an earlier term request of the student in the same semester"
	case opBreakNotStarted:
		return "the break has not started"
	case opRecent:
		return c.a.String() + " >= T - window"
	}
	return "?"
}

// Due is how a rule computes its due date: Expr (anchor±N or
// departure±N), or, for rules whose period depends on the student's visa
// regime (registration) or the trip's kind (return-check-in), the
// expression of that regime or kind. A zero expression in PerRegime or
// PerKind means the rule does not apply to that regime or kind.
type Due struct {
	Expr      Expr
	By        DueBy
	PerRegime [numRegimes]Expr // By == ByRegime: indexed by Regime; [RegimeUnknown] is the default
	PerKind   [numKinds]Expr   // By == ByKind: indexed by TravelKind
}

// DueBy says which expression of a Due applies.
type DueBy uint8

const (
	ByNothing DueBy = iota // Due.Expr
	ByRegime               // Due.PerRegime[student's regime]
	ByKind                 // Due.PerKind[trip's kind]
)

// Rule is one rule of docs/rules.md. Rules are built by Defaults (the catalog);
// a configuration changes Disabled, Due, Window and Steps of a copy.
type Rule struct {
	ID       ID
	Title    string
	Subject  SubjectKind
	Statuses StatusSet  // enrollment statuses in scope
	Regimes  RegimeSet  // visa regimes in scope (empty: any)
	Kinds    KindSet    // travel kinds in scope (empty: any)
	Periods  PeriodSet  // academic period kinds (OnBreak)
	Reports  ReportKind // the kind of report (OnReport)
	Scope    []Cond     // all must hold
	Done     []Cond     // all hold: done (empty: never done by itself)
	Anchor   Field      // must be set for the rule to apply
	Due      Due
	// Window is the rule's other number: the notice period of
	// travel-late-notice (3d), the look-back of stay-extension's done
	// condition (90d) and of welcome's scope (30d). Zero for other rules.
	Window Offset
	// Moot is when the rule's action can no longer be taken (docs/rules.md,
	// "When a step is no longer news"): the zero Moot never is.
	Moot     Moot
	Steps    []Step
	Disabled bool
}

// Moot says when an open obligation's action can no longer be taken: once
// Field is set and before the as-of date. The obligation then closes with
// Reason and sends nothing more; one already moot when first seen is never
// opened.
type Moot struct {
	Field  Field
	Reason string
}

// The reasons of moot closes, as recorded in close_reason.
const (
	MootDeparturePassed = "departure passed"
	MootEntryPassed     = "entry date passed"
)

// Validate checks what a configuration can get wrong: a ladder must have
// steps, each sending something, in date order where two steps can be
// compared (same base and unit), repeats need a positive period, and the
// due expression must keep its base.
func (r *Rule) Validate() error {
	if r.Due.By == ByNothing && r.Due.Expr.Base == 0 {
		return fmt.Errorf("rule %s: no due date", r.ID)
	}
	if len(r.Steps) == 0 {
		return fmt.Errorf("rule %s: no steps (switch it off with enabled: false instead)", r.ID)
	}
	for i, s := range r.Steps {
		if s.Actions == 0 {
			return fmt.Errorf("rule %s: step %d (%s) sends nothing", r.ID, i+1, s.At)
		}
		if s.At.Base != BaseAnchor && s.At.Base != BaseDue {
			return fmt.Errorf("rule %s: step %d: a step date is relative to anchor or due", r.ID, i+1)
		}
		if s.Repeat < 0 {
			return fmt.Errorf("rule %s: step %d: negative repeat", r.ID, i+1)
		}
		if i > 0 {
			p := r.Steps[i-1].At
			if p.Base == s.At.Base && p.Off.Unit == s.At.Off.Unit && p.Off.N > s.At.Off.N {
				return fmt.Errorf("rule %s: step %d (%s) comes before step %d (%s): steps must be in date order",
					r.ID, i+1, s.At, i, p)
			}
		}
	}
	return nil
}

// Clone returns a deep copy of r.
func (r Rule) Clone() Rule {
	r.Steps = slices.Clone(r.Steps)
	r.Scope = slices.Clone(r.Scope)
	r.Done = slices.Clone(r.Done)
	return r
}

// Obligation is an open obligation whose reached step exists on the as-of
// date. Its identity is (Rule, SubjectID, Anchor).
type Obligation struct {
	Rule      ID
	Subject   SubjectKind
	SubjectID string // student id, or travel request id
	StudentID string
	PeriodID  string // the break of break-briefing, else ""
	Anchor    date.Date
	Due       date.Date
	Level     int       // 1-based index of the reached step
	StepDate  date.Date // the reached step's date
	// RepeatEvery is the reached step's repeat period in days (0: sent
	// once). The step is sent again RepeatEvery days after its last
	// delivery, which only the record of deliveries knows: the engine
	// does not count repeats.
	RepeatEvery int
	Actions     Actions // what the reached step sends
	// Moot is the reason the obligation's action can no longer be taken
	// (MootDeparturePassed, MootEntryPassed), or "": a moot obligation
	// closes and sends nothing.
	Moot string
}

// Notices lists the (audience, channel) pairs of the reached step.
func (o *Obligation) Notices() []Notice { return o.Actions.Notices() }
