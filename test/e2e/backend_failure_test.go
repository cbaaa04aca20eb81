package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// faultyBackend proxies to the demo's reference backend and misbehaves on demand.
type faultyBackend struct {
	mode atomic.Value // "", "down", "slow", "garbage", "fail-add"
	srv  *httptest.Server
}

func newFaultyBackend(tb testing.TB, target string) *faultyBackend {
	tb.Helper()
	u, _ := url.Parse(target)
	proxy := httputil.NewSingleHostReverseProxy(u)
	f := &faultyBackend{}
	f.mode.Store("")
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch mode := f.mode.Load().(string); {
		case mode == "down":
			hj, _ := w.(http.Hijacker)
			conn, _, _ := hj.Hijack()
			conn.Close()
			return
		case mode == "slow":
			_, _ = io.ReadAll(r.Body)
			select {
			case <-time.After(3 * time.Second):
			case <-r.Context().Done():
			}
			return
		case mode == "garbage":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte("<html>surprise</html>"))
			return
		case mode == "fail-add" && strings.HasSuffix(r.URL.Path, "/addThreadMessage"):
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	tb.Cleanup(f.srv.Close)
	return f
}

// startECB runs a second ECB node with the demo's keys against backendURL,
// with a short backend timeout and a breaker that opens after 3 failures.
func startECB(tb testing.TB, d *demo, backendURL string, sets ...string) string {
	tb.Helper()
	return startNode(tb, d, backendURL, append([]string{
		"backend.timeout=500ms", "backend.breakerFailures=3", "backend.breakerCooldown=1s",
	}, sets...)...).URL
}

// TestBackendFailures: a backend that is down, slow or answers garbage gets
// backend_unavailable / backend_error, the breaker opens and closes again,
// and a message the backend did not store is never pushed.
func TestBackendFailures(t *testing.T) {
	d := startDemo(t)
	fb := newFaultyBackend(t, d.Backend)
	ecb := startECB(t, d, fb.srv.URL)
	alice := d.login(t, "alice")
	bob := d.login(t, "bob")

	c := decodeData[created](t, call(t, "POST", ecb+"/v1/threads", map[string]any{
		"participants": []string{"bob"}, "message": map[string]any{"body": "hello"},
	}, bearer(alice)))
	bt := decodeData[page[signedThread]](t, call(t, "GET", ecb+"/v1/threads", nil, bearer(bob))).Items[0].ThreadToken
	bobStream := openStream(t, ecb, bob)
	decodeData[threadPage](t, call(t, "GET", ecb+"/v1/threads/"+c.Thread.ID, nil, bearer(bob), "ECB-Thread-Token: "+bt, "ECB-Stream: "+bobStream.ID))
	send := func() *response {
		return call(t, "POST", ecb+"/v1/threads/"+c.Thread.ID+"/messages", map[string]any{"body": "lost?", "clientMessageId": "retry-1"},
			bearer(alice), "ECB-Thread-Token: "+c.ThreadToken)
	}

	fb.mode.Store("fail-add")
	if r := send(); r.Status != 503 || r.code() != "backend_unavailable" {
		t.Fatalf("backend 500 on add: %d %s", r.Status, r.code())
	}
	bobStream.expectNone(t, 300*time.Millisecond) // nothing pushed that was not stored

	fb.mode.Store("garbage")
	if r := call(t, "GET", ecb+"/v1/contacts", nil, bearer(alice)); r.Status != 502 || r.code() != "backend_error" {
		t.Fatalf("garbage: %d %s", r.Status, r.code())
	}

	fb.mode.Store("slow")
	start := time.Now()
	if r := call(t, "GET", ecb+"/v1/contacts", nil, bearer(alice)); r.Status != 503 || r.code() != "backend_unavailable" {
		t.Fatalf("slow: %d %s", r.Status, r.code())
	}
	if el := time.Since(start); el > 2500*time.Millisecond {
		t.Fatalf("a slow backend held the request %s; the per-call timeout is 500ms", el)
	}

	fb.mode.Store("down")
	for range 3 {
		if r := call(t, "GET", ecb+"/v1/contacts", nil, bearer(alice)); r.code() != "backend_unavailable" {
			t.Fatalf("down: %d %s", r.Status, r.code())
		}
	}
	// The breaker is open now: readiness says so.
	if resp, err := http.Get(ecb + "/readyz"); err != nil || resp.StatusCode != 503 {
		t.Fatalf("/readyz with an open breaker: %v %v", resp.StatusCode, err)
	}

	fb.mode.Store("")
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := send()
		if r.Status == 201 {
			s := decodeData[sent](t, r)
			if s.Message.Body != "lost?" {
				t.Fatalf("retried message = %+v", s.Message)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the backend is back but sends still fail: %d %s", r.Status, r.code())
		}
		time.Sleep(200 * time.Millisecond)
	}
	ev := bobStream.next(t, 5*time.Second)
	if ev.Event != "message" {
		t.Fatalf("after recovery bob got %s", ev.Event)
	}
	bobStream.expectNone(t, 300*time.Millisecond)

	// The retried clientMessageId produced one stored message.
	page := decodeData[threadPage](t, call(t, "GET", ecb+"/v1/threads/"+c.Thread.ID, nil, bearer(alice), "ECB-Thread-Token: "+c.ThreadToken))
	if len(page.Messages) != 2 {
		t.Fatalf("thread has %d messages, want 2 (hello + one retried)", len(page.Messages))
	}
}
