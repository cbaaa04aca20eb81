package metrics

import "github.com/prometheus/client_golang/prometheus"

// WatchHealth exports, read at each scrape, ecb_backend_circuit_open (1
// while the backend circuit breaker is open) and, in cluster mode
// (clusterReady not nil), ecb_cluster_ready (1 while Redis answers and
// every subscription delivers its probes: what /readyz checks).
func (m *Metrics) WatchHealth(circuitOpen func() bool, clusterReady func() error) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ecb_backend_circuit_open", Help: "1 while the backend circuit breaker is open (calls fail at once, /readyz is 503).",
	}, func() float64 { return bool01(circuitOpen()) }))
	if clusterReady != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ecb_cluster_ready", Help: "1 while Redis answers and every subscription of this node delivers its probes.",
		}, func() float64 { return bool01(clusterReady() == nil) }))
	}
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
