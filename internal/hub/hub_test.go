package hub_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ecbridge/ecb/internal/hub"
)

// testConn is a hub.Conn with a bounded inbox, like a transport's queue.
type testConn struct {
	mu     sync.Mutex
	got    []*hub.Push
	max    int
	closed hub.Reason
}

func newConn(max int) *testConn { return &testConn{max: max} }

func (c *testConn) Deliver(p *hub.Push) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.got) >= c.max {
		return false
	}
	c.got = append(c.got, p)
	return true
}

func (c *testConn) Close(r hub.Reason) {
	c.mu.Lock()
	c.closed = r
	c.mu.Unlock()
}

func (c *testConn) offsets() []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []uint64
	for _, p := range c.got {
		out = append(out, p.Offset)
	}
	return out
}

func publish(tb testing.TB, h *hub.Hub, thread string, skip hub.Conn) *hub.Push {
	tb.Helper()
	p, err := h.Publish(thread, "message", skip, func(pos hub.Position) ([]byte, error) {
		return json.Marshal(map[string]any{"offset": pos.Offset})
	})
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

func TestPublishReachesListenersInOrderExceptSkip(t *testing.T) {
	h := hub.New(hub.Config{})
	a, b, author := newConn(100), newConn(100), newConn(100)
	for _, c := range []*testConn{a, b, author} {
		h.Register(c, "u")
		h.Attach("t1", c)
	}
	other := newConn(100)
	h.Register(other, "v")
	h.Attach("t2", other)

	for range 3 {
		publish(t, h, "t1", author)
	}
	for _, c := range []*testConn{a, b} {
		if got := fmt.Sprint(c.offsets()); got != "[1 2 3]" {
			t.Errorf("listener got offsets %s, want [1 2 3]", got)
		}
	}
	if n := len(author.offsets()); n != 0 {
		t.Errorf("skipped author got %d pushes", n)
	}
	if n := len(other.offsets()); n != 0 {
		t.Errorf("listener of another thread got %d pushes", n)
	}
}

func TestSlowConsumerIsCutWithoutBlockingOthers(t *testing.T) {
	h := hub.New(hub.Config{})
	slow, fast := newConn(1), newConn(100)
	h.Register(slow, "u")
	h.Register(fast, "u")
	h.Attach("t", slow)
	h.Attach("t", fast)
	for range 5 {
		publish(t, h, "t", nil)
	}
	if slow.closed != hub.ReasonSlow {
		t.Errorf("slow conn closed with %q, want %q", slow.closed, hub.ReasonSlow)
	}
	if got := len(fast.offsets()); got != 5 {
		t.Errorf("fast conn got %d pushes, want 5", got)
	}
	if h.Connections() != 1 {
		t.Errorf("hub still has %d connections, want 1 (the slow one unregistered)", h.Connections())
	}
}

func TestSinceRecoversTheGapOrSaysItCannot(t *testing.T) {
	h := hub.New(hub.Config{HistorySize: 4})
	start := h.Position("t")
	for range 3 {
		publish(t, h, "t", nil)
	}
	got, ok := h.Since("t", start)
	if !ok || len(got) != 3 || got[0].Offset != 1 || got[2].Offset != 3 {
		t.Fatalf("Since(start) = %d pushes, ok=%v; want offsets 1..3", len(got), ok)
	}
	got, ok = h.Since("t", hub.Position{Epoch: start.Epoch, Offset: 3})
	if !ok || len(got) != 0 {
		t.Errorf("Since(current) = %d pushes, ok=%v; want none, ok", len(got), ok)
	}
	if _, ok := h.Since("t", hub.Position{Epoch: start.Epoch, Offset: 9}); ok {
		t.Error("an offset from the future was accepted")
	}
	if _, ok := h.Since("t", hub.Position{Epoch: "other", Offset: 1}); ok {
		t.Error("an offset from another epoch was accepted")
	}
	for range 5 {
		publish(t, h, "t", nil)
	}
	if _, ok := h.Since("t", hub.Position{Epoch: start.Epoch, Offset: 1}); ok {
		t.Error("a gap older than the kept history was reported recoverable")
	}
	got, ok = h.Since("t", hub.Position{Epoch: start.Epoch, Offset: 5})
	if !ok || len(got) != 3 || got[0].Offset != 6 {
		t.Errorf("Since(5) = %d pushes ok=%v, want offsets 6..8", len(got), ok)
	}
}

func TestPruneStartsANewEpoch(t *testing.T) {
	h := hub.New(hub.Config{HistoryTTL: time.Minute})
	publish(t, h, "t", nil)
	before := h.Position("t")
	if n := h.Prune(time.Now().Add(2 * time.Minute)); n != 1 {
		t.Fatalf("pruned %d threads, want 1", n)
	}
	after := h.Position("t")
	if after.Epoch == before.Epoch || after.Offset != 0 {
		t.Errorf("after prune position = %+v, want a new epoch at offset 0 (before %+v)", after, before)
	}
	if _, ok := h.Since("t", before); ok {
		t.Error("a position of the pruned history was accepted")
	}
}

func TestPruneKeepsThreadsWithListeners(t *testing.T) {
	h := hub.New(hub.Config{HistoryTTL: time.Minute})
	c := newConn(10)
	h.Register(c, "u")
	h.Attach("t", c)
	if n := h.Prune(time.Now().Add(time.Hour)); n != 0 {
		t.Errorf("pruned %d threads with a listener", n)
	}
}

func TestUnregisterDetachesEverywhere(t *testing.T) {
	h := hub.New(hub.Config{})
	c := newConn(10)
	h.Register(c, "u")
	h.Attach("t1", c)
	h.Attach("t2", c)
	if h.Attached(c) != 2 {
		t.Fatalf("Attached = %d, want 2", h.Attached(c))
	}
	h.Unregister(c)
	publish(t, h, "t1", nil)
	publish(t, h, "t2", nil)
	if n := len(c.offsets()); n != 0 {
		t.Errorf("unregistered conn got %d pushes", n)
	}
	if h.Attach("t1", c) {
		t.Error("Attach of an unregistered conn succeeded")
	}
	if h.UserConnections("u") != 0 {
		t.Errorf("UserConnections = %d after unregister", h.UserConnections("u"))
	}
}

func TestSendToUserReachesEveryConnectionButSkip(t *testing.T) {
	h := hub.New(hub.Config{})
	a1, a2, b := newConn(10), newConn(10), newConn(10)
	h.Register(a1, "alice")
	h.Register(a2, "alice")
	h.Register(b, "bob")
	n := h.SendToUser("alice", &hub.Push{Event: "thread", Data: []byte(`{}`)}, a2)
	if n != 1 || len(a1.offsets()) != 1 || len(a2.offsets()) != 0 || len(b.offsets()) != 0 {
		t.Errorf("SendToUser delivered %d; a1=%d a2=%d b=%d", n, len(a1.offsets()), len(a2.offsets()), len(b.offsets()))
	}
}

func TestFrameEncodesOncePerEncoding(t *testing.T) {
	p := &hub.Push{Event: "message", Data: []byte(`{"a":1}`)}
	calls := 0
	enc := func(p *hub.Push) []byte { calls++; return append([]byte("x"), p.Data...) }
	for range 3 {
		if got := string(p.Frame(hub.EncodingSSE, enc)); got != `x{"a":1}` {
			t.Fatalf("frame = %q", got)
		}
	}
	if calls != 1 {
		t.Errorf("encoded %d times, want 1", calls)
	}
}

func TestConcurrentPublishKeepsPerThreadOrder(t *testing.T) {
	h := hub.New(hub.Config{HistorySize: 1024})
	c := newConn(10000)
	h.Register(c, "u")
	h.Attach("t", c)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				publish(t, h, "t", nil)
			}
		})
	}
	wg.Wait()
	got := c.offsets()
	if len(got) != 800 {
		t.Fatalf("got %d pushes, want 800", len(got))
	}
	for i, o := range got {
		if o != uint64(i+1) {
			t.Fatalf("push %d has offset %d: order broken", i, o)
		}
	}
}

func BenchmarkPublishFanOut1000(b *testing.B) {
	h := hub.New(hub.Config{})
	for range 1000 {
		c := &discardConn{}
		h.Register(c, "u")
		h.Attach("t", c)
	}
	data := []byte(`{"threadId":"t","message":{"body":"hello"}}`)
	b.ReportAllocs()
	for b.Loop() {
		_, _ = h.Publish("t", "message", nil, func(hub.Position) ([]byte, error) { return data, nil })
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "deliveries/s")
}

type discardConn struct{ _ byte } // not zero-sized: distinct pointers are distinct map keys

func (*discardConn) Deliver(*hub.Push) bool { return true }
func (*discardConn) Close(hub.Reason)       {}
