package receipts

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/iec-almaty/sisnotify/integrations/sms"
	"github.com/iec-almaty/sisnotify/store"
)

// Limits of the Twilio hook, which faces the internet.
const (
	// MaxTwilioBody bounds a callback's body; Twilio's are under 1 KiB.
	MaxTwilioBody = 16 << 10
	// maxInFlight bounds the callbacks handled at once; more are answered
	// 503 at once (a flood without the token costs a hash each, no more).
	maxInFlight = 32
	// hookTimeout bounds the database work of one callback.
	hookTimeout = 10 * time.Second
)

// TwilioHookOptions configure a TwilioHook.
type TwilioHookOptions struct {
	// AuthToken is the Twilio account's (SISNOTIFY_TWILIO_AUTH_TOKEN).
	AuthToken string
	// URL is the URL Twilio posts to: SISNOTIFY_PUBLIC_URL +
	// /hooks/twilio/status, as the messages' StatusCallback names it.
	// Signatures are checked against it, not against the request's own
	// host and scheme (a reverse proxy changes those).
	URL string
	DB  *sqlx.DB
	// Now is the clock events are recorded with; nil: time.Now.
	Now func() time.Time
	Log *slog.Logger
}

// TwilioHook is Twilio's status callback endpoint, an http.Handler for
// POST /hooks/twilio/status:
//
//	204  recorded, or read before (Twilio repeats callbacks), or about a
//	     message sisnotify does not know (recorded as ignored)
//	400  signed by Twilio but not a message status
//	403  no valid X-Twilio-Signature: nothing is recorded
//	405  not a POST
//	413  a body over MaxTwilioBody
//	503  too many callbacks at once, or the database did not answer
//
// The event's external id is MessageSid/MessageStatus, so each status of
// each message is recorded once.
type TwilioHook struct {
	callbacks *sms.TwilioCallbacks
	store     *store.Store
	now       func() time.Time
	log       *slog.Logger
	slots     chan struct{}
}

// NewTwilioHook checks o and returns the hook.
func NewTwilioHook(o TwilioHookOptions) (*TwilioHook, error) {
	if o.DB == nil {
		return nil, errors.New("receipts: the Twilio hook needs the database")
	}
	c, err := sms.NewTwilioCallbacks(o.AuthToken, o.URL)
	if err != nil {
		return nil, err
	}
	h := &TwilioHook{callbacks: c, store: store.New(o.DB), now: o.Now, log: o.Log, slots: make(chan struct{}, maxInFlight)}
	if h.now == nil {
		h.now = time.Now
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.log = h.log.With("component", "twilio-hook")
	return h, nil
}

func (h *TwilioHook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
	default:
		w.Header().Set("Retry-After", "5")
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxTwilioBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "cannot read the body", http.StatusBadRequest)
		return
	}
	st, err := h.callbacks.Read(r.Header, body)
	switch {
	case errors.Is(err, sms.ErrTwilioSignature):
		h.log.WarnContext(r.Context(), "twilio callback refused", "reason", err.Error())
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	case err != nil:
		h.log.WarnContext(r.Context(), "twilio callback not understood", "err", err)
		http.Error(w, "not a message status callback", http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), hookTimeout)
	defer cancel()
	if err := h.record(ctx, st); err != nil {
		h.log.ErrorContext(ctx, "twilio callback not recorded", "err", err)
		w.Header().Set("Retry-After", "60")
		http.Error(w, "not recorded", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// record records what st says of its notice.
func (h *TwilioHook) record(ctx context.Context, st sms.TwilioStatus) error {
	status := short(st.MessageStatus, 32)
	o := twilioOutcome(status, short(st.ErrorCode, 10), sms.TwilioErrorText(st.ErrorCode))
	n, found, err := h.store.NoticeBySMSProviderID(ctx, st.MessageSid)
	if err != nil {
		return err
	}
	e := store.DeliveryEvent{Source: store.SourceTwilio, ExternalID: short(st.MessageSid, 64) + "/" + status,
		Outcome: o.Outcome, Reason: o.Reason, Detail: short(o.Detail, maxDetail), At: h.now()}
	if found {
		e.NoticeID = n.ID
	} else {
		e.Outcome, e.Reason, e.Detail = store.OutcomeIgnored, "unknown-notice", status
	}
	recorded, err := h.store.RecordDeliveryEvent(ctx, e)
	if err != nil {
		return err
	}
	h.log.InfoContext(ctx, "twilio receipt", "notice_id", e.NoticeID, "status", status,
		"outcome", e.Outcome, "reason", e.Reason, "recorded", recorded)
	return nil
}
