package validate

import (
	"sync"

	"github.com/nyaruka/phonenumbers"
)

// libphonenumber costs about 10 µs a number, the larger part of a sync's
// initial load. Most phones of a roster are written in E.164 ("+", then
// digits), and for those the library's answer provably depends only on the
// country code, the number's length and its first few digits, because
// every pattern it consults decides by then. phoneMemo asks the library
// once per such prefix and remembers the answer.
//
// For s = "+" + digits, parsing with libphonenumber (v1.8.1) goes: no
// extension (every extension pattern needs a marker, "x", "ext", "#", ",",
// that digits lack); the plus sign makes the first one to three digits the
// country code (the first prefix that is one); the rest, d, is the
// national number, unless the national prefix of the code's main region
// matches at d's start (then it may be stripped: such numbers are never
// remembered) or d starts with 0 (leading zeros are counted: never
// remembered either). Validity is then: the region, chosen among the
// code's regions by leading-digit patterns or by a full type check, and
// d matched in full against that region's number patterns, next to
// possible lengths that depend on len(d) alone. The E.164 form is
// "+" + code + d, the input itself.
//
// So a prefix of d is remembered only when, for numbers of d's length,
// every pattern involved (the main region's national prefix, and every
// region's leading digits and number patterns) is decided by the prefix
// whatever digits follow, which prefixDecided checks on the patterns'
// automata; and only with the library's own answer for a number of that
// prefix, when it is "invalid" or "valid, already E.164". Any other number
// takes the library's path.

// The states of a memo entry.
const (
	memoValid   uint8 = iota + 1 // valid, and the input is its E.164 form
	memoInvalid                  // not a valid number
	memoLibrary                  // not decided by this prefix: ask the library
)

const (
	// memoMaxPrefix is the longest prefix of d a memo entry is keyed by.
	memoMaxPrefix = 5
	// memoMaxEntries bounds the memo (prefixes, not numbers: about a
	// hundred per country in practice).
	memoMaxEntries = 1 << 16
)

var phoneMemo struct {
	mu      sync.RWMutex
	entries map[memoKey]uint8
}

// memoKey packs a country code, the length of the national number and its
// first n digits (the map's hashing of a plain integer is cheap).
type memoKey uint64

func makeMemoKey(cc, length int, prefix string) memoKey {
	v := 0
	for i := 0; i < len(prefix); i++ {
		v = v*10 + int(prefix[i]-'0')
	}
	return memoKey(uint64(cc) | uint64(length)<<10 | uint64(len(prefix))<<15 | uint64(v)<<18)
}

// callingCodes marks the country codes libphonenumber parses: those it
// maps to regions, as its extraction of a country code looks them up.
var callingCodes = sync.OnceValue(func() *[1000]bool {
	var known [1000]bool
	for cc := range known {
		known[cc] = len(phonenumbers.GetRegionCodesForCountryCode(cc)) > 0
	}
	return &known
})

// splitE164 returns the country code and national number of s when s is
// "+" and ASCII digits only, with a country code libphonenumber knows (the
// first one to three digits that are one, as the library picks it) and a
// national number of a length it parses.
func splitE164(s string) (cc int, national string, ok bool) {
	if len(s) < 4 || s[0] != '+' {
		return 0, "", false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, "", false
		}
	}
	if s[1] == '0' {
		return 0, "", false
	}
	known := callingCodes()
	for i := 2; i <= 4 && i < len(s); i++ {
		cc = cc*10 + int(s[i-1]-'0')
		if known[cc] {
			national = s[i:]
			return cc, national, len(national) >= 2 && len(national) <= 17
		}
	}
	return 0, "", false
}

// memoPhone answers NormalizePhone for an E.164-shaped number from the
// memo, asking the library (slow) once per prefix. known is false when
// the memo cannot answer: the caller asks the library.
func memoPhone(s string, slow func(string) (string, bool)) (e164 string, ok, known bool) {
	cc, d, fits := splitE164(s)
	if !fits || d[0] == '0' {
		return "", false, false
	}
	phoneMemo.mu.RLock()
	state, key := memoLookup(cc, d)
	phoneMemo.mu.RUnlock()
	switch state {
	case memoValid:
		return s, true, true
	case memoInvalid:
		return "", false, true
	case memoLibrary:
		return "", false, false
	}
	e164, ok = slow(s)
	state = memoLibrary
	if decided, found := decidingPrefix(cc, d); found {
		switch {
		case ok && e164 == s:
			state = memoValid
		case !ok:
			state = memoInvalid
		}
		memoStore(decided, state)
	} else {
		memoStore(key, memoLibrary)
	}
	return e164, ok, true
}

// memoLookup finds the entry of d's shortest remembered prefix; the key
// returned otherwise is that of the longest prefix.
func memoLookup(cc int, d string) (uint8, memoKey) {
	var key memoKey
	for n := 1; n <= memoMaxPrefix && n <= len(d); n++ {
		key = makeMemoKey(cc, len(d), d[:n])
		if state := phoneMemo.entries[key]; state != 0 {
			return state, key
		}
	}
	return 0, key
}

func memoStore(key memoKey, state uint8) {
	phoneMemo.mu.Lock()
	defer phoneMemo.mu.Unlock()
	if phoneMemo.entries == nil {
		phoneMemo.entries = map[memoKey]uint8{}
	}
	if len(phoneMemo.entries) < memoMaxEntries {
		phoneMemo.entries[key] = state
	}
}

// decidingPrefix returns the key of the shortest prefix of d that decides
// the library's answer for every national number of d's length, if one of
// at most memoMaxPrefix digits does.
func decidingPrefix(cc int, d string) (memoKey, bool) {
	regions := metadataOf(cc)
	if regions == nil {
		return 0, false
	}
	for n := 1; n <= memoMaxPrefix && n <= len(d); n++ {
		if prefixDecided(regions, d[:n], len(d)) {
			return makeMemoKey(cc, len(d), d[:n]), true
		}
	}
	return 0, false
}

// prefixDecided reports whether every pattern libphonenumber reads for a
// national number of length n starting with p is decided by p.
func prefixDecided(regions []*phonenumbers.PhoneMetadata, p string, n int) bool {
	if npp := regions[0].GetNationalPrefixForParsing(); npp != "" {
		if matched, decided := lookingAtDecided(npp, p, n); !decided || matched {
			return false
		}
	}
	for _, m := range regions {
		if ld := m.GetLeadingDigits(); ld != "" {
			if _, decided := lookingAtDecided(ld, p, n); !decided {
				return false
			}
		}
		for _, desc := range numberDescs(m) {
			if _, decided := fullMatchDecided(desc.GetNationalNumberPattern(), p, n); !decided {
				return false
			}
		}
	}
	return true
}

// metadataOf returns the metadata of the regions of country code cc, in
// the library's order (the main region first), or nil for a code of no
// geographic region.
func metadataOf(cc int) []*phonenumbers.PhoneMetadata {
	byRegion := regionMetadata()
	var out []*phonenumbers.PhoneMetadata
	for _, r := range phonenumbers.GetRegionCodesForCountryCode(cc) {
		m, ok := byRegion[r]
		if !ok || r == nonGeographic {
			return nil
		}
		out = append(out, m)
	}
	return out
}

// nonGeographic is the region of calling codes that have none (+800…):
// their metadata all share this id, so they are never remembered.
const nonGeographic = "001"

var regionMetadata = sync.OnceValue(func() map[string]*phonenumbers.PhoneMetadata {
	out := map[string]*phonenumbers.PhoneMetadata{}
	coll, err := phonenumbers.MetadataCollection()
	if err != nil {
		return out
	}
	for _, m := range coll.GetMetadata() {
		out[m.GetId()] = m
	}
	return out
})

// numberDescs are the number descriptions a validity check reads.
func numberDescs(m *phonenumbers.PhoneMetadata) []*phonenumbers.PhoneNumberDesc {
	return []*phonenumbers.PhoneNumberDesc{
		m.GetGeneralDesc(), m.GetFixedLine(), m.GetMobile(), m.GetTollFree(),
		m.GetPremiumRate(), m.GetSharedCost(), m.GetPersonalNumber(), m.GetVoip(),
		m.GetPager(), m.GetUan(), m.GetVoicemail(),
	}
}
