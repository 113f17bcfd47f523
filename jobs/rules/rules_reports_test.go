package rules

import "testing"

// welcome: one step at entered_on, for applicants and active students who
// entered in the last 30 days.
func TestWelcome(t *testing.T) {
	e := newEngine(t, nil)
	s := Student{ID: "W1", Status: Active, EnteredOn: d("2026-11-02")}
	if got := eval(e, Welcome, s, nil, "2026-11-01"); len(got) != 0 {
		t.Errorf("before entry: %+v", got)
	}
	for _, asOf := range []string{"2026-11-02", "2026-11-20", "2026-12-02"} {
		got := eval(e, Welcome, s, nil, asOf)
		if len(got) != 1 || got[0].Level != 1 || got[0].Anchor != s.EnteredOn || got[0].Due != s.EnteredOn ||
			got[0].SubjectID != "W1" || got[0].Actions != StudentEmail {
			t.Errorf("%s: %+v, want step 1 at the entry, student email", asOf, got)
		}
	}
	// entered_on >= T − 30 d: on the 31st day after the entry it is out of scope.
	if got := eval(e, Welcome, s, nil, "2026-12-03"); len(got) != 0 {
		t.Errorf("31 days after entry: %+v", got)
	}
	for _, st := range []Status{Applicant, OnLeave, Graduated} {
		s := s
		s.Status = st
		if got := eval(e, Welcome, s, nil, "2026-11-03"); (len(got) == 1) != (st == Applicant) {
			t.Errorf("status %s: %+v", st, got)
		}
	}
	s.EnteredOn = 0
	if got := eval(e, Welcome, s, nil, "2026-11-03"); len(got) != 0 {
		t.Errorf("no entry: %+v", got)
	}
}

func TestReportRules(t *testing.T) {
	e := newEngine(t, nil)
	s := Student{ID: "S1", Status: Active, Reports: []Report{
		{ID: 7, Kind: ReportLostDocuments, ReportedOn: d("2026-12-17")}, // Thursday
		{ID: 8, Kind: ReportStatusChanged, ReportedOn: d("2026-12-17")},
		{ID: 9, Kind: ReportDone, ReportedOn: d("2026-12-17")},
		{ID: 10, Kind: ReportAddressChanged, ReportedOn: d("2026-12-17")},
	}}
	check := func(id ID, asOf string, level int) {
		t.Helper()
		got := eval(e, id, s, nil, asOf)
		if level == 0 {
			if len(got) != 0 {
				t.Errorf("%s on %s: %+v, want none", id, asOf, got)
			}
			return
		}
		if len(got) != 1 || got[0].Level != level || got[0].Anchor != d("2026-12-17") {
			t.Errorf("%s on %s: %+v, want level %d", id, asOf, got, level)
			return
		}
		if want := catalogRule(id).Steps[level-1].Actions; got[0].Actions != want || got[0].Subject != OnReport {
			t.Errorf("%s on %s: %+v", id, asOf, got[0])
		}
	}
	check(DocumentLoss, "2026-12-16", 0)
	check(DocumentLoss, "2026-12-17", 1)
	// anchor+3wd: 18 (Fri), 21 (Mon), 22 (Tue).
	check(DocumentLoss, "2026-12-21", 1)
	check(DocumentLoss, "2026-12-22", 2)
	check(StatusChange, "2026-12-17", 1)
	// anchor+5wd: 18, 21, 22, 23, 24.
	check(StatusChange, "2026-12-23", 1)
	check(StatusChange, "2026-12-24", 2)
	got := eval(e, DocumentLoss, s, nil, "2026-12-17")
	if got[0].SubjectID != "R7" || got[0].StudentID != "S1" {
		t.Errorf("subject %q student %q, want R7 and S1", got[0].SubjectID, got[0].StudentID)
	}
	// Two reports: two obligations; a graduate's report is out of scope.
	s.Reports = append(s.Reports, Report{ID: 11, Kind: ReportLostDocuments, ReportedOn: d("2026-12-18")})
	if got := eval(e, DocumentLoss, s, nil, "2026-12-18"); len(got) != 2 || got[1].SubjectID != "R11" {
		t.Errorf("two reports: %+v", got)
	}
	s.Status = Graduated
	check(DocumentLoss, "2026-12-18", 0)
}
