package rules

import (
	"strconv"
	"strings"

	"github.com/iec-almaty/sisnotify/jobs/date"
)

// Status is sis.students.enrollment_status. StatusUnknown (an empty or
// unrecognised code) is out of every rule's scope.
type Status uint8

const (
	StatusUnknown Status = iota
	Applicant
	Active
	OnLeave
	Graduated
	Withdrawn
	Expelled
)

var statusNames = [...]string{"", "applicant", "active", "on_leave", "graduated", "withdrawn", "expelled"}

func (s Status) String() string { return nameOf(statusNames[:], s) }

// ParseStatus maps an SIS code (case and surrounding spaces ignored);
// anything else is StatusUnknown.
func ParseStatus(code string) Status { return parseCode[Status](statusNames[:], code) }

// Regime is sis.students.visa_regime. RegimeUnknown (empty or unrecognised)
// makes the rules that need a regime (visa-invitation, exit-visa) not apply.
type Regime uint8

const (
	RegimeUnknown Regime = iota
	Visa                 // citizen of a distant country on a student visa
	VisaFree             // entered under a visa-free regime
	EAEU                 // citizen of a Eurasian Economic Union state
	numRegimes
)

var regimeNames = [...]string{"", "visa", "visa_free", "eaeu"}

func (r Regime) String() string { return nameOf(regimeNames[:], r) }

// ParseRegime maps an SIS code; anything else is RegimeUnknown.
func ParseRegime(code string) Regime { return parseCode[Regime](regimeNames[:], code) }

// Language is a preferred_language or dean_language code.
type Language uint8

const (
	LanguageUnknown Language = iota
	English
	Russian
	Kazakh
)

var languageNames = [...]string{"", "en", "ru", "kk"}

func (l Language) String() string { return nameOf(languageNames[:], l) }

// ParseLanguage maps en, ru, kk; anything else is LanguageUnknown.
func ParseLanguage(code string) Language { return parseCode[Language](languageNames[:], code) }

// TravelKind is sis.travel_requests.kind.
type TravelKind uint8

const (
	KindUnknown TravelKind = iota
	Vacation
	Term
	numKinds
)

var kindNames = [...]string{"", "vacation", "term"}

func (k TravelKind) String() string { return nameOf(kindNames[:], k) }

// ParseTravelKind maps vacation and term; anything else is KindUnknown
// (only travel-late-notice, which applies to every trip, still applies).
func ParseTravelKind(code string) TravelKind { return parseCode[TravelKind](kindNames[:], code) }

// Decision is sis.travel_requests.dean_decision.
type Decision uint8

const (
	DecisionUnknown Decision = iota
	NotRequired
	Pending
	Approved
	Rejected
)

var decisionNames = [...]string{"", "not_required", "pending", "approved", "rejected"}

func (d Decision) String() string { return nameOf(decisionNames[:], d) }

// ParseDecision maps an SIS code; anything else is DecisionUnknown, which
// neither travel-dean-approval nor term-travel-limit acts on.
func ParseDecision(code string) Decision { return parseCode[Decision](decisionNames[:], code) }

// Tri is a nullable boolean.
type Tri uint8

const (
	TriUnknown Tri = iota // NULL
	TriFalse
	TriTrue
)

// TriOf converts a nullable boolean column (valid false = NULL).
func TriOf(valid, v bool) Tri {
	switch {
	case !valid:
		return TriUnknown
	case v:
		return TriTrue
	}
	return TriFalse
}

func (t Tri) String() string { return [...]string{"unknown", "false", "true"}[t%3] }

// PeriodKind is sis.academic_periods.kind.
type PeriodKind uint8

const (
	PeriodUnknown PeriodKind = iota
	Semester
	WinterBreak
	SummerBreak
)

var periodNames = [...]string{"", "semester", "winter_break", "summer_break"}

func (k PeriodKind) String() string { return nameOf(periodNames[:], k) }

// ParsePeriodKind maps an SIS code; anything else is PeriodUnknown (ignored).
func ParsePeriodKind(code string) PeriodKind { return parseCode[PeriodKind](periodNames[:], code) }

func nameOf[T ~uint8](names []string, v T) string {
	if int(v) < len(names) && v != 0 {
		return names[v]
	}
	return "unknown"
}

func parseCode[T ~uint8](names []string, code string) T {
	code = strings.TrimSpace(code)
	for i := 1; i < len(names); i++ {
		if strings.EqualFold(code, names[i]) {
			return T(i)
		}
	}
	return 0
}

// Student is one row of sis.students as the rules see it. A zero date is a
// NULL (or unreadable) column.
type Student struct {
	ID        string
	FacultyID string
	Status    Status
	Regime    Regime
	Language  Language
	HasEmail  bool // a usable email address is on file
	HasPhone  bool // a usable phone number is on file

	PassportExpiresOn     date.Date
	PlannedEntryOn        date.Date
	InvitationDocsOn      date.Date
	EnteredOn             date.Date
	OfficeCheckInOn       date.Date
	RegisteredOn          date.Date
	RegistrationExpiresOn date.Date
	ExtensionRequestedOn  date.Date
	MovedOn               date.Date
	AddressRegisteredOn   date.Date

	// Reports are the student's open reports from the student page that
	// the rules act on (lost documents, status changed): each is the
	// subject of an OnReport rule. The evaluation also folds an
	// address-changed report into MovedOn before the engine sees it.
	Reports []Report
}

// ReportKind is sisnotify.student_reports.kind.
type ReportKind uint8

const (
	ReportUnknown ReportKind = iota
	ReportDone
	ReportLostDocuments
	ReportAddressChanged
	ReportStatusChanged
)

var reportKindNames = [...]string{"", "done", "lost-documents", "address-changed", "status-changed"}

func (k ReportKind) String() string { return nameOf(reportKindNames[:], k) }

// ParseReportKind maps a kind of sisnotify.student_reports; anything else
// is ReportUnknown, which no rule acts on.
func ParseReportKind(code string) ReportKind { return parseCode[ReportKind](reportKindNames[:], code) }

// Report is one open report of a student, as the rules see it. Its
// subject id is "R" and the report id.
type Report struct {
	ID         int64
	Kind       ReportKind
	ReportedOn date.Date
}

// SubjectID is the report's subject id: "R" and its id.
func (r *Report) SubjectID() string { return "R" + strconv.FormatInt(r.ID, 10) }

// Travel is one row of sis.travel_requests.
type Travel struct {
	ID              string
	StudentID       string
	Kind            TravelKind
	SubmittedOn     date.Date
	DepartureOn     date.Date
	ReturnOn        date.Date // planned
	DepartedOn      date.Date
	ReturnedOn      date.Date
	ReturnCheckInOn date.Date
	DeanDecision    Decision
	ExitVisaReady   Tri
	Cancelled       bool
}

// Period is one row of sis.academic_periods.
type Period struct {
	ID       string
	Kind     PeriodKind
	StartsOn date.Date
	EndsOn   date.Date
}
