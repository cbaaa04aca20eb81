package sioapi

import "testing"

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
