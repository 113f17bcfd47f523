// Package batch combines calls that arrive while one is running into the
// next single call: concurrent deliveries each want one row claimed or
// recorded in PostgreSQL, and one statement (one round trip, one commit)
// for all of them costs little more than one for each.
//
// There is no background goroutine between calls: a lone call runs at
// once; calls that arrive while a batch is in flight wait for it and go
// together in the next. So batching adds no latency when the service is
// idle and grows with the load. Under load a batch may also linger a
// moment for more (Combiner.Linger): fewer, larger statements cost the
// database less per request.
package batch

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Func runs one batch: it returns one result per request, in order, or an
// error that every request of the batch receives.
type Func[Req, Res any] func(ctx context.Context, reqs []Req) ([]Res, error)

// Combiner gathers requests into batches of at most Max and runs them with
// Run, one batch at a time. The zero value is not usable: set Run.
type Combiner[Req, Res any] struct {
	Run Func[Req, Res]
	// Max bounds a batch; default 256.
	Max int
	// Linger: a batch that follows another (calls arrived while one ran,
	// so the caller is busy) and holds fewer than Fill requests waits up
	// to Linger for Fill of them before it runs. 0: it runs at once. A
	// call that finds the combiner idle never waits.
	Linger time.Duration
	// Fill is the batch that ends a linger early; default Max.
	Fill int

	mu      sync.Mutex
	waiting []*call[Req, Res]
	running bool
	filled  chan struct{} // closed when Fill are waiting, during a linger
}

type call[Req, Res any] struct {
	req  Req
	res  Res
	err  error
	done chan struct{}
}

// Do adds req to the next batch and returns its result. A caller whose ctx
// ends stops waiting (its request may still run: callers must tolerate
// that, as they tolerate a crash after the statement committed). The
// batch itself runs under ctx of the call that starts it, without its
// cancellation: one caller giving up must not fail the others.
func (c *Combiner[Req, Res]) Do(ctx context.Context, req Req) (Res, error) {
	cl := &call[Req, Res]{req: req, done: make(chan struct{})}
	c.mu.Lock()
	c.waiting = append(c.waiting, cl)
	if c.filled != nil && len(c.waiting) >= c.fill() {
		close(c.filled)
		c.filled = nil
	}
	if !c.running {
		c.running = true
		c.mu.Unlock()
		c.drain(context.WithoutCancel(ctx), cl)
	} else {
		c.mu.Unlock()
	}
	select {
	case <-cl.done:
		return cl.res, cl.err
	case <-ctx.Done():
		var zero Res
		return zero, ctx.Err()
	}
}

// drain runs batches until none is waiting. The caller that started it
// (own) stays only until its own request is done; whatever arrived
// meanwhile is drained by a goroutine (own == nil) that ends when the
// queue is empty.
func (c *Combiner[Req, Res]) drain(ctx context.Context, own *call[Req, Res]) {
	for busy := own == nil; ; busy = true {
		c.mu.Lock()
		if len(c.waiting) == 0 {
			c.running = false
			c.mu.Unlock()
			return
		}
		if own != nil && own.finished() {
			// Ours is done and more wait: hand the rest to a goroutine so
			// this caller returns now.
			c.mu.Unlock()
			go c.drain(ctx, nil)
			return
		}
		if busy && c.Linger > 0 && len(c.waiting) < c.fill() {
			// Only this loop takes calls off waiting: it cannot
			// shrink meanwhile.
			c.linger()
		}
		n := min(len(c.waiting), c.max())
		calls := make([]*call[Req, Res], n)
		copy(calls, c.waiting)
		c.waiting = append(c.waiting[:0], c.waiting[n:]...)
		c.mu.Unlock()
		c.run(ctx, calls)
	}
}

func (c *Combiner[Req, Res]) max() int {
	if c.Max <= 0 {
		return 256
	}
	return c.Max
}

func (c *Combiner[Req, Res]) fill() int {
	if c.Fill <= 0 {
		return c.max()
	}
	return min(c.Fill, c.max())
}

// linger waits, c.mu held on entry and on return, until Fill calls wait
// or Linger has passed.
func (c *Combiner[Req, Res]) linger() {
	filled := make(chan struct{})
	c.filled = filled
	c.mu.Unlock()
	t := time.NewTimer(c.Linger)
	select {
	case <-filled:
	case <-t.C:
	}
	t.Stop()
	c.mu.Lock()
	if c.filled == filled {
		c.filled = nil
	}
}

func (cl *call[Req, Res]) finished() bool {
	select {
	case <-cl.done:
		return true
	default:
		return false
	}
}

func (c *Combiner[Req, Res]) run(ctx context.Context, calls []*call[Req, Res]) {
	reqs := make([]Req, len(calls))
	for i, cl := range calls {
		reqs[i] = cl.req
	}
	res, err := c.Run(ctx, reqs)
	if err == nil && len(res) != len(calls) {
		err = fmt.Errorf("batch: %d results for %d requests", len(res), len(calls))
	}
	for i, cl := range calls {
		if err != nil {
			cl.err = err
		} else {
			cl.res = res[i]
		}
		close(cl.done)
	}
}
