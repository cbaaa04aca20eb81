package e2e

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// idBackend proxies to the reference backend and records the ECB-Request-Id
// of each getContacts call (the one the test makes; not the optional calls
// ECB probes for discovery at start); with fail set, it answers 500 instead.
type idBackend struct {
	srv  *httptest.Server
	fail atomic.Bool
	mu   sync.Mutex
	ids  []string
}

func newIDBackend(tb testing.TB, target string) *idBackend {
	tb.Helper()
	u, _ := url.Parse(target)
	proxy := httputil.NewSingleHostReverseProxy(u)
	b := &idBackend{}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, ecbserver.PathGetContacts) {
			b.mu.Lock()
			b.ids = append(b.ids, r.Header.Get(ecbserver.HeaderRequestID))
			b.mu.Unlock()
		}
		if b.fail.Load() {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	tb.Cleanup(b.srv.Close)
	return b
}

// take returns the ids recorded since the last take.
func (b *idBackend) take() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	ids := b.ids
	b.ids = nil
	return ids
}

// TestRequestIDReachesTheBackend: the request id of ECB's response header and
// log lines is the ECB-Request-Id the backend gets, so that the two logs join:
// the client's X-Request-Id, the one ECB made up for a request without it,
// and a Socket.IO operation's own.
func TestRequestIDReachesTheBackend(t *testing.T) {
	d := startDemo(t)
	b := newIDBackend(t, d.Backend)
	n := startNode(t, d, b.srv.URL)
	alice := d.login(t, "alice")

	r := call(t, "GET", n.URL+"/v1/contacts", nil, bearer(alice), "X-Request-Id: join-me-42")
	if ids := b.take(); r.Status != 200 || len(ids) != 1 || ids[0] != "join-me-42" || r.Header.Get("X-Request-Id") != "join-me-42" {
		t.Fatalf("with X-Request-Id: status %d, backend got %q, response %q", r.Status, ids, r.Header.Get("X-Request-Id"))
	}
	r = call(t, "GET", n.URL+"/v1/contacts", nil, bearer(alice))
	if ids := b.take(); r.Status != 200 || len(ids) != 1 || ids[0] == "" || ids[0] != r.Header.Get("X-Request-Id") {
		t.Fatalf("without X-Request-Id: status %d, backend got %q, response %q", r.Status, ids, r.Header.Get("X-Request-Id"))
	}

	// A Socket.IO operation that fails at the backend is logged with the id
	// the backend got.
	sock, refused := sioDial(t, n.URL, map[string]string{"userToken": alice})
	if refused != nil {
		t.Fatalf("socket.io refused: %+v", refused)
	}
	b.take()
	b.fail.Store(true)
	if a := sock.call("getContacts", map[string]any{}); a.code() != "backend_unavailable" {
		t.Fatalf("getContacts against a failing backend: %+v", a)
	}
	b.fail.Store(false)
	ids := b.take()
	if len(ids) != 1 || ids[0] == "" {
		t.Fatalf("backend got %q", ids)
	}
	var logged []string
	sc := bufio.NewScanner(strings.NewReader(n.stderr.String()))
	for sc.Scan() {
		var line struct {
			Msg       string `json:"msg"`
			Op        string `json:"op"`
			RequestID string `json:"request_id"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "operation failed" && line.Op == "getContacts" {
			logged = append(logged, line.RequestID)
		}
	}
	if len(logged) != 1 || logged[0] != ids[0] {
		t.Fatalf("the failed getContacts is logged with request ids %q, the backend got %q", logged, ids[0])
	}
}
