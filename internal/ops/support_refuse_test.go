package ops_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecbridge/ecb/internal/hub"
	"github.com/ecbridge/ecb/internal/ops"
	"github.com/ecbridge/ecb/internal/support"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// These tests push support events to connections that refuse them, as a
// transport whose write queue is full does: the hub cuts the connection,
// and its end comes back into the routing engine through the connection
// observer (VisitorGone, AgentGone), from inside the engine's event.

// CreateSupportThread makes memBackend an ops.SupportThreadCreator. Every
// support thread has a third member, "l", who listens to it.
func (b *memBackend) CreateSupportThread(_ context.Context, req *ecbserver.CreateSupportThreadRequest) (*ecbserver.CreateSupportThreadResponse, error) {
	b.call()
	b.mu.Lock()
	defer b.mu.Unlock()
	id := fmt.Sprintf("t%d", len(b.threads)+1)
	t := &ecbserver.Thread{ID: id, Members: []string{req.AgentID, req.VisitorID, "l"}}
	b.threads[id] = t
	vt, err := b.signer.SignThreadToken(ecbserver.ThreadTokenParams{ThreadID: id, UserID: req.VisitorID, Access: 3})
	if err != nil {
		return nil, err
	}
	at, err := b.signer.SignThreadToken(ecbserver.ThreadTokenParams{ThreadID: id, UserID: req.AgentID, Access: 11})
	return &ecbserver.CreateSupportThreadResponse{Thread: *t, VisitorToken: vt, AgentToken: at}, err
}

var _ ops.SupportThreadCreator = (*memBackend)(nil)

// gate is a connection that takes pushes, or refuses them while refuse is
// set; it records every push it was given either way.
type gate struct {
	agents  bool
	refuse  atomic.Bool
	mu      sync.Mutex
	got     []string // events taken
	offers  []string // ids of the offers taken
	refused int
	closed  hub.Reason
	notify  chan struct{}
}

func newGate(agents bool) *gate { return &gate{agents: agents, notify: make(chan struct{}, 1)} }

func (g *gate) Deliver(p *hub.Push) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.refuse.Load() {
		g.refused++
		return false
	}
	g.got = append(g.got, p.Event)
	if p.Event == ops.EventOffer {
		var o ops.OfferPush
		if json.Unmarshal(p.Data, &o) == nil {
			g.offers = append(g.offers, o.OfferID)
		}
	}
	select {
	case g.notify <- struct{}{}:
	default:
	}
	return true
}

func (g *gate) Close(r hub.Reason) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed == "" {
		g.closed = r
	}
}

func (g *gate) SeesAgentsOnly() bool { return g.agents }

func (g *gate) offered(offerID string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Contains(g.offers, offerID)
}

func (g *gate) state() (refused int, closed hub.Reason) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.refused, g.closed
}

// await waits for a push named event, at most refuseBound.
func (g *gate) await(tb testing.TB, event string) {
	tb.Helper()
	deadline := time.After(refuseBound)
	for {
		g.mu.Lock()
		ok := slices.Contains(g.got, event)
		g.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-g.notify:
		case <-deadline:
			tb.Fatalf("no %s push within %v", event, refuseBound)
		}
	}
}

// refuseBound is how long a step may take before the test calls it hung:
// far more than any step needs, so that only a deadlock reaches it.
const refuseBound = 10 * time.Second

// within runs f on its own goroutine and waits for it at most refuseBound.
// A failure inside f ends the test when f is done.
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
		if t.Failed() {
			t.FailNow()
		}
	case <-time.After(refuseBound):
		t.Fatalf("%s did not return within %v: the routing engine is deadlocked", what, refuseBound)
	}
}

// supportStory is one conversation through every support transition, with
// a connection per user: visitor v, agents a1 and a2, supervisor s, thread
// listener l; p and pv are the probe's agent and visitor.
type supportStory struct {
	f       *fixture
	clk     *support.ManualClock
	ctx     context.Context
	callers map[string]ops.Caller
	gates   map[string]*gate
	avail   map[string]bool // agents made available
	req     string
	thread  string
	from    hub.Position // where the supervisor's monitor resumes from
}

// The kinds of push targets and their users.
var targetKinds = map[string][]string{"visitor": {"v"}, "agent": {"a1", "a2"}, "supervisor": {"s"}, "listener": {"l"}}

func newSupportStory(t *testing.T) *supportStory {
	t.Helper()
	f := newFixture(t)
	clk := support.NewManualClock(time.Date(2025, 1, 1, 9, 0, 0, 0, time.UTC))
	err := f.svc.EnableSupportOn([]support.Workgroup{
		{Name: "support", Strategy: support.RoundRobin, OfferTimeout: 10 * time.Second, MaxChats: 2, Open: true},
		{Name: "probe", Strategy: support.RoundRobin, OfferTimeout: 10 * time.Second, MaxChats: 1, Open: true},
	}, 30*time.Second, clk)
	if err != nil {
		t.Fatal(err)
	}
	s := &supportStory{f: f, clk: clk, ctx: context.Background(), callers: map[string]ops.Caller{}, gates: map[string]*gate{},
		avail: map[string]bool{}}
	users := []struct {
		id         string
		roles      []string
		workgroups []string
	}{
		{"v", nil, nil}, {"l", nil, nil}, {"pv", nil, nil},
		{"a1", []string{"agent"}, []string{"support"}}, {"a2", []string{"agent"}, []string{"support"}},
		{"s", []string{"supervisor"}, []string{"support"}}, {"p", []string{"agent"}, []string{"probe"}},
	}
	for _, u := range users {
		g := newGate(len(u.roles) > 0)
		s.gates[u.id] = g
		s.callers[u.id] = f.callerWith(t, ecbserver.UserTokenParams{ID: u.id, Name: u.id, Roles: u.roles, Workgroups: u.workgroups}, g)
	}
	return s
}

func (s *supportStory) must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func (s *supportStory) ask(t *testing.T, visitor, workgroup string) string {
	t.Helper()
	res, err := s.f.svc.SupportAsk(s.ctx, s.callers[visitor], ops.SupportAskRequest{Workgroup: workgroup, Question: "help?"})
	s.must(t, "support.ask", err)
	return res.RequestID
}

func (s *supportStory) setAvail(t *testing.T, agent string) {
	t.Helper()
	_, err := s.f.svc.AgentSetAvailability(s.ctx, s.callers[agent], ops.SetAvailabilityRequest{Available: true})
	s.must(t, "agent.setAvailability "+agent, err)
	s.avail[agent] = true
}

// request returns the story's request as the engine has it.
func (s *supportStory) request(t *testing.T) support.Request {
	t.Helper()
	r, ok := s.f.svc.Support().Request(s.req)
	if !ok {
		t.Fatalf("no active request %s", s.req)
	}
	return r
}

// offered returns the agent and id of the request's current offer.
func (s *supportStory) offered(t *testing.T) (agent, offerID string) {
	t.Helper()
	r := s.request(t)
	if r.State != support.StateOffered {
		t.Fatalf("request %s is %s, not offered", r.ID, r.State)
	}
	return s.offerAgent(t, r), r.OfferID
}

func (s *supportStory) accept(t *testing.T) {
	t.Helper()
	r := s.request(t)
	if r.State != support.StateOffered {
		t.Fatalf("request %s is %s, not offered", r.ID, r.State)
	}
	agent := s.offerAgent(t, r)
	res, err := s.f.svc.OfferAccept(s.ctx, s.callers[agent], ops.OfferRef{OfferID: r.OfferID})
	s.must(t, "offer.accept", err)
	s.thread = res.Thread.ID
}

// offerAgent finds who holds the offer of r, from the offer pushes
// (Request.AgentID is set only once it is accepted).
func (s *supportStory) offerAgent(t *testing.T, r support.Request) string {
	t.Helper()
	for _, a := range []string{"a1", "a2"} {
		if s.gates[a].offered(r.OfferID) {
			return a
		}
	}
	t.Fatalf("no agent was pushed offer %s", r.OfferID)
	return ""
}

// chatAgent is the agent of the story's chat.
func (s *supportStory) chatAgent(t *testing.T) string {
	t.Helper()
	r := s.request(t)
	if r.AgentID == "" {
		t.Fatalf("request %s has no agent", r.ID)
	}
	return r.AgentID
}

func other(agent string) string { return map[string]string{"a1": "a2", "a2": "a1"}[agent] }

// probe checks that support still routes: a request of another workgroup
// goes to an agent who comes, who accepts it, and both sides are invited.
func (s *supportStory) probe(t *testing.T) {
	t.Helper()
	id := s.ask(t, "pv", "probe")
	s.setAvail(t, "p")
	s.gates["p"].await(t, ops.EventOffer)
	r, ok := s.f.svc.Support().Request(id)
	if !ok || r.State != support.StateOffered {
		t.Fatalf("probe request: %+v", r)
	}
	if _, err := s.f.svc.OfferAccept(s.ctx, s.callers["p"], ops.OfferRef{OfferID: r.OfferID}); err != nil {
		t.Fatalf("probe accept: %v", err)
	}
	s.gates["p"].await(t, ops.EventInvitation)
	s.gates["pv"].await(t, ops.EventInvitation)
}

// supportStep is one transition: prep runs with every push taken, act with
// the pushes to one kind of target refused; pushes names the kinds act
// pushes to, so that refusing them is sure to test something.
type supportStep struct {
	name   string
	prep   func(t *testing.T, s *supportStory)
	act    func(t *testing.T, s *supportStory)
	pushes []string
}

var supportSteps = []supportStep{
	{name: "ask", act: func(t *testing.T, s *supportStory) { s.req = s.ask(t, "v", "support") }, pushes: []string{"visitor"}},
	{name: "offer", act: func(t *testing.T, s *supportStory) { s.setAvail(t, "a1") }, pushes: []string{"agent"}},
	{name: "reject", prep: func(t *testing.T, s *supportStory) { s.setAvail(t, "a2") },
		act: func(t *testing.T, s *supportStory) {
			a, o := s.offered(t)
			_, err := s.f.svc.OfferReject(s.ctx, s.callers[a], ops.OfferRef{OfferID: o})
			s.must(t, "offer.reject", err)
		}, pushes: []string{"agent"}},
	{name: "offer timeout", act: func(t *testing.T, s *supportStory) { s.clk.Advance(10 * time.Second) }, pushes: []string{"agent"}},
	{name: "accept", act: func(t *testing.T, s *supportStory) { s.accept(t) }, pushes: []string{"visitor", "agent"}},
	{name: "supervisor monitor",
		prep: func(t *testing.T, s *supportStory) {
			for _, u := range []string{"v", "a1", "a2", "l"} {
				_, _ = s.f.hub.Attach(context.Background(), s.thread, s.gates[u]) // listening to the chat
			}
			s.from = mustPosition(t, s.f.hub, s.thread)
			_, err := s.f.svc.PublishSystemMessage(context.Background(), s.thread, ops.SystemMessage{Body: "welcome"})
			s.must(t, "system message", err)
		},
		act: func(t *testing.T, s *supportStory) {
			_, err := s.f.svc.SupportMonitor(s.ctx, s.callers["s"], ops.MonitorRequest{RequestID: s.req, Epoch: s.from.Epoch, Offset: s.from.Offset})
			s.must(t, "support.monitor", err)
		}, pushes: []string{"supervisor"}},
	{name: "supervisor join", act: func(t *testing.T, s *supportStory) {
		_, err := s.f.svc.SupportJoin(s.ctx, s.callers["s"], ops.SupportRequestRef{RequestID: s.req})
		s.must(t, "support.join", err)
	}, pushes: []string{"visitor", "agent", "supervisor", "listener"}},
	{name: "invite", act: func(t *testing.T, s *supportStory) {
		a := s.chatAgent(t)
		_, err := s.f.svc.SupportInvite(s.ctx, s.callers[a], ops.InviteRequest{RequestID: s.req, Agent: other(a)})
		s.must(t, "support.invite", err)
	}, pushes: []string{"visitor", "agent", "supervisor", "listener"}},
	{name: "leave", act: func(t *testing.T, s *supportStory) {
		_, err := s.f.svc.SupportLeave(s.ctx, s.callers[other(s.chatAgent(t))], ops.SupportRequestRef{RequestID: s.req})
		s.must(t, "support.leave", err)
	}, pushes: []string{"visitor", "agent", "supervisor", "listener"}},
	{name: "transfer", act: func(t *testing.T, s *supportStory) {
		a := s.chatAgent(t)
		_, err := s.f.svc.SupportTransfer(s.ctx, s.callers[a], ops.TransferRequest{RequestID: s.req, ToAgent: other(a)})
		s.must(t, "support.transfer", err)
	}, pushes: []string{"visitor", "agent", "supervisor", "listener"}},
	{name: "transfer to the queue", act: func(t *testing.T, s *supportStory) {
		_, err := s.f.svc.SupportTransfer(s.ctx, s.callers[s.chatAgent(t)], ops.TransferRequest{RequestID: s.req})
		s.must(t, "support.transfer to the queue", err)
	}, pushes: []string{"visitor", "agent"}},
	{name: "accept again", act: func(t *testing.T, s *supportStory) { s.accept(t) }, pushes: []string{"visitor", "agent"}},
	{name: "close", act: func(t *testing.T, s *supportStory) {
		_, err := s.f.svc.SupportClose(s.ctx, s.callers["v"], ops.SupportRequestRef{RequestID: s.req})
		s.must(t, "support.close", err)
	}, pushes: []string{"visitor", "agent", "supervisor"}},
	{name: "cancel", prep: func(t *testing.T, s *supportStory) { s.req = s.ask(t, "v", "support") },
		act: func(t *testing.T, s *supportStory) {
			_, err := s.f.svc.SupportCancel(s.ctx, s.callers["v"], ops.SupportRequestRef{RequestID: s.req})
			s.must(t, "support.cancel", err)
		}, pushes: []string{"visitor", "agent"}},
	{name: "visitor gone", prep: func(t *testing.T, s *supportStory) { s.req = s.ask(t, "v", "support") },
		act: func(t *testing.T, s *supportStory) {
			s.f.hub.Unregister(s.gates["v"]) // the visitor's last connection ends
			s.clk.Advance(30 * time.Second)  // offers time out and go round; then the grace period ends
		}, pushes: []string{"agent"}},
}

// TestSupportSurvivesRefusingConnections runs the story up to each
// transition, then makes it with every connection of one kind of target
// refusing its pushes (cut by the hub, back into the engine): the
// transition must succeed and return, the refusing connections be cut, a
// cut agent no longer be available, and support still route.
func TestSupportSurvivesRefusingConnections(t *testing.T) {
	for _, kind := range []string{"visitor", "agent", "supervisor", "listener"} {
		for i, st := range supportSteps {
			t.Run(kind+"/"+st.name, func(t *testing.T) {
				s := newSupportStory(t)
				for _, prev := range supportSteps[:i] {
					within(t, prev.name, func() {
						if prev.prep != nil {
							prev.prep(t, s)
						}
						prev.act(t, s)
					})
				}
				if st.prep != nil {
					within(t, st.name+" (prep)", func() { st.prep(t, s) })
				}
				for _, u := range targetKinds[kind] {
					s.gates[u].refuse.Store(true)
				}
				within(t, st.name, func() { st.act(t, s) })
				refused := 0
				for _, u := range targetKinds[kind] {
					g := s.gates[u]
					g.refuse.Store(false)
					n, closed := g.state()
					// A cut found while the broker delivers a thread push is
					// made from a goroutine of the hub's: wait for it (only a
					// hang reaches the bound).
					for deadline := time.Now().Add(10 * time.Second); n > 0 && (closed == "" || s.f.hub.UserConnections(u) != 0) && time.Now().Before(deadline); {
						time.Sleep(time.Millisecond)
						n, closed = g.state()
					}
					refused += n
					if n > 0 && (closed != hub.ReasonSlow || s.f.hub.UserConnections(u) != 0) {
						t.Errorf("%s refused %d pushes but was not cut (closed %q, %d connections)", u, n, closed, s.f.hub.UserConnections(u))
					}
					if n > 0 {
						s.avail[u] = false // cut: no longer available
					}
				}
				if refused == 0 && slices.Contains(st.pushes, kind) {
					t.Fatalf("%s pushed nothing to the %s: nothing was refused", st.name, kind)
				}
				st, err := s.f.svc.Support().Status("support")
				s.must(t, "status", err)
				want := 0
				for _, a := range []string{"a1", "a2"} {
					if s.avail[a] {
						want++
					}
				}
				if st.AgentsAvailable != want {
					t.Errorf("%d agents available, want %d (%v)", st.AgentsAvailable, want, s.avail)
				}
				within(t, "the probe", func() { s.probe(t) })
			})
		}
	}
}

// TestOfferRefusedByTheAgentsOnlyConnection is the deadlock as found: the
// agent offered a request has one connection, whose queue is full; the hub
// cuts it, the agent is gone, and the request goes to the next agent.
func TestOfferRefusedByTheAgentsOnlyConnection(t *testing.T) {
	s := newSupportStory(t)
	s.setAvail(t, "a1")
	s.setAvail(t, "a2")
	s.gates["a1"].refuse.Store(true)
	within(t, "support.ask", func() { s.req = s.ask(t, "v", "support") })
	if _, closed := s.gates["a1"].state(); closed != hub.ReasonSlow {
		t.Fatalf("a1's connection closed %q, want %q", closed, hub.ReasonSlow)
	}
	var a string
	within(t, "the next offer", func() {
		s.gates["a2"].await(t, ops.EventOffer)
		a, _ = s.offered(t)
	})
	if a != "a2" {
		t.Fatalf("offered to %s, want a2", a)
	}
	within(t, "offer.accept", func() { s.accept(t) })
	s.gates["v"].await(t, ops.EventInvitation)
	within(t, "the probe", func() { s.probe(t) })
}
