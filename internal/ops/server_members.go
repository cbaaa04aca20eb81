package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/auth"
	"github.com/ecbridge/ecb/internal/hub"
	"github.com/ecbridge/ecb/internal/support"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// The backend acting on a thread's members and on live support
// conversations through the Server API (package serverapi). The backend has
// changed its own store already; these make the change live: pushes to the
// members, a fresh threadToken to a new member's connections, an at-once
// detach of a removed member's, and the end of a support conversation.
//
// A threadToken is only ever signed by the backend. Where the Server API
// call does not carry one, ECB asks the backend for it the way every
// operation gets one: a getThread as that user (one message, the smallest
// page), whose answer carries the thread and a threadToken signed for them.

// Thread push changes of the Server API's member and announce effects.
// (ChangeRemoved, the removed user's, is moderation.go's.)
const (
	ChangeAdded   = "added"
	ChangeCreated = "created"
)

// MemberThreadPush is the thread push a user gets when the backend added
// them to a thread or announced one: {threadId, change, thread?,
// threadToken}, the threadToken signed for that user, so that the client
// calls getThread with it (or listens) without asking for its threads again.
type MemberThreadPush struct {
	ThreadID    string            `json:"threadId"`
	Change      string            `json:"change"`
	Thread      *ecbserver.Thread `json:"thread,omitempty"`
	ThreadToken string            `json:"threadToken"`
}

// AddedMember is what ServerAddMember did.
type AddedMember struct {
	ThreadID string `json:"threadId"`
	UserID   string `json:"userId"`
	// Told is how many connections of the user got the thread push, on the
	// node that served the call (the push reaches every node).
	Told int `json:"told"`
}

// threadTokenFor returns a threadToken of userID for threadID and the thread
// as userID sees it: token when given (it must be a valid threadToken of
// that user and thread), otherwise the backend's getThread as userID.
func (s *Service) threadTokenFor(ctx context.Context, threadID, userID, token string) (string, *ecbserver.Thread, error) {
	if token != "" {
		if s.verifier == nil {
			return "", nil, apierr.New(apierr.Unavailable, "this node verifies no tokens")
		}
		t, err := s.verifier.VerifyThread(token)
		if err != nil {
			return "", nil, apierr.Wrap(err, apierr.InvalidArgument, "threadToken is not a valid threadToken")
		}
		if t.ThreadID != threadID || t.UserID != userID {
			return "", nil, apierr.New(apierr.InvalidArgument, "threadToken is not signed for this thread and user")
		}
		return token, nil, nil
	}
	if s.backend == nil {
		return "", nil, apierr.New(apierr.Unavailable, "this node has no backend to sign a threadToken")
	}
	resp, err := s.backend.GetThread(ctx, &ecbserver.GetThreadRequest{UserID: userID, ThreadID: threadID, Limit: 1})
	if err != nil {
		var ae *apierr.Error
		if errors.As(err, &ae) && (ae.Code == apierr.Forbidden || ae.Code == apierr.NotFound) {
			return "", nil, apierr.Wrap(err, apierr.Conflict, fmt.Sprintf("the backend's getThread refused the user (%s): add them to the thread in the backend first", ae.Code))
		}
		return "", nil, err
	}
	if resp.ThreadToken == "" {
		return "", nil, apierr.New(apierr.Unavailable, "the backend's getThread answered no threadToken")
	}
	th := resp.Thread
	return resp.ThreadToken, &th, nil
}

// ServerAddMember makes live that the backend added userID to threadID:
// the thread's listeners get member {change: "joined"} and every connection
// of the user, on every node, a thread push {change: "added", thread?,
// threadToken}. token, when not empty, is the threadToken the backend signed
// for the user; otherwise ECB asks the backend's getThread for one.
func (s *Service) ServerAddMember(ctx context.Context, threadID, userID, token string) (*AddedMember, error) {
	if err := s.checkThreadStatus(threadID, auth.AccessRead); err != nil {
		return nil, err
	}
	tok, th, err := s.threadTokenFor(ctx, threadID, userID, token)
	if err != nil {
		return nil, err
	}
	if th != nil {
		s.live.presence.NoteThread(threadID, th.Members)
	}
	if err := s.publishMember(ctx, threadID, userID, "joined", ""); err != nil {
		return nil, err
	}
	p := memberThreadPush(MemberThreadPush{ThreadID: threadID, Change: ChangeAdded, Thread: th, ThreadToken: tok})
	n, err := s.hub.SendToUser(userID, p, nil)
	return &AddedMember{ThreadID: threadID, UserID: userID, Told: n}, hubError(err)
}

func memberThreadPush(m MemberThreadPush) *hub.Push {
	data, err := json.Marshal(m)
	if err != nil { // only a Thread whose data is not JSON; it came decoded from JSON
		m.Thread = nil
		data, _ = json.Marshal(m)
	}
	return &hub.Push{Event: EventThread, Data: data, At: time.Now()}
}

// RemovedMember is what ServerRemoveMember did.
type RemovedMember struct {
	ThreadID string `json:"threadId"`
	UserID   string `json:"userId"`
	// Detached is how many connections of the user stopped listening, on
	// the node that served the call (those of the other nodes too, uncounted).
	Detached int `json:"detached"`
}

// ServerRemoveMember makes live that the backend removed userID from
// threadID: every connection of the user, on every node, stops listening at
// once and gets a thread push {change: "removed"}; the remaining listeners
// get member {change: "removed"} with no by (the backend removed the user,
// who did not leave: the same change as moderation's removeParticipant). The user's old threadToken still verifies:
// the backend refuses its getThread and addThreadMessage from now on.
func (s *Service) ServerRemoveMember(ctx context.Context, threadID, userID string) (*RemovedMember, error) {
	if s.guards.Threads.ThreadStatus(threadID) == ThreadDeleted {
		return nil, apierr.New(apierr.NotFound, "the thread is deleted")
	}
	n, err := s.hub.DetachUser(threadID, userID)
	if err != nil {
		return nil, hubError(err)
	}
	if _, err := s.hub.SendToUser(userID, threadChange(ThreadChangePush{ThreadID: threadID, Change: ChangeRemoved}), nil); err != nil {
		return nil, hubError(err)
	}
	if err := s.publishMember(ctx, threadID, userID, ChangeRemoved, ""); err != nil {
		return nil, err
	}
	return &RemovedMember{ThreadID: threadID, UserID: userID, Detached: n}, nil
}

// MaxAnnounceMembers is the most members an announce may name.
const MaxAnnounceMembers = 1000

// Announced is what AnnounceThread did.
type Announced struct {
	ThreadID string `json:"threadId"`
	// Told are the members who were online and got the push.
	Told []string `json:"told"`
	// Offline are the members with no connection: they see the thread in
	// their next getThreads.
	Offline []string `json:"offline"`
	// Refused are the online members whose threadToken the backend refused
	// to sign (its getThread answered forbidden or not_found).
	Refused []string `json:"refused"`
}

// AnnounceThread tells every online member of a thread the backend created
// on its own: each gets, on every connection of every node, a thread push
// {change: "created", thread, threadToken} with a threadToken the backend
// signed for them (a getThread as each online member). Offline members are
// not asked for: their next getThreads lists the thread.
func (s *Service) AnnounceThread(ctx context.Context, threadID string, members []string) (*Announced, error) {
	if err := s.checkThreadStatus(threadID, auth.AccessRead); err != nil {
		return nil, err
	}
	out := &Announced{ThreadID: threadID, Told: []string{}, Offline: []string{}, Refused: []string{}}
	seen := make([]string, 0, len(members))
	for _, m := range members {
		if slices.Contains(seen, m) {
			continue
		}
		seen = append(seen, m)
		n, err := s.live.presence.Connections(ctx, m)
		if err != nil {
			return nil, apierr.Wrap(err, apierr.Unavailable, "the cluster's presence cannot be read now; retry")
		}
		if n == 0 {
			out.Offline = append(out.Offline, m)
			continue
		}
		tok, th, err := s.threadTokenFor(ctx, threadID, m, "")
		if err != nil {
			var ae *apierr.Error
			if errors.As(err, &ae) && ae.Code == apierr.Conflict {
				out.Refused = append(out.Refused, m)
				continue
			}
			return nil, err
		}
		s.live.presence.NoteThread(threadID, th.Members)
		if _, err := s.hub.SendToUser(m, memberThreadPush(MemberThreadPush{ThreadID: threadID, Change: ChangeCreated, Thread: th, ThreadToken: tok}), nil); err != nil {
			return nil, hubError(err)
		}
		out.Told = append(out.Told, m)
	}
	return out, nil
}

// ClosedConversation is what ServerCloseConversation did.
type ClosedConversation struct {
	RequestID string `json:"requestId"`
	// State is how the request ended: closed (it had its chat) or cancelled
	// (it was still waiting or offered).
	State string `json:"state"`
}

// ServerCloseConversation ends a live support request as the backend asks:
// a chat is closed as if its agent closed it (the agent's slot is freed,
// visitor and agents get support {change: "closed"}, the conversation.closed
// callback is sent); a request still waiting is cancelled. In cluster mode
// the engine forwards to the owner node.
func (s *Service) ServerCloseConversation(requestID string) (*ClosedConversation, error) {
	e, err := s.requireSupport()
	if err != nil {
		return nil, err
	}
	r, ok := e.Request(requestID)
	if !ok {
		return nil, apierr.New(apierr.NotFound, "no live support request %q", requestID)
	}
	if r.State == support.StateChat {
		if err := e.Close(r.VisitorID, requestID); err != nil {
			return nil, SupportError(err)
		}
		return &ClosedConversation{RequestID: requestID, State: string(support.StateClosed)}, nil
	}
	if err := e.Cancel(r.VisitorID, requestID); err != nil {
		return nil, SupportError(err)
	}
	return &ClosedConversation{RequestID: requestID, State: string(support.StateCancelled)}, nil
}

// ServerAddAgent adds an agent of the chat's workgroup to a live chat, as
// support.invite by the chat's agent does: the backend adds them to the
// thread and they get an invitation.
func (s *Service) ServerAddAgent(ctx context.Context, requestID, agentID string) (*InviteResult, error) {
	e, err := s.requireSupport()
	if err != nil {
		return nil, err
	}
	if agentID == "" || len(agentID) > maxIDBytes {
		return nil, apierr.New(apierr.InvalidArgument, "agent is required (at most %d bytes)", maxIDBytes)
	}
	r, ok := e.Request(requestID)
	if !ok {
		return nil, apierr.New(apierr.NotFound, "no live support request %q", requestID)
	}
	if r.State != support.StateChat || r.AgentID == "" {
		return nil, apierr.New(apierr.Conflict, "request %q has no chat yet", requestID)
	}
	if _, err := e.Invite(ctx, r.AgentID, requestID, agentID); err != nil {
		return nil, SupportError(err)
	}
	return &InviteResult{RequestID: requestID, Agent: agentID}, nil
}

// EndThreadConversations ends the live support conversations held in
// threadID (the Server API closed or deleted the thread): each is closed,
// or cancelled while waiting. It returns the request ids it ended; without
// support it does nothing.
func (s *Service) EndThreadConversations(threadID string) ([]string, error) {
	e := s.support
	if e == nil {
		return nil, nil
	}
	var ended []string
	for _, info := range e.WorkgroupInfos() {
		rs, err := e.Conversations(info.Workgroup.Name)
		if err != nil {
			var se *support.Error
			if errors.As(err, &se) && se.Kind == support.KindNotFound {
				continue // removed meanwhile
			}
			return ended, SupportError(err)
		}
		for _, r := range rs {
			if r.ThreadID != threadID {
				continue
			}
			if _, err := s.ServerCloseConversation(r.ID); err != nil {
				var ae *apierr.Error
				if errors.As(err, &ae) && ae.Code == apierr.NotFound {
					continue // ended meanwhile
				}
				return ended, err
			}
			ended = append(ended, r.ID)
		}
	}
	return ended, nil
}
