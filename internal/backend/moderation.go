package backend

// The optional calls of contract 1.4: public threads (joinThread,
// getPublicThreads) and moderation (removeParticipant, updateThread,
// deleteMessage, deleteThread). Like those of 1.1, a backend without them
// answers 501, which the caller gets as apierr.NotFound "the backend does
// not support <op>".

import (
	"context"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// JoinThread makes req.UserID a member of a public thread; the answer
// carries the new member's threadToken.
func (c *Client) JoinThread(ctx context.Context, req *ecbserver.JoinThreadRequest) (*ecbserver.JoinThreadResponse, error) {
	var resp ecbserver.JoinThreadResponse
	if err := c.call(ctx, ecbserver.PathJoinThread, "", req, &resp); err != nil {
		return nil, err
	}
	if resp.Thread.ID != req.ThreadID || resp.ThreadToken == "" {
		return nil, garbage(ecbserver.PathJoinThread, "thread.id (the requested thread) and threadToken are required")
	}
	return &resp, nil
}

// GetPublicThreads lists the public threads req.UserID may join.
func (c *Client) GetPublicThreads(ctx context.Context, req *ecbserver.GetPublicThreadsRequest) (*ecbserver.GetPublicThreadsResponse, error) {
	var resp ecbserver.GetPublicThreadsResponse
	if err := c.call(ctx, ecbserver.PathGetPublicThreads, "", req, &resp); err != nil {
		return nil, err
	}
	for _, t := range resp.Threads {
		if t.ID == "" {
			return nil, garbage(ecbserver.PathGetPublicThreads, "every thread needs an id")
		}
	}
	if resp.Threads == nil {
		resp.Threads = []ecbserver.Thread{}
	}
	return &resp, nil
}

// RemoveParticipant removes req.ParticipantID from a thread on behalf of
// req.UserID (a moderator).
func (c *Client) RemoveParticipant(ctx context.Context, req *ecbserver.RemoveParticipantRequest) (*ecbserver.RemoveParticipantResponse, error) {
	var resp ecbserver.RemoveParticipantResponse
	if err := c.call(ctx, ecbserver.PathRemoveParticipant, "", req, &resp); err != nil {
		return nil, err
	}
	if resp.Thread.ID != req.ThreadID {
		return nil, garbage(ecbserver.PathRemoveParticipant, "thread.id must be the requested thread")
	}
	return &resp, nil
}

// UpdateThread changes a thread's subject or data on behalf of a moderator.
func (c *Client) UpdateThread(ctx context.Context, req *ecbserver.UpdateThreadRequest) (*ecbserver.UpdateThreadResponse, error) {
	var resp ecbserver.UpdateThreadResponse
	if err := c.call(ctx, ecbserver.PathUpdateThread, "", req, &resp); err != nil {
		return nil, err
	}
	if resp.Thread.ID != req.ThreadID {
		return nil, garbage(ecbserver.PathUpdateThread, "thread.id must be the requested thread")
	}
	return &resp, nil
}

// DeleteMessage marks a message deleted on behalf of its author or a
// moderator; the answer is the message as the history keeps it.
func (c *Client) DeleteMessage(ctx context.Context, req *ecbserver.DeleteMessageRequest) (*ecbserver.DeleteMessageResponse, error) {
	var resp ecbserver.DeleteMessageResponse
	if err := c.call(ctx, ecbserver.PathDeleteMessage, "", req, &resp); err != nil {
		return nil, err
	}
	if resp.Message.ID != req.MessageID || !resp.Message.Deleted {
		return nil, garbage(ecbserver.PathDeleteMessage, "message.id must be the requested message, marked deleted")
	}
	return &resp, nil
}

// DeleteThread deletes a thread with its history on behalf of its owner;
// the answer is the thread as it was.
func (c *Client) DeleteThread(ctx context.Context, req *ecbserver.DeleteThreadRequest) (*ecbserver.DeleteThreadResponse, error) {
	var resp ecbserver.DeleteThreadResponse
	if err := c.call(ctx, ecbserver.PathDeleteThread, "", req, &resp); err != nil {
		return nil, err
	}
	if resp.Thread.ID != req.ThreadID {
		return nil, garbage(ecbserver.PathDeleteThread, "thread.id must be the requested thread")
	}
	return &resp, nil
}
