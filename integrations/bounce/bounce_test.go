package bounce_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/iec-almaty/sisnotify/integrations/bounce"
)

func sample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Each sample of testdata/ as the mailbox would give it (with CRLF line
// ends, as on the wire, and with the LF the files have): what it reports.
func TestParseSamples(t *testing.T) {
	cases := []struct {
		file      string
		kind      bounce.Kind
		status    string
		original  string
		standard  bool
		malformed bool
		diagHas   string
	}{
		{file: "rfc3464-postfix.eml", kind: bounce.Failed, status: "5.1.1", original: "<notice.0123456789abcdef0123456789abcdef@sisnotify>", standard: true, diagHas: "User unknown"},
		{file: "rfc3464-delayed.eml", kind: bounce.Delayed, status: "4.4.1", original: "<notice.fedcba9876543210fedcba9876543210@sisnotify>", standard: true, diagHas: "Connection timed out"},
		{file: "exchange-ndr.eml", kind: bounce.Failed, status: "5.1.10", original: "<notice.00112233445566778899aabbccddeeff@sisnotify>", standard: true, diagHas: "RecipientNotFound"},
		{file: "gmail-text.eml", kind: bounce.Failed, status: "5.1.1", original: "<notice.abcdefabcdefabcdefabcdefabcdefab@sisnotify>", diagHas: "does not exist"},
		{file: "gmail-attached.eml", kind: bounce.Failed, status: "5.2.2", original: "<notice.55555555555555555555555555555555@sisnotify>", diagHas: "over quota"},
		{file: "qmail-text.eml", kind: bounce.Failed, status: "5.0.0", original: "<notice.66666666666666666666666666666666@sisnotify>", diagHas: "No such user"},
		{file: "digest-bounce.eml", kind: bounce.Failed, status: "5.1.1", original: "<digest.0123456789abcdef0123456789abcdef@sisnotify>", standard: true},
		{file: "not-a-bounce.eml", kind: bounce.NotABounce},
		{file: "malformed-no-status.eml", malformed: true},
		{file: "malformed-truncated.eml", kind: bounce.Failed, status: "5.1.1", standard: true, malformed: true},
		{file: "malformed-garbage.eml", malformed: true},
	}
	for _, c := range cases {
		raw := sample(t, c.file)
		crlf := bytes.ReplaceAll(bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
		for _, v := range []struct {
			name string
			raw  []byte
		}{{"lf", raw}, {"crlf", crlf}} {
			t.Run(c.file+"/"+v.name, func(t *testing.T) {
				r, err := bounce.Parse(v.raw)
				if c.malformed {
					if !errors.Is(err, bounce.ErrMalformed) {
						t.Fatalf("err = %v, want ErrMalformed (report %+v)", err, r)
					}
				} else if err != nil {
					t.Fatalf("err = %v", err)
				}
				if r.Kind != c.kind || r.Status != c.status || r.OriginalID != c.original || r.Standard != c.standard {
					t.Fatalf("got %v %q original %q standard %v; want %v %q original %q standard %v",
						r.Kind, r.Status, r.OriginalID, r.Standard, c.kind, c.status, c.original, c.standard)
				}
				if !strings.Contains(r.Diagnostic, c.diagHas) {
					t.Errorf("diagnostic %q, want it to contain %q", r.Diagnostic, c.diagHas)
				}
				if strings.Contains(r.Diagnostic, "@") {
					t.Errorf("diagnostic %q holds an address", r.Diagnostic)
				}
				if c.file != "malformed-garbage.eml" && r.MessageID == "" {
					t.Errorf("no Message-ID of the bounce itself")
				}
			})
		}
	}
}

// A read receipt is a multipart/report too, but not about delivery.
func TestParseReadReceiptIsNotABounce(t *testing.T) {
	raw := "From: student@student.example\r\nMessage-ID: <mdn.1@student.example>\r\nSubject: Read: Arrival check-in\r\n" +
		"Content-Type: multipart/report; report-type=disposition-notification; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nRead.\r\n" +
		"--b\r\nContent-Type: message/disposition-notification\r\n\r\nDisposition: manual-action/MDN-sent-manually; displayed\r\n" +
		"Original-Message-ID: <notice.0123456789abcdef0123456789abcdef@sisnotify>\r\n--b--\r\n"
	r, err := bounce.Parse([]byte(raw))
	if err != nil || r.Kind != bounce.NotABounce {
		t.Fatalf("got %v, %v; want not-a-bounce", r.Kind, err)
	}
}

// Of several recipients the most severe decides; a relayed-only DSN is
// nothing to act on; a positive DSN says delivered.
func TestParseRecipients(t *testing.T) {
	dsn := func(blocks string) []byte {
		return []byte("From: MAILER-DAEMON@mx\r\nMessage-ID: <d@mx>\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n" +
			"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n" + blocks +
			"\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nMessage-ID: <notice.0123456789abcdef0123456789abcdef@sisnotify>\r\n\r\nbody\r\n--b--\r\n")
	}
	for _, c := range []struct {
		blocks string
		kind   bounce.Kind
		status string
	}{
		{"Final-Recipient: rfc822; a@x\r\nAction: delayed\r\nStatus: 4.4.1\r\n\r\nFinal-Recipient: rfc822; b@x\r\nAction: failed\r\nStatus: 5.7.1\r\n", bounce.Failed, "5.7.1"},
		{"Final-Recipient: rfc822; a@x\r\nAction: failed\r\nStatus: 4.4.7\r\n", bounce.Delayed, "4.4.7"},
		{"Final-Recipient: rfc822; a@x\r\nAction: failed\r\n", bounce.Failed, "5.0.0"},
		{"Final-Recipient: rfc822; a@x\r\nAction: relayed\r\nStatus: 2.0.0\r\n", bounce.NotABounce, "2.0.0"},
		{"Final-Recipient: rfc822; a@x\r\nAction: delivered\r\nStatus: 2.0.0\r\n", bounce.Delivered, "2.0.0"},
	} {
		r, err := bounce.Parse(dsn(c.blocks))
		if err != nil || r.Kind != c.kind || r.Status != c.status {
			t.Errorf("%q: got %v %q, %v; want %v %q", c.blocks, r.Kind, r.Status, err, c.kind, c.status)
		}
	}
}

// An IP address or a version in a text bounce is not a status code.
func TestParseTextIgnoresDottedNumbers(t *testing.T) {
	raw := "From: MAILER-DAEMON@mx\r\nSubject: failure notice\r\nMessage-ID: <q@mx>\r\n\r\nConnected to 5.9.12.34 running 4.2.1.7 but it failed.\r\n" +
		"Message-ID: <notice.0123456789abcdef0123456789abcdef@sisnotify>\r\n"
	r, err := bounce.Parse([]byte(raw))
	if !errors.Is(err, bounce.ErrMalformed) {
		t.Fatalf("got %v %q, %v; want malformed (no status)", r.Kind, r.Status, err)
	}
}

// FuzzParse: no input makes Parse panic, and what it returns keeps its
// promises (a kind it knows, a short diagnostic without addresses).
func FuzzParse(f *testing.F) {
	entries, err := os.ReadDir("testdata")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".eml") {
			f.Add(sample(f, e.Name()))
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := bounce.Parse(raw)
		if err != nil && !errors.Is(err, bounce.ErrMalformed) {
			t.Fatalf("error %v does not wrap ErrMalformed", err)
		}
		if r.Kind < bounce.NotABounce || r.Kind > bounce.Delivered {
			t.Fatalf("kind %d", r.Kind)
		}
		if len(r.Diagnostic) > bounce.MaxDiagnostic+len("…") || !utf8.ValidString(r.Diagnostic) || strings.Contains(r.Diagnostic, "@") {
			t.Fatalf("diagnostic %q", r.Diagnostic)
		}
		if err == nil && r.Kind != bounce.NotABounce && r.OriginalID == "" {
			t.Fatalf("a bounce without the original's Message-ID and no error")
		}
	})
}
