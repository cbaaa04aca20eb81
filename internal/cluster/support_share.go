package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// SupportShare is what the operations need to run the support engine on one
// owner node (ops.SupportCluster): the lease "support" and its fenced
// state, and a request/reply channel to each node.
//
//	<prefix>:{support}:lease     the owner's lease (lease.go)
//	<prefix>:{support}:state     the engine's state, written by the owner only
//	<prefix>:support:rpc:<node>  channel: requests to node, {"i": id, "f": from, "d": payload}
//	<prefix>:support:re:<node>   channel: answers to node, {"i": id, "d": payload}
//
// A request is answered on the asking node's answer channel; a Call waits
// for its answer until its context ends. A node with no subscriber on its
// request channel (PUBLISH reached nobody) fails the Call at once.
//
// Concurrency: mu guards the waiting calls (nothing is called under it);
// each request runs its handler on a goroutine of its own, at most
// maxServing at a time (the reader waits for a slot: a bounded queue).
type SupportShare struct {
	rdb      *redis.Client
	log      *slog.Logger
	prefix   string
	node     string
	interval time.Duration
	lease    *Lease

	mu      sync.Mutex
	waiting map[string]chan []byte

	ps      *redis.PubSub
	slots   chan struct{}
	handler func(ctx context.Context, req []byte) []byte
}

const maxServing = 64

// ErrNoNode is returned by Call when no node listens on the target's channel.
var ErrNoNode = errors.New("cluster: no such node listens")

// SupportShare returns the node's support share: its lease lives for
// 3 intervals and is renewed every interval (default 1s). It has a Redis
// client of its own (a small pool, closed with the node), so that its calls
// while Redis is away do not count against the dial errors of the node's
// pool (go-redis fails every call fast for a while once a pool has had as
// many dial errors as its size).
func (n *Node) SupportShare(interval time.Duration) *SupportShare {
	if interval <= 0 {
		interval = time.Second
	}
	opt := *n.rdb.Options()
	opt.PoolSize = 8
	rdb := redis.NewClient(&opt)
	n.mu.Lock()
	n.extra = append(n.extra, rdb)
	n.mu.Unlock()
	return &SupportShare{rdb: rdb, log: n.log, prefix: n.cfg.Prefix, node: n.cfg.NodeID, interval: interval,
		lease: NewLease(rdb, n.cfg.Prefix, "support", n.cfg.NodeID, 3*interval), waiting: map[string]chan []byte{},
		slots: make(chan struct{}, maxServing)}
}

// NodeID returns this node's id.
func (s *SupportShare) NodeID() string { return s.node }

// Interval is how often the owner renews its lease.
func (s *SupportShare) Interval() time.Duration { return s.interval }

// Acquire takes or renews the ownership (Lease.Acquire); the lease is used
// by the caller's loop only.
func (s *SupportShare) Acquire(ctx context.Context) (bool, error) { return s.lease.Acquire(ctx) }

// Release gives the ownership up.
func (s *SupportShare) Release(ctx context.Context) error { return s.lease.Release(ctx) }

// Owner returns the node that owns the engine now, "" when none does.
func (s *SupportShare) Owner(ctx context.Context) (string, error) { return s.lease.Holder(ctx) }

// Save writes the engine's state while this node owns it; held is false
// when the write was refused (another node holds the lease).
func (s *SupportShare) Save(ctx context.Context, blob []byte) (held bool, err error) {
	_, err = s.lease.WriteFenced(ctx, blob)
	if errors.Is(err, ErrNotHolder) {
		return false, nil
	}
	return err == nil, err
}

// Load returns the engine's state last saved (nil when none was).
func (s *SupportShare) Load(ctx context.Context) ([]byte, error) {
	d, _, err := s.lease.ReadState(ctx)
	return d, err
}

func (s *SupportShare) rpcChannel(node string) string { return s.prefix + ":support:rpc:" + node }
func (s *SupportShare) reChannel(node string) string  { return s.prefix + ":support:re:" + node }

type shareMessage struct {
	ID   string          `json:"i"`
	From string          `json:"f,omitempty"`
	Data json.RawMessage `json:"d"`
}

// Serve subscribes to this node's channels and hands each request to h
// (on its own goroutine) until ctx ends; it returns once the subscriptions
// are confirmed, and wg owns the reader.
func (s *SupportShare) Serve(ctx context.Context, wg *sync.WaitGroup, h func(ctx context.Context, req []byte) []byte) error {
	s.handler = h
	s.ps = s.rdb.Subscribe(ctx, s.rpcChannel(s.node), s.reChannel(s.node))
	for range 2 {
		if _, err := s.ps.Receive(ctx); err != nil {
			_ = s.ps.Close()
			return fmt.Errorf("cluster: support channels: %w", err)
		}
	}
	msgs := s.ps.Channel(redis.WithChannelSize(1024))
	wg.Go(func() {
		defer s.ps.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case m, ok := <-msgs:
				if !ok {
					return
				}
				s.message(ctx, wg, m)
			}
		}
	})
	return nil
}

func (s *SupportShare) message(ctx context.Context, wg *sync.WaitGroup, m *redis.Message) {
	var sm shareMessage
	if err := json.Unmarshal([]byte(m.Payload), &sm); err != nil {
		s.log.Warn("cluster: malformed support message", "err", err)
		return
	}
	if m.Channel == s.reChannel(s.node) {
		s.mu.Lock()
		ch := s.waiting[sm.ID]
		delete(s.waiting, sm.ID)
		s.mu.Unlock()
		if ch != nil {
			ch <- sm.Data // buffered, one answer
		}
		return
	}
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return
	}
	wg.Go(func() {
		defer func() { <-s.slots }()
		out := s.handler(ctx, sm.Data)
		b, err := json.Marshal(shareMessage{ID: sm.ID, Data: out})
		if err != nil {
			s.log.Error("cluster: support answer", "err", err)
			return
		}
		pctx, cancel := context.WithTimeout(ctx, 2*s.interval)
		defer cancel()
		if err := s.rdb.Publish(pctx, s.reChannel(sm.From), b).Err(); err != nil {
			s.log.Warn("cluster: support answer not sent", "to", sm.From, "err", err)
		}
	})
}

// Call sends req to node and returns its answer; it gives up when ctx
// ends, and at once (ErrNoNode) when nobody listens on node's channel.
func (s *SupportShare) Call(ctx context.Context, node string, req []byte) ([]byte, error) {
	var b [9]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	ch := make(chan []byte, 1)
	s.mu.Lock()
	s.waiting[id] = ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.waiting, id)
		s.mu.Unlock()
	}()
	msg, err := json.Marshal(shareMessage{ID: id, From: s.node, Data: req})
	if err != nil {
		return nil, err
	}
	n, err := s.rdb.Publish(ctx, s.rpcChannel(node), msg).Result()
	if err != nil {
		return nil, fmt.Errorf("cluster: support call to %s: %w", node, err)
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNoNode, node)
	}
	select {
	case out := <-ch:
		return out, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("cluster: support call to %s: %w", node, ctx.Err())
	}
}

// Send sends req to node without waiting for an answer (the answer, if
// any, is dropped).
func (s *SupportShare) Send(ctx context.Context, node string, req []byte) error {
	msg, err := json.Marshal(shareMessage{ID: "-", From: s.node, Data: req})
	if err != nil {
		return err
	}
	if err := s.rdb.Publish(ctx, s.rpcChannel(node), msg).Err(); err != nil {
		return fmt.Errorf("cluster: support send to %s: %w", node, err)
	}
	return nil
}
