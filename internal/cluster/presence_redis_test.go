package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ecbridge/ecb/internal/cluster"
	"github.com/ecbridge/ecb/internal/hub"
	"github.com/ecbridge/ecb/internal/presence"
)

// presenceNode is a cluster member with the presence service on the Redis
// store, wired as internal/server wires it.
type presenceNode struct {
	c   *cluster.Node
	hub *hub.Hub
	svc *presence.Service
}

func newPresenceNode(tb testing.TB, cfg cluster.Config) *presenceNode {
	tb.Helper()
	n, err := cluster.Open(context.Background(), cfg, nil)
	if err != nil {
		tb.Fatal(err)
	}
	h := hub.New(hub.Config{Broker: n.Broker, Controller: n.Controller, NodeID: n.ID()})
	svc := presence.New()
	svc.SetHub(h)
	h.SetObserver(svc)
	svc.SetStore(n.Presence)
	n.Start(context.Background())
	tb.Cleanup(n.Close)
	waitReady(tb, n)
	return &presenceNode{c: n, hub: h, svc: svc}
}

// presences decodes the presence pushes a connection got.
func (c *conn) presences() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, p := range c.got {
		if p.Event != presence.EventPresence {
			continue
		}
		var v presence.Presence
		_ = json.Unmarshal(p.Data, &v)
		s := v.UserID + ":" + v.Show
		if v.Status != "" {
			s += "/" + v.Status
		}
		if v.LastSeen != nil {
			s += "+lastSeen"
		}
		out = append(out, s)
	}
	return out
}

func (c *conn) waitPresences(tb testing.TB, want ...string) {
	tb.Helper()
	c.waitFor(tb, fmt.Sprintf("presence pushes %v", want), func() bool { return len(c.presences()) >= len(want) })
	if got := c.presences(); !slices.Equal(got, want) {
		tb.Fatalf("presence pushes %v, want %v", got, want)
	}
}

// eventually polls cond until it holds; only a hang (10 s) fails.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func get(tb testing.TB, n *presenceNode, userID string) presence.Presence {
	tb.Helper()
	ps, err := n.svc.Get(context.Background(), []string{userID})
	if err != nil {
		tb.Fatal(err)
	}
	return ps[0]
}

func TestPresenceFollowsAUsersConnectionsOnEveryNode(t *testing.T) {
	cfg := clusterConfig(t)
	cfg.NodeID = "a"
	a := newPresenceNode(t, cfg)
	cfg.NodeID = "b"
	b := newPresenceNode(t, cfg)
	ctx := context.Background()

	alice := newConn()
	a.hub.Register(alice, "alice")
	// alice's contacts were listed on B: A learns them for her connection.
	b.svc.NoteContacts("alice", []string{"bob"})
	eventually(t, "A to learn alice's contacts", func() bool { return a.svc.MaySee("alice", "bob") })

	onB := newConn()
	b.hub.Register(onB, "bob")
	alice.waitPresences(t, "bob:available")
	b.svc.Set(ctx, onB, presence.Away, "lunch")
	alice.waitPresences(t, "bob:available", "bob:away/lunch")
	if p := get(t, a, "bob"); p.Show != presence.Away || p.Status != "lunch" {
		t.Fatalf("bob on A = %+v, want away/lunch", p)
	}

	onA := newConn() // bob's second connection, on A: available wins
	a.hub.Register(onA, "bob")
	alice.waitPresences(t, "bob:available", "bob:away/lunch", "bob:available")
	eventually(t, "B to count bob's two connections", func() bool {
		n, err := b.svc.Connections(ctx, "bob")
		return err == nil && n == 2
	})
	b.hub.Unregister(onB) // still available on A: no push
	eventually(t, "A to count bob's one connection left", func() bool {
		n, err := a.svc.Connections(ctx, "bob")
		return err == nil && n == 1
	})
	a.hub.Unregister(onA)
	alice.waitPresences(t, "bob:available", "bob:away/lunch", "bob:available", "bob:offline+lastSeen")
	if p := get(t, b, "bob"); p.Show != presence.Offline || p.LastSeen == nil {
		t.Fatalf("bob on B = %+v, want offline with lastSeen", p)
	}
}

// A node that dies without a goodbye stops heartbeating; another node finds
// it dead and removes its contributions, once: its users turn offline for
// their watchers within DeadAfter + Heartbeat, and online again when they
// connect to another node.
func TestADeadNodesUsersTurnOfflineWithinTheBound(t *testing.T) {
	cfg := clusterConfig(t)
	cfg.Heartbeat, cfg.DeadAfter = 200*time.Millisecond, time.Second
	cfg.NodeID = "a"
	a := newPresenceNode(t, cfg)
	cfg.NodeID = "b"
	b := newPresenceNode(t, cfg)
	cfg.NodeID = "c"
	c := newPresenceNode(t, cfg)

	alice := newConn()
	a.hub.Register(alice, "alice")
	a.svc.NoteContacts("alice", []string{"bob"})
	eventually(t, "B to learn alice's contacts", func() bool { return b.svc.MaySee("alice", "bob") })
	b.hub.Register(newConn(), "bob")
	alice.waitPresences(t, "bob:available")

	crashed := time.Now()
	cluster.Crash(b.c)
	alice.waitPresences(t, "bob:available", "bob:offline+lastSeen")
	took := time.Since(crashed)
	// The last heartbeat was at most one Heartbeat before the crash.
	if low := cfg.DeadAfter - cfg.Heartbeat; took < low {
		t.Fatalf("bob turned offline %s after the crash, before the node could be taken for dead (%s)", took, low)
	}
	if bound := cfg.DeadAfter + cfg.Heartbeat; took > bound+time.Second {
		t.Fatalf("bob turned offline %s after the crash; the bound is %s (+1s of scheduling)", took, bound)
	}
	t.Logf("offline %s after the crash (DeadAfter %s, Heartbeat %s)", took, cfg.DeadAfter, cfg.Heartbeat)

	rdb := a.c.Redis()
	ctx := context.Background()
	eventually(t, "the dead node to be unlisted", func() bool {
		return rdb.ZScore(ctx, cfg.Prefix+":nodes", "b").Err() == redis.Nil
	})
	if n := rdb.Exists(ctx, cfg.Prefix+":pres:n:b").Val(); n != 0 {
		t.Fatal("the dead node's set of users is still there")
	}

	c.hub.Register(newConn(), "bob")
	alice.waitPresences(t, "bob:available", "bob:offline+lastSeen", "bob:available")
}

// A node taken for dead while it was alive (a long pause, a partition)
// finds itself unlisted at its next heartbeat and writes its presence again.
func TestANodeTakenForDeadWritesItsPresenceAgain(t *testing.T) {
	cfg := clusterConfig(t)
	cfg.Heartbeat, cfg.DeadAfter = 100*time.Millisecond, time.Minute
	cfg.NodeID = "a"
	a := newPresenceNode(t, cfg)
	cfg.NodeID = "b"
	b := newPresenceNode(t, cfg)
	a.hub.Register(newConn(), "bob")
	eventually(t, "B to see bob online", func() bool { return get(t, b, "bob").Show == presence.Available })

	// What a node that claimed A does: remove its fields, then unlist it.
	rdb := a.c.Redis()
	ctx := context.Background()
	rdb.HDel(ctx, cfg.Prefix+":pres:u:bob", "n:a")
	rdb.Del(ctx, cfg.Prefix+":pres:n:a")
	rdb.ZRem(ctx, cfg.Prefix+":nodes", "a")
	// Its set of users, deleted above, is written again with its field.
	eventually(t, "A to write bob's presence again", func() bool {
		return rdb.SIsMember(ctx, cfg.Prefix+":pres:n:a", "bob").Val() && get(t, b, "bob").Show == presence.Available
	})
}

// A node restarted under the same name removes what its previous run left
// at once, without waiting for DeadAfter.
func TestARestartedNodeRemovesItsPreviousPresence(t *testing.T) {
	cfg := clusterConfig(t)
	cfg.Heartbeat, cfg.DeadAfter = 100*time.Millisecond, time.Hour
	cfg.NodeID = "a"
	a := newPresenceNode(t, cfg)
	cfg.NodeID = "b"
	b := newPresenceNode(t, cfg)
	alice := newConn()
	a.hub.Register(alice, "alice")
	a.svc.NoteContacts("alice", []string{"bob"})
	eventually(t, "B to learn alice's contacts", func() bool { return b.svc.MaySee("alice", "bob") })
	b.hub.Register(newConn(), "bob")
	alice.waitPresences(t, "bob:available")
	cluster.Crash(b.c)
	newPresenceNode(t, cfg) // b again
	alice.waitPresences(t, "bob:available", "bob:offline+lastSeen")
}

// FuzzPresenceChange: whatever travels on the control channel as a
// presence change, decoding it never panics, and what it yields is a
// presence of the named user with a show of the closed list.
func FuzzPresenceChange(f *testing.F) {
	for _, seed := range []string{
		`{"u":"bob","o":{},"w":["n:a","{\"n\":1,\"s\":\"away\",\"st\":\"lunch\",\"t\":5}"]}`,
		`{"u":"bob","o":["n:a","{\"n\":1,\"s\":\"available\",\"t\":1}","n:b","{\"n\":2}"],"w":["n:b","{\"n\":2}","ls","1700000000123"]}`,
		`{"u":"bob","o":["n:a"],"w":{}}`,
		`{"u":"","o":{},"w":{}}`,
		`{"u":"bob","o":["n:a","not json"],"w":[1,2]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		before, after, err := cluster.DecodePresenceChange(raw)
		if err != nil {
			return
		}
		for _, p := range []presence.Presence{before, after} {
			if p.UserID == "" || p.Show != presence.Offline && !presence.Valid(p.Show) {
				t.Fatalf("decoded %+v from %q", p, raw)
			}
		}
	})
}

func TestAPresenceChangeDecodesBothSides(t *testing.T) {
	before, after, err := cluster.DecodePresenceChange([]byte(
		`{"u":"bob","o":["n:a","{\"n\":1,\"s\":\"available\",\"t\":1}","n:b","{\"n\":1,\"s\":\"away\",\"t\":2}"],"w":["n:b","{\"n\":1,\"s\":\"away\",\"t\":2}"]}`))
	if err != nil || before.Show != presence.Available || after.Show != presence.Away {
		t.Fatalf("before %+v after %+v err %v, want available then away", before, after, err)
	}
	_, after, err = cluster.DecodePresenceChange([]byte(`{"u":"bob","o":{},"w":["ls","1700000000123"]}`))
	if err != nil || after.Show != presence.Offline || after.LastSeen == nil || after.LastSeen.UnixMilli() != 1700000000123 {
		t.Fatalf("offline with lastSeen: %+v %v", after, err)
	}
}
