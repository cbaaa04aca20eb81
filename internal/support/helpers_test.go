package support

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 1, 9, 0, 0, 0, time.UTC)

// event is one recorded Events call.
type event struct {
	kind      string // queue, offer, revoked, invitation, ended
	user      string // visitor or agent told
	requestID string
	offerID   string
	position  int
	reason    string
	toVisitor bool
	toAgent   bool
	state     State
}

type recorder struct {
	mu     sync.Mutex
	events []event
}

func (r *recorder) add(e event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) Queue(v, id string, pos int, _ time.Duration) {
	r.add(event{kind: "queue", user: v, requestID: id, position: pos})
}
func (r *recorder) Offer(o Offer) {
	r.add(event{kind: "offer", user: o.AgentID, requestID: o.Request.ID, offerID: o.ID})
}
func (r *recorder) OfferRevoked(a, o string, req Request, reason string) {
	r.add(event{kind: "revoked", user: a, offerID: o, requestID: req.ID, reason: reason})
}
func (r *recorder) OfferRejected(a, o string, req Request) {
	r.add(event{kind: "rejected", user: a, offerID: o, requestID: req.ID, state: req.State})
}
func (r *recorder) Invitation(inv Invitation, toV, toA bool) {
	r.add(event{kind: "invitation", user: inv.AgentID, requestID: inv.Request.ID, toVisitor: toV, toAgent: toA})
}
func (r *recorder) RequestEnded(req Request) {
	r.add(event{kind: "ended", user: req.VisitorID, requestID: req.ID, state: req.State})
}

// take returns and forgets the recorded events.
func (r *recorder) take() []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	ev := r.events
	r.events = nil
	return ev
}

// creator is a ThreadCreator; fail makes it fail.
type creator struct {
	mu   sync.Mutex
	n    int
	fail bool
	hook func() // called inside CreateSupportThread, unlocked
}

func (c *creator) CreateSupportThread(_ context.Context, r Request, agentID string) (SupportThread, error) {
	c.mu.Lock()
	c.n++
	n, fail, hook := c.n, c.fail, c.hook
	c.mu.Unlock()
	if hook != nil {
		hook()
	}
	if fail {
		return SupportThread{}, fmt.Errorf("backend down")
	}
	id := fmt.Sprintf("t%d", n)
	return SupportThread{ThreadID: id, Thread: id, VisitorToken: "vt-" + r.VisitorID, AgentToken: "at-" + agentID}, nil
}

type fixture struct {
	e   *Engine
	clk *ManualClock
	rec *recorder
	cr  *creator
}

func newFixture(t testing.TB, wgs ...Workgroup) *fixture {
	t.Helper()
	if len(wgs) == 0 {
		wgs = []Workgroup{{Name: "support", Strategy: RoundRobin, OfferTimeout: 10 * time.Second, MaxChats: 2, Open: true}}
	}
	f := &fixture{clk: NewManualClock(t0), rec: &recorder{}, cr: &creator{}}
	n := 0
	e, err := New(wgs, Options{Clock: f.clk, Events: f.rec, Threads: f.cr, Grace: 30 * time.Second,
		NewID: func() string { n++; return fmt.Sprint(n) }})
	if err != nil {
		t.Fatal(err)
	}
	f.e = e
	return f
}

func (f *fixture) ask(t testing.TB, visitor string) Request {
	t.Helper()
	r, _, _, err := f.e.Ask(Visitor{ID: visitor}, "support", "help?", nil, "")
	if err != nil {
		t.Fatalf("ask %s: %v", visitor, err)
	}
	return r
}

func (f *fixture) avail(t testing.TB, agent string, on bool) {
	t.Helper()
	if _, err := f.e.SetAvailability(agent, []string{"support"}, on, nil); err != nil {
		t.Fatalf("availability %s: %v", agent, err)
	}
}

// lastOffer returns the newest offer event in evs for agent, or fails.
func lastOffer(t testing.TB, evs []event, agent string) event {
	t.Helper()
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].kind == "offer" && evs[i].user == agent {
			return evs[i]
		}
	}
	t.Fatalf("no offer to %s in %+v", agent, evs)
	return event{}
}

func kinds(evs []event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.kind+":"+e.user)
	}
	return out
}
