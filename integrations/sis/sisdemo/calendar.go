package sisdemo

import (
	"strconv"
	"time"

	"github.com/iec-almaty/sisnotify/jobs/date"
)

// Period is one row of sis.academic_periods.
type Period struct {
	ID       string // "2026-fall", "2026-winter", "2027-spring", "2027-summer"
	Kind     string // "semester", "winter_break", "summer_break"
	StartsOn date.Date
	EndsOn   date.Date
}

// Period kinds.
const (
	Semester    = "semester"
	WinterBreak = "winter_break"
	SummerBreak = "summer_break"
)

// academicYear returns the four periods of the academic year that starts in
// September of y: fall semester 1 Sep-24 Dec, winter break 25 Dec-25 Jan,
// spring semester 26 Jan-31 May, summer break 1 Jun-31 Aug. An id names
// the calendar year the period starts in.
func academicYear(y int) [4]Period {
	n := strconv.Itoa(y)
	n1 := strconv.Itoa(y + 1)
	return [4]Period{
		{n + "-fall", Semester, date.Of(y, time.September, 1), date.Of(y, time.December, 24)},
		{n + "-winter", WinterBreak, date.Of(y, time.December, 25), date.Of(y+1, time.January, 25)},
		{n1 + "-spring", Semester, date.Of(y+1, time.January, 26), date.Of(y+1, time.May, 31)},
		{n1 + "-summer", SummerBreak, date.Of(y+1, time.June, 1), date.Of(y+1, time.August, 31)},
	}
}

// Calendar returns the academic periods Generate writes for asOf, in
// chronological order: the academic years starting in 2025, 2026 and 2027,
// widened when needed to cover the academic year asOf falls in and the
// next one.
func Calendar(asOf date.Date) []Period {
	ay := academicYearOf(asOf)
	return years(min(2025, ay), max(2027, ay+1))
}

// history is Calendar with the academic year before asOf's as well: the
// generator places trips long done in it.
func history(asOf date.Date) []Period {
	ay := academicYearOf(asOf)
	return years(min(2025, ay-1), max(2027, ay+1))
}

// academicYearOf returns the year whose September starts the academic
// year d falls in.
func academicYearOf(d date.Date) int {
	y, m, _ := d.Civil()
	if m < time.September {
		return y - 1
	}
	return y
}

func years(first, last int) []Period {
	ps := make([]Period, 0, 4*(last-first+1))
	for y := first; y <= last; y++ {
		a := academicYear(y)
		ps = append(ps, a[:]...)
	}
	return ps
}

// periodAt returns the index of the period containing d, or -1.
func periodAt(ps []Period, d date.Date) int {
	for i, p := range ps {
		if p.StartsOn <= d && d <= p.EndsOn {
			return i
		}
	}
	return -1
}
