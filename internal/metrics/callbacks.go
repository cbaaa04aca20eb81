package metrics

import "github.com/prometheus/client_golang/prometheus"

// CallbackFailures counts the backend callbacks that finally failed; it is
// a callbacks.Observer.
type CallbackFailures struct{ c *prometheus.CounterVec }

// CallbackFailures registers ecb_callbacks_failed_total; call it once.
func (m *Metrics) CallbackFailures() CallbackFailures {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ecb_callbacks_failed_total",
		Help: "Backend callbacks given up by event type and reason (gave_up, queue_full, shutdown; message.offline also batches_full, members_unknown, presence_unavailable).",
	}, []string{"type", "reason"})
	m.reg.MustRegister(c)
	return CallbackFailures{c}
}

// CallbackFailed counts one event that was not delivered.
func (f CallbackFailures) CallbackFailed(eventType, reason string) {
	f.c.WithLabelValues(eventType, reason).Inc()
}
