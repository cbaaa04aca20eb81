package ops

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"time"

	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/callbacks"
	"github.com/ecbridge/ecb/internal/hub"
	"github.com/ecbridge/ecb/internal/support"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// Supervisor and transfer operations and pushes (docs/support.md).
const (
	OpSupportConversations = "support.conversations"
	OpSupportMonitor       = "support.monitor"
	OpSupportJoin          = "support.join"
	OpSupportTransfer      = "support.transfer"

	EventSupportTransferred = "supportTransferred"
)

// monitors records the support threads supervisors watch read-only
// (support.monitor). A record belongs to a connection (it ends with the
// connection, or with stopListening on it), but what the operations ask is
// per user and thread: a supervisor who monitors a thread on any connection
// may not act in it from any connection or transport (Socket.IO, a REST call
// with or without ECB-Stream), whatever the request names. watching is asked
// with the verified userToken's user and the verified threadToken's thread.
//
// mu guards both maps and is a leaf: nothing is called while it is held.
type monitors struct {
	mu     sync.Mutex
	byConn map[hub.Conn]*connMonitors
	byUser map[monitorKey]int // how many connections of the user monitor the thread
}

type monitorKey struct{ userID, threadID string }

type connMonitors struct {
	userID  string
	threads map[string]bool
}

// add records that c, a connection of userID, monitors threadID.
func (m *monitors) add(c hub.Conn, userID, threadID string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byConn == nil {
		m.byConn = map[hub.Conn]*connMonitors{}
		m.byUser = map[monitorKey]int{}
	}
	cm := m.byConn[c]
	if cm == nil {
		cm = &connMonitors{userID: userID, threads: map[string]bool{}}
		m.byConn[c] = cm
	}
	if !cm.threads[threadID] {
		cm.threads[threadID] = true
		m.byUser[monitorKey{cm.userID, threadID}]++
	}
}

// remove ends c's monitor of threadID, if any.
func (m *monitors) remove(c hub.Conn, threadID string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.removeLocked(c, threadID)
}

func (m *monitors) removeLocked(c hub.Conn, threadID string) {
	cm := m.byConn[c]
	if cm == nil || !cm.threads[threadID] {
		return
	}
	delete(cm.threads, threadID)
	if len(cm.threads) == 0 {
		delete(m.byConn, c)
	}
	k := monitorKey{cm.userID, threadID}
	if m.byUser[k]--; m.byUser[k] <= 0 {
		delete(m.byUser, k)
	}
}

// endUser ends every monitor of threadID by userID, on all their
// connections (the supervisor joined: they are a member now).
func (m *monitors) endUser(userID, threadID string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byUser[monitorKey{userID, threadID}] == 0 {
		return
	}
	for c, cm := range m.byConn {
		if cm.userID == userID {
			m.removeLocked(c, threadID)
		}
	}
}

// watching reports whether userID monitors threadID on any connection.
func (m *monitors) watching(userID, threadID string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.byUser[monitorKey{userID, threadID}] > 0
}

// forget ends every monitor of c (the connection ended).
func (m *monitors) forget(c hub.Conn) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cm := m.byConn[c]; cm != nil {
		for th := range cm.threads {
			m.removeLocked(c, th)
		}
	}
}

// requireSupervisor admits users with the supervisor role whose userToken
// names workgroup.
func requireSupervisor(c Caller, workgroup string) error {
	if err := requireUser(c); err != nil {
		return err
	}
	if !c.User.HasRole("supervisor") {
		return apierr.New(apierr.Forbidden, "this operation is for supervisors (role supervisor)")
	}
	if !slices.Contains(c.User.Workgroups, workgroup) {
		return apierr.New(apierr.Forbidden, "you do not supervise workgroup %q", workgroup)
	}
	return nil
}

// supervisedChat returns the chat requestID after checking that the caller
// supervises its workgroup.
func (s *Service) supervisedChat(c Caller, requestID string) (support.Request, error) {
	if err := requireUser(c); err != nil {
		return support.Request{}, err
	}
	e, err := s.requireSupport()
	if err != nil {
		return support.Request{}, err
	}
	if requestID == "" || len(requestID) > maxIDBytes {
		return support.Request{}, apierr.New(apierr.InvalidArgument, "requestId is required (at most %d bytes)", maxIDBytes)
	}
	r, ok := e.Request(requestID)
	if !ok {
		return support.Request{}, apierr.New(apierr.NotFound, "no active request %q", requestID)
	}
	if err := requireSupervisor(c, r.Workgroup); err != nil {
		return support.Request{}, err
	}
	if r.State != support.StateChat || r.ThreadID == "" {
		return support.Request{}, apierr.New(apierr.Conflict, "request %q has no chat", requestID)
	}
	return r, nil
}

// ConversationsRequest is the payload of support.conversations.
type ConversationsRequest struct {
	Workgroup string `json:"workgroup"`
}

// Conversation is a live chat as a supervisor sees it.
type Conversation struct {
	RequestID   string       `json:"requestId"`
	Workgroup   string       `json:"workgroup"`
	State       string       `json:"state"` // pending or chat
	Visitor     OfferVisitor `json:"visitor"`
	Question    string       `json:"question"`
	Agents      []string     `json:"agents"`
	Supervisors []string     `json:"supervisors"`
	ThreadID    string       `json:"threadId,omitempty"`
	OperationID string       `json:"operationId,omitempty"` // the visitor's, from support.ask
	Since       time.Time    `json:"since"`
}

// ConversationsResult is the answer of support.conversations.
type ConversationsResult struct {
	Conversations []Conversation `json:"conversations"`
}

// SupportConversations lists the live chats of a workgroup the caller supervises.
func (s *Service) SupportConversations(ctx context.Context, c Caller, req ConversationsRequest) (*ConversationsResult, error) {
	supervisor := func(c Caller) error { return requireSupervisor(c, req.Workgroup) }
	return supportRun(ctx, s, OpSupportConversations, c, supervisor, func(ctx context.Context, e SupportEngine) (*ConversationsResult, error) {
		rs, err := e.Conversations(req.Workgroup)
		if err != nil {
			return nil, SupportError(err)
		}
		res := &ConversationsResult{Conversations: []Conversation{}}
		for _, r := range rs {
			res.Conversations = append(res.Conversations, ConversationOf(r))
		}
		return res, nil
	})
}

// ConversationOf is a live chat as supervisors and the Server API show it.
func ConversationOf(r support.Request) Conversation {
	since := r.ChatSince
	if since.IsZero() {
		since = r.CreatedAt
	}
	cv := Conversation{RequestID: r.ID, Workgroup: r.Workgroup, State: string(r.State),
		Visitor:  OfferVisitor{ID: r.VisitorID, Name: r.VisitorName, Anonymous: r.Anonymous},
		Question: r.Question, Agents: append([]string{r.AgentID}, r.Conference...), Supervisors: r.Supervisors,
		ThreadID: r.ThreadID, OperationID: r.OperationID, Since: since}
	if cv.Supervisors == nil {
		cv.Supervisors = []string{}
	}
	return cv
}

// MonitorRequest is the payload of support.monitor. A supervisor who
// monitored the chat before (a previous connection) gives the last position
// they processed: what was pushed since is pushed again, as resume does.
type MonitorRequest struct {
	RequestID string `json:"requestId"`
	Epoch     string `json:"epoch,omitempty"`
	Offset    uint64 `json:"offset,omitempty"`
}

// MonitorResult is the answer of support.monitor: the thread the connection
// now listens to, and its position at that moment. With a position in the
// request, Recovered tells whether every push since it came again first
// (Missed of them); when not, the pushes in between are lost to this monitor.
type MonitorResult struct {
	RequestID string `json:"requestId"`
	ThreadID  string `json:"threadId"`
	Epoch     string `json:"epoch"`
	Offset    uint64 `json:"offset"`
	Recovered bool   `json:"recovered,omitempty"`
	Missed    int    `json:"missed,omitempty"`
}

// SupportMonitor attaches the caller's connection to a chat's thread
// read-only: it receives the thread's pushes, whispers included, and while
// it does, the caller may not act in the thread (actInThread), on any
// connection or transport.
func (s *Service) SupportMonitor(ctx context.Context, c Caller, req MonitorRequest) (*MonitorResult, error) {
	return run(ctx, s, OpSupportMonitor, c, func(ctx context.Context) (*MonitorResult, error) {
		r, err := s.supervisedChat(c, req.RequestID)
		if err != nil {
			return nil, err
		}
		if c.Conn == nil {
			return nil, apierr.New(apierr.InvalidArgument, "monitoring is pushed: use Socket.IO or name your event stream (ECB-Stream)")
		}
		if len(req.Epoch) > maxIDBytes {
			return nil, apierr.New(apierr.InvalidArgument, "epoch exceeds %d bytes", maxIDBytes)
		}
		s.monitors.add(c.Conn, c.User.ID, r.ThreadID)
		res := &MonitorResult{RequestID: r.ID, ThreadID: r.ThreadID}
		var pos hub.Position
		if req.Epoch != "" {
			res.Missed, res.Recovered, pos, err = s.hub.Resume(ctx, r.ThreadID, c.Conn, hub.Position{Epoch: req.Epoch, Offset: req.Offset})
		} else {
			pos, err = s.hub.Attach(ctx, r.ThreadID, c.Conn)
		}
		if err != nil {
			s.monitors.remove(c.Conn, r.ThreadID)
			return nil, hubError(err)
		}
		res.Epoch, res.Offset = pos.Epoch, pos.Offset
		return res, nil
	})
}

// JoinResult is the answer of support.join.
type JoinResult struct {
	RequestID   string           `json:"requestId"`
	Thread      ecbserver.Thread `json:"thread"`
	ThreadToken string           `json:"threadToken"`
}

// SupportJoin makes the caller (a supervisor of the chat's workgroup) a
// member of its thread, added by the backend on behalf of the agent who
// created it; from then on they may write.
func (s *Service) SupportJoin(ctx context.Context, c Caller, req SupportRequestRef) (*JoinResult, error) {
	return run(ctx, s, OpSupportJoin, c, func(ctx context.Context) (*JoinResult, error) {
		r, err := s.supervisedChat(c, req.RequestID)
		if err != nil {
			return nil, err
		}
		th, tok, err := s.addToSupportThread(ctx, r, c.User.ID)
		if err != nil {
			return nil, err
		}
		s.support.NoteSupervisor(r.ID, c.User.ID) // callback participant.joined
		s.monitors.endUser(c.User.ID, r.ThreadID) // a member now, on every connection
		if c.Conn != nil {
			// The backend made the caller a member: a connection that has
			// ended (or a broker that cannot be reached) only means no
			// pushes here; getThread attaches again.
			if _, err := s.hub.Attach(ctx, r.ThreadID, c.Conn); err != nil {
				s.log.Info("support.join: the connection does not listen", "thread", r.ThreadID, "err", err)
			}
		}
		return &JoinResult{RequestID: r.ID, Thread: th, ThreadToken: tok}, nil
	})
}

// addToSupportThread adds userID to r's thread on behalf of the agent who
// created it, tells the listeners, and returns the thread and userID's
// threadToken.
func (s *Service) addToSupportThread(ctx context.Context, r support.Request, userID string) (ecbserver.Thread, string, error) {
	owner := r.ThreadOwner
	if owner == "" {
		owner = r.AgentID
	}
	resp, err := s.backend.AddParticipants(ctx, &ecbserver.AddParticipantsRequest{UserID: owner, ThreadID: r.ThreadID, Participants: []string{userID}})
	if err != nil {
		return ecbserver.Thread{}, "", err
	}
	s.noteThreads(resp.Thread)
	for _, u := range resp.Added {
		if err := s.publishMember(ctx, r.ThreadID, u, "joined", ""); err != nil {
			return ecbserver.Thread{}, "", err
		}
	}
	got, err := s.backend.GetThread(ctx, &ecbserver.GetThreadRequest{UserID: userID, ThreadID: r.ThreadID, Limit: 1})
	if err != nil {
		return ecbserver.Thread{}, "", err
	}
	return got.Thread, got.ThreadToken, nil
}

// JoinSupportThread adds an agent to an existing support thread (a transfer,
// or a chat put back in the queue and accepted again).
func (st supportThreads) JoinSupportThread(ctx context.Context, r support.Request, agentID string) (support.SupportThread, error) {
	th, tok, err := st.s.addToSupportThread(ctx, r, agentID)
	if err != nil {
		return support.SupportThread{}, err
	}
	return support.SupportThread{ThreadID: th.ID, Thread: th, AgentToken: tok}, nil
}

// TransferRequest is the payload of support.transfer.
type TransferRequest struct {
	RequestID string `json:"requestId"`
	ToAgent   string `json:"toAgent,omitempty"` // "": back to the queue
}

// TransferResult is its answer.
type TransferResult struct {
	RequestID string `json:"requestId"`
	ToAgent   string `json:"toAgent,omitempty"`
	Queued    bool   `json:"queued,omitempty"`
}

// SupportTransfer hands a chat to another agent of the workgroup (who gets an
// invitation) or back to the queue. The caller is the chat's agent, or a
// supervisor of its workgroup.
func (s *Service) SupportTransfer(ctx context.Context, c Caller, req TransferRequest) (*TransferResult, error) {
	return supportRun(ctx, s, OpSupportTransfer, c, requireUser, func(ctx context.Context, e SupportEngine) (*TransferResult, error) {
		if len(req.ToAgent) > maxIDBytes {
			return nil, apierr.New(apierr.InvalidArgument, "toAgent exceeds %d bytes", maxIDBytes)
		}
		from, err := s.chatHolder(e, c, req.RequestID)
		if err != nil {
			return nil, err
		}
		if _, err := e.Transfer(ctx, from, req.RequestID, req.ToAgent); err != nil {
			return nil, SupportError(err)
		}
		return &TransferResult{RequestID: req.RequestID, ToAgent: req.ToAgent, Queued: req.ToAgent == ""}, nil
	})
}

// SupportTransferredPush tells the visitor and the previous agent that a
// chat changed hands: to another agent, back to the queue (no ToAgent), or,
// to the visitor only, from the queue to the agent who accepted it again
// (no FromAgent).
type SupportTransferredPush struct {
	RequestID string `json:"requestId"`
	FromAgent string `json:"fromAgent,omitempty"` // "": taken from the queue
	ToAgent   string `json:"toAgent,omitempty"`   // "": back to the queue
}

func (ev supportEvents) Transferred(r support.Request, fromAgent, toAgent string) {
	data := map[string]any{"fromAgent": fromAgent, "toAgent": toAgent}
	if toAgent == "" {
		data = map[string]any{"fromAgent": fromAgent, "queued": true}
	}
	ev.s.callback(r, callbacks.TypeConversationTransferred, fromAgent, data)
	b, err := json.Marshal(SupportTransferredPush{RequestID: r.ID, FromAgent: fromAgent, ToAgent: toAgent})
	if err != nil {
		return
	}
	p := &hub.Push{Event: EventSupportTransferred, Data: b, At: time.Now()}
	ev.s.pushToUser(r.VisitorID, p, nil)
	ev.s.pushToUser(fromAgent, p, nil)
}
