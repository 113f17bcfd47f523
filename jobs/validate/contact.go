package validate

import (
	"bytes"
	"net/mail"
	"strings"
	"unicode"

	"github.com/nyaruka/phonenumbers"
)

// DefaultRegion is the region a phone number without a country code is
// read in.
const DefaultRegion = "KZ"

// Email checks that raw is one plain address (local@domain.tld, no display
// name, no spaces) and returns it trimmed.
func Email(field string, raw []byte, null bool, problems []Problem) (string, []Problem) {
	trimmed := bytes.TrimSpace(raw)
	if null || len(trimmed) == 0 {
		return "", append(problems, Problem{field, CodeMissing, Error, "no email address: email notices cannot be sent"})
	}
	s := string(trimmed)
	if !IsEmail(s) {
		return "", append(problems, Problem{field, CodeMalformedEmail, Error, "malformed email address: email notices cannot be sent"})
	}
	return s, problems
}

// IsEmail reports whether s is a single plain address with a dotted domain.
func IsEmail(s string) bool {
	return isSimpleEmail(s) || isEmailParsed(s)
}

// isEmailParsed is IsEmail by net/mail's parser and the checks around it.
func isEmailParsed(s string) bool {
	if len(s) < 3 || len(s) > 254 || strings.ContainsAny(s, " \t\r\n<>\"(),;:\\[]") {
		return false
	}
	// net/mail takes any non-ASCII rune for a letter, C1 controls (U+0085)
	// and Unicode spaces (U+00A0, U+2028) included.
	if strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) {
		return false
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || strings.Count(s, "@") != 1 {
		return false
	}
	domain := s[at+1:]
	dot := strings.LastIndexByte(domain, '.')
	return dot > 0 && dot < len(domain)-2 && !strings.Contains(domain, "..") && domain[0] != '-'
}

// isSimpleEmail reports whether s is an address of the common, simple
// shape, which IsEmail's full check accepts without a doubt: a local part
// of letters, digits, "_", "+", "-" and single inner dots, one "@", and a
// domain of letters, digits, "-" and single inner dots, not starting with
// "-", whose last label has at least two characters. Every character is
// atext, so net/mail reads s as one addr-spec of two dot-atoms and returns
// it unchanged with no name; nothing else in IsEmail refuses it. It spares
// net/mail's parser (a quarter of a row's validation) for most addresses;
// any other string gets the full check.
func isSimpleEmail(s string) bool {
	if len(s) < 3 || len(s) > 254 {
		return false
	}
	at := strings.IndexByte(s, '@')
	if at <= 0 {
		return false
	}
	local, domain := s[:at], s[at+1:]
	if !isDotAtom(local, true) || !isDotAtom(domain, false) || domain[0] == '-' {
		return false
	}
	dot := strings.LastIndexByte(domain, '.')
	return dot > 0 && dot < len(domain)-2
}

// isDotAtom reports whether s is labels of ASCII letters, digits and "-"
// (and "_", "+" when local) joined by single dots.
func isDotAtom(s string, local bool) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-':
		case c == '.':
			if s[i-1] == '.' {
				return false
			}
		case local && (c == '_' || c == '+'):
		default:
			return false
		}
	}
	return true
}

// Phone checks a phone number with the libphonenumber rules (numbers
// without a country code are read as Kazakh) and returns it in E.164.
// A valid number not written in E.164 is normalised with a warning.
func Phone(field string, raw []byte, null bool, problems []Problem) (string, []Problem) {
	trimmed := bytes.TrimSpace(raw)
	if null || len(trimmed) == 0 {
		return "", append(problems, Problem{field, CodeMissing, Warning, "no phone number: SMS notices cannot be sent"})
	}
	s := string(trimmed)
	e164, ok := NormalizePhone(s)
	if !ok {
		return "", append(problems, Problem{field, CodeInvalidPhone, Error, "not a valid phone number: SMS notices cannot be sent"})
	}
	if e164 != s {
		problems = append(problems, Problem{field, CodePhoneNotE164, Warning, "not written in E.164 (a + with the country code, digits only); normalised"})
	}
	return e164, problems
}

// NormalizePhone returns s in E.164 when it is a valid number.
func NormalizePhone(s string) (string, bool) {
	if len(s) > 32 {
		return "", false
	}
	if e164, ok, known := memoPhone(s, libPhone); known {
		return e164, ok
	}
	return libPhone(s)
}

// libPhone is NormalizePhone by libphonenumber alone.
func libPhone(s string) (string, bool) {
	n, err := phonenumbers.Parse(s, DefaultRegion)
	if err != nil || !phonenumbers.IsValidNumber(n) {
		return "", false
	}
	return phonenumbers.Format(n, phonenumbers.E164), true
}
