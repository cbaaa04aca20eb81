package cluster

import "time"

// Config tunes cluster mode; zero values mean the defaults.
type Config struct {
	// RedisURL is the Redis to share, e.g. redis://127.0.0.1:6379/0.
	RedisURL string
	// Prefix is put before every key and channel (default "ecb").
	Prefix string
	// Partitions is how many partitions the threads are spread over (default
	// 16); each is one subscription connection per node. All nodes of a
	// deployment must use the same number.
	Partitions int
	// ShardedPubSub uses SPUBLISH/SSUBSCRIBE (Redis Cluster 7).
	ShardedPubSub bool
	// NodeID names this node (default: random).
	NodeID string
	// HistorySize and HistoryTTL bound each thread's history (defaults 256, 5m).
	HistorySize int
	HistoryTTL  time.Duration
	// MetaTTL is how long an idle thread keeps its epoch and offset (default
	// 24h): past it, its next push starts a new epoch.
	MetaTTL time.Duration
	// Timeout bounds each Redis call (default 2s).
	Timeout time.Duration
	// ProbeInterval is how often each partition's subscription is probed
	// (default 2s); a partition whose probe has not come back within three
	// intervals makes the node not ready.
	ProbeInterval time.Duration
	// Heartbeat is how often the node refreshes its liveness key (default
	// 3s); DeadAfter is when other nodes take it for dead (default 10s).
	Heartbeat time.Duration
	DeadAfter time.Duration
}

func (c Config) withDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = "ecb"
	}
	if c.Partitions <= 0 {
		c.Partitions = 16
	}
	if c.HistorySize <= 0 {
		c.HistorySize = 256
	}
	if c.HistoryTTL <= 0 {
		c.HistoryTTL = 5 * time.Minute
	}
	if c.MetaTTL <= 0 {
		c.MetaTTL = 24 * time.Hour
	}
	if c.MetaTTL < c.HistoryTTL {
		c.MetaTTL = c.HistoryTTL
	}
	if c.Timeout <= 0 {
		c.Timeout = 2 * time.Second
	}
	if c.ProbeInterval <= 0 {
		c.ProbeInterval = 2 * time.Second
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = 3 * time.Second
	}
	if c.DeadAfter <= 0 {
		c.DeadAfter = 10 * time.Second
	}
	return c
}
