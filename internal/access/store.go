// Package access holds what the backend decided live, through the Server API,
// about threads and users on this node: access-code overrides per thread and
// user (optionally for a limited time: a temporary ban is acc 0 with a TTL),
// thread states (closed: read-only; deleted), and token revocations per user
// (tokens issued before a given time are refused).
//
// A Store lives in memory on one node: on its own (one node), an ECB restart
// forgets it. In cluster mode it is the local cache of the shared store in
// Redis (package cluster), which writes there first and keeps every node's
// Store in step through the mirror methods Put, Remove and Replace; those
// apply what the shared store decided, without the rules and the limit of
// the write methods. The backend stays the system of record and must still
// refuse what it does not allow; these entries let ECB refuse early and act
// at once on live connections.
//
// The write methods take a context for the interface they share with the
// shared store (serverapi.Store); the Store itself never blocks on it.
//
// Entries with a deadline expire lazily (a read never returns an expired
// entry) and are swept by Run, whose caller owns its goroutine. A Store is
// safe for concurrent use; every method holds one mutex briefly and calls
// nothing outside the package under it.
package access

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ecbridge/ecb/internal/auth"
	"github.com/ecbridge/ecb/internal/periodic"
)

// ErrFull is returned when the Store already holds Config.MaxEntries entries.
var ErrFull = errors.New("access: too many overrides, thread states and revocations")

// Thread statuses, as the Server API and the thread push name them.
const (
	StatusOpen    = ""        // no mark: the thread is what its tokens say
	StatusClosed  = "closed"  // read-only: sends are refused
	StatusDeleted = "deleted" // gone: every operation on it is refused
)

// Config tunes a Store; zero values mean the defaults.
type Config struct {
	// StateTTL is how long a thread state and a revocation are kept (default
	// 24h). It should be at least the lifetime of the tokens the backend
	// signs: after it, ECB leaves the refusal to the backend alone.
	StateTTL time.Duration
	// MaxEntries bounds overrides, states and revocations together (default 100000).
	MaxEntries int
}

// Override is an access code that replaces a threadToken's acc for one user
// and thread.
type Override struct {
	Access    auth.Access
	ExpiresAt time.Time // zero: until deleted (or the node restarts)
}

type key struct{ thread, user string }

type stateEntry struct {
	status    string
	expiresAt time.Time
}

type revocation struct {
	before    time.Time
	expiresAt time.Time
}

// Store is the in-memory store of one node.
type Store struct {
	cfg Config

	mu        sync.Mutex
	overrides map[key]Override
	threads   map[string]stateEntry
	revoked   map[string]revocation
}

// WithDefaults returns cfg with its zero values replaced by the defaults.
func (cfg Config) WithDefaults() Config {
	if cfg.StateTTL <= 0 {
		cfg.StateTTL = 24 * time.Hour
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 100000
	}
	return cfg
}

// New returns an empty Store.
func New(cfg Config) *Store {
	cfg = cfg.WithDefaults()
	return &Store{cfg: cfg, overrides: map[key]Override{}, threads: map[string]stateEntry{}, revoked: map[string]revocation{}}
}

func expired(deadline, now time.Time) bool { return !deadline.IsZero() && !now.Before(deadline) }

// fullLocked reports whether a new entry would exceed MaxEntries, after
// sweeping once.
func (s *Store) fullLocked(now time.Time) bool {
	if s.lenLocked() < s.cfg.MaxEntries {
		return false
	}
	s.sweepLocked(now)
	return s.lenLocked() >= s.cfg.MaxEntries
}

func (s *Store) lenLocked() int { return len(s.overrides) + len(s.threads) + len(s.revoked) }

// SetAccess overrides the access of userID in threadID, for ttl (0: until
// deleted). It replaces any earlier override of the pair.
func (s *Store) SetAccess(_ context.Context, threadID, userID string, acc auth.Access, ttl time.Duration) (Override, error) {
	now := time.Now()
	o := Override{Access: acc}
	if ttl > 0 {
		o.ExpiresAt = now.Add(ttl)
	}
	k := key{threadID, userID}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.overrides[k]; !ok && s.fullLocked(now) {
		return Override{}, ErrFull
	}
	s.overrides[k] = o
	return o, nil
}

// Override returns the live override of userID in threadID.
func (s *Store) Override(threadID, userID string) (Override, bool) {
	now := time.Now()
	k := key{threadID, userID}
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.overrides[k]
	if ok && expired(o.ExpiresAt, now) {
		delete(s.overrides, k)
		return Override{}, false
	}
	return o, ok
}

// Lookup returns the access that replaces the threadToken's, if any: the
// ops.AccessOverrides view of the Store.
func (s *Store) Lookup(threadID, userID string) (auth.Access, bool) {
	o, ok := s.Override(threadID, userID)
	return o.Access, ok
}

// DeleteAccess removes the override of userID in threadID; it reports
// whether there was a live one. Its error is always nil.
func (s *Store) DeleteAccess(_ context.Context, threadID, userID string) (bool, error) {
	now := time.Now()
	k := key{threadID, userID}
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.overrides[k]
	delete(s.overrides, k)
	return ok && !expired(o.ExpiresAt, now), nil
}

// SetThreadStatus marks threadID closed or deleted for StateTTL, or clears
// its mark (StatusOpen). A deleted thread stays deleted: it cannot be
// closed or opened again until its mark expires.
func (s *Store) SetThreadStatus(_ context.Context, threadID, status string) error {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.threads[threadID]
	if ok && expired(cur.expiresAt, now) {
		delete(s.threads, threadID)
		ok = false
	}
	if ok && cur.status == StatusDeleted && status != StatusDeleted {
		return ErrDeleted
	}
	if status == StatusOpen {
		delete(s.threads, threadID)
		return nil
	}
	if !ok && s.fullLocked(now) {
		return ErrFull
	}
	s.threads[threadID] = stateEntry{status: status, expiresAt: now.Add(s.cfg.StateTTL)}
	return nil
}

// ErrDeleted is returned by SetThreadStatus for a thread already deleted.
var ErrDeleted = errors.New("access: the thread is deleted")

// ThreadStatus returns StatusOpen, StatusClosed or StatusDeleted: the
// ops.ThreadStates view of the Store.
func (s *Store) ThreadStatus(threadID string) string {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.threads[threadID]
	if !ok {
		return StatusOpen
	}
	if expired(st.expiresAt, now) {
		delete(s.threads, threadID)
		return StatusOpen
	}
	return st.status
}

// Revoke refuses the tokens of userID issued at or before before (at the
// resolution of a token's iat, one second), for StateTTL. A later call
// replaces the time; an earlier time than the current one is ignored, so
// that a revocation is never weakened by accident.
func (s *Store) Revoke(_ context.Context, userID string, before time.Time) (time.Time, error) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.revoked[userID]
	if ok && expired(cur.expiresAt, now) {
		ok = false
	}
	if ok && !before.After(cur.before) {
		return cur.before, nil
	}
	if _, exists := s.revoked[userID]; !exists && s.fullLocked(now) {
		return time.Time{}, ErrFull
	}
	s.revoked[userID] = revocation{before: before, expiresAt: now.Add(s.cfg.StateTTL)}
	return before, nil
}

// RevokedBefore returns the revocation time of userID, if any: the
// ops.Revocations view of the Store.
func (s *Store) RevokedBefore(userID string) (time.Time, bool) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.revoked[userID]
	if !ok {
		return time.Time{}, false
	}
	if expired(r.expiresAt, now) {
		delete(s.revoked, userID)
		return time.Time{}, false
	}
	return r.before, true
}

// Kind names the sort of an Entry.
type Kind byte

// The kinds of entries.
const (
	KindOverride   Kind = 'o' // an access override of a user in a thread
	KindThread     Kind = 't' // a thread's status
	KindRevocation Kind = 'r' // a user's revocation
)

// Entry is one override, thread status or revocation, as a shared store
// hands it to its local cache.
type Entry struct {
	Kind     Kind
	ThreadID string      // KindOverride, KindThread
	UserID   string      // KindOverride, KindRevocation
	Access   auth.Access // KindOverride
	Status   string      // KindThread: StatusClosed or StatusDeleted (StatusOpen removes)
	Before   time.Time   // KindRevocation
	// ExpiresAt is when the entry goes; zero: never (until removed).
	ExpiresAt time.Time
}

// Put stores e as it is, replacing the entry of the same kind and ids: a
// mirror's write, without the rules of the write methods (a deleted thread
// stays deleted, a revocation is never weakened) or their limit, which the
// shared store has applied already.
func (s *Store) Put(e Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.putLocked(e)
}

func (s *Store) putLocked(e Entry) {
	switch e.Kind {
	case KindOverride:
		s.overrides[key{e.ThreadID, e.UserID}] = Override{Access: e.Access, ExpiresAt: e.ExpiresAt}
	case KindThread:
		if e.Status == StatusOpen {
			delete(s.threads, e.ThreadID)
			return
		}
		s.threads[e.ThreadID] = stateEntry{status: e.Status, expiresAt: e.ExpiresAt}
	case KindRevocation:
		s.revoked[e.UserID] = revocation{before: e.Before, expiresAt: e.ExpiresAt}
	}
}

// Remove drops the entry of kind k and the ids its kind has (a mirror's
// delete: the shared store no longer has it).
func (s *Store) Remove(k Kind, threadID, userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch k {
	case KindOverride:
		delete(s.overrides, key{threadID, userID})
	case KindThread:
		delete(s.threads, threadID)
	case KindRevocation:
		delete(s.revoked, userID)
	}
}

// Replace makes es the whole content of the Store (a mirror's full reload).
func (s *Store) Replace(es []Entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.overrides)
	clear(s.threads)
	clear(s.revoked)
	for _, e := range es {
		s.putLocked(e)
	}
}

// Len returns how many entries the Store holds, expired ones not yet swept included.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lenLocked()
}

// Sweep drops the entries expired at now and returns how many.
func (s *Store) Sweep(now time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sweepLocked(now)
}

func (s *Store) sweepLocked(now time.Time) (n int) {
	for k, o := range s.overrides {
		if expired(o.ExpiresAt, now) {
			delete(s.overrides, k)
			n++
		}
	}
	for id, st := range s.threads {
		if expired(st.expiresAt, now) {
			delete(s.threads, id)
			n++
		}
	}
	for id, r := range s.revoked {
		if expired(r.expiresAt, now) {
			delete(s.revoked, id)
			n++
		}
	}
	return n
}

// Run sweeps expired entries every interval until ctx is done.
func (s *Store) Run(ctx context.Context, interval time.Duration) {
	periodic.Run(ctx, interval, func(now time.Time) { s.Sweep(now) })
}
