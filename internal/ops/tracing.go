package ops

import (
	"context"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/reqid"
	"github.com/ecbridge/ecb/internal/tracing"
)

// SetTracerProvider makes every operation record a span (named by the
// operation) with tp; nil turns tracing off, the default. Call it before
// the Service serves.
func (s *Service) SetTracerProvider(tp trace.TracerProvider) {
	if tp == nil {
		s.tracer = nil
		return
	}
	s.tracer = tp.Tracer(tracing.Scope)
}

// startSpan starts the span of an operation; off, it returns ctx and nil.
func (s *Service) startSpan(ctx context.Context, op string, c Caller) (context.Context, trace.Span) {
	if s.tracer == nil {
		return ctx, nil
	}
	ctx, span := s.tracer.Start(ctx, op, trace.WithSpanKind(trace.SpanKindServer))
	if span.IsRecording() {
		span.SetAttributes(tracing.AttrOp.String(op))
		if c.User != nil {
			span.SetAttributes(tracing.AttrUserID.String(c.User.ID))
		}
		if id := reqid.From(ctx); id != "" {
			span.SetAttributes(tracing.AttrRequestID.String(id))
		}
	}
	return ctx, span
}

// endSpan ends an operation's span with its outcome.
func endSpan(span trace.Span, err error) {
	if span == nil {
		return
	}
	if err != nil && span.IsRecording() {
		code := string(apierr.From(err).Code)
		span.SetAttributes(tracing.AttrErrorCode.String(code))
		span.SetStatus(codes.Error, code)
	}
	span.End()
}

// traceThread notes on the operation's span the thread it acts in.
func (s *Service) traceThread(ctx context.Context, threadID string) {
	if s.tracer == nil || threadID == "" {
		return
	}
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(tracing.AttrThreadID.String(threadID))
	}
}
