package templates

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/iec-almaty/sisnotify/integrations/sms"
	"github.com/iec-almaty/sisnotify/jobs/calendar"
	"github.com/iec-almaty/sisnotify/jobs/date"
	"github.com/iec-almaty/sisnotify/jobs/rules"
)

// smsOffice is the office as a real installation configures it: the
// university's short name starts every SMS, the phone ends it.
var smsOffice = Office{
	University: "KazNU",
	Name:       "International Office",
	Address:    "Main building, room 105, 71 al-Farabi Avenue, Almaty",
	Hours:      "Mon-Fri 09:00-18:00",
	Phone:      "+7 727 355 05 67",
	Email:      "international@kaznu.kz",
}

// smsStep is a step of a built-in ladder that texts the student, with the
// nights on which a student can receive it: from the step's date to the
// next step's (a step is sent on the first night it is the reached one,
// which may be long after its date when the data or the installation came
// late).
type smsStep struct {
	rule   string
	level  int
	urgent bool        // office: urgent at this step
	nights []date.Date // run dates on which this step can be the reached one
	n      Notice      // the sample notice, dates set (longest month)
}

// smsSteps lists, from the built-in catalog (jobs/rules), every step whose
// student part has sms in lang, with sample dates on the longest month.
func smsSteps(t *testing.T, s *Set, lang string) []smsStep {
	t.Helper()
	cal := calendar.Default()
	var out []smsStep
	for _, r := range rules.Defaults() {
		if !s.Has(string(r.ID), AudienceStudent, "en") {
			continue // a rule without notices of its own
		}
		n := longDates(sample(string(r.ID), AudienceStudent, lang, 1, 0))
		n.Office = smsOffice
		base := map[rules.Base]date.Date{rules.BaseAnchor: n.Anchor, rules.BaseDue: n.Due, rules.BaseDeparture: n.Departure}
		if d := r.Due.Expr; d.Base == rules.BaseAnchor {
			n.Due = d.Off.Apply(n.Anchor, cal)
			base[rules.BaseDue] = n.Due
		}
		var at []date.Date
		for _, st := range r.Steps {
			at = append(at, st.At.Off.Apply(base[st.At.Base], cal))
		}
		for i, st := range r.Steps {
			if !slices.Contains(st.Actions.Words("student"), "sms") {
				continue
			}
			from, to := at[i], date.MustParse("9999-12-31")
			if i+1 < len(at) {
				to = at[i+1]
			}
			var nights []date.Date
			for _, d := range []date.Date{from, n.Due.AddDays(-3), n.Due.AddDays(-1), n.Due,
				n.Due.AddDays(5), n.Due.AddDays(40), n.Anchor, n.Anchor.AddDays(3), from.AddDays(40)} {
				if moot := n.Departure; !moot.IsZero() && d > moot && r.ID != rules.ReturnCheckIn {
					continue // the trip has started: the obligation closed as moot
				}
				if r.ID == rules.VisaInvitation && d > n.Anchor {
					continue // the planned entry has passed: closed as moot
				}
				if d >= from && d < to && !slices.Contains(nights, d) {
					nights = append(nights, d)
				}
			}
			m := n
			m.Level = i + 1
			m.OfficeUrgent = slices.Contains(st.Actions.Words("office"), "urgent")
			out = append(out, smsStep{string(r.ID), i + 1, m.OfficeUrgent, nights, m})
		}
	}
	if len(out) < 10 {
		t.Fatalf("found %d SMS steps in the catalog, want at least 10", len(out))
	}
	return out
}

// smsState is the day a notice is rendered on, relative to its dates.
type smsState struct {
	name string
	// asOf returns the run date for a notice's due date and anchor.
	asOf func(due, anchor date.Date) date.Date
}

var smsStates = []smsState{
	{"3-days-left", func(due, _ date.Date) date.Date { return due.AddDays(-3) }},
	{"due-today", func(due, _ date.Date) date.Date { return due }},
	{"5-days-overdue", func(due, _ date.Date) date.Date { return due.AddDays(5) }},
	// Found late: the first night of an installation, long after the date.
	{"40-days-overdue", func(due, _ date.Date) date.Date { return due.AddDays(40) }},
	// "Your passport (registration) has expired", for the rules whose
	// anchor is an expiry date; past the due date for the others.
	{"anchor-passed", func(due, anchor date.Date) date.Date {
		if anchor > due {
			return anchor.AddDays(3)
		}
		return due.AddDays(3)
	}},
}

// longDates moves a sample notice so that its dates fall on the longest
// day-and-month of the language (28 September, 28 желтоқсан + a case
// suffix), and returns it.
func longDates(n Notice) Notice {
	target := map[string]string{"en": "2026-09-28", "ru": "2026-09-28", "kk": "2026-12-28"}[Lang(n.Lang)]
	shift := date.MustParse(target).Sub(n.Due)
	for _, d := range []*date.Date{&n.Due, &n.Anchor, &n.Departure, &n.Return} {
		if !d.IsZero() {
			*d = d.AddDays(shift)
		}
	}
	return n
}

// dayName names the kind of day asOf is for n.
func dayName(n Notice) string {
	switch {
	case !n.Anchor.IsZero() && n.Anchor > n.Due && n.AsOf >= n.Anchor:
		return fmt.Sprintf("anchor%+d", n.AsOf.Sub(n.Anchor))
	case n.AsOf < n.Due:
		return fmt.Sprintf("%d-days-left", n.Due.Sub(n.AsOf))
	case n.AsOf == n.Due:
		return "due-today"
	}
	return fmt.Sprintf("%d-days-overdue", n.AsOf.Sub(n.Due))
}

// TestSMSSegments renders the SMS of every step that texts a student in the
// built-in ladders, in every language, on every kind of night the step can
// be sent (days left, due today, overdue, found long overdue, passport or
// registration expired), with realistic office data and the longest month
// names, and counts its parts with the providers' own count
// (integrations/sms): none may take more than 2 parts, at least 80 % of
// the Russian and Kazakh ones must fit one UCS-2 part (70 characters), and
// every English one one GSM-7 part (160). It also logs the share over every
// level × kind of day, possible or not.
func TestSMSSegments(t *testing.T) {
	s := set(t)
	for _, lang := range Languages {
		total, one := 0, 0
		var long []string
		check := func(where string, n Notice, count bool) {
			text, err := s.SMS(n)
			if err != nil {
				t.Fatal(err)
			}
			enc, parts := sms.Segments(text)
			if !strings.HasPrefix(text, "KazNU: ") {
				t.Errorf("%s: SMS does not start with the university: %q", where, text)
			}
			if !strings.HasSuffix(text, " +77273550567") {
				t.Errorf("%s: SMS does not end with the office phone: %q", where, text)
			}
			if lang == "en" && enc != sms.GSM7 {
				t.Errorf("%s: English SMS is %s: %q", where, enc, text)
			}
			if parts > 2 {
				t.Errorf("%s: %d parts (%s, %d characters): %q", where, parts, enc, len([]rune(text)), text)
			}
			if lang == "en" && parts > 1 {
				t.Errorf("%s: English SMS takes %d parts: %q", where, parts, text)
			}
			if !count {
				return
			}
			total++
			if parts == 1 {
				one++
			} else {
				long = append(long, fmt.Sprintf("%s (%d): %s", where, len([]rune(text)), text))
			}
		}
		steps := smsSteps(t, s, lang)
		for _, st := range steps {
			for _, night := range st.nights {
				n := st.n
				n.AsOf = night
				check(fmt.Sprintf("%s/%s L%d %s", lang, st.rule, st.level, dayName(n)), n, true)
			}
		}
		share := 100 * float64(one) / float64(total)
		t.Logf("%s: %d of %d student SMS (every SMS step x the nights it can be sent) fit one part: %.0f %%", lang, one, total, share)
		for _, l := range long {
			t.Logf("  2 parts: %s", l)
		}
		if lang != "en" && share < 80 {
			t.Errorf("%s: only %.0f %% of student SMS fit one part, want at least 80 %%", lang, share)
		}
		// Every level x every kind of day, whether the ladder can send it
		// or not: logged, and none over 2 parts.
		total, one, long = 0, 0, nil
		for _, st := range steps {
			for _, state := range smsStates {
				n := st.n
				n.AsOf = state.asOf(n.Due, n.Anchor)
				check(fmt.Sprintf("%s/%s L%d %s", lang, st.rule, st.level, state.name), n, true)
			}
		}
		t.Logf("%s: %d of %d (every SMS step x every kind of day) fit one part: %.0f %%", lang, one, total, 100*float64(one)/float64(total))
		for _, l := range long {
			t.Logf("  2 parts: %s", l)
		}
	}
}

// Every student SMS, of every rule (a configuration may text a step the
// built-in ladders do not), at every level and on every kind of day, keeps
// to two parts, starts with the university and ends with the phone.
func TestEverySMSFitsTwoParts(t *testing.T) {
	s := set(t)
	for _, rule := range s.Rules() {
		for _, lang := range Languages {
			for level := 1; level <= 5; level++ {
				for _, urgent := range []bool{false, true} {
					for _, state := range smsStates {
						n := longDates(sample(rule, AudienceStudent, lang, level, 0))
						n.AsOf = state.asOf(n.Due, n.Anchor)
						n.OfficeUrgent = urgent
						n.Office = smsOffice
						n.VisaRegime = "visa"
						text, err := s.SMS(n)
						if err != nil {
							t.Fatal(err)
						}
						if _, parts := sms.Segments(text); parts > 2 {
							t.Errorf("%s/%s L%d %s urgent=%v: %d parts: %q", lang, rule, level, state.name, urgent, parts, text)
						}
						if !strings.HasPrefix(text, "KazNU: ") || !strings.HasSuffix(text, "+77273550567") {
							t.Errorf("%s/%s: no university or phone: %q", lang, rule, text)
						}
					}
				}
			}
		}
	}
}
