package support

import (
	"context"
	"slices"
	"sort"
	"time"
)

// ThreadJoiner may be implemented by a ThreadCreator to add an agent to an
// existing support thread: a chat transferred to another agent, or put back
// in the queue and accepted again. It returns the thread and the agent's
// threadToken (AgentToken); VisitorToken is not used.
type ThreadJoiner interface {
	JoinSupportThread(ctx context.Context, r Request, agentID string) (SupportThread, error)
}

// TransferEvents may be implemented by an Events to hear about transfers.
// Transferred comes in order with the other events; toAgent is "" when the
// request went back to the queue. When it went to an agent, the Invitation
// event to that agent follows.
type TransferEvents interface {
	Transferred(r Request, fromAgent, toAgent string)
}

// Conversations returns the chats of workgroup (pending or in progress),
// oldest first.
func (e *Engine) Conversations(workgroup string) ([]Request, error) {
	e.mu.Lock()
	defer e.unlock()
	if e.wgs[workgroup] == nil {
		return nil, errf(KindNotFound, "no workgroup %q", workgroup)
	}
	var out []Request
	for _, r := range e.requests {
		if r.Workgroup == workgroup && (r.State == StateChat || r.State == StatePending) {
			out = append(out, r.snapshot())
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].CreatedAt.Before(out[j].CreatedAt) || (out[i].CreatedAt.Equal(out[j].CreatedAt) && out[i].ID < out[j].ID)
	})
	return out, nil
}

// Request returns the active request requestID.
func (e *Engine) Request(requestID string) (Request, bool) {
	e.mu.Lock()
	defer e.unlock()
	r := e.requests[requestID]
	if r == nil {
		return Request{}, false
	}
	return r.snapshot(), true
}

// NoteSupervisor records that supervisorID joined the chat requestID.
func (e *Engine) NoteSupervisor(requestID, supervisorID string) {
	e.mu.Lock()
	defer e.unlock()
	if r := e.requests[requestID]; r != nil && !slices.Contains(r.Supervisors, supervisorID) {
		r.Supervisors = append(r.Supervisors, supervisorID)
		e.emitJoined(r.snapshot(), supervisorID, RoleSupervisor, "")
	}
}

// Transfer hands the chat requestID, held by fromAgent, to toAgent (an
// available agent of the workgroup with room, who is added to the thread by
// the ThreadJoiner and invited), or, when toAgent is "", puts it back in the
// queue in its original place. fromAgent's slot is freed. Refusals: no such
// chat of fromAgent (not_found), toAgent known to serve other workgroups
// (forbidden), toAgent unavailable, full or fromAgent, or back to the queue
// while invited agents are in the chat (conflict). An invited agent takes
// the chat over without joining the thread again.
func (e *Engine) Transfer(ctx context.Context, fromAgent, requestID, toAgent string) (Invitation, error) {
	e.mu.Lock()
	defer e.unlock()
	r := e.requests[requestID]
	if r == nil || r.AgentID != fromAgent {
		return Invitation{}, errf(KindNotFound, "no chat %q of yours", requestID)
	}
	if r.State != StateChat {
		return Invitation{}, errf(KindConflict, "request %q has no chat yet", requestID)
	}
	g := e.wgs[r.Workgroup]
	from := e.agents[fromAgent]
	switch {
	case toAgent == "" && len(r.Conference) > 0:
		// Queued again, the chat would have invited agents and no agent.
		return Invitation{}, errf(KindConflict, "agents %v are in the chat: transfer it to one of them, or they leave it first", r.Conference)
	case toAgent == "":
		if from != nil {
			delete(from.chats, r.ID)
			from.lastActivity = e.opts.Clock.Now()
		}
		r.State = StateQueued
		r.AgentID = ""
		r.OfferID = ""
		r.ChatSince = time.Time{}
		r.tried = map[string]time.Time{}
		e.coolDown(g, r, fromAgent)
		e.emitTransferred(r.snapshot(), fromAgent, "")
		e.rewait(g, r)
		e.routeAll()
		e.pushPositions(g, true)
		return Invitation{}, nil
	case toAgent == fromAgent:
		return Invitation{}, errf(KindConflict, "the chat is yours already")
	case slices.Contains(r.Conference, toAgent):
		// An invited agent takes the chat over: they are in the thread and
		// their slot is taken already.
		r.Conference = slices.DeleteFunc(r.Conference, func(id string) bool { return id == toAgent })
		e.handOver(r, from, toAgent)
		return Invitation{Request: r.snapshot(), AgentID: toAgent, Transfer: true}, nil
	}
	st, err := e.reserveAndJoin(ctx, r, toAgent, func() bool {
		return e.requests[r.ID] == r && r.State == StateChat && r.AgentID == fromAgent
	})
	if err != nil {
		return Invitation{}, err
	}
	e.handOver(r, from, toAgent)
	inv := Invitation{Request: r.snapshot(), AgentID: toAgent, Thread: st, Transfer: true}
	e.emitInvitation(inv, false, true)
	return inv, nil
}

// handOver makes toAgent the agent of r instead of from (whose slot is
// freed), tells the TransferEvents, and routes again. toAgent's slot is
// taken already. The caller holds the lock.
func (e *Engine) handOver(r *request, from *agent, toAgent string) {
	now := e.opts.Clock.Now()
	fromAgent := r.AgentID
	if from != nil {
		delete(from.chats, r.ID)
		from.lastActivity = now
	}
	if to := e.agents[toAgent]; to != nil {
		to.lastActivity = now
	}
	r.AgentID = toAgent
	r.OfferID = ""
	e.emitTransferred(r.snapshot(), fromAgent, toAgent)
	e.routeAll() // fromAgent has room again
	e.pushAll()
}
