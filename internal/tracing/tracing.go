// Package tracing owns ECB's OpenTelemetry tracing: its configuration
// (tracing.*), the tracer provider that exports spans over OTLP/HTTP to a
// collector, and the names of the spans and attributes that the operations
// (package ops) and the backend client (package backend) record.
//
// Tracing is off unless an endpoint is configured (tracing.otlpEndpoint, or
// the standard OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / OTEL_EXPORTER_OTLP_ENDPOINT
// variables). Off, Start returns a Provider whose TracerProvider is nil: the
// operations and the backend client then skip every tracing call, so an
// untraced node pays a nil check per operation and nothing else.
//
// A Provider is safe for concurrent use; its exporter runs one goroutine (the
// SDK's batch span processor), which Shutdown ends after a last flush.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Scope is the instrumentation scope of ECB's spans.
const Scope = "github.com/ecbridge/ecb"

// The attributes ECB sets on its spans (docs/operations.md#tracing).
const (
	AttrOp        = attribute.Key("ecb.op")         // the operation's name (getThread, support.ask, ...)
	AttrUserID    = attribute.Key("ecb.user_id")    // the caller's user id, as on the log lines
	AttrThreadID  = attribute.Key("ecb.thread_id")  // the thread the operation acts in
	AttrRequestID = attribute.Key("ecb.request_id") // the request id (X-Request-Id, ECB-Request-Id)
	AttrErrorCode = attribute.Key("ecb.error_code") // the client error code of a failure
	AttrCall      = attribute.Key("ecb.backend.call")
)

// Config configures tracing; zero values mean the documented defaults.
type Config struct {
	// OTLPEndpoint is the OTLP/HTTP base URL of the collector
	// (http://127.0.0.1:4318); spans are posted to its /v1/traces, or to the
	// URL as given when it has a path. Empty: the OTEL_EXPORTER_OTLP_*
	// variables, and without those tracing is off.
	OTLPEndpoint string `yaml:"otlpEndpoint"`
	// SampleRatio is the share of operations whose trace is recorded and
	// exported, from 0 (exclusive) to 1 (default 1: every one).
	SampleRatio float64 `yaml:"sampleRatio"`
	// ServiceName is the service.name of the spans (default ecb).
	ServiceName string `yaml:"serviceName"`
}

// SetDefaults fills in the zero values.
func (c *Config) SetDefaults() {
	if c.SampleRatio == 0 {
		c.SampleRatio = 1
	}
	if c.ServiceName == "" {
		c.ServiceName = "ecb"
	}
}

// Validate checks the configuration; every problem names its key.
func (c *Config) Validate() error {
	var errs []error
	if c.OTLPEndpoint != "" {
		if u, err := url.Parse(c.OTLPEndpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("tracing.otlpEndpoint: %q is not an http(s) URL (e.g. http://127.0.0.1:4318)", c.OTLPEndpoint))
		}
	}
	if c.SampleRatio < 0 || c.SampleRatio > 1 {
		errs = append(errs, fmt.Errorf("tracing.sampleRatio: %v is not between 0 and 1", c.SampleRatio))
	}
	return errors.Join(errs...)
}

// Endpoint is the URL spans are posted to, "" when tracing is off: the
// configured endpoint (with /v1/traces when it has no path), else
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as is, else OTEL_EXPORTER_OTLP_ENDPOINT
// with /v1/traces, as the OpenTelemetry specification reads them.
func (c *Config) Endpoint(getenv func(string) string) string {
	withPath := func(base string) string {
		if u, err := url.Parse(base); err == nil && (u.Path == "" || u.Path == "/") {
			return strings.TrimRight(base, "/") + "/v1/traces"
		}
		return base
	}
	if c.OTLPEndpoint != "" {
		return withPath(c.OTLPEndpoint)
	}
	if getenv == nil {
		return ""
	}
	if e := getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); e != "" {
		return e
	}
	if e := getenv("OTEL_EXPORTER_OTLP_ENDPOINT"); e != "" {
		return withPath(e)
	}
	return ""
}

// Provider is the tracer provider of a node, or nothing when tracing is off.
type Provider struct {
	sdk      *sdktrace.TracerProvider // nil: off
	endpoint string
}

// Start builds the provider of cfg (defaults filled in). instance names the
// node (service.instance.id; empty: none). getenv reads the OTEL_* variables
// (os.Getenv; nil: none). The exporter connects lazily: a collector that is
// down costs dropped spans and an error through the OpenTelemetry error
// handler, never a failed start or a slower operation.
func Start(cfg Config, instance string, getenv func(string) string) (*Provider, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	endpoint := cfg.Endpoint(getenv)
	if endpoint == "" {
		return &Provider{}, nil
	}
	headers := map[string]string{}
	timeout := 10 * time.Second
	if getenv != nil {
		for _, name := range []string{"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"} { // the second wins
			maps.Copy(headers, parseHeaders(getenv(name)))
		}
		for _, name := range []string{"OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"} {
			if ms, err := strconv.Atoi(getenv(name)); err == nil && ms > 0 {
				timeout = time.Duration(ms) * time.Millisecond
			}
		}
	}
	exp := newExporter(endpoint, headers, timeout)
	attrs := []attribute.KeyValue{attribute.String("service.name", cfg.ServiceName)}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		attrs = append(attrs, attribute.String("service.version", bi.Main.Version))
	}
	if instance != "" {
		attrs = append(attrs, attribute.String("service.instance.id", instance))
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(2*time.Second)),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))),
		sdktrace.WithResource(resource.NewSchemaless(attrs...)),
	)
	return &Provider{sdk: tp, endpoint: endpoint}, nil
}

// TracerProvider is the provider to hand to the operations and the backend
// client, nil when tracing is off.
func (p *Provider) TracerProvider() trace.TracerProvider {
	if p.sdk == nil {
		return nil
	}
	return p.sdk
}

// Endpoint is where spans go, "" when off.
func (p *Provider) Endpoint() string { return p.endpoint }

// Shutdown exports the spans still buffered (within ctx) and stops the
// exporter. Off, it does nothing.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p.sdk == nil {
		return nil
	}
	if err := p.sdk.Shutdown(ctx); err != nil {
		return fmt.Errorf("tracing: shutdown: %w", err)
	}
	return nil
}
