package templates

import (
	"strings"
	"sync"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/iec-almaty/sisnotify/jobs/date"
)

// fuzzSet is the template set of the fuzz targets, parsed once per process.
var fuzzSet = sync.OnceValues(New)

// FuzzNotice renders every rule, audience and language with arbitrary
// names: it never fails, the subject stays one line, the HTML gets no markup
// from a name, the plain text no line, and the SMS no name at all.
//
//	go test ./templates -run '^$' -fuzz '^FuzzNotice$' -fuzztime 30s
func FuzzNotice(f *testing.F) {
	for i, names := range [][4]string{
		{"Aigerim", "Nurlanovna", "Faculty of Economics", "Prof. Serik Akhmetov"},
		{"<b>O'Brien</b>", `Smith & "Sons"`, "<script>alert(1)</script>", "</td></tr><SCRIPT src=//x>"},
		{"Anna\r\nBcc: victim@example.com", "\x00\u2028X", "Law\u202eevil", "\t\v\f"},
		{"", "", "", ""},
		{"  ", "\u00a0", "\xff\xfe", "{{.Office.Email}}"},
		{"Ақжол", "Сәрсенбайұлы", "Экономика факультеті", "Серік"},
		{strings.Repeat("Long", 100), "ä\u0301", "😀", "<!--"},
	} {
		f.Add(names[0], names[1], names[2], names[3], uint8(i), uint8(i), uint8(i), uint8(i), int16(i*7-20))
	}
	f.Fuzz(func(t *testing.T, given, family, faculty, dean string, rule, audience, lang, level uint8, offset int16) {
		s, err := fuzzSet()
		if err != nil {
			t.Fatal(err)
		}
		rules := s.Rules()
		due := date.MustParse("2026-12-18")
		n := Notice{
			Rule:     rules[int(rule)%len(rules)],
			Level:    int(level % 7),
			Audience: Audiences[int(audience)%len(Audiences)],
			Lang:     []string{"en", "ru", "kk", "fr", ""}[int(lang)%5],
			AsOf:     due.AddDays(int(offset) % 100), Due: due, Anchor: due.AddDays(-3),
			StudentID: "S2026-0042", SubjectID: "S2026-0042", VisaRegime: "visa",
			Departure: due.AddDays(3), Return: due.AddDays(20),
			GivenName: given, FamilyName: family, FacultyName: faculty, DeanName: dean,
			Office: Office{Name: "International Office", Phone: "+7 727 355 05 67", Email: "io@example.kz"},
		}
		if strings.HasPrefix(n.Rule, "travel") || strings.HasPrefix(n.Rule, "term") || n.Rule == "exit-visa" || n.Rule == "return-check-in" {
			n.SubjectID = "TR-2026-0451"
		}
		// The same notice with stand-in names of the same emptiness.
		stand := n
		for _, p := range []*string{&stand.GivenName, &stand.FamilyName, &stand.FacultyName, &stand.DeanName} {
			if cleanField(*p) != "" {
				*p = "Name"
			} else {
				*p = ""
			}
		}
		got, err := s.Notice(n)
		if err != nil {
			t.Fatalf("Notice(%+v): %v", n, err)
		}
		want, err := s.Notice(stand)
		if err != nil {
			t.Fatalf("Notice(%+v): %v", stand, err)
		}
		if i := strings.IndexFunc(got.Subject, func(r rune) bool {
			return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || isBidiControl(r)
		}); i >= 0 {
			t.Fatalf("subject %q: control character at %d", got.Subject, i)
		}
		for what, v := range map[string]string{"subject": got.Subject, "text": got.Text, "HTML": got.HTML} {
			if !utf8.ValidString(v) {
				t.Fatalf("%s %q: not UTF-8", what, v)
			}
		}
		if strings.Contains(got.Text, "\r") || strings.Count(got.Text, "\n") != strings.Count(want.Text, "\n") {
			t.Fatalf("a name changed the lines of the text:\n%s\nwith stand-ins:\n%s", got.Text, want.Text)
		}
		if strings.Contains(strings.ToLower(got.HTML), "<script") {
			t.Fatalf("a name put a script into the HTML:\n%s", got.HTML)
		}
		if g, w := strings.Count(got.HTML, "<"), strings.Count(want.HTML, "<"); g != w {
			t.Fatalf("a name added markup to the HTML: %d '<', %d with stand-ins:\n%s", g, w, got.HTML)
		}
		if n.Audience == AudienceStudent {
			sms, err := s.SMS(n)
			if err != nil {
				t.Fatalf("SMS(%+v): %v", n, err)
			}
			smsStand, err := s.SMS(stand)
			if err != nil {
				t.Fatal(err)
			}
			if sms != smsStand {
				t.Fatalf("the SMS depends on the names: %q, with stand-ins %q", sms, smsStand)
			}
			if strings.ContainsAny(sms, "\r\n") {
				t.Fatalf("SMS %q is not one line", sms)
			}
		}
	})
}
