package ops

// Public threads (joinThread, getThreads {public: true}, createThread
// {public: true}) and moderation with the admin (4) and owner (8) bits
// (removeParticipant, updateThread, deleteMessage, deleteThread, setAccess),
// issue 15. Each needs an optional backend call of contract 1.4 but
// setAccess, which is ECB's own live override, the one the Server API sets.
// The access bits are checked on the threadToken (with any live override)
// before the backend is called; the backend checks again.

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/ecbridge/ecb/internal/access"
	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/auth"
	"github.com/ecbridge/ecb/internal/hub"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// Operation and push names of this file.
const (
	OpJoinThread        = "joinThread"
	OpRemoveParticipant = "removeParticipant"
	OpUpdateThread      = "updateThread"
	OpDeleteMessage     = "deleteMessage"
	OpDeleteThread      = "deleteThread"
	OpSetAccess         = "setAccess"

	EventMessageDeleted = "messageDeleted"

	// ChangeRemoved is the thread push a removed member's connections get,
	// and the member push change the listeners get.
	ChangeRemoved = "removed"
)

// MaxAccessTTL is the longest ttlSeconds of setAccess, as of the Server API.
const MaxAccessTTL = 366 * 24 * time.Hour

// PublicThreadsBackend is the optional part of the backend for public
// threads (contract 1.4); *backend.Client implements it.
type PublicThreadsBackend interface {
	JoinThread(ctx context.Context, req *ecbserver.JoinThreadRequest) (*ecbserver.JoinThreadResponse, error)
	GetPublicThreads(ctx context.Context, req *ecbserver.GetPublicThreadsRequest) (*ecbserver.GetPublicThreadsResponse, error)
}

// ModerationBackend is the optional part of the backend for moderation
// (contract 1.4); *backend.Client implements it.
type ModerationBackend interface {
	RemoveParticipant(ctx context.Context, req *ecbserver.RemoveParticipantRequest) (*ecbserver.RemoveParticipantResponse, error)
	UpdateThread(ctx context.Context, req *ecbserver.UpdateThreadRequest) (*ecbserver.UpdateThreadResponse, error)
	DeleteMessage(ctx context.Context, req *ecbserver.DeleteMessageRequest) (*ecbserver.DeleteMessageResponse, error)
	DeleteThread(ctx context.Context, req *ecbserver.DeleteThreadRequest) (*ecbserver.DeleteThreadResponse, error)
}

// LiveWriter records live decisions in the store the Guards read (the
// Server API's: *access.Store on one node, the Redis store in cluster
// mode), so that they hold on every node.
type LiveWriter interface {
	SetAccess(ctx context.Context, threadID, userID string, acc auth.Access, ttl time.Duration) (access.Override, error)
	DeleteAccess(ctx context.Context, threadID, userID string) (bool, error)
	SetThreadStatus(ctx context.Context, threadID, status string) error
}

func (s *Service) publicBackend(op string) (PublicThreadsBackend, error) {
	if b, ok := s.backend.(PublicThreadsBackend); ok {
		return b, nil
	}
	return nil, apierr.New(apierr.NotFound, "the backend does not support %s", op)
}

func (s *Service) moderationBackend(op string) (ModerationBackend, error) {
	if b, ok := s.backend.(ModerationBackend); ok {
		return b, nil
	}
	return nil, apierr.New(apierr.NotFound, "the backend does not support %s", op)
}

func (s *Service) liveWriter() (LiveWriter, error) {
	if s.guards.Writer == nil {
		return nil, apierr.New(apierr.NotFound, "live access changes are not enabled on this node")
	}
	return s.guards.Writer, nil
}

func checkID(name, v string) error {
	if v == "" {
		return apierr.New(apierr.InvalidArgument, "%s is required", name)
	}
	if len(v) > maxIDBytes {
		return apierr.New(apierr.InvalidArgument, "%s exceeds %d bytes", name, maxIDBytes)
	}
	return nil
}

// GetThreadsRequest is the payload of getThreads: a page, of the caller's
// threads or (public) of the public threads the backend lists.
type GetThreadsRequest struct {
	PageRequest
	Public bool `json:"public,omitempty"`
}

// getPublicThreads pages the public threads; their items carry no
// threadToken (joinThread gives one).
func (s *Service) getPublicThreads(ctx context.Context, c Caller, req PageRequest) (*Page[ecbserver.SignedThread], error) {
	b, err := s.publicBackend("getPublicThreads")
	if err != nil {
		return nil, err
	}
	resp, err := b.GetPublicThreads(ctx, &ecbserver.GetPublicThreadsRequest{UserID: c.User.ID})
	if err != nil {
		return nil, err
	}
	items := make([]ecbserver.SignedThread, len(resp.Threads))
	for i, t := range resp.Threads {
		items[i] = ecbserver.SignedThread{Thread: t}
	}
	return paginate(items, req, s.cfg)
}

// JoinThreadRequest is the payload of joinThread.
type JoinThreadRequest struct {
	ThreadID string `json:"threadId"`
}

// JoinThreadResult is its answer.
type JoinThreadResult struct {
	Thread      ecbserver.Thread `json:"thread"`
	ThreadToken string           `json:"threadToken"`
	Joined      bool             `json:"joined"`
}

// JoinThread makes the caller a member of a public thread: the backend
// decides (a private thread is forbidden) and signs the threadToken. The
// listeners get member {change: "joined"}, the caller's other connections
// thread {change: "added"}. A user removed or banned from the thread (a live
// override without read) is refused before the backend is asked.
func (s *Service) JoinThread(ctx context.Context, c Caller, req JoinThreadRequest) (*JoinThreadResult, error) {
	return run(ctx, s, OpJoinThread, c, func(ctx context.Context) (*JoinThreadResult, error) {
		if err := requireUser(c); err != nil {
			return nil, err
		}
		if err := checkID("threadId", req.ThreadID); err != nil {
			return nil, err
		}
		if err := s.stillListening(c, req.ThreadID); err != nil {
			return nil, err
		}
		b, err := s.publicBackend(OpJoinThread)
		if err != nil {
			return nil, err
		}
		resp, err := b.JoinThread(ctx, &ecbserver.JoinThreadRequest{UserID: c.User.ID, ThreadID: req.ThreadID})
		if err != nil {
			return nil, err
		}
		t, err := s.verifier.VerifyThread(resp.ThreadToken)
		if err != nil || t.ThreadID != req.ThreadID || t.UserID != c.User.ID {
			return nil, apierr.New(apierr.BackendError, "the backend signed a threadToken ECB cannot use for this join")
		}
		s.noteThreads(resp.Thread)
		if resp.Joined {
			if err := s.publishMember(ctx, req.ThreadID, c.User.ID, "joined", ""); err != nil {
				return nil, err
			}
			data, err := json.Marshal(threadPush{ThreadID: req.ThreadID, Change: "added", Thread: &resp.Thread})
			if err != nil {
				return nil, err
			}
			s.pushToUser(c.User.ID, &hub.Push{Event: EventThread, Data: data, At: time.Now()}, c.Conn)
		}
		return &JoinThreadResult{Thread: resp.Thread, ThreadToken: resp.ThreadToken, Joined: resp.Joined}, nil
	})
}

// RemoveParticipantRequest is the payload of removeParticipant.
type RemoveParticipantRequest struct {
	ThreadToken string `json:"threadToken"`
	ThreadID    string `json:"threadId,omitempty"` // optional; when given it must be the token's thread
	UserID      string `json:"userId"`
}

// RemoveParticipantResult is its answer.
type RemoveParticipantResult struct {
	Thread ecbserver.Thread `json:"thread"`
}

// RemoveParticipant takes a member out of a thread on behalf of an admin
// or owner (the backend refuses to remove the owner). At once, on every
// node, the removed user's connections stop listening and get thread
// {change: "removed", by}; the listeners get member {change: "removed"}.
// ECB also records a live override without access for the pair for
// operations.removedTTL, so that a threadToken the user still holds opens
// nothing (a resume, a typing); adding them back lifts it.
func (s *Service) RemoveParticipant(ctx context.Context, c Caller, req RemoveParticipantRequest) (*RemoveParticipantResult, error) {
	return run(ctx, s, OpRemoveParticipant, c, func(ctx context.Context) (*RemoveParticipantResult, error) {
		if err := requireUser(c); err != nil {
			return nil, err
		}
		if err := checkID("userId", req.UserID); err != nil {
			return nil, err
		}
		if req.UserID == c.User.ID {
			return nil, apierr.New(apierr.InvalidArgument, "to remove yourself, use leaveThread")
		}
		t, err := s.actInThread(c, req.ThreadToken, req.ThreadID, auth.AccessAdmin)
		if err != nil {
			return nil, err
		}
		b, err := s.moderationBackend(OpRemoveParticipant)
		if err != nil {
			return nil, err
		}
		resp, err := b.RemoveParticipant(ctx, &ecbserver.RemoveParticipantRequest{UserID: c.User.ID, ThreadID: t.ThreadID, ParticipantID: req.UserID})
		if err != nil {
			return nil, err
		}
		s.live.presence.NoteThread(t.ThreadID, resp.Thread.Members)
		// The backend removed them: what follows makes ECB agree at once.
		if w := s.guards.Writer; w != nil {
			if _, err := w.SetAccess(ctx, t.ThreadID, req.UserID, 0, s.cfg.RemovedTTL); err != nil {
				s.log.Warn("could not record a removal as a live override; the backend still refuses the user", "thread", t.ThreadID, "user", req.UserID, "err", err)
			}
		}
		if _, err := s.hub.DetachUser(t.ThreadID, req.UserID); err != nil {
			return nil, hubError(err)
		}
		s.pushToUser(req.UserID, threadChange(ThreadChangePush{ThreadID: t.ThreadID, Change: ChangeRemoved, By: c.User.ID}), nil)
		if err := s.publishMember(ctx, t.ThreadID, req.UserID, ChangeRemoved, c.User.ID); err != nil {
			return nil, err
		}
		return &RemoveParticipantResult{Thread: resp.Thread}, nil
	})
}

// liftRemoval ends the removal override of users a moderator added back
// (or who joined again): an override that grants nothing. Others stay.
func (s *Service) liftRemoval(ctx context.Context, threadID string, users []string) {
	w := s.guards.Writer
	if w == nil {
		return
	}
	for _, u := range users {
		acc, ok := s.guards.Access.Lookup(threadID, u)
		if !ok || acc != 0 {
			continue
		}
		deleted, err := w.DeleteAccess(ctx, threadID, u)
		if err != nil {
			s.log.Warn("could not lift a removal override", "thread", threadID, "user", u, "err", err)
			continue
		}
		if deleted {
			if _, err := s.ApplyAccess(threadID, u, nil, time.Time{}); err != nil {
				s.log.Warn("telling a user their access is back failed on other nodes", "thread", threadID, "user", u, "err", err)
			}
		}
	}
}

// UpdateThreadRequest is the payload of updateThread.
type UpdateThreadRequest struct {
	ThreadToken string          `json:"threadToken"`
	ThreadID    string          `json:"threadId,omitempty"`
	Subject     *string         `json:"subject,omitempty"`
	Data        json.RawMessage `json:"data,omitempty"`
}

// UpdateThreadResult is its answer.
type UpdateThreadResult struct {
	Thread ecbserver.Thread `json:"thread"`
}

// UpdateThread changes a thread's subject or data on behalf of an admin or
// owner; the listeners get thread {change: "updated", thread}.
func (s *Service) UpdateThread(ctx context.Context, c Caller, req UpdateThreadRequest) (*UpdateThreadResult, error) {
	return run(ctx, s, OpUpdateThread, c, func(ctx context.Context) (*UpdateThreadResult, error) {
		if err := requireUser(c); err != nil {
			return nil, err
		}
		if req.Subject == nil && len(req.Data) == 0 {
			return nil, apierr.New(apierr.InvalidArgument, "subject or data is required")
		}
		if req.Subject != nil && len(*req.Subject) > 256 {
			return nil, apierr.New(apierr.InvalidArgument, "subject exceeds 256 bytes")
		}
		if req.Subject != nil && !utf8.ValidString(*req.Subject) {
			return nil, apierr.New(apierr.InvalidArgument, "subject must be valid UTF-8")
		}
		if len(req.Data) > 0 {
			if len(req.Data) > s.cfg.MaxDataBytes {
				return nil, apierr.New(apierr.PayloadTooLarge, "data exceeds %d bytes", s.cfg.MaxDataBytes)
			}
			if req.Data[0] != '{' && string(req.Data) != "null" {
				return nil, apierr.New(apierr.InvalidArgument, "data must be a JSON object, or null to clear it")
			}
		}
		t, err := s.actInThread(c, req.ThreadToken, req.ThreadID, auth.AccessAdmin)
		if err != nil {
			return nil, err
		}
		b, err := s.moderationBackend(OpUpdateThread)
		if err != nil {
			return nil, err
		}
		resp, err := b.UpdateThread(ctx, &ecbserver.UpdateThreadRequest{UserID: c.User.ID, ThreadID: t.ThreadID, Subject: req.Subject, Data: req.Data})
		if err != nil {
			return nil, err
		}
		if _, err := s.ThreadChanged(t.ThreadID, ChangeUpdated, &resp.Thread); err != nil {
			return nil, err
		}
		return &UpdateThreadResult{Thread: resp.Thread}, nil
	})
}

// DeleteMessageRequest is the payload of deleteMessage.
type DeleteMessageRequest struct {
	ThreadToken string `json:"threadToken"`
	ThreadID    string `json:"threadId,omitempty"`
	MessageID   string `json:"messageId"`
}

// MessageDeletedPush is the payload of a messageDeleted push: part of the
// thread's history (with an offset, replayed by resume).
type MessageDeletedPush struct {
	ThreadID  string `json:"threadId"`
	MessageID string `json:"messageId"`
	By        string `json:"by"`
	Epoch     string `json:"epoch,omitempty"`  // on the wire beside the payload (hub.Push.Payload)
	Offset    uint64 `json:"offset,omitempty"` // likewise
}

// DeleteMessageResult is its answer: the message as the history keeps it,
// and the position its push took.
type DeleteMessageResult struct {
	Message ecbserver.Message `json:"message"`
	Epoch   string            `json:"epoch"`
	Offset  uint64            `json:"offset"`
}

// DeleteMessage deletes a message on behalf of its author or an admin or
// owner: ECB needs the write or the admin bit (the backend knows the
// author and decides); the listeners get messageDeleted.
func (s *Service) DeleteMessage(ctx context.Context, c Caller, req DeleteMessageRequest) (*DeleteMessageResult, error) {
	return run(ctx, s, OpDeleteMessage, c, func(ctx context.Context) (*DeleteMessageResult, error) {
		if err := requireUser(c); err != nil {
			return nil, err
		}
		if err := checkID("messageId", req.MessageID); err != nil {
			return nil, err
		}
		t, err := s.actInThread(c, req.ThreadToken, req.ThreadID, 0)
		if err != nil {
			return nil, err
		}
		if !grants(t.Access, auth.AccessWrite) && !grants(t.Access, auth.AccessAdmin) {
			return nil, apierr.New(apierr.Forbidden, "your access to this thread does not allow this")
		}
		if err := s.checkThreadStatus(t.ThreadID, auth.AccessWrite); err != nil {
			return nil, err
		}
		b, err := s.moderationBackend(OpDeleteMessage)
		if err != nil {
			return nil, err
		}
		resp, err := b.DeleteMessage(ctx, &ecbserver.DeleteMessageRequest{UserID: c.User.ID, ThreadID: t.ThreadID, MessageID: req.MessageID})
		if err != nil {
			return nil, err
		}
		data, err := json.Marshal(MessageDeletedPush{ThreadID: t.ThreadID, MessageID: req.MessageID, By: c.User.ID})
		if err != nil {
			return nil, err
		}
		pos, err := s.hub.Publish(ctx, t.ThreadID, &hub.Push{Event: EventMessageDeleted, Data: data}, c.Conn)
		if err != nil {
			return nil, hubError(err)
		}
		msg := resp.Message
		msg.Offset = 0
		return &DeleteMessageResult{Message: msg, Epoch: pos.Epoch, Offset: pos.Offset}, nil
	})
}

// DeleteThreadRequest is the payload of deleteThread.
type DeleteThreadRequest struct {
	ThreadToken string `json:"threadToken"`
	ThreadID    string `json:"threadId,omitempty"`
}

// DeleteThread deletes a thread with its history on behalf of its owner
// (the owner bit). ECB marks it deleted for every node (as the Server API's
// thread event does), then every member's connections stop listening and
// get thread {change: "deleted"}, and so do the remaining listeners.
func (s *Service) DeleteThread(ctx context.Context, c Caller, req DeleteThreadRequest) (any, error) {
	return run(ctx, s, OpDeleteThread, c, func(ctx context.Context) (any, error) {
		if err := requireUser(c); err != nil {
			return nil, err
		}
		t, err := s.actInThread(c, req.ThreadToken, req.ThreadID, auth.AccessOwner)
		if err != nil {
			return nil, err
		}
		b, err := s.moderationBackend(OpDeleteThread)
		if err != nil {
			return nil, err
		}
		resp, err := b.DeleteThread(ctx, &ecbserver.DeleteThreadRequest{UserID: c.User.ID, ThreadID: t.ThreadID})
		if err != nil {
			return nil, err
		}
		if w := s.guards.Writer; w != nil {
			if err := w.SetThreadStatus(ctx, t.ThreadID, access.StatusDeleted); err != nil {
				s.log.Warn("could not record a deleted thread; the backend still refuses it", "thread", t.ThreadID, "err", err)
			}
		}
		p := threadChange(ThreadChangePush{ThreadID: t.ThreadID, Change: ChangeDeleted, By: c.User.ID})
		for _, m := range resp.Thread.Members {
			if _, err := s.hub.DetachUser(t.ThreadID, m); err != nil {
				s.log.Warn("detaching a member of a deleted thread on other nodes failed", "thread", t.ThreadID, "user", m, "err", err)
			}
			s.pushToUser(m, p, nil)
		}
		// Listeners that are not members (a monitoring supervisor).
		if _, err := s.hub.DetachThread(t.ThreadID, p); err != nil {
			return nil, hubError(err)
		}
		return struct{}{}, nil
	})
}

// SetAccessRequest is the payload of setAccess.
type SetAccessRequest struct {
	ThreadToken string `json:"threadToken"`
	ThreadID    string `json:"threadId,omitempty"`
	UserID      string `json:"userId"`
	Acc         *int   `json:"acc"`
	TTLSeconds  int    `json:"ttlSeconds,omitempty"`
}

// SetAccessResult is its answer.
type SetAccessResult struct {
	ThreadID  string     `json:"threadId"`
	UserID    string     `json:"userId"`
	Acc       int        `json:"acc"`
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
}

// SetAccess overrides another member's access in the thread, live, as the
// Server API's PUT .../access does (a moderator's one-hour ban is acc 0 with
// ttlSeconds 3600): the override replaces their threadToken's acc on every
// node at once. The caller needs the admin bit, may not grant a bit they do
// not hold, and may not change a member whose own bits exceed theirs (an
// admin cannot touch the owner): ECB asks the backend for the member's
// access with the core getThread call.
func (s *Service) SetAccess(ctx context.Context, c Caller, req SetAccessRequest) (*SetAccessResult, error) {
	return run(ctx, s, OpSetAccess, c, func(ctx context.Context) (*SetAccessResult, error) {
		if err := requireUser(c); err != nil {
			return nil, err
		}
		if err := checkID("userId", req.UserID); err != nil {
			return nil, err
		}
		switch {
		case req.Acc == nil:
			return nil, apierr.New(apierr.InvalidArgument, "acc is required: a sum of read=1 write=2 admin=4 owner=8, 0 for no access")
		case *req.Acc < 0 || *req.Acc > 15:
			return nil, apierr.New(apierr.InvalidArgument, "acc must be within 0..15")
		case req.TTLSeconds < 0 || req.TTLSeconds > int(MaxAccessTTL/time.Second):
			return nil, apierr.New(apierr.InvalidArgument, "ttlSeconds must be within 0..%d (0: until removed)", int(MaxAccessTTL/time.Second))
		case req.UserID == c.User.ID:
			return nil, apierr.New(apierr.InvalidArgument, "you cannot change your own access")
		}
		t, err := s.actInThread(c, req.ThreadToken, req.ThreadID, auth.AccessAdmin)
		if err != nil {
			return nil, err
		}
		mine := t.Access
		if mine.Has(auth.AccessOwner) {
			mine |= auth.AccessAdmin
		}
		acc := auth.Access(*req.Acc)
		if acc&^mine != 0 {
			return nil, apierr.New(apierr.Forbidden, "you cannot grant access bits you do not hold")
		}
		w, err := s.liveWriter()
		if err != nil {
			return nil, err
		}
		theirs, err := s.memberAccess(ctx, t.ThreadID, req.UserID)
		if err != nil {
			return nil, err
		}
		if theirs&^mine != 0 {
			return nil, apierr.New(apierr.Forbidden, "%q holds access bits you do not hold: you cannot change their access", req.UserID)
		}
		o, err := w.SetAccess(ctx, t.ThreadID, req.UserID, acc, time.Duration(req.TTLSeconds)*time.Second)
		if err != nil {
			if errors.Is(err, access.ErrFull) {
				return nil, apierr.Wrap(err, apierr.Unavailable, "too many live overrides on this deployment; try later")
			}
			return nil, hubError(err)
		}
		if _, err := s.ApplyAccess(t.ThreadID, req.UserID, &acc, o.ExpiresAt); err != nil {
			return nil, err
		}
		res := &SetAccessResult{ThreadID: t.ThreadID, UserID: req.UserID, Acc: int(acc)}
		if !o.ExpiresAt.IsZero() {
			e := o.ExpiresAt.UTC()
			res.ExpiresAt = &e
		}
		return res, nil
	})
}

// memberAccess asks the backend for userID's own access in threadID: the
// acc of the threadToken its getThread signs for them (limit 1). A user the
// backend refuses is no member: not_found.
func (s *Service) memberAccess(ctx context.Context, threadID, userID string) (auth.Access, error) {
	resp, err := s.backend.GetThread(ctx, &ecbserver.GetThreadRequest{UserID: userID, ThreadID: threadID, Limit: 1})
	if err != nil {
		if e := apierr.From(err); e.Code == apierr.Forbidden || e.Code == apierr.NotFound {
			return 0, apierr.Wrap(err, apierr.NotFound, strconv.Quote(userID)+" is not a member of this thread")
		}
		return 0, err
	}
	t, err := s.verifier.VerifyThread(resp.ThreadToken)
	if err != nil || t.ThreadID != threadID || t.UserID != userID {
		return 0, apierr.New(apierr.BackendError, "the backend signed a threadToken ECB cannot use")
	}
	return t.Access, nil
}
