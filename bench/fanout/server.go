package fanout

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ecbridge/ecb/internal/hub"
	"github.com/ecbridge/ecb/internal/socketio"
)

// benchThread is the one thread every socket listens to.
const benchThread = "bench"

// ServerOptions configures the ECB side of the benchmark (ServeECB).
type ServerOptions struct {
	// CPUProfile, when set, is written with the CPU profile of the
	// measurement window (from the "start" to the "stop" control line).
	CPUProfile string
	// Log receives warnings (slow consumers); nil means stderr.
	Log io.Writer
}

// ServerStats is what ServeECB prints on "stop".
type ServerStats struct {
	Delivered  int64 `json:"delivered"`   // hub deliveries (Deliver returned true)
	Dropped    int64 `json:"dropped"`     // connections the hub closed as slow
	Goroutines int   `json:"goroutines"`  // at the time of "stop"
	HeapInUse  int64 `json:"heap_in_use"` // bytes, at the time of "stop"
}

// hubCounter counts the hub's deliveries, as ECB's Prometheus wiring does.
type hubCounter struct{ delivered, dropped atomic.Int64 }

func (m *hubCounter) Delivered(n int) { m.delivered.Add(int64(n)) }
func (m *hubCounter) Dropped(n int)   { m.dropped.Add(int64(n)) }

// conn is a socket as the hub sees it: the same Deliver and Close as
// internal/sioapi's, without the operation queue (no backend here).
type conn struct{ socket *socketio.Socket }

var _ hub.Conn = (*conn)(nil)

// encodePush is internal/sioapi's: one Socket.IO EVENT packet per push,
// cached on the push by Push.Frame, shared by every recipient.
func encodePush(p *hub.Push) []byte {
	b, err := socketio.EncodeEvent("/", p.Event, json.RawMessage(p.Payload()))
	if err != nil {
		return nil
	}
	return b
}

func (c *conn) Deliver(p *hub.Push) bool {
	frame := p.Frame(hub.EncodingSocketIO, encodePush)
	return frame != nil && c.socket.SendEncoded(frame)
}

func (c *conn) Close(reason hub.Reason) { c.socket.Disconnect(reason == hub.ReasonSlow) }

// ServeECB runs the ECB server of the benchmark until ctx is done or stdin
// closes: internal/socketio with every socket of namespace "/" registered in
// an internal/hub and attached to one thread; the event "publish" (with ack)
// publishes its first argument to the thread as a "message" push through
// hub.Publish, then acks. It listens on 127.0.0.1 (any free port) and prints
// "listening ADDR" on stdout. Control lines on stdin: "start" and "stop"
// bracket the measurement (CPU profile); "stop" prints ServerStats as JSON.
func ServeECB(ctx context.Context, stdin io.Reader, stdout io.Writer, opts ServerOptions) error {
	logw := opts.Log
	if logw == nil {
		logw = os.Stderr
	}
	log := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelWarn}))
	metrics := &hubCounter{}
	h := hub.New(hub.Config{Metrics: metrics})
	srv := socketio.NewServer(socketio.Config{Logger: log})
	srv.Namespace("/").OnConnection(func(s *socketio.Socket) {
		c := &conn{socket: s}
		h.Register(c, s.ID())
		if _, err := h.Attach(ctx, benchThread, c); err != nil {
			log.Warn("attach", "err", err)
		}
		s.OnDisconnect(func(string) { h.Unregister(c) })
		s.On("publish", func(s *socketio.Socket, args []json.RawMessage, ack socketio.Ack) {
			var data json.RawMessage
			if len(args) > 0 {
				data = args[0]
			}
			if _, err := h.Publish(ctx, benchThread, &hub.Push{Event: "message", Data: data}, nil); err != nil {
				log.Warn("publish", "err", err)
			}
			if ack != nil {
				_ = ack()
			}
		})
	})
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	if _, err := fmt.Fprintf(stdout, "listening %s\n", ln.Addr()); err != nil {
		_ = hs.Close()
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			select {
			case lines <- strings.TrimSpace(sc.Text()):
			case <-ctx.Done():
				return
			}
		}
		cancel() // stdin closed: the parent is done or gone
	}()

	var profile *os.File
	stopProfile := func() error {
		if profile == nil {
			return nil
		}
		pprof.StopCPUProfile()
		err := profile.Close()
		profile = nil
		return err
	}
	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-served:
			runErr = err
			break loop
		case line := <-lines:
			switch line {
			case "start":
				if opts.CPUProfile != "" && profile == nil {
					f, err := os.Create(opts.CPUProfile)
					if err != nil {
						runErr = err
						break loop
					}
					if err := pprof.StartCPUProfile(f); err != nil {
						_ = f.Close()
						runErr = err
						break loop
					}
					profile = f
				}
			case "stop":
				if err := stopProfile(); err != nil {
					runErr = err
					break loop
				}
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				st := ServerStats{Delivered: metrics.delivered.Load(), Dropped: metrics.dropped.Load(),
					Goroutines: runtime.NumGoroutine(), HeapInUse: int64(ms.HeapInuse)}
				if err := json.NewEncoder(stdout).Encode(st); err != nil {
					runErr = err
					break loop
				}
			}
		}
	}
	if err := stopProfile(); err != nil && runErr == nil {
		runErr = err
	}
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	_ = srv.Shutdown(sctx)
	_ = hs.Close()
	if errors.Is(runErr, http.ErrServerClosed) {
		runErr = nil
	}
	return runErr
}
