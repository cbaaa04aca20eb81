package tracing

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/protobuf/encoding/protowire"
)

// exporter posts spans to an OTLP/HTTP collector as protobuf
// (ExportTraceServiceRequest of opentelemetry-proto, trace/v1), encoded here
// with protowire: the official otlptracehttp exporter links gRPC, which
// would double the binary and its cold build (docs/decisions.md#tracing).
// It is safe for concurrent use; the SDK's batch processor calls it from
// its one goroutine.
type exporter struct {
	url     string
	headers map[string]string
	client  *http.Client
}

var _ sdktrace.SpanExporter = (*exporter)(nil)

func newExporter(url string, headers map[string]string, timeout time.Duration) *exporter {
	return &exporter{url: url, headers: headers, client: &http.Client{Timeout: timeout}}
}

// ExportSpans posts one request with every span of the batch.
func (e *exporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if len(spans) == 0 {
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(encodeRequest(spans)))
	if err != nil {
		return fmt.Errorf("otlp: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	for k, v := range e.headers {
		req.Header.Set(k, v)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return fmt.Errorf("otlp: export %d spans: %w", len(spans), err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("otlp: export %d spans to %s: status %d", len(spans), e.url, resp.StatusCode)
	}
	return nil
}

// Shutdown has nothing to release: every export is one request.
func (e *exporter) Shutdown(context.Context) error { return nil }

// parseHeaders reads OTEL_EXPORTER_OTLP_HEADERS: key=value pairs separated
// by commas, values URL-decoded as the specification says (kept as given
// when they do not decode).
func parseHeaders(s string) map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" {
			continue
		}
		if d, err := url.PathUnescape(v); err == nil {
			v = d
		}
		out[k] = v
	}
	return out
}

// The field numbers of opentelemetry-proto (collector/trace/v1,
// trace/v1, resource/v1, common/v1).
const (
	reqResourceSpans = 1 // ExportTraceServiceRequest.resource_spans

	rsResource   = 1 // ResourceSpans.resource
	rsScopeSpans = 2 // ResourceSpans.scope_spans
	rsSchemaURL  = 3

	resAttributes = 1 // Resource.attributes

	ssScope = 1 // ScopeSpans.scope
	ssSpans = 2 // ScopeSpans.spans

	scopeName    = 1 // InstrumentationScope.name
	scopeVersion = 2

	spanTraceID      = 1
	spanSpanID       = 2
	spanTraceState   = 3
	spanParentSpanID = 4
	spanName         = 5
	spanKind         = 6
	spanStart        = 7 // fixed64 unix nanoseconds
	spanEnd          = 8
	spanAttributes   = 9
	spanDroppedAttrs = 10
	spanEvents       = 11
	spanStatus       = 15
	spanFlags        = 16 // fixed32

	eventTime       = 1
	eventName       = 2
	eventAttributes = 3

	statusMessage = 2
	statusCode    = 3

	kvKey   = 1
	kvValue = 2

	anyString = 1
	anyBool   = 2
	anyInt    = 3
	anyDouble = 4
	anyArray  = 5

	arrayValues = 1
)

// encodeRequest encodes spans as one ExportTraceServiceRequest, grouped by
// resource and instrumentation scope.
func encodeRequest(spans []sdktrace.ReadOnlySpan) []byte {
	type scopeKey struct{ name, version string }
	type group struct {
		res    []attribute.KeyValue
		schema string
		scopes map[scopeKey][]sdktrace.ReadOnlySpan
		order  []scopeKey
	}
	var groups []*group
	byRes := map[any]*group{}
	for _, s := range spans {
		r := s.Resource()
		var key any = r.Equivalent()
		g := byRes[key]
		if g == nil {
			g = &group{res: r.Attributes(), schema: r.SchemaURL(), scopes: map[scopeKey][]sdktrace.ReadOnlySpan{}}
			byRes[key] = g
			groups = append(groups, g)
		}
		sk := scopeKey{s.InstrumentationScope().Name, s.InstrumentationScope().Version}
		if _, ok := g.scopes[sk]; !ok {
			g.order = append(g.order, sk)
		}
		g.scopes[sk] = append(g.scopes[sk], s)
	}
	var out []byte
	for _, g := range groups {
		var rs []byte
		rs = appendMessage(rs, rsResource, appendAttrs(nil, resAttributes, g.res))
		for _, sk := range g.order {
			var ss, scope []byte
			scope = appendString(scope, scopeName, sk.name)
			scope = appendString(scope, scopeVersion, sk.version)
			ss = appendMessage(ss, ssScope, scope)
			for _, s := range g.scopes[sk] {
				ss = appendMessage(ss, ssSpans, encodeSpan(s))
			}
			rs = appendMessage(rs, rsScopeSpans, ss)
		}
		rs = appendString(rs, rsSchemaURL, g.schema)
		out = appendMessage(out, reqResourceSpans, rs)
	}
	return out
}

func encodeSpan(s sdktrace.ReadOnlySpan) []byte {
	sc := s.SpanContext()
	var b []byte
	tid, sid := sc.TraceID(), sc.SpanID()
	b = appendBytes(b, spanTraceID, tid[:])
	b = appendBytes(b, spanSpanID, sid[:])
	b = appendString(b, spanTraceState, sc.TraceState().String())
	if p := s.Parent(); p.SpanID().IsValid() {
		pid := p.SpanID()
		b = appendBytes(b, spanParentSpanID, pid[:])
	}
	b = appendString(b, spanName, s.Name())
	b = protowire.AppendTag(b, spanKind, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(s.SpanKind())) // trace.SpanKind has OTLP's numbers
	b = protowire.AppendTag(b, spanStart, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, uint64(s.StartTime().UnixNano()))
	b = protowire.AppendTag(b, spanEnd, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, uint64(s.EndTime().UnixNano()))
	b = appendAttrs(b, spanAttributes, s.Attributes())
	if n := s.DroppedAttributes(); n > 0 {
		b = protowire.AppendTag(b, spanDroppedAttrs, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(n))
	}
	for _, ev := range s.Events() {
		var e []byte
		e = protowire.AppendTag(e, eventTime, protowire.Fixed64Type)
		e = protowire.AppendFixed64(e, uint64(ev.Time.UnixNano()))
		e = appendString(e, eventName, ev.Name)
		e = appendAttrs(e, eventAttributes, ev.Attributes)
		b = appendMessage(b, spanEvents, e)
	}
	var st []byte
	st = appendString(st, statusMessage, s.Status().Description)
	code := uint64(0) // STATUS_CODE_UNSET
	switch s.Status().Code {
	case codes.Ok:
		code = 1
	case codes.Error:
		code = 2
	}
	if code != 0 {
		st = protowire.AppendTag(st, statusCode, protowire.VarintType)
		st = protowire.AppendVarint(st, code)
	}
	b = appendMessage(b, spanStatus, st)
	b = protowire.AppendTag(b, spanFlags, protowire.Fixed32Type)
	b = protowire.AppendFixed32(b, uint32(sc.TraceFlags())|0x100) // the sampled bit, and "has is_remote" (unset: local parent)
	return b
}

func appendAttrs(b []byte, field protowire.Number, attrs []attribute.KeyValue) []byte {
	for _, kv := range attrs {
		var e []byte
		e = appendString(e, kvKey, string(kv.Key))
		e = appendMessage(e, kvValue, encodeValue(kv.Value))
		b = appendMessage(b, field, e)
	}
	return b
}

func encodeValue(v attribute.Value) []byte {
	var b []byte
	switch v.Type() {
	case attribute.BOOL:
		b = protowire.AppendTag(b, anyBool, protowire.VarintType)
		b = protowire.AppendVarint(b, protowire.EncodeBool(v.AsBool()))
	case attribute.INT64:
		b = protowire.AppendTag(b, anyInt, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(v.AsInt64()))
	case attribute.FLOAT64:
		b = protowire.AppendTag(b, anyDouble, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, math.Float64bits(v.AsFloat64()))
	case attribute.STRINGSLICE:
		var arr []byte
		for _, s := range v.AsStringSlice() {
			var e []byte
			e = protowire.AppendTag(e, anyString, protowire.BytesType)
			e = protowire.AppendString(e, s)
			arr = appendMessage(arr, arrayValues, e)
		}
		b = appendMessage(b, anyArray, arr)
	default: // STRING, and the other slices as their text
		b = protowire.AppendTag(b, anyString, protowire.BytesType)
		b = protowire.AppendString(b, v.String())
	}
	return b
}

func appendMessage(b []byte, field protowire.Number, m []byte) []byte {
	b = protowire.AppendTag(b, field, protowire.BytesType)
	return protowire.AppendBytes(b, m)
}

func appendBytes(b []byte, field protowire.Number, v []byte) []byte {
	return appendMessage(b, field, v)
}

// appendString appends a string field, omitted when empty (proto3).
func appendString(b []byte, field protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, field, protowire.BytesType)
	return protowire.AppendString(b, s)
}
