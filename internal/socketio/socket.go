package socketio

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"sync"
	"sync/atomic"
)

// EventHandler handles one event. args are the event's arguments as raw
// JSON (binary attachments as described on Binary); they belong to the
// handler. ack is nil when the client asked for no acknowledgement.
type EventHandler func(s *Socket, args []json.RawMessage, ack Ack)

// AnyHandler handles the events that have no EventHandler.
type AnyHandler func(s *Socket, event string, args []json.RawMessage, ack Ack)

// Ack answers an event the client sent with an acknowledgement callback.
// Arguments are encoded like Emit's. It may be called from any goroutine,
// once; a second call returns ErrAckTwice.
type Ack func(args ...any) error

// Socket is a client connected to one namespace. Its methods are safe for
// concurrent use.
type Socket struct {
	id   [idBytes]byte // random; ID is its encoding, made when asked (it is sent once, in the CONNECT reply)
	ns   *Namespace
	cl   *client
	auth json.RawMessage // Handshake.Auth as the middlewares left it; the rest of the Handshake is in ns, cl and data
	ctx  *socketCtx      // made by Context on first use; guarded by mu

	connected atomic.Bool

	mu       sync.Mutex
	handlers map[string]EventHandler
	anyH     AnyHandler
	onDisc   func(reason string) // the OnDisconnect functions, chained in order
	acks     map[int64]chan []json.RawMessage
	nextAck  int64
	data     any
}

func newSocket(cl *client, ns *Namespace, h *Handshake) *Socket {
	s := &Socket{ns: ns, cl: cl, auth: h.Auth, data: h.Data}
	_, _ = rand.Read(s.id[:])
	s.connected.Store(true)
	return s
}

// ID returns the socket id (the "sid" of the CONNECT reply). It differs
// from the Engine.IO session id.
func (s *Socket) ID() string { return base64.RawURLEncoding.EncodeToString(s.id[:]) }

// Namespace returns the name of the socket's namespace.
func (s *Socket) Namespace() string { return s.ns.name }

// Handshake returns the handshake the socket connected with: its
// namespace, Auth as the middlewares left it, the Engine.IO connection, and
// Data as it is now (SetData). Each call builds a new one (the socket keeps
// only what is not elsewhere: it lives as long as the connection).
func (s *Socket) Handshake() *Handshake {
	return &Handshake{Namespace: s.ns.name, Auth: s.auth, Conn: s.cl.conn, Data: s.Data()}
}

// socketCtx is a socket's context, apart from the Socket: most sockets are
// never asked for one.
type socketCtx struct {
	ctx    context.Context
	cancel context.CancelFunc
}

// Conn returns the underlying Engine.IO connection, shared by the sockets
// of every namespace the client joined through it.
func (s *Socket) Conn() *EngineConn { return s.cl.conn }

// Context returns a context cancelled when the socket disconnects. It is
// made on the first call: a socket nobody asks for one holds none.
func (s *Socket) Context() context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx == nil {
		ctx, cancel := context.WithCancel(context.Background())
		s.ctx = &socketCtx{ctx, cancel}
		if !s.connected.Load() {
			cancel()
		}
	}
	return s.ctx.ctx
}

// Connected reports whether the socket is still connected.
func (s *Socket) Connected() bool { return s.connected.Load() }

// Data returns the value set by the middlewares (Handshake.Data) or SetData.
func (s *Socket) Data() any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.data
}

// SetData replaces the socket's Data.
func (s *Socket) SetData(v any) {
	s.mu.Lock()
	s.data = v
	s.mu.Unlock()
}

// On sets the handler of event, replacing any previous one. Handlers run on
// the connection's reader goroutine, one at a time and in the order the
// client sent the events; they must not block (hand slow work to another
// goroutine and answer through ack, which is safe to call from it).
func (s *Socket) On(event string, h EventHandler) {
	s.mu.Lock()
	if s.handlers == nil {
		s.handlers = make(map[string]EventHandler)
	}
	s.handlers[event] = h
	s.mu.Unlock()
}

// OnAny sets the handler of events that have no handler of their own.
func (s *Socket) OnAny(h AnyHandler) {
	s.mu.Lock()
	s.anyH = h
	s.mu.Unlock()
}

// OnDisconnect adds a function called once when the socket disconnects, with
// the reason (a Reason constant). It runs after the last event handler of
// the socket has returned. Register it in the namespace's OnConnection.
func (s *Socket) OnDisconnect(fn func(reason string)) {
	s.mu.Lock()
	if prev := s.onDisc; prev != nil {
		s.onDisc = func(reason string) { prev(reason); fn(reason) }
	} else {
		s.onDisc = fn
	}
	s.mu.Unlock()
}

// Emit sends an event with arguments, encoded with encoding/json (Binary
// values as attachments). It does not block: the packet is queued. It
// returns ErrClosed after disconnect, ErrSlowConsumer if the write queue is
// full (the connection is then closed).
func (s *Socket) Emit(event string, args ...any) error {
	if reservedEvents[event] {
		return ErrReservedEvent
	}
	if !s.connected.Load() {
		return ErrClosed
	}
	frames, err := encodePacket(sioEvent, s.ns.name, -1, true, event, args)
	if err != nil {
		return err
	}
	return s.cl.conn.enqueueAll(frames)
}

// EmitWithAck sends an event that asks the client for an acknowledgement
// and waits for it: it returns the client's ack arguments, ctx.Err() when
// ctx is done first, or ErrClosed when the socket disconnects first.
func (s *Socket) EmitWithAck(ctx context.Context, event string, args ...any) ([]json.RawMessage, error) {
	done := s.Context().Done() // closed when the socket disconnects
	if reservedEvents[event] {
		return nil, ErrReservedEvent
	}
	ch := make(chan []json.RawMessage, 1)
	s.mu.Lock()
	if !s.connected.Load() {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	id := s.nextAck
	s.nextAck++
	if s.acks == nil {
		s.acks = make(map[int64]chan []json.RawMessage)
	}
	s.acks[id] = ch
	s.mu.Unlock()
	drop := func() {
		s.mu.Lock()
		delete(s.acks, id)
		s.mu.Unlock()
	}
	frames, err := encodePacket(sioEvent, s.ns.name, id, true, event, args)
	if err == nil {
		err = s.cl.conn.enqueueAll(frames)
	}
	if err != nil {
		drop()
		return nil, err
	}
	select {
	case res := <-ch:
		return res, nil
	case <-ctx.Done():
		drop()
		return nil, ctx.Err()
	case <-done:
		drop()
		return nil, ErrClosed
	}
}

// SendEncoded queues a packet made by EncodeEvent for this socket's
// namespace. The bytes are shared, not copied: many sockets may be sent the
// same slice, which must not be modified afterwards. It never blocks. It
// returns false if the socket is disconnected, or if the write queue is
// full, in which case the connection is closed as a slow consumer (reason
// "slow consumer") with a log line.
func (s *Socket) SendEncoded(packet []byte) bool {
	if !s.connected.Load() {
		return false
	}
	return s.cl.conn.enqueue(frame{typ: eioMessage, data: packet}) == nil
}

// TrySendEncoded is SendEncoded for a caller that must not close anything
// where it stands (it holds locks of its own): it queues packet, or reports
// false when the socket is disconnected or the write queue is full, and then
// leaves the connection as it is. The caller closes it later with CloseSlow.
func (s *Socket) TrySendEncoded(packet []byte) bool {
	if !s.connected.Load() {
		return false
	}
	return s.cl.conn.tryEnqueue(frame{typ: eioMessage, data: packet}) == nil
}

// SendFrame is SendEncoded for a frame made by EncodeEventFrame for this
// socket's namespace: the bytes are shared, not copied, and must not be
// modified afterwards.
func (s *Socket) SendFrame(wsFrame []byte) bool {
	if !s.connected.Load() {
		return false
	}
	return s.cl.conn.enqueue(frame{typ: eioMessage, ws: true, data: wsFrame}) == nil
}

// TrySendFrame is TrySendEncoded for a frame made by EncodeEventFrame.
func (s *Socket) TrySendFrame(wsFrame []byte) bool {
	if !s.connected.Load() {
		return false
	}
	return s.cl.conn.tryEnqueue(frame{typ: eioMessage, ws: true, data: wsFrame}) == nil
}

// CloseSlow closes the socket's connection as a slow consumer, as a send
// that finds the write queue full does (reason "slow consumer", a log
// line): for the caller of TrySendEncoded, outside its locks. It does not
// block and may be called more than once.
func (s *Socket) CloseSlow() { s.cl.conn.slow() }

// Disconnect disconnects the socket from its namespace: the client gets a
// DISCONNECT packet (and socket.io-client does not reconnect by itself).
// With close set, every socket of the underlying connection is disconnected
// the same way and the Engine.IO connection is closed.
func (s *Socket) Disconnect(close bool) {
	if close {
		s.cl.disconnectAll()
		return
	}
	s.disconnect()
}

func (s *Socket) disconnect() {
	if !s.detach() {
		return
	}
	_ = s.cl.send(appendSIOHeader(make([]byte, 0, 4+len(s.ns.name)), sioDisconnect, 0, s.ns.name, -1))
	s.cl.conn.e.track.Go(func() {
		s.cl.conn.recvMu.Lock()
		defer s.cl.conn.recvMu.Unlock()
		s.finish(ReasonServerDisconnect)
	})
}

// detach marks the socket disconnected and removes it from its client; it
// returns false if it already was.
func (s *Socket) detach() bool {
	s.mu.Lock()
	if !s.connected.Load() {
		s.mu.Unlock()
		return false
	}
	s.connected.Store(false)
	ctx := s.ctx
	s.mu.Unlock()
	if ctx != nil {
		ctx.cancel()
	}
	s.cl.remove(s)
	return true
}

// finish runs the disconnect callbacks. The caller holds the connection's
// receive lock (it runs on the reader, or in OnClose).
func (s *Socket) finish(reason string) {
	s.mu.Lock()
	fn := s.onDisc
	s.onDisc = nil
	s.acks = nil
	s.mu.Unlock()
	if fn != nil {
		fn(reason)
	}
}

func (s *Socket) dispatchEvent(p sioPacket) {
	name := eventName(p.args[0])
	args := p.args[1:]
	var ack Ack
	if p.id >= 0 {
		ack = s.makeAck(p.id)
	}
	s.mu.Lock()
	h, anyH := s.handlers[name], s.anyH
	s.mu.Unlock()
	switch {
	case h != nil:
		h(s, args, ack)
	case anyH != nil:
		anyH(s, name, args, ack)
	}
}

func (s *Socket) makeAck(id int64) Ack {
	var sent atomic.Bool
	return func(args ...any) error {
		if !sent.CompareAndSwap(false, true) {
			return ErrAckTwice
		}
		if !s.connected.Load() {
			return ErrClosed
		}
		frames, err := encodePacket(sioAck, s.ns.name, id, false, "", args)
		if err != nil {
			return err
		}
		return s.cl.conn.enqueueAll(frames)
	}
}

func (s *Socket) dispatchAck(p sioPacket) {
	s.mu.Lock()
	ch := s.acks[p.id]
	delete(s.acks, p.id)
	s.mu.Unlock()
	if ch != nil {
		ch <- p.args
	}
}
