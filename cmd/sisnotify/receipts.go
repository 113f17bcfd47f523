package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/iec-almaty/sisnotify/integrations/sms"
	"github.com/iec-almaty/sisnotify/receipts"
	"github.com/iec-almaty/sisnotify/worker"
)

// receiptPollEvery is how often serve asks Mobizon for its receipts.
const receiptPollEvery = 10 * time.Minute

// twilioCallbackURL is where Twilio is asked to post the receipts of the
// messages sent through it: SISNOTIFY_PUBLIC_URL + /hooks/twilio/status;
// empty (no receipts asked for) unless the provider is Twilio and the
// public URL is set.
func twilioCallbackURL(cfg *Config) string {
	if cfg.PublicURL == "" || !strings.EqualFold(strings.TrimSpace(cfg.SMS.Provider), "twilio") {
		return ""
	}
	return cfg.PublicURL + worker.TwilioStatusPath
}

// newTwilioHook is the handler of /hooks/twilio/status; nil (404) when no
// receipts are asked for (twilioCallbackURL).
func newTwilioHook(a *app, cfg *Config, db *sqlx.DB) (http.Handler, error) {
	u := twilioCallbackURL(cfg)
	if u == "" {
		return nil, nil
	}
	h, err := receipts.NewTwilioHook(receipts.TwilioHookOptions{AuthToken: cfg.SMS.TwilioAuthToken, URL: u, DB: db, Log: a.log})
	if err != nil {
		return nil, &ConfigError{Msg: "SISNOTIFY_PUBLIC_URL: " + err.Error()}
	}
	a.log.Info("twilio receipts on", "path", worker.TwilioStatusPath)
	return h, nil
}

// newReceiptPoller asks Mobizon for its receipts every receiptPollEvery,
// on one replica at a time; nil unless the provider is Mobizon.
func newReceiptPoller(a *app, cfg *Config, db *sqlx.DB, d *delivery) (*worker.ReceiptPoller, error) {
	if !strings.EqualFold(strings.TrimSpace(cfg.SMS.Provider), "mobizon") {
		return nil, nil
	}
	mz, err := sms.NewMobizon(sms.MobizonConfig{APIKey: cfg.SMS.MobizonAPIKey, From: cfg.SMS.MobizonFrom,
		BaseURL: cfg.SMS.APIURL, HTTPClient: cfg.SMS.HTTPClient})
	if err != nil {
		return nil, &ConfigError{Msg: "SISNOTIFY_SMS_PROVIDER: " + err.Error()}
	}
	poll := &receipts.MobizonPoll{DB: db, Mobizon: mz, Log: a.log}
	return &worker.ReceiptPoller{
		Provider: "mobizon", Client: d.queue.Client(), Every: receiptPollEvery, Log: a.log,
		Poll: func(ctx context.Context, now time.Time) error {
			if _, err := poll.Poll(ctx, now); err != nil {
				return fmt.Errorf("mobizon receipts: %w", err)
			}
			return nil
		},
	}, nil
}
