package socketio

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// testConfig has short timers so that heartbeat tests are quick. With
// SOCKETIO_TEST_BLOCKING_READER=1 in the environment its connections read
// with blocking readers instead of the poller, so that the suite covers both.
func testConfig() Config {
	return Config{
		PingInterval:   time.Second,
		PingTimeout:    time.Second,
		ConnectTimeout: 5 * time.Second,
		AllowedOrigins: []string{"*"},
		BlockingReader: os.Getenv("SOCKETIO_TEST_BLOCKING_READER") == "1",
	}
}

// startServer runs srv behind an httptest server at /socket.io/ and shuts
// both down at the end of the test.
func startServer(tb testing.TB, srv *Server) *httptest.Server {
	tb.Helper()
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv)
	hs := httptest.NewServer(mux)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			tb.Errorf("Shutdown: %v", err)
		}
		hs.Close()
	})
	return hs
}

// wsClient is a raw WebSocket client speaking Engine.IO by hand.
type wsClient struct {
	tb   testing.TB
	conn net.Conn
}

func dialWS(tb testing.TB, hs *httptest.Server, query string) *wsClient {
	tb.Helper()
	u := "ws" + strings.TrimPrefix(hs.URL, "http") + "/socket.io/?EIO=4&transport=websocket" + query
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, br, _, err := ws.Dial(ctx, u)
	if err != nil {
		tb.Fatalf("dial %s: %v", u, err)
	}
	if br != nil {
		conn = &bufConn{Conn: conn, r: io.MultiReader(br, conn)}
	}
	c := &wsClient{tb: tb, conn: conn}
	tb.Cleanup(func() { _ = conn.Close() })
	return c
}

func (c *wsClient) send(s string) {
	c.tb.Helper()
	if err := wsutil.WriteClientText(c.conn, []byte(s)); err != nil {
		c.tb.Fatalf("send %q: %v", s, err)
	}
}

func (c *wsClient) sendBinary(b []byte) {
	c.tb.Helper()
	if err := wsutil.WriteClientBinary(c.conn, b); err != nil {
		c.tb.Fatalf("send binary: %v", err)
	}
}

// read returns the next data message, answering nothing; it fails the test
// on error or after 5s.
func (c *wsClient) read() (string, ws.OpCode) {
	c.tb.Helper()
	s, op, err := c.tryRead(5 * time.Second)
	if err != nil {
		c.tb.Fatalf("read: %v", err)
	}
	return s, op
}

func (c *wsClient) tryRead(d time.Duration) (string, ws.OpCode, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
	b, op, err := wsutil.ReadServerData(c.conn)
	return string(b), op, err
}

// readSkipPing returns the next text message that is not a ping.
func (c *wsClient) readSkipPing() string {
	c.tb.Helper()
	for {
		s, _ := c.read()
		if s != "2" {
			return s
		}
	}
}

// expectClosed waits until the server closes the connection.
func (c *wsClient) expectClosed(d time.Duration) {
	c.tb.Helper()
	deadline := time.Now().Add(d)
	for {
		_, _, err := c.tryRead(time.Until(deadline))
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				c.tb.Fatalf("connection still open after %v", d)
			}
			return
		}
	}
}

// openSession reads the Engine.IO open packet.
func (c *wsClient) openSession() map[string]any {
	c.tb.Helper()
	s, _ := c.read()
	if !strings.HasPrefix(s, "0") {
		c.tb.Fatalf("open packet: %q", s)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(s[1:]), &m); err != nil {
		c.tb.Fatalf("open packet: %v", err)
	}
	return m
}

// connectDefault opens the session and connects to "/" with auth.
func (c *wsClient) connect(nsp, auth string) string {
	c.tb.Helper()
	c.openSession()
	prefix := "40"
	if nsp != "/" {
		prefix += nsp + ","
	}
	c.send(prefix + auth)
	return c.readSkipPing()
}

func httpDo(tb testing.TB, method, url, body string, hdr map[string]string) (int, string, http.Header) {
	tb.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), res.Header
}

// pollHandshake opens a polling session and returns its sid.
func pollHandshake(tb testing.TB, base string) string {
	tb.Helper()
	code, body, _ := httpDo(tb, "GET", base+"/socket.io/?EIO=4&transport=polling", "", nil)
	if code != 200 || !strings.HasPrefix(body, "0{") {
		tb.Fatalf("handshake: %d %q", code, body)
	}
	var m struct{ Sid string }
	_ = json.Unmarshal([]byte(body[1:]), &m)
	return m.Sid
}

func pollURL(base, sid string) string {
	return base + "/socket.io/?EIO=4&transport=polling&sid=" + sid
}

// waitGoroutines waits until the goroutine count is back to at most n.
func waitGoroutines(tb testing.TB, n int) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			tb.Fatalf("goroutines: %d > %d\n%s", runtime.NumGoroutine(), n, buf)
		}
		runtime.Gosched()
		time.Sleep(10 * time.Millisecond)
	}
}

func dialWSURL(tb testing.TB, base, query string) *wsClient {
	tb.Helper()
	return dialWS(tb, &httptest.Server{URL: base}, query)
}

// bufConn reads what the dialer buffered before the connection itself.
type bufConn struct {
	net.Conn
	r io.Reader
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func startServerNoCleanup(tb testing.TB, srv *Server) *httptest.Server {
	tb.Helper()
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv)
	return httptest.NewServer(mux)
}
