package sms

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// DefaultMobizonURL is Mobizon's API base URL for accounts registered in
// Kazakhstan.
const DefaultMobizonURL = "https://api.mobizon.kz"

// MobizonConfig configures the Mobizon provider.
type MobizonConfig struct {
	APIKey string // SISNOTIFY_MOBIZON_API_KEY
	// From is the registered sender name (SISNOTIFY_MOBIZON_FROM); empty
	// means the account's default.
	From string
	// BaseURL overrides DefaultMobizonURL (SISNOTIFY_SMS_API_URL). Mobizon
	// answers code 13 when an account belongs to another API domain.
	BaseURL    string
	HTTPClient *http.Client // nil: a shared client from NewHTTPClient
}

// Mobizon sends through Mobizon's HTTP API, the way its own client
// libraries do: POST {base}/service/message/sendsmsmessage with api=v1,
// output=json and apiKey in the query, and recipient (E.164 digits without
// "+"), text and from (when set) form-encoded in the body. The answer is
// {"code":N,"data":{...},"message":"..."} with the message id in
// data.messageId.
//
// Codes (Mobizon's documented API response codes):
//
//	0     success
//	100   success: queued for background processing (data names the task)
//	1     validation error (data names the field; with "recipient": invalid
//	      number, errors.Is(err, ErrInvalidPhone))      permanent
//	2, 4, 5, 6, 11, 12  not found, wrong module/method/format, missing or
//	      restricted parameter: the request itself is wrong  permanent
//	3     unidentified application error                retryable
//	8, 9  authentication or method access error (the API key)  retryable
//	10    saving error, concurrent access               retryable
//	13    wrong API domain for this account (SISNOTIFY_SMS_API_URL)  retryable
//	14    account blocked or deleted                    retryable
//	15    operation error (e.g. balance)                retryable
//	30    rate limited                                  retryable
//	98, 99, 999 and unknown codes                       retryable
//
// Authentication and account codes are retryable like HTTP 401/403: the
// message is fine and goes out once the operator fixes the account. HTTP
// 429 and 5xx are retryable whatever the body says.
type Mobizon struct {
	endpoint
	url       string
	statusURL string // getsmsstatus (Statuses)
	from      string
}

// NewMobizon checks cfg and returns the provider.
func NewMobizon(cfg MobizonConfig) (*Mobizon, error) {
	if cfg.APIKey == "" {
		return nil, errors.New("sms: mobizon needs SISNOTIFY_MOBIZON_API_KEY")
	}
	base, err := baseURL(cfg.BaseURL, DefaultMobizonURL)
	if err != nil {
		return nil, err
	}
	q := url.Values{"api": {"v1"}, "output": {"json"}, "apiKey": {cfg.APIKey}}
	return &Mobizon{
		endpoint: endpoint{provider: "mobizon", client: clientOr(cfg.HTTPClient),
			secrets: []string{cfg.APIKey, url.QueryEscape(cfg.APIKey)}},
		url:       base + "/service/message/sendsmsmessage?" + q.Encode(),
		statusURL: base + "/service/message/getsmsstatus?" + q.Encode(),
		from:      cfg.From,
	}, nil
}

// Name is "mobizon".
func (m *Mobizon) Name() string { return "mobizon" }

var mobizonPermanent = map[int]bool{1: true, 2: true, 4: true, 5: true, 6: true, 11: true, 12: true}

// Send posts msg to Mobizon.
func (m *Mobizon) Send(ctx context.Context, msg Message) (Result, bool, error) {
	to, err := checkMessage(m.provider, msg)
	if err != nil {
		return Result{}, false, err
	}
	form := url.Values{"recipient": {strings.TrimPrefix(to, "+")}, "text": {msg.Text}}
	if m.from != "" {
		form.Set("from", m.from)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.url, strings.NewReader(form.Encode()))
	if err != nil {
		return Result{}, false, &Error{Provider: m.provider, Detail: "building the request failed"}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "sisnotify")

	status, body, herr := m.do(ctx, req)
	if herr != nil {
		return Result{}, true, herr
	}
	var ans struct {
		Code    *int            `json:"code"`
		Data    json.RawMessage `json:"data"`
		Message string          `json:"message"`
	}
	if status == http.StatusTooManyRequests || status >= 500 {
		return Result{}, true, &Error{Provider: m.provider, Status: status, Temporary: true, Detail: http.StatusText(status)}
	}
	if err := json.Unmarshal(body, &ans); err != nil || ans.Code == nil {
		e := &Error{Provider: m.provider, Status: status, Detail: "the answer is not Mobizon's JSON"}
		if status >= 200 && status < 300 {
			// We cannot tell whether it was sent; retrying may send twice,
			// giving up may lose it. Nothing lost wins.
			e.Temporary = true
		} else {
			e.Temporary = retryableStatus(status)
		}
		return Result{}, e.Temporary, e
	}
	code := *ans.Code
	if code == 0 || code == 100 {
		res := Result{Reply: "accepted"}
		if code == 100 {
			res.Reply = "queued for background processing"
		}
		res.ProviderID = mobizonID(ans.Data, code)
		return res, false, nil
	}
	e := &Error{Provider: m.provider, Code: strconv.Itoa(code), Detail: m.redact(ans.Message),
		Temporary: !mobizonPermanent[code]}
	if status < 200 || status >= 300 {
		e.Status = status
	}
	if code == 1 && mobizonFieldError(ans.Data, "recipient") {
		e.cause = ErrInvalidPhone
		if e.Detail == "" {
			e.Detail = "invalid recipient"
		}
	}
	return Result{}, e.Temporary, e
}

// mobizonID finds the message id in data: {"messageId": 123} or, for code
// 100, the background task id that data holds.
func mobizonID(data json.RawMessage, code int) string {
	var obj map[string]json.RawMessage
	if json.Unmarshal(data, &obj) == nil {
		if id := scalar(obj["messageId"]); id != "" {
			return id
		}
		return ""
	}
	if code == 100 {
		if id := scalar(data); id != "" {
			return "task:" + id
		}
	}
	return ""
}

// scalar renders a JSON string or number as a string.
func scalar(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// mobizonFieldError reports whether a validation error's data names field.
func mobizonFieldError(data json.RawMessage, field string) bool {
	var obj map[string]json.RawMessage
	if json.Unmarshal(data, &obj) == nil {
		_, ok := obj[field]
		return ok
	}
	var list []json.RawMessage // some answers list {"field": ...} objects
	if json.Unmarshal(data, &list) == nil {
		for _, item := range list {
			if mobizonFieldError(item, field) {
				return true
			}
		}
	}
	return false
}
