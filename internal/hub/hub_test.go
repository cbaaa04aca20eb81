package hub_test

import (
	"context"
	"encoding/json"
	"errors"
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

// closedWith waits (boundedly: only a hang fails) for c to be closed, as a
// slow connection found during a broker's delivery is closed from a goroutine.
func (c *testConn) closedWith(tb testing.TB) hub.Reason {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		r := c.closed
		c.mu.Unlock()
		if r != "" || time.Now().After(deadline) {
			return r
		}
		time.Sleep(time.Millisecond)
	}
}

func attach(tb testing.TB, h *hub.Hub, thread string, c hub.Conn) hub.Position {
	tb.Helper()
	pos, err := h.Attach(context.Background(), thread, c)
	if err != nil {
		tb.Fatalf("attach %s: %v", thread, err)
	}
	return pos
}

func position(tb testing.TB, h *hub.Hub, thread string) hub.Position {
	tb.Helper()
	pos, err := h.Position(context.Background(), thread)
	if err != nil {
		tb.Fatal(err)
	}
	return pos
}

// since returns the pushes after from that a connection without whispers
// would recover.
func since(tb testing.TB, h *hub.Hub, thread string, from hub.Position) ([]*hub.Push, bool) {
	tb.Helper()
	all, _, ok, err := h.Broker().History(context.Background(), thread, from)
	if err != nil {
		tb.Fatal(err)
	}
	var out []*hub.Push
	for _, p := range all {
		if !p.AgentsOnly {
			out = append(out, p)
		}
	}
	return out, ok
}

func resume(tb testing.TB, h *hub.Hub, thread string, c hub.Conn, from hub.Position) (int, bool, hub.Position) {
	tb.Helper()
	missed, ok, now, err := h.Resume(context.Background(), thread, c, from)
	if err != nil {
		tb.Fatal(err)
	}
	return missed, ok, now
}

func prune(h *hub.Hub, now time.Time) int {
	return h.Broker().(*hub.MemoryBroker).Prune(now)
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
	return publishAudience(tb, h, thread, skip, false)
}

func publishAudience(tb testing.TB, h *hub.Hub, thread string, skip hub.Conn, agentsOnly bool) *hub.Push {
	tb.Helper()
	p := &hub.Push{Event: "message", Data: json.RawMessage(`{"n":1}`), AgentsOnly: agentsOnly}
	if _, err := h.Publish(context.Background(), thread, p, skip); err != nil {
		tb.Fatal(err)
	}
	return p
}

func TestPublishReachesListenersInOrderExceptSkip(t *testing.T) {
	h := hub.New(hub.Config{})
	a, b, author := newConn(100), newConn(100), newConn(100)
	for _, c := range []*testConn{a, b, author} {
		h.Register(c, "u")
		attach(t, h, "t1", c)
	}
	other := newConn(100)
	h.Register(other, "v")
	attach(t, h, "t2", other)

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
	attach(t, h, "t", slow)
	attach(t, h, "t", fast)
	for range 5 {
		publish(t, h, "t", nil)
	}
	if r := slow.closedWith(t); r != hub.ReasonSlow {
		t.Errorf("slow conn closed with %q, want %q", r, hub.ReasonSlow)
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
	start := position(t, h, "t")
	for range 3 {
		publish(t, h, "t", nil)
	}
	got, ok := since(t, h, "t", start)
	if !ok || len(got) != 3 || got[0].Offset != 1 || got[2].Offset != 3 {
		t.Fatalf("Since(start) = %d pushes, ok=%v; want offsets 1..3", len(got), ok)
	}
	got, ok = since(t, h, "t", hub.Position{Epoch: start.Epoch, Offset: 3})
	if !ok || len(got) != 0 {
		t.Errorf("Since(current) = %d pushes, ok=%v; want none, ok", len(got), ok)
	}
	if _, ok := since(t, h, "t", hub.Position{Epoch: start.Epoch, Offset: 9}); ok {
		t.Error("an offset from the future was accepted")
	}
	if _, ok := since(t, h, "t", hub.Position{Epoch: "other", Offset: 1}); ok {
		t.Error("an offset from another epoch was accepted")
	}
	for range 5 {
		publish(t, h, "t", nil)
	}
	if _, ok := since(t, h, "t", hub.Position{Epoch: start.Epoch, Offset: 1}); ok {
		t.Error("a gap older than the kept history was reported recoverable")
	}
	got, ok = since(t, h, "t", hub.Position{Epoch: start.Epoch, Offset: 5})
	if !ok || len(got) != 3 || got[0].Offset != 6 {
		t.Errorf("Since(5) = %d pushes ok=%v, want offsets 6..8", len(got), ok)
	}
}

func TestPruneStartsANewEpoch(t *testing.T) {
	h := hub.New(hub.Config{HistoryTTL: time.Minute})
	publish(t, h, "t", nil)
	before := position(t, h, "t")
	if n := prune(h, time.Now().Add(2*time.Minute)); n != 1 {
		t.Fatalf("pruned %d threads, want 1", n)
	}
	after := position(t, h, "t")
	if after.Epoch == before.Epoch || after.Offset != 0 {
		t.Errorf("after prune position = %+v, want a new epoch at offset 0 (before %+v)", after, before)
	}
	if _, ok := since(t, h, "t", before); ok {
		t.Error("a position of the pruned history was accepted")
	}
}

func TestPruneKeepsThreadsWithListeners(t *testing.T) {
	h := hub.New(hub.Config{HistoryTTL: time.Minute})
	c := newConn(10)
	h.Register(c, "u")
	attach(t, h, "t", c)
	if n := prune(h, time.Now().Add(time.Hour)); n != 0 {
		t.Errorf("pruned %d threads with a listener", n)
	}
}

func TestUnregisterDetachesEverywhere(t *testing.T) {
	h := hub.New(hub.Config{})
	c := newConn(10)
	h.Register(c, "u")
	attach(t, h, "t1", c)
	attach(t, h, "t2", c)
	if h.Attached(c) != 2 {
		t.Fatalf("Attached = %d, want 2", h.Attached(c))
	}
	h.Unregister(c)
	publish(t, h, "t1", nil)
	publish(t, h, "t2", nil)
	if n := len(c.offsets()); n != 0 {
		t.Errorf("unregistered conn got %d pushes", n)
	}
	if _, err := h.Attach(context.Background(), "t1", c); !errors.Is(err, hub.ErrNotRegistered) {
		t.Errorf("Attach of an unregistered conn: %v, want ErrNotRegistered", err)
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
	n, err := h.SendToUser("alice", &hub.Push{Event: "thread", Data: []byte(`{}`)}, a2)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 || len(a1.offsets()) != 1 || len(a2.offsets()) != 0 || len(b.offsets()) != 0 {
		t.Errorf("SendToUser delivered %d; a1=%d a2=%d b=%d", n, len(a1.offsets()), len(a2.offsets()), len(b.offsets()))
	}
}

// sendRecorder is a Controller that records the commands sent to the other
// nodes; batching adds SendAll, which records them as one call.
type sendRecorder struct {
	mu    sync.Mutex
	calls [][]hub.Command
}

func (r *sendRecorder) Send(_ context.Context, cmd hub.Command) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, []hub.Command{cmd})
	return nil
}

type batchRecorder struct{ sendRecorder }

func (r *batchRecorder) SendAll(_ context.Context, cmds []hub.Command) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, cmds)
	return nil
}

// SendToUsers applies every push on this node but to skip, and sends the
// commands to the other nodes in one SendAll when the Controller has it,
// else one Send each, in order either way.
func TestSendToUsersBatchesWhereTheControllerCan(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rec   func() (hub.Controller, *sendRecorder)
		calls int
	}{
		{"batch", func() (hub.Controller, *sendRecorder) { r := &batchRecorder{}; return r, &r.sendRecorder }, 1},
		{"one by one", func() (hub.Controller, *sendRecorder) { r := &sendRecorder{}; return r, r }, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctl, rec := tc.rec()
			h := hub.New(hub.Config{Controller: ctl, NodeID: "n1"})
			a1, a2, b, c := newConn(10), newConn(10), newConn(10), newConn(10)
			h.Register(a1, "alice")
			h.Register(a2, "alice")
			h.Register(b, "bob")
			h.Register(c, "carol")
			p1, p2 := &hub.Push{Event: "mention", Data: []byte(`{"n":1}`)}, &hub.Push{Event: "mention", Data: []byte(`{"n":2}`)}
			n, err := h.SendToUsers([]hub.UserPush{{UserID: "alice", Push: p1}, {UserID: "bob", Push: p2}, {UserID: "dave", Push: p1}}, a2)
			if err != nil {
				t.Fatal(err)
			}
			if n != 2 || len(a1.got) != 1 || len(a2.got) != 0 || len(b.got) != 1 || b.got[0] != p2 || len(c.got) != 0 {
				t.Errorf("reached %d on this node; alice %d+%d, bob %d, carol %d", n, len(a1.got), len(a2.got), len(b.got), len(c.got))
			}
			if len(rec.calls) != tc.calls {
				t.Fatalf("%d calls to the controller, want %d", len(rec.calls), tc.calls)
			}
			var sent []string
			for _, call := range rec.calls {
				for _, cmd := range call {
					if cmd.Skip != h.ConnID(a2) {
						t.Errorf("command %+v does not skip %s", cmd, h.ConnID(a2))
					}
					sent = append(sent, cmd.UserID+string(cmd.Push.Data))
				}
			}
			if want := []string{`alice{"n":1}`, `bob{"n":2}`, `dave{"n":1}`}; fmt.Sprint(sent) != fmt.Sprint(want) {
				t.Errorf("sent %v, want %v", sent, want)
			}
		})
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
	attach(t, h, "t", c)
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
		attach(b, h, "t", c)
	}
	data := []byte(`{"threadId":"t","message":{"body":"hello"}}`)
	b.ReportAllocs()
	for b.Loop() {
		_, _ = h.Publish(context.Background(), "t", &hub.Push{Event: "message", Data: data}, nil)
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "deliveries/s")
}

type discardConn struct{ _ byte } // not zero-sized: distinct pointers are distinct map keys

func (*discardConn) Deliver(*hub.Push) bool { return true }
func (*discardConn) Close(hub.Reason)       {}
