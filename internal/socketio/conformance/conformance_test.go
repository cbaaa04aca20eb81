package conformance

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// These tests follow the official Engine.IO v4 and Socket.IO v5 protocol
// test suites (socketio/engine.io-protocol and socketio/socket.io-protocol,
// test-suite/test-suite.js), run against the conformance server.

func start(t *testing.T) string {
	t.Helper()
	s := New(nil)
	hs := httptest.NewServer(s)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		hs.Close()
	})
	return hs.URL
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	return do(t, "GET", url, "")
}

func do(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

type conn struct {
	t *testing.T
	c net.Conn
}

type bufConn struct {
	net.Conn
	r io.Reader
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func dial(t *testing.T, url string) *conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, br, _, err := ws.Dial(ctx, "ws"+strings.TrimPrefix(url, "http"))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if br != nil {
		c = &bufConn{Conn: c, r: io.MultiReader(br, c)}
	}
	t.Cleanup(func() { _ = c.Close() })
	return &conn{t: t, c: c}
}

func dialFail(t *testing.T, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, _, err := ws.Dial(ctx, "ws"+strings.TrimPrefix(url, "http"))
	if err == nil {
		_ = c.Close()
		t.Fatalf("dial %s succeeded", url)
	}
}

func (c *conn) send(s string) {
	c.t.Helper()
	if err := wsutil.WriteClientText(c.c, []byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

func (c *conn) sendBin(b []byte) {
	c.t.Helper()
	if err := wsutil.WriteClientBinary(c.c, b); err != nil {
		c.t.Fatal(err)
	}
}

func (c *conn) read() string {
	c.t.Helper()
	_ = c.c.SetReadDeadline(time.Now().Add(3 * time.Second))
	b, _, err := wsutil.ReadServerData(c.c)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return string(b)
}

// readPacket skips pings, as the suite's waitForPackets does.
func (c *conn) readPacket() string {
	c.t.Helper()
	for {
		if s := c.read(); s != "2" {
			return s
		}
	}
}

func (c *conn) waitClose() {
	c.t.Helper()
	_ = c.c.SetReadDeadline(time.Now().Add(3 * time.Second))
	for {
		if _, _, err := wsutil.ReadServerData(c.c); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				c.t.Fatal("not closed")
			}
			return
		}
	}
}

func handshakeKeys(t *testing.T, payload string, upgrades []any) string {
	t.Helper()
	if !strings.HasPrefix(payload, "0") {
		t.Fatalf("open packet %q", payload)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(payload[1:]), &v); err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"maxPayload", "pingInterval", "pingTimeout", "sid", "upgrades"}) {
		t.Fatalf("keys %v", keys)
	}
	if v["pingInterval"] != 300.0 || v["pingTimeout"] != 200.0 || v["maxPayload"] != 1e6 {
		t.Fatalf("values %v", v)
	}
	got, _ := v["upgrades"].([]any)
	if !slices.Equal(got, upgrades) {
		t.Fatalf("upgrades %v", got)
	}
	return v["sid"].(string)
}

func initPolling(t *testing.T, base, path string) string {
	t.Helper()
	code, body := get(t, base+path+"?EIO=4&transport=polling")
	if code != 200 {
		t.Fatalf("handshake %d", code)
	}
	return handshakeKeys(t, body, []any{"websocket"})
}

func TestEngineIOHandshake(t *testing.T) {
	base := start(t)
	initPolling(t, base, "/engine.io/")
	for _, q := range []string{"transport=polling", "EIO=abc&transport=polling", "EIO=3&transport=polling", "EIO=4", "EIO=4&transport=abc"} {
		if code, _ := get(t, base+"/engine.io/?"+q); code != 400 {
			t.Errorf("%s: %d", q, code)
		}
	}
	for _, m := range []string{"POST", "PUT"} {
		if code, body := do(t, m, base+"/engine.io/?EIO=4&transport=polling", ""); code != 400 || body != `{"code":2,"message":"Bad handshake method"}` {
			t.Errorf("%s: %d %s", m, code, body)
		}
	}
	c := dial(t, base+"/engine.io/?EIO=4&transport=websocket")
	handshakeKeys(t, c.read(), []any{})
	dialFail(t, base+"/engine.io/?transport=websocket")
	dialFail(t, base+"/engine.io/?EIO=abc&transport=websocket")
	dialFail(t, base+"/engine.io/?EIO=4")
	dialFail(t, base+"/engine.io/?EIO=4&transport=abc")
}

func TestEngineIOPollingMessages(t *testing.T) {
	base := start(t)
	for _, body := range []string{"4hello", "4test1\x1e4test2\x1e4test3", "4hello\x1ebAQIDBA=="} {
		sid := initPolling(t, base, "/engine.io/")
		u := base + "/engine.io/?EIO=4&transport=polling&sid=" + sid
		if code, res := do(t, "POST", u, body); code != 200 || res != "ok" {
			t.Fatalf("post %d %q", code, res)
		}
		if code, res := get(t, u); code != 200 || res != body {
			t.Fatalf("poll %d %q, want %q", code, res, body)
		}
	}
	// Invalid packet format closes the session.
	sid := initPolling(t, base, "/engine.io/")
	u := base + "/engine.io/?EIO=4&transport=polling&sid=" + sid
	if code, _ := do(t, "POST", u, "abc"); code != 400 {
		t.Fatalf("bad post %d", code)
	}
	if code, _ := get(t, u); code != 400 {
		t.Fatalf("poll after bad post %d", code)
	}
}

func TestEngineIODuplicatePoll(t *testing.T) {
	base := start(t)
	sid := initPolling(t, base, "/engine.io/")
	u := base + "/engine.io/?EIO=4&transport=polling&sid=" + sid
	type res struct {
		code int
		body string
	}
	first := make(chan res, 1)
	go func() { c, b := get(t, u); first <- res{c, b} }()
	time.Sleep(50 * time.Millisecond) // let the first poll arrive first, as the suite does
	code, _ := get(t, u+"&t=burst")
	if code != 400 {
		t.Fatalf("second poll %d", code)
	}
	r := <-first
	if r.code != 200 || r.body != "1" {
		t.Fatalf("first poll %d %q", r.code, r.body)
	}
	if code, _ := get(t, u); code != 400 {
		t.Fatalf("poll after %d", code)
	}
}

func TestEngineIOWebSocketMessages(t *testing.T) {
	base := start(t)
	c := dial(t, base+"/engine.io/?EIO=4&transport=websocket")
	c.read()
	c.send("4hello")
	if got := c.readPacket(); got != "4hello" {
		t.Fatalf("%q", got)
	}
	c.sendBin([]byte{1, 2, 3, 4})
	if got := c.readPacket(); got != "\x01\x02\x03\x04" {
		t.Fatalf("%q", got)
	}
	c.send("abc")
	c.waitClose()
}

func TestEngineIOHeartbeat(t *testing.T) {
	base := start(t)
	// Polling: the server pings, the client pongs, three times.
	sid := initPolling(t, base, "/engine.io/")
	u := base + "/engine.io/?EIO=4&transport=polling&sid=" + sid
	for range 3 {
		if code, body := get(t, u); code != 200 || body != "2" {
			t.Fatalf("poll %d %q", code, body)
		}
		if code, _ := do(t, "POST", u, "3"); code != 200 {
			t.Fatalf("pong %d", code)
		}
	}
	// Polling: no pong closes the session.
	sid = initPolling(t, base, "/engine.io/")
	u = base + "/engine.io/?EIO=4&transport=polling&sid=" + sid
	time.Sleep(600 * time.Millisecond) // pingInterval + pingTimeout + slack: the suite sleeps too
	if code, _ := do(t, "POST", u, "3"); code != 400 {
		t.Fatalf("post after timeout %d", code)
	}
	// WebSocket: pings answered keep it open; then silence closes it.
	c := dial(t, base+"/engine.io/?EIO=4&transport=websocket")
	c.read()
	for range 3 {
		if got := c.read(); got != "2" {
			t.Fatalf("%q", got)
		}
		c.send("3")
	}
	c.waitClose()
}

func TestEngineIOClose(t *testing.T) {
	base := start(t)
	sid := initPolling(t, base, "/engine.io/")
	u := base + "/engine.io/?EIO=4&transport=polling&sid=" + sid
	polled := make(chan string, 1)
	go func() { _, b := get(t, u); polled <- b }()
	time.Sleep(50 * time.Millisecond)
	if code, _ := do(t, "POST", u, "1"); code != 200 {
		t.Fatalf("close post %d", code)
	}
	if got := <-polled; got != "6" {
		t.Fatalf("pending poll got %q", got)
	}
	if code, _ := get(t, u); code != 400 {
		t.Fatalf("poll after close %d", code)
	}
	// The suite sends the GET and the POST "1" together: when the server
	// reads the POST first, the GET the client had in flight still ends
	// with the noop, then the session is gone.
	sid = initPolling(t, base, "/engine.io/")
	u = base + "/engine.io/?EIO=4&transport=polling&sid=" + sid
	if code, _ := do(t, "POST", u, "1"); code != 200 {
		t.Fatalf("close post %d", code)
	}
	if code, body := get(t, u); code != 200 || body != "6" {
		t.Fatalf("in-flight poll read after the close: %d %q", code, body)
	}
	if code, _ := get(t, u); code != 400 {
		t.Fatalf("poll after close %d", code)
	}
	c := dial(t, base+"/engine.io/?EIO=4&transport=websocket")
	c.read()
	c.send("1")
	c.waitClose()
}

func TestEngineIOUpgrade(t *testing.T) {
	base := start(t)
	sid := initPolling(t, base, "/engine.io/")
	u := base + "/engine.io/?EIO=4&transport=polling&sid=" + sid
	c := dial(t, base+"/engine.io/?EIO=4&transport=websocket&sid="+sid)
	c.send("2probe")
	if got := c.read(); got != "3probe" {
		t.Fatalf("probe %q", got)
	}
	if code, body := get(t, u); code != 200 || body != "6" {
		t.Fatalf("poll during upgrade %d %q", code, body)
	}
	c.send("5")
	c.send("4hello")
	if got := c.readPacket(); got != "4hello" {
		t.Fatalf("%q", got)
	}
	// HTTP requests with the same sid are refused; a second WebSocket is
	// accepted and closed ("the server MUST close the WebSocket
	// connection", README "WebSocket"); the session goes on.
	if code, _ := get(t, u); code != 400 {
		t.Fatalf("poll after upgrade %d", code)
	}
	dial(t, base+"/engine.io/?EIO=4&transport=websocket&sid="+sid).waitClose()
	c.send("4again")
	if got := c.readPacket(); got != "4again" {
		t.Fatalf("%q", got)
	}
	dialFail(t, base+"/engine.io/?EIO=4&transport=websocket&sid=unknown")
}

// TestEngineIOUpgradeSameSid follows the suite's "ignores HTTP requests with
// same sid after upgrade" and "ignores WebSocket connection with same sid
// after upgrade": the client sends "2probe" and "5" without waiting, then a
// GET, or a second WebSocket, over other connections. The GET gets 400 and
// the second WebSocket is closed whichever the server reads first; the
// upgraded session goes on (README "Upgrade", "WebSocket").
func TestEngineIOUpgradeSameSid(t *testing.T) {
	base := start(t)
	for _, path := range []string{"/engine.io/", "/socket.io/"} {
		sid := initPolling(t, base, path)
		c := dial(t, base+path+"?EIO=4&transport=websocket&sid="+sid)
		c.send("2probe")
		c.send("5")
		if code, _ := get(t, base+path+"?EIO=4&transport=polling&sid="+sid); code != 400 {
			t.Fatalf("%s: poll after 2probe, 5: %d", path, code)
		}
		if got := c.read(); got != "3probe" {
			t.Fatalf("%s: probe %q", path, got)
		}

		sid = initPolling(t, base, path)
		c = dial(t, base+path+"?EIO=4&transport=websocket&sid="+sid)
		c.send("2probe")
		c.send("5")
		dial(t, base+path+"?EIO=4&transport=websocket&sid="+sid).waitClose()
		if got := c.read(); got != "3probe" {
			t.Fatalf("%s: probe %q", path, got)
		}
		if path == "/engine.io/" {
			c.send("4hello")
			if got := c.readPacket(); got != "4hello" {
				t.Fatalf("after the second WebSocket: %q", got)
			}
		}
	}
}

func sioConn(t *testing.T, base string) *conn {
	t.Helper()
	c := dial(t, base+"/socket.io/?EIO=4&transport=websocket")
	c.read()
	c.send("40")
	c.readPacket() // CONNECT
	c.readPacket() // auth
	return c
}

func TestSocketIOConnect(t *testing.T) {
	base := start(t)
	cases := []struct{ send, prefix, auth string }{
		{"40", "40", `42["auth",{}]`},
		{`40{"token":"123"}`, "40", `42["auth",{"token":"123"}]`},
		{"40/custom,", "40/custom,", `42/custom,["auth",{}]`},
		{`40/custom,{"token":"abc"}`, "40/custom,", `42/custom,["auth",{"token":"abc"}]`},
	}
	for _, tc := range cases {
		c := dial(t, base+"/socket.io/?EIO=4&transport=websocket")
		c.read()
		c.send(tc.send)
		got := c.readPacket()
		if !strings.HasPrefix(got, tc.prefix) {
			t.Fatalf("%s: %q", tc.send, got)
		}
		var hs map[string]any
		if err := json.Unmarshal([]byte(got[len(tc.prefix):]), &hs); err != nil || len(hs) != 1 || hs["sid"] == nil {
			t.Fatalf("%s: handshake %q", tc.send, got)
		}
		if got := c.readPacket(); got != tc.auth {
			t.Fatalf("%s: auth %q", tc.send, got)
		}
	}
	c := dial(t, base+"/socket.io/?EIO=4&transport=websocket")
	c.read()
	c.send("40/random")
	if got := c.readPacket(); got != `44/random,{"message":"Invalid namespace"}` {
		t.Fatalf("%q", got)
	}
	c.send(`40/private,{"token":"bad"}`)
	if got := c.readPacket(); got != `44/private,{"message":"unauthorized","data":{"reason":"bad token"}}` {
		t.Fatalf("%q", got)
	}
	c.send("4abc")
	c.waitClose()
}

func TestSocketIODisconnect(t *testing.T) {
	base := start(t)
	c := sioConn(t, base)
	c.send("41")
	c.waitClose() // by the ping timeout, as in the suite
	c = sioConn(t, base)
	c.send("40/custom")
	c.readPacket()
	c.readPacket()
	c.send("41/custom")
	c.send(`42["message","message to main namespace"]`)
	if got := c.readPacket(); got != `42["message-back","message to main namespace"]` {
		t.Fatalf("%q", got)
	}
}

func TestSocketIOMessages(t *testing.T) {
	base := start(t)
	c := sioConn(t, base)
	c.send(`42["message",1,"2",{"3":[true]}]`)
	if got := c.readPacket(); got != `42["message-back",1,"2",{"3":[true]}]` {
		t.Fatalf("%q", got)
	}
	c.send(`452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`)
	c.sendBin([]byte{1, 2, 3})
	c.sendBin([]byte{4, 5, 6})
	if got := c.readPacket(); got != `452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]` {
		t.Fatalf("%q", got)
	}
	if got := c.readPacket(); got != "\x01\x02\x03" {
		t.Fatalf("%q", got)
	}
	if got := c.readPacket(); got != "\x04\x05\x06" {
		t.Fatalf("%q", got)
	}
	c.send(`42456["message-with-ack",1,"2",{"3":[false]}]`)
	if got := c.readPacket(); got != `43456[1,"2",{"3":[false]}]` {
		t.Fatalf("%q", got)
	}
	c.send(`452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`)
	c.sendBin([]byte{1, 2, 3})
	c.sendBin([]byte{4, 5, 6})
	if got := c.readPacket(); got != `462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]` {
		t.Fatalf("%q", got)
	}
	c.readPacket()
	c.readPacket()
	for _, bad := range []string{"4abc", "42{}", `42abc["message-with-ack",1,"2",{"3":[false]}]`} {
		c := sioConn(t, base)
		c.send(bad)
		c.waitClose()
	}
}

func TestSocketIOConnectTimeout(t *testing.T) {
	base := start(t)
	c := dial(t, base+"/socket.io/?EIO=4&transport=websocket")
	c.read()
	start := time.Now()
	for {
		_ = c.c.SetReadDeadline(time.Now().Add(3 * time.Second))
		msg, _, err := wsutil.ReadServerData(c.c)
		if err != nil {
			break
		}
		if string(msg) == "2" {
			c.send("3") // stay alive: only the connect timeout may close it
		}
	}
	if d := time.Since(start); d < 900*time.Millisecond || d > 5*time.Second {
		t.Fatalf("closed after %v", d)
	}
}
