package ops_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/ecbridge/ecb/internal/auth"
	"github.com/ecbridge/ecb/internal/backend"
	"github.com/ecbridge/ecb/internal/hub"
	"github.com/ecbridge/ecb/internal/ops"
	"github.com/ecbridge/ecb/internal/reqid"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// seen is what the backend received: one entry per call.
type seen struct {
	mu    sync.Mutex
	calls []http.Header
}

func (s *seen) headers() []http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]http.Header(nil), s.calls...)
}

// tracedFixture is the op path with the real backend client over HTTP to
// an httptest backend that answers getContacts and refuses getThread
// (not_found), with tracing on into an in-memory span recorder, and the
// service's log written through reqid.Handler into logs.
type tracedFixture struct {
	*fixture
	svc  *ops.Service
	rec  *tracetest.SpanRecorder
	seen *seen
	logs *bytes.Buffer
}

func newTracedFixture(t *testing.T, traced bool) *tracedFixture {
	t.Helper()
	f := newFixture(t)
	got := &seen{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.mu.Lock()
		got.calls = append(got.calls, r.Header.Clone())
		got.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/ecb/v1" + ecbserver.PathGetContacts:
			_ = json.NewEncoder(w).Encode(ecbserver.GetContactsResponse{Contacts: []ecbserver.User{{ID: "bob", Name: "Bob"}}})
		default:
			w.WriteHeader(http.StatusNotFound)
			_ = json.NewEncoder(w).Encode(ecbserver.ErrorResponse{Error: ecbserver.ErrorBody{Code: ecbserver.CodeNotFound, Message: "no such thread"}})
		}
	}))
	t.Cleanup(srv.Close)
	bc, err := backend.New(backend.Config{URL: srv.URL + "/ecb/v1", Secret: "0123456789abcdef0123456789abcdef", Timeout: 2 * time.Second}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifierFromKeys(auth.Config{Audience: "ecb-test"}, &testKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	log := slog.New(reqid.Handler(slog.NewTextHandler(logs, nil)))
	svc := ops.New(ops.Config{}, bc, v, hub.New(hub.Config{}), log, nil)
	rec := tracetest.NewSpanRecorder()
	if traced {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
		t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		bc.SetTracerProvider(tp)
		svc.SetTracerProvider(tp)
	}
	return &tracedFixture{fixture: f, svc: svc, rec: rec, seen: got, logs: logs}
}

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]string {
	out := map[attribute.Key]string{}
	for _, kv := range s.Attributes() {
		out[kv.Key] = kv.Value.String()
	}
	return out
}

func spanNamed(t *testing.T, spans []sdktrace.ReadOnlySpan, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	for _, s := range spans {
		if s.Name() == name {
			return s
		}
	}
	var names []string
	for _, s := range spans {
		names = append(names, s.Name())
	}
	t.Fatalf("no span %q among %v", name, names)
	return nil
}

// TestOperationSpanWithBackendChild: an operation is a server span with
// its attributes, its backend call a client span under it, and the
// backend receives that call's traceparent beside ECB-Request-Id.
func TestOperationSpanWithBackendChild(t *testing.T) {
	f := newTracedFixture(t, true)
	c := f.caller(t, "alice", nil)
	ctx := reqid.With(context.Background(), "req-42")
	if _, err := f.svc.GetContacts(ctx, c, ops.PageRequest{}); err != nil {
		t.Fatal(err)
	}
	spans := f.rec.Ended()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want the operation's and its backend call's", len(spans))
	}
	op, call := spanNamed(t, spans, ops.OpGetContacts), spanNamed(t, spans, "backend getContacts")
	if op.SpanKind() != trace.SpanKindServer || call.SpanKind() != trace.SpanKindClient {
		t.Errorf("kinds: op %v, call %v", op.SpanKind(), call.SpanKind())
	}
	if call.Parent().SpanID() != op.SpanContext().SpanID() || call.SpanContext().TraceID() != op.SpanContext().TraceID() {
		t.Errorf("the backend call's span is not the operation's child: parent %v, op %v", call.Parent(), op.SpanContext())
	}
	a := attrs(op)
	if a["ecb.op"] != ops.OpGetContacts || a["ecb.user_id"] != "alice" || a["ecb.request_id"] != "req-42" {
		t.Errorf("op span attributes %v", a)
	}
	if op.Status().Code == codes.Error || call.Status().Code == codes.Error {
		t.Errorf("statuses %v, %v on success", op.Status(), call.Status())
	}
	if ca := attrs(call); ca["ecb.backend.call"] != "getContacts" || ca["http.response.status_code"] != "200" {
		t.Errorf("call span attributes %v", ca)
	}

	h := f.seen.headers()
	if len(h) != 1 {
		t.Fatalf("%d backend calls, want 1", len(h))
	}
	tp := h[0].Get("Traceparent")
	parts := strings.Split(tp, "-")
	if len(parts) != 4 || parts[0] != "00" {
		t.Fatalf("traceparent %q is not W3C version 00", tp)
	}
	if parts[1] != op.SpanContext().TraceID().String() || parts[2] != call.SpanContext().SpanID().String() || parts[3] != "01" {
		t.Errorf("traceparent %q; want trace %s, parent %s (the call's span), sampled", tp, op.SpanContext().TraceID(), call.SpanContext().SpanID())
	}
	if got := h[0].Get(ecbserver.HeaderRequestID); got != "req-42" {
		t.Errorf("ECB-Request-Id %q beside the traceparent, want req-42", got)
	}
}

// TestFailedOperationSetsSpanStatus: a refused backend call marks both
// spans as errors with the client code, the thread is on the operation's
// span, and the failure's log line carries the trace's ids.
func TestFailedOperationSetsSpanStatus(t *testing.T) {
	f := newTracedFixture(t, true)
	c := f.caller(t, "alice", nil)
	tok, err := f.signer.SignThreadToken(ecbserver.ThreadTokenParams{ThreadID: "t-9", UserID: "alice", Access: 15})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.GetThread(context.Background(), c, ops.GetThreadRequest{ThreadToken: tok})
	if codeOf(err) != "not_found" {
		t.Fatalf("getThread: %v, want not_found", err)
	}
	spans := f.rec.Ended()
	op, call := spanNamed(t, spans, ops.OpGetThread), spanNamed(t, spans, "backend getThread")
	for _, s := range []sdktrace.ReadOnlySpan{op, call} {
		if s.Status().Code != codes.Error || s.Status().Description != "not_found" || attrs(s)["ecb.error_code"] != "not_found" {
			t.Errorf("span %s: status %v, attributes %v; want error not_found", s.Name(), s.Status(), attrs(s))
		}
	}
	if got := attrs(op)["ecb.thread_id"]; got != "t-9" {
		t.Errorf("op span ecb.thread_id %q, want t-9", got)
	}
	line := f.logs.String()
	want := "trace_id=" + op.SpanContext().TraceID().String() + " span_id=" + op.SpanContext().SpanID().String()
	if !strings.Contains(line, "operation failed") || !strings.Contains(line, want) {
		t.Errorf("log %q lacks %q", line, want)
	}
}

// TestTracingOffSendsNoTraceparent: off (the default), no span is made
// and the backend gets no traceparent, only ECB-Request-Id; the log lines
// have no trace ids.
func TestTracingOffSendsNoTraceparent(t *testing.T) {
	f := newTracedFixture(t, false)
	c := f.caller(t, "alice", nil)
	if _, err := f.svc.GetContacts(context.Background(), c, ops.PageRequest{}); err != nil {
		t.Fatal(err)
	}
	_, _ = f.svc.GetThread(context.Background(), c, ops.GetThreadRequest{ThreadToken: "bad"})
	h := f.seen.headers()
	if len(h) != 1 || h[0].Get("Traceparent") != "" || h[0].Get(ecbserver.HeaderRequestID) == "" {
		t.Errorf("backend calls %v: want one, with ECB-Request-Id and no traceparent", h)
	}
	if n := len(f.rec.Ended()); n != 0 {
		t.Errorf("%d spans recorded with tracing off", n)
	}
	if strings.Contains(f.logs.String(), "trace_id") || !strings.Contains(f.logs.String(), "operation failed") {
		t.Errorf("log %q: want the failure without trace ids", f.logs.String())
	}
}
