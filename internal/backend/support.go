package backend

import (
	"context"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// CreateSupportThread asks the backend for the thread of an accepted support
// request (optional call createSupportThread, contract 1.2). The answer must
// carry the thread with both sides as members and a threadToken for each.
func (c *Client) CreateSupportThread(ctx context.Context, req *ecbserver.CreateSupportThreadRequest) (*ecbserver.CreateSupportThreadResponse, error) {
	var resp ecbserver.CreateSupportThreadResponse
	// The request id is the idempotency key: a retry after a timeout gets the same thread.
	if err := c.call(ctx, ecbserver.PathCreateSupportThread, req.RequestID, req, &resp); err != nil {
		return nil, err
	}
	if resp.Thread.ID == "" || resp.VisitorToken == "" || resp.AgentToken == "" {
		return nil, garbage(ecbserver.PathCreateSupportThread, "thread.id, visitorToken and agentToken are required")
	}
	return &resp, nil
}
