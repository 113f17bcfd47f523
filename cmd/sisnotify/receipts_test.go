package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/iec-almaty/sisnotify/integrations/sis"
	"github.com/iec-almaty/sisnotify/integrations/testenv"
	"github.com/iec-almaty/sisnotify/store"
	"github.com/iec-almaty/sisnotify/worker"
)

// serve with Twilio and a public URL sends each SMS with the status
// callback at its /hooks/twilio/status, and records the receipts Twilio
// posts there: delivered and undelivered turn the notices delivered and
// bounced (the phone unreachable); a tampered or unsigned callback is
// refused with 403, and a repeated one recorded once.
func TestServeRecordsTwilioReceipts(t *testing.T) {
	testenv.Long(t, "starts a serve process that runs a night")
	const (
		spec      = "0 6 * * *"
		account   = "AC0123456789abcdef0123456789abcdef"
		authToken = "tw-auth-token-0123456789abcdef"
		public    = "https://notify.uni.example"
	)
	// A local Twilio: each message is answered with a new sid.
	var mu sync.Mutex
	var forms []url.Values
	tw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, _ := r.BasicAuth()
		if r.Method != http.MethodPost || r.URL.Path != "/2010-04-01/Accounts/"+account+"/Messages.json" || u != account || p != authToken {
			http.Error(w, `{"code":20003,"message":"Authenticate","status":401}`, http.StatusUnauthorized)
			return
		}
		raw, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(raw))
		mu.Lock()
		forms = append(forms, form)
		sid := fmt.Sprintf("SM%032d", len(forms))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"sid":%q,"status":"queued"}`, sid)
	}))
	t.Cleanup(tw.Close)

	e := newServeEnv(t, spec)
	night := today(t, spec)
	s := testenv.Database{URL: e.sisURL}.Open(t)
	if _, err := s.Exec(sis.ReferenceSchema); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Exec(`INSERT INTO sis.faculties VALUES ('ENG', 'Engineering', 'Dean', 'dean@uni.example', 'en')`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Exec(`INSERT INTO sis.students (student_id, given_name, family_name, email, phone, preferred_language, visa_regime, faculty_id, enrollment_status, entered_on)
		SELECT 'K' || i, 'Given' || i, 'Family' || i, 'student' || i || '@student.example', '+7701000000' || i, 'en', 'visa', 'ENG', 'active', $1::date
		FROM generate_series(1, 2) AS i`, night.String()); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	e.env = append(e.env, "SISNOTIFY_HTTP_ADDR="+addr, "SISNOTIFY_PUBLIC_URL="+public,
		"SISNOTIFY_SMS_PROVIDER=twilio", "SISNOTIFY_TWILIO_ACCOUNT_SID="+account, "SISNOTIFY_TWILIO_AUTH_TOKEN="+authToken,
		"SISNOTIFY_TWILIO_FROM=+15005550006", "SISNOTIFY_SMS_API_URL="+tw.URL)
	cmd := e.start(t)
	db := testenv.Database{URL: e.dbURL}.Open(t)

	// The night sends each student an SMS per obligation, through Twilio,
	// with the callback.
	var sent []struct {
		ID       int64  `db:"notice_id"`
		Student  string `db:"student_id"`
		Phone    string `db:"recipient"`
		Provider string `db:"provider_id"`
	}
	waitFor(t, "the night's SMS sent", 90*time.Second, func() bool {
		sent = sent[:0]
		_ = db.Select(&sent, `SELECT notice_id, student_id, recipient, provider_id FROM sisnotify.notices
			WHERE channel = 'sms' AND status = 'sent' ORDER BY notice_id`)
		var pending int
		_ = db.Get(&pending, `SELECT count(*) FROM sisnotify.notices WHERE channel = 'sms' AND status IN ('pending', 'sending')`)
		return len(sent) >= 2 && pending == 0
	})
	mu.Lock()
	for _, f := range forms {
		if f.Get("StatusCallback") != public+worker.TwilioStatusPath {
			t.Errorf("message sent with StatusCallback %q, want %q", f.Get("StatusCallback"), public+worker.TwilioStatusPath)
		}
	}
	mu.Unlock()

	post := func(form url.Values, sig string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+worker.TwilioStatusPath, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if sig != "" {
			req.Header.Set("X-Twilio-Signature", sig)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	cb := func(sid, status, code string) url.Values {
		v := url.Values{"MessageSid": {sid}, "SmsSid": {sid}, "MessageStatus": {status}, "SmsStatus": {status},
			"AccountSid": {account}, "From": {"+15005550006"}, "ApiVersion": {"2010-04-01"}}
		if code != "" {
			v.Set("ErrorCode", code)
		}
		return v
	}
	delivered, undelivered := sent[0], sent[len(sent)-1]
	if delivered.Student == undelivered.Student {
		for _, n := range sent {
			if n.Student != delivered.Student {
				undelivered = n
			}
		}
	}
	good := cb(undelivered.Provider, "undelivered", "30003")
	tampered := cb(undelivered.Provider, "undelivered", "30003")
	tampered.Set("MessageStatus", "delivered")
	if code := post(tampered, twilioTestSign(authToken, public+worker.TwilioStatusPath, good)); code != http.StatusForbidden {
		t.Fatalf("a tampered callback: %d, want 403", code)
	}
	if code := post(good, ""); code != http.StatusForbidden {
		t.Fatalf("an unsigned callback: %d, want 403", code)
	}
	for _, f := range []url.Values{cb(delivered.Provider, "delivered", ""), good, good} {
		if code := post(f, twilioTestSign(authToken, public+worker.TwilioStatusPath, f)); code != http.StatusNoContent {
			t.Fatalf("a signed callback: %d, want 204", code)
		}
	}
	status := func(id int64) string {
		var s string
		_ = db.Get(&s, `SELECT status FROM sisnotify.notices WHERE notice_id = $1`, id)
		return s
	}
	if status(delivered.ID) != "delivered" || status(undelivered.ID) != "bounced" {
		t.Fatalf("notices %s and %s after the receipts, want delivered and bounced", status(delivered.ID), status(undelivered.ID))
	}
	var events int
	if err := db.Get(&events, `SELECT count(*) FROM sisnotify.delivery_events WHERE source = 'twilio'`); err != nil || events != 2 {
		t.Fatalf("%d events (%v), want 2: the tampered ones not, the repeated one once", events, err)
	}
	u, err := store.New(db).UnreachableContacts(context.Background(), undelivered.Student)
	if err != nil || len(u) != 1 || u[0].Channel != "sms" || u[0].Contact != undelivered.Phone {
		t.Fatalf("unreachable contacts of %s = %+v, %v", undelivered.Student, u, err)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("serve exited with %v after SIGTERM, want 0", err)
	}
}

// twilioTestSign signs as Twilio documents it: base64(HMAC-SHA1(token,
// URL + each parameter sorted by name, as name + value)).
func twilioTestSign(token, u string, form url.Values) string {
	names := make([]string, 0, len(form))
	for k := range form {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(u)
	for _, k := range names {
		b.WriteString(k + form.Get(k))
	}
	mac := hmac.New(sha1.New, []byte(token))
	mac.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
