package discover_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"

	"github.com/ecbridge/ecb/api"
	"github.com/ecbridge/ecb/internal/backend"
	"github.com/ecbridge/ecb/internal/discover"
	"github.com/ecbridge/ecb/internal/openapitest"
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
		Endpoints:  discover.Endpoints{ClientAPI: "/v1", Events: "/v1/events", Ops: "/v1/ops", SocketIO: "/socket.io/", Discover: discover.Path, OpenAPI: discover.OpenAPIPath},
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

// The discovery document is as api/client.yaml says, and the spec served at
// /v1/openapi.yaml is that file, byte for byte.
func TestDocumentAndSpecAreAsPublished(t *testing.T) {
	v, err := openapitest.Load("client.yaml")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(discover.Path, doc())
	mux.Handle(discover.OpenAPIPath, discover.ServeOpenAPI(api.ClientYAML))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	req, _ := http.NewRequest(http.MethodGet, srv.URL+discover.Path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if ok, verrs := v.ValidateHttpResponse(req, resp); !ok {
		t.Fatalf("GET %s is not as api/client.yaml says:%s\n%s", discover.Path, openapitest.Describe(verrs), body)
	}
	var env struct {
		Data discover.Body `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Data.Endpoints.OpenAPI != discover.OpenAPIPath {
		t.Fatalf("the document does not link the spec: %v %s", err, body)
	}

	resp, err = http.Get(srv.URL + discover.OpenAPIPath)
	if err != nil {
		t.Fatal(err)
	}
	served, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	file, err := os.ReadFile("../../api/client.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/yaml" || !bytes.Equal(served, file) || len(file) == 0 {
		t.Fatalf("GET %s: %d %q, %d bytes (api/client.yaml has %d)", discover.OpenAPIPath, resp.StatusCode, resp.Header.Get("Content-Type"), len(served), len(file))
	}
	post, err := http.Post(srv.URL+discover.OpenAPIPath, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	post.Body.Close()
	if post.StatusCode != 404 || post.Header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST %s: %d", discover.OpenAPIPath, post.StatusCode)
	}
}
