package sms

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

func TestNormalizePhone(t *testing.T) {
	good := map[string]string{
		"+77012345678":          "+77012345678",
		"+7 701 234 56 78":      "+77012345678",
		"8 (701) 234-56-78":     "+77012345678",
		"87012345678":           "+77012345678",
		"7012345678":            "+77012345678",
		" +7-747-123-45-67 ":    "+77471234567",
		"+7 916 123-45-67":      "+79161234567", // Russia shares +7
		"+86 138 0013 8000":     "+8613800138000",
		"0049 1512 3456789":     "+4915123456789",
		"+998 90 123 45 67":     "+998901234567",
		"+1 (415) 555-2671":     "+14155552671",
		"+996 555 123 456":      "+996555123456",
		"+7 (775) 000 11 22":    "+77750001122",
		"tel. +7 701 234 56 78": "+77012345678",
	}
	for in, want := range good {
		got, err := NormalizePhone(in)
		if err != nil || got != want {
			t.Errorf("NormalizePhone(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := []string{"", "   ", "abc", "123", "+7 000 000 0000", "+7 701 234 567", "+7 701 234 56 789",
		"+7 727 250 00 00", "87272500000", "+7 800 080 0000", "+7 701 234 5678 ext. 12", "+999 1234567"}
	for _, in := range bad {
		got, err := NormalizePhone(in)
		if err == nil || !errors.Is(err, ErrInvalidPhone) {
			t.Errorf("NormalizePhone(%q) = %q, %v; want ErrInvalidPhone", in, got, err)
			continue
		}
		digits := strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, in)
		if len(digits) >= 5 && strings.Contains(err.Error(), digits[len(digits)-5:]) {
			t.Errorf("NormalizePhone(%q) error %q repeats the number", in, err)
		}
	}
}

func TestGSMAlphabet(t *testing.T) {
	if n := utf8.RuneCountInString(gsmBasic); n != 127 {
		t.Errorf("basic alphabet has %d characters, want 127 (128 less the escape)", n)
	}
	if n := utf8.RuneCountInString(gsmExtension); n != 10 {
		t.Errorf("extension table has %d characters, want 10", n)
	}
}

func TestSegments(t *testing.T) {
	cases := []struct {
		name string
		text string
		enc  string
		segs int
	}{
		{"empty", "", GSM7, 1},
		{"english short", "Your passport expires on 1 March. Renew it at the migration office.", GSM7, 1},
		{"english 160", strings.Repeat("a", 160), GSM7, 1},
		{"english 161", strings.Repeat("a", 161), GSM7, 2},
		{"english 306", strings.Repeat("a", 306), GSM7, 2},
		{"english 307", strings.Repeat("a", 307), GSM7, 3},
		{"gsm accents", "Ça déjà été Ñoño ÄÖÜ äöüà ß @£$¥ ìò", GSM7, 1},
		{"extension counts two", strings.Repeat("€", 80), GSM7, 1},
		{"extension 81", strings.Repeat("€", 81), GSM7, 2},
		{"extension pair not split", strings.Repeat("a", 152) + "{" + strings.Repeat("a", 10), GSM7, 2},
		{"brackets and pipes", "[S0042] {rule} ~ ^ | \\", GSM7, 1},
		{"lowercase c cedilla is not gsm", "garçon", UCS2, 1},
		{"russian 70", strings.Repeat("д", 70), UCS2, 1},
		{"russian 71", strings.Repeat("д", 71), UCS2, 2},
		{"russian 134", strings.Repeat("д", 134), UCS2, 2},
		{"russian 135", strings.Repeat("д", 135), UCS2, 3},
		{"russian sentence", "Срок регистрации истекает 01.03. Обратитесь в международный отдел.", UCS2, 1},
		{"kazakh", "Құрметті студент, тіркеуіңіздің мерзімі өтіп кетті. Халықаралық бөлімге хабарласыңыз.", UCS2, 2},
		{"each kazakh letter", "әғқңөұүһі", UCS2, 1},
		{"one cyrillic letter makes all ucs-2", strings.Repeat("a", 69) + "ж", UCS2, 1},
		{"one cyrillic letter, 71", strings.Repeat("a", 70) + "ж", UCS2, 2},
		{"emoji takes two units", strings.Repeat("😀", 35), UCS2, 1},
		{"emoji 36", strings.Repeat("😀", 36), UCS2, 2},
		{"ellipsis char is ucs-2", "Wait…", UCS2, 1},
	}
	for _, tc := range cases {
		enc, segs := Segments(tc.text)
		if enc != tc.enc || segs != tc.segs {
			t.Errorf("%s: Segments = %s, %d; want %s, %d", tc.name, enc, segs, tc.enc, tc.segs)
		}
	}
}

func TestFit(t *testing.T) {
	const suffix = " Tel: +7 727 200 00 00"
	en := "Dear student, your migration registration expires on 1 March 2025. " +
		"Please bring your passport, the registration slip and two photos to the International Office, " +
		"room 214, main building, between 9:00 and 17:00 on any working day before the deadline. " +
		"Late registration is fined by the migration police."
	ru := "Уважаемый студент, срок вашей миграционной регистрации истекает 1 марта 2025 года. " +
		"Пожалуйста, принесите паспорт и миграционную карточку в международный отдел, кабинет 214."
	kk := "Құрметті студент, көші-қон тіркеуіңіздің мерзімі 2025 жылғы 1 наурызда аяқталады. " +
		"Төлқұжатыңызды халықаралық бөлімге әкеліңіз, 214 бөлме."
	for _, tc := range []struct {
		name, text string
		max        int
	}{
		{"english 1", en, 1}, {"english 2", en, 2}, {"english default", en, 0},
		{"russian 1", ru, 1}, {"russian 2", ru, 2}, {"kazakh 1", kk, 1}, {"kazakh 2", kk, 2},
		{"one long word", strings.Repeat("x", 400), 1},
	} {
		got := Fit(tc.text, suffix, tc.max)
		limit := tc.max
		if limit == 0 {
			limit = DefaultMaxSegments
		}
		enc, segs := Segments(got)
		if segs > limit {
			t.Errorf("%s: %d segments (%s), want <= %d: %q", tc.name, segs, enc, limit, got)
		}
		if !strings.HasSuffix(got, suffix) {
			t.Errorf("%s: suffix lost: %q", tc.name, got)
		}
		body := strings.TrimSuffix(got, suffix)
		if body == tc.text {
			t.Errorf("%s: not shortened", tc.name)
			continue
		}
		if !strings.HasSuffix(body, "...") && !strings.HasSuffix(body, "…") {
			t.Errorf("%s: no ellipsis: %q", tc.name, got)
		}
		cut := strings.TrimSuffix(strings.TrimSuffix(body, "..."), "…")
		if !strings.HasPrefix(tc.text, cut) {
			t.Errorf("%s: %q is not a prefix of the text", tc.name, cut)
		}
		// At a word boundary (unless the text is one long word).
		if rest := tc.text[len(cut):]; tc.name != "one long word" && rest != "" && !strings.ContainsAny(rest[:1], " ,.") {
			t.Errorf("%s: cut inside a word: ...%q | %q", tc.name, cut[max(0, len(cut)-15):], rest[:min(15, len(rest))])
		}
		// GSM-7 text keeps GSM-7: the ellipsis must not force UCS-2.
		if e, _ := Segments(tc.text + suffix); e == GSM7 && enc != GSM7 {
			t.Errorf("%s: Fit turned GSM-7 text into %s", tc.name, enc)
		}
		// Reasonably full: adding the next word would not fit.
		if _, n := Segments(got); n == limit && len(cut) < len(tc.text)/4 && tc.name != "one long word" {
			t.Errorf("%s: cut too early: %q", tc.name, got)
		}
	}

	// Short text: unchanged.
	if got := Fit("Registration due tomorrow.", suffix, 1); got != "Registration due tomorrow."+suffix {
		t.Errorf("short text changed: %q", got)
	}
	// A suffix that alone does not fit is still kept whole.
	long := " " + strings.Repeat("Ж", 80)
	if got := Fit(ru, long, 1); got != long {
		t.Errorf("oversized suffix: %q", got)
	}
	// Each fitted English text fills its segments tightly.
	got := Fit(en, suffix, 1)
	if _, n := Segments(got); n != 1 || len(got) < 140 {
		t.Errorf("one-segment English fit is %d chars: %q", len(got), got)
	}
}

func TestOutboxLines(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "outbox")
	a, b := NewOutbox(dir), NewOutbox(dir+"/") // two outboxes, one file
	fixed := time.Date(2025, 2, 3, 6, 0, 0, 0, time.UTC)
	a.now = func() time.Time { return fixed }
	b.now = a.now
	var wg sync.WaitGroup
	for g := range 8 {
		o := a
		if g%2 == 1 {
			o = b
		}
		wg.Go(func() {
			for i := range 50 {
				m := sms()
				m.Reference = fmt.Sprintf("notice-%d-%d", g, i)
				m.Text = strings.Repeat("Срок регистрации истекает. ", 20) // long lines
				if _, _, err := o.Send(t.Context(), m); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	f, err := os.Open(filepath.Join(dir, OutboxFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	n := 0
	seen := map[string]bool{}
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("line %d does not parse: %v", n+1, err)
		}
		seen[line["reference"].(string)] = true
		n++
	}
	if n != 400 || len(seen) != 400 {
		t.Errorf("%d lines, %d distinct references; want 400", n, len(seen))
	}

	// One line, field by field.
	one := NewOutbox(t.TempDir())
	one.now = a.now
	res, retry, err := one.Send(t.Context(), sms())
	if err != nil || retry || res.ProviderID != "notice-81" {
		t.Fatalf("res=%+v retryable=%v err=%v", res, retry, err)
	}
	raw, _ := os.ReadFile(one.Path())
	want := `{"time":"2025-02-03T06:00:00Z","to":"+77012345678","text":"` + studentText +
		`","reference":"notice-81","metadata":{"rule":"migration-registration","level":2,"student_id":"S0042"},"encoding":"GSM-7","segments":1}` + "\n"
	if string(raw) != want {
		t.Errorf("line = %s\nwant   %s", raw, want)
	}

	// An unwritable folder is retryable and does not name the number.
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, retry, err = NewOutbox(filepath.Join(blocker, "outbox")).Send(t.Context(), sms())
	if err == nil || !retry {
		t.Errorf("retryable=%v err=%v", retry, err)
	}
	assertClean(t, err)
}

func TestDisabled(t *testing.T) {
	s, err := New(Config{Provider: "none"})
	if err != nil {
		t.Fatal(err)
	}
	res, retry, err := s.Send(t.Context(), sms())
	if !errors.Is(err, ErrDisabled) || retry || res != (Result{}) || s.Name() != "none" {
		t.Errorf("res=%+v retryable=%v err=%v", res, retry, err)
	}
}

func TestConfigAndNew(t *testing.T) {
	cfg := Config{
		Provider:         "Twilio",
		TwilioAccountSID: accountSID,
		TwilioAuthToken:  authToken,
		TwilioFrom:       "+15005550006",
		APIURL:           "http://127.0.0.1:9/",
	}
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("sms", "cfg", cfg)
	for _, s := range []string{cfg.String(), fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg), logged.String()} {
		if strings.Contains(s, authToken) {
			t.Errorf("config printed with its token: %s", s)
		}
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if tw, ok := s.(*Twilio); !ok || !strings.HasPrefix(tw.url, "http://127.0.0.1:9/2010-04-01/") {
		t.Errorf("New = %T %+v", s, s)
	}

	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "outbox"},
		{Config{Provider: "outbox", OutboxDir: t.TempDir()}, "outbox"},
		{Config{Provider: "none"}, "none"},
		{Config{Provider: "mobizon", MobizonAPIKey: mobizonKey}, "mobizon"},
		{Config{Provider: "webhook", WebhookURL: "https://gw.example.org/sms"}, "webhook"},
	} {
		s, err := New(tc.cfg)
		if err != nil || s.Name() != tc.want {
			t.Errorf("New(%v) = %v, %v; want %s", tc.cfg, s, err, tc.want)
		}
	}
	for _, bad := range []Config{
		{Provider: "sms.ru"},
		{Provider: "twilio", TwilioAccountSID: accountSID},
		{Provider: "mobizon"},
		{Provider: "mobizon", MobizonAPIKey: mobizonKey, APIURL: "ftp://api.mobizon.kz"},
		{Provider: "mobizon", MobizonAPIKey: mobizonKey, APIURL: "https://api.mobizon.kz?apiKey=" + mobizonKey},
		{Provider: "webhook"},
		{Provider: "webhook", WebhookURL: "gw.example.org/sms"},
	} {
		_, err := New(bad)
		if err == nil {
			t.Errorf("New(%v) succeeded", bad)
		}
		assertClean(t, err)
	}
}
