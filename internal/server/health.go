package server

import "context"

// watchHealth exports the node's health as gauges (metrics.WatchHealth):
// the backend circuit, and in cluster mode the Redis probes.
func (s *Server) watchHealth() {
	var clusterReady func() error
	if s.cluster != nil {
		clusterReady = func() error { return s.cluster.Ready(context.Background()) } // bounded by cluster.timeout
	}
	s.metrics.WatchHealth(func() bool { return !s.backend.Healthy() }, clusterReady)
}
