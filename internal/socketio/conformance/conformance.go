// Package conformance is a server for protocol conformance and interop
// testing of package socketio: the behaviour the official Socket.IO and
// Engine.IO protocol test suites expect, plus a few events for the
// interop tests in test/interop.
//
// Settings: pingInterval 300 ms, pingTimeout 200 ms, maxPayload 1,000,000,
// connect timeout 1000 ms, CORS for any origin.
//
// At /engine.io/: a raw Engine.IO endpoint that sends every message back.
//
// At /socket.io/: a Socket.IO server.
//   - Namespace "/": on connection emits "auth" with the handshake's auth
//     payload; "message" → emits "message-back" with the same arguments
//     (binary included); "message-with-ack" and "echo" → acked with their
//     arguments; "push-me" → emits "pushed" with the same arguments;
//     "ask-me" → emits "question" (same arguments) asking for an ack, then
//     emits "answer" with the client's ack arguments; "drop-me" → closes the
//     Engine.IO connection without a Socket.IO DISCONNECT.
//   - "/custom": emits "auth" on connection.
//   - "/private": refused with {"message":"unauthorized","data":{"reason":"bad token"}}
//     unless auth.token is "good"; then emits "auth".
//   - any other namespace is refused with {"message":"Invalid namespace"}.
package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/ecbridge/ecb/internal/socketio"
)

// Config is the socketio configuration of the conformance server.
func Config(logger *slog.Logger) socketio.Config {
	return socketio.Config{
		PingInterval:   300 * time.Millisecond,
		PingTimeout:    200 * time.Millisecond,
		MaxPayload:     1_000_000,
		ConnectTimeout: 1000 * time.Millisecond,
		AllowedOrigins: []string{"*"},
		Logger:         logger,
	}
}

// Server is the conformance server: an http.Handler with Shutdown.
type Server struct {
	eio *socketio.Engine
	sio *socketio.Server
	mux *http.ServeMux
}

var _ http.Handler = (*Server)(nil)

// New returns the conformance server. A nil logger means slog.Default().
func New(logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.Default()
	}
	cfg := Config(logger)
	s := &Server{mux: http.NewServeMux()}
	s.eio = socketio.NewEngine(cfg, func(*socketio.EngineConn) socketio.EngineHandler { return echo{} })
	s.sio = socketio.NewServer(cfg)
	setup(s.sio)
	s.mux.Handle("/engine.io/", s.eio)
	s.mux.Handle("/socket.io/", s.sio)
	return s
}

// Handler returns the conformance server as an http.Handler.
func Handler(logger *slog.Logger) http.Handler { return New(logger) }

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Shutdown closes every connection of both endpoints and waits for them.
func (s *Server) Shutdown(ctx context.Context) error {
	return errors.Join(s.eio.Shutdown(ctx), s.sio.Shutdown(ctx))
}

// echo is the raw Engine.IO endpoint's handler.
type echo struct{}

func (echo) OnMessage(c *socketio.EngineConn, data []byte, binary bool) { _ = c.Send(data, binary) }
func (echo) OnClose(*socketio.EngineConn, string)                       {}

func args(raw []json.RawMessage) []any {
	out := make([]any, len(raw))
	for i, a := range raw {
		out[i] = a
	}
	return out
}

func emitAuth(s *socketio.Socket) { _ = s.Emit("auth", s.Handshake().Auth) }

func setup(srv *socketio.Server) {
	srv.Namespace("/").OnConnection(func(s *socketio.Socket) {
		emitAuth(s)
		s.On("message", func(s *socketio.Socket, a []json.RawMessage, _ socketio.Ack) {
			_ = s.Emit("message-back", args(a)...)
		})
		ackBack := func(s *socketio.Socket, a []json.RawMessage, ack socketio.Ack) {
			if ack != nil {
				_ = ack(args(a)...)
			}
		}
		s.On("message-with-ack", ackBack)
		s.On("echo", ackBack)
		s.On("push-me", func(s *socketio.Socket, a []json.RawMessage, _ socketio.Ack) {
			_ = s.Emit("pushed", args(a)...)
		})
		s.On("ask-me", func(s *socketio.Socket, a []json.RawMessage, _ socketio.Ack) {
			go func() { // EmitWithAck waits: not on the reader
				ctx, cancel := context.WithTimeout(s.Context(), 10*time.Second)
				defer cancel()
				res, err := s.EmitWithAck(ctx, "question", args(a)...)
				if err == nil {
					_ = s.Emit("answer", args(res)...)
				}
			}()
		})
		s.On("drop-me", func(s *socketio.Socket, _ []json.RawMessage, _ socketio.Ack) {
			s.Conn().Close()
		})
	})
	srv.Namespace("/custom").OnConnection(emitAuth)
	private := srv.Namespace("/private")
	private.Use(func(h *socketio.Handshake) error {
		var auth struct {
			Token string `json:"token"`
		}
		if json.Unmarshal(h.Auth, &auth) != nil || auth.Token != "good" {
			return &socketio.ConnectError{Message: "unauthorized", Data: map[string]string{"reason": "bad token"}}
		}
		return nil
	})
	private.OnConnection(emitAuth)
}

// Serve serves the conformance server on ln until ctx is done, then shuts
// it down.
func Serve(ctx context.Context, ln net.Listener, logger *slog.Logger) error {
	s := New(logger)
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := errors.Join(s.Shutdown(sctx), hs.Shutdown(sctx))
	<-errc
	return err
}

// Run listens on addr ("127.0.0.1:0" picks a port), writes
// "listening on http://HOST:PORT" to out, and serves until ctx is done.
func Run(ctx context.Context, addr string, out io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "listening on http://%s\n", ln.Addr())
	return Serve(ctx, ln, nil)
}
