package e2e

import (
	"encoding/json"
	"slices"
	"testing"
	"time"
)

// TestClusterResumeGetsMissedEditsAndReactions: on a 3-node cluster (real
// Redis), alice on node 1 edits, deletes and reacts while bob is away; bob
// resumes his thread on node 3 from where he was and gets every change, in
// order, once (the Redis broker's offsets and history), then nothing more.
func TestClusterResumeGetsMissedEditsAndReactions(t *testing.T) {
	c := startCluster(t, 3)
	n1, n2, n3 := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	alice, bob := n1.login(t, "alice"), n2.login(t, "bob")
	created := decodeData[created](t, call(t, "POST", n1.ECB+"/v1/threads", map[string]any{
		"participants": []string{"bob"}, "message": map[string]any{"body": "first"}}, bearer(alice)))
	threadID, aliceTT := created.Thread.ID, created.ThreadToken
	second := decodeData[struct {
		Message message `json:"message"`
	}](t, n1.send(t, alice, threadID, "second"))
	bobS, page := n2.listening(t, bob, threadID)
	bobS.Close()

	msg := n1.ECB + "/v1/threads/" + threadID + "/messages/"
	steps := []struct{ method, path string }{
		{"PATCH", msg + created.Message.ID},
		{"PUT", msg + created.Message.ID + "/reactions/ok"},
		{"DELETE", msg + second.Message.ID},
		{"DELETE", msg + created.Message.ID + "/reactions/ok"},
	}
	for _, s := range steps {
		var body any
		if s.method == "PATCH" {
			body = map[string]any{"body": "first, edited"}
		}
		if r := call(t, s.method, s.path, body, bearer(alice), "ECB-Thread-Token: "+aliceTT); r.Status != 200 {
			t.Fatalf("%s %s: %d %s", s.method, s.path, r.Status, r.code())
		}
	}

	s := openStream(t, n3.ECB, bob)
	if !resumeRecovered(t, n3, bob, s, threadID, messagePush{Epoch: page.Epoch, Offset: page.Offset}) {
		t.Fatal("resume on node 3: not recovered")
	}
	var got []string
	var offsets []uint64
	for range steps {
		ev := s.await(t, "messageEdited", "reaction", "messageDeleted", "message")
		var p struct {
			Offset uint64 `json:"offset"`
			Change string `json:"change"`
		}
		_ = json.Unmarshal(ev.Data, &p)
		got = append(got, ev.Event+" "+p.Change)
		offsets = append(offsets, p.Offset)
	}
	want := []string{"messageEdited ", "reaction added", "messageDeleted ", "reaction removed"}
	if !slices.Equal(got, want) {
		t.Fatalf("bob on node 3 got %v, want %v", got, want)
	}
	for i, o := range offsets {
		if o != page.Offset+1+uint64(i) {
			t.Fatalf("offsets %v after %d", offsets, page.Offset)
		}
	}
	s.expectNoneOf(t, 500*time.Millisecond, "messageEdited", "reaction", "messageDeleted")
}
