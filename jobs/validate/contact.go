package validate

import (
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
	if null || len(strings.TrimSpace(string(raw))) == 0 {
		return "", append(problems, Problem{field, CodeMissing, Error, "no email address: email notices cannot be sent"})
	}
	s := strings.TrimSpace(string(raw))
	if !IsEmail(s) {
		return "", append(problems, Problem{field, CodeMalformedEmail, Error, "malformed email address: email notices cannot be sent"})
	}
	return s, problems
}

// IsEmail reports whether s is a single plain address with a dotted domain.
func IsEmail(s string) bool {
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

// Phone checks a phone number with the libphonenumber rules (numbers
// without a country code are read as Kazakh) and returns it in E.164.
// A valid number not written in E.164 is normalised with a warning.
func Phone(field string, raw []byte, null bool, problems []Problem) (string, []Problem) {
	s := strings.TrimSpace(string(raw))
	if null || s == "" {
		return "", append(problems, Problem{field, CodeMissing, Warning, "no phone number: SMS notices cannot be sent"})
	}
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
	n, err := phonenumbers.Parse(s, DefaultRegion)
	if err != nil || !phonenumbers.IsValidNumber(n) {
		return "", false
	}
	return phonenumbers.Format(n, phonenumbers.E164), true
}
