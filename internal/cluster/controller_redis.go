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
}

var (
	_ hub.Controller   = (*Controller)(nil)
	_ hub.BrokerBinder = (*Controller)(nil)
)

// controlMessage is what travels on the control channel.
type controlMessage struct {
	Node  string       `json:"n"`
	Cmd   *hub.Command `json:"c,omitempty"`
	Probe bool         `json:"p,omitempty"`
	// Pres is a change of a user's presence (contributeScript), Rel
	// relationships a node noted (presence_redis.go).
	Pres json.RawMessage `json:"pr,omitempty"`
	Rel  json.RawMessage `json:"rel,omitempty"`
}

func newController(cfg Config, rdb *redis.Client, log *slog.Logger) *Controller {
	return &Controller{rdb: rdb, log: log, node: cfg.NodeID, channel: cfg.Prefix + ":ctl", timeout: cfg.Timeout}
}

// Bind implements hub.BrokerBinder.
func (c *Controller) Bind(s hub.Sink) { c.sink = s }

// Send implements hub.Controller.
func (c *Controller) Send(ctx context.Context, cmd hub.Command) error {
	return c.publish(ctx, controlMessage{Node: c.node, Cmd: &cmd})
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
	msgs := c.ps.Channel(redis.WithChannelSize(4096), redis.WithChannelHealthCheckInterval(time.Second))
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case m, ok := <-msgs:
				if !ok {
					return
				}
				c.handle(m.Payload)
			}
		}
	})
}

func (c *Controller) handle(payload string) {
	var m controlMessage
	if err := json.Unmarshal([]byte(payload), &m); err != nil {
		c.log.Warn("cluster: malformed command", "err", err)
		return
	}
	switch {
	case m.Probe:
		if m.Node == c.node {
			c.lastRx.Store(time.Now().UnixNano())
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
	return nil
}

func (c *Controller) close() {
	if c.ps != nil {
		_ = c.ps.Close()
	}
}
