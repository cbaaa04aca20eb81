package auth

import (
	"crypto/sha256"
	"slices"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// threadCache remembers threadTokens that verified, keyed by the SHA-256 of
// the token, each until its exp. It only saves the signature check and the
// claims decoding: what a Thread says is the token's own content, and every
// live decision (access overrides, thread status, revocations, membership)
// is taken by the caller after VerifyThread, on every call, cached or not.
// Entries are bounded (least recently used goes first); a miss verifies in
// full. The lru.Cache has its own lock; nothing is called while holding it.
type threadCache struct {
	c   *lru.Cache[[sha256.Size]byte, Thread]
	now func() time.Time
}

func newThreadCache(size int) *threadCache {
	if size <= 0 {
		return nil
	}
	c, err := lru.New[[sha256.Size]byte, Thread](size)
	if err != nil { // only for a size <= 0, excluded above
		return nil
	}
	return &threadCache{c: c, now: time.Now}
}

// get returns a copy of the remembered Thread of token while its exp is in
// the future. The copy is the caller's: changing it (ops applies a live
// access override to its Access) never changes what the next caller gets.
func (tc *threadCache) get(token string) (*Thread, bool) {
	if tc == nil {
		return nil, false
	}
	key := sha256.Sum256([]byte(token))
	t, ok := tc.c.Get(key)
	if !ok {
		return nil, false
	}
	if !tc.now().Before(t.ExpiresAt) {
		tc.c.Remove(key)
		return nil, false
	}
	t.Members = slices.Clone(t.Members)
	return &t, true
}

// put remembers a verified Thread; a token without exp is never cached (the
// parser requires exp, so this is a belt and braces check).
func (tc *threadCache) put(token string, t *Thread) {
	if tc == nil || t.ExpiresAt.IsZero() {
		return
	}
	v := *t
	v.Members = slices.Clone(t.Members)
	tc.c.Add(sha256.Sum256([]byte(token)), v)
}
