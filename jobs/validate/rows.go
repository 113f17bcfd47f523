package validate

import (
	"time"

	"github.com/iec-almaty/sisnotify/integrations/sis"
	"github.com/iec-almaty/sisnotify/jobs/date"
)

// The codes of the reference schema.
var (
	Languages   = []string{"en", "ru", "kk"}
	Regimes     = []string{"visa", "visa_free", "eaeu"}
	Statuses    = []string{"applicant", "active", "on_leave", "graduated", "withdrawn", "expelled"}
	TravelKinds = []string{"vacation", "term"}
	Decisions   = []string{"not_required", "pending", "approved", "rejected"}
	PeriodKinds = []string{"semester", "winter_break", "summer_break"}
)

// Student is a sis.students row as the worker keeps it. Empty strings and
// zero dates are NULL.
type Student struct {
	ID, GivenName, FamilyName                   string
	Email, Phone, Language, Citizenship, Regime string
	FacultyID, Status, PassportNumber           string
	PassportExpiresOn, PlannedEntryOn           date.Date
	InvitationDocsOn, EnteredOn                 date.Date
	OfficeCheckInOn, RegisteredOn               date.Date
	RegistrationExpiresOn, ExtensionRequestedOn date.Date
	MovedOn, AddressRegisteredOn                date.Date
	UpdatedAt                                   time.Time // zero for none
}

// inScopeStatuses are the statuses some rule applies to; a missing faculty
// matters only for them.
func inScope(status string) bool {
	return status == "applicant" || status == "active" || status == "on_leave"
}

// Student validates one row of sis.Students into s and appends its problems.
// The id has been checked by the caller.
func (c *Checker) Student(r *sis.Row, s *Student, p []Problem) []Problem {
	s.ID = r.String(sis.StudentID)
	s.GivenName, p = Text("given_name", r.Bytes(sis.StudentGivenName), p)
	s.FamilyName, p = Text("family_name", r.Bytes(sis.StudentFamilyName), p)
	if s.GivenName == "" && s.FamilyName == "" {
		p = append(p, Problem{"family_name", CodeMissing, Warning, "no name"})
	}
	s.Email, p = Email("email", r.Bytes(sis.StudentEmail), r.Null(sis.StudentEmail), p)
	s.Phone, p = Phone("phone", r.Bytes(sis.StudentPhone), r.Null(sis.StudentPhone), p)
	s.Language, p = Code("preferred_language", r.Bytes(sis.StudentPreferredLanguage), r.Null(sis.StudentPreferredLanguage), Languages, Warning, p)
	s.Citizenship = ""
	if !r.Null(sis.StudentCitizenship) {
		cc := r.Bytes(sis.StudentCitizenship)
		if len(cc) == 2 && cc[0] >= 'A' && cc[0] <= 'Z' && cc[1] >= 'A' && cc[1] <= 'Z' {
			s.Citizenship = string(cc)
		} else {
			p = append(p, Problem{"citizenship", CodeUnknownCode, Warning, "not an ISO 3166-1 alpha-2 code; ignored"})
		}
	}
	s.Regime, p = Code("visa_regime", r.Bytes(sis.StudentVisaRegime), r.Null(sis.StudentVisaRegime), Regimes, Error, p)
	s.Status, p = Code("enrollment_status", r.Bytes(sis.StudentEnrollmentStatus), r.Null(sis.StudentEnrollmentStatus), Statuses, Error, p)
	if r.Null(sis.StudentVisaRegime) {
		p = append(p, Problem{"visa_regime", CodeMissing, Error, "no visa regime"})
	}
	if r.Null(sis.StudentEnrollmentStatus) {
		p = append(p, Problem{"enrollment_status", CodeMissing, Error, "no enrollment status: no rule applies"})
	}
	s.FacultyID = ""
	if !r.Null(sis.StudentFacultyID) {
		s.FacultyID, p = Text("faculty_id", r.Bytes(sis.StudentFacultyID), p)
	}
	if s.FacultyID == "" && inScope(s.Status) {
		p = append(p, Problem{"faculty_id", CodeNoFaculty, Warning, "no faculty: no dean to escalate to"})
	}
	s.PassportNumber = ""
	if !r.Null(sis.StudentPassportNumber) {
		s.PassportNumber, p = Text("passport_number", r.Bytes(sis.StudentPassportNumber), p)
	}
	s.PassportExpiresOn, p = c.Date("passport_expires_on", r.Bytes(sis.StudentPassportExpiresOn), r.Null(sis.StudentPassportExpiresOn), p)
	s.PlannedEntryOn, p = c.Date("planned_entry_on", r.Bytes(sis.StudentPlannedEntryOn), r.Null(sis.StudentPlannedEntryOn), p)
	s.InvitationDocsOn, p = c.Date("invitation_docs_on", r.Bytes(sis.StudentInvitationDocsOn), r.Null(sis.StudentInvitationDocsOn), p)
	s.EnteredOn, p = c.Date("entered_on", r.Bytes(sis.StudentEnteredOn), r.Null(sis.StudentEnteredOn), p)
	s.OfficeCheckInOn, p = c.Date("office_check_in_on", r.Bytes(sis.StudentOfficeCheckInOn), r.Null(sis.StudentOfficeCheckInOn), p)
	s.RegisteredOn, p = c.Date("registered_on", r.Bytes(sis.StudentRegisteredOn), r.Null(sis.StudentRegisteredOn), p)
	s.RegistrationExpiresOn, p = c.Date("registration_expires_on", r.Bytes(sis.StudentRegistrationExpiresOn), r.Null(sis.StudentRegistrationExpiresOn), p)
	s.ExtensionRequestedOn, p = c.Date("extension_requested_on", r.Bytes(sis.StudentExtensionRequestedOn), r.Null(sis.StudentExtensionRequestedOn), p)
	s.MovedOn, p = c.Date("moved_on", r.Bytes(sis.StudentMovedOn), r.Null(sis.StudentMovedOn), p)
	s.AddressRegisteredOn, p = c.Date("address_registered_on", r.Bytes(sis.StudentAddressRegisteredOn), r.Null(sis.StudentAddressRegisteredOn), p)
	// The stay cannot end before it was registered, nor before the entry
	// that started it.
	p = after("registration_expires_on", &s.RegistrationExpiresOn, "registered_on", s.RegisteredOn, p)
	p = after("registration_expires_on", &s.RegistrationExpiresOn, "entered_on", s.EnteredOn, p)
	s.UpdatedAt, p = Timestamp("updated_at", r.Bytes(sis.StudentUpdatedAt), r.Null(sis.StudentUpdatedAt), p)
	return p
}

// Travel is a sis.travel_requests row as the worker keeps it.
type Travel struct {
	ID, StudentID, Kind, DeanDecision  string
	SubmittedOn, DepartureOn, ReturnOn date.Date
	DepartedOn, ReturnedOn             date.Date
	ReturnCheckInOn                    date.Date
	ExitVisaReady, ExitVisaKnown       bool
	Cancelled                          bool
	UpdatedAt                          time.Time // zero for none
	// Reason is the student's stated reason for the trip, cleaned as free
	// text; "" when the SIS has none (NULL or blank).
	Reason string
}

// Travel validates one row of sis.TravelRequests into t.
func (c *Checker) Travel(r *sis.Row, t *Travel, p []Problem) []Problem {
	t.ID = r.String(sis.TravelRequestID)
	t.StudentID = r.String(sis.TravelStudentID)
	if t.StudentID == "" {
		p = append(p, Problem{"student_id", CodeMissing, Error, "no student id"})
	}
	t.Kind, p = Code("kind", r.Bytes(sis.TravelKind), r.Null(sis.TravelKind), TravelKinds, Error, p)
	t.DeanDecision, p = Code("dean_decision", r.Bytes(sis.TravelDeanDecision), r.Null(sis.TravelDeanDecision), Decisions, Error, p)
	t.Reason, p = Text("reason", r.Bytes(sis.TravelReason), p)
	t.SubmittedOn, p = c.Date("submitted_on", r.Bytes(sis.TravelSubmittedOn), r.Null(sis.TravelSubmittedOn), p)
	t.DepartureOn, p = c.Date("departure_on", r.Bytes(sis.TravelDepartureOn), r.Null(sis.TravelDepartureOn), p)
	if r.Null(sis.TravelSubmittedOn) {
		p = append(p, Problem{"submitted_on", CodeMissing, Error, "no submission date"})
	}
	if r.Null(sis.TravelDepartureOn) {
		p = append(p, Problem{"departure_on", CodeMissing, Error, "no departure date"})
	}
	t.ReturnOn, p = c.Date("return_on", r.Bytes(sis.TravelReturnOn), r.Null(sis.TravelReturnOn), p)
	t.DepartedOn, p = c.Date("departed_on", r.Bytes(sis.TravelDepartedOn), r.Null(sis.TravelDepartedOn), p)
	t.ReturnedOn, p = c.Date("returned_on", r.Bytes(sis.TravelReturnedOn), r.Null(sis.TravelReturnedOn), p)
	t.ReturnCheckInOn, p = c.Date("return_check_in_on", r.Bytes(sis.TravelReturnCheckInOn), r.Null(sis.TravelReturnCheckInOn), p)
	p = after("return_on", &t.ReturnOn, "departure_on", t.DepartureOn, p)
	p = after("returned_on", &t.ReturnedOn, "departed_on", t.DepartedOn, p)
	t.ExitVisaReady, t.ExitVisaKnown, p = Bool("exit_visa_ready", r.Bytes(sis.TravelExitVisaReady), r.Null(sis.TravelExitVisaReady), p)
	var known bool
	t.Cancelled, known, p = Bool("cancelled", r.Bytes(sis.TravelCancelled), r.Null(sis.TravelCancelled), p)
	if !known && r.Null(sis.TravelCancelled) {
		p = append(p, Problem{"cancelled", CodeMissing, Warning, "unknown; treated as not cancelled"})
	}
	t.UpdatedAt, p = Timestamp("updated_at", r.Bytes(sis.TravelUpdatedAt), r.Null(sis.TravelUpdatedAt), p)
	return p
}

// Faculty is a sis.faculties row as the worker keeps it.
type Faculty struct {
	ID, Name, DeanName, DeanEmail, DeanLanguage string
}

// Faculty validates one row of sis.Faculties.
func (c *Checker) Faculty(r *sis.Row, f *Faculty, p []Problem) []Problem {
	f.ID = r.String(sis.FacultyID)
	f.Name, p = Text("name", r.Bytes(sis.FacultyName), p)
	f.DeanName, p = Text("dean_name", r.Bytes(sis.FacultyDeanName), p)
	f.DeanEmail = ""
	if r.Null(sis.FacultyDeanEmail) {
		p = append(p, Problem{"dean_email", CodeMissing, Error, "no dean email: dean notices and digests cannot be sent"})
	} else if s := string(r.Bytes(sis.FacultyDeanEmail)); IsEmail(s) {
		f.DeanEmail = s
	} else {
		p = append(p, Problem{"dean_email", CodeMalformedEmail, Error, "malformed dean email: dean notices and digests cannot be sent"})
	}
	f.DeanLanguage, p = Code("dean_language", r.Bytes(sis.FacultyDeanLanguage), r.Null(sis.FacultyDeanLanguage), Languages, Warning, p)
	return p
}

// Period is a sis.academic_periods row as the worker keeps it.
type Period struct {
	ID, Kind         string
	StartsOn, EndsOn date.Date
}

// Period validates one row of sis.AcademicPeriods.
func (c *Checker) Period(r *sis.Row, per *Period, p []Problem) []Problem {
	per.ID = r.String(sis.PeriodID)
	per.Kind, p = Code("kind", r.Bytes(sis.PeriodKind), r.Null(sis.PeriodKind), PeriodKinds, Error, p)
	per.StartsOn, p = c.Date("starts_on", r.Bytes(sis.PeriodStartsOn), r.Null(sis.PeriodStartsOn), p)
	per.EndsOn, p = c.Date("ends_on", r.Bytes(sis.PeriodEndsOn), r.Null(sis.PeriodEndsOn), p)
	p = after("ends_on", &per.EndsOn, "starts_on", per.StartsOn, p)
	return p
}
