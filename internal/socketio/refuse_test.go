package socketio

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// refusingServer is a server that accepts only https://good.example, with
// OriginRefusal set, and counts what its namespace ever saw.
func refusingServer(t *testing.T) (*Server, string, *atomic.Int32) {
	t.Helper()
	cfg := testConfig()
	cfg.AllowedOrigins = []string{"https://good.example"}
	cfg.OriginRefusal = func(r *http.Request) error {
		return &ConnectError{Message: "origin " + r.Header.Get("Origin") + " is not allowed", Data: map[string]string{"code": "forbidden"}}
	}
	srv := NewServer(cfg)
	var seen atomic.Int32
	ns := srv.Namespace("/")
	ns.Use(func(*Handshake) error { seen.Add(1); return nil })
	ns.OnConnection(func(*Socket) { seen.Add(1) })
	return srv, startServer(t, srv).URL, &seen
}

var refusalOpen = regexp.MustCompile(`^0\{"sid":"([A-Za-z0-9_-]{20})","upgrades":\[\],"pingInterval":1000,"pingTimeout":1000,"maxPayload":1000000\}$`)

const evilRefusal = `44{"message":"origin https://evil.example is not allowed","data":{"code":"forbidden"}}`

// TestOriginRefusalOverPolling: a polling handshake from a refused Origin
// gets, in its one response, the open packet, the CONNECT_ERROR and the
// close packet, readable by the page (CORS); the session does not exist:
// what the client sends to it is refused, no middleware or connection
// handler runs, nothing is counted.
func TestOriginRefusalOverPolling(t *testing.T) {
	srv, base, seen := refusingServer(t)
	evil := map[string]string{"Origin": "https://evil.example"}
	code, body, hdr := httpDo(t, "GET", base+"/socket.io/?EIO=4&transport=polling", "", evil)
	recs := strings.Split(body, "\x1e")
	if code != 200 || len(recs) != 3 || !refusalOpen.MatchString(recs[0]) || recs[1] != evilRefusal || recs[2] != "1" {
		t.Fatalf("refusal: %d %q", code, body)
	}
	if hdr.Get("Access-Control-Allow-Origin") != "https://evil.example" || hdr.Get("Access-Control-Allow-Credentials") != "" {
		t.Fatalf("CORS of the refusal: %v", hdr)
	}
	sid := refusalOpen.FindStringSubmatch(recs[0])[1]
	if code, body, _ := httpDo(t, "POST", pollURL(base, sid), `40{"userToken":"x"}`, evil); code != 403 {
		t.Fatalf("CONNECT from the refused origin: %d %s", code, body)
	}
	if code, body, _ := httpDo(t, "POST", pollURL(base, sid), `40{"userToken":"x"}`, nil); code != 400 || body != `{"code":1,"message":"Session ID unknown"}` {
		t.Fatalf("CONNECT to the refusal's sid: %d %s", code, body)
	}
	if code, _, _ := httpDo(t, "GET", pollURL(base, sid), "", nil); code != 400 {
		t.Fatalf("poll of the refusal's sid: %d", code)
	}
	// The preflight of a handshake is answered, that of a session is not.
	pre := map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "x-a"}
	if code, _, hdr := httpDo(t, "OPTIONS", base+"/socket.io/?EIO=4&transport=polling", "", pre); code != 204 || hdr.Get("Access-Control-Allow-Origin") != "https://evil.example" {
		t.Fatalf("preflight of the handshake: %d %v", code, hdr)
	}
	if code, _, _ := httpDo(t, "OPTIONS", pollURL(base, sid), "", pre); code != 403 {
		t.Fatalf("preflight of a session: %d", code)
	}
	// A good origin is served as ever.
	if code, body, _ := httpDo(t, "GET", base+"/socket.io/?EIO=4&transport=polling", "", map[string]string{"Origin": "https://good.example"}); code != 200 || strings.Contains(body, "\x1e") {
		t.Fatalf("good origin: %d %q", code, body)
	}
	if n := seen.Load(); n != 0 {
		t.Fatalf("the namespace saw %d calls", n)
	}
	if n := srv.Len(); n != 1 { // the good origin's session
		t.Fatalf("Len = %d, want 1", n)
	}
}

// TestOriginRefusalOverWebSocket: the WebSocket handshake from a refused
// Origin is upgraded only to carry the open packet and the CONNECT_ERROR,
// then closed with a normal close frame.
func TestOriginRefusalOverWebSocket(t *testing.T) {
	srv, base, seen := refusingServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	d := ws.Dialer{Header: ws.HandshakeHeaderHTTP(http.Header{"Origin": {"https://evil.example"}})}
	conn, br, _, err := d.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/socket.io/?EIO=4&transport=websocket")
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if br != nil {
		conn = &bufConn{Conn: conn, r: br}
	}
	c := &wsClient{tb: t, conn: conn}
	t.Cleanup(func() { _ = conn.Close() })
	if s, _ := c.read(); !refusalOpen.MatchString(s) {
		t.Fatalf("open packet: %q", s)
	}
	c.send(`40{"userToken":"x"}`) // the client's CONNECT, which nothing reads
	if s, _ := c.read(); s != evilRefusal {
		t.Fatalf("refusal: %q", s)
	}
	expectCloseFrame(t, c)
	if n := seen.Load(); n != 0 || srv.Len() != 0 {
		t.Fatalf("the namespace saw %d calls, Len %d", n, srv.Len())
	}
}

// TestRefuse: Server.Refuse answers the handshakes of both transports and
// leaves every other request to its caller.
func TestRefuse(t *testing.T) {
	srv := NewServer(testConfig())
	var declined atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/socket.io/", func(w http.ResponseWriter, r *http.Request) {
		if srv.Refuse(w, r, &ConnectError{Message: "slow down", Data: map[string]any{"code": "rate_limited", "retryAfter": 2}}) {
			return
		}
		declined.Add(1)
		w.WriteHeader(http.StatusTooManyRequests)
	})
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	const want = `44{"message":"slow down","data":{"code":"rate_limited","retryAfter":2}}`
	_, body, _ := httpDo(t, "GET", hs.URL+"/socket.io/?EIO=4&transport=polling", "", nil)
	if recs := strings.Split(body, "\x1e"); len(recs) != 3 || recs[1] != want {
		t.Fatalf("polling refusal %q", body)
	}
	c := dialWSURL(t, hs.URL, "")
	c.openSession()
	if s, _ := c.read(); s != want {
		t.Fatalf("websocket refusal %q", s)
	}
	expectCloseFrame(t, c)
	for _, q := range []string{"EIO=3&transport=polling", "EIO=4&transport=polling&sid=abc", "EIO=4&transport=websocket", "EIO=4&transport=foo", "EIO=4"} {
		if code, _, _ := httpDo(t, "GET", hs.URL+"/socket.io/?"+q, "", nil); code != 429 {
			t.Errorf("%s: %d", q, code)
		}
	}
	if code, _, _ := httpDo(t, "POST", hs.URL+"/socket.io/?EIO=4&transport=polling", "", nil); code != 429 {
		t.Errorf("POST handshake: %d", code)
	}
	if n := declined.Load(); n != 6 {
		t.Fatalf("Refuse declined %d requests, want 6", n)
	}
	var open map[string]any
	_ = json.Unmarshal([]byte(strings.Split(body, "\x1e")[0][1:]), &open)
	if srv.Len() != 0 || srv.engine.lookup(open["sid"].(string)) != nil {
		t.Fatal("a refusal was registered as a session")
	}
}

// expectCloseFrame reads the server's close frame (the client answers it
// with its own), then waits until the server closes the connection.
func expectCloseFrame(t *testing.T, c *wsClient) {
	t.Helper()
	var closed wsutil.ClosedError
	if _, _, err := c.tryRead(5 * time.Second); !errors.As(err, &closed) || closed.Code != ws.StatusNormalClosure {
		t.Fatalf("close frame: %v", err)
	}
	start := time.Now()
	c.expectClosed(5 * time.Second)
	if d := time.Since(start); d >= refusalLinger {
		t.Fatalf("the server closed after %v, at its linger limit, not on the client's close frame", d)
	}
}
