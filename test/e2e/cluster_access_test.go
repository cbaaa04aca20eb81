package e2e

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// This file runs the Server API against `ecb demo --nodes 3` (the helpers
// are cluster_test.go's): its decisions, kept in Redis, hold on every node.

// TestClusterServerAPIActsOnEveryNode: the Server API called on any node of
// `ecb demo --nodes 3` acts on every node. A ban through node 1 detaches and
// tells bob's listener on node 3 and refuses him on nodes 2 and 3; a system
// message through node 2 reaches a listener on node 1; a thread closed
// through node 2 is read-only on node 1, and deleted through node 3 is gone
// on node 1; a revocation through node 3 refuses bob's old userToken on
// node 1. (That these entries survive a node's restart is shown by
// internal/cluster's TestAccessStoreSurvivesARestart: the demo does not
// restart nodes.)
func TestClusterServerAPIActsOnEveryNode(t *testing.T) {
	c := startCluster(t, 3)
	n1, n2, n3 := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	api1, api2, api3 := n1.serverAPI(t), n2.serverAPI(t), n3.serverAPI(t)
	ctx := context.Background()
	alice, bob := n1.login(t, "alice"), n1.login(t, "bob")
	id := newThread(t, n1, alice, "bob")
	aliceOn1, _ := n1.listening(t, alice, id)
	bobOn3, bobPage := n3.listening(t, bob, id)
	oldThreadToken := bobPage.ThreadToken
	bobOn2 := openStream(t, n2.ECB, bob) // another tab, on another node
	bobOn1 := openStream(t, n1.ECB, bob)
	if info, err := api3.ThreadInfo(ctx, id); err != nil || !slices.Contains(info.Users, "bob") {
		t.Fatalf("node 3 before the ban: %+v %v", info, err)
	}

	// The ban, through node 1, where bob listens on no connection.
	o, err := api1.SetAccess(ctx, id, "bob", ecbserver.AccessNone, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if o.Detached == nil || *o.Detached != 0 || o.ExpiresAt == nil {
		t.Fatalf("override on node 1: %+v (detached counts node 1's connections)", o)
	}
	// Each node applies the ban before the push of the same call: once bob
	// is told on a node, that node refuses him.
	for _, s := range []*sseStream{bobOn3, bobOn2} {
		ch := decodeEvent[threadChange](t, s.await(t, "thread"))
		if ch.ThreadID != id || ch.Change != "access" || ch.Acc == nil || *ch.Acc != 0 || ch.ExpiresAt == nil || !ch.ExpiresAt.Equal(*o.ExpiresAt) {
			t.Fatalf("bob was told %+v, want access 0 until %v", ch, o.ExpiresAt)
		}
	}
	for _, n := range []*demo{n2, n3} {
		r := call(t, "GET", n.ECB+"/v1/threads/"+id, nil, bearer(bob), "ECB-Thread-Token: "+oldThreadToken)
		if r.Status != 403 || r.code() != "forbidden" {
			t.Fatalf("banned bob reading on %s: %d %s", n.ECB, r.Status, r.code())
		}
		r = call(t, "POST", n.ECB+"/v1/threads/"+id+"/messages", map[string]any{"body": "let me in"}, bearer(bob), "ECB-Thread-Token: "+oldThreadToken)
		if r.Status != 403 || r.code() != "forbidden" {
			t.Fatalf("banned bob writing on %s: %d %s", n.ECB, r.Status, r.code())
		}
		got, err := n.serverAPI(t).GetAccess(ctx, id, "bob")
		if err != nil || got.Acc != 0 || got.ExpiresAt == nil || !got.ExpiresAt.Equal(*o.ExpiresAt) {
			t.Fatalf("the override as %s has it: %+v %v", n.ECB, got, err)
		}
	}
	if info, err := api3.ThreadInfo(ctx, id); err != nil || slices.Contains(info.Users, "bob") {
		t.Fatalf("bob still listens on node 3: %+v %v", info, err)
	}
	n1.send(t, alice, id, "bob must not see this")
	if m := decodeEvent[messagePush](t, aliceOn1.await(t, "message")); m.Message.Body != "bob must not see this" {
		t.Fatalf("alice got %q", m.Message.Body)
	}
	bobOn3.expectNoneOf(t, 300*time.Millisecond, "message")

	// A system message through node 2 reaches alice's listener on node 1.
	if _, err := api2.PublishSystemMessage(ctx, id, ecbserver.SystemMessage{Body: "maintenance at noon"}); err != nil {
		t.Fatal(err)
	}
	if m := decodeEvent[messagePush](t, aliceOn1.await(t, "message")); m.Message.Body != "maintenance at noon" {
		t.Fatalf("alice got %q", m.Message.Body)
	}

	// Closed through node 2: node 1 has it (its Server API reads the same
	// cache as its operations), and refuses alice's send with conflict.
	if _, err := api2.ThreadEvent(ctx, id, "closed", nil); err != nil {
		t.Fatal(err)
	}
	if ch := decodeEvent[threadChange](t, aliceOn1.await(t, "thread")); ch.Change != "closed" {
		t.Fatalf("alice was told %+v", ch)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		info, err := api1.ThreadInfo(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if info.Status == "closed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node 1 has the thread %q 5s after node 2 closed it", info.Status)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if r := n1.send(t, alice, id, "still there?"); r.Status != 409 || r.code() != "conflict" {
		t.Fatalf("alice writing to the closed thread on node 1: %d %s", r.Status, r.code())
	}
	decodeData[threadPage](t, call(t, "GET", n1.ECB+"/v1/threads/"+id, nil, bearer(alice), "ECB-Thread-Token: "+n1.threadTokenFor(t, alice, id)))

	// Deleted through node 3: once alice is told on node 1, node 1 refuses it.
	if _, err := api3.ThreadEvent(ctx, id, "deleted", nil); err != nil {
		t.Fatal(err)
	}
	if ch := decodeEvent[threadChange](t, aliceOn1.await(t, "thread")); ch.Change != "deleted" {
		t.Fatalf("alice was told %+v", ch)
	}
	if r := call(t, "GET", n1.ECB+"/v1/threads/"+id, nil, bearer(alice), "ECB-Thread-Token: "+n1.threadTokenFor(t, alice, id)); r.Status != 404 || r.code() != "not_found" {
		t.Fatalf("the deleted thread on node 1: %d %s", r.Status, r.code())
	}

	// A revocation through node 3: bob's streams end everywhere, and once
	// the one on node 1 has, node 1 refuses his old userToken.
	res, err := api3.DisconnectUser(ctx, "bob", time.Now())
	if err != nil || res.RevokedBefore == nil || res.Disconnected != 1 {
		t.Fatalf("disconnect on node 3: %+v %v (disconnected counts node 3's connections: 1)", res, err)
	}
	for _, s := range []*sseStream{bobOn1, bobOn2, bobOn3} {
		if reason := decodeEvent[struct{ Reason string }](t, s.await(t, "close")).Reason; reason != "kicked" {
			t.Fatalf("bob's stream closed with %q", reason)
		}
	}
	for _, path := range []string{"/v1/contacts", "/v1/threads"} {
		if r := call(t, "GET", n1.ECB+path, nil, bearer(bob)); r.Status != 401 || r.code() != "unauthenticated" {
			t.Fatalf("GET %s on node 1 with bob's revoked token: %d %s", path, r.Status, r.code())
		}
	}
	decodeData[page[user]](t, call(t, "GET", n1.ECB+"/v1/contacts", nil, bearer(alice)))
}

// TestClusterModerationActsOnEveryNode: the moderation operations of
// protocol 1.3 called on one node of `ecb demo --nodes 3` act on every node,
// as the Server API's do. carol, removed by the owner through node 1, is
// told and detached on node 3 and gets nothing more there; the token she
// kept is refused on node 2 once her stream there was told too. bob,
// read-only for an hour by a setAccess through node 2, is told on nodes 3
// and 1 and then refused writing on node 1. The thread, deleted through
// node 3, is gone on node 1 and its listener there is told.
//
// A node enforces a decision from the moment it handled the announcement,
// and it tells its own listeners in that same order (docs/cluster-access.md):
// a push on node 3 says nothing of node 1, so every refusal here is checked
// on a node whose listener was told.
func TestClusterModerationActsOnEveryNode(t *testing.T) {
	c := startCluster(t, 3)
	n1, n2, n3 := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	alice, bob, carol := n1.login(t, "alice"), n1.login(t, "bob"), n1.login(t, "carol")
	created := decodeData[created](t, call(t, "POST", n1.ECB+"/v1/threads", map[string]any{"participants": []string{"bob", "carol"}, "message": map[string]any{"body": "hi"}}, bearer(alice)))
	id, owner := created.Thread.ID, created.ThreadToken
	aliceOn1, _ := n1.listening(t, alice, id)
	bobOn3, bobPage := n3.listening(t, bob, id)
	bobOn1, _ := n1.listening(t, bob, id)
	carolOn3, carolPage := n3.listening(t, carol, id)
	carolOn2, _ := n2.listening(t, carol, id)

	if r := call(t, "DELETE", n1.ECB+"/v1/threads/"+id+"/participants/carol", nil, bearer(alice), "ECB-Thread-Token: "+owner); r.Status != 200 {
		t.Fatalf("remove carol on node 1: %d %s", r.Status, r.code())
	}
	for node, s := range map[int]*sseStream{3: carolOn3, 2: carolOn2} {
		if ch := decodeEvent[threadChange](t, s.await(t, "thread")); ch.Change != "removed" {
			t.Fatalf("carol on node %d was told %+v", node, ch)
		}
	}
	if r := call(t, "GET", n2.ECB+"/v1/threads/"+id, nil, bearer(carol), "ECB-Thread-Token: "+carolPage.ThreadToken); r.Status != 403 {
		t.Fatalf("removed carol reading on node 2: %d %s", r.Status, r.code())
	}

	if r := call(t, "PUT", n2.ECB+"/v1/threads/"+id+"/access/bob", map[string]any{"acc": 1, "ttlSeconds": 3600}, bearer(alice), "ECB-Thread-Token: "+owner); r.Status != 200 {
		t.Fatalf("setAccess on node 2: %d %s", r.Status, r.code())
	}
	for node, s := range map[int]*sseStream{3: bobOn3, 1: bobOn1} {
		if ch := decodeEvent[threadChange](t, s.await(t, "thread")); ch.Change != "access" || ch.Acc == nil || *ch.Acc != 1 {
			t.Fatalf("bob on node %d was told %+v", node, ch)
		}
	}
	if r := call(t, "POST", n1.ECB+"/v1/threads/"+id+"/messages", map[string]any{"body": "read-only?"}, bearer(bob), "ECB-Thread-Token: "+bobPage.ThreadToken); r.Status != 403 {
		t.Fatalf("read-only bob writing on node 1: %d %s", r.Status, r.code())
	}
	n1.send(t, alice, id, "carol must not see this")
	if m := decodeEvent[messagePush](t, bobOn3.await(t, "message")); m.Message.Body != "carol must not see this" {
		t.Fatalf("bob got %q", m.Message.Body)
	}
	carolOn3.expectNoneOf(t, 300*time.Millisecond, "message")
	carolOn2.expectNoneOf(t, 50*time.Millisecond, "message")

	if r := call(t, "DELETE", n3.ECB+"/v1/threads/"+id, nil, bearer(alice), "ECB-Thread-Token: "+owner); r.Status != 200 {
		t.Fatalf("delete the thread on node 3: %d %s", r.Status, r.code())
	}
	for {
		ev := aliceOn1.await(t, "thread", "message")
		if ev.Event == "thread" {
			if ch := decodeEvent[threadChange](t, ev); ch.Change != "deleted" {
				t.Fatalf("alice on node 1 was told %+v", ch)
			}
			break
		}
	}
	if r := call(t, "GET", n1.ECB+"/v1/threads/"+id, nil, bearer(alice), "ECB-Thread-Token: "+owner); r.Status != 404 {
		t.Fatalf("the deleted thread on node 1: %d %s", r.Status, r.code())
	}
}
