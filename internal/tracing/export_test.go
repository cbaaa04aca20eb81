package tracing

import sdktrace "go.opentelemetry.io/otel/sdk/trace"

// EncodeRequest is encodeRequest, for the tests.
func EncodeRequest(spans []sdktrace.ReadOnlySpan) []byte { return encodeRequest(spans) }
