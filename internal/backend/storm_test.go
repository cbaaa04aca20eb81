package backend_test

import (
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/backend"
	"github.com/ecbridge/ecb/internal/memhttp"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// storm sends n getThreads at once and returns the error codes ("" for ok).
func storm(c *backend.Client, n int) []apierr.Code {
	codes := make([]apierr.Code, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, err := c.GetThreads(context.Background(), &ecbserver.GetThreadsRequest{UserID: "u"})
			if err != nil {
				codes[i] = apierr.From(err).Code
			}
		})
	}
	wg.Wait()
	return codes
}

func failed(codes []apierr.Code) int {
	n := 0
	for _, c := range codes {
		if c != "" {
			n++
		}
	}
	return n
}

// A burst of reconnects: 16 times more calls than slots, each taking a
// third of the timeout at the backend. They queue for the slots (the wait
// is not part of a call's timeout) and every one succeeds; the backend never
// sees more than backend.maxConcurrent at once.
func TestStormQueuesForTheSlots(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var inFlight, most atomic.Int32
		h := func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.ReadAll(r.Body)
			n := inFlight.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			time.Sleep(100 * time.Millisecond)
			inFlight.Add(-1)
			_, _ = w.Write([]byte(`{"threads":[]}`))
		}
		c, err := backend.New(backend.Config{URL: "http://backend.test/ecb/v1", Secret: secret, Timeout: 300 * time.Millisecond,
			MaxConcurrent: 4, BreakerFailures: 2, BreakerCooldown: 200 * time.Millisecond}, memhttp.Client(http.HandlerFunc(h)), nil)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if n := failed(storm(c, 64)); n != 0 {
			t.Fatalf("%d of 64 calls failed", n)
		}
		if d := time.Since(start); d != 16*100*time.Millisecond {
			t.Errorf("the storm took %v, want 16 rounds of 100ms", d)
		}
		if m := most.Load(); m != 4 {
			t.Errorf("at most %d calls at the backend, want backend.maxConcurrent 4", m)
		}
	})
}

// The storm that follows a backend's recovery arrives while the breaker is
// half-open: one call is the probe, and the others wait for its outcome
// instead of failing with backend_unavailable (before the fix, all but the
// probe failed at once). When the probe fails, they fail (the circuit is
// open again) without reaching the backend.
func TestStormWhileHalfOpenWaitsForTheProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var down atomic.Bool
		var calls atomic.Int32
		down.Store(true)
		c := newMemClient(t, func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			_, _ = io.ReadAll(r.Body)
			time.Sleep(100 * time.Millisecond)
			if down.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			_, _ = w.Write([]byte(`{"threads":[]}`))
		})
		if n := failed(storm(c, 2)); n != 2 { // BreakerFailures 2: the circuit opens
			t.Fatalf("%d of 2 failed against a backend answering 503", n)
		}
		time.Sleep(200 * time.Millisecond) // the cooldown: half-open

		before := calls.Load()
		codes := storm(c, 20) // the probe fails: the others fail too, without a call
		if n := failed(codes); n != 20 || calls.Load()-before != 1 {
			t.Fatalf("a failed probe: %d of 20 failed (want 20), %d calls reached the backend (want 1)", n, calls.Load()-before)
		}

		down.Store(false)
		time.Sleep(200 * time.Millisecond)
		before = calls.Load()
		codes = storm(c, 64)
		if n := failed(codes); n != 0 {
			t.Fatalf("%d of 64 calls failed behind a successful probe: %v", n, codes)
		}
		if got := calls.Load() - before; got != 64 {
			t.Fatalf("%d calls reached the backend, want 64", got)
		}
	})
}

// A caller that gives up while waiting for the probe gets its own
// cancellation, and the probe's outcome is still what the others see.
func TestWaitingForTheProbeIsBoundedByTheCaller(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var down atomic.Bool
		down.Store(true)
		c := newMemClient(t, func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.ReadAll(r.Body)
			time.Sleep(100 * time.Millisecond)
			if down.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			_, _ = w.Write([]byte(`{"threads":[]}`))
		})
		storm(c, 2)
		time.Sleep(200 * time.Millisecond)
		down.Store(false)
		var wg sync.WaitGroup
		wg.Go(func() { // the probe
			if _, err := c.GetThreads(context.Background(), &ecbserver.GetThreadsRequest{UserID: "u"}); err != nil {
				t.Errorf("probe: %v", err)
			}
		})
		synctest.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := c.GetThreads(ctx, &ecbserver.GetThreadsRequest{UserID: "u"})
		if apierr.From(err).Code != apierr.BackendUnavailable || time.Since(start) != 50*time.Millisecond {
			t.Fatalf("a caller that gave up after 50ms: %v after %v", err, time.Since(start))
		}
		wg.Wait()
		if !c.Healthy() {
			t.Fatal("the probe succeeded but the breaker is open")
		}
	})
}
