package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ecbridge/ecb/internal/access"
	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/cluster"
	"github.com/ecbridge/ecb/internal/config"
	"github.com/ecbridge/ecb/internal/limits"
	"github.com/ecbridge/ecb/internal/ops"
	"github.com/ecbridge/ecb/internal/serverapi"
	"github.com/ecbridge/ecb/internal/sse"
)

// guards are the parts of a node that bound and steer its clients: the
// Server API with its store of live decisions, and the limits.
type guards struct {
	// cache is what the operations read: the store itself on one node, the
	// Redis store's local cache in cluster mode.
	cache      *access.Store
	store      serverapi.Store // what the Server API writes
	limiter    *limits.Limiter
	handshakes *limits.Handshakes
	api        http.Handler // the Server API, or serverapi.Disabled()

	server   *http.Server // when serverApi.listen is set
	listener net.Listener
}

var (
	_ ops.AccessOverrides = (*access.Store)(nil)
	_ ops.ThreadStates    = (*access.Store)(nil)
	_ ops.Revocations     = (*access.Store)(nil)
	_ ops.Limiter         = (*limits.Limiter)(nil)
	_ serverapi.Store     = (*cluster.AccessStore)(nil)
	_ ops.LiveWriter      = (*access.Store)(nil)
	_ ops.LiveWriter      = (*cluster.AccessStore)(nil)
)

// newGuards builds the guards and installs them in the operations. In
// cluster mode the live decisions are kept in Redis (loaded now, within ctx).
func (s *Server) newGuards(ctx context.Context, cfg *config.Config) error {
	proxies, err := limits.ParseProxies(cfg.HTTP.TrustedProxies)
	if err != nil {
		return fmt.Errorf("http.trustedProxies: %w", err)
	}
	g := &guards{
		limiter:    limits.New(cfg.Limits, s.connCounter()),
		handshakes: limits.NewHandshakes(cfg.Limits, proxies),
		api:        serverapi.Disabled(),
	}
	acfg := access.Config{StateTTL: cfg.ServerAPI.StateTTL, MaxEntries: cfg.ServerAPI.MaxEntries}
	if s.cluster != nil {
		shared, err := cluster.NewAccessStore(ctx, s.cluster, acfg)
		if err != nil {
			return fmt.Errorf("server API store: %w", err)
		}
		g.cache, g.store = shared.Cache(), shared
	} else {
		g.cache = access.New(acfg)
		g.store = g.cache
	}
	s.ops.SetGuards(ops.Guards{Access: g.cache, Threads: g.cache, Revocations: g.cache, Limiter: g.limiter, Writer: g.store})
	if cfg.ServerAPI.Enabled() {
		g.api = serverapi.New(cfg.ServerAPI, serverapi.Options{
			Ops: s.ops, Store: g.store, Hub: s.hub, MaxBody: cfg.HTTP.MaxBodyBytes,
			Logger: s.log, Support: cfg.Support,
		})
	}
	if cfg.ServerAPI.Listen != "" {
		mux := http.NewServeMux()
		mux.Handle(serverapi.Prefix, g.api)
		g.server = &http.Server{Handler: securityHeaders(mux), ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout}
	}
	s.guards = g
	return nil
}

// mountServerAPI serves /server/v1/ on the client listener, unless the
// Server API has its own.
func (s *Server) mountServerAPI(mux *http.ServeMux) {
	if s.guards.server == nil {
		mux.Handle(serverapi.Prefix, s.guards.api)
	}
}

// ServerAPIAddr is the Server API's own listener address, when
// serverApi.listen is set and Listen has bound it.
func (s *Server) ServerAPIAddr() net.Addr {
	if s.guards.listener == nil {
		return nil
	}
	return s.guards.listener.Addr()
}

func (s *Server) listenGuards() error {
	if s.guards.server != nil && s.guards.listener == nil {
		ln, err := net.Listen("tcp", s.cfg.ServerAPI.Listen)
		if err != nil {
			return fmt.Errorf("serverApi.listen: %w", err)
		}
		s.guards.listener = ln
	}
	return nil
}

// runGuards starts the janitors (until ctx is done) and the Server API's
// own listener (until shutdownGuards).
func (s *Server) runGuards(ctx context.Context, wg *sync.WaitGroup, errc chan<- error) {
	g := s.guards
	wg.Go(func() { g.cache.Run(ctx, time.Minute) })
	wg.Go(func() {
		tick := time.NewTicker(30 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-tick.C:
				g.limiter.Sweep(now)
				g.handshakes.Sweep(now)
			}
		}
	})
	if g.server != nil {
		wg.Go(func() {
			if err := g.server.Serve(g.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("server API: %w", err)
			}
		})
		s.log.Info("Server API listening", "addr", g.listener.Addr().String())
	}
}

func (s *Server) shutdownGuards(ctx context.Context) {
	if s.guards.server != nil {
		_ = s.guards.server.Shutdown(ctx)
	}
}

// limitHandshakes refuses new connections from a client IP beyond
// limits.handshakesPerSecondPerIP (rate_limited), and new connections of a
// node at limits.maxConnections (unavailable), before any work is done for
// them. Requests on existing connections pass. A Socket.IO handshake is
// refused the way a Socket.IO client can read (sioapi.API.Refuse: a
// connect_error with the code, for what an HTTP error costs); the others get
// the HTTP status and the error envelope.
func (s *Server) limitHandshakes(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind := handshakeKind(r)
		if kind == notHandshake || s.forward.fromPeer(r) { // a peer applied it
			next.ServeHTTP(w, r)
			return
		}
		var err error
		if kind == newConnection && s.guards.limiter.Full() {
			err = &apierr.Error{Code: apierr.Unavailable, Message: "this node is at its connection limit: try again later or another node"}
		} else {
			err = s.guards.handshakes.Allow(r)
		}
		if err == nil {
			next.ServeHTTP(w, r)
			return
		}
		if strings.HasPrefix(r.URL.Path, "/socket.io/") && s.sio.Refuse(w, r, err) {
			return
		}
		sse.WriteError(w, err)
	})
}

type handshake int

const (
	notHandshake  handshake = iota
	newConnection           // an Engine.IO handshake, an event stream
	tokenExchange           // POST /v1/token: a backend call for anyone
)

func handshakeKind(r *http.Request) handshake {
	switch {
	case strings.HasPrefix(r.URL.Path, "/socket.io/") && r.Method == http.MethodGet && r.URL.Query().Get("sid") == "":
		return newConnection
	case r.URL.Path == "/v1/events" && r.Method == http.MethodGet:
		return newConnection
	case r.URL.Path == "/v1/token" && r.Method == http.MethodPost:
		return tokenExchange
	}
	return notHandshake
}

// bodyDeadline bounds the time a client takes to send a request body
// (slow-body attacks): the connection's read deadline is set when a request
// with a body starts, and cleared once the body is read, so that it bounds
// the body only, never what the handler does afterwards (a slow backend
// call). http.Server's ReadTimeout cannot be used for this: it would also
// bound event streams and WebSockets.
func bodyDeadline(next http.Handler, timeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			next.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		if err := rc.SetReadDeadline(time.Now().Add(timeout)); err != nil {
			next.ServeHTTP(w, r) // a connection without deadlines (tests' recorders)
			return
		}
		r.Body = &deadlineBody{ReadCloser: r.Body, clear: func() { _ = rc.SetReadDeadline(time.Time{}) }}
		next.ServeHTTP(w, r)
	})
}

// deadlineBody clears the read deadline at the end of the body.
type deadlineBody struct {
	io.ReadCloser
	once  sync.Once
	clear func()
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.once.Do(b.clear)
	}
	return n, err
}
