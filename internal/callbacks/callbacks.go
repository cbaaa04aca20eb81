// Package callbacks posts events of customer-support conversations, and the
// offline nudges of every thread, to the backend's callback URL (config
// callbacks.url): signed like every backend call (ECB-Timestamp,
// ECB-Signature), with a unique event id, in order per conversation (a
// thread's nudges: per thread), retried with exponential backoff for a
// bounded time.
//
// Each conversation key (the support request id) has its own bounded queue
// and at most one worker goroutine, started on the first event and ended
// when the queue is empty. The Poster owns its workers: Shutdown stops
// accepting events and waits until the queues are delivered (a node's last
// step, after its operations are drained), and cancels what is left when its
// own context is done; the context given to New is a hard stop that cancels
// every worker at once. An event that cannot be delivered within
// MaxRetryDuration, that does not fit its queue, or that is still queued when
// the Poster is stopped, is counted by the Observer and dropped.
//
// The Batcher (offline.go) collects the messages stored in a thread for a
// window and hands each batch to a flush function, which turns it into a
// message.offline event for a Poster (internal/ops, offline.go); it bounds
// the batches open or being flushed at once.
//
// Locks: the Poster's mu guards the queues and the closed flag, the
// Batcher's mu its open batches; the two are never held together, and
// nothing is called out (no post, no flush, no Observer) while either is
// held.
package callbacks

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// Event types (the SDK's, so integrators and ECB agree).
const (
	TypeSupportRequested        = ecbserver.CallbackSupportRequested
	TypeOfferAccepted           = ecbserver.CallbackOfferAccepted
	TypeOfferRejected           = ecbserver.CallbackOfferRejected
	TypeOfferRevoked            = ecbserver.CallbackOfferRevoked
	TypeParticipantJoined       = ecbserver.CallbackParticipantJoined
	TypeParticipantLeft         = ecbserver.CallbackParticipantLeft
	TypeMessageCreated          = ecbserver.CallbackMessageCreated
	TypeConversationTransferred = ecbserver.CallbackConversationTransferred
	TypeConversationClosed      = ecbserver.CallbackConversationClosed
)

// Event is what ECB posts to the callback URL: the SDK's CallbackEvent,
// which backends decode with ecbserver.NewCallbackHandler.
type Event = ecbserver.CallbackEvent

// Observer is told about events that finally failed (reason "gave_up"
// after MaxRetryDuration, "queue_full", "shutdown").
type Observer interface {
	CallbackFailed(eventType, reason string)
}

type nopObserver struct{}

func (nopObserver) CallbackFailed(string, string) {}

// Config configures a Poster.
type Config struct {
	URL              string        // where events go; "" turns callbacks off
	Secret           []byte        // the backend secret (signatures)
	MaxRetryDuration time.Duration // how long an event is retried (default 1m)
	InitialBackoff   time.Duration // the first retry delay (default 200ms), doubled up to MaxBackoff
	MaxBackoff       time.Duration // default 10s
	Timeout          time.Duration // per attempt (default 5s)
	QueueSize        int           // per conversation (default 256)
	Client           *http.Client  // default: a client with Timeout
	Observer         Observer
	Now              func() time.Time
}

// Poster delivers events. A nil *Poster, or one without a URL, drops
// everything silently: callbacks are off.
type Poster struct {
	cfg    Config
	ctx    context.Context // the workers' context: done at a hard stop
	cancel context.CancelFunc

	mu     sync.Mutex
	queues map[string][]Event // per conversation key, oldest first
	closed bool               // Shutdown began: Post drops
	wg     sync.WaitGroup     // the workers; Add only under mu while !closed
}

// New returns a Poster; nil when cfg.URL is empty. ctx is a hard stop: when
// it is done, every worker is cancelled and what is queued is dropped. A
// server passes a context that outlives its shutdown signal and calls
// Shutdown to deliver what is queued.
func New(ctx context.Context, cfg Config) *Poster {
	if cfg.URL == "" {
		return nil
	}
	if cfg.MaxRetryDuration <= 0 {
		cfg.MaxRetryDuration = time.Minute
	}
	if cfg.InitialBackoff <= 0 {
		cfg.InitialBackoff = 200 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 10 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 256
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: cfg.Timeout}
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	p := &Poster{cfg: cfg, queues: map[string][]Event{}}
	p.ctx, p.cancel = context.WithCancel(ctx)
	return p
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "ev_" + hex.EncodeToString(b[:])
}

// Post queues ev behind the earlier events of the conversation key. It
// fills in ID and At when empty and never blocks.
func (p *Poster) Post(key string, ev Event) {
	if p == nil {
		return
	}
	if ev.ID == "" {
		ev.ID = newID()
	}
	if ev.At.IsZero() {
		ev.At = p.cfg.Now().UTC()
	}
	p.mu.Lock()
	if p.closed || p.ctx.Err() != nil {
		p.mu.Unlock()
		p.cfg.Observer.CallbackFailed(ev.Type, "shutdown")
		return
	}
	q, running := p.queues[key]
	if len(q) >= p.cfg.QueueSize {
		p.mu.Unlock()
		p.cfg.Observer.CallbackFailed(ev.Type, "queue_full")
		return
	}
	p.queues[key] = append(q, ev)
	if !running {
		p.wg.Add(1)
		go p.work(key)
	}
	p.mu.Unlock()
}

// work delivers key's events one at a time until its queue is empty.
func (p *Poster) work(key string) {
	defer p.wg.Done()
	for {
		p.mu.Lock()
		q := p.queues[key]
		if len(q) == 0 {
			delete(p.queues, key)
			p.mu.Unlock()
			return
		}
		ev := q[0]
		p.mu.Unlock()

		if !p.deliver(ev) {
			reason := "gave_up"
			if p.ctx.Err() != nil {
				reason = "shutdown"
			}
			p.cfg.Observer.CallbackFailed(ev.Type, reason)
		}

		p.mu.Lock()
		p.queues[key] = p.queues[key][1:]
		p.mu.Unlock()
	}
}

// deliver posts ev until the backend answers 2xx, retrying with exponential
// backoff until MaxRetryDuration has passed or the Poster stops.
func (p *Poster) deliver(ev Event) bool {
	body, err := json.Marshal(ev)
	if err != nil {
		return false
	}
	deadline := time.Now().Add(p.cfg.MaxRetryDuration)
	backoff := p.cfg.InitialBackoff
	for {
		if p.attempt(body) == nil {
			return true
		}
		wait := min(backoff, time.Until(deadline))
		if wait <= 0 {
			return false
		}
		t := time.NewTimer(wait)
		select {
		case <-p.ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		backoff = min(backoff*2, p.cfg.MaxBackoff)
	}
}

func (p *Poster) attempt(body []byte) error {
	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	ecbserver.SignRequest(p.cfg.Secret, req, body, p.cfg.Now())
	resp, err := p.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("callback: status %d", resp.StatusCode)
	}
	return nil
}

// Failed counts an event of type eventType that was not posted for reason
// (an event its producer had to give up before Post).
func (p *Poster) Failed(eventType, reason string) {
	if p != nil {
		p.cfg.Observer.CallbackFailed(eventType, reason)
	}
}

// Wait blocks until every worker has ended (after ctx is done, or when all
// queues are empty).
func (p *Poster) Wait() {
	if p != nil {
		p.wg.Wait()
	}
}

// Shutdown stops accepting events (Post counts them as "shutdown") and waits
// until every queued event is delivered or given up. If ctx is done first,
// the workers are cancelled, what is still queued is dropped (counted as
// "shutdown"), and Shutdown returns ctx.Err() once the workers have ended.
func (p *Poster) Shutdown(ctx context.Context) error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	done := make(chan struct{})
	go func() {
		p.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		p.cancel()
		return nil
	case <-ctx.Done():
		p.cancel()
		<-done
		return fmt.Errorf("callbacks: %w", ctx.Err())
	}
}
