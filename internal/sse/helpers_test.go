package sse

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/stacktest"
)

// env is the REST + SSE API on the reference backend (package stacktest),
// driven in process inside a synctest bubble: a response is a sseClient, a
// request an httptest recorder, and the API's timers run on the fake clock.
type env struct {
	t   *testing.T
	st  *stacktest.Stack
	api *API
}

// testConfig keeps the defaults but for a small resume ring, so that tests
// can overflow it with a few messages.
func testConfig() Config {
	return Config{MaxBodyBytes: 64 << 10, Heartbeat: 15 * time.Second, QueueBytes: 1 << 20,
		ResumeWindow: 2 * time.Minute, ResumeEvents: 4, MaxStreamsPerUser: 3}
}

func newEnv(t *testing.T, cfg Config, opt stacktest.Options) *env {
	t.Helper()
	st := stacktest.New(t, opt)
	api := New(cfg, st.Ops, st.Hub, st.Log, nil)
	t.Cleanup(func() { api.Shutdown(context.Background()) })
	return &env{t: t, st: st, api: api}
}

// answer is a decoded REST answer.
type answer struct {
	status int
	header http.Header
	data   json.RawMessage
	err    *apierr.Body
}

func (r answer) code() apierr.Code {
	if r.err == nil {
		return ""
	}
	return r.err.Code
}

// do sends a REST request with a JSON body (a string is sent as is) and
// headers "Name: value"; token "" sends no Authorization.
func (e *env) do(method, path, token string, body any, headers ...string) answer {
	e.t.Helper()
	var raw []byte
	switch b := body.(type) {
	case nil:
	case string:
		raw = []byte(b)
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			e.t.Fatal(err)
		}
	}
	req := httptest.NewRequestWithContext(e.t.Context(), method, path, bytes.NewReader(raw))
	if body == nil {
		req.ContentLength = 0
	} else {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	e.api.ServeHTTP(rec, req)
	e.checkContract(req, raw, rec)
	var env struct {
		Data  json.RawMessage `json:"data"`
		Error *apierr.Body    `json:"error"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil || (env.Data == nil) == (env.Error == nil) {
		e.t.Fatalf("%s %s: %d, not an envelope: %q", method, path, rec.Code, rec.Body)
	}
	return answer{status: rec.Code, header: rec.Header(), data: env.Data, err: env.Error}
}

// ok is do that must succeed; it decodes data into out (when not nil).
func (e *env) ok(out any, method, path, token string, body any, headers ...string) {
	e.t.Helper()
	r := e.do(method, path, token, body, headers...)
	if r.err != nil {
		e.t.Fatalf("%s %s: %d %+v", method, path, r.status, *r.err)
	}
	if out != nil {
		if err := json.Unmarshal(r.data, out); err != nil {
			e.t.Fatalf("%s %s: %v in %s", method, path, err, r.data)
		}
	}
}

// event is one SSE event as a client parses it.
type event struct {
	id, name, data string
	comment        bool // a ": ..." line without event
}

func (ev event) decode(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal([]byte(ev.data), v); err != nil {
		tb.Fatalf("event %s: %v in %q", ev.name, err, ev.data)
	}
}

// sseClient is one GET /v1/events response: an http.ResponseWriter and
// Flusher that keeps what the handler wrote. While gate is set, Write waits
// for it to be closed: a client that does not read.
type sseClient struct {
	t      *testing.T
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	header http.Header
	status int
	buf    []byte
	read   int
	gate   chan struct{}
}

func (c *sseClient) Header() http.Header { return c.header }

func (c *sseClient) WriteHeader(code int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.status == 0 {
		c.status = code
	}
}

func (c *sseClient) Write(p []byte) (int, error) {
	c.mu.Lock()
	gate := c.gate
	c.mu.Unlock()
	if gate != nil {
		<-gate
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.status == 0 {
		c.status = http.StatusOK
	}
	c.buf = append(c.buf, p...)
	return len(p), nil
}

func (c *sseClient) Flush() {}

// stall makes the client stop reading until the returned func is called.
func (c *sseClient) stall() (resume func()) {
	gate := make(chan struct{})
	c.mu.Lock()
	c.gate = gate
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		c.gate = nil
		c.mu.Unlock()
		close(gate)
	}
}

// open starts GET /v1/events with the token in the Authorization header;
// lastEventID "" sends none. It returns once the handler is blocked (the
// ready event written, or the request refused).
func (e *env) open(token, lastEventID string) *sseClient {
	e.t.Helper()
	return e.openRequest(func(r *http.Request) {
		r.Header.Set("Authorization", "Bearer "+token)
		if lastEventID != "" {
			r.Header.Set("Last-Event-ID", lastEventID)
		}
	}, "/v1/events")
}

func (e *env) openRequest(prepare func(*http.Request), target string) *sseClient {
	e.t.Helper()
	ctx, cancel := context.WithCancel(e.t.Context())
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	prepare(req)
	c := &sseClient{t: e.t, cancel: cancel, done: make(chan struct{}), header: http.Header{}}
	go func() {
		defer close(c.done)
		e.api.ServeHTTP(c, req)
	}()
	e.t.Cleanup(func() { c.cancel(); <-c.done })
	synctest.Wait()
	return c
}

// drop ends the response as a client going away does, and waits for the
// handler to return.
func (c *sseClient) drop() {
	c.cancel()
	<-c.done
}

// ended reports whether the handler has returned.
func (c *sseClient) ended() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// refusal returns the error envelope of a refused GET /v1/events.
func (c *sseClient) refusal() (int, apierr.Code) {
	c.t.Helper()
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	var env struct{ Error apierr.Body }
	if err := json.Unmarshal(c.buf, &env); err != nil {
		c.t.Fatalf("refusal %d %q: %v", c.status, c.buf, err)
	}
	return c.status, env.Error.Code
}

// events returns the complete events written since the last call, after
// letting the bubble settle.
func (c *sseClient) events() []event {
	c.t.Helper()
	synctest.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.status != http.StatusOK {
		c.t.Fatalf("stream answered %d: %s", c.status, c.buf)
	}
	var out []event
	for {
		rest := string(c.buf[c.read:])
		block, _, found := strings.Cut(rest, "\n\n")
		if !found {
			return out
		}
		c.read += len(block) + 2
		var ev event
		for _, line := range strings.Split(block, "\n") {
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "":
				ev.comment = true
				ev.data = value
			case "id":
				ev.id = value
			case "event":
				ev.name = value
			case "data":
				ev.data = value
			case "retry":
			default:
				c.t.Fatalf("unknown SSE field %q in %q", field, block)
			}
		}
		out = append(out, ev)
	}
}

// named returns the events of events() but comments.
func (c *sseClient) named() []event {
	c.t.Helper()
	var out []event
	for _, ev := range c.events() {
		if !ev.comment {
			out = append(out, ev)
		}
	}
	return out
}

// ready reads the first event, which must be ready.
func (c *sseClient) ready() (readyEvent, string) {
	c.t.Helper()
	evs := c.named()
	if len(evs) == 0 || evs[0].name != "ready" {
		c.t.Fatalf("first events %+v, want ready", evs)
	}
	if len(evs) > 1 {
		c.t.Fatalf("events after ready that the test did not expect: %+v", evs[1:])
	}
	var r readyEvent
	evs[0].decode(c.t, &r)
	return r, evs[0].id
}

// threadPair is a thread of alice with bob, and each side's threadToken.
type threadPair struct {
	id, aliceToken, bobToken string
}

// thread lets alice create a thread with bob (attached to aliceStream when
// not "") and finds bob's threadToken through GET /v1/threads.
func (e *env) thread(alice, bob, aliceStream string) threadPair {
	e.t.Helper()
	var headers []string
	if aliceStream != "" {
		headers = append(headers, HeaderStream+": "+aliceStream)
	}
	var created struct {
		Thread      struct{ ID string }
		ThreadToken string
	}
	e.ok(&created, http.MethodPost, "/v1/threads", alice, map[string]any{"participants": []string{"bob"}, "message": map[string]any{"body": "hello bob"}}, headers...)
	var threads struct {
		Items []struct {
			Thread      struct{ ID string }
			ThreadToken string
		}
	}
	e.ok(&threads, http.MethodGet, "/v1/threads", bob, nil)
	for _, it := range threads.Items {
		if it.Thread.ID == created.Thread.ID {
			return threadPair{id: created.Thread.ID, aliceToken: created.ThreadToken, bobToken: it.ThreadToken}
		}
	}
	e.t.Fatalf("bob does not see thread %s in %+v", created.Thread.ID, threads.Items)
	return threadPair{}
}

// listen makes stream listen to the thread (getThread with ECB-Stream).
func (e *env) listen(user, stream, threadID, threadToken string) {
	e.t.Helper()
	e.ok(nil, http.MethodGet, "/v1/threads/"+threadID, user, nil, HeaderThreadToken+": "+threadToken, HeaderStream+": "+stream)
}

// send posts a message as user with threadToken.
func (e *env) send(user, threadID, threadToken, body string, headers ...string) {
	e.t.Helper()
	e.ok(nil, http.MethodPost, "/v1/threads/"+threadID+"/messages", user, map[string]any{"body": body},
		append([]string{HeaderThreadToken + ": " + threadToken}, headers...)...)
}

// bodies returns the bodies of the message events among evs.
func bodies(tb testing.TB, evs []event) []string {
	tb.Helper()
	var out []string
	for _, ev := range evs {
		if ev.name == "message" {
			var m struct{ Message struct{ Body string } }
			ev.decode(tb, &m)
			out = append(out, m.Message.Body)
		}
	}
	return out
}
