// Package discover owns ECB's discovery document, GET /v1/discover: what a
// client (or a visitor's page, handed the URL by the backend) reads before
// it connects, with no token. It says where ECB's endpoints are, the
// versions of its published interfaces, the transports, the token
// algorithms ECB accepts, and the capabilities: the operations this node
// offers, and which optional backend calls the backend answered, so that a
// client can hide what the deployment cannot do.
//
// The optional calls are probed at start and then every Interval (Prober):
// each is sent as a signed call with the empty body {}, which no call of the
// contract accepts (every one requires userId). A backend that lacks the
// call answers 501 not_implemented (the SDKs do, before reading the body)
// or, written for contract 1.0, 404; one that has it refuses the body with
// 400 invalid_argument before acting. So the probe tells the two apart and
// changes nothing. Any other answer (a timeout, a 5xx, a bad signature)
// leaves the call unknown until the next probe.
//
// A Document is safe for concurrent use.
package discover

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ecbridge/ecb/internal/apierr"
)

// Path is where the document is served.
const Path = "/v1/discover"

// OpenAPIPath is where the client API's OpenAPI document is served.
const OpenAPIPath = "/v1/openapi.yaml"

// ServeOpenAPI answers GET (and HEAD) with spec, the client API's OpenAPI
// document, with no token; caches may keep it a minute.
func ServeOpenAPI(spec []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			w.Header().Set("Content-Type", "application/json")
			e := apierr.New(apierr.NotFound, "no such route: %s %s", r.Method, r.URL.Path)
			w.WriteHeader(e.Code.HTTPStatus())
			_ = json.NewEncoder(w).Encode(apierr.Result(nil, e))
			return
		}
		w.Header().Set("Content-Type", "application/yaml")
		w.Header().Set("Cache-Control", "public, max-age=60")
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = w.Write(spec)
		}
	})
}

// DefaultInterval and DefaultTimeout are how often the optional calls are
// probed, and how long one probe may take.
const (
	DefaultInterval = 5 * time.Minute
	DefaultTimeout  = 5 * time.Second
)

// Versions are the versions of ECB's published interfaces.
type Versions struct {
	Release   string `json:"release"`   // this build (ecb version)
	Protocol  string `json:"protocol"`  // the client protocol (docs/protocol.md)
	Contract  string `json:"contract"`  // the backend contract (api/backend.yaml)
	ServerAPI string `json:"serverApi"` // the Server API (api/server.yaml)
}

// Endpoints are ECB's paths, relative to the origin the document was read
// from (ECB serves them all on the client listener).
type Endpoints struct {
	ClientAPI string `json:"clientApi"` // the REST client API base
	Events    string `json:"events"`    // the SSE stream (GET, with a userToken)
	Ops       string `json:"ops"`       // POST {ops}/{op}: every operation by name
	SocketIO  string `json:"socketIO"`  // the Socket.IO path (socket.io-client's path option)
	Discover  string `json:"discover"`
	// OpenAPI is where the client API's OpenAPI document (api/client.yaml)
	// is served.
	OpenAPI string `json:"openApi,omitempty"`
	// Docs is the browsable page of that document (Swagger UI).
	Docs string `json:"docs,omitempty"`
	// ServerAPI is the Server API base on this listener; absent when the
	// Server API is off or served on its own address (serverApi.listen).
	ServerAPI string `json:"serverApi,omitempty"`
}

// Tokens says which tokens ECB accepts.
type Tokens struct {
	Algorithms []string `json:"algorithms"` // auth.algorithms
	Audience   string   `json:"audience,omitempty"`
	Issuer     string   `json:"issuer,omitempty"`
}

// Call states of an optional backend call.
const (
	Supported   = "supported"
	Unsupported = "unsupported"
	Unknown     = "unknown" // not probed yet, or the last probe got no usable answer
)

// Config is what the document says that does not change while ECB runs.
type Config struct {
	Versions   Versions
	Endpoints  Endpoints
	Transports []string
	Tokens     Tokens
	Operations []string // the operations this node offers
	// Optional are the optional backend calls, by path, to their names.
	Optional map[string]string
}

// Document is the discovery document and the probe results it carries.
type Document struct {
	cfg Config

	mu       sync.Mutex
	calls    map[string]string // call name → state
	probedAt time.Time
}

// New returns the document of cfg, every optional call unknown.
func New(cfg Config) *Document {
	d := &Document{cfg: cfg, calls: map[string]string{}}
	for _, name := range cfg.Optional {
		d.calls[name] = Unknown
	}
	return d
}

// Body is the document as served.
type Body struct {
	Versions     Versions     `json:"versions"`
	Endpoints    Endpoints    `json:"endpoints"`
	Transports   []string     `json:"transports"`
	Tokens       Tokens       `json:"tokens"`
	Capabilities Capabilities `json:"capabilities"`
}

// Capabilities are what this deployment can do.
type Capabilities struct {
	Operations []string `json:"operations"`
	// BackendCalls maps each optional backend call to supported,
	// unsupported or unknown.
	BackendCalls map[string]string `json:"backendCalls"`
	// ProbedAt is when the optional calls were last probed (absent before
	// the first probe ends).
	ProbedAt *time.Time `json:"probedAt,omitempty"`
}

// Body returns the document now.
func (d *Document) Body() Body {
	d.mu.Lock()
	calls := make(map[string]string, len(d.calls))
	for k, v := range d.calls {
		calls[k] = v
	}
	var at *time.Time
	if !d.probedAt.IsZero() {
		t := d.probedAt.UTC()
		at = &t
	}
	d.mu.Unlock()
	return Body{Versions: d.cfg.Versions, Endpoints: d.cfg.Endpoints, Transports: slices.Clone(d.cfg.Transports),
		Tokens: d.cfg.Tokens, Capabilities: Capabilities{Operations: slices.Clone(d.cfg.Operations), BackendCalls: calls, ProbedAt: at}}
}

// ServeHTTP answers GET (and HEAD) with the document in ECB's envelope.
// It needs no token and is the same for every caller; caches may keep it a
// minute.
func (d *Document) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		e := apierr.New(apierr.NotFound, "no such route: %s %s", r.Method, r.URL.Path)
		w.WriteHeader(e.Code.HTTPStatus())
		_ = json.NewEncoder(w).Encode(apierr.Result(nil, e))
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=60")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	_ = json.NewEncoder(w).Encode(apierr.Result(d.Body(), nil))
}

// Prober calls one optional backend call with the empty body {}.
type Prober interface {
	Probe(ctx context.Context, path string) error
}

// Classify turns a probe's error into a call state: nil or a refusal of
// the body (invalid_argument, forbidden, unauthenticated, conflict) is
// supported; the backend's "does not support" (501) or a 404 unsupported;
// anything else unknown.
func Classify(err error) string {
	if err == nil {
		return Supported
	}
	var e *apierr.Error
	if !errors.As(err, &e) {
		return Unknown
	}
	switch e.Code {
	case apierr.NotFound:
		return Unsupported
	case apierr.InvalidArgument, apierr.Forbidden, apierr.Unauthenticated, apierr.Conflict:
		return Supported
	}
	return Unknown
}

// ProbeOnce probes every optional call once, each within timeout; a call
// whose probe got no usable answer keeps its previous state.
func (d *Document) ProbeOnce(ctx context.Context, p Prober, timeout time.Duration, log *slog.Logger) {
	paths := make([]string, 0, len(d.cfg.Optional))
	for path := range d.cfg.Optional {
		paths = append(paths, path)
	}
	slices.Sort(paths)
	got := map[string]string{}
	for _, path := range paths {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		err := p.Probe(cctx, path)
		cancel()
		state := Classify(err)
		if state == Unknown && log != nil {
			log.Warn("discovery: probing an optional backend call got no usable answer", "call", strings.TrimPrefix(path, "/"), "err", err)
		}
		got[d.cfg.Optional[path]] = state
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for name, state := range got {
		if state != Unknown || d.calls[name] == "" {
			d.calls[name] = state
		}
	}
	d.probedAt = time.Now()
}

// Run probes at once, then every interval, until ctx ends.
func (d *Document) Run(ctx context.Context, p Prober, interval, timeout time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		d.ProbeOnce(ctx, p, timeout, log)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
