// Package receipts reads what the SMS providers say of the messages
// sisnotify sent them, and records it (store.RecordDeliveryEvent): a
// delivered SMS turns its notice delivered; an undelivered, failed,
// rejected or expired one turns it bounced and its phone number
// unreachable for the student; intermediate statuses are recorded only.
//
// Twilio posts its receipts to /hooks/twilio/status (TwilioHook), signed
// with the account's auth token; Mobizon is asked for the statuses of the
// messages of the last 48 hours (MobizonPoll), which serve does every few
// minutes, on one replica at a time.
package receipts

import (
	"github.com/iec-almaty/sisnotify/store"
)

// maxDetail bounds the detail recorded with an event.
const maxDetail = 200

// outcome is what a provider's status means for a notice.
type outcome struct {
	Outcome string // a store.Outcome* constant
	Reason  string
	Detail  string
}

// twilioOutcome maps a Twilio MessageStatus (and its ErrorCode) to an
// outcome.
func twilioOutcome(status, errorCode string, errorText string) outcome {
	switch status {
	case "delivered", "read":
		return outcome{Outcome: store.OutcomeDelivered, Reason: status}
	case "undelivered", "failed":
		o := outcome{Outcome: store.OutcomeBounced, Reason: errorCode, Detail: status}
		if o.Reason == "" {
			o.Reason = status
		}
		if errorText != "" {
			o.Detail = status + ": " + errorText
		}
		return o
	case "queued", "sending", "sent", "accepted", "scheduled", "partially_delivered":
		return outcome{Outcome: store.OutcomeSent, Reason: status}
	}
	return outcome{Outcome: store.OutcomeIgnored, Reason: "unknown-status", Detail: short(status, 40)}
}

// mobizonOutcome maps a Mobizon message status to an outcome.
func mobizonOutcome(status string) outcome {
	switch status {
	case "DELIVRD":
		return outcome{Outcome: store.OutcomeDelivered, Reason: status}
	case "UNDELIV":
		return outcome{Outcome: store.OutcomeBounced, Reason: status, Detail: "not delivered to the recipient"}
	case "REJECTD":
		return outcome{Outcome: store.OutcomeBounced, Reason: status, Detail: "rejected by the operator (wrong number, blocked sender or text)"}
	case "EXPIRED":
		return outcome{Outcome: store.OutcomeBounced, Reason: status, Detail: "not delivered within its lifetime (phone off or out of coverage)"}
	case "DELETED":
		return outcome{Outcome: store.OutcomeBounced, Reason: status, Detail: "deleted by the operator, not delivered"}
	case "NEW", "ENQUEUD", "ACCEPTD", "PDLIVRD":
		return outcome{Outcome: store.OutcomeSent, Reason: status}
	}
	return outcome{Outcome: store.OutcomeIgnored, Reason: "unknown-status", Detail: short(status, 40)}
}

// short cuts s to n bytes and keeps it printable.
func short(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c >= 0x7f {
			b[i] = '?'
		}
	}
	return string(b)
}
