// Package sms sends sisnotify's text messages through one of several
// providers (Twilio, Mobizon for Kazakhstan, a generic JSON webhook), or
// writes them to a JSON-lines outbox, or drops them when SMS is turned off.
// It also normalizes phone numbers (NormalizePhone) and sizes texts in SMS
// segments (Segments, Fit).
//
// Every sender answers Send(ctx, msg) with (Result, retryable, err):
//
//   - err == nil: the provider accepted the message (or it was written to
//     the outbox);
//   - retryable == true: try again later: network errors, timeouts, a
//     cancelled ctx, HTTP 408, 425, 429 and 5xx, HTTP 401 and 403
//     (credentials or account state, fixed by the operator, not by changing
//     the message), and the provider codes documented on each provider;
//   - retryable == false: this message will never be accepted as it is: an
//     invalid phone number (errors.Is(err, ErrInvalidPhone)), the
//     provider's invalid-number answer, other HTTP 3xx/4xx, an empty text,
//     or SMS turned off (ErrDisabled).
//
// Returned errors never contain phone numbers, API keys, auth tokens or
// webhook URL secrets: they are meant to be logged next to the notice id.
package sms

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Message is one SMS to one recipient.
type Message struct {
	// To is the recipient's number, in E.164 (+77011234567). Senders
	// normalize it again with NormalizePhone and refuse invalid numbers.
	To string
	// Text is sent as it is; size it with Fit first.
	Text string
	// Reference is the notice id: the webhook sends it (and uses it as
	// Idempotency-Key), the outbox records it.
	Reference string
	// Rule, Level and StudentID are the notice's trace metadata (the
	// webhook's "metadata" object, the outbox's lines).
	Rule      string
	Level     int
	StudentID string
}

// Result describes an accepted message.
type Result struct {
	// ProviderID is the provider's message id (Twilio's sid, Mobizon's
	// messageId, the webhook's "id" when it answers one).
	ProviderID string
	// Reply is the provider's status for the message when it gives one
	// ("queued", "accepted", HTTP status text), or where the outbox wrote it.
	Reply string
}

// Sender is what every provider implements.
type Sender interface {
	// Send delivers msg; see the package documentation for the meaning of
	// the retryable flag. It is safe for concurrent use.
	Send(ctx context.Context, msg Message) (res Result, retryable bool, err error)
	// Name is the provider's name as in SISNOTIFY_SMS_PROVIDER.
	Name() string
}

var (
	// ErrInvalidPhone marks a number that is not a valid mobile number,
	// found locally or answered by the provider. It is permanent, and a data
	// problem of the student's record.
	ErrInvalidPhone = errors.New("invalid phone number")
	// ErrInvalidMessage marks a message with an empty text. It is permanent.
	ErrInvalidMessage = errors.New("invalid SMS message")
	// ErrDisabled is what the "none" provider answers, with retryable ==
	// false: nothing was sent and nothing will be. Callers should record
	// the notice as skipped rather than failed (or not queue SMS at all
	// when the provider is "none").
	ErrDisabled = errors.New("SMS disabled (SISNOTIFY_SMS_PROVIDER=none)")
)

// Error is the error type of the HTTP providers and the outbox. Its text
// holds no phone numbers or credentials.
type Error struct {
	// Provider is "twilio", "mobizon", "webhook" or "outbox".
	Provider string
	// Status is the HTTP status code, 0 when there was no response.
	Status int
	// Code is the provider's own error code ("21211", "1"), if any.
	Code string
	// Detail is a redacted description: the provider's message with numbers
	// and addresses removed, or a local reason.
	Detail string
	// Temporary equals the retryable flag returned with the error.
	Temporary bool

	cause error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("sms: ")
	b.WriteString(e.Provider)
	if e.Status != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.Status)
	}
	if e.Code != "" {
		b.WriteString(": code " + e.Code)
	}
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	if e.Temporary {
		b.WriteString(" (temporary)")
	} else {
		b.WriteString(" (permanent)")
	}
	return b.String()
}

// Unwrap exposes ErrInvalidPhone, ErrInvalidMessage or a context error when
// one of them is the cause.
func (e *Error) Unwrap() error { return e.cause }

// NewHTTPClient returns an HTTP client suited to the providers: a 30 s
// limit per request, dial, TLS and response-header timeouts, at most 8
// pooled keep-alive connections per provider, and no redirects (a 3xx answer is reported, not
// followed, so credentials never travel to another URL).
func NewHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSHandshakeTimeout = 10 * time.Second
	tr.ResponseHeaderTimeout = 20 * time.Second
	// At most 8 requests at once to a provider, however many deliveries
	// are in flight (the rest wait for a connection): providers answer a
	// burst with 429s, and 8 keep a national night's SMS well within time.
	tr.MaxConnsPerHost = 8
	tr.MaxIdleConnsPerHost = 8
	tr.IdleConnTimeout = 90 * time.Second
	return &http.Client{
		Timeout:   30 * time.Second,
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// sharedClient is the client of every provider built without one.
var sharedClient = sync.OnceValue(NewHTTPClient)

func clientOr(c *http.Client) *http.Client {
	if c != nil {
		return c
	}
	return sharedClient()
}

// retryableStatus classifies an HTTP status that is not a success.
func retryableStatus(status int) bool {
	switch {
	case status >= 500:
		return true
	case status == http.StatusTooManyRequests, status == http.StatusRequestTimeout,
		status == http.StatusTooEarly, status == http.StatusUnauthorized, status == http.StatusForbidden:
		return true
	}
	return false
}

// checkMessage normalizes the number and checks the text, for every
// sender.
func checkMessage(provider string, msg Message) (string, error) {
	to, err := NormalizePhone(msg.To)
	if err != nil {
		return "", &Error{Provider: provider, Detail: err.Error(), cause: ErrInvalidPhone}
	}
	if strings.TrimSpace(msg.Text) == "" {
		return "", &Error{Provider: provider, Detail: "empty text", cause: ErrInvalidMessage}
	}
	return to, nil
}

func ctxError(provider string, err error) *Error {
	return &Error{Provider: provider, Detail: "cancelled: " + err.Error(), Temporary: true, cause: err}
}
