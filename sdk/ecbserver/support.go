package ecbserver

import (
	"context"
	"encoding/json"
	"errors"
)

// PathCreateSupportThread is the optional call createSupportThread (contract
// 1.2): ECB asks the backend for the thread of a customer-support chat when an
// agent accepts an offer. Implement [SupportThreadCreator] to serve it.
const PathCreateSupportThread = "/createSupportThread"

// SupportThreadCreator is implemented by a Backend that hosts customer-support
// chats. ECB calls CreateSupportThread when an agent of a workgroup accepts a
// visitor's request; ECB has already checked that the agent belongs to the
// workgroup (their userToken says so) and that the visitor asked.
//
// The backend creates a thread whose members are the visitor and the agent,
// with the question as subject (the metadata is the backend's to keep), and
// returns it with a threadToken for each side. It may refuse with 403
// forbidden (for example when its own records say the agent is not in the
// workgroup). ECB may call it again for the same RequestID after a timeout:
// answer with the same thread (RequestID is the idempotency key).
type SupportThreadCreator interface {
	CreateSupportThread(ctx context.Context, req *CreateSupportThreadRequest) (*CreateSupportThreadResponse, error)
}

// CreateSupportThreadRequest describes the accepted request.
type CreateSupportThreadRequest struct {
	RequestID   string          `json:"requestId"`
	Workgroup   string          `json:"workgroup"`
	VisitorID   string          `json:"visitorId"`
	VisitorName string          `json:"visitorName,omitempty"`
	Anonymous   bool            `json:"anonymous,omitempty"` // the visitor has an anonymous userToken
	AgentID     string          `json:"agentId"`
	Question    string          `json:"question"`
	Metadata    json.RawMessage `json:"metadata,omitempty"` // a JSON object
	OperationID string          `json:"operationId,omitempty"`
}

// CreateSupportThreadResponse is the new thread and a threadToken for each side.
type CreateSupportThreadResponse struct {
	Thread       Thread `json:"thread"`
	VisitorToken string `json:"visitorToken"`
	AgentToken   string `json:"agentToken"`
}

func (r *CreateSupportThreadRequest) validate() error {
	switch {
	case r.RequestID == "":
		return errors.New("requestId is required")
	case r.Workgroup == "":
		return errors.New("workgroup is required")
	case r.VisitorID == "":
		return errors.New("visitorId is required")
	case r.AgentID == "":
		return errors.New("agentId is required")
	case r.VisitorID == r.AgentID:
		return errors.New("visitorId and agentId must differ")
	}
	return nil
}
