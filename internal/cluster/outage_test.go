package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ecbridge/ecb/internal/cluster"
	"github.com/ecbridge/ecb/internal/hub"
)

// cutProxy forwards TCP connections to Redis until Cut, which closes them all
// and refuses new ones until Restore: one node's Redis becomes unreachable
// while the others' stays up.
type cutProxy struct {
	target, addr string
	mu           sync.Mutex
	ln           net.Listener
	conns        []net.Conn
	wg           sync.WaitGroup
}

func newCutProxy(tb testing.TB, target string) *cutProxy {
	tb.Helper()
	p := &cutProxy{target: target}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	tb.Cleanup(func() { p.Cut(); p.wg.Wait() })
	return p
}

func (p *cutProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			p.wg.Go(func() { _, _ = io.Copy(up, c); up.Close() })
			p.wg.Go(func() { _, _ = io.Copy(c, up); c.Close() })
		}
	})
}

// Cut closes the listener and every forwarded connection.
func (p *cutProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// Restore listens again on the same address.
func (p *cutProxy) Restore(tb testing.TB) {
	tb.Helper()
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		tb.Fatal(err)
	}
	p.serve(ln)
}

// throughProxy returns cfg for a node that reaches the Redis of cfg through
// a proxy the test can cut.
func throughProxy(tb testing.TB, cfg cluster.Config) (*cutProxy, cluster.Config) {
	tb.Helper()
	opt, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		tb.Fatal(err)
	}
	proxy := newCutProxy(tb, opt.Addr)
	cfg.RedisURL = fmt.Sprintf("redis://%s/%d", proxy.addr, opt.DB)
	cfg.Timeout = 500 * time.Millisecond
	return proxy, cfg
}

func (c *conn) reason() hub.Reason {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// TestAnOutageFansOutLocallyThenEveryListenerResyncs: node A loses its
// Redis while node B keeps it. A's publishes still reach A's own listeners,
// in order, at the offsets after the last one; B's listener never gets them.
// Once A reaches Redis again it starts a new epoch for the thread and every
// listener on both nodes is told to resync, so none of them keeps a silent
// gap: resuming from a position of the old epoch says recovered: false.
func TestAnOutageFansOutLocallyThenEveryListenerResyncs(t *testing.T) {
	cfg := clusterConfig(t)
	proxy, cfgA := throughProxy(t, cfg)
	a, b := newNode(t, cfgA), newNode(t, cfg)
	ctx := context.Background()
	la, lb := newConn(), newConn()
	a.hub.Register(la, "ua")
	b.hub.Register(lb, "ub")
	start, err := a.hub.Attach(ctx, "t", la)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.hub.Attach(ctx, "t", lb); err != nil {
		t.Fatal(err)
	}
	publish(t, a.hub, "t", nil)
	la.waitCount(t, 1)
	lb.waitCount(t, 1)

	proxy.Cut()
	for i := range 3 {
		pos, err := a.hub.Publish(ctx, "t", &hub.Push{Event: "message", Key: "m" + string(rune('a'+i)), Data: []byte(`{"x":2}`)}, nil)
		if err != nil {
			t.Fatalf("publish %d during the outage: %v, want local fan-out", i, err)
		}
		if pos.Epoch != start.Epoch || pos.Offset != uint64(2+i) {
			t.Fatalf("local publish %d at %+v, want %s/%d", i, pos, start.Epoch, 2+i)
		}
	}
	// A retry of a push already fanned out answers its position again.
	retry := &hub.Push{Event: "message", Key: "mb", Data: []byte(`{"x":2}`)}
	if pos, err := a.hub.Publish(ctx, "t", retry, nil); err != nil || pos.Offset != 3 || !retry.Repeated {
		t.Fatalf("retried local publish: %+v %v repeated %v, want offset 3, repeated", pos, err, retry.Repeated)
	}
	la.waitCount(t, 4)
	if got := la.offsets(); len(got) != 4 || got[1] != 2 || got[2] != 3 || got[3] != 4 {
		t.Fatalf("A's listener got %v, want 1 2 3 4", got)
	}
	if got := lb.offsets(); len(got) != 1 {
		t.Fatalf("B's listener got %v during A's outage, want only 1", got)
	}
	if err := a.c.Ready(ctx); err == nil {
		t.Fatal("node A reports ready without its Redis")
	}

	proxy.Restore(t)
	la.waitFor(t, "A's listener told to resync", func() bool { return la.reason() == hub.ReasonResync })
	lb.waitFor(t, "B's listener told to resync", func() bool { return lb.reason() == hub.ReasonResync })
	waitReady(t, a.c)

	again := newRegistered(b.hub)
	if _, ok, now, err := b.hub.Resume(ctx, "t", again, hub.Position{Epoch: start.Epoch, Offset: 4}); err != nil || ok || now.Epoch == start.Epoch {
		t.Fatalf("resume from the local fan-out's position: recovered %v now %+v err %v, want recovered false in a new epoch", ok, now, err)
	}
	// The chat goes on in the new epoch, on both nodes.
	la2 := newRegistered(a.hub)
	if _, err := a.hub.Attach(ctx, "t", la2); err != nil {
		t.Fatal(err)
	}
	pos := publish(t, b.hub, "t", nil)
	la2.waitCount(t, 1)
	again.waitCount(t, 1)
	if pos.Offset != 1 {
		t.Fatalf("first push after the heal at %+v, want offset 1 of the new epoch", pos)
	}
}

// TestAnOutageWithNoLocalListenerAnswersUnavailable: with nobody on this
// node to serve, a publish that cannot reach Redis is refused as before.
func TestAnOutageWithNoLocalListenerAnswersUnavailable(t *testing.T) {
	cfg := clusterConfig(t)
	proxy, cfgA := throughProxy(t, cfg)
	a := newNode(t, cfgA)
	proxy.Cut()
	_, err := a.hub.Publish(context.Background(), "nobody", &hub.Push{Event: "message", Data: []byte(`{}`)}, nil)
	if !errors.Is(err, hub.ErrUnavailable) {
		t.Fatalf("publish with no local listener during an outage: %v, want ErrUnavailable", err)
	}
}
