package mail

import (
	"bytes"
	"context"
	"errors"
	"mime"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/iec-almaty/sisnotify/integrations/mail/mailtest"
)

// mimePart is one leaf of a message's MIME tree.
type mimePart struct {
	path        string // content types from the top: "multipart/mixed/multipart/alternative/text/plain"
	contentType string // the part's Content-Type as written
	disposition string // its Content-Disposition as written
	encoding    string // its Content-Transfer-Encoding
	body        []byte // decoded (base64 and quoted-printable)
}

// leaves walks the whole MIME tree of a raw message, nested multiparts
// included (mailtest.Message.Parts).
func leaves(t *testing.T, raw []byte) []mimePart {
	t.Helper()
	parts, err := mailtest.Message{Data: raw}.Parts()
	if err != nil {
		t.Fatalf("message does not parse: %v", err)
	}
	out := make([]mimePart, len(parts))
	for i, p := range parts {
		out[i] = mimePart{path: p.Path, contentType: p.Header.Get("Content-Type"), disposition: p.Header.Get("Content-Disposition"),
			encoding: p.Header.Get("Content-Transfer-Encoding"), body: p.Body}
	}
	return out
}

// withAttachments is a notice carrying a CSV (UTF-8 with a BOM, Cyrillic)
// and a binary file whose type go-mail guesses from its name.
func withAttachments() (Message, []byte, []byte) {
	csv := append([]byte("\uFEFF"), []byte("Правило;ID студента\r\nregistration;S0042\r\n")...)
	bin := make([]byte, 3000) // longer than a base64 line, every byte value
	for i := range bin {
		bin[i] = byte(i * 7)
	}
	msg := notice(student)
	msg.Attachments = []Attachment{
		{Name: "digest-2026-11-25.csv", ContentType: "text/csv; charset=utf-8", Data: csv},
		{Name: "отчёт.pdf", Data: bin},
	}
	return msg, csv, bin
}

// checkAttachments checks that raw is multipart/mixed: the text and HTML
// alternatives of msg, then its two attachments whole, with their names and
// content types.
func checkAttachments(t *testing.T, raw []byte, msg Message, csv, bin []byte) {
	t.Helper()
	parts := leaves(t, raw)
	var paths []string
	for _, p := range parts {
		paths = append(paths, p.path)
	}
	want := []string{
		"multipart/mixed/multipart/alternative/text/plain",
		"multipart/mixed/multipart/alternative/text/html",
		"multipart/mixed/text/csv",
		"multipart/mixed/application/pdf",
	}
	if strings.Join(paths, " ") != strings.Join(want, " ") {
		t.Fatalf("MIME tree %q, want %q", paths, want)
	}
	if got := strings.ReplaceAll(string(parts[0].body), "\r\n", "\n"); got != msg.Text {
		t.Errorf("text part = %q", got)
	}
	if string(parts[1].body) != msg.HTML {
		t.Errorf("html part = %q", parts[1].body)
	}
	for i, a := range []struct {
		name, typ string
		data      []byte
	}{{"digest-2026-11-25.csv", "text/csv", csv}, {"отчёт.pdf", "application/pdf", bin}} {
		p := parts[2+i]
		dispo, dp, err := mime.ParseMediaType(p.disposition)
		if err != nil {
			t.Fatalf("%s: Content-Disposition %q: %v", a.name, p.disposition, err)
		}
		name, _ := new(mime.WordDecoder).DecodeHeader(dp["filename"])
		if dispo != "attachment" || name != a.name {
			t.Errorf("Content-Disposition %q: want attachment with filename %q (got %q)", p.disposition, a.name, name)
		}
		mt, params, _ := mime.ParseMediaType(p.contentType)
		if mt != a.typ {
			t.Errorf("%s: Content-Type %q, want %s", a.name, p.contentType, a.typ)
		}
		if a.typ == "text/csv" && params["charset"] != "utf-8" {
			t.Errorf("%s: Content-Type %q lost its charset", a.name, p.contentType)
		}
		if !strings.EqualFold(p.encoding, "base64") {
			t.Errorf("%s: Content-Transfer-Encoding %q, want base64", a.name, p.encoding)
		}
		if !bytes.Equal(p.body, a.data) {
			t.Errorf("%s: %d bytes arrived, want the %d sent, unchanged", a.name, len(p.body), len(a.data))
		}
	}
}

func TestAttachmentsOverSMTP(t *testing.T) {
	s := mailtest.NewServer(t)
	p := newPool(t, poolConfig(t, s, 1))
	msg, csv, bin := withAttachments()
	mustSend(t, p, msg)
	// The same Message again, on a connection the server closed meanwhile:
	// the pool re-dials and the attachments still go whole.
	s.CloseClientConnections()
	mustSend(t, p, msg)
	got := s.Messages()
	if len(got) != 2 {
		t.Fatalf("server got %d messages, want 2", len(got))
	}
	for _, m := range got {
		checkAttachments(t, m.Data, msg, csv, bin)
		if m.MessageID() != msg.MessageID || m.Header("X-Sisnotify-Kind") != "notice" {
			t.Errorf("headers lost with attachments: Message-ID %q, kind %q", m.MessageID(), m.Header("X-Sisnotify-Kind"))
		}
	}
	if s.Connections() != 2 {
		t.Errorf("%d connections, want 2", s.Connections())
	}
	// Without attachments the message stays multipart/alternative.
	mustSend(t, p, notice(student))
	if m := parse(t, s.Messages()[2].Data); m.Parts["multipart"] != "multipart/alternative" {
		t.Errorf("a message without attachments is %q", m.Parts["multipart"])
	}
}

func TestAttachmentsInOutbox(t *testing.T) {
	dir := t.TempDir()
	o, err := NewOutbox(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	msg, csv, bin := withAttachments()
	res := mustSend(t, o, msg)
	raw, err := os.ReadFile(filepath.Join(dir, res.ProviderID))
	if err != nil {
		t.Fatal(err)
	}
	checkAttachments(t, raw, msg, csv, bin)
}

func TestInvalidAttachmentsArePermanent(t *testing.T) {
	s := mailtest.NewServer(t)
	p := newPool(t, poolConfig(t, s, 1))
	o, err := NewOutbox(t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	for name, a := range map[string]Attachment{
		"no name":              {ContentType: "text/csv", Data: []byte("x")},
		"slash":                {Name: "../etc/passwd", Data: []byte("x")},
		"backslash":            {Name: `a\b.csv`, Data: []byte("x")},
		"quote":                {Name: `a".csv`, Data: []byte("x")},
		"newline":              {Name: "a\r\nX-Evil: 1.csv", Data: []byte("x")},
		"not utf-8":            {Name: "a\xff.csv", Data: []byte("x")},
		"long name":            {Name: strings.Repeat("a", 252) + ".csv", Data: []byte("x")},
		"bad type":             {Name: "a.csv", ContentType: "csv", Data: []byte("x")},
		"newline in type":      {Name: "a.csv", ContentType: "text/csv\r\nX-Evil: 1", Data: []byte("x")},
		"multipart type":       {Name: "a.csv", ContentType: "multipart/mixed; boundary=x", Data: []byte("x")},
		"unparsable parameter": {Name: "a.csv", ContentType: "text/csv; charset", Data: []byte("x")},
	} {
		t.Run(name, func(t *testing.T) {
			msg := notice(student)
			msg.Attachments = []Attachment{{Name: "fine.csv", Data: []byte("ok")}, a}
			for _, snd := range []Sender{p, o} {
				_, retry, err := snd.Send(context.Background(), msg)
				if err == nil || retry || !errors.Is(err, ErrInvalidMessage) {
					t.Errorf("%T: retryable=%v err=%v, want a permanent ErrInvalidMessage", snd, retry, err)
				}
			}
		})
	}
	if n := s.Connections(); n != 0 {
		t.Errorf("invalid attachments opened %d connections", n)
	}
	// A "name" parameter in the content type is dropped: go-mail writes the
	// attachment's own name.
	msg := notice(student)
	msg.Attachments = []Attachment{{Name: "a.csv", ContentType: `text/csv; name="b.csv"; charset=utf-8`, Data: []byte("x")}}
	mustSend(t, p, msg)
	parts := leaves(t, s.Messages()[0].Data)
	_, params, _ := mime.ParseMediaType(parts[len(parts)-1].contentType)
	if params["name"] != "a.csv" || params["charset"] != "utf-8" {
		t.Errorf("Content-Type %q, want name a.csv and charset utf-8", parts[len(parts)-1].contentType)
	}
}
