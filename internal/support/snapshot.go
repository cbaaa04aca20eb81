package support

import (
	"fmt"
	"slices"
	"sort"
	"time"
)

// Snapshots: the engine's whole state as plain data, so that another
// engine (on another node, after the owner died) continues where this one
// stopped. Snapshot copies the state under the lock; Restore builds a new
// engine from it and arms the timers again from their deadlines (offer
// timeouts, cool-downs, grace periods), in the order they were first armed,
// so that timers falling due at the same instant fire in the same order.
//
// What cannot continue is put right on Restore: a request whose thread was
// being created (Chat Pending: the Accept that held it ran on the engine
// that is gone) goes back to its place in the queue, its agent told that
// the offer is revoked (reason failed), as when the thread cannot be
// created; a slot reserved for an agent being added to a chat (Invite,
// Transfer in flight) is freed.

// SnapshotFormat is the version of the Snapshot's layout.
const SnapshotFormat = 1

// Snapshot is an engine's state, JSON-serializable. Metadata values of the
// requests come back from JSON as JSON values (numbers as float64), and an
// Invitation's Thread as the JSON form of what the ThreadCreator returned.
type Snapshot struct {
	Format     int              `json:"format"`
	Seq        uint64           `json:"seq"`
	TimerSeq   uint64           `json:"timerSeq"`
	Workgroups []WorkgroupState `json:"workgroups"`
	Requests   []RequestState   `json:"requests"` // active requests, by arrival
	Agents     []AgentState     `json:"agents"`   // by id
	CoolDowns  []CoolDownState  `json:"coolDowns,omitempty"`
	Answered   []AnsweredState  `json:"answered,omitempty"` // oldest first
}

// WorkgroupState is a workgroup's settings and routing state.
type WorkgroupState struct {
	Name           string        `json:"name"`
	DisplayName    string        `json:"displayName,omitempty"`
	Strategy       Strategy      `json:"strategy"`
	OfferTimeout   time.Duration `json:"offerTimeout"`
	MaxChats       int           `json:"maxChats"`
	Open           bool          `json:"open"`
	RequiredFields []string      `json:"requiredFields,omitempty"`
	Hours          *HoursConfig  `json:"hours,omitempty"`
	LastOffered    string        `json:"lastOffered,omitempty"` // round-robin
	AvgWait        time.Duration `json:"avgWait,omitempty"`
	Samples        int           `json:"samples,omitempty"`
	// Queues are the workgroup's queues (queues.go), QueueStats their wait
	// averages; both absent without queues (the layout of format 1 before
	// queues, which reads the same).
	Queues     []QueueConfig     `json:"queues,omitempty"`
	QueueStats []QueueStatsState `json:"queueStats,omitempty"`
}

// QueueStatsState is a queue's wait average.
type QueueStatsState struct {
	Queue   string        `json:"queue"`
	AvgWait time.Duration `json:"avgWait"`
	Samples int           `json:"samples"`
}

// RequestState is an active request with its routing state.
type RequestState struct {
	Request Request              `json:"request"`
	Seq     uint64               `json:"seq"`
	Offer   *OfferState          `json:"offer,omitempty"`
	Tried   map[string]time.Time `json:"tried,omitempty"` // agent -> not offered again before
	Pos     int                  `json:"pos,omitempty"`
	Est     time.Duration        `json:"est,omitempty"`
	Away    bool                 `json:"away,omitempty"`
	GraceAt time.Time            `json:"graceAt,omitzero"` // when away: dropped then
	GraceSq uint64               `json:"graceSeq,omitempty"`
	Invited *Invitation          `json:"invited,omitempty"` // missed while away
}

// OfferState is a request's current offer.
type OfferState struct {
	ID        string    `json:"id"`
	AgentID   string    `json:"agentId"`
	ExpiresAt time.Time `json:"expiresAt"`
	TimerSeq  uint64    `json:"timerSeq"`
}

// AgentState is an agent known to the engine.
type AgentState struct {
	ID           string    `json:"id"`
	Available    bool      `json:"available"`
	MaxChats     int       `json:"maxChats,omitempty"`
	Workgroups   []string  `json:"workgroups"`
	Claimed      []string  `json:"claimed,omitempty"`
	Chats        []string  `json:"chats,omitempty"`
	LastActivity time.Time `json:"lastActivity"`
}

// CoolDownState is a pending cool-down: the workgroup is routed again at At.
type CoolDownState struct {
	Seq       uint64    `json:"seq"`
	Workgroup string    `json:"workgroup"`
	At        time.Time `json:"at"`
}

// AnsweredState is an offer no longer current, kept for precise errors.
type AnsweredState struct {
	OfferID string `json:"offerId"`
	AgentID string `json:"agentId"`
	Outcome string `json:"outcome"`
}

// Snapshot returns a copy of the engine's state.
func (e *Engine) Snapshot() Snapshot {
	e.mu.Lock()
	defer e.unlock()
	s := Snapshot{Format: SnapshotFormat, Seq: e.seq, TimerSeq: e.tseq}
	names := make([]string, 0, len(e.wgs))
	for n := range e.wgs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		g := e.wgs[n]
		ws := WorkgroupState{Name: g.Name, DisplayName: g.DisplayName, Strategy: g.Strategy, OfferTimeout: g.OfferTimeout,
			MaxChats: g.MaxChats, Open: g.Open, RequiredFields: slices.Clone(g.RequiredFields),
			LastOffered: g.rr, AvgWait: g.avgWait, Samples: g.samples}
		if g.Hours != nil {
			hc := g.Hours.Config()
			ws.Hours = &hc
		}
		for _, q := range g.Queues {
			ws.Queues = append(ws.Queues, q.Config())
			if st, ok := g.qstats[q.Name]; ok {
				ws.QueueStats = append(ws.QueueStats, QueueStatsState{Queue: q.Name, AvgWait: st.avgWait, Samples: st.samples})
			}
		}
		s.Workgroups = append(s.Workgroups, ws)
	}
	reqs := make([]*request, 0, len(e.requests))
	for _, r := range e.requests {
		reqs = append(reqs, r)
	}
	sort.Slice(reqs, func(i, j int) bool { return reqs[i].seq < reqs[j].seq })
	for _, r := range reqs {
		rq := r.Request
		rq.Supervisors = slices.Clone(rq.Supervisors)
		rq.Conference = slices.Clone(rq.Conference)
		rs := RequestState{Request: rq, Seq: r.seq, Pos: r.pos, Est: r.est, Away: r.away}
		if len(r.tried) > 0 {
			rs.Tried = make(map[string]time.Time, len(r.tried))
			for a, t := range r.tried {
				rs.Tried[a] = t
			}
		}
		if r.away && r.grace != nil {
			rs.GraceAt, rs.GraceSq = r.graceAt, r.graceSq
		}
		if o := r.offer; o != nil {
			rs.Offer = &OfferState{ID: o.id, AgentID: o.agentID, ExpiresAt: o.expires, TimerSeq: o.tseq}
		}
		if r.invited != nil {
			inv := *r.invited
			rs.Invited = &inv
		}
		s.Requests = append(s.Requests, rs)
	}
	for _, a := range e.sortedAgents() {
		as := AgentState{ID: a.id, Available: a.available, MaxChats: a.maxChats, Workgroups: []string{},
			Claimed: slices.Clone(a.claimed), LastActivity: a.lastActivity}
		for w := range a.workgroups {
			as.Workgroups = append(as.Workgroups, w)
		}
		sort.Strings(as.Workgroups)
		for id := range a.chats {
			as.Chats = append(as.Chats, id)
		}
		sort.Strings(as.Chats)
		s.Agents = append(s.Agents, as)
	}
	for seq, c := range e.cools {
		s.CoolDowns = append(s.CoolDowns, CoolDownState{Seq: seq, Workgroup: c.wg, At: c.at})
	}
	sort.Slice(s.CoolDowns, func(i, j int) bool { return s.CoolDowns[i].Seq < s.CoolDowns[j].Seq })
	for _, id := range e.answeredQ {
		a := e.answered[id]
		s.Answered = append(s.Answered, AnsweredState{OfferID: id, AgentID: a.agentID, Outcome: a.outcome})
	}
	return s
}

// Restore returns an engine in the state s, with opts (as New takes them),
// its timers armed again: those whose deadline has passed fire at once.
// Requests whose chat was pending go back to the queue (see above); the
// events of that are sent before Restore returns.
func Restore(s Snapshot, opts Options) (*Engine, error) {
	if s.Format != SnapshotFormat {
		return nil, fmt.Errorf("support: snapshot format %d, want %d", s.Format, SnapshotFormat)
	}
	e, err := New(nil, opts)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.unlock()
	e.seq, e.tseq = s.Seq, s.TimerSeq
	for _, ws := range s.Workgroups {
		w := Workgroup{Name: ws.Name, DisplayName: ws.DisplayName, Strategy: ws.Strategy, OfferTimeout: ws.OfferTimeout,
			MaxChats: ws.MaxChats, Open: ws.Open, RequiredFields: slices.Clone(ws.RequiredFields)}
		if ws.Hours != nil {
			if w.Hours, err = ParseHours(*ws.Hours, "hours"); err != nil {
				return nil, fmt.Errorf("support: snapshot: workgroup %q: %w", ws.Name, err)
			}
		}
		if len(ws.Queues) > 0 {
			if w.Queues, err = ParseQueues(ws.Queues, "queues"); err != nil {
				return nil, fmt.Errorf("support: snapshot: workgroup %q: %w", ws.Name, err)
			}
		}
		if err := w.Validate(); err != nil {
			return nil, fmt.Errorf("support: snapshot: %w", err)
		}
		g := &wgState{Workgroup: w, rr: ws.LastOffered, avgWait: ws.AvgWait, samples: ws.Samples}
		for _, qs := range ws.QueueStats {
			if g.qstats == nil {
				g.qstats = map[string]queueStat{}
			}
			g.qstats[qs.Queue] = queueStat{avgWait: qs.AvgWait, samples: qs.Samples}
		}
		e.wgs[w.Name] = g
	}
	for _, as := range s.Agents {
		a := &agent{id: as.ID, available: as.Available, maxChats: as.MaxChats, workgroups: map[string]bool{},
			claimed: slices.Clone(as.Claimed), chats: map[string]bool{}, lastActivity: as.LastActivity}
		for _, w := range as.Workgroups {
			if e.wgs[w] != nil {
				a.workgroups[w] = true
			}
		}
		for _, id := range as.Chats {
			a.chats[id] = true
		}
		e.agents[a.id] = a
	}
	// timers to arm again, in the order they were first armed
	type arm struct {
		seq uint64
		f   func()
	}
	var arms []arm
	var pending []*request
	for _, rs := range s.Requests {
		r := &request{Request: rs.Request, seq: rs.Seq, tried: map[string]time.Time{}, pos: rs.Pos, est: rs.Est, away: rs.Away}
		r.Supervisors = slices.Clone(r.Supervisors)
		r.Conference = slices.Clone(r.Conference)
		for a, t := range rs.Tried {
			r.tried[a] = t
		}
		if rs.Invited != nil {
			inv := *rs.Invited
			r.invited = &inv
		}
		g := e.wgs[r.Workgroup]
		if g == nil {
			return nil, fmt.Errorf("support: snapshot: request %s of unknown workgroup %q", r.ID, r.Workgroup)
		}
		e.requests[r.ID] = r
		if e.byVisitor[r.VisitorID] == nil {
			e.byVisitor[r.VisitorID] = map[string]*request{}
		}
		e.byVisitor[r.VisitorID][r.ID] = r
		switch r.State {
		case StateQueued, StateOffered:
			e.rewait(g, r)
		case StatePending:
			pending = append(pending, r)
		case StateChat:
		default:
			return nil, fmt.Errorf("support: snapshot: request %s in state %q", r.ID, r.State)
		}
		if os := rs.Offer; os != nil {
			a := e.agents[os.AgentID]
			if a == nil || r.State != StateOffered {
				return nil, fmt.Errorf("support: snapshot: offer %s of request %s is inconsistent", os.ID, r.ID)
			}
			o := &offer{id: os.ID, req: r, agentID: os.AgentID, expires: os.ExpiresAt, tseq: os.TimerSeq}
			e.offers[o.id] = o
			a.offer = o
			r.offer = o
			arms = append(arms, arm{o.tseq, func() { e.armOffer(o) }})
		} else if r.State == StateOffered {
			return nil, fmt.Errorf("support: snapshot: request %s offered without an offer", r.ID)
		}
		if r.away && !rs.GraceAt.IsZero() {
			r.graceAt, r.graceSq = rs.GraceAt, rs.GraceSq
			arms = append(arms, arm{r.graceSq, func() { e.armGrace(r) }})
		}
	}
	for _, c := range s.CoolDowns {
		arms = append(arms, arm{c.Seq, func() { e.armCool(c.Seq, c.Workgroup, c.At) }})
	}
	sort.Slice(arms, func(i, j int) bool { return arms[i].seq < arms[j].seq })
	for _, x := range arms {
		x.f()
	}
	for _, a := range s.Answered {
		e.remember(a.OfferID, a.AgentID, a.Outcome)
	}
	// Slots reserved for a join in flight (Invite, Transfer) are freed.
	for _, a := range e.agents {
		for id := range a.chats {
			if r := e.requests[id]; r == nil || (r.AgentID != a.id && !slices.Contains(r.Conference, a.id)) {
				delete(a.chats, id)
			}
		}
	}
	// Pending chats go back to their place: their Accept ran elsewhere.
	for _, r := range pending {
		g := e.wgs[r.Workgroup]
		agentID, offerID := r.AgentID, r.OfferID
		if a := e.agents[agentID]; a != nil {
			delete(a.chats, r.ID)
		}
		r.State = StateQueued
		r.AgentID = ""
		r.OfferID = ""
		e.rewait(g, r)
		e.emitRevoked(agentID, offerID, r.snapshot(), ReasonFailed)
	}
	if len(pending) > 0 {
		e.routeAll()
		e.pushAll()
	}
	return e, nil
}

// Halt stops the engine's timers: nothing happens by itself any more (the
// methods still work). A node that lost the ownership of the engine's
// state halts its copy, so that only the owner's timers act.
func (e *Engine) Halt() {
	e.mu.Lock()
	defer e.unlock()
	e.halted = true
	for _, o := range e.offers {
		if o.timer != nil {
			o.timer.Stop()
		}
	}
	for _, r := range e.requests {
		if r.grace != nil {
			r.grace.Stop()
		}
	}
	for _, c := range e.cools {
		c.timer.Stop()
	}
}
