package socketio

import (
	"context"
	"sync"
	"sync/atomic"
)

// tracker owns goroutines: Wait blocks until none is left. Unlike
// sync.WaitGroup, add may be called while Wait is waiting. Hot paths start
// goroutines with add and `go x.method()` (whose method defers done), which
// allocates nothing; Go wraps a func for the rest.
type tracker struct {
	n    atomic.Int64
	mu   sync.Mutex
	idle chan struct{}
}

func (t *tracker) add() { t.n.Add(1) }

func (t *tracker) done() {
	if t.n.Add(-1) != 0 {
		return
	}
	t.mu.Lock()
	if t.idle != nil && t.n.Load() == 0 {
		close(t.idle)
		t.idle = nil
	}
	t.mu.Unlock()
}

// Go runs f on a tracked goroutine.
func (t *tracker) Go(f func()) {
	t.add()
	go func() {
		defer t.done()
		f()
	}()
}

// Wait returns nil when no goroutine is left, or ctx.Err().
func (t *tracker) Wait(ctx context.Context) error {
	t.mu.Lock()
	if t.n.Load() == 0 {
		t.mu.Unlock()
		return nil
	}
	if t.idle == nil {
		t.idle = make(chan struct{})
	}
	ch := t.idle
	t.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
