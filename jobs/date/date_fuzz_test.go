package date

import (
	"strings"
	"testing"
	"time"
)

// FuzzParse: whatever Parse accepts is a real, set date that formats back
// to exactly the input; whatever it refuses, it says why without panicking.
//
//	go test ./jobs/date -run '^$' -fuzz '^FuzzParse$' -fuzztime 30s
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"2026-09-01", "2024-02-29", "2025-02-29", "2000-02-29", "1900-02-29", "2026-04-31", "2026-12-31",
		"2026-13-01", "2026-00-01", "2026-01-00", "0001-01-01", "0000-03-01", "9999-12-31", "1970-01-01",
		"2026-9-01", "2026/09/01", "20260901", "2026-09-01 ", "+026-09-01", "-026-09-01", "2026-0a-01", "２０２６-09-01", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := Parse(s)
		if err != nil {
			if d != 0 {
				t.Fatalf("Parse(%q) = %d with error %v", s, d, err)
			}
			if !strings.HasPrefix(err.Error(), "date ") {
				t.Fatalf("Parse(%q): error %q", s, err)
			}
			return
		}
		if d.IsZero() {
			t.Fatalf("Parse(%q) accepted it as the zero (unset) Date", s)
		}
		if got := d.String(); got != s {
			t.Fatalf("Parse(%q).String() = %q", s, got)
		}
		if got := string(d.AppendISO(nil)); got != s {
			t.Fatalf("Parse(%q).AppendISO = %q", s, got)
		}
		y, m, dd := d.Civil()
		if Of(y, m, dd) != d {
			t.Fatalf("Parse(%q) = %d, Of(Civil) = %d", s, d, Of(y, m, dd))
		}
		if tm := d.Time(time.UTC); tm.Format(time.DateOnly) != s || FromTime(tm) != d {
			t.Fatalf("Parse(%q).Time = %v", s, tm)
		}
		if d.Weekday() != d.Time(time.UTC).Weekday() {
			t.Fatalf("Parse(%q).Weekday = %v, time says %v", s, d.Weekday(), d.Time(time.UTC).Weekday())
		}
		if next := d.AddDays(1); next.Sub(d) != 1 || next.AddDays(-1) != d {
			t.Fatalf("Parse(%q): AddDays does not invert", s)
		}
	})
}
