package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ecbridge/ecb/internal/hub"
)

// publishScript appends a push to a thread's history and publishes it, in one
// atomic step. KEYS: meta, stream, channel, idempotency keys (a sorted set by
// offset, trimmed with the stream). ARGV: push
// JSON, a fresh epoch (used when the thread has none), MAXLEN, history TTL
// (s), meta TTL (s), "1" for SPUBLISH, the push's key ("" for none).
// A key already in the set publishes nothing and answers its offset and a
// third element, 1 (a repeat).
var publishScript = redis.NewScript(`
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[2]
  redis.call('HSET', KEYS[1], 'e', epoch)
  redis.call('DEL', KEYS[2], KEYS[4])
end
if ARGV[7] ~= '' then
  local seen = redis.call('ZSCORE', KEYS[4], ARGV[7])
  if seen then
    return {epoch, tonumber(seen), 1}
  end
end
local offset = redis.call('HINCRBY', KEYS[1], 'o', 1)
if ARGV[7] ~= '' then
  redis.call('ZADD', KEYS[4], offset, ARGV[7])
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', offset - tonumber(ARGV[3]))
  redis.call('EXPIRE', KEYS[4], ARGV[4])
end
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[3], '0-' .. offset, 'd', ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[4])
local msg = offset .. ' ' .. epoch .. ' ' .. ARGV[1]
if ARGV[6] == '1' then
  redis.call('SPUBLISH', KEYS[3], msg)
else
  redis.call('PUBLISH', KEYS[3], msg)
end
return {epoch, offset}
`)

// positionScript returns a thread's position, starting a history (an epoch at
// offset 0) when it has none. KEYS: meta, stream. ARGV: a fresh epoch, meta TTL (s).
var positionScript = redis.NewScript(`
if redis.call('HSETNX', KEYS[1], 'e', ARGV[1]) == 1 then
  redis.call('DEL', KEYS[2])
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
local v = redis.call('HMGET', KEYS[1], 'e', 'o')
return {v[1], v[2] or '0'}
`)

// healScript starts a new epoch for a thread that had pushes fanned out on
// one node only while Redis was unreachable, and tells every node to resync
// the thread's listeners (the "!" publication). A thread whose epoch is no
// longer the one of the local pushes (Redis lost its data) is left as it
// is: every node resyncs on seeing its epoch change. KEYS: meta, stream,
// channel, idempotency keys. ARGV: the new epoch, meta TTL (s), "1" for
// SPUBLISH, the epoch of the local pushes.
var healScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'e') ~= ARGV[4] then
  return 0
end
redis.call('DEL', KEYS[2], KEYS[4])
redis.call('HSET', KEYS[1], 'e', ARGV[1], 'o', 0)
redis.call('EXPIRE', KEYS[1], ARGV[2])
local msg = '0 ! {}'
if ARGV[3] == '1' then
  redis.call('SPUBLISH', KEYS[3], msg)
else
  redis.call('PUBLISH', KEYS[3], msg)
end
return 1
`)

// maxDiverged bounds the threads that may be fanned out locally during one
// Redis outage; beyond it a publish answers unavailable as it would
// without local fan-out.
const maxDiverged = 10000

// Broker is the Redis hub.Broker of cluster mode.
type Broker struct {
	cfg   Config
	rdb   *redis.Client
	log   *slog.Logger
	node  string
	sink  hub.Sink
	parts []*partition

	// downUntil (unix nanos) is when a publish tries Redis again after
	// one failed: meanwhile publishes go to local fan-out at once instead
	// of each waiting for its own timeout.
	downUntil atomic.Int64

	divMu    sync.Mutex
	diverged map[string]*divergence // threads fanned out locally while Redis was unreachable
}

// divergence is what a thread's local fan-out during an outage left to heal:
// the keys of its local pushes (a retry answers the same position).
type divergence struct {
	epoch string // of the local pushes
	keys  map[string]hub.Position
}

var (
	_ hub.Broker       = (*Broker)(nil)
	_ hub.BrokerBinder = (*Broker)(nil)
)

type partition struct {
	b     *Broker
	tag   string // "{p3}"
	ps    *redis.PubSub
	probe string // this node's probe channel in the partition

	subMu sync.Mutex // serializes SUBSCRIBE/UNSUBSCRIBE; held across them

	// local is held while a push fanned out on this node only (Redis
	// unreachable) gets its position and is handed to the sink, so local
	// pushes reach the hub in the order of their offsets.
	local sync.Mutex

	mu      sync.Mutex
	subs    map[string]*subscription   // by thread id
	waiters map[string][]chan struct{} // by channel: waiting for its confirmation
	seen    map[string]bool            // channels confirmed at least once
	lastRx  atomic.Int64               // unix nanos of the last probe received
}

// subscription is this node's interest in a thread: how many Subscribe calls
// hold it, and the position of the last push handed to the sink (known once
// Subscribe has read the thread's position).
type subscription struct {
	count  int
	known  bool
	epoch  string
	offset uint64
}

func newBroker(cfg Config, rdb *redis.Client, log *slog.Logger) *Broker {
	b := &Broker{cfg: cfg, rdb: rdb, log: log, node: cfg.NodeID, diverged: map[string]*divergence{}}
	for i := range cfg.Partitions {
		tag := "{p" + strconv.Itoa(i) + "}"
		p := &partition{b: b, tag: tag, subs: map[string]*subscription{}, waiters: map[string][]chan struct{}{}, seen: map[string]bool{},
			probe: cfg.Prefix + ":" + tag + ":probe:" + cfg.NodeID}
		b.parts = append(b.parts, p)
	}
	return b
}

// Bind implements hub.BrokerBinder.
func (b *Broker) Bind(s hub.Sink) { b.sink = s }

func (b *Broker) part(threadID string) *partition {
	h := fnv.New32a()
	_, _ = h.Write([]byte(threadID))
	return b.parts[h.Sum32()%uint32(len(b.parts))]
}

func (p *partition) key(kind, threadID string) string {
	return p.b.cfg.Prefix + ":" + p.tag + ":" + kind + ":" + threadID
}

// scriptKeys are the keys the publish and heal scripts take: meta, stream,
// channel, idempotency keys.
func (p *partition) scriptKeys(threadID string) []string {
	return []string{p.key("m", threadID), p.key("s", threadID), p.key("c", threadID), p.key("k", threadID)}
}

// shardedArg is the scripts' "1" for SPUBLISH, "0" for PUBLISH.
func (b *Broker) shardedArg() string {
	if b.cfg.ShardedPubSub {
		return "1"
	}
	return "0"
}

// threadOf returns the thread of a channel of this partition.
func (p *partition) threadOf(channel string) (string, bool) {
	return strings.CutPrefix(channel, p.b.cfg.Prefix+":"+p.tag+":c:")
}

func unavailable(op string, err error) error {
	return fmt.Errorf("cluster: %s: %w: %w", op, hub.ErrUnavailable, err)
}

func (b *Broker) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, b.cfg.Timeout)
}

// wirePush is a push as it travels: everything but its thread and position,
// which the channel and the message header carry.
type wirePush struct {
	Event  string          `json:"e"`
	Data   json.RawMessage `json:"d"`
	At     time.Time       `json:"t"`
	Agents bool            `json:"a,omitempty"`
	Skip   string          `json:"s,omitempty"`
}

func encodePush(p *hub.Push) ([]byte, error) {
	return json.Marshal(wirePush{Event: p.Event, Data: p.Data, At: p.At, Agents: p.AgentsOnly, Skip: p.Skip})
}

func decodePush(threadID, epoch string, offset uint64, b []byte) (*hub.Push, error) {
	var w wirePush
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, err
	}
	return &hub.Push{Event: w.Event, ThreadID: threadID, Epoch: epoch, Offset: offset, Data: w.Data, At: w.At, AgentsOnly: w.Agents, Skip: w.Skip}, nil
}

// Publish implements hub.Broker. When Redis cannot be reached the push is
// fanned out to this node's listeners alone (publishLocal), and the thread
// is healed once Redis answers again (heal).
func (b *Broker) Publish(ctx context.Context, threadID string, p *hub.Push) (hub.Position, error) {
	payload, err := encodePush(p)
	if err != nil {
		return hub.Position{}, fmt.Errorf("cluster: encode push: %w", err)
	}
	if time.Now().UnixNano() < b.downUntil.Load() {
		if pos, ok := b.publishLocal(threadID, p); ok {
			return pos, nil
		}
	}
	part := b.part(threadID)
	cctx, cancel := b.callCtx(ctx)
	defer cancel()
	sharded := b.shardedArg()
	res, err := publishScript.Run(cctx, b.rdb,
		part.scriptKeys(threadID),
		payload, hub.NewEpoch(), b.cfg.HistorySize, int(b.cfg.HistoryTTL/time.Second)+1, int(b.cfg.MetaTTL/time.Second)+1, sharded, p.Key).Slice()
	if err != nil {
		if ctx.Err() == nil && isUnreachable(err) {
			b.downUntil.Store(time.Now().Add(time.Second).UnixNano())
			if pos, ok := b.publishLocal(threadID, p); ok {
				return pos, nil
			}
		}
		return hub.Position{}, unavailable("publish", err)
	}
	repeated := len(res) == 3 // the key was published already
	if repeated {
		res = res[:2]
	}
	pos, err := positionOf(res)
	if err != nil {
		return hub.Position{}, err
	}
	p.ThreadID, p.Epoch, p.Offset, p.Repeated = threadID, pos.Epoch, pos.Offset, repeated
	return pos, nil
}

// isUnreachable tells a Redis that cannot be reached (a refused or broken
// connection, a timeout) from one that answered with an error.
func isUnreachable(err error) bool {
	var rerr redis.Error
	return !errors.As(err, &rerr)
}

// publishLocal fans p out to this node's listeners of threadID alone, at the
// next offset after the last push this node handed on, and marks the thread
// diverged: its listeners on the other nodes never get p, so heal starts a
// new epoch and makes every node's listeners resync once Redis is back.
// It reports false when this node has no listener of the thread (nobody
// to serve) or too many threads diverged already.
func (b *Broker) publishLocal(threadID string, p *hub.Push) (hub.Position, bool) {
	part := b.part(threadID)
	part.local.Lock()
	defer part.local.Unlock()

	part.mu.Lock()
	s := part.subs[threadID]
	if s == nil || !s.known {
		part.mu.Unlock()
		return hub.Position{}, false
	}
	b.divMu.Lock()
	d := b.diverged[threadID]
	if d == nil {
		if len(b.diverged) >= maxDiverged {
			b.divMu.Unlock()
			part.mu.Unlock()
			return hub.Position{}, false
		}
		d = &divergence{epoch: s.epoch, keys: map[string]hub.Position{}}
		b.diverged[threadID] = d
		b.log.Warn("cluster: Redis unreachable; the thread's pushes reach this node's listeners only until it is healed", "thread", threadID)
	}
	if pos, ok := d.keys[p.Key]; ok && p.Key != "" {
		b.divMu.Unlock()
		part.mu.Unlock()
		p.Repeated = true
		return pos, true // a retry of a push already fanned out
	}
	s.offset++
	pos := hub.Position{Epoch: s.epoch, Offset: s.offset}
	if p.Key != "" && len(d.keys) < b.cfg.HistorySize {
		d.keys[p.Key] = pos
	}
	b.divMu.Unlock()
	part.mu.Unlock()

	p.ThreadID, p.Epoch, p.Offset = threadID, pos.Epoch, pos.Offset
	b.sink.HandlePush(threadID, p)
	return pos, true
}

// heal starts a new epoch for every thread fanned out locally during an
// outage and has every node's listeners of it resync (they are told
// recovered: false when they resume). A thread whose heal fails stays for
// the next probe.
func (b *Broker) heal(ctx context.Context) {
	b.divMu.Lock()
	threads := make(map[string]string, len(b.diverged)) // thread → epoch of its local pushes
	for t, d := range b.diverged {
		threads[t] = d.epoch
	}
	b.divMu.Unlock()
	sharded := b.shardedArg()
	for threadID, was := range threads {
		part := b.part(threadID)
		cctx, cancel := b.callCtx(ctx)
		err := healScript.Run(cctx, b.rdb,
			part.scriptKeys(threadID),
			hub.NewEpoch(), int(b.cfg.MetaTTL/time.Second)+1, sharded, was).Err()
		cancel()
		if err != nil {
			b.log.Warn("cluster: a thread fanned out locally during an outage is not healed yet", "thread", threadID, "err", err)
			return
		}
		b.divMu.Lock()
		delete(b.diverged, threadID)
		b.divMu.Unlock()
		b.log.Info("cluster: thread healed after local fan-out; its listeners resync", "thread", threadID)
	}
}

func positionOf(res []any) (hub.Position, error) {
	if len(res) != 2 {
		return hub.Position{}, fmt.Errorf("cluster: unexpected script answer %v", res)
	}
	epoch, _ := res[0].(string)
	var offset uint64
	switch v := res[1].(type) {
	case int64:
		offset = uint64(v)
	case string:
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return hub.Position{}, fmt.Errorf("cluster: bad offset %q", v)
		}
		offset = n
	default:
		return hub.Position{}, fmt.Errorf("cluster: unexpected offset %T", res[1])
	}
	return hub.Position{Epoch: epoch, Offset: offset}, nil
}

// Broadcast implements hub.Broker.
func (b *Broker) Broadcast(ctx context.Context, threadID string, p *hub.Push) error {
	payload, err := encodePush(p)
	if err != nil {
		return fmt.Errorf("cluster: encode push: %w", err)
	}
	part := b.part(threadID)
	ctx, cancel := b.callCtx(ctx)
	defer cancel()
	msg := "0 - " + string(payload)
	if b.cfg.ShardedPubSub {
		err = b.rdb.SPublish(ctx, part.key("c", threadID), msg).Err()
	} else {
		err = b.rdb.Publish(ctx, part.key("c", threadID), msg).Err()
	}
	if err != nil {
		return unavailable("broadcast", err)
	}
	return nil
}

// Position implements hub.Broker.
func (b *Broker) Position(ctx context.Context, threadID string) (hub.Position, error) {
	part := b.part(threadID)
	ctx, cancel := b.callCtx(ctx)
	defer cancel()
	res, err := positionScript.Run(ctx, b.rdb, []string{part.key("m", threadID), part.key("s", threadID)},
		hub.NewEpoch(), int(b.cfg.MetaTTL/time.Second)+1).Slice()
	if err != nil {
		return hub.Position{}, unavailable("position", err)
	}
	return positionOf(res)
}

// History implements hub.Broker.
func (b *Broker) History(ctx context.Context, threadID string, from hub.Position) ([]*hub.Push, hub.Position, bool, error) {
	now, err := b.Position(ctx, threadID)
	if err != nil {
		return nil, hub.Position{}, false, err
	}
	switch {
	case from.Epoch != now.Epoch || from.Offset > now.Offset:
		return nil, now, false, nil
	case from.Offset == now.Offset:
		return nil, now, true, nil
	}
	pushes, err := b.rangeOf(ctx, threadID, now.Epoch, from.Offset+1, now.Offset)
	if err != nil {
		return nil, now, false, err
	}
	if uint64(len(pushes)) != now.Offset-from.Offset {
		return nil, now, false, nil // the oldest of them are no longer kept
	}
	notBefore := time.Now().Add(-b.cfg.HistoryTTL)
	for _, p := range pushes {
		if p.At.Before(notBefore) {
			return nil, now, false, nil
		}
	}
	return pushes, now, true, nil
}

// rangeOf reads the pushes first..last of a thread's stream (fewer when the
// oldest were trimmed).
func (b *Broker) rangeOf(ctx context.Context, threadID, epoch string, first, last uint64) ([]*hub.Push, error) {
	part := b.part(threadID)
	ctx, cancel := b.callCtx(ctx)
	defer cancel()
	entries, err := b.rdb.XRange(ctx, part.key("s", threadID), "0-"+strconv.FormatUint(first, 10), "0-"+strconv.FormatUint(last, 10)).Result()
	if err != nil {
		return nil, unavailable("history", err)
	}
	out := make([]*hub.Push, 0, len(entries))
	for _, e := range entries {
		_, seq, _ := strings.Cut(e.ID, "-")
		offset, err := strconv.ParseUint(seq, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("cluster: bad stream id %q", e.ID)
		}
		d, _ := e.Values["d"].(string)
		p, err := decodePush(threadID, epoch, offset, []byte(d))
		if err != nil {
			return nil, fmt.Errorf("cluster: bad stream entry %s: %w", e.ID, err)
		}
		out = append(out, p)
	}
	// Only a run that starts at first and has no hole counts.
	for i, p := range out {
		if p.Offset != first+uint64(i) {
			return out[:i], nil
		}
	}
	return out, nil
}

// Subscribe implements hub.Broker.
func (b *Broker) Subscribe(ctx context.Context, threadID string) (hub.Position, error) {
	p := b.part(threadID)
	channel := p.key("c", threadID)
	p.subMu.Lock()
	defer p.subMu.Unlock()

	p.mu.Lock()
	s := p.subs[threadID]
	fresh := s == nil
	var confirmed chan struct{}
	if fresh {
		s = &subscription{}
		p.subs[threadID] = s
		confirmed = make(chan struct{})
		p.waiters[channel] = append(p.waiters[channel], confirmed)
	}
	s.count++
	p.mu.Unlock()

	undo := func() {
		p.mu.Lock()
		if s.count--; s.count == 0 {
			delete(p.subs, threadID)
		}
		delete(p.waiters, channel)
		p.mu.Unlock()
	}
	if fresh {
		cctx, cancel := b.callCtx(ctx)
		var err error
		if b.cfg.ShardedPubSub {
			err = p.ps.SSubscribe(cctx, channel)
		} else {
			err = p.ps.Subscribe(cctx, channel)
		}
		if err == nil {
			select {
			case <-confirmed:
			case <-cctx.Done():
				err = cctx.Err()
			}
		}
		cancel()
		if err != nil {
			undo()
			b.unsubscribeChannel(p, channel)
			return hub.Position{}, unavailable("subscribe", err)
		}
	}
	// Subscribed: every push published from now on reaches the reader.
	pos, err := b.Position(ctx, threadID)
	if err != nil {
		undo()
		if fresh {
			b.unsubscribeChannel(p, channel)
		}
		return hub.Position{}, err
	}
	p.mu.Lock()
	if !s.known || s.epoch != pos.Epoch || s.offset < pos.Offset {
		s.known, s.epoch, s.offset = true, pos.Epoch, pos.Offset
	}
	p.mu.Unlock()
	return pos, nil
}

// Unsubscribe implements hub.Broker.
func (b *Broker) Unsubscribe(ctx context.Context, threadID string) error {
	p := b.part(threadID)
	p.subMu.Lock()
	defer p.subMu.Unlock()
	p.mu.Lock()
	s := p.subs[threadID]
	last := false
	if s != nil {
		s.count--
		if s.count <= 0 {
			delete(p.subs, threadID)
			last = true
		}
	}
	p.mu.Unlock()
	if !last {
		return nil
	}
	channel := p.key("c", threadID)
	p.mu.Lock()
	delete(p.seen, channel)
	p.mu.Unlock()
	return b.unsubscribeChannel(p, channel)
}

func (b *Broker) unsubscribeChannel(p *partition, channel string) error {
	ctx, cancel := b.callCtx(context.Background())
	defer cancel()
	var err error
	if b.cfg.ShardedPubSub {
		err = p.ps.SUnsubscribe(ctx, channel)
	} else {
		err = p.ps.Unsubscribe(ctx, channel)
	}
	if err != nil {
		// The connection is broken: go-redis resubscribes only what is
		// still subscribed, so nothing is left behind.
		return unavailable("unsubscribe", err)
	}
	return nil
}

// start opens every partition's subscription connection (with its probe
// channel) and starts their readers, owned by ctx; wait waits for them.
func (b *Broker) start(ctx context.Context, wg *sync.WaitGroup) error {
	for _, p := range b.parts {
		if b.cfg.ShardedPubSub {
			p.ps = b.rdb.SSubscribe(ctx, p.probe)
		} else {
			p.ps = b.rdb.Subscribe(ctx, p.probe)
		}
		msgs := p.ps.ChannelWithSubscriptions(redis.WithChannelSize(4096), redis.WithChannelHealthCheckInterval(time.Second))
		wg.Go(func() { p.read(ctx, msgs) })
	}
	return nil
}

func (b *Broker) close() {
	for _, p := range b.parts {
		if p.ps != nil {
			_ = p.ps.Close()
		}
	}
}

// read hands the partition's pushes to the sink, in order, until ctx ends.
func (p *partition) read(ctx context.Context, msgs <-chan any) {
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
				p.confirmed(ctx, m)
			case *redis.Message:
				p.message(ctx, m)
			}
		}
	}
}

// confirmed wakes the Subscribe waiting for a channel; a channel confirmed
// again is a resubscription after a lost connection, whose pushes meanwhile
// are fetched from the history.
func (p *partition) confirmed(ctx context.Context, m *redis.Subscription) {
	if m.Kind != "subscribe" && m.Kind != "ssubscribe" {
		return
	}
	p.mu.Lock()
	ws := p.waiters[m.Channel]
	delete(p.waiters, m.Channel)
	again := p.seen[m.Channel]
	p.seen[m.Channel] = true
	p.mu.Unlock()
	for _, w := range ws {
		close(w)
	}
	if m.Channel == p.probe {
		p.lastRx.Store(time.Now().UnixNano())
		return
	}
	if again {
		if threadID, ok := p.threadOf(m.Channel); ok {
			p.catchUp(ctx, threadID)
		}
	}
}

// catchUp hands on the pushes of threadID that were published while the
// connection was lost. The position is read again for a few seconds before
// the thread's listeners are told to resync: right after Redis comes back
// the subscription may be up while the client's pool still answers with
// its last dial error (go-redis probes again only once a second).
func (p *partition) catchUp(ctx context.Context, threadID string) {
	pos, err := p.b.Position(ctx, threadID)
	for wait := 50 * time.Millisecond; err != nil && wait <= 2*time.Second; wait *= 2 {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		pos, err = p.b.Position(ctx, threadID)
	}
	if err != nil {
		p.b.log.Warn("cluster: position not readable after a resubscription; listeners resync", "thread", threadID, "err", err)
		p.b.sink.Resync(threadID)
		return
	}
	p.deliverUpTo(ctx, threadID, pos.Epoch, pos.Offset, nil)
}

func (p *partition) message(ctx context.Context, m *redis.Message) {
	if m.Channel == p.probe {
		p.lastRx.Store(time.Now().UnixNano())
		return
	}
	threadID, ok := p.threadOf(m.Channel)
	if !ok {
		return
	}
	offsetText, rest, _ := strings.Cut(m.Payload, " ")
	epoch, payload, _ := strings.Cut(rest, " ")
	offset, err := strconv.ParseUint(offsetText, 10, 64)
	if err != nil {
		p.b.log.Warn("cluster: malformed publication", "channel", m.Channel)
		return
	}
	if offset == 0 && epoch == "!" { // healed after a local fan-out: a new epoch
		p.resync(threadID)
		return
	}
	push, err := decodePush(threadID, epoch, offset, []byte(payload))
	if err != nil {
		p.b.log.Warn("cluster: malformed publication", "channel", m.Channel, "err", err)
		return
	}
	if offset == 0 { // not part of the history (typing)
		push.Epoch = ""
		if p.subscribed(threadID) {
			p.b.sink.HandlePush(threadID, push)
		}
		return
	}
	p.deliverUpTo(ctx, threadID, epoch, offset, push)
}

// resync makes the thread's listeners on this node resync, its position
// unknown until the next push or Subscribe reads it.
func (p *partition) resync(threadID string) {
	p.mu.Lock()
	s := p.subs[threadID]
	if s != nil {
		s.known = false
	}
	p.mu.Unlock()
	if s != nil {
		p.b.sink.Resync(threadID)
	}
}

func (p *partition) subscribed(threadID string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.subs[threadID] != nil
}

// deliverUpTo hands on the pushes of threadID after the last one handed on,
// up to offset: last (when given) is that one, the ones before it come from
// the history. A hole the history cannot fill makes the thread resync.
func (p *partition) deliverUpTo(ctx context.Context, threadID, epoch string, offset uint64, last *hub.Push) {
	p.mu.Lock()
	s := p.subs[threadID]
	if s == nil {
		p.mu.Unlock()
		return
	}
	known, prevEpoch, prev := s.known, s.epoch, s.offset
	if known && prevEpoch == epoch && offset <= prev {
		p.mu.Unlock()
		return // already handed on
	}
	if last != nil || known {
		s.known, s.epoch, s.offset = true, epoch, offset
	}
	p.mu.Unlock()

	if known && prevEpoch != epoch && prev > 0 {
		// The history this node handed on is gone (Redis lost it, or a
		// node healed a local fan-out): what was published in it and not
		// received here cannot be told apart from nothing.
		p.b.log.Warn("cluster: a thread's history was replaced; listeners resync", "thread", threadID, "was", prevEpoch, "now", epoch)
		p.b.sink.Resync(threadID)
		return
	}

	// Until Subscribe has read the position nothing is missing: the hub
	// holds what comes and drops what the position already covers.
	from := uint64(1)
	if prevEpoch == epoch {
		from = prev + 1
	}
	upTo := offset
	if last != nil {
		upTo--
	}
	if known && upTo >= from {
		got, err := p.b.rangeOf(ctx, threadID, epoch, from, upTo)
		if err != nil || uint64(len(got)) != upTo-from+1 {
			p.b.log.Warn("cluster: pushes lost and no longer in the history; listeners resync", "thread", threadID, "from", from, "to", upTo)
			p.b.sink.Resync(threadID)
			return
		}
		for _, m := range got {
			p.b.sink.HandlePush(threadID, m)
		}
	}
	if last != nil {
		p.b.sink.HandlePush(threadID, last)
	}
}

// probe publishes one probe on every partition's channel of this node.
func (b *Broker) probe(ctx context.Context) {
	for _, p := range b.parts {
		cctx, cancel := b.callCtx(ctx)
		var err error
		if b.cfg.ShardedPubSub {
			err = b.rdb.SPublish(cctx, p.probe, "1").Err()
		} else {
			err = b.rdb.Publish(cctx, p.probe, "1").Err()
		}
		cancel()
		if err != nil {
			b.log.Warn("cluster: probe not published", "err", err)
			return
		}
	}
}

// errNotDelivering says a subscription has silently stopped delivering.
var errNotDelivering = errors.New("cluster: a pub/sub subscription has not delivered its probe")

// ready reports whether every partition's probe came back recently.
func (b *Broker) ready(now time.Time) error {
	limit := 3 * b.cfg.ProbeInterval
	for i, p := range b.parts {
		rx := p.lastRx.Load()
		if rx == 0 || now.Sub(time.Unix(0, rx)) > limit {
			return fmt.Errorf("%w (partition %d)", errNotDelivering, i)
		}
	}
	return nil
}
