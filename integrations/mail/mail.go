// Package mail delivers sisnotify's email: notices and digests, rendered as
// multipart/alternative (text + HTML) messages with the X-Sisnotify-* trace
// headers (multipart/mixed when they carry attachments, such as a long
// digest's CSV), sent over SMTP through a small pool of reused connections
// (go-mail), or written as .eml files to an outbox folder when no SMTP server
// is configured.
//
// Every sender answers Send(ctx, msg) with (Result, retryable, err), so the
// retry decision lives here, next to the protocol:
//
//   - err == nil: the server accepted the message (or it was written to the
//     outbox);
//   - retryable == true: try again later (SMTP 4xx, timeouts, dropped or
//     refused connections, TLS or authentication failures while connecting,
//     a cancelled ctx);
//   - retryable == false: this message will never be accepted as it is (SMTP
//     5xx for the message or its recipient, a malformed recipient address, an
//     invalid message).
//
// Returned errors never contain email addresses, passwords or user names:
// they are meant to be logged next to the notice id.
package mail

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Message is one email to one recipient.
type Message struct {
	// To is the single recipient: "addr@example.org" or
	// "Name <addr@example.org>". A list of addresses is rejected.
	To string
	// Subject is the subject line; CR, LF and other control characters are
	// replaced by spaces.
	Subject string
	// Text is the text/plain body; HTML the text/html alternative. At least
	// one is required; with both the message is multipart/alternative.
	Text, HTML string
	// MessageID is the Message-ID, with or without angle brackets
	// ("notice-42.3@sisnotify"). It is required and is used as given, so a
	// resent notice carries the same id; the caller derives it from the
	// notice key.
	MessageID string
	// Headers are extra header fields, typically the X-Sisnotify-* trace
	// headers. Names must be "X-" followed by letters, digits and dashes;
	// values have control characters replaced by spaces.
	Headers map[string]string
	// Attachments are files attached after the body, in this order; with
	// any, the message is multipart/mixed around the text and HTML.
	Attachments []Attachment
}

// Attachment is a file attached to a Message, base64-encoded in the mail.
type Attachment struct {
	// Name is the file name the recipient sees ("digest-2026-11-25.csv"):
	// required, at most 255 bytes of UTF-8, without control characters,
	// slashes, backslashes or double quotes.
	Name string
	// ContentType is the media type with its parameters ("text/csv;
	// charset=utf-8"); empty: guessed from the extension of Name, else
	// application/octet-stream.
	ContentType string
	// Data is the content. It is not copied: the caller must not change it
	// until Send returns.
	Data []byte
}

// The trace headers every notice and digest carries (docs/architecture.md, "Delivery"),
// for Message.Headers.
const (
	HeaderKind     = "X-Sisnotify-Kind"     // notice | digest
	HeaderRule     = "X-Sisnotify-Rule"     // rule id (notices)
	HeaderLevel    = "X-Sisnotify-Level"    // step number, 1-based (notices)
	HeaderStudent  = "X-Sisnotify-Student"  // student_id (notices)
	HeaderAudience = "X-Sisnotify-Audience" // student | office | dean
)

// Result describes an accepted message.
type Result struct {
	// ProviderID is the server's queue id when its final reply names one
	// ("... queued as 4F2A1"), or the outbox file name.
	ProviderID string
	// Reply is the server's final reply to the message, addresses redacted,
	// or a note on where the outbox wrote it.
	Reply string
}

// Sender delivers messages. Both *Pool (SMTP) and *Outbox implement it.
type Sender interface {
	// Send delivers msg; see the package documentation for the meaning of
	// the retryable flag. It is safe for concurrent use.
	Send(ctx context.Context, msg Message) (res Result, retryable bool, err error)
	// Close releases connections; Send fails with ErrClosed afterwards.
	Close() error
}

// New returns the sender that cfg describes: an SMTP pool when cfg.Host is
// set (see ParseURL), otherwise an outbox writing to cfg.OutboxDir.
func New(cfg Config) (Sender, error) {
	if cfg.Host == "" {
		return NewOutbox(cfg.OutboxDir, cfg.From)
	}
	return NewPool(cfg)
}

var (
	// ErrInvalidAddress marks a recipient address that cannot be parsed, or
	// that names more than one recipient. It is permanent.
	ErrInvalidAddress = errors.New("invalid recipient address")
	// ErrInvalidMessage marks a message that cannot be sent as built (no
	// body, no or malformed Message-ID, bad header name, an attachment
	// without a usable name or content type). It is permanent.
	ErrInvalidMessage = errors.New("invalid message")
	// ErrClosed is returned by Send after Close. It is retryable: another
	// worker or a later run can send the message.
	ErrClosed = errors.New("mail sender closed")
)

// Error is the error type of the SMTP and outbox senders. Its text holds no
// addresses or credentials.
type Error struct {
	// Op is the step that failed: "connect", "MAIL FROM", "RCPT TO", "DATA",
	// "send", "message", "outbox".
	Op string
	// Code is the SMTP reply code (e.g. 451, 550), 0 when the failure was
	// not an SMTP reply (network, TLS, timeout, local validation).
	Code int
	// Enhanced is the enhanced status code ("5.1.1") when the server sent
	// one.
	Enhanced string
	// Detail is a redacted description of the cause (server text without
	// addresses, or a local reason).
	Detail string
	// Temporary reports whether the failure is retryable; it equals the
	// retryable flag returned with the error.
	Temporary bool

	cause error // a sentinel or context error, for errors.Is
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("mail: ")
	b.WriteString(e.Op)
	if e.Code != 0 {
		fmt.Fprintf(&b, ": %d", e.Code)
		if e.Enhanced != "" {
			b.WriteString(" " + e.Enhanced)
		}
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if e.Temporary {
		b.WriteString(" (temporary)")
	} else {
		b.WriteString(" (permanent)")
	}
	return b.String()
}

// Unwrap exposes ErrInvalidAddress, ErrInvalidMessage, ErrClosed or a
// context error when one of them is the cause.
func (e *Error) Unwrap() error { return e.cause }
