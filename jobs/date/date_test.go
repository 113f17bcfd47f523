package date

import (
	"testing"
	"time"
)

func TestRoundTripMatchesTime(t *testing.T) {
	start := time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)
	prev := Date(0)
	for i := 0; i < 200*366; i++ {
		tm := start.AddDate(0, 0, i)
		d := FromTime(tm)
		if prev != 0 && d != prev+1 {
			t.Fatalf("%s: day number %d does not follow %d", tm.Format(time.DateOnly), d, prev)
		}
		prev = d
		if got, want := d.String(), tm.Format(time.DateOnly); got != want {
			t.Fatalf("String() = %s, want %s", got, want)
		}
		if got := string(d.AppendISO(nil)); got != tm.Format(time.DateOnly) {
			t.Fatalf("AppendISO = %s, want %s", got, tm.Format(time.DateOnly))
		}
		if d.Weekday() != tm.Weekday() {
			t.Fatalf("%s: weekday %s, want %s", tm.Format(time.DateOnly), d.Weekday(), tm.Weekday())
		}
		if !d.Time(time.UTC).Equal(tm) {
			t.Fatalf("Time() = %s, want %s", d.Time(time.UTC), tm)
		}
	}
}

func TestParse(t *testing.T) {
	for _, bad := range []string{"", "2026-02-30", "2026-13-01", "2026-1-01", "20260101", "2026-01-0x", "２０２６-01-01"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) succeeded, want an error", bad)
		}
	}
	if d := MustParse("2028-02-29"); d.String() != "2028-02-29" {
		t.Errorf("leap day round trip: %s", d)
	}
	if !Date(0).IsZero() || Date(0).String() != "" {
		t.Error("zero Date is not unset")
	}
}

func TestAddMonthsClamps(t *testing.T) {
	for _, c := range []struct {
		from   string
		months int
		want   string
	}{
		{"2026-08-31", -6, "2026-02-28"},
		{"2028-08-31", -6, "2028-02-29"},
		{"2026-03-31", -1, "2026-02-28"},
		{"2026-01-31", 1, "2026-02-28"},
		{"2026-12-15", 1, "2027-01-15"},
		{"2027-01-15", -13, "2025-12-15"},
		{"2026-06-30", -6, "2025-12-30"},
	} {
		if got := MustParse(c.from).AddMonths(c.months).String(); got != c.want {
			t.Errorf("%s %+d months = %s, want %s", c.from, c.months, got, c.want)
		}
	}
}

func TestToday(t *testing.T) {
	almaty, err := time.LoadLocation("Asia/Almaty")
	if err != nil {
		t.Fatal(err)
	}
	// 20:30 UTC on 24 November is already 25 November in Almaty (UTC+5).
	now := time.Date(2026, 11, 24, 20, 30, 0, 0, time.UTC)
	if got := Today(now, almaty).String(); got != "2026-11-25" {
		t.Errorf("Today = %s, want 2026-11-25", got)
	}
}

func TestUnixEpoch(t *testing.T) {
	if UnixEpoch.String() != "1970-01-01" {
		t.Fatalf("UnixEpoch = %s", UnixEpoch)
	}
	if got := (UnixEpoch + 20782).String(); got != "2026-11-25" {
		t.Fatalf("epoch + 20782 days = %s", got)
	}
}
