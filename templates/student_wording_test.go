package templates

import (
	"regexp"
	"strings"
	"testing"

	"github.com/iec-almaty/sisnotify/integrations/testenv"
)

// sanctionRules are the registration duties: the office's page names a
// fine, and deportation as the extreme measure, for them alone.
var sanctionRules = map[string]bool{
	"arrival-check-in": true, "registration": true, "stay-extension": true,
	"return-check-in": true, "address-registration": true,
}

// sanction finds a fine, a deportation or the Administrative Offences Code
// in any language.
var sanction = regexp.MustCompile(`(?i)\bfines?\b|\bfined\b|deport|expel|Administrative Offen[cs]es|` +
	`штраф|депорт|выдвор|административн|` +
	`айыппұл|депортац|шығарып жіберу|Әкімшілік құқық`)

// TestNoSanctionOutsideRegistration renders every rule's notice to every
// audience, in every language, at every level and on every kind of day
// (subject, text, HTML and, for students, SMS): only the registration
// duties may name a fine or deportation.
func TestNoSanctionOutsideRegistration(t *testing.T) {
	testenv.Long(t, "renders every notice on every kind of day")
	s := set(t)
	for _, rule := range s.Rules() {
		if sanctionRules[rule] {
			continue
		}
		for _, lang := range Languages {
			for _, a := range Audiences {
				for level := 1; level <= 5; level++ {
					for _, offset := range []int{-21, -3, 0, 3, 40, 200} {
						n := sample(rule, a, lang, level, offset)
						n.VisaRegime = "visa"
						n.OfficeUrgent = level >= 3
						out, err := s.Notice(n)
						if err != nil {
							t.Fatal(err)
						}
						parts := map[string]string{"subject": out.Subject, "text": out.Text, "html": out.HTML}
						if a == AudienceStudent {
							if parts["sms"], err = s.SMS(n); err != nil {
								t.Fatal(err)
							}
						}
						for name, body := range parts {
							if m := sanction.FindString(body); m != "" {
								t.Errorf("%s/%s/%s L%d day %+d %s: names a sanction (%q):\n%s", lang, rule, a, level, offset, name, m, body)
								break
							}
						}
					}
				}
			}
		}
	}
}

// The registration duties say what the page says will happen: a fine, up to
// deportation.
func TestRegistrationDutiesNameTheSanction(t *testing.T) {
	s := set(t)
	want := map[string][]string{"en": {"fine", "deportation"}, "ru": {"штраф", "депортац"}, "kk": {"айыппұл", "депортация"}}
	for rule := range sanctionRules {
		for _, lang := range Languages {
			out, err := s.Notice(sample(rule, AudienceStudent, lang, 1, -1))
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range want[lang] {
				if !strings.Contains(out.Text, w) || !strings.Contains(out.HTML, w) {
					t.Errorf("%s/%s: does not say %q:\n%s", lang, rule, w, out.Text)
				}
			}
		}
	}
}

// TestStudentWordingFollowsTheDay: before the due date a notice counts the
// days left, on it says today (never "by" that date, never "0 days"), after
// it says since when it is overdue; a passport past its expiry date "has
// expired". Subject, text, HTML and SMS alike.
func TestStudentWordingFollowsTheDay(t *testing.T) {
	s := set(t)
	zero := regexp.MustCompile(`(?i)\b0 (days?|дн|күн)|осталось 0|0 күн қалды`)
	today := map[string]string{"en": "today", "ru": "сегодня", "kk": "бүгін"}
	overdue := map[string]*regexp.Regexp{
		"en": regexp.MustCompile(`overdue since|has passed|overdue by`),
		"ru": regexp.MustCompile(`просрочен|истёк|прошла`),
		"kk": regexp.MustCompile(`өтті|өтіп кетті`),
	}
	expired := map[string]string{"en": "passport has expired", "ru": "паспорта истёк", "kk": "аяқталды"}
	// welcome, document-loss and status-change have no deadline: they say
	// what to do now, on the day of the entry or the report.
	noDeadline := map[string]bool{"break-briefing": true, "term-travel-limit": true, "travel-late-notice": true, "travel-dean-approval": true,
		"welcome": true, "document-loss": true, "status-change": true}
	for _, rule := range s.Rules() {
		for _, lang := range Languages {
			for _, offset := range []int{-5, 0, 5, 40} {
				n := sample(rule, AudienceStudent, lang, 2, offset)
				if rule == "passport-renewal" || rule == "stay-extension" {
					n.Anchor = n.Due.AddDays(60) // still valid on every day tried
				}
				w := studentWords(t, s, n)
				all := w.all()
				where := rule + "/" + lang
				if zero.MatchString(all) {
					t.Errorf("%s day %+d: counts zero days: %s", where, offset, zero.FindString(all))
				}
				switch {
				case offset == 0:
					for name, body := range map[string]string{"subject": w.subject, "sms": w.sms, "text": w.text} {
						if noDeadline[rule] {
							break // their date is the departure, the break, the entry or the report, not a duty's deadline
						}
						if !strings.Contains(strings.ToLower(body), today[lang]) {
							t.Errorf("%s due today: %s does not say %q: %s", where, name, today[lang], body)
						}
						if lang == "ru" && strings.Contains(body, "до "+FormatDayMonth("ru", n.Due)) {
							t.Errorf("%s due today: %s says «до» the day itself: %s", where, name, body)
						}
					}
				case offset > 0 && !noDeadline[rule]:
					for name, body := range map[string]string{"subject": w.subject, "sms": w.sms, "text": w.text} {
						if !overdue[lang].MatchString(body) {
							t.Errorf("%s %d days overdue: %s does not say it is overdue: %s", where, offset, name, body)
						}
					}
				}
			}
		}
		if rule != "passport-renewal" {
			continue
		}
		for _, lang := range Languages {
			n := sample(rule, AudienceStudent, lang, 5, 0)
			n.AsOf = n.Anchor.AddDays(3)
			n.OfficeUrgent = true
			out, err := s.Notice(n)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.Subject, expired[lang]) || !strings.Contains(out.Text, expired[lang]) {
				t.Errorf("%s: expired passport: no %q:\n%s\n%s", lang, expired[lang], out.Subject, out.Text)
			}
		}
	}
}

// TestUrgentExactlyWhenOfficeUrgent: the urgent prefix and banner, in the
// subject, the HTML and the SMS, on an office-urgent step and on no other.
func TestUrgentExactlyWhenOfficeUrgent(t *testing.T) {
	s := set(t)
	prefix := map[string]string{"en": "URGENT", "ru": "СРОЧНО", "kk": "ШҰҒЫЛ"}
	for _, rule := range s.Rules() {
		for _, lang := range Languages {
			for _, urgent := range []bool{false, true} {
				for _, offset := range []int{-3, 0, 5} {
					n := sample(rule, AudienceStudent, lang, 3, offset)
					n.OfficeUrgent = urgent
					n.Office.University = "KazNU"
					out, err := s.Notice(n)
					if err != nil {
						t.Fatal(err)
					}
					sms, err := s.SMS(n)
					if err != nil {
						t.Fatal(err)
					}
					p := prefix[lang]
					for name, body := range map[string]string{"subject": out.Subject, "text": out.Text, "html": out.HTML, "sms": sms} {
						has := strings.Contains(strings.ToUpper(body), p)
						if urgent && name != "text" && !has {
							t.Errorf("%s/%s urgent: %s has no %q: %s", lang, rule, name, p, body)
						}
						if !urgent && has {
							t.Errorf("%s/%s not urgent: %s says %q: %s", lang, rule, name, p, body)
						}
					}
					if urgent && !strings.HasPrefix(out.Subject, p) {
						t.Errorf("%s/%s urgent: subject does not start with %q: %s", lang, rule, p, out.Subject)
					}
					if urgent && !strings.HasPrefix(sms, "KazNU: "+p) {
						t.Errorf("%s/%s urgent: SMS does not start with the university and %q: %s", lang, rule, p, sms)
					}
				}
			}
		}
	}
}

// What the office's page does not say is not said: the migration card is
// not asked for on return, the entry-exit visa is not said to be made by
// the International Office, and nothing is claimed about how long a
// passport must stay valid. Russian does not assume the student's gender.
func TestStudentNoticesSayOnlyThePage(t *testing.T) {
	s := set(t)
	never := map[string][]string{
		"en": {"visa at the International Office", "will not be able to come back", "embassy", "valid for", "cannot be extended beyond"},
		"ru": {"визу в Международном отделе", "не сможете вернуться", "посольств", "зарегистрирован ", "прибыл ", "прибыла ", "не вернётесь"},
		"kk": {"бөлімде кіру-шығу визасын", "орала алмайсыз", "елшілі"},
	}
	card := map[string]string{"en": "migration card", "ru": "миграционную карт", "kk": "көші-қон карт"}
	for _, rule := range s.Rules() {
		for _, lang := range Languages {
			for _, offset := range []int{-3, 0, 5} {
				n := sample(rule, AudienceStudent, lang, 2, offset)
				n.VisaRegime = "visa"
				all := studentWords(t, s, n).all()
				for _, w := range never[lang] {
					if strings.Contains(all, w) {
						t.Errorf("%s/%s: says %q, which the office's page does not:\n%s", lang, rule, w, all)
					}
				}
				if rule == "return-check-in" && strings.Contains(strings.ToLower(all), card[lang]) {
					t.Errorf("%s/%s: asks for the migration card on return:\n%s", lang, rule, all)
				}
			}
		}
	}
}

// words is what the student reads of a notice.
type words struct{ subject, text, sms string }

func (w words) all() string { return w.subject + "\n" + w.text + "\n" + w.sms }

// studentWords renders a student notice: its subject, plain text and SMS.
func studentWords(t *testing.T, s *Set, n Notice) words {
	t.Helper()
	out, err := s.Notice(n)
	if err != nil {
		t.Fatal(err)
	}
	sms, err := s.SMS(n)
	if err != nil {
		t.Fatal(err)
	}
	return words{out.Subject, out.Text, sms}
}
