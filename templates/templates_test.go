package templates

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"unicode"
	"unicode/utf16"

	"github.com/iec-almaty/sisnotify/jobs/date"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current templates")

var (
	setOnce sync.Once
	theSet  *Set
	setErr  error
)

func set(t *testing.T) *Set {
	t.Helper()
	setOnce.Do(func() { theSet, setErr = New() })
	if setErr != nil {
		t.Fatalf("New: %v", setErr)
	}
	return theSet
}

// office is realistic office data: the longest phone format the office
// might configure, so that the SMS length checks hold in practice.
var office = Office{
	Name:    "International Office",
	Address: "Main building, room 105, 28 Abay Avenue, Almaty",
	Hours:   "Mon-Fri 09:00-18:00, lunch 13:00-14:00",
	Phone:   "+7 (727) 355-05-67",
	Email:   "international@iec.edu.kz",
}

// sample returns a notice of rule whose dates follow the rule's own
// definition (docs/rules.md): asOf is the run date, offset its distance from the
// due date (negative: days left).
func sample(rule, audience, lang string, level, offset int) Notice {
	due := date.MustParse("2026-12-18")
	n := Notice{
		Rule: rule, Level: level, Audience: audience, Lang: lang,
		AsOf: due.AddDays(offset), Due: due,
		StudentID: "S2026-0042", GivenName: "Aigerim", FamilyName: "Nurlanovna",
		FacultyName: "Faculty of Economics", DeanName: "Prof. Serik Akhmetov",
		VisaRegime: "visa_free", SubjectID: "S2026-0042", Office: office,
	}
	switch rule {
	case "visa-invitation":
		n.Anchor = due.AddDays(45)
	case "arrival-check-in":
		n.Anchor = due.AddDays(-1)
	case "registration":
		n.Anchor = due.AddDays(-3)
	case "stay-extension":
		n.Anchor = due.AddDays(30)
	case "passport-renewal":
		n.Anchor = due.AddMonths(6)
	case "travel-late-notice":
		n.Anchor, n.Departure, n.Return = due.AddDays(-2), due, due.AddDays(10)
	case "travel-dean-approval":
		n.Anchor, n.Departure, n.Return = due.AddDays(-10), due.AddDays(3), due.AddDays(8)
	case "term-travel-limit":
		n.Anchor, n.Departure, n.Return = due.AddDays(-12), due, due.AddDays(4)
	case "exit-visa":
		n.Anchor, n.Departure, n.Return = due, due, due.AddDays(40)
		n.VisaRegime = "visa"
	case "return-check-in":
		n.Anchor, n.Return = due.AddDays(-3), due.AddDays(-3)
		n.Departure = due.AddDays(-30)
	case "address-registration":
		n.Anchor = due.AddDays(-2)
	case "break-briefing", "welcome", "document-loss", "status-change":
		n.Anchor = due
	}
	switch rule {
	case "travel-late-notice", "travel-dean-approval", "term-travel-limit", "exit-visa", "return-check-in":
		n.SubjectID = "TR-2026-0451"
	}
	return n
}

// rulesMD is the repository's rules catalog, docs/rules.md: every rule
// with its ladder, which the templates must cover.
func rulesMD(t *testing.T) string {
	p := filepath.Join("..", "docs", "rules.md")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("the rules catalog: %v", err)
	}
	return p
}

type mdRule struct {
	id        string
	steps     int
	audiences map[string]bool // student, office (urgent), dean (email)
	sms       bool
}

// parseRules reads the rule ids and their ladders from docs/rules.md: a rule is a
// "### `id`" heading, its ladder the table rows under it
// (| level | date | student | office | dean |).
func parseRules(t *testing.T, path string) []mdRule {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	heading := regexp.MustCompile("^### `([a-z0-9-]+)`")
	var rules []mdRule
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if m := heading.FindStringSubmatch(line); m != nil {
			rules = append(rules, mdRule{id: m[1], audiences: map[string]bool{}})
			continue
		}
		if len(rules) == 0 || !strings.HasPrefix(line, "| ") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 5 {
			continue
		}
		lvl := strings.TrimSpace(cells[0])
		if lvl == "" || lvl[0] < '0' || lvl[0] > '9' {
			continue // header or separator
		}
		r := &rules[len(rules)-1]
		r.steps++
		student, off, dean := cells[2], cells[3], cells[4]
		if strings.TrimSpace(student) != "" {
			r.audiences[AudienceStudent] = true
		}
		if strings.Contains(student, "sms") {
			r.sms = true
		}
		if strings.Contains(off, "urgent") {
			r.audiences[AudienceOffice] = true
		}
		if strings.Contains(dean, "email") {
			r.audiences[AudienceDean] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rules
}

// TestEveryCombinationExists walks docs/rules.md's rules × every audience ×
// every language: each has a template that renders, with a subject, a text
// and an HTML body. (Every audience, not only those the default ladders
// use, because the configuration may add audiences to a step.)
func TestEveryCombinationExists(t *testing.T) {
	s := set(t)
	p := rulesMD(t)
	rules := parseRules(t, p)
	if len(rules) < 12 {
		t.Fatalf("%s: found %d rules, want at least 12", p, len(rules))
	}
	used := 0
	for _, r := range rules {
		if got := builtinSteps[r.id]; r.steps > 0 && got != r.steps {
			t.Errorf("rule %s: docs/rules.md has %d steps, builtinSteps says %d", r.id, r.steps, got)
		}
		if s.RuleTitle("en", r.id) == r.id {
			t.Errorf("rule %s has no title", r.id)
		}
		for _, lang := range Languages {
			for _, a := range Audiences {
				if !s.Has(r.id, a, lang) {
					t.Errorf("missing template notices/%s/%s.%s.tmpl", lang, r.id, a)
					continue
				}
				if r.audiences[a] {
					used++
				}
				for _, level := range []int{1, r.steps} {
					for _, offset := range []int{-5, 0, 3} {
						n := sample(r.id, a, lang, level, offset)
						out, err := s.Notice(n)
						if err != nil {
							t.Errorf("%s/%s/%s: %v", lang, r.id, a, err)
							continue
						}
						if out.Subject == "" || out.Text == "" || !strings.Contains(out.HTML, "</html>") {
							t.Errorf("%s/%s/%s: empty part: %+v", lang, r.id, a, out)
						}
						if out.Lang != lang {
							t.Errorf("%s/%s/%s: Lang = %q", lang, r.id, a, out.Lang)
						}
					}
				}
			}
		}
	}
	if used == 0 {
		t.Error("no audience parsed from docs/rules.md's ladders")
	}
}

// TestStudentNoticeContent checks what every student notice must say: what
// to do and by when (a date), where (every office detail), and, for the
// registration duties only, what happens if not (a fine, up to deportation:
// the office's page names them for those alone).
func TestStudentNoticeContent(t *testing.T) {
	s := set(t)
	fine := map[string]string{"en": "fine", "ru": "штраф", "kk": "айыппұл"}
	deport := map[string]string{"en": "deportation", "ru": "депортац", "kk": "депортация"}
	deportRules := map[string]bool{"registration": true, "stay-extension": true, "arrival-check-in": true,
		"return-check-in": true, "address-registration": true}
	for _, rule := range s.Rules() {
		for _, lang := range Languages {
			for _, offset := range []int{-3, 0, 2} {
				n := sample(rule, AudienceStudent, lang, 1, offset)
				out, err := s.Notice(n)
				if err != nil {
					t.Fatal(err)
				}
				for _, part := range []struct{ name, body string }{{"text", out.Text}, {"html", out.HTML}} {
					for _, want := range []string{office.Address, office.Email} {
						if !strings.Contains(part.body, want) {
							t.Errorf("%s/%s %s: no %q", lang, rule, part.name, want)
						}
					}
				}
				for _, want := range []string{office.Name, office.Hours, office.Phone} {
					if !strings.Contains(out.Text, want) {
						t.Errorf("%s/%s text: no %q", lang, rule, want)
					}
				}
				key := n.Due
				switch rule {
				case "travel-late-notice", "travel-dean-approval", "term-travel-limit", "exit-visa":
					key = n.Departure // their deadline is the departure
				}
				if !strings.Contains(out.Text, FormatDate(lang, key)) {
					t.Errorf("%s/%s text: no date %q:\n%s", lang, rule, FormatDate(lang, key), out.Text)
				}
				if got := strings.Contains(out.Text, fine[lang]); got != deportRules[rule] {
					t.Errorf("%s/%s text: names a fine (%q): %v, want %v", lang, rule, fine[lang], got, deportRules[rule])
				}
				if got := strings.Contains(out.Text, deport[lang]); got != deportRules[rule] {
					t.Errorf("%s/%s text: names deportation (%q): %v, want %v", lang, rule, deport[lang], got, deportRules[rule])
				}
			}
		}
	}
}

func TestDeanIsAskedToDecide(t *testing.T) {
	s := set(t)
	want := map[string]string{"en": "approve or reject", "ru": "одобрите или отклоните", "kk": "мақұлдауыңызды не қабылдамауыңызды"}
	for _, lang := range Languages {
		out, err := s.Notice(sample("travel-dean-approval", AudienceDean, lang, 1, -5))
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range []string{want[lang], "TR-2026-0451", "S2026-0042", FormatDate(lang, date.MustParse("2026-12-21"))} {
			if !strings.Contains(out.Text, w) {
				t.Errorf("%s: dean email does not say %q:\n%s", lang, w, out.Text)
			}
		}
	}
}

func TestBreakBriefingSaysEverything(t *testing.T) {
	s := set(t)
	want := map[string][]string{
		"en": {"in writing", "3 days before", "entry-exit visa", "3 working days", "dean"},
		"ru": {"Письменно", "за 3 дня", "въездно-выездную визу", "3 рабочих дней", "декана"},
		"kk": {"жазбаша", "3 күн бұрын", "кіру-шығу визасын", "3 жұмыс күні", "деканының"},
	}
	for _, lang := range Languages {
		n := sample("break-briefing", AudienceStudent, lang, 1, -21)
		n.VisaRegime = "visa"
		out, err := s.Notice(n)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range want[lang] {
			if !strings.Contains(out.Text, w) || !strings.Contains(out.HTML, w) {
				t.Errorf("%s: break briefing does not say %q:\n%s", lang, w, out.Text)
			}
		}
		n.VisaRegime = "visa_free"
		out, err = s.Notice(n)
		if err != nil {
			t.Fatal(err)
		}
		if v := want[lang][2]; strings.Contains(out.Text, v) || strings.Contains(out.HTML, v) {
			t.Errorf("%s: a visa-free student is told about the entry-exit visa", lang)
		}
		if strings.Contains(out.HTML, "<li></li>") {
			t.Errorf("%s: empty list item", lang)
		}
	}
}

// A rule file may replace a common block: travel-late-notice has no
// "reminder" opening (the trip is already late) and shows the departure as
// its deadline.
func TestRuleOverridesCommonBlock(t *testing.T) {
	s := set(t)
	out, err := s.Notice(sample("travel-late-notice", AudienceStudent, "en", 1, -2))
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range []string{out.Text, out.HTML} {
		if strings.Contains(part, "This is a") || strings.Contains(part, "Deadline:") {
			t.Errorf("common block not replaced:\n%s", part)
		}
		if !strings.Contains(part, "Departure: 18 December 2026, in 2 days.") {
			t.Errorf("rule's deadline block not used:\n%s", part)
		}
	}
}

func TestEmptyOverrideIsRefused(t *testing.T) {
	base, err := parsePair("en", "base", []byte(`{{define "tone"}}Hello.{{end}}{{define "x"}}{{end}}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := base.extend("rule.student.tmpl", []byte(`{{define "tone"}} {{/* nothing */}} {{end}}`)); err == nil {
		t.Error("an empty block that would not replace the common one was accepted")
	}
	if _, err := base.extend("rule.student.tmpl", []byte(`{{define "x"}}{{end}}{{define "tone"}}{{template "x" .}}{{end}}`)); err != nil {
		t.Errorf("a block calling an empty block was refused: %v", err)
	}
}

func TestEscaping(t *testing.T) {
	s := set(t)
	for _, a := range Audiences {
		n := sample("registration", a, "en", 3, 2)
		n.GivenName = "<b>O'Brien</b>"
		n.FamilyName = `Smith & "Sons"`
		out, err := s.Notice(n)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out.HTML, "<b>O'Brien</b>") || strings.Contains(out.HTML, "O'Brien") {
			t.Errorf("%s: name not escaped in HTML", a)
		}
		if !strings.Contains(out.HTML, "&lt;b&gt;O&#39;Brien&lt;/b&gt;") || !strings.Contains(out.HTML, "Smith &amp; &#34;Sons&#34;") {
			t.Errorf("%s: escaped name not in HTML:\n%s", a, out.HTML)
		}
		if !strings.Contains(out.Text, `<b>O'Brien</b> Smith & "Sons"`) {
			t.Errorf("%s: text does not carry the name as written:\n%s", a, out.Text)
		}
	}
}

func TestSubjectsAreSingleLine(t *testing.T) {
	s := set(t)
	evil := "Anna\r\nBcc: victim@example.com\n\x00\u2028X"
	for _, rule := range s.Rules() {
		for _, lang := range Languages {
			for _, a := range Audiences {
				n := sample(rule, a, lang, 1, 1)
				n.GivenName, n.FamilyName, n.StudentID, n.SubjectID = evil, evil, "S1\nS2", "T1\r\nT2"
				n.FacultyName, n.DeanName = evil, evil
				out, err := s.Notice(n)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range out.Subject {
					if unicode.IsControl(r) || r == '\u2028' {
						t.Fatalf("%s/%s/%s: control character %U in subject %q", lang, rule, a, r, out.Subject)
					}
				}
				if strings.Contains(out.Text, "\r") || strings.Contains(out.Text, "\nBcc:") {
					t.Errorf("%s/%s/%s: a name's line break reached the text", lang, rule, a)
				}
				if a == AudienceStudent {
					sms, err := s.SMS(n)
					if err != nil {
						t.Fatal(err)
					}
					if strings.ContainsAny(sms, "\r\n\x00") {
						t.Errorf("%s/%s: SMS not single-line: %q", lang, rule, sms)
					}
				}
			}
		}
	}
}

func TestUnknownLanguageFallsBackToEnglish(t *testing.T) {
	s := set(t)
	en, err := s.Notice(sample("registration", AudienceStudent, "en", 1, -2))
	if err != nil {
		t.Fatal(err)
	}
	for _, lang := range []string{"", "fr", "de-DE", "xx"} {
		out, err := s.Notice(sample("registration", AudienceStudent, lang, 1, -2))
		if err != nil {
			t.Fatal(err)
		}
		if out != en {
			t.Errorf("language %q: not the English notice", lang)
		}
	}
	d, err := s.Digest(Digest{Lang: "fr", AsOf: date.MustParse("2026-12-18"), Office: office})
	if err != nil {
		t.Fatal(err)
	}
	if d.Lang != "en" || !strings.Contains(d.Text, "Nothing is overdue today") {
		t.Errorf("digest in an unknown language: %+v", d)
	}
}

func TestErrors(t *testing.T) {
	s := set(t)
	n := sample("registration", AudienceStudent, "en", 1, 0)
	bad := n
	bad.Rule = "no-such-rule"
	if _, err := s.Notice(bad); !errors.Is(err, ErrNoTemplate) {
		t.Errorf("unknown rule: err = %v, want ErrNoTemplate", err)
	}
	bad = n
	bad.Audience = "parents"
	if _, err := s.Notice(bad); err == nil {
		t.Error("unknown audience: no error")
	}
	bad = n
	bad.Due = 0
	if _, err := s.Notice(bad); err == nil {
		t.Error("no due date: no error")
	}
	bad = n
	bad.Audience = AudienceOffice
	if _, err := s.SMS(bad); err == nil {
		t.Error("SMS to the office: no error")
	}
	if _, err := s.Digest(Digest{Lang: "en", AsOf: n.AsOf, Audience: "students"}); err == nil {
		t.Error("digest to an unknown audience: no error")
	}
	if _, err := s.Digest(Digest{Lang: "en"}); err == nil {
		t.Error("digest without AsOf: no error")
	}
	// An empty audience is a student notice.
	n.Audience = ""
	if out, err := s.Notice(n); err != nil || !strings.HasPrefix(out.Text, "Dear Aigerim") {
		t.Errorf("empty audience: %v %q", err, out.Text)
	}
}

func TestVersion(t *testing.T) {
	s := set(t)
	v := s.Version()
	if !regexp.MustCompile(`^[0-9a-f]{12}$`).MatchString(v) {
		t.Fatalf("Version = %q", v)
	}
	s2, err := New()
	if err != nil {
		t.Fatal(err)
	}
	if s2.Version() != v {
		t.Error("Version differs between two loads of the same templates")
	}
	out, err := s.Notice(sample("registration", AudienceStudent, "ru", 1, 0))
	if err != nil {
		t.Fatal(err)
	}
	if out.Version != v {
		t.Errorf("Rendered.Version = %q, want %q", out.Version, v)
	}
}

// gsm7 is the GSM 03.38 default alphabet; gsm7ext its extension table,
// whose characters take two septets.
const (
	gsm7    = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
	gsm7ext = "^{}\\[~]|€\f"
)

// smsUnits returns the length of an SMS in its encoding's units and the
// most that two concatenated segments hold: GSM-7 septets (2 x 153) when
// every character is in the GSM alphabet, else UCS-2 code units (2 x 67).
func smsUnits(s string) (n, limit int, encoding string) {
	septets := 0
	for _, r := range s {
		switch {
		case strings.ContainsRune(gsm7, r):
			septets++
		case strings.ContainsRune(gsm7ext, r):
			septets += 2
		default:
			return len(utf16.Encode([]rune(s))), 2 * 67, "UCS-2"
		}
	}
	return septets, 2 * 153, "GSM-7"
}

// TestSMSFitsTwoSegments renders every student SMS in every state, with the
// longest month names, and checks it against two segments: UCS-2 (134) for
// Russian and Kazakh, GSM-7 (306) for English, which must stay GSM-7.
func TestSMSFitsTwoSegments(t *testing.T) {
	s := set(t)
	if n, l, e := smsUnits("Ab{"); n != 4 || l != 306 || e != "GSM-7" {
		t.Fatalf("smsUnits self-check: %d %d %s", n, l, e)
	}
	if n, l, e := smsUnits("Привет"); n != 6 || l != 134 || e != "UCS-2" {
		t.Fatalf("smsUnits self-check: %d %d %s", n, l, e)
	}
	longest := map[string]string{"en": "2026-09-28", "ru": "2026-09-28", "kk": "2026-12-28"}
	for _, rule := range s.Rules() {
		for _, lang := range Languages {
			worst, worstText := 0, ""
			for _, due := range []string{longest[lang], "2026-02-01"} {
				for _, offset := range []int{-21, -1, 0, 3, 40} {
					for _, level := range []int{1, 2, 5} {
						for _, visa := range []string{"visa", "visa_free"} {
							n := sample(rule, AudienceStudent, lang, level, 0)
							shift := date.MustParse(due).Sub(n.Due)
							for _, d := range []*date.Date{&n.Due, &n.Anchor, &n.Departure, &n.Return} {
								if !d.IsZero() {
									*d = d.AddDays(shift)
								}
							}
							n.AsOf = n.Due.AddDays(offset)
							n.VisaRegime = visa
							sms, err := s.SMS(n)
							if err != nil {
								t.Fatal(err)
							}
							if !strings.HasSuffix(sms, " +77273550567") { // office.Phone as an SMS prints it
								t.Errorf("%s/%s: SMS does not end with the office phone: %q", lang, rule, sms)
							}
							if strings.Contains(sms, n.GivenName) || strings.Contains(sms, n.FamilyName) {
								t.Errorf("%s/%s: SMS names the student: %q", lang, rule, sms)
							}
							units, limit, enc := smsUnits(sms)
							if lang == "en" && enc != "GSM-7" {
								t.Errorf("en/%s: SMS is not GSM-7: %q", rule, sms)
							}
							if units > limit {
								t.Errorf("%s/%s: SMS is %d %s units, more than 2 segments (%d): %q", lang, rule, units, enc, limit, sms)
							}
							if units > worst {
								worst, worstText = units, sms
							}
						}
					}
				}
			}
			t.Logf("%s %-22s %3d %s", lang, rule, worst, worstText)
		}
	}
}

func TestConcurrentRendering(t *testing.T) {
	s := set(t)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for _, rule := range s.Rules() {
				lang := Languages[i%len(Languages)]
				if _, err := s.Notice(sample(rule, Audiences[i%3], lang, 1, i-4)); err != nil {
					t.Error(err)
				}
				if _, err := s.SMS(sample(rule, AudienceStudent, lang, 1, i-4)); err != nil {
					t.Error(err)
				}
			}
			if _, err := s.Digest(sampleDigest(Languages[i%3], AudienceOffice)); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
}

func sampleDigest(lang, audience string) Digest {
	asOf := date.MustParse("2026-12-18")
	d := Digest{
		Lang: lang, AsOf: asOf, Office: office, Audience: audience,
		DeanName: "Prof. Serik Akhmetov", FacultyName: "Faculty of Economics",
		Groups: []DigestGroup{
			{Rule: "registration", Rows: []DigestRow{
				{StudentID: "S2026-0042", Name: "<b>O'Brien</b> Liam", Faculty: "Faculty of Economics", Due: asOf.AddDays(-1), DaysOverdue: 1, Level: 3, Sent: sampleSent(lang, 1, 3, 3), New: true},
				{StudentID: "S2026-0007", Name: "Zhang Wei", Faculty: "Faculty of Law", Due: asOf.AddDays(-5), DaysOverdue: 5, Level: 3, Sent: sampleSent(lang, 5, 3, 3)},
				{StudentID: "S2026-0101", Name: "Ali Karimov", Faculty: "Faculty of Law", Due: asOf.AddDays(1), DaysOverdue: -1, Level: 1, Sent: sampleSent(lang, -1, 1, 3), New: true},
			}},
			{Rule: "travel-dean-approval", Rows: []DigestRow{
				{StudentID: "S2025-0311", SubjectID: "TR-2026-0451", Name: "Fatima Yusupova", Faculty: "Faculty of Economics", Due: asOf, DaysOverdue: 0, Level: 2, Sent: sampleSent(lang, 0, 2, 3)},
			}},
			{Rule: "passport-renewal", Rows: []DigestRow{
				{StudentID: "S2024-0020", Name: "Nguyen Van An", Faculty: "Faculty of IT", Due: asOf.AddDays(-21), DaysOverdue: 21, Level: 3, Sent: sampleSent(lang, 21, 3, 5)},
			}},
			{Rule: "exit-visa", Rows: []DigestRow{
				{StudentID: "S2025-0500", SubjectID: "TR-2026-0470", Name: "Aibek Osmonov", Faculty: "Faculty of Economics", Due: asOf.AddDays(6), DaysOverdue: -6, Level: 2, FoundLate: true, Sent: sampleSent(lang, -6, 2, 3), New: true},
			}},
			{Rule: "stay-extension", Rows: []DigestRow{
				{StudentID: "S2026-0150", Name: "Amina Rahimova", Faculty: "Faculty of Law", Due: asOf.AddDays(12), DaysOverdue: -12, Level: 1, Sent: sampleSent(lang, -12, 1, 5)},
			}},
			{Rule: "travel-late-notice", Rows: []DigestRow{
				{StudentID: "S2025-0777", SubjectID: "TR-2026-0399", Name: "Dilnoza Karimova", Faculty: "Faculty of IT", Due: asOf.AddDays(-4), DaysOverdue: 4, Level: 1, Reason: MootDeparturePassed, ClosedOn: asOf},
			}},
			{Rule: "break-briefing"}, // empty: left out
		},
		Failed: []FailedNotice{
			{NoticeID: "8123", StudentID: "S2026-0042", Rule: "registration", Audience: AudienceStudent, Channel: "email", Code: FailMailboxRejected, Detail: "550 5.1.1"},
		},
		Problems: []DataProblem{
			{Entity: "student", RowID: "S2026-0099", Field: "phone", Code: "invalid_phone", Message: "not a valid phone number"},
			{Entity: "travel_request", RowID: "TR-2026-0460", Field: "departure_on", Code: "malformed_date", Message: "not a date"},
		},
	}
	if audience == AudienceDean {
		d.Failed, d.Problems = nil, nil
		d.Groups = d.Groups[:len(d.Groups)-2] // a dean has no moot rows
	}
	return d
}

// sampleSent is what the digest job writes for what was sent: the
// student's email of each step up to level, 2 days apart, before the due
// date that is daysOverdue before the sample's night.
func sampleSent(lang string, daysOverdue, level, steps int) string {
	asOf := date.MustParse("2026-12-18")
	var parts []string
	for l := 1; l <= level; l++ {
		on := asOf.AddDays(-daysOverdue - 2*(level-l))
		if on > asOf {
			on = asOf
		}
		parts = append(parts, "email, "+StepText(lang, l, steps)+", "+FormatDayMonth(lang, on))
	}
	return strings.Join(parts, "; ")
}

func TestDigest(t *testing.T) {
	s := set(t)
	nothing := map[string]string{"en": "Nothing is overdue today", "ru": "Сегодня просроченных нет", "kk": "Бүгін мерзімі өткен ештеңе жоқ"}
	for _, lang := range Languages {
		// Nothing at all: the digest still says the night ran.
		out, err := s.Digest(Digest{Lang: lang, AsOf: date.MustParse("2026-12-18"), Office: office})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.Text, nothing[lang]) || !strings.Contains(out.HTML, nothing[lang]) {
			t.Errorf("%s: empty digest does not say %q:\n%s", lang, nothing[lang], out.Text)
		}
		// Open rows, none overdue: still "nothing is overdue".
		d := sampleDigest(lang, AudienceOffice)
		d.Groups = []DigestGroup{{Rule: "registration", Rows: []DigestRow{{StudentID: "S1", Name: "A B", Due: d.AsOf.AddDays(3), DaysOverdue: -3, Level: 1}}}}
		out, err = s.Digest(d)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.Text, nothing[lang]) {
			t.Errorf("%s: digest without overdue rows does not say %q", lang, nothing[lang])
		}

		out, err = s.Digest(sampleDigest(lang, AudienceOffice))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out.Text, nothing[lang]) {
			t.Errorf("%s: digest with overdue rows says nothing is overdue", lang)
		}
		// Most overdue first within a group.
		if i, j := strings.Index(out.Text, "S2026-0007"), strings.Index(out.Text, "S2026-0042"); i < 0 || j < 0 || i > j {
			t.Errorf("%s: rows not most overdue first", lang)
		}
		// Group titles are translated.
		if title := s.RuleTitle(lang, "registration"); !strings.Contains(out.HTML, title) || !strings.Contains(out.Text, title) {
			t.Errorf("%s: no group title %q", lang, title)
		}
		if strings.Contains(out.HTML, "<b>O'Brien</b>") || !strings.Contains(out.HTML, "&lt;b&gt;O&#39;Brien&lt;/b&gt;") {
			t.Errorf("%s: name not escaped in the digest HTML", lang)
		}
		if strings.Contains(out.Text, s.RuleTitle(lang, "break-briefing")) {
			t.Errorf("%s: an empty group is listed", lang)
		}

		dean, err := s.Digest(sampleDigest(lang, AudienceDean))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(dean.Text, "Prof. Serik Akhmetov") || !strings.Contains(dean.Subject, "Faculty of Economics") {
			t.Errorf("%s: dean digest does not address the dean:\n%s", lang, dean.Text)
		}
	}
}

// The sections come in docs/rules.md's order after a line of counts, each row in
// exactly one of them: act today and legal exposure before found late.
func TestDigestSections(t *testing.T) {
	s := set(t)
	titles := map[string][]string{ // today, legal, overdue, late, moot, upcoming
		"en": {"Act today", "Overdue, legal exposure", "Other overdue", "Found late", "Closed as moot", "Upcoming"},
		"ru": {"Сделать сегодня", "Просрочено, правовой риск", "Прочие просроченные", "Обнаружено с опозданием", "Закрыто как неактуальное", "Предстоящие"},
		"kk": {"Бүгін орындау керек", "Мерзімі өткен, құқықтық тәуекел", "Мерзімі өткен басқалары", "Кеш анықталды", "Өзектілігі жойылып, жабылды", "Алдағылары"},
	}
	for _, lang := range Languages {
		out, err := s.Digest(sampleDigest(lang, AudienceOffice))
		if err != nil {
			t.Fatal(err)
		}
		tt := titles[lang]
		counts := strings.SplitN(out.Text, "\n", 2)[0]
		want := tt[0] + ": 2 · " + tt[1] + ": 2 · " + tt[2] + ": 1 · " + tt[3] + ": 1 · " + tt[4] + ": 1 · " + tt[5] + ": 1 · "
		if !strings.HasPrefix(counts, want) {
			t.Errorf("%s: counts line\n%q, want it to start with\n%q", lang, counts, want)
		}
		// The sections in order, each with its rows.
		order(t, lang+" text", out.Text,
			"== "+tt[0]+": 2 ==", "S2025-0311", "S2026-0101",
			"== "+tt[1]+": 2 ==", "S2026-0007", "S2026-0042",
			"== "+tt[2]+": 1 ==", "S2024-0020",
			"== "+tt[3]+": 1 ==", "S2025-0500",
			"== "+tt[4]+": 1 ==", "S2025-0777",
			"== "+tt[5]+": 1 ==", "S2026-0150")
		order(t, lang+" html", out.HTML, `id="today"`, `id="legal"`, `id="overdue"`, `id="late"`, `id="moot"`, `id="upcoming"`, `id="failed"`, `id="problems"`)
		for _, id := range []string{"S2026-0007", "S2025-0500", "S2025-0777", "S2024-0020"} {
			if n := strings.Count(out.Text, "- "+id) + strings.Count(out.Text, "] "+id); n != 1 {
				t.Errorf("%s: %s listed %d times, want once", lang, id, n)
			}
		}
		// No heading for what students reported: nothing yet.
		if strings.Contains(out.HTML, `id="reported"`) {
			t.Errorf("%s: an empty section has a heading", lang)
		}
		// The dean's digest: the same sections, without moot, failed
		// notices and data problems.
		dean, err := s.Digest(sampleDigest(lang, AudienceDean))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(dean.Text, tt[4]) || strings.Contains(dean.HTML, `id="failed"`) || strings.Contains(dean.HTML, `id="problems"`) {
			t.Errorf("%s: the dean digest shows office sections:\n%s", lang, dean.Text)
		}
		order(t, lang+" dean", dean.Text, "== "+tt[0], "== "+tt[1], "== "+tt[2], "== "+tt[3], "== "+tt[5])
	}
	// Found late gives way to act today and legal exposure only.
	for _, c := range []struct {
		rule string
		days int
		late bool
		want string
	}{
		{"registration", 0, true, SectionToday}, {"exit-visa", -1, true, SectionToday},
		{"registration", 3, true, SectionLegal}, {"return-check-in", 3, false, SectionLegal},
		{"passport-renewal", 3, true, SectionLate}, {"passport-renewal", 3, false, SectionOverdue},
		{"exit-visa", -2, true, SectionLate}, {"exit-visa", -2, false, SectionUpcoming},
		{"registration", -5, false, SectionUpcoming}, {"travel-dean-approval", 1, false, SectionOverdue},
	} {
		if got := SectionOf(c.rule, c.days, c.late); got != c.want {
			t.Errorf("SectionOf(%s, %d, %v) = %s, want %s", c.rule, c.days, c.late, got, c.want)
		}
	}
}

// order checks that the substrings appear in text in this order.
func order(t *testing.T, what, text string, subs ...string) {
	t.Helper()
	last := -1
	for _, sub := range subs {
		i := strings.Index(text[max(last, 0):], sub)
		if i < 0 {
			t.Errorf("%s: no %q after byte %d in\n%s", what, sub, last, text)
			return
		}
		last = max(last, 0) + i
	}
}

// The wording of docs/rules.md: "N days left", "today", "overdue since D";
// steps in words; reasons and problems in the digest's language, with the
// field and the row id but never a value.
func TestDigestWording(t *testing.T) {
	s := set(t)
	want := map[string][]string{
		"en": {"overdue since 17 December 2026 (1 day)", "overdue since 27 November 2026 (21 days)", "due today", "1 day left", "6 days left",
			"Reminders: step 3 of 3", "Reminders: step 2 of 3", "Already sent: email, step 1 of 3, 13 December",
			"closed 18 December: the departure date has passed; check the trip in the SIS",
			"The recipient's mail server refused the address (no such mailbox): correct it in the SIS.", "email to the student", "[550 5.1.1] (8123)",
			"Student S2026-0099, field phone: not a valid phone number", "Trip request TR-2026-0460, field departure_on: not a date",
			"[found late] S2025-0500"},
		"ru": {"просрочено с 17 декабря 2026 г. (1 день)", "просрочено с 27 ноября 2026 г. (21 день)", "срок сегодня", "остался 1 день", "осталось 6 дней",
			"Напоминания: шаг 3 из 3", "Уже отправлено: email, шаг 1 из 3, 13 декабря",
			"закрыто 18 декабря: дата выезда прошла; проверьте поездку в SIS",
			"Почтовый сервер получателя отклонил адрес (такого ящика нет): исправьте его в SIS.", "письмо студенту", "[550 5.1.1] (8123)",
			"Студент S2026-0099, поле phone: некорректный номер телефона", "Заявка на поездку TR-2026-0460, поле departure_on: это не дата",
			"[с опозданием] S2025-0500"},
		"kk": {"2026 жылғы 17 желтоқсаннан бері мерзімі өткен (1 күн)", "2026 жылғы 27 қарашадан бері мерзімі өткен (21 күн)", "мерзімі бүгін", "1 күн қалды", "6 күн қалды",
			"Ескертулер: 3-қадам (барлығы 3)", "18 желтоқсанда жабылды: жолға шығу күні өтіп кетті",
			"Алушының пошта сервері мекенжайды қабылдамады", "студентке хат",
			"Студент S2026-0099, өріс phone: телефон нөмірі дұрыс емес", "[кеш анықталды] S2025-0500"},
	}
	for _, lang := range Languages {
		out, err := s.Digest(sampleDigest(lang, AudienceOffice))
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range want[lang] {
			if !strings.Contains(out.Text, w) {
				t.Errorf("%s: no %q in\n%s", lang, w, out.Text)
			}
		}
		for _, bad := range []string{"0 days left", "0 дней", "0 күн", "L3", "Уровень", "Деңгей", "not a valid phone number", "invalid_phone", "malformed_date", "mailbox_rejected"} {
			if lang == "en" && bad == "not a valid phone number" {
				continue // the English sentence is the validator's
			}
			if strings.Contains(out.Text, bad) || strings.Contains(out.HTML, bad) {
				t.Errorf("%s: %q in the digest:\n%s", lang, bad, out.Text)
			}
		}
	}
}

func TestDigestSaysWhatWasLeftOut(t *testing.T) {
	s := set(t)
	phone := map[string]string{"en": "not a valid phone number: 1000", "ru": "некорректный номер телефона: 1000", "kk": "телефон нөмірі дұрыс емес: 1000"}
	for _, lang := range Languages {
		d := sampleDigest(lang, AudienceOffice)
		d.FailedTotal, d.ProblemsTotal = 41, 1234
		d.ProblemCounts = []ProblemCount{{Code: "invalid_phone", N: 1000}, {Code: "no_faculty", N: 234}}
		out, err := s.Digest(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, body := range []string{out.Text, out.HTML} {
			for _, want := range []string{": 41", ": 1234", "40", "1232", "sisnotify notices --status failed", "sisnotify.data_problems", phone[lang], ": 234"} {
				if !strings.Contains(body, want) {
					t.Errorf("%s: cut lists: no %q in\n%s", lang, want, body)
				}
			}
		}
		// A whole list says nothing of the kind.
		out, err = s.Digest(sampleDigest(lang, AudienceOffice))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out.Text, "sisnotify.data_problems") || strings.Contains(out.Text, "--status failed") {
			t.Errorf("%s: whole lists say something was left out:\n%s", lang, out.Text)
		}
	}
}

// sampleCutDigest is a long office digest as the digest job cuts it: each
// section shows its most urgent rows and counts them all (46 open rows,
// 6 shown), and the file with every row is attached.
func sampleCutDigest(lang string) Digest {
	d := sampleDigest(lang, AudienceOffice)
	asOf := d.AsOf
	rows := func(rule string, sent bool, r ...DigestRow) DigestGroup {
		for i := range r {
			if sent {
				r[i].Sent = sampleSent(lang, r[i].DaysOverdue, r[i].Level, BuiltinSteps(rule))
			}
		}
		return DigestGroup{Rule: rule, Rows: r}
	}
	g := d.Groups
	reg, tda, pass, exit, stay, moot := g[0], g[1], g[2], g[3], g[4], g[5]
	today := DigestSection{Kind: SectionToday, Total: 7, Groups: []DigestGroup{
		{Rule: tda.Rule, Rows: tda.Rows, Total: 5}, {Rule: reg.Rule, Rows: reg.Rows[2:], Total: 2}}}
	legal := DigestSection{Kind: SectionLegal, Total: 30, Groups: []DigestGroup{
		{Rule: reg.Rule, Rows: reg.Rows[:2], Total: 20},
		{Rule: "stay-extension", Total: 10}}} // a rule with no row shown
	overdue := DigestSection{Kind: SectionOverdue, Total: 1, Groups: []DigestGroup{pass}}
	late := DigestSection{Kind: SectionLate, Total: 3, Groups: []DigestGroup{
		rows("exit-visa", false, exit.Rows...), {Rule: "passport-renewal", Total: 2}}}
	mootSec := DigestSection{Kind: SectionMoot, Total: 1, Groups: []DigestGroup{moot}}
	upcoming := DigestSection{Kind: SectionUpcoming, Total: 5, Groups: []DigestGroup{
		stay, rows("passport-renewal", true, DigestRow{StudentID: "S2023-0001", Name: "Yerlan Tashkenbayev", Faculty: "Faculty of IT", Due: asOf.AddDays(40), DaysOverdue: -40, Level: 1})}}
	d.Groups = nil
	d.Sections = []DigestSection{today, legal, overdue, late, mootSec, upcoming}
	d.RowsTotal, d.OverdueTotal, d.NewTotal, d.TodayTotal = 46, 33, 12, 7
	d.Attachment = DigestCSVName(d.AsOf)
	return d
}

func TestDigestCutSaysWhereTheRestIs(t *testing.T) {
	s := set(t)
	more := map[string]string{
		"en": "This email shows the 9 most urgent of 47 rows. 38 more are in the attached CSV file digest-2026-12-18.csv, which lists every row.",
		"ru": "В письме показаны самые срочные строки: 9 из 47. Ещё 38 — во вложенном CSV-файле digest-2026-12-18.csv, где есть все строки.",
		"kk": "Хатта ең шұғыл 9 жол ғана көрсетілді (47 жолдың ішінен). Тағы 38 жол тіркелген digest-2026-12-18.csv CSV файлында, онда барлық жол бар.",
	}
	section := map[string]string{
		"en": "Shown here: the 2 most urgent of 30. The other 28 are in the attached file digest-2026-12-18.csv.",
		"ru": "Здесь показаны самые срочные: 2 из 30. Остальные 28 — во вложенном файле digest-2026-12-18.csv.",
		"kk": "Мұнда ең шұғылдары көрсетілді: 2 (30 ішінен). Қалған 28 — тіркелген digest-2026-12-18.csv файлында.",
	}
	shown := map[string]string{"en": "shown here", "ru": "в письме", "kk": "хатта"}
	for _, lang := range Languages {
		out, err := s.Digest(sampleCutDigest(lang))
		if err != nil {
			t.Fatal(err)
		}
		for _, body := range []string{out.Text, out.HTML} {
			for _, want := range []string{more[lang], section[lang]} {
				if !strings.Contains(body, want) {
					t.Errorf("%s: cut digest does not say %q:\n%s", lang, want, body)
				}
			}
			// Every rule with its count in the section, and how many
			// are shown.
			for _, want := range []string{"(registration): 20 (" + shown[lang] + ": 2)", "(travel-dean-approval): 5 (" + shown[lang] + ": 1)",
				"(passport-renewal): 1", s.RuleTitle(lang, "stay-extension"), "(stay-extension): 10 (" + shown[lang] + ": 0)"} {
				if !strings.Contains(strings.ReplaceAll(body, "</span>", ""), want) {
					t.Errorf("%s: cut digest has no %q:\n%s", lang, want, body)
				}
			}
		}
		// The counts are the whole digest's: 33 overdue, 12 new, 46 in all.
		if !strings.Contains(out.Subject, "33") || !strings.Contains(out.Subject, "12") || !strings.Contains(out.Subject, "7") {
			t.Errorf("%s: subject %q does not count every row", lang, out.Subject)
		}
		if !strings.Contains(out.Text, ": 33.") || !strings.Contains(out.Text, ": 46.") {
			t.Errorf("%s: summary does not count every row:\n%s", lang, out.Text)
		}
		if !strings.Contains(strings.SplitN(out.Text, "\n", 2)[0], ": 30 · ") {
			t.Errorf("%s: the counts line does not count the cut section's rows: %s", lang, strings.SplitN(out.Text, "\n", 2)[0])
		}
		// A whole digest says nothing of the kind.
		whole, err := s.Digest(sampleDigest(lang, AudienceOffice))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(whole.Text, ".csv") || strings.Contains(whole.Text, shown[lang]+":") {
			t.Errorf("%s: a whole digest speaks of an attachment:\n%s", lang, whole.Text)
		}
	}
}

func TestDigestCSV(t *testing.T) {
	s := set(t)
	asOf := date.MustParse("2026-12-18")
	header := map[string]string{
		"en": "Section,Rule,Student ID,request,Name,Faculty,Due,Days overdue (negative: days left),Reminders,Already sent,new,found late,Closed as moot",
		"ru": "Раздел;Правило;ID студента;заявка;ФИО;Факультет;Срок;Дней просрочки (минус — осталось дней);Напоминания;Уже отправлено;новое;с опозданием;Закрыто как неактуальное",
		"kk": "Бөлім;Ереже;Студент ID;өтінім;Аты-жөні;Факультет;Мерзімі;Мерзімінен өткен күн (минус — қалған күн);Ескертулер;Жіберілгені;жаңа;кеш анықталды;Өзектілігі жойылып, жабылды",
	}
	sections := map[string][]string{ // legal, late, today, moot
		"en": {"Overdue, legal exposure", "Found late", "Act today", "Closed as moot"},
		"ru": {"Просрочено, правовой риск", "Обнаружено с опозданием", "Сделать сегодня", "Закрыто как неактуальное"},
		"kk": {"Мерзімі өткен, құқықтық тәуекел", "Кеш анықталды", "Бүгін орындау керек", "Өзектілігі жойылып, жабылды"},
	}
	moot := map[string]string{
		"en": "2026-12-17: the departure date has passed; check the trip in the SIS",
		"ru": "2026-12-17: дата выезда прошла; проверьте поездку в SIS",
		"kk": "2026-12-17: жолға шығу күні өтіп кетті; сапарды SIS-те тексеріңіз",
	}
	for _, lang := range Languages {
		var b bytes.Buffer
		c, err := s.NewDigestCSV(&b, lang)
		if err != nil {
			t.Fatal(err)
		}
		rows := []struct {
			rule string
			r    DigestRow
		}{
			{"registration", DigestRow{StudentID: "S1", SubjectID: "S1", Name: "Айгерим Бекова", Faculty: "Инженерия; IT", Due: asOf.AddDays(-12), DaysOverdue: 12, Level: 3, Sent: "email + SMS, шаг 3 из 3, 25 ноября", New: true}},
			{"travel-dean-approval", DigestRow{StudentID: "S2", SubjectID: "TR-1", Name: "=HYPERLINK(\"http://x\")", Faculty: "-Law", Due: asOf.AddDays(3), DaysOverdue: -3, Level: 1, FoundLate: true}},
			{"registration", DigestRow{StudentID: "@S3", Name: "O'Brien,\r\nLiam \"Jr\"", Due: asOf, Level: 2}},
			{"exit-visa", DigestRow{StudentID: "S4", SubjectID: "TR-2", Name: "A B", Due: asOf.AddDays(-2), DaysOverdue: 2, Level: 1, Reason: MootDeparturePassed, ClosedOn: asOf.AddDays(-1)}},
		}
		for _, r := range rows {
			if err := c.Row(r.rule, r.r); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Flush(); err != nil {
			t.Fatal(err)
		}
		raw := b.Bytes()
		if !bytes.HasPrefix(raw, []byte("\xEF\xBB\xBF")) {
			t.Fatalf("%s: no UTF-8 byte order mark: %q", lang, raw[:min(10, len(raw))])
		}
		r := csv.NewReader(bytes.NewReader(raw[3:]))
		if lang != "en" {
			r.Comma = ';'
		}
		recs, err := r.ReadAll()
		if err != nil {
			t.Fatalf("%s: %v\n%s", lang, err, raw)
		}
		if len(recs) != 5 {
			t.Fatalf("%s: %d records, want the header and 4 rows", lang, len(recs))
		}
		sep := ","
		if lang != "en" {
			sep = ";"
		}
		if got := strings.Join(recs[0], sep); got != header[lang] {
			t.Errorf("%s: header %q, want %q", lang, got, header[lang])
		}
		newWord, lateWord := recs[0][10], recs[0][11]
		sec := sections[lang]
		want := [][]string{
			{sec[0], "registration", "S1", "", "Айгерим Бекова", "Инженерия; IT", "2026-12-06", "12", "3", "email + SMS, шаг 3 из 3, 25 ноября", newWord, "", ""},
			{sec[1], "travel-dean-approval", "S2", "TR-1", "'=HYPERLINK(\"http://x\")", "'-Law", "2026-12-21", "-3", "1", "", "", lateWord, ""},
			{sec[2], "registration", "'@S3", "", "O'Brien, Liam \"Jr\"", "", "2026-12-18", "0", "2", "", "", "", ""},
			{sec[3], "exit-visa", "S4", "TR-2", "A B", "", "2026-12-16", "2", "1", "", "", "", moot[lang]},
		}
		for i, w := range want {
			if strings.Join(recs[i+1], "|") != strings.Join(w, "|") {
				t.Errorf("%s: row %d = %q, want %q", lang, i+1, recs[i+1], w)
			}
		}
		if !bytes.Contains(raw, []byte("\r\n")) {
			t.Errorf("%s: lines do not end in CRLF", lang)
		}
	}
}

// golden cases: rendered notices, SMS and digests compared with
// testdata/NAME.golden; go test -run Golden -update rewrites them.
func TestGolden(t *testing.T) {
	s := set(t)
	type gcase struct {
		name string
		n    *Notice
		d    *Digest
	}
	notice := func(name, rule, audience, lang string, level, offset int, edit func(*Notice)) gcase {
		n := sample(rule, audience, lang, level, offset)
		if edit != nil {
			edit(&n)
		}
		return gcase{name: name, n: &n}
	}
	digest := func(name string, d Digest) gcase { return gcase{name: name, d: &d} }
	obrien := func(n *Notice) { n.GivenName, n.FamilyName = "<b>O'Brien</b>", "Liam" }
	visa := func(n *Notice) { n.VisaRegime = "visa" }
	// Student notices: the university names the SMS; urgent marks a step
	// that is office: urgent in the built-in ladder.
	stu := func(edits ...func(*Notice)) func(*Notice) {
		return func(n *Notice) {
			n.Office.University = "KazNU"
			for _, e := range edits {
				e(n)
			}
		}
	}
	urgent := func(n *Notice) { n.OfficeUrgent = true }
	cases := []gcase{
		// English: 1 and 5 days, the escaping, an urgent last step.
		notice("en-registration-student-1-day-left", "registration", AudienceStudent, "en", 2, -1, stu(urgent)),
		notice("en-registration-student-overdue-obrien", "registration", AudienceStudent, "en", 3, 1, stu(obrien, urgent)),
		notice("en-passport-renewal-student-5-days-overdue", "passport-renewal", AudienceStudent, "en", 2, 5, stu()),
		notice("en-passport-renewal-student-expires-today", "passport-renewal", AudienceStudent, "en", 5, 182, stu(urgent)),
		notice("en-stay-extension-student-5-days-left", "stay-extension", AudienceStudent, "en", 1, -5, stu()),
		notice("en-break-briefing-student-visa", "break-briefing", AudienceStudent, "en", 1, -21, stu(visa)),
		// Every other rule's student notice, on the days its ladder sends it.
		notice("en-visa-invitation-student-3-days-left", "visa-invitation", AudienceStudent, "en", 2, -3, stu()),
		notice("en-arrival-check-in-student-found-late", "arrival-check-in", AudienceStudent, "en", 2, 40, stu()),
		notice("en-return-check-in-student-3-days-left", "return-check-in", AudienceStudent, "en", 1, -3, stu()),
		notice("en-address-registration-student-due-today", "address-registration", AudienceStudent, "en", 2, 0, stu(urgent)),
		notice("en-exit-visa-student-2-days-left", "exit-visa", AudienceStudent, "en", 3, -2, stu(visa, urgent)),
		notice("en-stay-extension-student-expired", "stay-extension", AudienceStudent, "en", 5, 33, stu(urgent)),
		notice("en-travel-late-notice-student", "travel-late-notice", AudienceStudent, "en", 1, -2, stu()),
		// Russian: 1, 2, 5, 21 days.
		notice("ru-registration-student-1-day-left", "registration", AudienceStudent, "ru", 2, -1, stu(urgent)),
		notice("ru-registration-student-2-days-left", "registration", AudienceStudent, "ru", 1, -2, stu()),
		notice("ru-registration-student-found-late", "registration", AudienceStudent, "ru", 3, 40, stu(urgent)),
		notice("ru-passport-renewal-student-5-days-overdue", "passport-renewal", AudienceStudent, "ru", 2, 5, stu()),
		notice("ru-passport-renewal-student-expired", "passport-renewal", AudienceStudent, "ru", 5, 185, stu(urgent)),
		notice("ru-exit-visa-student-21-days-left", "exit-visa", AudienceStudent, "ru", 1, -21, stu()),
		notice("ru-stay-extension-student-expires-today", "stay-extension", AudienceStudent, "ru", 5, 30, stu(urgent)),
		notice("ru-visa-invitation-student-overdue", "visa-invitation", AudienceStudent, "ru", 3, 1, stu()),
		notice("ru-arrival-check-in-student-1-day-left", "arrival-check-in", AudienceStudent, "ru", 1, -1, stu()),
		notice("ru-return-check-in-student-overdue", "return-check-in", AudienceStudent, "ru", 2, 1, stu()),
		notice("ru-address-registration-student-overdue", "address-registration", AudienceStudent, "ru", 3, 3, stu()),
		notice("ru-break-briefing-student-visa", "break-briefing", AudienceStudent, "ru", 1, -21, stu(visa)),
		notice("ru-travel-dean-approval-student-departure-day", "travel-dean-approval", AudienceStudent, "ru", 3, 3, stu(urgent)),
		// Kazakh: 1 and 5 days.
		notice("kk-registration-student-1-day-left", "registration", AudienceStudent, "kk", 2, -1, stu(urgent)),
		notice("kk-registration-student-5-days-overdue", "registration", AudienceStudent, "kk", 3, 5, stu(urgent)),
		notice("kk-arrival-check-in-student", "arrival-check-in", AudienceStudent, "kk", 1, -1, stu()),
		notice("kk-exit-visa-student-5-days-left", "exit-visa", AudienceStudent, "kk", 2, -5, stu(visa)),
		notice("kk-break-briefing-student-visa", "break-briefing", AudienceStudent, "kk", 1, -21, stu(visa)),
		notice("kk-passport-renewal-student-expired", "passport-renewal", AudienceStudent, "kk", 5, 185, stu(urgent)),
		notice("kk-passport-renewal-student-due-today", "passport-renewal", AudienceStudent, "kk", 2, 0, stu()),
		notice("kk-stay-extension-student-overdue", "stay-extension", AudienceStudent, "kk", 4, 23, stu()),
		notice("kk-visa-invitation-student-3-days-left", "visa-invitation", AudienceStudent, "kk", 2, -3, stu()),
		notice("kk-return-check-in-student-found-late", "return-check-in", AudienceStudent, "kk", 3, 40, stu(urgent)),
		notice("kk-address-registration-student-due-today", "address-registration", AudienceStudent, "kk", 2, 0, stu(urgent)),
		notice("kk-term-travel-limit-student", "term-travel-limit", AudienceStudent, "kk", 1, -5, stu()),
		// The rules of arrival and of the students' reports: their days are
		// the entry or the report's (due = anchor).
		notice("en-welcome-student", "welcome", AudienceStudent, "en", 1, 0, stu()),
		notice("ru-welcome-student", "welcome", AudienceStudent, "ru", 1, 2, stu()),
		notice("kk-welcome-student", "welcome", AudienceStudent, "kk", 1, 0, stu()),
		notice("en-document-loss-student", "document-loss", AudienceStudent, "en", 1, 0, stu(urgent)),
		notice("ru-document-loss-student-reminder", "document-loss", AudienceStudent, "ru", 2, 5, stu()),
		notice("kk-document-loss-student", "document-loss", AudienceStudent, "kk", 1, 0, stu(urgent)),
		notice("en-document-loss-office", "document-loss", AudienceOffice, "en", 1, 0, func(n *Notice) { n.OfficeUrgent, n.StudentNotified = true, true }),
		notice("ru-document-loss-office", "document-loss", AudienceOffice, "ru", 1, 0, func(n *Notice) { n.OfficeUrgent, n.StudentNotified = true, true }),
		notice("kk-document-loss-office", "document-loss", AudienceOffice, "kk", 1, 0, func(n *Notice) { n.OfficeUrgent, n.StudentNotified = true, true }),
		notice("en-status-change-office", "status-change", AudienceOffice, "en", 1, 0, urgent),
		notice("ru-status-change-office", "status-change", AudienceOffice, "ru", 1, 0, urgent),
		notice("kk-status-change-office-reminder", "status-change", AudienceOffice, "kk", 2, 7, nil),
		// An unknown language is English.
		notice("fr-registration-student-falls-back-to-en", "registration", AudienceStudent, "fr", 1, -3, stu()),
		digest("en-office-digest-nothing-overdue", Digest{Lang: "en", AsOf: date.MustParse("2026-12-18"), Office: office}),
		digest("en-office-digest", sampleDigest("en", AudienceOffice)),
		digest("ru-office-digest", sampleDigest("ru", AudienceOffice)),
		digest("kk-office-digest", sampleDigest("kk", AudienceOffice)),
		digest("en-dean-digest", sampleDigest("en", AudienceDean)),
		digest("ru-dean-digest", sampleDigest("ru", AudienceDean)),
		digest("kk-dean-digest", sampleDigest("kk", AudienceDean)),
		// A long digest cut to its most overdue rows, the rest attached.
		digest("en-office-digest-cut", sampleCutDigest("en")),
		digest("ru-office-digest-cut", sampleCutDigest("ru")),
		digest("kk-office-digest-cut", sampleCutDigest("kk")),
		// What students reported, newest first.
		digest("en-office-digest-reported", reportedDigest("en")),
		digest("ru-office-digest-reported", reportedDigest("ru")),
		digest("kk-office-digest-reported", reportedDigest("kk")),
		// The students it cannot reach: bounced email, undelivered SMS.
		digest("en-office-digest-unreachable", unreachableDigest("en")),
		digest("ru-office-digest-unreachable", unreachableDigest("ru")),
		digest("kk-office-digest-unreachable", unreachableDigest("kk")),
	}
	// Staff emails (the office's urgent email, the dean's email): see
	// staff_wording_test.go.
	for _, c := range staffGoldenNotices() {
		cases = append(cases, gcase{name: c.name, n: &c.n})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out Rendered
			var sms string
			var err error
			if c.n != nil {
				out, err = s.Notice(*c.n)
				if err == nil && c.n.Audience == AudienceStudent {
					sms, err = s.SMS(*c.n)
				}
			} else {
				out, err = s.Digest(*c.d)
			}
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			fmt.Fprintf(&b, "Lang: %s\nSubject: %s\n", out.Lang, out.Subject)
			if sms != "" {
				fmt.Fprintf(&b, "SMS: %s\n", sms)
			}
			fmt.Fprintf(&b, "\n----- text -----\n%s\n----- html -----\n%s", out.Text, out.HTML)
			got := b.String()
			path := filepath.Join("testdata", c.name+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run Golden -update)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs from the rendered notice (go test -run Golden -update rewrites it):\n%s", path, diff(string(want), got))
			}
		})
	}
}

// diff shows the first differing line of two texts.
func diff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\n- %s\n+ %s", i+1, wl, gl)
		}
	}
	return ""
}

// The view copies every field of Notice (templates/templates.go says why
// it does not embed it): a field added to Notice must reach the templates.
func TestNoticeViewHasEveryNoticeField(t *testing.T) {
	view := reflect.TypeOf(noticeView{})
	notice := reflect.TypeOf(Notice{})
	for i := range notice.NumField() {
		f := notice.Field(i)
		vf, ok := view.FieldByName(f.Name)
		if !ok || vf.Type != f.Type {
			t.Errorf("noticeView lacks Notice.%s (%s)", f.Name, f.Type)
		}
	}
	n := sample("registration", AudienceStudent, "en", 2, 0)
	n.Departure, n.Return = n.Due.AddDays(1), n.Due.AddDays(9)
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.view(n)
	if err != nil {
		t.Fatal(err)
	}
	rv := reflect.ValueOf(v)
	nv := reflect.ValueOf(n)
	for i := range notice.NumField() {
		name := notice.Field(i).Name
		if name == "Lang" || name == "Steps" {
			continue // normalised by view
		}
		if !reflect.DeepEqual(rv.FieldByName(name).Interface(), nv.Field(i).Interface()) {
			t.Errorf("view.%s = %v, want the notice's %v", name, rv.FieldByName(name).Interface(), nv.Field(i).Interface())
		}
	}
}

func TestOfficeInTheNoticesLanguage(t *testing.T) {
	s := set(t)
	o := office
	o.In = map[string]OfficeText{
		"ru": {Name: "Отдел международного сотрудничества IEC", Address: "Главный корпус, каб. 105"},
		"kk": {Name: "IEC халықаралық ынтымақтастық бөлімі"},
	}
	for _, c := range []struct{ lang, name, address string }{
		{"ru", "Отдел международного сотрудничества IEC", "Главный корпус, каб. 105"},
		{"kk", "IEC халықаралық ынтымақтастық бөлімі", office.Address}, // no address in Kazakh: the default one
		{"en", office.Name, office.Address}, // no English entry
	} {
		n := sample("registration", AudienceStudent, c.lang, 1, 0)
		n.Office = o
		out, err := s.Notice(n)
		if err != nil {
			t.Fatal(err)
		}
		for part, body := range map[string]string{"text": out.Text, "html": out.HTML} {
			if !strings.Contains(body, c.name) || !strings.Contains(body, c.address) {
				t.Errorf("%s %s: want office %q at %q:\n%s", c.lang, part, c.name, c.address, body)
			}
		}
		if c.lang != "en" && strings.Contains(out.Text, office.Name+"\n") {
			t.Errorf("%s: the English office name is still shown:\n%s", c.lang, out.Text)
		}
	}
}

// reportedDigest is an office digest with nothing overdue and the
// students' open reports.
func reportedDigest(lang string) Digest {
	asOf := date.MustParse("2026-12-18")
	return Digest{Lang: lang, AsOf: asOf, Office: office, Audience: AudienceOffice, Groups: []DigestGroup{
		{Rule: "document-loss", Rows: []DigestRow{
			{StudentID: "S2026-0042", SubjectID: "R12", Name: "<b>O'Brien</b> Liam", Faculty: "Faculty of Economics", Due: asOf, Section: SectionReported, Reported: "lost-documents"},
		}},
		{Rule: "registration", Rows: []DigestRow{
			{StudentID: "S2026-0007", SubjectID: "R11", Name: "Zhang Wei", Faculty: "Faculty of Law", Due: asOf.AddDays(-1), Section: SectionReported, Reported: "done"},
		}},
		{Rule: "address-registration", Rows: []DigestRow{
			{StudentID: "S2026-0101", SubjectID: "R9", Name: "Ali Karimov", Faculty: "Faculty of Law", Due: asOf.AddDays(-2), Section: SectionReported, Reported: "address-changed"},
		}},
		{Rule: "status-change", Rows: []DigestRow{
			{StudentID: "S2025-0311", SubjectID: "R8", Name: "Fatima Yusupova", Faculty: "Faculty of Economics", Due: asOf.AddDays(-3), Section: SectionReported, Reported: "status-changed"},
		}},
	}}
}
