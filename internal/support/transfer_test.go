package support

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// JoinSupportThread makes the test creator a ThreadJoiner.
func (c *creator) JoinSupportThread(_ context.Context, r Request, agentID string) (SupportThread, error) {
	c.mu.Lock()
	fail := c.fail
	c.mu.Unlock()
	if fail {
		return SupportThread{}, fmt.Errorf("backend down")
	}
	return SupportThread{ThreadID: r.ThreadID, Thread: r.ThreadID, AgentToken: "at-" + agentID}, nil
}

func kindOf(err error) Kind {
	var se *Error
	if errors.As(err, &se) {
		return se.Kind
	}
	return 0
}

func TestTransfer(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.avail(t, "a", true)
	r := f.ask(t, "v")
	o := lastOffer(t, f.rec.take(), "a")
	inv, err := f.e.Accept(ctx, "a", o.offerID)
	if err != nil {
		t.Fatal(err)
	}
	f.rec.take()
	// b is unknown (not available): conflict; a stranger: not found.
	if _, err := f.e.Transfer(ctx, "a", r.ID, "b"); kindOf(err) != KindConflict {
		t.Fatalf("transfer to unavailable: %v", err)
	}
	if _, err := f.e.Transfer(ctx, "x", r.ID, "a"); kindOf(err) != KindNotFound {
		t.Fatalf("transfer by stranger: %v", err)
	}
	// c serves another workgroup: forbidden.
	if err := f.e.SetWorkgroup(Workgroup{Name: "sales", Strategy: RoundRobin, OfferTimeout: time.Second, MaxChats: 1, Open: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.e.SetAvailability("c", []string{"sales"}, true, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.e.Transfer(ctx, "a", r.ID, "c"); kindOf(err) != KindForbidden {
		t.Fatalf("transfer to another workgroup's agent: %v", err)
	}
	// b full: conflict.
	zero := 0
	one := 1
	if _, err := f.e.SetAvailability("b", []string{"support"}, true, &one); err != nil {
		t.Fatal(err)
	}
	f.ask(t, "w")
	if _, err := f.e.Accept(ctx, "b", lastOffer(t, f.rec.take(), "b").offerID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.e.Transfer(ctx, "a", r.ID, "b"); kindOf(err) != KindConflict {
		t.Fatalf("transfer to a full agent: %v", err)
	}
	if _, err := f.e.SetAvailability("b", []string{"support"}, true, &zero); err != nil {
		t.Fatal(err)
	}
	f.rec.take()
	// a -> b: b is invited into the same thread; a's slot is freed.
	got, err := f.e.Transfer(ctx, "a", r.ID, "b")
	if err != nil {
		t.Fatal(err)
	}
	if got.AgentID != "b" || got.Request.ThreadID != inv.Request.ThreadID || got.Request.ThreadOwner != "a" || !got.Transfer {
		t.Fatalf("invitation %+v", got)
	}
	if evs := f.rec.take(); len(evs) == 0 || evs[0].kind != "invitation" || evs[0].user != "b" || evs[0].toVisitor {
		t.Fatalf("events %+v", evs)
	}
	if err := f.e.Close("a", r.ID); kindOf(err) != KindNotFound {
		t.Fatalf("a closes a chat no longer theirs: %v", err)
	}
	// b -> queue: offered again (to a, b just had it) and accepted into the same thread.
	if _, err := f.e.Transfer(ctx, "b", r.ID, ""); err != nil {
		t.Fatal(err)
	}
	o2 := lastOffer(t, f.rec.take(), "a")
	inv2, err := f.e.Accept(ctx, "a", o2.offerID)
	if err != nil {
		t.Fatal(err)
	}
	if inv2.Request.ThreadID != inv.Request.ThreadID {
		t.Fatalf("a new thread after the queue: %+v", inv2)
	}
	if cs, _ := f.e.Conversations("support"); len(cs) != 2 {
		t.Fatalf("conversations %+v", cs)
	}
	if err := f.e.Close("v", r.ID); err != nil {
		t.Fatal(err)
	}
}
