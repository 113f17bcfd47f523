// Package calendar is Kazakhstan's working-day calendar: which days are
// working days, and what date "N working days after" a date is.
//
// The calendar is data, not code. kz.csv (embedded) transcribes every row of
// the table of days off 2025-2027 (kept as testdata/kz-days-off-2025-2027.md,
// with the rules behind it; a test checks the two agree): the weekdays that are days off
// (public holidays, holidays moved off a weekend, days off transferred by
// decree) and the weekend days that a decree made working days. For a year
// the table covers, a day is a working day when it is Monday to Friday and
// not listed "off", or listed "working".
//
// Outside the table's years the calendar falls back to rules: Saturday and
// Sunday off, plus the fixed-date public holidays (1–2 January, 7 January,
// 8 March, 21–23 March, 1 May, 7 May, 9 May, 6 July, Constitution Day —
// 30 August up to 2026, 15 March from 2027 —, 25 October and 16 December),
// where a holiday falling on a Saturday or Sunday moves to the next working
// day that is not itself a holiday (7 January never moves). Kurban Ait
// (lunar) and decree transfers cannot be known there. The first time a
// Calendar answers from the fallback it logs one warning; build a new
// Calendar for every run, so the warning appears once per run.
//
// An operator corrects or extends the calendar with Overrides (the
// configuration's calendar section): extra days off, extra working days,
// and the last year the operator has checked (no warning up to it).
//
// A Calendar is immutable after New apart from its warned-once flag, and
// safe for concurrent use.
package calendar

import (
	"bytes"
	_ "embed"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/iec-almaty/sisnotify/jobs/date"
)

//go:embed kz.csv
var kzCSV []byte

// Entry is one row of the shipped table.
type Entry struct {
	Date    date.Date
	Working bool // true: a weekend day made a working day; false: a weekday off
	Reason  string
}

// Overrides corrects or extends the shipped table. A date in DaysOff is a
// day off and a date in WorkingDays a working day, whatever the table or
// the fallback rules say; a date may not be in both.
type Overrides struct {
	DaysOff     []date.Date
	WorkingDays []date.Date
	// VerifiedThrough, when after the table's last year, is the last year
	// an operator has checked (completing it with DaysOff and WorkingDays
	// where the fallback rules are wrong): no fallback warning up to it.
	VerifiedThrough int
}

// The precomputed range: years around the table, so that any realistic date
// is answered from two slices. Dates outside it are still answered exactly,
// day by day, only slower.
const (
	yearsBefore = 10
	yearsAfter  = 40
)

// Calendar answers working-day questions. Build it with New.
type Calendar struct {
	lo, hi date.Date   // precomputed range, inclusive
	cum    []int32     // cum[i]: working days in [lo, lo+i); len = hi-lo+2
	work   []date.Date // every working day in [lo, hi], ascending

	known    [2]date.Date // first and last day with official (or verified) data
	firstY   int          // table's first year
	lastY    int          // table's (or verified) last year
	extraOff map[date.Date]bool
	extraOn  map[date.Date]bool

	log    *slog.Logger
	warned atomic.Bool
}

var table = sync.OnceValues(func() ([]Entry, error) { return parseTable(kzCSV) })

// Table returns the shipped rows, in date order.
func Table() []Entry {
	t, err := table()
	if err != nil {
		panic(err) // the embedded file is tested; this is a build defect
	}
	return slices.Clone(t)
}

// parseTable reads kz.csv (lines starting with # are comments; a reason
// with a comma is quoted, as CSV quotes) and checks every row against the
// calendar: the weekday column must be the date's, an "off" row must be a
// weekday and a "working" row a weekend day, and dates must ascend.
func parseTable(data []byte) ([]Entry, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.Comment = '#'
	r.FieldsPerRecord = 4
	r.TrimLeadingSpace = true
	r.ReuseRecord = true
	var out []Entry
	for {
		f, err := r.Read()
		if err == io.EOF {
			break
		}
		var perr *csv.ParseError
		if errors.As(err, &perr) && errors.Is(perr.Err, csv.ErrFieldCount) {
			return nil, fmt.Errorf("kz.csv:%d: want date,day,status,reason", perr.Line)
		}
		if err != nil {
			return nil, fmt.Errorf("kz.csv: %w", err)
		}
		line, _ := r.FieldPos(0)
		d, err := date.Parse(f[0])
		if err != nil {
			return nil, fmt.Errorf("kz.csv:%d: %v", line, err)
		}
		if wd := d.Weekday().String()[:3]; wd != f[1] {
			return nil, fmt.Errorf("kz.csv:%d: %s is a %s, not %s", line, f[0], wd, f[1])
		}
		weekend := isWeekend(d)
		e := Entry{Date: d, Reason: strings.TrimSpace(f[3])}
		switch f[2] {
		case "off":
			if weekend {
				return nil, fmt.Errorf("kz.csv:%d: %s is already a weekend day", line, f[0])
			}
		case "working":
			if !weekend {
				return nil, fmt.Errorf("kz.csv:%d: %s is already a working day", line, f[0])
			}
			e.Working = true
		default:
			return nil, fmt.Errorf("kz.csv:%d: status %q: want off or working", line, f[2])
		}
		if n := len(out); n > 0 && out[n-1].Date >= d {
			return nil, fmt.Errorf("kz.csv:%d: dates must ascend", line)
		}
		out = append(out, e)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("kz.csv: no rows")
	}
	return out, nil
}

func isWeekend(d date.Date) bool {
	w := d.Weekday()
	return w == time.Saturday || w == time.Sunday
}

// New builds a calendar from the shipped table and the overrides. log
// receives the one fallback warning; nil discards it.
func New(o Overrides, log *slog.Logger) (*Calendar, error) {
	rows, err := table()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Calendar{log: log, extraOff: map[date.Date]bool{}, extraOn: map[date.Date]bool{}}
	for _, d := range o.DaysOff {
		c.extraOff[d] = true
	}
	for _, d := range o.WorkingDays {
		if c.extraOff[d] {
			return nil, fmt.Errorf("calendar: %s is both a day off and a working day", d)
		}
		c.extraOn[d] = true
	}
	c.firstY, c.lastY = rows[0].Date.Year(), rows[len(rows)-1].Date.Year()
	c.lastY = max(c.lastY, o.VerifiedThrough)
	c.known = [2]date.Date{date.Of(c.firstY, 1, 1), date.Of(c.lastY, 12, 31)}

	c.lo, c.hi = date.Of(c.firstY-yearsBefore, 1, 1), date.Of(c.lastY+yearsAfter, 12, 31)
	n := c.hi.Sub(c.lo) + 1
	working := make([]bool, n)
	for i := range working {
		working[i] = !isWeekend(c.lo.AddDays(i))
	}
	tableFirst, tableLast := rows[0].Date.Year(), rows[len(rows)-1].Date.Year()
	var buf [holidayBuf]date.Date
	for y := c.firstY - yearsBefore; y <= c.lastY+yearsAfter; y++ {
		if y >= tableFirst && y <= tableLast {
			continue
		}
		for _, d := range fallbackDaysOff(y, buf[:0]) {
			if i := d.Sub(c.lo); i >= 0 && i < n {
				working[i] = false
			}
		}
	}
	for _, e := range rows {
		working[e.Date.Sub(c.lo)] = e.Working
	}
	for d := range c.extraOff {
		if i := d.Sub(c.lo); i >= 0 && i < n {
			working[i] = false
		}
	}
	for d := range c.extraOn {
		if i := d.Sub(c.lo); i >= 0 && i < n {
			working[i] = true
		}
	}
	c.cum = make([]int32, n+1)
	for i, w := range working {
		c.cum[i+1] = c.cum[i]
		if w {
			c.cum[i+1]++
			c.work = append(c.work, c.lo.AddDays(i))
		}
	}
	return c, nil
}

// Default is New with no overrides and no logger.
func Default() *Calendar {
	c, err := New(Overrides{}, nil)
	if err != nil {
		panic(err)
	}
	return c
}

// Years returns the first and last year answered from official data (the
// table, or up to Overrides.VerifiedThrough).
func (c *Calendar) Years() (first, last int) { return c.firstY, c.lastY }

// FallbackUsed reports whether this calendar has answered a question from
// the fallback rules (and so has logged its warning).
func (c *Calendar) FallbackUsed() bool { return c.warned.Load() }

// IsWorkingDay reports whether d is a working day.
func (c *Calendar) IsWorkingDay(d date.Date) bool {
	c.check(d, d)
	if d >= c.lo && d <= c.hi {
		i := d - c.lo
		return c.cum[i+1] != c.cum[i]
	}
	return c.slowWorking(d)
}

// AddWorkingDays returns d moved by n working days. For n > 0 it is the
// date reached by stepping forward from d one day at a time, counting only
// working days, until n are counted: the n-th working day strictly after d
// (Friday 2026-03-20 + 1 is Thursday 2026-03-26, past the weekend and the
// Nauryz days off). For n < 0 it steps backward the same way: the |n|-th
// working day strictly before d. For n = 0 it is d itself, working day or
// not.
func (c *Calendar) AddWorkingDays(d date.Date, n int) date.Date {
	if n == 0 {
		return d
	}
	var r date.Date
	if d >= c.lo && d <= c.hi {
		i := int(d - c.lo)
		if n > 0 {
			if k := int(c.cum[i+1]) + n - 1; k < len(c.work) {
				r = c.work[k]
			}
		} else if k := int(c.cum[i]) + n; k >= 0 {
			r = c.work[k]
		}
	}
	if r == 0 {
		r = c.slowAdd(d, n)
	}
	if n > 0 {
		c.check(d+1, r)
	} else {
		c.check(r, d-1)
	}
	return r
}

// check logs the fallback warning, once, when [from, to] leaves the years
// with official data.
func (c *Calendar) check(from, to date.Date) {
	if from >= c.known[0] && to <= c.known[1] {
		return
	}
	if c.warned.Load() || !c.warned.CompareAndSwap(false, true) {
		return
	}
	y := from.Year()
	if from >= c.known[0] {
		y = to.Year()
	}
	c.log.Warn("working-day calendar has no official data for this year; using weekends and fixed-date holidays (Kurban Ait and decree transfers unknown); add them to the configuration's calendar section",
		"year", y, "official_years", fmt.Sprintf("%d-%d", c.firstY, c.lastY))
}

func (c *Calendar) slowAdd(d date.Date, n int) date.Date {
	step := 1
	if n < 0 {
		step, n = -1, -n
	}
	for n > 0 {
		d += date.Date(step)
		if c.slowWorking(d) {
			n--
		}
	}
	return d
}

// slowWorking answers for any date, from overrides and rules; it never looks
// at the precomputed slices. Dates of the table's years are always inside
// the precomputed range, so the table is not needed here.
func (c *Calendar) slowWorking(d date.Date) bool {
	if c.extraOn[d] {
		return true
	}
	if c.extraOff[d] {
		return false
	}
	if d >= c.lo && d <= c.hi {
		i := d - c.lo
		return c.cum[i+1] != c.cum[i]
	}
	if isWeekend(d) {
		return false
	}
	var buf [holidayBuf]date.Date
	return !slices.Contains(fallbackDaysOff(d.Year(), buf[:0]), d)
}

const holidayBuf = 24

type holiday struct {
	m       time.Month
	d       int
	movable bool
}

// fixedHolidays are Kazakhstan's fixed-date public holidays (Kurban Ait is
// lunar and absent). Constitution Day is added per year.
var fixedHolidays = [...]holiday{
	{time.January, 1, true}, {time.January, 2, true},
	{time.January, 7, false}, // Orthodox Christmas: never moved
	{time.March, 8, true},
	{time.March, 21, true}, {time.March, 22, true}, {time.March, 23, true},
	{time.May, 1, true}, {time.May, 7, true}, {time.May, 9, true},
	{time.July, 6, true},
	{time.October, 25, true},
	{time.December, 16, true},
}

// fallbackDaysOff appends to buf the weekdays off of year y by the rules:
// fixed-date holidays on a weekday, and each movable holiday that falls on
// a Saturday or Sunday moved to the next weekday that is not already a
// holiday, in date order (so 21–23 March on Sat–Mon give Mon–Wed off).
func fallbackDaysOff(y int, buf []date.Date) []date.Date {
	var hs [len(fixedHolidays) + 1]holiday
	copy(hs[:], fixedHolidays[:])
	if y <= 2026 {
		hs[len(fixedHolidays)] = holiday{time.August, 30, true}
	} else {
		hs[len(fixedHolidays)] = holiday{time.March, 15, true}
	}
	slices.SortFunc(hs[:], func(a, b holiday) int {
		return int(date.Of(y, a.m, a.d) - date.Of(y, b.m, b.d))
	})
	for _, h := range hs {
		if d := date.Of(y, h.m, h.d); !isWeekend(d) {
			buf = append(buf, d)
		}
	}
	isHoliday := func(d date.Date) bool {
		if slices.Contains(buf, d) {
			return true
		}
		for _, h := range hs {
			if date.Of(y, h.m, h.d) == d {
				return true
			}
		}
		return false
	}
	for _, h := range hs {
		d := date.Of(y, h.m, h.d)
		if !h.movable || !isWeekend(d) {
			continue
		}
		m := d + 1
		for isWeekend(m) || isHoliday(m) {
			m++
		}
		buf = append(buf, m)
	}
	slices.Sort(buf)
	return buf
}
