package templates

import (
	"testing"

	"github.com/iec-almaty/sisnotify/jobs/date"
)

func TestFormatDate(t *testing.T) {
	for _, c := range []struct{ lang, date, want, short string }{
		{"en", "2026-09-01", "1 September 2026", "1 September"},
		{"ru", "2026-09-01", "1 сентября 2026 г.", "1 сентября"},
		{"kk", "2026-09-01", "2026 жылғы 1 қыркүйек", "1 қыркүйек"},
		{"en", "2026-12-18", "18 December 2026", "18 December"},
		{"ru", "2026-12-18", "18 декабря 2026 г.", "18 декабря"},
		{"kk", "2026-12-18", "2026 жылғы 18 желтоқсан", "18 желтоқсан"},
		{"ru", "2027-03-01", "1 марта 2027 г.", "1 марта"},
		{"kk", "2027-03-01", "2027 жылғы 1 наурыз", "1 наурыз"},
		{"kk", "2027-04-30", "2027 жылғы 30 сәуір", "30 сәуір"},
		{"fr", "2027-02-28", "28 February 2027", "28 February"},
	} {
		d := date.MustParse(c.date)
		if got := FormatDate(c.lang, d); got != c.want {
			t.Errorf("FormatDate(%s, %s) = %q, want %q", c.lang, c.date, got, c.want)
		}
		if got := FormatDayMonth(c.lang, d); got != c.short {
			t.Errorf("FormatDayMonth(%s, %s) = %q, want %q", c.lang, c.date, got, c.short)
		}
	}
	if got := FormatDate("en", 0); got != "" {
		t.Errorf("FormatDate of no date = %q, want empty", got)
	}
}

func TestDays(t *testing.T) {
	for _, c := range []struct {
		lang string
		n    int
		want string
	}{
		{"en", 0, "0 days"}, {"en", 1, "1 day"}, {"en", 2, "2 days"}, {"en", 5, "5 days"}, {"en", 21, "21 days"},
		{"ru", 0, "0 дней"}, {"ru", 1, "1 день"}, {"ru", 2, "2 дня"}, {"ru", 4, "4 дня"}, {"ru", 5, "5 дней"},
		{"ru", 11, "11 дней"}, {"ru", 12, "12 дней"}, {"ru", 14, "14 дней"}, {"ru", 21, "21 день"},
		{"ru", 22, "22 дня"}, {"ru", 25, "25 дней"}, {"ru", 101, "101 день"}, {"ru", 111, "111 дней"},
		{"ru", -2, "-2 дня"},
		{"kk", 1, "1 күн"}, {"kk", 2, "2 күн"}, {"kk", 5, "5 күн"}, {"kk", 21, "21 күн"},
		{"de", 1, "1 day"}, {"", 5, "5 days"},
	} {
		if got := Days(c.lang, c.n); got != c.want {
			t.Errorf("Days(%q, %d) = %q, want %q", c.lang, c.n, got, c.want)
		}
	}
}

func TestPlural(t *testing.T) {
	forms := []string{"остался", "осталось", "осталось"}
	for n, want := range map[int]string{1: "остался", 2: "осталось", 5: "осталось", 21: "остался", 11: "осталось"} {
		if got := Plural("ru", n, forms...); got != want {
			t.Errorf("Plural(ru, %d) = %q, want %q", n, got, want)
		}
	}
	if got := Plural("en", 1, "day", "days"); got != "day" {
		t.Errorf("Plural(en, 1) = %q", got)
	}
	if got := Plural("en", 3, "day"); got != "day" {
		t.Errorf("Plural with one form = %q, want the last form", got)
	}
	if got := Plural("kk", 1); got != "" {
		t.Errorf("Plural with no forms = %q", got)
	}
}

func TestLang(t *testing.T) {
	for in, want := range map[string]string{
		"en": "en", "ru": "ru", "kk": "kk", "RU": "ru", "ru-RU": "ru", "kk_KZ": "kk", "kz": "kk",
		"": "en", "fr": "en", "de-DE": "en", " ru ": "ru",
	} {
		if got := Lang(in); got != want {
			t.Errorf("Lang(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestKazakhCase(t *testing.T) {
	// Each month in the dative, locative and ablative, as in
	// "18 желтоқсанға дейін", "18 желтоқсанда", "18 желтоқсаннан".
	for _, c := range []struct{ word, dat, loc, abl string }{
		{"қаңтар", "қаңтарға", "қаңтарда", "қаңтардан"},
		{"ақпан", "ақпанға", "ақпанда", "ақпаннан"},
		{"наурыз", "наурызға", "наурызда", "наурыздан"},
		{"сәуір", "сәуірге", "сәуірде", "сәуірден"},
		{"мамыр", "мамырға", "мамырда", "мамырдан"},
		{"маусым", "маусымға", "маусымда", "маусымнан"},
		{"шілде", "шілдеге", "шілдеде", "шілдеден"},
		{"тамыз", "тамызға", "тамызда", "тамыздан"},
		{"қыркүйек", "қыркүйекке", "қыркүйекте", "қыркүйектен"},
		{"қазан", "қазанға", "қазанда", "қазаннан"},
		{"қараша", "қарашаға", "қарашада", "қарашадан"},
		{"желтоқсан", "желтоқсанға", "желтоқсанда", "желтоқсаннан"},
		{"5 күн", "5 күнге", "5 күнде", "5 күннен"},
		{"паспорт", "паспортқа", "паспортта", "паспорттан"},
		{"бөлім", "бөлімге", "бөлімде", "бөлімнен"},
		{"тіркеу", "тіркеуге", "тіркеуде", "тіркеуден"},
	} {
		if got := kazakhCase(c.word, kkDative); got != c.dat {
			t.Errorf("dative of %q = %q, want %q", c.word, got, c.dat)
		}
		if got := kazakhCase(c.word, kkLocative); got != c.loc {
			t.Errorf("locative of %q = %q, want %q", c.word, got, c.loc)
		}
		if got := kazakhCase(c.word, kkAblative); got != c.abl {
			t.Errorf("ablative of %q = %q, want %q", c.word, got, c.abl)
		}
	}
	for in, want := range map[string]string{"18 желтоқсан": "18 желтоқсандағы", "1 қыркүйек": "1 қыркүйектегі", "5 сәуір": "5 сәуірдегі", "2 маусым": "2 маусымдағы"} {
		if got := kazakhCase(in, kkLocativeAttr); got != want {
			t.Errorf("attr of %q = %q, want %q", in, got, want)
		}
	}
	if got := kazakhCase("2026 жылғы 1 қыркүйек", kkDative); got != "2026 жылғы 1 қыркүйекке" {
		t.Errorf("dative of a full date = %q", got)
	}
	if got := kazakhCase("T-1001", kkDative); got != "T-1001" {
		t.Errorf("a non-Cyrillic word got a suffix: %q", got)
	}
	if got := caseFunc("en", kkDative)("18 December"); got != "18 December" {
		t.Errorf("dat in English changed the phrase: %q", got)
	}
}

func TestCleanField(t *testing.T) {
	for in, want := range map[string]string{
		"Anna":                       "Anna",
		"  Anna  Maria ":             "Anna Maria",
		"Anna\r\nBcc: x@example.com": "Anna Bcc: x@example.com",
		"A\x00B\tC\u2028D\u202eE":    "A B C D E",
		"<b>O'Brien</b>":             "<b>O'Brien</b>",
		"Әлия Құрманғали":            "Әлия Құрманғали",
	} {
		if got := cleanField(in); got != want {
			t.Errorf("cleanField(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTidyText(t *testing.T) {
	got := tidyText("\n\n  a  \r\n\n\n\nb\n- c   \n\n")
	if want := "a\n\nb\n- c\n"; got != want {
		t.Errorf("tidyText = %q, want %q", got, want)
	}
}

func TestFinishRussianYear(t *testing.T) {
	if got := finish("ru", "не позднее 1 сентября 2026 г.."); got != "не позднее 1 сентября 2026 г." {
		t.Errorf("finish(ru) = %q", got)
	}
	if got := finish("en", "a.."); got != "a.." {
		t.Errorf("finish(en) changed the text: %q", got)
	}
}
