package config

import (
	"errors"
	"math"
	"net/mail"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// Fuzz targets of the configuration file. Run one with
//
//	go test ./jobs/config -run '^$' -fuzz '^FuzzParse$' -fuzztime 30s

const fuzzName = "fuzz.yaml"

// FuzzParse: no input makes Parse panic; every error names the file and,
// unless it is about the YAML syntax itself, the line; an accepted file
// builds an engine.
func FuzzParse(f *testing.F) {
	if example, err := readExample(); err == nil {
		f.Add(example)
	}
	for _, s := range []string{
		"", "# comment only\n", "---\n", "rules:\n", "office: {language: kk, email: io@example.kz}\n",
		"sms:\n  quiet_hours: \"21:00-09:00\"\n", "sms:\n  quiet_hours: ~\n", "sms:\n  quiet_hours: 24:00-09:00\n",
		"calendar:\n  days_off: [2026-08-31]\n  working_days: [2026-08-31]\n  verified_through: 2030\n",
		"calendar:\n  days_off: 2026-02-30\n",
		"registration:\n  default: 3wd\n  visa_free: 1m\n",
		"feed_guard:\n  max_roster_drop: 35%\n  max_emptied: 0.1\n",
		"rules:\n  exit-visa:\n    enabled: false\n    steps: []\n",
		"rules:\n  passport-renewl: {}\n",
		"rules:\n  return-check-in:\n    due: {vacation: anchor+3wd, term: anchor+1d}\n",
		"rules:\n  stay-extension:\n    window: 90d\n    due: anchor-30d\n    steps:\n      - at: due-14d\n        repeat: 30d\n        student: [email, sms]\n        office: urgent\n        dean: [digest, email]\n",
		"rules:\n  exit-visa:\n    steps:\n      - at: due-2d\n        student: [sms]\n      - at: due-7d\n        student: [sms]\n",
		"rules:\n  exit-visa:\n    steps: [~, 1, [due]]\n",
		"a: &x {b: 1}\nc: *x\n", "rules: &r\n  exit-visa: *r\n", "x: 1\n---\ny: 2\n", "x: 1\n--- [\n",
		"office:\n  name: [\n", "\t- tab\n", "key: \"unterminated\n", "\xff\xfe", "? [a, b]\n: c\n",
		"rules:\n  \"exit-visa\\nx\": {}\n", "office:\n  name: a\n  name: b\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(fuzzName, data)
		if err != nil {
			if file != nil {
				t.Fatalf("Parse returned a file and an error: %v", err)
			}
			checkErrors(t, data, err)
			return
		}
		if file.Name != fuzzName || len(file.Rules()) == 0 {
			t.Fatalf("accepted file: name %q, %d rules", file.Name, len(file.Rules()))
		}
		if _, err := file.Engine(nil, nil); err != nil {
			t.Fatalf("accepted file does not build an engine: %v\n%s", err, data)
		}
		if q := file.SMS.QuietHours; q != nil {
			if back, err := ParseQuietHours(q.String()); err != nil || back != *q {
				t.Fatalf("accepted quiet hours %+v: String %q parses to %+v, %v", *q, q.String(), back, err)
			}
		}
		if e := file.Office.Email; e != "" {
			if _, err := mail.ParseAddress(e); err != nil {
				t.Fatalf("accepted office email %q: %v", e, err)
			}
		}
		checkFinite(t, "File", reflect.ValueOf(*file))
	})
}

// checkFinite fails on a NaN or infinite number anywhere in the exported
// fields of v: no setting of a configuration may be one.
func checkFinite(t *testing.T, path string, v reflect.Value) {
	t.Helper()
	switch v.Kind() {
	case reflect.Float32, reflect.Float64:
		if x := v.Float(); math.IsNaN(x) || math.IsInf(x, 0) {
			t.Fatalf("accepted file: %s = %v", path, x)
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				checkFinite(t, path+"."+v.Type().Field(i).Name, v.Field(i))
			}
		}
	case reflect.Pointer:
		if !v.IsNil() {
			checkFinite(t, path, v.Elem())
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			checkFinite(t, path+"["+strconv.Itoa(i)+"]", v.Index(i))
		}
	}
}

// checkErrors: every error is an Errors of *Error, in line order; each
// names the file; each with a key path has the line of that key (within
// the file); only an error of the YAML syntax, or of a second document,
// may have no line.
func checkErrors(t *testing.T, data []byte, err error) {
	t.Helper()
	var es Errors
	if !errors.As(err, &es) || len(es) == 0 {
		t.Fatalf("error %T %q is not a non-empty config.Errors", err, err)
	}
	lines := yamlLines(data)
	for i, e := range es {
		if e == nil {
			t.Fatalf("error %d is nil", i)
		}
		if e.File != fuzzName || !strings.HasPrefix(e.Error(), fuzzName+":") {
			t.Fatalf("error %q does not start with the file name", e)
		}
		if e.Line < 0 || e.Line > lines {
			t.Fatalf("error %q: line %d of a %d-line file", e, e.Line, lines)
		}
		if e.Line > 0 && !strings.HasPrefix(e.Error(), fuzzName+":"+strconv.Itoa(e.Line)+": ") {
			t.Fatalf("error %q does not start with %s:%d: ", e, fuzzName, e.Line)
		}
		if e.Line == 0 && e.Path != "" {
			t.Fatalf("error %q about key %s has no line", e, e.Path)
		}
		if e.Msg == "" {
			t.Fatalf("error %d has no message", i)
		}
		if i > 0 && es[i-1].Line > e.Line {
			t.Fatalf("errors out of line order: %q before %q", es[i-1], e)
		}
	}
}

// yamlLines counts the lines of data as YAML does: CR, LF, CR LF, NEL,
// LS and PS each end a line.
func yamlLines(data []byte) int {
	s := strings.ReplaceAll(string(data), "\r\n", "\n")
	return 1 + strings.Count(s, "\n") + strings.Count(s, "\r") +
		strings.Count(s, "\u0085") + strings.Count(s, "\u2028") + strings.Count(s, "\u2029")
}

func FuzzParseQuietHours(f *testing.F) {
	for _, s := range []string{"21:00-09:00", "09:00-21:00", " 22:30-06:15 ", "00:00-23:59", "23:59-00:00", "12:00-12:00",
		"24:00-09:00", "21:60-09:00", "9:00-21:00", "21:00 - 09:00", "21.00-09.00", "21:00-09:00\n", "", "   ", "２１:00-09:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := ParseQuietHours(s)
		if err != nil {
			if q != (QuietHours{}) {
				t.Fatalf("ParseQuietHours(%q) = %+v with error %v", s, q, err)
			}
			return
		}
		if !q.Enabled {
			if q != (QuietHours{}) || strings.TrimSpace(s) != "" || q.String() != "" {
				t.Fatalf("ParseQuietHours(%q) = %+v", s, q)
			}
			return
		}
		if q.Start < 0 || q.Start >= 24*60 || q.End < 0 || q.End >= 24*60 || q.Start == q.End {
			t.Fatalf("ParseQuietHours(%q) = %+v", s, q)
		}
		if got := q.String(); got != strings.TrimSpace(s) {
			t.Fatalf("ParseQuietHours(%q).String() = %q", s, got)
		}
		if back, err := ParseQuietHours(q.String()); err != nil || back != q {
			t.Fatalf("ParseQuietHours(%q) = %+v, its String parses to %+v, %v", s, q, back, err)
		}
		if !q.Contains(q.Start) || q.Contains(q.End) {
			t.Fatalf("%+v: start not quiet or end quiet", q)
		}
	})
}

func readExample() ([]byte, error) { return os.ReadFile("example.yaml") }
