package support

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// These tests drive the engine with pushes that refuse: the hub cuts a
// connection whose queue is full, and the end of the user's last connection
// comes back into the engine (VisitorGone, AgentGone) from inside the event
// that made the push. With the events sent under the engine's lock, that
// call waits for the lock its own goroutine holds, and no workgroup routes
// again.

// story is one support conversation through every transition of the
// engine, with a propEvents that checks the invariants and can refuse.
type story struct {
	e      *Engine
	clk    *ManualClock
	p      *propEvents
	asked  []string
	refuse map[string]bool // users whose pushes refuse now
	req    string          // the conversation's request
	ctx    context.Context
}

// The kinds of push targets and their users; the probe's users never refuse.
var refuserKinds = map[string][]string{"visitor": {"v"}, "agent": {"a1", "a2"}, "supervisor": {"s"}}

func newStory(t *testing.T) *story {
	t.Helper()
	s := &story{clk: NewManualClock(t0), refuse: map[string]bool{}, ctx: context.Background()}
	s.p = &propEvents{t: t, offers: map[string]Offer{}, ended: map[string]State{}, holder: map[string]string{}, queueOffers: map[string]int{},
		refuses: func(u string) bool { return s.refuse[u] }}
	n := 0
	e, err := New([]Workgroup{
		{Name: "support", Strategy: RoundRobin, OfferTimeout: 10 * time.Second, MaxChats: 2, Open: true},
		{Name: "probe", Strategy: RoundRobin, OfferTimeout: 10 * time.Second, MaxChats: 1, Open: true},
	}, Options{Clock: s.clk, Events: s.p, Threads: &creator{}, Grace: 30 * time.Second,
		NewID: func() string { n++; return strconv.Itoa(n) }})
	if err != nil {
		t.Fatal(err)
	}
	e.offered = s.p.decided
	s.e, s.p.e = e, e
	return s
}

func (s *story) must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func (s *story) ask(t *testing.T, visitor, workgroup string) string {
	t.Helper()
	r, _, _, err := s.e.Ask(Visitor{ID: visitor}, workgroup, "help?", nil, "")
	s.must(t, "ask", err)
	s.asked = append(s.asked, r.ID)
	return r.ID
}

func (s *story) avail(t *testing.T, agent, workgroup string) {
	t.Helper()
	_, err := s.e.SetAvailability(agent, []string{workgroup}, true, nil)
	s.must(t, "availability of "+agent, err)
}

// offerOf returns the current offer of requestID, as the events told it.
func (s *story) offerOf(t *testing.T, requestID string) Offer {
	t.Helper()
	for _, o := range s.p.offers {
		if o.Request.ID == requestID {
			return o
		}
	}
	t.Fatalf("no current offer of %s (offers %v)", requestID, s.p.offers)
	return Offer{}
}

func (s *story) accept(t *testing.T, requestID string) {
	t.Helper()
	o := s.offerOf(t, requestID)
	_, err := s.e.Accept(s.ctx, o.AgentID, o.ID)
	s.must(t, "accept", err)
}

func (s *story) agentOf(t *testing.T) string {
	t.Helper()
	r, ok := s.e.Request(s.req)
	if !ok || r.AgentID == "" {
		t.Fatalf("request %s has no agent (%+v)", s.req, r)
	}
	return r.AgentID
}

// probe checks that the engine still routes: a request of another
// workgroup is offered to an agent who comes, and accepted.
func (s *story) probe(t *testing.T) {
	t.Helper()
	id := s.ask(t, "pv", "probe")
	s.avail(t, "p", "probe")
	if o := s.offerOf(t, id); o.AgentID != "p" {
		t.Fatalf("probe offered to %s", o.AgentID)
	}
	s.accept(t, id)
	if r, _ := s.e.Request(id); r.State != StateChat {
		t.Fatalf("probe request is %s", r.State)
	}
}

// storyStep is one transition of the story: prep runs with every push
// accepted, act with the pushes of one kind refused; pushes names the kinds
// of targets act pushes to (so that refusing them tests something).
type storyStep struct {
	name   string
	prep   func(t *testing.T, s *story)
	act    func(t *testing.T, s *story)
	pushes []string
}

var storySteps = []storyStep{
	{name: "ask", act: func(t *testing.T, s *story) { s.req = s.ask(t, "v", "support") }, pushes: []string{"visitor"}},
	{name: "offer", act: func(t *testing.T, s *story) { s.avail(t, "a1", "support") }, pushes: []string{"agent"}},
	{name: "reject", prep: func(t *testing.T, s *story) { s.avail(t, "a2", "support") },
		act: func(t *testing.T, s *story) {
			o := s.offerOf(t, s.req)
			s.must(t, "reject", s.e.Reject(o.AgentID, o.ID))
		}, pushes: []string{"agent"}},
	{name: "offer timeout", act: func(t *testing.T, s *story) { s.clk.Advance(10 * time.Second) }, pushes: []string{"agent"}},
	{name: "accept", act: func(t *testing.T, s *story) { s.accept(t, s.req) }, pushes: []string{"visitor", "agent"}},
	{name: "supervisor join", act: func(t *testing.T, s *story) { s.e.NoteSupervisor(s.req, "s") }},
	{name: "invite", act: func(t *testing.T, s *story) {
		from := s.agentOf(t)
		to := map[string]string{"a1": "a2", "a2": "a1"}[from]
		_, err := s.e.Invite(s.ctx, from, s.req, to)
		s.must(t, "invite", err)
	}, pushes: []string{"agent"}},
	{name: "leave", act: func(t *testing.T, s *story) {
		r, _ := s.e.Request(s.req)
		if len(r.Conference) != 1 {
			t.Fatalf("conference %v", r.Conference)
		}
		s.must(t, "leave", s.e.Leave(r.Conference[0], s.req))
	}},
	{name: "transfer", act: func(t *testing.T, s *story) {
		from := s.agentOf(t)
		_, err := s.e.Transfer(s.ctx, from, s.req, map[string]string{"a1": "a2", "a2": "a1"}[from])
		s.must(t, "transfer", err)
	}, pushes: []string{"visitor", "agent"}},
	{name: "transfer to the queue", act: func(t *testing.T, s *story) {
		_, err := s.e.Transfer(s.ctx, s.agentOf(t), s.req, "")
		s.must(t, "transfer to the queue", err)
	}, pushes: []string{"visitor", "agent"}},
	{name: "accept again", act: func(t *testing.T, s *story) { s.accept(t, s.req) }, pushes: []string{"visitor", "agent"}},
	{name: "close", act: func(t *testing.T, s *story) { s.must(t, "close", s.e.Close("v", s.req)) },
		pushes: []string{"visitor", "agent", "supervisor"}},
	{name: "cancel", prep: func(t *testing.T, s *story) { s.req = s.ask(t, "v", "support") },
		act: func(t *testing.T, s *story) { s.must(t, "cancel", s.e.Cancel("v", s.req)) }, pushes: []string{"visitor", "agent"}},
	{name: "visitor gone", prep: func(t *testing.T, s *story) { s.req = s.ask(t, "v", "support") },
		act: func(t *testing.T, s *story) {
			s.e.VisitorGone("v")
			s.clk.Advance(30 * time.Second) // offers time out and go round, then the grace period ends
		}, pushes: []string{"visitor", "agent"}},
}

// TestEveryTransitionSurvivesRefusingPushes runs the story up to each
// transition, then makes that transition with the pushes to one kind of
// target refused (each one cutting its user, back into the engine): the
// transition must return, the invariants hold, and the engine still route.
func TestEveryTransitionSurvivesRefusingPushes(t *testing.T) {
	for _, kind := range []string{"visitor", "agent", "supervisor"} {
		for i, st := range storySteps {
			t.Run(kind+"/"+st.name, func(t *testing.T) {
				s := newStory(t)
				for _, prev := range storySteps[:i] {
					within(t, prev.name, func() {
						if prev.prep != nil {
							prev.prep(t, s)
						}
						prev.act(t, s)
					})
					checkState(t, s.e, s.asked, s.p)
				}
				if st.prep != nil {
					within(t, st.name+" (prep)", func() { st.prep(t, s) })
				}
				for _, u := range refuserKinds[kind] {
					s.refuse[u] = true
				}
				within(t, st.name, func() { st.act(t, s) })
				clear(s.refuse)
				checkState(t, s.e, s.asked, s.p)
				if s.p.cuts == 0 && slices.Contains(st.pushes, kind) {
					t.Fatalf("%s pushed to no %s: nothing was refused", st.name, kind)
				}
				within(t, "the probe", func() { s.probe(t) })
				checkState(t, s.e, s.asked, s.p)
			})
		}
	}
}

// TestOfferToAnAgentWhoseConnectionRefusesRoutesOn is the deadlock as it
// was found: the only connection of the agent offered a request refuses
// the offer, so the agent is gone; the request goes to the next agent.
func TestOfferToAnAgentWhoseConnectionRefusesRoutesOn(t *testing.T) {
	s := newStory(t)
	s.avail(t, "a1", "support")
	s.avail(t, "a2", "support")
	s.refuse["a1"] = true
	within(t, "ask", func() { s.req = s.ask(t, "v", "support") })
	if o := s.offerOf(t, s.req); o.AgentID != "a2" {
		t.Fatalf("offered to %s, want a2 (a1 was cut)", o.AgentID)
	}
	if st, _ := s.e.Status("support"); st.AgentsAvailable != 1 {
		t.Fatalf("%d agents available, want 1", st.AgentsAvailable)
	}
	checkState(t, s.e, s.asked, s.p)
	within(t, "the probe", func() { s.probe(t) })
}

// TestEventsKeepTheirOrderAcrossGoroutines makes transitions from many
// goroutines at once, some of whose pushes refuse (and come back into the
// engine), and checks each request's events against its life: asked
// first, an offer answered (revoked, rejected or accepted) before the next
// one, nothing after its end.
func TestEventsKeepTheirOrderAcrossGoroutines(t *testing.T) {
	ord := &orderEvents{t: t, life: map[string]string{}, offer: map[string]string{}}
	e, err := New([]Workgroup{{Name: "support", Strategy: LeastBusy, OfferTimeout: time.Hour, MaxChats: 2, Open: true}},
		Options{Events: ord, Threads: &creator{}})
	if err != nil {
		t.Fatal(err)
	}
	ord.e = e
	const workers, rounds = 8, 400
	done := make(chan struct{})
	for w := range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			agent, visitor := fmt.Sprintf("a%d", w), fmt.Sprintf("v%d", w)
			ctx := context.Background()
			for i := range rounds {
				if _, err := e.SetAvailability(agent, []string{"support"}, i%7 != 6, nil); err != nil {
					t.Error(err)
					return
				}
				// Refused while the visitor still waits from an earlier round.
				r, _, _, askErr := e.Ask(Visitor{ID: visitor}, "support", "q", nil, "")
				// Answer the offers of every agent, as they stand now.
				for o, to := range ord.current() {
					rid := ord.requestOf(o)
					if i%11 == 0 {
						_ = e.Reject(to, o)
					} else if _, err := e.Accept(ctx, to, o); err == nil {
						_ = e.Close(to, rid)
					}
				}
				if askErr == nil && i%2 == 0 {
					_ = e.Cancel(visitor, r.ID)
				}
			}
			e.AgentGone(agent)
			for _, r := range e.Requests(visitor) {
				_ = e.Cancel(visitor, r.ID)
			}
		}()
	}
	deadline := time.After(stepBound)
	for range workers {
		select {
		case <-done:
		case <-deadline:
			t.Fatalf("the workers did not finish within %v: the engine is deadlocked", stepBound)
		}
	}
	ord.mu.Lock()
	defer ord.mu.Unlock()
	if ord.n == 0 || ord.cuts == 0 {
		t.Fatalf("%d events, %d cuts: the test exercised nothing", ord.n, ord.cuts)
	}
	t.Logf("%d events, %d cuts", ord.n, ord.cuts)
}

// orderEvents checks each request's events against its life, in the order
// they come; every fifth offer refuses, cutting its agent.
type orderEvents struct {
	t     *testing.T
	e     *Engine
	mu    sync.Mutex
	life  map[string]string // request -> asked, offered, queued, chat, ended
	offer map[string]string // current offer -> request
	to    map[string]string // current offer -> agent
	n     int
	cuts  int
}

// step moves request id from one of the states from to state to.
func (o *orderEvents) step(id, event, to string, from ...string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.n++
	if st := o.life[id]; !slices.Contains(from, st) {
		o.t.Errorf("request %s: %s while %q (want one of %v)", id, event, st, from)
	}
	o.life[id] = to
}

func (o *orderEvents) Asked(r Request) { o.step(r.ID, "asked", "asked", "") }

func (o *orderEvents) Queue(_, id string, _ int, _ time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.n++
	if st := o.life[id]; st != "asked" && st != "queued" && st != "offered" {
		o.t.Errorf("request %s: queue push while %q", id, st)
	}
}

func (o *orderEvents) Offer(of Offer) {
	o.step(of.Request.ID, "offer", "offered", "asked", "queued")
	o.mu.Lock()
	if o.to == nil {
		o.to = map[string]string{}
	}
	o.offer[of.ID], o.to[of.ID] = of.Request.ID, of.AgentID
	cut := o.n%5 == 0
	if cut {
		o.cuts++
	}
	o.mu.Unlock()
	if cut {
		o.e.AgentGone(of.AgentID) // the offer was refused: the agent's connection is cut
	}
}

func (o *orderEvents) forget(offerID string) {
	o.mu.Lock()
	delete(o.offer, offerID)
	delete(o.to, offerID)
	o.mu.Unlock()
}

func (o *orderEvents) OfferRevoked(_, offerID string, r Request, _ string) {
	o.step(r.ID, "revoked", "queued", "offered")
	o.forget(offerID)
}

func (o *orderEvents) OfferRejected(_, offerID string, r Request) {
	o.step(r.ID, "rejected", "queued", "offered")
	o.forget(offerID)
}

func (o *orderEvents) Invitation(inv Invitation, _, _ bool) {
	o.step(inv.Request.ID, "invitation", "chat", "offered")
	o.forget(inv.Request.OfferID)
}

func (o *orderEvents) RequestEnded(r Request) {
	o.step(r.ID, "ended", "ended", "asked", "queued", "offered", "chat")
}

// current returns the current offers and their agents.
func (o *orderEvents) current() map[string]string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return maps.Clone(o.to)
}

func (o *orderEvents) requestOf(offerID string) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.offer[offerID]
}
