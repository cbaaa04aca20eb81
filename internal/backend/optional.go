package backend

// The optional calls of contract 1.1 (api/backend.yaml, tag "optional"). A
// backend that does not implement one answers 501 not_implemented, or 404
// when it predates 1.1; either way the caller gets apierr.NotFound, for a
// 501 with the message "the backend does not support <op>". A 501 does not
// count against the circuit breaker: the backend is healthy, just smaller.

import (
	"context"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// MarkRead records that req.UserID has read req.ThreadID up to and including
// req.MessageID. The answer's MessageID (the mark after the call, which never
// moves back) and Unread are optional: a backend may leave both out.
func (c *Client) MarkRead(ctx context.Context, req *ecbserver.MarkReadRequest) (*ecbserver.MarkReadResponse, error) {
	var resp ecbserver.MarkReadResponse
	if err := c.call(ctx, ecbserver.PathMarkRead, "", req, &resp); err != nil {
		return nil, err
	}
	if resp.Unread != nil && *resp.Unread < 0 {
		return nil, garbage(ecbserver.PathMarkRead, "unread must not be negative")
	}
	return &resp, nil
}

// AddParticipants adds req.Participants to req.ThreadID on behalf of
// req.UserID. The answer is the thread after the change, a fresh threadToken
// for req.UserID, and the users actually added (never nil).
func (c *Client) AddParticipants(ctx context.Context, req *ecbserver.AddParticipantsRequest) (*ecbserver.AddParticipantsResponse, error) {
	var resp ecbserver.AddParticipantsResponse
	if err := c.call(ctx, ecbserver.PathAddParticipants, "", req, &resp); err != nil {
		return nil, err
	}
	if resp.Thread.ID == "" || resp.ThreadToken == "" {
		return nil, garbage(ecbserver.PathAddParticipants, "thread.id and threadToken are required")
	}
	for _, id := range resp.Added {
		if id == "" {
			return nil, garbage(ecbserver.PathAddParticipants, "added must not contain an empty id")
		}
	}
	if resp.Added == nil {
		resp.Added = []string{}
	}
	return &resp, nil
}

// LeaveThread removes req.UserID from req.ThreadID. The answer is the thread
// after the change; it carries no threadToken, since the user has no access
// left.
func (c *Client) LeaveThread(ctx context.Context, req *ecbserver.LeaveThreadRequest) (*ecbserver.LeaveThreadResponse, error) {
	var resp ecbserver.LeaveThreadResponse
	if err := c.call(ctx, ecbserver.PathLeaveThread, "", req, &resp); err != nil {
		return nil, err
	}
	if resp.Thread.ID == "" {
		return nil, garbage(ecbserver.PathLeaveThread, "thread.id is required")
	}
	return &resp, nil
}
