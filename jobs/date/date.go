// Package date is the civil calendar date every rule, calendar and snapshot
// row uses: a day number with no time of day and no time zone.
//
// A Date is a compact int32 (days since 0000-03-01 in the proleptic
// Gregorian calendar), so evaluation compares and adds integers rather than
// time.Time values. The zero Date means "not set", which is how a NULL date
// column of the SIS reaches the rules.
package date

import (
	"fmt"
	"time"
	_ "time/tzdata" // Asia/Almaty must be right on machines without a zoneinfo database.
)

// Date is a calendar day. The zero value is "no date".
type Date int32

// epochShift is the day number of 1970-01-01 in this numbering.
const epochShift = 719468

// Of returns the date of y-m-d. Out-of-range months and days are normalised
// the way time.Date does (2026-02-30 is 2026-03-02).
func Of(y int, m time.Month, d int) Date {
	if m < 1 || m > 12 || d < 1 || d > 28 {
		t := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
		y, m, d = t.Date()
	}
	return fromCivil(y, int(m), d)
}

// fromCivil is Howard Hinnant's days_from_civil, shifted so that the zero
// value is never a real date in range.
func fromCivil(y, m, d int) Date {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return Date(era*146097 + doe + 1)
}

// Civil returns the year, month and day of d.
func (d Date) Civil() (year int, month time.Month, day int) {
	z := int(d) - 1
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era = (z - 146096) / 146097
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y := yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	dd := doy - (153*mp+2)/5 + 1
	mm := mp + 3
	if mm > 12 {
		mm -= 12
	}
	if mm <= 2 {
		y++
	}
	return y, time.Month(mm), dd
}

// FromTime returns the calendar date of t in t's own location.
func FromTime(t time.Time) Date {
	y, m, d := t.Date()
	return fromCivil(y, int(m), d)
}

// Today returns the date now is in loc.
func Today(now time.Time, loc *time.Location) Date { return FromTime(now.In(loc)) }

// Parse reads an ISO date, YYYY-MM-DD, and rejects anything else,
// including dates that do not exist (2026-02-30) and the year 0000.
func Parse(s string) (Date, error) {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return 0, fmt.Errorf("date %q: want YYYY-MM-DD", s)
	}
	y, ok1 := digits(s[0:4])
	m, ok2 := digits(s[5:7])
	d, ok3 := digits(s[8:10])
	// Year 0000 does not exist in PostgreSQL (1 BC follows AD 1), and
	// 0000-02-29 would be the zero Date, "no date".
	if !ok1 || !ok2 || !ok3 || y < 1 || m < 1 || m > 12 || d < 1 || d > DaysIn(y, time.Month(m)) {
		return 0, fmt.Errorf("date %q: not a calendar date", s)
	}
	return fromCivil(y, m, d), nil
}

// MustParse is Parse for constants in tests and tables; it panics on error.
func MustParse(s string) Date {
	d, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return d
}

func digits(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// IsZero reports whether d is unset.
func (d Date) IsZero() bool { return d == 0 }

// String formats d as YYYY-MM-DD, or "" when unset.
func (d Date) String() string {
	if d == 0 {
		return ""
	}
	y, m, dd := d.Civil()
	return fmt.Sprintf("%04d-%02d-%02d", y, int(m), dd)
}

// AppendISO appends YYYY-MM-DD to b without allocating.
func (d Date) AppendISO(b []byte) []byte {
	y, m, dd := d.Civil()
	return append(b,
		byte('0'+y/1000%10), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+int(m)/10), byte('0'+int(m)%10), '-',
		byte('0'+dd/10), byte('0'+dd%10))
}

// Time returns midnight of d in loc.
func (d Date) Time(loc *time.Location) time.Time {
	y, m, dd := d.Civil()
	return time.Date(y, m, dd, 0, 0, 0, 0, loc)
}

// AddDays returns d moved by n calendar days.
func (d Date) AddDays(n int) Date { return d + Date(n) }

// AddMonths returns d moved by n calendar months, clamped to the last day of
// the target month: 2026-08-31 - 6 months is 2026-02-28.
func (d Date) AddMonths(n int) Date {
	y, m, dd := d.Civil()
	total := y*12 + int(m) - 1 + n
	ny, nm := total/12, time.Month(total%12+1)
	if total < 0 && total%12 != 0 {
		ny = (total - 11) / 12
		nm = time.Month(total - ny*12 + 1)
	}
	if last := DaysIn(ny, nm); dd > last {
		dd = last
	}
	return fromCivil(ny, int(nm), dd)
}

// Sub returns d - e in days.
func (d Date) Sub(e Date) int { return int(d - e) }

// Weekday returns the day of the week of d.
func (d Date) Weekday() time.Weekday {
	// 1970-01-01 (day epochShift+1) was a Thursday.
	w := (int(d) - 1 - epochShift + 4) % 7
	if w < 0 {
		w += 7
	}
	return time.Weekday(w)
}

// Year returns d's year.
func (d Date) Year() int { y, _, _ := d.Civil(); return y }

// DaysIn is the length of month m of year y (proleptic Gregorian, as
// PostgreSQL counts).
func DaysIn(y int, m time.Month) int {
	switch m {
	case time.February:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case time.April, time.June, time.September, time.November:
		return 30
	}
	return 31
}

// UnixEpoch is 1970-01-01. A SQL date column becomes a Date without
// parsing as (col - DATE '1970-01-01') + UnixEpoch.
const UnixEpoch Date = epochShift + 1
