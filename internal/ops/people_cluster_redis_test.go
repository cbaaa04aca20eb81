package ops_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/ecbridge/ecb/internal/auth"
	"github.com/ecbridge/ecb/internal/cluster"
	"github.com/ecbridge/ecb/internal/hub"
	"github.com/ecbridge/ecb/internal/ops"
	"github.com/ecbridge/ecb/internal/presence"
	"github.com/ecbridge/ecb/internal/redistest"
)

// startPeopleNode is one in-process node on Redis: a Service on a hub on a
// cluster.Node, with presence across the nodes.
func startPeopleNode(tb testing.TB, base *fixture, cfg cluster.Config) *fixture {
	tb.Helper()
	return startPeopleNodeWith(tb, base, cfg, nil)
}

// startPeopleNodeWith is startPeopleNode with setup run on the Service
// before the node starts; the stop it returns (if any) runs first at
// cleanup, before the node closes.
func startPeopleNodeWith(tb testing.TB, base *fixture, cfg cluster.Config, setup func(*fixture) (stop func())) *fixture {
	tb.Helper()
	n, err := cluster.Open(context.Background(), cfg, nil)
	if err != nil {
		tb.Fatal(err)
	}
	h := hub.New(hub.Config{Broker: n.Broker, Controller: n.Controller, NodeID: n.ID()})
	v, err := auth.NewVerifierFromKeys(auth.Config{Audience: "ecb-test"}, &testKey.PublicKey)
	if err != nil {
		tb.Fatal(err)
	}
	f := &fixture{svc: ops.New(ops.Config{}, base.backend, v, h, slog.New(slog.DiscardHandler), nil), hub: h, backend: base.backend, signer: base.signer}
	f.svc.Presence().SetStore(n.Presence)
	stop := func() {}
	if setup != nil {
		if s := setup(f); s != nil {
			stop = s
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.Start(ctx)
	tb.Cleanup(func() {
		stop()
		cancel()
		n.Close()
	})
	deadline := time.Now().Add(10 * time.Second)
	for n.Ready(context.Background()) != nil {
		if time.Now().After(deadline) {
			tb.Fatal("the cluster node is not ready")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return f
}

// awaitPresence waits for a presence push of userID with show on w.
func awaitPresence(tb testing.TB, w *watcher, userID, show string) {
	tb.Helper()
	deadline := time.After(15 * time.Second)
	for {
		w.mu.Lock()
		for _, p := range w.got {
			var pr presence.Presence
			if p.Event == presence.EventPresence && json.Unmarshal(p.Payload(), &pr) == nil && pr.UserID == userID && pr.Show == show {
				w.mu.Unlock()
				return
			}
		}
		w.mu.Unlock()
		select {
		case <-w.ch:
		case <-deadline:
			tb.Fatalf("no presence push of %s %s", userID, show)
		}
	}
}

// Two nodes: alice on A adds dave, who is connected to B only. dave's
// connection is told through the control channel and gets alice's presence;
// alice gets dave's (held by B) and its later changes; after the removal,
// dave's changes no longer reach her.
func TestContactsAcrossNodes(t *testing.T) {
	url := redistest.URL(t)
	cfg := cluster.Config{RedisURL: url, Prefix: redistest.Prefix(t, url, "ecbtest-people"), ProbeInterval: 100 * time.Millisecond}
	base := newFixture(t)
	base.backend.usePeople()
	a := startPeopleNode(t, base, cfg)
	b := startPeopleNode(t, base, cfg)
	ctx := context.Background()

	aliceConn, daveConn := newWatcher(), newWatcher()
	alice := a.caller(t, "alice", aliceConn)
	dave := b.caller(t, "dave", daveConn)
	if _, err := b.svc.SetPresence(ctx, dave, ops.SetPresenceRequest{Show: "dnd"}); err != nil {
		t.Fatal(err)
	}
	// Node A reads dave's presence from Redis once B has written it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ps, err := a.svc.Presence().Get(ctx, []string{"dave"})
		if err == nil && ps[0].Show == "dnd" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node A never saw dave's presence: %+v %v", ps, err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	if _, err := a.svc.AddContact(ctx, alice, ops.ContactRequest{UserID: "dave"}); err != nil {
		t.Fatal(err)
	}
	var cp ops.ContactPush
	if err := json.Unmarshal(daveConn.await(t, ops.EventContact).Payload(), &cp); err != nil || cp.Change != "added" || cp.User.ID != "alice" {
		t.Fatalf("dave on node B got %+v %v", cp, err)
	}
	awaitPresence(t, daveConn, "alice", "available")
	awaitPresence(t, aliceConn, "dave", "dnd")
	if _, err := b.svc.SetPresence(ctx, dave, ops.SetPresenceRequest{Show: "away"}); err != nil {
		t.Fatal(err)
	}
	awaitPresence(t, aliceConn, "dave", "away")

	if _, err := a.svc.RemoveContact(ctx, alice, ops.ContactRequest{UserID: "dave"}); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(15 * time.Second)
	for {
		daveConn.mu.Lock()
		removed := false
		for _, p := range daveConn.got {
			var c ops.ContactPush
			if p.Event == ops.EventContact && json.Unmarshal(p.Payload(), &c) == nil && c.Change == "removed" {
				removed = true
			}
		}
		daveConn.mu.Unlock()
		if removed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("dave on node B was not told of the removal")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := b.svc.SetPresence(ctx, dave, ops.SetPresenceRequest{Show: "chat"}); err != nil {
		t.Fatal(err)
	}
	// The change reaches node A (alice's getPresence would read it) but is
	// pushed to nobody there: wait for A to know it, then look.
	deadline = time.Now().Add(10 * time.Second)
	for {
		ps, err := a.svc.Presence().Get(ctx, []string{"dave"})
		if err == nil && ps[0].Show == "chat" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node A never saw dave chat: %+v %v", ps, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	aliceConn.mu.Lock()
	defer aliceConn.mu.Unlock()
	for _, p := range aliceConn.got {
		var pr presence.Presence
		if p.Event == presence.EventPresence && json.Unmarshal(p.Payload(), &pr) == nil && pr.UserID == "dave" && pr.Show == "chat" {
			t.Fatal("alice still got dave's presence after the removal")
		}
	}
}
