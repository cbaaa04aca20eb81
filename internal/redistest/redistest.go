// Package redistest gives tests the real Redis they run against: its URL
// (ECB_TEST_REDIS_URL, default the machine's 127.0.0.1:6379), a prefix of
// their own, and the removal of every key under it when they end. Under
// CI=true a Redis that does not answer fails the test; elsewhere it skips.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ecbridge/ecb/internal/cluster"
)

// URL returns the Redis the tests share, after checking that it answers.
func URL(tb testing.TB) string {
	tb.Helper()
	url := os.Getenv("ECB_TEST_REDIS_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		tb.Fatal(err)
	}
	c := redis.NewClient(opt)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("Redis is required under CI=true and does not answer at %s: %v", url, err)
		}
		tb.Skipf("no Redis at %s: %v", url, err)
	}
	return url
}

// Prefix returns a fresh key prefix starting with name, whose keys in the
// Redis at url are deleted when the test ends.
func Prefix(tb testing.TB, url, name string) string {
	tb.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	prefix := name + "-" + hex.EncodeToString(b[:])
	tb.Cleanup(func() { Drop(url, prefix) })
	return prefix
}

// Drop deletes every key under prefix.
func Drop(url, prefix string) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return
	}
	c := redis.NewClient(opt)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = cluster.DeletePrefix(ctx, c, prefix)
}
