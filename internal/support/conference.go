package support

import (
	"context"
	"fmt"
	"slices"
)

// ConferenceEvents may be implemented by an Events to hear about people
// joining and leaving a chat besides its agent and visitor. Like every
// event, they come in order after the lock is released. Joined is followed
// by the Invitation event to an invited agent (role RoleAgent); a
// supervisor's join (role RoleSupervisor) has no invitation: its caller
// gets the thread directly.
type ConferenceEvents interface {
	Joined(r Request, userID, role, invitedBy string)
	Left(r Request, userID, role string)
}

// Roles of the people in a chat, as ConferenceEvents report them.
const (
	RoleAgent      = "agent"
	RoleSupervisor = "supervisor"
)

// Invite adds toAgent to the chat requestID held by inviter (a conference):
// an available agent of the workgroup with room, who is added to the thread
// by the ThreadJoiner and invited (Invitation.Conference). The chat counts
// against their limit until they leave or it ends. Refusals: no such chat
// of inviter (not_found), toAgent known to serve other workgroups
// (forbidden), toAgent unavailable, full, or in the chat already
// (conflict).
func (e *Engine) Invite(ctx context.Context, inviter, requestID, toAgent string) (Invitation, error) {
	e.mu.Lock()
	defer e.unlock()
	r := e.requests[requestID]
	if r == nil || r.AgentID != inviter {
		return Invitation{}, errf(KindNotFound, "no chat %q of yours", requestID)
	}
	if r.State != StateChat {
		return Invitation{}, errf(KindConflict, "request %q has no chat yet", requestID)
	}
	if toAgent == r.AgentID || slices.Contains(r.Conference, toAgent) {
		return Invitation{}, errf(KindConflict, "%q is in the chat already", toAgent)
	}
	st, err := e.reserveAndJoin(ctx, r, toAgent, func() bool { return e.requests[r.ID] == r && r.State == StateChat })
	if err != nil {
		return Invitation{}, err
	}
	if a := e.agents[toAgent]; a != nil {
		a.lastActivity = e.opts.Clock.Now()
	}
	r.Conference = append(r.Conference, toAgent)
	inv := Invitation{Request: r.snapshot(), AgentID: toAgent, Thread: st, Conference: true}
	e.emitJoined(inv.Request, toAgent, RoleAgent, inviter)
	e.emitInvitation(inv, false, true)
	return inv, nil
}

// reserveAndJoin reserves a slot of agentID for r's chat and adds them to
// its thread through the ThreadJoiner. Called with the lock held, it
// releases it around the backend call (sending the events queued so far)
// and returns with it held again.
// still tells whether the chat is as the caller left it; when it is not, or
// on any error, the slot is released and the error returned.
func (e *Engine) reserveAndJoin(ctx context.Context, r *request, agentID string, still func() bool) (SupportThread, error) {
	a, err := e.reserve(r, agentID)
	if err != nil {
		return SupportThread{}, err
	}
	snap := r.snapshot()
	e.unlock()
	st, err := e.join(ctx, snap, agentID)
	e.mu.Lock()
	if err == nil && !still() {
		err = errf(KindConflict, "the chat ended or moved meanwhile")
	}
	if err != nil {
		delete(a.chats, r.ID)
		e.routeAll() // the reserved slot is free again
		return SupportThread{}, err
	}
	return st, nil
}

// reserve checks that agentID may take one more chat of r's workgroup and
// reserves the slot (while the thread is joined). The caller holds the lock.
func (e *Engine) reserve(r *request, agentID string) (*agent, error) {
	g := e.wgs[r.Workgroup]
	a := e.agents[agentID]
	switch {
	case a != nil && !a.workgroups[r.Workgroup]:
		return nil, errf(KindForbidden, "%q is not an agent of workgroup %q", agentID, r.Workgroup)
	case a == nil || !a.available:
		return nil, errf(KindConflict, "%q is not available", agentID)
	}
	busy, limit := len(a.chats), e.limit(a, g)
	if a.offer != nil {
		// The offer they hold may become a chat, within its workgroup's limit too.
		busy++
		limit = min(limit, e.limit(a, e.wgs[a.offer.req.Workgroup]))
	}
	if busy+1 > limit {
		return nil, errf(KindConflict, "%q has no room for another chat", agentID)
	}
	a.chats[r.ID] = true
	return a, nil
}

// join adds agentID to r's existing thread through the ThreadJoiner.
func (e *Engine) join(ctx context.Context, r Request, agentID string) (SupportThread, error) {
	j, ok := e.opts.Threads.(ThreadJoiner)
	if !ok {
		return SupportThread{}, fmt.Errorf("support: no thread joiner")
	}
	return j.JoinSupportThread(ctx, r, agentID)
}

// Role returns what userID is in the active chat requestID: RoleAgent for
// its agent or an invited one, RoleSupervisor for a supervisor who joined,
// "" otherwise; primary is true for the chat's own agent.
func (e *Engine) Role(requestID, userID string) (role string, primary bool) {
	e.mu.Lock()
	defer e.unlock()
	r := e.requests[requestID]
	switch {
	case r == nil:
		return "", false
	case r.AgentID == userID:
		return RoleAgent, true
	case slices.Contains(r.Conference, userID):
		return RoleAgent, false
	case slices.Contains(r.Supervisors, userID):
		return RoleSupervisor, false
	}
	return "", false
}

// Leave takes userID, an invited agent or a supervisor who joined, out of
// the chat requestID; an invited agent's slot is freed. The chat's own
// agent cannot leave it (transfer or close it instead: conflict); anybody
// else is not_found.
func (e *Engine) Leave(userID, requestID string) error {
	e.mu.Lock()
	defer e.unlock()
	r := e.requests[requestID]
	if r == nil {
		return errf(KindNotFound, "no active request %q", requestID)
	}
	role := ""
	switch {
	case r.AgentID == userID:
		return errf(KindConflict, "the chat is yours: transfer it or close it")
	case slices.Contains(r.Conference, userID):
		role = RoleAgent
		r.Conference = slices.DeleteFunc(r.Conference, func(id string) bool { return id == userID })
		if a := e.agents[userID]; a != nil {
			delete(a.chats, r.ID)
			a.lastActivity = e.opts.Clock.Now()
		}
	case slices.Contains(r.Supervisors, userID):
		role = RoleSupervisor
		r.Supervisors = slices.DeleteFunc(r.Supervisors, func(id string) bool { return id == userID })
	default:
		return errf(KindNotFound, "you are not in the chat %q", requestID)
	}
	e.emitLeft(r.snapshot(), userID, role)
	if role == RoleAgent {
		e.routeAll() // the agent has room again
		e.pushAll()
	}
	return nil
}
