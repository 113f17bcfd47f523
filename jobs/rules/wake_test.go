package rules

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/iec-almaty/sisnotify/jobs/calendar"
	"github.com/iec-almaty/sisnotify/jobs/date"
)

// TestWakeHolds checks EvaluateWake's promise on a generated roster: on
// every date from the as-of date to the day before the wake date the
// engine returns exactly the same obligations, and the wake date is
// where they differ, or earlier. It checks the shipped catalog and
// catalogs whose look-back windows count working days and months.
func TestWakeHolds(t *testing.T) {
	catalogs := map[string][]Rule{"shipped": Defaults()}
	for name, unit := range map[string]Unit{"windows in working days": WorkingDays, "windows in months": Months} {
		c := Defaults()
		for i := range c {
			if !c[i].Window.IsZero() { // 3d, 30d, 90d become 1, 1, 3 months or 20, 20, 60 working days
				c[i].Window = Offset{N: max(1, c[i].Window.N/30), Unit: unit}
				if unit == WorkingDays {
					c[i].Window.N = c[i].Window.N * 20
				}
			}
		}
		catalogs[name] = c
	}
	const horizon = 420 // days looked ahead from each as-of date
	for name, catalog := range catalogs {
		t.Run(name, func(t *testing.T) {
			e, err := New(catalog, testPeriods, calendar.Default())
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(3, 4))
			var woken, never, tomorrow, evaluated int
			for _, asOf := range []date.Date{d("2026-08-20"), d("2026-12-01"), d("2027-03-15")} {
				students, travels := roster(600, asOf)
				for i := range students {
					s := students[i]
					if rng.IntN(4) == 0 { // reports: the student page's
						for j := range rng.IntN(3) + 1 {
							s.Reports = append(s.Reports, Report{ID: int64(i*10 + j), Kind: ReportKind(rng.IntN(5)), ReportedOn: asOf.AddDays(rng.IntN(60) - 40)})
						}
					}
					want, wake := e.EvaluateWake(s, travels[i], asOf, nil)
					if wake != 0 && wake <= asOf {
						t.Fatalf("%s on %s: wake %s is not after the as-of date", s.ID, asOf, wake)
					}
					end := asOf.AddDays(horizon)
					if wake != 0 {
						end = min(end, wake-1)
					}
					for day := asOf + 1; day <= end; day++ {
						evaluated++
						if got := e.Evaluate(s, travels[i], day, nil); !slices.Equal(got, want) {
							t.Fatalf("%s: as of %s it wakes on %s, but on %s the obligations differ:\n%s: %s\n%s: %s",
								s.ID, asOf, wake, day, asOf, show(want), day, show(got))
						}
					}
					switch {
					case wake == 0:
						never++
					case wake == asOf+1:
						tomorrow++
					default:
						woken++
					}
				}
			}
			// The promise is only worth something when most students can
			// wait: a wake date of tomorrow for everyone would also hold.
			total := never + tomorrow + woken
			t.Logf("%d students: %d never wake by date alone, %d tomorrow, %d later; %d later dates evaluated", total, never, tomorrow, woken, evaluated)
			if tomorrow*10 > total {
				t.Fatalf("%d of %d students wake tomorrow: more than a tenth", tomorrow, total)
			}
		})
	}
}

// TestWakeIsWhereItChanges checks, on the shipped catalog, that wake dates
// are not merely early: for most students the obligations do differ on
// the wake date.
func TestWakeIsWhereItChanges(t *testing.T) {
	e := newEngine(t, Defaults())
	asOf := d("2026-12-01")
	students, travels := roster(2000, asOf)
	var woken, changed int
	for i := range students {
		want, wake := e.EvaluateWake(students[i], travels[i], asOf, nil)
		if wake == 0 {
			continue
		}
		woken++
		if !slices.Equal(e.Evaluate(students[i], travels[i], wake, nil), want) {
			changed++
		}
	}
	t.Logf("%d of %d students with a wake date: the obligations change on it", changed, woken)
	if changed*2 < woken {
		t.Fatalf("the obligations change on the wake date for %d of %d students only", changed, woken)
	}
}

func show(obs []Obligation) string {
	s := ""
	for _, o := range obs {
		s += fmt.Sprintf("\n  %s %s anchor %s due %s level %d step %s repeat %d moot %q", o.Rule, o.SubjectID, o.Anchor, o.Due, o.Level, o.StepDate, o.RepeatEvery, o.Moot)
	}
	return s
}
