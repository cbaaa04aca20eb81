package serverapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecbridge/ecb/internal/access"
	"github.com/ecbridge/ecb/internal/auth"
	"github.com/ecbridge/ecb/internal/hub"
	"github.com/ecbridge/ecb/internal/openapitest"
	"github.com/ecbridge/ecb/internal/ops"
	"github.com/ecbridge/ecb/internal/serverapi"
	"github.com/ecbridge/ecb/internal/support"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

var (
	allKey      = strings.Repeat("a", 40)
	presenceKey = strings.Repeat("p", 40)
	accessKey   = strings.Repeat("w", 40)
	wgReadKey   = strings.Repeat("r", 40)
	wgWriteKey  = strings.Repeat("g", 40)
)

// conn is a hub connection that records what it gets.
type conn struct {
	mu     sync.Mutex
	got    []*hub.Push
	closed hub.Reason
}

func (c *conn) Deliver(p *hub.Push) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, p)
	return true
}

func (c *conn) Close(r hub.Reason) {
	c.mu.Lock()
	c.closed = r
	c.mu.Unlock()
}

func (c *conn) last() (event string, data map[string]any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.got) == 0 {
		return "", nil
	}
	p := c.got[len(c.got)-1]
	_ = json.Unmarshal(p.Payload(), &data)
	return p.Event, data
}

func (c *conn) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.got)
}

type env struct {
	url   string
	hub   *hub.Hub
	store *access.Store
	svc   *ops.Service
	logs  *bytes.Buffer
}

// newEnv serves the API behind a handler that validates every request it
// accepts and every answer against api/server.yaml. setup, when given, runs
// on the operations before the API is built (EnableSupport).
func newEnv(tb testing.TB, setup ...func(*ops.Service)) *env {
	tb.Helper()
	return newEnvWith(tb, nil, setup...)
}

// newEnvWith is newEnv whose API writes through wrap(store) (nil: the store).
func newEnvWith(tb testing.TB, wrap func(*access.Store) serverapi.Store, setup ...func(*ops.Service)) *env {
	tb.Helper()
	return newEnvFull(tb, envOptions{wrap: wrap}, setup...)
}

// envOptions are the collaborators of newEnvFull: the API's store wrapper,
// and the backend and verifier of the operations (nil: none).
type envOptions struct {
	wrap     func(*access.Store) serverapi.Store
	backend  ops.Backend
	verifier ops.Verifier
}

func newEnvFull(tb testing.TB, o envOptions, setup ...func(*ops.Service)) *env {
	tb.Helper()
	wrap := o.wrap
	v, err := openapitest.Load("server.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	h := hub.New(hub.Config{})
	svc := ops.New(ops.Config{MaxMessageBytes: 100}, o.backend, o.verifier, h, slog.New(slog.DiscardHandler), nil)
	store := access.New(access.Config{MaxEntries: 50})
	svc.SetGuards(ops.Guards{Access: store, Threads: store, Revocations: store})
	for _, f := range setup {
		f(svc)
	}
	var apiStore serverapi.Store = store
	if wrap != nil {
		apiStore = wrap(store)
	}
	logs := &syncBuffer{}
	api := serverapi.New(serverapi.Config{Keys: serverapi.Keys{
		{Name: "backend", Key: allKey, Scopes: []string{"*"}},
		{Name: "monitor", Key: presenceKey, Scopes: []string{"presence:read"}},
		{Name: "moderation", Key: accessKey, Scopes: []string{"access:write"}},
		{Name: "wg-reader", Key: wgReadKey, Scopes: []string{"workgroups:read"}},
		{Name: "wg-admin", Key: wgWriteKey, Scopes: []string{"workgroups:write"}},
	}}, serverapi.Options{Ops: svc, Store: apiStore, Hub: h, MaxBody: 4096, Logger: slog.New(slog.NewTextHandler(logs, nil)),
		Support: support.Config{OfferTimeout: 20 * time.Second, MaxChats: 3}})
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, r)
		resp := rec.Result()
		check := r.Clone(context.Background())
		check.Body = io.NopCloser(bytes.NewReader(body))
		check.URL.Scheme, check.URL.Host, check.Host = "http", "127.0.0.1:8080", "127.0.0.1:8080"
		mu.Lock()
		if resp.StatusCode < 300 {
			if ok, verrs := v.ValidateHttpRequestSync(check); !ok {
				for _, e := range verrs {
					tb.Errorf("request %s %s: %s: %s", r.Method, r.URL.Path, e.Message, e.Reason)
				}
			}
		}
		if ok, verrs := v.ValidateHttpResponse(check, rec.Result()); !ok {
			for _, e := range verrs {
				if (resp.StatusCode == 404 || resp.StatusCode == 401) && strings.Contains(e.Message, "not found") {
					continue // a route the spec does not have: refused before any operation
				}
				tb.Errorf("answer %d to %s %s: %s: %s (%s)", resp.StatusCode, r.Method, r.URL.Path, e.Message, e.Reason, rec.Body.String())
			}
		}
		mu.Unlock()
		for k, vs := range rec.Header() {
			w.Header()[k] = vs
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}))
	tb.Cleanup(srv.Close)
	return &env{url: srv.URL, hub: h, store: store, svc: svc, logs: &logs.b}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (e *env) client(tb testing.TB, key string) *ecbserver.ServerAPIClient {
	tb.Helper()
	c, err := ecbserver.NewServerAPIClient(e.url, key, ecbserver.ServerAPIOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func apiCode(err error) string {
	var e *ecbserver.ServerAPIError
	if errors.As(err, &e) {
		return e.Code
	}
	if err != nil {
		return "not an API error: " + err.Error()
	}
	return ""
}

func TestAccessOverridesThroughTheSDK(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client(t, allKey)
	bob1, bob2, alice := &conn{}, &conn{}, &conn{}
	e.hub.Register(bob1, "bob")
	e.hub.Register(bob2, "bob")
	e.hub.Register(alice, "alice")
	_, _ = e.hub.Attach(context.Background(), "t1", bob1)
	_, _ = e.hub.Attach(context.Background(), "t1", alice)

	if _, err := c.GetAccess(ctx, "t1", "bob"); apiCode(err) != "not_found" {
		t.Fatalf("get before any override: %v", err)
	}
	o, err := c.SetAccess(ctx, "t1", "bob", ecbserver.AccessNone, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if o.Acc != 0 || o.ExpiresAt == nil || time.Until(*o.ExpiresAt) < 59*time.Minute || o.Detached == nil || *o.Detached != 1 {
		t.Fatalf("override %+v", o)
	}
	if acc, ok := e.store.Lookup("t1", "bob"); !ok || acc != 0 {
		t.Fatal("not stored")
	}
	for _, bc := range []*conn{bob1, bob2} {
		ev, data := bc.last()
		if ev != "thread" || data["change"] != "access" || data["acc"] != 0.0 || data["threadId"] != "t1" || data["expiresAt"] == nil {
			t.Fatalf("bob was told %s %v", ev, data)
		}
	}
	if n := e.hub.Listeners("t1"); n != 1 {
		t.Fatalf("t1 listeners %d, want alice only", n)
	}
	if alice.count() != 0 {
		t.Fatal("alice was told of bob's ban")
	}
	got, err := c.GetAccess(ctx, "t1", "bob")
	if err != nil || got.Acc != 0 || got.ExpiresAt == nil || got.Detached != nil {
		t.Fatalf("get: %+v %v", got, err)
	}
	// Read only: bob stays listening (he had stopped: nothing to detach).
	if o, err = c.SetAccess(ctx, "t1", "bob", ecbserver.AccessRead, 0); err != nil || o.ExpiresAt != nil || *o.Detached != 0 {
		t.Fatalf("read-only override: %+v %v", o, err)
	}
	deleted, err := c.DeleteAccess(ctx, "t1", "bob")
	if err != nil || !deleted {
		t.Fatalf("delete: %v %v", deleted, err)
	}
	if _, data := bob1.last(); data["change"] != "access" || data["acc"] != nil {
		t.Fatalf("removal told %v", data)
	}
	if deleted, _ = c.DeleteAccess(ctx, "t1", "bob"); deleted {
		t.Fatal("second delete deleted something")
	}
	// A key with access:write may read overrides, not publish.
	mod := e.client(t, accessKey)
	if _, err := mod.SetAccess(ctx, "t1", "carol", 1, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := mod.GetAccess(ctx, "t1", "carol"); err != nil {
		t.Fatalf("access:write implies access:read: %v", err)
	}
	if _, err := mod.PublishSystemMessage(ctx, "t1", ecbserver.SystemMessage{Body: "x"}); apiCode(err) != "forbidden" {
		t.Fatalf("publish without threads:write: %v", err)
	}
}

func TestSystemMessagesAndThreadEvents(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client(t, allKey)
	a, b := &conn{}, &conn{}
	e.hub.Register(a, "alice")
	e.hub.Register(b, "bob")
	_, _ = e.hub.Attach(context.Background(), "t1", a)
	_, _ = e.hub.Attach(context.Background(), "t1", b)

	pm, err := c.PublishSystemMessage(ctx, "t1", ecbserver.SystemMessage{ID: "m-42", Body: "maintenance at 5", Data: json.RawMessage(`{"kind":"notice"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if pm.Message.ID != "m-42" || pm.Message.AuthorID != "system" || pm.Message.Offset != 1 || pm.Epoch == "" {
		t.Fatalf("published %+v", pm)
	}
	if ev, data := a.last(); ev != "message" || data["offset"] != 1.0 {
		t.Fatalf("listener got %s %v", ev, data)
	}
	pm, _ = c.PublishSystemMessage(ctx, "t1", ecbserver.SystemMessage{Body: "second"})
	if pm.Message.Offset != 2 || !strings.HasPrefix(pm.Message.ID, "sys-") {
		t.Fatalf("second %+v", pm.Message)
	}
	if _, err := c.PublishSystemMessage(ctx, "t1", ecbserver.SystemMessage{Body: strings.Repeat("x", 101)}); apiCode(err) != "payload_too_large" {
		t.Fatalf("over maxMessageBytes: %v", err)
	}

	info, err := c.ThreadInfo(ctx, "t1")
	if err != nil || info.Listeners != 2 || len(info.Users) != 2 || info.Status != "open" {
		t.Fatalf("info %+v %v", info, err)
	}
	r, err := c.ThreadEvent(ctx, "t1", ecbserver.ThreadUpdated, &ecbserver.Thread{ID: "t1", Subject: "new", Members: []string{"alice", "bob"}, CreatedAt: time.Now(), UpdatedAt: time.Now()})
	if err != nil || r.Told != 2 {
		t.Fatalf("updated: %+v %v", r, err)
	}
	if ev, data := b.last(); ev != "thread" || data["change"] != "updated" || data["thread"].(map[string]any)["subject"] != "new" {
		t.Fatalf("updated push %s %v", ev, data)
	}
	if _, err := c.ThreadEvent(ctx, "t1", ecbserver.ThreadClosed, nil); err != nil {
		t.Fatal(err)
	}
	if info, _ = c.ThreadInfo(ctx, "t1"); info.Status != "closed" {
		t.Fatalf("status %s", info.Status)
	}
	if _, err := c.ThreadEvent(ctx, "t1", ecbserver.ThreadReopened, nil); err != nil {
		t.Fatal(err)
	}
	r, err = c.ThreadEvent(ctx, "t1", ecbserver.ThreadDeleted, nil)
	if err != nil || r.Told != 2 {
		t.Fatalf("deleted: %+v %v", r, err)
	}
	if ev, data := a.last(); ev != "thread" || data["change"] != "deleted" {
		t.Fatalf("deleted push %s %v", ev, data)
	}
	if info, _ = c.ThreadInfo(ctx, "t1"); info.Listeners != 0 || info.Status != "deleted" {
		t.Fatalf("after delete %+v", info)
	}
	if _, err := c.ThreadEvent(ctx, "t1", ecbserver.ThreadReopened, nil); apiCode(err) != "conflict" {
		t.Fatalf("reopen a deleted thread: %v", err)
	}
	if _, err := c.ThreadEvent(ctx, "t1", ecbserver.ThreadUpdated, nil); apiCode(err) != "conflict" {
		t.Fatalf("update a deleted thread: %v", err)
	}
	if _, err := c.PublishSystemMessage(ctx, "t1", ecbserver.SystemMessage{Body: "x"}); apiCode(err) != "not_found" {
		t.Fatalf("publish into a deleted thread: %v", err)
	}
	if _, err := c.ThreadEvent(ctx, "t2", ecbserver.ThreadUpdated, &ecbserver.Thread{ID: "other"}); apiCode(err) != "invalid_argument" {
		t.Fatalf("thread of another id: %v", err)
	}
}

func TestDisconnectRevokeAndPresence(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client(t, allKey)
	a1, a2 := &conn{}, &conn{}
	e.hub.Register(a1, "alice")
	e.hub.Register(a2, "alice")
	p, err := e.client(t, presenceKey).UserPresence(ctx, "alice")
	if err != nil || !p.Online || p.Connections != 2 {
		t.Fatalf("presence %+v %v", p, err)
	}
	before := time.Now().Add(-time.Minute)
	d, err := c.DisconnectUser(ctx, "alice", before)
	if err != nil || d.Disconnected != 2 || d.RevokedBefore == nil || !d.RevokedBefore.Equal(before.UTC()) {
		t.Fatalf("disconnect %+v %v", d, err)
	}
	if a1.closed != hub.ReasonKicked {
		t.Fatalf("closed with %q", a1.closed)
	}
	if b, ok := e.store.RevokedBefore("alice"); !ok || !b.Equal(before) {
		t.Fatalf("revocation %v %v", b, ok)
	}
	if p, _ = c.UserPresence(ctx, "alice"); p.Online || p.Connections != 0 {
		t.Fatalf("after disconnect %+v", p)
	}
	// Without a body: disconnect only.
	if d, err = c.DisconnectUser(ctx, "bob", time.Time{}); err != nil || d.Disconnected != 0 || d.RevokedBefore != nil {
		t.Fatalf("disconnect bob %+v %v", d, err)
	}
	if _, ok := e.store.RevokedBefore("bob"); ok {
		t.Fatal("bob revoked without revokedBefore")
	}
	if _, err := c.DisconnectUser(ctx, "bob", time.Now().Add(time.Hour)); apiCode(err) != "invalid_argument" {
		t.Fatalf("revokedBefore in the future: %v", err)
	}
}

// raw sends a request as is and returns status and error code.
func raw(tb testing.TB, method, url, key, body string) (int, string, http.Header) {
	tb.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, url, rd)
	if key != "" {
		req.Header.Set("Authorization", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var env struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &env); err != nil {
		tb.Fatalf("%s %s: not the envelope: %q", method, url, raw)
	}
	if env.Error == nil {
		return resp.StatusCode, "", resp.Header
	}
	return resp.StatusCode, env.Error.Code, resp.Header
}

func TestRefusals(t *testing.T) {
	e := newEnv(t)
	base := e.url + "/server/v1"
	bearer := "Bearer " + allKey
	deep := strings.Repeat(`{"a":`, 20000) + "1" + strings.Repeat("}", 20000)
	cases := []struct {
		name, method, path, key, body string
		status                        int
		code                          string
	}{
		{"no key", "GET", "/users/u/presence", "", "", 401, "unauthenticated"},
		{"no key, unknown route", "GET", "/nothing", "", "", 401, "unauthenticated"},
		{"wrong key", "GET", "/users/u/presence", "Bearer " + strings.Repeat("z", 40), "", 401, "unauthenticated"},
		{"a prefix of the key", "GET", "/users/u/presence", "Bearer " + allKey[:39], "", 401, "unauthenticated"},
		{"not bearer", "GET", "/users/u/presence", "Basic " + allKey, "", 401, "unauthenticated"},
		{"lacking scope", "POST", "/users/u/disconnect", "Bearer " + presenceKey, "", 403, "forbidden"},
		{"lacking scope for access", "PUT", "/threads/t/access/u", "Bearer " + presenceKey, `{"acc":0}`, 403, "forbidden"},
		{"unknown route", "GET", "/nothing", bearer, "", 404, "not_found"},
		{"wrong method", "PATCH", "/threads/t/access/u", bearer, "", 404, "not_found"},
		{"no body", "PUT", "/threads/t/access/u", bearer, "", 400, "invalid_argument"},
		{"acc missing", "PUT", "/threads/t/access/u", bearer, `{"ttlSeconds":5}`, 400, "invalid_argument"},
		{"acc out of range", "PUT", "/threads/t/access/u", bearer, `{"acc":16}`, 400, "invalid_argument"},
		{"acc not a number", "PUT", "/threads/t/access/u", bearer, `{"acc":"1"}`, 400, "invalid_argument"},
		{"negative ttl", "PUT", "/threads/t/access/u", bearer, `{"acc":1,"ttlSeconds":-1}`, 400, "invalid_argument"},
		{"ttl beyond a year", "PUT", "/threads/t/access/u", bearer, `{"acc":1,"ttlSeconds":99999999}`, 400, "invalid_argument"},
		{"unknown field", "PUT", "/threads/t/access/u", bearer, `{"acc":1,"ttl":5}`, 400, "invalid_argument"},
		{"not an object", "PUT", "/threads/t/access/u", bearer, `[1]`, 400, "invalid_argument"},
		{"two values", "PUT", "/threads/t/access/u", bearer, `{"acc":1}{"acc":2}`, 400, "invalid_argument"},
		{"oversized", "POST", "/threads/t/messages", bearer, `{"body":"` + strings.Repeat("x", 5000) + `"}`, 413, "payload_too_large"},
		{"deeply nested", "POST", "/threads/t/messages", bearer, deep[:4000], 400, "invalid_argument"},
		{"unknown change", "POST", "/threads/t/events", bearer, `{"change":"archived"}`, 400, "invalid_argument"},
		{"bad revokedBefore", "POST", "/users/u/disconnect", bearer, `{"revokedBefore":"yesterday"}`, 400, "invalid_argument"},
		{"control character in id", "GET", "/users/a%01b/presence", bearer, "", 400, "invalid_argument"},
		{"id too long", "GET", "/users/" + strings.Repeat("u", 300) + "/presence", bearer, "", 400, "invalid_argument"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, code, _ := raw(t, tc.method, base+tc.path, tc.key, tc.body)
			if status != tc.status || code != tc.code {
				t.Fatalf("%d %q, want %d %s", status, code, tc.status, tc.code)
			}
		})
	}
	if e.store.Len() != 0 {
		t.Fatalf("refused calls stored %d entries", e.store.Len())
	}
	logs := e.logs.String()
	for _, k := range []string{allKey, presenceKey, allKey[:39]} {
		if strings.Contains(logs, k) {
			t.Fatal("a key is in the log")
		}
	}
	if !strings.Contains(logs, "key=monitor") || !strings.Contains(logs, "status=403") {
		t.Fatalf("calls are not logged with the key's name and status:\n%s", logs)
	}
}

func TestStoreFullIsUnavailable(t *testing.T) {
	e := newEnv(t)
	c := e.client(t, allKey)
	ctx := context.Background()
	for i := range 50 {
		if _, err := c.SetAccess(ctx, "t", string(rune('A'+i)), 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.SetAccess(ctx, "t", "one-too-many", 0, 0); apiCode(err) != "unavailable" {
		t.Fatalf("beyond maxEntries: %v", err)
	}
	if _, err := c.DisconnectUser(ctx, "u", time.Now()); apiCode(err) != "unavailable" {
		t.Fatalf("a revocation beyond maxEntries: %v", err)
	}
}

// unwritable is a store whose shared state cannot be written, as the Redis
// store answers while Redis is unreachable; its reads answer from memory.
type unwritable struct{ *access.Store }

var errDown = fmt.Errorf("test: redis down: %w", hub.ErrUnavailable)

func (unwritable) SetAccess(context.Context, string, string, auth.Access, time.Duration) (access.Override, error) {
	return access.Override{}, errDown
}
func (unwritable) DeleteAccess(context.Context, string, string) (bool, error) { return false, errDown }
func (unwritable) SetThreadStatus(context.Context, string, string) error      { return errDown }
func (unwritable) Revoke(context.Context, string, time.Time) (time.Time, error) {
	return time.Time{}, errDown
}

// A write the shared store cannot make is 503 unavailable, and nothing is
// applied to the connections; reads keep answering.
func TestStoreUnwritableIsUnavailable(t *testing.T) {
	e := newEnvWith(t, func(s *access.Store) serverapi.Store { return unwritable{s} })
	c := e.client(t, allKey)
	ctx := context.Background()
	if _, err := e.store.SetAccess(ctx, "t", "carol", auth.AccessRead, 0); err != nil {
		t.Fatal(err)
	}
	bob := &conn{}
	e.hub.Register(bob, "bob")
	if _, err := e.hub.Attach(ctx, "t", bob); err != nil {
		t.Fatal(err)
	}
	status, code, _ := raw(t, "PUT", e.url+"/server/v1/threads/t/access/bob", "Bearer "+allKey, `{"acc":0,"ttlSeconds":60}`)
	if status != 503 || code != "unavailable" {
		t.Fatalf("a ban without Redis: %d %s", status, code)
	}
	if _, err := c.DeleteAccess(ctx, "t", "carol"); apiCode(err) != "unavailable" {
		t.Fatalf("a delete without Redis: %v", err)
	}
	if _, err := c.ThreadEvent(ctx, "t", "closed", nil); apiCode(err) != "unavailable" {
		t.Fatalf("a close without Redis: %v", err)
	}
	if _, err := c.DisconnectUser(ctx, "bob", time.Now()); apiCode(err) != "unavailable" {
		t.Fatalf("a revocation without Redis: %v", err)
	}
	if n := e.hub.Listeners("t"); n != 1 || bob.count() != 0 || bob.closed != "" {
		t.Fatalf("bob was acted on: listeners %d, pushes %d, closed %q", n, bob.count(), bob.closed)
	}
	if o, err := c.GetAccess(ctx, "t", "carol"); err != nil || o.Acc != int(auth.AccessRead) {
		t.Fatalf("a read without Redis: %+v %v", o, err)
	}
}

func TestDisabled(t *testing.T) {
	srv := httptest.NewServer(serverapi.Disabled())
	defer srv.Close()
	if status, code, _ := raw(t, "GET", srv.URL+"/server/v1/users/u/presence", "Bearer "+allKey, ""); status != 404 || code != "not_found" {
		t.Fatalf("%d %s", status, code)
	}
}

// TestPublishLoggedAtDebug: a system message published is logged at debug
// level, a publish refused and every other call at info level (error for a
// 5xx), each with the key's name and status.
func TestPublishLoggedAtDebug(t *testing.T) {
	var buf syncBuffer
	h := hub.New(hub.Config{})
	svc := ops.New(ops.Config{MaxMessageBytes: 100}, nil, nil, h, slog.New(slog.DiscardHandler), nil)
	store := access.New(access.Config{MaxEntries: 50})
	svc.SetGuards(ops.Guards{Access: store, Threads: store, Revocations: store})
	api := serverapi.New(serverapi.Config{Keys: serverapi.Keys{{Name: "backend", Key: allKey, Scopes: []string{"*"}}}},
		serverapi.Options{Ops: svc, Store: store, Hub: h, Logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	call := func(method, path, body string) int {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+allKey)
		w := httptest.NewRecorder()
		api.ServeHTTP(w, r)
		return w.Code
	}
	lines := func() []string {
		buf.mu.Lock()
		defer buf.mu.Unlock()
		out := strings.Split(strings.TrimSpace(buf.b.String()), "\n")
		buf.b.Reset()
		return out
	}
	for _, tc := range []struct {
		method, path, body string
		status             int
		level              string
	}{
		{"POST", "/server/v1/threads/t1/messages", `{"body":"hello"}`, 201, "DEBUG"},
		{"POST", "/server/v1/threads/t1/messages", `{"body":"` + strings.Repeat("x", 101) + `"}`, 413, "INFO"},
		{"POST", "/server/v1/threads/t1/messages", `{"body":1}`, 400, "INFO"},
		{"GET", "/server/v1/users/u/presence", "", 200, "INFO"},
		{"POST", "/server/v1/threads/t1/events", `{"change":"updated"}`, 200, "INFO"},
	} {
		if got := call(tc.method, tc.path, tc.body); got != tc.status {
			t.Fatalf("%s %s: %d, want %d", tc.method, tc.path, got, tc.status)
		}
		l := lines()
		want := fmt.Sprintf("status=%d", tc.status)
		if len(l) != 1 || !strings.Contains(l[0], "level="+tc.level+" ") || !strings.Contains(l[0], `msg="server API call"`) ||
			!strings.Contains(l[0], "key=backend") || !strings.Contains(l[0], "path="+tc.path) || !strings.Contains(l[0], want) {
			t.Fatalf("%s %s %d logged %q, want one %s line", tc.method, tc.path, tc.status, l, tc.level)
		}
	}
}
