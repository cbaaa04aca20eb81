package tracing_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/ecbridge/ecb/internal/tracing"
)

// TestEncodeDecodesWithTheOfficialProto: what ECB's exporter encodes, the
// opentelemetry-proto Go types decode to the same spans.
func TestEncodeDecodesWithTheOfficialProto(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "svc"))))
	tr := tp.Tracer("scope-a", trace.WithInstrumentationVersion("v9"))
	ctx, parent := tr.Start(context.Background(), "parent", trace.WithSpanKind(trace.SpanKindServer))
	_, child := tr.Start(ctx, "child", trace.WithSpanKind(trace.SpanKindClient))
	child.SetAttributes(attribute.String("s", "x"), attribute.Int("i", -7), attribute.Bool("b", true),
		attribute.Float64("f", 0.5), attribute.StringSlice("ss", []string{"a", "b"}))
	child.AddEvent("ev", trace.WithAttributes(attribute.String("k", "v")))
	child.SetStatus(codes.Error, "not_found")
	child.End()
	parent.End()
	spans := rec.Ended()

	var req collectortrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(tracing.EncodeRequest(spans), &req); err != nil {
		t.Fatal(err)
	}
	if len(req.ResourceSpans) != 1 || len(req.ResourceSpans[0].ScopeSpans) != 1 {
		t.Fatalf("groups: %v", &req)
	}
	rs := req.ResourceSpans[0]
	if a := rs.Resource.Attributes; len(a) != 1 || a[0].Key != "service.name" || a[0].Value.GetStringValue() != "svc" {
		t.Errorf("resource %v", rs.Resource)
	}
	ss := rs.ScopeSpans[0]
	if ss.Scope.Name != "scope-a" || ss.Scope.Version != "v9" || len(ss.Spans) != 2 {
		t.Fatalf("scope spans %v", ss)
	}
	byName := map[string]*tracev1.Span{}
	for _, s := range ss.Spans {
		byName[s.Name] = s
	}
	c, p := byName["child"], byName["parent"]
	if c == nil || p == nil {
		t.Fatalf("spans %v", ss.Spans)
	}
	sc := spans[0].SpanContext() // the child ended first
	if tid := sc.TraceID(); string(c.TraceId) != string(tid[:]) || string(c.ParentSpanId) != string(p.SpanId) || len(p.ParentSpanId) != 0 {
		t.Errorf("ids: child %x parent-of-child %x parent %x", c.TraceId, c.ParentSpanId, p.SpanId)
	}
	if c.Kind != tracev1.Span_SPAN_KIND_CLIENT || p.Kind != tracev1.Span_SPAN_KIND_SERVER {
		t.Errorf("kinds %v %v", c.Kind, p.Kind)
	}
	if c.Status.GetCode() != tracev1.Status_STATUS_CODE_ERROR || c.Status.GetMessage() != "not_found" || p.Status.GetCode() != tracev1.Status_STATUS_CODE_UNSET {
		t.Errorf("statuses %v %v", c.Status, p.Status)
	}
	if c.StartTimeUnixNano == 0 || c.EndTimeUnixNano < c.StartTimeUnixNano || c.Flags&0xff != 1 {
		t.Errorf("times %d..%d flags %x", c.StartTimeUnixNano, c.EndTimeUnixNano, c.Flags)
	}
	got := map[string]string{}
	for _, kv := range c.Attributes {
		got[kv.Key] = kv.Value.String()
	}
	checks := map[string]bool{
		"s":  c.Attributes[0].Value.GetStringValue() == "x",
		"i":  c.Attributes[1].Value.GetIntValue() == -7,
		"b":  c.Attributes[2].Value.GetBoolValue(),
		"f":  c.Attributes[3].Value.GetDoubleValue() == 0.5,
		"ss": len(c.Attributes[4].Value.GetArrayValue().GetValues()) == 2 && c.Attributes[4].Value.GetArrayValue().GetValues()[1].GetStringValue() == "b",
	}
	for k, ok := range checks {
		if !ok {
			t.Errorf("attribute %s decoded as %v", k, got)
		}
	}
	if len(c.Events) != 1 || c.Events[0].Name != "ev" || c.Events[0].Attributes[0].Value.GetStringValue() != "v" || c.Events[0].TimeUnixNano == 0 {
		t.Errorf("events %v", c.Events)
	}
}
