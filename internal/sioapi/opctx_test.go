package sioapi

import (
	"testing"
	"testing/synctest"

	"github.com/ecbridge/ecb/internal/stacktest"
)

// An operation's context is its own (not a child of the socket's, whose
// bookkeeping would stay with the idle socket), cancelled when it ends and
// when the socket disconnects, and one started after the disconnect starts
// cancelled.
func TestOperationContext(t *testing.T) {
	c := &conn{}
	ctx, cancel := c.opContext()
	if ctx.Err() != nil || c.cancelOp == nil {
		t.Fatal("a running operation's context is done, or not known to the socket")
	}
	cancel()
	if ctx.Err() == nil || c.cancelOp != nil {
		t.Fatal("an operation that ended left its context open, or its cancel func behind")
	}
	running, cancelRunning := c.opContext()
	defer cancelRunning()
	c.cancelOps()
	if running.Err() == nil {
		t.Fatal("the disconnect did not cancel the running operation")
	}
	later, cancelLater := c.opContext()
	defer cancelLater()
	if later.Err() == nil {
		t.Fatal("an operation after the disconnect is not cancelled")
	}
}

// A connected socket keeps the verified user, not the raw CONNECT payload
// (the token and the frame it came in).
func TestSocketKeepsNoRawAuth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, Config{}, stacktest.Options{})
		e.connect(map[string]string{"userToken": e.st.UserToken("alice")})
		e.api.mu.Lock()
		defer e.api.mu.Unlock()
		if len(e.api.conns) != 1 {
			t.Fatalf("%d sockets", len(e.api.conns))
		}
		for c := range e.api.conns {
			if h := c.socket.Handshake(); h.Auth != nil || c.sess.current().ID != "alice" {
				t.Fatalf("auth %q kept, user %+v", h.Auth, c.sess.current())
			}
		}
	})
}
