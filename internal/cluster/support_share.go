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
//	<prefix>:{support}:chats     hash: the live support chats, thread -> request (JSON), written by the owner only
//	<prefix>:{support}:chatsv    the chats' version, bumped by every change
//	<prefix>:support:chats       channel: each change, {"v": version, "t": thread, "r": request ("" forgotten)} or {"v": version, "x": 1} (replaced)
//
// The chats are what every node needs to post a support chat's
// message.created callbacks itself (ops.clusterEngine): the owner notes and
// forgets them (fenced by its lease, like the state), every node follows the
// channel and reads the whole set when it starts or misses a version.
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
	onChats func(version uint64, thread string, req []byte, reset bool)
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
func (s *SupportShare) chatsChannel() string          { return s.prefix + ":support:chats" }
func (s *SupportShare) chatsKeys() (chats, version string) {
	return s.prefix + ":{support}:chats", s.prefix + ":{support}:chatsv"
}
func (s *SupportShare) reChannel(node string) string { return s.prefix + ":support:re:" + node }

type shareMessage struct {
	ID   string          `json:"i"`
	From string          `json:"f,omitempty"`
	Data json.RawMessage `json:"d"`
}

// Serve subscribes to this node's channels and hands each request to h
// (on its own goroutine) and each change of the chats to chats (on the
// reader, in order; it must not block: thread noted with its request req,
// nil when forgotten, or with reset the whole set replaced) until ctx ends;
// it returns once the subscriptions are confirmed, and wg owns the reader.
func (s *SupportShare) Serve(ctx context.Context, wg *sync.WaitGroup, h func(ctx context.Context, req []byte) []byte,
	chats func(version uint64, thread string, req []byte, reset bool)) error {
	s.handler, s.onChats = h, chats
	s.ps = s.rdb.Subscribe(ctx, s.rpcChannel(s.node), s.reChannel(s.node), s.chatsChannel())
	for range 3 {
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
	if m.Channel == s.chatsChannel() {
		var cm struct {
			V uint64 `json:"v"`
			T string `json:"t"`
			R string `json:"r"`
			X int    `json:"x"`
		}
		if err := json.Unmarshal([]byte(m.Payload), &cm); err != nil {
			s.log.Warn("cluster: malformed support chats message", "err", err)
			return
		}
		var req []byte
		if cm.R != "" {
			req = []byte(cm.R)
		}
		if s.onChats != nil {
			s.onChats(cm.V, cm.T, req, cm.X == 1)
		}
		return
	}
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

var noteChatScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
if ARGV[4] == '' then
  redis.call('HDEL', KEYS[2], ARGV[3])
else
  redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
end
local v = redis.call('INCR', KEYS[3])
redis.call('PUBLISH', ARGV[2], cjson.encode({v = v, t = ARGV[3], r = ARGV[4]}))
return v`)

var resetChatsScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
redis.call('DEL', KEYS[2])
for i = 3, #ARGV, 2 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
end
local v = redis.call('INCR', KEYS[3])
redis.call('PUBLISH', ARGV[2], cjson.encode({v = v, x = 1}))
return v`)

// NoteChat records thread as a live support chat of request req (JSON;
// nil forgets it) and tells every node, while this node owns the engine
// (ErrNotHolder otherwise).
func (s *SupportShare) NoteChat(ctx context.Context, thread string, req []byte) error {
	token := s.lease.Token()
	if token == "" {
		return ErrNotHolder
	}
	chats, ver := s.chatsKeys()
	lease, _ := s.lease.Keys()
	v, err := noteChatScript.Run(ctx, s.rdb, []string{lease, chats, ver}, token, s.chatsChannel(), thread, string(req)).Int64()
	if err != nil {
		return fmt.Errorf("cluster: note support chat %s: %w", thread, err)
	}
	if v < 0 {
		return ErrNotHolder
	}
	return nil
}

// ResetChats replaces the live support chats with chats (thread ->
// request JSON) and tells every node, while this node owns the engine.
func (s *SupportShare) ResetChats(ctx context.Context, chats map[string][]byte) error {
	token := s.lease.Token()
	if token == "" {
		return ErrNotHolder
	}
	key, ver := s.chatsKeys()
	lease, _ := s.lease.Keys()
	argv := []any{token, s.chatsChannel()}
	for t, r := range chats {
		argv = append(argv, t, string(r))
	}
	v, err := resetChatsScript.Run(ctx, s.rdb, []string{lease, key, ver}, argv...).Int64()
	if err != nil {
		return fmt.Errorf("cluster: reset support chats: %w", err)
	}
	if v < 0 {
		return ErrNotHolder
	}
	return nil
}

// Chats returns the live support chats (thread -> request JSON) and their
// version, read at once.
func (s *SupportShare) Chats(ctx context.Context) (map[string][]byte, uint64, error) {
	key, ver := s.chatsKeys()
	var all *redis.MapStringStringCmd
	var v *redis.StringCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		all = p.HGetAll(ctx, key)
		v = p.Get(ctx, ver)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, 0, fmt.Errorf("cluster: read support chats: %w", err)
	}
	n, err := v.Uint64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, 0, fmt.Errorf("cluster: support chats version: %w", err)
	}
	out := make(map[string][]byte, len(all.Val()))
	for t, r := range all.Val() {
		out[t] = []byte(r)
	}
	return out, n, nil
}

// ChatsVersion returns the version of the live support chats (0: none written).
func (s *SupportShare) ChatsVersion(ctx context.Context) (uint64, error) {
	_, ver := s.chatsKeys()
	n, err := s.rdb.Get(ctx, ver).Uint64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("cluster: support chats version: %w", err)
	}
	return n, nil
}
