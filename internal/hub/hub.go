// Package hub owns the live side of ECB on one node: which connections listen
// to which thread, and the fan-out of pushes to them. What crosses nodes goes
// through two small interfaces the hub declares and the cluster implements:
// a Broker (a thread's pushes, their positions and recent history) and a
// Controller (commands to the connections of a user or thread on every node).
// One node uses the in-memory versions (NewMemoryBroker, a local controller).
//
// The hub knows no transport. Socket.IO and SSE plug in through Conn, whose
// Deliver must never block: a connection that cannot keep up is cut off (Close
// with ReasonSlow) instead of slowing the fan-out or growing memory.
//
// All methods are safe for concurrent use. Pushes of one thread reach every
// Conn in offset order: the broker hands them to the hub (its Sink) in that
// order, and the hub fans each out under the thread's shard lock, which is
// cheap because Deliver only enqueues.
//
// # Lock order
//
// A broker's own lock (the memory broker calls HandlePush under it, which is
// what keeps a thread's pushes in offset order), then a hub shard lock or
// connsMu (the hub never holds two of its locks at once), then a Conn's own
// lock inside Deliver. Deliver may take the Conn's own lock (a leaf: the SSE
// stream's, the Engine.IO connection's queue lock) and must do nothing else:
// no log, no close, no I/O, no call into the hub; it queues the push or
// reports false. Under its locks the hub calls only Deliver and the
// PositionTracker methods, which take only the Conn's own lock too.
//
// Everything else happens after every hub lock is released: slow consumers
// are cut (Unregister, then Close with ReasonSlow), the ConnObserver is told
// (it may call anything: presence pushes, the support engine's visitor or
// agent gone), metrics are told, and the broker is subscribed or
// unsubscribed. Slow connections found while the broker delivers are closed
// from a goroutine of their own, since the broker may still hold its lock.
package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ecbridge/ecb/internal/smallset"
)

// Encoding names a transport's wire form of a Push; the encoded bytes are
// cached on the Push so that each form is produced once per push, not once per
// recipient.
type Encoding int

// The encodings known to ECB's transports.
const (
	EncodingSocketIO Encoding = iota
	EncodingSSE
	numEncodings
)

// Push is one event for the listeners of a thread or for one user's
// connections. Data is the JSON payload, encoded once.
type Push struct {
	Event    string          `json:"event"`            // the event name: message, thread, ...
	ThreadID string          `json:"thread,omitempty"` // "" for a push that is not part of a thread's history
	Epoch    string          `json:"epoch,omitempty"`  // the thread history's epoch, with Offset
	Offset   uint64          `json:"offset,omitempty"` // the position the broker gave it; 0 when none
	Data     json.RawMessage `json:"data"`             // JSON, without the position (see Payload)
	At       time.Time       `json:"at"`
	// AgentsOnly marks a push for the agents' side only (a whisper): the hub
	// delivers it only to connections that implement AgentsAudience and
	// answered true when they were registered, on every path (fan-out,
	// Broadcast, Resume, SendToUser).
	AgentsOnly bool `json:"agents,omitempty"`
	// Skip is the id (ConnID) of the connection that does not get the push:
	// its author, who gets an answer instead.
	Skip string `json:"skip,omitempty"`
	// Key, when set, makes Publish idempotent: a push of the thread with the
	// same key published while the history still holds it is not published
	// again, and Publish returns its position (a retried message, whichever
	// node the retry reaches).
	Key string `json:"key,omitempty"`
	// Repeated is set by Publish when p.Key was published already: nothing
	// was published this time (the returned position is the earlier
	// push's). It never travels between nodes.
	Repeated bool `json:"-"`

	frames [numEncodings]atomic.Pointer[[]byte]
}

// Frame returns the push encoded by encode, computing it at most once per
// encoding (concurrent first calls may both encode; one result wins, both are equal).
func (p *Push) Frame(enc Encoding, encode func(*Push) []byte) []byte {
	if f := p.frames[enc].Load(); f != nil {
		return *f
	}
	b := encode(p)
	p.frames[enc].CompareAndSwap(nil, &b)
	return *p.frames[enc].Load()
}

// Reason says why the hub closes a connection.
type Reason string

// Reasons the hub closes a connection.
const (
	ReasonSlow     Reason = "slow_consumer" // its queue was full
	ReasonShutdown Reason = "shutdown"      // the node is stopping
	ReasonKicked   Reason = "kicked"        // the Server API disconnected the user
	// ReasonResync: the node could not keep one of the threads the connection
	// listens to in order (its broker lost pushes it cannot give again); the
	// client reconnects and resumes, and is told recovered: false where needed.
	ReasonResync Reason = "resync"
)

// Conn is one client connection, as a transport gives it to the hub.
type Conn interface {
	// Deliver queues p for the client without blocking. It reports false when
	// the queue is full; the hub then detaches the connection and closes it with ReasonSlow.
	Deliver(p *Push) bool
	// Close ends the connection. It must not block and may be called more than once.
	Close(reason Reason)
}

// AgentsAudience is the optional interface of a Conn that may receive
// AgentsOnly pushes (its user has role agent or supervisor). The hub asks it
// once, at Register; a Conn that does not implement it never gets them.
type AgentsAudience interface {
	SeesAgentsOnly() bool
}

// PositionTracker is the optional interface of a Conn that keeps, per
// thread, the position it listens from (an SSE stream, which hands its
// threads over to another node when its own stops). The hub calls
// ListensFrom under its locks, before any push of the thread after pos
// reaches the Conn, and StopsListening under connsMu when the Conn stops
// listening to the thread (so that what it keeps is bounded by what it
// listens to): both must only take the Conn's own lock.
type PositionTracker interface {
	ListensFrom(threadID string, pos Position)
	StopsListening(threadID string)
}

// dropThreadLocked stops c, whose state is st, listening to threadID and
// reports whether it was. h.connsMu must be held: a later attach of the
// same thread, which adds it under connsMu first, then tells the tracker
// its new position, cannot be undone by this one.
func dropThreadLocked(st *connState, c Conn, threadID string) bool {
	if !st.threads.Remove(threadID) {
		return false
	}
	if t, ok := c.(PositionTracker); ok {
		t.StopsListening(threadID)
	}
	return true
}

func trackFrom(c Conn, threadID string, pos Position) {
	if t, ok := c.(PositionTracker); ok {
		t.ListensFrom(threadID, pos)
	}
}

// seesAgentsOnly reports whether c may receive AgentsOnly pushes.
func seesAgentsOnly(c Conn) bool {
	a, ok := c.(AgentsAudience)
	return ok && a.SeesAgentsOnly()
}

// Config tunes the hub; the zero value is usable (one node, in memory).
type Config struct {
	// HistorySize is how many recent pushes each thread keeps for recovery
	// in the default memory broker (default 256).
	HistorySize int
	// HistoryTTL is how long a push stays recoverable in the default memory
	// broker (default 5m).
	HistoryTTL time.Duration
	// Broker carries thread pushes across nodes; nil means a MemoryBroker
	// with the two settings above.
	Broker Broker
	// Controller carries commands to every node; nil means this node only.
	Controller Controller
	// NodeID names this node in connection ids; "" means a random one.
	NodeID string
	// Metrics receives counts; nil means none.
	Metrics Metrics
	// Observer is told about every connection registered and unregistered
	// (presence); nil means nobody.
	Observer ConnObserver
}

// ConnObserver is told about connections coming and going. Calls are made
// outside the hub's locks, once per Register and per effective Unregister.
type ConnObserver interface {
	ConnRegistered(c Conn, userID string)
	ConnUnregistered(c Conn, userID string)
}

// Metrics is what the hub reports; the server wires Prometheus to it.
type Metrics interface {
	Delivered(n int)
	Dropped(n int)
}

type nopMetrics struct{}

func (nopMetrics) Delivered(int) {}
func (nopMetrics) Dropped(int)   {}

type nopObserver struct{}

func (nopObserver) ConnRegistered(Conn, string)   {}
func (nopObserver) ConnUnregistered(Conn, string) {}

const numShards = 64

// pendingMax bounds the pushes held for one thread while the node subscribes
// to it, and for one connection while it resumes; past it the connection is
// cut as slow (it reconnects and resumes again).
const pendingMax = 1024

// ErrNotRegistered is returned by Attach and Resume for a connection that has
// already ended.
var ErrNotRegistered = errors.New("hub: connection not registered")

// Hub is the connection and thread registry of one node.
type Hub struct {
	cfg    Config
	broker Broker
	ctl    Controller
	nodeID string
	seq    atomic.Uint64
	seed   maphash.Seed
	shards [numShards]shard

	connsMu sync.Mutex
	conns   map[Conn]*connState
	users   map[string]smallset.Set[Conn] // a Set is a value: read, change, store back

	reapers sync.WaitGroup // closing slow connections found during a broker's delivery
	closed  atomic.Bool
}

type connState struct {
	seq     uint64 // this node's number for the connection; its id is nodeID.seq (ConnID)
	userID  string
	agents  bool // may receive AgentsOnly pushes (asked once, at Register)
	threads smallset.Set[string]
}

type shard struct {
	mu      sync.Mutex
	threads map[string]*thread
}

// thread is a thread this node is subscribed to because it has listeners.
type thread struct {
	listeners map[Conn]*listener
	// synced is false while the broker subscription is being made; pushes
	// that arrive meanwhile wait in pending, and ready closes when it ends.
	synced  bool
	ready   chan struct{}
	err     error
	pending []*Push
	lost    bool // pending overflowed: the listeners must resync
	// epoch and offset are the position of the last push fanned out.
	epoch  string
	offset uint64
	// syncedAt is the subscription's position: where the connections that
	// joined while subscribing listen from (what their Attach returns).
	syncedAt Position
}

type listener struct {
	seq    uint64 // the connection's connState.seq
	agents bool
	// resume is not nil while the connection is being given its missed
	// pushes: live ones wait in it so that they come after them. A pointer,
	// not the slice, because a listener lives as long as the connection
	// listens and resumes only for a moment.
	resume *[]*Push
}

// New returns an empty hub.
func New(cfg Config) *Hub {
	if cfg.Metrics == nil {
		cfg.Metrics = nopMetrics{}
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	if cfg.Broker == nil {
		cfg.Broker = NewMemoryBroker(cfg.HistorySize, cfg.HistoryTTL)
	}
	if cfg.Controller == nil {
		cfg.Controller = localController{}
	}
	if cfg.NodeID == "" {
		cfg.NodeID = NewEpoch()
	}
	h := &Hub{cfg: cfg, broker: cfg.Broker, ctl: cfg.Controller, nodeID: cfg.NodeID, seed: maphash.MakeSeed(),
		conns: map[Conn]*connState{}, users: map[string]smallset.Set[Conn]{}}
	for i := range h.shards {
		h.shards[i].threads = map[string]*thread{}
	}
	for _, x := range []any{cfg.Broker, cfg.Controller} {
		if b, ok := x.(BrokerBinder); ok {
			b.Bind(h)
		}
	}
	return h
}

// SetObserver sets the connection observer. It must be called before the
// first Register (it is not synchronized with it).
func (h *Hub) SetObserver(o ConnObserver) { h.cfg.Observer = o }

// Broker returns the hub's broker.
func (h *Hub) Broker() Broker { return h.broker }

// Run runs the memory broker's housekeeping (pruning idle threads) every
// interval until ctx is done; a cluster broker runs its own.
func (h *Hub) Run(ctx context.Context, interval time.Duration) {
	if m, ok := h.broker.(*MemoryBroker); ok {
		m.Run(ctx, interval)
	}
}

func (h *Hub) shard(threadID string) *shard {
	return &h.shards[maphash.String(h.seed, threadID)%numShards]
}

// Register adds a connection of userID. A connection must be registered before
// it can Attach, and Unregistered when it ends.
func (h *Hub) Register(c Conn, userID string) {
	seq := h.seq.Add(1)
	h.connsMu.Lock()
	h.conns[c] = &connState{seq: seq, userID: userID, agents: seesAgentsOnly(c)}
	smallset.AddTo(h.users, userID, c)
	h.connsMu.Unlock()
	h.cfg.Observer.ConnRegistered(c, userID)
}

// ConnID returns the cluster-wide id of a registered connection ("" for nil
// or an unknown one), as Push.Skip and Command.Skip name it.
func (h *Hub) ConnID(c Conn) string {
	if c == nil {
		return ""
	}
	h.connsMu.Lock()
	defer h.connsMu.Unlock()
	if st := h.conns[c]; st != nil {
		return h.nodeID + "." + strconv.FormatUint(st.seq, 36)
	}
	return ""
}

// localSeq returns the seq of the connection of this node that the
// cluster-wide id skip names (ConnID), or 0 for "" or another node's: a
// connection keeps its number, not its id string, and a push's Skip is read
// once per push rather than compared per listener.
func (h *Hub) localSeq(skip string) uint64 {
	rest, ok := strings.CutPrefix(skip, h.nodeID)
	if !ok || len(rest) < 2 || rest[0] != '.' {
		return 0
	}
	seq, err := strconv.ParseUint(rest[1:], 36, 64)
	if err != nil {
		return 0
	}
	return seq
}

// Unregister detaches c from every thread and forgets it. Safe to call twice.
func (h *Hub) Unregister(c Conn) {
	h.connsMu.Lock()
	st := h.conns[c]
	delete(h.conns, c)
	if st != nil {
		smallset.RemoveFrom(h.users, st.userID, c)
	}
	h.connsMu.Unlock()
	if st == nil {
		return
	}
	defer h.cfg.Observer.ConnUnregistered(c, st.userID)
	for id := range st.threads.All() {
		h.removeListener(id, c)
	}
}

// Attach makes c a listener of threadID and returns the thread's position at
// that moment: every push after it reaches c, and none up to it does. The
// first listener of a thread on this node subscribes the node to it through
// the broker, which may fail (ErrUnavailable) or wait for ctx.
func (h *Hub) Attach(ctx context.Context, threadID string, c Conn) (Position, error) {
	return h.attach(ctx, threadID, c, false)
}

func (h *Hub) attach(ctx context.Context, threadID string, c Conn, resuming bool) (Position, error) {
	h.connsMu.Lock()
	st := h.conns[c]
	if st != nil {
		st.threads.Add(threadID)
	}
	h.connsMu.Unlock()
	if st == nil {
		return Position{}, ErrNotRegistered
	}
	s := h.shard(threadID)
	s.mu.Lock()
	t := s.threads[threadID]
	first := t == nil
	if first {
		t = &thread{listeners: map[Conn]*listener{}, ready: make(chan struct{})}
		s.threads[threadID] = t
	}
	l := &listener{seq: st.seq, agents: st.agents}
	if resuming {
		l.resume = new([]*Push)
	}
	t.listeners[c] = l
	if t.synced {
		from := Position{Epoch: t.epoch, Offset: t.offset}
		if !resuming {
			trackFrom(c, threadID, from)
		}
		s.mu.Unlock()
		return from, nil
	}
	ready := t.ready
	s.mu.Unlock()

	if first {
		pos, err := h.broker.Subscribe(ctx, threadID)
		h.finishSync(threadID, t, pos, err)
	}
	select {
	case <-ready:
	case <-ctx.Done():
		h.Detach(threadID, c)
		return Position{}, ctx.Err()
	}
	s.mu.Lock()
	err, pos := t.err, t.syncedAt
	if err == nil && t.listeners[c] != l {
		err = ErrNotRegistered // cut (slow, detached) while subscribing
	}
	s.mu.Unlock()
	if err != nil {
		h.Detach(threadID, c)
		return Position{}, err
	}
	return pos, nil
}

// finishSync ends the subscription of t: it takes the broker's position and
// fans out the pushes that came after it while subscribing.
func (h *Hub) finishSync(threadID string, t *thread, pos Position, err error) {
	s := h.shard(threadID)
	s.mu.Lock()
	var slow, resync []Conn
	delivered := 0
	unsubscribe := false
	switch {
	case err != nil:
		t.err = fmt.Errorf("hub: subscribe to thread %s: %w", threadID, err)
		if s.threads[threadID] == t {
			delete(s.threads, threadID)
		}
	default:
		t.synced, t.epoch, t.offset, t.syncedAt = true, pos.Epoch, pos.Offset, pos
		for c, l := range t.listeners {
			if l.resume == nil {
				trackFrom(c, threadID, pos)
			}
		}
		pending := t.pending
		t.pending = nil
		if t.lost {
			resync = h.cutAllLocked(t) // pushes were dropped while subscribing
		}
		for _, p := range pending {
			cut, n := h.fanOutLocked(t, p)
			slow, delivered = append(slow, cut...), delivered+n
		}
		if len(t.listeners) == 0 && s.threads[threadID] == t {
			delete(s.threads, threadID)
			unsubscribe = true
		}
	}
	close(t.ready)
	s.mu.Unlock()
	h.cfg.Metrics.Delivered(delivered)
	if unsubscribe {
		h.unsubscribe(threadID)
	}
	h.closeConns(slow, ReasonSlow)
	h.closeConns(resync, ReasonResync)
}

func (h *Hub) unsubscribe(threadID string) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_ = h.broker.Unsubscribe(ctx, threadID) // a cluster broker logs and retries its own failures
}

// Detach stops c listening to threadID.
func (h *Hub) Detach(threadID string, c Conn) {
	h.connsMu.Lock()
	if st := h.conns[c]; st != nil {
		dropThreadLocked(st, c, threadID)
	}
	h.connsMu.Unlock()
	h.removeListener(threadID, c)
}

// Attached reports how many threads c listens to.
func (h *Hub) Attached(c Conn) int {
	h.connsMu.Lock()
	defer h.connsMu.Unlock()
	if st := h.conns[c]; st != nil {
		return st.threads.Len()
	}
	return 0
}

// Threads returns the threads c listens to.
func (h *Hub) Threads(c Conn) []string {
	h.connsMu.Lock()
	defer h.connsMu.Unlock()
	st := h.conns[c]
	if st == nil {
		return nil
	}
	out := make([]string, 0, st.threads.Len())
	for id := range st.threads.All() {
		out = append(out, id)
	}
	return out
}

func (h *Hub) removeListener(threadID string, c Conn) {
	s := h.shard(threadID)
	s.mu.Lock()
	t := s.threads[threadID]
	unsubscribe := false
	if t != nil {
		delete(t.listeners, c)
		// A thread still subscribing is left to finishSync.
		if len(t.listeners) == 0 && t.synced {
			delete(s.threads, threadID)
			unsubscribe = true
		}
	}
	s.mu.Unlock()
	if unsubscribe {
		h.unsubscribe(threadID)
	}
}

// HandlePush implements Sink: it fans p out to this node's listeners of
// threadID. A push with an offset at or before the last one fanned out is a
// duplicate and dropped.
func (h *Hub) HandlePush(threadID string, p *Push) {
	s := h.shard(threadID)
	s.mu.Lock()
	t := s.threads[threadID]
	if t == nil {
		s.mu.Unlock()
		return
	}
	var slow []Conn
	delivered := 0
	if !t.synced {
		if len(t.pending) < pendingMax {
			t.pending = append(t.pending, p)
		} else {
			t.lost = true
		}
	} else {
		slow, delivered = h.fanOutLocked(t, p)
	}
	s.mu.Unlock()
	h.cfg.Metrics.Delivered(delivered)
	if len(slow) > 0 {
		// The broker may hold its own lock: close from outside it.
		h.reapers.Add(1)
		go func() {
			defer h.reapers.Done()
			h.closeConns(slow, ReasonSlow)
		}()
	}
}

// Resync cuts every listener of threadID on this node with ReasonResync: the
// broker lost pushes of the thread that it cannot give again. The clients
// reconnect and resume (and are told recovered: false).
func (h *Hub) Resync(threadID string) {
	s := h.shard(threadID)
	s.mu.Lock()
	var cut []Conn
	if t := s.threads[threadID]; t != nil {
		cut = h.cutAllLocked(t)
	}
	s.mu.Unlock()
	h.reapers.Add(1)
	go func() {
		defer h.reapers.Done()
		h.closeConns(cut, ReasonResync)
	}()
}

func (h *Hub) cutAllLocked(t *thread) []Conn {
	cut := make([]Conn, 0, len(t.listeners))
	for c := range t.listeners {
		cut = append(cut, c)
	}
	clear(t.listeners)
	return cut
}

// fanOutLocked delivers p to t's listeners and returns those that refused it,
// already removed from t, and how many took it; the caller closes the ones
// that refused, and tells the metrics, outside the lock.
func (h *Hub) fanOutLocked(t *thread, p *Push) (slow []Conn, delivered int) {
	if p.Offset > 0 {
		if p.Epoch == t.epoch && p.Offset <= t.offset {
			return nil, 0 // already fanned out (a subscription's overlap)
		}
		t.epoch, t.offset = p.Epoch, p.Offset
	}
	skip := h.localSeq(p.Skip)
	for c, l := range t.listeners {
		if l.seq == skip || (p.AgentsOnly && !l.agents) {
			continue
		}
		if l.resume != nil {
			if len(*l.resume) < pendingMax {
				*l.resume = append(*l.resume, p)
				continue
			}
		} else if c.Deliver(p) {
			delivered++
			continue
		}
		delete(t.listeners, c)
		slow = append(slow, c)
	}
	return slow, delivered
}

// closeConns forgets conns and closes them with reason. It must be called
// without any hub lock held.
func (h *Hub) closeConns(conns []Conn, reason Reason) {
	if len(conns) == 0 {
		return
	}
	if reason == ReasonSlow {
		h.cfg.Metrics.Dropped(len(conns))
	}
	for _, c := range conns {
		h.Unregister(c)
		c.Close(reason)
	}
}

// Publish gives p the next position of threadID through the broker, which
// hands it to every listener on every node except skip (nil for none). p's
// Data is the payload without the position (see Payload).
func (h *Hub) Publish(ctx context.Context, threadID string, p *Push, skip Conn) (Position, error) {
	p.ThreadID = threadID
	p.Skip = h.ConnID(skip)
	if p.At.IsZero() {
		p.At = time.Now()
	}
	pos, err := h.broker.Publish(ctx, threadID, p)
	if err != nil {
		return Position{}, fmt.Errorf("hub: publish to thread %s: %w", threadID, err)
	}
	return pos, nil
}

// Broadcast delivers a push that is not part of the thread's history (typing,
// a thread change) to the thread's listeners on every node except skip.
func (h *Hub) Broadcast(threadID string, p *Push, skip Conn) error {
	p.Skip = h.ConnID(skip)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return h.broker.Broadcast(ctx, threadID, p)
}

// Resume makes c a listener of threadID and delivers to c the pushes after
// from before any later push. recovered is false when the gap cannot be given
// (another epoch, an offset from the future, a gap older than the history);
// c listens all the same. now is the position c listens from.
func (h *Hub) Resume(ctx context.Context, threadID string, c Conn, from Position) (missed int, recovered bool, now Position, err error) {
	now, err = h.attach(ctx, threadID, c, true)
	if err != nil {
		return 0, false, Position{}, err
	}
	var pushes []*Push
	switch {
	case from == now:
		recovered = true
	case from.Epoch == now.Epoch && from.Offset < now.Offset:
		var herr error
		pushes, _, recovered, herr = h.broker.History(ctx, threadID, from)
		recovered = recovered && herr == nil
	}
	h.connsMu.Lock()
	st := h.conns[c]
	agents := st != nil && st.agents
	h.connsMu.Unlock()
	// The live pushes are held for c until the end: it listens from what
	// it is given now.
	if recovered {
		trackFrom(c, threadID, from)
	} else {
		trackFrom(c, threadID, now)
	}
	slow := false
	if recovered {
		for _, p := range pushes {
			if p.Offset > now.Offset {
				break // it comes live
			}
			if p.AgentsOnly && !agents {
				continue // a whisper: not for this connection, and not missed by it
			}
			if !c.Deliver(p) {
				slow = true
				break
			}
			missed++
		}
	}
	// The live pushes that came meanwhile follow the missed ones.
	s := h.shard(threadID)
	s.mu.Lock()
	if t := s.threads[threadID]; t != nil && !slow {
		if l := t.listeners[c]; l != nil && l.resume != nil {
			for _, p := range *l.resume {
				if !c.Deliver(p) {
					slow = true
					delete(t.listeners, c)
					break
				}
			}
			l.resume = nil
		}
	}
	s.mu.Unlock()
	if slow {
		h.closeConns([]Conn{c}, ReasonSlow)
		return missed, false, now, nil
	}
	return missed, recovered, now, nil
}

// Position returns threadID's current position (see Broker.Position).
func (h *Hub) Position(ctx context.Context, threadID string) (Position, error) {
	return h.broker.Position(ctx, threadID)
}

// ListenerUsers returns the users with a connection listening to threadID on
// this node.
func (h *Hub) ListenerUsers(threadID string) []string {
	s := h.shard(threadID)
	s.mu.Lock()
	var conns []Conn
	if t := s.threads[threadID]; t != nil {
		for c := range t.listeners {
			conns = append(conns, c)
		}
	}
	s.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	h.connsMu.Lock()
	for _, c := range conns {
		if st := h.conns[c]; st != nil && !seen[st.userID] {
			seen[st.userID] = true
			out = append(out, st.userID)
		}
	}
	h.connsMu.Unlock()
	return out
}

// Connections returns how many connections are registered on this node.
func (h *Hub) Connections() int {
	h.connsMu.Lock()
	defer h.connsMu.Unlock()
	return len(h.conns)
}

// UserConnections returns how many connections userID has on this node.
func (h *Hub) UserConnections(userID string) int {
	h.connsMu.Lock()
	defer h.connsMu.Unlock()
	conns := h.users[userID]
	return conns.Len()
}

// Shutdown closes every connection with ReasonShutdown and waits for the
// closes of slow connections already under way.
func (h *Hub) Shutdown() {
	if !h.closed.CompareAndSwap(false, true) {
		return
	}
	h.connsMu.Lock()
	conns := make([]Conn, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	h.connsMu.Unlock()
	h.closeConns(conns, ReasonShutdown)
	h.reapers.Wait()
}
