package serverapi

import (
	"net/http"

	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/ops"
	"github.com/ecbridge/ecb/internal/sse"
)

// The backend acting on threads and support conversations: a member added
// or removed, a thread announced, a support conversation ended or given one
// more agent. The backend changed its own store first; these make the
// change live (package ops, server_members.go).

// AddMemberRequest is the optional body of POST .../members/{userId}.
type AddMemberRequest struct {
	// ThreadToken, when given, is the threadToken the backend signed for
	// the new member; otherwise ECB asks the backend's getThread as them.
	ThreadToken string `json:"threadToken,omitempty"`
}

// maxTokenBytes bounds a threadToken in a body (the JWTs ECB verifies).
const maxTokenBytes = 8192

func (a *API) addMember(w http.ResponseWriter, r *http.Request) {
	var req AddMemberRequest
	if err := a.decode(w, r, &req, false); err != nil {
		sse.WriteError(w, err)
		return
	}
	if len(req.ThreadToken) > maxTokenBytes {
		sse.WriteError(w, apierr.New(apierr.InvalidArgument, "threadToken exceeds %d bytes", maxTokenBytes))
		return
	}
	userID := r.PathValue("userId")
	if userID == "" {
		sse.WriteError(w, apierr.New(apierr.InvalidArgument, "userId is required"))
		return
	}
	res, err := a.ops.ServerAddMember(r.Context(), r.PathValue("threadId"), userID, req.ThreadToken)
	if err != nil {
		sse.WriteError(w, err)
		return
	}
	sse.WriteJSON(w, http.StatusOK, res)
}

func (a *API) removeMember(w http.ResponseWriter, r *http.Request) {
	res, err := a.ops.ServerRemoveMember(r.Context(), r.PathValue("threadId"), r.PathValue("userId"))
	if err != nil {
		sse.WriteError(w, err)
		return
	}
	sse.WriteJSON(w, http.StatusOK, res)
}

// AnnounceRequest is the body of POST .../announce.
type AnnounceRequest struct {
	// Members are the thread's members to tell (the online ones are).
	Members []string `json:"members"`
}

func (a *API) announce(w http.ResponseWriter, r *http.Request) {
	var req AnnounceRequest
	if err := a.decode(w, r, &req, true); err != nil {
		sse.WriteError(w, err)
		return
	}
	if err := ParseAnnounce(req); err != nil {
		sse.WriteError(w, err)
		return
	}
	res, err := a.ops.AnnounceThread(r.Context(), r.PathValue("threadId"), req.Members)
	if err != nil {
		sse.WriteError(w, err)
		return
	}
	sse.WriteJSON(w, http.StatusOK, res)
}

// ParseAnnounce checks the body of POST .../announce: 1 to
// ops.MaxAnnounceMembers user ids, each 1 to 256 bytes of printable UTF-8.
func ParseAnnounce(req AnnounceRequest) error {
	if len(req.Members) == 0 || len(req.Members) > ops.MaxAnnounceMembers {
		return apierr.New(apierr.InvalidArgument, "members must name 1 to %d users", ops.MaxAnnounceMembers)
	}
	for i, m := range req.Members {
		if m == "" || !validID(m) {
			return apierr.New(apierr.InvalidArgument, "members[%d] must be 1 to 256 bytes of printable UTF-8", i)
		}
	}
	return nil
}

func (a *API) closeConversation(w http.ResponseWriter, r *http.Request) {
	var req struct{}
	if err := a.decode(w, r, &req, false); err != nil {
		sse.WriteError(w, err)
		return
	}
	if a.engine(w) == nil {
		return
	}
	res, err := a.ops.ServerCloseConversation(r.PathValue("requestId"))
	if err != nil {
		sse.WriteError(w, err)
		return
	}
	sse.WriteJSON(w, http.StatusOK, res)
}

// AddAgentRequest is the body of POST .../conversations/{requestId}/agents.
type AddAgentRequest struct {
	Agent string `json:"agent"`
}

func (a *API) addAgent(w http.ResponseWriter, r *http.Request) {
	var req AddAgentRequest
	if err := a.decode(w, r, &req, true); err != nil {
		sse.WriteError(w, err)
		return
	}
	if req.Agent == "" || !validID(req.Agent) {
		sse.WriteError(w, apierr.New(apierr.InvalidArgument, "agent must be 1 to 256 bytes of printable UTF-8"))
		return
	}
	if a.engine(w) == nil {
		return
	}
	res, err := a.ops.ServerAddAgent(r.Context(), r.PathValue("requestId"), req.Agent)
	if err != nil {
		sse.WriteError(w, err)
		return
	}
	sse.WriteJSON(w, http.StatusCreated, res)
}
