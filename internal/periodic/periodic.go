// Package periodic owns the one loop every housekeeping goroutine of ECB runs
// (pruning idle threads, expiring streams, overrides, limiters, dedupe
// entries): call a function at a fixed interval until the owner's context ends.
package periodic

import (
	"context"
	"time"
)

// Run calls f with the current time every interval until ctx is done. It
// blocks: run it on a goroutine whose owner cancels ctx and waits for it.
func Run(ctx context.Context, interval time.Duration, f func(now time.Time)) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			f(now)
		}
	}
}
