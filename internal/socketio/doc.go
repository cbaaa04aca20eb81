// Package socketio is a server for Socket.IO protocol v5 over Engine.IO
// protocol v4: the protocol of the official socket.io-client 4.x (and of the
// Socket.IO clients for Swift, Java, Python and C++). It is generic: it knows
// nothing of ECB's operations.
//
// # API
//
//	srv := socketio.NewServer(socketio.Config{AllowedOrigins: []string{"https://app.example"}})
//	ns := srv.Namespace("/")                         // "/" always exists; others on first use
//	ns.Use(func(h *socketio.Handshake) error {       // middleware: h.Auth, h.Request()
//		if !ok(h.Auth) {
//			return &socketio.ConnectError{Message: "unauthorized", Data: map[string]string{"code": "unauthenticated"}}
//		}
//		h.Data = identity                            // becomes s.Data()
//		return nil
//	})
//	ns.OnConnection(func(s *socketio.Socket) {
//		s.On("echo", func(s *socketio.Socket, args []json.RawMessage, ack socketio.Ack) {
//			if ack != nil { _ = ack(args...) }         // ack is nil when the client asked none
//		})
//		s.OnDisconnect(func(reason string) { ... })
//		_ = s.Emit("hello", map[string]any{"id": s.ID()})
//		res, err := s.EmitWithAck(ctx, "question", 42) // waits for the client's ack
//	})
//	mux.Handle("/socket.io/", srv)
//	...
//	if srv.Refuse(w, r, &socketio.ConnectError{...}) { return } // a handshake refused before any work, readable by the client
//	pkt, _ := socketio.EncodeEvent("/", "message", msg) // encode once ...
//	for _, s := range listeners { s.SendEncoded(pkt) }  // ... queue to many, never blocking
//	srv.Shutdown(ctx)
//
// Binary attachments: a Binary value in arguments is sent as an attachment;
// received attachments appear in the raw arguments as
// {"_placeholder":true,"data":"<base64>"} (see Binary and BinaryArg).
//
// The Engine.IO layer is usable on its own (NewEngine, EngineHandler,
// EngineConn), for raw Engine.IO messaging at another path.
//
// # Concurrency contract
//
// Every exported method is safe for concurrent use. Emit, EmitWithAck,
// SendEncoded, Ack, Disconnect and EngineConn.Send never block on the
// network: they append to the connection's write queue, bounded by
// Config.WriteQueueBytes; a send that would pass the bound closes the
// connection as a slow consumer instead of waiting. TrySendEncoded is the
// exception for callers under locks of their own (a hub's fan-out): on a
// full queue it only reports false, and the caller closes the connection
// later, outside its locks, with CloseSlow. EmitWithAck blocks only for the
// client's answer, bounded by its context.
//
// Middlewares, OnConnection, event handlers and OnDisconnect of one
// Engine.IO connection run on that connection's reader, one at a time, in
// the order the client sent the packets; OnDisconnect runs once, after the
// last handler. They must not block: while one runs, nothing else from that
// client is read (pongs included, so a handler blocked for longer than
// PingInterval+PingTimeout gets its client disconnected). Hand slow work
// (a backend call) to another goroutine and answer through the Ack, which
// may be called from anywhere. Middlewares may do bounded I/O.
//
// Goroutines: per WebSocket connection, a reader goroutine while it has
// data to read. On Linux (unless Config.BlockingReader), a connection idle
// between two messages has none: the Engine's readiness poller, one epoll
// instance and one goroutine, starts a fresh reader when the descriptor is
// readable, one at a time per connection (netpoll.go); elsewhere, for TLS,
// and with BlockingReader, every WebSocket keeps a reader blocked in Read.
// Writes go
// through the Engine's writer pool: a connection with something to write
// joins a ready list, and at most a few writer goroutines per Engine, alive
// only while the list is not empty, write each ready connection's every
// pending frame in one non-blocking write(2) (Config.WriteDelay makes a
// connection wait before its write, to gather more). Only a connection whose
// client does not read fast enough (its send buffer full), that closes, or
// that has no file descriptor (TLS) gets a writer goroutine of its own, until
// its queue is empty; its batches have a write deadline. A polling connection has no
// goroutine of its own: its HTTP requests carry it. Heartbeats and the
// polling linger are deadlines in the Engine's one timer heap
// (internal/timerheap), not a timer per connection; the handshake and upgrade
// timeouts are timers while they run. Server.Shutdown closes every connection and waits for all
// these goroutines. A refusal (Server.Refuse, Config.OriginRefusal) is no
// connection: it lives on the request's goroutine only (a WebSocket refusal
// for at most about 2 s: its write, then the wait for the client's close
// frame), and holds no lock. Lock order: EngineConn.recvMu, then the Socket and
// client locks, then EngineConn.mu, then Engine.mu, the writer pool's lock or
// the timer heap's (a leaf: the heap calls EngineConn.onTimer with none of its
// own held); the poller's lock is taken alone (around an epoll_ctl, which does
// not block).
//
// docs/socketio.md lists what of the protocol is implemented, the knobs,
// the limits and the close reasons.
package socketio
