package ops

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/auth"
	"github.com/ecbridge/ecb/internal/hub"
	"github.com/ecbridge/ecb/internal/periodic"
	"github.com/ecbridge/ecb/internal/presence"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// Live-feature operation and push names.
const (
	OpSetPresence     = "setPresence"
	OpGetPresence     = "getPresence"
	OpTyping          = "typing"
	OpMarkRead        = "markRead"
	OpAddParticipants = "addParticipants"
	OpLeaveThread     = "leaveThread"
	OpResume          = "resume"

	EventTyping = "typing"
	EventRead   = "read"
	EventMember = "member"
)

// live holds the state of the live features: the presence service, typing
// timers and limiters, and the clientMessageId dedupe window.
type live struct {
	presence *presence.Service

	mu       sync.Mutex
	typing   map[typingKey]*time.Timer
	limiters map[string]*limiterEntry
	dedupe   map[dedupeKey]*dedupeEntry
}

type typingKey struct{ threadID, userID string }

type limiterEntry struct {
	l    *rate.Limiter
	used time.Time
}

type dedupeKey struct{ userID, threadID, clientMessageID string }

// dedupeEntry is the outcome of a sendMessage with a clientMessageId; done is
// closed when res or err is set, so that a concurrent retry waits for the
// first attempt instead of storing twice.
type dedupeEntry struct {
	done    chan struct{}
	res     *SendMessageResult
	err     error
	expires time.Time
}

func newLive() *live {
	return &live{
		presence: presence.New(),
		typing:   map[typingKey]*time.Timer{},
		limiters: map[string]*limiterEntry{},
		dedupe:   map[dedupeKey]*dedupeEntry{},
	}
}

// Presence returns the presence service, which the hub must be built to
// observe (hub.Config.Observer).
func (s *Service) Presence() *presence.Service { return s.live.presence }

// Run expires the typing limiters and the dedupe entries until ctx is done.
func (s *Service) Run(ctx context.Context) {
	periodic.Run(ctx, time.Minute, s.sweep)
}

func (s *Service) sweep(now time.Time) {
	l := s.live
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, e := range l.limiters {
		if now.Sub(e.used) > time.Minute {
			delete(l.limiters, k)
		}
	}
	for k, e := range l.dedupe {
		if !e.expires.IsZero() && now.After(e.expires) {
			delete(l.dedupe, k)
		}
	}
}

// SetPresenceRequest is the payload of setPresence.
type SetPresenceRequest struct {
	Show   string `json:"show"`
	Status string `json:"status,omitempty"`
}

// SetPresence sets the show and status of the caller's connection; the
// user's presence (the most available of their connections) is pushed to
// those who may see it when it changes.
func (s *Service) SetPresence(ctx context.Context, c Caller, req SetPresenceRequest) (*presence.Presence, error) {
	return run(ctx, s, OpSetPresence, c, func(ctx context.Context) (*presence.Presence, error) {
		if err := requireUser(c); err != nil {
			return nil, err
		}
		if c.Conn == nil {
			return nil, apierr.New(apierr.InvalidArgument, "presence belongs to a connection: use Socket.IO or name your event stream (ECB-Stream)")
		}
		if !presence.Valid(req.Show) {
			return nil, apierr.New(apierr.InvalidArgument, "show must be one of available, away, dnd, xa, chat")
		}
		if len(req.Status) > 256 {
			return nil, apierr.New(apierr.InvalidArgument, "status exceeds 256 bytes")
		}
		p := s.live.presence.Set(ctx, c.Conn, req.Show, req.Status)
		return &p, nil
	})
}

// GetPresenceRequest is the payload of getPresence.
type GetPresenceRequest struct {
	UserIDs []string `json:"userIds"`
}

// GetPresenceResult is its answer.
type GetPresenceResult struct {
	Presence []presence.Presence `json:"presence"`
}

// GetPresence answers for users the caller may see (contacts, members of a
// shared thread) and refuses the request when it names anyone else.
func (s *Service) GetPresence(ctx context.Context, c Caller, req GetPresenceRequest) (*GetPresenceResult, error) {
	return run(ctx, s, OpGetPresence, c, func(ctx context.Context) (*GetPresenceResult, error) {
		if err := requireUser(c); err != nil {
			return nil, err
		}
		if len(req.UserIDs) == 0 || len(req.UserIDs) > s.cfg.MaxPageSize {
			return nil, apierr.New(apierr.InvalidArgument, "userIds must name 1 to %d users", s.cfg.MaxPageSize)
		}
		for _, id := range req.UserIDs {
			if !s.live.presence.MaySee(c.User.ID, id) {
				return nil, apierr.New(apierr.Forbidden, "you may not see the presence of %q: not a contact, no shared thread", id)
			}
		}
		ps, err := s.live.presence.Get(ctx, req.UserIDs)
		if err != nil {
			return nil, hubError(err)
		}
		return &GetPresenceResult{Presence: ps}, nil
	})
}

// TypingRequest is the payload of typing.
type TypingRequest struct {
	ThreadToken string `json:"threadToken"`
	ThreadID    string `json:"threadId,omitempty"` // optional; when given it must be the token's thread
	State       string `json:"state"`
}

// TypingPush is the payload of a typing push.
type TypingPush struct {
	ThreadID string `json:"threadId"`
	UserID   string `json:"userId"`
	State    string `json:"state"`
}

// Typing tells the thread's other listeners that the caller starts or stops
// typing. It is never stored; a start not refreshed within
// operations.typingTimeout ends by itself with a stop push.
func (s *Service) Typing(ctx context.Context, c Caller, req TypingRequest) (any, error) {
	return run(ctx, s, OpTyping, c, func(ctx context.Context) (any, error) {
		if err := requireThreadCaller(c); err != nil {
			return nil, err
		}
		if req.State != "start" && req.State != "stop" {
			return nil, apierr.New(apierr.InvalidArgument, "state must be start or stop")
		}
		t, err := s.actInThread(c, req.ThreadToken, req.ThreadID, auth.AccessWrite)
		if err != nil {
			return nil, err
		}
		s.traceThread(ctx, t.ThreadID)
		if !s.allowTyping(c.User.ID) {
			return nil, &apierr.Error{Code: apierr.RateLimited, Message: "too many typing notifications", RetryAfter: time.Second}
		}
		key := typingKey{t.ThreadID, c.User.ID}
		s.live.mu.Lock()
		if timer := s.live.typing[key]; timer != nil {
			timer.Stop()
			delete(s.live.typing, key)
		}
		if req.State == "start" {
			s.live.typing[key] = time.AfterFunc(s.cfg.TypingTimeout, func() {
				s.live.mu.Lock()
				delete(s.live.typing, key)
				s.live.mu.Unlock()
				s.broadcastTyping(key, "stop", c.Conn)
			})
		}
		s.live.mu.Unlock()
		s.broadcastTyping(key, req.State, c.Conn)
		return struct{}{}, nil
	})
}

func (s *Service) allowTyping(userID string) bool {
	s.live.mu.Lock()
	defer s.live.mu.Unlock()
	e := s.live.limiters[userID]
	if e == nil {
		e = &limiterEntry{l: rate.NewLimiter(rate.Limit(s.cfg.TypingPerSecond), s.cfg.TypingPerSecond*2)}
		s.live.limiters[userID] = e
	}
	e.used = time.Now()
	return e.l.Allow()
}

func (s *Service) broadcastTyping(k typingKey, state string, skip hub.Conn) {
	data, _ := json.Marshal(TypingPush{ThreadID: k.threadID, UserID: k.userID, State: state})
	_ = s.hub.Broadcast(k.threadID, &hub.Push{Event: EventTyping, ThreadID: k.threadID, Data: data, At: time.Now()}, skip) // typing is best effort
}

// MarkReadRequest is the payload of markRead.
type MarkReadRequest struct {
	ThreadToken string `json:"threadToken"`
	ThreadID    string `json:"threadId,omitempty"` // optional; when given it must be the token's thread
	MessageID   string `json:"messageId"`
}

// ReadPush is the payload of a read push.
type ReadPush struct {
	ThreadID  string `json:"threadId"`
	UserID    string `json:"userId"`
	MessageID string `json:"messageId"`
	Epoch     string `json:"epoch,omitempty"`  // on the wire beside the payload (hub.Push.Payload)
	Offset    uint64 `json:"offset,omitempty"` // likewise
}

// MarkReadResult is its answer.
type MarkReadResult struct {
	Unread *int `json:"unread,omitempty"`
	// MessageID is the read mark now: the message asked, or a later one
	// when the mark was already past it (then nothing is pushed).
	MessageID string `json:"messageId,omitempty"`
	// Epoch and Offset are the position the read push took (absent when
	// nothing was pushed).
	Epoch  string `json:"epoch,omitempty"`
	Offset uint64 `json:"offset,omitempty"`
}

// MarkRead forwards a read mark to the backend, then pushes it to the
// thread's listeners (part of the thread's history, with an offset).
func (s *Service) MarkRead(ctx context.Context, c Caller, req MarkReadRequest) (*MarkReadResult, error) {
	return run(ctx, s, OpMarkRead, c, func(ctx context.Context) (*MarkReadResult, error) {
		if err := requireThreadCaller(c); err != nil {
			return nil, err
		}
		if req.MessageID == "" {
			return nil, apierr.New(apierr.InvalidArgument, "messageId is required")
		}
		t, err := s.actInThread(c, req.ThreadToken, req.ThreadID, auth.AccessRead)
		if err != nil {
			return nil, err
		}
		s.traceThread(ctx, t.ThreadID)
		resp, err := s.backend.MarkRead(ctx, &ecbserver.MarkReadRequest{UserID: c.User.ID, ThreadID: t.ThreadID, MessageID: req.MessageID})
		if err != nil {
			return nil, err
		}
		if resp.MessageID != "" && resp.MessageID != req.MessageID {
			// The mark was already past this message: nothing changed, and a
			// push would make read receipts go backwards.
			return &MarkReadResult{Unread: resp.Unread, MessageID: resp.MessageID}, nil
		}
		data, err := json.Marshal(ReadPush{ThreadID: t.ThreadID, UserID: c.User.ID, MessageID: req.MessageID})
		if err != nil {
			return nil, err
		}
		push, err := s.hub.Publish(ctx, t.ThreadID, &hub.Push{Event: EventRead, Data: data}, c.Conn)
		if err != nil {
			return nil, hubError(err)
		}
		// The reader's connection does not get the push: the answer tells it
		// the offset the mark took, so its next push is not a false gap.
		return &MarkReadResult{Unread: resp.Unread, MessageID: req.MessageID, Epoch: push.Epoch, Offset: push.Offset}, nil
	})
}

// MemberPush is the payload of a member push.
type MemberPush struct {
	ThreadID string `json:"threadId"`
	UserID   string `json:"userId"`
	Change   string `json:"change"`           // joined, left or removed
	By       string `json:"by,omitempty"`     // the moderator who removed them
	Epoch    string `json:"epoch,omitempty"`  // on the wire beside the payload (hub.Push.Payload)
	Offset   uint64 `json:"offset,omitempty"` // likewise
}

func (s *Service) publishMember(ctx context.Context, threadID, userID, change, by string) error {
	data, err := json.Marshal(MemberPush{ThreadID: threadID, UserID: userID, Change: change, By: by})
	if err != nil {
		return err
	}
	_, err = s.hub.Publish(ctx, threadID, &hub.Push{Event: EventMember, Data: data}, nil)
	return hubError(err)
}

// AddParticipantsRequest is the payload of addParticipants.
type AddParticipantsRequest struct {
	ThreadToken  string   `json:"threadToken"`
	ThreadID     string   `json:"threadId,omitempty"` // optional; when given it must be the token's thread
	Participants []string `json:"participants"`
}

// AddParticipantsResult is its answer.
type AddParticipantsResult struct {
	Thread      ecbserver.Thread `json:"thread"`
	ThreadToken string           `json:"threadToken"`
	Added       []string         `json:"added"`
}

// AddParticipants adds members to a group thread (the caller needs the admin
// or owner bit): the listeners get a member push per new member, and the new
// members' connections a thread push (change "added").
func (s *Service) AddParticipants(ctx context.Context, c Caller, req AddParticipantsRequest) (*AddParticipantsResult, error) {
	return run(ctx, s, OpAddParticipants, c, func(ctx context.Context) (*AddParticipantsResult, error) {
		if err := requireUser(c); err != nil {
			return nil, err
		}
		participants, err := s.validateParticipants(c.User.ID, req.Participants)
		if err != nil {
			return nil, err
		}
		// Adding members needs the admin (or owner) bit.
		t, err := s.actInThread(c, req.ThreadToken, req.ThreadID, auth.AccessAdmin)
		if err != nil {
			return nil, err
		}
		s.traceThread(ctx, t.ThreadID)
		resp, err := s.backend.AddParticipants(ctx, &ecbserver.AddParticipantsRequest{UserID: c.User.ID, ThreadID: t.ThreadID, Participants: participants})
		if err != nil {
			return nil, err
		}
		s.live.presence.NoteThread(resp.Thread.ID, resp.Thread.Members)
		if resp.Added == nil {
			resp.Added = []string{}
		}
		s.liftRemoval(ctx, t.ThreadID, resp.Added) // added back by a moderator
		for _, u := range resp.Added {
			if err := s.publishMember(ctx, t.ThreadID, u, "joined", ""); err != nil {
				return nil, err
			}
		}
		data, err := json.Marshal(threadPush{ThreadID: t.ThreadID, Change: "added", Thread: &resp.Thread})
		if err != nil {
			return nil, err
		}
		s.pushToUsers(resp.Added, &hub.Push{Event: EventThread, Data: data, At: time.Now()}, nil)
		return &AddParticipantsResult{Thread: resp.Thread, ThreadToken: resp.ThreadToken, Added: resp.Added}, nil
	})
}

// LeaveThreadRequest is the payload of leaveThread.
type LeaveThreadRequest struct {
	ThreadToken string `json:"threadToken"`
	ThreadID    string `json:"threadId,omitempty"` // optional; when given it must be the token's thread
}

// LeaveThread removes the caller from a thread: the backend first, then every
// connection of the caller on this node stops listening to it at once (and is
// told with a thread push, change "left"), and the remaining listeners get a
// member push.
func (s *Service) LeaveThread(ctx context.Context, c Caller, req LeaveThreadRequest) (any, error) {
	return run(ctx, s, OpLeaveThread, c, func(ctx context.Context) (any, error) {
		if err := requireUser(c); err != nil {
			return nil, err
		}
		t, err := s.actInThread(c, req.ThreadToken, req.ThreadID, 0)
		if err != nil {
			return nil, err
		}
		s.traceThread(ctx, t.ThreadID)
		if err := s.leaveThreadAs(ctx, c.User.ID, t.ThreadID, c.Conn); err != nil {
			return nil, err
		}
		return struct{}{}, nil
	})
}

// leaveThreadAs takes userID out of threadID through the backend: their
// connections stop listening, their other connections (not except) get
// thread {change: "left"}, and the remaining listeners member left.
func (s *Service) leaveThreadAs(ctx context.Context, userID, threadID string, except hub.Conn) error {
	resp, err := s.backend.LeaveThread(ctx, &ecbserver.LeaveThreadRequest{UserID: userID, ThreadID: threadID})
	if err != nil {
		return err
	}
	s.live.presence.NoteThread(threadID, resp.Thread.Members)
	if _, err := s.hub.DetachUser(threadID, userID); err != nil {
		return hubError(err)
	}
	data, err := json.Marshal(threadPush{ThreadID: threadID, Change: "left"})
	if err != nil {
		return err
	}
	s.pushToUser(userID, &hub.Push{Event: EventThread, Data: data, At: time.Now()}, except)
	return s.publishMember(ctx, threadID, userID, "left", "")
}

// ResumeRequest is the payload of resume: for each thread the client showed,
// its newest threadToken and the last position it processed.
type ResumeRequest struct {
	Threads []ResumeThread `json:"threads"`
}

// ResumeThread is one thread of a resume request.
type ResumeThread struct {
	ThreadToken string `json:"threadToken"`
	Epoch       string `json:"epoch"`
	Offset      uint64 `json:"offset"`
}

// ResumeResult is its answer, one entry per requested thread, in order.
type ResumeResult struct {
	Threads []ResumedThread `json:"threads"`
}

// ResumedThread tells whether a thread's missed pushes follow (recovered)
// or the client must re-fetch it with getThread.
type ResumedThread struct {
	ThreadID  string `json:"threadId"`
	Recovered bool   `json:"recovered"`
	Missed    int    `json:"missed"`
	Epoch     string `json:"epoch"`
	Offset    uint64 `json:"offset"`
}

// Resume re-attaches a reconnected connection to its threads and delivers,
// before any later push, the pushes it missed — or says recovered: false when
// they are gone (another epoch, an offset from the future, a gap older than
// the kept history).
func (s *Service) Resume(ctx context.Context, c Caller, req ResumeRequest) (*ResumeResult, error) {
	return run(ctx, s, OpResume, c, func(ctx context.Context) (*ResumeResult, error) {
		// Visitors too: a whisper leaves a gap in the offsets they see, and a
		// resume across it is how a client learns that it missed nothing.
		if err := requireThreadCaller(c); err != nil {
			return nil, err
		}
		if c.Conn == nil {
			return nil, apierr.New(apierr.InvalidArgument, "resume needs a connection: use Socket.IO or name your event stream (ECB-Stream)")
		}
		if len(req.Threads) == 0 || len(req.Threads) > s.cfg.MaxThreadsPerConnection {
			return nil, apierr.New(apierr.InvalidArgument, "threads must list 1 to %d threads", s.cfg.MaxThreadsPerConnection)
		}
		// Verify every token first: a request naming a thread the caller may
		// not read changes nothing.
		verified := make([]*auth.Thread, len(req.Threads))
		for i, rt := range req.Threads {
			t, err := s.verifyThread(c, rt.ThreadToken, "", auth.AccessRead)
			if err != nil {
				return nil, err
			}
			verified[i] = t
		}
		res := &ResumeResult{Threads: make([]ResumedThread, 0, len(req.Threads))}
		for i, rt := range req.Threads {
			id := verified[i].ThreadID
			missed, ok, now, err := s.hub.Resume(ctx, id, c.Conn, hub.Position{Epoch: rt.Epoch, Offset: rt.Offset})
			if err != nil {
				return nil, hubError(err)
			}
			if err := s.stillListening(c, id); err != nil {
				// A ban that raced with this resume wins.
				s.hub.Detach(id, c.Conn)
				return nil, err
			}
			res.Threads = append(res.Threads, ResumedThread{ThreadID: id, Recovered: ok, Missed: missed, Epoch: now.Epoch, Offset: now.Offset})
		}
		return res, nil
	})
}

// Adopt makes c listen again to threads from the positions a stream had
// reached on another node (an SSE handoff, when that node shut down), as if
// it had gone on there: the threadTokens were verified when it first
// listened and are not asked again, but the live decisions are (a ban
// since then wins and the thread is left out). It reports whether every
// thread listens again with nothing missed.
func (s *Service) Adopt(ctx context.Context, c Caller, threads map[string]hub.Position) bool {
	all := len(threads) <= s.cfg.MaxThreadsPerConnection
	n := 0
	for id, from := range threads {
		if n++; n > s.cfg.MaxThreadsPerConnection {
			break
		}
		if err := s.stillListening(c, id); err != nil {
			all = false
			continue
		}
		_, ok, _, err := s.hub.Resume(ctx, id, c.Conn, from)
		if err != nil {
			all = false
			continue
		}
		if err := s.stillListening(c, id); err != nil { // a ban that raced with it wins
			s.hub.Detach(id, c.Conn)
			ok = false
		}
		all = all && ok
	}
	return all
}

// dedupeBegin finds or starts the outcome of a sendMessage with a
// clientMessageId. When first is false, the caller waits on e.done and
// answers with e's outcome.
func (s *Service) dedupeBegin(k dedupeKey) (e *dedupeEntry, first bool) {
	s.live.mu.Lock()
	defer s.live.mu.Unlock()
	if e := s.live.dedupe[k]; e != nil && (e.expires.IsZero() || time.Now().Before(e.expires)) {
		return e, false
	}
	e = &dedupeEntry{done: make(chan struct{})}
	if len(s.live.dedupe) < s.cfg.DedupeMaxEntries {
		s.live.dedupe[k] = e
	}
	return e, true
}

// dedupeEnd records the outcome; a failed attempt is forgotten, so that the
// retry it calls for reaches the backend again.
func (s *Service) dedupeEnd(k dedupeKey, e *dedupeEntry, res *SendMessageResult, err error) {
	s.live.mu.Lock()
	e.res, e.err = res, err
	if err != nil {
		if s.live.dedupe[k] == e {
			delete(s.live.dedupe, k)
		}
	} else {
		e.expires = time.Now().Add(s.cfg.DedupeWindow)
	}
	s.live.mu.Unlock()
	close(e.done)
}

// noteThreads feeds the presence visibility from what the backend returned.
func (s *Service) noteThreads(threads ...ecbserver.Thread) {
	for _, t := range threads {
		if len(t.Members) > 0 {
			s.live.presence.NoteThread(t.ID, slices.Clone(t.Members))
		}
	}
}
