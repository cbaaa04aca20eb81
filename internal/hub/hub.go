// Package hub owns the live side of ECB on one node: which connections listen to
// which thread, the per-thread push offsets with their bounded recent history,
// and the fan-out of pushes to connections.
//
// The hub knows no transport. Socket.IO and SSE plug in through Conn, whose
// Deliver must never block: a connection that cannot keep up is cut off (Close
// with ReasonSlow) instead of slowing the fan-out or growing memory.
//
// All methods are safe for concurrent use. Pushes of one thread are delivered
// to every Conn in offset order: Publish holds the thread's lock while it assigns
// the offset and fans out, which is cheap because Deliver only enqueues.
//
// # Lock order
//
// The hub has two kinds of locks, connsMu (connections and users) and one
// lock per shard (threads); it never holds two of them at once. Under a
// shard lock it calls only Conn.Deliver and a Publish's build function;
// under connsMu, nothing outside the hub. Deliver may take the Conn's own
// lock (a leaf: the SSE stream's, the Engine.IO connection's queue lock)
// and must do nothing else: no log, no close, no I/O, no call into the hub.
// It queues the push or reports false.
//
// A slow consumer is cut outside every hub lock: the fan-out (Publish,
// Broadcast, Resume, SendToUser, DetachThread) collects the Conns that
// refused, releases its lock, then Unregisters each one and Closes it with
// ReasonSlow. Unregister calls the ConnObserver after it has released its
// locks too, and the observer may call anything, the hub included (presence
// pushes) and the support engine (a visitor or agent gone): those take
// their own locks, which are leaves the hub's are never taken under
// (package support holds no lock while it pushes). Metrics are told
// outside the locks as well.
package hub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"hash/maphash"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ecbridge/ecb/internal/periodic"
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
	Event    string // the event name: message, thread, ...
	ThreadID string // "" for a push that is not part of a thread's history
	Epoch    string // the thread history's epoch, with Offset
	Offset   uint64 // the position in the thread's history; 0 when none
	Data     []byte // JSON
	At       time.Time
	// AgentsOnly marks a push for the agents' side only (a whisper): the hub
	// delivers it only to connections that implement AgentsAudience and
	// answered true when they were registered, on every path (fan-out,
	// Broadcast, Resume, SendToUser), and Since never returns it.
	AgentsOnly bool

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

// seesAgentsOnly reports whether c may receive AgentsOnly pushes.
func seesAgentsOnly(c Conn) bool {
	a, ok := c.(AgentsAudience)
	return ok && a.SeesAgentsOnly()
}

// Config tunes the hub; the zero value is usable.
type Config struct {
	// HistorySize is how many recent pushes each thread keeps for recovery (default 256).
	HistorySize int
	// HistoryTTL is how long a push stays recoverable (default 5m).
	HistoryTTL time.Duration
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

// Hub is the connection and thread registry of one node.
type Hub struct {
	cfg    Config
	seed   maphash.Seed
	epoch  string // the epoch given to threads whose history starts on this node
	shards [numShards]shard

	connsMu sync.Mutex
	conns   map[Conn]*connState
	users   map[string]map[Conn]struct{}

	generation atomic.Uint64 // numbers the thread histories started on this node

	closed atomic.Bool
}

type connState struct {
	userID  string
	agents  bool // may receive AgentsOnly pushes (asked once, at Register)
	threads map[string]struct{}
}

type shard struct {
	mu      sync.Mutex
	threads map[string]*thread
}

type thread struct {
	listeners map[Conn]bool // value: the Conn may receive AgentsOnly pushes
	epoch     string
	offset    uint64
	history   ring
}

// New returns an empty hub.
func New(cfg Config) *Hub {
	if cfg.HistorySize <= 0 {
		cfg.HistorySize = 256
	}
	if cfg.HistoryTTL <= 0 {
		cfg.HistoryTTL = 5 * time.Minute
	}
	if cfg.Metrics == nil {
		cfg.Metrics = nopMetrics{}
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	h := &Hub{cfg: cfg, seed: maphash.MakeSeed(), epoch: newEpoch(),
		conns: map[Conn]*connState{}, users: map[string]map[Conn]struct{}{}}
	for i := range h.shards {
		h.shards[i].threads = map[string]*thread{}
	}
	return h
}

func newEpoch() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// SetObserver sets the connection observer. It must be called before the
// first Register (it is not synchronized with it).
func (h *Hub) SetObserver(o ConnObserver) { h.cfg.Observer = o }

// newThreadEpoch names a thread history that starts now. A thread's epoch
// changes when its history is lost: on restart (a new hub epoch) and when an
// idle thread is pruned and later starts again from offset 1.
func (h *Hub) newThreadEpoch() string {
	return h.epoch + "-" + strconv.FormatUint(h.generation.Add(1), 36)
}

func (h *Hub) shard(threadID string) *shard {
	return &h.shards[maphash.String(h.seed, threadID)%numShards]
}

// Register adds a connection of userID. A connection must be registered before
// it can Attach, and Unregistered when it ends.
func (h *Hub) Register(c Conn, userID string) {
	h.connsMu.Lock()
	h.conns[c] = &connState{userID: userID, agents: seesAgentsOnly(c), threads: map[string]struct{}{}}
	if h.users[userID] == nil {
		h.users[userID] = map[Conn]struct{}{}
	}
	h.users[userID][c] = struct{}{}
	h.connsMu.Unlock()
	h.cfg.Observer.ConnRegistered(c, userID)
}

// Unregister detaches c from every thread and forgets it. Safe to call twice.
func (h *Hub) Unregister(c Conn) {
	h.connsMu.Lock()
	st := h.conns[c]
	delete(h.conns, c)
	if st != nil {
		delete(h.users[st.userID], c)
		if len(h.users[st.userID]) == 0 {
			delete(h.users, st.userID)
		}
	}
	h.connsMu.Unlock()
	if st == nil {
		return
	}
	defer h.cfg.Observer.ConnUnregistered(c, st.userID)
	for id := range st.threads {
		h.removeListener(id, c)
	}
}

// Attach makes c a listener of threadID. It reports false when c is not
// registered (it has already ended).
func (h *Hub) Attach(threadID string, c Conn) bool {
	_, ok := h.attach(threadID, c)
	return ok
}

func (h *Hub) attach(threadID string, c Conn) (Position, bool) {
	h.connsMu.Lock()
	st := h.conns[c]
	if st != nil {
		st.threads[threadID] = struct{}{}
	}
	h.connsMu.Unlock()
	if st == nil {
		return Position{}, false
	}
	s := h.shard(threadID)
	s.mu.Lock()
	t := h.threadLocked(s, threadID)
	t.listeners[c] = st.agents
	pos := Position{Epoch: t.epoch, Offset: t.offset}
	s.mu.Unlock()
	return pos, true
}

// AttachPosition makes c a listener of threadID and returns the thread's
// position at that moment, in one step under the thread's lock: every push
// after that position reaches c, and none before it does.
func (h *Hub) AttachPosition(threadID string, c Conn) (Position, bool) {
	return h.attach(threadID, c)
}

// Detach stops c listening to threadID.
func (h *Hub) Detach(threadID string, c Conn) {
	h.connsMu.Lock()
	if st := h.conns[c]; st != nil {
		delete(st.threads, threadID)
	}
	h.connsMu.Unlock()
	h.removeListener(threadID, c)
}

// Attached reports how many threads c listens to.
func (h *Hub) Attached(c Conn) int {
	h.connsMu.Lock()
	defer h.connsMu.Unlock()
	if st := h.conns[c]; st != nil {
		return len(st.threads)
	}
	return 0
}

func (h *Hub) removeListener(threadID string, c Conn) {
	s := h.shard(threadID)
	s.mu.Lock()
	if t := s.threads[threadID]; t != nil {
		delete(t.listeners, c)
	}
	s.mu.Unlock()
}

func (h *Hub) threadLocked(s *shard, id string) *thread {
	t := s.threads[id]
	if t == nil {
		t = &thread{listeners: map[Conn]bool{}, epoch: h.newThreadEpoch(), history: newRing(h.cfg.HistorySize)}
		s.threads[id] = t
	}
	return t
}

// Position is a place in a thread's push history.
type Position struct {
	Epoch  string `json:"epoch"`
	Offset uint64 `json:"offset"`
}

// Publish assigns the next offset of threadID, lets build produce the payload
// for that position (a message carries its own offset), records the push in the
// thread's history and delivers it to every listener except skip (nil for none).
// Listeners that cannot take it are closed as slow.
func (h *Hub) Publish(threadID, event string, skip Conn, build func(Position) ([]byte, error)) (*Push, error) {
	return h.PublishAudience(threadID, event, skip, false, build)
}

// PublishAudience is Publish with the push's audience: agentsOnly marks it
// AgentsOnly (a whisper), delivered and recovered only by the connections
// that may see it. It takes its offset in the history all the same.
func (h *Hub) PublishAudience(threadID, event string, skip Conn, agentsOnly bool, build func(Position) ([]byte, error)) (*Push, error) {
	s := h.shard(threadID)
	s.mu.Lock()
	t := h.threadLocked(s, threadID)
	pos := Position{Epoch: t.epoch, Offset: t.offset + 1}
	data, err := build(pos)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	t.offset = pos.Offset
	p := &Push{Event: event, ThreadID: threadID, Epoch: pos.Epoch, Offset: pos.Offset, Data: data, At: time.Now(), AgentsOnly: agentsOnly}
	t.history.add(p)
	slow, n := h.fanOutLocked(t, p, skip)
	s.mu.Unlock()
	h.cfg.Metrics.Delivered(n)
	h.closeSlow(slow)
	return p, nil
}

// fanOutLocked delivers p and returns the listeners that refused it, already
// removed from t, and how many took it; the caller closes the ones that
// refused, and tells the metrics, outside the lock.
func (h *Hub) fanOutLocked(t *thread, p *Push, skip Conn) (slow []Conn, delivered int) {
	for c, agents := range t.listeners {
		if c == skip || (p.AgentsOnly && !agents) {
			continue
		}
		if c.Deliver(p) {
			delivered++
			continue
		}
		delete(t.listeners, c)
		slow = append(slow, c)
	}
	return slow, delivered
}

// closeSlow cuts the connections that refused a push: each is forgotten
// (its observer told) and closed with ReasonSlow. The caller holds no hub
// lock.
func (h *Hub) closeSlow(slow []Conn) {
	if len(slow) == 0 {
		return
	}
	h.cfg.Metrics.Dropped(len(slow))
	for _, c := range slow {
		h.Unregister(c)
		c.Close(ReasonSlow)
	}
}

// Broadcast delivers a push that is not part of the thread's history (typing,
// presence) to the thread's listeners except skip.
func (h *Hub) Broadcast(threadID string, p *Push, skip Conn) {
	s := h.shard(threadID)
	s.mu.Lock()
	var slow []Conn
	n := 0
	if t := s.threads[threadID]; t != nil {
		slow, n = h.fanOutLocked(t, p, skip)
	}
	s.mu.Unlock()
	h.cfg.Metrics.Delivered(n)
	h.closeSlow(slow)
}

// Resume makes c a listener of threadID and, in the same step, delivers to c
// the pushes after from, so that they come before any later push. recovered
// is false when the gap cannot be given (see Since); c listens all the same.
// now is the thread's current position.
func (h *Hub) Resume(threadID string, c Conn, from Position) (missed int, recovered bool, now Position) {
	if !h.Attach(threadID, c) {
		return 0, false, Position{}
	}
	s := h.shard(threadID)
	s.mu.Lock()
	t := h.threadLocked(s, threadID)
	now = Position{Epoch: t.epoch, Offset: t.offset}
	var pushes []*Push
	switch {
	case from.Epoch != t.epoch || from.Offset > t.offset:
	case from.Offset == t.offset:
		recovered = true
	default:
		pushes, recovered = t.history.since(from.Offset, time.Now().Add(-h.cfg.HistoryTTL))
	}
	var slow []Conn
	agents := t.listeners[c]
	for _, p := range pushes {
		if p.AgentsOnly && !agents {
			continue // a whisper: not for this connection, and not missed by it
		}
		if !c.Deliver(p) {
			delete(t.listeners, c)
			slow = append(slow, c)
			recovered = false
			break
		}
		missed++
	}
	s.mu.Unlock()
	h.closeSlow(slow)
	return missed, recovered, now
}

// DetachUser stops every connection of userID on this node listening to
// threadID and returns them, so the caller can tell them why.
func (h *Hub) DetachUser(threadID, userID string) []Conn {
	h.connsMu.Lock()
	var conns []Conn
	for c := range h.users[userID] {
		if st := h.conns[c]; st != nil {
			if _, ok := st.threads[threadID]; ok {
				delete(st.threads, threadID)
				conns = append(conns, c)
			}
		}
	}
	h.connsMu.Unlock()
	for _, c := range conns {
		h.removeListener(threadID, c)
	}
	return conns
}

// ListenerUsers returns the users with a connection listening to threadID.
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

// Position returns the current position of threadID's history, starting the
// history when there is none yet, so that a client told this position can
// later recover from it.
func (h *Hub) Position(threadID string) Position {
	s := h.shard(threadID)
	s.mu.Lock()
	defer s.mu.Unlock()
	t := h.threadLocked(s, threadID)
	return Position{Epoch: t.epoch, Offset: t.offset}
}

// Since returns the pushes of threadID after the position from, in order,
// leaving out AgentsOnly pushes (Since knows no recipient; Resume delivers
// them to the connections that may see them).
// ok is false when they cannot all be given: another epoch (the history was
// lost), an offset from the future, or a gap older than the kept history.
func (h *Hub) Since(threadID string, from Position) (pushes []*Push, ok bool) {
	s := h.shard(threadID)
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.threads[threadID]
	if t == nil || from.Epoch != t.epoch || from.Offset > t.offset {
		return nil, false
	}
	if from.Offset == t.offset {
		return nil, true
	}
	all, ok := t.history.since(from.Offset, time.Now().Add(-h.cfg.HistoryTTL))
	pushes = all[:0:0]
	for _, p := range all {
		if !p.AgentsOnly {
			pushes = append(pushes, p)
		}
	}
	return pushes, ok
}

// SendToUser delivers a push that belongs to no thread history to every
// connection of userID on this node but skip (nil for none). It returns how
// many took it.
func (h *Hub) SendToUser(userID string, p *Push, skip Conn) int {
	h.connsMu.Lock()
	targets := make([]Conn, 0, len(h.users[userID]))
	for c := range h.users[userID] {
		if c != skip && (!p.AgentsOnly || h.conns[c].agents) {
			targets = append(targets, c)
		}
	}
	h.connsMu.Unlock()
	n := 0
	var slow []Conn
	for _, c := range targets {
		if c.Deliver(p) {
			n++
		} else {
			slow = append(slow, c)
		}
	}
	h.cfg.Metrics.Delivered(n)
	h.closeSlow(slow)
	return n
}

// Connections returns how many connections are registered.
func (h *Hub) Connections() int {
	h.connsMu.Lock()
	defer h.connsMu.Unlock()
	return len(h.conns)
}

// UserConnections returns how many connections userID has on this node.
func (h *Hub) UserConnections(userID string) int {
	h.connsMu.Lock()
	defer h.connsMu.Unlock()
	return len(h.users[userID])
}

// Prune forgets the threads that nobody listens to and whose newest push is
// older than the history TTL. Run calls it periodically.
func (h *Hub) Prune(now time.Time) (pruned int) {
	cutoff := now.Add(-h.cfg.HistoryTTL)
	for i := range h.shards {
		s := &h.shards[i]
		s.mu.Lock()
		for id, t := range s.threads {
			if len(t.listeners) == 0 && !t.history.newestAfter(cutoff) {
				delete(s.threads, id)
				pruned++
			}
		}
		s.mu.Unlock()
	}
	return pruned
}

// Run prunes idle threads every interval until ctx is done.
func (h *Hub) Run(ctx context.Context, interval time.Duration) {
	periodic.Run(ctx, interval, func(now time.Time) { h.Prune(now) })
}

// Shutdown closes every connection with ReasonShutdown.
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
	for _, c := range conns {
		h.Unregister(c)
		c.Close(ReasonShutdown)
	}
}
