package receipts_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/iec-almaty/sisnotify/integrations/sms"
	"github.com/iec-almaty/sisnotify/receipts"
	"github.com/iec-almaty/sisnotify/store"
)

const mobizonKey = "kz0123456789abcdef0123456789abcdef0123456789"

// mobizonServer answers getsmsstatus the way Mobizon does, after checking
// the request is the one Mobizon's API expects, with the statuses it is
// given (ids it has no status for are left out of the answer).
type mobizonServer struct {
	t  *testing.T
	mu sync.Mutex
	// status of each message id
	status map[string]string
	// asked holds the ids of each request, in order.
	asked [][]string
}

func (m *mobizonServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	bad := func(format string, args ...any) {
		m.t.Errorf("mobizon: "+format, args...)
		http.Error(w, "bad request", http.StatusBadRequest)
	}
	if r.Method != http.MethodPost || r.URL.Path != "/service/message/getsmsstatus" {
		bad("%s %s", r.Method, r.URL.Path)
		return
	}
	q := r.URL.Query()
	if q.Get("apiKey") != mobizonKey || q.Get("api") != "v1" || q.Get("output") != "json" || len(q) != 3 {
		bad("query %v", q)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		bad("Content-Type %q", ct)
		return
	}
	raw, _ := io.ReadAll(r.Body)
	form, err := url.ParseQuery(string(raw))
	if err != nil {
		bad("body %q", raw)
		return
	}
	// ids[0], ids[1], ... and nothing else.
	var ids []string
	for i := 0; ; i++ {
		v, ok := form["ids["+strconv.Itoa(i)+"]"]
		if !ok {
			break
		}
		ids = append(ids, v[0])
	}
	if len(ids) != len(form) || len(ids) == 0 || len(ids) > sms.MobizonMaxIDs {
		bad("body %q", raw)
		return
	}
	m.mu.Lock()
	m.asked = append(m.asked, ids)
	type item struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		SegNum string `json:"segNum"`
	}
	data := []item{}
	for _, id := range ids {
		if s, ok := m.status[id]; ok {
			data = append(data, item{ID: id, Status: s, SegNum: "1"})
		}
	}
	m.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"code": 0, "data": data, "message": ""})
}

func (m *mobizonServer) requests() [][]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([][]string(nil), m.asked...)
}

// The poll asks Mobizon about the SMS of the last 48 hours still sent, in
// batches; final statuses turn the notices delivered or bounced (the phone
// unreachable), others are recorded only; each status is recorded once
// however often it is read; what is no longer sent, or too old, or not a
// Mobizon id, is not asked about.
func TestMobizonPollMapsAndRecordsOnce(t *testing.T) {
	db := newDB(t)
	ctx := context.Background()
	st := store.New(db)
	now := at.Add(time.Hour)
	ns := sent(t, db, at, "1001", "1002", "1003", "1004", "1005", "1006")
	old := sent(t, db, now.Add(-49*time.Hour), "900")
	task := sent(t, db, at, "task:7001")

	srv := &mobizonServer{t: t, status: map[string]string{
		"1001": "DELIVRD", "1002": "UNDELIV", "1003": "ACCEPTD", "1004": "REJECTD", "1005": "EXPIRED",
		// 1006: Mobizon does not know it (yet): left out of the answer.
		"900": "DELIVRD",
	}}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	mz, err := sms.NewMobizon(sms.MobizonConfig{APIKey: mobizonKey, BaseURL: hs.URL})
	if err != nil {
		t.Fatal(err)
	}
	poll := &receipts.MobizonPoll{DB: db, Mobizon: mz, Batch: 4}

	res, err := poll.Poll(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if res != (receipts.PollResult{Asked: 6, Answered: 5, Recorded: 5, Delivered: 1, Bounced: 3, Skipped: 1}) {
		t.Errorf("first poll: %+v", res)
	}
	reqs := srv.requests()
	if len(reqs) != 2 || len(reqs[0]) != 4 || len(reqs[1]) != 2 {
		t.Fatalf("requests = %v, want 4 ids then 2", reqs)
	}
	for _, r := range reqs {
		for _, id := range r {
			if id == "900" || id == "task:7001" {
				t.Errorf("asked about %s", id)
			}
		}
	}
	want := map[int64]string{ns[0].ID: "delivered", ns[1].ID: "bounced", ns[2].ID: "sent", ns[3].ID: "bounced",
		ns[4].ID: "bounced", ns[5].ID: "sent", old[0].ID: "sent", task[0].ID: "sent"}
	for id, s := range want {
		if got := statusOf(t, db, id); got != s {
			t.Errorf("notice %d: %s, want %s", id, got, s)
		}
	}
	for _, n := range []smsNotice{ns[1], ns[3], ns[4]} {
		u, err := st.UnreachableContacts(ctx, n.Student)
		if err != nil || len(u) != 1 || u[0].Channel != "sms" || u[0].Contact != n.Recipient || u[0].NoticeID != n.ID {
			t.Errorf("unreachable contacts of %s = %+v, %v; want its phone", n.Student, u, err)
		}
	}
	if u, _ := st.UnreachableContacts(ctx, ns[0].Student); len(u) != 0 {
		t.Errorf("the delivered student is unreachable: %+v", u)
	}
	events, err := st.DeliveryEvents(ctx, store.SourceMobizon, 20)
	if err != nil || len(events) != 5 {
		t.Fatalf("events = %+v, %v", events, err)
	}
	for _, e := range events {
		if e.ExternalID == "1002/UNDELIV" && (e.Outcome != store.OutcomeBounced || e.Reason != "UNDELIV" || e.NoticeID != ns[1].ID) {
			t.Errorf("UNDELIV event = %+v", e)
		}
		if e.ExternalID == "1003/ACCEPTD" && e.Outcome != store.OutcomeSent {
			t.Errorf("ACCEPTD event = %+v", e)
		}
	}

	// The same answers again: only the messages still sent are asked
	// about, and nothing is recorded twice.
	res, err = poll.Poll(ctx, now.Add(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if res.Asked != 2 || res.Answered != 1 || res.Recorded != 0 {
		t.Errorf("second poll: %+v", res)
	}
	if n := eventCount(t, db); n != 5 {
		t.Errorf("%d events after the second poll, want 5", n)
	}

	// 1003 reaches a final status, 1006 becomes known.
	srv.mu.Lock()
	srv.status["1003"], srv.status["1006"] = "DELIVRD", "NEW"
	srv.mu.Unlock()
	res, err = poll.Poll(ctx, now.Add(20*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if res.Recorded != 2 || res.Delivered != 1 || statusOf(t, db, ns[2].ID) != "delivered" || statusOf(t, db, ns[5].ID) != "sent" {
		t.Errorf("third poll: %+v; notices %s %s", res, statusOf(t, db, ns[2].ID), statusOf(t, db, ns[5].ID))
	}
}

// A failing Mobizon stops the poll with an error; what it had recorded
// stays, and the next poll carries on.
func TestMobizonPollStopsOnAnError(t *testing.T) {
	db := newDB(t)
	ctx := context.Background()
	ns := sent(t, db, at, "2001", "2002")
	var fail sync.Mutex
	failing := true
	inner := &mobizonServer{t: t, status: map[string]string{"2001": "DELIVRD", "2002": "DELIVRD"}}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fail.Lock()
		f := failing
		fail.Unlock()
		if f {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"code":8,"data":"","message":"Authentication failed"}`)
			return
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	mz, _ := sms.NewMobizon(sms.MobizonConfig{APIKey: mobizonKey, BaseURL: hs.URL})
	poll := &receipts.MobizonPoll{DB: db, Mobizon: mz}
	if _, err := poll.Poll(ctx, at.Add(time.Hour)); err == nil {
		t.Fatal("a failing Mobizon: no error")
	}
	if s := statusOf(t, db, ns[0].ID); s != "sent" {
		t.Fatalf("notice %s after a failed poll", s)
	}
	fail.Lock()
	failing = false
	fail.Unlock()
	res, err := poll.Poll(ctx, at.Add(time.Hour))
	if err != nil || res.Delivered != 2 {
		t.Fatalf("next poll: %+v, %v", res, err)
	}
}
