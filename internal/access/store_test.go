package access_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ecbridge/ecb/internal/access"
	"github.com/ecbridge/ecb/internal/auth"
	"github.com/ecbridge/ecb/internal/ops"
)

// The Store is what ops consults.
var (
	_ ops.AccessOverrides = (*access.Store)(nil)
	_ ops.ThreadStates    = (*access.Store)(nil)
	_ ops.Revocations     = (*access.Store)(nil)
)

func TestOverrideExpiresLazily(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := access.New(access.Config{})
		if _, ok := s.Lookup("t1", "alice"); ok {
			t.Fatal("override before any was set")
		}
		o, err := s.SetAccess(t.Context(), "t1", "alice", 0, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if !o.ExpiresAt.Equal(time.Now().Add(time.Hour)) {
			t.Errorf("expiresAt %v", o.ExpiresAt)
		}
		if acc, ok := s.Lookup("t1", "alice"); !ok || acc != 0 {
			t.Fatalf("lookup = %d %v, want 0 true", acc, ok)
		}
		if _, ok := s.Lookup("t1", "bob"); ok {
			t.Fatal("another user is overridden")
		}
		if _, ok := s.Lookup("t2", "alice"); ok {
			t.Fatal("another thread is overridden")
		}
		time.Sleep(time.Hour - time.Second)
		if _, ok := s.Lookup("t1", "alice"); !ok {
			t.Fatal("expired early")
		}
		time.Sleep(time.Second)
		if _, ok := s.Lookup("t1", "alice"); ok {
			t.Fatal("still there at its deadline")
		}
		if n := s.Len(); n != 0 {
			t.Fatalf("expired entry kept: %d", n)
		}
	})
}

func TestOverrideWithoutTTLStaysUntilDeleted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := access.New(access.Config{})
		_, _ = s.SetAccess(t.Context(), "t1", "alice", auth.AccessRead, 0)
		time.Sleep(1000 * time.Hour)
		if acc, ok := s.Lookup("t1", "alice"); !ok || acc != auth.AccessRead {
			t.Fatalf("lookup = %d %v", acc, ok)
		}
		if deleted, _ := s.DeleteAccess(t.Context(), "t1", "alice"); !deleted {
			t.Fatal("delete reported nothing deleted")
		}
		if deleted, _ := s.DeleteAccess(t.Context(), "t1", "alice"); deleted {
			t.Fatal("second delete reported a deletion")
		}
		if _, ok := s.Lookup("t1", "alice"); ok {
			t.Fatal("override survives its deletion")
		}
	})
}

func TestRunSweepsUntilCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := access.New(access.Config{StateTTL: time.Minute})
		_, _ = s.SetAccess(t.Context(), "t1", "a", 0, time.Second)
		_ = s.SetThreadStatus(t.Context(), "t2", access.StatusClosed)
		_, _ = s.Revoke(t.Context(), "u", time.Now())
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { s.Run(ctx, 10*time.Second) })
		time.Sleep(15 * time.Second)
		synctest.Wait()
		if n := s.Len(); n != 2 {
			t.Fatalf("after 15s: %d entries, want 2 (the override swept)", n)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := s.Len(); n != 0 {
			t.Fatalf("after the state TTL: %d entries", n)
		}
		cancel()
		wg.Wait()
	})
}

func TestThreadStatus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := access.New(access.Config{StateTTL: time.Hour})
		if st := s.ThreadStatus("t1"); st != access.StatusOpen {
			t.Fatalf("status %q", st)
		}
		if err := s.SetThreadStatus(t.Context(), "t1", access.StatusClosed); err != nil {
			t.Fatal(err)
		}
		if st := s.ThreadStatus("t1"); st != access.StatusClosed {
			t.Fatalf("status %q", st)
		}
		_ = s.SetThreadStatus(t.Context(), "t1", access.StatusOpen)
		if st := s.ThreadStatus("t1"); st != access.StatusOpen {
			t.Fatalf("reopened: %q", st)
		}
		_ = s.SetThreadStatus(t.Context(), "t1", access.StatusDeleted)
		if err := s.SetThreadStatus(t.Context(), "t1", access.StatusClosed); !errors.Is(err, access.ErrDeleted) {
			t.Fatalf("closing a deleted thread: %v", err)
		}
		if err := s.SetThreadStatus(t.Context(), "t1", access.StatusOpen); !errors.Is(err, access.ErrDeleted) {
			t.Fatalf("reopening a deleted thread: %v", err)
		}
		time.Sleep(time.Hour)
		if st := s.ThreadStatus("t1"); st != access.StatusOpen {
			t.Fatalf("after the TTL: %q", st)
		}
	})
}

func TestRevocationNeverWeakens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := access.New(access.Config{StateTTL: time.Hour})
		t0 := time.Now()
		if got, _ := s.Revoke(t.Context(), "alice", t0); !got.Equal(t0) {
			t.Fatalf("revoke = %v", got)
		}
		if got, _ := s.Revoke(t.Context(), "alice", t0.Add(-time.Minute)); !got.Equal(t0) {
			t.Fatalf("an earlier time replaced the revocation: %v", got)
		}
		later := t0.Add(time.Minute)
		if got, _ := s.Revoke(t.Context(), "alice", later); !got.Equal(later) {
			t.Fatalf("a later time was ignored: %v", got)
		}
		if b, ok := s.RevokedBefore("alice"); !ok || !b.Equal(later) {
			t.Fatalf("revokedBefore = %v %v", b, ok)
		}
		if _, ok := s.RevokedBefore("bob"); ok {
			t.Fatal("bob is revoked")
		}
		time.Sleep(time.Hour)
		if _, ok := s.RevokedBefore("alice"); ok {
			t.Fatal("revocation outlived the state TTL")
		}
	})
}

func TestMaxEntries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := access.New(access.Config{MaxEntries: 2})
		_, _ = s.SetAccess(t.Context(), "t1", "a", 0, time.Second)
		_, _ = s.SetAccess(t.Context(), "t1", "b", 0, 0)
		if _, err := s.SetAccess(t.Context(), "t1", "c", 0, 0); !errors.Is(err, access.ErrFull) {
			t.Fatalf("third entry: %v", err)
		}
		if _, err := s.SetAccess(t.Context(), "t1", "b", 1, 0); err != nil {
			t.Fatalf("replacing an entry when full: %v", err)
		}
		if err := s.SetThreadStatus(t.Context(), "t9", access.StatusClosed); !errors.Is(err, access.ErrFull) {
			t.Fatalf("state when full: %v", err)
		}
		if _, err := s.Revoke(t.Context(), "u", time.Now()); !errors.Is(err, access.ErrFull) {
			t.Fatalf("revocation when full: %v", err)
		}
		time.Sleep(time.Second) // the first one expires: room again
		if _, err := s.SetAccess(t.Context(), "t1", "c", 0, 0); err != nil {
			t.Fatalf("after an expiry: %v", err)
		}
	})
}

// Under concurrent use the bound is exact, each writer reads back what it
// wrote, and a revocation is never weakened by an earlier time racing it.
func TestConcurrentUse(t *testing.T) {
	const workers, perWorker, maxEntries = 8, 50, 100
	s := access.New(access.Config{MaxEntries: maxEntries})
	base := time.Now()
	var mu sync.Mutex
	stored := map[string]auth.Access{}
	full := 0
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			for j := range perWorker {
				thread, user := fmt.Sprint("t", j), fmt.Sprint("u", i)
				acc := auth.Access((i + j) % 16)
				_, err := s.SetAccess(t.Context(), thread, user, acc, 0)
				switch {
				case errors.Is(err, access.ErrFull):
					mu.Lock()
					full++
					mu.Unlock()
					continue
				case err != nil:
					t.Error(err)
					return
				}
				if got, ok := s.Lookup(thread, user); !ok || got != acc {
					t.Errorf("%s/%s: read back %d %v, wrote %d", thread, user, got, ok, acc)
				}
				mu.Lock()
				stored[thread+"/"+user] = acc
				mu.Unlock()
				s.ThreadStatus("shared")
				s.RevokedBefore("shared")
			}
		})
	}
	wg.Wait()
	if len(stored) != maxEntries || full != workers*perWorker-maxEntries || s.Len() != maxEntries {
		t.Fatalf("%d stored, %d refused as full, Len %d; want exactly %d stored", len(stored), full, s.Len(), maxEntries)
	}

	s = access.New(access.Config{})
	for i := range workers {
		wg.Go(func() {
			for j := range perWorker {
				// Times interleave across workers: worker i revokes before base+i+workers*j.
				if _, err := s.Revoke(t.Context(), "shared", base.Add(time.Duration(i+workers*j)*time.Second)); err != nil {
					t.Error(err)
				}
				if err := s.SetThreadStatus(t.Context(), "shared", access.StatusClosed); err != nil {
					t.Error(err)
				}
				if st := s.ThreadStatus("shared"); st != access.StatusClosed {
					t.Errorf("thread status %q while only ever closed", st)
				}
			}
		})
	}
	wg.Wait()
	latest := base.Add(time.Duration(workers*perWorker-1) * time.Second)
	if got, ok := s.RevokedBefore("shared"); !ok || !got.Equal(latest) {
		t.Fatalf("revoked before %v, want the latest time %v", got, latest)
	}
}

// The mirror methods apply what a shared store decided, as they get it:
// deadlines included, without the write methods' rules and limit.
func TestMirrorPutRemoveReplace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := access.New(access.Config{MaxEntries: 1})
		deadline := time.Now().Add(time.Minute)
		s.Put(access.Entry{Kind: access.KindOverride, ThreadID: "t1", UserID: "bob", Access: auth.AccessRead, ExpiresAt: deadline})
		s.Put(access.Entry{Kind: access.KindThread, ThreadID: "t1", Status: access.StatusDeleted, ExpiresAt: deadline})
		s.Put(access.Entry{Kind: access.KindRevocation, UserID: "bob", Before: deadline.Add(-time.Hour), ExpiresAt: deadline})
		if n := s.Len(); n != 3 {
			t.Fatalf("the mirror holds %d entries, want 3 (beyond MaxEntries: the shared store bounds them)", n)
		}
		if o, ok := s.Override("t1", "bob"); !ok || o.Access != auth.AccessRead || !o.ExpiresAt.Equal(deadline) {
			t.Fatalf("override %+v %v", o, ok)
		}
		// A later decision replaces even a deleted mark (the shared store applied the rule).
		s.Put(access.Entry{Kind: access.KindThread, ThreadID: "t1", Status: access.StatusClosed, ExpiresAt: deadline})
		if st := s.ThreadStatus("t1"); st != access.StatusClosed {
			t.Fatalf("status %q", st)
		}
		s.Put(access.Entry{Kind: access.KindThread, ThreadID: "t1", Status: access.StatusOpen})
		if st := s.ThreadStatus("t1"); st != access.StatusOpen {
			t.Fatalf("status %q after an open mark", st)
		}
		if before, ok := s.RevokedBefore("bob"); !ok || !before.Equal(deadline.Add(-time.Hour)) {
			t.Fatalf("revocation %v %v", before, ok)
		}
		s.Remove(access.KindRevocation, "", "bob")
		s.Remove(access.KindOverride, "t1", "bob")
		if s.Len() != 0 {
			t.Fatalf("%d entries left after Remove", s.Len())
		}
		s.Put(access.Entry{Kind: access.KindOverride, ThreadID: "t9", UserID: "x"})
		s.Replace([]access.Entry{
			{Kind: access.KindOverride, ThreadID: "t2", UserID: "carol", Access: 0},
			{Kind: access.KindRevocation, UserID: "carol", Before: deadline, ExpiresAt: deadline},
		})
		if _, ok := s.Lookup("t9", "x"); ok {
			t.Fatal("Replace kept an entry it was not given")
		}
		if _, ok := s.Lookup("t2", "carol"); !ok {
			t.Fatal("Replace lost an entry")
		}
		time.Sleep(time.Minute)
		if _, ok := s.RevokedBefore("carol"); ok {
			t.Fatal("a mirrored revocation outlived its deadline")
		}
		if _, ok := s.Lookup("t2", "carol"); !ok {
			t.Fatal("an override without deadline expired")
		}
	})
}
