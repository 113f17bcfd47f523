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
	// Printable ASCII, the bulk of names, needs no decoding.
	i := 0
	for i < len(raw) && raw[i] >= 0x20 && raw[i] < 0x7f {
		i++
	}
	clean := true
	n := i
	for i < len(raw) {
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
	// A code is not personal data: naming it helps whoever fixes the SIS.
	msg := "unknown code \"" + s + "\"; expected one of " + strings.Join(allowed, ", ")
	if len(s) > 40 || !isPrintableASCII(s) {
		msg = "unknown code (unprintable or long); expected one of " + strings.Join(allowed, ", ")
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
	d, ok := parseISODate(raw)
	if !ok {
		var err error
		d, err = date.Parse(string(raw))
		ok = err == nil
	}
	if !ok {
		return 0, append(problems, Problem{field, CodeMalformedDate, Error, "not a calendar date (YYYY-MM-DD)"})
	}
	if d < c.min || d > c.max {
		return 0, append(problems, Problem{field, CodeImpossibleDate, Error, "more than 100 years from today; ignored"})
	}
	return d, problems
}

// parseISODate is date.Parse for the bytes of a valid YYYY-MM-DD, without
// the string date.Parse would need (a sync reads millions of dates).
// It reports false for anything else, which the caller hands to
// date.Parse itself.
func parseISODate(b []byte) (date.Date, bool) {
	if len(b) != 10 || b[4] != '-' || b[7] != '-' {
		return 0, false
	}
	y, ok1 := atoi(b[0:4])
	m, ok2 := atoi(b[5:7])
	d, ok3 := atoi(b[8:10])
	if !ok1 || !ok2 || !ok3 || y < 1 || m < 1 || m > 12 || d < 1 || d > date.DaysIn(y, time.Month(m)) {
		return 0, false
	}
	// Of builds a valid date exactly as date.Parse does.
	return date.Of(y, time.Month(m), d), true
}

func atoi(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
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
// is dropped with a warning (the zero time). A timestamp without an offset
// is taken as UTC.
func Timestamp(field string, raw []byte, null bool, problems []Problem) (time.Time, []Problem) {
	if null {
		return time.Time{}, problems
	}
	if t, ok := postgresTimestamp(raw); ok {
		return t, problems
	}
	s := string(raw)
	for _, layout := range []string{"2006-01-02 15:04:05.999999999-07", "2006-01-02 15:04:05.999999999-07:00", "2006-01-02 15:04:05.999999999", time.RFC3339Nano} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, problems
		}
	}
	return time.Time{}, append(problems, Problem{field, CodeBadTimestamp, Warning, "not a timestamp; ignored"})
}

// isPostgresTimestamp reports whether b is a timestamp as PostgreSQL
// writes timestamptz in ISO style, "YYYY-MM-DD HH:MM:SS", an optional
// fraction of up to nine digits and a "+HH" or "-HH" offset, with every
// part in range: then time.Parse with Timestamp's first layout accepts it,
// and the layouts need not be tried (a sync reads millions).
func isPostgresTimestamp(b []byte) bool {
	_, ok := postgresTimestamp(b)
	return ok
}

// postgresTimestamp reads b when isPostgresTimestamp accepts it, as
// time.Parse with Timestamp's first layout would (the same instant),
// without its cost: a sync reads a million.
func postgresTimestamp(b []byte) (time.Time, bool) {
	if len(b) < 22 || b[4] != '-' || b[7] != '-' || b[10] != ' ' || b[13] != ':' || b[16] != ':' {
		return time.Time{}, false
	}
	y, ok1 := atoi(b[0:4])
	mo, ok2 := atoi(b[5:7])
	d, ok3 := atoi(b[8:10])
	h, ok4 := atoi(b[11:13])
	mi, ok5 := atoi(b[14:16])
	sec, ok6 := atoi(b[17:19])
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 ||
		mo < 1 || mo > 12 || d < 1 || d > date.DaysIn(y, time.Month(mo)) || h > 23 || mi > 59 || sec > 59 {
		return time.Time{}, false
	}
	rest := b[19:]
	nsec := 0
	if rest[0] == '.' {
		n := 1
		for n < len(rest) && n <= 9 && rest[n] >= '0' && rest[n] <= '9' {
			nsec = nsec*10 + int(rest[n]-'0')
			n++
		}
		if n == 1 {
			return time.Time{}, false
		}
		for i := n; i <= 9; i++ {
			nsec *= 10
		}
		rest = rest[n:]
	}
	if len(rest) != 3 || rest[0] != '+' && rest[0] != '-' {
		return time.Time{}, false
	}
	oh, ok := atoi(rest[1:3])
	if !ok || oh > 15 {
		return time.Time{}, false
	}
	offset := time.Duration(oh) * time.Hour
	if rest[0] == '-' {
		offset = -offset
	}
	return time.Date(y, time.Month(mo), d, h, mi, sec, nsec, time.UTC).Add(-offset), true
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
