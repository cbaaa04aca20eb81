package ops

// Edits, reactions and message search (issue 16 items 1, 2 and 7), each an
// optional backend call of contract 1.5, and replies (item 3, sendMessage's
// replyTo, checked by the backend). messageEdited and reaction are pushes of
// the thread's history, published through the hub like message and
// messageDeleted: each takes an offset, and a client that resumes gets the
// ones it missed, in order, once (the broker's history, in memory or in
// Redis).

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/time/rate"

	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/auth"
	"github.com/ecbridge/ecb/internal/hub"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// Operation and push names of this file.
const (
	OpEditMessage    = "editMessage"
	OpReact          = "react"
	OpUnreact        = "unreact"
	OpSearchMessages = "searchMessages"

	EventMessageEdited = "messageEdited"
	EventReaction      = "reaction"

	// The change of a reaction push.
	ReactionAdded   = "added"
	ReactionRemoved = "removed"
)

// maxQueryBytes bounds a searchMessages query.
const maxQueryBytes = 256

// MessageEditor, Reactor and MessageSearcher are the optional parts of the
// backend of contract 1.5; *backend.Client implements them.
type (
	MessageEditor interface {
		EditMessage(ctx context.Context, req *ecbserver.EditMessageRequest) (*ecbserver.EditMessageResponse, error)
	}
	Reactor interface {
		React(ctx context.Context, req *ecbserver.ReactionRequest) (*ecbserver.ReactionResponse, error)
		Unreact(ctx context.Context, req *ecbserver.ReactionRequest) (*ecbserver.ReactionResponse, error)
	}
	MessageSearcher interface {
		SearchMessages(ctx context.Context, req *ecbserver.SearchMessagesRequest) (*ecbserver.SearchMessagesResponse, error)
	}
)

func optional[T any](s *Service, op string) (T, error) {
	b, ok := s.backend.(T)
	if !ok {
		return b, apierr.New(apierr.NotFound, "the backend does not support %s", op)
	}
	return b, nil
}

// EditMessageRequest is the payload of editMessage. Data, when present,
// replaces the message's data (null clears it); absent keeps it.
type EditMessageRequest struct {
	ThreadToken string          `json:"threadToken"`
	ThreadID    string          `json:"threadId,omitempty"`
	MessageID   string          `json:"messageId"`
	Body        string          `json:"body"`
	Data        json.RawMessage `json:"data,omitempty"`
}

// MessageEditedPush is the payload of a messageEdited push (part of the
// thread's history).
type MessageEditedPush struct {
	ThreadID string            `json:"threadId"`
	Message  ecbserver.Message `json:"message"`
}

// MessageChangeResult answers editMessage, react and unreact: the message
// as the history keeps it now (reactions with me for the caller), and the
// position of the push it caused (offset 0 when nothing changed).
type MessageChangeResult struct {
	Message ecbserver.Message `json:"message"`
	Epoch   string            `json:"epoch,omitempty"`
	Offset  uint64            `json:"offset,omitempty"`
}

// forEveryone is a message as a push carries it to every listener: no
// offset (the push has its own) and no "me", which belongs to one user.
func forEveryone(m ecbserver.Message) ecbserver.Message {
	m.Offset = 0
	if len(m.Reactions) > 0 {
		rs := slices.Clone(m.Reactions)
		for i := range rs {
			rs[i].Me = false
		}
		m.Reactions = rs
	}
	return m
}

// EditMessage edits a message on behalf of the caller, who needs the write
// bit; the backend decides who may edit what (the reference backend: the
// author only) and ECB refuses nothing it allows. Listeners get
// messageEdited.
func (s *Service) EditMessage(ctx context.Context, c Caller, req EditMessageRequest) (*MessageChangeResult, error) {
	return run(ctx, s, OpEditMessage, c, func(ctx context.Context) (*MessageChangeResult, error) {
		if err := requireUser(c); err != nil {
			return nil, err
		}
		if err := checkID("messageId", req.MessageID); err != nil {
			return nil, err
		}
		clearData := string(req.Data) == "null"
		in := MessageInput{Body: req.Body, Data: req.Data}
		if err := s.validateMessage(&in); err != nil {
			return nil, err
		}
		data := in.Data
		if clearData {
			data = json.RawMessage("null")
		}
		t, err := s.actInThread(c, req.ThreadToken, req.ThreadID, auth.AccessWrite)
		if err != nil {
			return nil, err
		}
		if err := s.checkThreadStatus(t.ThreadID, auth.AccessWrite); err != nil {
			return nil, err
		}
		b, err := optional[MessageEditor](s, OpEditMessage)
		if err != nil {
			return nil, err
		}
		resp, err := b.EditMessage(ctx, &ecbserver.EditMessageRequest{UserID: c.User.ID, ThreadID: t.ThreadID, MessageID: req.MessageID, Body: req.Body, Data: data})
		if err != nil {
			return nil, err
		}
		msg := resp.Message
		if msg.ThreadID == "" {
			msg.ThreadID = t.ThreadID
		}
		pushed, err := json.Marshal(MessageEditedPush{ThreadID: t.ThreadID, Message: forEveryone(msg)})
		if err != nil {
			return nil, err
		}
		pos, err := s.hub.Publish(ctx, t.ThreadID, &hub.Push{Event: EventMessageEdited, Data: pushed, AgentsOnly: msg.Visibility != ""}, c.Conn)
		if err != nil {
			return nil, hubError(err)
		}
		msg.Offset = 0
		return &MessageChangeResult{Message: msg, Epoch: pos.Epoch, Offset: pos.Offset}, nil
	})
}

// ReactRequest is the payload of react and unreact.
type ReactRequest struct {
	ThreadToken string `json:"threadToken"`
	ThreadID    string `json:"threadId,omitempty"`
	MessageID   string `json:"messageId"`
	Reaction    string `json:"reaction"`
}

// ReactionPush is the payload of a reaction push (part of the thread's
// history): who reacted how, and the message's counts after it.
type ReactionPush struct {
	ThreadID  string         `json:"threadId"`
	MessageID string         `json:"messageId"`
	Reaction  string         `json:"reaction"`
	UserID    string         `json:"userId"`
	Change    string         `json:"change"` // ReactionAdded or ReactionRemoved
	Counts    map[string]int `json:"counts"`
}

// React adds the caller's reaction to a message.
func (s *Service) React(ctx context.Context, c Caller, req ReactRequest) (*MessageChangeResult, error) {
	return run(ctx, s, OpReact, c, func(ctx context.Context) (*MessageChangeResult, error) {
		return s.reaction(ctx, c, req, ReactionAdded)
	})
}

// Unreact removes the caller's reaction from a message.
func (s *Service) Unreact(ctx context.Context, c Caller, req ReactRequest) (*MessageChangeResult, error) {
	return run(ctx, s, OpUnreact, c, func(ctx context.Context) (*MessageChangeResult, error) {
		return s.reaction(ctx, c, req, ReactionRemoved)
	})
}

// checkReaction refuses a reaction longer than the limit, with spaces or
// control characters, or (with an allow-list) not on it.
func (s *Service) checkReaction(r string) error {
	if r == "" {
		return apierr.New(apierr.InvalidArgument, "reaction is required")
	}
	if len(r) > s.cfg.MaxReactionBytes {
		return apierr.New(apierr.InvalidArgument, "reaction exceeds %d bytes", s.cfg.MaxReactionBytes)
	}
	if !utf8.ValidString(r) {
		return apierr.New(apierr.InvalidArgument, "reaction must be valid UTF-8")
	}
	if strings.IndexFunc(r, func(c rune) bool { return unicode.IsSpace(c) || unicode.IsControl(c) }) >= 0 {
		return apierr.New(apierr.InvalidArgument, "reaction must not contain spaces or control characters")
	}
	if len(s.cfg.Reactions) > 0 && !slices.Contains(s.cfg.Reactions, r) {
		return apierr.New(apierr.InvalidArgument, "reaction is not one this deployment allows")
	}
	return nil
}

func (s *Service) reaction(ctx context.Context, c Caller, req ReactRequest, change string) (*MessageChangeResult, error) {
	if err := requireUser(c); err != nil {
		return nil, err
	}
	if err := checkID("messageId", req.MessageID); err != nil {
		return nil, err
	}
	if err := s.checkReaction(req.Reaction); err != nil {
		return nil, err
	}
	t, err := s.actInThread(c, req.ThreadToken, req.ThreadID, auth.AccessWrite)
	if err != nil {
		return nil, err
	}
	if err := s.checkThreadStatus(t.ThreadID, auth.AccessWrite); err != nil {
		return nil, err
	}
	if !s.allowReaction(c.User.ID) {
		return nil, &apierr.Error{Code: apierr.RateLimited, Message: "too many reactions", RetryAfter: time.Second}
	}
	b, err := optional[Reactor](s, OpReact)
	if err != nil {
		return nil, err
	}
	breq := &ecbserver.ReactionRequest{UserID: c.User.ID, ThreadID: t.ThreadID, MessageID: req.MessageID, Reaction: req.Reaction}
	var resp *ecbserver.ReactionResponse
	if change == ReactionAdded {
		resp, err = b.React(ctx, breq)
	} else {
		resp, err = b.Unreact(ctx, breq)
	}
	if err != nil {
		return nil, err
	}
	msg := resp.Message
	msg.Offset = 0
	if !resp.Changed {
		return &MessageChangeResult{Message: msg}, nil // nothing to tell anyone
	}
	counts := make(map[string]int, len(msg.Reactions))
	for _, r := range msg.Reactions {
		if r.Count > 0 {
			counts[r.Reaction] = r.Count
		}
	}
	data, err := json.Marshal(ReactionPush{ThreadID: t.ThreadID, MessageID: req.MessageID, Reaction: req.Reaction, UserID: c.User.ID, Change: change, Counts: counts})
	if err != nil {
		return nil, err
	}
	pos, err := s.hub.Publish(ctx, t.ThreadID, &hub.Push{Event: EventReaction, Data: data, AgentsOnly: msg.Visibility != ""}, c.Conn)
	if err != nil {
		return nil, hubError(err)
	}
	return &MessageChangeResult{Message: msg, Epoch: pos.Epoch, Offset: pos.Offset}, nil
}

// allowReaction is the per-user limiter of reactions, like typing's.
func (s *Service) allowReaction(userID string) bool {
	s.live.mu.Lock()
	defer s.live.mu.Unlock()
	key := "react\x00" + userID
	e := s.live.limiters[key]
	if e == nil {
		e = &limiterEntry{l: rate.NewLimiter(rate.Limit(s.cfg.ReactionsPerSecond), s.cfg.ReactionsPerSecond*2)}
		s.live.limiters[key] = e
	}
	e.used = time.Now()
	return e.l.Allow()
}

// SearchMessagesRequest is the payload of searchMessages: a query, the
// thread to search in (its threadToken, optional) and a page.
type SearchMessagesRequest struct {
	Query       string `json:"query"`
	ThreadToken string `json:"threadToken,omitempty"`
	Cursor      string `json:"cursor,omitempty"`
	Limit       int    `json:"limit,omitempty"`
}

// SearchMessagesResult is a page of hits, newest first.
type SearchMessagesResult struct {
	Hits       []ecbserver.SearchHit `json:"hits"`
	NextCursor string                `json:"nextCursor,omitempty"`
}

// SearchMessages asks the backend for the messages matching a query in the
// threads the caller may read. ECB verifies each hit's threadToken (signed
// for the caller, the read bit, the hit's thread) and drops any that does
// not verify: a hit is never from a thread the caller cannot read.
func (s *Service) SearchMessages(ctx context.Context, c Caller, req SearchMessagesRequest) (*SearchMessagesResult, error) {
	return run(ctx, s, OpSearchMessages, c, func(ctx context.Context) (*SearchMessagesResult, error) {
		if err := requireUser(c); err != nil {
			return nil, err
		}
		q := strings.TrimSpace(req.Query)
		if q == "" {
			return nil, apierr.New(apierr.InvalidArgument, "query is required")
		}
		if len(q) > maxQueryBytes || !utf8.ValidString(q) {
			return nil, apierr.New(apierr.InvalidArgument, "query must be valid UTF-8 of at most %d bytes", maxQueryBytes)
		}
		if len(req.Cursor) > 512 {
			return nil, apierr.New(apierr.InvalidArgument, "cursor exceeds 512 bytes")
		}
		if req.Limit < 0 || req.Limit > s.cfg.MaxPageSize {
			return nil, apierr.New(apierr.InvalidArgument, "limit must be 0 to %d", s.cfg.MaxPageSize)
		}
		limit := req.Limit
		if limit == 0 {
			limit = s.cfg.DefaultPageSize
		}
		threadID := ""
		if req.ThreadToken != "" {
			t, err := s.actInThread(c, req.ThreadToken, "", auth.AccessRead)
			if err != nil {
				return nil, err
			}
			threadID = t.ThreadID
		}
		b, err := optional[MessageSearcher](s, OpSearchMessages)
		if err != nil {
			return nil, err
		}
		resp, err := b.SearchMessages(ctx, &ecbserver.SearchMessagesRequest{UserID: c.User.ID, Query: q, ThreadID: threadID, Cursor: req.Cursor, Limit: limit})
		if err != nil {
			return nil, err
		}
		hits := make([]ecbserver.SearchHit, 0, len(resp.Hits))
		for _, h := range resp.Hits {
			t, err := s.verifier.VerifyThread(h.ThreadToken)
			if err != nil || t.UserID != c.User.ID || t.ThreadID != h.Message.ThreadID || !grants(t.Access, auth.AccessRead) ||
				(threadID != "" && t.ThreadID != threadID) || (h.Message.Visibility != "" && !seesWhispers(c)) {
				s.log.Warn("searchMessages: a hit the caller may not read was dropped", "user", c.User.ID, "thread", h.Message.ThreadID)
				continue
			}
			h.Message.Offset = 0
			hits = append(hits, h)
		}
		return &SearchMessagesResult{Hits: hits, NextCursor: resp.NextCursor}, nil
	})
}
