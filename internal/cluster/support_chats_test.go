package cluster_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ecbridge/ecb/internal/cluster"
)

type chatChange struct {
	v      uint64
	thread string
	req    string
	reset  bool
}

// The live chats: only the lease's holder writes them; every node's Serve
// hears each change, in order, with its version; Chats reads the set.
func TestSupportChatsAreFencedAndTold(t *testing.T) {
	cfg := clusterConfig(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	open := func(id string) *cluster.SupportShare {
		c := cfg
		c.NodeID = id
		n, err := cluster.Open(ctx, c, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(n.Close)
		return n.SupportShare(time.Second)
	}
	a, b := open("A"), open("B")
	got := make(chan chatChange, 16)
	nop := func(context.Context, []byte) []byte { return nil }
	if err := a.Serve(ctx, &wg, nop, func(uint64, string, []byte, bool) {}); err != nil {
		t.Fatal(err)
	}
	if err := b.Serve(ctx, &wg, nop, func(v uint64, thread string, req []byte, reset bool) {
		got <- chatChange{v, thread, string(req), reset}
	}); err != nil {
		t.Fatal(err)
	}
	next := func() chatChange {
		t.Helper()
		select {
		case c := <-got:
			return c
		case <-time.After(5 * time.Second):
			t.Fatal("no change told")
			return chatChange{}
		}
	}
	if err := a.NoteChat(ctx, "t1", []byte(`{"id":"r1"}`)); !errors.Is(err, cluster.ErrNotHolder) {
		t.Fatalf("a note without the lease: %v", err)
	}
	if held, err := a.Acquire(ctx); err != nil || !held {
		t.Fatalf("acquire: %v %v", held, err)
	}
	if err := a.ResetChats(ctx, map[string][]byte{"t0": []byte(`{"id":"r0"}`)}); err != nil {
		t.Fatal(err)
	}
	if c := next(); c != (chatChange{1, "", "", true}) {
		t.Fatalf("reset told %+v", c)
	}
	if err := a.NoteChat(ctx, "t1", []byte(`{"id":"r1"}`)); err != nil {
		t.Fatal(err)
	}
	if c := next(); c != (chatChange{2, "t1", `{"id":"r1"}`, false}) {
		t.Fatalf("note told %+v", c)
	}
	if err := a.NoteChat(ctx, "t0", nil); err != nil {
		t.Fatal(err)
	}
	if c := next(); c != (chatChange{3, "t0", "", false}) {
		t.Fatalf("forget told %+v", c)
	}
	chats, v, err := b.Chats(ctx)
	if err != nil || v != 3 || len(chats) != 1 || string(chats["t1"]) != `{"id":"r1"}` {
		t.Fatalf("chats %v version %d %v", chats, v, err)
	}
	if v, err := b.ChatsVersion(ctx); err != nil || v != 3 {
		t.Fatalf("version %d %v", v, err)
	}
	if err := b.NoteChat(ctx, "t2", []byte(`{}`)); !errors.Is(err, cluster.ErrNotHolder) {
		t.Fatalf("b's note: %v", err)
	}
	if err := b.ResetChats(ctx, nil); !errors.Is(err, cluster.ErrNotHolder) {
		t.Fatalf("b's reset: %v", err)
	}
	// A's lease gone behind its back (expired while it was paused): its
	// writes are refused by Redis.
	opt, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	if err := rdb.Del(ctx, cfg.Prefix+":{support}:lease").Err(); err != nil {
		t.Fatal(err)
	}
	if err := a.NoteChat(ctx, "t3", []byte(`{}`)); !errors.Is(err, cluster.ErrNotHolder) {
		t.Fatalf("a stale owner's note: %v", err)
	}
	if _, v, err := b.Chats(ctx); err != nil || v != 3 {
		t.Fatalf("version %d after a refused note: %v", v, err)
	}
}
