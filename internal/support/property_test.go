package support

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"
)

// propEvents checks the invariants that are about one decision, FIFO
// routing and one agent per request: the routing decisions at the moment
// they are made (decided, under the engine's lock), and the events in the
// order the engine sends them (after its lock is released).
//
// With refuses set, a push to a user may "refuse", as a connection whose
// queue is full does: the hub then cuts the user's last connection, which
// comes back into the engine from inside the hook (VisitorGone and
// AgentGone, as ops.supportObserver calls them).
type propEvents struct {
	t       *testing.T
	e       *Engine
	offers  map[string]Offer // current offers, as told
	dead    []string         // offers no longer current
	ended   map[string]State
	holder  map[string]string // request -> agent offered or assigned
	refuses func(userID string) bool
	cuts    int
	// trace is every event, in the order told, in its JSON form (so that
	// a restored engine's events compare equal to the twin's).
	trace []string
	// queues is the test's own model of each workgroup's queues (as last
	// put): a request must land in the first its metadata matches, and be
	// offered only to that queue's agents.
	queues map[string][]Queue
	// queueOffers counts the offers made per queue.
	queueOffers map[string]int
}

// modelQueue is the queue of wg the model puts metadata in, and its agents
// (nil: every agent of the workgroup); "" when wg has no queues.
func (p *propEvents) modelQueue(wg string, metadata map[string]any) (string, []string) {
	for _, q := range p.queues[wg] {
		ok := true
		for k, v := range q.Match {
			if s, isStr := metadata[k].(string); !isStr || s != v {
				ok = false
			}
		}
		if ok {
			return q.Name, q.Agents
		}
	}
	return "", nil
}

// modelServes reports whether the model lets agent take r.
func (p *propEvents) modelServes(r *request, agent string) bool {
	name, agents := p.modelQueue(r.Workgroup, r.Metadata)
	return r.Queue == name && (agents == nil || slices.Contains(agents, agent))
}

// note appends an event to the trace.
func (p *propEvents) note(kind string, args ...any) {
	b, err := json.Marshal(args)
	if err != nil {
		p.t.Fatalf("trace %s: %v", kind, err)
	}
	p.trace = append(p.trace, kind+" "+string(b))
}

// push is a push of the event to users: each one that refuses is cut.
func (p *propEvents) push(users ...string) {
	if p.refuses == nil {
		return
	}
	for _, u := range users {
		if u != "" && p.refuses(u) {
			p.cuts++
			p.e.VisitorGone(u)
			p.e.AgentGone(u)
		}
	}
}

func (p *propEvents) Queue(visitorID, requestID string, pos int, est time.Duration) {
	p.note("queue", visitorID, requestID, pos, est)
	p.push(visitorID)
}

func (p *propEvents) QueueIn(visitorID, requestID, queue string, pos int, est time.Duration) {
	p.note("queueIn", visitorID, requestID, queue, pos, est)
	p.push(visitorID)
}

// decided checks a routing decision; the engine calls it with its lock held.
func (p *propEvents) decided(g *wgState, r *request, a *agent, now time.Time) {
	t, e := p.t, p.e
	if len(a.chats)+1 > e.limit(a, g) {
		t.Fatalf("offer to %s who is full (%d chats, limit %d)", a.id, len(a.chats), e.limit(a, g))
	}
	// Queues: r is in the queue the model says, and a is one of its agents.
	if !p.modelServes(r, a.id) {
		name, agents := p.modelQueue(g.Name, r.Metadata)
		t.Fatalf("request %s (queue %q, metadata %v) offered to %s: the model's queue is %q with agents %v", r.ID, r.Queue, r.Metadata, a.id, name, agents)
	}
	// FIFO: no older queued request could have gone to this agent (in
	// particular none older of the same queue).
	for _, q := range g.waiting {
		if q.seq >= r.seq {
			break
		}
		if q.State == StateQueued && a.available && a.workgroups[g.Name] && a.id != q.VisitorID &&
			len(a.chats) < e.limit(a, g) && !now.Before(q.tried[a.id]) && p.modelServes(q, a.id) {
			t.Fatalf("request %s (seq %d) offered to %s before older %s (seq %d)", r.ID, r.seq, a.id, q.ID, q.seq)
		}
	}
}

func (p *propEvents) Offer(o Offer) {
	p.note("offer", o)
	if h, ok := p.holder[o.Request.ID]; ok {
		p.t.Fatalf("request %s offered to %s while held by %s", o.Request.ID, o.AgentID, h)
	}
	p.holder[o.Request.ID] = o.AgentID
	p.offers[o.ID] = o
	p.queueOffers[o.Request.Queue]++
	p.push(o.AgentID)
}

func (p *propEvents) OfferRevoked(agentID, offerID string, r Request, reason string) {
	p.note("revoked", agentID, offerID, r, reason)
	if p.holder[r.ID] == agentID {
		delete(p.holder, r.ID)
	}
	if _, ok := p.offers[offerID]; ok {
		delete(p.offers, offerID)
		p.dead = append(p.dead, offerID)
	}
	p.push(agentID)
}

// OfferRejected forgets the offer (RejectEvents).
func (p *propEvents) OfferRejected(agentID, offerID string, r Request) {
	p.note("rejected", agentID, offerID, r)
	if p.holder[r.ID] == agentID {
		delete(p.holder, r.ID)
	}
	if _, ok := p.offers[offerID]; ok {
		delete(p.offers, offerID)
		p.dead = append(p.dead, offerID)
	}
}

func (p *propEvents) Invitation(inv Invitation, toVisitor, toAgent bool) {
	p.note("invitation", inv, toVisitor, toAgent)
	if id := inv.Request.OfferID; id != "" && !inv.Conference && !inv.Transfer {
		if _, ok := p.offers[id]; ok { // accepted: no longer current
			delete(p.offers, id)
			p.dead = append(p.dead, id)
		}
	}
	if inv.Conference {
		if p.holder[inv.Request.ID] == inv.AgentID {
			p.t.Fatalf("%s invited to their own chat %s", inv.AgentID, inv.Request.ID)
		}
		p.push(inv.AgentID)
		return
	}
	if toAgent && p.holder[inv.Request.ID] != inv.AgentID {
		p.t.Fatalf("invitation of %s to %s, held by %q", inv.Request.ID, inv.AgentID, p.holder[inv.Request.ID])
	}
	if toVisitor || inv.Requeued {
		p.push(inv.Request.VisitorID)
	}
	if toAgent {
		p.push(inv.AgentID)
	}
}

func (p *propEvents) Transferred(r Request, fromAgent, toAgent string) {
	p.note("transferred", r, fromAgent, toAgent)
	if p.holder[r.ID] != fromAgent {
		p.t.Fatalf("%s transferred by %s, held by %q", r.ID, fromAgent, p.holder[r.ID])
	}
	if toAgent == "" {
		delete(p.holder, r.ID)
		p.push(r.VisitorID, fromAgent)
		return
	}
	p.holder[r.ID] = toAgent
	p.push(r.VisitorID, fromAgent)
}

func (p *propEvents) Joined(r Request, userID, role, invitedBy string) {
	p.note("joined", r, userID, role, invitedBy)
}
func (p *propEvents) Left(r Request, userID, role string) { p.note("left", r, userID, role) }

func (p *propEvents) RequestEnded(r Request) {
	p.note("ended", r)
	requestID, st := r.ID, r.State
	if _, ok := p.ended[requestID]; ok {
		p.t.Fatalf("request %s ended twice", requestID)
	}
	p.ended[requestID] = st
	delete(p.holder, requestID)
	p.push(r.VisitorID)
	if st == StateClosed && r.AgentID != "" {
		p.push(append(append([]string{r.AgentID}, r.Conference...), r.Supervisors...)...)
	}
}

// checkState verifies the engine's structure after a step.
func checkState(t *testing.T, e *Engine, asked []string, p *propEvents) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, id := range asked {
		_, active := e.requests[id]
		_, ended := p.ended[id]
		if active == ended {
			t.Fatalf("request %s: active %v, ended %v", id, active, ended)
		}
	}
	inWaiting := map[*request]int{}
	for _, g := range e.wgs {
		ahead := map[string]int{}
		for i, r := range g.waiting {
			inWaiting[r]++
			// Every waiting request is in the model's queue, and its
			// position is within that queue.
			if name, _ := p.modelQueue(g.Name, r.Metadata); r.Queue != name {
				t.Fatalf("request %s (metadata %v) waits in queue %q, the model's is %q", r.ID, r.Metadata, r.Queue, name)
			}
			ahead[r.Queue]++
			if r.pos != ahead[r.Queue] {
				t.Fatalf("request %s at position %d of queue %q, %d waiting there up to it", r.ID, r.pos, r.Queue, ahead[r.Queue])
			}
			if i > 0 && g.waiting[i-1].seq >= r.seq {
				t.Fatalf("workgroup %s: queue out of order", g.Name)
			}
			if r.Workgroup != g.Name {
				t.Fatalf("request %s in the wrong queue", r.ID)
			}
		}
	}
	now := e.opts.Clock.Now()
	for id, r := range e.requests {
		if e.byVisitor[r.VisitorID][id] != r {
			t.Fatalf("request %s missing from its visitor's index", id)
		}
		switch r.State {
		case StateQueued:
			if inWaiting[r] != 1 || r.offer != nil {
				t.Fatalf("queued %s: in queue %d times, offer %v", id, inWaiting[r], r.offer)
			}
			// Work-conserving: nobody could take it now.
			g := e.wgs[r.Workgroup]
			for _, a := range e.agents {
				if e.eligible(g, r, a, now) {
					t.Fatalf("queued %s while %s could take it", id, a.id)
				}
			}
		case StateOffered:
			o := r.offer
			if inWaiting[r] != 1 || o == nil || e.offers[o.id] != o || e.agents[o.agentID].offer != o {
				t.Fatalf("offered %s is inconsistent", id)
			}
			if p.holder[id] != o.agentID {
				t.Fatalf("offered %s to %s, events say %q", id, o.agentID, p.holder[id])
			}
		case StatePending, StateChat:
			a := e.agents[r.AgentID]
			if inWaiting[r] != 0 || r.offer != nil || a == nil || !a.chats[id] {
				t.Fatalf("%s %s is inconsistent", r.State, id)
			}
			if p.holder[id] != r.AgentID {
				t.Fatalf("%s %s held by %s, events say %q", r.State, id, r.AgentID, p.holder[id])
			}
			for _, c := range r.Conference {
				if c == r.AgentID || e.agents[c] == nil || !e.agents[c].chats[id] || r.State != StateChat {
					t.Fatalf("%s %s: invited agent %s is inconsistent", r.State, id, c)
				}
			}
		default:
			t.Fatalf("active request %s in state %s", id, r.State)
		}
	}
	for _, a := range e.agents {
		if a.offer != nil {
			if a.offer.req.offer != a.offer || e.limit(a, e.wgs[a.offer.req.Workgroup]) < len(a.chats)+1 || !a.available {
				t.Fatalf("agent %s holds an offer it may not (chats %v, limit %d, available %v)", a.id, a.chats, e.limit(a, e.wgs[a.offer.req.Workgroup]), a.available)
			}
		}
		for id := range a.chats {
			if r := e.requests[id]; r == nil || (r.AgentID != a.id && !slices.Contains(r.Conference, a.id)) {
				t.Fatalf("agent %s has a stale chat %s", a.id, id)
			}
		}
	}
	if len(e.offers) != len(p.offers) {
		t.Fatalf("%d offers, events told %d", len(e.offers), len(p.offers))
	}
}

func TestPropertyRandomInterleavings(t *testing.T) {
	seed := time.Now().UnixNano()
	if s := os.Getenv("SUPPORT_SEED"); s != "" {
		seed, _ = strconv.ParseInt(s, 10, 64)
	}
	steps := 4000
	if testing.Short() {
		steps = 500
	}
	// What the runs did, summed: each must have happened for the runs to
	// mean anything (rare outcomes such as a successful invite are only
	// required of the sum).
	total := map[string]int{}
	for run := range 3 {
		s := seed + int64(run)
		t.Run(fmt.Sprint(s), func(t *testing.T) {
			t.Logf("seed %d (rerun with SUPPORT_SEED=%d)", s, s)
			for k, v := range runProperty(t, rand.New(rand.NewSource(s)), steps, false).counts {
				total[k] += v
			}
		})
	}
	for _, k := range []string{"accepted", "transferred", "invited", "left", "removed", string(StateDropped), string(StateCancelled), string(StateClosed),
		"offer@vip", "offer@billing", "offer@general", "offer@"} {
		if total[k] == 0 && !testing.Short() {
			t.Errorf("the runs did not exercise %q: %v", k, total)
		}
	}
}

// TestPropertyWithRefusingConnections is the property test with pushes that
// refuse now and then: each refusal comes back into the engine from inside
// its event (the user's last connection cut), and every step must still
// return, with the invariants intact.
func TestPropertyWithRefusingConnections(t *testing.T) {
	seed := time.Now().UnixNano()
	if s := os.Getenv("SUPPORT_SEED"); s != "" {
		seed, _ = strconv.ParseInt(s, 10, 64)
	}
	steps := 3000
	if testing.Short() {
		steps = 500
	}
	total := map[string]int{}
	for run := range 2 {
		s := seed + int64(run)
		t.Run(fmt.Sprint(s), func(t *testing.T) {
			t.Logf("seed %d (rerun with SUPPORT_SEED=%d)", s, s)
			for k, v := range runProperty(t, rand.New(rand.NewSource(s)), steps, true).counts {
				total[k] += v
			}
		})
	}
	for _, k := range []string{"cut", "accepted", string(StateDropped), string(StateClosed)} {
		if total[k] == 0 && !testing.Short() {
			t.Errorf("the runs did not exercise %q: %v", k, total)
		}
	}
}

// stepBound is how long one step of a test may take before the test calls
// the engine deadlocked: far more than any step needs, so that only a hang
// reaches it.
const stepBound = 10 * time.Second

// within runs f on its own goroutine and waits for it at most stepBound: a
// deadlocked engine fails the test instead of hanging it. A failure inside
// f (t.Fatalf ends f's goroutine) ends the test when f is done.
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
	case <-time.After(stepBound):
		t.Fatalf("%s did not return within %v: the engine is deadlocked", what, stepBound)
	}
}

// propRun is what a run of the property test did: how often each
// operation, success and end state happened, the events told, and the
// engine's final state.
type propRun struct {
	counts map[string]int
	trace  []string
	final  []byte // the final Snapshot, as JSON
}

// runProperty runs steps random operations; with refusing, one push in
// eight refuses (propEvents.refuses).
func runProperty(t *testing.T, rng *rand.Rand, steps int, refusing bool) propRun {
	return runPropertyRestoring(t, rng, steps, refusing, nil)
}

// runPropertyRestoring is runProperty that, when restore is set, now and
// then (one step in restoreEvery, drawn from restore so that rng draws the
// same operations as without it) takes a snapshot, throws the engine and
// its clock away, and continues with an engine restored from the snapshot's
// JSON on a new clock at the same time, as a node taking over would.
func runPropertyRestoring(t *testing.T, rng *rand.Rand, steps int, refusing bool, restore *rand.Rand) propRun {
	clk := NewManualClock(t0)
	p := &propEvents{t: t, offers: map[string]Offer{}, ended: map[string]State{}, holder: map[string]string{},
		queues: map[string][]Queue{"lb": lbQueues[0]}, queueOffers: map[string]int{}}
	if refusing {
		p.refuses = func(string) bool { return rng.Intn(8) == 0 }
	}
	cr := &creator{}
	n := 0
	opts := func(clk Clock) Options {
		return Options{Clock: clk, Events: p, Threads: cr, Grace: 8 * time.Second, NewID: func() string { n++; return strconv.Itoa(n) }}
	}
	e, err := New([]Workgroup{
		{Name: "rr", Strategy: RoundRobin, OfferTimeout: 5 * time.Second, MaxChats: 2, Open: true},
		{Name: "lb", Strategy: LeastBusy, OfferTimeout: 3 * time.Second, MaxChats: 3, Open: true, Queues: lbQueues[0]},
		// A quiet workgroup, often empty, so that removing it succeeds now and then.
		{Name: "x", Strategy: RoundRobin, OfferTimeout: 2 * time.Second, MaxChats: 1, Open: true},
	}, opts(clk))
	if err != nil {
		t.Fatal(err)
	}
	p.e = e
	e.offered = p.decided
	visitors := []string{"v0", "v1", "v2", "v3", "v4", "v5", "v6", "a0"}
	agents := []string{"a0", "a1", "a2", "a3"}
	agentWgs := map[string][]string{"a0": {"rr"}, "a1": {"rr", "lb", "x"}, "a2": {"lb"}, "a3": {"rr", "lb", "x"}}
	wgNames := []string{"rr", "lb", "x"}
	var asked []string
	ctx := context.Background()
	pickOffer := func() (Offer, bool) {
		if len(p.offers) == 0 {
			return Offer{}, false
		}
		ids := make([]string, 0, len(p.offers))
		for id := range p.offers {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		return p.offers[ids[rng.Intn(len(ids))]], true
	}
	activeOf := func(v string) []Request { return e.Requests(v) }
	// pickChat returns a random chat in progress.
	pickChat := func() (Request, bool) {
		var chats []Request
		for _, wg := range wgNames {
			cs, _ := e.Conversations(wg)
			for _, r := range cs {
				if r.State == StateChat {
					chats = append(chats, r)
				}
			}
		}
		if len(chats) == 0 {
			return Request{}, false
		}
		return chats[rng.Intn(len(chats))], true
	}
	// joinFails makes the next thread join fail now and then.
	joinFails := func() { cr.mu.Lock(); cr.fail = rng.Intn(8) == 0; cr.mu.Unlock() }
	joinWorks := func() { cr.mu.Lock(); cr.fail = false; cr.mu.Unlock() }
	counts := map[string]int{}
	// runStep runs one random operation and returns its name.
	runStep := func(step int) (op string) {
		switch k := rng.Intn(124); {
		case k < 20:
			op = "ask"
			v := visitors[rng.Intn(len(visitors))]
			wg := []string{"rr", "lb"}[rng.Intn(2)]
			if rng.Intn(10) == 0 {
				wg = "x"
			}
			meta := askMetadata[rng.Intn(len(askMetadata))]
			r, _, _, err := e.Ask(Visitor{ID: v}, wg, "q", meta, "")
			if err == nil {
				asked = append(asked, r.ID)
				if name, _ := p.modelQueue(wg, meta); r.Queue != name {
					t.Fatalf("step %d: request with %v in queue %q, the model's is %q", step, meta, r.Queue, name)
				}
			}
		case k < 28:
			op = "cancel"
			v := visitors[rng.Intn(len(visitors))]
			if rs := activeOf(v); len(rs) > 0 {
				r := rs[rng.Intn(len(rs))]
				err := e.Cancel(v, r.ID)
				if (err == nil) == (r.State == StateChat) {
					t.Fatalf("step %d: cancel of %s in %s: %v", step, r.ID, r.State, err)
				}
			}
		case k < 43:
			op = "accept"
			if o, ok := pickOffer(); ok {
				delete(p.offers, o.ID)
				p.dead = append(p.dead, o.ID)
				cr.fail = rng.Intn(8) == 0
				cr.hook = nil
				if rng.Intn(10) == 0 {
					cr.hook = func() { _ = e.Cancel(o.Request.VisitorID, o.Request.ID) }
				}
				_, err := e.Accept(ctx, o.AgentID, o.ID)
				if err == nil {
					counts["accepted"]++
				}
				cr.fail, cr.hook = false, nil
			}
		case k < 53:
			op = "reject"
			if o, ok := pickOffer(); ok {
				delete(p.offers, o.ID)
				p.dead = append(p.dead, o.ID)
				delete(p.holder, o.Request.ID)
				if err := e.Reject(o.AgentID, o.ID); err != nil {
					t.Fatalf("step %d: reject: %v", step, err)
				}
			}
		case k < 58:
			op = "stale"
			if len(p.dead) > 0 {
				id := p.dead[rng.Intn(len(p.dead))]
				a := agents[rng.Intn(len(agents))]
				_, err := e.Accept(ctx, a, id)
				var ee *Error
				if !errors.As(err, &ee) || (ee.Kind != KindConflict && ee.Kind != KindForbidden) {
					t.Fatalf("step %d: accept of dead offer %s: %v", step, id, err)
				}
			}
		case k < 70:
			op = "advance"
			clk.Advance(time.Duration(rng.Intn(4000)) * time.Millisecond)
		case k < 78:
			op = "gone"
			e.VisitorGone(visitors[rng.Intn(len(visitors))])
		case k < 86:
			op = "back"
			e.VisitorBack(visitors[rng.Intn(len(visitors))])
		case k < 96:
			op = "availability"
			a := agents[rng.Intn(len(agents))]
			var max *int
			if rng.Intn(3) == 0 {
				m := rng.Intn(4)
				max = &m
			}
			if _, err := e.SetAvailability(a, agentWgs[a], rng.Intn(4) != 0, max); err != nil {
				t.Fatalf("step %d: availability: %v", step, err)
			}
		case k < 104:
			op = "transfer"
			if r, ok := pickChat(); ok {
				to := ""
				if rng.Intn(3) != 0 {
					to = agents[rng.Intn(len(agents))]
				}
				joinFails()
				_, err := e.Transfer(ctx, r.AgentID, r.ID, to)
				joinWorks()
				var ee *Error
				if err != nil && errors.As(err, &ee) && ee.Kind == KindNotFound {
					t.Fatalf("step %d: transfer of %s by its agent %s: %v", step, r.ID, r.AgentID, err)
				}
				if err == nil {
					counts["transferred"]++
				}
			}
		case k < 110:
			op = "invite"
			if r, ok := pickChat(); ok {
				// Mostly a colleague of the workgroup, now and then anybody.
				to := agents[rng.Intn(len(agents))]
				for _, a := range agents {
					if a != r.AgentID && slices.Contains(agentWgs[a], r.Workgroup) && rng.Intn(2) == 0 {
						to = a
					}
				}
				joinFails()
				_, err := e.Invite(ctx, r.AgentID, r.ID, to)
				joinWorks()
				if err == nil {
					counts["invited"]++
				}
			}
		case k < 114:
			op = "leave"
			if r, ok := pickChat(); ok {
				if people := append(slices.Clone(r.Conference), r.Supervisors...); len(people) > 0 {
					if err := e.Leave(people[rng.Intn(len(people))], r.ID); err != nil {
						t.Fatalf("step %d: leave: %v", step, err)
					}
					counts["left"]++
				}
				if err := e.Leave(r.AgentID, r.ID); err == nil {
					t.Fatalf("step %d: the chat's agent left it", step)
				}
			}
		case k < 116:
			op = "supervise"
			if r, ok := pickChat(); ok {
				e.NoteSupervisor(r.ID, "s"+strconv.Itoa(rng.Intn(2)))
			}
		case k < 119:
			op = "reconfigure"
			// The Server API's PUT: other settings, the queue and agents stay.
			w := Workgroup{Name: wgNames[rng.Intn(len(wgNames))], Strategy: []Strategy{RoundRobin, LeastBusy}[rng.Intn(2)],
				OfferTimeout: time.Duration(1+rng.Intn(6)) * time.Second, MaxChats: 1 + rng.Intn(3), Open: rng.Intn(5) != 0}
			if w.Name == "lb" {
				// Mostly the same queues, now and then others (every set
				// has a catch-all, so the put is never refused).
				w.Queues = p.queues["lb"]
				if rng.Intn(3) == 0 {
					w.Queues = lbQueues[rng.Intn(len(lbQueues))]
				}
			}
			// The model first: the put routes at once.
			p.queues[w.Name] = w.Queues
			if _, err := e.PutWorkgroup(w); err != nil {
				t.Fatalf("step %d: put workgroup: %v", step, err)
			}
		case k < 120:
			op = "remove"
			// The Server API's DELETE, refused while anything is live; put back at once.
			name := wgNames[rng.Intn(len(wgNames))]
			before, _ := e.Workgroup(name)
			if err := e.RemoveWorkgroup(name); err == nil {
				counts["removed"]++
				if _, err := e.PutWorkgroup(before.Workgroup); err != nil {
					t.Fatalf("step %d: put back %s: %v", step, name, err)
				}
			} else if kindOf(err) != KindConflict {
				t.Fatalf("step %d: remove %s: %v", step, name, err)
			}
		default:
			op = "close"
			v := visitors[rng.Intn(len(visitors))]
			for _, r := range activeOf(v) {
				if r.State == StateChat {
					closer := v
					if rng.Intn(2) == 0 {
						closer = append([]string{r.AgentID}, r.Conference...)[rng.Intn(1+len(r.Conference))]
					}
					if err := e.Close(closer, r.ID); err != nil {
						t.Fatalf("step %d: close: %v", step, err)
					}
					// Closing ended it: the agent no longer holds it.
					break
				}
			}
		}
		return op
	}
	for step := 0; step < steps; step++ {
		var op string
		within(t, fmt.Sprintf("step %d", step), func() { op = runStep(step) })
		counts[op]++
		if testing.Verbose() && os.Getenv("SUPPORT_TRACE") != "" {
			t.Logf("step %d: %s", step, op)
		}
		checkState(t, e, asked, p)
		if restore != nil && restore.Intn(restoreEvery) == 0 {
			e, clk = restoreFrom(t, e, clk, opts)
			p.e = e
			e.offered = p.decided
			counts["restored"]++
			checkState(t, e, asked, p)
		}
	}
	for _, st := range p.ended {
		counts[string(st)]++
	}
	counts["cut"] = p.cuts
	for q, n := range p.queueOffers {
		counts["offer@"+q] = n
	}
	t.Logf("%d steps, %d requests: %v", steps, len(asked), counts)
	final, err := json.Marshal(e.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	return propRun{counts: counts, trace: p.trace, final: final}
}

// lbQueues are the queue sets the property test gives workgroup lb: the
// first at start, the others (or none) by reconfiguring it. Each ends with
// a catch-all.
var lbQueues = [][]Queue{
	{
		{Name: "vip", Match: map[string]string{"tier": "gold"}, Agents: []string{"a3"}},
		{Name: "billing", Match: map[string]string{"topic": "billing"}, Agents: []string{"a2", "a3"}},
		{Name: "general"},
	},
	{
		{Name: "billing", Match: map[string]string{"topic": "billing"}, Agents: []string{"a1"}},
		{Name: "general", Agents: []string{"a2", "a3"}},
	},
	nil,
}

// askMetadata are the metadata the property test's requests carry.
var askMetadata = []map[string]any{nil, {"topic": "billing"}, {"tier": "gold"}, {"tier": "gold", "topic": "billing"}, {"topic": "other"}}

// restoreEvery is how often, in steps, runPropertyRestoring restores.
const restoreEvery = 25

// restoreFrom snapshots e, halts it, and returns an engine restored from
// the snapshot's JSON on a new clock standing at clk's time.
func restoreFrom(t *testing.T, e *Engine, clk *ManualClock, opts func(Clock) Options) (*Engine, *ManualClock) {
	t.Helper()
	b, err := json.Marshal(e.Snapshot())
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	e.Halt()
	var s Snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	nclk := NewManualClock(clk.Now())
	ne, err := Restore(s, opts(nclk))
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if b2, _ := json.Marshal(ne.Snapshot()); string(b2) != string(b) {
		t.Fatalf("restored engine differs:\n%s\n%s", b, b2)
	}
	return ne, nclk
}

// TestPropertyRestored is the property test with the engine thrown away
// and restored from its snapshot every restoreEvery steps or so: the
// invariants hold, and the run tells exactly the events, and ends in
// exactly the state, of the same run (same seed) without restores.
func TestPropertyRestored(t *testing.T) {
	seed := time.Now().UnixNano()
	if s := os.Getenv("SUPPORT_SEED"); s != "" {
		seed, _ = strconv.ParseInt(s, 10, 64)
	}
	steps := 3000
	if testing.Short() {
		steps = 500
	}
	for run := range 2 {
		s := seed + int64(run)
		for _, refusing := range []bool{false, true} {
			t.Run(fmt.Sprintf("%d/refusing=%v", s, refusing), func(t *testing.T) {
				t.Logf("seed %d (rerun with SUPPORT_SEED=%d)", s, s)
				twin := runProperty(t, rand.New(rand.NewSource(s)), steps, refusing)
				got := runPropertyRestoring(t, rand.New(rand.NewSource(s)), steps, refusing, rand.New(rand.NewSource(s+1)))
				if got.counts["restored"] == 0 {
					t.Fatalf("no restore happened: %v", got.counts)
				}
				for i := range min(len(got.trace), len(twin.trace)) {
					if got.trace[i] != twin.trace[i] {
						t.Fatalf("event %d differs from the twin's (never restored):\n got  %s\n want %s", i, got.trace[i], twin.trace[i])
					}
				}
				if len(got.trace) != len(twin.trace) {
					t.Fatalf("%d events, the twin told %d", len(got.trace), len(twin.trace))
				}
				if string(got.final) != string(twin.final) {
					t.Fatalf("final state differs from the twin's:\n got  %s\n want %s", got.final, twin.final)
				}
			})
		}
	}
}
