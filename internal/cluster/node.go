package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ecbridge/ecb/internal/hub"
	"github.com/ecbridge/ecb/internal/periodic"
)

// Node is this process's membership of a cluster: one Redis client, the
// Broker and Controller the hub uses, and the probes that tell whether the
// subscriptions still deliver.
type Node struct {
	cfg        Config
	rdb        *redis.Client
	log        *slog.Logger
	Broker     *Broker
	Controller *Controller
	// Presence is the presence.Store of the node's users; bind it
	// (presence.Service.SetStore) before Start.
	Presence *Presence
	peers    *peers

	wg      sync.WaitGroup
	cancel  context.CancelFunc
	started chan struct{}

	mu    sync.Mutex      // guards extra
	extra []*redis.Client // clients of the stores built on the node (SupportShare), closed with it
	close sync.Once
}

// Open connects to the Redis of cfg.RedisURL and checks that it answers.
// Nothing runs until Start.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Node, error) {
	cfg = cfg.withDefaults()
	if cfg.NodeID == "" {
		cfg.NodeID = hub.NewEpoch()
	}
	if log == nil {
		log = slog.Default()
	}
	opt, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("cluster: redisURL: %w", err)
	}
	// Pub/sub connections (one per partition, and the control channel)
	// come on top of the pool.
	opt.PoolSize = max(opt.PoolSize, 32)
	opt.ReadTimeout, opt.WriteTimeout = cfg.Timeout, cfg.Timeout
	rdb := redis.NewClient(opt)
	pctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("cluster: redis at %s does not answer: %w", opt.Addr, err)
	}
	n := &Node{cfg: cfg, rdb: rdb, log: log, started: make(chan struct{})}
	n.Broker = newBroker(cfg, rdb, log)
	n.Controller = newController(cfg, rdb, log)
	n.Presence = newPresence(cfg, rdb, log)
	n.Controller.pres = n.Presence
	n.peers = newPeers(cfg, rdb, log)
	return n, nil
}

// ID returns the node's id.
func (n *Node) ID() string { return n.cfg.NodeID }

// Tag returns the node's tag (NodeTag of its id): the ids of the sessions
// and streams it holds start with it.
func (n *Node) Tag() string { return n.peers.tag }

// Advertise sets the URL at which the other nodes reach this one (for
// requests of sessions it holds); call it before Start.
func (n *Node) Advertise(url string) { n.peers.advertise(url) }

// PeerURL returns the advertised URL of the live node with tag, or
// ErrPeerGone.
func (n *Node) PeerURL(ctx context.Context, tag string) (string, error) {
	return n.peers.lookup(ctx, tag)
}

// PeerGone tells that the node with tag did not answer: it is taken for
// gone (PeerURL answers ErrPeerGone) until its entry would have expired.
func (n *Node) PeerGone(tag string) { n.peers.gone(tag) }

// Redis returns the node's Redis client (for the stores built on it).
func (n *Node) Redis() *redis.Client { return n.rdb }

// Prefix returns the prefix of every key and channel.
func (n *Node) Prefix() string { return n.cfg.Prefix }

// Start opens the subscriptions and starts the readers and probes. The hub
// must be bound (hub.New with the Broker and Controller) first. Close stops
// everything Start started.
func (n *Node) Start(ctx context.Context) {
	ctx, n.cancel = context.WithCancel(ctx)
	_ = n.Broker.start(ctx, &n.wg)
	n.Controller.start(ctx, &n.wg)
	n.wg.Go(func() { n.Presence.run(ctx) })
	n.wg.Go(func() { n.peers.run(ctx) })
	n.wg.Go(func() {
		probe := func(time.Time) {
			n.Broker.probe(ctx)
			n.Broker.heal(ctx)
			n.Controller.probe(ctx)
		}
		probe(time.Now())
		periodic.Run(ctx, n.cfg.ProbeInterval, probe)
	})
	close(n.started)
}

// Ready reports whether the node can serve: Redis answers and every
// subscription delivered its probe within three probe intervals.
func (n *Node) Ready(ctx context.Context) error {
	select {
	case <-n.started:
	default:
		return errors.New("cluster: not started")
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	if err := n.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("cluster: redis does not answer: %w", err)
	}
	now := time.Now()
	if err := n.Broker.ready(now); err != nil {
		return err
	}
	return n.Controller.ready(now, 3*n.cfg.ProbeInterval)
}

// Close stops the readers and probes, removes this node's presence (the
// goodbye of an orderly stop; a node that dies is cleaned by the others)
// and closes the Redis connections.
func (n *Node) Close() { n.stop(true) }

func (n *Node) stop(goodbye bool) {
	n.close.Do(func() {
		if n.cancel != nil {
			n.cancel()
		}
		n.Broker.close()
		n.Controller.close()
		n.wg.Wait()
		if goodbye && n.cancel != nil {
			n.Presence.leave(context.Background())
			n.peers.leave(context.Background())
		}
		_ = n.rdb.Close()
		n.mu.Lock()
		extra := n.extra
		n.extra = nil
		n.mu.Unlock()
		for _, c := range extra {
			_ = c.Close()
		}
	})
}

// DeletePrefix deletes every key under prefix: what the tests and the
// benchmarks that run nodes under a prefix of their own leave behind.
func DeletePrefix(ctx context.Context, rdb *redis.Client, prefix string) error {
	it := rdb.Scan(ctx, 0, prefix+":*", 1000).Iterator()
	var keys []string
	for it.Next(ctx) {
		keys = append(keys, it.Val())
	}
	for chunk := range slices.Chunk(keys, 500) {
		if err := rdb.Del(ctx, chunk...).Err(); err != nil {
			return fmt.Errorf("cluster: delete keys under %s: %w", prefix, err)
		}
	}
	return it.Err()
}
