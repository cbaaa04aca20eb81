package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"
)

type recordedNudge struct {
	EventID    string   `json:"eventId"`
	MessageID  string   `json:"messageId"`
	MessageIDs []string `json:"messageIds"`
	UserIDs    []string `json:"userIds"`
	Mentioned  []string `json:"mentioned"`
}

// nudgesOf reads the reference backend's record of the offline nudges of
// threadID, once at least n are there (then a little more, and fails
// unless exactly n are).
func (c *cluster) nudgesOf(tb testing.TB, threadID string, n int) []recordedNudge {
	tb.Helper()
	read := func() []recordedNudge {
		var got struct {
			Nudges []recordedNudge `json:"nudges"`
		}
		status, body, err := tryCall("GET", c.File.Backend+"/offline?threadId="+url.QueryEscape(threadID), nil)
		if err != nil || status != http.StatusOK || json.Unmarshal([]byte(body), &got) != nil {
			tb.Fatalf("GET /offline: %d %v %s", status, err, body)
		}
		return got.Nudges
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(read()) < n {
		if time.Now().After(deadline) {
			tb.Fatalf("%s: %d nudges recorded, want %d", threadID, len(read()), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second) // two windows: nothing more comes
	got := read()
	if len(got) != n {
		tb.Fatalf("%s: %d nudges recorded, want %d: %+v", threadID, len(got), n, got)
	}
	return got
}

// TestClusterOfflineNudge: two ECB processes on one Redis, the demo's
// reference backend. bob reads an event stream on node2, carol has no
// connection. alice's thread, created through node1, nudges carol only,
// recorded once by the backend; once bob's stream is closed, a message
// through node1 nudges both.
func TestClusterOfflineNudge(t *testing.T) {
	c := startCluster(t, 2, "--set", "callbacks.offlineWindow=300ms")
	node1, node2 := c.Nodes[0], c.Nodes[1]
	alice := node1.login(t, "alice")
	bob := node2.login(t, "bob")
	bobStream := openStream(t, node2.ECB, bob)
	call(t, "GET", node1.ECB+"/v1/contacts", nil, bearer(alice)).ok(t) // so that alice may see bob's presence
	// bob is online for node1 once node1 reads node2's part of his presence.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		got := decodeData[struct {
			Presence []presenceEvent `json:"presence"`
		}](t, call(t, "GET", node1.ECB+"/v1/presence?userIds=bob", nil, bearer(alice)))
		if len(got.Presence) == 1 && got.Presence[0].Show != "offline" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node1 does not see bob online: %+v", got)
		}
	}

	cr := decodeData[created](t, call(t, "POST", node1.ECB+"/v1/threads", map[string]any{
		"participants": []string{"bob", "carol"}, "message": map[string]any{"body": "hello"}}, bearer(alice)))
	got := c.nudgesOf(t, cr.Thread.ID, 1)
	if g := got[0]; !slices.Equal(g.UserIDs, []string{"carol"}) || g.MessageID != cr.Message.ID || g.EventID != "ev_off_"+cr.Message.ID {
		t.Fatalf("bob reads a stream on node2, carol has none: %+v", g)
	}

	bobStream.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		got := decodeData[struct {
			Presence []presenceEvent `json:"presence"`
		}](t, call(t, "GET", node1.ECB+"/v1/presence?userIds=bob", nil, bearer(alice)))
		if len(got.Presence) == 1 && got.Presence[0].Show == "offline" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node1 still sees bob online: %+v", got)
		}
	}
	sent := decodeData[struct {
		Message struct {
			ID string `json:"id"`
		} `json:"message"`
	}](t, call(t, "POST", node1.ECB+"/v1/threads/"+cr.Thread.ID+"/messages", map[string]any{"body": "still there?"},
		bearer(alice), "ECB-Thread-Token: "+cr.ThreadToken))
	got = c.nudgesOf(t, cr.Thread.ID, 2)
	if g := got[1]; !slices.Equal(g.UserIDs, []string{"bob", "carol"}) || g.MessageID != sent.Message.ID {
		t.Fatalf("after bob's stream closed: %+v", g)
	}
}
