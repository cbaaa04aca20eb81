package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecbridge/ecb/internal/config"
	"github.com/ecbridge/ecb/internal/server"
	"github.com/ecbridge/ecb/internal/support"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// node is an ECB node run in process, which the test stops itself (the
// shutdown signal is its context's cancel).
type node struct {
	URL    string
	stop   context.CancelFunc
	done   chan error // Run's result
	stderr *syncBuffer
}

// startNode runs an ECB node with the demo's keys against backendURL (the
// contract's base URL without /ecb/v1), with the workgroup "support".
func startNode(tb testing.TB, d *demo, backendURL string, sets ...string) *node {
	tb.Helper()
	secret, err := os.ReadFile(filepath.Join(d.Data, "backend-secret"))
	if err != nil {
		tb.Fatal(err)
	}
	cfg, err := config.Load("", nil, append([]string{
		"listen=127.0.0.1:0",
		"auth.publicKeyFile=" + filepath.Join(d.Data, "public.pem"),
		"auth.audience=ecb-demo",
		"backend.url=" + backendURL + "/ecb/v1",
		"backend.secret=" + strings.TrimSpace(string(secret)),
		"operations.enforceMembership=true",
		"log.level=info",
	}, sets...))
	if err != nil {
		tb.Fatal(err)
	}
	cfg.Support.Workgroups = []support.WorkgroupConfig{{Name: "support"}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &node{URL: "http://" + ln.Addr().String(), stop: cancel, done: make(chan error, 1), stderr: &syncBuffer{}}
	srv, err := server.New(ctx, cfg, server.Options{Listener: ln, Logger: slog.New(slog.NewJSONHandler(n.stderr, nil))})
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	go func() { n.done <- srv.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		select {
		case <-n.done:
		case <-time.After(30 * time.Second):
			tb.Errorf("node did not stop within 30s")
		}
	})
	return n
}

// wait returns Run's result once the node has stopped.
func (n *node) wait(tb testing.TB) error {
	tb.Helper()
	select {
	case err := <-n.done:
		n.done <- err // for the cleanup
		return err
	case <-time.After(30 * time.Second):
		tb.Fatalf("node did not stop within 30s:\n%s", n.stderr.String())
		return nil
	}
}

// gatedBackend proxies to the demo's reference backend; a call to a path
// given to hold waits (after signalling reached) until release is closed.
type gatedBackend struct {
	srv     *httptest.Server
	mu      sync.Mutex
	held    map[string]chan struct{} // path suffix → reached
	release chan struct{}
	Release func() // lets the held call go on
}

func newGatedBackend(tb testing.TB, target string) *gatedBackend {
	tb.Helper()
	u, _ := url.Parse(target)
	proxy := httputil.NewSingleHostReverseProxy(u)
	g := &gatedBackend{held: map[string]chan struct{}{}, release: make(chan struct{})}
	g.Release = sync.OnceFunc(func() { close(g.release) })
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		var reached chan struct{}
		for suffix, ch := range g.held {
			if strings.HasSuffix(r.URL.Path, suffix) {
				reached = ch
				delete(g.held, suffix) // the first call only
			}
		}
		g.mu.Unlock()
		if reached != nil {
			close(reached)
			select {
			case <-g.release:
			case <-r.Context().Done():
				return // ECB gave up the call
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	tb.Cleanup(g.srv.Close)
	tb.Cleanup(g.Release) // first: a failed test must not leave a call held
	return g
}

// hold makes the next call to a path ending in suffix wait for release; the
// returned channel is closed when it arrives.
func (g *gatedBackend) hold(suffix string) <-chan struct{} {
	ch := make(chan struct{})
	g.mu.Lock()
	g.held[suffix] = ch
	g.mu.Unlock()
	return ch
}

// callbackReceiver is a backend's callback endpoint (the SDK's handler). Its
// first event is held until release, then refused (500: ECB retries it);
// every later attempt is accepted and recorded.
type callbackReceiver struct {
	srv      *httptest.Server
	reached  chan struct{}
	release  chan struct{}
	Release  func() // lets the held event be answered
	mu       sync.Mutex
	attempts int
	got      []ecbserver.CallbackEvent
}

func newCallbackReceiver(tb testing.TB, d *demo) *callbackReceiver {
	tb.Helper()
	secret, err := os.ReadFile(filepath.Join(d.Data, "backend-secret"))
	if err != nil {
		tb.Fatal(err)
	}
	cr := &callbackReceiver{reached: make(chan struct{}), release: make(chan struct{})}
	cr.Release = sync.OnceFunc(func() { close(cr.release) })
	h := ecbserver.NewCallbackHandler([]byte(strings.TrimSpace(string(secret))), func(ctx context.Context, ev ecbserver.CallbackEvent) error {
		cr.mu.Lock()
		cr.attempts++
		first := cr.attempts == 1
		cr.mu.Unlock()
		if first {
			close(cr.reached)
			<-cr.release
			return errors.New("not now")
		}
		cr.mu.Lock()
		cr.got = append(cr.got, ev)
		cr.mu.Unlock()
		return nil
	}, ecbserver.CallbackHandlerOptions{Logger: slog.New(slog.DiscardHandler)})
	cr.srv = httptest.NewServer(h)
	tb.Cleanup(cr.srv.Close)
	tb.Cleanup(cr.Release)
	return cr
}

func (cr *callbackReceiver) events() []ecbserver.CallbackEvent {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	return append([]ecbserver.CallbackEvent(nil), cr.got...)
}

// TestShutdownDrains: on the shutdown signal a node stops accepting, tells
// its Socket.IO clients closing {reason: "shutdown"}, lets the operation in
// flight complete and be acked, refuses new ones, delivers the support
// callbacks in flight and queued (with retries) and the open offline
// nudge batches, and only then closes.
func TestShutdownDrains(t *testing.T) {
	d := startDemo(t)
	gb := newGatedBackend(t, d.Backend)
	cr := newCallbackReceiver(t, d)
	n := startNode(t, d, gb.srv.URL, "callbacks.url="+cr.srv.URL, "backend.timeout=20s", "http.shutdownTimeout=20s")
	alice := d.login(t, "alice")

	c := decodeData[created](t, call(t, "POST", n.URL+"/v1/threads", map[string]any{
		"participants": []string{"bob"}, "message": map[string]any{"body": "hello"},
	}, bearer(alice)))

	// A support callback in flight (held by the receiver) and one queued
	// behind it (same conversation).
	asked := decodeData[struct{ RequestID string }](t, call(t, "POST", n.URL+"/v1/ops/support.ask",
		map[string]any{"workgroup": "support", "question": "Still there?"}, bearer(alice)))
	<-cr.reached
	decodeData[json.RawMessage](t, call(t, "POST", n.URL+"/v1/ops/support.cancel", map[string]any{"requestId": asked.RequestID}, bearer(alice)))

	// A Socket.IO operation in flight (held by the backend).
	sock, refused := sioDial(t, n.URL, map[string]string{"userToken": alice})
	if refused != nil {
		t.Fatalf("socket.io refused: %+v", refused)
	}
	reached := gb.hold("/addThreadMessage")
	sendID := sock.emit("sendMessage", map[string]any{"threadToken": c.ThreadToken, "body": "sent before the shutdown", "clientMessageId": "cm-shutdown"})
	<-reached

	n.stop() // the shutdown signal

	// (b) Socket.IO clients are told, before their session ends.
	pkt, ended := readSession(t, sock, func(p string) bool { return strings.HasPrefix(p, `2["closing",`) })
	var closing []json.RawMessage
	var reason struct{ Reason string }
	switch {
	case pkt == "":
		t.Errorf("(b) no closing event before the session ended; packets %q", sock.pending)
	case json.Unmarshal([]byte(pkt[1:]), &closing) != nil || len(closing) != 2 || json.Unmarshal(closing[1], &reason) != nil || reason.Reason != "shutdown":
		t.Errorf("(b) closing %s", pkt)
	default:
		// The node no longer accepts: readyz fails, new connections are
		// refused, new operations get unavailable.
		if resp, err := http.Get(n.URL + "/readyz"); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("readyz while draining: %v %v", resp, err)
		} else {
			resp.Body.Close()
		}
		if _, refused := sioDial(t, n.URL, map[string]string{"userToken": alice}); refused == nil || refused.Status != 503 || refused.Code != "unavailable" {
			t.Fatalf("a new socket.io session while draining: %+v", refused)
		}
		if r := call(t, "GET", n.URL+"/v1/events", nil, bearer(alice)); r.Status != 503 || r.code() != "unavailable" {
			t.Fatalf("a new event stream while draining: %d %s", r.Status, r.code())
		}
		if a := sock.call("getContacts", map[string]any{}); a.code() != "unavailable" {
			t.Fatalf("an operation sent while draining: %+v", a)
		}
	}

	// (c) The operation in flight completes and is acked.
	gb.Release()
	prefix := "3" + strconv.Itoa(sendID) + "["
	if !ended {
		pkt, ended = readSession(t, sock, func(p string) bool { return strings.HasPrefix(p, prefix) })
	} else {
		pkt = ""
	}
	var acks []sioAck
	var sent struct {
		Message message `json:"message"`
	}
	switch {
	case pkt == "":
		t.Errorf("(c) the sendMessage in flight at the shutdown was not acked before the session ended")
	case json.Unmarshal([]byte(pkt[len(prefix)-1:]), &acks) != nil || len(acks) != 1 || acks[0].Error != nil ||
		json.Unmarshal(acks[0].Data, &sent) != nil || sent.Message.ID == "" || sent.Message.ClientMessageID != "cm-shutdown":
		t.Errorf("(c) the sendMessage in flight at the shutdown: %s", pkt)
	}
	// Then the transport closes, without a Socket.IO DISCONNECT: the
	// client reconnects by itself (to another node).
	if !ended {
		readSession(t, sock, func(string) bool { return false })
	}
	if slices.Contains(sock.pending, "1") {
		t.Errorf("socket.io DISCONNECT at shutdown; packets %q", sock.pending)
	}

	// (a) The callbacks: the one in flight fails now, after the signal, and
	// is retried; the one queued behind it follows; then the node stops.
	cr.Release()
	if err := n.wait(t); err != nil {
		t.Errorf("Run: %v", err)
	}
	var got []ecbserver.CallbackEvent
	var nudged []string // the messages the offline nudges named for bob
	for _, ev := range cr.events() {
		if ev.Type != ecbserver.CallbackMessageOffline {
			got = append(got, ev)
			continue
		}
		var n ecbserver.OfflineNudge
		if err := json.Unmarshal(ev.Data, &n); err != nil || n.ThreadID != c.Thread.ID || !slices.Equal(n.UserIDs, []string{"bob"}) {
			t.Errorf("message.offline %s: %+v %v", ev.Data, n, err)
		}
		nudged = append(nudged, n.MessageIDs...)
	}
	if len(got) != 2 || got[0].Type != ecbserver.CallbackSupportRequested || got[1].Type != ecbserver.CallbackConversationClosed ||
		got[0].RequestID != asked.RequestID || got[1].RequestID != asked.RequestID {
		t.Errorf("(a) callbacks delivered after the shutdown signal: %+v", got)
	}
	// The message stored while draining was in an open nudge batch, which
	// the shutdown posted at once (bob has no connection).
	if sent.Message.ID == "" || !slices.Contains(nudged, sent.Message.ID) {
		t.Errorf("(a) no message.offline named the message sent before the shutdown (%q): %v", sent.Message.ID, nudged)
	}
}

// readSession reads c's packets until one that match accepts (returned,
// the others stay in c.pending) or until the node ends the Engine.IO
// session: a close packet, an unknown session, or a node that no longer
// listens (its last step; a real client takes each as a transport close
// and reconnects). Unlike sioClient's helpers it never fails the test.
func readSession(tb testing.TB, c *sioClient, match func(string) bool) (found string, ended bool) {
	tb.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		for i, p := range c.pending {
			if match(p) {
				c.pending = append(c.pending[:i:i], c.pending[i+1:]...)
				return p, false
			}
		}
		resp, err := http.Get(c.url)
		if err != nil {
			c.closed = true
			return "", true
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			c.closed = true
			return "", true
		}
		for _, p := range strings.Split(string(body), "\x1e") {
			switch {
			case p == "2":
				if resp, err := http.Post(c.url, "text/plain;charset=UTF-8", strings.NewReader("3")); err == nil {
					resp.Body.Close()
				}
			case p == "1":
				ended = true
			case strings.HasPrefix(p, "4"):
				c.pending = append(c.pending, p[1:])
			}
		}
		if ended {
			c.closed = true
			for i, p := range c.pending {
				if match(p) {
					c.pending = append(c.pending[:i:i], c.pending[i+1:]...)
					return p, true
				}
			}
			return "", true
		}
	}
	tb.Fatalf("the session neither matched nor ended within 15s; packets %q", c.pending)
	return "", false
}
