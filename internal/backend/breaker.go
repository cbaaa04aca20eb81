package backend

import (
	"context"
	"sync"
	"time"
)

// breaker is a consecutive-failure circuit breaker. While open it refuses
// calls at once (a dead backend costs clients no timeout); after the cooldown
// it lets one probe through (half-open) and closes on its success. The calls
// that arrive while the probe is out wait for its outcome (bounded by their
// context; the probe by backend.timeout) instead of failing: a burst of
// reconnects after a backend's recovery is queued, not refused.
type breaker struct {
	threshold int
	cooldown  time.Duration

	mu        sync.Mutex
	failures  int
	openUntil time.Time
	probing   bool
	probeDone chan struct{} // closed when the current probe ends
}

// allow reports whether a call may go ahead: nil, ErrCircuitOpen while the
// circuit is open, or ctx's error when the caller gave up waiting for a
// probe. No lock is held while waiting.
func (b *breaker) allow(ctx context.Context) error {
	for {
		b.mu.Lock()
		if b.failures < b.threshold {
			b.mu.Unlock()
			return nil
		}
		if time.Now().Before(b.openUntil) {
			b.mu.Unlock()
			return ErrCircuitOpen
		}
		if !b.probing {
			b.probing = true
			b.probeDone = make(chan struct{})
			b.mu.Unlock()
			return nil
		}
		done := b.probeDone
		b.mu.Unlock()
		select {
		case <-done: // the probe ended: closed, or open again
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// endProbe ends a half-open probe, if one is out; the caller holds b.mu.
func (b *breaker) endProbe() {
	if b.probing {
		b.probing = false
		close(b.probeDone)
	}
}

func (b *breaker) success() {
	b.mu.Lock()
	b.failures = 0
	b.endProbe()
	b.mu.Unlock()
}

func (b *breaker) failure(now time.Time) {
	b.mu.Lock()
	b.failures++
	if b.failures >= b.threshold {
		b.openUntil = now.Add(b.cooldown)
	}
	b.endProbe()
	b.mu.Unlock()
}

// release ends a call that proved nothing about the backend's health (the
// caller cancelled, or gave up waiting for a slot): a half-open probe slot is
// given back, and the callers waiting for it try again.
func (b *breaker) release() {
	b.mu.Lock()
	b.endProbe()
	b.mu.Unlock()
}

// open reports whether calls are being refused now (for /readyz).
func (b *breaker) open(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.failures >= b.threshold && now.Before(b.openUntil)
}
