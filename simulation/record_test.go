package simulation

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// smsStub is the SMS gateway of the simulation (sisnotify's webhook
// provider): it keeps every message it accepts, by the notice id the
// worker gives as its reference, and answers 429 or 500 when told to.
// With the SMTP server's messages it is the record of what was sent that
// the invariants trust, not the worker's own tables.
type smsStub struct {
	srv *httptest.Server

	mu   sync.Mutex
	msgs []smsMsg
	fail int // answers still to fail
	code int // with this status
}

type smsMsg struct {
	Reference string
	Student   string
	Rule      string
	Level     int
	At        time.Time
}

func newSMSStub(t testing.TB) *smsStub {
	s := &smsStub{}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *smsStub) URL() string { return s.srv.URL + "/sms" }

func (s *smsStub) serve(w http.ResponseWriter, r *http.Request) {
	var body struct {
		To        string `json:"to"`
		Text      string `json:"text"`
		Reference string `json:"reference"`
		Metadata  struct {
			Rule      string `json:"rule"`
			Level     int    `json:"level"`
			StudentID string `json:"student_id"`
		} `json:"metadata"`
	}
	if r.Method != http.MethodPost || r.URL.Path != "/sms" || json.NewDecoder(r.Body).Decode(&body) != nil || body.Reference == "" || body.To == "" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail > 0 {
		s.fail--
		http.Error(w, "try later", s.code)
		return
	}
	s.msgs = append(s.msgs, smsMsg{Reference: body.Reference, Student: body.Metadata.StudentID, Rule: body.Metadata.Rule, Level: body.Metadata.Level, At: time.Now()})
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"id":"stub-` + body.Reference + `"}`))
}

// Fail makes the next n messages answer code.
func (s *smsStub) Fail(n, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail, s.code = n, code
}

// Messages are the accepted messages, in order.
func (s *smsStub) Messages() []smsMsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]smsMsg(nil), s.msgs...)
}
