package mail

import (
	"bytes"
	"mime"
	"net/mail"
	"net/textproto"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	gomail "github.com/wneessen/go-mail"
)

var headerNameRE = regexp.MustCompile(`^[Xx]-[A-Za-z0-9][A-Za-z0-9-]*$`)

// build turns msg into a go-mail message from the given sender. Its errors
// are permanent and name no address.
func build(msg Message, from *mail.Address) (*gomail.Msg, error) {
	rcpt, err := parseRecipient(msg.To)
	if err != nil {
		return nil, err
	}
	id, err := normalizeMessageID(msg.MessageID)
	if err != nil {
		return nil, err
	}
	if msg.Text == "" && msg.HTML == "" {
		return nil, invalid("message has neither a text nor an HTML body")
	}
	names := make([]string, 0, len(msg.Headers))
	for name := range msg.Headers {
		if !headerNameRE.MatchString(name) {
			return nil, invalid("header names must be X- followed by letters, digits and dashes")
		}
		names = append(names, name)
	}
	slices.Sort(names)
	types := make([]string, len(msg.Attachments))
	for i, a := range msg.Attachments {
		if types[i], err = checkAttachment(a); err != nil {
			return nil, err
		}
	}

	m := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	m.FromMailAddress(from)
	m.ToMailAddress(rcpt)
	m.Subject(cleanHeaderValue(msg.Subject))
	m.SetMessageIDWithValue(id)
	m.SetGenHeader("Auto-Submitted", "auto-generated")
	m.SetGenHeader(gomail.HeaderXAutoResponseSuppress, "All")
	for _, name := range names {
		m.SetGenHeader(gomail.Header(textproto.CanonicalMIMEHeaderKey(name)), cleanHeaderValue(msg.Headers[name]))
	}
	switch {
	case msg.Text != "" && msg.HTML != "":
		m.SetBodyString(gomail.TypeTextPlain, msg.Text)
		m.AddAlternativeString(gomail.TypeTextHTML, msg.HTML)
	case msg.Text != "":
		m.SetBodyString(gomail.TypeTextPlain, msg.Text)
	default:
		m.SetBodyString(gomail.TypeTextHTML, msg.HTML)
	}
	for i, a := range msg.Attachments {
		var opts []gomail.FileOption
		if types[i] != "" {
			opts = append(opts, gomail.WithFileContentType(gomail.ContentType(types[i])))
		}
		// A ReadSeeker, not AttachReader: go-mail reads it when the message
		// is written, without a copy of Data, and rewinds it after.
		m.AttachReadSeeker(a.Name, bytes.NewReader(a.Data), opts...)
	}
	return m, nil
}

// checkAttachment validates an attachment and returns its content type
// normalised ("" to let go-mail guess it from the name). go-mail would
// quietly rewrite a bad name; an invalid one is refused instead, so that
// the recipient gets the file the caller named.
func checkAttachment(a Attachment) (string, error) {
	switch {
	case a.Name == "":
		return "", invalid("attachment has no name")
	case len(a.Name) > 255:
		return "", invalid("attachment name is longer than 255 bytes")
	case !utf8.ValidString(a.Name):
		return "", invalid("attachment name is not UTF-8")
	case strings.ContainsFunc(a.Name, isControl) || strings.ContainsAny(a.Name, `/\"`):
		return "", invalid("attachment name contains control characters, slashes or quotes")
	}
	if strings.TrimSpace(a.ContentType) == "" {
		return "", nil
	}
	if strings.ContainsFunc(a.ContentType, isControl) {
		return "", invalid("attachment content type contains control characters")
	}
	mt, params, err := mime.ParseMediaType(a.ContentType)
	if err != nil || !strings.Contains(mt, "/") || strings.HasPrefix(mt, "multipart/") {
		return "", invalid("attachment content type is not a media type")
	}
	delete(params, "name") // go-mail adds it from Name
	ct := mime.FormatMediaType(mt, params)
	if ct == "" {
		return "", invalid("attachment content type is not a media type")
	}
	return ct, nil
}

func invalid(detail string) *Error {
	return &Error{Op: "message", Detail: detail, cause: ErrInvalidMessage}
}

// parseRecipient accepts exactly one address, with or without a display
// name.
func parseRecipient(to string) (*mail.Address, error) {
	bad := func(detail string) error {
		return &Error{Op: "message", Detail: detail, cause: ErrInvalidAddress}
	}
	if strings.TrimSpace(to) == "" {
		return nil, bad("no recipient address")
	}
	if strings.ContainsFunc(to, isControl) {
		return nil, bad("recipient address contains control characters")
	}
	list, err := mail.ParseAddressList(to)
	if err != nil {
		return nil, bad("recipient address does not parse")
	}
	if len(list) != 1 {
		return nil, bad("more than one recipient address")
	}
	a := list[0]
	at := strings.LastIndexByte(a.Address, '@')
	if at <= 0 || at == len(a.Address)-1 {
		return nil, bad("recipient address has no domain")
	}
	return a, nil
}

// normalizeMessageID strips optional angle brackets and checks the id is a
// single left@right token of visible ASCII.
func normalizeMessageID(id string) (string, error) {
	id = strings.TrimSpace(id)
	if strings.HasPrefix(id, "<") && strings.HasSuffix(id, ">") {
		id = id[1 : len(id)-1]
	}
	if id == "" {
		return "", invalid("message has no Message-ID")
	}
	if len(id) > 250 {
		return "", invalid("Message-ID is longer than 250 characters")
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c >= 0x7f || c == '<' || c == '>' || c == '"' || c == '\\' {
			return "", invalid("Message-ID must be visible ASCII without spaces, quotes or angle brackets")
		}
	}
	at := strings.LastIndexByte(id, '@')
	if at <= 0 || at == len(id)-1 {
		return "", invalid("Message-ID needs a left and a right part around an at sign")
	}
	return id, nil
}

func isControl(r rune) bool {
	return r < 0x20 || r == 0x7f || r == 0x85 || r == 0x2028 || r == 0x2029
}

// cleanHeaderValue replaces line breaks and other control characters with
// spaces, so that no value can start a header of its own.
func cleanHeaderValue(v string) string {
	if !strings.ContainsFunc(v, isControl) {
		return strings.TrimSpace(v)
	}
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if isControl(r) {
			return ' '
		}
		return r
	}, v))
}
