package studentpage

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/iec-almaty/sisnotify/jobs/date"
)

func testKeys(t testing.TB, keys ...string) *Keys {
	t.Helper()
	var bs [][]byte
	for _, k := range keys {
		bs = append(bs, []byte(k))
	}
	k, err := NewKeys(bs...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

const (
	keyA = "key-a-0123456789abcdef0123456789abcdef"
	keyB = "key-b-0123456789abcdef0123456789abcdef"
	keyC = "key-c-0123456789abcdef0123456789abcdef"
)

var night = date.MustParse("2026-11-25")

func TestTokenRoundTrip(t *testing.T) {
	k := testKeys(t, keyA)
	tok := k.StudentLink("S000123", 4567, night)
	l, signer, err := k.Verify(tok, night)
	if err != nil || signer != 0 {
		t.Fatalf("Verify = %v, %d, %v", l, signer, err)
	}
	if l.StudentID != "S000123" || l.NoticeID != 4567 || l.ExpiresOn() != night.AddDays(LinkValidity) {
		t.Fatalf("link = %+v (expires %s)", l, l.ExpiresOn())
	}
	if strings.ContainsAny(tok, "+/=.") {
		t.Fatalf("token %q is not base64url without padding", tok)
	}
}

// TestTokenExpiry: valid through the 60th day after the night, by the
// clock given, not the machine's.
func TestTokenExpiry(t *testing.T) {
	k := testKeys(t, keyA)
	tok := k.StudentLink("S1", 1, night)
	for _, c := range []struct {
		day date.Date
		ok  bool
	}{{night, true}, {night.AddDays(59), true}, {night.AddDays(60), true}, {night.AddDays(61), false}, {night.AddDays(400), false}} {
		_, _, err := k.Verify(tok, c.day)
		if (err == nil) != c.ok {
			t.Errorf("on %s: err = %v, want ok=%v", c.day, err, c.ok)
		}
	}
}

// TestTokenTamper: changing any character of a token makes it invalid.
func TestTokenTamper(t *testing.T) {
	k := testKeys(t, keyA)
	tok := k.StudentLink("S000123", 4567, night)
	alphabet := "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range len(tok) {
		for _, c := range []byte{alphabet[(strings.IndexByte(alphabet, tok[i])+1)%64], alphabet[(strings.IndexByte(alphabet, tok[i])+33)%64]} {
			bad := tok[:i] + string(c) + tok[i+1:]
			if _, _, err := k.Verify(bad, night); !errors.Is(err, ErrInvalid) {
				t.Fatalf("token with byte %d changed verifies: %v", i, err)
			}
		}
	}
	// A student id changed and re-encoded with the old MAC.
	l, p, sum, err := parseToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	l.StudentID = "S000124"
	forged := payload(l)
	if bytes.Equal(forged, p) {
		t.Fatal("payload unchanged")
	}
	if _, _, err := k.Verify(encode(append(forged, sum...)), night); !errors.Is(err, ErrInvalid) {
		t.Fatalf("forged student verifies: %v", err)
	}
	for _, bad := range []string{"", "x", tok + "A", tok[:len(tok)-1], strings.Repeat("A", 300), "page.css", "../etc", tok + "="} {
		if _, _, err := k.Verify(bad, night); !errors.Is(err, ErrInvalid) {
			t.Errorf("Verify(%q) = %v", bad, err)
		}
	}
}

// TestTokenRotation: the first key signs, every listed key verifies, and
// a key no longer listed does not.
func TestTokenRotation(t *testing.T) {
	old := testKeys(t, keyA)
	tokA := old.StudentLink("S1", 7, night)
	rotated := testKeys(t, keyB, keyA)
	tokB := rotated.StudentLink("S1", 7, night)
	if tokA == tokB {
		t.Fatal("the new first key signs like the old one")
	}
	for _, tok := range []string{tokA, tokB} {
		if _, _, err := rotated.Verify(tok, night); err != nil {
			t.Errorf("rotated keys refuse a token: %v", err)
		}
	}
	if _, s, _ := rotated.Verify(tokA, night); s != 1 {
		t.Errorf("old token verified by key %d, want 1", s)
	}
	retired := testKeys(t, keyB, keyC)
	if _, _, err := retired.Verify(tokA, night); !errors.Is(err, ErrInvalid) {
		t.Errorf("a token of a retired key verifies: %v", err)
	}
	if _, err := NewKeys([]byte("short")); err == nil || strings.Contains(err.Error(), "short") {
		t.Errorf("NewKeys(short) = %v: want an error that does not quote the key", err)
	}
}

func TestCSRF(t *testing.T) {
	k := testKeys(t, keyA)
	t1, t2 := k.StudentLink("S1", 1, night), k.StudentLink("S2", 2, night)
	if !k.checkCSRF(t1, 0, k.csrf(t1, 0)) {
		t.Fatal("the page's own form token is refused")
	}
	if k.checkCSRF(t1, 0, k.csrf(t2, 0)) || k.checkCSRF(t1, 0, "") {
		t.Fatal("another page's or an empty form token is accepted")
	}
}

// FuzzParseToken: the parser never panics, accepts nothing over its bound,
// and a token it accepts re-signs to itself (one token per link).
func FuzzParseToken(f *testing.F) {
	k := testKeys(f, keyA)
	f.Add(k.StudentLink("S000123", 4567, night))
	f.Add(k.StudentLink("X", 1, night))
	f.Add("")
	f.Add("AAAA")
	f.Add(strings.Repeat("_", 80))
	f.Fuzz(func(t *testing.T, s string) {
		l, p, sum, err := parseToken(s)
		if err != nil {
			return
		}
		if len(s) > maxTokenLen || l.StudentID == "" || l.NoticeID <= 0 || len(sum) != macLen {
			t.Fatalf("parsed %q to %+v", s, l)
		}
		if !bytes.Equal(payload(l), p) {
			t.Fatalf("%q: payload does not round-trip", s)
		}
		if encode(append(append([]byte(nil), p...), sum...)) != s {
			t.Fatalf("%q: two encodings of one token", s)
		}
		if _, _, err := k.Verify(s, night); err == nil && k.StudentLink(l.StudentID, l.NoticeID, l.ExpiresOn().AddDays(-LinkValidity)) != s {
			t.Fatalf("%q verifies but is not what Sign makes", s)
		}
	})
}
