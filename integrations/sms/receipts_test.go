package sms

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// twilioSign signs a callback the way Twilio's "Webhooks security" page
// describes it, written here from that description rather than with the
// library the code uses: base64(HMAC-SHA1(token, URL + name1 + value1 +
// name2 + value2 ...)), the parameters sorted by name.
func twilioSign(token, u string, form url.Values) string {
	names := make([]string, 0, len(form))
	for k := range form {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(u)
	for _, k := range names {
		for _, v := range form[k] {
			b.WriteString(k + v)
		}
	}
	mac := hmac.New(sha1.New, []byte(token))
	mac.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func signed(sig string) http.Header {
	h := http.Header{}
	if sig != "" {
		h.Set("X-Twilio-Signature", sig)
	}
	return h
}

// Twilio's documented example (auth token 12345, the voice request to
// https://mycompany.com/myapp.php?foo=1&bar=2) validates: the signature
// check is Twilio's. It is a voice call, not a message status, so it is
// then refused as such.
func TestTwilioCallbacksDocumentedVector(t *testing.T) {
	const docURL = "https://mycompany.com/myapp.php?foo=1&bar=2"
	form := url.Values{"CallSid": {"CA1234567890ABCDE"}, "Caller": {"+12349013030"}, "Digits": {"1234"},
		"From": {"+12349013030"}, "To": {"+18005551212"}}
	const docSig = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
	if got := twilioSign("12345", docURL, form); got != docSig {
		t.Fatalf("the test's own signer gives %s for Twilio's example, want %s", got, docSig)
	}
	c, err := NewTwilioCallbacks("12345", docURL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(signed(docSig), []byte(form.Encode())); !errors.Is(err, ErrTwilioCallback) {
		t.Fatalf("documented example: %v, want a valid signature on something that is not a message status", err)
	}
	form.Set("Digits", "1235")
	if _, err := c.Read(signed(docSig), []byte(form.Encode())); !errors.Is(err, ErrTwilioSignature) {
		t.Fatalf("documented example with a digit changed: %v, want ErrTwilioSignature", err)
	}
}

func TestTwilioCallbacksReadAndRefuse(t *testing.T) {
	const hook = "https://notify.uni.example/hooks/twilio/status"
	c, err := NewTwilioCallbacks(authToken, hook)
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"MessageSid": {"SM0123456789abcdef0123456789abcdef"}, "MessageStatus": {"undelivered"},
		"ErrorCode": {"30003"}, "AccountSid": {accountSID}, "To": {phone}, "From": {"+15005550006"}, "ApiVersion": {"2010-04-01"},
		"SmsSid": {"SM0123456789abcdef0123456789abcdef"}, "SmsStatus": {"undelivered"}}
	sig := twilioSign(authToken, hook, form)
	st, err := c.Read(signed(sig), []byte(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	want := TwilioStatus{MessageSid: "SM0123456789abcdef0123456789abcdef", MessageStatus: "undelivered", ErrorCode: "30003", AccountSid: accountSID}
	if st != want {
		t.Fatalf("read %+v, want %+v", st, want)
	}
	// Twilio signs the URL with and without the default port alike.
	withPort, _ := NewTwilioCallbacks(authToken, "https://notify.uni.example:443/hooks/twilio/status")
	if _, err := withPort.Read(signed(sig), []byte(form.Encode())); err != nil {
		t.Errorf("the same URL with its default port: %v", err)
	}

	changed := url.Values{}
	for k, v := range form {
		changed[k] = v
	}
	changed.Set("MessageStatus", "delivered")
	dup := form.Encode() + "&MessageStatus=delivered"
	otherHost, _ := NewTwilioCallbacks(authToken, "http://127.0.0.1:8080/hooks/twilio/status")
	otherToken, _ := NewTwilioCallbacks(authToken+"x", hook)
	for _, tc := range []struct {
		name string
		c    *TwilioCallbacks
		sig  string
		body string
	}{
		{"a parameter changed", c, sig, changed.Encode()},
		{"a parameter added", c, sig, form.Encode() + "&Extra=1"},
		{"a parameter given twice", c, twilioSign(authToken, hook, form), dup},
		{"the signature changed", c, strings.Replace(sig, sig[:4], "AAAA", 1), form.Encode()},
		{"no signature", c, "", form.Encode()},
		{"signed for another URL (the request's own host)", otherHost, sig, form.Encode()},
		{"signed with another token", otherToken, sig, form.Encode()},
		{"not a form", c, sig, "%zz"},
	} {
		if _, err := tc.c.Read(signed(tc.sig), []byte(tc.body)); !errors.Is(err, ErrTwilioSignature) {
			t.Errorf("%s: %v, want ErrTwilioSignature", tc.name, err)
		}
	}

	// A signed form that is not a message status.
	other := url.Values{"AccountSid": {accountSID}}
	if _, err := c.Read(signed(twilioSign(authToken, hook, other)), []byte(other.Encode())); !errors.Is(err, ErrTwilioCallback) {
		t.Errorf("signed form without MessageSid: %v", err)
	}
	for _, bad := range []string{"", "/hooks/twilio/status", "ftp://x/y", "https://u:p@x/y"} {
		if _, err := NewTwilioCallbacks(authToken, bad); err == nil {
			t.Errorf("NewTwilioCallbacks(%q) accepted", bad)
		}
	}
	if _, err := NewTwilioCallbacks("", hook); err == nil {
		t.Error("NewTwilioCallbacks without a token accepted")
	}
}

func TestMobizonStatusesRequest(t *testing.T) {
	r := newRecorder(t)
	r.answer(200, `{"code":0,"data":[{"id":"123","status":"DELIVRD","segNum":"1","startSendTs":"2026-12-01 13:28:29","statusUpdateTs":"2026-12-01 13:28:35"},`+
		`{"id":556,"status":"UNDELIV","segNum":"2"},{"id":"988","status":"acceptd"}],"message":""}`)
	mz, err := NewMobizon(MobizonConfig{APIKey: mobizonKey, From: "KBTU", BaseURL: r.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	got, err := mz.Statuses(ctx, []string{"123", "556", "988", "1000"})
	if err != nil {
		t.Fatal(err)
	}
	want := []MobizonStatus{{"123", "DELIVRD"}, {"556", "UNDELIV"}, {"988", "ACCEPTD"}}
	if len(got) != len(want) {
		t.Fatalf("statuses = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("status %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if !got[0].Final() || !got[1].Final() || got[2].Final() {
		t.Errorf("Final: %v %v %v", got[0].Final(), got[1].Final(), got[2].Final())
	}
	req := r.req
	if req.Method != http.MethodPost || req.URL.Path != "/service/message/getsmsstatus" {
		t.Errorf("request = %s %s", req.Method, req.URL.Path)
	}
	q := req.URL.Query()
	if q.Get("apiKey") != mobizonKey || q.Get("api") != "v1" || q.Get("output") != "json" || len(q) != 3 {
		t.Errorf("query = %v", q)
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		t.Errorf("Content-Type = %q", ct)
	}
	if body := string(r.raw); body != "ids%5B0%5D=123&ids%5B1%5D=556&ids%5B2%5D=988&ids%5B3%5D=1000" {
		t.Errorf("body = %s", body)
	}

	// More than 100 ids are refused before asking.
	many := make([]string, MobizonMaxIDs+1)
	for i := range many {
		many[i] = strconv.Itoa(i + 1)
	}
	calls := r.calls.Load()
	if _, err := mz.Statuses(ctx, many); err == nil || r.calls.Load() != calls {
		t.Errorf("101 ids: err %v, %d requests", err, r.calls.Load()-calls)
	}
	if st, err := mz.Statuses(ctx, nil); err != nil || st != nil || r.calls.Load() != calls {
		t.Errorf("no ids: %v %v", st, err)
	}

	for _, tc := range []struct {
		name   string
		status int
		body   string
		retry  bool
	}{
		{"server error", 503, ``, true},
		{"not JSON", 200, `<html>`, true},
		{"bad key", 200, `{"code":8,"data":"","message":"Authentication failed"}`, true},
		{"too many ids", 200, `{"code":12,"data":"","message":"too many"}`, false},
		{"data not a list", 200, `{"code":0,"data":{"x":1},"message":""}`, true},
	} {
		r.answer(tc.status, tc.body)
		_, err := mz.Statuses(ctx, []string{"1"})
		var se *Error
		if !errors.As(err, &se) || se.Temporary != tc.retry {
			t.Errorf("%s: %v, want temporary=%v", tc.name, err, tc.retry)
		}
		assertClean(t, err)
	}
}

func TestMobizonMessageID(t *testing.T) {
	for id, ok := range map[string]bool{"43210": true, "task:7001": false, "SM0123": false, "": false, "notice-81": false} {
		if (MobizonMessageID(id) == nil) != ok {
			t.Errorf("MobizonMessageID(%q) ok = %v", id, !ok)
		}
	}
}
