package sms

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	twilio "github.com/twilio/twilio-go/client"
)

// TwilioStatus is one of Twilio's status callbacks for a message
// (StatusCallback): what Twilio knows of it now.
type TwilioStatus struct {
	// MessageSid is the message's id, as Send returned it (ProviderID).
	MessageSid string
	// MessageStatus is queued, sending, sent, delivered, undelivered,
	// failed (and, for other channels, accepted, scheduled, read, ...).
	MessageStatus string
	// ErrorCode is Twilio's error code of an undelivered or failed
	// message ("30003": unreachable handset), empty otherwise.
	ErrorCode string
	// AccountSid is the account that sent the message.
	AccountSid string
}

var (
	// ErrTwilioSignature: the callback does not carry a valid
	// X-Twilio-Signature for the URL and the auth token; it did not come
	// from Twilio, or was changed on the way.
	ErrTwilioSignature = errors.New("twilio: no valid X-Twilio-Signature")
	// ErrTwilioCallback: the callback is signed but not a message status
	// callback (no MessageSid or MessageStatus).
	ErrTwilioCallback = errors.New("twilio: not a message status callback")
)

// TwilioCallbacks checks and reads Twilio's status callbacks with Twilio's
// own validator (github.com/twilio/twilio-go/client.RequestValidator): the
// X-Twilio-Signature header must be base64(HMAC-SHA1(auth token, URL +
// each POST parameter, sorted by name, as name + value)), compared in
// constant time.
//
// URL is the one Twilio called, the StatusCallback it was given, never
// the request's own Host and scheme: behind a TLS reverse proxy the
// request reaching sisnotify names another host, scheme and port than the
// one Twilio signed.
type TwilioCallbacks struct {
	url       string
	validator twilio.RequestValidator
}

// NewTwilioCallbacks checks callbacks sent to callbackURL, signed with
// authToken.
func NewTwilioCallbacks(authToken, callbackURL string) (*TwilioCallbacks, error) {
	if authToken == "" {
		return nil, errors.New("sms: twilio callbacks need the auth token")
	}
	u, err := url.Parse(callbackURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return nil, errors.New("sms: the twilio callback URL must be an absolute http(s) URL without credentials")
	}
	return &TwilioCallbacks{url: callbackURL, validator: twilio.NewRequestValidator(authToken)}, nil
}

// URL is the callback URL the signatures are checked against.
func (c *TwilioCallbacks) URL() string { return c.url }

// Read checks the signature of a callback whose form body is body and
// returns what it says. A callback with a parameter given twice is
// refused as unsigned: Twilio's validator signs the first value only, and
// what is read must be what was signed.
func (c *TwilioCallbacks) Read(header http.Header, body []byte) (TwilioStatus, error) {
	sig := header.Get("X-Twilio-Signature")
	if sig == "" {
		return TwilioStatus{}, ErrTwilioSignature
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return TwilioStatus{}, fmt.Errorf("%w: the body is not a form", ErrTwilioSignature)
	}
	params := make(map[string]string, len(form))
	for k, vs := range form {
		if len(vs) != 1 {
			return TwilioStatus{}, fmt.Errorf("%w: parameter %q given %d times", ErrTwilioSignature, printableName(k), len(vs))
		}
		params[k] = vs[0]
	}
	if !c.validator.Validate(c.url, params, sig) {
		return TwilioStatus{}, ErrTwilioSignature
	}
	st := TwilioStatus{
		MessageSid:    params["MessageSid"],
		MessageStatus: strings.ToLower(params["MessageStatus"]),
		ErrorCode:     params["ErrorCode"],
		AccountSid:    params["AccountSid"],
	}
	if st.MessageSid == "" {
		st.MessageSid = params["SmsSid"]
	}
	if st.MessageStatus == "" {
		st.MessageStatus = strings.ToLower(params["SmsStatus"])
	}
	if st.MessageSid == "" || st.MessageStatus == "" {
		return TwilioStatus{}, ErrTwilioCallback
	}
	return st, nil
}

// printableName keeps a parameter name short and printable for an error.
func printableName(s string) string {
	if len(s) > 40 {
		s = s[:40]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// TwilioErrorText is a short English description of Twilio's delivery
// error codes an SMS receipt carries (Twilio's error dictionary), empty
// for a code not listed.
func TwilioErrorText(code string) string {
	return twilioDeliveryErrors[code]
}

var twilioDeliveryErrors = map[string]string{
	"30001": "queue overflow",
	"30002": "account suspended",
	"30003": "unreachable destination handset",
	"30004": "message blocked",
	"30005": "unknown destination handset",
	"30006": "landline or unreachable carrier",
	"30007": "filtered by the carrier",
	"30008": "unknown error",
	"30009": "missing segment",
	"30010": "message price exceeds max price",
	"21610": "recipient unsubscribed (STOP)",
	"21614": "not a mobile number",
}
