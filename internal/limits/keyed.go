package limits

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Keyed is one token bucket per key, created on first use.
type Keyed[K comparable] struct {
	limit   rate.Limit
	burst   int
	maxKeys int
	off     bool
	refill  time.Duration // how long an empty bucket takes to be full again

	mu      sync.Mutex
	buckets map[K]*bucket
}

type bucket struct {
	lim  *rate.Limiter
	last time.Time
}

// NewKeyed returns buckets of perSecond tokens per second holding burst
// tokens. A negative perSecond or burst turns them off (everything is
// allowed). maxKeys bounds the buckets kept (0: unbounded); when it is
// reached and sweeping idle buckets frees none, a new key is refused: a
// flood of distinct keys is limited too, not a way around the limit.
func NewKeyed[K comparable](perSecond, burst, maxKeys int) *Keyed[K] {
	k := &Keyed[K]{maxKeys: maxKeys, buckets: map[K]*bucket{}}
	if perSecond <= 0 || burst <= 0 {
		k.off = true
		return k
	}
	k.limit, k.burst = rate.Limit(perSecond), burst
	k.refill = time.Duration(float64(burst) / float64(perSecond) * float64(time.Second))
	return k
}

// Allow takes one token of key's bucket at now. When there is none it
// reports false and how long until there is.
func (k *Keyed[K]) Allow(key K, now time.Time) (ok bool, retryAfter time.Duration) {
	if k.off {
		return true, 0
	}
	k.mu.Lock()
	b := k.buckets[key]
	if b == nil {
		if k.maxKeys > 0 && len(k.buckets) >= k.maxKeys {
			k.sweepLocked(now)
			if len(k.buckets) >= k.maxKeys {
				k.mu.Unlock()
				return false, k.refill
			}
		}
		b = &bucket{lim: rate.NewLimiter(k.limit, k.burst)}
		k.buckets[key] = b
	}
	b.last = now
	k.mu.Unlock()
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// Len returns how many buckets are kept.
func (k *Keyed[K]) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.buckets)
}

// Sweep drops the buckets unused for long enough to be full again.
func (k *Keyed[K]) Sweep(now time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.sweepLocked(now)
}

func (k *Keyed[K]) sweepLocked(now time.Time) {
	for key, b := range k.buckets {
		if now.Sub(b.last) >= k.refill {
			delete(k.buckets, key)
		}
	}
}
