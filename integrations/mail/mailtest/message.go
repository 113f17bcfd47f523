package mailtest

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	"time"
)

// Message is one message as the server accepted it.
type Message struct {
	From   string   // envelope sender (MAIL FROM)
	To     []string // envelope recipients the server accepted (RCPT TO)
	Data   []byte   // the message as sent after DATA: header and body, CRLF line ends
	TLS    bool     // it came over TLS (STARTTLS or implicit)
	Authed bool     // the client had authenticated (WithAuth)
	// Received is when the server accepted it (after DATA), by the
	// machine's clock: for tests that measure a sender's pace.
	Received time.Time
}

// Header returns the first value of the named header field (any case),
// with RFC 2047 encoded words decoded, or "" when the message has no such
// field or its header does not parse. Parse Data with net/mail for more.
func (m Message) Header(name string) string {
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		return ""
	}
	v := msg.Header.Get(name)
	if dec, err := new(mime.WordDecoder).DecodeHeader(v); err == nil {
		return dec
	}
	return v
}

// MessageID returns the Message-ID header without its angle brackets, or
// "".
func (m Message) MessageID() string {
	id := strings.TrimSpace(m.Header("Message-ID"))
	return strings.TrimSuffix(strings.TrimPrefix(id, "<"), ">")
}

// Part is one leaf of a message's MIME tree, its body decoded (base64 and
// quoted-printable).
type Part struct {
	Path        string               // the media types from the root: "multipart/mixed/multipart/alternative/text/plain"
	Header      textproto.MIMEHeader // the part's own header (the message's, for a message of one part)
	MediaType   string               // "text/plain"
	Params      map[string]string    // of the Content-Type
	Disposition string               // "attachment", or "" for none
	Filename    string
	Body        []byte
}

// Parts walks the message's MIME tree, nested multiparts included
// (multipart/mixed around multipart/alternative when there is an
// attachment), and returns its leaves in order. A message without a
// Content-Type is one text/plain part.
func (m Message) Parts() ([]Part, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		return nil, err
	}
	var out []Part
	var walk func(prefix string, hdr textproto.MIMEHeader, body io.Reader) error
	walk = func(prefix string, hdr textproto.MIMEHeader, body io.Reader) error {
		h := hdr.Get
		ct := h("Content-Type")
		if ct == "" {
			ct = "text/plain"
		}
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil {
			return fmt.Errorf("Content-Type %q: %w", ct, err)
		}
		path := strings.TrimPrefix(prefix+"/"+mt, "/")
		if strings.HasPrefix(mt, "multipart/") {
			mr := multipart.NewReader(body, params["boundary"])
			for {
				p, err := mr.NextRawPart()
				if err == io.EOF {
					return nil
				}
				if err != nil {
					return err
				}
				if err := walk(path, p.Header, p); err != nil {
					return err
				}
			}
		}
		switch strings.ToLower(strings.TrimSpace(h("Content-Transfer-Encoding"))) {
		case "base64":
			body = base64.NewDecoder(base64.StdEncoding, body)
		case "quoted-printable":
			body = quotedprintable.NewReader(body)
		}
		b, err := io.ReadAll(body)
		if err != nil {
			return err
		}
		p := Part{Path: path, Header: hdr, MediaType: mt, Params: params, Body: b}
		if d := h("Content-Disposition"); d != "" {
			var dp map[string]string
			p.Disposition, dp, _ = mime.ParseMediaType(d)
			p.Filename = dp["filename"]
		}
		out = append(out, p)
		return nil
	}
	if err := walk("", textproto.MIMEHeader(msg.Header), msg.Body); err != nil {
		return nil, err
	}
	return out, nil
}

// Text returns the message's first text/plain part that is not an
// attachment, with CRLF line ends made LF, or "" when it has none or does
// not parse.
func (m Message) Text() string { return m.body("text/plain") }

// HTML returns the message's first text/html part that is not an
// attachment, or "".
func (m Message) HTML() string { return m.body("text/html") }

func (m Message) body(mediaType string) string {
	parts, err := m.Parts()
	if err != nil {
		return ""
	}
	for _, p := range parts {
		if p.MediaType == mediaType && p.Disposition != "attachment" {
			return strings.ReplaceAll(string(p.Body), "\r\n", "\n")
		}
	}
	return ""
}
