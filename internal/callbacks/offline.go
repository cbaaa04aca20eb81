package callbacks

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// TypeMessageOffline is the offline nudge (contract 1.6).
const TypeMessageOffline = ecbserver.CallbackMessageOffline

// MaxBatchMessageIDs is the most message ids an offline batch keeps: the
// first MaxBatchMessageIDs-1 and the last (OfflineBatch.Count says how
// many messages there were).
const MaxBatchMessageIDs = 100

// maxBatchMentioned bounds the mentioned users one batch collects.
const maxBatchMentioned = 1000

// OfflineNote is one stored message as the offline batcher needs it.
type OfflineNote struct {
	ThreadID  string
	MessageID string
	AuthorID  string
	Mentions  []string
	Whisper   bool // visibility agents
}

// OfflineBatch is what the Batcher hands to its flush function: the
// messages of one thread and one audience (whispers apart) noted within
// one window.
type OfflineBatch struct {
	ThreadID   string
	Whisper    bool
	MessageIDs []string // oldest first; at most MaxBatchMessageIDs, the last always kept
	Count      int      // how many messages were noted
	// Authors are the distinct authors of the batch's messages, in the
	// order they first wrote (at most two: with two, nobody wrote every
	// message).
	Authors []string
	// Mentioned is the union of the messages' mentions, each without the
	// message's own author, sorted.
	Mentioned []string
}

// LastMessageID is the id of the batch's last message.
func (b OfflineBatch) LastMessageID() string {
	if len(b.MessageIDs) == 0 {
		return ""
	}
	return b.MessageIDs[len(b.MessageIDs)-1]
}

// SoleAuthor is the author of every message of the batch, "" when there
// were several.
func (b OfflineBatch) SoleAuthor() string {
	if len(b.Authors) == 1 {
		return b.Authors[0]
	}
	return ""
}

// BatcherConfig configures a Batcher; the zero value is the default.
type BatcherConfig struct {
	// Window is how long a batch collects the messages of its thread,
	// from its first message (default 2s): a thread gets at most one
	// batch per window and audience.
	Window time.Duration
	// MaxBatches caps the batches open or being flushed at once (default
	// 10000); a message that would open one more is dropped and counted
	// (reason "batches_full").
	MaxBatches int
	Observer   Observer
}

type batchKey struct {
	thread  string
	whisper bool
}

type openBatch struct {
	b         OfflineBatch
	mentioned map[string]struct{}
	timer     *time.Timer
}

// Batcher collects stored messages per thread for a window, then hands
// each batch to its flush function, which may block (it runs on a
// goroutine of its own, in a context that Shutdown's is derived from).
//
// Locks: mu guards open, flushing and closed; flush and the Observer are
// never called with it held.
type Batcher struct {
	cfg   BatcherConfig
	flush func(context.Context, OfflineBatch)

	mu       sync.Mutex
	open     map[batchKey]*openBatch
	flushing int            // batches handed to flush that have not returned
	closed   bool           // Shutdown began: Add drops
	wg       sync.WaitGroup // one per batch opened (Add under mu while !closed) until its flush returns
	ctx      context.Context
	cancel   context.CancelFunc
}

// NewBatcher returns a Batcher that hands its batches to flush. ctx is the
// hard stop of the flushes (a server passes one that outlives its shutdown
// signal and calls Shutdown).
func NewBatcher(ctx context.Context, cfg BatcherConfig, flush func(context.Context, OfflineBatch)) *Batcher {
	if cfg.Window <= 0 {
		cfg.Window = 2 * time.Second
	}
	if cfg.MaxBatches <= 0 {
		cfg.MaxBatches = 10000
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	b := &Batcher{cfg: cfg, flush: flush, open: map[batchKey]*openBatch{}}
	b.ctx, b.cancel = context.WithCancel(ctx)
	return b
}

// Window is the batches' window.
func (b *Batcher) Window() time.Duration { return b.cfg.Window }

// Add notes a stored message in its thread's open batch, opening one (and
// its window) when there is none. It never blocks.
func (b *Batcher) Add(n OfflineNote) {
	k := batchKey{n.ThreadID, n.Whisper}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		b.cfg.Observer.CallbackFailed(TypeMessageOffline, "shutdown")
		return
	}
	ob := b.open[k]
	if ob == nil {
		if len(b.open)+b.flushing >= b.cfg.MaxBatches {
			b.mu.Unlock()
			b.cfg.Observer.CallbackFailed(TypeMessageOffline, "batches_full")
			return
		}
		ob = &openBatch{b: OfflineBatch{ThreadID: n.ThreadID, Whisper: n.Whisper}, mentioned: map[string]struct{}{}}
		b.open[k] = ob
		b.wg.Add(1)
		ob.timer = time.AfterFunc(b.cfg.Window, func() { b.fire(k, ob) })
	}
	ob.add(n)
	b.mu.Unlock()
}

func (ob *openBatch) add(n OfflineNote) {
	b := &ob.b
	b.Count++
	if len(b.MessageIDs) < MaxBatchMessageIDs {
		b.MessageIDs = append(b.MessageIDs, n.MessageID)
	} else {
		b.MessageIDs[len(b.MessageIDs)-1] = n.MessageID
	}
	if len(b.Authors) < 2 && !slices.Contains(b.Authors, n.AuthorID) {
		b.Authors = append(b.Authors, n.AuthorID)
	}
	for _, u := range n.Mentions {
		if u != n.AuthorID && len(ob.mentioned) < maxBatchMentioned {
			ob.mentioned[u] = struct{}{}
		}
	}
}

func (ob *openBatch) done() OfflineBatch {
	b := ob.b
	b.Mentioned = make([]string, 0, len(ob.mentioned))
	for u := range ob.mentioned {
		b.Mentioned = append(b.Mentioned, u)
	}
	slices.Sort(b.Mentioned)
	return b
}

// fire closes ob when its window ends (unless Shutdown took it) and
// flushes it.
func (b *Batcher) fire(k batchKey, ob *openBatch) {
	b.mu.Lock()
	if b.open[k] != ob {
		b.mu.Unlock()
		return // Shutdown took it
	}
	delete(b.open, k)
	b.flushing++
	b.mu.Unlock()
	b.run(ob)
}

// run flushes ob, which was taken out of open with flushing counted.
func (b *Batcher) run(ob *openBatch) {
	defer b.wg.Done()
	b.flush(b.ctx, ob.done())
	b.mu.Lock()
	b.flushing--
	b.mu.Unlock()
}

// Shutdown stops accepting messages, flushes the open batches at once
// (their windows cut short) and waits until every flush has returned. If
// ctx is done first, the flushes' context is cancelled and Shutdown
// returns ctx.Err() once they have returned.
func (b *Batcher) Shutdown(ctx context.Context) error {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	b.closed = true
	var now []*openBatch
	for k, ob := range b.open {
		if ob.timer.Stop() {
			delete(b.open, k)
			b.flushing++
			now = append(now, ob)
		} // else its timer fired: fire flushes it
	}
	b.mu.Unlock()
	for _, ob := range now {
		go b.run(ob)
	}
	done := make(chan struct{})
	go func() {
		b.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		b.cancel()
		return nil
	case <-ctx.Done():
		b.cancel()
		<-done
		return fmt.Errorf("callbacks: offline batches: %w", ctx.Err())
	}
}
