// Package bounce reads a message of the bounce mailbox and says what it
// reports about a message sisnotify sent: a delivery status notification
// (RFC 3464, multipart/report; report-type=delivery-status) with its
// per-recipient Action, Status and Diagnostic-Code, or one of the common
// non-standard bounces: Exchange's non-delivery reports (often still
// multipart/report, with the returned message as message/rfc822 or only
// its headers) and the text bounces of Gmail, qmail and others (a status
// code in the text, the original message attached or inlined).
//
// It names the original message by the Message-ID of the returned
// message or headers, so a caller can find the notice it was about
// (jobs.MessageHash); it never needs the recipient's address, and the
// diagnostic it returns has addresses removed.
//
// MIME is read with github.com/emersion/go-message (transfer encodings,
// charsets, nested multiparts): a well-kept library from the author of
// go-imap and go-smtp, which sisnotify already uses. Only the DSN's own
// field blocks, which no MIME library parses, are split here.
//
// Parse never panics on any input (FuzzParse) and reads at most what it
// is given: the caller bounds the size of a message.
package bounce

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // bounces in windows-1251, koi8-r, iso-8859-x
	"github.com/emersion/go-message/textproto"
)

// Kind is what a message reports.
type Kind int

const (
	// NotABounce: an ordinary message (a reply, an auto-reply, spam, a
	// read receipt), or a report that a message was relayed.
	NotABounce Kind = iota
	// Failed: a permanent failure (status 5.x.x): the message will never
	// arrive, the address does not work.
	Failed
	// Delayed: a temporary failure (status 4.x.x): the server is still
	// trying, or gave up on a problem that may pass.
	Delayed
	// Delivered: a positive DSN (Action: delivered).
	Delivered
)

func (k Kind) String() string {
	switch k {
	case NotABounce:
		return "not-a-bounce"
	case Failed:
		return "failed"
	case Delayed:
		return "delayed"
	case Delivered:
		return "delivered"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Report is what Parse found in one message.
type Report struct {
	// MessageID is the message's own Message-ID, in angle brackets; ""
	// when it has none or it does not parse.
	MessageID string
	Kind      Kind
	// Standard: the message is an RFC 3464 report with a
	// message/delivery-status part that gave the status.
	Standard bool
	// Status is the enhanced status code ("5.1.1"); a bare SMTP reply
	// code found in a text bounce gives "5.0.0" or "4.0.0".
	Status string
	// Diagnostic is the server's explanation (Diagnostic-Code, or the
	// line of a text bounce that held the code), without addresses, on
	// one line of at most MaxDiagnostic bytes.
	Diagnostic string
	// OriginalID is the Message-ID, in angle brackets, of the message that
	// bounced; "" when none was found.
	OriginalID string
}

// MaxDiagnostic bounds Report.Diagnostic.
const MaxDiagnostic = 300

// ErrMalformed is wrapped by Parse's errors: the message is, or claims to
// be, a bounce, but what it reports cannot be read (no status, no
// original Message-ID, MIME that does not parse).
var ErrMalformed = errors.New("malformed bounce")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// Limits on what one message may make Parse do.
const (
	maxDepth    = 8
	maxParts    = 64
	maxPartRead = 256 << 10 // of one text, DSN or header part
)

// Parse reads raw, one message as the mailbox holds it. A message that is
// not a bounce gives Kind NotABounce and no error. A bounce that cannot
// be read gives an error wrapping ErrMalformed, with the Report filled as
// far as it was read (MessageID at least, when the header parses).
func Parse(raw []byte) (Report, error) {
	var r Report
	ent, err := message.Read(bytes.NewReader(raw))
	if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
		return r, malformed("header does not parse")
	}
	if ent == nil {
		return r, malformed("header does not parse")
	}
	h := ent.Header
	r.MessageID = messageID(h.Get("Message-Id"))

	var w walker
	w.walk(ent, 0)
	subject, _ := h.Text("Subject")

	mt, params, _ := h.ContentType()
	report := mt == "multipart/report"
	if report {
		switch strings.ToLower(params["report-type"]) {
		case "delivery-status", "global-delivery-status", "":
		default:
			// A read receipt (disposition-notification) or another report.
			if len(w.dsn) == 0 {
				return r, nil
			}
		}
	}
	if !(report || len(w.dsn) > 0 || h.Has("X-Failed-Recipients") || fromDaemon(h.Get("From")) || bounceSubject.MatchString(subject)) {
		return r, nil
	}

	// The status: the DSN's fields first, else the text.
	for _, body := range w.dsn {
		if k, st, diag, ok := readDSN(body); ok && (r.Kind == NotABounce || severity(k) > severity(r.Kind)) {
			r.Kind, r.Status, r.Diagnostic, r.Standard = k, st, diag, true
		}
	}
	if !r.Standard {
		texts := append([]string{subject}, w.texts...)
		st, line := textStatus(texts)
		if st == "" {
			return r, malformed("no delivery status")
		}
		r.Status, r.Diagnostic = st, clean(line)
		r.Kind = kindOf(st, "")
	}
	if r.Kind == NotABounce {
		return r, nil // relayed, expanded: nothing to act on
	}

	// The original message: the returned message or headers, else a
	// Message-ID line in the text, else what the bounce replies to.
	r.OriginalID = w.original
	if r.OriginalID == "" {
		for _, t := range w.texts {
			if m := idLine.FindStringSubmatch(t); m != nil {
				r.OriginalID = messageID(m[1])
				break
			}
		}
	}
	if r.OriginalID == "" {
		for _, k := range []string{"In-Reply-To", "References"} {
			if id := messageID(firstID.FindString(h.Get(k))); id != "" {
				r.OriginalID = id
				break
			}
		}
	}
	if r.OriginalID == "" {
		return r, malformed("no Message-ID of the original message")
	}
	return r, nil
}

// walker collects the parts of a message that matter: the DSN bodies,
// the first returned message's Message-ID, and the texts.
type walker struct {
	dsn      [][]byte
	original string
	texts    []string
	parts    int
}

func (w *walker) walk(e *message.Entity, depth int) {
	if depth > maxDepth || w.parts >= maxParts {
		return
	}
	w.parts++
	mt, _, _ := e.Header.ContentType()
	if mr := e.MultipartReader(); mr != nil {
		for {
			p, err := mr.NextPart()
			if err != nil && p == nil {
				// The end, or a part that does not parse (a truncated
				// message): keep what was read.
				return
			}
			w.walk(p, depth+1)
			if w.parts >= maxParts {
				return
			}
		}
	}
	switch mt {
	case "message/delivery-status", "message/global-delivery-status":
		if b, err := read(e.Body); err == nil || len(b) > 0 {
			w.dsn = append(w.dsn, b)
		}
	case "message/rfc822", "message/global", "text/rfc822-headers", "message/global-headers", "message/rfc822-headers":
		// The returned message, whole or its header only: its header.
		if w.original != "" {
			return
		}
		b, _ := read(e.Body)
		hdr, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(append(b, "\r\n\r\n"...))))
		if err == nil {
			w.original = messageID(hdr.Get("Message-Id"))
		}
		if w.original == "" {
			// Some servers put the headers as text: look for the line.
			if m := idLine.FindStringSubmatch(string(b)); m != nil {
				w.original = messageID(m[1])
			}
		}
	case "text/plain", "", "text/html":
		if len(w.texts) >= 8 {
			return
		}
		b, _ := read(e.Body)
		if mt == "text/html" {
			b = htmlTag.ReplaceAll(b, []byte(" "))
		}
		if len(b) > 0 {
			w.texts = append(w.texts, string(b))
		}
	}
}

// read reads a part's body up to maxPartRead bytes; an error after some
// bytes (bad base64, a truncated part) still gives those.
func read(r io.Reader) ([]byte, error) {
	return io.ReadAll(io.LimitReader(r, maxPartRead))
}

// readDSN reads the fields of a message/delivery-status body: the
// per-message block, then a block per recipient. It gives the most severe
// recipient's outcome; ok is false when no recipient has a Status or an
// Action.
func readDSN(body []byte) (k Kind, status, diag string, ok bool) {
	norm := strings.ReplaceAll(string(body), "\r\n", "\n")
	var block []string
	var blocks []string
	for _, line := range strings.Split(norm, "\n") {
		if strings.TrimSpace(line) == "" {
			if len(block) > 0 {
				blocks = append(blocks, strings.Join(block, "\r\n"))
				block = nil
			}
			continue
		}
		block = append(block, line)
	}
	if len(block) > 0 {
		blocks = append(blocks, strings.Join(block, "\r\n"))
	}
	for _, b := range blocks {
		hdr, err := textproto.ReadHeader(bufio.NewReader(strings.NewReader(b + "\r\n\r\n")))
		if err != nil {
			continue
		}
		st := statusCode.FindString(hdr.Get("Status"))
		action := strings.ToLower(strings.TrimSpace(hdr.Get("Action")))
		if st == "" && action == "" {
			continue // the per-message block, or noise
		}
		rk := kindOf(st, action)
		if !ok || severity(rk) > severity(k) {
			k, status, diag, ok = rk, st, clean(diagnostic(hdr.Get("Diagnostic-Code"))), true
			if status == "" {
				status = map[Kind]string{Failed: "5.0.0", Delayed: "4.0.0", Delivered: "2.0.0"}[rk]
			}
		}
	}
	return k, status, diag, ok
}

// kindOf is the outcome of a status code and an action. The code's class
// decides (a 4.x.x is temporary even when the server gave up: the
// address may work); without a code, the action.
func kindOf(status, action string) Kind {
	switch {
	case strings.HasPrefix(status, "5."):
		return Failed
	case strings.HasPrefix(status, "4."):
		return Delayed
	}
	switch action {
	case "failed":
		return Failed
	case "delayed":
		return Delayed
	case "delivered":
		return Delivered
	}
	return NotABounce
}

func severity(k Kind) int {
	switch k {
	case Failed:
		return 3
	case Delayed:
		return 2
	case Delivered:
		return 1
	}
	return 0
}

// diagnostic drops the type of a Diagnostic-Code ("smtp; 550 ...").
func diagnostic(v string) string {
	if i := strings.IndexByte(v, ';'); i >= 0 && i < 12 {
		return v[i+1:]
	}
	return v
}

var (
	// statusCode is an enhanced status code (RFC 3463).
	statusCode = regexp.MustCompile(`[245]\.[0-9]{1,3}\.[0-9]{1,3}`)
	// textCode is an enhanced status code of class 4 or 5 in prose, not
	// part of a longer dotted number (an IP address, a version).
	textCode = regexp.MustCompile(`(?:^|[^0-9.])([45]\.[0-9]{1,3}\.[0-9]{1,3})(?:[^0-9.]|\.(?:[^0-9]|$)|$)`)
	// replyCode is a bare SMTP reply code where text bounces put one: at
	// the start of a line, after "said:" or after qmail's and Exchange's
	// "#".
	replyCode = regexp.MustCompile(`(?im)(?:^|said:|#)[ \t]*([45][0-5][0-9])[ \t-]`)
	// idLine is a Message-ID header line in a text.
	idLine = regexp.MustCompile(`(?im)^[ \t>]*Message-ID:[ \t]*(<[^<>\s]{1,250}>)`)
	// firstID is the first <id> in In-Reply-To or References.
	firstID = regexp.MustCompile(`<[^<>\s]{1,250}>`)
	htmlTag = regexp.MustCompile(`<[^>]*>`)
	// bounceSubject is the subject of a bounce from a server that sends
	// no DSN.
	bounceSubject = regexp.MustCompile(`(?i)undeliver|delivery status notification|delivery (has )?failed|delivery failure|mail delivery|returned mail|failure notice|could not be delivered|non-?delivery|delivery delayed|warning: message .* delayed|не доставлено|недоставлен`)
	emailRE       = regexp.MustCompile(`[^\s<>"'(),;:\[\]]*@[^\s<>"'(),;:\[\]]+`)
)

// textStatus finds the most severe enhanced status code in texts, else a
// bare reply code, and the line it was on.
func textStatus(texts []string) (status, line string) {
	for _, t := range texts {
		for _, l := range strings.Split(t, "\n") {
			for _, m := range textCode.FindAllStringSubmatch(l, -1) {
				if status == "" || m[1][0] > status[0] {
					status, line = m[1], l
				}
			}
		}
	}
	if status != "" {
		return status, line
	}
	for _, t := range texts {
		for _, l := range strings.Split(t, "\n") {
			if m := replyCode.FindStringSubmatch(l); m != nil && (status == "" || m[1][0] > status[0]) {
				status, line = m[1][:1]+".0.0", l
			}
		}
	}
	return status, line
}

// fromDaemon reports whether a From header is a mail system's.
func fromDaemon(from string) bool {
	f := strings.ToLower(from)
	return strings.Contains(f, "mailer-daemon") || strings.Contains(f, "postmaster@") || strings.Contains(f, "mail delivery subsystem")
}

// messageID gives id in angle brackets, or "" when it is not one.
func messageID(id string) string {
	id = strings.TrimSpace(id)
	if m := firstID.FindString(id); m != "" {
		return m
	}
	id = strings.Trim(id, "<>")
	if id == "" || len(id) > 250 || strings.ContainsAny(id, " \t\r\n<>") || !strings.Contains(id, "@") {
		return ""
	}
	return "<" + id + ">"
}

// clean keeps a diagnostic to one line without addresses.
func clean(s string) string {
	s = emailRE.ReplaceAllString(s, "[address]")
	s = strings.ReplaceAll(s, "@", "(at)") // what is left of one
	s = strings.Join(strings.Fields(s), " ")
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "?")
	}
	if len(s) > MaxDiagnostic {
		cut := MaxDiagnostic
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}
