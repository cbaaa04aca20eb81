package sioapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/socketio"
	"github.com/ecbridge/ecb/internal/stacktest"
)

// env is the Socket.IO transport on the reference backend (package
// stacktest), driven in process inside a synctest bubble by a small
// Engine.IO long-polling client: every request is an httptest recorder, so
// the transport's timers (pings, token expiry) run on the fake clock.
// (test/interop and test/interop-python drive it over the network with the
// official JavaScript and Python clients.)
type env struct {
	t   *testing.T
	st  *stacktest.Stack
	api *API
}

const (
	pingInterval = 25 * time.Second
	pingTimeout  = 20 * time.Second
)

func newEnv(t *testing.T, cfg Config, opt stacktest.Options) *env {
	t.Helper()
	st := stacktest.New(t, opt)
	cfg.Socket.PingInterval, cfg.Socket.PingTimeout = pingInterval, pingTimeout
	api := New(cfg, st.Ops, st.Hub, st.Log, nopGauge{})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := api.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return &env{t: t, st: st, api: api}
}

type nopGauge struct{}

func (nopGauge) StreamOpened() {}
func (nopGauge) StreamClosed() {}

// client is one Engine.IO session over long-polling with the default
// namespace connected. A goroutine keeps one GET pending (answering pings)
// and collects the Socket.IO packets; mute stops it, as a client that
// vanished without a goodbye.
type client struct {
	e      *env
	url    string
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	packets []string // Socket.IO packets not consumed yet
	ended   bool     // the server closed the session
	nextAck int
}

// http sends one request to the transport and returns status and body.
func (e *env) http(ctx context.Context, method, target, body string) (int, string) {
	req := httptest.NewRequestWithContext(ctx, method, target, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	}
	rec := httptest.NewRecorder()
	e.api.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// dial opens the session and sends CONNECT with auth. It returns the client
// and the CONNECT answer: "0{...}" (connected) or "4{...}" (CONNECT_ERROR).
func (e *env) dial(auth any) (*client, string) {
	e.t.Helper()
	status, body := e.http(e.t.Context(), http.MethodGet, "/socket.io/?EIO=4&transport=polling", "")
	if status != http.StatusOK || !strings.HasPrefix(body, "0") {
		e.t.Fatalf("engine.io handshake: %d %q", status, body)
	}
	var open struct {
		SID          string `json:"sid"`
		PingInterval int    `json:"pingInterval"`
		PingTimeout  int    `json:"pingTimeout"`
	}
	if err := json.Unmarshal([]byte(body[1:]), &open); err != nil || open.SID == "" {
		e.t.Fatalf("open packet %q: %v", body, err)
	}
	if open.PingInterval != int(pingInterval/time.Millisecond) || open.PingTimeout != int(pingTimeout/time.Millisecond) {
		e.t.Fatalf("open packet %q: not the configured ping timing", body)
	}
	ctx, cancel := context.WithCancel(e.t.Context())
	c := &client{e: e, url: "/socket.io/?EIO=4&transport=polling&sid=" + open.SID, cancel: cancel, done: make(chan struct{})}
	go c.poll(ctx)
	e.t.Cleanup(c.mute)
	if auth == nil {
		c.post("0")
	} else {
		raw, err := json.Marshal(auth)
		if err != nil {
			e.t.Fatal(err)
		}
		c.post("0" + string(raw))
	}
	return c, c.await(func(p string) bool { return strings.HasPrefix(p, "0") || strings.HasPrefix(p, "4") })
}

// connect is dial that must succeed.
func (e *env) connect(auth any) *client {
	e.t.Helper()
	c, answer := e.dial(auth)
	if !strings.HasPrefix(answer, "0") {
		e.t.Fatalf("CONNECT refused: %s", answer)
	}
	return c
}

func (c *client) poll(ctx context.Context) {
	defer close(c.done)
	for ctx.Err() == nil {
		status, body := c.e.http(ctx, http.MethodGet, c.url, "")
		if ctx.Err() != nil {
			return
		}
		if status != http.StatusOK {
			c.end()
			return
		}
		for _, p := range strings.Split(body, "\x1e") {
			switch {
			case p == "2":
				c.e.http(ctx, http.MethodPost, c.url, "3")
			case p == "1":
				c.end()
				return
			case strings.HasPrefix(p, "4"):
				c.mu.Lock()
				c.packets = append(c.packets, p[1:])
				c.mu.Unlock()
			}
		}
	}
}

func (c *client) end() {
	c.mu.Lock()
	c.ended = true
	c.mu.Unlock()
}

// mute stops polling and answering pings, without a goodbye.
func (c *client) mute() {
	c.cancel()
	<-c.done
}

// isEnded reports, once the bubble has settled, whether the server ended
// the session.
func (c *client) isEnded() bool {
	synctest.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ended
}

// post sends one Socket.IO packet.
func (c *client) post(packet string) {
	c.e.t.Helper()
	if status, body := c.e.http(c.e.t.Context(), http.MethodPost, c.url, "4"+packet); status != http.StatusOK {
		c.e.t.Fatalf("POST %q: %d %s", packet, status, body)
	}
}

// find returns, once the bubble has settled, the first packet match accepts
// (removing it), or "".
func (c *client) find(match func(string) bool) string {
	synctest.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, p := range c.packets {
		if match(p) {
			c.packets = append(c.packets[:i:i], c.packets[i+1:]...)
			return p
		}
	}
	return ""
}

// await is find that must find.
func (c *client) await(match func(string) bool) string {
	c.e.t.Helper()
	p := c.find(match)
	if p == "" {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.e.t.Fatalf("expected packet not received; pending %q (ended %v)", c.packets, c.ended)
	}
	return p
}

// pushes returns, and consumes, the events received ("2[...]" packets) as
// name and payload.
func (c *client) pushes() []push {
	c.e.t.Helper()
	var out []push
	for {
		p := c.find(func(p string) bool { return strings.HasPrefix(p, "2[") })
		if p == "" {
			return out
		}
		var args []json.RawMessage
		if err := json.Unmarshal([]byte(p[1:]), &args); err != nil || len(args) == 0 {
			c.e.t.Fatalf("event packet %q: %v", p, err)
		}
		ev := push{}
		_ = json.Unmarshal(args[0], &ev.name)
		if len(args) > 1 {
			ev.data = args[1]
		}
		out = append(out, ev)
	}
}

type push struct {
	name string
	data json.RawMessage
}

func (p push) decode(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(p.data, v); err != nil {
		tb.Fatalf("push %s: %v in %s", p.name, err, p.data)
	}
}

// names is the names of pushes.
func names(ps []push) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.name)
	}
	return out
}

// ack is a decoded acknowledgement.
type ack struct {
	Data  json.RawMessage `json:"data"`
	Error *apierr.Body    `json:"error"`
}

func (a ack) code() apierr.Code {
	if a.Error == nil {
		return ""
	}
	return a.Error.Code
}

// emit sends event with payload and an ack id, and returns the ack.
func (c *client) emit(event string, payload any) ack {
	c.e.t.Helper()
	c.mu.Lock()
	id := c.nextAck
	c.nextAck++
	c.mu.Unlock()
	pkt, err := socketio.EncodeEvent("/", event, payload)
	if err != nil {
		c.e.t.Fatal(err)
	}
	// EncodeEvent gives "2[...]"; the ack id goes between type and data.
	c.post("2" + strconv.Itoa(id) + string(pkt[1:]))
	prefix := "3" + strconv.Itoa(id) + "["
	p := c.await(func(p string) bool { return strings.HasPrefix(p, prefix) })
	var args []ack
	if err := json.Unmarshal([]byte(p[len(prefix)-1:]), &args); err != nil || len(args) != 1 {
		c.e.t.Fatalf("ack %q: %v", p, err)
	}
	if (args[0].Data == nil) == (args[0].Error == nil) {
		c.e.t.Fatalf("ack %q is not an envelope", p)
	}
	return args[0]
}

// call is emit that must succeed; it decodes the data into out (when not nil).
func (c *client) call(out any, event string, payload any) {
	c.e.t.Helper()
	a := c.emit(event, payload)
	if a.Error != nil {
		c.e.t.Fatalf("%s: %+v", event, *a.Error)
	}
	if out != nil {
		if err := json.Unmarshal(a.Data, out); err != nil {
			c.e.t.Fatalf("%s: %v in %s", event, err, a.Data)
		}
	}
}

// connectRefusal decodes a CONNECT_ERROR answer.
func connectRefusal(tb testing.TB, answer string) (message string, code apierr.Code) {
	tb.Helper()
	if !strings.HasPrefix(answer, "4") {
		tb.Fatalf("CONNECT answered %q, want CONNECT_ERROR", answer)
	}
	var ce struct {
		Message string
		Data    apierr.Body
	}
	if err := json.Unmarshal([]byte(answer[1:]), &ce); err != nil {
		tb.Fatalf("CONNECT_ERROR %q: %v", answer, err)
	}
	return ce.Message, ce.Data.Code
}

// threadPair is a thread alice created with bob, and each side's threadToken.
type threadPair struct {
	id, aliceToken, bobToken string
}

func thread(tb testing.TB, alice, bob *client) threadPair {
	tb.Helper()
	var created struct {
		Thread      struct{ ID string }
		ThreadToken string
	}
	alice.call(&created, "createThread", map[string]any{"participants": []string{"bob"}, "message": map[string]any{"body": "hello bob"}})
	var threads struct {
		Items []struct {
			Thread      struct{ ID string }
			ThreadToken string
		}
	}
	bob.call(&threads, "getThreads", map[string]any{})
	for _, it := range threads.Items {
		if it.Thread.ID == created.Thread.ID {
			return threadPair{id: created.Thread.ID, aliceToken: created.ThreadToken, bobToken: it.ThreadToken}
		}
	}
	tb.Fatalf("bob does not see thread %s", created.Thread.ID)
	return threadPair{}
}

func body(i int) string { return fmt.Sprint("message ", i) }
