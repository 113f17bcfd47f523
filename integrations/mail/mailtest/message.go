package mailtest

import (
	"bytes"
	"mime"
	"net/mail"
	"strings"
)

// Message is one message as the server accepted it.
type Message struct {
	From   string   // envelope sender (MAIL FROM)
	To     []string // envelope recipients the server accepted (RCPT TO)
	Data   []byte   // the message as sent after DATA: header and body, CRLF line ends
	TLS    bool     // it came over TLS (STARTTLS or implicit)
	Authed bool     // the client had authenticated (WithAuth)
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
