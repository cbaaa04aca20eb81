package server

import (
	"context"
	"time"

	"github.com/ecbridge/ecb/internal/hub"
	"github.com/ecbridge/ecb/internal/limits"
	"github.com/ecbridge/ecb/internal/presence"
)

// connCounter is what the connection limits count: this node's connections
// (limits.maxConnections) and a user's connections on every node
// (limits.connectionsPerUser), the other nodes' as their last presence
// write in Redis says. When Redis cannot be read, it counts this node's
// only, so that a Redis outage does not refuse every connection.
type connCounter struct {
	hub      *hub.Hub
	presence *presence.Service
	timeout  time.Duration
}

var _ limits.Counter = connCounter{}

func (c connCounter) Connections() int { return c.hub.Connections() }

func (c connCounter) UserConnections(userID string) int {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	n, err := c.presence.Connections(ctx, userID)
	if err != nil {
		return c.hub.UserConnections(userID)
	}
	return n
}

// connCounter returns the counter of the connection limits.
func (s *Server) connCounter() limits.Counter {
	return connCounter{hub: s.hub, presence: s.ops.Presence(), timeout: s.cfg.Cluster.Timeout}
}
