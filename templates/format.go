package templates

import (
	"strconv"
	"strings"
	"unicode"

	"golang.org/x/text/feature/plural"
	"golang.org/x/text/language"

	"github.com/iec-almaty/sisnotify/jobs/date"
)

// Languages are the languages every notice and digest exists in; the first
// one is the fallback for anything else.
var Languages = []string{"en", "ru", "kk"}

// Lang maps a preferred_language value to one of Languages: "ru", "RU",
// "ru-RU" and "ru_RU" are Russian, "kk" (and the common mistake "kz") is
// Kazakh, anything else (including "") is English.
func Lang(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if i := strings.IndexAny(s, "-_"); i >= 0 {
		s = s[:i]
	}
	switch s {
	case "ru":
		return "ru"
	case "kk", "kz":
		return "kk"
	}
	return "en"
}

var (
	monthsEN = [...]string{"January", "February", "March", "April", "May", "June", "July",
		"August", "September", "October", "November", "December"}
	// Russian months in the genitive, as dates are written ("1 сентября").
	monthsRU = [...]string{"января", "февраля", "марта", "апреля", "мая", "июня", "июля",
		"августа", "сентября", "октября", "ноября", "декабря"}
	monthsKK = [...]string{"қаңтар", "ақпан", "наурыз", "сәуір", "мамыр", "маусым", "шілде",
		"тамыз", "қыркүйек", "қазан", "қараша", "желтоқсан"}
)

// FormatDate writes d as a reader of lang expects it: en "1 September 2026",
// ru "1 сентября 2026 г.", kk "2026 жылғы 1 қыркүйек". An unset date is "".
func FormatDate(lang string, d date.Date) string {
	if d.IsZero() {
		return ""
	}
	y, m, dd := d.Civil()
	ys, ds := strconv.Itoa(y), strconv.Itoa(dd)
	switch Lang(lang) {
	case "ru":
		return ds + " " + monthsRU[m-1] + " " + ys + " г."
	case "kk":
		return ys + " жылғы " + ds + " " + monthsKK[m-1]
	}
	return ds + " " + monthsEN[m-1] + " " + ys
}

// FormatDayMonth writes d without its year, for subjects and SMS:
// en "18 December", ru "18 декабря", kk "18 желтоқсан".
func FormatDayMonth(lang string, d date.Date) string {
	if d.IsZero() {
		return ""
	}
	_, m, dd := d.Civil()
	ds := strconv.Itoa(dd)
	switch Lang(lang) {
	case "ru":
		return ds + " " + monthsRU[m-1]
	case "kk":
		return ds + " " + monthsKK[m-1]
	}
	return ds + " " + monthsEN[m-1]
}

var tags = map[string]language.Tag{"en": language.English, "ru": language.Russian, "kk": language.Kazakh}

// pluralForms lists, per language, the CLDR cardinal categories a
// translator gives forms for, in the order the template function plural
// takes them.
var pluralForms = map[string][]plural.Form{
	"en": {plural.One, plural.Other},
	"ru": {plural.One, plural.Few, plural.Many},
	"kk": {plural.One, plural.Other},
}

// pluralIndex returns which of lang's forms (see pluralForms) the integer n
// takes, by the CLDR cardinal rules of golang.org/x/text.
func pluralIndex(lang string, n int) int {
	lang = Lang(lang)
	if n < 0 {
		n = -n
	}
	form := plural.Cardinal.MatchPlural(tags[lang], n%10000000, 0, 0, 0, 0)
	forms := pluralForms[lang]
	for i, f := range forms {
		if f == form {
			return i
		}
	}
	return len(forms) - 1 // "other" (fractions in Russian) reads as the last form
}

// Plural picks the form of a word for n among forms given in the order of
// the language's categories: en and kk (one, other), ru (one, few, many).
// Missing forms fall back to the last one given.
func Plural(lang string, n int, forms ...string) string {
	if len(forms) == 0 {
		return ""
	}
	i := pluralIndex(lang, n)
	if i >= len(forms) {
		i = len(forms) - 1
	}
	return forms[i]
}

var dayWords = map[string][]string{
	"en": {"day", "days"},
	"ru": {"день", "дня", "дней"},
	"kk": {"күн", "күн"}, // a Kazakh noun after a numeral stays singular
}

// Days writes a number of days with the right plural: en "1 day", "2 days";
// ru "1 день", "2 дня", "5 дней", "21 день"; kk "1 күн", "5 күн".
func Days(lang string, n int) string {
	lang = Lang(lang)
	return strconv.Itoa(n) + " " + Plural(lang, n, dayWords[lang]...)
}

// cleanField makes an interpolated value safe for a single-line context:
// control characters (CR, LF, TAB, NUL...), line and paragraph separators
// and bidirectional overrides become spaces, runs of spaces collapse, and
// the ends are trimmed. Every string of a Notice and a Digest goes through
// it before it reaches any template.
func cleanField(s string) string {
	if s == "" {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		if r == unicode.ReplacementChar || unicode.IsControl(r) || unicode.IsSpace(r) ||
			unicode.In(r, unicode.Zl, unicode.Zp) || isBidiControl(r) {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
}

func isBidiControl(r rune) bool {
	return (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069) || r == 0x200E || r == 0x200F || r == 0x061C
}

// oneLine is cleanField for a rendered subject or SMS: whatever a template
// produced, the result is one line.
func oneLine(s string) string { return cleanField(s) }

// tidyText normalises a rendered plain-text body: CRLF to LF, no spaces at
// either end of a line (templates may indent freely), at most one blank line
// in a row, no blank lines at either end, a final newline.
func tidyText(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	lines := strings.Split(s, "\n")
	out := make([]string, 0, len(lines))
	blank := true // drop leading blank lines
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if l == "" {
			if blank {
				continue
			}
			blank = true
			out = append(out, "")
			continue
		}
		blank = false
		out = append(out, l)
	}
	for len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	return strings.Join(out, "\n") + "\n"
}

// Kazakh case suffixes. Kazakh marks "by 18 December" (18 желтоқсанға
// дейін), "on 18 December" (18 желтоқсанда) and "from 18 December"
// (18 желтоқсаннан) with a suffix on the last word, chosen by vowel harmony
// (the word's last vowel is back or front) and by the word's last sound.
// The template functions dat, loc, abl and attr (the locative made an
// attribute: "18 желтоқсандағы сапар", the trip on 18 December) apply them to the last word of a
// Kazakh phrase (a date from date or dm, a number of days from days); in
// other languages they return the phrase unchanged.

const (
	kkBackVowels  = "аоұыяё"
	kkFrontVowels = "әеөүіэю"
	kkVowels      = kkBackVowels + kkFrontVowels + "уи"
	kkSonorants   = "рйлу" // with vowels: ға/ге, да/де, дан/ден
	kkVoiced      = "зж"   // like sonorants
	kkNasals      = "мнң"  // ға/ге, да/де, but нан/нен
)

type kkCase int

const (
	kkDative kkCase = iota
	kkLocative
	kkAblative
	kkLocativeAttr // locative + -ғы/-гі: "18 желтоқсандағы"
)

// kazakhCase appends the dative, locative or ablative suffix to the last
// word of a Kazakh phrase: "2026 жылғы 1 қыркүйек" becomes
// "2026 жылғы 1 қыркүйекке", "...қыркүйекте", "...қыркүйектен"; "5 күн"
// becomes "5 күнге". A phrase whose last word is not Cyrillic is returned
// unchanged.
func kazakhCase(phrase string, c kkCase) string {
	rs := []rune(strings.ToLower(phrase))
	if len(rs) == 0 {
		return phrase
	}
	last := rs[len(rs)-1]
	if !unicode.Is(unicode.Cyrillic, last) {
		return phrase
	}
	front := false
	for i := len(rs) - 1; i >= 0; i-- {
		r := rs[i]
		if r == ' ' {
			break
		}
		if strings.ContainsRune(kkBackVowels, r) {
			break
		}
		if strings.ContainsRune(kkFrontVowels, r) || r == 'и' {
			front = true
			break
		}
	}
	var kind int // 0 vowel/sonorant/voiced, 1 nasal, 2 voiceless
	switch {
	case strings.ContainsRune(kkVowels, last) || strings.ContainsRune(kkSonorants, last) || strings.ContainsRune(kkVoiced, last):
		kind = 0
	case strings.ContainsRune(kkNasals, last):
		kind = 1
	default:
		kind = 2
	}
	var back, fr string
	switch c {
	case kkDative:
		if kind == 2 {
			back, fr = "қа", "ке"
		} else {
			back, fr = "ға", "ге"
		}
	case kkLocative, kkLocativeAttr:
		if kind == 2 {
			back, fr = "та", "те"
		} else {
			back, fr = "да", "де"
		}
	case kkAblative:
		switch kind {
		case 0:
			back, fr = "дан", "ден"
		case 1:
			back, fr = "нан", "нен"
		default:
			back, fr = "тан", "тен"
		}
	}
	if c == kkLocativeAttr {
		back, fr = back+"ғы", fr+"гі"
	}
	if front {
		return phrase + fr
	}
	return phrase + back
}

func caseFunc(lang string, c kkCase) func(string) string {
	if lang != "kk" {
		return func(s string) string { return s }
	}
	return func(s string) string { return kazakhCase(s, c) }
}

// finish applies a language's last typographic touches to a rendered text.
// Russian: a date ends in "г." ("1 сентября 2026 г."), so a sentence that
// ends with a date would end in "г.."; the abbreviation's period also ends
// the sentence.
func finish(lang, s string) string {
	if lang == "ru" {
		s = strings.ReplaceAll(s, " г..", " г.")
	}
	return s
}
