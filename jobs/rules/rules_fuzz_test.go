package rules

import (
	"slices"
	"strings"
	"testing"

	"github.com/iec-almaty/sisnotify/jobs/calendar"
	"github.com/iec-almaty/sisnotify/jobs/date"
)

// Fuzz targets of the rule syntax a configuration file writes. Run one with
//
//	go test ./jobs/rules -run '^$' -fuzz '^FuzzParseExpr$' -fuzztime 30s

func FuzzParseOffset(f *testing.F) {
	for _, s := range []string{"3d", "3wd", "6m", "0d", "0m", "9999d", "10000d", "007wd", "d", "3", "3w", "3dd", "-3d",
		"+3d", " 3d", "3d ", "3D", "99999999999999999999d", "٣d", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o, err := ParseOffset(s)
		if err != nil {
			if o != (Offset{}) {
				t.Fatalf("ParseOffset(%q) = %+v with error %v", s, o, err)
			}
			if !strings.HasPrefix(err.Error(), `"`) {
				t.Fatalf("ParseOffset(%q): error %q does not start with the input", s, err)
			}
			return
		}
		if o.N < 0 || o.N > MaxOffset || o.Unit != Days && o.Unit != WorkingDays && o.Unit != Months || o.IsZero() {
			t.Fatalf("ParseOffset(%q) = %+v", s, o)
		}
		str := o.String()
		if strings.TrimLeft(s, "0") != strings.TrimLeft(str, "0") {
			t.Fatalf("ParseOffset(%q).String() = %q", s, str)
		}
		if back, err := ParseOffset(str); err != nil || back != o {
			t.Fatalf("ParseOffset(%q) = %+v, its String %q parses to %+v, %v", s, o, str, back, err)
		}
	})
}

// sameExpr reports whether two expressions mean the same date: equal, or
// both the base itself (no offset, or +0d, which String writes as the base).
func sameExpr(a, b Expr) bool {
	none := func(o Offset) bool { return o.IsZero() || o == Offset{0, Days} }
	return a == b || a.Base == b.Base && none(a.Off) && none(b.Off)
}

func FuzzParseExpr(f *testing.F) {
	for _, s := range []string{"anchor", "due", "departure", "due-14d", "anchor+3wd", "anchor-6m", "departure-3d",
		" due+1wd ", "due+0d", "due-0d", "due-0m", "due+-3d", "due--3d", "due+", "due-", "anchor +3d", "Due-14d",
		"due-14", "due-14d-1d", "anchor+10000d", "+3d", "-3d", ""} {
		f.Add(s, uint8(0b011))
		f.Add(s, uint8(0b101))
	}
	cal := calendar.Default()
	from := date.MustParse("2026-09-01")
	f.Fuzz(func(t *testing.T, s string, mask uint8) {
		var allowed []Base
		for _, b := range []Base{BaseAnchor, BaseDue, BaseDeparture} {
			if mask&(1<<(b-1)) != 0 {
				allowed = append(allowed, b)
			}
		}
		if len(allowed) == 0 {
			allowed = []Base{BaseAnchor}
		}
		e, err := ParseExpr(s, allowed...)
		if err != nil {
			if e != (Expr{}) {
				t.Fatalf("ParseExpr(%q) = %+v with error %v", s, e, err)
			}
			return
		}
		if !slices.Contains(allowed, e.Base) {
			t.Fatalf("ParseExpr(%q, %v) = %+v: base not allowed", s, allowed, e)
		}
		if n := e.Off.N; n < -MaxOffset || n > MaxOffset || e.Off.Unit > Months {
			t.Fatalf("ParseExpr(%q) = %+v", s, e)
		}
		str := e.String()
		back, err := ParseExpr(str, allowed...)
		if err != nil || !sameExpr(back, e) || back.String() != str {
			t.Fatalf("ParseExpr(%q) = %+v, its String %q parses to %+v, %v", s, e, str, back, err)
		}
		if got, want := back.Off.Apply(from, cal), e.Off.Apply(from, cal); got != want {
			t.Fatalf("%q moves %s to %s, its String %q to %s", s, from, want, str, got)
		}
	})
}

func FuzzParseAction(f *testing.F) {
	for _, aud := range []string{"student", "office", "dean", "Student", "staff", ""} {
		for _, ch := range []string{"email", "sms", "digest", "urgent", "EMAIL", " email", ""} {
			f.Add(aud, ch)
		}
	}
	f.Fuzz(func(t *testing.T, audience, channel string) {
		a, err := ParseAction(audience, channel)
		if err != nil {
			if a != 0 {
				t.Fatalf("ParseAction(%q, %q) = %v with error %v", audience, channel, a, err)
			}
			return
		}
		if a == 0 || a&(a-1) != 0 || a >= 1<<numActions {
			t.Fatalf("ParseAction(%q, %q) = %b: want one action bit", audience, channel, a)
		}
		if w := a.Words(audience); len(w) != 1 || w[0] != channel {
			t.Fatalf("ParseAction(%q, %q).Words = %v", audience, channel, w)
		}
		if n := a.Notices(); len(n) != 1 || n[0].Audience.String() != audience {
			t.Fatalf("ParseAction(%q, %q).Notices = %v", audience, channel, n)
		}
	})
}
