package auth_test

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/ecbridge/ecb/internal/auth"
)

// A cached threadToken answers the same Thread as a full verification, and
// each caller gets its own copy: ops writes a live access override into the
// Access it got, which must never reach the next caller of the same token.
// (Members is read-only, see TestThreadCacheSharesMemberLists.)
func TestThreadCacheAnswersCopies(t *testing.T) {
	t.Parallel()
	v := rsaOnly(t)
	tok := rs256(t, threadClaims())
	first, err := v.VerifyThread(tok)
	if err != nil {
		t.Fatal(err)
	}
	if n := auth.CachedThreads(v); n != 1 {
		t.Fatalf("cached %d tokens after one verification, want 1", n)
	}
	first.Access = 0 // what a ban override does to the caller's copy
	first.UserID = "mallory"
	second, err := v.VerifyThread(tok)
	if err != nil {
		t.Fatal(err)
	}
	if second.Access != auth.AccessRead|auth.AccessWrite || second.UserID != "u-1" || !slices.Equal(second.Members, []string{"u-1", "u-2"}) {
		t.Fatalf("cached thread = %+v: a caller's change leaked into the cache", second)
	}
}

// The tokens of one thread's members carry the same member list; the cache
// keeps it once, shared by their entries, and a token whose list differs
// (another thread, or the same thread after a member joined) has its own.
func TestThreadCacheSharesMemberLists(t *testing.T) {
	t.Parallel()
	v := rsaOnly(t)
	members := []string{"u-1", "u-2", "u-3"}
	verify := func(claims map[string]any) *auth.Thread {
		t.Helper()
		tok := rs256(t, claims)
		if _, err := v.VerifyThread(tok); err != nil { // the miss, which caches
			t.Fatal(err)
		}
		th, err := v.VerifyThread(tok) // the hit
		if err != nil {
			t.Fatal(err)
		}
		return th
	}
	a := verify(threadClaims(set("uid", "u-1"), set("members", members)))
	b := verify(threadClaims(set("uid", "u-2"), set("members", members)))
	other := verify(threadClaims(set("uid", "u-3"), set("sub", "t-other"), set("members", members)))
	grown := verify(threadClaims(set("uid", "u-3"), set("members", append(slices.Clone(members), "u-4"))))
	if n := auth.CachedThreads(v); n != 4 {
		t.Fatalf("cached %d tokens, want 4", n)
	}
	for _, th := range []*auth.Thread{a, b, other} {
		if !slices.Equal(th.Members, members) {
			t.Fatalf("%s's members = %v, want %v", th.UserID, th.Members, members)
		}
	}
	if !slices.Equal(grown.Members, append(slices.Clone(members), "u-4")) {
		t.Fatalf("the grown list = %v", grown.Members)
	}
	if &a.Members[0] != &b.Members[0] {
		t.Fatal("two tokens of one thread with one list keep two copies of it")
	}
	if &a.Members[0] == &other.Members[0] || &a.Members[0] == &grown.Members[0] {
		t.Fatal("another thread's, or another list's, token shares the list")
	}
}

// An entry lives until the token's exp, not longer: after it, the token is
// verified again and refused as expired.
func TestThreadCacheEndsAtExp(t *testing.T) {
	t.Parallel()
	v := rsaOnly(t) // leeway 30s: two minutes after an exp one minute away is past both
	now := time.Now()
	auth.SetClock(v, func() time.Time { return now })
	tok := rs256(t, threadClaims(set("exp", now.Add(time.Minute).Unix())))
	if _, err := v.VerifyThread(tok); err != nil {
		t.Fatal(err)
	}
	if _, err := v.VerifyThread(tok); err != nil {
		t.Fatalf("cached: %v", err)
	}
	now = now.Add(2 * time.Minute)
	if _, err := v.VerifyThread(tok); !errors.Is(err, auth.ErrExpired) {
		t.Fatalf("after exp: %v, want ErrExpired", err)
	}
}

// The cache is bounded, a refused token is never remembered, and -1 turns
// the cache off.
func TestThreadCacheBounded(t *testing.T) {
	t.Parallel()
	v := newVerifier(t, auth.Config{TokenCacheSize: 2}, keys().rsa.Public())
	for i := range 3 {
		if _, err := v.VerifyThread(rs256(t, threadClaims(set("sub", "t-"+string(rune('a'+i)))))); err != nil {
			t.Fatal(err)
		}
	}
	if n := auth.CachedThreads(v); n != 2 {
		t.Fatalf("cached %d tokens with tokenCacheSize 2", n)
	}
	if _, err := v.VerifyThread(rs256(t, threadClaims(set("acc", 99)))); err == nil {
		t.Fatal("acc 99 verified")
	}
	if n := auth.CachedThreads(v); n != 2 {
		t.Fatalf("a refused token was cached: %d", n)
	}
	off := newVerifier(t, auth.Config{TokenCacheSize: -1}, keys().rsa.Public())
	if _, err := off.VerifyThread(rs256(t, threadClaims())); err != nil {
		t.Fatal(err)
	}
	if n := auth.CachedThreads(off); n != 0 {
		t.Fatalf("tokenCacheSize -1 cached %d", n)
	}
}

// BenchmarkThreadCacheBigThread is the memory the cache keeps for the
// tokens of every member of one thread of 1,000 (one listener each, as in
// `ecb bench stepped`'s 1x1000): live heap per cached token, after a GC.
func BenchmarkThreadCacheBigThread(b *testing.B) {
	const n = 1000
	members := make([]string, n)
	for i := range members {
		members[i] = fmt.Sprintf("u%03d", i) // short: a token is at most 16 KiB
	}
	toks := make([]string, n)
	for i := range toks {
		toks[i] = rs256(b, threadClaims(set("uid", members[i]), set("members", members)))
	}
	for b.Loop() {
		v := newVerifier(b, auth.Config{TokenCacheSize: 2 * n}, keys().rsa.Public())
		before := liveHeap()
		for _, tok := range toks {
			if _, err := v.VerifyThread(tok); err != nil {
				b.Fatal(err)
			}
		}
		after := liveHeap()
		runtime.KeepAlive(v)
		b.ReportMetric(float64(after-before)/n, "heap-B/token")
	}
}

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkVerifyThreadCache compares, side by side in one run, a
// threadToken verified in full (cache off) with one answered from the cache.
func BenchmarkVerifyThreadCache(b *testing.B) {
	tok := rs256(b, threadClaims())
	for _, c := range []struct {
		name string
		size int
	}{{"off", -1}, {"on", 0}} {
		b.Run(c.name, func(b *testing.B) {
			v := newVerifier(b, auth.Config{TokenCacheSize: c.size}, keys().rsa.Public())
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.VerifyThread(tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
