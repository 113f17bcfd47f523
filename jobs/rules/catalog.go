package rules

import (
	"fmt"
	"strings"
)

// The rule ids of docs/rules.md.
const (
	VisaInvitation      ID = "visa-invitation"
	ArrivalCheckIn      ID = "arrival-check-in"
	Registration        ID = "registration"
	StayExtension       ID = "stay-extension"
	PassportRenewal     ID = "passport-renewal"
	TravelLateNotice    ID = "travel-late-notice"
	TravelDeanApproval  ID = "travel-dean-approval"
	TermTravelLimit     ID = "term-travel-limit"
	ExitVisa            ID = "exit-visa"
	ReturnCheckIn       ID = "return-check-in"
	AddressRegistration ID = "address-registration"
	BreakBriefing       ID = "break-briefing"
	Welcome             ID = "welcome"
	DocumentLoss        ID = "document-loss"
	StatusChange        ID = "status-change"
)

// Statuses in scope. graduated, withdrawn and expelled are in no rule's
// scope; applicant only where docs/rules.md says so. Travel rules do not name
// statuses: a trip is watched for active students and students on leave.
var inCountry = statuses(Active, OnLeave)

// departurePassed is the moot condition of the travel rules: the trip has
// started (or the SIS never recorded that it did).
var departurePassed = Moot{DepartureOn, MootDeparturePassed}

// catalog is docs/rules.md, one declaration per rule, in its order. Ladders are
// written as docs/rules.md's tables: row(date, student, office, dean).
var catalog = [...]Rule{
	{
		ID: VisaInvitation, Title: "invitation documents 45 days before entry",
		Subject: OnStudent, Statuses: statuses(Applicant), Regimes: regimes(Visa),
		Scope:  conds(set(PlannedEntryOn)),
		Done:   conds(set(InvitationDocsOn)),
		Anchor: PlannedEntryOn, Due: due("anchor-45d"),
		Moot: Moot{PlannedEntryOn, MootEntryPassed},
		Steps: ladder(
			row("due-14d", "email", "", ""),
			row("due-3d", "email, sms", "", ""),
			row("due+1d", "email, sms", "digest", ""),
		),
	},
	{
		ID: ArrivalCheckIn, Title: "passport and migration card to the office within 1 working day",
		Subject: OnStudent, Statuses: statuses(Applicant, Active),
		Scope:  conds(set(EnteredOn)),
		Done:   conds(onOrAfter(OfficeCheckInOn, EnteredOn)),
		Anchor: EnteredOn, Due: due("anchor+1wd"),
		Steps: ladder(
			row("anchor", "email, sms", "", ""),
			row("due+1d", "email, sms", "digest", ""),
		),
	},
	{
		ID: Registration, Title: "migration registration within 3 calendar days of entry",
		Subject: OnStudent, Statuses: statuses(Applicant, Active, OnLeave),
		Scope:  conds(set(EnteredOn)),
		Done:   conds(onOrAfter(RegisteredOn, EnteredOn)),
		Anchor: EnteredOn, Due: dueByRegime("anchor+3d"), // configurable per visa regime, in d or wd
		Steps: ladder(
			row("anchor", "email, sms", "digest", ""),
			row("due-1d", "sms", "urgent, digest", ""),
			row("due+1d", "email, sms", "urgent, digest", "digest"),
		),
	},
	{
		ID: StayExtension, Title: "ask for an extension or RVP 30 days before the stay ends",
		Subject: OnStudent, Statuses: inCountry,
		Scope:  conds(set(RegistrationExpiresOn)),
		Done:   conds(onOrAfterWindow(ExtensionRequestedOn, RegistrationExpiresOn)), // window 90d
		Anchor: RegistrationExpiresOn, Due: due("anchor-30d"), Window: days(90),
		Steps: ladder(
			row("due-14d", "email", "", ""),
			row("due", "email, sms", "", ""),
			row("due+1d", "email", "digest", ""),
			row("anchor-7d", "email, sms", "digest", "digest"),
			row("anchor", "email, sms", "urgent, digest", "digest"),
		),
	},
	{
		ID: PassportRenewal, Title: "renew the passport 6 months before it expires",
		Subject: OnStudent, Statuses: statuses(Applicant, Active, OnLeave),
		Scope:  conds(set(PassportExpiresOn)),
		Done:   nil, // never by itself: a new passport is a new anchor
		Anchor: PassportExpiresOn, Due: due("anchor-6m"),
		Steps: ladder(
			row("due-30d", "email", "", ""),
			row("due", "email, sms", "", ""),
			row("due+30d, repeat 30d", "email", "digest", ""),
			row("anchor-30d", "email, sms", "digest", "digest"),
			row("anchor", "email, sms", "urgent, digest", "digest"),
		),
	},
	{
		ID: TravelLateNotice, Title: "trips must be notified 3 days before departure",
		Subject: OnTravel, Statuses: inCountry,
		Scope:  conds(afterWindow(SubmittedOn, DepartureOn), notSet(DepartedOn)), // window 3d
		Done:   nil,
		Anchor: SubmittedOn, Due: due("departure"), Window: days(3),
		Moot: departurePassed,
		Steps: ladder(
			row("anchor", "email", "digest", ""),
		),
	},
	{
		ID: TravelDeanApproval, Title: "term-time trips need the dean's permission",
		Subject: OnTravel, Statuses: inCountry, Kinds: kinds(Term),
		Scope:  conds(deanDecision(Pending)),
		Done:   conds(deanDecision(Approved, Rejected)),
		Anchor: SubmittedOn, Due: due("departure-3d"),
		Moot: departurePassed,
		Steps: ladder(
			row("anchor", "", "", "email"),
			row("due-1d", "", "digest", "email"),
			row("due+3d", "email", "urgent, digest", "email"), // the departure day
		),
	},
	{
		ID: TermTravelLimit, Title: "at most one term-time trip per semester",
		Subject: OnTravel, Statuses: inCountry, Kinds: kinds(Term),
		Scope:  conds(deanDecisionNot(Rejected), earlierTermTripSameSemester(), notSet(DepartedOn)),
		Done:   nil,
		Anchor: SubmittedOn, Due: due("departure"),
		Moot: departurePassed,
		Steps: ladder(
			row("anchor", "", "digest", "email"),
		),
	},
	{
		ID: ExitVisa, Title: "an entry-exit visa before leaving for the break",
		Subject: OnTravel, Statuses: inCountry, Kinds: kinds(Vacation), Regimes: regimes(Visa),
		Scope:  conds(notSet(DepartedOn)),
		Done:   conds(exitVisaReady()),
		Anchor: DepartureOn, Due: due("anchor"),
		Moot: departurePassed,
		Steps: ladder(
			row("due-21d", "email", "", ""),
			row("due-7d", "email, sms", "digest", ""),
			row("due-2d", "sms", "urgent, digest", ""),
		),
	},
	{
		ID: ReturnCheckIn, Title: "passport to the office after coming back",
		Subject: OnTravel, Statuses: inCountry,
		Scope:  conds(set(ReturnedOn)),
		Done:   conds(onOrAfter(ReturnCheckInOn, ReturnedOn)),
		Anchor: ReturnedOn, Due: dueByKind("anchor+3wd", "anchor+1d"), // vacation, term
		Steps: ladder(
			row("anchor", "email, sms", "", ""),
			row("due+1d", "email, sms", "digest", ""),
			row("due+3d", "email", "urgent, digest", "digest"),
		),
	},
	{
		ID: AddressRegistration, Title: "a new address re-registered within 2 days",
		Subject: OnStudent, Statuses: inCountry,
		Scope:  conds(set(MovedOn)),
		Done:   conds(onOrAfter(AddressRegisteredOn, MovedOn)),
		Anchor: MovedOn, Due: due("anchor+2d"),
		Steps: ladder(
			row("anchor", "", "digest", ""),
			row("due", "email", "urgent, digest", ""),
			row("due+3d", "email", "digest", "digest"),
		),
	},
	{
		ID: BreakBriefing, Title: "what to do before a winter or summer break",
		Subject: OnBreak, Statuses: statuses(Active), Periods: periods(WinterBreak, SummerBreak),
		Scope:  conds(breakNotStarted()),
		Done:   nil,
		Anchor: StartsOn, Due: due("anchor"),
		Steps: ladder(
			row("due-21d", "email", "", ""),
		),
	},
	{
		ID: Welcome, Title: "what every student must know on arrival",
		Subject: OnStudent, Statuses: statuses(Applicant, Active),
		Scope:  conds(set(EnteredOn), recent(EnteredOn)), // window 30d
		Done:   nil,                                      // one step, sent once
		Anchor: EnteredOn, Due: due("anchor"), Window: days(30),
		Steps: ladder(
			row("anchor", "email", "", ""),
		),
	},
	{
		ID: DocumentLoss, Title: "lost documents reported",
		Subject: OnReport, Statuses: statuses(Applicant, Active, OnLeave), Reports: ReportLostDocuments,
		Done:   nil, // the office closes it in the console
		Anchor: ReportedOn, Due: due("anchor"),
		Steps: ladder(
			row("anchor", "email", "urgent, digest", "digest"),
			row("anchor+3wd", "email", "digest", "digest"),
		),
	},
	{
		ID: StatusChange, Title: "a new residence status to record",
		Subject: OnReport, Statuses: statuses(Applicant, Active, OnLeave), Reports: ReportStatusChanged,
		Done:   nil, // the office closes it in the console
		Anchor: ReportedOn, Due: due("anchor"),
		Steps: ladder(
			row("anchor", "", "urgent, digest", ""),
			row("anchor+5wd", "", "digest", ""),
		),
	},
}

// Defaults returns a fresh copy of the built-in catalog, in docs/rules.md order.
func Defaults() []Rule {
	out := make([]Rule, len(catalog))
	for i := range catalog {
		out[i] = catalog[i].Clone()
	}
	return out
}

// IDs returns the rule ids in catalog order.
func IDs() []ID {
	out := make([]ID, len(catalog))
	for i := range catalog {
		out[i] = catalog[i].ID
	}
	return out
}

// Lookup returns a copy of the built-in rule id.
func Lookup(id ID) (Rule, bool) {
	for i := range catalog {
		if catalog[i].ID == id {
			return catalog[i].Clone(), true
		}
	}
	return Rule{}, false
}

// The declaration helpers below panic on a malformed literal: the catalog
// is constant and TestCatalog builds it.

func conds(c ...Cond) []Cond { return c }

func days(n int) Offset { return Offset{N: n, Unit: Days} }

func due(s string) Due {
	e, err := ParseExpr(s, BaseAnchor, BaseDeparture)
	if err != nil {
		panic(err)
	}
	return Due{Expr: e}
}

func dueByRegime(s string) Due {
	d := due(s)
	d.By = ByRegime
	for i := range d.PerRegime {
		d.PerRegime[i] = d.Expr
	}
	return d
}

func dueByKind(vacation, term string) Due {
	d := Due{By: ByKind}
	d.PerKind[Vacation] = due(vacation).Expr
	d.PerKind[Term] = due(term).Expr
	d.Expr = d.PerKind[Vacation]
	return d
}

func ladder(steps ...Step) []Step { return steps }

// row is one line of a docs/rules.md ladder table: the step's date (with an
// optional ", repeat Nd") and the channels of each audience.
func row(at, student, office, dean string) Step {
	var s Step
	expr, repeat, hasRepeat := strings.Cut(at, ", repeat ")
	e, err := ParseExpr(expr, BaseAnchor, BaseDue)
	if err != nil {
		panic(err)
	}
	s.At = e
	if hasRepeat {
		o, err := ParseOffset(repeat)
		if err != nil || o.Unit != Days || o.N == 0 {
			panic(fmt.Sprintf("row %q: bad repeat", at))
		}
		s.Repeat = o.N
	}
	for i, cell := range []string{student, office, dean} {
		for w := range strings.SplitSeq(cell, ",") {
			if w = strings.TrimSpace(w); w == "" {
				continue
			}
			a, err := ParseAction(audienceWords[i], w)
			if err != nil {
				panic(err)
			}
			s.Actions |= a
		}
	}
	return s
}

// KnownIDs is IDs as strings, for messages.
func KnownIDs() []string {
	ids := IDs()
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = string(id)
	}
	return out
}
