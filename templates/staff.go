package templates

import "github.com/iec-almaty/sisnotify/jobs/date"

// What staff notices (the office's urgent email, the dean's email) compute
// from a notice beyond its fields. They are methods of the view, so a
// template calls them like fields: {{.StepsInAll}}, {{date .DecideBy}}.

// StepsInAll is how many steps the notice's ladder has: .Steps when the
// configuration says, else the built-in ladder's length (never fewer than
// the notice's own level). A staff notice says "step 3 of 3" with it.
func (v noticeView) StepsInAll() int {
	n := v.Steps
	if n <= 0 {
		n = builtinSteps[v.Rule]
	}
	if n < v.Level {
		n = v.Level
	}
	return n
}

// DecideBy is the one date by which a dean is asked to decide on a trip,
// so that the subject and the body of a dean's email never ask for two
// different dates. For travel-dean-approval it is the due date while that
// has not passed, then the departure date. For another travel rule (a second
// term-time trip) it is the same date travel-dean-approval asks for under
// the built-in ladder, 3 days before the departure (the page's notice
// period), then the departure date: the dean gets both emails the same day.
// Without a departure it is the due date.
func (v noticeView) DecideBy() date.Date {
	if v.Departure.IsZero() {
		return v.Due
	}
	if v.Rule == "travel-dean-approval" {
		if v.Overdue {
			return v.Departure
		}
		return v.Due
	}
	if by := v.Departure.AddDays(-3); v.AsOf.Sub(by) <= 0 {
		return by
	}
	return v.Departure
}

// DecideIn is the number of days from the run's date to DecideBy: 0 on
// the day itself, negative once it has passed.
func (v noticeView) DecideIn() int { return v.DecideBy().Sub(v.AsOf) }
