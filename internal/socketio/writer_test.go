package socketio

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// connectSocket opens a WebSocket session on "/" and returns the client and
// its server-side socket.
func connectSocket(t *testing.T, cfg Config) (*wsClient, *Socket) {
	t.Helper()
	srv := NewServer(cfg)
	socks := make(chan *Socket, 1)
	srv.Namespace("/").OnConnection(func(s *Socket) { socks <- s })
	hs := startServer(t, srv)
	c := dialWS(t, hs, "")
	c.openSession()
	c.send("40")
	if got := c.readSkipPing(); !strings.HasPrefix(got, "40") {
		t.Fatalf("CONNECT answer %q", got)
	}
	select {
	case s := <-socks:
		return c, s
	case <-time.After(5 * time.Second):
		t.Fatal("no socket")
		return nil, nil
	}
}

func TestEncodeEventFrame(t *testing.T) {
	for _, size := range []int{10, 200, 70000} {
		body := strings.Repeat("x", size)
		pkt, err := EncodeEvent("/chat", "message", body)
		if err != nil {
			t.Fatal(err)
		}
		fr, err := EncodeEventFrame("/chat", "message", body)
		if err != nil {
			t.Fatal(err)
		}
		want := appendWSFrame(nil, frame{typ: eioMessage, data: pkt})
		if string(fr) != string(want) {
			t.Fatalf("size %d: frame differs from the packet's frame", size)
		}
		if got := string(wsFramePayload(fr)); got != "4"+string(pkt) {
			t.Fatalf("size %d: payload %.40q", size, got)
		}
	}
	if _, err := EncodeEventFrame("/", "connect"); err != ErrReservedEvent {
		t.Fatalf("reserved event: %v", err)
	}
}

// TestSendFrameWebSocketAndPolling: a frame from EncodeEventFrame reaches a
// WebSocket client as the packet, and a polling client as the same packet.
func TestSendFrameWebSocketAndPolling(t *testing.T) {
	fr, err := EncodeEventFrame("/", "message", json.RawMessage(`{"id":"m1"}`))
	if err != nil {
		t.Fatal(err)
	}
	c, s := connectSocket(t, testConfig())
	s.cl.conn.mu.Lock()
	raw := s.cl.conn.wsRaw
	s.cl.conn.mu.Unlock()
	if raw == nil {
		t.Fatal("a TCP WebSocket has no RawConn: the pool's writes are not used")
	}
	if !s.SendFrame(fr) || !s.TrySendFrame(fr) {
		t.Fatal("SendFrame refused")
	}
	for range 2 {
		if got := c.readSkipPing(); got != `42["message",{"id":"m1"}]` {
			t.Fatalf("websocket got %q", got)
		}
	}

	srv := NewServer(testConfig())
	socks := make(chan *Socket, 1)
	srv.Namespace("/").OnConnection(func(s *Socket) { socks <- s })
	hs := startServer(t, srv)
	sid := pollHandshake(t, hs.URL)
	if code, body, _ := httpDo(t, "POST", pollURL(hs.URL, sid), "40", nil); code != 200 {
		t.Fatalf("POST 40: %d %s", code, body)
	}
	if _, body, _ := httpDo(t, "GET", pollURL(hs.URL, sid), "", nil); !strings.HasPrefix(body, "40") {
		t.Fatalf("CONNECT answer %q", body)
	}
	ps := <-socks
	if !ps.SendFrame(fr) {
		t.Fatal("SendFrame refused on polling")
	}
	if _, body, _ := httpDo(t, "GET", pollURL(hs.URL, sid), "", nil); body != `42["message",{"id":"m1"}]` {
		t.Fatalf("polling got %q", body)
	}
}

// TestWriteBlockedClient: a client that stops reading fills its socket
// buffers, so the pool's non-blocking write is short and the rest goes
// through the blocking writer; once the client reads again everything
// arrives, in order, and after the write deadline of that blocking write has
// passed the pool's writes still work (the deadline was cleared).
func TestWriteBlockedClient(t *testing.T) {
	cfg := testConfig()
	cfg.PingInterval = time.Hour
	cfg.WriteQueueBytes = 64 << 20
	cfg.WriteTimeout = 4 * time.Second
	c, s := connectSocket(t, cfg)
	big := strings.Repeat("y", 8000)
	const n = 800 // 6.4 MB: more than the loopback socket buffers hold
	for i := range n {
		pkt, err := EncodeEventFrame("/", "m", i, big)
		if err != nil {
			t.Fatal(err)
		}
		if !s.SendFrame(pkt) {
			t.Fatalf("send %d refused", i)
		}
	}
	time.Sleep(300 * time.Millisecond) // the client is not reading
	s.cl.conn.mu.Lock()
	queued := s.cl.conn.queued
	s.cl.conn.mu.Unlock()
	if queued == 0 {
		t.Fatal("nothing left queued: the client's buffers did not fill")
	}
	br := &bufConn{Conn: c.conn, r: bufio.NewReaderSize(c.conn, 64<<10)}
	for i := range n {
		_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, _, err := wsutil.ReadServerData(br)
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		if want := fmt.Sprintf(`42["m",%d,"`, i); !strings.HasPrefix(string(b), want) {
			t.Fatalf("message %d: %.20q", i, b)
		}
	}
	time.Sleep(cfg.WriteTimeout + 500*time.Millisecond)
	if !s.SendEncoded([]byte(`2["after"]`)) {
		t.Fatal("send after refused")
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, _, err := wsutil.ReadServerData(br)
	if err != nil || string(b) != `42["after"]` {
		t.Fatalf("after the blocked write: %q %v", b, err)
	}
}

// TestWriteDelay: with WriteDelay, a push waits that long, and the pushes
// queued meanwhile arrive with it.
func TestWriteDelay(t *testing.T) {
	for _, delay := range []time.Duration{0, 150 * time.Millisecond} {
		cfg := testConfig()
		cfg.PingInterval = time.Hour
		cfg.WriteDelay = delay
		c, s := connectSocket(t, cfg)
		start := time.Now()
		if !s.SendEncoded([]byte(`2["a"]`)) {
			t.Fatal("send a")
		}
		time.Sleep(delay / 3)
		if !s.SendEncoded([]byte(`2["b"]`)) {
			t.Fatal("send b")
		}
		if got := c.readSkipPing(); got != `42["a"]` {
			t.Fatalf("got %q", got)
		}
		first := time.Since(start)
		if got := c.readSkipPing(); got != `42["b"]` {
			t.Fatalf("got %q", got)
		}
		if delay > 0 && first < delay {
			t.Fatalf("delay %v: the first push arrived after %v", delay, first)
		}
		if delay == 0 && first > 100*time.Millisecond {
			t.Fatalf("no delay: the first push arrived after %v", first)
		}
	}
}

// TestWriteOverTLS: a WebSocket over TLS has no descriptor for the pool's
// non-blocking writes (wsRaw is nil); its writes go through the blocking
// writer, in order.
func TestWriteOverTLS(t *testing.T) {
	cfg := testConfig()
	cfg.PingInterval = time.Hour
	srv := NewServer(cfg)
	socks := make(chan *Socket, 1)
	srv.Namespace("/").OnConnection(func(s *Socket) { socks <- s })
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv)
	hs := httptest.NewTLSServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		hs.Close()
	})
	d := ws.Dialer{TLSConfig: hs.Client().Transport.(*http.Transport).TLSClientConfig}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, br, _, err := d.Dial(ctx, "wss"+strings.TrimPrefix(hs.URL, "https")+"/socket.io/?EIO=4&transport=websocket")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if br != nil {
		conn = &bufConn{Conn: conn, r: io.MultiReader(br, conn)}
	}
	c := &wsClient{tb: t, conn: conn}
	c.openSession()
	c.send("40")
	if got := c.readSkipPing(); !strings.HasPrefix(got, "40") {
		t.Fatalf("CONNECT answer %q", got)
	}
	s := <-socks
	s.cl.conn.mu.Lock()
	raw := s.cl.conn.wsRaw
	s.cl.conn.mu.Unlock()
	if raw != nil {
		t.Fatal("a TLS connection has a RawConn")
	}
	for i := range 100 {
		fr, _ := EncodeEventFrame("/", "m", i)
		if !s.SendFrame(fr) {
			t.Fatalf("send %d refused", i)
		}
	}
	for i := range 100 {
		if got, want := c.readSkipPing(), fmt.Sprintf(`42["m",%d]`, i); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}

// TestIdleConnectionKeepsNoQueueArray: once its queue is written, a
// connection holds no queue array (they go back to queuePool), and what it
// sends afterwards still arrives whole and in order.
func TestIdleConnectionKeepsNoQueueArray(t *testing.T) {
	c, s := connectSocket(t, testConfig())
	conn := s.cl.conn
	held := func() bool {
		conn.mu.Lock()
		defer conn.mu.Unlock()
		return cap(conn.queue) != 0 || conn.spare != nil || conn.writing
	}
	waitFor(t, func() bool { return !held() })
	for round := range 3 {
		for i := range 20 {
			if err := s.Emit("n", round*100+i); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 20 {
			if got, want := c.readSkipPing(), fmt.Sprintf(`42["n",%d]`, round*100+i); got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		}
		waitFor(t, func() bool { return !held() })
	}
}
