package studentpage

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/iec-almaty/sisnotify/jobs/date"
)

// LinkValidity is how long a link works: until the end of the 60th day
// after the night of the notice that carries it.
const LinkValidity = 60

// MinKeyLen is the shortest key SISNOTIFY_LINK_KEYS accepts, in bytes.
const MinKeyLen = 32

// maxTokenLen bounds what the parser reads: a student id of up to 128
// bytes makes a token of about 230 characters.
const maxTokenLen = 256

// tokenVersion is the first byte of every payload, so that a later format
// can be told apart.
const tokenVersion = 1

// macLen is the length of the HMAC-SHA256 that ends a token.
const macLen = sha256.Size

// Link is what a valid token says: the student it names, the notice whose
// email carried it, and the last day (a Unix day number: days since
// 1970-01-01) it is valid.
type Link struct {
	StudentID string
	NoticeID  int64
	Expires   int64 // Unix day
}

// ExpiresOn is the last day the link is valid, as a date.
func (l Link) ExpiresOn() date.Date { return date.UnixEpoch + date.Date(l.Expires) }

// ErrInvalid is every reason a token is refused: malformed, forged,
// signed with a key no longer listed, or expired. Callers must not tell
// them apart to the visitor.
var ErrInvalid = errors.New("studentpage: link not valid")

// Keys sign and verify links: the first signs, every one verifies, so a
// new key is put first and the old one kept until the links it signed
// have expired (60 days).
type Keys struct{ keys [][]byte }

// NewKeys checks and keeps keys (each at least MinKeyLen bytes). The
// error never quotes a key.
func NewKeys(keys ...[]byte) (*Keys, error) {
	if len(keys) == 0 {
		return nil, errors.New("studentpage: no link key")
	}
	k := &Keys{}
	for i, key := range keys {
		if len(key) < MinKeyLen {
			return nil, fmt.Errorf("studentpage: link key %d of %d is %d bytes; want at least %d", i+1, len(keys), len(key), MinKeyLen)
		}
		k.keys = append(k.keys, append([]byte(nil), key...))
	}
	return k, nil
}

// Sign makes the token of a link: base64url (no padding) of the payload
// (a version byte, the expiry day, the notice id, the student id) and its
// HMAC-SHA256 under the first key.
func (k *Keys) Sign(l Link) string {
	p := payload(l)
	mac := hmac.New(sha256.New, k.keys[0])
	mac.Write(p)
	return encode(mac.Sum(p))
}

func encode(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// StudentLink is the token of a link for the email of notice noticeID of
// night to student studentID: valid LinkValidity days after the night.
func (k *Keys) StudentLink(studentID string, noticeID int64, night date.Date) string {
	return k.Sign(Link{StudentID: studentID, NoticeID: noticeID, Expires: int64(night.AddDays(LinkValidity) - date.UnixEpoch)})
}

// Verify parses token, checks its MAC under every key and its expiry
// against today (a date in the university's zone), and returns the link
// and the key that signed it. Anything wrong is ErrInvalid. It reads no
// database.
func (k *Keys) Verify(token string, today date.Date) (Link, int, error) {
	l, p, sum, err := parseToken(token)
	if err != nil {
		return Link{}, -1, ErrInvalid
	}
	signer := -1
	for i, key := range k.keys {
		mac := hmac.New(sha256.New, key)
		mac.Write(p)
		if hmac.Equal(mac.Sum(nil), sum) && signer < 0 {
			signer = i
		}
	}
	if signer < 0 || int64(today-date.UnixEpoch) > l.Expires {
		return Link{}, -1, ErrInvalid
	}
	return l, signer, nil
}

// csrf is the form token of a page reached by token: an HMAC of the link
// token under the key that signed it, so a form needs no session and a
// page of one link cannot post for another.
func (k *Keys) csrf(token string, signer int) string {
	mac := hmac.New(sha256.New, k.keys[signer])
	mac.Write([]byte("sisnotify student form\x00"))
	mac.Write([]byte(token))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// checkCSRF reports whether got is the form token of token.
func (k *Keys) checkCSRF(token string, signer int, got string) bool {
	return hmac.Equal([]byte(k.csrf(token, signer)), []byte(got))
}

// today is the date of t in loc (the university's zone).
func today(t time.Time, loc *time.Location) date.Date { return date.FromTime(t.In(loc)) }

func payload(l Link) []byte {
	p := make([]byte, 0, 1+4+binary.MaxVarintLen64+len(l.StudentID))
	p = append(p, tokenVersion)
	p = binary.BigEndian.AppendUint32(p, uint32(l.Expires))
	p = binary.AppendUvarint(p, uint64(l.NoticeID))
	return append(p, l.StudentID...)
}

// parseToken splits a token into its link, the signed payload and the
// MAC; it checks the form, not the MAC.
func parseToken(token string) (Link, []byte, []byte, error) {
	if len(token) == 0 || len(token) > maxTokenLen || !base64URL(token) {
		return Link{}, nil, nil, ErrInvalid
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(raw) < 1+4+1+1+macLen {
		return Link{}, nil, nil, ErrInvalid
	}
	p, sum := raw[:len(raw)-macLen], raw[len(raw)-macLen:]
	if p[0] != tokenVersion {
		return Link{}, nil, nil, ErrInvalid
	}
	exp := binary.BigEndian.Uint32(p[1:5])
	id, n := binary.Uvarint(p[5:])
	if n <= 0 || id == 0 || id > 1<<62 {
		return Link{}, nil, nil, ErrInvalid
	}
	sid := p[5+n:]
	if len(sid) == 0 || !printableID(sid) {
		return Link{}, nil, nil, ErrInvalid
	}
	// A non-minimal varint would give one link two tokens.
	if len(binary.AppendUvarint(nil, id)) != n {
		return Link{}, nil, nil, ErrInvalid
	}
	return Link{StudentID: string(sid), NoticeID: int64(id), Expires: int64(exp)}, p, sum, nil
}

// base64URL admits the characters of base64url only: the decoder skips
// CR and LF, which would give one token many spellings.
func base64URL(s string) bool {
	for i := range len(s) {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// printableID admits the visible ASCII a student id is made of.
func printableID(b []byte) bool {
	for _, c := range b {
		if c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}

// Linker makes the address of the student page for a notice's email:
// Base (SISNOTIFY_PUBLIC_URL) + "/s/" + the token. jobs.Deliverer's Links.
type Linker struct {
	Base string
	Keys *Keys
}

// StudentLink is the page's address for the email of notice noticeID of
// night to student studentID.
func (l Linker) StudentLink(studentID string, noticeID int64, night date.Date) string {
	return strings.TrimRight(l.Base, "/") + Path + l.Keys.StudentLink(studentID, noticeID, night)
}
