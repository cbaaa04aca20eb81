package discover_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/ecbridge/ecb/internal/backend"
	"github.com/ecbridge/ecb/internal/discover"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

const secret = "discover-test-secret-0123456789abcdef"

// readMarker is a backend built on the SDK with one optional call,
// markRead; it counts the calls that reached its methods.
type readMarker struct {
	ecbserver.Backend // the required calls, never reached by a probe
	reached           atomic.Int32
}

func (b *readMarker) MarkRead(context.Context, *ecbserver.MarkReadRequest) (*ecbserver.MarkReadResponse, error) {
	b.reached.Add(1)
	return &ecbserver.MarkReadResponse{}, nil
}

func client(tb testing.TB, h http.Handler) *backend.Client {
	tb.Helper()
	srv := httptest.NewServer(h)
	tb.Cleanup(srv.Close)
	c, err := backend.New(backend.Config{URL: srv.URL, Secret: secret}, nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func doc() *discover.Document {
	return discover.New(discover.Config{
		Versions:   discover.Versions{Release: "v9", Protocol: "1.2", Contract: ecbserver.ContractFullVersion, ServerAPI: "1.1.0"},
		Endpoints:  discover.Endpoints{ClientAPI: "/v1", Events: "/v1/events", Ops: "/v1/ops", SocketIO: "/socket.io/", Discover: discover.Path},
		Transports: []string{"socketio", "sse"},
		Tokens:     discover.Tokens{Algorithms: []string{"RS256"}},
		Operations: []string{"getThreads", "sendMessage"},
		Optional:   ecbserver.OptionalCalls(),
	})
}

func TestProbeTellsSupportedFromUnsupportedWithoutActing(t *testing.T) {
	b := &readMarker{}
	c := client(t, ecbserver.NewHandler([]byte(secret), b, ecbserver.HandlerOptions{}))
	d := doc()
	if got := d.Body().Capabilities; got.ProbedAt != nil || got.BackendCalls["markRead"] != discover.Unknown {
		t.Fatalf("before any probe: %+v", got)
	}
	d.ProbeOnce(context.Background(), c, discover.DefaultTimeout, nil)
	got := d.Body().Capabilities
	want := map[string]string{"markRead": discover.Supported, "addParticipants": discover.Unsupported,
		"leaveThread": discover.Unsupported, "createSupportThread": discover.Unsupported}
	for call, state := range want {
		if got.BackendCalls[call] != state {
			t.Errorf("%s: %s, want %s (%v)", call, got.BackendCalls[call], state, got.BackendCalls)
		}
	}
	if len(got.BackendCalls) != len(ecbserver.OptionalCalls()) || got.ProbedAt == nil {
		t.Fatalf("capabilities %+v", got)
	}
	if n := b.reached.Load(); n != 0 {
		t.Fatalf("the probe reached the backend's markRead %d times", n)
	}
}

func TestProbeOfAContract10BackendAndOfAFailingOne(t *testing.T) {
	var fail atomic.Bool
	c := client(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		if r.URL.Path == ecbserver.PathMarkRead {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":{"code":"invalid_argument","message":"userId is required"}}`))
			return
		}
		w.WriteHeader(http.StatusNotFound) // a 1.0 backend does not know the path
		_, _ = w.Write([]byte(`{"error":{"code":"not_found","message":"no such operation"}}`))
	}))
	d := doc()
	d.ProbeOnce(context.Background(), c, discover.DefaultTimeout, nil)
	calls := d.Body().Capabilities.BackendCalls
	if calls["markRead"] != discover.Supported || calls["leaveThread"] != discover.Unsupported {
		t.Fatalf("after the first probe: %v", calls)
	}
	// A failing backend leaves the states as they were.
	fail.Store(true)
	d.ProbeOnce(context.Background(), c, discover.DefaultTimeout, nil)
	if again := d.Body().Capabilities.BackendCalls; again["markRead"] != discover.Supported || again["leaveThread"] != discover.Unsupported {
		t.Fatalf("a failed probe changed the states: %v", again)
	}
	// Probes of a failing backend stay out of the circuit breaker.
	for range 3 {
		d.ProbeOnce(context.Background(), c, discover.DefaultTimeout, nil)
	}
	if !c.Healthy() {
		t.Fatal("12 failed probes opened the backend's circuit breaker")
	}
}

func TestClassify(t *testing.T) {
	if discover.Classify(errors.New("dial tcp: refused")) != discover.Unknown || discover.Classify(nil) != discover.Supported {
		t.Fatal("classify")
	}
}

func TestServeHTTP(t *testing.T) {
	d := doc()
	srv := httptest.NewServer(d)
	defer srv.Close()
	resp, err := http.Get(srv.URL + discover.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var env struct {
		Data discover.Body `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %v", resp.StatusCode, err)
	}
	if env.Data.Versions.Protocol != "1.2" || env.Data.Endpoints.SocketIO != "/socket.io/" || len(env.Data.Capabilities.Operations) != 2 {
		t.Fatalf("document %+v", env.Data)
	}
	post, err := http.Post(srv.URL+discover.Path, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	post.Body.Close()
	if post.StatusCode != 404 {
		t.Fatalf("POST: %d", post.StatusCode)
	}
}
