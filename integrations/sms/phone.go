package sms

import (
	"fmt"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// DefaultRegion is the region assumed for numbers written without a
// country code: Kazakhstan (+7 7xx …; "8 7xx …" with the trunk prefix).
const DefaultRegion = "KZ"

// NormalizePhone parses a number as people write it ("+7 701 234 56 78",
// "8 (701) 234-56-78", "7012345678", "00 49 1512 3456789") and returns it
// in E.164 ("+77012345678"). Numbers without a country code are read as
// Kazakh. It refuses numbers that are not valid, that carry an extension,
// or that cannot take SMS (fixed line, toll free, premium rate, shared
// cost, UAN, voicemail, pager). Errors wrap ErrInvalidPhone and never
// repeat the number.
func NormalizePhone(raw string) (string, error) {
	s := strings.TrimSpace(raw)
	if s == "" {
		return "", fmt.Errorf("%w: empty", ErrInvalidPhone)
	}
	if strings.HasPrefix(s, "00") {
		s = "+" + s[2:]
	}
	num, err := phonenumbers.Parse(s, DefaultRegion)
	if err != nil {
		return "", fmt.Errorf("%w: does not parse", ErrInvalidPhone)
	}
	if !phonenumbers.IsValidNumber(num) {
		return "", fmt.Errorf("%w: not a valid number for its country", ErrInvalidPhone)
	}
	if num.GetExtension() != "" {
		return "", fmt.Errorf("%w: has an extension", ErrInvalidPhone)
	}
	switch phonenumbers.GetNumberType(num) {
	case phonenumbers.FIXED_LINE, phonenumbers.TOLL_FREE, phonenumbers.PREMIUM_RATE,
		phonenumbers.SHARED_COST, phonenumbers.UAN, phonenumbers.VOICEMAIL, phonenumbers.PAGER:
		return "", fmt.Errorf("%w: not a mobile number", ErrInvalidPhone)
	}
	return phonenumbers.Format(num, phonenumbers.E164), nil
}
