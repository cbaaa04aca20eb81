// Package server wires one ECB node together: configuration to the hub, the
// backend client, the operations and the transports, behind the HTTP
// listeners with health, readiness and metrics; and it runs them until its
// context ends, then shuts down gracefully.
//
// Run owns every goroutine of the node: the listeners' servers, the
// janitors, the transports' workers (through their Shutdown) and the
// callbacks poster. Its shutdown drains in order, all within
// http.shutdownTimeout: stop accepting (readyz fails, new connections get
// unavailable), tell the clients (SSE close, Socket.IO closing, both with
// reason shutdown), wait for the operations in flight (Socket.IO's, then
// the REST requests'), stop the background work, deliver the callbacks
// still queued, return.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/auth"
	"github.com/ecbridge/ecb/internal/backend"
	"github.com/ecbridge/ecb/internal/callbacks"
	"github.com/ecbridge/ecb/internal/cluster"
	"github.com/ecbridge/ecb/internal/config"
	"github.com/ecbridge/ecb/internal/discover"
	"github.com/ecbridge/ecb/internal/hub"
	"github.com/ecbridge/ecb/internal/metrics"
	"github.com/ecbridge/ecb/internal/ops"
	"github.com/ecbridge/ecb/internal/reqid"
	"github.com/ecbridge/ecb/internal/sioapi"
	"github.com/ecbridge/ecb/internal/socketio"
	"github.com/ecbridge/ecb/internal/sse"
)

// Options are the parts a caller may provide instead of the defaults.
type Options struct {
	// Listener, when set, is used instead of binding cfg.Listen (tests and
	// the demo bind first to learn the port).
	Listener net.Listener
	// Web, when set, is served at / (the demo web app).
	Web http.Handler
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Versions are the versions the discovery document states (the
	// contract version is the SDK's).
	Versions discover.Versions
}

// Server is one ECB node.
type Server struct {
	cfg      *config.Config
	log      *slog.Logger
	metrics  *metrics.Metrics
	hub      *hub.Hub
	backend  *backend.Client
	ops      *ops.Service
	sse      *sse.API
	sio      *sioapi.API
	cbs      *callbacks.Poster // nil: callbacks off
	guards   *guards           // the Server API and the limits (guards.go)
	cluster  *cluster.Node     // nil: one node, in memory
	forward  *forwarder        // nil: one node
	discover *discover.Document

	listener      net.Listener
	adminListener net.Listener
	httpServer    *http.Server
	adminServer   *http.Server
	draining      atomic.Bool
}

// New builds a node from a validated configuration. ctx bounds background work
// started while building (the JWKS refresher); the callbacks poster outlives
// it, to deliver its queue during Run's shutdown.
func New(ctx context.Context, cfg *config.Config, opt Options) (*Server, error) {
	log := opt.Logger
	if log == nil {
		log = slog.Default()
	}
	log = slog.New(reqid.Handler(log.Handler())) // request_id on the lines of a request
	s := &Server{cfg: cfg, log: log, metrics: metrics.New()}
	verifier, err := auth.NewVerifier(ctx, cfg.Auth)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	s.backend, err = backend.New(cfg.Backend, nil, s.metrics)
	if err != nil {
		return nil, err
	}
	hubCfg := hub.Config{HistorySize: cfg.Hub.HistorySize, HistoryTTL: cfg.Hub.HistoryTTL, Metrics: s.metrics, NodeID: cfg.Cluster.NodeName}
	if cfg.Cluster.RedisURL != "" {
		s.cluster, err = cluster.Open(ctx, cluster.Config{
			RedisURL: cfg.Cluster.RedisURL, Prefix: cfg.Cluster.Prefix, Partitions: cfg.Cluster.Partitions,
			ShardedPubSub: cfg.Cluster.ShardedPubSub, NodeID: cfg.Cluster.NodeName,
			HistorySize: cfg.Hub.HistorySize, HistoryTTL: cfg.Hub.HistoryTTL, MetaTTL: cfg.Cluster.MetaTTL,
			Timeout: cfg.Cluster.Timeout, ProbeInterval: cfg.Cluster.ProbeInterval,
			Heartbeat: cfg.Cluster.Heartbeat, DeadAfter: cfg.Cluster.DeadAfter,
		}, log)
		if err != nil {
			return nil, err
		}
		hubCfg.Broker, hubCfg.Controller, hubCfg.NodeID = s.cluster.Broker, s.cluster.Controller, s.cluster.ID()
		log = log.With("node", s.cluster.ID())
		s.log = log
	}
	s.hub = hub.New(hubCfg)
	s.ops = ops.New(cfg.Operations, s.backend, verifier, s.hub, log, s.metrics)
	if s.cluster != nil {
		s.ops.Presence().SetStore(s.cluster.Presence) // presence across the nodes
	}
	// Customer support is always on, with no workgroup unless configured:
	// the Server API may create the first one at run time.
	wgs, err := cfg.Support.Resolve()
	if err != nil {
		return nil, err
	}
	if s.cluster != nil {
		// One node routes (the owner of a lease); the others forward to it.
		s.ops.EnableSupportCluster(wgs, cfg.Support.Grace, s.cluster.SupportShare(0))
	} else if err := s.ops.EnableSupport(wgs, cfg.Support.Grace); err != nil {
		return nil, err
	}
	s.metrics.WatchWorkgroups(func() []metrics.WorkgroupGauges {
		infos := s.ops.Support().WorkgroupInfos()
		out := make([]metrics.WorkgroupGauges, len(infos))
		for i, w := range infos {
			out[i] = metrics.WorkgroupGauges{Workgroup: w.Workgroup.Name, Open: w.Status.Open,
				AgentsAvailable: w.Status.AgentsAvailable, QueueLength: w.Status.QueueLength, Chats: w.Chats}
		}
		return out
	})
	s.watchHealth() // health.go
	// Not the signal context: the events queued when it ends are delivered
	// during the shutdown (Run), which stops the poster itself.
	failures := s.metrics.CallbackFailures()
	s.cbs = callbacks.New(context.WithoutCancel(ctx), callbacks.Config{URL: cfg.Callbacks.URL, Secret: []byte(cfg.Backend.Secret),
		MaxRetryDuration: cfg.Callbacks.MaxRetryDuration, Observer: failures})
	s.ops.SetCallbacks(s.cbs)
	if *cfg.Callbacks.Offline {
		s.ops.EnableOfflineNudge(context.WithoutCancel(ctx), callbacks.BatcherConfig{Window: cfg.Callbacks.OfflineWindow,
			MaxBatches: cfg.Callbacks.OfflineMaxBatches, Observer: failures})
	}
	if err := s.newGuards(ctx, cfg); err != nil {
		return nil, err
	}
	sseCfg := sse.Config{
		MaxBodyBytes:      cfg.HTTP.MaxBodyBytes,
		Heartbeat:         cfg.SSE.Heartbeat,
		QueueBytes:        cfg.SSE.QueueBytes,
		ResumeWindow:      cfg.SSE.ResumeWindow,
		ResumeEvents:      cfg.SSE.ResumeEvents,
		MaxStreamsPerUser: cfg.SSE.MaxStreamsPerUser,
		ReconnectJitter:   cfg.HTTP.ReconnectJitter,
	}
	var idPrefix string // the node tag that the ids of its sessions and streams start with
	if s.cluster != nil {
		idPrefix = s.cluster.Tag()
		sseCfg.StreamIDPrefix, sseCfg.Handoff = idPrefix, s.cluster.StreamHandoff()
		s.forward = newForwarder(s.cluster, []byte(cfg.Backend.Secret), s.metrics.Forwarded)
	}
	s.sse = sse.New(sseCfg, s.ops, s.hub, log, s.metrics.Transport("sse"))
	origins := newOriginPolicy(cfg.HTTP.AllowedOrigins)
	s.sio = sioapi.New(sioapi.Config{
		Socket: socketio.Config{
			SessionIDPrefix: idPrefix,
			PingInterval:    cfg.SocketIO.PingInterval,
			PingTimeout:     cfg.SocketIO.PingTimeout,
			MaxPayload:      cfg.SocketIO.MaxPayload,
			ConnectTimeout:  cfg.SocketIO.ConnectTimeout,
			WriteQueueBytes: cfg.SocketIO.QueueBytes,
			WriteDelay:      cfg.SocketIO.WriteDelay,
			BlockingReader:  cfg.SocketIO.Netpoll != nil && !*cfg.SocketIO.Netpoll, // nil (a Config not from Load): on
			AllowedOrigins:  cfg.HTTP.AllowedOrigins,
			CheckOrigin:     origins.allows,
			// What sioapi reads of a connection's handshake request after
			// the HTTP request (auth.RequestOrigin, at CONNECT and at each
			// refreshToken); the rest is dropped (issue 14, idle memory).
			KeepHeaders: []string{"Origin", "Sec-Fetch-Site"},
			Logger:      log,
		},
		TokenExpiryWarning: cfg.SocketIO.TokenExpiryWarning,
		ReconnectJitter:    cfg.HTTP.ReconnectJitter,
	}, s.ops, s.hub, log, s.metrics.Transport("socketio"))

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	// CORS outside the limits: a page of an allowed origin can read its
	// 429 or 503 (and Retry-After); a foreign origin is refused first.
	// A request of a session or stream held by another node is forwarded
	// to it (forward.go) once this node has applied the handshake limit,
	// and even while this node drains: it opens nothing here.
	mux.Handle("/v1/", origins.cors(s.limitHandshakes(s.forward.wrap(s.refuseWhileDraining(s.sse)))))
	mux.Handle("/socket.io/", s.limitHandshakes(s.forward.wrap(s.refuseWhileDraining(s.sio))))
	s.discover = s.newDiscovery(cfg, opt.Versions)
	s.mountDiscovery(mux, origins)
	s.mountServerAPI(mux)
	if cfg.AdminListen == "" {
		mux.Handle("GET /metrics", s.metrics.Handler())
	}
	if opt.Web != nil {
		mux.Handle("/", opt.Web)
	}
	var handler http.Handler = mux
	if s.cluster != nil {
		handler = nodeHeader(s.cluster.ID(), mux)
	}
	s.httpServer = &http.Server{
		Handler:           reqid.Middleware(securityHeaders(bodyDeadline(handler, cfg.HTTP.ReadBodyTimeout))),
		ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if cfg.AdminListen != "" {
		admin := http.NewServeMux()
		admin.Handle("GET /metrics", s.metrics.Handler())
		admin.HandleFunc("GET /debug/pprof/", pprof.Index)
		admin.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		admin.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		admin.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		admin.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
		s.adminServer = &http.Server{Handler: admin, ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout}
	}
	s.listener = opt.Listener
	return s, nil
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	switch {
	case s.draining.Load():
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("shutting down\n"))
	case !s.backend.Healthy():
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("backend unavailable (circuit open)\n"))
	case s.cluster != nil && s.cluster.Ready(r.Context()) != nil:
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = fmt.Fprintf(w, "cluster: %v\n", s.cluster.Ready(r.Context()))
	default:
		_, _ = w.Write([]byte("ready\n"))
	}
}

// Addr is the client listener's address, once Run has bound it (or the
// listener given in Options).
func (s *Server) Addr() net.Addr {
	if s.listener == nil {
		return nil
	}
	return s.listener.Addr()
}

// Listen binds the listeners that are not bound yet.
func (s *Server) Listen() error {
	if s.listener == nil {
		ln, err := net.Listen("tcp", s.cfg.Listen)
		if err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		s.listener = ln
	}
	if s.adminServer != nil && s.adminListener == nil {
		ln, err := net.Listen("tcp", s.cfg.AdminListen)
		if err != nil {
			return fmt.Errorf("adminListen: %w", err)
		}
		s.adminListener = ln
	}
	return s.listenGuards()
}

// Run serves until ctx is done, then shuts down gracefully within
// http.shutdownTimeout, in this order: it stops accepting (readyz answers
// 503, new event streams and Socket.IO sessions get unavailable), ends the
// event streams (close {reason: shutdown}), tells every Socket.IO client
// closing {reason: shutdown} and waits for their operations in flight
// (which complete and are acked) before it closes their transports, stops
// listening and waits for the REST requests in flight, stops its background
// work, and delivers the support callbacks still queued. Every goroutine it
// starts has ended when it returns.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	stopTracing, terr := s.startTracing() // tracing.go
	if terr != nil {
		return terr
	}
	defer stopTracing()
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	if s.cluster != nil {
		s.cluster.Advertise(s.advertiseURL())
		s.cluster.Start(bg)
		defer s.cluster.Close() // after the hub has let its connections go
	}
	var wg sync.WaitGroup
	wg.Go(func() { s.hub.Run(bg, time.Minute) })
	wg.Go(func() { s.sse.Run(bg) })
	wg.Go(func() { s.ops.Run(bg) })
	wg.Go(func() { s.ops.RunSupportCluster(bg) })
	wg.Go(func() { s.discover.Run(bg, s.backend, discover.DefaultInterval, discover.DefaultTimeout, s.log) })

	errc := make(chan error, 3) // one per server: client, admin, Server API
	s.runGuards(bg, &wg, errc)
	wg.Go(func() {
		var err error
		if s.cfg.HTTP.TLSCertFile != "" {
			err = s.httpServer.ServeTLS(s.listener, s.cfg.HTTP.TLSCertFile, s.cfg.HTTP.TLSKeyFile)
		} else {
			err = s.httpServer.Serve(s.listener)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http server: %w", err)
		}
	})
	if s.adminServer != nil {
		wg.Go(func() {
			if err := s.adminServer.Serve(s.adminListener); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("admin server: %w", err)
			}
		})
	}
	s.log.Info("ECB listening", "addr", s.listener.Addr().String(), "admin", s.cfg.AdminListen)

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	s.draining.Store(true) // readyz fails, refuseWhileDraining refuses
	s.log.Info("ECB shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.HTTP.ShutdownTimeout)
	defer cancel()
	s.sse.Shutdown(shutdownCtx)
	if e := s.sio.Shutdown(shutdownCtx); e != nil {
		err = errors.Join(err, fmt.Errorf("socket.io shutdown: %w", e))
	}
	s.hub.Shutdown()
	if e := s.httpServer.Shutdown(shutdownCtx); e != nil && !errors.Is(e, http.ErrServerClosed) {
		err = errors.Join(err, fmt.Errorf("shutdown: %w", e))
	}
	s.shutdownGuards(shutdownCtx)
	if s.adminServer != nil {
		_ = s.adminServer.Shutdown(shutdownCtx)
	}
	stopBG()
	wg.Wait()
	// Last: the operations above may have queued events. The open offline
	// batches are posted first (their windows cut short).
	if e := s.ops.ShutdownOffline(shutdownCtx); e != nil {
		err = errors.Join(err, fmt.Errorf("offline nudge shutdown: %w", e))
	}
	if e := s.cbs.Shutdown(shutdownCtx); e != nil {
		err = errors.Join(err, fmt.Errorf("callbacks shutdown: %w", e))
	}
	s.log.Info("ECB stopped")
	return err
}

// advertiseURL is where the other nodes reach this one: cluster.advertiseURL,
// else the scheme and the bound address (with the host's name when it is
// bound to every address).
func (s *Server) advertiseURL() string {
	if s.cfg.Cluster.AdvertiseURL != "" {
		return strings.TrimSuffix(s.cfg.Cluster.AdvertiseURL, "/")
	}
	scheme := "http"
	if s.cfg.HTTP.TLSCertFile != "" {
		scheme = "https"
	}
	host, port, err := net.SplitHostPort(s.listener.Addr().String())
	if err != nil {
		return scheme + "://" + s.listener.Addr().String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		if name, err := os.Hostname(); err == nil {
			host = name
		}
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// nodeHeader names the node that served each response (ECB-Node), so that a
// client or an operator behind a balancer can tell.
func nodeHeader(name string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ECB-Node", name)
		next.ServeHTTP(w, r)
	})
}

// refuseWhileDraining answers unavailable to the requests that would open a
// connection (an Engine.IO handshake, an event stream) once the node is
// shutting down; requests on existing connections go on, so that the
// operations in flight can be answered.
func (s *Server) refuseWhileDraining(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.draining.Load() && handshakeKind(r) == newConnection {
			if r.URL.Path == "/v1/events" && s.forward.fromPeer(r) {
				// A resume another node forwarded here: once the streams
				// are handed over, it is that node's to pick up.
				s.handedOver(w, r)
				return
			}
			sse.WriteError(w, &apierr.Error{Code: apierr.Unavailable, Message: "this node is shutting down: connect to another node"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// securityHeaders sets the headers every response carries.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		next.ServeHTTP(w, r)
	})
}
