package metrics

// Forwarded counts a request of a session or stream held by another node
// (cluster mode, no sticky sessions) by result: forwarded to its owner,
// owner_gone (served here, where the id is unknown) or owner_failed (the
// owner did not answer; served here too).
func (m *Metrics) Forwarded(result string) { m.forwarded.WithLabelValues(result).Inc() }
