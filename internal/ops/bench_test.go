package ops_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/ecbridge/ecb/internal/auth"
	"github.com/ecbridge/ecb/internal/backend"
	"github.com/ecbridge/ecb/internal/hub"
	"github.com/ecbridge/ecb/internal/memhttp"
	"github.com/ecbridge/ecb/internal/ops"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// benchService is the op path as a server wires it, with the network cut
// out: ops.Service → backend.Client (signing, breaker, JSON) → an
// in-process handler (memhttp) that answers the contract.
func benchService(b *testing.B) (*ops.Service, *backend.Client, ops.Caller) {
	b.Helper()
	f := newFixture(b) // makes testKey
	contacts, err := json.Marshal(ecbserver.GetContactsResponse{Contacts: []ecbserver.User{{ID: "u1", Name: "one"}, {ID: "u2", Name: "two"}}})
	if err != nil {
		b.Fatal(err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(contacts)
	})
	bc, err := backend.New(backend.Config{URL: "http://backend.test/ecb/v1", Secret: "0123456789abcdef0123456789abcdef"},
		&http.Client{Transport: memhttp.Transport{Handler: h}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	v, err := auth.NewVerifierFromKeys(auth.Config{Audience: "ecb-test"}, &testKey.PublicKey)
	if err != nil {
		b.Fatal(err)
	}
	svc := ops.New(ops.Config{}, bc, v, hub.New(hub.Config{}), slog.New(slog.DiscardHandler), nil)
	return svc, bc, f.caller(b, "alice", nil)
}

// BenchmarkOpPath is getContacts through the whole op path (docs/performance.md#tracing-on-the-op-path-in-process).
func BenchmarkOpPath(b *testing.B) {
	svc, _, c := benchService(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := svc.GetContacts(ctx, c, ops.PageRequest{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpPathTraced is BenchmarkOpPath with tracing on, every
// operation sampled, its spans batched to an exporter that drops them: the
// cost of recording an operation's span and its backend call's.
func BenchmarkOpPathTraced(b *testing.B) {
	svc, bc, c := benchService(b)
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	svc.SetTracerProvider(tp)
	bc.SetTracerProvider(tp)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := svc.GetContacts(ctx, c, ops.PageRequest{}); err != nil {
			b.Fatal(err)
		}
	}
}
