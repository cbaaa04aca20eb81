package ecbserver

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// The optional calls of contract 1.5 on messages: edits ([MessageEditor]),
// reactions ([Reactor]) and search ([MessageSearcher]). Like every optional
// call, a Backend opts in by implementing the interface; NewHandler answers
// 501 not_implemented otherwise and ECB answers its client not_found ("the
// backend does not support editMessage").
//
// ECB checks the threadToken (write bit for editMessage, react and
// unreact) and the reaction against its own limit and allow-list before it
// calls; the backend is the system of record and decides the rest: who
// wrote what, who may edit it, which threads a user may search.

// Paths of the optional calls of contract 1.5.
const (
	PathEditMessage    = "/editMessage"
	PathReact          = "/react"
	PathUnreact        = "/unreact"
	PathSearchMessages = "/searchMessages"
)

// MessageEditor is implemented by a Backend whose messages can be edited.
type MessageEditor interface {
	// EditMessage replaces the Body (and Data, when given) of req.MessageID
	// on behalf of req.UserID and sets its EditedAt. Answer 403 forbidden
	// for a user who may not edit it (the reference backend: anyone but
	// its author; a backend may let admins edit too), 404 not_found for a
	// message that is not in the thread, 400 invalid_argument for a
	// deleted message. The backend may keep revisions; ECB does not ask.
	EditMessage(ctx context.Context, req *EditMessageRequest) (*EditMessageResponse, error)
}

// Reactor is implemented by a Backend that keeps reactions: each user
// reacts to a message at most once with each reaction.
type Reactor interface {
	// React adds req.UserID's req.Reaction to req.MessageID. Reacting again
	// with the same reaction changes nothing and answers Changed false.
	React(ctx context.Context, req *ReactionRequest) (*ReactionResponse, error)
	// Unreact removes it; removing a reaction the user did not give
	// answers Changed false.
	Unreact(ctx context.Context, req *ReactionRequest) (*ReactionResponse, error)
}

// MessageSearcher is implemented by a Backend that searches the messages.
type MessageSearcher interface {
	// SearchMessages finds messages matching req.Query in the threads
	// req.UserID may read (only req.ThreadID when set), newest first; each
	// hit carries a threadToken signed for the user, which ECB verifies.
	// Whispers only for agents and supervisors, as in getThread.
	SearchMessages(ctx context.Context, req *SearchMessagesRequest) (*SearchMessagesResponse, error)
}

// EditMessageRequest asks to replace the body (and the data, when Data is
// present) of MessageID of ThreadID on behalf of UserID.
type EditMessageRequest struct {
	UserID    string          `json:"userId"`
	ThreadID  string          `json:"threadId"`
	MessageID string          `json:"messageId"`
	Body      string          `json:"body"`
	Data      json.RawMessage `json:"data,omitempty"`
}

// EditMessageResponse is the message as the history keeps it now, with
// EditedAt set.
type EditMessageResponse struct {
	Message Message `json:"message"`
}

// ReactionRequest asks to add (react) or remove (unreact) UserID's
// Reaction to MessageID of ThreadID.
type ReactionRequest struct {
	UserID    string `json:"userId"`
	ThreadID  string `json:"threadId"`
	MessageID string `json:"messageId"`
	Reaction  string `json:"reaction"`
}

// ReactionResponse is the message after the call, its Reactions counted
// with Me for UserID, and whether the call changed anything.
type ReactionResponse struct {
	Message Message `json:"message"`
	Changed bool    `json:"changed"`
}

// SearchMessagesRequest asks for the messages matching Query that UserID
// may read, in ThreadID only when it is set. Cursor is one a previous answer
// gave ("" for the first page); Limit is the page size (ECB caps it).
type SearchMessagesRequest struct {
	UserID   string `json:"userId"`
	Query    string `json:"query"`
	ThreadID string `json:"threadId,omitempty"`
	Cursor   string `json:"cursor,omitempty"`
	Limit    int    `json:"limit,omitempty"`
}

// SearchHit is one message found, with a threadToken of its thread signed
// for the user.
type SearchHit struct {
	Message     Message `json:"message"`
	ThreadToken string  `json:"threadToken"`
}

// SearchMessagesResponse is a page of hits, newest first, and the cursor of
// the next page ("" when none).
type SearchMessagesResponse struct {
	Hits       []SearchHit `json:"hits"`
	NextCursor string      `json:"nextCursor,omitempty"`
}

func requireMessage(userID, threadID, messageID string) error {
	if err := requireUserThread(userID, threadID); err != nil {
		return err
	}
	if messageID == "" {
		return errors.New("messageId is required")
	}
	return nil
}

func (r *EditMessageRequest) validate() error {
	if err := requireMessage(r.UserID, r.ThreadID, r.MessageID); err != nil {
		return err
	}
	if r.Body == "" {
		return errors.New("body is required")
	}
	return nil
}

func (r *ReactionRequest) validate() error {
	if err := requireMessage(r.UserID, r.ThreadID, r.MessageID); err != nil {
		return err
	}
	if r.Reaction == "" {
		return errors.New("reaction is required")
	}
	return nil
}

func (r *SearchMessagesRequest) validate() error {
	if err := requireUser(r.UserID); err != nil {
		return err
	}
	if r.Query == "" {
		return errors.New("query is required")
	}
	return nil
}

func (r *EditMessageResponse) normalize() {
	if r.Message.EditedAt == nil {
		now := time.Now().UTC()
		r.Message.EditedAt = &now
	}
}

func (r *SearchMessagesResponse) normalize() {
	if r.Hits == nil {
		r.Hits = []SearchHit{}
	}
}
