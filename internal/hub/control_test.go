package hub_test

import (
	"testing"

	"github.com/ecbridge/ecb/internal/hub"
)

func TestDetachUserStopsOnlyThatUserOnThatThread(t *testing.T) {
	h := hub.New(hub.Config{})
	a1, a2, aOther, b := newConn(10), newConn(10), newConn(10), newConn(10)
	h.Register(a1, "alice")
	h.Register(a2, "alice")
	h.Register(aOther, "alice")
	h.Register(b, "bob")
	for _, c := range []*testConn{a1, a2, b} {
		attach(t, h, "t1", c)
	}
	attach(t, h, "t2", a1)
	attach(t, h, "t2", aOther)

	if got, _ := h.DetachUser("t1", "alice"); got != 2 {
		t.Fatalf("detached %d connections, want 2", got)
	}
	if n := h.Listeners("t1"); n != 1 {
		t.Fatalf("t1 has %d listeners, want bob's 1", n)
	}
	publish(t, h, "t1", nil)
	publish(t, h, "t2", nil)
	if n := len(a1.offsets()); n != 1 {
		t.Errorf("alice's first connection got %d pushes, want only t2's", n)
	}
	if n := len(a2.offsets()); n != 0 {
		t.Errorf("alice's second connection got %d pushes", n)
	}
	if n := len(b.offsets()); n != 1 {
		t.Errorf("bob got %d pushes, want 1", n)
	}
	if n := h.Attached(a1); n != 1 {
		t.Errorf("alice's first connection still counts %d threads, want 1", n)
	}
	if got, _ := h.DetachUser("t1", "alice"); got != 0 {
		t.Errorf("second detach found %d", got)
	}
}

func TestDetachThreadDeliversLastPushThenNothing(t *testing.T) {
	h := hub.New(hub.Config{})
	a, b, full, other := newConn(10), newConn(10), newConn(0), newConn(10)
	for i, c := range []*testConn{a, b, full, other} {
		h.Register(c, string(rune('a'+i)))
	}
	for _, c := range []*testConn{a, b, full} {
		attach(t, h, "t1", c)
	}
	attach(t, h, "t2", other)
	if n, _ := h.DetachThread("t1", &hub.Push{Event: "thread", Data: []byte(`{"change":"deleted"}`)}); n != 2 {
		t.Fatalf("told %d, want 2", n)
	}
	if full.closed != hub.ReasonSlow {
		t.Errorf("a listener that could not take the push was not closed as slow: %q", full.closed)
	}
	if n := h.Listeners("t1"); n != 0 {
		t.Fatalf("%d listeners left", n)
	}
	for _, c := range []*testConn{a, b} {
		if h.Attached(c) != 0 {
			t.Error("connection still counts the deleted thread")
		}
	}
	publish(t, h, "t1", nil)
	if len(a.got) != 1 || a.got[0].Event != "thread" {
		t.Errorf("a got %d pushes", len(a.got))
	}
	if len(other.got) != 0 {
		t.Error("another thread's listener was told")
	}
	if n, _ := h.DetachThread("never", &hub.Push{}); n != 0 {
		t.Errorf("unknown thread: %d", n)
	}
}

func TestDisconnectUserClosesEveryConnection(t *testing.T) {
	h := hub.New(hub.Config{})
	a1, a2, b := newConn(10), newConn(10), newConn(10)
	h.Register(a1, "alice")
	h.Register(a2, "alice")
	h.Register(b, "bob")
	attach(t, h, "t1", a1)
	attach(t, h, "t1", b)
	if n, _ := h.DisconnectUser("alice", hub.ReasonKicked); n != 2 {
		t.Fatalf("closed %d, want 2", n)
	}
	if a1.closed != hub.ReasonKicked || a2.closed != hub.ReasonKicked {
		t.Errorf("reasons %q %q", a1.closed, a2.closed)
	}
	if b.closed != "" {
		t.Error("bob was closed")
	}
	if n := h.UserConnections("alice"); n != 0 {
		t.Errorf("alice keeps %d connections", n)
	}
	if n := h.Listeners("t1"); n != 1 {
		t.Errorf("t1 has %d listeners, want 1", n)
	}
	if n, _ := h.DisconnectUser("nobody", hub.ReasonKicked); n != 0 {
		t.Errorf("nobody: %d", n)
	}
}
