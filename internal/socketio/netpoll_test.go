package socketio

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// The reader's tests: every one runs with readiness reading (the default on
// Linux) and with one blocking reader per connection, and fails if a byte is
// lost, a message reordered, or an idle connection keeps a reader goroutine
// where the poller should hold it.

var readerModes = []struct {
	name     string
	blocking bool
}{{"netpoll", false}, {"blocking", true}}

// echoHandler sends every message back, and records how the connection
// ended.
type echoHandler struct {
	mu     sync.Mutex
	closed map[string]string // sid -> reason
	done   chan string       // sids, as they close
}

func (h *echoHandler) OnMessage(c *EngineConn, data []byte, binary bool) {
	_ = c.Send(data, binary)
}

func (h *echoHandler) OnClose(c *EngineConn, reason string) {
	h.mu.Lock()
	h.closed[c.ID()] = reason
	h.mu.Unlock()
	h.done <- c.ID()
}

// startEcho runs an Engine that echoes (at any path).
func startEcho(t *testing.T, blocking bool) (*Engine, *httptest.Server, *echoHandler) {
	t.Helper()
	h := &echoHandler{closed: map[string]string{}, done: make(chan string, 4096)}
	cfg := testConfig()
	cfg.PingInterval, cfg.PingTimeout = 30*time.Second, 5*time.Second // the clients do not answer pings
	cfg.BlockingReader = blocking
	e := NewEngine(cfg, func(*EngineConn) EngineHandler { return h })
	return e, serveEngine(t, e), h
}

// serveEngine serves e (at any path) until the test ends, then shuts it
// down and closes the server.
func serveEngine(t *testing.T, e *Engine) *httptest.Server {
	t.Helper()
	hs := httptest.NewServer(e)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := e.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		hs.Close()
	})
	return hs
}

// clientFrame is a masked client frame, as bytes to write in any pieces.
func clientFrame(op ws.OpCode, fin bool, payload []byte) []byte {
	f := ws.NewFrame(op, fin, append([]byte(nil), payload...))
	f = ws.MaskFrameInPlace(f)
	b, err := ws.CompileFrame(f)
	if err != nil {
		panic(err)
	}
	return b
}

// writePieces writes b in pieces of 1..max bytes, pausing between some.
func writePieces(c *wsClient, b []byte, max int, pause time.Duration, rng *rand.Rand) error {
	for len(b) > 0 {
		n := min(len(b), 1+rng.IntN(max))
		if _, err := c.conn.Write(b[:n]); err != nil {
			return err
		}
		b = b[n:]
		if pause > 0 && rng.IntN(3) == 0 {
			time.Sleep(pause)
		}
	}
	return nil
}

// readerGoroutines counts the goroutines in a WebSocket reader.
func readerGoroutines() int {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return bytes.Count(buf, []byte("socketio.(*EngineConn).readLoop("))
}

// waitReaders waits until at most n reader goroutines are left.
func waitReaders(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := readerGoroutines()
		if got <= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d reader goroutines, want at most %d", got, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// expectEcho reads the next data messages and compares them with want, in
// order, skipping pings.
func expectEcho(t *testing.T, c *wsClient, want ...string) {
	t.Helper()
	for _, w := range want {
		got := c.readSkipPing()
		if got != w {
			t.Fatalf("echo %.60q, want %.60q", got, w)
		}
	}
}

// TestReaderPieces: messages whose bytes arrive one to three at a time, with
// pauses long enough for the reader to go idle between any two of them
// (inside a header, inside the mask, inside the payload, between the
// fragments of a message), several frames in one write, a ping and a
// fragmented message: every message arrives whole and in order.
func TestReaderPieces(t *testing.T) {
	for _, m := range readerModes {
		t.Run(m.name, func(t *testing.T) {
			_, hs, _ := startEcho(t, m.blocking)
			c := dialWS(t, hs, "")
			c.openSession()
			rng := rand.New(rand.NewPCG(1, 2))
			var want []string
			var stream []byte
			half := 0 // where message 20 starts
			for i := range 40 {
				if i == 20 {
					half = len(stream)
				}
				msg := fmt.Sprintf("4m%d-%s", i, strings.Repeat("x", rng.IntN(300)))
				if i == 30 { // in the second half, written at once
					msg = "4" + strings.Repeat("L", 70000) // a 64-bit length header
				}
				want = append(want, msg)
				if i == 5 { // fragmented, in the half written in pieces
					stream = append(stream, clientFrame(ws.OpText, false, []byte(msg[:3]))...)
					stream = append(stream, clientFrame(ws.OpContinuation, false, []byte(msg[3:4]))...)
					stream = append(stream, clientFrame(ws.OpContinuation, true, []byte(msg[4:]))...)
					continue
				}
				stream = append(stream, clientFrame(ws.OpText, true, []byte(msg))...)
				if i%10 == 3 {
					stream = append(stream, clientFrame(ws.OpPing, true, []byte("p"))...)
				}
			}
			// A message in three fragments, a ping between two of them.
			stream = append(stream, clientFrame(ws.OpText, false, []byte("4frag-"))...)
			stream = append(stream, clientFrame(ws.OpContinuation, false, []byte("men"))...)
			stream = append(stream, clientFrame(ws.OpPing, true, nil)...)
			stream = append(stream, clientFrame(ws.OpContinuation, true, []byte("ted"))...)
			want = append(want, "4frag-mented")

			wrote := make(chan error, 1)
			go func() {
				err := writePieces(c, stream[:half], 3, 3*time.Millisecond, rand.New(rand.NewPCG(3, 4)))
				if err == nil {
					// The rest in one write: many frames at once.
					_, err = c.conn.Write(stream[half:])
				}
				wrote <- err
			}()
			for i := 0; i < len(want); {
				s, op, err := c.tryRead(10 * time.Second)
				if err != nil {
					t.Fatalf("after %d echoes: %v", i, err)
				}
				if op != ws.OpText || s == "2" {
					continue
				}
				if s != want[i] {
					t.Fatalf("echo %d: %.60q, want %.60q", i, s, want[i])
				}
				i++
			}
			if err := <-wrote; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestReaderIdleHoldsNoGoroutine: with the poller, a connection that waits
// between messages has no reader goroutine; it still answers at once when
// a message comes, and the client's close while idle ends it (OnClose with
// "transport close"). With blocking readers, each keeps one.
func TestReaderIdleHoldsNoGoroutine(t *testing.T) {
	if !pollerSupported {
		t.Skip("no readiness poller on this system")
	}
	for _, m := range readerModes {
		t.Run(m.name, func(t *testing.T) {
			_, hs, h := startEcho(t, m.blocking)
			base := readerGoroutines()
			const n = 20
			cs := make([]*wsClient, n)
			for i := range cs {
				cs[i] = dialWS(t, hs, "")
				cs[i].openSession()
				cs[i].send("4hello")
				expectEcho(t, cs[i], "4hello")
			}
			if m.blocking {
				waitFor(t, func() bool { return readerGoroutines() >= base+n })
			} else {
				waitReaders(t, base)
			}
			for i, c := range cs {
				c.send(fmt.Sprintf("4again%d", i))
			}
			for i, c := range cs {
				expectEcho(t, c, fmt.Sprintf("4again%d", i))
			}
			if !m.blocking {
				waitReaders(t, base)
			}
			// The clients close while idle: each connection ends.
			for _, c := range cs {
				_ = c.conn.Close()
			}
			deadline := time.After(5 * time.Second)
			for range n {
				select {
				case <-h.done:
				case <-deadline:
					t.Fatal("a connection closed by its client while idle did not end")
				}
			}
			h.mu.Lock()
			defer h.mu.Unlock()
			for sid, reason := range h.closed {
				if reason != ReasonTransportClose {
					t.Errorf("%s closed with %q, want %q", sid, reason, ReasonTransportClose)
				}
			}
		})
	}
}

// TestReaderServerCloseWhileIdle: a connection the server closes while it
// is idle (in the poller) gets its close frame, and a Shutdown with idle
// connections returns.
func TestReaderServerCloseWhileIdle(t *testing.T) {
	for _, m := range readerModes {
		t.Run(m.name, func(t *testing.T) {
			conns := make(chan *EngineConn, 2)
			h := &echoHandler{closed: map[string]string{}, done: make(chan string, 8)}
			cfg := testConfig()
			cfg.PingInterval = 30 * time.Second // the clients do not answer pings
			cfg.BlockingReader = m.blocking
			e := NewEngine(cfg, func(c *EngineConn) EngineHandler { conns <- c; return h })
			hs := httptest.NewServer(e)
			defer hs.Close()
			dial := func() *wsClient { return dialWS(t, hs, "") } // the Engine serves any path
			a, b := dial(), dial()
			a.openSession()
			b.openSession()
			ca, cb := <-conns, <-conns
			if !m.blocking {
				waitReaders(t, 0)
			}
			ca.Close()
			a.expectClosed(5 * time.Second)
			b.send("4still")
			expectEcho(t, b, "4still")
			if cb.closed.Load() {
				t.Fatal("the other connection closed")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := e.Shutdown(ctx); err != nil {
				t.Fatalf("Shutdown with an idle connection: %v", err)
			}
			b.expectClosed(5 * time.Second)
		})
	}
}

// TestReaderSlowClient: a client that sends half a frame and waits holds
// only its own reader; another connection is served meanwhile, and the
// slow one's message arrives whole when the rest comes.
func TestReaderSlowClient(t *testing.T) {
	for _, m := range readerModes {
		t.Run(m.name, func(t *testing.T) {
			_, hs, _ := startEcho(t, m.blocking)
			slow, fast := dialWS(t, hs, ""), dialWS(t, hs, "")
			slow.openSession()
			fast.openSession()
			msg := "4" + strings.Repeat("s", 5000)
			fr := clientFrame(ws.OpText, true, []byte(msg))
			if _, err := slow.conn.Write(fr[:100]); err != nil {
				t.Fatal(err)
			}
			for i := range 20 {
				fast.send(fmt.Sprintf("4fast%d", i))
				expectEcho(t, fast, fmt.Sprintf("4fast%d", i))
			}
			time.Sleep(200 * time.Millisecond)
			if _, err := slow.conn.Write(fr[100:]); err != nil {
				t.Fatal(err)
			}
			expectEcho(t, slow, msg)
		})
	}
}

// TestReaderManyConnections: 200 connections, each writing 30 messages in
// random pieces at the same time: every echo whole and in order on its own
// connection; then none keeps a reader with the poller.
func TestReaderManyConnections(t *testing.T) {
	for _, m := range readerModes {
		t.Run(m.name, func(t *testing.T) {
			_, hs, _ := startEcho(t, m.blocking)
			base := readerGoroutines()
			const n, k = 200, 30
			cs := make([]*wsClient, n)
			for i := range cs {
				cs[i] = dialWS(t, hs, "")
				cs[i].openSession()
			}
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for i, c := range cs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(uint64(i), 9))
					var stream []byte
					want := make([]string, k)
					for j := range want {
						want[j] = fmt.Sprintf("4c%d-m%d-%s", i, j, strings.Repeat("y", rng.IntN(200)))
						stream = append(stream, clientFrame(ws.OpText, true, []byte(want[j]))...)
					}
					go func() {
						for len(stream) > 0 {
							p := min(len(stream), 1+rng.IntN(64))
							if _, err := c.conn.Write(stream[:p]); err != nil {
								return
							}
							stream = stream[p:]
							if rng.IntN(8) == 0 {
								time.Sleep(time.Millisecond)
							}
						}
					}()
					for j := 0; j < k; {
						s, op, err := c.tryRead(10 * time.Second)
						if err != nil {
							errs <- fmt.Errorf("conn %d after %d: %w", i, j, err)
							return
						}
						if op != ws.OpText || s == "2" {
							continue
						}
						if s != want[j] {
							errs <- fmt.Errorf("conn %d echo %d: %.40q, want %.40q", i, j, s, want[j])
							return
						}
						j++
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if !m.blocking && pollerSupported {
				waitReaders(t, base)
			}
		})
	}
}

// TestReaderHeartbeat: an idle connection that answers every ping stays
// open (its pongs wake its reader), and one whose client stops answering
// is closed with "ping timeout": a dead peer is still detected.
func TestReaderHeartbeat(t *testing.T) {
	for _, m := range readerModes {
		t.Run(m.name, func(t *testing.T) {
			h := &echoHandler{closed: map[string]string{}, done: make(chan string, 8)}
			cfg := testConfig()
			cfg.PingInterval, cfg.PingTimeout = 40*time.Millisecond, 200*time.Millisecond
			cfg.BlockingReader = m.blocking
			e := NewEngine(cfg, func(*EngineConn) EngineHandler { return h })
			hs := serveEngine(t, e)
			c := dialWS(t, hs, "")
			c.openSession()
			for i := range 15 {
				if s, _ := c.read(); s != "2" {
					t.Fatalf("ping %d: %q", i, s)
				}
				c.send("3")
			}
			select {
			case sid := <-h.done:
				t.Fatalf("%s closed while answering pings", sid)
			default:
			}
			// The client stops answering.
			select {
			case sid := <-h.done:
				h.mu.Lock()
				reason := h.closed[sid]
				h.mu.Unlock()
				if reason != ReasonPingTimeout {
					t.Fatalf("closed with %q, want %q", reason, ReasonPingTimeout)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("a client that stopped answering pings is still connected")
			}
			c.expectClosed(5 * time.Second)
		})
	}
}

// BenchmarkReaderEcho: one message from the client and its echo, on one
// connection: what readiness reading adds per message received (a
// non-blocking read that finds nothing, an epoll_ctl, a wake-up and a
// goroutine) against a reader blocked in Read.
func BenchmarkReaderEcho(b *testing.B) {
	for _, m := range readerModes {
		b.Run(m.name, func(b *testing.B) {
			h := &echoHandler{closed: map[string]string{}, done: make(chan string, 8)}
			cfg := testConfig()
			cfg.PingInterval = time.Minute
			cfg.BlockingReader = m.blocking
			e := NewEngine(cfg, func(*EngineConn) EngineHandler { return h })
			hs := httptest.NewServer(e)
			defer hs.Close()
			c := dialWS(b, hs, "")
			c.openSession()
			msg := clientFrame(ws.OpText, true, []byte("4"+strings.Repeat("b", 100)))
			cpu0 := processCPU()
			b.ResetTimer()
			for range b.N {
				if _, err := c.conn.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, _, err := c.tryRead(5 * time.Second); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			// The process's CPU, client included (the same in both modes).
			b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = e.Shutdown(ctx)
		})
	}
}

// processCPU is the CPU time (user + system) the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
