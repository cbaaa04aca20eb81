package backend

// The optional calls of contract 1.5 on messages: editMessage, react,
// unreact and searchMessages. A backend without them answers 501, which the
// caller gets as apierr.NotFound "the backend does not support <op>".

import (
	"context"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// EditMessage replaces a message's body (and data) on behalf of its author;
// the answer is the message as the history keeps it, with editedAt.
func (c *Client) EditMessage(ctx context.Context, req *ecbserver.EditMessageRequest) (*ecbserver.EditMessageResponse, error) {
	var resp ecbserver.EditMessageResponse
	if err := c.call(ctx, ecbserver.PathEditMessage, "", req, &resp); err != nil {
		return nil, err
	}
	if resp.Message.ID != req.MessageID || resp.Message.EditedAt == nil || resp.Message.Deleted {
		return nil, garbage(ecbserver.PathEditMessage, "message.id must be the requested message, with editedAt, not deleted")
	}
	return &resp, nil
}

// React adds the user's reaction to a message.
func (c *Client) React(ctx context.Context, req *ecbserver.ReactionRequest) (*ecbserver.ReactionResponse, error) {
	return c.reaction(ctx, ecbserver.PathReact, req)
}

// Unreact removes the user's reaction from a message.
func (c *Client) Unreact(ctx context.Context, req *ecbserver.ReactionRequest) (*ecbserver.ReactionResponse, error) {
	return c.reaction(ctx, ecbserver.PathUnreact, req)
}

func (c *Client) reaction(ctx context.Context, path string, req *ecbserver.ReactionRequest) (*ecbserver.ReactionResponse, error) {
	var resp ecbserver.ReactionResponse
	if err := c.call(ctx, path, "", req, &resp); err != nil {
		return nil, err
	}
	if resp.Message.ID != req.MessageID {
		return nil, garbage(path, "message.id must be the requested message")
	}
	for _, r := range resp.Message.Reactions {
		if r.Reaction == "" || r.Count < 0 {
			return nil, garbage(path, "every reaction needs a name and a count of at least 0")
		}
	}
	return &resp, nil
}

// SearchMessages finds messages the user may read.
func (c *Client) SearchMessages(ctx context.Context, req *ecbserver.SearchMessagesRequest) (*ecbserver.SearchMessagesResponse, error) {
	var resp ecbserver.SearchMessagesResponse
	if err := c.call(ctx, ecbserver.PathSearchMessages, "", req, &resp); err != nil {
		return nil, err
	}
	for _, h := range resp.Hits {
		if h.Message.ID == "" || h.Message.ThreadID == "" || h.ThreadToken == "" {
			return nil, garbage(ecbserver.PathSearchMessages, "every hit needs message.id, message.threadId and threadToken")
		}
	}
	if resp.Hits == nil {
		resp.Hits = []ecbserver.SearchHit{}
	}
	return &resp, nil
}
