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

	"github.com/ecbridge/ecb/internal/cluster"
	"github.com/ecbridge/ecb/internal/hub"
	"github.com/ecbridge/ecb/internal/socketio"
)

// benchThread is the thread a socket listens to, and a publish goes to,
// when it names none (the one-server benchmark: one thread, one room).
const benchThread = "bench"

// threadOf returns the thread named by a CONNECT payload {"thread": "t3"}:
// benchThread when the payload names none, "" (listen to nothing: the
// cluster scenario's publisher) when it names "".
func threadOf(auth json.RawMessage) string {
	var a struct {
		Thread *string `json:"thread"`
	}
	if json.Unmarshal(auth, &a) != nil || a.Thread == nil {
		return benchThread
	}
	return *a.Thread
}

// publishThread returns the thread of a publish event: its second argument
// when that is a string, benchThread otherwise.
func publishThread(args []json.RawMessage) string {
	var t string
	if len(args) > 1 && json.Unmarshal(args[1], &t) == nil && t != "" {
		return t
	}
	return benchThread
}

// ServerOptions configures the ECB side of the benchmark (ServeECB).
type ServerOptions struct {
	// CPUProfile, when set, is written with the CPU profile of the
	// measurement window (from the "start" to the "stop" control line).
	CPUProfile string
	// Log receives warnings (slow consumers); nil means stderr.
	Log io.Writer
	// RedisURL, when set, puts the hub on internal/cluster's Redis Broker
	// and Controller (cluster mode, as internal/server wires it), with every
	// key and channel under Prefix: the nodes of one cluster run share a
	// prefix, and each run has its own.
	RedisURL, Prefix string
	// WriteDelay is the server's socketio.writeDelay (Config.WriteDelay).
	WriteDelay time.Duration
}

// ServerStats is what ServeECB prints on "stop".
type ServerStats struct {
	Delivered  int64 `json:"delivered"`   // hub deliveries (Deliver returned true)
	Measured   int64 `json:"measured"`    // frames queued to listeners between "start" and "stop"
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
type conn struct {
	socket *socketio.Socket
	queued *atomic.Int64 // frames queued, counted before they are (ServerStats.Measured)
}

var _ hub.Conn = (*conn)(nil)

// encodePush is internal/sioapi's: the WebSocket frame of one Socket.IO EVENT
// packet per push, cached on the push by Push.Frame, shared by every recipient.
func encodePush(p *hub.Push) []byte {
	b, err := socketio.EncodeEventFrame("/", p.Event, json.RawMessage(p.Payload()))
	if err != nil {
		return nil
	}
	return b
}

func (c *conn) Deliver(p *hub.Push) bool {
	frame := p.Frame(hub.EncodingSocketIO, encodePush)
	if frame == nil {
		return false
	}
	// Counted before the frame is queued: a delivery the client has received
	// is counted by then (the hub's Delivered comes after its fan-out loop).
	c.queued.Add(1)
	if !c.socket.SendFrame(frame) {
		c.queued.Add(-1)
		return false
	}
	return true
}

func (c *conn) Close(reason hub.Reason) { c.socket.Disconnect(reason == hub.ReasonSlow) }

// ServeECB runs the ECB server of the benchmark until ctx is done or stdin
// closes: internal/socketio with every socket of namespace "/" registered in
// an internal/hub and attached to the thread its CONNECT payload names
// ({"thread": "t3"}; none: "bench"; "": no thread); the event "publish"
// (with ack) publishes its first argument as a "message" push through
// hub.Publish to the thread its second argument names (none: "bench"), then
// acks. With opts.RedisURL the hub runs on the cluster's Redis broker, so
// a publish on one node reaches the listeners of every node. It listens on
// 127.0.0.1 (any free port) and prints "listening ADDR" on stdout once it can
// serve. Control lines on stdin: "start" and "stop" bracket the measurement
// (CPU profile, ServerStats.Measured); "stop" prints ServerStats as JSON.
func ServeECB(ctx context.Context, stdin io.Reader, stdout io.Writer, opts ServerOptions) error {
	logw := opts.Log
	if logw == nil {
		logw = os.Stderr
	}
	log := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelWarn}))
	metrics := &hubCounter{}
	var queued atomic.Int64
	hcfg := hub.Config{Metrics: metrics}
	var node *cluster.Node
	if opts.RedisURL != "" {
		var err error
		node, err = cluster.Open(ctx, cluster.Config{RedisURL: opts.RedisURL, Prefix: opts.Prefix}, log)
		if err != nil {
			return err
		}
		defer node.Close() // after the server has let its connections go
		hcfg.Broker, hcfg.Controller, hcfg.NodeID = node.Broker, node.Controller, node.ID()
	}
	h := hub.New(hcfg)
	if node != nil {
		if err := startNode(ctx, node); err != nil {
			return err
		}
	}
	srv := socketio.NewServer(socketio.Config{Logger: log, WriteDelay: opts.WriteDelay})
	srv.Namespace("/").OnConnection(func(s *socketio.Socket) {
		c := &conn{socket: s, queued: &queued}
		h.Register(c, s.ID())
		if thread := threadOf(s.Handshake().Auth); thread != "" {
			if _, err := h.Attach(ctx, thread, c); err != nil {
				log.Warn("attach", "err", err)
			}
		}
		s.OnDisconnect(func(string) { h.Unregister(c) })
		s.On("publish", func(s *socketio.Socket, args []json.RawMessage, ack socketio.Ack) {
			var data json.RawMessage
			if len(args) > 0 {
				data = args[0]
			}
			if _, err := h.Publish(ctx, publishThread(args), &hub.Push{Event: "message", Data: data}, nil); err != nil {
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
	var queued0 int64 // at "start"
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
				queued0 = queued.Load()
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
				st := ServerStats{Delivered: metrics.delivered.Load(), Measured: queued.Load() - queued0, Dropped: metrics.dropped.Load(),
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

// startNode starts this server's cluster node (its hub is bound) and waits
// until it is ready (Redis answers, every subscription delivered its
// probe), so that "listening" means the node serves.
func startNode(ctx context.Context, node *cluster.Node) error {
	node.Start(ctx)
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for {
		err := node.Ready(wctx)
		if err == nil {
			return nil
		}
		select {
		case <-wctx.Done():
			return fmt.Errorf("cluster node not ready: %w", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
