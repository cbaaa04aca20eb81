package socketio

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Server is a Socket.IO protocol v5 server over Engine.IO v4. Mount it at
// "/socket.io/" (the client's default path):
//
//	srv := socketio.NewServer(socketio.Config{})
//	srv.Namespace("/").OnConnection(func(s *socketio.Socket) { ... })
//	mux.Handle("/socket.io/", srv)
type Server struct {
	cfg    Config
	log    *slog.Logger
	engine *Engine

	mu   sync.RWMutex
	nsps map[string]*Namespace
}

// NewServer returns a server with the default namespace "/" registered.
func NewServer(cfg Config) *Server {
	cfg = cfg.withDefaults()
	s := &Server{cfg: cfg, log: cfg.Logger, nsps: make(map[string]*Namespace)}
	s.engine = NewEngine(cfg, s.accept)
	if cfg.OriginRefusal != nil {
		s.engine.refuseOrigin = func(w http.ResponseWriter, r *http.Request) bool {
			return s.engine.refusePreflight(w, r) || s.Refuse(w, r, cfg.OriginRefusal(r))
		}
	}
	s.Namespace("/")
	return s
}

// ServeHTTP serves the Engine.IO transports and the Socket.IO protocol.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.engine.ServeHTTP(w, r) }

// Namespace returns the namespace name (for example "/" or "/admin"),
// registering it on first use. A client that connects to a namespace that
// was never registered is refused with {"message":"Invalid namespace"}.
func (s *Server) Namespace(name string) *Namespace {
	if !strings.HasPrefix(name, "/") {
		name = "/" + name
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ns := s.nsps[name]
	if ns == nil {
		ns = &Namespace{name: name, srv: s}
		s.nsps[name] = ns
	}
	return ns
}

func (s *Server) namespace(name string) *Namespace {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.nsps[name]
}

// Len returns the number of open Engine.IO connections.
func (s *Server) Len() int { return s.engine.Len() }

// Shutdown refuses new connections, closes every connection (sockets get
// OnDisconnect with reason "server shutting down") and waits for all the
// connections' goroutines, or until ctx is done.
func (s *Server) Shutdown(ctx context.Context) error { return s.engine.Shutdown(ctx) }

func (s *Server) accept(c *EngineConn) EngineHandler {
	cl := &client{srv: s, conn: c}
	cl.mu.Lock()
	cl.timer = time.AfterFunc(s.cfg.ConnectTimeout, cl.onConnectTimeout)
	cl.mu.Unlock()
	return cl
}

// Namespace is a Socket.IO namespace: a set of middlewares and a connection
// handler. Configure it before clients connect; its methods are safe for
// concurrent use.
type Namespace struct {
	name string
	srv  *Server

	mu         sync.RWMutex
	middleware []Middleware
	onConn     func(*Socket)
}

// Middleware runs when a client connects to a namespace, in the order
// registered, before the socket exists. Returning an error refuses the
// connection with a CONNECT_ERROR packet: a *ConnectError gives its Message
// and Data, any other error its Error() text as the message.
//
// Middlewares run on the connection's reader: they may do bounded I/O (a
// token check against a backend), but while they run no other packet of that
// Engine.IO connection is read.
type Middleware func(h *Handshake) error

// Handshake is what a middleware knows of a connecting client.
type Handshake struct {
	// Namespace is the namespace being connected to.
	Namespace string
	// Auth is the CONNECT packet's payload (socket.io-client's auth option),
	// a JSON object; {} when the client sent none. It is a slice of the
	// packet as read: a middleware that has taken what it needs may set it
	// to nil, so that the socket does not keep it (and its frame) alive.
	Auth json.RawMessage
	// Conn is the Engine.IO connection.
	Conn *EngineConn
	// Data is free for middlewares to fill (the verified identity, say); the
	// socket starts with it as its Data.
	Data any
}

// Request returns the Engine.IO handshake request: URL and query, headers
// (Origin, Cookie, User-Agent, ..., or only Config.KeepHeaders), RemoteAddr.
// Its body is empty. It is built on each call (EngineConn.Request): a
// middleware that reads it often keeps the one it got.
func (h *Handshake) Request() *http.Request { return h.Conn.Request() }

// Name returns the namespace name.
func (n *Namespace) Name() string { return n.name }

// Use appends a middleware.
func (n *Namespace) Use(m Middleware) {
	n.mu.Lock()
	n.middleware = append(n.middleware, m)
	n.mu.Unlock()
}

// OnConnection sets the function called for every socket that connected to
// the namespace, right after the client got the CONNECT reply. Register the
// socket's handlers in it: events are read only after it returns.
func (n *Namespace) OnConnection(fn func(s *Socket)) {
	n.mu.Lock()
	n.onConn = fn
	n.mu.Unlock()
}

func (n *Namespace) handlers() ([]Middleware, func(*Socket)) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.middleware, n.onConn
}
