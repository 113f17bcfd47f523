package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/jobs/rules"
)

var d = date.MustParse

// describe renders what a configuration can change of a rule.
func describe(r rules.Rule) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s disabled=%v due=%s", r.ID, r.Disabled, r.Due.Expr)
	switch r.Due.By {
	case rules.ByRegime:
		fmt.Fprintf(&b, " per-regime=%v", r.Due.PerRegime)
	case rules.ByKind:
		fmt.Fprintf(&b, " per-kind=%v", r.Due.PerKind)
	}
	fmt.Fprintf(&b, " window=%s", r.Window)
	for _, s := range r.Steps {
		fmt.Fprintf(&b, "\n  %s", s)
	}
	return b.String()
}

func TestExampleRestatesDefaults(t *testing.T) {
	f, err := Load("example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got, want := f.Rules(), rules.Defaults()
	if len(got) != len(want) {
		t.Fatalf("%d rules, want %d", len(got), len(want))
	}
	for i := range want {
		if g, w := describe(got[i]), describe(want[i]); g != w {
			t.Errorf("example.yaml changes a default:\n%s\nwant\n%s", g, w)
		}
	}
	if f.Office.Language != rules.Russian || f.Office.Email != "international@iec.example" || f.Office.Name != "International Office" {
		t.Errorf("office %+v", f.Office)
	}
	if q := f.SMS.QuietHours; q == nil || q.String() != "21:00-09:00" {
		t.Errorf("quiet hours %v", q)
	}
	if f.Calendar.VerifiedThrough != 2027 || len(f.Calendar.DaysOff) != 0 {
		t.Errorf("calendar %+v", f.Calendar)
	}
	if _, err := f.Engine(nil, nil); err != nil {
		t.Fatal(err)
	}
}

func TestDefaults(t *testing.T) {
	for _, f := range []*File{Default(), mustParse(t, ""), mustParse(t, "# only a comment\n"), mustParse(t, "rules:\n")} {
		if f.Office.Language != rules.Russian || f.SMS.QuietHours != nil {
			t.Errorf("defaults: %+v", f)
		}
		if len(f.Rules()) != len(rules.IDs()) {
			t.Error("defaults: rules missing")
		}
	}
	f, err := Load("")
	if err != nil || f.Name != "" {
		t.Errorf("Load(\"\"): %v %v", f, err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("missing file accepted")
	}
}

func mustParse(t *testing.T, src string) *File {
	t.Helper()
	f, err := Parse("config.yaml", []byte(src))
	if err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	return f
}

// Each error class, with the exact line and message reported.
func TestErrors(t *testing.T) {
	known := strings.Join(rules.KnownIDs(), ", ")
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"unknown rule id", `
rules:
  passport-renewal:
    enabled: true
  passport-renewl:
    enabled: false
`, []string{"config.yaml:4: rules.passport-renewl: unknown rule id (did you mean passport-renewal?) (known: " + known + ")"}},
		{"unknown top-level key", "office:\n  name: X\nrulez: {}\n",
			[]string{"config.yaml:3: rulez: unknown key (want office, sms, calendar, registration, rules, feed_guard, stale_after, report_pause)"}},
		{"unknown key in a rule", "rules:\n  exit-visa:\n    enable: false\n",
			[]string{"config.yaml:3: rules.exit-visa.enable: unknown key (want enabled, due, window, steps)"}},
		{"bad offset unit", `
rules:
  passport-renewal:
    steps:
      - at: due-14x
        student: [email]
`, []string{`config.yaml:4: rules.passport-renewal.steps[1].at: bad step date: "due-14x": unit "x": want d (days), wd (working days) or m (months)`}},
		{"bad base", "rules:\n  exit-visa:\n    steps:\n      - at: departure-2d\n        student: sms\n",
			[]string{`config.yaml:4: rules.exit-visa.steps[1].at: bad step date: "departure-2d": want anchor or due, optionally followed by +N or -N and a unit (d, wd, m), like anchor-14d`}},
		{"unknown audience", "rules:\n  exit-visa:\n    steps:\n      - at: due-2d\n        rector: [email]\n",
			[]string{"config.yaml:5: rules.exit-visa.steps[1].rector: unknown key (want at, repeat, student, office, dean)"}},
		{"unknown channel", "rules:\n  exit-visa:\n    steps:\n      - at: due-2d\n        student: [email, fax]\n",
			[]string{`config.yaml:5: rules.exit-visa.steps[1].student[2]: student: unknown channel "fax" (want email or sms)`}},
		{"channel of another audience", "rules:\n  exit-visa:\n    steps:\n      - at: due-2d\n        office:\n          - urgent\n          - sms\n",
			[]string{`config.yaml:7: rules.exit-visa.steps[1].office[2]: office: unknown channel "sms" (want digest or urgent)`}},
		{"missing at", "rules:\n  exit-visa:\n    steps:\n      - student: [email]\n",
			[]string{"config.yaml:4: rules.exit-visa.steps[1]: missing at: (the step's date, like due-14d)"}},
		{"steps out of order", "rules:\n  exit-visa:\n    steps:\n      - at: due-2d\n        student: [sms]\n      - at: due-7d\n        student: [sms]\n",
			[]string{"config.yaml:3: rules.exit-visa.steps: step 2 (due-7d) comes before step 1 (due-2d): steps must be in date order"}},
		{"step sending nothing", "rules:\n  exit-visa:\n    steps:\n      - at: due-2d\n        student: []\n",
			[]string{"config.yaml:3: rules.exit-visa.steps: step 1 (due-2d) sends nothing"}},
		{"repeat in working days", "rules:\n  passport-renewal:\n    steps:\n      - at: due\n        repeat: 30wd\n        student: email\n",
			[]string{`config.yaml:5: rules.passport-renewal.steps[1].repeat: "30wd": a repeat is a positive number of calendar days, like 30d`}},
		{"bad date", "calendar:\n  days_off:\n    - 2026-08-31\n    - 2026-02-30\n",
			[]string{`config.yaml:4: calendar.days_off[2]: bad date "2026-02-30": want YYYY-MM-DD, a real calendar day`}},
		{"date both off and working", "calendar:\n  days_off: [2026-08-31]\n  working_days: [2026-08-31]\n",
			[]string{"config.yaml:3: calendar.working_days[1]: 2026-08-31 is also listed in calendar.days_off"}},
		{"bad verified year", "calendar:\n  verified_through: next\n",
			[]string{`config.yaml:2: calendar.verified_through: "next": want a year, like 2028`}},
		{"registration in months", "registration:\n  visa_free: 1m\n",
			[]string{`config.yaml:2: registration.visa_free: "1m": the registration period is in d (calendar days) or wd (working days)`}},
		{"office in an unknown language", "office:\n  de:\n    name: Auslandsamt\n",
			[]string{"config.yaml:2: office.de: unknown key (want language, university, name, address, hours, phone, email, en, ru, kk)"}},
		{"office phone given per language", "office:\n  ru:\n    phone: \"+7 727 000 00 00\"\n",
			[]string{"config.yaml:3: office.ru.phone: unknown key (want name, address, hours)"}},
		{"office language not a mapping", "office:\n  ru: Международный отдел\n",
			[]string{"config.yaml:2: office.ru: want a mapping of name, address, hours"}},
		{"registration unknown regime", "registration:\n  diplomatic: 3d\n",
			[]string{"config.yaml:2: registration.diplomatic: unknown key (want default, visa, visa_free, eaeu)"}},
		{"registration due in rules", "rules:\n  registration:\n    due: anchor+5d\n",
			[]string{"config.yaml:3: rules.registration.due: set the registration period per visa regime in the registration section"}},
		{"due with the wrong base", "rules:\n  travel-dean-approval:\n    due: anchor-3d\n",
			[]string{`config.yaml:3: rules.travel-dean-approval.due: bad due date: "anchor-3d": want departure, optionally followed by +N or -N and a unit (d, wd, m), like departure-14d`}},
		{"window on a rule without one", "rules:\n  exit-visa:\n    window: 3d\n",
			[]string{"config.yaml:3: rules.exit-visa.window: exit-visa has no window (only stay-extension and travel-late-notice have one)"}},
		{"enabled not a boolean", "rules:\n  exit-visa:\n    enabled: \"no\"\n",
			[]string{"config.yaml:3: rules.exit-visa.enabled: want true or false"}},
		{"duplicate key", "rules:\n  exit-visa:\n    enabled: false\n  exit-visa:\n    enabled: true\n",
			[]string{"config.yaml:4: rules.exit-visa: duplicate key"}},
		{"bad language", "office:\n  language: de\n",
			[]string{`config.yaml:2: office.language: unknown language "de" (want en, ru or kk)`}},
		{"bad office email", "office:\n  email: office at iec\n",
			[]string{`config.yaml:2: office.email: "office at iec" is not an email address`}},
		{"bad quiet hours", "sms:\n  quiet_hours: 9pm-9am\n",
			[]string{`config.yaml:2: sms.quiet_hours: "9pm-9am": want HH:MM-HH:MM, like 21:00-09:00, or "" for none`}},
		{"wrong shape", "rules:\n  - exit-visa\n",
			[]string{"config.yaml:2: rules: want a mapping of rule ids"}},
		{"YAML syntax", "office:\n  name: x\nrules: exit-visa: {}\n",
			[]string{"config.yaml:3: mapping values are not allowed in this context"}},
		{"two documents", "office:\n  name: x\n---\nrules: {}\n",
			[]string{"config.yaml:3: only one YAML document is allowed"}},
		{"several errors, in line order", "sms:\n  quiet_hours: 25:00-01:00\noffice:\n  language: fr\n",
			[]string{
				`config.yaml:2: sms.quiet_hours: "25:00-01:00": want HH:MM-HH:MM, like 21:00-09:00, or "" for none`,
				`config.yaml:4: office.language: unknown language "fr" (want en, ru or kk)`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse("config.yaml", []byte(strings.TrimPrefix(tt.src, "\n")))
			if err == nil {
				t.Fatalf("accepted: %+v", f)
			}
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("error type %T: %v", err, err)
			}
			if got := strings.Split(err.Error(), "\n"); strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sisnotify.yaml")
	if err := os.WriteFile(path, []byte("rules:\n  exit-visaa: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || !strings.HasPrefix(err.Error(), path+":2: rules.exit-visaa: unknown rule id (did you mean exit-visa?)") {
		t.Errorf("got %v", err)
	}
}

// evaluate builds the engine of src and evaluates one student.
func evaluate(t *testing.T, src string, s rules.Student, tr []rules.Travel, asOf string) []rules.Obligation {
	t.Helper()
	f := mustParse(t, src)
	cal, err := f.NewCalendar(nil)
	if err != nil {
		t.Fatal(err)
	}
	e, err := f.Engine(nil, cal)
	if err != nil {
		t.Fatal(err)
	}
	return e.Evaluate(s, tr, d(asOf), nil)
}

func find(obs []rules.Obligation, id rules.ID) *rules.Obligation {
	for i := range obs {
		if obs[i].Rule == id {
			return &obs[i]
		}
	}
	return nil
}

func TestOverridesChangeEvaluation(t *testing.T) {
	entered := rules.Student{ID: "S1", Status: rules.Active, Regime: rules.VisaFree, EnteredOn: d("2026-03-20")}

	t.Run("a configured day off moves the arrival due date", func(t *testing.T) {
		o := find(evaluate(t, "", entered, nil, "2026-03-27"), rules.ArrivalCheckIn)
		if o == nil || o.Due != d("2026-03-26") || o.Level != 2 {
			t.Fatalf("default: %+v", o)
		}
		o = find(evaluate(t, "calendar:\n  days_off: [2026-03-26]\n", entered, nil, "2026-03-27"), rules.ArrivalCheckIn)
		if o == nil || o.Due != d("2026-03-27") || o.Level != 1 {
			t.Errorf("with 26 March off: %+v", o)
		}
	})
	t.Run("registration period per regime in working days", func(t *testing.T) {
		src := "registration:\n  visa_free: 3wd\n"
		o := find(evaluate(t, src, entered, nil, "2026-03-24"), rules.Registration)
		if o == nil || o.Due != d("2026-03-30") || o.Level != 1 {
			t.Errorf("visa_free 3wd: %+v", o)
		}
		visa := entered
		visa.Regime = rules.Visa
		o = find(evaluate(t, src, visa, nil, "2026-03-24"), rules.Registration)
		if o == nil || o.Due != d("2026-03-23") || o.Level != 3 {
			t.Errorf("visa unchanged: %+v", o)
		}
		unknown := entered
		unknown.Regime = rules.RegimeUnknown
		o = find(evaluate(t, "registration:\n  default: 5d\n", unknown, nil, "2026-03-24"), rules.Registration)
		if o == nil || o.Due != d("2026-03-25") {
			t.Errorf("default 5d: %+v", o)
		}
	})
	t.Run("a rule switched off", func(t *testing.T) {
		if o := find(evaluate(t, "rules:\n  arrival-check-in:\n    enabled: false\n", entered, nil, "2026-03-27"), rules.ArrivalCheckIn); o != nil {
			t.Errorf("disabled rule: %+v", o)
		}
	})
	t.Run("a replaced ladder", func(t *testing.T) {
		src := `
rules:
  passport-renewal:
    due: anchor-3m
    steps:
      - at: due
        student: [email]
      - at: anchor-7d
        repeat: 2d
        student: [sms]
        dean: [email]
`
		s := rules.Student{ID: "S1", Status: rules.Active, PassportExpiresOn: d("2026-08-31")}
		o := find(evaluate(t, src, s, nil, "2026-06-01"), rules.PassportRenewal)
		if o == nil || o.Due != d("2026-05-31") || o.Level != 1 || o.Actions != rules.StudentEmail {
			t.Errorf("level 1: %+v", o)
		}
		o = find(evaluate(t, src, s, nil, "2026-08-29"), rules.PassportRenewal)
		if o == nil || o.Level != 2 || o.RepeatEvery != 2 || o.Actions != rules.StudentSMS|rules.DeanEmail {
			t.Errorf("level 2: %+v", o)
		}
	})
	t.Run("due and window overrides", func(t *testing.T) {
		app := rules.Student{ID: "A1", Status: rules.Applicant, Regime: rules.Visa, PlannedEntryOn: d("2026-08-20")}
		o := find(evaluate(t, "rules:\n  visa-invitation:\n    due: anchor-60d\n", app, nil, "2026-06-07"), rules.VisaInvitation)
		if o == nil || o.Due != d("2026-06-21") || o.Level != 1 {
			t.Errorf("visa-invitation 60d: %+v", o)
		}
		trip := []rules.Travel{{ID: "R1", StudentID: "S1", Kind: rules.Vacation, SubmittedOn: d("2026-06-25"), DepartureOn: d("2026-07-01"), DeanDecision: rules.NotRequired}}
		if o := find(evaluate(t, "", entered, trip, "2026-06-26"), rules.TravelLateNotice); o != nil {
			t.Errorf("6 days ahead is on time by default: %+v", o)
		}
		if o := find(evaluate(t, "rules:\n  travel-late-notice:\n    window: 7d\n", entered, trip, "2026-06-26"), rules.TravelLateNotice); o == nil {
			t.Error("a 7-day window makes 6 days late")
		}
		back := []rules.Travel{{ID: "R1", StudentID: "S1", Kind: rules.Term, SubmittedOn: d("2026-09-01"), DepartureOn: d("2026-09-10"),
			DepartedOn: d("2026-09-10"), ReturnedOn: d("2026-10-23"), DeanDecision: rules.Approved}}
		o = find(evaluate(t, "rules:\n  return-check-in:\n    due:\n      term: anchor+1wd\n", entered, back, "2026-10-23"), rules.ReturnCheckIn)
		if o == nil || o.Due != d("2026-10-27") { // Fri 23 + 1 wd = Tue 27 (Mon 26 Oct is Republic Day)
			t.Errorf("return-check-in term 1wd: %+v", o)
		}
	})
}

func TestQuietHours(t *testing.T) {
	q, err := ParseQuietHours("21:00-09:00")
	if err != nil {
		t.Fatal(err)
	}
	for m, want := range map[int]bool{20*60 + 59: false, 21 * 60: true, 23 * 60: true, 0: true, 8*60 + 59: true, 9 * 60: false, 12 * 60: false} {
		if q.Contains(m) != want {
			t.Errorf("%02d:%02d quiet=%v", m/60, m%60, !want)
		}
	}
	day, _ := ParseQuietHours("12:30-13:30")
	if !day.Contains(13*60) || day.Contains(14*60) {
		t.Error("daytime range")
	}
	none, err := ParseQuietHours("")
	if err != nil || none.Enabled || none.Contains(0) {
		t.Error("empty quiet hours")
	}
	f := mustParse(t, "sms:\n  quiet_hours: \"\"\n")
	if f.SMS.QuietHours == nil || f.SMS.QuietHours.Enabled {
		t.Errorf("explicit empty quiet hours: %+v", f.SMS.QuietHours)
	}
	if _, err := ParseQuietHours("09:00-09:00"); err == nil {
		t.Error("empty range accepted")
	}
}

func TestStaleAfter(t *testing.T) {
	if d := Default().StaleAfter; d != 7 {
		t.Errorf("default stale_after %d, want 7", d)
	}
	for src, want := range map[string]int{"stale_after: 10d\n": 10, "stale_after: 3\n": 3, "stale_after: 0d\n": 0} {
		f, err := Parse("s.yaml", []byte(src))
		if err != nil || f.StaleAfter != want {
			t.Errorf("%q: %v, %v; want %d", src, f, err, want)
		}
	}
	for _, src := range []string{"stale_after: -1d\n", "stale_after: a week\n", "stale_after: 400d\n", "stale_after: [7]\n"} {
		_, err := Parse("s.yaml", []byte(src))
		if err == nil || !strings.Contains(err.Error(), "s.yaml:1: stale_after") {
			t.Errorf("%q: %v, want an error naming s.yaml:1: stale_after", src, err)
		}
	}
}

func TestFeedGuardSection(t *testing.T) {
	f, err := Parse("g.yaml", []byte("feed_guard:\n  max_roster_drop: 35%\n  max_emptied: 0.1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if f.FeedGuard.MaxRosterDrop != 0.35 || f.FeedGuard.MaxEmptied != 0.1 {
		t.Errorf("feed guard %+v", f.FeedGuard)
	}
	if d := Default().FeedGuard; d.MaxRosterDrop != 0.2 || d.MaxEmptied != 0.2 {
		t.Errorf("default feed guard %+v, want 20%% each", d)
	}
	_, err = Parse("g.yaml", []byte("feed_guard:\n  max_roster_drop: 120%\n"))
	if err == nil || !strings.Contains(err.Error(), "g.yaml:2: feed_guard.max_roster_drop") {
		t.Errorf("a share over 100%%: %v", err)
	}
}

func TestOfficeDetailsPerLanguage(t *testing.T) {
	f, err := Parse("config.yaml", []byte(`
office:
  name: International Office
  address: Main building, room 105
  ru:
    name: Международный отдел
    address: Главный корпус, кабинет 105
    hours: Пн-Пт 09:00-18:00
  kk:
    name: Халықаралық бөлім
`))
	if err != nil {
		t.Fatal(err)
	}
	o := f.Office
	if o.Name != "International Office" || o.Address != "Main building, room 105" {
		t.Errorf("office %+v: the default details changed", o)
	}
	want := map[string]OfficeText{
		"ru": {Name: "Международный отдел", Address: "Главный корпус, кабинет 105", Hours: "Пн-Пт 09:00-18:00"},
		"kk": {Name: "Халықаралық бөлім"},
	}
	if len(o.In) != len(want) || o.In["ru"] != want["ru"] || o.In["kk"] != want["kk"] {
		t.Errorf("office.In = %+v, want %+v", o.In, want)
	}
}

func TestReportPause(t *testing.T) {
	if d := Default().ReportPause; d != 5 {
		t.Errorf("default report_pause %d, want 5", d)
	}
	for src, want := range map[string]int{"report_pause: 10wd\n": 10, "report_pause: 3\n": 3, "stale_after: 2d\n": 5} {
		f, err := Parse("s.yaml", []byte(src))
		if err != nil || f.ReportPause != want {
			t.Errorf("%q: %v, %v; want %d", src, f, err, want)
		}
	}
	for _, src := range []string{"report_pause: 0wd\n", "report_pause: 5d\n", "report_pause: -1\n", "report_pause: 31wd\n", "report_pause: a week\n", "report_pause: [5]\n"} {
		_, err := Parse("s.yaml", []byte(src))
		if err == nil || !strings.Contains(err.Error(), "s.yaml:1: report_pause") {
			t.Errorf("%q: %v, want an error naming s.yaml:1: report_pause", src, err)
		}
	}
}
