package server_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is an in-process OTLP/HTTP trace receiver: it accepts
// POST /v1/traces (protobuf) and keeps the decoded requests.
type otlpReceiver struct {
	mu       sync.Mutex
	requests []*collectortrace.ExportTraceServiceRequest
	bad      []string
	apiKeys  []string // X-Api-Key of each request
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(r.Body)
	o.mu.Lock()
	defer o.mu.Unlock()
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" || err != nil {
		o.bad = append(o.bad, r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Type"))
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	var req collectortrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(raw, &req); err != nil {
		o.bad = append(o.bad, "undecodable: "+err.Error())
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	o.requests = append(o.requests, &req)
	o.apiKeys = append(o.apiKeys, r.Header.Get("X-Api-Key"))
	w.Header().Set("Content-Type", "application/x-protobuf")
	resp, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	_, _ = w.Write(resp)
}

// TestOTLPExportFromConfig: a node with tracing.otlpEndpoint set exports
// its spans to that collector over OTLP/HTTP: after a getUserToken and a
// getContacts, and the node's shutdown (which flushes), the receiver has
// both operations' spans and their backend calls', with the configured
// service.name, in one trace per operation.
func TestOTLPExportFromConfig(t *testing.T) {
	rcv := &otlpReceiver{}
	collector := httptest.NewServer(rcv)
	defer collector.Close()
	exportTwoOperations(t, rcv, "ecb-test", startNode(t, "tracing.otlpEndpoint="+collector.URL, "tracing.serviceName=ecb-test"))
}

// TestOTLPExportFromEnvironment: with no tracing.otlpEndpoint, the standard
// OTEL_EXPORTER_OTLP_ENDPOINT turns tracing on (spans to its /v1/traces),
// with the headers of OTEL_EXPORTER_OTLP_HEADERS (URL-encoded values).
func TestOTLPExportFromEnvironment(t *testing.T) {
	rcv := &otlpReceiver{}
	collector := httptest.NewServer(rcv)
	defer collector.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=s%20cret,other=1")
	exportTwoOperations(t, rcv, "ecb", startNode(t))
	for _, k := range rcv.apiKeys {
		if k != "s cret" {
			t.Errorf("X-Api-Key %q, want the decoded OTEL_EXPORTER_OTLP_HEADERS value", k)
		}
	}
}

// exportTwoOperations runs getUserToken and getContacts on n, stops it and
// checks what rcv received.
func exportTwoOperations(t *testing.T, rcv *otlpReceiver, serviceName string, n *testNode) {
	t.Helper()
	tok := n.userToken(t, "alice")
	do(t, http.MethodGet, n.URL+"/v1/contacts", tok, nil, nil)
	n.stop() // flushes the batch

	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.bad) > 0 {
		t.Errorf("the receiver refused %v", rcv.bad)
	}
	if len(rcv.requests) == 0 {
		t.Fatal("no OTLP export reached the receiver")
	}
	type span struct {
		name, trace, parent, id string
		kind                    tracev1.Span_SpanKind
		attrs                   map[string]string
		start, end              uint64
	}
	var spans []span
	for _, req := range rcv.requests {
		for _, rs := range req.ResourceSpans {
			service := ""
			for _, kv := range rs.Resource.GetAttributes() {
				if kv.Key == "service.name" {
					service = kv.Value.GetStringValue()
				}
			}
			if service != serviceName {
				t.Errorf("service.name %q, want %s (tracing.serviceName)", service, serviceName)
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					attrs := map[string]string{}
					for _, kv := range s.Attributes {
						attrs[kv.Key] = kv.Value.String()
					}
					spans = append(spans, span{s.Name, string(s.TraceId), string(s.ParentSpanId), string(s.SpanId), s.Kind, attrs, s.StartTimeUnixNano, s.EndTimeUnixNano})
				}
			}
		}
	}
	var names []string
	for _, s := range spans {
		names = append(names, s.name)
	}
	for _, want := range []string{"getUserToken", "backend authenticate", "getContacts", "backend getContacts"} {
		if !slices.Contains(names, want) {
			t.Errorf("no span %q among %v", want, names)
		}
	}
	find := func(name string) span {
		for _, s := range spans {
			if s.name == name {
				return s
			}
		}
		return span{}
	}
	op, call := find("getContacts"), find("backend getContacts")
	if len(op.trace) != 16 || call.trace != op.trace || call.parent != op.id || op.parent != "" {
		t.Errorf("backend getContacts is not getContacts' child in its trace: %+v, %+v", call, op)
	}
	if op.kind != tracev1.Span_SPAN_KIND_SERVER || call.kind != tracev1.Span_SPAN_KIND_CLIENT {
		t.Errorf("kinds %v, %v", op.kind, call.kind)
	}
	if !strings.Contains(op.attrs["ecb.user_id"], `"alice"`) || !strings.Contains(call.attrs["http.response.status_code"], "200") {
		t.Errorf("attributes %v, %v", op.attrs, call.attrs)
	}
	if op.start == 0 || op.end < op.start || call.start < op.start || call.end > op.end {
		t.Errorf("times: op %d..%d, call %d..%d", op.start, op.end, call.start, call.end)
	}
}
