package sms

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
)

// WebhookConfig configures the webhook provider.
type WebhookConfig struct {
	// URL receives the POSTs (SISNOTIFY_SMS_WEBHOOK_URL). A token in its
	// query string or user info stays out of error texts.
	URL        string
	HTTPClient *http.Client // nil: a shared client from NewHTTPClient
}

// Webhook hands messages to an in-house gateway: POST URL with
//
//	{"to":"+77011234567","text":"…","reference":"<notice id>",
//	 "metadata":{"rule":"…","level":2,"student_id":"…"}}
//
// as application/json, and the reference as Idempotency-Key header, so a
// gateway can drop a resent notice. 2xx is success (an "id" in a JSON
// answer becomes the ProviderID); 401, 403, 408, 425, 429, 5xx and network
// errors are retryable; other answers permanent.
type Webhook struct {
	endpoint
	url string
}

// NewWebhook checks cfg and returns the provider.
func NewWebhook(cfg WebhookConfig) (*Webhook, error) {
	if cfg.URL == "" {
		return nil, errors.New("sms: webhook needs SISNOTIFY_SMS_WEBHOOK_URL")
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, errors.New("sms: SISNOTIFY_SMS_WEBHOOK_URL must be an absolute http(s) URL")
	}
	secrets := []string{}
	if u.RawQuery != "" {
		secrets = append(secrets, u.RawQuery)
		for _, vs := range u.Query() {
			secrets = append(secrets, vs...)
		}
	}
	if u.User != nil {
		// The Basic credentials too: a gateway may quote the Authorization header.
		pass, _ := u.User.Password()
		secrets = append(secrets, base64.StdEncoding.EncodeToString([]byte(u.User.Username()+":"+pass)), u.User.String(), u.User.Username())
		if p, ok := u.User.Password(); ok {
			secrets = append(secrets, p)
		}
	}
	return &Webhook{
		endpoint: endpoint{provider: "webhook", client: clientOr(cfg.HTTPClient), secrets: secrets},
		url:      cfg.URL,
	}, nil
}

// Name is "webhook".
func (w *Webhook) Name() string { return "webhook" }

type webhookPayload struct {
	To        string          `json:"to"`
	Text      string          `json:"text"`
	Reference string          `json:"reference"`
	Metadata  webhookMetadata `json:"metadata"`
}

type webhookMetadata struct {
	Rule      string `json:"rule"`
	Level     int    `json:"level"`
	StudentID string `json:"student_id"`
}

// Send posts msg to the webhook.
func (w *Webhook) Send(ctx context.Context, msg Message) (Result, bool, error) {
	to, err := checkMessage(w.provider, msg)
	if err != nil {
		return Result{}, false, err
	}
	body, err := json.Marshal(webhookPayload{
		To: to, Text: msg.Text, Reference: msg.Reference,
		Metadata: webhookMetadata{Rule: msg.Rule, Level: msg.Level, StudentID: msg.StudentID},
	})
	if err != nil {
		return Result{}, false, &Error{Provider: w.provider, Detail: "encoding the request failed", cause: ErrInvalidMessage}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return Result{}, false, &Error{Provider: w.provider, Detail: "building the request failed"}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "sisnotify")
	if msg.Reference != "" {
		req.Header.Set("Idempotency-Key", msg.Reference)
	}

	status, answer, herr := w.do(ctx, req)
	if herr != nil {
		return Result{}, true, herr
	}
	if status >= 200 && status < 300 {
		res := Result{Reply: strconv.Itoa(status) + " " + http.StatusText(status)}
		var ans struct {
			ID json.RawMessage `json:"id"`
		}
		if json.Unmarshal(answer, &ans) == nil {
			res.ProviderID = scalar(ans.ID)
		}
		return res, false, nil
	}
	e := &Error{Provider: w.provider, Status: status, Temporary: retryableStatus(status), Detail: http.StatusText(status)}
	return Result{}, e.Temporary, e
}
