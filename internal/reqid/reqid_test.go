package reqid_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/ecbridge/ecb/internal/reqid"
)

func TestMiddlewareAndLogHandler(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(reqid.Handler(slog.NewTextHandler(&logs, nil)))
	h := reqid.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.InfoContext(r.Context(), "handled")
	}))
	cases := []struct{ in, want string }{
		{"abc-123", "abc-123"},
		{"evil\nline", ""}, // not sane: replaced by a random one
		{"", ""},
	}
	for _, tc := range cases {
		logs.Reset()
		req := httptest.NewRequest("GET", "/", nil)
		if tc.in != "" {
			req.Header.Set(reqid.Header, tc.in)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		got := rec.Header().Get(reqid.Header)
		if tc.want != "" && got != tc.want || got == "" || strings.ContainsAny(got, "\n\r ") {
			t.Errorf("in %q: response id %q", tc.in, got)
		}
		if !strings.Contains(logs.String(), "request_id="+got) {
			t.Errorf("in %q: log %q lacks request_id=%s", tc.in, logs.String(), got)
		}
	}
}

// TestLogHandlerAddsTraceIDs: a record logged within a valid span context
// gets its trace_id and span_id beside request_id; without one, neither.
func TestLogHandlerAddsTraceIDs(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(reqid.Handler(slog.NewTextHandler(&logs, nil)))
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(reqid.With(context.Background(), "r1"),
		trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	log.InfoContext(ctx, "traced")
	if got := logs.String(); !strings.Contains(got, "request_id=r1 trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7") {
		t.Errorf("log %q lacks the trace ids", got)
	}
	logs.Reset()
	log.InfoContext(reqid.With(context.Background(), "r2"), "untraced")
	if got := logs.String(); strings.Contains(got, "trace_id") || !strings.Contains(got, "request_id=r2") {
		t.Errorf("log %q: want request_id and no trace ids", got)
	}
}
