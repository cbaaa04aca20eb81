package hub_test

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"

	"github.com/ecbridge/ecb/internal/hub"
)

func TestPayloadPutsThePositionBesideTheData(t *testing.T) {
	cases := []struct {
		p    *hub.Push
		want string
	}{
		{&hub.Push{Data: []byte(`{"threadId":"t"}`), Epoch: "e1", Offset: 7}, `{"epoch":"e1","offset":7,"threadId":"t"}`},
		{&hub.Push{Data: []byte(`{}`), Epoch: "e\"q", Offset: 1}, `{"epoch":"e\"q","offset":1}`},
		{&hub.Push{Data: []byte(`{"a":1}`)}, `{"a":1}`}, // no position: as it is
	}
	for _, c := range cases {
		got := c.p.Payload()
		if string(got) != c.want {
			t.Errorf("Payload(%s) = %s, want %s", c.p.Data, got, c.want)
		}
		if !json.Valid(got) {
			t.Errorf("Payload(%s) is not JSON", c.p.Data)
		}
	}
}

// gatedBroker is a MemoryBroker whose Subscribe waits for a signal, so that
// pushes can be published while a node subscribes: before the memory
// broker's own subscription, or (subscribeFirst) after it and before its
// answer, when they reach the hub while its subscription is not yet synced.
type gatedBroker struct {
	*hub.MemoryBroker
	subscribeFirst bool
	entered        chan struct{}
	release        chan struct{}
}

func (b *gatedBroker) Subscribe(ctx context.Context, threadID string) (hub.Position, error) {
	if b.subscribeFirst {
		pos, err := b.MemoryBroker.Subscribe(ctx, threadID)
		close(b.entered)
		<-b.release
		return pos, err
	}
	close(b.entered)
	<-b.release
	return b.MemoryBroker.Subscribe(ctx, threadID)
}

// attachWhilePublishing attaches a connection to thread "t" while three
// pushes are published during the hub's subscription, and returns what
// Attach returned.
func attachWhilePublishing(t *testing.T, subscribeFirst bool) (*hub.Hub, *testConn, hub.Position) {
	t.Helper()
	mem := hub.NewMemoryBroker(64, 0)
	b := &gatedBroker{MemoryBroker: mem, subscribeFirst: subscribeFirst, entered: make(chan struct{}), release: make(chan struct{})}
	h := hub.New(hub.Config{Broker: b})
	c := newConn(100)
	h.Register(c, "u")
	var pos hub.Position
	done := make(chan struct{})
	go func() {
		defer close(done)
		pos = attach(t, h, "t", c)
	}()
	<-b.entered
	for range 3 {
		if _, err := mem.Publish(context.Background(), "t", &hub.Push{Event: "message", Data: []byte(`{}`)}); err != nil {
			t.Error(err)
		}
	}
	close(b.release)
	<-done
	return h, c, pos
}

// The first listener's subscription races with publishes: the pushes up to
// the position Attach returns never reach it, every later one does, once.
func TestAttachWhileSubscribingGivesExactlyThePushesAfterItsPosition(t *testing.T) {
	h, c, pos := attachWhilePublishing(t, false)
	publish(t, h, "t", nil)
	publish(t, h, "t", nil)
	if pos.Offset != 3 {
		t.Fatalf("attach position %+v, want offset 3", pos)
	}
	if got := c.offsets(); !slices.Equal(got, []uint64{4, 5}) {
		t.Fatalf("listener got %v, want [4 5]", got)
	}
}

// Pushes that arrive between the broker's subscription and its answer wait,
// then fan out after it: the connection that joined meanwhile listens from
// the subscription's position (not from where those pushes left the
// thread), and gets each of them once.
func TestAttachWhileSubscribingListensFromTheSubscription(t *testing.T) {
	_, c, pos := attachWhilePublishing(t, true)
	if pos.Offset != 0 {
		t.Fatalf("attach position %+v, want offset 0 (the subscription's)", pos)
	}
	if got := c.offsets(); !slices.Equal(got, []uint64{1, 2, 3}) {
		t.Fatalf("listener got %v, want [1 2 3]", got)
	}
}

// Pushes published while a connection resumes come after its missed ones,
// each once, in offset order.
func TestResumeKeepsOrderWithConcurrentPublishes(t *testing.T) {
	h := hub.New(hub.Config{HistorySize: 4096})
	start := position(t, h, "t")
	for range 50 {
		publish(t, h, "t", nil)
	}
	for round := range 20 {
		c := newConn(10000)
		h.Register(c, "u")
		var wg sync.WaitGroup
		wg.Go(func() {
			for range 20 {
				publish(t, h, "t", nil)
			}
		})
		missed, ok, now := resume(t, h, "t", c, start)
		wg.Wait()
		publish(t, h, "t", nil)
		last := position(t, h, "t").Offset
		got := c.offsets()
		if !ok || uint64(missed) != now.Offset {
			t.Fatalf("round %d: resume missed=%d ok=%v now=%+v", round, missed, ok, now)
		}
		if uint64(len(got)) != last {
			t.Fatalf("round %d: got %d pushes, want %d: %v (now %+v)", round, len(got), last, got, now)
		}
		for i, o := range got {
			if o != uint64(i+1) {
				t.Fatalf("round %d: push %d has offset %d", round, i, o)
			}
		}
		h.Unregister(c)
	}
}

// reentrantConn refuses every push and, when closed, comes back into the hub
// (as a transport's close does: it unregisters itself).
type reentrantConn struct {
	*testConn
	h *hub.Hub
}

func (c reentrantConn) Close(r hub.Reason) {
	c.h.Unregister(c)
	c.testConn.Close(r)
}

// A listener cut as slow while the memory broker delivers (under its own
// lock) is closed outside that lock: its close may unsubscribe the thread
// from the broker without a deadlock.
func TestSlowCutDuringDeliveryDoesNotDeadlockTheBroker(t *testing.T) {
	h := hub.New(hub.Config{})
	c := reentrantConn{newConn(0), h}
	h.Register(c, "u")
	attach(t, h, "t", c)
	publish(t, h, "t", nil)
	if r := c.closedWith(t); r != hub.ReasonSlow {
		t.Fatalf("closed with %q, want slow", r)
	}
	publish(t, h, "t", nil) // the broker still answers
	if n := h.Listeners("t"); n != 0 {
		t.Fatalf("%d listeners left", n)
	}
}

func TestAKeyedPushIsPublishedOnce(t *testing.T) {
	h := hub.New(hub.Config{HistorySize: 2})
	c := newConn(10)
	h.Register(c, "u")
	attach(t, h, "t", c)
	key := func(k string, repeated bool) hub.Position {
		t.Helper()
		p := &hub.Push{Event: "message", Data: []byte(`{}`), Key: k}
		pos, err := h.Publish(context.Background(), "t", p, nil)
		if err != nil {
			t.Fatal(err)
		}
		if p.Repeated != repeated {
			t.Fatalf("push %s: Repeated %v, want %v", k, p.Repeated, repeated)
		}
		return pos
	}
	first := key("m1", false)
	if again := key("m1", true); again != first {
		t.Fatalf("retry got %+v, want %+v", again, first)
	}
	key("m2", false)
	key("m3", false) // m1 leaves the history of 2
	if again := key("m1", false); again.Offset != 4 {
		t.Fatalf("a key older than the history published at %+v, want a new offset 4", again)
	}
	if got := c.offsets(); !slices.Equal(got, []uint64{1, 2, 3, 4}) {
		t.Fatalf("listener got %v", got)
	}
}
