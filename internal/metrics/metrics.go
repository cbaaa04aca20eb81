// Package metrics owns ECB's Prometheus metrics. One Metrics value implements
// the small observer interfaces that the hub, the operations, the backend
// client and the transports declare, so none of them imports Prometheus.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the collectors of one ECB process.
type Metrics struct {
	reg         *prometheus.Registry
	connections *prometheus.GaugeVec
	operations  *prometheus.CounterVec
	opLatency   *prometheus.HistogramVec
	opOwn       *prometheus.HistogramVec
	backend     *prometheus.HistogramVec
	delivered   prometheus.Counter
	dropped     prometheus.Counter
	forwarded   *prometheus.CounterVec
}

// New registers the collectors on a fresh registry (with the Go and process collectors).
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ecb_connections", Help: "Open client connections by transport.",
		}, []string{"transport"}),
		operations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ecb_operations_total", Help: "Client operations by name and outcome (ok or an error code).",
		}, []string{"op", "outcome"}),
		opLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ecb_operation_duration_seconds", Help: "Client operation latency.", Buckets: prometheus.DefBuckets,
		}, []string{"op"}),
		opOwn: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ecb_operation_own_duration_seconds",
			Help:    "ECB's own share of a successful client operation: its latency minus its backend calls.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"op"}),
		backend: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ecb_backend_call_duration_seconds", Help: "Backend contract call latency by call and outcome.", Buckets: prometheus.DefBuckets,
		}, []string{"call", "outcome"}),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ecb_pushes_delivered_total", Help: "Pushes queued to client connections.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ecb_slow_consumers_total", Help: "Connections cut because they could not keep up with their pushes.",
		}),
		forwarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ecb_forwarded_requests_total", Help: "Requests of sessions and streams held by another node, by result.",
		}, []string{"result"}),
	}
	m.reg.MustRegister(m.connections, m.operations, m.opLatency, m.opOwn, m.backend, m.delivered, m.dropped, m.forwarded,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, result := range []string{"forwarded", "owner_gone", "owner_failed"} {
		m.forwarded.WithLabelValues(result) // exported from the start, at 0
	}
	return m
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Delivered implements hub.Metrics.
func (m *Metrics) Delivered(n int) { m.delivered.Add(float64(n)) }

// Dropped implements hub.Metrics.
func (m *Metrics) Dropped(n int) { m.dropped.Add(float64(n)) }

// Operation implements ops.Observer.
func (m *Metrics) Operation(op, outcome string, d time.Duration) {
	m.operations.WithLabelValues(op, outcome).Inc()
	m.opLatency.WithLabelValues(op).Observe(d.Seconds())
}

// OperationOwn implements ops.Observer; only successful operations count
// (a refused one rarely reaches the backend).
func (m *Metrics) OperationOwn(op, outcome string, d time.Duration) {
	if outcome == "ok" {
		m.opOwn.WithLabelValues(op).Observe(max(d, 0).Seconds())
	}
}

// BackendCall implements backend.Observer.
func (m *Metrics) BackendCall(call, outcome string, d time.Duration) {
	m.backend.WithLabelValues(call, outcome).Observe(d.Seconds())
}

// Transport returns the connection gauge of one transport (sse, socketio).
func (m *Metrics) Transport(name string) Gauge { return Gauge{m.connections.WithLabelValues(name)} }

// Gauge counts the open connections of a transport.
type Gauge struct{ g prometheus.Gauge }

// StreamOpened implements sse.Metrics.
func (g Gauge) StreamOpened() { g.g.Inc() }

// StreamClosed implements sse.Metrics.
func (g Gauge) StreamClosed() { g.g.Dec() }
