// Package limits bounds what one user, one connection and one client IP may
// ask of a node: operations per second per user and per connection (token
// buckets, golang.org/x/time/rate), connections per user, connections per
// node, and handshakes per second per IP. Refusals are client errors:
// rate_limited with a retry-after, or unavailable when the node is full.
//
// Buckets are kept per key in memory and dropped once idle long enough to be
// full again (dropping a full bucket changes nothing); Run, whose caller owns
// its goroutine, does that. Everything is safe for concurrent use.
package limits

import (
	"context"
	"fmt"
	"time"

	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/hub"
	"github.com/ecbridge/ecb/internal/periodic"
)

// Config holds the limits. Zero means the documented default; a negative
// value turns the limit off.
type Config struct {
	// OpsPerSecondPerUser is the sustained operation rate of one user over
	// all their connections (default 20), with bursts of OpsBurstPerUser (default 40).
	OpsPerSecondPerUser int `yaml:"opsPerSecondPerUser"`
	OpsBurstPerUser     int `yaml:"opsBurstPerUser"`
	// OpsPerSecondPerConnection is the rate of one connection (default 10),
	// with bursts of OpsBurstPerConnection (default 20).
	OpsPerSecondPerConnection int `yaml:"opsPerSecondPerConnection"`
	OpsBurstPerConnection     int `yaml:"opsBurstPerConnection"`
	// ConnectionsPerUser caps one user's sockets and streams (default 32),
	// as the Counter counts them: on every node in cluster mode.
	ConnectionsPerUser int `yaml:"connectionsPerUser"`
	// MaxConnections caps the connections of a node (default 50000): beyond
	// it new ones are refused with unavailable, and the others stay served.
	MaxConnections int `yaml:"maxConnections"`
	// HandshakesPerSecondPerIP is the rate of new connections and token
	// exchanges from one client IP (default 10), with bursts of
	// HandshakeBurstPerIP (default 40).
	HandshakesPerSecondPerIP int `yaml:"handshakesPerSecondPerIP"`
	HandshakeBurstPerIP      int `yaml:"handshakeBurstPerIP"`
}

// SetDefaults fills in the zero values.
func (c *Config) SetDefaults() {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.OpsPerSecondPerUser, 20)
	def(&c.OpsBurstPerUser, 40)
	def(&c.OpsPerSecondPerConnection, 10)
	def(&c.OpsBurstPerConnection, 20)
	def(&c.ConnectionsPerUser, 32)
	def(&c.MaxConnections, 50000)
	def(&c.HandshakesPerSecondPerIP, 10)
	def(&c.HandshakeBurstPerIP, 40)
}

// Validate reports limits whose burst is off while the rate is on, and the reverse.
func (c *Config) Validate() error {
	pairs := []struct {
		rateKey, burstKey string
		rate, burst       int
	}{
		{"limits.opsPerSecondPerUser", "limits.opsBurstPerUser", c.OpsPerSecondPerUser, c.OpsBurstPerUser},
		{"limits.opsPerSecondPerConnection", "limits.opsBurstPerConnection", c.OpsPerSecondPerConnection, c.OpsBurstPerConnection},
		{"limits.handshakesPerSecondPerIP", "limits.handshakeBurstPerIP", c.HandshakesPerSecondPerIP, c.HandshakeBurstPerIP},
	}
	for _, p := range pairs {
		if (p.rate < 0) != (p.burst < 0) {
			return fmt.Errorf("%s and %s: turn both off (negative) or neither", p.rateKey, p.burstKey)
		}
	}
	return nil
}

// Counter is what the connection limits read: the hub's counts.
type Counter interface {
	Connections() int
	UserConnections(userID string) int
}

// Limiter enforces the operation and connection limits; it is the
// ops.Limiter of a node.
type Limiter struct {
	cfg     Config
	counter Counter
	users   *Keyed[string]
	conns   *Keyed[hub.Conn]
}

// New returns a Limiter; cfg must have its defaults set.
func New(cfg Config, counter Counter) *Limiter {
	return &Limiter{
		cfg:     cfg,
		counter: counter,
		users:   NewKeyed[string](cfg.OpsPerSecondPerUser, cfg.OpsBurstPerUser, 0),
		conns:   NewKeyed[hub.Conn](cfg.OpsPerSecondPerConnection, cfg.OpsBurstPerConnection, 0),
	}
}

// AllowOp takes a token from the connection's bucket and the user's; the
// connection's is asked first, so that one noisy connection does not drain
// its user's bucket for the others.
func (l *Limiter) AllowOp(userID string, conn hub.Conn) error {
	now := time.Now()
	if conn != nil {
		if ok, retry := l.conns.Allow(conn, now); !ok {
			return Limited("too many operations on this connection", retry)
		}
	}
	if ok, retry := l.users.Allow(userID, now); !ok {
		return Limited("too many operations for this user", retry)
	}
	return nil
}

// AdmitConnection refuses a new connection beyond the per-user and per-node caps.
func (l *Limiter) AdmitConnection(userID string) error {
	if m := l.cfg.MaxConnections; m > 0 && l.counter.Connections() >= m {
		return apierr.New(apierr.Unavailable, "this node is at its connection limit: try again later or another node")
	}
	if m := l.cfg.ConnectionsPerUser; m > 0 && l.counter.UserConnections(userID) >= m {
		return &apierr.Error{Code: apierr.RateLimited, Message: fmt.Sprintf("at most %d connections per user", m), RetryAfter: 10 * time.Second}
	}
	return nil
}

// Full reports whether the node is at MaxConnections.
func (l *Limiter) Full() bool {
	return l.cfg.MaxConnections > 0 && l.counter.Connections() >= l.cfg.MaxConnections
}

// Sweep drops idle buckets.
func (l *Limiter) Sweep(now time.Time) {
	l.users.Sweep(now)
	l.conns.Sweep(now)
}

// Run sweeps every interval until ctx is done.
func (l *Limiter) Run(ctx context.Context, interval time.Duration) {
	periodic.Run(ctx, interval, func(now time.Time) { l.Sweep(now) })
}

// Limited is the rate_limited error with its retry-after (at least a second).
func Limited(msg string, retry time.Duration) *apierr.Error {
	return &apierr.Error{Code: apierr.RateLimited, Message: msg, RetryAfter: max(retry, time.Second)}
}
