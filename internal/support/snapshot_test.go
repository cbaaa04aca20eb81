package support

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// restored returns an engine restored, through JSON, from s on a new clock
// at now, with a new recorder.
func restored(t *testing.T, s Snapshot, now time.Time) *fixture {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back Snapshot
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	f := &fixture{clk: NewManualClock(now), rec: &recorder{}, cr: &creator{}}
	n := 100
	e, err := Restore(back, Options{Clock: f.clk, Events: f.rec, Threads: f.cr, Grace: 30 * time.Second,
		NewID: func() string { n++; return fmt.Sprint(n) }})
	if err != nil {
		t.Fatal(err)
	}
	f.e = e
	return f
}

// An offer restored elsewhere times out at its first deadline; the engine
// it came from, halted, does nothing when its time comes.
func TestRestoreKeepsOfferDeadline(t *testing.T) {
	f := newFixture(t)
	f.avail(t, "a1", true)
	r := f.ask(t, "v1")
	off := lastOffer(t, f.rec.take(), "a1")
	f.clk.Advance(4 * time.Second)
	g := restored(t, f.e.Snapshot(), f.clk.Now())
	f.e.Halt()
	f.clk.Advance(time.Minute)
	if evs := f.rec.take(); len(evs) != 0 {
		t.Fatalf("the halted engine told %v", kinds(evs))
	}
	g.clk.Advance(6*time.Second - time.Millisecond)
	if evs := g.rec.take(); len(evs) != 0 {
		t.Fatalf("before the deadline: %v", kinds(evs))
	}
	g.clk.Advance(time.Millisecond)
	evs := g.rec.take()
	if len(evs) == 0 || evs[0].kind != "revoked" || evs[0].offerID != off.offerID || evs[0].reason != ReasonTimeout {
		t.Fatalf("at the deadline: %+v", evs)
	}
	if got, ok := g.e.Request(r.ID); !ok || got.State != StateQueued {
		t.Fatalf("request after the timeout: %+v %v", got, ok)
	}
	if _, err := g.e.Accept(context.Background(), "a1", off.offerID); kindOf(err) != KindConflict {
		t.Fatalf("accept of the timed-out offer: %v", err)
	}
}

// A snapshot taken while the thread is being created (the Accept runs on
// the engine that dies) restores the request to its place, the agent told
// the offer failed, and routes it again.
func TestRestorePendingGoesBackToQueue(t *testing.T) {
	f := newFixture(t)
	f.avail(t, "a1", true)
	r := f.ask(t, "v1")
	off := lastOffer(t, f.rec.take(), "a1")
	var snap Snapshot
	f.cr.hook = func() { snap = f.e.Snapshot() }
	if _, err := f.e.Accept(context.Background(), "a1", off.offerID); err != nil {
		t.Fatal(err)
	}
	if len(snap.Requests) != 1 || snap.Requests[0].Request.State != StatePending {
		t.Fatalf("snapshot in flight: %+v", snap.Requests)
	}
	g := restored(t, snap, f.clk.Now())
	evs := g.rec.take()
	if len(evs) < 2 || evs[0].kind != "revoked" || evs[0].reason != ReasonFailed || evs[0].offerID != off.offerID ||
		evs[1].kind != "offer" || evs[1].user != "a1" || evs[1].requestID != r.ID {
		t.Fatalf("events of the restore: %+v", evs)
	}
	got, _ := g.e.Request(r.ID)
	if got.State != StateOffered || got.AgentID != "" {
		t.Fatalf("request after the restore: %+v", got)
	}
	if st, _ := g.e.SetAvailability("a1", []string{"support"}, true, nil); st.Chats != 0 {
		t.Fatalf("a1 keeps %d chats", st.Chats)
	}
}

func TestRestoreRefusesOtherFormat(t *testing.T) {
	f := newFixture(t)
	s := f.e.Snapshot()
	s.Format++
	if _, err := Restore(s, Options{}); err == nil {
		t.Fatal("a snapshot of another format was restored")
	}
}
