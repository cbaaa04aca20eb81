package ops

import (
	"context"

	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/callbacks"
	"github.com/ecbridge/ecb/internal/support"
)

// Conference operations (docs/support.md#conference).
const (
	OpSupportInvite = "support.invite"
	OpSupportLeave  = "support.leave"
)

// InviteRequest is the payload of support.invite.
type InviteRequest struct {
	RequestID string `json:"requestId"`
	Agent     string `json:"agent"`
}

// InviteResult is its answer.
type InviteResult struct {
	RequestID string `json:"requestId"`
	Agent     string `json:"agent"`
}

// SupportInvite adds a second agent of the workgroup to a chat (a
// conference): they become a member of the thread and get an invitation.
// The caller is the chat's agent, or a supervisor of its workgroup (for
// the agent holding it).
func (s *Service) SupportInvite(ctx context.Context, c Caller, req InviteRequest) (*InviteResult, error) {
	return supportRun(ctx, s, OpSupportInvite, c, requireUser, func(ctx context.Context, e SupportEngine) (*InviteResult, error) {
		if req.Agent == "" || len(req.Agent) > maxIDBytes {
			return nil, apierr.New(apierr.InvalidArgument, "agent is required (at most %d bytes)", maxIDBytes)
		}
		holder, err := s.chatHolder(e, c, req.RequestID)
		if err != nil {
			return nil, err
		}
		if _, err := e.Invite(ctx, holder, req.RequestID, req.Agent); err != nil {
			return nil, SupportError(err)
		}
		return &InviteResult{RequestID: req.RequestID, Agent: req.Agent}, nil
	})
}

// chatHolder returns the agent on whose behalf the caller acts on the chat
// requestID: themselves when they are an agent, the chat's agent when they
// supervise its workgroup. The engine checks that the chat is theirs.
func (s *Service) chatHolder(e SupportEngine, c Caller, requestID string) (string, error) {
	if requestID == "" || len(requestID) > maxIDBytes {
		return "", apierr.New(apierr.InvalidArgument, "requestId is required (at most %d bytes)", maxIDBytes)
	}
	if c.User.HasRole("agent") {
		return c.User.ID, nil
	}
	r, ok := e.Request(requestID)
	if !ok {
		return "", apierr.New(apierr.NotFound, "no active request %q", requestID)
	}
	if err := requireSupervisor(c, r.Workgroup); err != nil {
		return "", err
	}
	return r.AgentID, nil
}

// SupportLeave takes the caller, an invited agent or a supervisor who
// joined, out of a chat: the backend removes them from the thread, their
// connections stop listening to it, and an invited agent's slot is freed.
// The chat's own agent transfers or closes it instead (conflict).
func (s *Service) SupportLeave(ctx context.Context, c Caller, req SupportRequestRef) (any, error) {
	return supportRun(ctx, s, OpSupportLeave, c, requireUser, func(ctx context.Context, e SupportEngine) (any, error) {
		if req.RequestID == "" || len(req.RequestID) > maxIDBytes {
			return nil, apierr.New(apierr.InvalidArgument, "requestId is required (at most %d bytes)", maxIDBytes)
		}
		r, ok := e.Request(req.RequestID)
		role, primary := e.Role(req.RequestID, c.User.ID)
		switch {
		case !ok || role == "":
			return nil, apierr.New(apierr.NotFound, "you are not in the chat %q", req.RequestID)
		case primary:
			return nil, apierr.New(apierr.Conflict, "the chat is yours: transfer it or close it")
		}
		if err := s.leaveThreadAs(ctx, c.User.ID, r.ThreadID, c.Conn); err != nil {
			return nil, err
		}
		if err := e.Leave(c.User.ID, req.RequestID); err != nil {
			return nil, SupportError(err)
		}
		return struct{}{}, nil
	})
}

// Joined and Left post the participant callbacks (the thread's member
// pushes come from the backend calls that add or remove them), and note
// the live chat again with its agents' side as it is now (the audience of
// a whisper's offline nudge, offline.go).
func (ev supportEvents) Joined(r support.Request, userID, role, invitedBy string) {
	data := map[string]any{"role": role}
	if invitedBy != "" {
		data["invitedBy"] = invitedBy
	}
	ev.s.callback(r, callbacks.TypeParticipantJoined, userID, data)
	if r.State == support.StateChat {
		ev.s.noteSupportThread(r)
	}
}

func (ev supportEvents) Left(r support.Request, userID, role string) {
	ev.s.callback(r, callbacks.TypeParticipantLeft, userID, map[string]any{"role": role})
	if r.State == support.StateChat {
		ev.s.noteSupportThread(r)
	}
}
