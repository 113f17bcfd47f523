package receipts_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/iec-almaty/sisnotify/receipts"
	"github.com/iec-almaty/sisnotify/store"
)

const (
	token = "tw-auth-token-0123456789abcdef"
	// hookURL is the public URL Twilio calls; the test server listens
	// elsewhere (127.0.0.1), as serve does behind a reverse proxy.
	hookURL = "https://notify.uni.example/hooks/twilio/status"
)

// post sends a callback with form, signed with sig ("" for none), and
// returns the status code.
func post(t *testing.T, srv *httptest.Server, form map[string]string, sig string) int {
	t.Helper()
	v := url.Values{}
	for k, x := range form {
		v.Set(k, x)
	}
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/hooks/twilio/status", strings.NewReader(v.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if sig != "" {
		req.Header.Set("X-Twilio-Signature", sig)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func callback(sid, status, code string) map[string]string {
	f := map[string]string{"MessageSid": sid, "SmsSid": sid, "MessageStatus": status, "SmsStatus": status,
		"AccountSid": "AC0123456789abcdef0123456789abcdef", "From": "+15005550006", "To": "+77010000000", "ApiVersion": "2010-04-01"}
	if code != "" {
		f["ErrorCode"] = code
	}
	return f
}

// Signed callbacks are recorded: delivered and undelivered turn their
// notices delivered and bounced (the phone unreachable), an intermediate
// status is recorded only, an unknown message is recorded as ignored, and
// a callback Twilio repeats is recorded once.
func TestTwilioHookRecordsSignedCallbacks(t *testing.T) {
	db := newDB(t)
	ctx := context.Background()
	st := store.New(db)
	ns := sent(t, db, at, "SMdelivered0000000000000000000001", "SMundelivered00000000000000000002", "SMqueued000000000000000000000003")
	hook, err := receipts.NewTwilioHook(receipts.TwilioHookOptions{AuthToken: token, URL: hookURL, DB: db,
		Now: func() time.Time { return at.Add(time.Minute) }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(hook)
	t.Cleanup(srv.Close)

	send := func(f map[string]string) int { return post(t, srv, f, twilioSign(token, hookURL, f)) }
	for _, f := range []map[string]string{
		callback("SMdelivered0000000000000000000001", "sent", ""),
		callback("SMdelivered0000000000000000000001", "delivered", ""),
		callback("SMundelivered00000000000000000002", "undelivered", "30003"),
		callback("SMqueued000000000000000000000003", "queued", ""),
		callback("SMunknown0000000000000000000000099", "delivered", ""),
	} {
		if code := send(f); code != http.StatusNoContent {
			t.Fatalf("%s %s: %d, want 204", f["MessageSid"], f["MessageStatus"], code)
		}
	}
	if s := statusOf(t, db, ns[0].ID); s != "delivered" {
		t.Errorf("delivered SMS: notice %s", s)
	}
	if s := statusOf(t, db, ns[1].ID); s != "bounced" {
		t.Errorf("undelivered SMS: notice %s", s)
	}
	if s := statusOf(t, db, ns[2].ID); s != "sent" {
		t.Errorf("queued SMS: notice %s", s)
	}
	var lastError string
	if err := db.Get(&lastError, `SELECT last_error FROM sisnotify.notices WHERE notice_id = $1`, ns[1].ID); err != nil ||
		lastError != "30003 undelivered: unreachable destination handset" {
		t.Errorf("bounced notice's last error %q, %v", lastError, err)
	}
	u, err := st.UnreachableContacts(ctx, ns[1].Student)
	if err != nil || len(u) != 1 || u[0].Channel != "sms" || u[0].Contact != ns[1].Recipient || u[0].NoticeID != ns[1].ID {
		t.Fatalf("unreachable contacts of %s = %+v, %v; want its phone", ns[1].Student, u, err)
	}
	if u, _ := st.UnreachableContacts(ctx, ns[0].Student); len(u) != 0 && ns[0].Student != ns[1].Student {
		t.Errorf("the delivered student is unreachable: %+v", u)
	}

	events, err := st.DeliveryEvents(ctx, store.SourceTwilio, 10)
	if err != nil || len(events) != 5 {
		t.Fatalf("events = %+v, %v; want 5", events, err)
	}
	want := map[string]string{
		"SMdelivered0000000000000000000001/sent":        store.OutcomeSent,
		"SMdelivered0000000000000000000001/delivered":   store.OutcomeDelivered,
		"SMundelivered00000000000000000002/undelivered": store.OutcomeBounced,
		"SMqueued000000000000000000000003/queued":       store.OutcomeSent,
		"SMunknown0000000000000000000000099/delivered":  store.OutcomeIgnored,
	}
	for _, e := range events {
		if want[e.ExternalID] != e.Outcome {
			t.Errorf("event %s: outcome %s, want %s", e.ExternalID, e.Outcome, want[e.ExternalID])
		}
		if e.ExternalID == "SMunknown0000000000000000000000099/delivered" && (e.Reason != "unknown-notice" || e.NoticeID != 0) {
			t.Errorf("unknown message's event: %+v", e)
		}
		if e.ExternalID == "SMundelivered00000000000000000002/undelivered" && e.Reason != "30003" {
			t.Errorf("undelivered event's reason %q, want the error code", e.Reason)
		}
	}

	// Twilio repeats a callback: answered 204, recorded once.
	before := eventCount(t, db)
	if code := send(callback("SMundelivered00000000000000000002", "undelivered", "30003")); code != http.StatusNoContent {
		t.Fatalf("replayed callback: %d", code)
	}
	if n := eventCount(t, db); n != before {
		t.Errorf("a replayed callback added %d events", n-before)
	}
}

// Callbacks without a valid signature are refused with 403 and record
// nothing; the hook refuses other methods and oversized bodies.
func TestTwilioHookRefusesTamperedCallbacks(t *testing.T) {
	db := newDB(t)
	ns := sent(t, db, at, "SMtampered000000000000000000000001")
	hook, err := receipts.NewTwilioHook(receipts.TwilioHookOptions{AuthToken: token, URL: hookURL, DB: db})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(hook)
	t.Cleanup(srv.Close)

	good := callback("SMtampered000000000000000000000001", "undelivered", "30003")
	sig := twilioSign(token, hookURL, good)
	changed := callback("SMtampered000000000000000000000001", "undelivered", "30005")
	otherSid := callback("SMtampered000000000000000000000001", "delivered", "")
	badSig := []byte(sig)
	badSig[0] ^= 1
	for _, tc := range []struct {
		name string
		form map[string]string
		sig  string
	}{
		{"a parameter changed", changed, sig},
		{"the status changed", otherSid, sig},
		{"the signature changed", good, string(badSig)},
		{"no signature", good, ""},
		{"signed for the address the request reached", good, twilioSign(token, srv.URL+"/hooks/twilio/status", good)},
		{"signed with another token", good, twilioSign(token+"x", hookURL, good)},
	} {
		if code := post(t, srv, tc.form, tc.sig); code != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", tc.name, code)
		}
	}
	if n := eventCount(t, db); n != 0 {
		t.Fatalf("refused callbacks recorded %d events", n)
	}
	if s := statusOf(t, db, ns[0].ID); s != "sent" {
		t.Fatalf("refused callbacks changed the notice to %s", s)
	}

	// The genuine one still works after them.
	if code := post(t, srv, good, sig); code != http.StatusNoContent || statusOf(t, db, ns[0].ID) != "bounced" {
		t.Fatalf("the genuine callback: %d, notice %s", code, statusOf(t, db, ns[0].ID))
	}

	resp, err := srv.Client().Get(srv.URL + "/hooks/twilio/status")
	if err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %v %v", resp, err)
	}
	big := callback("SMtampered000000000000000000000001", "delivered", "")
	big["Body"] = strings.Repeat("x", receipts.MaxTwilioBody)
	if code := post(t, srv, big, twilioSign(token, hookURL, big)); code != http.StatusRequestEntityTooLarge {
		t.Errorf("an oversized body: %d, want 413", code)
	}
	signedOther := map[string]string{"AccountSid": "AC0123456789abcdef0123456789abcdef"}
	if code := post(t, srv, signedOther, twilioSign(token, hookURL, signedOther)); code != http.StatusBadRequest {
		t.Errorf("a signed form that is not a message status: %d, want 400", code)
	}
	if n := eventCount(t, db); n != 1 {
		t.Errorf("%d events, want the genuine one only", n)
	}
}
