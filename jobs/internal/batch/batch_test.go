package batch

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestLoneCallRunsAtOnce(t *testing.T) {
	var batches [][]int
	// A linger of an hour: a lone call that waited for company would
	// time the test out.
	c := &Combiner[int, int]{Linger: time.Hour, Fill: 8, Run: func(_ context.Context, reqs []int) ([]int, error) {
		batches = append(batches, append([]int(nil), reqs...))
		out := make([]int, len(reqs))
		for i, r := range reqs {
			out[i] = r * 10
		}
		return out, nil
	}}
	for i := 1; i <= 3; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		got, err := c.Do(ctx, i)
		cancel()
		if err != nil || got != i*10 {
			t.Fatalf("Do(%d) = %d, %v", i, got, err)
		}
	}
	if len(batches) != 3 {
		t.Fatalf("sequential calls ran as %d batches, want 3: %v", len(batches), batches)
	}
}

// While one batch runs, the calls that arrive wait and go together in the
// next, each with its own result.
func TestCallsArrivingDuringABatchGoTogether(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var sizes []int
	first := true
	c := &Combiner[int, int]{Max: 100, Run: func(_ context.Context, reqs []int) ([]int, error) {
		mu.Lock()
		sizes = append(sizes, len(reqs))
		wait := first
		first = false
		mu.Unlock()
		if wait {
			<-release
		}
		out := make([]int, len(reqs))
		for i, r := range reqs {
			out[i] = -r
		}
		return out, nil
	}}
	var wg sync.WaitGroup
	results := make([]int, 51)
	wg.Add(1)
	go func() { defer wg.Done(); results[0], _ = c.Do(context.Background(), 0) }()
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(sizes) == 1 })
	for i := 1; i <= 50; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); results[i], _ = c.Do(context.Background(), i) }()
	}
	waitFor(t, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.waiting) == 50 })
	close(release)
	wg.Wait()
	if len(sizes) != 2 || sizes[0] != 1 || sizes[1] != 50 {
		t.Fatalf("batch sizes %v, want [1 50]", sizes)
	}
	for i, r := range results {
		if r != -i {
			t.Fatalf("call %d got %d, want %d", i, r, -i)
		}
	}
}

// blockedFirst is a combiner whose first batch runs until release is
// closed, recording each batch's size in sizes.
type blockedFirst struct {
	c       *Combiner[int, int]
	release chan struct{}
	mu      sync.Mutex
	sizes   []int
}

func newBlockedFirst(linger time.Duration, fill int) *blockedFirst {
	b := &blockedFirst{release: make(chan struct{})}
	b.c = &Combiner[int, int]{Linger: linger, Fill: fill, Run: func(_ context.Context, reqs []int) ([]int, error) {
		b.mu.Lock()
		b.sizes = append(b.sizes, len(reqs))
		n := len(b.sizes)
		b.mu.Unlock()
		if n == 1 {
			<-b.release
		}
		return make([]int, len(reqs)), nil
	}}
	return b
}

func (b *blockedFirst) batches() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]int(nil), b.sizes...)
}

func (b *blockedFirst) waiting() int {
	b.c.mu.Lock()
	defer b.c.mu.Unlock()
	return len(b.c.waiting)
}

// Under load (calls arrived while a batch ran) the next batch lingers
// until Fill calls wait; the linger here is an hour, so only the Fill
// can end it.
func TestBusyBatchLingersUntilFilled(t *testing.T) {
	b := newBlockedFirst(time.Hour, 8)
	var wg sync.WaitGroup
	do := func(i int) { wg.Add(1); go func() { defer wg.Done(); b.c.Do(context.Background(), i) }() }
	do(0)
	waitFor(t, func() bool { return len(b.batches()) == 1 })
	for i := 1; i <= 5; i++ {
		do(i)
	}
	waitFor(t, func() bool { return b.waiting() == 5 })
	close(b.release)
	// The second batch is lingering with 5 of 8: give it the rest.
	waitFor(t, func() bool {
		b.c.mu.Lock()
		defer b.c.mu.Unlock()
		return b.c.filled != nil
	})
	if got := b.batches(); len(got) != 1 {
		t.Fatalf("batches %v ran during the linger", got)
	}
	for i := 6; i <= 8; i++ {
		do(i)
	}
	waitGroup(t, &wg)
	if got := b.batches(); len(got) != 2 || got[1] != 8 {
		t.Fatalf("batch sizes %v, want [1 8]", got)
	}
}

// A lingering batch that never fills runs when Linger has passed.
func TestLingerEnds(t *testing.T) {
	b := newBlockedFirst(20*time.Millisecond, 100)
	var wg sync.WaitGroup
	for i := 0; i <= 5; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); b.c.Do(context.Background(), i) }()
		if i == 0 {
			waitFor(t, func() bool { return len(b.batches()) == 1 })
		}
	}
	waitFor(t, func() bool { return b.waiting() == 5 })
	close(b.release)
	waitGroup(t, &wg)
	if got := b.batches(); len(got) != 2 || got[1] != 5 {
		t.Fatalf("batch sizes %v, want [1 5]", got)
	}
}

func TestMaxBoundsABatch(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var sizes []int
	c := &Combiner[int, int]{Max: 4, Run: func(_ context.Context, reqs []int) ([]int, error) {
		mu.Lock()
		sizes = append(sizes, len(reqs))
		n := len(sizes)
		mu.Unlock()
		if n == 1 {
			<-release
		}
		return make([]int, len(reqs)), nil
	}}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); c.Do(context.Background(), 0) }()
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(sizes) == 1 })
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); c.Do(context.Background(), i) }()
	}
	waitFor(t, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return len(c.waiting) == 10 })
	close(release)
	wg.Wait()
	if want := []int{1, 4, 4, 2}; len(sizes) != len(want) || sizes[1] != 4 || sizes[2] != 4 || sizes[3] != 2 {
		t.Fatalf("batch sizes %v, want %v", sizes, want)
	}
}

func TestErrorReachesEveryCallOfTheBatch(t *testing.T) {
	boom := errors.New("boom")
	c := &Combiner[int, int]{Run: func(context.Context, []int) ([]int, error) { return nil, boom }}
	if _, err := c.Do(context.Background(), 1); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	short := &Combiner[int, int]{Run: func(context.Context, []int) ([]int, error) { return nil, nil }}
	if _, err := short.Do(context.Background(), 1); err == nil {
		t.Fatal("a Run that returns no result for a request must be an error")
	}
}

// The batch does not run under the cancellation of the caller that
// started it: one caller giving up must not fail the others.
func TestCancelledCallerDoesNotCancelTheBatch(t *testing.T) {
	release := make(chan struct{})
	var ran context.Context
	c := &Combiner[int, int]{Run: func(ctx context.Context, reqs []int) ([]int, error) {
		ran = ctx
		<-release
		return make([]int, len(reqs)), ctx.Err()
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { _, err := c.Do(ctx, 1); done <- err }()
	time.Sleep(10 * time.Millisecond)
	cancel()
	close(release)
	err := <-done
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if ran == nil || ran.Err() != nil {
		t.Fatal("the batch ran under a cancelled context")
	}
}

// waitGroup waits for wg, failing the test after 5 s.
func waitGroup(t *testing.T, wg *sync.WaitGroup) {
	t.Helper()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("calls not done in 5 s")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5 s")
		}
		time.Sleep(time.Millisecond)
	}
}
