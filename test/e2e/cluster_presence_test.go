package e2e

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

// presenceEvent is a presence push.
type presenceEvent struct {
	UserID   string     `json:"userId"`
	Show     string     `json:"show"`
	Status   string     `json:"status"`
	LastSeen *time.Time `json:"lastSeen"`
}

// nextPresenceOf returns the next presence push about userID on s.
func nextPresenceOf(tb testing.TB, s *sseStream, userID string, wait time.Duration) presenceEvent {
	tb.Helper()
	deadline := time.Now().Add(wait)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			tb.Fatalf("no presence of %s within %s", userID, wait)
		}
		ev := s.next(tb, left)
		if ev.Event != "presence" {
			continue
		}
		var p presenceEvent
		if err := json.Unmarshal(ev.Data, &p); err != nil {
			tb.Fatal(err)
		}
		if p.UserID == userID {
			return p
		}
	}
}

// TestClusterPresenceFollowsTheUserAcrossNodes: alice on node1 sees bob,
// connected to node2, come online and go away; node2 killed with SIGKILL
// (no goodbye) turns bob offline for her within cluster.deadAfter +
// cluster.heartbeat; bob reconnecting to node3 is online again. The Server
// API counts his connections on every node.
func TestClusterPresenceFollowsTheUserAcrossNodes(t *testing.T) {
	const heartbeat, deadAfter = 300 * time.Millisecond, 1500 * time.Millisecond
	c := startCluster(t, 3, "--set", "cluster.heartbeat="+heartbeat.String(), "--set", "cluster.deadAfter="+deadAfter.String())
	node1, node2, node3 := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	alice := node1.login(t, "alice")
	bob := node2.login(t, "bob")

	aliceStream := openStream(t, node1.ECB, alice)
	decodeData[page[user]](t, call(t, "GET", node1.ECB+"/v1/contacts", nil, bearer(alice), "ECB-Stream: "+aliceStream.ID))

	bobStream := openStream(t, node2.ECB, bob)
	if p := nextPresenceOf(t, aliceStream, "bob", 10*time.Second); p.Show != "available" {
		t.Fatalf("alice on node1 saw bob (node2) as %+v, want available", p)
	}
	decodeData[map[string]any](t, call(t, "POST", node2.ECB+"/v1/presence", map[string]string{"show": "away", "status": "lunch"},
		bearer(bob), "ECB-Stream: "+bobStream.ID))
	if p := nextPresenceOf(t, aliceStream, "bob", 10*time.Second); p.Show != "away" || p.Status != "lunch" {
		t.Fatalf("after setPresence on node2 alice on node1 got %+v, want away/lunch", p)
	}
	got := decodeData[struct {
		Presence []presenceEvent `json:"presence"`
	}](t, call(t, "GET", node3.ECB+"/v1/presence?userIds=bob", nil, bearer(alice)))
	if len(got.Presence) != 1 || got.Presence[0].Show != "away" || got.Presence[0].Status != "lunch" {
		t.Fatalf("getPresence on node3 = %+v, want bob away/lunch", got)
	}
	key, err := os.ReadFile(c.File.ServerAPIKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	counts := decodeData[struct {
		Online      bool `json:"online"`
		Connections int  `json:"connections"`
	}](t, call(t, "GET", node1.ECB+"/server/v1/users/bob/presence", nil, bearer(strings.TrimSpace(string(key)))))
	if !counts.Online || counts.Connections != 1 {
		t.Fatalf("the Server API of node1 says bob (on node2) has %+v, want online with 1 connection", counts)
	}

	killed := time.Now()
	c.kill(t, 1)
	p := nextPresenceOf(t, aliceStream, "bob", 10*time.Second)
	took := time.Since(killed)
	if p.Show != "offline" || p.LastSeen == nil {
		t.Fatalf("after node2 died alice got %+v, want offline with lastSeen", p)
	}
	// The documented bound, from the last heartbeat (at most one before
	// the kill); one more second for the processes' scheduling.
	if bound := deadAfter + heartbeat; took > bound+time.Second {
		t.Fatalf("bob turned offline %s after node2 was killed; the bound is %s", took, bound)
	}
	t.Logf("bob offline %s after the kill (deadAfter %s, heartbeat %s)", took, deadAfter, heartbeat)

	openStream(t, node3.ECB, bob)
	if p := nextPresenceOf(t, aliceStream, "bob", 10*time.Second); p.Show != "available" || p.LastSeen != nil {
		t.Fatalf("bob back on node3: alice got %+v, want available", p)
	}
}
