package auth

import (
	"crypto/sha256"
	"encoding/binary"
	"io"
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
// full. The lru.Caches have their own locks; nothing is called while holding
// them.
//
// The member list is kept once per thread and list, not once per token: the
// tokens of a thread's members carry the same list, and a copy per token
// made the cache grow with the square of a thread's size (1,000 listeners
// of one thread of 1,000 members held a million member strings, about
// 21 KB per connection). Entries with equal lists share one read-only
// slice (Thread.Members).
type threadCache struct {
	c     *lru.Cache[[sha256.Size]byte, Thread]
	lists *lru.Cache[[sha256.Size]byte, []string] // by listKey
	now   func() time.Time
}

func newThreadCache(size int) *threadCache {
	if size <= 0 {
		return nil
	}
	c, err := lru.New[[sha256.Size]byte, Thread](size)
	if err != nil { // only for a size <= 0, excluded above
		return nil
	}
	lists, err := lru.New[[sha256.Size]byte, []string](size)
	if err != nil {
		return nil
	}
	return &threadCache{c: c, lists: lists, now: time.Now}
}

// get returns a copy of the remembered Thread of token while its exp is in
// the future. The copy is the caller's: changing its fields (ops applies a
// live access override to its Access) never changes what the next caller
// gets; its Members slice is shared and must not be written.
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
	return &t, true
}

// put remembers a verified Thread; a token without exp is never cached (the
// parser requires exp, so this is a belt and braces check). Its member list
// is the one already remembered for the thread when they are equal.
func (tc *threadCache) put(token string, t *Thread) {
	if tc == nil || t.ExpiresAt.IsZero() {
		return
	}
	v := *t
	v.Members = tc.shared(t.ThreadID, t.Members)
	tc.c.Add(sha256.Sum256([]byte(token)), v)
}

// shared returns the remembered list equal to members of threadID, or
// remembers a copy of members.
func (tc *threadCache) shared(threadID string, members []string) []string {
	if len(members) == 0 {
		return nil
	}
	key := listKey(threadID, members)
	if l, ok := tc.lists.Get(key); ok && slices.Equal(l, members) {
		return l
	}
	l := slices.Clone(members)
	tc.lists.Add(key, l)
	return l
}

// listKey hashes a thread id and its member list, each string after its
// length, so that no two different lists hash the same input.
func listKey(threadID string, members []string) [sha256.Size]byte {
	h := sha256.New()
	var n [8]byte
	put := func(s string) {
		binary.LittleEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		io.WriteString(h, s)
	}
	put(threadID)
	for _, m := range members {
		put(m)
	}
	var key [sha256.Size]byte
	h.Sum(key[:0])
	return key
}
