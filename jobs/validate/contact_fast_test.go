package validate

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/iec-almaty/sisnotify/jobs/date"
)

// The simple-address shortcut only ever answers what the full check
// answers: every address it accepts, net/mail and the checks around it
// accept too.
func TestSimpleEmailIsAcceptedByTheFullCheck(t *testing.T) {
	for _, s := range []string{"a@b.cd", "zhiwei.hu1@student.example.edu", "a+b_c-d@x-y.example", "A.B@C.DE"} {
		if !isSimpleEmail(s) {
			t.Errorf("isSimpleEmail(%q) = false, want the shortcut taken", s)
		}
	}
	for _, s := range []string{"a@b.c", ".a@b.cd", "a.@b.cd", "a..b@c.de", "a@-b.cd", "a@b..cd", "a@b.cd.", "a@@b.cd", "a b@c.de", "@b.cd", "a@bcd", "a@b.cd@e.fg", "a%b@c.de"} {
		if isSimpleEmail(s) {
			t.Errorf("isSimpleEmail(%q) = true, want the full check", s)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "ab09AZ._+-@%\"()<> \x00é"
	simple := 0
	for i := 0; i < 200_000; i++ {
		n := 1 + rng.IntN(16)
		b := make([]byte, n)
		for j := range b {
			b[j] = alphabet[rng.IntN(len(alphabet))]
		}
		s := string(b)
		if isSimpleEmail(s) {
			simple++
			if !isEmailParsed(s) {
				t.Fatalf("isSimpleEmail(%q) = true but the full check refuses it", s)
			}
		}
	}
	if simple == 0 {
		t.Fatal("no random address took the shortcut: the test tests nothing")
	}
}

func FuzzSimpleEmail(f *testing.F) {
	for _, s := range []string{"a@b.cd", "a.b+c@d-e.fg", "a@b.c", "a..b@c.de"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if isSimpleEmail(s) && !isEmailParsed(s) {
			t.Fatalf("isSimpleEmail(%q) = true but the full check refuses it", s)
		}
	})
}

// Every timestamp the shortcut accepts, time.Parse accepts with
// Timestamp's first layout, as the same instant; dates the shortcut
// parses are date.Parse's.
func TestValidationShortcutsAgreeWithTheFullPath(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	two := func(lo, hi int) string { return fmt.Sprintf("%02d", lo+rng.IntN(hi-lo+1)) }
	accepted := 0
	for i := 0; i < 100_000; i++ {
		s := fmt.Sprintf("%04d-%s-%s %s:%s:%s", rng.IntN(10000), two(0, 13), two(0, 32), two(0, 25), two(0, 61), two(0, 61))
		if rng.IntN(2) == 0 {
			frac := strconv.Itoa(rng.IntN(1_000_000_000))
			s += "." + frac[:1+rng.IntN(len(frac))]
		}
		s += string("+-"[rng.IntN(2)]) + two(0, 30)
		if rng.IntN(10) == 0 {
			s = s[:rng.IntN(len(s))] + string(rune('0'+rng.IntN(80))) + s[rng.IntN(len(s)):]
		}
		if got, ok := postgresTimestamp([]byte(s)); ok {
			accepted++
			want, err := time.Parse("2006-01-02 15:04:05.999999999-07", s)
			if err != nil || !got.Equal(want) {
				t.Fatalf("postgresTimestamp(%q) = %s, but time.Parse: %s, %v", s, got, want, err)
			}
		}
		d := s[:min(10, len(s))]
		got, ok := parseISODate([]byte(d))
		want, err := date.Parse(d)
		if ok != (err == nil) || ok && got != want {
			t.Fatalf("parseISODate(%q) = %v, %v; date.Parse: %v, %v", d, got, ok, want, err)
		}
	}
	if accepted == 0 {
		t.Fatal("no timestamp took the shortcut")
	}
	for _, s := range []string{"2026-10-04 05:47:00+00", "2026-10-04 05:47:00.123456+05", "2024-02-29 23:59:59-12"} {
		if !isPostgresTimestamp([]byte(s)) {
			t.Errorf("isPostgresTimestamp(%q) = false", s)
		}
	}
}

func FuzzPostgresTimestamp(f *testing.F) {
	f.Add("2026-10-04 05:47:00+00")
	f.Add("2026-10-04 05:47:00.123456789-11")
	f.Add("0000-02-29 00:00:00+15")
	f.Fuzz(func(t *testing.T, s string) {
		if got, ok := postgresTimestamp([]byte(s)); ok {
			want, err := time.Parse("2006-01-02 15:04:05.999999999-07", s)
			if err != nil || !got.Equal(want) {
				t.Fatalf("postgresTimestamp(%q) = %s, but time.Parse: %s, %v", s, got, want, err)
			}
		}
		if len(s) >= 10 {
			got, ok := parseISODate([]byte(s))
			want, err := date.Parse(s)
			if ok && (err != nil || got != want) {
				t.Fatalf("parseISODate(%q) = %v; date.Parse: %v, %v", s, got, want, err)
			}
		}
	})
}
