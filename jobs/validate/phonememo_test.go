package validate

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/nyaruka/phonenumbers"

	"github.com/iec-almaty/sisnotify/integrations/testenv"
)

func TestFullMatchDecided(t *testing.T) {
	const kzMobile = `7(?:0[0-25-8]|47|6[0-4]|7[15-8]|85)\d{7}`
	for _, c := range []struct {
		pattern, prefix  string
		n                int
		matched, decided bool
	}{
		{kzMobile, "700", 10, true, true},
		{kzMobile, "7", 10, false, false},
		{kzMobile, "70", 10, false, false},
		{kzMobile, "703", 10, false, true},
		{kzMobile, "71", 10, false, true},
		{kzMobile, "700", 9, false, true},
		{kzMobile, "7001234567", 10, true, true},
		{`8\d{13}|[78]\d{9}`, "7", 10, true, true},
		{`8\d{13}|[78]\d{9}`, "8", 14, true, true},
		{`8(?:0[04]|108\d{3})\d{7}`, "8108", 14, true, true},
		{`8(?:0[04]|108\d{3})\d{7}`, "81", 14, false, false},
		{`NA`, "1", 10, false, true},
		{`\d{5}5\d{4}`, "12345", 10, false, false},
	} {
		matched, decided := fullMatchDecided(c.pattern, c.prefix, c.n)
		if matched != c.matched || decided != c.decided {
			t.Errorf("fullMatchDecided(%q, %q, %d) = %v, %v; want %v, %v", c.pattern, c.prefix, c.n, matched, decided, c.matched, c.decided)
		}
	}
}

func TestLookingAtDecided(t *testing.T) {
	const cnPrefix = `(1(?:[12]\d|79)\d\d)|0`
	for _, c := range []struct {
		pattern, prefix  string
		n                int
		matched, decided bool
	}{
		{`[3489]`, "9", 10, true, true},
		{`[3489]`, "7", 10, false, true},
		{`0`, "5", 9, false, true},
		{`0`, "05", 9, true, true},
		{cnPrefix, "139", 11, false, true},
		{cnPrefix, "11", 11, true, true},
		{cnPrefix, "1", 11, false, false},
		{cnPrefix, "1", 3, false, true},
		{`0?`, "5", 9, true, true},
		{`33|7`, "3", 10, false, false},
		{`33|7`, "34", 10, false, true},
	} {
		matched, decided := lookingAtDecided(c.pattern, c.prefix, c.n)
		if matched != c.matched || decided != c.decided {
			t.Errorf("lookingAtDecided(%q, %q, %d) = %v, %v; want %v, %v", c.pattern, c.prefix, c.n, matched, decided, c.matched, c.decided)
		}
	}
}

// memoHits counts the numbers the memo answered without the library.
func memoHits(numbers []string) (hits int) {
	for _, s := range numbers {
		cc, d, ok := splitE164(s)
		if !ok || d[0] == '0' {
			continue
		}
		phoneMemo.mu.RLock()
		state, _ := memoLookup(cc, d)
		phoneMemo.mu.RUnlock()
		if state == memoValid || state == memoInvalid {
			hits++
		}
	}
	return hits
}

// Numbers of every calling code, of the lengths each region expects and
// others, many sharing a prefix: the memo answers what libphonenumber
// answers, and answers most of them itself.
func TestPhoneMemoMatchesLibrary(t *testing.T) {
	testenv.Long(t, "checks the phone memo against the library")
	rng := rand.New(rand.NewPCG(7, 7))
	codes := phonenumbers.GetSupportedCallingCodes()
	ccs := make([]int, 0, len(codes))
	for cc := range codes {
		ccs = append(ccs, cc)
	}
	slices.Sort(ccs)
	prefixes, tails := 12, 4
	if testing.Short() {
		prefixes = 3
	}
	var numbers []string
	digits := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('0' + rng.IntN(10))
		}
		return string(b)
	}
	for _, cc := range ccs {
		lengths := []int{3, 7, 12}
		for _, r := range phonenumbers.GetRegionCodesForCountryCode(cc) {
			if m := regionMetadata()[r]; m != nil {
				for _, l := range m.GetGeneralDesc().GetPossibleLength() {
					lengths = append(lengths, int(l))
				}
			}
		}
		for _, n := range lengths {
			for range prefixes {
				// Mostly the start of a valid number, when the region has one.
				p := digits(min(n, 1+rng.IntN(memoMaxPrefix)))
				if ex := phonenumbers.GetExampleNumberForType(phonenumbers.GetRegionCodeForCountryCode(cc), phonenumbers.MOBILE); ex != nil && rng.IntN(2) == 0 {
					if nsn := phonenumbers.GetNationalSignificantNumber(ex); len(nsn) == n {
						p = nsn[:min(n, 1+rng.IntN(memoMaxPrefix))]
					}
				}
				for range tails {
					numbers = append(numbers, "+"+strconv.Itoa(cc)+p+digits(n-len(p)))
				}
			}
		}
	}
	// Kazakh mobiles, as a roster has them, every prefix of three digits.
	for p := 700; p < 800; p++ {
		for range tails {
			numbers = append(numbers, fmt.Sprintf("+7%d%s", p, digits(7)))
		}
	}
	rng.Shuffle(len(numbers), func(i, j int) { numbers[i], numbers[j] = numbers[j], numbers[i] })
	for _, s := range numbers {
		want, wantOK := libPhone(s)
		got, ok := NormalizePhone(s)
		if got != want || ok != wantOK {
			t.Fatalf("NormalizePhone(%q) = %q, %v; libphonenumber says %q, %v", s, got, ok, want, wantOK)
		}
	}
	if hits := memoHits(numbers); hits < len(numbers)/2 {
		t.Errorf("the memo answers %d of %d numbers: it is hardly used", hits, len(numbers))
	}
}

// Not E.164, or nothing the memo may answer: the library's answer.
func TestPhoneMemoLeavesOtherShapes(t *testing.T) {
	for _, s := range []string{"87011234567", "+7 701 123 45 67", "+7701123456x", "++77011234567", "+07011234567", "+7", "+77", "+７7011234567"} {
		if _, _, ok := splitE164(s); ok {
			t.Errorf("splitE164(%q) accepted it", s)
		}
	}
	for _, s := range []string{"87011234567", "+7 701 123 45 67", "+70011234567", "+80012345678", "+80012345679", "+3906123456", "+390612345678"} {
		for range 2 { // the second time from the memo, if it keeps anything
			want, wantOK := libPhone(s)
			if got, ok := NormalizePhone(s); got != want || ok != wantOK {
				t.Errorf("NormalizePhone(%q) = %q, %v; libphonenumber says %q, %v", s, got, ok, want, wantOK)
			}
		}
	}
}
