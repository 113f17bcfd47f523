package templates

import (
	"strings"
	"testing"
)

// TestStudentLink: a student email with a Link has a paragraph after the
// office's contacts with the line and the link, in text and HTML, in every
// language; staff emails and SMS never carry it; without a Link nothing
// changes (the goldens).
func TestStudentLink(t *testing.T) {
	s := MustNew()
	const link = "https://notify.uni.example/s/AQAAUWoC_-x"
	for _, lang := range Languages {
		for _, rule := range s.Rules() {
			n := sample(rule, AudienceStudent, lang, 1, -2)
			plain, err := s.Notice(n)
			if err != nil {
				t.Fatal(err)
			}
			n.Link = link
			r, err := s.Notice(n)
			if err != nil {
				t.Fatal(err)
			}
			label := s.label(t, lang, "l.link")
			if !strings.Contains(r.Text, "\n"+label+": "+link+"\n") {
				t.Errorf("%s/%s text lacks the link line:\n%s", lang, rule, r.Text)
			}
			if !strings.Contains(r.HTML, `<a href="`+link+`">`+link+`</a>`) {
				t.Errorf("%s/%s HTML lacks the link", lang, rule)
			}
			if strings.Replace(r.Text, label+": "+link+"\n\n", "", 1) != plain.Text {
				t.Errorf("%s/%s: the link changes more than its line", lang, rule)
			}
			if sms, err := s.SMS(n); err != nil || strings.Contains(sms, "/s/") {
				t.Errorf("%s/%s SMS carries the link: %q %v", lang, rule, sms, err)
			}
			n.Audience = AudienceOffice
			if r, err := s.Notice(n); err != nil || strings.Contains(r.Text+r.HTML, link) {
				t.Errorf("%s/%s office email carries the link (%v)", lang, rule, err)
			}
		}
	}
}

func (s *Set) label(t *testing.T, lang, block string) string {
	t.Helper()
	var b strings.Builder
	if err := s.notices[noticeKey{lang, "registration", AudienceStudent}].text.ExecuteTemplate(&b, block, nil); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestStudentSummary: the page's words for an obligation are the student
// notice's lead, list items and deadline line, in the language asked.
func TestStudentSummary(t *testing.T) {
	s := MustNew()
	for _, lang := range Languages {
		for _, rule := range s.Rules() {
			n := sample(rule, AudienceStudent, lang, 1, -2)
			sum, err := s.StudentSummary(n)
			if err != nil {
				t.Fatal(err)
			}
			if sum.Title != s.RuleTitle(lang, rule) || sum.Lead == "" || sum.Deadline == "" {
				t.Errorf("%s/%s: %+v", lang, rule, sum)
			}
			r, _ := s.Notice(n)
			for _, part := range append([]string{sum.Deadline}, sum.Steps...) {
				if !strings.Contains(r.Text, part) {
					t.Errorf("%s/%s: %q is not the notice's wording", lang, rule, part)
				}
			}
		}
	}
	if _, err := s.StudentSummary(Notice{Rule: "no-such-rule", AsOf: 1, Due: 1}); err == nil {
		t.Error("a rule without templates has a summary")
	}
}
