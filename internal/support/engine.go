package support

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"
)

// Strategy is how a workgroup picks the agent for an offer.
type Strategy string

// The routing strategies.
const (
	// RoundRobin offers to the available agents in turn (the seed's).
	RoundRobin Strategy = "round-robin"
	// LeastBusy offers to the agent with the fewest open chats, then the one
	// idle for the longest time.
	LeastBusy Strategy = "least-busy"
)

// Valid reports whether s names a strategy.
func (s Strategy) Valid() bool { return s == RoundRobin || s == LeastBusy }

// Workgroup is a topic queue and its settings.
type Workgroup struct {
	Name           string
	DisplayName    string
	Strategy       Strategy
	OfferTimeout   time.Duration // an unanswered offer is revoked after it
	MaxChats       int           // per agent, unless the agent sets a lower or higher own limit
	Open           bool
	RequiredFields []string // metadata keys (or "question") a request must carry, non-empty
	// Hours, when set, are the opening hours: the workgroup is open when
	// Open is true and the engine's clock is within them (hours.go).
	Hours *Hours
	// Queues, when set, are the workgroup's ordered queues (queues.go):
	// a request lands in the first its metadata matches.
	Queues []Queue
}

// State is where a request is.
type State string

// The request states.
const (
	StateQueued    State = "queued"    // waiting, not offered
	StateOffered   State = "offered"   // waiting, offered to one agent
	StatePending   State = "pending"   // accepted, the thread is being created
	StateChat      State = "chat"      // the thread exists, both sides invited
	StateCancelled State = "cancelled" // the visitor cancelled (ended)
	StateDropped   State = "dropped"   // the visitor stayed away longer than the grace period (ended)
	StateClosed    State = "closed"    // the chat was closed (ended)
)

// Request is a snapshot of a visitor's request.
type Request struct {
	ID        string `json:"id"`
	Workgroup string `json:"workgroup"`
	// Queue is the queue of the workgroup the request landed in ("": the
	// workgroup has no queues).
	Queue       string         `json:"queue,omitempty"`
	VisitorID   string         `json:"visitorId"`
	VisitorName string         `json:"visitorName,omitempty"`
	Anonymous   bool           `json:"anonymous,omitempty"`
	Question    string         `json:"question"`
	Metadata    map[string]any `json:"metadata,omitempty"`
	OperationID string         `json:"operationId,omitempty"`
	CreatedAt   time.Time      `json:"createdAt"`
	State       State          `json:"state"`
	AgentID     string         `json:"agentId,omitempty"`
	OfferID     string         `json:"offerId,omitempty"`
	ThreadID    string         `json:"threadId,omitempty"`
	// ThreadOwner is the agent who created the support thread (it stays
	// when the chat is transferred): ECB adds members on their behalf.
	ThreadOwner string `json:"threadOwner,omitempty"`
	// Conference are the agents invited to the chat (support.invite).
	Conference []string `json:"conference,omitempty"`
	// Supervisors are the supervisors who joined the chat (support.join).
	Supervisors []string  `json:"supervisors,omitempty"`
	ChatSince   time.Time `json:"chatSince,omitzero"`
}

// Offer is a request offered to one agent.
type Offer struct {
	ID        string
	AgentID   string
	Request   Request
	ExpiresAt time.Time
}

// SupportThread is what the ThreadCreator returns: the thread as the
// transport shows it, and a threadToken for each side.
type SupportThread struct {
	ThreadID     string
	Thread       any
	VisitorToken string
	AgentToken   string
}

// Invitation tells both sides that their chat is ready.
type Invitation struct {
	Request Request
	AgentID string
	Thread  SupportThread
	// Transfer is set when the chat was transferred to AgentID (Transfer).
	Transfer bool
	// Conference is set when AgentID was invited to the chat (Invite).
	Conference bool
	// Requeued is set when AgentID accepted a chat that had been put back
	// in the queue: the visitor is in the thread already.
	Requeued bool
}

// Revoke reasons, as OfferRevoked reports them.
const (
	ReasonTimeout     = "timeout"     // the agent did not answer in time
	ReasonCancelled   = "cancelled"   // the visitor cancelled
	ReasonDropped     = "dropped"     // the visitor stayed away too long
	ReasonUnavailable = "unavailable" // the agent became unavailable or full
	ReasonFailed      = "failed"      // the thread could not be created
)

// Events receives what the engine does. Methods are called after the
// engine's lock is released, one at a time and in the order things happened
// (see the package comment): they may call the Engine, and should not block
// for long, since the engine's later events wait behind them.
type Events interface {
	// Queue tells a visitor where their waiting request stands.
	Queue(visitorID, requestID string, position int, estimatedWait time.Duration)
	// Offer tells an agent about a new offer.
	Offer(o Offer)
	// OfferRevoked tells an agent that an offer (or an accepted offer whose
	// chat was still pending) is gone.
	OfferRevoked(agentID, offerID string, r Request, reason string)
	// Invitation tells the visitor (toVisitor) and the agent (toAgent) that
	// the chat is ready.
	Invitation(inv Invitation, toVisitor, toAgent bool)
	// RequestEnded tells that a request ended: r.State is cancelled,
	// dropped or closed; r.AgentID is set when it had a chat.
	RequestEnded(r Request)
}

// RejectEvents may be implemented by an Events to hear about rejected
// offers. OfferRejected is queued before the request is offered to anybody
// else, so it comes before every later event of the request.
type RejectEvents interface {
	OfferRejected(agentID, offerID string, r Request)
}

// QueueEvents may be implemented by an Events to hear the queue of a
// request's position: for a request in one of a workgroup's named queues,
// QueueIn is told instead of Queue (the position and estimated wait are
// within that queue).
type QueueEvents interface {
	QueueIn(visitorID, requestID, queue string, position int, estimatedWait time.Duration)
}

// AskEvents may be implemented by an Events to hear about new requests.
// Asked comes first of all the events of its request (before its first
// Offer and Queue).
type AskEvents interface {
	Asked(r Request)
}

// ThreadCreator creates the support thread when an agent accepts.
type ThreadCreator interface {
	CreateSupportThread(ctx context.Context, r Request, agentID string) (SupportThread, error)
}

// Options configure an Engine; zero values are defaults.
type Options struct {
	Clock   Clock         // default SystemClock
	Events  Events        // default: none
	Threads ThreadCreator // required for Accept to succeed
	// NewID returns a fresh unique id for requests and offers (default random).
	NewID func() string
	// Grace is how long a disconnected visitor keeps their place (default 60s).
	Grace time.Duration
	// DefaultWait is the estimated wait per position before any request was
	// routed (default 30s).
	DefaultWait time.Duration
}

// Kind classifies an engine error; the operations map it to an error code.
type Kind int

// The error kinds.
const (
	KindNotFound Kind = iota + 1
	KindForbidden
	KindConflict
	KindInvalid
)

// Error is a refusal by the engine; the state did not change.
type Error struct {
	Kind Kind
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

func errf(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Msg: fmt.Sprintf(format, args...)}
}

// Engine routes requests to agents.
type Engine struct {
	opts Options

	mu        sync.Mutex
	seq       uint64
	wgs       map[string]*wgState
	requests  map[string]*request // active requests (not ended)
	byVisitor map[string]map[string]*request
	agents    map[string]*agent
	offers    map[string]*offer
	answered  map[string]answeredOffer // offers no longer current, for precise errors
	answeredQ []string
	// freeBuf and candBuf are route's scratch space.
	freeBuf, candBuf []*agent
	// out holds the events of the transitions not sent yet, oldest first;
	// sending is set while a goroutine sends them (outbox.go).
	out, spare []outEvent
	sending    bool
	// offered, when set (by tests), is told of each routing decision at the
	// moment it is made, under the lock, to check it against the state.
	offered func(g *wgState, r *request, a *agent, now time.Time)
	// tseq numbers the timers in the order they are armed (offer timeouts,
	// cool-downs, grace periods), so that a restored engine arms them again
	// in the same order (snapshot.go); cools are the pending cool-downs.
	tseq  uint64
	cools map[uint64]*coolTimer
	// halted is set by Halt: the timers do nothing any more.
	halted bool
}

// coolTimer is a pending cool-down: workgroup wg is routed again at at.
type coolTimer struct {
	wg    string
	at    time.Time
	timer Timer
}

const maxAnswered = 10000

type answeredOffer struct {
	agentID string
	outcome string
}

type wgState struct {
	Workgroup
	waiting []*request // queued and offered requests, oldest first
	rr      string     // the agent offered last (round-robin)
	avgWait time.Duration
	samples int
	qstats  map[string]queueStat // per queue (queues.go)
}

type request struct {
	Request
	seq     uint64
	offer   *offer
	tried   map[string]time.Time // agent -> not offered again before
	pos     int
	est     time.Duration
	away    bool
	grace   Timer
	graceAt time.Time   // when grace fires
	graceSq uint64      // grace's timer number (tseq)
	invited *Invitation // delivered to the visitor on their return when set
}

type offer struct {
	id      string
	req     *request
	agentID string
	expires time.Time
	timer   Timer
	tseq    uint64
}

type agent struct {
	id           string
	available    bool
	maxChats     int             // own limit; 0 means the workgroup's
	workgroups   map[string]bool // those of claimed that the engine serves
	claimed      []string        // the workgroups the agent's token names (manage.go)
	chats        map[string]bool // request ids pending or in chat
	offer        *offer
	lastActivity time.Time
}

// New returns an engine serving wgs.
func New(wgs []Workgroup, opts Options) (*Engine, error) {
	if opts.Clock == nil {
		opts.Clock = SystemClock{}
	}
	if opts.Events == nil {
		opts.Events = nopEvents{}
	}
	if opts.NewID == nil {
		opts.NewID = randomID
	}
	if opts.Grace <= 0 {
		opts.Grace = time.Minute
	}
	if opts.DefaultWait <= 0 {
		opts.DefaultWait = 30 * time.Second
	}
	e := &Engine{opts: opts, wgs: map[string]*wgState{}, requests: map[string]*request{},
		byVisitor: map[string]map[string]*request{}, agents: map[string]*agent{},
		offers: map[string]*offer{}, answered: map[string]answeredOffer{}, cools: map[uint64]*coolTimer{}}
	for _, w := range wgs {
		if err := e.SetWorkgroup(w); err != nil {
			return nil, err
		}
	}
	return e, nil
}

func randomID() string {
	var b [9]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

type nopEvents struct{}

func (nopEvents) Queue(string, string, int, time.Duration)     {}
func (nopEvents) Offer(Offer)                                  {}
func (nopEvents) OfferRevoked(string, string, Request, string) {}
func (nopEvents) Invitation(Invitation, bool, bool)            {}
func (nopEvents) RequestEnded(Request)                         {}

// Validate checks a workgroup's settings.
func (w Workgroup) Validate() error {
	switch {
	case w.Name == "":
		return fmt.Errorf("support: a workgroup needs a name")
	case !w.Strategy.Valid():
		return fmt.Errorf("support: workgroup %q: strategy must be %s or %s", w.Name, RoundRobin, LeastBusy)
	case w.OfferTimeout <= 0:
		return fmt.Errorf("support: workgroup %q: offerTimeout must be positive", w.Name)
	case w.MaxChats <= 0:
		return fmt.Errorf("support: workgroup %q: maxChats must be positive", w.Name)
	}
	return validateQueues(w)
}

// SetWorkgroup adds a workgroup or changes its settings; its queue and
// agents stay. Offers already made keep their expiry. See PutWorkgroup.
func (e *Engine) SetWorkgroup(w Workgroup) error {
	_, err := e.PutWorkgroup(w)
	return err
}

// Workgroups returns the workgroups' settings, by name.
func (e *Engine) Workgroups() []Workgroup {
	e.mu.Lock()
	defer e.unlock()
	out := make([]Workgroup, 0, len(e.wgs))
	for _, g := range e.wgs {
		out = append(out, g.Workgroup)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Status is a workgroup's state as visitors see it.
type Status struct {
	Workgroup       string        `json:"workgroup"`
	DisplayName     string        `json:"displayName,omitempty"`
	Open            bool          `json:"open"`
	AgentsAvailable int           `json:"agentsAvailable"`
	QueueLength     int           `json:"queueLength"`
	EstimatedWait   time.Duration `json:"estimatedWaitNs"` // JSON only across nodes
	// Queues are the figures of each of the workgroup's queues, in order
	// (none when it has no queues).
	Queues []QueueStatus `json:"queues,omitempty"`
	// OpensAt (closed) or ClosesAt (open) is the next change of the
	// opening hours, when the workgroup has hours and its Open switch is on.
	OpensAt  time.Time `json:"opensAt,omitzero"`
	ClosesAt time.Time `json:"closesAt,omitzero"`
}

// Status returns the state of workgroup name.
func (e *Engine) Status(name string) (Status, error) {
	e.mu.Lock()
	defer e.unlock()
	g := e.wgs[name]
	if g == nil {
		return Status{}, errf(KindNotFound, "no workgroup %q", name)
	}
	return e.status(g, e.opts.Clock.Now()), nil
}

// Visitor is who asks.
type Visitor struct {
	ID        string
	Name      string
	Anonymous bool
}

// Ask queues a request. A visitor has at most one waiting request per
// workgroup. It returns the request with its position and estimated wait.
func (e *Engine) Ask(v Visitor, workgroup, question string, metadata map[string]any, operationID string) (Request, int, time.Duration, error) {
	e.mu.Lock()
	defer e.unlock()
	g := e.wgs[workgroup]
	if g == nil {
		return Request{}, 0, 0, errf(KindNotFound, "no workgroup %q", workgroup)
	}
	if now := e.opts.Clock.Now(); !g.openAt(now) {
		return Request{}, 0, 0, errf(KindConflict, "%s", g.closedMessage(now))
	}
	for _, f := range g.RequiredFields {
		if f == "question" {
			if question == "" {
				return Request{}, 0, 0, errf(KindInvalid, "workgroup %q requires a question", workgroup)
			}
			continue
		}
		if v, ok := metadata[f]; !ok || v == nil || v == "" {
			return Request{}, 0, 0, errf(KindInvalid, "workgroup %q requires metadata field %q", workgroup, f)
		}
	}
	queue, ok := g.queueFor(metadata)
	if !ok {
		return Request{}, 0, 0, errf(KindInvalid, "the metadata matches none of the queues of workgroup %q (it has no catch-all queue)", workgroup)
	}
	for _, r := range e.byVisitor[v.ID] {
		if r.Workgroup == workgroup && (r.State == StateQueued || r.State == StateOffered) {
			return Request{}, 0, 0, errf(KindConflict, "you already wait in workgroup %q (request %s)", workgroup, r.ID)
		}
	}
	e.seq++
	r := &request{seq: e.seq, tried: map[string]time.Time{}, Request: Request{
		ID: "req-" + e.opts.NewID(), Workgroup: workgroup, Queue: queue, VisitorID: v.ID, VisitorName: v.Name, Anonymous: v.Anonymous,
		Question: question, Metadata: metadata, OperationID: operationID,
		CreatedAt: e.opts.Clock.Now(), State: StateQueued}}
	e.requests[r.ID] = r
	if e.byVisitor[v.ID] == nil {
		e.byVisitor[v.ID] = map[string]*request{}
	}
	e.byVisitor[v.ID][r.ID] = r
	e.emitAsked(r.snapshot())
	g.waiting = append(g.waiting, r)
	e.route(g)
	e.pushPositions(g, false)
	return r.snapshot(), r.pos, r.est, nil
}

func (r *request) snapshot() Request {
	s := r.Request
	s.Supervisors = slices.Clone(r.Supervisors)
	s.Conference = slices.Clone(r.Conference)
	if r.offer != nil {
		s.OfferID = r.offer.id
	}
	return s
}

// Cancel ends a visitor's request that has no chat yet.
func (e *Engine) Cancel(visitorID, requestID string) error {
	e.mu.Lock()
	defer e.unlock()
	r := e.requests[requestID]
	if r == nil || r.VisitorID != visitorID {
		return errf(KindNotFound, "no request %q of yours is waiting", requestID)
	}
	if r.State == StateChat {
		return errf(KindConflict, "request %q already has its chat", requestID)
	}
	e.end(r, StateCancelled, ReasonCancelled)
	return nil
}

// end takes a queued, offered or pending request out and tells everyone.
func (e *Engine) end(r *request, st State, reason string) {
	g := e.wgs[r.Workgroup]
	switch r.State {
	case StateOffered:
		o := r.offer
		e.dropOffer(o, reason)
		e.emitRevoked(o.agentID, o.id, r.snapshot(), reason)
	case StatePending:
		if a := e.agents[r.AgentID]; a != nil {
			delete(a.chats, r.ID)
			a.lastActivity = e.opts.Clock.Now()
		}
		e.emitRevoked(r.AgentID, r.OfferID, r.snapshot(), reason)
	case StateChat:
		for _, id := range append([]string{r.AgentID}, r.Conference...) {
			if a := e.agents[id]; a != nil {
				delete(a.chats, r.ID)
				a.lastActivity = e.opts.Clock.Now()
			}
		}
	}
	if r.grace != nil {
		r.grace.Stop()
		r.grace = nil
	}
	r.State = st
	e.unwait(g, r)
	delete(e.requests, r.ID)
	if m := e.byVisitor[r.VisitorID]; m != nil {
		delete(m, r.ID)
		if len(m) == 0 {
			delete(e.byVisitor, r.VisitorID)
		}
	}
	ended := r.snapshot()
	e.emit(func(ev Events) { ev.RequestEnded(ended) })
	if g != nil {
		e.routeAll()
		e.pushPositions(g, false)
	}
}

func (e *Engine) unwait(g *wgState, r *request) {
	if g == nil {
		return
	}
	if i := slices.Index(g.waiting, r); i >= 0 {
		g.waiting = slices.Delete(g.waiting, i, i+1)
	}
}

// rewait puts r back in its place (by arrival), in its queue: when that
// queue is gone (the workgroup's queues changed meanwhile), in the first
// its metadata matches, else the last one.
func (e *Engine) rewait(g *wgState, r *request) {
	if (r.Queue == "") != (len(g.Queues) == 0) || (r.Queue != "" && g.queue(r.Queue) == nil) {
		name, ok := g.queueFor(r.Metadata)
		if !ok {
			name = g.Queues[len(g.Queues)-1].Name
		}
		r.Queue = name
	}
	i, _ := slices.BinarySearchFunc(g.waiting, r.seq, func(x *request, s uint64) int {
		switch {
		case x.seq < s:
			return -1
		case x.seq > s:
			return 1
		}
		return 0
	})
	g.waiting = slices.Insert(g.waiting, i, r)
}

// dropOffer forgets a current offer (the caller says why to whom).
func (e *Engine) dropOffer(o *offer, outcome string) {
	if o.timer != nil {
		o.timer.Stop()
	}
	delete(e.offers, o.id)
	e.remember(o.id, o.agentID, outcome)
	if a := e.agents[o.agentID]; a != nil && a.offer == o {
		a.offer = nil
	}
	if o.req.offer == o {
		o.req.offer = nil
	}
	if o.req.State == StateOffered {
		o.req.State = StateQueued
	}
}

func (e *Engine) remember(offerID, agentID, outcome string) {
	if _, ok := e.answered[offerID]; !ok {
		e.answeredQ = append(e.answeredQ, offerID)
	}
	e.answered[offerID] = answeredOffer{agentID: agentID, outcome: outcome}
	if len(e.answeredQ) > maxAnswered {
		delete(e.answered, e.answeredQ[0])
		e.answeredQ = e.answeredQ[1:]
	}
}

// offerFor returns the current offer offerID of agentID, or the refusal.
func (e *Engine) offerFor(agentID, offerID string) (*offer, error) {
	o := e.offers[offerID]
	if o == nil {
		if a, ok := e.answered[offerID]; ok {
			if a.agentID != agentID {
				return nil, errf(KindForbidden, "offer %q was made to another agent", offerID)
			}
			return nil, errf(KindConflict, "offer %q is no longer open (%s)", offerID, a.outcome)
		}
		return nil, errf(KindNotFound, "no offer %q", offerID)
	}
	if o.agentID != agentID {
		return nil, errf(KindForbidden, "offer %q was made to another agent", offerID)
	}
	return o, nil
}

// Reject declines an offer; the request goes to the next agent, and this
// agent is not offered it again for the workgroup's offer timeout.
func (e *Engine) Reject(agentID, offerID string) error {
	e.mu.Lock()
	defer e.unlock()
	o, err := e.offerFor(agentID, offerID)
	if err != nil {
		return err
	}
	if _, ok := e.opts.Events.(RejectEvents); ok {
		snap := o.req.snapshot()
		e.emit(func(ev Events) { ev.(RejectEvents).OfferRejected(agentID, offerID, snap) })
	}
	e.pass(o, "rejected")
	return nil
}

// pass takes a current offer back (rejected or timed out) and routes again.
func (e *Engine) pass(o *offer, outcome string) {
	r := o.req
	g := e.wgs[r.Workgroup]
	e.dropOffer(o, outcome)
	if a := e.agents[o.agentID]; a != nil {
		a.lastActivity = e.opts.Clock.Now()
	}
	e.coolDown(g, r, o.agentID)
	e.routeAll()
	e.pushPositions(g, false)
}

// coolDown keeps r from agentID for one offer timeout of g, and routes g
// again when it is over (agentID may be the only one who can take r).
func (e *Engine) coolDown(g *wgState, r *request, agentID string) {
	cool := g.OfferTimeout
	at := e.opts.Clock.Now().Add(cool)
	r.tried[agentID] = at
	e.tseq++
	e.armCool(e.tseq, g.Name, at)
}

// armCool arms cool-down number seq: workgroup wg is routed again at at.
// The caller holds the lock.
func (e *Engine) armCool(seq uint64, wg string, at time.Time) {
	c := &coolTimer{wg: wg, at: at}
	e.cools[seq] = c
	c.timer = e.opts.Clock.AfterFunc(at.Sub(e.opts.Clock.Now()), func() {
		e.mu.Lock()
		defer e.unlock()
		if e.halted || e.cools[seq] != c {
			return
		}
		delete(e.cools, seq)
		if g := e.wgs[wg]; g != nil {
			e.route(g)
			e.pushPositions(g, false)
		}
	})
}

// Accept takes an offer: the request leaves the queue (Chat Pending), the
// ThreadCreator creates the support thread, and both sides are invited. When
// the thread cannot be created the request goes back to its place and the
// agent is told the offer is revoked; the error is returned.
func (e *Engine) Accept(ctx context.Context, agentID, offerID string) (Invitation, error) {
	e.mu.Lock()
	o, err := e.offerFor(agentID, offerID)
	if err != nil {
		e.unlock()
		return Invitation{}, err
	}
	r := o.req
	g := e.wgs[r.Workgroup]
	a := e.agents[agentID]
	e.dropOffer(o, "accepted")
	now := e.opts.Clock.Now()
	r.State = StatePending
	r.AgentID = agentID
	r.OfferID = offerID
	a.chats[r.ID] = true
	a.lastActivity = now
	e.unwait(g, r)
	e.sample(g, r.Queue, now.Sub(r.CreatedAt))
	e.routeAll() // the agent, without an offer now, may take another request
	e.pushPositions(g, false)
	snap := r.snapshot()
	e.unlock()

	var st SupportThread
	joiner, canJoin := e.opts.Threads.(ThreadJoiner)
	rejoin := snap.ThreadID != "" // transferred back to the queue: the thread exists
	switch {
	case e.opts.Threads == nil:
		err = fmt.Errorf("support: no thread creator")
	case rejoin && canJoin:
		st, err = joiner.JoinSupportThread(ctx, snap, agentID)
	case rejoin:
		err = fmt.Errorf("support: no thread joiner")
	default:
		st, err = e.opts.Threads.CreateSupportThread(ctx, snap, agentID)
	}

	e.mu.Lock()
	defer e.unlock()
	if r.State != StatePending || r.AgentID != agentID {
		// Cancelled or dropped meanwhile; end already revoked it.
		if err != nil {
			return Invitation{}, err
		}
		return Invitation{}, errf(KindConflict, "the visitor left before the chat started")
	}
	if err != nil {
		delete(a.chats, r.ID)
		r.State = StateQueued
		r.AgentID = ""
		r.OfferID = ""
		e.rewait(g, r)
		e.emitRevoked(agentID, offerID, r.snapshot(), ReasonFailed)
		e.routeAll()
		e.pushPositions(g, true)
		return Invitation{}, err
	}
	r.State = StateChat
	r.ThreadID = st.ThreadID
	r.ChatSince = e.opts.Clock.Now()
	if !rejoin {
		r.ThreadOwner = agentID
	}
	inv := Invitation{Request: r.snapshot(), AgentID: agentID, Thread: st, Requeued: rejoin}
	if rejoin {
		// The visitor is in the thread already.
		e.emitInvitation(inv, false, true)
		return inv, nil
	}
	if r.away {
		r.invited = &inv
	}
	e.emitInvitation(inv, !r.away, true)
	return inv, nil
}

// Close ends a chat (the visitor, its agent or an invited agent may). The
// agents' slots are freed.
func (e *Engine) Close(userID, requestID string) error {
	e.mu.Lock()
	defer e.unlock()
	r := e.requests[requestID]
	if r == nil || (r.VisitorID != userID && r.AgentID != userID && !slices.Contains(r.Conference, userID)) {
		return errf(KindNotFound, "no request %q of yours", requestID)
	}
	if r.State != StateChat {
		return errf(KindConflict, "request %q has no chat yet: cancel it instead", requestID)
	}
	e.end(r, StateClosed, "")
	return nil
}

// sample adds a wait to the averages of g and of its queue.
func (e *Engine) sample(g *wgState, queue string, d time.Duration) {
	if g.samples == 0 {
		g.avgWait = d
	} else {
		g.avgWait = (g.avgWait*4 + d) / 5
	}
	g.samples++
	if queue == "" {
		return
	}
	if g.qstats == nil {
		g.qstats = map[string]queueStat{}
	}
	st := g.qstats[queue]
	if st.samples == 0 {
		st.avgWait = d
	} else {
		st.avgWait = (st.avgWait*4 + d) / 5
	}
	st.samples++
	g.qstats[queue] = st
}

// AgentStatus is an agent's state after SetAvailability.
type AgentStatus struct {
	Available  bool     `json:"available"`
	MaxChats   int      `json:"maxChats,omitempty"`
	Chats      int      `json:"chats"`
	Workgroups []string `json:"workgroups"`
}

// SetAvailability makes agentID available or not in those of workgroups the
// engine serves; maxChats, when not nil, sets the agent's own limit (0: the
// workgroup's). It is refused when none of workgroups is served. An agent
// who becomes unavailable, or whose new limit leaves no room, loses their
// current offer (revoked, passed on); their chats go on.
func (e *Engine) SetAvailability(agentID string, workgroups []string, available bool, maxChats *int) (AgentStatus, error) {
	if maxChats != nil && *maxChats < 0 {
		return AgentStatus{}, errf(KindInvalid, "maxChats must not be negative")
	}
	e.mu.Lock()
	defer e.unlock()
	served := map[string]bool{}
	for _, w := range workgroups {
		if e.wgs[w] != nil {
			served[w] = true
		}
	}
	if len(served) == 0 {
		return AgentStatus{}, errf(KindForbidden, "you are an agent of no workgroup ECB serves")
	}
	a := e.agents[agentID]
	if a == nil {
		a = &agent{id: agentID, chats: map[string]bool{}}
		e.agents[agentID] = a
	}
	a.workgroups = served
	a.claimed = claims(workgroups)
	a.available = available
	a.lastActivity = e.opts.Clock.Now()
	if maxChats != nil {
		a.maxChats = *maxChats
	}
	e.revokeIfOver(a)
	if !available && len(a.chats) == 0 {
		// Nothing to remember about an idle, unavailable agent.
		delete(e.agents, agentID)
	}
	e.routeAll()
	e.pushAll()
	return e.agentStatus(a), nil
}

// revokeIfOver revokes a's offer (reason unavailable; the caller routes it
// again) when a may no longer take it: unavailable, or no room left under
// the limit of the offer's workgroup.
func (e *Engine) revokeIfOver(a *agent) {
	if o := a.offer; o != nil && (!a.available || len(a.chats)+1 > e.limit(a, e.wgs[o.req.Workgroup])) {
		e.dropOffer(o, ReasonUnavailable)
		e.emitRevoked(a.id, o.id, o.req.snapshot(), ReasonUnavailable)
	}
}

func (e *Engine) agentStatus(a *agent) AgentStatus {
	st := AgentStatus{Available: a.available, MaxChats: a.maxChats, Chats: len(a.chats), Workgroups: []string{}}
	for w := range a.workgroups {
		st.Workgroups = append(st.Workgroups, w)
	}
	sort.Strings(st.Workgroups)
	return st
}

// AgentGone makes agentID unavailable (their last connection ended): their
// offer is revoked and passed on; their chats go on.
func (e *Engine) AgentGone(agentID string) {
	e.mu.Lock()
	a := e.agents[agentID]
	var wgs []string
	if a != nil && a.available {
		for w := range a.workgroups {
			wgs = append(wgs, w)
		}
	}
	e.unlock()
	if len(wgs) > 0 {
		_, _ = e.SetAvailability(agentID, wgs, false, nil)
	}
}

// VisitorGone tells the engine that a visitor has no connection left: their
// waiting requests keep their place for the grace period, then are dropped.
func (e *Engine) VisitorGone(visitorID string) {
	e.mu.Lock()
	defer e.unlock()
	for _, r := range e.visitorRequests(visitorID) {
		if r.State == StateChat || r.away {
			continue
		}
		r.away = true
		r.graceAt = e.opts.Clock.Now().Add(e.opts.Grace)
		e.tseq++
		r.graceSq = e.tseq
		e.armGrace(r)
	}
}

// armGrace arms r's grace period, ending at r.graceAt. The caller holds the lock.
func (e *Engine) armGrace(r *request) {
	var t Timer
	t = e.opts.Clock.AfterFunc(r.graceAt.Sub(e.opts.Clock.Now()), func() {
		e.mu.Lock()
		defer e.unlock()
		if r.grace == t {
			r.grace = nil // fired: a snapshot has no grace period to arm again
		}
		if !e.halted && e.requests[r.ID] == r && r.away && r.State != StateChat {
			e.end(r, StateDropped, ReasonDropped)
		}
	})
	r.grace = t
}

// VisitorBack tells the engine that a visitor connected again: their
// requests resume, and they are told where each stands (its queue position,
// or the invitation they missed).
func (e *Engine) VisitorBack(visitorID string) {
	e.mu.Lock()
	defer e.unlock()
	for _, r := range e.visitorRequests(visitorID) {
		if !r.away {
			continue
		}
		r.away = false
		if r.grace != nil {
			r.grace.Stop()
			r.grace = nil
		}
		switch {
		case r.invited != nil:
			e.emitInvitation(*r.invited, true, false)
			r.invited = nil
		case r.State == StateQueued || r.State == StateOffered:
			e.emitQueue(r.VisitorID, r.ID, r.Queue, r.pos, r.est)
		}
	}
}

// Requests returns the visitor's active requests, oldest first.
func (e *Engine) Requests(visitorID string) []Request {
	e.mu.Lock()
	defer e.unlock()
	var out []Request
	for _, r := range e.visitorRequests(visitorID) {
		out = append(out, r.snapshot())
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].CreatedAt.Before(out[j].CreatedAt) || (out[i].CreatedAt.Equal(out[j].CreatedAt) && out[i].ID < out[j].ID)
	})
	return out
}

// limit is a's chat limit in g.
func (e *Engine) limit(a *agent, g *wgState) int {
	if a.maxChats > 0 {
		return a.maxChats
	}
	if g == nil {
		return 0
	}
	return g.MaxChats
}

func (e *Engine) availableIn(g *wgState) int {
	n := 0
	for _, a := range e.agents {
		if a.available && a.workgroups[g.Name] {
			n++
		}
	}
	return n
}

// eligible reports whether r may be offered to a now.
func (e *Engine) eligible(g *wgState, r *request, a *agent, now time.Time) bool {
	return a.available && a.workgroups[g.Name] && a.offer == nil && a.id != r.VisitorID &&
		!a.chats[r.ID] && len(a.chats) < e.limit(a, g) && !now.Before(r.tried[a.id]) &&
		(r.Queue == "" || g.serves(r.Queue, a.id))
}

func (e *Engine) routeAll() {
	names := make([]string, 0, len(e.wgs))
	for n := range e.wgs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		e.route(e.wgs[n])
	}
}

// route offers g's queued requests, oldest first, to the agents that may
// take them. Only the agents free for g (available, no offer, room) are
// looked at, so a rush with every agent busy costs nothing per request.
func (e *Engine) route(g *wgState) {
	if len(g.waiting) == 0 {
		return
	}
	free := e.freeAgents(g, e.freeBuf[:0])
	e.freeBuf = free[:0] // reused: route runs on every event, under the lock
	if len(free) == 0 {
		return
	}
	now := e.opts.Clock.Now()
	cands := e.candBuf[:0]
	left := len(free) // eligible skips those who got an offer meanwhile
	for _, r := range g.waiting {
		if left == 0 {
			break
		}
		if r.State != StateQueued {
			continue
		}
		cands = cands[:0]
		for _, a := range free {
			if e.eligible(g, r, a, now) {
				cands = append(cands, a)
			}
		}
		if len(cands) == 0 {
			continue
		}
		e.makeOffer(g, r, e.pick(g, cands), now)
		left--
	}
	e.candBuf = cands[:0]
}

// freeAgents appends to free the agents who may get an offer of g now,
// whatever the request.
func (e *Engine) freeAgents(g *wgState, free []*agent) []*agent {
	for _, a := range e.agents {
		if a.available && a.workgroups[g.Name] && a.offer == nil && len(a.chats) < e.limit(a, g) {
			free = append(free, a)
		}
	}
	return free
}

func (e *Engine) pick(g *wgState, cands []*agent) *agent {
	sort.Slice(cands, func(i, j int) bool { return cands[i].id < cands[j].id })
	if g.Strategy == LeastBusy {
		best := cands[0]
		for _, a := range cands[1:] {
			switch {
			case len(a.chats) < len(best.chats):
				best = a
			case len(a.chats) == len(best.chats) && a.lastActivity.Before(best.lastActivity):
				best = a
			}
		}
		return best
	}
	for _, a := range cands {
		if a.id > g.rr {
			return a
		}
	}
	return cands[0]
}

// armOffer arms o's timeout, at o.expires. The caller holds the lock.
func (e *Engine) armOffer(o *offer) {
	o.timer = e.opts.Clock.AfterFunc(o.expires.Sub(e.opts.Clock.Now()), func() {
		e.mu.Lock()
		defer e.unlock()
		if e.halted || e.offers[o.id] != o {
			return
		}
		e.emitRevoked(o.agentID, o.id, o.req.snapshot(), ReasonTimeout)
		e.pass(o, ReasonTimeout)
	})
}

func (e *Engine) makeOffer(g *wgState, r *request, a *agent, now time.Time) {
	o := &offer{id: "off-" + e.opts.NewID(), req: r, agentID: a.id, expires: now.Add(g.OfferTimeout)}
	g.rr = a.id
	e.offers[o.id] = o
	a.offer = o
	r.offer = o
	r.State = StateOffered
	e.tseq++
	o.tseq = e.tseq
	e.armOffer(o)
	if e.offered != nil {
		e.offered(g, r, a, now)
	}
	made := Offer{ID: o.id, AgentID: a.id, Request: r.snapshot(), ExpiresAt: o.expires}
	e.emit(func(ev Events) { ev.Offer(made) })
}

// estimate is the wait of the request at position pos in g, with n agents
// available in it (availableIn, counted once by the caller).
func (e *Engine) estimate(g *wgState, pos, n int) time.Duration {
	per := e.opts.DefaultWait
	if g.samples > 0 {
		per = g.avgWait
	}
	if n < 1 {
		n = 1
	}
	return (per * time.Duration(pos) / time.Duration(n)).Round(time.Second)
}

// pushPositions tells each waiting visitor of g their position in their
// queue when it changed (or always, with force).
func (e *Engine) pushPositions(g *wgState, force bool) {
	if len(g.Queues) > 0 {
		e.pushQueuePositions(g, force)
		return
	}
	n := e.availableIn(g)
	for i, r := range g.waiting {
		pos, est := i+1, e.estimate(g, i+1, n)
		if !force && pos == r.pos && est == r.est {
			continue
		}
		r.pos, r.est = pos, est
		if !r.away {
			e.emitQueue(r.VisitorID, r.ID, r.Queue, pos, est)
		}
	}
}

// pushAll runs pushPositions over every workgroup, by name, so that the
// events come in the same order whatever the maps' order.
func (e *Engine) pushAll() {
	names := make([]string, 0, len(e.wgs))
	for n := range e.wgs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		e.pushPositions(e.wgs[n], false)
	}
}

// sortedAgents returns the agents by id.
func (e *Engine) sortedAgents() []*agent {
	out := make([]*agent, 0, len(e.agents))
	for _, a := range e.agents {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// visitorRequests returns visitorID's active requests, oldest first.
func (e *Engine) visitorRequests(visitorID string) []*request {
	m := e.byVisitor[visitorID]
	out := make([]*request, 0, len(m))
	for _, r := range m {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	return out
}
