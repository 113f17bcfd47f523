// Package validate turns raw SIS rows into the values the worker keeps, and
// reports what is wrong with them as data problems.
//
// A problem names the field and what is wrong, never the field's value: the
// values are names, emails, phones and passport numbers, and problems end up
// in the office digest and in logs. A bad field is dropped (kept as NULL) or
// normalised; the rest of the row is kept, so the rules that can still be
// evaluated for the student are.
package validate

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/iec-almaty/sisnotify/jobs/date"
)

// Severity of a problem: an error drops the field (or the row); a warning
// keeps a normalised value.
const (
	Error   = "error"
	Warning = "warning"
)

// Problem codes.
const (
	CodeMissing        = "missing"             // a field needed to reach or place the student is empty
	CodeMalformedEmail = "malformed_email"     // not a single plain address
	CodeInvalidPhone   = "invalid_phone"       // not a valid phone number
	CodePhoneNotE164   = "phone_not_e164"      // valid, but not written in E.164; normalised
	CodeUnknownCode    = "unknown_code"        // a code outside the reference schema's list
	CodeNonCanonical   = "non_canonical_code"  // a known code with other case or spaces; normalised
	CodeMalformedDate  = "malformed_date"      // not a date at all
	CodeImpossibleDate = "impossible_date"     // a date that contradicts another or is absurdly far
	CodeControlChars   = "control_characters"  // CR, LF, tabs or other control characters; replaced
	CodeTooLong        = "too_long"            // longer than the worker keeps; truncated
	CodeNoFaculty      = "no_faculty"          // no faculty: no dean to escalate to
	CodeUnknownFaculty = "unknown_faculty"     // faculty_id names no faculty of the SIS
	CodeOrphan         = "unknown_student"     // travel request of a student the SIS does not list
	CodeDuplicateID    = "duplicate_id"        // the same id on several rows; the first is kept
	CodeMissingID      = "missing_id"          // no id: the row cannot be kept
	CodeOutOfOrder     = "out_of_order"        // reserved for stream-level problems
	CodeBadBool        = "malformed_boolean"   // not true or false
	CodeBadTimestamp   = "malformed_timestamp" // updated_at unreadable; ignored
)

// Problem is one thing wrong with one field of one row.
type Problem struct {
	Field    string
	Code     string
	Severity string
	Message  string
}

// MaxText is the longest name or free-text value kept, in runes.
const MaxText = 200

// FarYears is how far from the evaluation date a date may lie before it is
// taken for a typing error.
const FarYears = 100

// Checker validates rows for one as-of date. It is cheap; make one per sync.
type Checker struct {
	asOf     date.Date
	min, max date.Date
}

// NewChecker returns a Checker for rows read on asOf.
func NewChecker(asOf date.Date) *Checker {
	return &Checker{asOf: asOf, min: asOf.AddMonths(-12 * FarYears), max: asOf.AddMonths(12 * FarYears)}
}

// Text cleans a name or free text: control characters (CR, LF, tabs…)
// become spaces, surrounding space is trimmed, invalid UTF-8 is replaced,
// and the value is cut to MaxText runes.
func Text(field string, raw []byte, problems []Problem) (string, []Problem) {
	clean := true
	n := 0
	for i := 0; i < len(raw); {
		r, size := utf8.DecodeRune(raw[i:])
		if r == utf8.RuneError && size <= 1 || unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			clean = false
		}
		i += size
		n++
	}
	s := string(raw)
	if !clean {
		s = strings.Map(func(r rune) rune {
			if r == utf8.RuneError || unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
				return ' '
			}
			return r
		}, strings.ToValidUTF8(s, "\uFFFD"))
		s = strings.Join(strings.Fields(s), " ")
		problems = append(problems, Problem{field, CodeControlChars, Warning, "contains control characters or invalid UTF-8; replaced with spaces"})
	}
	// Cleaning may have shortened s (runs of spaces collapse): count again.
	if n > MaxText && utf8.RuneCountInString(s) > MaxText {
		s = string([]rune(s)[:MaxText])
		problems = append(problems, Problem{field, CodeTooLong, Warning, "longer than 200 characters; truncated"})
	}
	return strings.TrimSpace(s), problems
}

// Code checks a code against its allowed values. A value that matches
// after trimming and lower-casing is kept with a warning; anything else is
// dropped.
func Code(field string, raw []byte, null bool, allowed []string, severity string, problems []Problem) (string, []Problem) {
	if null {
		return "", problems
	}
	s := string(raw)
	for _, a := range allowed {
		if s == a {
			return a, problems
		}
	}
	norm := strings.ToLower(strings.TrimSpace(s))
	for _, a := range allowed {
		if norm == a {
			return a, append(problems, Problem{field, CodeNonCanonical, Warning, "code written with other case or spaces; normalised"})
		}
	}
	msg := "unknown code; expected one of " + strings.Join(allowed, ", ")
	if len(s) > 40 || !isPrintableASCII(s) {
		msg = "unknown code (unprintable or long); expected one of " + strings.Join(allowed, ", ")
	} else {
		// A code is not personal data: naming it helps whoever fixes the SIS.
		msg = "unknown code \"" + s + "\"; expected one of " + strings.Join(allowed, ", ")
	}
	return "", append(problems, Problem{field, CodeUnknownCode, severity, msg})
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// Date reads a YYYY-MM-DD column. Unreadable dates and dates more than
// FarYears from the as-of date are dropped with an error.
func (c *Checker) Date(field string, raw []byte, null bool, problems []Problem) (date.Date, []Problem) {
	if null {
		return 0, problems
	}
	d, err := date.Parse(string(raw))
	if err != nil {
		return 0, append(problems, Problem{field, CodeMalformedDate, Error, "not a calendar date (YYYY-MM-DD)"})
	}
	if d < c.min || d > c.max {
		return 0, append(problems, Problem{field, CodeImpossibleDate, Error, "more than 100 years from today; ignored"})
	}
	return d, problems
}

// Bool reads a boolean column ('t' or 'f' as PostgreSQL writes them).
func Bool(field string, raw []byte, null bool, problems []Problem) (value, known bool, _ []Problem) {
	if null {
		return false, false, problems
	}
	switch strings.ToLower(strings.TrimSpace(string(raw))) {
	case "t", "true", "1", "yes", "y":
		return true, true, problems
	case "f", "false", "0", "no", "n":
		return false, true, problems
	}
	return false, false, append(problems, Problem{field, CodeBadBool, Error, "not a boolean; treated as unknown"})
}

// Timestamp reads updated_at; it is informational, so an unreadable value
// is dropped with a warning.
func Timestamp(field string, raw []byte, null bool, problems []Problem) (string, []Problem) {
	if null {
		return "", problems
	}
	s := string(raw)
	for _, layout := range []string{"2006-01-02 15:04:05.999999999-07", "2006-01-02 15:04:05.999999999-07:00", "2006-01-02 15:04:05.999999999", time.RFC3339Nano} {
		if _, err := time.Parse(layout, s); err == nil {
			return s, problems
		}
	}
	return "", append(problems, Problem{field, CodeBadTimestamp, Warning, "not a timestamp; ignored"})
}

// after records an impossible order of two dates (later before earlier) and
// drops the later one, which is derived from the earlier.
func after(laterField string, later *date.Date, earlierField string, earlier date.Date, problems []Problem) []Problem {
	if *later != 0 && earlier != 0 && *later < earlier {
		*later = 0
		return append(problems, Problem{laterField, CodeImpossibleDate, Error, "before " + earlierField + "; ignored"})
	}
	return problems
}
