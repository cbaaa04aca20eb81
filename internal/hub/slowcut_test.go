package hub_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ecbridge/ecb/internal/hub"
)

// reentrant is a ConnObserver and Metrics that call back into the hub, on
// the thread being pushed, from every hook, as the ops observer does (a
// cut connection's user is gone: presence and support push again).
type reentrant struct {
	h      *hub.Hub
	thread string
	mu     sync.Mutex
	gone   []string
}

func (r *reentrant) touch() {
	if r.h == nil {
		return // not armed yet (the test's setup)
	}
	r.h.Listeners(r.thread)
	_, _ = r.h.Position(context.Background(), r.thread)
	r.h.Connections()
}

func (r *reentrant) ConnRegistered(hub.Conn, string) {}
func (r *reentrant) ConnUnregistered(_ hub.Conn, userID string) {
	r.mu.Lock()
	r.gone = append(r.gone, userID)
	r.mu.Unlock()
	r.touch()
	if r.h == nil {
		return
	}
	_ = r.h.Broadcast(r.thread, &hub.Push{Event: "presence", Data: []byte(`{}`)}, nil)
}
func (r *reentrant) Delivered(int) { r.touch() }
func (r *reentrant) Dropped(int)   { r.touch() }

// refuser refuses every push; its Close comes back into the hub too.
type refuser struct {
	h      *hub.Hub
	thread string
	mu     sync.Mutex
	closed hub.Reason
}

func (c *refuser) Deliver(*hub.Push) bool { return false }
func (c *refuser) Close(r hub.Reason) {
	c.h.Listeners(c.thread)
	c.mu.Lock()
	c.closed = r
	c.mu.Unlock()
}

func (c *refuser) reason() hub.Reason {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// TestSlowConsumersAreCutOutsideTheHubLocks makes a connection refuse a
// push on every path that delivers (Publish, Broadcast, Resume,
// SendToUser, DetachThread), with its Close, the observer and the metrics
// all calling the hub again on the same thread: each path must return (a
// hook called under a hub lock would deadlock), and the connection be cut.
func TestSlowConsumersAreCutOutsideTheHubLocks(t *testing.T) {
	const th = "t"
	paths := map[string]func(h *hub.Hub, c hub.Conn, from hub.Position){
		"publish": func(h *hub.Hub, _ hub.Conn, _ hub.Position) { publish(t, h, th, nil) },
		"broadcast": func(h *hub.Hub, _ hub.Conn, _ hub.Position) {
			_ = h.Broadcast(th, &hub.Push{Event: "typing", Data: []byte(`{}`)}, nil)
		},
		"resume": func(h *hub.Hub, c hub.Conn, from hub.Position) {
			_, _, _, _ = h.Resume(context.Background(), th, c, from)
		},
		"sendToUser": func(h *hub.Hub, _ hub.Conn, _ hub.Position) {
			_, _ = h.SendToUser("slow", &hub.Push{Event: "x", Data: []byte(`{}`)}, nil)
		},
		"detachThread": func(h *hub.Hub, _ hub.Conn, _ hub.Position) {
			_, _ = h.DetachThread(th, &hub.Push{Event: "removed", Data: []byte(`{}`)})
		},
	}
	for name, push := range paths {
		t.Run(name, func(t *testing.T) {
			obs := &reentrant{thread: th}
			h := hub.New(hub.Config{Observer: obs, Metrics: obs})
			other := newConn(100)
			h.Register(other, "other")
			attach(t, h, th, other)
			from := position(t, h, th)
			publish(t, h, th, nil) // something to resume
			c := &refuser{h: h, thread: th}
			h.Register(c, "slow")
			if name != "resume" {
				attach(t, h, th, c)
			}
			obs.h = h // from now on, every hook calls the hub
			done := make(chan struct{})
			go func() {
				defer close(done)
				push(h, c, from)
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("%s did not return: a hook ran under a hub lock", name)
			}
			// A cut found during the broker's delivery is closed from a
			// goroutine of the hub's: wait for it (only a hang fails).
			for deadline := time.Now().Add(10 * time.Second); c.reason() == "" && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
			if c.reason() != hub.ReasonSlow {
				t.Errorf("the refusing connection was closed with %q, want %q", c.reason(), hub.ReasonSlow)
			}
			if n := h.UserConnections("slow"); n != 0 {
				t.Errorf("the refusing connection is still registered (%d)", n)
			}
			obs.mu.Lock()
			defer obs.mu.Unlock()
			if len(obs.gone) != 1 || obs.gone[0] != "slow" {
				t.Errorf("observer told of %v, want [slow]", obs.gone)
			}
		})
	}
}
