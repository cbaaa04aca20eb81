package hub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"hash/maphash"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ecbridge/ecb/internal/periodic"
)

// MemoryBroker is the Broker of one node: the threads' histories in this
// process's memory, delivered to the node's own Sink. A restart loses them
// (clients then get a new epoch and recovered: false).
//
// Lock order: a broker shard's lock, then a thread's deliver lock, taken
// before the shard lock is released (so that pushes reach the Sink in the
// order their offsets were given), then the Sink's locks: Publish hands the
// push to the Sink under the deliver lock only. The Sink may call back into
// the broker (Position, History, Subscribe: they take the shard lock), but
// must not publish to the same thread from HandlePush.
type MemoryBroker struct {
	historySize int
	historyTTL  time.Duration
	seed        maphash.Seed
	epoch       string        // this process's part of every thread epoch
	generation  atomic.Uint64 // numbers the thread histories started here
	sink        Sink
	shards      [numShards]memShard
}

type memShard struct {
	mu      sync.Mutex
	threads map[string]*memThread
}

type memThread struct {
	deliver     sync.Mutex // held while a push of the thread is handed to the Sink
	epoch       string
	offset      uint64
	history     ring
	keys        map[string]uint64 // Push.Key → offset, for the pushes in history
	subscribers int
}

var (
	_ Broker       = (*MemoryBroker)(nil)
	_ BrokerBinder = (*MemoryBroker)(nil)
)

// NewMemoryBroker returns an empty broker keeping historySize pushes per
// thread for historyTTL (defaults 256 and 5m).
func NewMemoryBroker(historySize int, historyTTL time.Duration) *MemoryBroker {
	if historySize <= 0 {
		historySize = 256
	}
	if historyTTL <= 0 {
		historyTTL = 5 * time.Minute
	}
	b := &MemoryBroker{historySize: historySize, historyTTL: historyTTL, seed: maphash.MakeSeed(), epoch: NewEpoch()}
	for i := range b.shards {
		b.shards[i].threads = map[string]*memThread{}
	}
	return b
}

// NewEpoch returns a fresh random epoch name.
func NewEpoch() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Bind implements BrokerBinder.
func (b *MemoryBroker) Bind(s Sink) { b.sink = s }

func (b *MemoryBroker) shard(threadID string) *memShard {
	return &b.shards[maphash.String(b.seed, threadID)%numShards]
}

// threadLocked returns threadID's history, starting one under a new epoch
// when there is none: on this process's first push, or after Prune forgot an
// idle thread.
func (b *MemoryBroker) threadLocked(s *memShard, threadID string) *memThread {
	t := s.threads[threadID]
	if t == nil {
		t = &memThread{epoch: b.epoch + "-" + strconv.FormatUint(b.generation.Add(1), 36), history: newRing(b.historySize)}
		s.threads[threadID] = t
	}
	return t
}

// Publish implements Broker.
func (b *MemoryBroker) Publish(_ context.Context, threadID string, p *Push) (Position, error) {
	s := b.shard(threadID)
	s.mu.Lock()
	t := b.threadLocked(s, threadID)
	if off, ok := t.keys[p.Key]; ok && p.Key != "" {
		s.mu.Unlock()
		p.Repeated = true
		return Position{Epoch: t.epoch, Offset: off}, nil // already published
	}
	t.offset++
	p.ThreadID, p.Epoch, p.Offset = threadID, t.epoch, t.offset
	if old := t.history.add(p); old != nil && old.Key != "" {
		delete(t.keys, old.Key)
	}
	if p.Key != "" {
		if t.keys == nil {
			t.keys = map[string]uint64{}
		}
		t.keys[p.Key] = p.Offset
	}
	pos := Position{Epoch: t.epoch, Offset: t.offset}
	b.handOn(s, t, threadID, p)
	return pos, nil
}

// handOn gives p to the Sink in the order of the calls made under s's lock,
// which it releases: it takes t's deliver lock first.
func (b *MemoryBroker) handOn(s *memShard, t *memThread, threadID string, p *Push) {
	if t.subscribers == 0 || b.sink == nil {
		s.mu.Unlock()
		return
	}
	t.deliver.Lock()
	s.mu.Unlock()
	defer t.deliver.Unlock()
	b.sink.HandlePush(threadID, p)
}

// Broadcast implements Broker.
func (b *MemoryBroker) Broadcast(_ context.Context, threadID string, p *Push) error {
	s := b.shard(threadID)
	s.mu.Lock()
	t := s.threads[threadID]
	if t == nil {
		s.mu.Unlock()
		return nil
	}
	b.handOn(s, t, threadID, p)
	return nil
}

// Subscribe implements Broker.
func (b *MemoryBroker) Subscribe(_ context.Context, threadID string) (Position, error) {
	s := b.shard(threadID)
	s.mu.Lock()
	defer s.mu.Unlock()
	t := b.threadLocked(s, threadID)
	t.subscribers++
	return Position{Epoch: t.epoch, Offset: t.offset}, nil
}

// Unsubscribe implements Broker.
func (b *MemoryBroker) Unsubscribe(_ context.Context, threadID string) error {
	s := b.shard(threadID)
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.threads[threadID]; t != nil && t.subscribers > 0 {
		t.subscribers--
	}
	return nil
}

// Position implements Broker.
func (b *MemoryBroker) Position(_ context.Context, threadID string) (Position, error) {
	s := b.shard(threadID)
	s.mu.Lock()
	defer s.mu.Unlock()
	t := b.threadLocked(s, threadID)
	return Position{Epoch: t.epoch, Offset: t.offset}, nil
}

// History implements Broker.
func (b *MemoryBroker) History(_ context.Context, threadID string, from Position) ([]*Push, Position, bool, error) {
	s := b.shard(threadID)
	s.mu.Lock()
	defer s.mu.Unlock()
	t := b.threadLocked(s, threadID)
	now := Position{Epoch: t.epoch, Offset: t.offset}
	switch {
	case from.Epoch != t.epoch || from.Offset > t.offset:
		return nil, now, false, nil
	case from.Offset == t.offset:
		return nil, now, true, nil
	}
	pushes, ok := t.history.since(from.Offset, time.Now().Add(-b.historyTTL))
	return pushes, now, ok, nil
}

// Prune forgets the threads that no node subscribes to and whose newest push
// is older than the history TTL; such a thread starts again under a new epoch.
func (b *MemoryBroker) Prune(now time.Time) (pruned int) {
	cutoff := now.Add(-b.historyTTL)
	for i := range b.shards {
		s := &b.shards[i]
		s.mu.Lock()
		for id, t := range s.threads {
			if t.subscribers == 0 && !t.history.newestAfter(cutoff) {
				delete(s.threads, id)
				pruned++
			}
		}
		s.mu.Unlock()
	}
	return pruned
}

// Run prunes idle threads every interval until ctx is done.
func (b *MemoryBroker) Run(ctx context.Context, interval time.Duration) {
	periodic.Run(ctx, interval, func(now time.Time) { b.Prune(now) })
}
