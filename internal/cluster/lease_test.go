package cluster_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ecbridge/ecb/internal/cluster"
)

func leaseClient(tb testing.TB) (*redis.Client, string) {
	tb.Helper()
	cfg := clusterConfig(tb)
	opt, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		tb.Fatal(err)
	}
	c := redis.NewClient(opt)
	tb.Cleanup(func() { _ = c.Close() })
	return c, cfg.Prefix
}

func TestLeaseHasOneHolderAndPassesOnRelease(t *testing.T) {
	rdb, prefix := leaseClient(t)
	ctx := context.Background()
	a := cluster.NewLease(rdb, prefix, "support", "A", 10*time.Second)
	b := cluster.NewLease(rdb, prefix, "support", "B", 10*time.Second)
	if held, err := a.Acquire(ctx); err != nil || !held {
		t.Fatalf("A: %v %v", held, err)
	}
	if held, err := b.Acquire(ctx); err != nil || held {
		t.Fatalf("B took a held lease: %v %v", held, err)
	}
	if held, err := a.Acquire(ctx); err != nil || !held {
		t.Fatalf("A's renewal: %v %v", held, err)
	}
	if h, err := b.Holder(ctx); err != nil || h != "A" {
		t.Fatalf("holder %q %v", h, err)
	}
	if _, err := b.WriteFenced(ctx, []byte("b")); !errors.Is(err, cluster.ErrNotHolder) {
		t.Fatalf("B's write: %v", err)
	}
	if v, err := a.WriteFenced(ctx, []byte("a1")); err != nil || v != 1 {
		t.Fatalf("A's write: %d %v", v, err)
	}
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if held, err := b.Acquire(ctx); err != nil || !held {
		t.Fatalf("B after the release: %v %v", held, err)
	}
	if d, v, err := b.ReadState(ctx); err != nil || string(d) != "a1" || v != 1 {
		t.Fatalf("B reads %q v%d %v", d, v, err)
	}
	if v, err := b.WriteFenced(ctx, []byte("b2")); err != nil || v != 2 {
		t.Fatalf("B's write: %d %v", v, err)
	}
}

// A holder that stops renewing loses the lease when its TTL runs out; its
// later writes are refused, and its next Acquire finds it lost.
func TestLeaseExpiresAndTheStaleOwnerIsFenced(t *testing.T) {
	rdb, prefix := leaseClient(t)
	ctx := context.Background()
	a := cluster.NewLease(rdb, prefix, "support", "A", 300*time.Millisecond)
	b := cluster.NewLease(rdb, prefix, "support", "B", 10*time.Second)
	if held, err := a.Acquire(ctx); err != nil || !held {
		t.Fatalf("A: %v %v", held, err)
	}
	// A pauses (no renewal); B tries until the TTL has run out.
	deadline := time.Now().Add(10 * time.Second)
	for {
		held, err := b.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if held {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the lease never expired")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if v, err := b.WriteFenced(ctx, []byte("new")); err != nil || v != 1 {
		t.Fatalf("B's write: %d %v", v, err)
	}
	if _, err := a.WriteFenced(ctx, []byte("stale")); !errors.Is(err, cluster.ErrNotHolder) {
		t.Fatalf("the stale owner's write: %v", err)
	}
	if d, _, _ := b.ReadState(ctx); string(d) != "new" {
		t.Fatalf("state %q", d)
	}
	if held, err := a.Acquire(ctx); err != nil || held || a.Token() != "" {
		t.Fatalf("A's renewal after the expiry: %v %v %q", held, err, a.Token())
	}
	// Releasing a lease one does not hold leaves the holder's alone.
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if h, _ := b.Holder(ctx); h != "B" {
		t.Fatalf("holder %q", h)
	}
}
