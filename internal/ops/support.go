package ops

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/callbacks"
	"github.com/ecbridge/ecb/internal/hub"
	"github.com/ecbridge/ecb/internal/support"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// Customer-support operation and push names (docs/support.md).
const (
	OpGetWorkgroupStatus   = "getWorkgroupStatus"
	OpSupportAsk           = "support.ask"
	OpSupportCancel        = "support.cancel"
	OpSupportClose         = "support.close"
	OpAgentSetAvailability = "agent.setAvailability"
	OpOfferAccept          = "offer.accept"
	OpOfferReject          = "offer.reject"

	EventQueue        = "queue"
	EventOffer        = "offer"
	EventOfferRevoked = "offerRevoked"
	EventInvitation   = "invitation"
	EventSupportEnded = "supportEnded"
)

// Limits of the support payloads.
const (
	maxQuestionBytes  = 4096
	maxWorkgroupBytes = 128
	maxIDBytes        = 128
)

// SupportThreadCreator is the optional backend call the support operations
// need (internal/backend.Client implements it).
type SupportThreadCreator interface {
	CreateSupportThread(ctx context.Context, req *ecbserver.CreateSupportThreadRequest) (*ecbserver.CreateSupportThreadResponse, error)
}

// EnableSupport starts the customer-support routing for wgs; without it the
// support operations answer not_found. It must be called before the Service
// serves requests.
func (s *Service) EnableSupport(wgs []support.Workgroup, grace time.Duration) error {
	return s.enableSupport(wgs, support.Options{Grace: grace})
}

// enableSupport is EnableSupport with the engine's options (tests give a
// clock); the events and threads are the Service's.
func (s *Service) enableSupport(wgs []support.Workgroup, opts support.Options) error {
	opts.Events, opts.Threads = supportEvents{s}, supportThreads{s}
	e, err := support.New(wgs, opts)
	if err != nil {
		return err
	}
	s.support = e
	return nil
}

// Support returns the routing engine, nil when support is not enabled.
func (s *Service) Support() SupportEngine { return s.support }

func (s *Service) requireSupport() (SupportEngine, error) {
	if s.support == nil {
		return nil, apierr.New(apierr.NotFound, "customer support is not configured")
	}
	return s.support, nil
}

// requireUserOrVisitor admits any verified user, anonymous visitors included:
// the support operations are the ones anonymous visitors may use.
func requireUserOrVisitor(c Caller) error {
	if c.User == nil {
		return apierr.New(apierr.Unauthenticated, "a userToken is required")
	}
	return nil
}

// requireAgent admits users with the agent role only.
func requireAgent(c Caller) error {
	if err := requireUser(c); err != nil {
		return err
	}
	if !c.User.HasRole("agent") {
		return apierr.New(apierr.Forbidden, "this operation is for agents (role agent)")
	}
	return nil
}

// SupportError maps a refusal of the routing engine to the client-facing
// error code; other errors are returned as they are.
func SupportError(err error) error {
	var se *support.Error
	if !errors.As(err, &se) {
		return err
	}
	code, ok := map[support.Kind]apierr.Code{support.KindNotFound: apierr.NotFound, support.KindConflict: apierr.Conflict,
		support.KindForbidden: apierr.Forbidden, support.KindInvalid: apierr.InvalidArgument}[se.Kind]
	if !ok {
		return err
	}
	return apierr.Wrap(err, code, se.Msg)
}

func seconds(d time.Duration) int { return int((d + time.Second/2) / time.Second) }

// GetWorkgroupStatusRequest is the payload of getWorkgroupStatus.
type GetWorkgroupStatusRequest struct {
	Workgroup string `json:"workgroup"`
}

// WorkgroupStatus is its answer; EstimatedWait is in seconds. Open is now,
// opening hours included; OpensAt (closed) or ClosesAt (open) is the next
// change of the opening hours, set only when the workgroup has hours and is
// not switched off.
type WorkgroupStatus struct {
	Workgroup       string     `json:"workgroup"`
	DisplayName     string     `json:"displayName,omitempty"`
	Open            bool       `json:"open"`
	AgentsAvailable int        `json:"agentsAvailable"`
	QueueLength     int        `json:"queueLength"`
	EstimatedWait   int        `json:"estimatedWait"`
	OpensAt         *time.Time `json:"opensAt,omitempty"`
	ClosesAt        *time.Time `json:"closesAt,omitempty"`
	// Queues are the figures of each of the workgroup's queues, in their
	// order (absent when it has none; protocol 1.4).
	Queues []QueueFigures `json:"queues,omitempty"`
}

// QueueFigures are one queue's figures; EstimatedWait is in seconds (the
// wait of a request joining that queue now).
type QueueFigures struct {
	Queue           string `json:"queue"`
	AgentsAvailable int    `json:"agentsAvailable"`
	QueueLength     int    `json:"queueLength"`
	EstimatedWait   int    `json:"estimatedWait"`
}

// QueueFiguresOf converts the engine's queue statuses (nil for none).
func QueueFiguresOf(qs []support.QueueStatus) []QueueFigures {
	if len(qs) == 0 {
		return nil
	}
	out := make([]QueueFigures, len(qs))
	for i, q := range qs {
		out[i] = QueueFigures{Queue: q.Queue, AgentsAvailable: q.AgentsAvailable, QueueLength: q.QueueLength, EstimatedWait: seconds(q.EstimatedWait)}
	}
	return out
}

// GetWorkgroupStatus tells anyone (anonymous visitors included) whether a
// workgroup is open, how many agents are available and how long the queue is.
func (s *Service) GetWorkgroupStatus(ctx context.Context, c Caller, req GetWorkgroupStatusRequest) (*WorkgroupStatus, error) {
	return supportRun(ctx, s, OpGetWorkgroupStatus, c, requireUserOrVisitor, func(ctx context.Context, e SupportEngine) (*WorkgroupStatus, error) {
		if req.Workgroup == "" || len(req.Workgroup) > maxWorkgroupBytes {
			return nil, apierr.New(apierr.InvalidArgument, "workgroup is required (at most %d bytes)", maxWorkgroupBytes)
		}
		st, err := e.Status(req.Workgroup)
		if err != nil {
			return nil, SupportError(err)
		}
		at := func(t time.Time) *time.Time {
			if t.IsZero() {
				return nil
			}
			t = t.UTC()
			return &t
		}
		return &WorkgroupStatus{Workgroup: st.Workgroup, DisplayName: st.DisplayName, Open: st.Open,
			AgentsAvailable: st.AgentsAvailable, QueueLength: st.QueueLength, EstimatedWait: seconds(st.EstimatedWait),
			OpensAt: at(st.OpensAt), ClosesAt: at(st.ClosesAt), Queues: QueueFiguresOf(st.Queues)}, nil
	})
}

// SupportAskRequest is the payload of support.ask.
type SupportAskRequest struct {
	Workgroup   string          `json:"workgroup"`
	Question    string          `json:"question"`
	Metadata    json.RawMessage `json:"metadata,omitempty"` // a JSON object
	OperationID string          `json:"operationId,omitempty"`
}

// SupportAskResult is its answer; EstimatedWait is in seconds. Queue is
// the workgroup's queue the request landed in (absent when it has none);
// Position and EstimatedWait are within it.
type SupportAskResult struct {
	RequestID     string `json:"requestId"`
	Queue         string `json:"queue,omitempty"`
	Position      int    `json:"position"`
	EstimatedWait int    `json:"estimatedWait"`
}

// SupportAsk queues the caller's question in a workgroup (the visitor's
// Join). Queue pushes follow while it waits.
func (s *Service) SupportAsk(ctx context.Context, c Caller, req SupportAskRequest) (*SupportAskResult, error) {
	return supportRun(ctx, s, OpSupportAsk, c, requireUserOrVisitor, func(ctx context.Context, e SupportEngine) (*SupportAskResult, error) {
		meta, err := decodeMetadata(req, s.cfg.MaxDataBytes)
		if err != nil {
			return nil, err
		}
		v := support.Visitor{ID: c.User.ID, Name: c.User.Name, Anonymous: c.User.Anonymous}
		r, pos, est, err := e.Ask(v, req.Workgroup, req.Question, meta, req.OperationID)
		if err != nil {
			return nil, SupportError(err)
		}
		return &SupportAskResult{RequestID: r.ID, Queue: r.Queue, Position: pos, EstimatedWait: seconds(est)}, nil
	})
}

// decodeMetadata checks a support.ask payload and returns its metadata
// object (nil when absent). Errors are invalid_argument and never echo the input.
func decodeMetadata(req SupportAskRequest, maxBytes int) (map[string]any, error) {
	switch {
	case req.Workgroup == "" || len(req.Workgroup) > maxWorkgroupBytes:
		return nil, apierr.New(apierr.InvalidArgument, "workgroup is required (at most %d bytes)", maxWorkgroupBytes)
	case len(req.Question) > maxQuestionBytes:
		return nil, apierr.New(apierr.InvalidArgument, "question exceeds %d bytes", maxQuestionBytes)
	case len(req.OperationID) > maxIDBytes:
		return nil, apierr.New(apierr.InvalidArgument, "operationId exceeds %d bytes", maxIDBytes)
	case len(req.Metadata) > maxBytes:
		return nil, apierr.New(apierr.InvalidArgument, "metadata exceeds %d bytes", maxBytes)
	}
	if len(req.Metadata) == 0 || string(req.Metadata) == "null" {
		return nil, nil
	}
	var meta map[string]any
	if err := json.Unmarshal(req.Metadata, &meta); err != nil || meta == nil {
		return nil, apierr.New(apierr.InvalidArgument, "metadata must be a JSON object")
	}
	return meta, nil
}

// SupportRequestRef names a request (support.cancel, support.close).
type SupportRequestRef struct {
	RequestID string `json:"requestId"`
}

// SupportCancel withdraws the caller's waiting request (the visitor's Leave).
func (s *Service) SupportCancel(ctx context.Context, c Caller, req SupportRequestRef) (any, error) {
	return s.onRequest(ctx, OpSupportCancel, c, req, SupportEngine.Cancel)
}

// SupportClose ends a support chat (the visitor or the agent): the agent's
// slot is freed and both sides get supportEnded. The thread stays.
func (s *Service) SupportClose(ctx context.Context, c Caller, req SupportRequestRef) (any, error) {
	return s.onRequest(ctx, OpSupportClose, c, req, SupportEngine.Close)
}

// onRequest runs an engine action of the caller's on the request they name.
func (s *Service) onRequest(ctx context.Context, op string, c Caller, req SupportRequestRef, act func(e SupportEngine, userID, requestID string) error) (any, error) {
	return supportRun(ctx, s, op, c, requireUserOrVisitor, func(ctx context.Context, e SupportEngine) (any, error) {
		if req.RequestID == "" {
			return nil, apierr.New(apierr.InvalidArgument, "requestId is required")
		}
		if err := act(e, c.User.ID, req.RequestID); err != nil {
			return nil, SupportError(err)
		}
		return struct{}{}, nil
	})
}

// SetAvailabilityRequest is the payload of agent.setAvailability.
type SetAvailabilityRequest struct {
	Available bool `json:"available"`
	MaxChats  *int `json:"maxChats,omitempty"`
}

// AgentSetAvailability makes the caller (role agent) available or not in the
// workgroups of their userToken that ECB serves.
func (s *Service) AgentSetAvailability(ctx context.Context, c Caller, req SetAvailabilityRequest) (*support.AgentStatus, error) {
	return supportRun(ctx, s, OpAgentSetAvailability, c, requireAgent, func(ctx context.Context, e SupportEngine) (*support.AgentStatus, error) {
		if req.Available && c.Conn == nil {
			return nil, apierr.New(apierr.InvalidArgument, "offers are pushed: use Socket.IO or name your event stream (ECB-Stream)")
		}
		if req.MaxChats != nil && *req.MaxChats > 1000 {
			return nil, apierr.New(apierr.InvalidArgument, "maxChats must be at most 1000")
		}
		st, err := e.SetAvailability(c.User.ID, c.User.Workgroups, req.Available, req.MaxChats)
		if err != nil {
			return nil, SupportError(err)
		}
		return &st, nil
	})
}

// OfferRef names an offer (offer.accept, offer.reject).
type OfferRef struct {
	OfferID string `json:"offerId"`
}

// OfferAcceptResult is the answer of offer.accept: the support thread and
// the agent's threadToken (the invitation push carries the same).
type OfferAcceptResult struct {
	RequestID   string           `json:"requestId"`
	Thread      ecbserver.Thread `json:"thread"`
	ThreadToken string           `json:"threadToken"`
}

// OfferAccept takes an offer made to the caller: the backend creates the
// support thread and both sides get an invitation.
func (s *Service) OfferAccept(ctx context.Context, c Caller, req OfferRef) (*OfferAcceptResult, error) {
	return supportRun(ctx, s, OpOfferAccept, c, requireAgent, func(ctx context.Context, e SupportEngine) (*OfferAcceptResult, error) {
		if req.OfferID == "" {
			return nil, apierr.New(apierr.InvalidArgument, "offerId is required")
		}
		inv, err := e.Accept(ctx, c.User.ID, req.OfferID)
		if err != nil {
			return nil, SupportError(err)
		}
		th := threadOf(inv.Thread.Thread)
		return &OfferAcceptResult{RequestID: inv.Request.ID, Thread: th, ThreadToken: inv.Thread.AgentToken}, nil
	})
}

// OfferReject declines an offer made to the caller; it goes to the next agent.
func (s *Service) OfferReject(ctx context.Context, c Caller, req OfferRef) (any, error) {
	return supportRun(ctx, s, OpOfferReject, c, requireAgent, func(ctx context.Context, e SupportEngine) (any, error) {
		if req.OfferID == "" {
			return nil, apierr.New(apierr.InvalidArgument, "offerId is required")
		}
		if err := e.Reject(c.User.ID, req.OfferID); err != nil {
			return nil, SupportError(err)
		}
		return struct{}{}, nil
	})
}

// supportRun runs a support operation: the caller check allow, then f with
// the routing engine (not_found when support is not configured).
func supportRun[T any](ctx context.Context, s *Service, op string, c Caller, allow func(Caller) error, f func(ctx context.Context, e SupportEngine) (T, error)) (T, error) {
	return run(ctx, s, op, c, func(ctx context.Context) (T, error) {
		var zero T
		if err := allow(c); err != nil {
			return zero, err
		}
		e, err := s.requireSupport()
		if err != nil {
			return zero, err
		}
		return f(ctx, e)
	})
}

// callSupport runs the support operation named op; ok is false for any other name.
func (s *Service) callSupport(ctx context.Context, c Caller, op string, p json.RawMessage) (res any, ok bool, err error) {
	switch op {
	case OpGetWorkgroupStatus:
		res, err = call(ctx, c, p, s.GetWorkgroupStatus)
	case OpSupportAsk:
		res, err = call(ctx, c, p, s.SupportAsk)
	case OpSupportCancel:
		res, err = call(ctx, c, p, s.SupportCancel)
	case OpSupportClose:
		res, err = call(ctx, c, p, s.SupportClose)
	case OpAgentSetAvailability:
		res, err = call(ctx, c, p, s.AgentSetAvailability)
	case OpOfferAccept:
		res, err = call(ctx, c, p, s.OfferAccept)
	case OpOfferReject:
		res, err = call(ctx, c, p, s.OfferReject)
	case OpSupportConversations:
		res, err = call(ctx, c, p, s.SupportConversations)
	case OpSupportMonitor:
		res, err = call(ctx, c, p, s.SupportMonitor)
	case OpSupportJoin:
		res, err = call(ctx, c, p, s.SupportJoin)
	case OpSupportTransfer:
		res, err = call(ctx, c, p, s.SupportTransfer)
	case OpSupportInvite:
		res, err = call(ctx, c, p, s.SupportInvite)
	case OpSupportLeave:
		res, err = call(ctx, c, p, s.SupportLeave)
	default:
		return nil, false, nil
	}
	return res, true, err
}

// The pushes of the support operations.
type (
	// QueuePush tells a visitor where their request stands (seconds);
	// Queue is the workgroup's queue it waits in (absent when the
	// workgroup has none), the position within it.
	QueuePush struct {
		RequestID     string `json:"requestId"`
		Queue         string `json:"queue,omitempty"`
		Position      int    `json:"position"`
		EstimatedWait int    `json:"estimatedWait"`
	}
	// OfferPush offers a request to an agent.
	OfferPush struct {
		OfferID   string         `json:"offerId"`
		RequestID string         `json:"requestId"`
		Workgroup string         `json:"workgroup"`
		Queue     string         `json:"queue,omitempty"` // the request's queue, when the workgroup has queues
		Question  string         `json:"question"`
		Metadata  map[string]any `json:"metadata,omitempty"`
		Visitor   OfferVisitor   `json:"visitor"`
		ExpiresAt time.Time      `json:"expiresAt"`
	}
	// OfferVisitor is who asked.
	OfferVisitor struct {
		ID        string `json:"id"`
		Name      string `json:"name,omitempty"`
		Anonymous bool   `json:"anonymous,omitempty"`
	}
	// OfferRevokedPush withdraws an offer (reason: timeout, cancelled,
	// dropped, unavailable, failed).
	OfferRevokedPush struct {
		OfferID   string `json:"offerId"`
		RequestID string `json:"requestId"`
		Reason    string `json:"reason"`
	}
	// InvitationPush tells both sides that the support thread is ready;
	// Conference is set for an agent invited to a chat in progress.
	InvitationPush struct {
		RequestID   string           `json:"requestId"`
		Workgroup   string           `json:"workgroup"`
		Thread      ecbserver.Thread `json:"thread"`
		ThreadToken string           `json:"threadToken"`
		Visitor     OfferVisitor     `json:"visitor"`
		Question    string           `json:"question,omitempty"`
		Conference  bool             `json:"conference,omitempty"`
	}
	// SupportEndedPush tells that a request ended (cancelled, dropped, closed).
	SupportEndedPush struct {
		RequestID string `json:"requestId"`
		State     string `json:"state"`
	}
)

// supportEvents turns the engine's events into pushes to users and
// callbacks. The engine calls it after releasing its lock, one event at a
// time, in the order of its transitions; SendToUser and Post only enqueue.
// A push that cuts a slow connection comes back into the engine through the
// hub's observer (supportObserver), which is safe: no lock is held here.
type supportEvents struct{ s *Service }

// The optional event interfaces supportEvents hears, checked at compile time.
var (
	_ support.AskEvents        = supportEvents{}
	_ support.QueueEvents      = supportEvents{}
	_ support.RejectEvents     = supportEvents{}
	_ support.TransferEvents   = supportEvents{}
	_ support.ConferenceEvents = supportEvents{}
	_ support.ThreadJoiner     = supportThreads{}
)

func (ev supportEvents) send(userID, event string, v any) {
	ev.s.supportTouched()
	data, err := json.Marshal(v)
	if err != nil {
		ev.s.log.Error("support push", "event", event, "err", err)
		return
	}
	ev.s.pushToUser(userID, &hub.Push{Event: event, Data: data, At: time.Now()}, nil)
}

// threadOf returns the thread of an Invitation: the backend's, or its JSON
// form when the invitation crossed nodes or a restore.
func threadOf(v any) ecbserver.Thread {
	switch t := v.(type) {
	case ecbserver.Thread:
		return t
	case nil:
		return ecbserver.Thread{}
	}
	var th ecbserver.Thread
	if b, err := json.Marshal(v); err == nil {
		_ = json.Unmarshal(b, &th)
	}
	return th
}

// supportTouched tells the cluster's owner that the engine's state changed
// (an event came): it saves it.
func (s *Service) supportTouched() {
	if s.supportCluster != nil {
		s.supportCluster.touched()
	}
}

// Asked posts support.requested, first of the request's callbacks.
func (ev supportEvents) Asked(r support.Request) {
	ev.s.callback(r, callbacks.TypeSupportRequested, r.VisitorID, map[string]any{"question": r.Question, "metadata": r.Metadata})
}

func (ev supportEvents) Queue(visitorID, requestID string, position int, est time.Duration) {
	ev.send(visitorID, EventQueue, QueuePush{RequestID: requestID, Position: position, EstimatedWait: seconds(est)})
}

// QueueIn is Queue for a request in one of its workgroup's queues.
func (ev supportEvents) QueueIn(visitorID, requestID, queue string, position int, est time.Duration) {
	ev.send(visitorID, EventQueue, QueuePush{RequestID: requestID, Queue: queue, Position: position, EstimatedWait: seconds(est)})
}

func (ev supportEvents) Offer(o support.Offer) {
	r := o.Request
	ev.send(o.AgentID, EventOffer, OfferPush{OfferID: o.ID, RequestID: r.ID, Workgroup: r.Workgroup, Queue: r.Queue, Question: r.Question,
		Metadata: r.Metadata, Visitor: OfferVisitor{ID: r.VisitorID, Name: r.VisitorName, Anonymous: r.Anonymous}, ExpiresAt: o.ExpiresAt})
}

func (ev supportEvents) OfferRevoked(agentID, offerID string, r support.Request, reason string) {
	ev.s.callback(r, callbacks.TypeOfferRevoked, agentID, map[string]any{"offerId": offerID, "reason": reason})
	ev.send(agentID, EventOfferRevoked, OfferRevokedPush{OfferID: offerID, RequestID: r.ID, Reason: reason})
}

func (ev supportEvents) OfferRejected(agentID, offerID string, r support.Request) {
	ev.s.callback(r, callbacks.TypeOfferRejected, agentID, map[string]any{"offerId": offerID, "reason": "rejected"})
}

func (ev supportEvents) Invitation(inv support.Invitation, toVisitor, toAgent bool) {
	th := threadOf(inv.Thread.Thread)
	r := inv.Request
	push := InvitationPush{RequestID: r.ID, Workgroup: r.Workgroup, Thread: th, Question: r.Question,
		Visitor: OfferVisitor{ID: r.VisitorID, Name: r.VisitorName, Anonymous: r.Anonymous}}
	if toAgent {
		// Noted (on every node, in cluster mode) before anyone gets the
		// thread's token: its first message is a support chat's.
		r.ThreadID = th.ID
		ev.s.noteSupportThread(r)
	}
	if toVisitor {
		push.ThreadToken = inv.Thread.VisitorToken
		ev.send(r.VisitorID, EventInvitation, push)
	}
	if toAgent {
		if !inv.Transfer && !inv.Conference {
			ev.s.callback(r, callbacks.TypeOfferAccepted, inv.AgentID, nil)
		}
		push.ThreadToken, push.Conference = inv.Thread.AgentToken, inv.Conference
		ev.send(inv.AgentID, EventInvitation, push)
	}
	if inv.Requeued {
		// The visitor, in the thread already, learns who took the chat.
		ev.send(r.VisitorID, EventSupportTransferred, SupportTransferredPush{RequestID: r.ID, ToAgent: inv.AgentID})
	}
}

func (ev supportEvents) RequestEnded(r support.Request) {
	p := SupportEndedPush{RequestID: r.ID, State: string(r.State)}
	ev.s.callback(r, callbacks.TypeConversationClosed, "", map[string]any{"state": string(r.State)})
	ev.s.forgetSupportThread(r)
	ev.send(r.VisitorID, EventSupportEnded, p)
	if r.State == support.StateClosed && r.AgentID != "" {
		for _, id := range append(append([]string{r.AgentID}, r.Conference...), r.Supervisors...) {
			ev.send(id, EventSupportEnded, p)
		}
	}
}

// supportThreads creates the support thread through the backend.
type supportThreads struct{ s *Service }

func (st supportThreads) CreateSupportThread(ctx context.Context, r support.Request, agentID string) (support.SupportThread, error) {
	b, ok := st.s.backend.(SupportThreadCreator)
	if !ok {
		return support.SupportThread{}, apierr.New(apierr.NotFound, "the backend does not support createSupportThread")
	}
	var meta json.RawMessage
	if len(r.Metadata) > 0 {
		m, err := json.Marshal(r.Metadata)
		if err != nil {
			return support.SupportThread{}, err
		}
		meta = m
	}
	resp, err := b.CreateSupportThread(ctx, &ecbserver.CreateSupportThreadRequest{RequestID: r.ID, Workgroup: r.Workgroup,
		VisitorID: r.VisitorID, VisitorName: r.VisitorName, Anonymous: r.Anonymous, AgentID: agentID,
		Question: r.Question, Metadata: meta, OperationID: r.OperationID})
	if err != nil {
		return support.SupportThread{}, err
	}
	st.s.noteThreads(resp.Thread)
	return support.SupportThread{ThreadID: resp.Thread.ID, Thread: resp.Thread, VisitorToken: resp.VisitorToken, AgentToken: resp.AgentToken}, nil
}

// supportObserver follows connections: a visitor whose last connection ends
// keeps their place for the grace period, and resumes it on reconnect; an
// agent whose last connection ends becomes unavailable.
type supportObserver struct{ s *Service }

func (o supportObserver) ConnRegistered(_ hub.Conn, userID string) {
	if c := o.s.supportCluster; c != nil {
		c.connChanged(userID, o.s.hub.UserConnections(userID))
		return
	}
	if e := o.s.support; e != nil {
		e.VisitorBack(userID)
	}
}

func (o supportObserver) ConnUnregistered(c hub.Conn, userID string) {
	o.s.monitors.forget(c)
	if sc := o.s.supportCluster; sc != nil {
		sc.connChanged(userID, o.s.hub.UserConnections(userID))
		return
	}
	e := o.s.support
	if e == nil || o.s.hub.UserConnections(userID) > 0 {
		return
	}
	e.VisitorGone(userID)
	e.AgentGone(userID)
}

// connObservers tells several observers, in order.
type connObservers []hub.ConnObserver

func (os connObservers) ConnRegistered(c hub.Conn, userID string) {
	for _, o := range os {
		o.ConnRegistered(c, userID)
	}
}

func (os connObservers) ConnUnregistered(c hub.Conn, userID string) {
	for _, o := range os {
		o.ConnUnregistered(c, userID)
	}
}
