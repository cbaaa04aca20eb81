// Package calltime measures how much of an operation was spent waiting for
// the backend, so that ECB's own share of it (the operation's latency minus
// its backend calls) can be observed: ops starts a Meter in the operation's
// context, the backend client adds the duration of every call made with that
// context. A Meter is safe for concurrent use (an operation's calls may run
// in parallel; their durations add up).
package calltime

import (
	"context"
	"sync/atomic"
	"time"
)

// Meter accumulates the backend time of one operation.
type Meter struct{ ns atomic.Int64 }

type key struct{}

// Start returns a context carrying a fresh Meter, and the Meter.
func Start(ctx context.Context) (context.Context, *Meter) {
	m := &Meter{}
	return context.WithValue(ctx, key{}, m), m
}

// Add records d on the Meter of ctx; without one it does nothing.
func Add(ctx context.Context, d time.Duration) {
	if m, ok := ctx.Value(key{}).(*Meter); ok {
		m.ns.Add(int64(d))
	}
}

// Total is the time recorded so far.
func (m *Meter) Total() time.Duration { return time.Duration(m.ns.Load()) }
