package ecbserver

import (
	"context"
	"encoding/json"
	"errors"
)

// The optional calls of contract 1.4 for public threads and moderation.
// Like those of 1.1, a Backend opts in by implementing [PublicThreads] or
// [Moderator]; NewHandler answers 501 not_implemented for the calls of an
// interface it does not implement, and ECB answers its client not_found
// ("the backend does not support joinThread").
//
// ECB refuses a caller whose threadToken lacks the bit a call needs before it
// calls the backend (admin for removeParticipant and updateThread, owner for
// deleteThread, admin or authorship for deleteMessage), but the backend is
// the system of record and checks again: it knows the thread's owner, its
// members and who wrote what.

// Paths of the optional calls of contract 1.4.
const (
	PathJoinThread        = "/joinThread"
	PathGetPublicThreads  = "/getPublicThreads"
	PathRemoveParticipant = "/removeParticipant"
	PathUpdateThread      = "/updateThread"
	PathDeleteMessage     = "/deleteMessage"
	PathDeleteThread      = "/deleteThread"
)

// PublicThreads is implemented by a Backend with public threads: threads any
// authenticated user who knows the id may join (Thread.Public).
type PublicThreads interface {
	// JoinThread makes req.UserID a member of the public thread
	// req.ThreadID and signs a threadToken for them. Answer 403 forbidden
	// for a thread that is not public (or a user the backend banned from
	// it), 404 not_found for an unknown thread. A member who joins again
	// gets a fresh token and no change.
	JoinThread(ctx context.Context, req *JoinThreadRequest) (*JoinThreadResponse, error)
	// GetPublicThreads lists the public threads req.UserID may see and join.
	GetPublicThreads(ctx context.Context, req *GetPublicThreadsRequest) (*GetPublicThreadsResponse, error)
}

// Moderator is implemented by a Backend whose thread admins (access bit 4)
// and owners (8) moderate: remove members, edit the thread, delete messages,
// and, for the owner, delete the thread. A Backend that supports only some
// of the calls returns [NotImplemented] from the others.
type Moderator interface {
	// RemoveParticipant removes req.ParticipantID from req.ThreadID on
	// behalf of req.UserID, who needs the admin or owner bit. The owner
	// cannot be removed (403 forbidden); a non-member is 404 not_found.
	RemoveParticipant(ctx context.Context, req *RemoveParticipantRequest) (*RemoveParticipantResponse, error)
	// UpdateThread changes the subject and/or the data of a thread on
	// behalf of an admin or owner; fields left out are unchanged.
	UpdateThread(ctx context.Context, req *UpdateThreadRequest) (*UpdateThreadResponse, error)
	// DeleteMessage marks a message deleted on behalf of its author or of
	// an admin or owner: the history keeps it with Deleted set, an empty
	// Body and no Data.
	DeleteMessage(ctx context.Context, req *DeleteMessageRequest) (*DeleteMessageResponse, error)
	// DeleteThread deletes a thread and its history on behalf of its owner
	// (403 forbidden for anyone else). The answer is the thread as it was,
	// with its members.
	DeleteThread(ctx context.Context, req *DeleteThreadRequest) (*DeleteThreadResponse, error)
}

// JoinThreadRequest asks to make UserID a member of the public ThreadID.
type JoinThreadRequest struct {
	UserID   string `json:"userId"`
	ThreadID string `json:"threadId"`
}

// JoinThreadResponse is the thread after the join and the new member's
// threadToken. Joined is false when the user was a member already.
type JoinThreadResponse struct {
	Thread      Thread `json:"thread"`
	ThreadToken string `json:"threadToken"`
	Joined      bool   `json:"joined"`
}

// GetPublicThreadsRequest asks for the public threads UserID may join.
type GetPublicThreadsRequest struct {
	UserID string `json:"userId"`
}

// GetPublicThreadsResponse lists them, without threadTokens: the caller is
// not a member yet.
type GetPublicThreadsResponse struct {
	Threads []Thread `json:"threads"`
}

// RemoveParticipantRequest asks to remove ParticipantID from ThreadID on
// behalf of UserID.
type RemoveParticipantRequest struct {
	UserID        string `json:"userId"`
	ThreadID      string `json:"threadId"`
	ParticipantID string `json:"participantId"`
}

// RemoveParticipantResponse is the thread after the change.
type RemoveParticipantResponse struct {
	Thread Thread `json:"thread"`
}

// UpdateThreadRequest changes a thread's Subject (when not nil) and Data
// (when present; JSON null clears it) on behalf of UserID.
type UpdateThreadRequest struct {
	UserID   string          `json:"userId"`
	ThreadID string          `json:"threadId"`
	Subject  *string         `json:"subject,omitempty"`
	Data     json.RawMessage `json:"data,omitempty"`
}

// UpdateThreadResponse is the thread after the change.
type UpdateThreadResponse struct {
	Thread Thread `json:"thread"`
}

// DeleteMessageRequest asks to delete MessageID of ThreadID on behalf of
// UserID.
type DeleteMessageRequest struct {
	UserID    string `json:"userId"`
	ThreadID  string `json:"threadId"`
	MessageID string `json:"messageId"`
}

// DeleteMessageResponse is the message as the history keeps it now.
type DeleteMessageResponse struct {
	Message Message `json:"message"`
}

// DeleteThreadRequest asks to delete ThreadID on behalf of UserID.
type DeleteThreadRequest struct {
	UserID   string `json:"userId"`
	ThreadID string `json:"threadId"`
}

// DeleteThreadResponse is the thread as it was before the deletion.
type DeleteThreadResponse struct {
	Thread Thread `json:"thread"`
}

func requireUserThread(userID, threadID string) error {
	if err := requireUser(userID); err != nil {
		return err
	}
	if threadID == "" {
		return errors.New("threadId is required")
	}
	return nil
}

func (r *JoinThreadRequest) validate() error       { return requireUserThread(r.UserID, r.ThreadID) }
func (r *GetPublicThreadsRequest) validate() error { return requireUser(r.UserID) }
func (r *DeleteThreadRequest) validate() error     { return requireUserThread(r.UserID, r.ThreadID) }

func (r *RemoveParticipantRequest) validate() error {
	if err := requireUserThread(r.UserID, r.ThreadID); err != nil {
		return err
	}
	if r.ParticipantID == "" {
		return errors.New("participantId is required")
	}
	return nil
}

func (r *UpdateThreadRequest) validate() error {
	if err := requireUserThread(r.UserID, r.ThreadID); err != nil {
		return err
	}
	if r.Subject == nil && len(r.Data) == 0 {
		return errors.New("subject or data is required")
	}
	if len(r.Data) > 0 && r.Data[0] != '{' && string(r.Data) != "null" {
		return errors.New("data must be a JSON object or null")
	}
	return nil
}

func (r *DeleteMessageRequest) validate() error {
	if err := requireUserThread(r.UserID, r.ThreadID); err != nil {
		return err
	}
	if r.MessageID == "" {
		return errors.New("messageId is required")
	}
	return nil
}

func (r *JoinThreadResponse) normalize()        { r.Thread.normalize() }
func (r *RemoveParticipantResponse) normalize() { r.Thread.normalize() }
func (r *UpdateThreadResponse) normalize()      { r.Thread.normalize() }
func (r *DeleteThreadResponse) normalize()      { r.Thread.normalize() }

func (r *GetPublicThreadsResponse) normalize() {
	if r.Threads == nil {
		r.Threads = []Thread{}
	}
	for i := range r.Threads {
		r.Threads[i].normalize()
	}
}
