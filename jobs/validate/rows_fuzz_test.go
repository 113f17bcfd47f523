package validate

// Fuzz targets of the row validators. A row comes from the fuzzer as one
// byte string whose columns are separated by 0x1F (the ASCII unit
// separator) and a bit mask of NULL columns; missing columns are NULL. The
// rows are built with sis.NewRow, as the COPY decoder would hand them over.

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/iec-almaty/sisnotify/integrations/sis"
	"github.com/iec-almaty/sisnotify/jobs/date"
)

const colSep = "\x1f"

// rowValues splits data into n columns; column i is NULL when bit i of
// nulls is set or data has fewer columns.
func rowValues(n int, data []byte, nulls uint32) [][]byte {
	parts := bytes.Split(data, []byte(colSep))
	vals := make([][]byte, n)
	for i := range vals {
		if i < len(parts) && nulls&(1<<i) == 0 {
			vals[i] = append([]byte{}, parts[i]...) // non-nil: not NULL
		}
	}
	return vals
}

// joinRow is the inverse of rowValues for seeds.
func joinRow(cols ...string) []byte { return []byte(strings.Join(cols, colSep)) }

// withStandIn returns vals with every column of cols set to v.
func withStandIn(vals [][]byte, cols []int, v []byte) [][]byte {
	out := slices.Clone(vals)
	for _, i := range cols {
		out[i] = v
	}
	return out
}

// checkDate checks a kept date: unset, or within FarYears of the as-of date.
func checkDate(t *testing.T, field string, d date.Date) {
	t.Helper()
	if d != 0 && (d < fuzzAsOf.AddMonths(-12*FarYears) || d > fuzzAsOf.AddMonths(12*FarYears)) {
		t.Errorf("%s = %s: more than %d years from %s", field, d, FarYears, fuzzAsOf)
	}
}

// checkText checks a kept name or free text.
func checkText(t *testing.T, field, s string) {
	t.Helper()
	if !utf8.ValidString(s) || strings.ContainsFunc(s, unicode.IsControl) || s != strings.TrimSpace(s) ||
		utf8.RuneCountInString(s) > MaxText {
		t.Errorf("%s = %q: not clean text", field, s)
	}
}

func checkCode(t *testing.T, field, s string, allowed []string) {
	t.Helper()
	if s != "" && !slices.Contains(allowed, s) {
		t.Errorf("%s = %q: not one of %v", field, s, allowed)
	}
}

// studentPersonal are the personal columns of a student: names, contacts,
// passport. No problem may repeat their values.
var studentPersonal = []int{sis.StudentGivenName, sis.StudentFamilyName, sis.StudentEmail, sis.StudentPhone, sis.StudentPassportNumber}

func FuzzStudent(f *testing.F) {
	good := []string{"S0001", "Anna", "Ivanova", "anna@example.kz", "+77012345678", "ru", "UZ", "visa", "F1", "active",
		"N1234567", "2030-01-01", "2026-08-20", "2026-07-01", "2026-08-25", "2026-08-26", "2026-08-27", "2026-11-25",
		"", "", "", "2026-08-27 10:00:00+05"}
	f.Add(joinRow(good...), uint32(0))
	f.Add(joinRow(good...), uint32(0b0000_0000_0000_0011_1111_1111_1111_1110)) // only the id
	bad := slices.Clone(good)
	bad[1], bad[2] = "Anna\r\nBcc: x@y.zz", strings.Repeat("Ivanova", 40)
	bad[3], bad[4] = "anna.at.example.kz", "8 (701) 234-56-78"
	bad[5], bad[6], bad[7], bad[9] = " RU ", "uzb", "student_visa", "enrolled"
	bad[10] = "N123\x004567"
	bad[11], bad[12], bad[16], bad[17] = "2030-02-30", "3026-01-01", "2026-09-10", "2026-09-01"
	bad[21] = "yesterday"
	f.Add(joinRow(bad...), uint32(0))
	noisy := slices.Clone(good)
	noisy[1], noisy[2], noisy[3], noisy[4], noisy[10] = "visa", "active", "email", "phone", "notices"
	noisy[7], noisy[9] = "Ivan", "Petrov"
	f.Add(joinRow(noisy...), uint32(0))
	f.Fuzz(func(t *testing.T, data []byte, nulls uint32) {
		vals := rowValues(len(sis.Students.Columns), data, nulls)
		c := NewChecker(fuzzAsOf)
		run := func(vals [][]byte) (Student, []Problem) {
			var s Student
			return s, c.Student(sis.NewRow(vals...), &s, nil)
		}
		s, ps := run(vals)
		checkProblems(t, sis.Students.Columns, ps)

		// No personal value is repeated in a problem, raw or cleaned.
		wording := wordingOf(func(v []byte) []Problem { _, p := run(withStandIn(vals, studentPersonal, v)); return p })
		for _, i := range studentPersonal {
			checkNotQuoted(t, sis.Students.Columns[i], string(vals[i]), ps, wording)
			checkNotQuoted(t, sis.Students.Columns[i], strings.TrimSpace(string(vals[i])), ps, wording)
		}
		for _, v := range []string{s.GivenName, s.FamilyName, s.Email, s.Phone, s.PassportNumber} {
			checkNotQuoted(t, "cleaned personal value", v, ps, wording)
		}

		if s.ID != string(vals[sis.StudentID]) {
			t.Errorf("id %q, want %q", s.ID, vals[sis.StudentID])
		}
		for field, v := range map[string]string{"given_name": s.GivenName, "family_name": s.FamilyName,
			"faculty_id": s.FacultyID, "passport_number": s.PassportNumber} {
			checkText(t, field, v)
		}
		if s.Email != "" {
			checkEmail(t, s.Email)
		}
		if s.Phone != "" {
			checkE164(t, s.Phone)
		}
		checkCode(t, "preferred_language", s.Language, Languages)
		checkCode(t, "visa_regime", s.Regime, Regimes)
		checkCode(t, "enrollment_status", s.Status, Statuses)
		if cc := s.Citizenship; cc != "" && (len(cc) != 2 || cc[0] < 'A' || cc[0] > 'Z' || cc[1] < 'A' || cc[1] > 'Z') {
			t.Errorf("citizenship %q", cc)
		}
		for field, d := range map[string]date.Date{
			"passport_expires_on": s.PassportExpiresOn, "planned_entry_on": s.PlannedEntryOn,
			"invitation_docs_on": s.InvitationDocsOn, "entered_on": s.EnteredOn, "office_check_in_on": s.OfficeCheckInOn,
			"registered_on": s.RegisteredOn, "registration_expires_on": s.RegistrationExpiresOn,
			"extension_requested_on": s.ExtensionRequestedOn, "moved_on": s.MovedOn,
			"address_registered_on": s.AddressRegisteredOn,
		} {
			checkDate(t, field, d)
		}
		if e := s.RegistrationExpiresOn; e != 0 && (e < s.RegisteredOn || e < s.EnteredOn) {
			t.Errorf("registration expires %s before registered %s or entered %s", e, s.RegisteredOn, s.EnteredOn)
		}
		checkTimestamp(t, s.UpdatedAt, vals[sis.StudentUpdatedAt])
	})
}

func FuzzTravel(f *testing.F) {
	good := []string{"T1", "S0001", "vacation", "2026-06-01", "2026-06-20", "2026-08-20", "not_required", "t",
		"2026-06-20", "2026-08-19", "2026-08-21", "f", "2026-08-21 09:00:00.123456+05"}
	f.Add(joinRow(good...), uint32(0))
	f.Add(joinRow(good...), uint32(0xffff))
	bad := slices.Clone(good)
	bad[1], bad[2], bad[3], bad[5], bad[6], bad[7] = "", "Term", "2026-06-31", "2026-06-19", "maybe", "TRUE"
	bad[9], bad[11], bad[12] = "2026-06-01", "2", "2026-08-21T09:00:00Z"
	f.Add(joinRow(bad...), uint32(0))
	f.Fuzz(func(t *testing.T, data []byte, nulls uint32) {
		vals := rowValues(len(sis.TravelRequests.Columns), data, nulls)
		var tr Travel
		ps := NewChecker(fuzzAsOf).Travel(sis.NewRow(vals...), &tr, nil)
		checkProblems(t, sis.TravelRequests.Columns, ps)
		if tr.ID != string(vals[sis.TravelRequestID]) || tr.StudentID != string(vals[sis.TravelStudentID]) {
			t.Errorf("ids %q %q", tr.ID, tr.StudentID)
		}
		checkCode(t, "kind", tr.Kind, TravelKinds)
		checkCode(t, "dean_decision", tr.DeanDecision, Decisions)
		for field, d := range map[string]date.Date{"submitted_on": tr.SubmittedOn, "departure_on": tr.DepartureOn,
			"return_on": tr.ReturnOn, "departed_on": tr.DepartedOn, "returned_on": tr.ReturnedOn,
			"return_check_in_on": tr.ReturnCheckInOn} {
			checkDate(t, field, d)
		}
		if tr.ReturnOn != 0 && tr.ReturnOn < tr.DepartureOn || tr.ReturnedOn != 0 && tr.ReturnedOn < tr.DepartedOn {
			t.Errorf("return before departure: %+v", tr)
		}
		if tr.ExitVisaReady && !tr.ExitVisaKnown {
			t.Errorf("exit visa ready but unknown")
		}
		checkTimestamp(t, tr.UpdatedAt, vals[sis.TravelUpdatedAt])
	})
}

// facultyPersonal are the dean's name and address.
var facultyPersonal = []int{sis.FacultyDeanName, sis.FacultyDeanEmail}

func FuzzFaculty(f *testing.F) {
	f.Add(joinRow("F1", "Faculty of Law", "Aigerim Nurlanovna", "dean.law@example.kz", "kk"), uint32(0))
	f.Add(joinRow("F2", "", "", " dean@example.kz", "KK"), uint32(0))
	f.Add(joinRow("F3", "Physics\tand\nMaths", "Dean\x00Name", "dean at example", "de"), uint32(0))
	f.Add(joinRow("F4"), uint32(0))
	f.Fuzz(func(t *testing.T, data []byte, nulls uint32) {
		vals := rowValues(len(sis.Faculties.Columns), data, nulls)
		c := NewChecker(fuzzAsOf)
		run := func(vals [][]byte) (Faculty, []Problem) {
			var fa Faculty
			return fa, c.Faculty(sis.NewRow(vals...), &fa, nil)
		}
		fa, ps := run(vals)
		checkProblems(t, sis.Faculties.Columns, ps)
		wording := wordingOf(func(v []byte) []Problem { _, p := run(withStandIn(vals, facultyPersonal, v)); return p })
		for _, i := range facultyPersonal {
			checkNotQuoted(t, sis.Faculties.Columns[i], string(vals[i]), ps, wording)
			checkNotQuoted(t, sis.Faculties.Columns[i], strings.TrimSpace(string(vals[i])), ps, wording)
		}
		checkNotQuoted(t, "cleaned dean name", fa.DeanName, ps, wording)
		if fa.ID != string(vals[sis.FacultyID]) {
			t.Errorf("id %q", fa.ID)
		}
		checkText(t, "name", fa.Name)
		checkText(t, "dean_name", fa.DeanName)
		if fa.DeanEmail != "" {
			checkEmail(t, fa.DeanEmail)
		} else if !slices.ContainsFunc(ps, func(p Problem) bool { return p.Field == "dean_email" }) {
			t.Errorf("no dean email and no dean_email problem: %+v", ps)
		}
		checkCode(t, "dean_language", fa.DeanLanguage, Languages)
	})
}

func FuzzPeriod(f *testing.F) {
	f.Add(joinRow("P1", "semester", "2026-09-01", "2026-12-31"), uint32(0))
	f.Add(joinRow("P2", "Winter_Break ", "2027-01-01", "2026-12-31"), uint32(0))
	f.Add(joinRow("P3", "summer", "2027-06-31", "2127-08-31"), uint32(0))
	f.Add(joinRow("P4"), uint32(0b1110))
	f.Fuzz(func(t *testing.T, data []byte, nulls uint32) {
		vals := rowValues(len(sis.AcademicPeriods.Columns), data, nulls)
		var p Period
		ps := NewChecker(fuzzAsOf).Period(sis.NewRow(vals...), &p, nil)
		checkProblems(t, sis.AcademicPeriods.Columns, ps)
		if p.ID != string(vals[sis.PeriodID]) {
			t.Errorf("id %q", p.ID)
		}
		checkCode(t, "kind", p.Kind, PeriodKinds)
		checkDate(t, "starts_on", p.StartsOn)
		checkDate(t, "ends_on", p.EndsOn)
		if p.EndsOn != 0 && p.EndsOn < p.StartsOn {
			t.Errorf("ends %s before it starts %s", p.EndsOn, p.StartsOn)
		}
	})
}

// checkTimestamp checks that a timestamp kept is the raw one's instant,
// as time.Parse reads it in one of the forms Timestamp accepts.
func checkTimestamp(t *testing.T, got time.Time, raw []byte) {
	t.Helper()
	if got.IsZero() {
		return
	}
	for _, layout := range []string{"2006-01-02 15:04:05.999999999-07", "2006-01-02 15:04:05.999999999-07:00", "2006-01-02 15:04:05.999999999", time.RFC3339Nano} {
		if want, err := time.Parse(layout, string(raw)); err == nil && want.Equal(got) {
			return
		}
	}
	t.Errorf("updated_at %s, want the instant of %q", got, raw)
}
