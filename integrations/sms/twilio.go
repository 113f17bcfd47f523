package sms

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// DefaultTwilioURL is Twilio's API base URL.
const DefaultTwilioURL = "https://api.twilio.com"

// TwilioConfig configures the Twilio provider.
type TwilioConfig struct {
	AccountSID string // SISNOTIFY_TWILIO_ACCOUNT_SID
	AuthToken  string // SISNOTIFY_TWILIO_AUTH_TOKEN
	// From is the sender (SISNOTIFY_TWILIO_FROM): a number, an alphanumeric
	// sender id, or a Messaging Service SID ("MG…"), which is sent as
	// MessagingServiceSid instead of From.
	From string
	// BaseURL overrides DefaultTwilioURL (SISNOTIFY_SMS_API_URL).
	BaseURL string
	// StatusCallback, when set, is sent with every message: the URL
	// Twilio posts the message's delivery status to (SISNOTIFY_PUBLIC_URL
	// + /hooks/twilio/status; see TwilioCallbacks).
	StatusCallback string
	HTTPClient     *http.Client // nil: a shared client from NewHTTPClient
}

// Twilio sends through Twilio's Messages API:
// POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json with the form
// fields To, From (or MessagingServiceSid), Body and, when configured,
// StatusCallback, HTTP basic auth
// AccountSid:AuthToken; 201 with the message's "sid" is success.
//
// Answers: 2xx sent; 401, 403, 408, 425, 429, 5xx and network errors
// retryable; other 4xx permanent. Twilio's invalid-number codes (21211
// invalid To, 21217 not a valid number, 21401 invalid number, 21614 not a
// mobile number) are also errors.Is(err, ErrInvalidPhone); 21408 (region
// not enabled), 21610 (recipient unsubscribed) and 21612 (not reachable)
// are permanent without being data problems.
type Twilio struct {
	endpoint
	url  string
	cfg  TwilioConfig
	from string // form field name: From or MessagingServiceSid
}

// NewTwilio checks cfg and returns the provider.
func NewTwilio(cfg TwilioConfig) (*Twilio, error) {
	if cfg.AccountSID == "" || cfg.AuthToken == "" || cfg.From == "" {
		return nil, errors.New("sms: twilio needs SISNOTIFY_TWILIO_ACCOUNT_SID, SISNOTIFY_TWILIO_AUTH_TOKEN and SISNOTIFY_TWILIO_FROM")
	}
	base, err := baseURL(cfg.BaseURL, DefaultTwilioURL)
	if err != nil {
		return nil, err
	}
	// The token, and the Basic credentials that carry it: a proxy or
	// gateway may quote the Authorization header in its error.
	secrets := []string{base64.StdEncoding.EncodeToString([]byte(cfg.AccountSID + ":" + cfg.AuthToken)), cfg.AuthToken}
	t := &Twilio{
		endpoint: endpoint{provider: "twilio", client: clientOr(cfg.HTTPClient), secrets: secrets},
		url:      base + "/2010-04-01/Accounts/" + url.PathEscape(cfg.AccountSID) + "/Messages.json",
		cfg:      cfg,
		from:     "From",
	}
	if strings.HasPrefix(cfg.From, "MG") && len(cfg.From) == 34 {
		t.from = "MessagingServiceSid"
	}
	return t, nil
}

// Name is "twilio".
func (t *Twilio) Name() string { return "twilio" }

// twilioInvalidNumber lists Twilio error codes that mean the number itself
// is wrong.
var twilioInvalidNumber = map[int]bool{21211: true, 21217: true, 21401: true, 21614: true}

// Send posts msg to Twilio.
func (t *Twilio) Send(ctx context.Context, msg Message) (Result, bool, error) {
	to, err := checkMessage(t.provider, msg)
	if err != nil {
		return Result{}, false, err
	}
	form := url.Values{"To": {to}, t.from: {t.cfg.From}, "Body": {msg.Text}}
	if t.cfg.StatusCallback != "" {
		form.Set("StatusCallback", t.cfg.StatusCallback)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, strings.NewReader(form.Encode()))
	if err != nil {
		return Result{}, false, &Error{Provider: t.provider, Detail: "building the request failed"}
	}
	req.SetBasicAuth(t.cfg.AccountSID, t.cfg.AuthToken)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "sisnotify")

	status, body, herr := t.do(ctx, req)
	if herr != nil {
		return Result{}, true, herr
	}
	var ans struct {
		SID     string `json:"sid"`
		Status  any    `json:"status"` // a string on success, a number on errors
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	jsonErr := json.Unmarshal(body, &ans)
	if status >= 200 && status < 300 {
		// Accepted, even if the body does not parse: sending again would
		// send twice.
		res := Result{ProviderID: ans.SID}
		if s, ok := ans.Status.(string); ok {
			res.Reply = s
		}
		return res, false, nil
	}
	e := &Error{Provider: t.provider, Status: status, Temporary: retryableStatus(status)}
	if jsonErr == nil && ans.Code != 0 {
		e.Code = strconv.Itoa(ans.Code)
		e.Detail = t.redact(ans.Message)
		if twilioInvalidNumber[ans.Code] && !e.Temporary {
			e.cause = ErrInvalidPhone
		}
	} else {
		e.Detail = http.StatusText(status)
	}
	return Result{}, e.Temporary, e
}
