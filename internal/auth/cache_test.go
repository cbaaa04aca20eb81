package auth_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/ecbridge/ecb/internal/auth"
)

// A cached threadToken answers the same Thread as a full verification, and
// each caller gets its own copy: ops writes a live access override into the
// Access it got, which must never reach the next caller of the same token.
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
	first.Members[0] = "mallory"
	second, err := v.VerifyThread(tok)
	if err != nil {
		t.Fatal(err)
	}
	if second.Access != auth.AccessRead|auth.AccessWrite || !slices.Equal(second.Members, []string{"u-1", "u-2"}) {
		t.Fatalf("cached thread = %+v: a caller's change leaked into the cache", second)
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
