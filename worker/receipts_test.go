package worker

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
)

// Two replicas queue the receipt poll of the same period: it runs once,
// with the period's start as its time; the next period runs again.
func TestReceiptPollOncePerPeriodAcrossReplicas(t *testing.T) {
	rdb := httpTestRedis(t)
	ctx := context.Background()
	var mu sync.Mutex
	var runs []time.Time
	poll := func(_ context.Context, now time.Time) error {
		mu.Lock()
		defer mu.Unlock()
		runs = append(runs, now)
		return nil
	}
	replica := func() *ReceiptPoller {
		c := asynq.NewClientFromRedisClient(rdb)
		return &ReceiptPoller{Provider: "mobizon", Client: c, Poll: poll, Every: 10 * time.Minute}
	}
	a, b := replica(), replica()
	period := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	queued := 0
	for _, q := range []struct {
		p  *ReceiptPoller
		at time.Time
	}{{a, period.Add(time.Second)}, {b, period.Add(2 * time.Second)}, {a, period.Add(9 * time.Minute)}} {
		ok, err := q.p.Queue(ctx, q.at)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			queued++
		}
	}
	if queued != 1 {
		t.Fatalf("the period was queued %d times, want 1", queued)
	}

	mux := asynq.NewServeMux()
	a.Register(mux)
	mux2 := asynq.NewServeMux()
	b.Register(mux2)
	srvA := NewServer(Options{Redis: rdb, Concurrency: 2})
	srvB := NewServer(Options{Redis: rdb, Concurrency: 2})
	if err := srvA.Start(mux); err != nil {
		t.Fatal(err)
	}
	defer srvA.Shutdown()
	if err := srvB.Start(mux2); err != nil {
		t.Fatal(err)
	}
	defer srvB.Shutdown()
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(runs) }
	waitUntil := func(n int) {
		deadline := time.Now().Add(20 * time.Second)
		for count() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d polls ran, want %d", count(), n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitUntil(1)
	// Queued again after it ran (the task is retained): still once.
	if ok, err := b.Queue(ctx, period.Add(5*time.Minute)); ok || err != nil {
		t.Fatalf("queueing a period that ran: %v %v", ok, err)
	}
	next := period.Add(10 * time.Minute)
	if ok, err := b.Queue(ctx, next); !ok || err != nil {
		t.Fatalf("the next period: %v %v", ok, err)
	}
	waitUntil(2)
	time.Sleep(500 * time.Millisecond) // a second run would show by now
	mu.Lock()
	defer mu.Unlock()
	if len(runs) != 2 || !runs[0].Equal(period) || !runs[1].Equal(next) {
		t.Fatalf("runs = %v, want %v then %v", runs, period, next)
	}
}

// The Twilio hook is mounted at TwilioStatusPath only when given; without
// it the path is 404.
func TestHTTPMountsTheTwilioHookOnlyWhenSet(t *testing.T) {
	db, _ := httpTestDB(t)
	rdb := httpTestRedis(t)
	var got int
	hook := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got++
		w.WriteHeader(http.StatusNoContent)
	})
	post := func(h *HTTP) int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, TwilioStatusPath, strings.NewReader("MessageSid=SM1")))
		return rec.Code
	}
	if code := post(testHTTP(t, HTTPOptions{DB: db, Redis: rdb})); code != http.StatusNotFound {
		t.Errorf("without a hook: %d, want 404", code)
	}
	if code := post(testHTTP(t, HTTPOptions{DB: db, Redis: rdb, TwilioStatus: hook})); code != http.StatusNoContent || got != 1 {
		t.Errorf("with a hook: %d, %d calls", code, got)
	}
}
