package rules

import (
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/iec-almaty/sisnotify/jobs/calendar"
	"github.com/iec-almaty/sisnotify/jobs/date"
)

// roster generates a realistic mix: mostly active students, some
// applicants, students on leave and former students; every date column
// sometimes NULL, sometimes near the as-of date, sometimes far; zero to
// three travel requests each.
func roster(n int, asOf date.Date) ([]Student, [][]Travel) {
	rng := rand.New(rand.NewPCG(1, 2))
	near := func(p float64, spread int) date.Date {
		if rng.Float64() >= p {
			return 0
		}
		return asOf.AddDays(rng.IntN(2*spread) - spread)
	}
	pick := func(weights ...int) int {
		total := 0
		for _, w := range weights {
			total += w
		}
		x := rng.IntN(total)
		for i, w := range weights {
			if x < w {
				return i
			}
			x -= w
		}
		return 0
	}
	students := make([]Student, n)
	travels := make([][]Travel, n)
	for i := range students {
		id := "S" + strconv.Itoa(i)
		s := Student{
			ID: id, FacultyID: "F" + strconv.Itoa(i%12),
			Status:   []Status{Active, Applicant, OnLeave, Graduated, Withdrawn, Expelled, StatusUnknown}[pick(70, 8, 5, 10, 3, 2, 2)],
			Regime:   []Regime{Visa, VisaFree, EAEU, RegimeUnknown}[pick(40, 35, 24, 1)],
			Language: Language(rng.IntN(4)), HasEmail: rng.IntN(20) > 0, HasPhone: rng.IntN(5) > 0,
			PassportExpiresOn:     near(0.95, 2000),
			EnteredOn:             near(0.9, 400),
			RegistrationExpiresOn: near(0.8, 300),
			MovedOn:               near(0.3, 300),
		}
		if s.Status == Applicant {
			s.PlannedEntryOn = near(0.9, 120)
			if rng.IntN(2) == 0 {
				s.InvitationDocsOn = s.PlannedEntryOn.AddDays(-60)
			}
		}
		if s.EnteredOn != 0 && rng.IntN(10) > 0 {
			s.OfficeCheckInOn = s.EnteredOn.AddDays(rng.IntN(3))
			s.RegisteredOn = s.EnteredOn.AddDays(rng.IntN(4))
		}
		if s.RegistrationExpiresOn != 0 && rng.IntN(2) == 0 {
			s.ExtensionRequestedOn = s.RegistrationExpiresOn.AddDays(-rng.IntN(60))
		}
		if s.MovedOn != 0 && rng.IntN(4) > 0 {
			s.AddressRegisteredOn = s.MovedOn.AddDays(rng.IntN(3))
		}
		students[i] = s
		for j := range pick(50, 30, 15, 5) {
			dep := near(1, 120)
			t := Travel{
				ID: id + "-" + strconv.Itoa(j), StudentID: id,
				Kind:         []TravelKind{Vacation, Term}[rng.IntN(2)],
				SubmittedOn:  dep.AddDays(-rng.IntN(20)),
				DepartureOn:  dep,
				DeanDecision: []Decision{NotRequired, Pending, Approved, Rejected}[rng.IntN(4)],
				Cancelled:    rng.IntN(10) == 0,
			}
			if dep < asOf {
				t.DepartedOn = dep
				if ret := dep.AddDays(10 + rng.IntN(30)); ret <= asOf {
					t.ReturnedOn = ret
					if rng.IntN(3) > 0 {
						t.ReturnCheckInOn = ret.AddDays(rng.IntN(4))
					}
				}
			}
			t.ExitVisaReady = Tri(rng.IntN(3))
			travels[i] = append(travels[i], t)
		}
	}
	return students, travels
}

// BenchmarkEvaluate measures one student (with their travel requests) per
// op over a realistic mix, and reports students/s on one core.
func BenchmarkEvaluate(b *testing.B) {
	asOf := date.MustParse("2026-10-15")
	students, travels := roster(1<<14, asOf)
	e, err := New(Defaults(), testPeriods, calendar.Default())
	if err != nil {
		b.Fatal(err)
	}
	out := make([]Obligation, 0, 64)
	obligations := 0
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := i & (len(students) - 1)
		out = e.Evaluate(students[k], travels[k], asOf, out[:0])
		obligations += len(out)
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "students/s")
	b.ReportMetric(float64(obligations)/float64(b.N), "obligations/student")
}
