package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ecbridge/ecb/internal/hub"
)

// Controller is the Redis hub.Controller: commands go to every node over one
// channel, in the order each node sent them.
type Controller struct {
	rdb     *redis.Client
	log     *slog.Logger
	node    string
	channel string
	timeout time.Duration
	sink    hub.Sink
	pres    *Presence // gets the presence parts of the messages
	ps      *redis.PubSub
	lastRx  atomic.Int64 // unix nanos of this node's last probe seen
	// probeGap is how late a probe may come back before the reader takes
	// the subscription for one that may have missed messages.
	probeGap time.Duration
	// access is the node's AccessStore, fed by the reader (nil: none). It is
	// set before start.
	access *AccessStore
}

var (
	_ hub.BatchController = (*Controller)(nil)
	_ hub.BrokerBinder    = (*Controller)(nil)
)

// controlMessage is what travels on the control channel.
type controlMessage struct {
	Node  string       `json:"n"`
	Cmd   *hub.Command `json:"c,omitempty"`
	Probe bool         `json:"p,omitempty"`
	// Access names an entry of the AccessStore that changed; it travels
	// before the commands of the same Server API call.
	Access *accessChange `json:"a,omitempty"`
	// Pres is a change of a user's presence (contributeScript), Rel
	// relationships a node noted (presence_redis.go).
	Pres json.RawMessage `json:"pr,omitempty"`
	Rel  json.RawMessage `json:"rel,omitempty"`
}

func newController(cfg Config, rdb *redis.Client, log *slog.Logger) *Controller {
	return &Controller{rdb: rdb, log: log, node: cfg.NodeID, channel: cfg.Prefix + ":ctl", timeout: cfg.Timeout, probeGap: 3 * cfg.ProbeInterval}
}

// Bind implements hub.BrokerBinder.
func (c *Controller) Bind(s hub.Sink) { c.sink = s }

// Send implements hub.Controller.
func (c *Controller) Send(ctx context.Context, cmd hub.Command) error {
	return c.publish(ctx, controlMessage{Node: c.node, Cmd: &cmd})
}

// SendAll implements hub.BatchController: the commands in one pipeline on
// one connection, so in their order, for one round trip.
func (c *Controller) SendAll(ctx context.Context, cmds []hub.Command) error {
	msgs := make([][]byte, len(cmds))
	for i := range cmds {
		b, err := json.Marshal(controlMessage{Node: c.node, Cmd: &cmds[i]})
		if err != nil {
			return fmt.Errorf("cluster: encode command: %w", err)
		}
		msgs[i] = b
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	_, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, b := range msgs {
			p.Publish(ctx, c.channel, b)
		}
		return nil
	})
	if err != nil {
		return unavailable("commands", err)
	}
	return nil
}

func (c *Controller) publish(ctx context.Context, m controlMessage) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("cluster: encode command: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if err := c.rdb.Publish(ctx, c.channel, b).Err(); err != nil {
		return unavailable("command", err)
	}
	return nil
}

func (c *Controller) start(ctx context.Context, wg *sync.WaitGroup) {
	c.ps = c.rdb.Subscribe(ctx, c.channel)
	msgs := c.ps.ChannelWithSubscriptions(redis.WithChannelSize(4096), redis.WithChannelHealthCheckInterval(time.Second))
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case m, ok := <-msgs:
				if !ok {
					return
				}
				switch m := m.(type) {
				case *redis.Subscription:
					// The first subscription, or one again after a lost
					// connection, whose messages meanwhile are gone.
					if m.Kind == "subscribe" && c.access != nil {
						c.access.subscribed(ctx)
					}
				case *redis.Message:
					c.handle(ctx, m.Payload)
				}
			}
		}
	})
}

func (c *Controller) handle(ctx context.Context, payload string) {
	var m controlMessage
	if err := json.Unmarshal([]byte(payload), &m); err != nil {
		c.log.Warn("cluster: malformed command", "err", err)
		return
	}
	switch {
	case m.Probe:
		if m.Node == c.node {
			now := time.Now().UnixNano()
			last := c.lastRx.Swap(now)
			if c.access != nil {
				c.access.probed(ctx, last != 0 && time.Duration(now-last) > c.probeGap)
			}
		}
	case m.Access != nil:
		// Every node reads the entry back, the writer too: two writes of
		// one entry end as Redis has them.
		if c.access != nil {
			c.access.changed(ctx, *m.Access)
		}
	case m.Pres != nil || m.Rel != nil:
		if c.pres != nil {
			c.pres.handle(m)
		}
	case m.Node == c.node || m.Cmd == nil:
		// This node applied its own command when it sent it.
	default:
		c.sink.HandleCommand(*m.Cmd)
	}
}

func (c *Controller) probe(ctx context.Context) {
	if err := c.publish(ctx, controlMessage{Node: c.node, Probe: true}); err != nil {
		c.log.Warn("cluster: control probe not published", "err", err)
	}
}

func (c *Controller) ready(now time.Time, limit time.Duration) error {
	rx := c.lastRx.Load()
	if rx == 0 || now.Sub(time.Unix(0, rx)) > limit {
		return fmt.Errorf("%w (control channel)", errNotDelivering)
	}
	if c.access != nil {
		return c.access.ready()
	}
	return nil
}

func (c *Controller) close() {
	if c.ps != nil {
		_ = c.ps.Close()
	}
}
