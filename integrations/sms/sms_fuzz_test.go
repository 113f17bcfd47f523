package sms

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/iec-almaty/sisnotify/jobs/validate"
)

// Fuzz targets of the SMS text and number handling. Run one with
//
//	go test ./integrations/sms -run '^$' -fuzz '^FuzzFit$' -fuzztime 30s

func FuzzNormalizePhone(f *testing.F) {
	for _, s := range []string{
		"+77012345678", "+7 701 234 56 78", "8 (701) 234-56-78", "7012345678", "87012345678", "00 49 1512 3456789",
		"+49 1512 3456789", "+7 727 355 05 67", "+7 800 080 0000", "+77012345678 ext. 12", "+1 202 555 0143",
		"", " ", "00", "+", "0000000000", "+٧٧٠١٢٣٤٥٦٧٨", "tel:+77012345678", "+7-701-234-56-78;ext=1",
		strings.Repeat("7", 300),
	} {
		f.Add(s)
	}
	// The reasons a number is refused, for the check that an error never
	// repeats the number: an input that is part of this wording is not a leak.
	var wording strings.Builder
	for _, s := range []string{"", "x", "+7 727 355 05 67", "+77012345678 ext. 12", "+7 701 234 56 7", "+7 800 080 0000"} {
		if _, err := NormalizePhone(s); err != nil {
			wording.WriteString(err.Error() + "\n")
		}
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := NormalizePhone(raw)
		if err != nil {
			if got != "" || !errors.Is(err, ErrInvalidPhone) {
				t.Fatalf("NormalizePhone(%q) = %q, %v", raw, got, err)
			}
			for _, s := range []string{raw, strings.TrimSpace(raw)} {
				if utf8.RuneCountInString(s) > 3 && strings.Contains(err.Error(), s) && !strings.Contains(wording.String(), s) {
					t.Fatalf("NormalizePhone(%q): error %q repeats the number", raw, err)
				}
			}
		} else {
			if len(got) < 2 || got[0] != '+' || len(got) > 16 ||
				strings.ContainsFunc(got[1:], func(r rune) bool { return r < '0' || r > '9' }) {
				t.Fatalf("NormalizePhone(%q) = %q: not E.164", raw, got)
			}
			if again, err := NormalizePhone(got); err != nil || again != got {
				t.Fatalf("NormalizePhone(%q) = %q, again %q, %v: not idempotent", raw, got, again, err)
			}
		}
		// A number the sync accepted and stored is sent to as it is, or
		// refused (not a mobile); never rewritten into another number.
		if e164, ok := validate.NormalizePhone(raw); ok {
			if again, err := NormalizePhone(e164); err == nil && again != e164 {
				t.Fatalf("validate keeps %q as %q, sms sends to %q", raw, e164, again)
			}
		}
	})
}

// septets and units are the lengths Segments counts in.
func septets(s string) int {
	n := 0
	for _, r := range s {
		n += gsmWidth[r]
	}
	return n
}

func units(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

func FuzzSegments(f *testing.F) {
	for _, s := range []string{"", "Hello", strings.Repeat("a", 160), strings.Repeat("a", 161), strings.Repeat("€", 80),
		strings.Repeat("€", 81), strings.Repeat("a", 152) + "€", strings.Repeat("ж", 70), strings.Repeat("ж", 71),
		strings.Repeat("ж", 66) + "😀", "Ақжол", "\xff\xfe", "a\u00a0b", strings.Repeat("{}", 200)} {
		f.Add(s, uint16(0))
		f.Add(s, uint16(len(s)/2))
	}
	f.Fuzz(func(t *testing.T, text string, cut uint16) {
		enc, n := Segments(text)
		var total, single, part int
		switch enc {
		case GSM7:
			if !isGSM(text) {
				t.Fatalf("Segments(%q): GSM-7 for a text outside the GSM alphabet", text)
			}
			total, single, part = septets(text), gsmSingle, gsmPart
		case UCS2:
			if isGSM(text) {
				t.Fatalf("Segments(%q): UCS-2 for a GSM-7 text", text)
			}
			total, single, part = units(text), ucsSingle, ucsPart
		default:
			t.Fatalf("Segments(%q): encoding %q", text, enc)
		}
		// One segment when it fits one; else every part but the last is
		// full but for the one septet or unit of a pair that did not fit.
		switch {
		case total <= single && n != 1:
			t.Fatalf("Segments(%q) = %d for %d, fits one", text, n, total)
		case total > single && (n < (total+part-1)/part || n > (total+part-2)/(part-1)):
			t.Fatalf("Segments(%q) = %d for %d %s", text, n, total, enc)
		}
		// A prefix never takes more segments than the whole.
		if utf8.ValidString(text) {
			k := int(cut) % (len(text) + 1)
			for k < len(text) && !utf8.RuneStart(text[k]) {
				k--
			}
			if _, m := Segments(text[:k]); m > n {
				t.Fatalf("Segments(%q) = %d, but its prefix %q takes %d", text, n, text[:k], m)
			}
		}
	})
}

func FuzzFit(f *testing.F) {
	suffixes := []string{" Tel. +7 727 355 05 67", " Тел. +7 727 355 05 67", "", "\n+77012345678", strings.Repeat("x", 400)}
	texts := []string{
		"Registration due tomorrow.", strings.Repeat("Your registration ends 18 December. ", 12),
		strings.Repeat("Ваша регистрация заканчивается 18 декабря. ", 6), strings.Repeat("x", 500),
		strings.Repeat("€ ", 200), "Ақжол " + strings.Repeat("ә", 200), strings.Repeat("😀", 100), "bad \xff utf8 " + strings.Repeat("y ", 200),
	}
	for i, text := range texts {
		f.Add(text, suffixes[i%len(suffixes)], int8(2))
		f.Add(text, suffixes[(i+1)%len(suffixes)], int8(1))
	}
	f.Add("", "", int8(0))
	f.Fuzz(func(t *testing.T, text, suffix string, max int8) {
		limit := int(max) % 5
		got := Fit(text, suffix, limit)
		if limit <= 0 {
			limit = DefaultMaxSegments
		}
		fits := func(s string) bool { _, n := Segments(s); return n <= limit }
		switch {
		case fits(text + suffix):
			if got != text+suffix {
				t.Fatalf("Fit(%q, %q, %d) = %q; it fits as is", text, suffix, limit, got)
			}
		case !fits(suffix):
			if got != suffix {
				t.Fatalf("Fit(%q, %q, %d) = %q; want the suffix alone", text, suffix, limit, got)
			}
		default:
			if !strings.HasSuffix(got, suffix) {
				t.Fatalf("Fit(%q, %q, %d) = %q: suffix lost", text, suffix, limit, got)
			}
			if _, n := Segments(got); n > limit {
				t.Fatalf("Fit(%q, %q, %d) = %q: %d segments", text, suffix, limit, got, n)
			}
			if body := strings.TrimSuffix(got, suffix); body != "" {
				cut, ok := strings.CutSuffix(body, "...")
				if !ok {
					cut, ok = strings.CutSuffix(body, "…")
				}
				if !ok || utf8.ValidString(text) && !strings.HasPrefix(text, cut) {
					t.Fatalf("Fit(%q, %q, %d) = %q: not a prefix of the text and an ellipsis", text, suffix, limit, got)
				}
			}
		}
		if utf8.ValidString(text) && utf8.ValidString(suffix) && !utf8.ValidString(got) {
			t.Fatalf("Fit(%q, %q, %d) = %q: not UTF-8", text, suffix, limit, got)
		}
	})
}
