package validate

// Fuzz targets of the field validators. Run one with
//
//	go test ./jobs/validate -run '^$' -fuzz '^FuzzText$' -fuzztime 30s
//
// Inputs a fuzzer found interesting are kept under testdata/fuzz/<Name>/ and
// run by every plain `go test`.

import (
	"net/mail"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/iec-almaty/sisnotify/jobs/date"
)

// fuzzAsOf is the evaluation date of the row fuzzers.
var fuzzAsOf = date.MustParse("2026-09-01")

// knownCodes are the problem codes a Problem may carry.
var knownCodes = []string{
	CodeMissing, CodeMalformedEmail, CodeInvalidPhone, CodePhoneNotE164, CodeUnknownCode,
	CodeNonCanonical, CodeMalformedDate, CodeImpossibleDate, CodeControlChars, CodeTooLong,
	CodeNoFaculty, CodeUnknownFaculty, CodeOrphan, CodeDuplicateID, CodeMissingID,
	CodeOutOfOrder, CodeBadBool, CodeBadTimestamp,
}

// checkProblems checks what every problem must be, whatever the input: a
// known field, code and severity, and a message that is printable, valid
// UTF-8 text (problems are shown in the digest and may reach logs).
func checkProblems(t *testing.T, fields []string, ps []Problem) {
	t.Helper()
	for _, p := range ps {
		if !slices.Contains(fields, p.Field) {
			t.Errorf("problem %+v: field %q is not one of %v", p, p.Field, fields)
		}
		if !slices.Contains(knownCodes, p.Code) {
			t.Errorf("problem %+v: unknown code", p)
		}
		if p.Severity != Error && p.Severity != Warning {
			t.Errorf("problem %+v: severity %q", p, p.Severity)
		}
		if p.Message == "" || !utf8.ValidString(p.Message) || strings.ContainsFunc(p.Message, unicode.IsControl) {
			t.Errorf("problem %+v: message empty, not UTF-8 or with control characters", p)
		}
	}
}

// checkNotQuoted fails when a message repeats value (a personal value of
// more than 3 characters), unless wording, the messages written for
// stand-in values, has it too: then it is the validator's own wording
// ("email", "notices"...), not the value.
func checkNotQuoted(t *testing.T, what string, value string, ps []Problem, wording string) {
	t.Helper()
	if utf8.RuneCountInString(value) <= 3 || strings.Contains(wording, value) {
		return
	}
	for _, p := range ps {
		if strings.Contains(p.Message, value) || strings.Contains(p.Field, value) {
			t.Errorf("problem %+v repeats the %s %q", p, what, value)
		}
	}
}

// standIns are values of a personal field that reach every message the
// field can get: NULL, empty, control characters, too long, malformed, a
// valid phone not in E.164, a valid email.
var standIns = [][]byte{nil, {}, []byte("\x01"), []byte(strings.Repeat("é", MaxText+1)), []byte("?"),
	[]byte("+7 701 234 56 78"), []byte("a@b.cd")}

// wordingOf is the messages of run for each stand-in value, one per line.
func wordingOf(run func(v []byte) []Problem) string {
	var b strings.Builder
	for _, v := range standIns {
		for _, p := range run(v) {
			b.WriteString(p.Field + ": " + p.Message + "\n")
		}
	}
	return b.String()
}

// checkEmail checks what an accepted address must be.
func checkEmail(t *testing.T, s string) {
	t.Helper()
	if !utf8.ValidString(s) {
		t.Fatalf("accepted address %q is not UTF-8", s)
	}
	if strings.Count(s, "@") != 1 {
		t.Fatalf("accepted address %q has %d '@'", s, strings.Count(s, "@"))
	}
	if i := strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }); i >= 0 {
		r, _ := utf8.DecodeRuneInString(s[i:])
		t.Fatalf("accepted address %q has space or control character %U", s, r)
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		t.Fatalf("accepted address %q: net/mail reads %+v, %v", s, a, err)
	}
	// As a header writes it, and back.
	b, err := mail.ParseAddress((&mail.Address{Address: s}).String())
	if err != nil || b.Address != s {
		t.Fatalf("accepted address %q does not round-trip through net/mail: %+v, %v", s, b, err)
	}
	domain := s[strings.IndexByte(s, '@')+1:]
	if !strings.Contains(domain, ".") {
		t.Fatalf("accepted address %q: undotted domain", s)
	}
}

func FuzzEmail(f *testing.F) {
	for _, s := range []string{
		"student@example.kz", " a.b+tag@mail.example.org ", "", "   ", "no-at-sign", "a@b", "a@b.c", "a@b.cd",
		"two@at@example.kz", "Anna <anna@example.kz>", "anna@example..kz", "anna@-example.kz",
		"\"quoted\"@example.kz", "anna@[127.0.0.1]", "anna@example.kz\r\nBcc: x@y.zz", "анна@пример.қаз",
		"a\u00a0b@example.kz", "a\u0085b@example.kz", "a\u2028b@example.kz", ".a@example.kz", "a.@example.kz",
	} {
		f.Add([]byte(s), false)
	}
	f.Add([]byte(nil), true)
	wording := wordingOf(func(v []byte) []Problem { _, p := Email("email", v, v == nil, nil); return p })
	f.Fuzz(func(t *testing.T, raw []byte, null bool) {
		got, ps := Email("email", raw, null, nil)
		checkProblems(t, []string{"email"}, ps)
		checkNotQuoted(t, "address", string(raw), ps, wording)
		checkNotQuoted(t, "address", strings.TrimSpace(string(raw)), ps, wording)
		if got != "" {
			if len(ps) != 0 {
				t.Fatalf("%q accepted as %q with problems %+v", raw, got, ps)
			}
			if null || got != strings.TrimSpace(string(raw)) {
				t.Fatalf("%q (null %v) accepted as %q", raw, null, got)
			}
			checkEmail(t, got)
		} else if len(ps) != 1 || ps[0].Code != CodeMissing && ps[0].Code != CodeMalformedEmail {
			t.Fatalf("%q rejected with problems %+v, want one missing or malformed_email", raw, ps)
		}
		if s := string(raw); IsEmail(s) {
			checkEmail(t, s)
		}
	})
}

// checkE164 checks what an accepted phone number must be.
func checkE164(t *testing.T, s string) {
	t.Helper()
	if len(s) < 2 || s[0] != '+' || strings.ContainsFunc(s[1:], func(r rune) bool { return r < '0' || r > '9' }) {
		t.Fatalf("accepted number %q is not + and digits", s)
	}
	// E.164 allows 15 digits, but libphonenumber knows longer valid numbers
	// (German 18x shared-cost numbers have 14 national digits: 9cc260d7403e911a),
	// up to 3 of country code and 17 national. sms.NormalizePhone refuses
	// them: they are not mobile numbers.
	if n := len(s) - 1; n > 3+17 || s[1] == '0' {
		t.Fatalf("accepted number %q: %d digits, or a country code starting with 0", s, n)
	}
	again, ok := NormalizePhone(s)
	if !ok || again != s {
		t.Fatalf("NormalizePhone(%q) = %q, %v: not idempotent", s, again, ok)
	}
}

func FuzzPhone(f *testing.F) {
	for _, s := range []string{
		"+77012345678", "+7 701 234 56 78", "8 (701) 234-56-78", "7012345678", "87012345678", "+7 727 355 05 67",
		"+49 1512 3456789", "0049 1512 3456789", "+1 202 555 0143", "+77012345678 ext. 12", "+7701234567",
		"", "  ", "+", "++77012345678", "tel:+7-701-234-56-78", "+7 701 234 56 78 99 99 99 99 99 99 99 99",
		"+٧٧٠١٢٣٤٥٦٧٨", "＋７７０１２３４５６７８", "+800 1234 5678", "+39 06 698 12345",
	} {
		f.Add([]byte(s), false)
	}
	f.Add([]byte(nil), true)
	wording := wordingOf(func(v []byte) []Problem { _, p := Phone("phone", v, v == nil, nil); return p })
	f.Fuzz(func(t *testing.T, raw []byte, null bool) {
		got, ps := Phone("phone", raw, null, nil)
		checkProblems(t, []string{"phone"}, ps)
		s := strings.TrimSpace(string(raw))
		checkNotQuoted(t, "number", string(raw), ps, wording)
		checkNotQuoted(t, "number", s, ps, wording)
		if got != "" {
			checkE164(t, got)
			switch {
			case got == s && len(ps) != 0:
				t.Fatalf("%q accepted as written, with problems %+v", raw, ps)
			case got != s && (len(ps) != 1 || ps[0].Code != CodePhoneNotE164 || ps[0].Severity != Warning):
				t.Fatalf("%q normalised to %q with problems %+v, want one phone_not_e164 warning", raw, got, ps)
			}
		} else if len(ps) != 1 || ps[0].Code != CodeMissing && ps[0].Code != CodeInvalidPhone {
			t.Fatalf("%q rejected with problems %+v, want one missing or invalid_phone", raw, ps)
		}
		if e164, ok := NormalizePhone(string(raw)); ok {
			checkE164(t, e164)
		} else if e164 != "" {
			t.Fatalf("NormalizePhone(%q) refused but returned %q", raw, e164)
		}
	})
}

func FuzzText(f *testing.F) {
	for _, s := range []string{
		"Anna", "  Anna Maria  ", "Анна-Мария Ивановна", "Ақжол Сәрсенбайұлы", "O'Brien <b>", "a\tb\r\nc",
		"line\u2028sep\u2029para", "nul\x00byte", "bad \xff\xfe utf8", "\u0085next line", "\ufffd kept",
		strings.Repeat("x", MaxText), strings.Repeat("x", MaxText+1), strings.Repeat("é", MaxText+5),
		strings.Repeat("ab ", 100), strings.Repeat("\n", MaxText+1) + "a", " " + strings.Repeat("y", MaxText-1) + " ",
	} {
		f.Add([]byte(s))
	}
	wording := wordingOf(func(v []byte) []Problem { _, p := Text("given_name", v, nil); return p })
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, ps := Text("given_name", raw, nil)
		checkProblems(t, []string{"given_name"}, ps)
		checkNotQuoted(t, "text", string(raw), ps, wording)
		if !utf8.ValidString(got) {
			t.Fatalf("Text(%q) = %q: not UTF-8", raw, got)
		}
		if i := strings.IndexFunc(got, func(r rune) bool { return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' }); i >= 0 {
			t.Fatalf("Text(%q) = %q: control character at %d", raw, got, i)
		}
		if n := utf8.RuneCountInString(got); n > MaxText {
			t.Fatalf("Text(%q) = %q: %d runes, more than %d", raw, got, n, MaxText)
		}
		if got != strings.TrimSpace(got) {
			t.Fatalf("Text(%q) = %q: not trimmed", raw, got)
		}
		clean := utf8.Valid(raw) && !strings.ContainsFunc(string(raw), func(r rune) bool {
			return unicode.IsControl(r) || r == '\u2028' || r == '\u2029'
		})
		if clean && utf8.RuneCount(raw) <= MaxText && (got != strings.TrimSpace(string(raw)) || len(ps) != 0) {
			t.Fatalf("clean Text(%q) = %q, %+v: want it trimmed, without problems", raw, got, ps)
		}
		if !clean && !slices.ContainsFunc(ps, func(p Problem) bool { return p.Code == CodeControlChars }) {
			t.Fatalf("Text(%q) = %q: no control_characters problem", raw, got)
		}
		// A cleaned value is clean.
		if again, ps2 := Text("given_name", []byte(got), nil); again != got || len(ps2) != 0 {
			t.Fatalf("Text(Text(%q)) = %q, %+v; want %q unchanged", raw, again, ps2, got)
		}
	})
}

func FuzzCode(f *testing.F) {
	lists := [][]string{Languages, Regimes, Statuses, TravelKinds, Decisions, PeriodKinds}
	for _, s := range []string{"en", "RU", " kk ", "visa_free", "VISA-FREE", "on_leave", "", "fr", "x\"y", "\x00",
		"Активный", strings.Repeat("z", 41), "semester\n"} {
		for i := range lists {
			f.Add([]byte(s), false, uint8(i), false)
		}
	}
	f.Add([]byte(nil), true, uint8(0), true)
	f.Fuzz(func(t *testing.T, raw []byte, null bool, list uint8, warn bool) {
		allowed := lists[int(list)%len(lists)]
		severity := Error
		if warn {
			severity = Warning
		}
		got, ps := Code("code", raw, null, allowed, severity, nil)
		checkProblems(t, []string{"code"}, ps)
		s := string(raw)
		switch {
		case null:
			if got != "" || len(ps) != 0 {
				t.Fatalf("NULL gave %q, %+v", got, ps)
			}
		case slices.Contains(allowed, s):
			if got != s || len(ps) != 0 {
				t.Fatalf("Code(%q) = %q, %+v; want it as is", s, got, ps)
			}
		case got != "":
			if !slices.Contains(allowed, got) || got != strings.ToLower(strings.TrimSpace(s)) ||
				len(ps) != 1 || ps[0].Code != CodeNonCanonical || ps[0].Severity != Warning {
				t.Fatalf("Code(%q) = %q, %+v", s, got, ps)
			}
		default:
			if len(ps) != 1 || ps[0].Code != CodeUnknownCode || ps[0].Severity != severity {
				t.Fatalf("Code(%q) refused with %+v", s, ps)
			}
			// The value is quoted only when it is short, printable ASCII.
			if len(s) > 3 && strings.Contains(ps[0].Message, s) && (len(s) > 40 || !isPrintableASCII(s)) {
				t.Fatalf("Code(%q): message %q quotes a long or unprintable value", s, ps[0].Message)
			}
		}
	})
}

func FuzzCheckerDate(f *testing.F) {
	for _, s := range []string{"2026-09-01", "2024-02-29", "2025-02-29", "2026-13-01", "2026-00-10", "2026-04-31",
		"1926-09-01", "1926-08-31", "2126-09-01", "2126-09-02", "0000-01-01", "0000-02-29", "9999-12-31", "2026-9-1",
		"2026/09/01", " 2026-09-01", "2026-09-01T00:00:00", "", "-001-01-01", "+2026-09-01"} {
		f.Add(s, false, int32(0))
	}
	f.Add("", true, int32(0))
	f.Add("2026-09-01", false, int32(-36500))
	f.Fuzz(func(t *testing.T, raw string, null bool, shift int32) {
		asOf := fuzzAsOf.AddDays(int(shift % 80000)) // about 1807 to 2245
		c := NewChecker(asOf)
		got, ps := c.Date("starts_on", []byte(raw), null, nil)
		checkProblems(t, []string{"starts_on"}, ps)
		switch {
		case null:
			if got != 0 || len(ps) != 0 {
				t.Fatalf("NULL gave %v, %+v", got, ps)
			}
		case got != 0:
			if len(ps) != 0 {
				t.Fatalf("%q accepted as %s with problems %+v", raw, got, ps)
			}
			if got.String() != raw {
				t.Fatalf("%q accepted as %s", raw, got)
			}
			if got < asOf.AddMonths(-12*FarYears) || got > asOf.AddMonths(12*FarYears) {
				t.Fatalf("%q accepted on %s: more than %d years away", raw, asOf, FarYears)
			}
		default:
			if len(ps) != 1 || ps[0].Code != CodeMalformedDate && ps[0].Code != CodeImpossibleDate || ps[0].Severity != Error {
				t.Fatalf("%q refused with %+v", raw, ps)
			}
		}
	})
}
