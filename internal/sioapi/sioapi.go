// Package sioapi owns ECB over Socket.IO: the handshake that authenticates a
// socket (userToken, or accessToken exchanged through the backend), the
// operations as events answered through the ack with the {data}/{error}
// envelope, the pushes as events, and the token's expiry on a live socket.
// Like package sse it only decodes, calls package ops and encodes; the
// protocol itself is package socketio.
//
// Operations of one socket run one at a time, in the order the client sent
// them, on a worker goroutine that exists only while the socket has work
// queued: the socket's reader never waits for the backend (it must keep
// reading pongs), and a client can never have more than MaxPendingOps
// operations waiting (beyond that it gets rate_limited). Each operation has
// its own request id (package reqid): on its log lines and in the
// ECB-Request-Id of its backend calls.
//
// The API owns the workers and knows its sockets: Shutdown drains in order.
// It refuses new sockets and new operations (unavailable), tells every
// socket closing {reason: "shutdown"}, waits for the operations already
// accepted (they complete and are acked), then closes the Engine.IO
// connections, after which clients reconnect by themselves (to another node).
//
// Locks: conn.mu (a socket's queue and token expiry) may be held while API.mu
// (the sockets, the draining flag, the workers' count) or the expiry heap's
// lock (a leaf: the heap calls conn.onExpiry with none of its own held) is
// taken, never the other way round; none is held while sending to a socket.
package sioapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/auth"
	"github.com/ecbridge/ecb/internal/hub"
	"github.com/ecbridge/ecb/internal/ops"
	"github.com/ecbridge/ecb/internal/reqid"
	"github.com/ecbridge/ecb/internal/socketio"
	"github.com/ecbridge/ecb/internal/timerheap"
)

// Config tunes the transport.
type Config struct {
	Socket socketio.Config
	// TokenExpiryWarning is how long before the userToken expires the socket
	// gets tokenExpiring (default 60s).
	TokenExpiryWarning time.Duration
	// MaxPendingOps bounds the operations queued per socket (default 32).
	MaxPendingOps int
	// ReconnectJitter bounds the random delay each socket is told to wait
	// (closing {reconnectAfterMs}) before it reconnects when this node
	// shuts down (default 2s).
	ReconnectJitter time.Duration
}

// Gauge counts open sockets.
type Gauge interface {
	StreamOpened()
	StreamClosed()
}

// Events of this transport beyond the operations.
const (
	EventSession       = "session"       // ECB → client, after an accessToken handshake
	EventTokenExpiring = "tokenExpiring" // ECB → client, before the userToken expires
	EventRefreshToken  = "refreshToken"  // client → ECB, with ack: {userToken}
	EventClosing       = "closing"       // ECB → client, {reason}, before ECB ends the session
)

// API serves ECB over Socket.IO.
type API struct {
	cfg   Config
	srv   *socketio.Server
	ops   *ops.Service
	hub   *hub.Hub
	log   *slog.Logger
	gauge Gauge

	mu       sync.Mutex
	conns    map[*conn]struct{} // the connected sockets
	draining bool               // Shutdown began
	workers  sync.WaitGroup     // the operation workers; Add only under mu while !draining

	expiries *timerheap.Heap[*conn] // every socket's token-expiry deadline
}

// New returns the transport, ready to serve /socket.io/.
func New(cfg Config, svc *ops.Service, h *hub.Hub, log *slog.Logger, gauge Gauge) *API {
	if cfg.TokenExpiryWarning <= 0 {
		cfg.TokenExpiryWarning = time.Minute
	}
	if cfg.ReconnectJitter <= 0 {
		cfg.ReconnectJitter = 2 * time.Second
	}
	if cfg.MaxPendingOps <= 0 {
		cfg.MaxPendingOps = 32
	}
	if cfg.Socket.Logger == nil {
		cfg.Socket.Logger = log
	}
	if cfg.Socket.OriginRefusal == nil {
		// A page of a foreign origin reads forbidden in its connect_error,
		// on either transport, and nothing else: no session exists.
		cfg.Socket.OriginRefusal = func(r *http.Request) error {
			return connectError(apierr.New(apierr.Forbidden, "origin %q is not allowed", r.Header.Get("Origin")))
		}
	}
	a := &API{cfg: cfg, srv: socketio.NewServer(cfg.Socket), ops: svc, hub: h, log: log, gauge: gauge, conns: map[*conn]struct{}{}}
	a.expiries = timerheap.New((*conn).onExpiry)
	ns := a.srv.Namespace("/")
	ns.Use(a.handshake)
	ns.OnConnection(a.connected)
	return a
}

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.srv.ServeHTTP(w, r) }

// Refuse answers a Socket.IO handshake refused before any work (the per-IP
// handshake rate, the node's connection limit) so that the client reads the
// error's code: a connect_error whose data is {code, message, retryAfter?},
// on both transports, with no session behind it (socketio.Server.Refuse).
// It returns false, writing nothing, for a request that is not an Engine.IO
// handshake: the caller answers those with the HTTP status.
func (a *API) Refuse(w http.ResponseWriter, r *http.Request, err error) bool {
	return a.srv.Refuse(w, r, connectError(err))
}

// errDraining answers what arrives once Shutdown began.
var errDraining = &apierr.Error{Code: apierr.Unavailable, Message: "this node is shutting down: reconnect (to another node)"}

// Shutdown drains the transport within ctx: it refuses new sockets and new
// operations (unavailable), tells every socket closing {reason: "shutdown"},
// waits for the operations already accepted (their acks are sent), then
// closes every Engine.IO connection and waits for its goroutines. When ctx
// ends first, the connections are closed at once (the operations still
// running are cancelled with their sockets) and ctx's error is returned.
func (a *API) Shutdown(ctx context.Context) error {
	a.mu.Lock()
	a.draining = true
	conns := make([]*conn, 0, len(a.conns))
	for c := range a.conns {
		conns = append(conns, c)
	}
	a.mu.Unlock()
	for _, c := range conns {
		_ = c.socket.Emit(EventClosing, a.shutdownClosing())
	}
	idle := make(chan struct{})
	go func() {
		a.workers.Wait() // no Add after draining: this ends once the accepted operations have
		close(idle)
	}()
	var err error
	select {
	case <-idle:
	case <-ctx.Done():
		err = fmt.Errorf("socket.io: operations still running: %w", ctx.Err())
	}
	err = errors.Join(err, a.srv.Shutdown(ctx))
	a.expiries.Close()
	return err
}

// startWorker counts a new operation worker; false once Shutdown began.
func (a *API) startWorker() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.draining {
		return false
	}
	a.workers.Add(1)
	return true
}

func (a *API) isDraining() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.draining
}

// handshakeAuth is the auth payload of the CONNECT packet.
type handshakeAuth struct {
	UserToken   string `json:"userToken"`
	AccessToken string `json:"accessToken"`
}

// session is what a socket knows of its user.
type session struct {
	mu       sync.Mutex
	user     *auth.User
	announce *ops.GetUserTokenResult // sent as the session event, then cleared
}

func (s *session) current() *auth.User {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.user
}

// connectError turns an operation error into the CONNECT_ERROR the client's
// connect_error shows: message, and data {code, message}.
func connectError(err error) error {
	e := apierr.From(err)
	return &socketio.ConnectError{Message: e.Message, Data: e.Body()}
}

func (a *API) handshake(h *socketio.Handshake) error {
	if a.isDraining() {
		return connectError(errDraining)
	}
	var ha handshakeAuth
	if err := ops.Decode(h.Auth, &ha); err != nil {
		return connectError(err)
	}
	origin := auth.RequestOrigin(h.Request())
	sess := &session{}
	token := ha.UserToken
	if token == "" && ha.AccessToken != "" {
		res, err := a.ops.GetUserToken(context.Background(), ops.GetUserTokenRequest{AccessToken: ha.AccessToken})
		if err != nil {
			return connectError(err)
		}
		token, sess.announce = res.UserToken, res
	}
	u, err := a.ops.Authenticate(token, origin)
	if err == nil {
		err = a.ops.AdmitConnection(u.ID) // limits.connectionsPerUser, limits.maxConnections
	}
	if err != nil {
		return connectError(err)
	}
	sess.user = u
	h.Data = sess
	// The token is verified and what ECB needs of it is in the session: the
	// raw CONNECT payload (the token, often near 1 KB, and the frame it was
	// read from) is not kept for the socket's life (Handshake().Auth).
	h.Auth = nil
	return nil
}

func (a *API) connected(s *socketio.Socket) {
	sess := s.Data().(*session)
	c := &conn{socket: s, api: a, sess: sess}
	a.mu.Lock()
	draining := a.draining
	if !draining {
		a.conns[c] = struct{}{}
	}
	a.mu.Unlock()
	if draining { // connected while Shutdown began: it does not know this socket
		c.Close(hub.ReasonShutdown)
		return
	}
	a.hub.Register(c, sess.user.ID)
	a.gauge.StreamOpened()
	c.armExpiry(sess.user)
	s.OnDisconnect(c.disconnected)
	s.OnAny(c.onEvent)
	if sess.announce != nil {
		_ = s.Emit(EventSession, sess.announce)
		sess.announce = nil
	}
}

// disconnected forgets the connection once its socket is gone. A method
// value (one word of state, c) rather than a closure over c and a: it is
// kept for the connection's life.
func (c *conn) disconnected(string) {
	a := c.api
	c.stopExpiry()
	c.cancelOps()
	a.hub.Unregister(c)
	a.gauge.StreamClosed()
	a.mu.Lock()
	delete(a.conns, c)
	a.mu.Unlock()
}

// conn is a socket as the hub sees it, and its operation queue.
type conn struct {
	socket *socketio.Socket
	api    *API
	sess   *session

	mu         sync.Mutex
	queue      []func()
	cancelOp   context.CancelFunc // of the operation running now (one at a time: work)
	expiry     timerheap.Entry    // in the API's expiries: warns before the token expires, then disconnects at expiry
	expiryUser *auth.User         // whose token expiry is armed; nil when stopped
	running    bool
	gone       bool // disconnected: operations start cancelled
	warned     bool // tokenExpiring was sent for expiryUser
}

var _ hub.Conn = (*conn)(nil)

// SeesAgentsOnly lets the hub deliver whispers (AgentsOnly pushes) to this
// socket when its user, as authenticated at the handshake, sees whispers
// (ops.SeesWhispers; hub.AgentsAudience, asked once, at Register).
func (c *conn) SeesAgentsOnly() bool { return ops.SeesWhispers(c.sess.current()) }

func encodePush(p *hub.Push) []byte {
	b, err := socketio.EncodeEventFrame("/", p.Event, json.RawMessage(p.Payload()))
	if err != nil {
		return nil // the payload is JSON ECB encoded itself; this does not happen
	}
	return b
}

// Deliver implements hub.Conn: it only queues the frame, or reports false
// (disconnected, or the write queue is full) and leaves the socket as it
// is. The hub calls it under its locks; it cuts the socket afterwards,
// outside them, with Close(ReasonSlow).
func (c *conn) Deliver(p *hub.Push) bool {
	frame := p.Frame(hub.EncodingSocketIO, encodePush)
	return frame != nil && c.socket.TrySendFrame(frame)
}

// closingEvent tells a client why ECB ends its session, just before the
// DISCONNECT packet (after which socket.io-client does not reconnect alone).
type closingEvent struct {
	Reason string `json:"reason"`
	// ReconnectAfterMs, on a shutdown, is how long to wait before
	// reconnecting (to another node): random, so that the clients of a node
	// do not all reconnect at once.
	ReconnectAfterMs int64 `json:"reconnectAfterMs,omitempty"`
}

// shutdownClosing is the closing event of a shutdown, with its delay.
func (a *API) shutdownClosing() closingEvent {
	return closingEvent{Reason: string(hub.ReasonShutdown), ReconnectAfterMs: (250*time.Millisecond + mrand.N(a.cfg.ReconnectJitter)).Milliseconds()}
}

// Close implements hub.Conn.
func (c *conn) Close(reason hub.Reason) {
	switch reason {
	case hub.ReasonSlow:
		// The write queue is full: nothing more can be told. The connection
		// is closed as a slow consumer (with its log line), which ends the
		// socket (OnDisconnect).
		c.socket.CloseSlow()
	case hub.ReasonShutdown:
		// The transport closes without a DISCONNECT packet, so that the
		// client reconnects by itself (to another node).
		_ = c.socket.Emit(EventClosing, c.api.shutdownClosing())
		c.socket.Conn().Close()
	default:
		c.end(string(reason))
	}
}

// end tells the client why, then disconnects the socket.
func (c *conn) end(reason string) {
	_ = c.socket.Emit(EventClosing, closingEvent{Reason: reason})
	c.socket.Disconnect(false)
}

func (c *conn) onEvent(s *socketio.Socket, event string, args []json.RawMessage, ack socketio.Ack) {
	if ack == nil {
		c.api.log.Debug("socket.io event without ack ignored", "event", event)
		return
	}
	var payload json.RawMessage
	if len(args) > 0 {
		payload = args[0]
	}
	// The operation's own request id: on its log lines (the server's
	// logger adds it) and in the ECB-Request-Id of its backend calls.
	id := reqid.New()
	job := func() {
		opCtx, cancel := c.opContext()
		defer cancel()
		ctx := reqid.With(opCtx, id)
		var data any
		var err error
		if event == EventRefreshToken {
			data, err = c.refresh(payload)
		} else {
			data, err = c.api.ops.Call(ctx, ops.Caller{User: c.sess.current(), Conn: c}, event, payload)
		}
		_ = ack(apierr.Result(data, err))
	}
	if err := c.enqueue(job); err != nil {
		_ = ack(apierr.Result(nil, err))
	}
}

var errBusy = &apierr.Error{Code: apierr.RateLimited, Message: "too many operations in flight on this connection", RetryAfter: time.Second}

// enqueue adds job to the socket's queue and starts the worker if none runs.
// Once Shutdown began, it refuses (errDraining): a worker still running
// finishes what was accepted before.
func (c *conn) enqueue(job func()) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) >= c.api.cfg.MaxPendingOps {
		return errBusy
	}
	if !c.running {
		if !c.api.startWorker() {
			return errDraining
		}
		c.running = true
		go c.work()
	} else if c.api.isDraining() {
		return errDraining
	}
	c.queue = append(c.queue, job)
	return nil
}

// work runs queued jobs until the queue is empty; it is the queue's only
// consumer and exits as soon as there is nothing left, so an idle socket
// costs no goroutine. The API counts it (Shutdown waits for it).
func (c *conn) work() {
	defer c.api.workers.Done()
	for {
		c.mu.Lock()
		if len(c.queue) == 0 {
			c.running = false
			c.mu.Unlock()
			return
		}
		job := c.queue[0]
		c.queue[0] = nil
		c.queue = c.queue[1:]
		c.mu.Unlock()
		job()
	}
}

type refreshRequest struct {
	UserToken string `json:"userToken"`
}

type refreshResult struct {
	ExpiresAt time.Time `json:"expiresAt"`
}

// refresh swaps the socket's userToken for a fresh one of the same user.
func (c *conn) refresh(payload json.RawMessage) (any, error) {
	var req refreshRequest
	if err := ops.Decode(payload, &req); err != nil {
		return nil, err
	}
	origin := auth.RequestOrigin(c.socket.Handshake().Request())
	u, err := c.api.ops.Authenticate(req.UserToken, origin)
	if err != nil {
		return nil, err
	}
	if u.ID != c.sess.current().ID {
		return nil, apierr.New(apierr.Forbidden, "the new userToken is for another user")
	}
	c.sess.mu.Lock()
	c.sess.user = u
	c.sess.mu.Unlock()
	c.armExpiry(u)
	return refreshResult{ExpiresAt: u.ExpiresAt}, nil
}

type expiringEvent struct {
	ExpiresAt time.Time `json:"expiresAt"`
}

// opContext returns the context of one operation, cancelled when it ends
// (cancel) or when the socket disconnects. It is not derived from the
// socket's context: a child registers itself in its parent, whose children
// map and done channel, once made, would stay with every idle socket for
// its whole life (about 0.5 KB). Operations of a socket run one at a time
// (work), so one cancel func is enough.
func (c *conn) opContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	c.mu.Lock()
	gone := c.gone
	if !gone {
		c.cancelOp = cancel
	}
	c.mu.Unlock()
	if gone {
		cancel()
		return ctx, cancel
	}
	return ctx, func() {
		c.mu.Lock()
		c.cancelOp = nil
		c.mu.Unlock()
		cancel()
	}
}

// cancelOps cancels the operation running now, and every later one.
func (c *conn) cancelOps() {
	c.mu.Lock()
	c.gone = true
	cancel := c.cancelOp
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// armExpiry (re)sets the deadline that warns before the token expires and
// disconnects at expiry: one place in the API's expiry heap, moved from
// the warning to the expiry (an idle socket holds no timer of its own).
func (c *conn) armExpiry(u *auth.User) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expiryUser, c.warned = u, false
	c.api.expiries.Schedule(c, max(time.Until(u.ExpiresAt)-c.api.cfg.TokenExpiryWarning, 0))
}

// TimerEntry is the socket's place in the API's expiry heap.
func (c *conn) TimerEntry() *timerheap.Entry { return &c.expiry }

// onExpiry, called by the expiry heap, warns (tokenExpiring) and moves the
// deadline to the expiry, or disconnects at the expiry.
func (c *conn) onExpiry() {
	c.mu.Lock()
	u := c.expiryUser
	if u == nil || c.api.expiries.Scheduled(c) {
		c.mu.Unlock()
		return // stopped, or a fire of the deadline before armExpiry moved it
	}
	if !c.warned {
		c.warned = true
		c.api.expiries.Schedule(c, max(time.Until(u.ExpiresAt), 0))
		c.mu.Unlock()
		_ = c.socket.Emit(EventTokenExpiring, expiringEvent{ExpiresAt: u.ExpiresAt})
		return
	}
	c.expiryUser = nil
	c.mu.Unlock()
	c.api.log.Debug("socket token expired", "user", u.ID)
	c.end("token_expired")
}

func (c *conn) stopExpiry() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expiryUser = nil
	c.api.expiries.Stop(c)
}
