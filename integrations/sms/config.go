package sms

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
)

// Config selects and configures the SMS provider; its fields mirror the
// SISNOTIFY_* environment variables, which cmd/sisnotify reads and checks.
type Config struct {
	// Provider is twilio, mobizon, webhook, outbox or none
	// (SISNOTIFY_SMS_PROVIDER); empty means outbox.
	Provider string
	// APIURL overrides the chosen provider's base URL
	// (SISNOTIFY_SMS_API_URL): tests, proxies, Mobizon's other domains.
	APIURL string

	TwilioAccountSID, TwilioAuthToken, TwilioFrom string
	// TwilioStatusCallback is where Twilio posts delivery receipts
	// (TwilioConfig.StatusCallback); empty: none asked for.
	TwilioStatusCallback       string
	MobizonAPIKey, MobizonFrom string
	WebhookURL                 string
	// OutboxDir is the outbox folder (SISNOTIFY_OUTBOX_DIR).
	OutboxDir string

	// HTTPClient is shared by the HTTP providers; nil means one from
	// NewHTTPClient.
	HTTPClient *http.Client
}

// String names the provider and what is set, never a secret.
func (c Config) String() string {
	set := func(s string) string {
		if s == "" {
			return "unset"
		}
		return "set"
	}
	switch c.provider() {
	case "twilio":
		return fmt.Sprintf("sms provider=twilio account=%s token=%s from=%s api=%s",
			set(c.TwilioAccountSID), set(c.TwilioAuthToken), set(c.TwilioFrom), orDefault(c.APIURL, DefaultTwilioURL))
	case "mobizon":
		return fmt.Sprintf("sms provider=mobizon key=%s from=%q api=%s", set(c.MobizonAPIKey), c.MobizonFrom,
			orDefault(c.APIURL, DefaultMobizonURL))
	case "webhook":
		return "sms provider=webhook url=" + set(c.WebhookURL)
	case "outbox":
		return "sms provider=outbox dir=" + orDefault(c.OutboxDir, DefaultOutboxDir)
	}
	return "sms provider=" + c.provider()
}

// GoString is String, so that %#v prints no secret either.
func (c Config) GoString() string { return c.String() }

// LogValue keeps secrets out of slog output.
func (c Config) LogValue() slog.Value { return slog.StringValue(c.String()) }

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (c Config) provider() string {
	p := strings.ToLower(strings.TrimSpace(c.Provider))
	if p == "" {
		return "outbox"
	}
	return p
}

// New returns the sender cfg selects.
func New(cfg Config) (Sender, error) {
	switch p := cfg.provider(); p {
	case "twilio":
		return NewTwilio(TwilioConfig{AccountSID: cfg.TwilioAccountSID, AuthToken: cfg.TwilioAuthToken,
			From: cfg.TwilioFrom, BaseURL: cfg.APIURL, StatusCallback: cfg.TwilioStatusCallback, HTTPClient: cfg.HTTPClient})
	case "mobizon":
		return NewMobizon(MobizonConfig{APIKey: cfg.MobizonAPIKey, From: cfg.MobizonFrom,
			BaseURL: cfg.APIURL, HTTPClient: cfg.HTTPClient})
	case "webhook":
		return NewWebhook(WebhookConfig{URL: cfg.WebhookURL, HTTPClient: cfg.HTTPClient})
	case "outbox":
		return NewOutbox(cfg.OutboxDir), nil
	case "none":
		return Disabled{}, nil
	default:
		return nil, fmt.Errorf("sms: SISNOTIFY_SMS_PROVIDER %q is not one of twilio, mobizon, webhook, outbox, none", p)
	}
}
