package support

import (
	"context"
	"fmt"
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
// Transferred is called with the engine's lock held; toAgent is "" when the
// request went back to the queue. When it went to an agent, the Invitation
// event to that agent follows.
type TransferEvents interface {
	Transferred(r Request, fromAgent, toAgent string)
}

// Conversations returns the chats of workgroup (pending or in progress),
// oldest first.
func (e *Engine) Conversations(workgroup string) ([]Request, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
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
	defer e.mu.Unlock()
	r := e.requests[requestID]
	if r == nil {
		return Request{}, false
	}
	return r.snapshot(), true
}

// NoteSupervisor records that supervisorID joined the chat requestID.
func (e *Engine) NoteSupervisor(requestID, supervisorID string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r := e.requests[requestID]; r != nil && !slices.Contains(r.Supervisors, supervisorID) {
		r.Supervisors = append(r.Supervisors, supervisorID)
	}
}

// Transfer hands the chat requestID, held by fromAgent, to toAgent (an
// available agent of the workgroup with room, who is added to the thread by
// the ThreadJoiner and invited), or, when toAgent is "", puts it back in the
// queue in its original place. fromAgent's slot is freed. Refusals: no such
// chat of fromAgent (not_found), toAgent known to serve other workgroups
// (forbidden), toAgent unavailable, full or fromAgent (conflict).
func (e *Engine) Transfer(ctx context.Context, fromAgent, requestID, toAgent string) (Invitation, error) {
	e.mu.Lock()
	r := e.requests[requestID]
	if r == nil || r.AgentID != fromAgent {
		e.mu.Unlock()
		return Invitation{}, errf(KindNotFound, "no chat %q of yours", requestID)
	}
	if r.State != StateChat {
		e.mu.Unlock()
		return Invitation{}, errf(KindConflict, "request %q has no chat yet", requestID)
	}
	g := e.wgs[r.Workgroup]
	from := e.agents[fromAgent]
	if toAgent == "" {
		defer e.mu.Unlock()
		if from != nil {
			delete(from.chats, r.ID)
			from.lastActivity = e.opts.Clock.Now()
		}
		r.State = StateQueued
		r.AgentID = ""
		r.OfferID = ""
		r.ChatSince = time.Time{}
		r.tried = map[string]time.Time{fromAgent: e.opts.Clock.Now().Add(g.OfferTimeout)}
		if te, ok := e.opts.Events.(TransferEvents); ok {
			te.Transferred(r.snapshot(), fromAgent, "")
		}
		e.rewait(g, r)
		e.routeAll()
		e.pushPositions(g, true)
		return Invitation{}, nil
	}
	if toAgent == fromAgent {
		e.mu.Unlock()
		return Invitation{}, errf(KindConflict, "the chat is yours already")
	}
	to := e.agents[toAgent]
	switch {
	case to != nil && !to.workgroups[r.Workgroup]:
		e.mu.Unlock()
		return Invitation{}, errf(KindForbidden, "%q is not an agent of workgroup %q", toAgent, r.Workgroup)
	case to == nil || !to.available:
		e.mu.Unlock()
		return Invitation{}, errf(KindConflict, "%q is not available", toAgent)
	}
	busy := len(to.chats)
	if to.offer != nil {
		busy++ // the offer they hold may become a chat
	}
	if busy+1 > e.limit(to, g) {
		e.mu.Unlock()
		return Invitation{}, errf(KindConflict, "%q has no room for another chat", toAgent)
	}
	to.chats[r.ID] = true // reserved while the thread is joined
	snap := r.snapshot()
	e.mu.Unlock()

	var st SupportThread
	var err error
	if j, ok := e.opts.Threads.(ThreadJoiner); ok {
		st, err = j.JoinSupportThread(ctx, snap, toAgent)
	} else {
		err = fmt.Errorf("support: no thread joiner")
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.requests[r.ID] != r || r.State != StateChat || r.AgentID != fromAgent {
		delete(to.chats, r.ID)
		if err != nil {
			return Invitation{}, err
		}
		return Invitation{}, errf(KindConflict, "the chat ended or moved meanwhile")
	}
	if err != nil {
		delete(to.chats, r.ID)
		return Invitation{}, err
	}
	now := e.opts.Clock.Now()
	if from != nil {
		delete(from.chats, r.ID)
		from.lastActivity = now
	}
	to.lastActivity = now
	r.AgentID = toAgent
	r.OfferID = ""
	inv := Invitation{Request: r.snapshot(), AgentID: toAgent, Thread: st, Transfer: true}
	if te, ok := e.opts.Events.(TransferEvents); ok {
		te.Transferred(inv.Request, fromAgent, toAgent)
	}
	e.opts.Events.Invitation(inv, false, true)
	e.routeAll() // fromAgent has room again
	for _, g := range e.wgs {
		e.pushPositions(g, false)
	}
	return inv, nil
}
