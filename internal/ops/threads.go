package ops

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/auth"
	"github.com/ecbridge/ecb/internal/hub"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// PageRequest asks for one page of a list; pages count from 1.
type PageRequest struct {
	Page     int `json:"page,omitempty"`
	PageSize int `json:"pageSize,omitempty"`
}

// Page is one page of a list that ECB pages for the client.
type Page[T any] struct {
	Items    []T  `json:"items"`
	Page     int  `json:"page"`
	PageSize int  `json:"pageSize"`
	Total    int  `json:"total"`
	HasMore  bool `json:"hasMore"`
}

func paginate[T any](all []T, req PageRequest, cfg Config) (*Page[T], error) {
	if req.Page < 0 || req.PageSize < 0 {
		return nil, apierr.New(apierr.InvalidArgument, "page and pageSize must be positive")
	}
	page, size := req.Page, req.PageSize
	if page == 0 {
		page = 1
	}
	if size == 0 {
		size = cfg.DefaultPageSize
	}
	size = min(size, cfg.MaxPageSize)
	start := min((page-1)*size, len(all))
	end := min(start+size, len(all))
	items := all[start:end]
	if items == nil {
		items = []T{}
	}
	return &Page[T]{Items: items, Page: page, PageSize: size, Total: len(all), HasMore: end < len(all)}, nil
}

// GetContacts returns a page of the users the caller may start threads with.
func (s *Service) GetContacts(ctx context.Context, c Caller, req PageRequest) (*Page[ecbserver.User], error) {
	return run(ctx, s, OpGetContacts, c, func(ctx context.Context) (*Page[ecbserver.User], error) {
		if err := requireUser(c); err != nil {
			return nil, err
		}
		resp, err := s.backend.GetContacts(ctx, &ecbserver.GetContactsRequest{UserID: c.User.ID})
		if err != nil {
			return nil, err
		}
		ids := make([]string, len(resp.Contacts))
		for i, u := range resp.Contacts {
			ids[i] = u.ID
		}
		s.live.presence.NoteContacts(c.User.ID, ids)
		return paginate(resp.Contacts, req, s.cfg)
	})
}

// GetThreads returns a page of the caller's threads, each with its
// threadToken, or with req.Public a page of the public threads the backend
// lists (optional call getPublicThreads), without threadTokens.
func (s *Service) GetThreads(ctx context.Context, c Caller, req GetThreadsRequest) (*Page[ecbserver.SignedThread], error) {
	return run(ctx, s, OpGetThreads, c, func(ctx context.Context) (*Page[ecbserver.SignedThread], error) {
		if err := requireUser(c); err != nil {
			return nil, err
		}
		if req.Public {
			return s.getPublicThreads(ctx, c, req.PageRequest)
		}
		resp, err := s.backend.GetThreads(ctx, &ecbserver.GetThreadsRequest{UserID: c.User.ID})
		if err != nil {
			return nil, err
		}
		for _, st := range resp.Threads {
			s.noteThreads(st.Thread)
		}
		return paginate(resp.Threads, req.PageRequest, s.cfg)
	})
}

// MessageInput is the content of a message a client writes.
type MessageInput struct {
	Body            string          `json:"body"`
	ClientMessageID string          `json:"clientMessageId,omitempty"`
	Data            json.RawMessage `json:"data,omitempty"`
}

func (s *Service) validateMessage(m *MessageInput) error { return s.validateMessageWith(m, false) }

// validateMessageWith is validateMessage; an empty body is allowed when the
// message has attachments.
func (s *Service) validateMessageWith(m *MessageInput, attachments bool) error {
	if strings.TrimSpace(m.Body) == "" && !attachments {
		return apierr.New(apierr.InvalidArgument, "message body is required")
	}
	if !utf8.ValidString(m.Body) {
		return apierr.New(apierr.InvalidArgument, "message body must be valid UTF-8")
	}
	if len(m.Body) > s.cfg.MaxMessageBytes {
		return apierr.New(apierr.PayloadTooLarge, "message body exceeds %d bytes", s.cfg.MaxMessageBytes)
	}
	if len(m.ClientMessageID) > 128 {
		return apierr.New(apierr.InvalidArgument, "clientMessageId exceeds 128 characters")
	}
	if len(m.Data) > 0 {
		if len(m.Data) > s.cfg.MaxDataBytes {
			return apierr.New(apierr.PayloadTooLarge, "message data exceeds %d bytes", s.cfg.MaxDataBytes)
		}
		if string(m.Data) == "null" {
			m.Data = nil
		} else if m.Data[0] != '{' {
			return apierr.New(apierr.InvalidArgument, "message data must be a JSON object")
		}
	}
	return nil
}

// CreateThreadRequest is the payload of createThread.
type CreateThreadRequest struct {
	Participants []string     `json:"participants"`
	Subject      string       `json:"subject,omitempty"`
	Message      MessageInput `json:"message"`
	// Public asks the backend for a public thread (participants may then be
	// empty); a backend older than contract 1.4 ignores it.
	Public bool `json:"public,omitempty"`
}

// CreateThreadResult is its answer.
type CreateThreadResult struct {
	Thread      ecbserver.Thread  `json:"thread"`
	ThreadToken string            `json:"threadToken"`
	Message     ecbserver.Message `json:"message"`
	Epoch       string            `json:"epoch"`
}

// CreateThread creates a thread with a first message. The caller's connection
// listens to the new thread at once; the other members' connections are told
// with a thread push ({change: "created"}).
func (s *Service) CreateThread(ctx context.Context, c Caller, req CreateThreadRequest) (*CreateThreadResult, error) {
	return run(ctx, s, OpCreateThread, c, func(ctx context.Context) (*CreateThreadResult, error) {
		if err := requireUser(c); err != nil {
			return nil, err
		}
		var participants []string
		var err error
		if req.Public && len(req.Participants) == 0 {
			participants = []string{}
		} else if participants, err = s.validateParticipants(c.User.ID, req.Participants); err != nil {
			return nil, err
		}
		if len(req.Subject) > 256 {
			return nil, apierr.New(apierr.InvalidArgument, "subject exceeds 256 bytes")
		}
		if err := s.validateMessage(&req.Message); err != nil {
			return nil, err
		}
		if err := s.checkListenLimit(c); err != nil {
			return nil, err
		}
		resp, err := s.backend.CreateThread(ctx, &ecbserver.CreateThreadRequest{
			UserID:       c.User.ID,
			Participants: participants,
			Subject:      req.Subject,
			Message:      ecbserver.NewMessage(req.Message),
			Public:       req.Public,
		})
		if err != nil {
			return nil, err
		}
		s.traceThread(ctx, resp.Thread.ID)
		s.noteThreads(resp.Thread)
		if c.Conn != nil {
			// The thread exists now: a connection that has ended only
			// means no pushes for it (its own answer still comes).
			if _, err := s.hub.Attach(ctx, resp.Thread.ID, c.Conn); err != nil && !errors.Is(err, hub.ErrNotRegistered) {
				return nil, hubError(err)
			}
		}
		msg, pos, err := s.publishStored(ctx, resp.Thread.ID, resp.Message, c.Conn)
		if err != nil {
			return nil, err
		}
		created, err := json.Marshal(threadPush{ThreadID: resp.Thread.ID, Change: "created", Thread: &resp.Thread, Message: &msg, Epoch: pos.Epoch})
		if err != nil {
			return nil, err
		}
		s.pushToUsers(resp.Thread.Members, &hub.Push{Event: EventThread, Data: created}, c.Conn)
		return &CreateThreadResult{Thread: resp.Thread, ThreadToken: resp.ThreadToken, Message: msg, Epoch: pos.Epoch}, nil
	})
}

func (s *Service) validateParticipants(self string, in []string) ([]string, error) {
	out := make([]string, 0, len(in))
	for _, p := range in {
		p = strings.TrimSpace(p)
		if p == "" {
			return nil, apierr.New(apierr.InvalidArgument, "participants must be non-empty user ids")
		}
		if p != self && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, apierr.New(apierr.InvalidArgument, "participants must name at least one other user")
	}
	if len(out) > s.cfg.MaxParticipants {
		return nil, apierr.New(apierr.InvalidArgument, "at most %d participants", s.cfg.MaxParticipants)
	}
	return out, nil
}

func (s *Service) checkListenLimit(c Caller) error {
	if c.Conn != nil && s.hub.Attached(c.Conn) >= s.cfg.MaxThreadsPerConnection {
		return apierr.New(apierr.InvalidArgument, "this connection already listens to %d threads", s.cfg.MaxThreadsPerConnection)
	}
	return nil
}

// Push event names (ECB → client).
const (
	EventMessage = "message"
	EventThread  = "thread"
	EventMention = "mention"
)

// MessagePush is the payload of a message push. Epoch and Offset are left
// empty when ECB encodes it: the broker assigns them, and the transport puts
// them on the wire beside the payload (hub.Push.Payload); the message inside
// carries no offset of its own in a push.
type MessagePush struct {
	ThreadID string            `json:"threadId"`
	Epoch    string            `json:"epoch,omitempty"`
	Offset   uint64            `json:"offset,omitempty"`
	Message  ecbserver.Message `json:"message"`
}

type threadPush struct {
	ThreadID string             `json:"threadId"`
	Change   string             `json:"change"`
	Thread   *ecbserver.Thread  `json:"thread,omitempty"`
	Message  *ecbserver.Message `json:"message,omitempty"`
	Epoch    string             `json:"epoch,omitempty"`
}

// publishMessage pushes a stored message to the thread's listeners except
// skip and returns it with the offset the broker gave it.
// A whisper (Visibility agents) goes only to the connections of agents and
// supervisors (hub.AgentsAudience).
func (s *Service) publishMessage(ctx context.Context, threadID string, m ecbserver.Message, skip hub.Conn) (ecbserver.Message, hub.Position, error) {
	m, pos, _, err := s.publishMessageOnce(ctx, threadID, m, skip)
	return m, pos, err
}

// publishStored is publishMessage for a message the backend has just
// stored: its first publish (not a retry's repeat, which another node may
// have published) also mentions its users (mentions.go) and counts for the
// offline nudge (offline.go); a repeat does neither.
func (s *Service) publishStored(ctx context.Context, threadID string, m ecbserver.Message, skip hub.Conn) (ecbserver.Message, hub.Position, error) {
	m, pos, repeated, err := s.publishMessageOnce(ctx, threadID, m, skip)
	if err == nil && !repeated {
		s.pushMentions(threadID, m)
		s.noteOffline(threadID, m)
	}
	return m, pos, err
}

// publishMessageOnce is publishMessage that also reports whether the push
// was published before (hub.Push.Repeated): a retry of a message already
// pushed, which publishes nothing this time.
func (s *Service) publishMessageOnce(ctx context.Context, threadID string, m ecbserver.Message, skip hub.Conn) (ecbserver.Message, hub.Position, bool, error) {
	m.Offset = 0
	data, err := json.Marshal(MessagePush{ThreadID: threadID, Message: m})
	if err != nil {
		return m, hub.Position{}, false, err
	}
	// Keyed by the message id: a retry that the backend answered with the
	// message it stored already is pushed once, whichever node it reaches.
	p := &hub.Push{Event: EventMessage, Data: data, AgentsOnly: m.Visibility != "", Key: m.ID}
	pos, err := s.hub.Publish(ctx, threadID, p, skip)
	if err != nil {
		return m, hub.Position{}, false, hubError(err)
	}
	m.Offset = pos.Offset
	return m, pos, p.Repeated, nil
}

// pushToUser sends p to every connection of userID on every node but skip.
// The push is applied on this node at once; that the other nodes could not be
// reached is logged (their clients recover what belongs to a thread's
// history when they resume).
func (s *Service) pushToUser(userID string, p *hub.Push, skip hub.Conn) {
	if _, err := s.hub.SendToUser(userID, p, skip); err != nil {
		s.log.Warn("push to a user's connections on the other nodes failed", "user", userID, "event", p.Event, "err", err)
	}
}

// pushToUsers is pushToUser for several users (a repeated or empty id
// once, or not at all) in one call to the hub: the caller waits for one
// round trip to the other nodes, not one per user.
func (s *Service) pushToUsers(userIDs []string, p *hub.Push, skip hub.Conn) {
	pushes := make([]hub.UserPush, 0, len(userIDs))
	seen := make(map[string]struct{}, len(userIDs))
	for _, u := range userIDs {
		if _, dup := seen[u]; dup || u == "" {
			continue
		}
		seen[u] = struct{}{}
		pushes = append(pushes, hub.UserPush{UserID: u, Push: p})
	}
	if _, err := s.hub.SendToUsers(pushes, skip); err != nil {
		s.log.Warn("push to users' connections on the other nodes failed", "users", len(pushes), "event", p.Event, "err", err)
	}
}

// hubError turns what the hub or its broker refused into a client error.
func hubError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, hub.ErrNotRegistered):
		return apierr.Wrap(err, apierr.InvalidArgument, "this connection has ended")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return apierr.Wrap(err, apierr.Unavailable, "the operation was cut short; retry")
	default:
		return apierr.Wrap(err, apierr.Unavailable, "the cluster's shared state cannot be reached now; retry")
	}
}

// verifyThread checks a threadToken for the caller and the access the operation needs.
func (s *Service) verifyThread(c Caller, token, threadID string, need auth.Access) (*auth.Thread, error) {
	if token == "" {
		return nil, apierr.New(apierr.InvalidArgument, "threadToken is required")
	}
	t, err := s.verifier.VerifyThread(token)
	if err != nil {
		return nil, tokenError(err, "threadToken")
	}
	if threadID != "" && threadID != t.ThreadID {
		return nil, apierr.New(apierr.InvalidArgument, "the threadToken is for another thread")
	}
	overridden := s.liveAccess(c, t) // a Server API override replaces the token's acc
	// An anonymous visitor is always held to their own threadToken and its
	// access bits: the backend issues them one for their support thread only.
	strict := *s.cfg.EnforceMembership || c.User.Anonymous
	if strict && t.UserID != c.User.ID {
		return nil, apierr.New(apierr.Forbidden, "this threadToken was issued for another user")
	}
	if (strict || overridden) && !grants(t.Access, need) {
		return nil, apierr.New(apierr.Forbidden, "your access to this thread does not allow this")
	}
	if err := s.checkThreadStatus(t.ThreadID, need); err != nil {
		return nil, err
	}
	return t, nil
}

// actInThread is verifyThread for the operations that act in a thread and
// show it to its members (sendMessage and whispers, typing, markRead,
// addParticipants, leaveThread): a supervisor who monitors the thread
// read-only is refused. The monitor is looked up with the verified user and
// the verified token's thread, never with what the request names, so a
// request that leaves threadId out, or comes over another connection or over
// REST without a stream, is refused the same.
func (s *Service) actInThread(c Caller, token, threadID string, need auth.Access) (*auth.Thread, error) {
	t, err := s.verifyThread(c, token, threadID, need)
	if err != nil {
		return nil, err
	}
	if s.monitors.watching(c.User.ID, t.ThreadID) {
		return nil, apierr.New(apierr.Forbidden, "you monitor this thread read-only: support.join it to take part")
	}
	return t, nil
}

// grants reports whether acc allows what need asks; the owner bit counts as
// admin (an owner may do what a moderator may).
func grants(acc, need auth.Access) bool {
	if need&auth.AccessAdmin != 0 && acc&auth.AccessOwner != 0 {
		acc |= auth.AccessAdmin
	}
	return acc.Has(need)
}

// GetThreadRequest is the payload of getThread.
type GetThreadRequest struct {
	ThreadToken string `json:"threadToken"`
	ThreadID    string `json:"threadId,omitempty"` // optional; when given it must be the token's thread
	Before      string `json:"before,omitempty"`
	Limit       int    `json:"limit,omitempty"`
}

// GetThreadResult is its answer. Epoch and Offset are the thread's push
// position when the page was read: a client that reconnects later asks for
// what came after it.
type GetThreadResult struct {
	Thread      ecbserver.Thread    `json:"thread"`
	ThreadToken string              `json:"threadToken"`
	Messages    []ecbserver.Message `json:"messages"`
	NextCursor  string              `json:"nextCursor,omitempty"`
	Epoch       string              `json:"epoch"`
	Offset      uint64              `json:"offset"`
}

// GetThread returns a thread with a page of messages and makes the caller's
// connection a listener of it.
func (s *Service) GetThread(ctx context.Context, c Caller, req GetThreadRequest) (*GetThreadResult, error) {
	return run(ctx, s, OpGetThread, c, func(ctx context.Context) (*GetThreadResult, error) {
		if err := requireThreadCaller(c); err != nil {
			return nil, err
		}
		if req.Limit < 0 || req.Limit > s.cfg.MaxHistoryLimit {
			return nil, apierr.New(apierr.InvalidArgument, "limit must be between 1 and %d", s.cfg.MaxHistoryLimit)
		}
		t, err := s.verifyThread(c, req.ThreadToken, req.ThreadID, auth.AccessRead)
		if err != nil {
			return nil, err
		}
		s.traceThread(ctx, t.ThreadID)
		if err := s.checkListenLimit(c); err != nil {
			return nil, err
		}
		// Attach (and read the position in the same step) before reading the
		// backend, so that no message stored meanwhile is missed: it comes as
		// a push, and possibly in the page too (clients drop it by id).
		var pos hub.Position
		if c.Conn != nil && req.Before == "" {
			if pos, err = s.hub.Attach(ctx, t.ThreadID, c.Conn); err != nil {
				return nil, hubError(err)
			}
			if err := s.stillListening(c, t.ThreadID); err != nil {
				s.hub.Detach(t.ThreadID, c.Conn)
				return nil, err
			}
		} else if pos, err = s.hub.Position(ctx, t.ThreadID); err != nil {
			return nil, hubError(err)
		}
		resp, err := s.backend.GetThread(ctx, &ecbserver.GetThreadRequest{UserID: c.User.ID, ThreadID: t.ThreadID, Before: req.Before, Limit: req.Limit})
		if err != nil {
			if c.Conn != nil && req.Before == "" {
				s.hub.Detach(t.ThreadID, c.Conn)
			}
			return nil, err
		}
		s.noteThreads(resp.Thread)
		msgs := resp.Messages
		if msgs == nil {
			msgs = []ecbserver.Message{}
		}
		return &GetThreadResult{Thread: resp.Thread, ThreadToken: resp.ThreadToken, Messages: msgs, NextCursor: resp.NextCursor, Epoch: pos.Epoch, Offset: pos.Offset}, nil
	})
}

// SendMessageRequest is the payload of sendMessage.
type SendMessageRequest struct {
	ThreadToken string `json:"threadToken"`
	ThreadID    string `json:"threadId,omitempty"` // optional; when given it must be the token's thread
	MessageInput
	// Visibility "agents" makes a whisper (agents and supervisors only).
	Visibility string `json:"visibility,omitempty"`
	// Attachments are ids from getUploadUrl (protocol 1.4); with them the
	// body may be empty.
	Attachments []string `json:"attachments,omitempty"`
	// ReplyTo is the id of the message this one replies to (protocol 1.4):
	// the backend refuses a message of another thread (invalid_argument)
	// and answers the stored message with its parent's quote.
	ReplyTo string `json:"replyTo,omitempty"`
	// Mentions are the user ids the message mentions (protocol 1.5): at
	// most ecbserver.MaxMentions, repeats collapsed. The backend keeps the
	// members among them (the others are dropped, not refused); each kept
	// user but the author gets a mention push on all their connections.
	Mentions []string `json:"mentions,omitempty"`
}

// SendMessageResult is its answer.
type SendMessageResult struct {
	Message     ecbserver.Message `json:"message"`
	ThreadToken string            `json:"threadToken"`
	Epoch       string            `json:"epoch"`
}

// SendMessage stores a message through the backend, then pushes it to every
// listener of the thread but the caller's own connection, which gets the answer.
func (s *Service) SendMessage(ctx context.Context, c Caller, req SendMessageRequest) (*SendMessageResult, error) {
	return run(ctx, s, OpSendMessage, c, func(ctx context.Context) (*SendMessageResult, error) {
		err := requireThreadCaller(c)
		if err != nil {
			return nil, err
		}
		if err := s.checkAttachmentIDs(req.Attachments); err != nil {
			return nil, err
		}
		if err := s.validateMessageWith(&req.MessageInput, len(req.Attachments) > 0); err != nil {
			return nil, err
		}
		if err := checkVisibility(c, req.Visibility); err != nil {
			return nil, err
		}
		if len(req.ReplyTo) > maxIDBytes {
			return nil, apierr.New(apierr.InvalidArgument, "replyTo exceeds %d bytes", maxIDBytes)
		}
		if req.Mentions, err = checkMentions(req.Mentions); err != nil {
			return nil, err
		}
		t, err := s.actInThread(c, req.ThreadToken, req.ThreadID, auth.AccessWrite)
		if err != nil {
			return nil, err
		}
		s.traceThread(ctx, t.ThreadID)
		if req.ClientMessageID == "" {
			return s.storeAndPublish(ctx, c, t, req)
		}
		// A retry of a message ECB already stored gets the original answer:
		// no second backend call, no second push.
		key := dedupeKey{c.User.ID, t.ThreadID, req.ClientMessageID}
		e, first := s.dedupeBegin(key)
		if !first {
			select {
			case <-e.done:
				return e.res, e.err
			case <-ctx.Done():
				return nil, apierr.Wrap(ctx.Err(), apierr.Unavailable, "the request was cancelled")
			}
		}
		res, err := s.storeAndPublish(ctx, c, t, req)
		s.dedupeEnd(key, e, res, err)
		return res, err
	})
}

// storeAndPublish stores a message through the backend and pushes it.
func (s *Service) storeAndPublish(ctx context.Context, c Caller, t *auth.Thread, req SendMessageRequest) (*SendMessageResult, error) {
	exp, acc := t.ExpiresAt, int(t.Signed)
	resp, err := s.backend.AddThreadMessage(ctx, &ecbserver.AddThreadMessageRequest{
		UserID: c.User.ID, ThreadID: t.ThreadID, Body: req.Body, ClientMessageID: req.ClientMessageID, Data: req.Data,
		Visibility: req.Visibility, Attachments: req.Attachments, ReplyTo: req.ReplyTo, Mentions: req.Mentions,
		ThreadTokenExpiresAt: &exp, ThreadTokenAccess: &acc,
	})
	if err != nil {
		return nil, err
	}
	if resp.ThreadToken == "" {
		// The backend kept the author's token (contract 1.5): it stays theirs.
		resp.ThreadToken = req.ThreadToken
	}
	if req.ReplyTo != "" && (resp.Message.ReplyTo == nil || resp.Message.ReplyTo.MessageID != req.ReplyTo) {
		// A backend older than contract 1.5 stored the message without its
		// parent: say so rather than pretend.
		s.log.Warn("sendMessage: the backend stored a reply without its replyTo (contract 1.5)", "thread", t.ThreadID)
	}
	resp.Message = forEveryone(resp.Message)
	if resp.Message.ThreadID == "" {
		resp.Message.ThreadID = t.ThreadID
	}
	// The audience is what the caller asked, whatever the backend echoed.
	resp.Message.Visibility = req.Visibility
	msg, pos, err := s.publishStored(ctx, t.ThreadID, resp.Message, c.Conn)
	if err != nil {
		return nil, err
	}
	s.messageCallback(ctx, t.ThreadID, msg)
	return &SendMessageResult{Message: msg, ThreadToken: resp.ThreadToken, Epoch: pos.Epoch}, nil
}

// StopListeningRequest is the payload of stopListening.
type StopListeningRequest struct {
	ThreadID string `json:"threadId"`
}

// StopListening detaches the caller's connection from a thread's pushes.
func (s *Service) StopListening(ctx context.Context, c Caller, req StopListeningRequest) (any, error) {
	return run(ctx, s, OpStopListening, c, func(ctx context.Context) (any, error) {
		if req.ThreadID == "" {
			return nil, apierr.New(apierr.InvalidArgument, "threadId is required")
		}
		if c.Conn != nil {
			s.hub.Detach(req.ThreadID, c.Conn)
			s.monitors.remove(c.Conn, req.ThreadID) // a supervisor's support.monitor ends too
		}
		return struct{}{}, nil
	})
}
