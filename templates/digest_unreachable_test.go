package templates

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// unreachableDigest is the office digest of sampleDigest with the students
// it cannot reach: an email that bounced for a student of the registration
// row, an SMS not delivered for a student the digest lists nowhere else,
// a name to escape and a long diagnostic; the list is cut (4 in all).
func unreachableDigest(lang string) Digest {
	d := sampleDigest(lang, AudienceOffice)
	asOf := d.AsOf
	d.Unreachable = []Unreachable{
		{StudentID: "S2026-0042", Name: "<b>O'Brien</b> Liam", Faculty: "Faculty of Economics", Channel: "email", Since: asOf.AddDays(-3),
			LastError: "5.1.1 user unknown", Rule: "registration", Due: asOf.AddDays(-1), DaysOverdue: 1},
		{StudentID: "S2026-0042", Name: "<b>O'Brien</b> Liam", Faculty: "Faculty of Economics", Channel: "sms", Since: asOf.AddDays(-2),
			LastError: "30003 Unreachable destination handset", Rule: "registration", Due: asOf.AddDays(-1), DaysOverdue: 1},
		{StudentID: "S2026-0150", Name: "Amina Rahimova", Faculty: "Faculty of Law", Channel: "email", Since: asOf.AddDays(-30),
			LastError: "5.2.1 " + strings.Repeat("mailbox disabled, ", 10), Rule: "stay-extension", Due: asOf.AddDays(12), DaysOverdue: -12},
	}
	d.UnreachableTotal = 4
	return d
}

// The section lists each contact with its channel, the day it stopped,
// the last error (shortened) and the student's most urgent row; it says
// how many were left out; it comes first, before "act today" (every notice
// of the sections below fails to reach these students), and the line of
// counts starts with it. A dean's digest and
// an office digest with nobody unreachable have no such section.
func TestDigestUnreachableSection(t *testing.T) {
	s := set(t)
	title := map[string]string{"en": "Students we cannot reach", "ru": "Студенты, с которыми нет связи", "kk": "Байланыса алмаған студенттер"}
	for _, lang := range Languages {
		out, err := s.Digest(unreachableDigest(lang))
		if err != nil {
			t.Fatal(err)
		}
		heading := "== " + title[lang] + ": 4 =="
		if first := regexp.MustCompile(`(?m)^== .*$`).FindString(out.Text); first != heading {
			t.Errorf("%s: the first section is %q, want %q:\n%s", lang, first, heading, out.Text)
		}
		if !strings.HasPrefix(out.Text, title[lang]+": 4 · ") {
			t.Errorf("%s: the line of counts does not start with them: %s", lang, strings.SplitN(out.Text, "\n", 2)[0])
		}
		h2 := strings.Index(out.HTML, `<h2 id="unreachable"`)
		if !strings.Contains(out.HTML, `<a href="#unreachable"`) || h2 < 0 || h2 > strings.Index(out.HTML, `<h2 id="today"`) {
			t.Errorf("%s: the HTML has no linked section before the first one", lang)
		}
		if strings.Contains(out.HTML, "<b>O'Brien</b>") || strings.Contains(out.HTML, "<b><b>") {
			t.Errorf("%s: a name is not escaped", lang)
		}
		long := regexp.MustCompile(`\[(5\.2\.1 [^\]]*)\]`).FindStringSubmatch(out.Text)
		if !strings.Contains(out.Text, "[5.1.1 user unknown]") || long == nil || !strings.HasSuffix(long[1], "…") || utf8.RuneCountInString(long[1]) > 120 {
			t.Errorf("%s: the last errors are not shown, or the long one not shortened to 120 characters:\n%s", lang, out.Text)
		}
		if !strings.Contains(out.Text, "sisnotify notices --status bounced") {
			t.Errorf("%s: the cut list does not say where the rest are", lang)
		}
		for _, d := range []Digest{sampleDigest(lang, AudienceOffice), func() Digest {
			d := unreachableDigest(lang)
			d.Audience = AudienceDean
			return d
		}()} {
			out, err := s.Digest(d)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(out.Text, title[lang]) || strings.Contains(out.HTML, "unreachable") {
				t.Errorf("%s %s digest: an unreachable section where none is due:\n%s", lang, d.Audience, out.Text)
			}
		}
	}
}

func TestShorten(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"5.1.1", 10, "5.1.1"},
		{"0123456789", 10, "0123456789"},
		{"01234 6789a", 10, "01234 678…"},
		{"0123 56789ab", 6, "0123…"},
		{"абвгдежзий", 5, "абвг…"},
	} {
		if got := shorten(c.in, c.n); got != c.want {
			t.Errorf("shorten(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}
