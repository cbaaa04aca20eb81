package server

import (
	"context"
	"os"
	"time"

	"go.opentelemetry.io/otel"

	"github.com/ecbridge/ecb/internal/tracing"
)

// startTracing starts the tracer provider of tracing.* (nothing when it is
// off) and hands it to the backend client and the operations, before they
// serve. The returned stop flushes the spans still buffered and ends the
// exporter: Run calls it last, as it returns.
func (s *Server) startTracing() (stop func(), err error) {
	instance := s.cfg.Cluster.NodeName
	if s.cluster != nil {
		instance = s.cluster.ID()
	}
	p, err := tracing.Start(s.cfg.Tracing, instance, os.Getenv)
	if err != nil {
		return nil, err
	}
	tp := p.TracerProvider()
	if tp == nil {
		return func() {}, nil
	}
	// The SDK reports export failures (a collector that is down) here.
	log := s.log
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("tracing: export failed", "endpoint", p.Endpoint(), "err", err)
	}))
	s.backend.SetTracerProvider(tp)
	s.ops.SetTracerProvider(tp)
	s.log.Info("tracing on", "endpoint", p.Endpoint(), "sampleRatio", s.cfg.Tracing.SampleRatio)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.Shutdown(ctx); err != nil {
			s.log.Warn("tracing: last flush failed", "err", err)
		}
	}, nil
}
