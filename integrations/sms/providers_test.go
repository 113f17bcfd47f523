package sms

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const (
	phone       = "+77012345678"
	authToken   = "tw-auth-token-0123456789abcdef"
	accountSID  = "AC0123456789abcdef0123456789abcdef"
	mobizonKey  = "kz0123456789abcdef0123456789abcdef0123456789"
	hookSecret  = "hook-secret-42xyz"
	studentText = "Aigerim, your migration registration expires on 2025-03-01. Call +7 727 200 00 00"
)

var forbidden = []string{phone, "77012345678", "7012345678", "701 234", "+7 701", authToken, mobizonKey, hookSecret}

func sms() Message {
	return Message{To: phone, Text: studentText, Reference: "notice-81", Rule: "migration-registration", Level: 2, StudentID: "S0042"}
}

// assertClean fails when err's text contains a phone number or a secret.
func assertClean(t *testing.T, err error, extra ...string) {
	t.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	for _, f := range append(forbidden, extra...) {
		if strings.Contains(msg, f) {
			t.Errorf("error %q contains %q", msg, f)
		}
	}
}

// recorder is an httptest server that keeps the last request and answers
// with the status and body it is given.
type recorder struct {
	*httptest.Server
	calls  atomic.Int64
	status int
	body   string
	delay  time.Duration
	req    *http.Request
	form   url.Values
	raw    []byte
}

func newRecorder(t *testing.T) *recorder {
	r := &recorder{status: 200}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.calls.Add(1)
		r.raw, _ = io.ReadAll(req.Body)
		r.req = req
		if ct := req.Header.Get("Content-Type"); strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
			r.form, _ = url.ParseQuery(string(r.raw))
		}
		if r.delay > 0 {
			select {
			case <-time.After(r.delay):
			case <-req.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(r.status)
		_, _ = io.WriteString(w, r.body)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *recorder) answer(status int, body string) { r.status, r.body = status, body }

func send(t *testing.T, s Sender, msg Message) (Result, bool, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.Send(ctx, msg)
}

func TestTwilioRequest(t *testing.T) {
	r := newRecorder(t)
	r.answer(201, `{"sid":"SM0123456789abcdef0123456789abcdef","status":"queued","to":"+77012345678"}`)
	tw, err := NewTwilio(TwilioConfig{AccountSID: accountSID, AuthToken: authToken, From: "+15005550006", BaseURL: r.URL + "/"})
	if err != nil {
		t.Fatal(err)
	}
	msg := sms()
	msg.To = "8 (701) 234-56-78" // normalized before sending
	res, retry, err := send(t, tw, msg)
	if err != nil || retry {
		t.Fatalf("retryable=%v err=%v", retry, err)
	}
	if res.ProviderID != "SM0123456789abcdef0123456789abcdef" || res.Reply != "queued" {
		t.Errorf("result = %+v", res)
	}
	req := r.req
	if req.Method != http.MethodPost || req.URL.Path != "/2010-04-01/Accounts/"+accountSID+"/Messages.json" || req.URL.RawQuery != "" {
		t.Errorf("request = %s %s", req.Method, req.URL)
	}
	if u, p, ok := req.BasicAuth(); !ok || u != accountSID || p != authToken {
		t.Errorf("basic auth = %q %q %v", u, p, ok)
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		t.Errorf("Content-Type = %q", ct)
	}
	want := url.Values{"To": {phone}, "From": {"+15005550006"}, "Body": {studentText}}
	if r.form.Encode() != want.Encode() {
		t.Errorf("form = %v, want %v", r.form, want)
	}

	// A Messaging Service SID goes in MessagingServiceSid.
	mg := "MG0123456789abcdef0123456789abcdef"
	tw2, _ := NewTwilio(TwilioConfig{AccountSID: accountSID, AuthToken: authToken, From: mg, BaseURL: r.URL})
	if _, _, err := send(t, tw2, sms()); err != nil {
		t.Fatal(err)
	}
	if r.form.Get("MessagingServiceSid") != mg || r.form.Has("From") {
		t.Errorf("form = %v", r.form)
	}

	// With a status callback, Twilio is told where to post receipts.
	hook := "https://notify.uni.example/hooks/twilio/status"
	tw3, _ := NewTwilio(TwilioConfig{AccountSID: accountSID, AuthToken: authToken, From: "+15005550006", BaseURL: r.URL, StatusCallback: hook})
	if _, _, err := send(t, tw3, sms()); err != nil {
		t.Fatal(err)
	}
	want.Set("StatusCallback", hook)
	if string(r.raw) != want.Encode() {
		t.Errorf("body = %s, want %s", r.raw, want.Encode())
	}
}

func TestTwilioErrors(t *testing.T) {
	cases := []struct {
		name      string
		status    int
		body      string
		retry     bool
		code      string
		badNumber bool
	}{
		{"rate limited", 429, `{"code":20429,"message":"Too Many Requests","status":429}`, true, "20429", false},
		{"server error", 500, `{"code":20500,"message":"Internal Server Error","status":500}`, true, "20500", false},
		{"bad gateway, no json", 502, `<html>bad gateway</html>`, true, "", false},
		{"unavailable", 503, ``, true, "", false},
		{"invalid to", 400, `{"code":21211,"message":"The 'To' number +77012345678 is not a valid phone number.","more_info":"https://www.twilio.com/docs/errors/21211","status":400}`, false, "21211", true},
		{"not mobile", 400, `{"code":21614,"message":"'To' number 77012345678 is not a valid mobile number","status":400}`, false, "21614", true},
		{"region not enabled", 400, `{"code":21408,"message":"Permission to send an SMS has not been enabled for the region indicated by the 'To' number: +77012345678.","status":400}`, false, "21408", false},
		{"unsubscribed", 400, `{"code":21610,"message":"Attempt to send to unsubscribed recipient","status":400}`, false, "21610", false},
		{"bad credentials", 401, `{"code":20003,"message":"Authenticate","status":401}`, true, "20003", false},
		{"not found", 404, `{"code":20404,"message":"The requested resource was not found","status":404}`, false, "20404", false},
	}
	r := newRecorder(t)
	tw, err := NewTwilio(TwilioConfig{AccountSID: accountSID, AuthToken: authToken, From: "+15005550006", BaseURL: r.URL})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r.answer(tc.status, tc.body)
			_, retry, err := send(t, tw, sms())
			if err == nil || retry != tc.retry {
				t.Fatalf("retryable=%v err=%v, want retryable=%v", retry, err, tc.retry)
			}
			var se *Error
			if !errors.As(err, &se) || se.Status != tc.status || se.Code != tc.code || se.Temporary != tc.retry {
				t.Errorf("err = %#v", err)
			}
			if errors.Is(err, ErrInvalidPhone) != tc.badNumber {
				t.Errorf("errors.Is(ErrInvalidPhone) = %v, want %v", !tc.badNumber, tc.badNumber)
			}
			assertClean(t, err)
		})
	}
}

func TestMobizonRequest(t *testing.T) {
	r := newRecorder(t)
	r.answer(200, `{"code":0,"data":{"campaignId":"8765","messageId":43210,"status":2},"message":""}`)
	mz, err := NewMobizon(MobizonConfig{APIKey: mobizonKey, From: "KBTU", BaseURL: r.URL})
	if err != nil {
		t.Fatal(err)
	}
	res, retry, err := send(t, mz, sms())
	if err != nil || retry {
		t.Fatalf("retryable=%v err=%v", retry, err)
	}
	if res.ProviderID != "43210" {
		t.Errorf("result = %+v", res)
	}
	req := r.req
	if req.Method != http.MethodPost || req.URL.Path != "/service/message/sendsmsmessage" {
		t.Errorf("request = %s %s", req.Method, req.URL.Path)
	}
	q := req.URL.Query()
	if q.Get("apiKey") != mobizonKey || q.Get("api") != "v1" || q.Get("output") != "json" || len(q) != 3 {
		t.Errorf("query = %v", q)
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		t.Errorf("Content-Type = %q", ct)
	}
	want := url.Values{"recipient": {"77012345678"}, "text": {studentText}, "from": {"KBTU"}}
	if r.form.Encode() != want.Encode() {
		t.Errorf("form = %v, want %v", r.form, want)
	}

	// No sender name: no from field. A string id and code 100 also work.
	mz2, _ := NewMobizon(MobizonConfig{APIKey: mobizonKey, BaseURL: r.URL})
	r.answer(200, `{"code":0,"data":{"messageId":"99"},"message":""}`)
	res, _, err = send(t, mz2, sms())
	if err != nil || res.ProviderID != "99" || r.form.Has("from") {
		t.Errorf("res=%+v err=%v form=%v", res, err, r.form)
	}
	r.answer(200, `{"code":100,"data":"7001","message":"Operation queued"}`)
	res, retry, err = send(t, mz2, sms())
	if err != nil || retry || res.ProviderID != "task:7001" {
		t.Errorf("code 100: res=%+v retryable=%v err=%v", res, retry, err)
	}
}

func TestMobizonErrors(t *testing.T) {
	cases := []struct {
		name      string
		status    int
		body      string
		retry     bool
		code      string
		badNumber bool
	}{
		{"invalid recipient", 200, `{"code":1,"data":{"recipient":"Номер 77012345678 указан неверно"},"message":"Ошибка валидации: +77012345678"}`, false, "1", true},
		{"invalid text", 200, `{"code":1,"data":{"text":"too long"},"message":"Validation error"}`, false, "1", false},
		{"restricted parameter", 200, `{"code":12,"data":[],"message":"Parameter restrictions"}`, false, "12", false},
		{"missing parameter", 200, `{"code":11,"data":[],"message":"Required parameter missing"}`, false, "11", false},
		{"unidentified error", 200, `{"code":3,"data":[],"message":"Unknown error"}`, true, "3", false},
		{"bad api key", 200, `{"code":8,"data":[],"message":"Login failed for key ` + mobizonKey + `"}`, true, "8", false},
		{"wrong domain", 200, `{"code":13,"data":{"server":"api.mobizon.uz"},"message":"Wrong API domain"}`, true, "13", false},
		{"rate limited", 200, `{"code":30,"data":[],"message":"Too many requests"}`, true, "30", false},
		{"general error", 200, `{"code":999,"data":[],"message":"Service error"}`, true, "999", false},
		{"http 500", 500, `{"code":999}`, true, "", false},
		{"http 503 html", 503, `<html>down</html>`, true, "", false},
		{"http 429", 429, ``, true, "", false},
		{"not json", 200, `<html>captive portal</html>`, true, "", false},
		{"http 404", 404, `not found`, false, "", false},
	}
	r := newRecorder(t)
	mz, err := NewMobizon(MobizonConfig{APIKey: mobizonKey, BaseURL: r.URL})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r.answer(tc.status, tc.body)
			_, retry, err := send(t, mz, sms())
			if err == nil || retry != tc.retry {
				t.Fatalf("retryable=%v err=%v, want retryable=%v", retry, err, tc.retry)
			}
			var se *Error
			if !errors.As(err, &se) || se.Code != tc.code || se.Temporary != tc.retry {
				t.Errorf("err = %#v", err)
			}
			if errors.Is(err, ErrInvalidPhone) != tc.badNumber {
				t.Errorf("errors.Is(ErrInvalidPhone) = %v, want %v", !tc.badNumber, tc.badNumber)
			}
			assertClean(t, err)
		})
	}
}

func TestWebhookRequest(t *testing.T) {
	r := newRecorder(t)
	r.answer(202, `{"id":"gw-1234"}`)
	w, err := NewWebhook(WebhookConfig{URL: r.URL + "/sms?token=" + hookSecret})
	if err != nil {
		t.Fatal(err)
	}
	res, retry, err := send(t, w, sms())
	if err != nil || retry {
		t.Fatalf("retryable=%v err=%v", retry, err)
	}
	if res.ProviderID != "gw-1234" || res.Reply != "202 Accepted" {
		t.Errorf("result = %+v", res)
	}
	req := r.req
	if req.Method != http.MethodPost || req.URL.Path != "/sms" || req.URL.Query().Get("token") != hookSecret {
		t.Errorf("request = %s %s", req.Method, req.URL)
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if k := req.Header.Get("Idempotency-Key"); k != "notice-81" {
		t.Errorf("Idempotency-Key = %q", k)
	}
	var got map[string]any
	if err := json.Unmarshal(r.raw, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"to": phone, "text": studentText, "reference": "notice-81",
		"metadata": map[string]any{"rule": "migration-registration", "level": float64(2), "student_id": "S0042"},
	}
	if gb, _ := json.Marshal(got); string(gb) != mustJSON(want) {
		t.Errorf("body = %s, want %s", gb, mustJSON(want))
	}

	r.answer(200, ``) // no JSON answer is fine
	if res, _, err := send(t, w, sms()); err != nil || res.ProviderID != "" {
		t.Errorf("res=%+v err=%v", res, err)
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestWebhookErrors(t *testing.T) {
	r := newRecorder(t)
	w, err := NewWebhook(WebhookConfig{URL: r.URL + "/sms?token=" + hookSecret})
	if err != nil {
		t.Fatal(err)
	}
	for status, retry := range map[int]bool{429: true, 500: true, 502: true, 503: true, 408: true, 401: true, 403: true,
		400: false, 404: false, 409: false, 422: false, 301: false} {
		r.answer(status, `{"error":"number +77012345678 rejected"}`)
		_, gotRetry, err := send(t, w, sms())
		if err == nil || gotRetry != retry {
			t.Errorf("HTTP %d: retryable=%v err=%v, want retryable=%v", status, gotRetry, err, retry)
		}
		var se *Error
		if !errors.As(err, &se) || se.Status != status {
			t.Errorf("HTTP %d: err = %#v", status, err)
		}
		assertClean(t, err)
	}
}

func TestNetworkErrorsAreRetryableAndClean(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	base := dead.URL
	dead.Close() // connection refused from now on

	tw, _ := NewTwilio(TwilioConfig{AccountSID: accountSID, AuthToken: authToken, From: "+15005550006", BaseURL: base})
	mz, _ := NewMobizon(MobizonConfig{APIKey: mobizonKey, BaseURL: base})
	wh, _ := NewWebhook(WebhookConfig{URL: strings.Replace(base, "http://", "http://user:"+hookSecret+"@", 1) + "/x?token=" + hookSecret})
	for _, s := range []Sender{tw, mz, wh} {
		_, retry, err := send(t, s, sms())
		if err == nil || !retry {
			t.Errorf("%s: retryable=%v err=%v", s.Name(), retry, err)
		}
		assertClean(t, err, "apiKey", "token=", accountSID)
	}
}

func TestContextBoundsRequests(t *testing.T) {
	r := newRecorder(t)
	r.delay = 5 * time.Second
	mz, _ := NewMobizon(MobizonConfig{APIKey: mobizonKey, BaseURL: r.URL})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, retry, err := mz.Send(ctx, sms())
	if time.Since(start) > 3*time.Second {
		t.Errorf("Send took %v", time.Since(start))
	}
	if !retry || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("retryable=%v err=%v", retry, err)
	}
	assertClean(t, err)
}

func TestInvalidMessagesNeverLeave(t *testing.T) {
	r := newRecorder(t)
	tw, _ := NewTwilio(TwilioConfig{AccountSID: accountSID, AuthToken: authToken, From: "+15005550006", BaseURL: r.URL})
	mz, _ := NewMobizon(MobizonConfig{APIKey: mobizonKey, BaseURL: r.URL})
	wh, _ := NewWebhook(WebhookConfig{URL: r.URL})
	ob := NewOutbox(t.TempDir())
	for _, s := range []Sender{tw, mz, wh, ob} {
		for _, to := range []string{"", "12345", "+7 727 250 0000", "+7 701 234 567"} {
			m := sms()
			m.To = to
			_, retry, err := send(t, s, m)
			if err == nil || retry || !errors.Is(err, ErrInvalidPhone) {
				t.Errorf("%s %q: retryable=%v err=%v", s.Name(), to, retry, err)
			}
			assertClean(t, err, "727 250", "7272500000")
		}
		m := sms()
		m.Text = "  "
		if _, retry, err := send(t, s, m); err == nil || retry || !errors.Is(err, ErrInvalidMessage) {
			t.Errorf("%s empty text: retryable=%v err=%v", s.Name(), retry, err)
		}
	}
	if n := r.calls.Load(); n != 0 {
		t.Errorf("%d requests made for invalid messages", n)
	}
}
