package cluster_test

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ecbridge/ecb/internal/cluster"
	"github.com/ecbridge/ecb/internal/hub"
	"github.com/ecbridge/ecb/internal/redistest"
)

// node is one in-process cluster member: a hub on a Redis broker.
type node struct {
	c   *cluster.Node
	hub *hub.Hub
}

func newNode(tb testing.TB, cfg cluster.Config) *node {
	tb.Helper()
	n, err := cluster.Open(context.Background(), cfg, nil)
	if err != nil {
		tb.Fatal(err)
	}
	h := hub.New(hub.Config{Broker: n.Broker, Controller: n.Controller, NodeID: n.ID()})
	n.Start(context.Background())
	tb.Cleanup(n.Close)
	waitReady(tb, n)
	return &node{c: n, hub: h}
}

func waitReady(tb testing.TB, n *cluster.Node) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := n.Ready(context.Background())
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("node not ready: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func clusterConfig(tb testing.TB) cluster.Config {
	url := redistest.URL(tb)
	return cluster.Config{RedisURL: url, Prefix: redistest.Prefix(tb, url, "ecbtest"), Partitions: 4, ProbeInterval: 100 * time.Millisecond}
}

// conn collects what the hub delivers.
type conn struct {
	mu     sync.Mutex
	got    []*hub.Push
	closed hub.Reason
	notify chan struct{}
}

func newConn() *conn { return &conn{notify: make(chan struct{}, 1)} }

func (c *conn) Deliver(p *hub.Push) bool {
	c.mu.Lock()
	c.got = append(c.got, p)
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
	return true
}

func (c *conn) Close(r hub.Reason) {
	c.mu.Lock()
	c.closed = r
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

func (c *conn) offsets() []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []uint64
	for _, p := range c.got {
		out = append(out, p.Offset)
	}
	return out
}

// waitFor waits until cond holds; only a hang (10 s) fails.
func (c *conn) waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.After(10 * time.Second)
	for !cond() {
		select {
		case <-c.notify:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			tb.Fatalf("timed out waiting for %s; got offsets %v", what, c.offsets())
		}
	}
}

func (c *conn) waitCount(tb testing.TB, n int) {
	tb.Helper()
	c.waitFor(tb, "pushes", func() bool { return len(c.offsets()) >= n })
}

func publish(tb testing.TB, h *hub.Hub, thread string, skip hub.Conn) hub.Position {
	tb.Helper()
	pos, err := h.Publish(context.Background(), thread, &hub.Push{Event: "message", Data: []byte(`{"x":1}`)}, skip)
	if err != nil {
		tb.Fatal(err)
	}
	return pos
}

func seq(from, to uint64) []uint64 {
	var out []uint64
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

func TestFanOutAcrossNodesOnceInOrderWithOneOffsetSequence(t *testing.T) {
	cfg := clusterConfig(t)
	a, b := newNode(t, cfg), newNode(t, cfg)
	ctx := context.Background()
	la, lb, author := newConn(), newConn(), newConn()
	a.hub.Register(la, "u1")
	a.hub.Register(author, "u2")
	b.hub.Register(lb, "u3")
	for _, x := range []struct {
		h *hub.Hub
		c hub.Conn
	}{{a.hub, la}, {a.hub, author}, {b.hub, lb}} {
		if _, err := x.h.Attach(ctx, "t", x.c); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for i := range 40 {
		h := a.hub
		var skip hub.Conn
		if i%2 == 1 {
			h = b.hub
		} else {
			skip = author
		}
		wg.Go(func() { publish(t, h, "t", skip) })
	}
	wg.Wait()
	la.waitCount(t, 40)
	lb.waitCount(t, 40)
	if got := la.offsets(); !slices.Equal(got, seq(1, 40)) {
		t.Fatalf("listener on A got %v", got)
	}
	if got := lb.offsets(); !slices.Equal(got, seq(1, 40)) {
		t.Fatalf("listener on B got %v", got)
	}
	author.waitCount(t, 20)
	if n := len(author.offsets()); n != 20 {
		t.Fatalf("the author got %d pushes, want the 20 it did not send", n)
	}
}

func TestResumeOnAnotherNodeGetsExactlyTheMissedPushes(t *testing.T) {
	cfg := clusterConfig(t)
	a, b := newNode(t, cfg), newNode(t, cfg)
	ctx := context.Background()
	first := newConn()
	a.hub.Register(first, "u")
	start, err := a.hub.Attach(ctx, "t", first)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		publish(t, a.hub, "t", nil)
	}
	first.waitCount(t, 5)
	seen := hub.Position{Epoch: start.Epoch, Offset: 2} // the client processed 1 and 2
	a.hub.Unregister(first)                             // its node "died"

	again := newConn()
	b.hub.Register(again, "u")
	missed, ok, now, err := b.hub.Resume(ctx, "t", again, seen)
	if err != nil || !ok || missed != 3 || now.Offset != 5 {
		t.Fatalf("resume: missed %d ok %v now %+v err %v", missed, ok, now, err)
	}
	publish(t, a.hub, "t", nil)
	again.waitCount(t, 4)
	if got := again.offsets(); !slices.Equal(got, seq(3, 6)) {
		t.Fatalf("resumed connection got %v, want 3..6", got)
	}
	if _, ok, _, _ := b.hub.Resume(ctx, "t", newRegistered(b.hub), hub.Position{Epoch: "other", Offset: 1}); ok {
		t.Fatal("a position of another epoch was recovered")
	}
}

func newRegistered(h *hub.Hub) *conn {
	c := newConn()
	h.Register(c, "x")
	return c
}

// A publication lost on the wire (here: appended without PUBLISH) is fetched
// from the history before the next one is handed on.
func TestAGapOnTheWireIsFilledFromTheHistory(t *testing.T) {
	cfg := clusterConfig(t)
	a, b := newNode(t, cfg), newNode(t, cfg)
	ctx := context.Background()
	l := newConn()
	b.hub.Register(l, "u")
	if _, err := b.hub.Attach(ctx, "t", l); err != nil {
		t.Fatal(err)
	}
	publish(t, a.hub, "t", nil)
	l.waitCount(t, 1)
	// Append offset 2 the way the script does, but publish nothing.
	silent := redis.NewScript(`
local offset = redis.call('HINCRBY', KEYS[1], 'o', 1)
redis.call('XADD', KEYS[2], '0-' .. offset, 'd', ARGV[1])
return offset`)
	meta, stream := cluster.KeysOf(cfg, "t")
	if err := silent.Run(ctx, a.c.Redis(), []string{meta, stream}, `{"e":"message","d":{"lost":true},"t":"`+time.Now().UTC().Format(time.RFC3339Nano)+`"}`).Err(); err != nil {
		t.Fatal(err)
	}
	publish(t, a.hub, "t", nil)
	l.waitCount(t, 3)
	if got := l.offsets(); !slices.Equal(got, []uint64{1, 2, 3}) {
		t.Fatalf("got %v, want 1 2 3", got)
	}
}

func TestCommandsReachEveryNode(t *testing.T) {
	cfg := clusterConfig(t)
	a, b := newNode(t, cfg), newNode(t, cfg)
	ctx := context.Background()
	onA, onB, other := newConn(), newConn(), newConn()
	a.hub.Register(onA, "alice")
	b.hub.Register(onB, "alice")
	b.hub.Register(other, "bob")
	if _, err := b.hub.Attach(ctx, "t", onB); err != nil {
		t.Fatal(err)
	}
	if _, err := a.hub.SendToUser("alice", &hub.Push{Event: "thread", Data: []byte(`{}`)}, nil); err != nil {
		t.Fatal(err)
	}
	onA.waitCount(t, 1)
	onB.waitCount(t, 1)
	// A ban issued on A detaches alice's listener on B.
	if _, err := a.hub.DetachUser("t", "alice"); err != nil {
		t.Fatal(err)
	}
	onB.waitFor(t, "the detach", func() bool { return b.hub.Listeners("t") == 0 })
	publish(t, a.hub, "t", nil)
	if _, err := a.hub.DisconnectUser("alice", hub.ReasonKicked); err != nil {
		t.Fatal(err)
	}
	onB.waitFor(t, "the kick", func() bool { onB.mu.Lock(); defer onB.mu.Unlock(); return onB.closed == hub.ReasonKicked })
	if n := len(onB.offsets()); n != 1 {
		t.Fatalf("alice on B got %d pushes, want only the thread push (detached before the message)", n)
	}
	if len(other.offsets()) != 0 || other.closed != "" {
		t.Fatal("bob was reached")
	}
}

// A subscription that silently stops delivering makes the node not ready.
func TestASilentSubscriptionMakesTheNodeNotReady(t *testing.T) {
	cfg := clusterConfig(t)
	a := newNode(t, cfg)
	if err := a.c.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
	cluster.SilenceProbes(a.c)
	deadline := time.Now().Add(10 * time.Second)
	for a.c.Ready(context.Background()) == nil {
		if time.Now().After(deadline) {
			t.Fatal("the node stayed ready with a subscription that delivers nothing")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A push published again with the same key (a retried message that reaches
// another node) takes no second position and reaches nobody twice.
func TestAKeyedPushIsPublishedOnceWhicheverNodeRetries(t *testing.T) {
	cfg := clusterConfig(t)
	a, b := newNode(t, cfg), newNode(t, cfg)
	l := newConn()
	b.hub.Register(l, "u")
	if _, err := b.hub.Attach(context.Background(), "t", l); err != nil {
		t.Fatal(err)
	}
	p1 := &hub.Push{Event: "message", Data: []byte(`{}`), Key: "m1"}
	first, err := a.hub.Publish(context.Background(), "t", p1, nil)
	if err != nil || p1.Repeated {
		t.Fatalf("first publish: %v, repeated %v", err, p1.Repeated)
	}
	p2 := &hub.Push{Event: "message", Data: []byte(`{}`), Key: "m1"}
	again, err := b.hub.Publish(context.Background(), "t", p2, nil)
	if err != nil || again != first || !p2.Repeated {
		t.Fatalf("retry answered %+v, %v, repeated %v; want the first position %+v, repeated", again, err, p2.Repeated, first)
	}
	publish(t, a.hub, "t", nil)
	l.waitCount(t, 2)
	if got := l.offsets(); !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("listener got %v, want [1 2]", got)
	}
}

// SendToUsers reaches every named user's connections on every node, each
// with its own push, in the order given, but the skipped connection; it
// reaches nobody else. Then a command sent after it arrives after it (one
// node's commands keep their order, pipelined or not).
func TestSendToUsersReachesEveryUserOnEveryNodeInOrder(t *testing.T) {
	cfg := clusterConfig(t)
	a, b := newNode(t, cfg), newNode(t, cfg)
	users := []string{"u1", "u2", "u3", "u4", "u5"}
	onA, onB := map[string]*conn{}, map[string]*conn{}
	for _, u := range users {
		onA[u], onB[u] = newConn(), newConn()
		a.hub.Register(onA[u], u)
		b.hub.Register(onB[u], u)
	}
	bob := newConn()
	b.hub.Register(bob, "bob")
	var pushes []hub.UserPush
	for i, u := range users {
		pushes = append(pushes, hub.UserPush{UserID: u, Push: &hub.Push{Event: "mention", Data: []byte(`{"i":` + strconv.Itoa(i) + `}`)}})
	}
	// The same user twice: two pushes, in order.
	pushes = append(pushes, hub.UserPush{UserID: "u1", Push: &hub.Push{Event: "mention", Data: []byte(`{"i":9}`)}})
	n, err := a.hub.SendToUsers(pushes, onA["u2"])
	if err != nil {
		t.Fatal(err)
	}
	if n != len(pushes)-1 { // this node's connections reached: all but the skipped one
		t.Errorf("SendToUsers reached %d connections on its node, want %d", n, len(pushes)-1)
	}
	if _, err := a.hub.SendToUser("u1", &hub.Push{Event: "after", Data: []byte(`{}`)}, nil); err != nil {
		t.Fatal(err)
	}
	data := func(c *conn) []string {
		c.mu.Lock()
		defer c.mu.Unlock()
		var out []string
		for _, p := range c.got {
			out = append(out, p.Event+string(p.Data))
		}
		return out
	}
	for i, u := range users {
		want := []string{`mention{"i":` + strconv.Itoa(i) + `}`}
		if u == "u1" {
			want = append(want, `mention{"i":9}`, "after{}")
		}
		onB[u].waitCount(t, len(want))
		if got := data(onB[u]); !slices.Equal(got, want) {
			t.Errorf("%s on the other node got %v, want %v", u, got, want)
		}
		if u == "u2" {
			want = nil
		}
		onA[u].waitCount(t, len(want))
		if got := data(onA[u]); !slices.Equal(got, want) {
			t.Errorf("%s on the sending node got %v, want %v", u, got, want)
		}
	}
	if got := data(bob); len(got) != 0 {
		t.Errorf("bob, not named, got %v", got)
	}
}

// BenchmarkSendToUsers: a push to each of 20 users (a message's most
// mentions) from one node, with the users on another node, over the real
// Redis: one SendToUser per user against one SendToUsers for all. One op is
// the 20 pushes sent (not yet received).
func BenchmarkSendToUsers(b *testing.B) {
	cfg := clusterConfig(b)
	a, other := newNode(b, cfg), newNode(b, cfg)
	var pushes []hub.UserPush
	for i := range 20 {
		u := "user" + strconv.Itoa(i)
		other.hub.Register(newDrain(), u)
		pushes = append(pushes, hub.UserPush{UserID: u, Push: &hub.Push{Event: "mention", Data: []byte(`{"threadId":"t","message":{"id":"m","body":"hello"}}`)}})
	}
	b.Run("one_by_one", func(b *testing.B) {
		for b.Loop() {
			for _, up := range pushes {
				if _, err := a.hub.SendToUser(up.UserID, up.Push, nil); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("batched", func(b *testing.B) {
		for b.Loop() {
			if _, err := a.hub.SendToUsers(pushes, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// drain is a connection that takes every push and keeps none.
type drain struct{}

func newDrain() *drain                { return &drain{} }
func (*drain) Deliver(*hub.Push) bool { return true }
func (*drain) Close(hub.Reason)       {}
