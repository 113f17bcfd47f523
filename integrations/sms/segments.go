package sms

import (
	"strings"
	"unicode"
	"unicode/utf16"
)

// Encodings reported by Segments.
const (
	GSM7 = "GSM-7"
	UCS2 = "UCS-2"
)

// Segment sizes: a single message, and each part of a concatenated one
// (the user data header takes the difference).
const (
	gsmSingle, gsmPart = 160, 153 // septets
	ucsSingle, ucsPart = 70, 67   // UTF-16 code units
)

// gsmBasic is the GSM 03.38 default alphabet (without the escape code);
// gsmExtension the characters that take an escape plus one septet.
const (
	gsmBasic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
		"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
	gsmExtension = "\f^{}\\[~]|€"
)

var gsmWidth = func() map[rune]int {
	m := make(map[rune]int, 140)
	for _, r := range gsmBasic {
		m[r] = 1
	}
	for _, r := range gsmExtension {
		m[r] = 2
	}
	return m
}()

// isGSM reports whether every rune of s is in the GSM 03.38 alphabet or its
// extension table.
func isGSM(s string) bool {
	for _, r := range s {
		if gsmWidth[r] == 0 {
			return false
		}
	}
	return true
}

// Segments reports how text travels as SMS: GSM-7 when every character is
// in the GSM 03.38 alphabet (extension characters ^ { } \ [ ~ ] | € and
// form feed count twice), 160 septets in one message or 153 per part;
// otherwise UCS-2 (Cyrillic, Kazakh ә ғ қ ң ө ұ ү һ і, emoji…), 70 UTF-16
// units in one message or 67 per part. An escape pair or a surrogate pair
// is never split across parts. The empty text is one segment.
func Segments(text string) (encoding string, segments int) {
	if isGSM(text) {
		return GSM7, count(text, gsmSingle, gsmPart, func(r rune) int { return gsmWidth[r] })
	}
	return UCS2, count(text, ucsSingle, ucsPart, utf16.RuneLen)
}

func count(text string, single, part int, width func(rune) int) int {
	total := 0
	for _, r := range text {
		total += width(r)
	}
	if total <= single {
		return 1
	}
	parts, used := 1, 0
	for _, r := range text {
		w := width(r)
		if used+w > part {
			parts++
			used = 0
		}
		used += w
	}
	return parts
}

// DefaultMaxSegments is Fit's limit when it is given none.
const DefaultMaxSegments = 2

// Fit returns text+suffix when it fits in maxSegments SMS segments
// (DefaultMaxSegments when maxSegments <= 0). Otherwise it shortens text at
// a word boundary, drops trailing punctuation and adds an ellipsis, keeping
// suffix (the office phone, say) whole: the ellipsis is "..." when the
// result is GSM-7 (the "…" character would force the whole message into
// UCS-2 and shrink it to 70 characters a segment) and "…" otherwise. The
// suffix is kept even when it alone does not fit; then Fit returns it
// alone. Put the separator (" ", "\n") at the start of suffix.
func Fit(text, suffix string, maxSegments int) string {
	if maxSegments <= 0 {
		maxSegments = DefaultMaxSegments
	}
	fits := func(s string) bool { _, n := Segments(s); return n <= maxSegments }
	if fits(text + suffix) {
		return text + suffix
	}
	runes := []rune(text)
	candidate := func(n int) string {
		prefix := trimEnd(string(runes[:n]))
		if prefix == "" {
			return suffix
		}
		ellipsis := "…"
		if isGSM(prefix + suffix) {
			ellipsis = "..."
		}
		return prefix + ellipsis + suffix
	}
	// The largest hard cut that fits; the segment count grows with n.
	lo, hi := 0, len(runes)
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if fits(candidate(mid)) {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	if lo == 0 {
		return suffix
	}
	// Back off to the last word boundary, unless that drops over half of
	// what fits (one very long word).
	cut := lo
	if lo < len(runes) && !unicode.IsSpace(runes[lo]) {
		for i := lo; i > lo/2; i-- {
			if unicode.IsSpace(runes[i-1]) {
				cut = i - 1
				break
			}
		}
	}
	return candidate(cut)
}

// trimEnd drops trailing spaces and punctuation that would sit badly
// before an ellipsis.
func trimEnd(s string) string {
	return strings.TrimRightFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || strings.ContainsRune(",;:-–—.…([{", r)
	})
}
