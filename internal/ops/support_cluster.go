package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/support"
)

// Customer support across nodes: one owner node runs the routing engine;
// every other node forwards the engine's calls to it.
//
// The owner holds a lease (SupportCluster.Acquire, renewed every
// Interval) and saves the engine's state (support.Snapshot) after each
// call and, from its events, after each timer's transition: a fenced write
// that only the lease's holder can make. A node that takes the lease over
// (the owner died or was cut off: its lease expired) restores the last
// state saved and re-arms its timers, so requests, offers and chats go on
// there. The engine's callbacks are posted by the owner only: once per
// event cluster-wide, in order per conversation; message.created by the
// node that stored the message, which knows the live chats
// (support_chats.go). The Server API's workgroup
// changes go to the owner as every other call does, and so act everywhere.
//
// Connections: each node tells the owner how many connections each of its
// users has (at once when a count changes, and all of them every
// Interval, which is also the node's heartbeat). The owner calls
// VisitorBack when a user connects anywhere, and VisitorGone and AgentGone
// when a user has no connection left on any node, a node that has not
// reported for three intervals counting as none. A new owner waits three
// intervals for the reports, then treats the visitors and agents the
// engine knows and no node reported as gone.
//
// Lock order: saveMu (held across a save: the engine's snapshot and the
// Redis write), then the engine's lock (inside Snapshot). mu and the
// connection table's mu are leaves: nothing is called under them.

// SupportCluster is what the support operations need from the cluster
// (internal/cluster.SupportShare implements it).
type SupportCluster interface {
	NodeID() string
	// Interval is how often the ownership is renewed and the connections reported.
	Interval() time.Duration
	// Acquire takes or renews the ownership and reports whether this node has it.
	Acquire(ctx context.Context) (bool, error)
	Release(ctx context.Context) error
	// Owner returns the node owning the engine ("" when none does).
	Owner(ctx context.Context) (string, error)
	// Save writes the engine's state, only while this node owns it: held
	// is false when another node holds the ownership (the write was refused).
	Save(ctx context.Context, state []byte) (held bool, err error)
	// Load returns the state saved last (nil when none).
	Load(ctx context.Context) ([]byte, error)
	// Serve hands the requests of other nodes to h, and the changes of the
	// live chats to chats (in order), until ctx ends; wg owns its goroutines.
	Serve(ctx context.Context, wg *sync.WaitGroup, h func(ctx context.Context, req []byte) []byte, chats func(version uint64, thread string, req []byte, reset bool)) error
	// Call sends req to node and waits for the answer; Send does not wait.
	Call(ctx context.Context, node string, req []byte) ([]byte, error)
	Send(ctx context.Context, node string, req []byte) error
	// NoteChat notes thread as a live support chat of req (nil: forgets
	// it) and ResetChats replaces them all, only while this node owns the
	// engine; every node is told. Chats reads them with their version.
	NoteChat(ctx context.Context, thread string, req []byte) error
	ResetChats(ctx context.Context, chats map[string][]byte) error
	Chats(ctx context.Context) (map[string][]byte, uint64, error)
	ChatsVersion(ctx context.Context) (uint64, error)
}

// SupportEngine is the routing engine as the operations use it: the
// engine itself on one node, the owner's through clusterEngine on many.
type SupportEngine interface {
	Status(name string) (support.Status, error)
	Ask(v support.Visitor, workgroup, question string, metadata map[string]any, operationID string) (support.Request, int, time.Duration, error)
	Cancel(visitorID, requestID string) error
	Close(userID, requestID string) error
	SetAvailability(agentID string, workgroups []string, available bool, maxChats *int) (support.AgentStatus, error)
	Accept(ctx context.Context, agentID, offerID string) (support.Invitation, error)
	Reject(agentID, offerID string) error
	Invite(ctx context.Context, inviter, requestID, toAgent string) (support.Invitation, error)
	Leave(userID, requestID string) error
	Transfer(ctx context.Context, fromAgent, requestID, toAgent string) (support.Invitation, error)
	Conversations(workgroup string) ([]support.Request, error)
	Request(requestID string) (support.Request, bool)
	Requests(visitorID string) []support.Request
	Role(requestID, userID string) (role string, primary bool)
	NoteSupervisor(requestID, supervisorID string)
	VisitorGone(visitorID string)
	VisitorBack(visitorID string)
	AgentGone(agentID string)
	PutWorkgroup(w support.Workgroup) (bool, error)
	RemoveWorkgroup(name string) error
	Workgroup(name string) (support.WorkgroupInfo, error)
	WorkgroupInfos() []support.WorkgroupInfo
}

var _ SupportEngine = (*support.Engine)(nil)

// EnableSupportCluster is EnableSupport for a node of a cluster: the engine
// runs on the owner node (RunSupportCluster elects it); wgs are the
// workgroups of an owner that finds no saved state.
func (s *Service) EnableSupportCluster(wgs []support.Workgroup, grace time.Duration, sc SupportCluster) {
	s.enableSupportCluster(wgs, support.Options{Grace: grace}, sc)
}

func (s *Service) enableSupportCluster(wgs []support.Workgroup, opts support.Options, sc SupportCluster) {
	opts.Events, opts.Threads = supportEvents{s}, supportThreads{s}
	c := &clusterEngine{s: s, sc: sc, wgs: wgs, opts: opts, dirty: make(chan struct{}, 1),
		connQ: make(chan connNote, 1024), local: map[string]int{}, conns: newConnTable(),
		epoch: fmt.Sprint(time.Now().UnixNano()), callTimeout: 10 * time.Second,
		reload: make(chan struct{}, 1), chatsReady: make(chan struct{})}
	s.support, s.supportCluster = c, c
}

// RunSupportCluster elects the owner, serves the other nodes' calls and
// reports this node's connections until ctx ends; then an owner saves and
// gives the ownership up. It does nothing without EnableSupportCluster.
func (s *Service) RunSupportCluster(ctx context.Context) {
	if s.supportCluster != nil {
		s.supportCluster.run(ctx)
	}
}

// SupportOwner reports whether this node owns the support engine now.
func (s *Service) SupportOwner() bool {
	return s.supportCluster != nil && s.supportCluster.engine() != nil
}

type clusterEngine struct {
	s           *Service
	sc          SupportCluster
	wgs         []support.Workgroup
	opts        support.Options
	epoch       string // this process's, so the owner tells a restarted node from its former self
	callTimeout time.Duration

	mu     sync.Mutex
	eng    *support.Engine // set while this node owns the engine
	owner  string          // the owner last seen
	local  map[string]int  // this node's connections per user
	seq    uint64          // of this node's connection reports (the loop's)
	dirty  chan struct{}
	connQ  chan connNote
	conns  *connTable // the owner's view of every node's connections
	gen    atomic.Uint64
	saveMu sync.Mutex
	saved  uint64 // gen of the last save; saveMu

	// the live chats (support_chats.go)
	chatsMu    sync.Mutex
	chatsVer   uint64        // of the set in s.supportChats; chatsMu
	reload     chan struct{} // the loop reads the set again
	chatsReady chan struct{} // closed once the set was read
	chatsOnce  sync.Once

	// the loop's own state
	lastRenew  time.Time
	promotedAt time.Time
	swept      bool
	serving    bool
}

type connNote struct {
	user  string
	count int
}

func (c *clusterEngine) engine() *support.Engine {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.eng
}

func (c *clusterEngine) ownerNode() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.owner
}

// touched notes that the engine's state changed (its events say so): the
// loop saves it.
func (c *clusterEngine) touched() {
	c.gen.Add(1)
	select {
	case c.dirty <- struct{}{}:
	default:
	}
}

// save writes the engine's state when it changed since the last save (or
// always, with force). A refused write means the lease is gone: the
// engine is halted until the loop finds out who owns it.
func (c *clusterEngine) save(ctx context.Context, force bool) {
	c.saveMu.Lock()
	defer c.saveMu.Unlock()
	e := c.engine()
	g := c.gen.Load()
	if e == nil || (!force && g == c.saved) {
		return
	}
	b, err := json.Marshal(e.Snapshot())
	if err != nil {
		c.s.log.Error("support: snapshot", "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, c.callTimeout)
	defer cancel()
	held, err := c.sc.Save(ctx, b)
	switch {
	case err != nil:
		c.s.log.Warn("support: state not saved", "err", err)
	case !held:
		// Fenced out: another node owns the engine now.
		c.demote()
	default:
		c.saved = g
	}
}

// after saves the state after a call that may have changed it.
func (c *clusterEngine) after() { c.save(context.Background(), true) }

// The wire form of the calls between nodes.
type (
	supportCall struct {
		Method string            `json:"m"`
		Args   []json.RawMessage `json:"a,omitempty"`
		// Conn: a node's connection counts (Full: all of them).
		Node  string         `json:"n,omitempty"`
		Epoch string         `json:"e,omitempty"`
		Seq   uint64         `json:"s,omitempty"`
		Users map[string]int `json:"u,omitempty"`
		Full  bool           `json:"f,omitempty"`
	}
	supportAnswer struct {
		Results []json.RawMessage `json:"r,omitempty"`
		Err     *supportWireErr   `json:"e,omitempty"`
	}
	supportWireErr struct {
		Kind support.Kind `json:"k,omitempty"`
		Code apierr.Code  `json:"c,omitempty"`
		Msg  string       `json:"m"`
	}
)

func wireErr(err error) *supportWireErr {
	if err == nil {
		return nil
	}
	var se *support.Error
	if errors.As(err, &se) {
		return &supportWireErr{Kind: se.Kind, Msg: se.Msg}
	}
	ae := apierr.From(err)
	return &supportWireErr{Code: ae.Code, Msg: ae.Message}
}

func (w *supportWireErr) err() error {
	if w == nil {
		return nil
	}
	if w.Kind != 0 {
		return &support.Error{Kind: w.Kind, Msg: w.Msg}
	}
	return apierr.New(w.Code, "%s", w.Msg)
}

func unavailableOwner(err error) error {
	return apierr.Wrap(err, apierr.Unavailable, "the node routing customer support does not answer; try again")
}

// forward runs method on the owner with args and decodes its results into outs.
func (c *clusterEngine) forward(ctx context.Context, method string, outs []any, args ...any) error {
	owner := c.ownerNode()
	if owner == "" || owner == c.sc.NodeID() {
		return unavailableOwner(errors.New("support: no owner"))
	}
	call := supportCall{Method: method}
	for _, a := range args {
		b, err := json.Marshal(a)
		if err != nil {
			return fmt.Errorf("support: forward %s: %w", method, err)
		}
		call.Args = append(call.Args, b)
	}
	req, err := json.Marshal(call)
	if err != nil {
		return fmt.Errorf("support: forward %s: %w", method, err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.callTimeout)
	defer cancel()
	b, err := c.sc.Call(ctx, owner, req)
	if err != nil {
		return unavailableOwner(err)
	}
	var ans supportAnswer
	if err := json.Unmarshal(b, &ans); err != nil {
		return unavailableOwner(err)
	}
	for i, o := range outs {
		if i < len(ans.Results) {
			if err := json.Unmarshal(ans.Results[i], o); err != nil {
				return fmt.Errorf("support: answer of %s: %w", method, err)
			}
		}
	}
	return ans.Err.err()
}

func bg() context.Context { return context.Background() }

// The SupportEngine methods: on the owner, the engine's (then saved);
// elsewhere, forwarded.

func (c *clusterEngine) Status(name string) (support.Status, error) {
	if e := c.engine(); e != nil {
		return e.Status(name)
	}
	var st support.Status
	err := c.forward(bg(), "Status", []any{&st}, name)
	return st, err
}

func (c *clusterEngine) Ask(v support.Visitor, workgroup, question string, metadata map[string]any, operationID string) (support.Request, int, time.Duration, error) {
	if e := c.engine(); e != nil {
		defer c.after()
		return e.Ask(v, workgroup, question, metadata, operationID)
	}
	var (
		r   support.Request
		pos int
		est time.Duration
	)
	err := c.forward(bg(), "Ask", []any{&r, &pos, &est}, v, workgroup, question, metadata, operationID)
	return r, pos, est, err
}

func (c *clusterEngine) Cancel(visitorID, requestID string) error {
	if e := c.engine(); e != nil {
		defer c.after()
		return e.Cancel(visitorID, requestID)
	}
	return c.forward(bg(), "Cancel", nil, visitorID, requestID)
}

func (c *clusterEngine) Close(userID, requestID string) error {
	if e := c.engine(); e != nil {
		defer c.after()
		return e.Close(userID, requestID)
	}
	return c.forward(bg(), "Close", nil, userID, requestID)
}

func (c *clusterEngine) SetAvailability(agentID string, workgroups []string, available bool, maxChats *int) (support.AgentStatus, error) {
	if e := c.engine(); e != nil {
		defer c.after()
		return e.SetAvailability(agentID, workgroups, available, maxChats)
	}
	var st support.AgentStatus
	err := c.forward(bg(), "SetAvailability", []any{&st}, agentID, workgroups, available, maxChats)
	return st, err
}

func (c *clusterEngine) Accept(ctx context.Context, agentID, offerID string) (support.Invitation, error) {
	if e := c.engine(); e != nil {
		defer c.after()
		return e.Accept(ctx, agentID, offerID)
	}
	var inv support.Invitation
	err := c.forward(ctx, "Accept", []any{&inv}, agentID, offerID)
	return inv, err
}

func (c *clusterEngine) Reject(agentID, offerID string) error {
	if e := c.engine(); e != nil {
		defer c.after()
		return e.Reject(agentID, offerID)
	}
	return c.forward(bg(), "Reject", nil, agentID, offerID)
}

func (c *clusterEngine) Invite(ctx context.Context, inviter, requestID, toAgent string) (support.Invitation, error) {
	if e := c.engine(); e != nil {
		defer c.after()
		return e.Invite(ctx, inviter, requestID, toAgent)
	}
	var inv support.Invitation
	err := c.forward(ctx, "Invite", []any{&inv}, inviter, requestID, toAgent)
	return inv, err
}

func (c *clusterEngine) Leave(userID, requestID string) error {
	if e := c.engine(); e != nil {
		defer c.after()
		return e.Leave(userID, requestID)
	}
	return c.forward(bg(), "Leave", nil, userID, requestID)
}

func (c *clusterEngine) Transfer(ctx context.Context, fromAgent, requestID, toAgent string) (support.Invitation, error) {
	if e := c.engine(); e != nil {
		defer c.after()
		return e.Transfer(ctx, fromAgent, requestID, toAgent)
	}
	var inv support.Invitation
	err := c.forward(ctx, "Transfer", []any{&inv}, fromAgent, requestID, toAgent)
	return inv, err
}

func (c *clusterEngine) Conversations(workgroup string) ([]support.Request, error) {
	if e := c.engine(); e != nil {
		return e.Conversations(workgroup)
	}
	var out []support.Request
	err := c.forward(bg(), "Conversations", []any{&out}, workgroup)
	return out, err
}

func (c *clusterEngine) Request(requestID string) (support.Request, bool) {
	if e := c.engine(); e != nil {
		return e.Request(requestID)
	}
	var (
		r  support.Request
		ok bool
	)
	if err := c.forward(bg(), "Request", []any{&r, &ok}, requestID); err != nil {
		return support.Request{}, false
	}
	return r, ok
}

func (c *clusterEngine) Requests(visitorID string) []support.Request {
	if e := c.engine(); e != nil {
		return e.Requests(visitorID)
	}
	var out []support.Request
	if err := c.forward(bg(), "Requests", []any{&out}, visitorID); err != nil {
		c.s.log.Warn("support: requests not read", "err", err)
	}
	return out
}

func (c *clusterEngine) Role(requestID, userID string) (string, bool) {
	if e := c.engine(); e != nil {
		return e.Role(requestID, userID)
	}
	var (
		role    string
		primary bool
	)
	if err := c.forward(bg(), "Role", []any{&role, &primary}, requestID, userID); err != nil {
		return "", false
	}
	return role, primary
}

func (c *clusterEngine) NoteSupervisor(requestID, supervisorID string) {
	if e := c.engine(); e != nil {
		defer c.after()
		e.NoteSupervisor(requestID, supervisorID)
		return
	}
	if err := c.forward(bg(), "NoteSupervisor", nil, requestID, supervisorID); err != nil {
		c.s.log.Warn("support: supervisor not noted", "request", requestID, "err", err)
	}
}

// VisitorGone, VisitorBack and AgentGone are the hub observer's on one
// node; on many, connections are counted across nodes (connNote) and the
// owner calls the engine's. Called directly, they act on the owner's engine.
func (c *clusterEngine) VisitorGone(visitorID string) { c.onOwner("VisitorGone", visitorID) }
func (c *clusterEngine) VisitorBack(visitorID string) { c.onOwner("VisitorBack", visitorID) }
func (c *clusterEngine) AgentGone(agentID string)     { c.onOwner("AgentGone", agentID) }

func (c *clusterEngine) onOwner(method, userID string) {
	if e := c.engine(); e != nil {
		switch method {
		case "VisitorGone":
			e.VisitorGone(userID)
		case "VisitorBack":
			e.VisitorBack(userID)
		case "AgentGone":
			e.AgentGone(userID)
		}
		c.touched()
		return
	}
	if err := c.forward(bg(), method, nil, userID); err != nil {
		c.s.log.Warn("support: "+method+" not forwarded", "user", userID, "err", err)
	}
}

func (c *clusterEngine) PutWorkgroup(w support.Workgroup) (bool, error) {
	if e := c.engine(); e != nil {
		defer c.after()
		return e.PutWorkgroup(w)
	}
	var created bool
	err := c.forward(bg(), "PutWorkgroup", []any{&created}, w)
	return created, err
}

func (c *clusterEngine) RemoveWorkgroup(name string) error {
	if e := c.engine(); e != nil {
		defer c.after()
		return e.RemoveWorkgroup(name)
	}
	return c.forward(bg(), "RemoveWorkgroup", nil, name)
}

func (c *clusterEngine) Workgroup(name string) (support.WorkgroupInfo, error) {
	if e := c.engine(); e != nil {
		return e.Workgroup(name)
	}
	var info support.WorkgroupInfo
	err := c.forward(bg(), "Workgroup", []any{&info}, name)
	return info, err
}

func (c *clusterEngine) WorkgroupInfos() []support.WorkgroupInfo {
	if e := c.engine(); e != nil {
		return e.WorkgroupInfos()
	}
	var out []support.WorkgroupInfo
	if err := c.forward(bg(), "WorkgroupInfos", []any{&out}); err != nil {
		c.s.log.Warn("support: workgroups not read", "err", err)
	}
	return out
}

// handle answers another node's call (on the owner).
func (c *clusterEngine) handle(ctx context.Context, b []byte) []byte {
	var call supportCall
	ans := supportAnswer{}
	if err := json.Unmarshal(b, &call); err != nil {
		ans.Err = wireErr(apierr.New(apierr.InvalidArgument, "malformed support call"))
		return mustJSON(ans)
	}
	if call.Method == "Conn" {
		c.applyConns(call)
		return nil
	}
	if c.engine() == nil {
		ans.Err = wireErr(unavailableOwner(errors.New("support: this node does not own the engine")))
		return mustJSON(ans)
	}
	ctx, cancel := context.WithTimeout(ctx, c.callTimeout)
	defer cancel()
	results, err := c.dispatch(ctx, call)
	ans.Err = wireErr(err)
	for _, r := range results {
		ans.Results = append(ans.Results, mustJSON(r))
	}
	return mustJSON(ans)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(supportAnswer{Err: &supportWireErr{Code: apierr.Internal, Msg: "internal error"}})
	}
	return b
}

// args decodes a call's arguments into ptrs, in order.
func args(call supportCall, ptrs ...any) error {
	if len(call.Args) != len(ptrs) {
		return apierr.New(apierr.InvalidArgument, "%s takes %d arguments", call.Method, len(ptrs))
	}
	for i, p := range ptrs {
		if err := json.Unmarshal(call.Args[i], p); err != nil {
			return apierr.New(apierr.InvalidArgument, "%s: argument %d: %v", call.Method, i, err)
		}
	}
	return nil
}

func (c *clusterEngine) dispatch(ctx context.Context, call supportCall) ([]any, error) {
	var s1, s2, s3, s4 string
	switch call.Method {
	case "Status":
		if err := args(call, &s1); err != nil {
			return nil, err
		}
		st, err := c.Status(s1)
		return []any{st}, err
	case "Ask":
		var v support.Visitor
		var md map[string]any
		if err := args(call, &v, &s1, &s2, &md, &s3); err != nil {
			return nil, err
		}
		r, pos, est, err := c.Ask(v, s1, s2, md, s3)
		return []any{r, pos, est}, err
	case "Cancel", "Close", "Reject", "Leave", "NoteSupervisor":
		if err := args(call, &s1, &s2); err != nil {
			return nil, err
		}
		switch call.Method {
		case "Cancel":
			return nil, c.Cancel(s1, s2)
		case "Close":
			return nil, c.Close(s1, s2)
		case "Reject":
			return nil, c.Reject(s1, s2)
		case "Leave":
			return nil, c.Leave(s1, s2)
		}
		c.NoteSupervisor(s1, s2)
		return nil, nil
	case "SetAvailability":
		var wgs []string
		var avail bool
		var max *int
		if err := args(call, &s1, &wgs, &avail, &max); err != nil {
			return nil, err
		}
		st, err := c.SetAvailability(s1, wgs, avail, max)
		return []any{st}, err
	case "Accept":
		if err := args(call, &s1, &s2); err != nil {
			return nil, err
		}
		inv, err := c.Accept(ctx, s1, s2)
		return []any{inv}, err
	case "Invite", "Transfer":
		if err := args(call, &s1, &s2, &s3); err != nil {
			return nil, err
		}
		var inv support.Invitation
		var err error
		if call.Method == "Invite" {
			inv, err = c.Invite(ctx, s1, s2, s3)
		} else {
			inv, err = c.Transfer(ctx, s1, s2, s3)
		}
		return []any{inv}, err
	case "Conversations":
		if err := args(call, &s1); err != nil {
			return nil, err
		}
		out, err := c.Conversations(s1)
		return []any{out}, err
	case "Request":
		if err := args(call, &s1); err != nil {
			return nil, err
		}
		r, ok := c.Request(s1)
		return []any{r, ok}, nil
	case "Requests":
		if err := args(call, &s1); err != nil {
			return nil, err
		}
		return []any{c.Requests(s1)}, nil
	case "Role":
		if err := args(call, &s1, &s2); err != nil {
			return nil, err
		}
		role, primary := c.Role(s1, s2)
		return []any{role, primary}, nil
	case "VisitorGone", "VisitorBack", "AgentGone":
		if err := args(call, &s4); err != nil {
			return nil, err
		}
		c.onOwner(call.Method, s4)
		return nil, nil
	case "PutWorkgroup":
		var w support.Workgroup
		if err := args(call, &w); err != nil {
			return nil, err
		}
		created, err := c.PutWorkgroup(w)
		return []any{created}, err
	case "RemoveWorkgroup":
		if err := args(call, &s1); err != nil {
			return nil, err
		}
		return nil, c.RemoveWorkgroup(s1)
	case "Workgroup":
		if err := args(call, &s1); err != nil {
			return nil, err
		}
		info, err := c.Workgroup(s1)
		return []any{info}, err
	case "WorkgroupInfos":
		return []any{c.WorkgroupInfos()}, nil
	}
	return nil, apierr.New(apierr.InvalidArgument, "no support method %q", call.Method)
}

// connChanged is the hub observer's, in cluster mode: this node's count of
// userID's connections is now count. The loop tells the owner.
func (c *clusterEngine) connChanged(userID string, count int) {
	c.mu.Lock()
	if count > 0 {
		c.local[userID] = count
	} else {
		delete(c.local, userID)
	}
	c.mu.Unlock()
	select {
	case c.connQ <- connNote{user: userID, count: count}:
	default: // the next full report carries it
	}
}

// report tells the owner this node's connection counts: users (all of
// them with full).
func (c *clusterEngine) report(ctx context.Context, users map[string]int, full bool) {
	c.mu.Lock()
	c.seq++
	call := supportCall{Method: "Conn", Node: c.sc.NodeID(), Epoch: c.epoch, Seq: c.seq, Users: users, Full: full}
	owner := c.owner
	c.mu.Unlock()
	if owner == "" {
		return
	}
	if owner == c.sc.NodeID() {
		c.applyConns(call)
		return
	}
	b, err := json.Marshal(call)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, c.callTimeout)
	defer cancel()
	if err := c.sc.Send(ctx, owner, b); err != nil {
		c.s.log.Warn("support: connections not reported", "owner", owner, "err", err)
	}
}

// applyConns applies a node's report on the owner and tells the engine of
// the users who came back and those who have no connection left.
func (c *clusterEngine) applyConns(call supportCall) {
	e := c.engine()
	if e == nil {
		return
	}
	back, gone := c.conns.apply(call, time.Now())
	c.tell(e, back, gone)
}

func (c *clusterEngine) tell(e *support.Engine, back, gone []string) {
	for _, u := range back {
		e.VisitorBack(u)
	}
	for _, u := range gone {
		e.VisitorGone(u)
		e.AgentGone(u)
	}
	if len(back)+len(gone) > 0 {
		c.touched()
	}
}

// run is RunSupportCluster.
func (c *clusterEngine) run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(c.sc.Interval())
	defer tick.Stop()
	c.step(ctx, &wg)
	for {
		select {
		case <-ctx.Done():
			c.stop()
			return
		case <-tick.C:
			c.step(ctx, &wg)
		case <-c.dirty:
			c.save(ctx, false)
		case n := <-c.connQ:
			c.report(ctx, map[string]int{n.user: n.count}, false)
		case <-c.reload:
			if err := c.reloadChats(ctx, false); err != nil {
				c.s.log.Warn("support: chats not read", "err", err)
			}
		}
	}
}

// step renews or takes the ownership, learns the owner, and reports.
func (c *clusterEngine) step(ctx context.Context, wg *sync.WaitGroup) {
	if !c.serving {
		if err := c.sc.Serve(ctx, wg, c.handle, c.chatChanged); err != nil {
			c.s.log.Warn("support: cluster channels", "err", err)
			return // not a candidate before the others can reach it
		}
		c.serving = true
	}
	interval := c.sc.Interval()
	now := time.Now()
	actx, cancel := context.WithTimeout(ctx, interval)
	held, err := c.sc.Acquire(actx)
	cancel()
	switch {
	case err == nil && held:
		c.lastRenew = now
		if c.engine() == nil {
			c.promote(ctx, now)
		}
	case c.engine() != nil && (err == nil || now.Sub(c.lastRenew) > interval*3/2):
		c.demote()
	}
	if err != nil {
		return // Redis is away: no report, no look-up until it answers again
	}
	c.syncChats(ctx)
	owner := c.sc.NodeID()
	if !held {
		octx, cancel := context.WithTimeout(ctx, interval)
		owner, err = c.sc.Owner(octx)
		cancel()
		if err != nil {
			owner = ""
		}
	}
	c.mu.Lock()
	c.owner = owner
	users := make(map[string]int, len(c.local))
	for u, n := range c.local {
		users[u] = n
	}
	c.mu.Unlock()
	c.report(ctx, users, true)
	if e := c.engine(); e != nil {
		c.tell(e, nil, c.conns.expire(now, 3*interval))
		if !c.swept && now.Sub(c.promotedAt) >= 3*interval {
			c.swept = true
			c.sweep(e)
		}
	}
}

// promote makes this node the owner: the engine is restored from the saved
// state, or built from the configuration when none was saved.
func (c *clusterEngine) promote(ctx context.Context, now time.Time) {
	lctx, cancel := context.WithTimeout(ctx, c.callTimeout)
	blob, err := c.sc.Load(lctx)
	cancel()
	if err != nil {
		c.s.log.Warn("support: state not loaded", "err", err)
		_ = c.sc.Release(ctx)
		return
	}
	var e *support.Engine
	var snap support.Snapshot
	if blob != nil {
		err = json.Unmarshal(blob, &snap)
	}
	if err == nil {
		// The restored chats are every node's before the engine's events
		// note new ones.
		err = c.shareRestored(ctx, snap)
	}
	if err == nil {
		if blob == nil {
			e, err = support.New(c.wgs, c.opts)
		} else {
			e, err = support.Restore(snap, c.opts)
		}
	}
	if err != nil {
		c.s.log.Error("support: the engine cannot start", "err", err)
		_ = c.sc.Release(ctx)
		return
	}
	c.conns.reset()
	c.mu.Lock()
	c.eng = e
	c.owner = c.sc.NodeID()
	c.mu.Unlock()
	c.promotedAt, c.swept = now, false
	if err := c.reloadChats(ctx, false); err != nil {
		c.s.log.Warn("support: chats not read", "err", err)
	}
	c.s.log.Info("support: this node routes customer support", "restored", blob != nil)
	c.save(ctx, true)
}

// demote halts the engine: another node owns it (or may, soon).
func (c *clusterEngine) demote() {
	c.mu.Lock()
	e := c.eng
	c.eng = nil
	c.mu.Unlock()
	if e != nil {
		e.Halt()
		c.s.log.Warn("support: this node no longer routes customer support")
	}
}

// sweep treats the visitors and agents that no node reported, once a new
// owner has waited for the reports, as gone.
func (c *clusterEngine) sweep(e *support.Engine) {
	snap := e.Snapshot()
	var gone []string
	seen := map[string]bool{}
	for _, r := range snap.Requests {
		if u := r.Request.VisitorID; !r.Away && !seen[u] && !c.conns.known(u) {
			seen[u] = true
			gone = append(gone, u)
		}
	}
	for _, a := range snap.Agents {
		if a.Available && !seen[a.ID] && !c.conns.known(a.ID) {
			seen[a.ID] = true
			gone = append(gone, a.ID)
		}
	}
	c.tell(e, nil, gone)
}

// stop saves and gives the ownership up (shutdown).
func (c *clusterEngine) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), c.callTimeout)
	defer cancel()
	if c.engine() != nil {
		c.save(ctx, true)
		c.demote()
		if err := c.sc.Release(ctx); err != nil {
			c.s.log.Warn("support: ownership not released", "err", err)
		}
	}
}

// connTable is the owner's view of the connections of every node.
type connTable struct {
	mu    sync.Mutex
	nodes map[string]*nodeConns
}

type nodeConns struct {
	epoch string
	seq   uint64
	seen  time.Time
	users map[string]int
}

func newConnTable() *connTable { return &connTable{nodes: map[string]*nodeConns{}} }

func (t *connTable) reset() {
	t.mu.Lock()
	t.nodes = map[string]*nodeConns{}
	t.mu.Unlock()
}

// total is userID's connections on every node. The caller holds t.mu.
func (t *connTable) total(userID string) int {
	n := 0
	for _, nc := range t.nodes {
		n += nc.users[userID]
	}
	return n
}

func (t *connTable) known(userID string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.total(userID) > 0
}

// apply records a node's report (older ones than the last are ignored) and
// returns the users connected now (back) and those with no connection left.
func (t *connTable) apply(call supportCall, now time.Time) (back, gone []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	nc := t.nodes[call.Node]
	if nc == nil || nc.epoch != call.Epoch {
		nc = &nodeConns{epoch: call.Epoch, users: map[string]int{}}
		t.nodes[call.Node] = nc
	}
	nc.seen = now
	if call.Seq <= nc.seq {
		return nil, nil
	}
	nc.seq = call.Seq
	before := map[string]int{}
	for u := range call.Users {
		before[u] = t.total(u)
	}
	if call.Full {
		for u := range nc.users {
			if _, ok := before[u]; !ok {
				before[u] = t.total(u)
			}
		}
		nc.users = map[string]int{}
	}
	for u, n := range call.Users {
		if n > 0 {
			nc.users[u] = n
		} else {
			delete(nc.users, u)
		}
	}
	for u, was := range before {
		now := t.total(u)
		switch {
		case now > 0 && (was == 0 || (!call.Full && call.Users[u] > 0)):
			back = append(back, u)
		case now == 0 && was > 0:
			gone = append(gone, u)
		}
	}
	return back, gone
}

// expire forgets the nodes not heard of for ttl and returns the users left
// with no connection.
func (t *connTable) expire(now time.Time, ttl time.Duration) (gone []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, nc := range t.nodes {
		if now.Sub(nc.seen) <= ttl {
			continue
		}
		delete(t.nodes, id)
		for u := range nc.users {
			if t.total(u) == 0 {
				gone = append(gone, u)
			}
		}
	}
	return gone
}
