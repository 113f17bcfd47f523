package templates

import (
	"html"
	"regexp"
	"strings"
	"testing"

	"github.com/iec-almaty/sisnotify/jobs/date"
)

// Staff notices: the office's urgent email and the dean's email.

// staffStep is a step of a built-in ladder that sends a staff email
// (docs/rules.md): the level, the run's distance from the due date on the day the
// step is reached, whether the step is office: urgent and whether it sends
// the student a notice of its own.
type staffStep struct {
	rule            string
	level, offset   int
	urgent, student bool
}

// staffContacts gives a notice what the SIS has for staff: the student's
// email and phone, and for a trip its stated reason.
func staffContacts(n *Notice) {
	n.StudentEmail = "aigerim.n@student.iec.edu.kz"
	n.StudentPhone = "+7 701 234 56 78"
	if n.SubjectID != n.StudentID {
		n.Reason = map[string]string{
			"en": "Family reasons: my sister's wedding",
			"ru": "Семейные обстоятельства: свадьба сестры",
			"kk": "Отбасылық жағдай: әпкемнің тойы",
		}[Lang(n.Lang)]
	}
}

// staffNotice is sample's notice for a step, as the delivery job fills it.
func staffNotice(st staffStep, audience, lang string) Notice {
	n := sample(st.rule, audience, lang, st.level, st.offset)
	n.OfficeUrgent, n.StudentNotified = st.urgent, st.student
	staffContacts(&n)
	return n
}

type staffGolden struct {
	name string
	n    Notice
}

// staffGoldenNotices are TestGolden's staff cases: an office and a dean
// email for the rules whose staff emails changed most, in every language,
// at the step where the built-in ladder sends them (a dean email of a step
// that has only a dean digest is what a configuration adding dean: email
// would send).
func staffGoldenNotices() []staffGolden {
	steps := []struct {
		name string
		st   staffStep
		aud  []string
	}{
		// registration: 1 day left (level 2) and overdue (level 3), both urgent.
		{"registration-office-1-day-left", staffStep{"registration", 2, -1, true, true}, []string{AudienceOffice}},
		{"registration-office-overdue", staffStep{"registration", 3, 1, true, true}, []string{AudienceOffice}},
		{"registration-dean-overdue", staffStep{"registration", 3, 1, true, true}, []string{AudienceDean}},
		// travel-dean-approval: the dean at levels 1, 2, 3 (the departure
		// day, urgent), the office at level 3.
		{"travel-dean-approval-dean", staffStep{"travel-dean-approval", 1, -5, false, false}, []string{AudienceDean}},
		{"travel-dean-approval-dean-1-day-left", staffStep{"travel-dean-approval", 2, -1, false, false}, []string{AudienceDean}},
		{"travel-dean-approval-dean-departure-day", staffStep{"travel-dean-approval", 3, 3, true, true}, []string{AudienceDean}},
		{"travel-dean-approval-office-departure-day", staffStep{"travel-dean-approval", 3, 3, true, true}, []string{AudienceOffice}},
		// term-travel-limit: level 1 on the day the request is submitted.
		{"term-travel-limit-dean", staffStep{"term-travel-limit", 1, -12, false, false}, []string{AudienceDean}},
		{"term-travel-limit-office", staffStep{"term-travel-limit", 1, -12, false, false}, []string{AudienceOffice}},
		// passport-renewal: level 5, the expiry day; and expired 3 days ago.
		{"passport-renewal-office-expires-today", staffStep{"passport-renewal", 5, 182, true, true}, []string{AudienceOffice}},
		{"passport-renewal-dean-expires-today", staffStep{"passport-renewal", 5, 182, true, true}, []string{AudienceDean}},
		{"passport-renewal-office-expired", staffStep{"passport-renewal", 5, 185, true, true}, []string{AudienceOffice}},
		// return-check-in: level 3, 3 days overdue, urgent.
		{"return-check-in-office", staffStep{"return-check-in", 3, 3, true, true}, []string{AudienceOffice}},
		{"return-check-in-dean", staffStep{"return-check-in", 3, 3, true, true}, []string{AudienceDean}},
		// address-registration: level 2, the due day, urgent.
		{"address-registration-office-today", staffStep{"address-registration", 2, 0, true, true}, []string{AudienceOffice}},
		// exit-visa: level 3, 2 days before the departure, urgent.
		{"exit-visa-office", staffStep{"exit-visa", 3, -2, true, true}, []string{AudienceOffice}},
	}
	var out []staffGolden
	for _, lang := range Languages {
		for _, s := range steps {
			for _, a := range s.aud {
				n := staffNotice(s.st, a, lang)
				name := lang + "-" + s.name
				if lang == "en" && s.name == "registration-office-overdue" {
					// The escaping of a name in a staff email.
					n.GivenName, n.FamilyName = "<b>O'Brien</b>", "Liam"
					name = "en-registration-office-obrien"
				}
				out = append(out, staffGolden{name, n})
			}
		}
	}
	return out
}

// A staff email carries what staff need to act: the student's id, name,
// faculty, email and phone, and for a trip its id, dates and stated reason;
// each optional one only when it is set.
func TestStaffNoticeCarriesContactsAndTrip(t *testing.T) {
	s := set(t)
	for _, lang := range Languages {
		for _, a := range []string{AudienceOffice, AudienceDean} {
			st := staffStep{"travel-dean-approval", 3, 3, true, true}
			n := staffNotice(st, a, lang)
			out, err := s.Notice(n)
			if err != nil {
				t.Fatal(err)
			}
			want := []string{n.StudentID, fullName(n), n.FacultyName, n.StudentEmail, n.StudentPhone, n.SubjectID,
				FormatDate(lang, n.Departure), FormatDate(lang, n.Return), n.Reason}
			for part, body := range map[string]string{"text": out.Text, "html": html.UnescapeString(out.HTML)} {
				for _, w := range want {
					if !strings.Contains(body, w) {
						t.Errorf("%s/%s %s: no %q:\n%s", lang, a, part, w, body)
					}
				}
			}
			if !strings.Contains(out.HTML, `href="mailto:`+n.StudentEmail+`"`) {
				t.Errorf("%s/%s: the student's email is not a link", lang, a)
			}

			// Nothing set: no empty rows.
			n.StudentEmail, n.StudentPhone, n.Reason = "", "", ""
			bare, err := s.Notice(n)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range []string{commonLabel(t, s, lang, "l.studentEmail"), commonLabel(t, s, lang, "l.studentPhone"), commonLabel(t, s, lang, "l.reason")} {
				if strings.Contains(bare.Text, w) || strings.Contains(bare.HTML, w) {
					t.Errorf("%s/%s: %q shown though unset", lang, a, w)
				}
			}
		}
	}
}

// fullName is the view's .Name.
func fullName(n Notice) string { return strings.TrimSpace(n.GivenName + " " + n.FamilyName) }

// label renders a common label block of lang.
func commonLabel(t *testing.T, s *Set, lang, block string) string {
	t.Helper()
	p := s.notices[noticeKey{lang, "registration", AudienceOffice}]
	var b strings.Builder
	if err := p.text.ExecuteTemplate(&b, block, noticeView{Lang: lang}); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// The footnote says the student is told separately only when the step
// sends the student a notice of its own.
func TestStaffFootnoteFollowsStudentNotified(t *testing.T) {
	s := set(t)
	separately := map[string]string{"en": "separate notice", "ru": "получает отдельное уведомление", "kk": "бөлек хабарлама жіберіледі"}
	not := map[string]string{"en": "sends the student no notice", "ru": "уведомления не получает", "kk": "хабарлама жіберілмейді"}
	for _, rule := range s.Rules() {
		for _, lang := range Languages {
			for _, a := range []string{AudienceOffice, AudienceDean} {
				for _, told := range []bool{false, true} {
					n := sample(rule, a, lang, 1, -2)
					n.StudentNotified = told
					out, err := s.Notice(n)
					if err != nil {
						t.Fatal(err)
					}
					for part, body := range map[string]string{"text": out.Text, "html": out.HTML} {
						if strings.Contains(body, separately[lang]) != told {
							t.Errorf("%s/%s/%s %s, StudentNotified=%v: says %q: %v", lang, rule, a, part, told, separately[lang], !told)
						}
						if strings.Contains(body, not[lang]) == told {
							t.Errorf("%s/%s/%s %s, StudentNotified=%v: says %q: %v", lang, rule, a, part, told, not[lang], told)
						}
					}
				}
			}
		}
	}
}

// A dean asked to decide on a trip is given one date, the same in the
// subject and the body: the due date (3 days before the departure) while
// it is ahead, then the departure date.
func TestDeanDecisionDateIsOne(t *testing.T) {
	s := set(t)
	for _, rule := range []string{"travel-dean-approval", "term-travel-limit"} {
		for _, lang := range Languages {
			for _, offset := range []int{-10, -5, -1, 0, 1, 3} {
				n := sample(rule, AudienceDean, lang, 1, offset)
				v, err := s.view(n)
				if err != nil {
					t.Fatal(err)
				}
				by := v.DecideBy()
				if rule == "travel-dean-approval" {
					want := n.Due
					if offset > 0 {
						want = n.Departure
					}
					if by != want {
						t.Errorf("%s offset %d: decide by %s, want %s", rule, offset, by, want)
					}
				}
				out, err := s.Notice(n)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(out.Subject, FormatDayMonth(lang, by)) {
					t.Errorf("%s/%s offset %d: subject does not ask for %s: %s", lang, rule, offset, FormatDayMonth(lang, by), out.Subject)
				}
				action := renderBlock(t, s, n, "action")
				if !strings.Contains(action, FormatDate(lang, by)) {
					t.Errorf("%s/%s offset %d: body does not ask for %s: %s", lang, rule, offset, FormatDate(lang, by), action)
				}
				// No other date in the subject or the request.
				for _, d := range []date.Date{n.Due, n.Departure, n.Due.AddDays(-3)} {
					if d == by {
						continue
					}
					if strings.Contains(out.Subject, FormatDayMonth(lang, d)) || strings.Contains(action, FormatDate(lang, d)) {
						t.Errorf("%s/%s offset %d: a second date %s besides %s:\n%s\n%s", lang, rule, offset, d, by, out.Subject, action)
					}
				}
				if (by == n.AsOf) != strings.Contains(strings.ToLower(out.Subject), map[string]string{"en": "today", "ru": "сегодня", "kk": "бүгін"}[lang]) {
					t.Errorf("%s/%s offset %d: subject says today or not wrongly: %s", lang, rule, offset, out.Subject)
				}
			}
		}
	}
}

// block renders one block of a notice's template for its view.
func renderBlock(t *testing.T, s *Set, n Notice, name string) string {
	t.Helper()
	p, err := s.lookup(n)
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.view(n)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := p.text.ExecuteTemplate(&b, name, v); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// The urgent form (the subject's prefix, the banner) is in a staff email
// exactly when its step is office: urgent, whatever its level or the day.
func TestStaffUrgentExactlyWhenOfficeUrgent(t *testing.T) {
	s := set(t)
	prefix := map[string]string{"en": "URGENT:", "ru": "СРОЧНО:", "kk": "ШҰҒЫЛ:"}
	for _, rule := range s.Rules() {
		for _, lang := range Languages {
			for _, a := range []string{AudienceOffice, AudienceDean} {
				for _, urgent := range []bool{false, true} {
					for _, level := range []int{1, 3, 5} {
						for _, offset := range []int{-3, 0, 4} {
							n := sample(rule, a, lang, level, offset)
							n.OfficeUrgent = urgent
							out, err := s.Notice(n)
							if err != nil {
								t.Fatal(err)
							}
							if strings.HasPrefix(out.Subject, prefix[lang]) != urgent {
								t.Errorf("%s/%s/%s level %d offset %d urgent=%v: subject %q", lang, rule, a, level, offset, urgent, out.Subject)
							}
							if strings.Contains(out.HTML, "#b3261e;color:#ffffff") != urgent {
								t.Errorf("%s/%s/%s level %d offset %d urgent=%v: banner wrong", lang, rule, a, level, offset, urgent)
							}
						}
					}
				}
			}
		}
	}
}

// The step is said in words, never as a bare "Level 3".
func TestStaffStepInWords(t *testing.T) {
	s := set(t)
	want := map[string][]string{
		"en": {"Reminder: 1 of 3 (the first)", "Reminder: 2 of 3\n", "Reminder: 3 of 3 (the last)", "Reminder: 1 of 1 (the only one)"},
		"ru": {"Напоминание: 1 из 3 (первое)", "Напоминание: 2 из 3\n", "Напоминание: 3 из 3 (последнее)", "Напоминание: 1 из 1 (единственное)"},
		"kk": {"Еске салу кезеңі: 1-кезең (барлығы 3), алғашқысы", "Еске салу кезеңі: 2-кезең (барлығы 3)\n", "Еске салу кезеңі: 3-кезең (барлығы 3), соңғысы", "Еске салу кезеңі: 1-кезең (барлығы 1), жалғыз кезең"},
	}
	level := regexp.MustCompile(`(?i)level|уровень|деңгей`)
	for _, lang := range Languages {
		for i, c := range []struct {
			rule  string
			level int
		}{{"registration", 1}, {"registration", 2}, {"registration", 3}, {"term-travel-limit", 1}} {
			out, err := s.Notice(sample(c.rule, AudienceOffice, lang, c.level, 0))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.Text, want[lang][i]) {
				t.Errorf("%s/%s level %d: no %q:\n%s", lang, c.rule, c.level, want[lang][i], out.Text)
			}
			if level.MatchString(out.Text) || level.MatchString(out.HTML) {
				t.Errorf("%s/%s: still says level:\n%s", lang, c.rule, out.Text)
			}
		}
	}
	// A configured ladder's length wins over the built-in one.
	n := sample("registration", AudienceOffice, "en", 2, 0)
	n.Steps = 4
	out, err := s.Notice(n)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.Text, "Reminder: 2 of 4\n") {
		t.Errorf("Steps = 4: %s", out.Text)
	}
}

// The due state in words: days left before, today on the day, overdue
// after; never "0 days".
func TestStaffWordingFollowsTheDay(t *testing.T) {
	s := set(t)
	today := map[string]string{"en": "today", "ru": "сегодня", "kk": "бүгін"}
	zero := regexp.MustCompile(`\b0 (days?|дней|күн)\b`)
	for _, rule := range s.Rules() {
		for _, lang := range Languages {
			for _, a := range []string{AudienceOffice, AudienceDean} {
				for _, offset := range []int{-3, 0, 3} {
					out, err := s.Notice(sample(rule, a, lang, 2, offset))
					if err != nil {
						t.Fatal(err)
					}
					if zero.MatchString(out.Text) {
						t.Errorf("%s/%s/%s offset %d: says 0 days:\n%s", lang, rule, a, offset, out.Text)
					}
					if offset == 0 && !strings.Contains(out.Text, today[lang]) {
						t.Errorf("%s/%s/%s on the due day: no %q:\n%s", lang, rule, a, today[lang], out.Text)
					}
				}
			}
		}
	}
}

// A fine, the Administrative Offences Code and deportation are named only
// for the registration duties, where the office's page names them.
func TestStaffSanctionOnlyForRegistrationDuties(t *testing.T) {
	s := set(t)
	sanction := regexp.MustCompile(`(?i)fine|offence|offense|deport|sanction|штраф|правонаруш|кодекс|депортац|выдвор|айыппұл|құқық бұзушылық|депортац|кодекс`)
	duties := map[string]bool{"arrival-check-in": true, "registration": true, "stay-extension": true,
		"return-check-in": true, "address-registration": true}
	for _, rule := range s.Rules() {
		for _, lang := range Languages {
			for _, a := range []string{AudienceOffice, AudienceDean} {
				for _, offset := range []int{-3, 0, 3} {
					out, err := s.Notice(sample(rule, a, lang, 1, offset))
					if err != nil {
						t.Fatal(err)
					}
					named := sanction.MatchString(out.Subject + out.Text + out.HTML)
					if named != duties[rule] {
						t.Errorf("%s/%s/%s: names a sanction: %v, want %v:\n%s", lang, rule, a, named, duties[rule], out.Text)
					}
				}
			}
		}
	}
}

// Russian staff notices do not assume the student's gender; a passport
// past its expiry is said to have expired.
func TestStaffWordingNeutralAndExpired(t *testing.T) {
	s := set(t)
	gendered := regexp.MustCompile(`(?i)студент[а-я]* [^.]*?(просит|явился|пришёл|принёс|подал|уехал|вернулся|который|должен)|\b(его|него|ему|он|сам)\b|зарегистрирован\b|не явился`)
	for _, rule := range s.Rules() {
		for _, a := range []string{AudienceOffice, AudienceDean} {
			for _, offset := range []int{-3, 0, 3} {
				out, err := s.Notice(sample(rule, a, "ru", 2, offset))
				if err != nil {
					t.Fatal(err)
				}
				if m := gendered.FindString(out.Subject + "\n" + out.Text); m != "" {
					t.Errorf("ru/%s/%s: %q assumes a gender:\n%s", rule, a, m, out.Text)
				}
			}
		}
	}
	expired := map[string]string{"en": "has expired", "ru": "истёк", "kk": "мерзімі өтті"}
	for _, lang := range Languages {
		for _, a := range []string{AudienceOffice, AudienceDean} {
			out, err := s.Notice(sample("passport-renewal", a, lang, 5, 190))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.Subject, expired[lang]) && !strings.Contains(out.Text, expired[lang]) {
				t.Errorf("%s/%s: an expired passport is not said to have expired:\n%s\n%s", lang, a, out.Subject, out.Text)
			}
		}
	}
}
