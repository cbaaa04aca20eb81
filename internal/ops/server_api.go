package ops

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/auth"
	"github.com/ecbridge/ecb/internal/hub"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// This file holds the live effects of the Server API (package serverapi) on
// the connections of every node. The Server API records the decision first
// (in the Guards' store), then calls these, so that an operation that starts
// after the call sees the decision and a connection attached before it is
// told. The counts they return are this node's connections (the node that
// served the call) — the effect itself reaches every node; an error means the
// other nodes could not be reached.

// Thread push changes sent by the Server API's effects.
const (
	ChangeAccess   = "access"
	ChangeUpdated  = "updated"
	ChangeClosed   = "closed"
	ChangeReopened = "reopened"
	ChangeDeleted  = "deleted"
)

// SystemAuthor is the authorId of the messages the Server API publishes.
const SystemAuthor = "system"

// ThreadChangePush is the payload of a thread push sent by the Server API's
// effects: {threadId, change, acc?, expiresAt?, thread?}.
type ThreadChangePush struct {
	ThreadID string `json:"threadId"`
	Change   string `json:"change"`
	// Acc is the user's access now (change "access"); absent when the
	// override was removed and the threadToken's acc applies again.
	Acc       *int              `json:"acc,omitempty"`
	ExpiresAt *time.Time        `json:"expiresAt,omitempty"` // when a timed override ends
	Thread    *ecbserver.Thread `json:"thread,omitempty"`    // change "updated", when the backend gave it
	By        string            `json:"by,omitempty"`        // the moderator, for a change a client operation made
}

func threadChange(p ThreadChangePush) *hub.Push {
	data, err := json.Marshal(p)
	if err != nil { // only a Thread whose data is not JSON; it came decoded from JSON
		p.Thread = nil
		data, _ = json.Marshal(p)
	}
	return &hub.Push{Event: EventThread, Data: data, At: time.Now()}
}

// ApplyAccess makes a new access of userID in threadID take effect on this
// node: without read, every connection of the user stops listening to the
// thread at once; then all of them get a thread push {change: "access"}. acc
// nil means the override was removed. It returns how many connections were
// detached on this node.
func (s *Service) ApplyAccess(threadID, userID string, acc *auth.Access, expiresAt time.Time) (int, error) {
	p := ThreadChangePush{ThreadID: threadID, Change: ChangeAccess}
	detached := 0
	if acc != nil {
		a := int(*acc)
		p.Acc = &a
		if !expiresAt.IsZero() {
			p.ExpiresAt = &expiresAt
		}
		if !acc.Has(auth.AccessRead) {
			n, err := s.hub.DetachUser(threadID, userID)
			if err != nil {
				return n, hubError(err)
			}
			detached = n
		}
	}
	_, err := s.hub.SendToUser(userID, threadChange(p), nil)
	return detached, hubError(err)
}

// ThreadChanged tells the thread's listeners on this node that the backend
// changed it (updated, closed, reopened) or deleted it; deleted listeners
// are detached in the same step, so nothing of the thread follows the push.
// It returns how many connections were told on this node.
func (s *Service) ThreadChanged(threadID, change string, thread *ecbserver.Thread) (int, error) {
	p := threadChange(ThreadChangePush{ThreadID: threadID, Change: change, Thread: thread})
	if change == ChangeDeleted {
		n, err := s.hub.DetachThread(threadID, p)
		return n, hubError(err)
	}
	n := s.hub.Listeners(threadID)
	return n, hubError(s.hub.Broadcast(threadID, p, nil))
}

// SystemMessage is a message the backend publishes through the Server API.
type SystemMessage struct {
	// ID is the message id; empty means ECB makes one ("sys-..."). A backend
	// that also stores the message in its history gives the id it stored it
	// under, so that clients drop the duplicate.
	ID   string          `json:"id,omitempty"`
	Body string          `json:"body"`
	Data json.RawMessage `json:"data,omitempty"`
}

// SystemMessageResult is what publishing it gives: the message with its
// offset, and the epoch of that offset.
type SystemMessageResult struct {
	Message ecbserver.Message `json:"message"`
	Epoch   string            `json:"epoch"`
}

// PublishSystemMessage pushes a message authored by "system" to the thread's
// listeners, with the next offset, like any message. ECB does not store it:
// the backend does, if it wants it in the history.
func (s *Service) PublishSystemMessage(ctx context.Context, threadID string, m SystemMessage) (*SystemMessageResult, error) {
	in := MessageInput{Body: m.Body, Data: m.Data}
	if err := s.validateMessage(&in); err != nil {
		return nil, err
	}
	if len(m.ID) > 128 {
		return nil, apierr.New(apierr.InvalidArgument, "id exceeds 128 characters")
	}
	if err := s.checkThreadStatus(threadID, auth.AccessRead); err != nil {
		return nil, err
	}
	if m.ID == "" {
		var b [12]byte
		_, _ = rand.Read(b[:])
		m.ID = "sys-" + hex.EncodeToString(b[:])
	}
	msg, pos, err := s.publishMessage(ctx, threadID, ecbserver.Message{
		ID: m.ID, ThreadID: threadID, AuthorID: SystemAuthor, Body: in.Body, Data: in.Data, CreatedAt: time.Now().UTC(),
	}, nil)
	if err != nil {
		return nil, err
	}
	return &SystemMessageResult{Message: msg, Epoch: pos.Epoch}, nil
}

// DisconnectUser closes every connection of userID on every node with the
// reason kicked; it returns how many there were on this node.
func (s *Service) DisconnectUser(userID string) (int, error) {
	n, err := s.hub.DisconnectUser(userID, hub.ReasonKicked)
	return n, hubError(err)
}
