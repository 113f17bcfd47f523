package rules

import (
	"fmt"
	"slices"
	"testing"

	"github.com/iec-almaty/sisnotify/jobs/calendar"
	"github.com/iec-almaty/sisnotify/jobs/date"
)

var d = date.MustParse

var testPeriods = []Period{
	{ID: "2026-fall", Kind: Semester, StartsOn: d("2026-09-01"), EndsOn: d("2026-12-26")},
	{ID: "2026-winter", Kind: WinterBreak, StartsOn: d("2026-12-28"), EndsOn: d("2027-01-25")},
	{ID: "2027-spring", Kind: Semester, StartsOn: d("2027-01-26"), EndsOn: d("2027-06-20")},
	{ID: "2027-summer", Kind: SummerBreak, StartsOn: d("2027-06-29"), EndsOn: d("2027-08-31")},
	{ID: "2026-spring", Kind: Semester, StartsOn: d("2026-01-26"), EndsOn: d("2026-06-20")},
}

func newEngine(t testing.TB, catalog []Rule) *Engine {
	t.Helper()
	if catalog == nil {
		catalog = Defaults()
	}
	e, err := New(catalog, testPeriods, calendar.Default())
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// only returns the obligations of rule id.
func only(obs []Obligation, id ID) []Obligation {
	var out []Obligation
	for _, o := range obs {
		if o.Rule == id {
			out = append(out, o)
		}
	}
	return out
}

func eval(e *Engine, id ID, s Student, tr []Travel, asOf string) []Obligation {
	return only(e.Evaluate(s, tr, d(asOf), nil), id)
}

// checkLadder evaluates rule id on the day before, the day of and the day
// after each step date (hand-computed from docs/rules.md) and checks that the
// reached step is the last one on or before that day, with the given
// anchor and due date.
func checkLadder(t *testing.T, e *Engine, id ID, s Student, tr []Travel, subject, anchor, due string, steps ...string) {
	t.Helper()
	for _, step := range steps {
		for _, delta := range []int{-1, 0, 1} {
			asOf := d(step).AddDays(delta)
			level := 0
			for j, sd := range steps {
				if d(sd) <= asOf {
					level = j + 1
				}
			}
			got := only(e.Evaluate(s, tr, asOf, nil), id)
			if level == 0 {
				if len(got) != 0 {
					t.Errorf("%s on %s: got %+v, want nothing", id, asOf, got)
				}
				continue
			}
			if len(got) != 1 {
				t.Errorf("%s on %s: got %d obligations %+v, want level %d", id, asOf, len(got), got, level)
				continue
			}
			o := got[0]
			if o.Level != level || o.StepDate != d(steps[level-1]) || o.Anchor != d(anchor) || o.Due != d(due) ||
				o.SubjectID != subject || o.StudentID != s.ID {
				t.Errorf("%s on %s: got level %d step %s anchor %s due %s subject %s, want level %d step %s anchor %s due %s subject %s",
					id, asOf, o.Level, o.StepDate, o.Anchor, o.Due, o.SubjectID, level, steps[level-1], anchor, due, subject)
			}
			if want := catalogRule(id).Steps[level-1].Actions; o.Actions != want {
				t.Errorf("%s on %s: actions %s, want %s", id, asOf, o.Actions, want)
			}
		}
	}
}

func catalogRule(id ID) Rule {
	r, ok := Lookup(id)
	if !ok {
		panic(id)
	}
	return r
}

func TestCatalog(t *testing.T) {
	want := []ID{VisaInvitation, ArrivalCheckIn, Registration, StayExtension, PassportRenewal,
		TravelLateNotice, TravelDeanApproval, TermTravelLimit, ExitVisa, ReturnCheckIn,
		AddressRegistration, BreakBriefing, Welcome, DocumentLoss, StatusChange}
	if got := IDs(); !slices.Equal(got, want) {
		t.Fatalf("IDs() = %v", got)
	}
	for _, r := range Defaults() {
		if err := r.Validate(); err != nil {
			t.Error(err)
		}
		if r.Statuses.Has(Graduated) || r.Statuses.Has(Withdrawn) || r.Statuses.Has(Expelled) || r.Statuses.Has(StatusUnknown) {
			t.Errorf("%s: an out-of-scope status is in scope", r.ID)
		}
	}
	// The ladders as docs/rules.md writes them.
	got := map[ID][]string{}
	for _, r := range Defaults() {
		for _, s := range r.Steps {
			got[r.ID] = append(got[r.ID], s.String())
		}
	}
	wantSteps := map[ID][]string{
		PassportRenewal: {
			"due-30d | student: email",
			"due | student: email, sms",
			"due+30d, repeat 30d | student: email; office: digest",
			"anchor-30d | student: email, sms; office: digest; dean: digest",
			"anchor | student: email, sms; office: digest, urgent; dean: digest",
		},
		TravelDeanApproval: {
			"anchor | dean: email",
			"due-1d | office: digest; dean: email",
			"due+3d | student: email; office: digest, urgent; dean: email",
		},
		Welcome:      {"anchor | student: email"},
		DocumentLoss: {"anchor | student: email; office: digest, urgent; dean: digest", "anchor+3wd | student: email; office: digest; dean: digest"},
		StatusChange: {"anchor | office: digest, urgent", "anchor+5wd | office: digest"},
	}
	for id, w := range wantSteps {
		if !slices.Equal(got[id], w) {
			t.Errorf("%s ladder:\n%q\nwant\n%q", id, got[id], w)
		}
	}
}

// Every rule ignores students whose status is graduated, withdrawn,
// expelled or unknown, even with every date of every rule set.
func TestOutOfScopeStatuses(t *testing.T) {
	e := newEngine(t, nil)
	for _, st := range []Status{Graduated, Withdrawn, Expelled, StatusUnknown, ParseStatus("alumnus")} {
		s := everything("S1")
		s.Status = st
		if got := e.Evaluate(s, everyTrip("S1"), d("2026-12-20"), nil); len(got) != 0 {
			t.Errorf("status %s: %d obligations: %+v", st, len(got), got)
		}
	}
	// Sanity: the same data as active opens obligations of most rules.
	s := everything("S1")
	got := e.Evaluate(s, everyTrip("S1"), d("2026-12-20"), nil)
	rulesSeen := map[ID]bool{}
	for _, o := range got {
		rulesSeen[o.Rule] = true
	}
	for _, id := range []ID{Registration, StayExtension, PassportRenewal, TravelLateNotice, TravelDeanApproval,
		TermTravelLimit, ExitVisa, ReturnCheckIn, AddressRegistration, BreakBriefing} {
		if !rulesSeen[id] {
			t.Errorf("active student: no %s obligation in %+v", id, got)
		}
	}
}

// everything is an active visa student with every date of every rule set
// so that each rule is open and reached on 2026-12-20.
func everything(id string) Student {
	return Student{
		ID: id, FacultyID: "F1", Status: Active, Regime: Visa, Language: English, HasEmail: true, HasPhone: true,
		PassportExpiresOn:     d("2027-03-01"),
		PlannedEntryOn:        d("2027-01-10"),
		EnteredOn:             d("2026-12-15"),
		RegistrationExpiresOn: d("2027-01-10"),
		MovedOn:               d("2026-12-18"),
	}
}

func everyTrip(student string) []Travel {
	return []Travel{
		{ID: "V1", StudentID: student, Kind: Vacation, SubmittedOn: d("2026-12-19"), DepartureOn: d("2026-12-21"), DeanDecision: NotRequired},
		{ID: "T1", StudentID: student, Kind: Term, SubmittedOn: d("2026-10-01"), DepartureOn: d("2026-10-10"), DeanDecision: Approved, DepartedOn: d("2026-10-10"), ReturnedOn: d("2026-10-14")},
		{ID: "T2", StudentID: student, Kind: Term, SubmittedOn: d("2026-12-01"), DepartureOn: d("2026-12-23"), DeanDecision: Pending},
	}
}

func TestVisaInvitation(t *testing.T) {
	e := newEngine(t, nil)
	s := Student{ID: "A1", Status: Applicant, Regime: Visa, PlannedEntryOn: d("2026-08-20")}
	// "The deadline for submitting necessary documents to the International
	// Office is no later than 45 days before the planned entry into the
	// country." 2026-08-20 − 45 d = 2026-07-06.
	t.Run("no later than 45 days before the planned entry", func(t *testing.T) {
		checkLadder(t, e, VisaInvitation, s, nil, "A1", "2026-08-20", "2026-07-06",
			"2026-06-22", "2026-07-03", "2026-07-07")
	})
	none := []struct {
		name string
		mod  func(*Student)
	}{
		{"documents received (done)", func(s *Student) { s.InvitationDocsOn = d("2026-07-01") }},
		{"visa-free regime", func(s *Student) { s.Regime = VisaFree }},
		{"EAEU regime", func(s *Student) { s.Regime = EAEU }},
		{"unknown regime", func(s *Student) { s.Regime = ParseRegime("diplomatic") }},
		{"active student, not an applicant", func(s *Student) { s.Status = Active }},
		{"no planned entry", func(s *Student) { s.PlannedEntryOn = 0 }},
	}
	for _, c := range none {
		t.Run(c.name, func(t *testing.T) {
			x := s
			c.mod(&x)
			if got := eval(e, VisaInvitation, x, nil, "2026-07-10"); len(got) != 0 {
				t.Errorf("got %+v", got)
			}
		})
	}
	t.Run("late first sight", func(t *testing.T) {
		got := eval(e, VisaInvitation, s, nil, "2026-08-19")
		if len(got) != 1 || got[0].Level != 3 || got[0].Moot != "" {
			t.Errorf("got %+v, want level 3 only", got)
		}
	})
	// "When a step is no longer news": the planned entry on the night
	// itself still counts; the day after, the obligation is moot.
	t.Run("entry date passed", func(t *testing.T) {
		if got := eval(e, VisaInvitation, s, nil, "2026-08-20"); len(got) != 1 || got[0].Moot != "" {
			t.Errorf("on the entry date: got %+v, want open", got)
		}
		got := eval(e, VisaInvitation, s, nil, "2026-08-21")
		if len(got) != 1 || got[0].Moot != MootEntryPassed {
			t.Errorf("the day after: got %+v, want moot %q", got, MootEntryPassed)
		}
	})
}

func TestArrivalCheckIn(t *testing.T) {
	e := newEngine(t, nil)
	s := Student{ID: "S1", Status: Active, Regime: VisaFree, EnteredOn: d("2026-03-20")}
	// "Within 1 working day after crossing the border of Kazakhstan, the
	// international student must contact the International Office": a
	// student entering on Friday 2026-03-20 is due by Thursday 2026-03-26
	// (21-22 weekend, 23-25 March Nauryz days off).
	t.Run("within 1 working day after crossing the border", func(t *testing.T) {
		checkLadder(t, e, ArrivalCheckIn, s, nil, "S1", "2026-03-20", "2026-03-26",
			"2026-03-20", "2026-03-27")
	})
	t.Run("applicant in scope", func(t *testing.T) {
		x := s
		x.Status = Applicant
		checkLadder(t, e, ArrivalCheckIn, x, nil, "S1", "2026-03-20", "2026-03-26", "2026-03-20", "2026-03-27")
	})
	t.Run("on leave out of scope", func(t *testing.T) {
		x := s
		x.Status = OnLeave
		if got := eval(e, ArrivalCheckIn, x, nil, "2026-03-27"); len(got) != 0 {
			t.Errorf("got %+v", got)
		}
	})
	t.Run("checked in (done)", func(t *testing.T) {
		x := s
		x.OfficeCheckInOn = d("2026-03-26")
		if got := eval(e, ArrivalCheckIn, x, nil, "2026-03-27"); len(got) != 0 {
			t.Errorf("got %+v", got)
		}
	})
	t.Run("new entry re-anchors: an old check-in does not count", func(t *testing.T) {
		x := s
		x.OfficeCheckInOn = d("2025-09-02") // check-in of the previous stay
		got := eval(e, ArrivalCheckIn, x, nil, "2026-03-20")
		if len(got) != 1 || got[0].Anchor != d("2026-03-20") || got[0].Level != 1 {
			t.Errorf("got %+v", got)
		}
	})
	t.Run("a day off added by configuration moves the due date", func(t *testing.T) {
		cal, err := calendar.New(calendar.Overrides{DaysOff: []date.Date{d("2026-03-26")}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		e2, err := New(Defaults(), testPeriods, cal)
		if err != nil {
			t.Fatal(err)
		}
		checkLadder(t, e2, ArrivalCheckIn, s, nil, "S1", "2026-03-20", "2026-03-27", "2026-03-20", "2026-03-28")
	})
}

func TestRegistration(t *testing.T) {
	e := newEngine(t, nil)
	s := Student{ID: "S1", Status: Active, Regime: Visa, EnteredOn: d("2026-03-20")}
	// "Foreign students must register with the migration authorities in
	// Almaty within 3 calendar days after crossing the border of
	// Kazakhstan."
	t.Run("within 3 calendar days after crossing the border", func(t *testing.T) {
		checkLadder(t, e, Registration, s, nil, "S1", "2026-03-20", "2026-03-23",
			"2026-03-20", "2026-03-22", "2026-03-24")
	})
	for _, st := range []Status{Applicant, OnLeave} {
		x := s
		x.Status = st
		if got := eval(e, Registration, x, nil, "2026-03-20"); len(got) != 1 {
			t.Errorf("%s: got %+v", st, got)
		}
	}
	t.Run("unknown regime uses the default period", func(t *testing.T) {
		x := s
		x.Regime = RegimeUnknown
		checkLadder(t, e, Registration, x, nil, "S1", "2026-03-20", "2026-03-23", "2026-03-20", "2026-03-22", "2026-03-24")
	})
	t.Run("registered (done)", func(t *testing.T) {
		x := s
		x.RegisteredOn = d("2026-03-21")
		if got := eval(e, Registration, x, nil, "2026-03-24"); len(got) != 0 {
			t.Errorf("got %+v", got)
		}
		x.RegisteredOn = d("2026-03-19") // an earlier stay's registration
		if got := eval(e, Registration, x, nil, "2026-03-24"); len(got) != 1 {
			t.Errorf("old registration counted: %+v", got)
		}
	})
	t.Run("period per regime, in working days", func(t *testing.T) {
		rs := Defaults()
		for i := range rs {
			if rs[i].ID == Registration {
				rs[i].Due.PerRegime[VisaFree] = Expr{BaseAnchor, Offset{3, WorkingDays}}
				rs[i].Due.PerRegime[EAEU] = Expr{BaseAnchor, Offset{5, Days}}
			}
		}
		e2 := newEngine(t, rs)
		x := s
		x.Regime = VisaFree
		// 3 wd after Friday 2026-03-20: 26, 27, 30 March.
		checkLadder(t, e2, Registration, x, nil, "S1", "2026-03-20", "2026-03-30", "2026-03-20", "2026-03-29", "2026-03-31")
		x.Regime = EAEU
		checkLadder(t, e2, Registration, x, nil, "S1", "2026-03-20", "2026-03-25", "2026-03-20", "2026-03-24", "2026-03-26")
		x.Regime = Visa // unchanged
		checkLadder(t, e2, Registration, x, nil, "S1", "2026-03-20", "2026-03-23", "2026-03-20", "2026-03-22", "2026-03-24")
	})
}

func TestStayExtension(t *testing.T) {
	e := newEngine(t, nil)
	s := Student{ID: "S1", Status: Active, Regime: Visa, RegistrationExpiresOn: d("2026-09-01")}
	// "if registration expires on September 1, the student must contact the
	// office by August 25": level 4 (anchor − 7d) on 2026-08-25; the due date
	// is 30 days before, 2026-08-02.
	t.Run("if registration expires on September 1 ... by August 25", func(t *testing.T) {
		checkLadder(t, e, StayExtension, s, nil, "S1", "2026-09-01", "2026-08-02",
			"2026-07-19", "2026-08-02", "2026-08-03", "2026-08-25", "2026-09-01")
	})
	t.Run("done only by a request within 90 days of the end", func(t *testing.T) {
		x := s
		x.ExtensionRequestedOn = d("2026-06-03") // 2026-09-01 − 90 d
		if got := eval(e, StayExtension, x, nil, "2026-08-25"); len(got) != 0 {
			t.Errorf("got %+v", got)
		}
		x.ExtensionRequestedOn = d("2026-06-02") // a request for the previous stay
		if got := eval(e, StayExtension, x, nil, "2026-08-25"); len(got) != 1 || got[0].Level != 4 {
			t.Errorf("got %+v", got)
		}
	})
	t.Run("on leave in scope, applicant not", func(t *testing.T) {
		x := s
		x.Status = OnLeave
		if got := eval(e, StayExtension, x, nil, "2026-08-25"); len(got) != 1 {
			t.Errorf("on leave: %+v", got)
		}
		x.Status = Applicant
		if got := eval(e, StayExtension, x, nil, "2026-08-25"); len(got) != 0 {
			t.Errorf("applicant: %+v", got)
		}
	})
	t.Run("a new stay re-anchors", func(t *testing.T) {
		x := s
		x.RegistrationExpiresOn = d("2027-09-01")
		if got := eval(e, StayExtension, x, nil, "2026-09-02"); len(got) != 0 {
			t.Errorf("got %+v", got)
		}
	})
	t.Run("late first sight", func(t *testing.T) {
		got := eval(e, StayExtension, s, nil, "2026-12-01")
		if len(got) != 1 || got[0].Level != 5 {
			t.Errorf("got %+v, want level 5 only", got)
		}
	})
}

func TestPassportRenewal(t *testing.T) {
	e := newEngine(t, nil)
	s := Student{ID: "S1", Status: Active, Regime: EAEU, PassportExpiresOn: d("2027-08-31")}
	// "Extending or replacing their national passport (6 months before the
	// expiration date, they should extend/replace it)": 2027-08-31 − 6 m is
	// 2027-02-28 (clamped).
	t.Run("6 months before the expiration date", func(t *testing.T) {
		checkLadder(t, e, PassportRenewal, s, nil, "S1", "2027-08-31", "2027-02-28",
			"2027-01-29", "2027-02-28", "2027-03-30", "2027-08-01", "2027-08-31")
	})
	t.Run("leap year clamp", func(t *testing.T) {
		x := s
		x.PassportExpiresOn = d("2028-08-31")
		got := eval(e, PassportRenewal, x, nil, "2028-02-29")
		if len(got) != 1 || got[0].Due != d("2028-02-29") || got[0].Level != 2 {
			t.Errorf("got %+v", got)
		}
	})
	t.Run("level 3 repeats every 30 days", func(t *testing.T) {
		// The engine reports the period; when a repeat is due depends on
		// the last delivery, which the evaluation knows.
		for _, asOf := range []string{"2027-03-30", "2027-04-29", "2027-07-31"} {
			got := eval(e, PassportRenewal, s, nil, asOf)
			if len(got) != 1 || got[0].Level != 3 || got[0].RepeatEvery != 30 || got[0].StepDate != d("2027-03-30") {
				t.Errorf("%s: got %+v, want level 3 repeating every 30 days", asOf, got)
			}
		}
		// Level 4 is not a repeat step.
		if got := eval(e, PassportRenewal, s, nil, "2027-08-20"); len(got) != 1 || got[0].Level != 4 || got[0].RepeatEvery != 0 {
			t.Errorf("level 4: %+v", got)
		}
	})
	t.Run("a new passport is a new anchor", func(t *testing.T) {
		x := s
		x.PassportExpiresOn = d("2032-05-10")
		if got := eval(e, PassportRenewal, x, nil, "2027-05-01"); len(got) != 0 {
			t.Errorf("got %+v", got)
		}
		got := eval(e, PassportRenewal, x, nil, "2031-10-11") // 2031-11-10 − 30 d
		if len(got) != 1 || got[0].Anchor != d("2032-05-10") || got[0].Level != 1 {
			t.Errorf("got %+v", got)
		}
	})
	t.Run("late first sight: only the highest reached step", func(t *testing.T) {
		got := eval(e, PassportRenewal, s, nil, "2027-12-09")
		if len(got) != 1 || got[0].Level != 5 || got[0].RepeatEvery != 0 {
			t.Errorf("got %+v", got)
		}
	})
	t.Run("applicant and on leave in scope", func(t *testing.T) {
		for _, st := range []Status{Applicant, OnLeave} {
			x := s
			x.Status = st
			if got := eval(e, PassportRenewal, x, nil, "2027-08-31"); len(got) != 1 {
				t.Errorf("%s: %+v", st, got)
			}
		}
	})
}

func TestTravelLateNotice(t *testing.T) {
	e := newEngine(t, nil)
	s := Student{ID: "S1", Status: Active, Regime: Visa}
	late := Travel{ID: "R1", StudentID: "S1", Kind: Vacation, SubmittedOn: d("2026-06-29"), DepartureOn: d("2026-07-01"), DeanDecision: NotRequired}
	// "please notify the International Office 3 days before departure in
	// writing": submitted 2026-06-29 for a 2026-07-01 departure is late.
	t.Run("notify the International Office 3 days before departure", func(t *testing.T) {
		checkLadder(t, e, TravelLateNotice, s, []Travel{late}, "R1", "2026-06-29", "2026-07-01", "2026-06-29")
	})
	none := []struct {
		name string
		mod  func(*Travel)
	}{
		{"submitted exactly 3 days before", func(t *Travel) { t.SubmittedOn = d("2026-06-28") }},
		{"departed", func(t *Travel) { t.DepartedOn = d("2026-07-01") }},
		{"cancelled", func(t *Travel) { t.Cancelled = true }},
		{"another student's request", func(t *Travel) { t.StudentID = "S2" }},
	}
	for _, c := range none {
		t.Run(c.name, func(t *testing.T) {
			x := late
			c.mod(&x)
			if got := eval(e, TravelLateNotice, s, []Travel{x}, "2026-06-30"); len(got) != 0 {
				t.Errorf("got %+v", got)
			}
		})
	}
	t.Run("any kind, even unknown", func(t *testing.T) {
		x := late
		x.Kind = ParseTravelKind("business")
		if got := eval(e, TravelLateNotice, s, []Travel{x}, "2026-06-30"); len(got) != 1 {
			t.Errorf("got %+v", got)
		}
	})
	t.Run("stays open until departure is known", func(t *testing.T) {
		if got := eval(e, TravelLateNotice, s, []Travel{late}, "2026-07-20"); len(got) != 1 || got[0].Level != 1 {
			t.Errorf("got %+v", got)
		}
	})
}

func TestTravelDeanApproval(t *testing.T) {
	e := newEngine(t, nil)
	s := Student{ID: "S1", Status: Active, Regime: EAEU}
	trip := Travel{ID: "R1", StudentID: "S1", Kind: Term, SubmittedOn: d("2026-10-01"), DepartureOn: d("2026-10-20"), DeanDecision: Pending}
	// "leaving Kazakhstan during the academic year outside of vacation
	// periods is only possible once per semester with the permission of the
	// Dean of your faculty": due departure − 3 d = 2026-10-17; level 3 on
	// the departure day.
	t.Run("with the permission of the Dean of your faculty", func(t *testing.T) {
		checkLadder(t, e, TravelDeanApproval, s, []Travel{trip}, "R1", "2026-10-01", "2026-10-17",
			"2026-10-01", "2026-10-16", "2026-10-20")
	})
	for _, dec := range []Decision{Approved, Rejected, NotRequired, DecisionUnknown} {
		x := trip
		x.DeanDecision = dec
		if got := eval(e, TravelDeanApproval, s, []Travel{x}, "2026-10-20"); len(got) != 0 {
			t.Errorf("%s: got %+v", dec, got)
		}
	}
	x := trip
	x.Kind = Vacation
	if got := eval(e, TravelDeanApproval, s, []Travel{x}, "2026-10-20"); len(got) != 0 {
		t.Errorf("vacation: got %+v", got)
	}
}

func TestTermTravelLimit(t *testing.T) {
	e := newEngine(t, nil)
	s := Student{ID: "S1", Status: Active, Regime: Visa}
	first := Travel{ID: "R1", StudentID: "S1", Kind: Term, SubmittedOn: d("2026-09-20"), DepartureOn: d("2026-10-05"), DeanDecision: Approved, DepartedOn: d("2026-10-05")}
	second := Travel{ID: "R2", StudentID: "S1", Kind: Term, SubmittedOn: d("2026-10-25"), DepartureOn: d("2026-11-10"), DeanDecision: Pending}
	// "leaving Kazakhstan during the academic year outside of vacation
	// periods is only possible once per semester": the second term trip of
	// fall 2026 is flagged to the office and the dean on submission.
	t.Run("only possible once per semester", func(t *testing.T) {
		checkLadder(t, e, TermTravelLimit, s, []Travel{second, first}, "R2", "2026-10-25", "2026-11-10", "2026-10-25")
	})
	t.Run("the first trip is not flagged", func(t *testing.T) {
		got := eval(e, TermTravelLimit, s, []Travel{first}, "2026-10-26")
		if len(got) != 0 {
			t.Errorf("got %+v", got)
		}
	})
	t.Run("ties broken by request id", func(t *testing.T) {
		a := second
		a.ID, a.DepartureOn = "R3", d("2026-11-10")
		b := second
		b.ID = "R4"
		got := eval(e, TermTravelLimit, s, []Travel{b, a}, "2026-10-26")
		// Same departure day: R3 < R4, so R4 is the second trip.
		if len(got) != 1 || got[0].SubjectID != "R4" {
			t.Errorf("got %+v", got)
		}
	})
	none := []struct {
		name string
		mod  func(first, second *Travel)
	}{
		{"earlier trip rejected", func(f, _ *Travel) { f.DeanDecision = Rejected }},
		{"earlier trip cancelled", func(f, _ *Travel) { f.Cancelled = true }},
		{"earlier trip is a vacation", func(f, _ *Travel) { f.Kind = Vacation }},
		{"earlier trip in another semester", func(f, _ *Travel) { f.DepartureOn = d("2026-05-05") }},
		{"second trip rejected", func(_, s *Travel) { s.DeanDecision = Rejected }},
		{"second trip departed", func(_, s *Travel) { s.DepartedOn = d("2026-11-10") }},
		{"second trip outside any semester", func(_, s *Travel) { s.DepartureOn = d("2026-12-27") }},
		{"earlier trip of another student", func(f, _ *Travel) { f.StudentID = "S2" }},
	}
	for _, c := range none {
		t.Run(c.name, func(t *testing.T) {
			f, x := first, second
			c.mod(&f, &x)
			if got := eval(e, TermTravelLimit, s, []Travel{f, x}, "2026-10-26"); len(got) != 0 {
				t.Errorf("got %+v", got)
			}
		})
	}
	t.Run("a pending earlier trip counts", func(t *testing.T) {
		f := first
		f.DeanDecision, f.DepartedOn = Pending, 0
		if got := eval(e, TermTravelLimit, s, []Travel{f, second}, "2026-10-26"); len(got) != 1 {
			t.Errorf("got %+v", got)
		}
	})
}

func TestExitVisa(t *testing.T) {
	e := newEngine(t, nil)
	s := Student{ID: "S1", Status: Active, Regime: Visa}
	trip := Travel{ID: "R1", StudentID: "S1", Kind: Vacation, SubmittedOn: d("2026-11-20"), DepartureOn: d("2026-12-28"), DeanDecision: NotRequired}
	// "Before leaving for winter or summer vacations, international students
	// from distant countries must arrange an entry-exit visa."
	t.Run("must arrange an entry-exit visa", func(t *testing.T) {
		checkLadder(t, e, ExitVisa, s, []Travel{trip}, "R1", "2026-12-28", "2026-12-28",
			"2026-12-07", "2026-12-21", "2026-12-26")
	})
	x := trip
	x.ExitVisaReady = TriFalse
	if got := eval(e, ExitVisa, s, []Travel{x}, "2026-12-26"); len(got) != 1 {
		t.Errorf("visa not ready: %+v", got)
	}
	x.ExitVisaReady = TriTrue
	if got := eval(e, ExitVisa, s, []Travel{x}, "2026-12-26"); len(got) != 0 {
		t.Errorf("visa ready (done): %+v", got)
	}
	x = trip
	x.DepartedOn = d("2026-12-27")
	if got := eval(e, ExitVisa, s, []Travel{x}, "2026-12-27"); len(got) != 0 {
		t.Errorf("departed: %+v", got)
	}
	x = trip
	x.Kind = Term
	if got := eval(e, ExitVisa, s, []Travel{x}, "2026-12-26"); len(got) != 0 {
		t.Errorf("term trip: %+v", got)
	}
	for _, r := range []Regime{VisaFree, EAEU, RegimeUnknown} {
		y := s
		y.Regime = r
		if got := eval(e, ExitVisa, y, []Travel{trip}, "2026-12-26"); len(got) != 0 {
			t.Errorf("regime %s: %+v", r, got)
		}
	}
}

func TestReturnCheckIn(t *testing.T) {
	e := newEngine(t, nil)
	s := Student{ID: "S1", Status: Active, Regime: Visa}
	vac := Travel{ID: "R1", StudentID: "S1", Kind: Vacation, SubmittedOn: d("2025-11-01"), DepartureOn: d("2025-11-20"),
		DepartedOn: d("2025-11-20"), ReturnedOn: d("2025-12-12"), DeanDecision: NotRequired}
	// "Upon return to Almaty, students must submit their passport to the
	// International Office within three working days": back on Friday
	// 2025-12-12, due Thursday 2025-12-18 (Tuesday 16 December is
	// Independence Day).
	t.Run("within three working days", func(t *testing.T) {
		checkLadder(t, e, ReturnCheckIn, s, []Travel{vac}, "R1", "2025-12-12", "2025-12-18",
			"2025-12-12", "2025-12-19", "2025-12-21")
	})
	// "On the day of arrival in Kazakhstan, or the following day, you must
	// contact the International Office and provide your original passport".
	t.Run("on the day of arrival or the following day", func(t *testing.T) {
		term := vac
		term.Kind, term.ReturnedOn = Term, d("2026-10-23")
		checkLadder(t, e, ReturnCheckIn, s, []Travel{term}, "R1", "2026-10-23", "2026-10-24",
			"2026-10-23", "2026-10-25", "2026-10-27")
	})
	t.Run("a day off added by configuration moves the due date", func(t *testing.T) {
		cal, _ := calendar.New(calendar.Overrides{DaysOff: []date.Date{d("2025-12-17")}}, nil)
		e2, _ := New(Defaults(), testPeriods, cal)
		checkLadder(t, e2, ReturnCheckIn, s, []Travel{vac}, "R1", "2025-12-12", "2025-12-19",
			"2025-12-12", "2025-12-20", "2025-12-22")
	})
	x := vac
	x.ReturnCheckInOn = d("2025-12-15")
	if got := eval(e, ReturnCheckIn, s, []Travel{x}, "2025-12-22"); len(got) != 0 {
		t.Errorf("checked in (done): %+v", got)
	}
	x.ReturnCheckInOn = d("2025-09-01") // after an earlier trip
	if got := eval(e, ReturnCheckIn, s, []Travel{x}, "2025-12-22"); len(got) != 1 || got[0].Level != 3 {
		t.Errorf("old check-in counted: %+v", got)
	}
	x = vac
	x.Kind = KindUnknown
	if got := eval(e, ReturnCheckIn, s, []Travel{x}, "2025-12-22"); len(got) != 0 {
		t.Errorf("unknown kind: %+v", got)
	}
	x = vac
	x.Cancelled = true
	if got := eval(e, ReturnCheckIn, s, []Travel{x}, "2025-12-22"); len(got) != 0 {
		t.Errorf("cancelled: %+v", got)
	}
}

func TestAddressRegistration(t *testing.T) {
	e := newEngine(t, nil)
	s := Student{ID: "S1", Status: OnLeave, Regime: VisaFree, MovedOn: d("2026-04-10")}
	// "In case of a change in the residential address, students must
	// immediately inform the International Office (no later than 2 days)".
	t.Run("no later than 2 days", func(t *testing.T) {
		checkLadder(t, e, AddressRegistration, s, nil, "S1", "2026-04-10", "2026-04-12",
			"2026-04-10", "2026-04-12", "2026-04-15")
	})
	x := s
	x.AddressRegisteredOn = d("2026-04-11")
	if got := eval(e, AddressRegistration, x, nil, "2026-04-15"); len(got) != 0 {
		t.Errorf("done: %+v", got)
	}
	x.MovedOn = d("2026-05-02") // moved again: new anchor, old registration does not count
	if got := eval(e, AddressRegistration, x, nil, "2026-05-02"); len(got) != 1 || got[0].Anchor != d("2026-05-02") {
		t.Errorf("moved again: %+v", got)
	}
	x = s
	x.Status = Applicant
	if got := eval(e, AddressRegistration, x, nil, "2026-04-15"); len(got) != 0 {
		t.Errorf("applicant: %+v", got)
	}
}

func TestBreakBriefing(t *testing.T) {
	e := newEngine(t, nil)
	s := Student{ID: "S1", Status: Active, Regime: Visa}
	// "Before leaving for winter or summer vacations ..." / "please notify
	// the International Office 3 days before departure in writing": the
	// briefing goes 21 days before each break.
	t.Run("before leaving for winter or summer vacations", func(t *testing.T) {
		checkLadder(t, e, BreakBriefing, s, nil, "S1", "2026-12-28", "2026-12-28", "2026-12-07")
		checkLadder(t, e, BreakBriefing, s, nil, "S1", "2027-06-29", "2027-06-29", "2027-06-08")
	})
	got := eval(e, BreakBriefing, s, nil, "2026-12-27")
	if len(got) != 1 || got[0].PeriodID != "2026-winter" || got[0].Anchor != d("2026-12-28") {
		t.Errorf("eve of the break: %+v", got)
	}
	if got := eval(e, BreakBriefing, s, nil, "2026-12-28"); len(got) != 0 {
		t.Errorf("break started: %+v", got)
	}
	x := s
	x.Status = OnLeave
	if got := eval(e, BreakBriefing, x, nil, "2026-12-20"); len(got) != 0 {
		t.Errorf("on leave: %+v", got)
	}
	// Two breaks close together: one obligation each, told apart by anchor.
	ps := []Period{
		{ID: "b2", Kind: SummerBreak, StartsOn: d("2027-07-10"), EndsOn: d("2027-08-01")},
		{ID: "b1", Kind: WinterBreak, StartsOn: d("2027-07-01"), EndsOn: d("2027-07-05")},
		{ID: "s", Kind: Semester, StartsOn: d("2027-06-25"), EndsOn: d("2027-06-30")},
	}
	e2, err := New(Defaults(), ps, nil)
	if err != nil {
		t.Fatal(err)
	}
	got = eval(e2, BreakBriefing, s, nil, "2027-06-26")
	if len(got) != 2 || got[0].PeriodID != "b1" || got[1].PeriodID != "b2" || got[0].Anchor == got[1].Anchor {
		t.Errorf("two breaks: %+v", got)
	}
}

func TestNotices(t *testing.T) {
	r := catalogRule(Registration)
	got := r.Steps[2].Actions.Notices()
	want := []Notice{{ToStudent, Email}, {ToStudent, SMS}, {ToOffice, Digest}, {ToOffice, Email}, {ToDean, Digest}}
	if !slices.Equal(got, want) {
		t.Errorf("registration level 3 notices %v, want %v", got, want)
	}
	got = catalogRule(TravelDeanApproval).Steps[0].Actions.Notices()
	if !slices.Equal(got, []Notice{{ToDean, Email}}) {
		t.Errorf("dean approval level 1: %v", got)
	}
	var names []string
	for _, n := range got {
		names = append(names, n.Audience.String()+"/"+n.Channel.String())
	}
	if fmt.Sprint(names) != "[dean/email]" {
		t.Errorf("names %v", names)
	}
}

func TestParse(t *testing.T) {
	for code, want := range map[string]Status{"active": Active, " On_Leave ": OnLeave, "": StatusUnknown, "alumni": StatusUnknown} {
		if got := ParseStatus(code); got != want {
			t.Errorf("ParseStatus(%q) = %s", code, got)
		}
	}
	if ParseRegime("visa_free") != VisaFree || ParseRegime("eaeu") != EAEU || ParseRegime("") != RegimeUnknown {
		t.Error("ParseRegime")
	}
	if ParseLanguage("kk") != Kazakh || ParseLanguage("de") != LanguageUnknown {
		t.Error("ParseLanguage")
	}
	if ParseTravelKind("term") != Term || ParseDecision("not_required") != NotRequired || ParsePeriodKind("winter_break") != WinterBreak {
		t.Error("Parse codes")
	}
	if TriOf(false, true) != TriUnknown || TriOf(true, false) != TriFalse || TriOf(true, true) != TriTrue {
		t.Error("TriOf")
	}
	for s, want := range map[string]string{"due-14d": "due-14d", "anchor": "anchor", "due+1wd": "due+1wd", "anchor-6m": "anchor-6m", "due+0d": "due"} {
		e, err := ParseExpr(s, BaseAnchor, BaseDue)
		if err != nil || e.String() != want {
			t.Errorf("ParseExpr(%q) = %v, %v", s, e, err)
		}
	}
	for _, s := range []string{"due-14x", "due14d", "dew-1d", "due-", "due-d", "due+-1d", "departure-3d", "due-99999d", "due-1.5d"} {
		if _, err := ParseExpr(s, BaseAnchor, BaseDue); err == nil {
			t.Errorf("ParseExpr(%q) accepted", s)
		}
	}
	if _, err := ParseAction("student", "digest"); err == nil {
		t.Error("student digest accepted")
	}
	if _, err := ParseAction("rector", "email"); err == nil {
		t.Error("rector accepted")
	}
}

func TestValidate(t *testing.T) {
	r := catalogRule(ExitVisa)
	r.Steps[0], r.Steps[1] = r.Steps[1], r.Steps[0]
	if err := r.Validate(); err == nil {
		t.Error("steps out of order accepted")
	}
	r = catalogRule(ExitVisa)
	r.Steps = nil
	if err := r.Validate(); err == nil {
		t.Error("empty ladder accepted")
	}
	r = catalogRule(ExitVisa)
	r.Steps[1].Actions = 0
	if err := r.Validate(); err == nil {
		t.Error("silent step accepted")
	}
	if _, err := New([]Rule{{ID: "made-up"}}, nil, nil); err == nil {
		t.Error("unknown rule accepted")
	}
	rs := Defaults()
	rs[0].Disabled = true
	e := newEngine(t, rs)
	if got := eval(e, VisaInvitation, Student{ID: "A", Status: Applicant, Regime: Visa, PlannedEntryOn: d("2026-08-20")}, nil, "2026-07-10"); len(got) != 0 {
		t.Errorf("disabled rule evaluated: %+v", got)
	}
}

func TestEvaluateDeterministicAndAllocationFree(t *testing.T) {
	e := newEngine(t, nil)
	s := everything("S1")
	tr := everyTrip("S1")
	asOf := d("2026-12-20")
	a := e.Evaluate(s, tr, asOf, nil)
	b := e.Evaluate(s, tr, asOf, make([]Obligation, 0, 64))
	if !slices.Equal(a, b) {
		t.Fatalf("two runs differ:\n%+v\n%+v", a, b)
	}
	out := make([]Obligation, 0, 64)
	allocs := testing.AllocsPerRun(1000, func() {
		out = e.Evaluate(s, tr, asOf, out[:0])
	})
	if allocs != 0 {
		t.Errorf("Evaluate allocates %v times per student", allocs)
	}
}

// TestMootTravel checks docs/rules.md's "When a step is no longer news" for the
// four travel rules: the departure on the night itself is not moot, the
// day after it is, with reason "departure passed"; a trip that departed
// is out of scope (closed as resolved, not moot).
func TestMootTravel(t *testing.T) {
	s := Student{ID: "S1", Status: Active, Regime: Visa}
	// A second term trip of the same semester (term-travel-limit), filed
	// late (travel-late-notice), waiting for the dean
	// (travel-dean-approval); a vacation trip without an exit visa.
	first := Travel{ID: "R0", StudentID: "S1", Kind: Term, SubmittedOn: d("2026-09-01"), DepartureOn: d("2026-09-10"), DeanDecision: Approved}
	term := Travel{ID: "R1", StudentID: "S1", Kind: Term, SubmittedOn: d("2026-10-19"), DepartureOn: d("2026-10-20"), DeanDecision: Pending}
	vac := Travel{ID: "R2", StudentID: "S1", Kind: Vacation, SubmittedOn: d("2026-10-01"), DepartureOn: d("2026-10-20"), DeanDecision: NotRequired}
	trips := []Travel{first, term, vac}
	e2, err := New(Defaults(), []Period{{ID: "F26", Kind: Semester, StartsOn: d("2026-09-01"), EndsOn: d("2026-12-31")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id      ID
		subject string
	}{{TravelLateNotice, "R1"}, {TravelDeanApproval, "R1"}, {TermTravelLimit, "R1"}, {ExitVisa, "R2"}} {
		t.Run(string(c.id), func(t *testing.T) {
			find := func(asOf string) *Obligation {
				for _, o := range eval(e2, c.id, s, trips, asOf) {
					if o.SubjectID == c.subject {
						return &o
					}
				}
				return nil
			}
			if o := find("2026-10-20"); o == nil || o.Moot != "" {
				t.Errorf("on the departure day: got %+v, want open and not moot", o)
			}
			if o := find("2026-10-21"); o == nil || o.Moot != MootDeparturePassed {
				t.Errorf("the day after the departure: got %+v, want moot %q", o, MootDeparturePassed)
			}
			departed := slices.Clone(trips)
			for i := range departed {
				departed[i].DepartedOn = departed[i].DepartureOn
			}
			for _, o := range eval(e2, c.id, s, departed, "2026-10-21") {
				if o.SubjectID == c.subject && c.id != TravelDeanApproval {
					t.Errorf("a trip that departed: got %+v, want out of scope", o)
				}
			}
		})
	}
}
