package e2e

import (
	"encoding/json"
	"slices"
	"testing"
	"time"
)

// TestClusterMentionReachesAnotherNode: on a 3-node cluster (real Redis),
// alice on node 1 mentions bob, whose streams are on nodes 2 and 3 and
// listen to nothing: both get the mention push (the hub's per-user send
// across nodes). Alice's retry of the same clientMessageId on node 3, which
// has no memory of the first, is answered with the stored message and its
// push is a repeat: bob is not mentioned again. Carol, a member not
// mentioned, gets nothing.
func TestClusterMentionReachesAnotherNode(t *testing.T) {
	c := startCluster(t, 3)
	n1, n2, n3 := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	alice, bob, carol := n1.login(t, "alice"), n2.login(t, "bob"), n3.login(t, "carol")
	threadID := newThread(t, n1, alice, "bob", "carol")
	bobOn2, bobOn3 := openStream(t, n2.ECB, bob), openStream(t, n3.ECB, bob)
	carolOn3 := openStream(t, n3.ECB, carol)

	aliceTT := n1.threadTokenFor(t, alice, threadID)
	send := func(d *demo, body string) message {
		t.Helper()
		r := call(t, "POST", d.ECB+"/v1/threads/"+threadID+"/messages",
			map[string]any{"body": body, "clientMessageId": "mention-1", "mentions": []string{"bob", "dave", "bob"}},
			bearer(alice), "ECB-Thread-Token: "+aliceTT)
		if r.Status != 201 {
			t.Fatalf("sendMessage on %s: %d %s", d.ECB, r.Status, r.code())
		}
		return decodeData[struct {
			Message message `json:"message"`
		}](t, r).Message
	}
	sent := send(n1, "@bob standup?")
	for name, s := range map[string]*sseStream{"node 2": bobOn2, "node 3": bobOn3} {
		ev := s.await(t, "mention")
		var p struct {
			ThreadID string `json:"threadId"`
			Message  struct {
				ID       string   `json:"id"`
				Mentions []string `json:"mentions"`
			} `json:"message"`
		}
		if err := json.Unmarshal(ev.Data, &p); err != nil {
			t.Fatal(err)
		}
		if p.ThreadID != threadID || p.Message.ID != sent.ID || !slices.Equal(p.Message.Mentions, []string{"bob"}) {
			t.Fatalf("bob on %s was told %s", name, ev.Data)
		}
	}

	retry := send(n3, "@bob standup?")
	if retry.ID != sent.ID {
		t.Fatalf("the retry on node 3 stored %s, the first %s", retry.ID, sent.ID)
	}
	bobOn2.expectNoneOf(t, time.Second, "mention", "message")
	bobOn3.expectNoneOf(t, 200*time.Millisecond, "mention", "message")
	carolOn3.expectNoneOf(t, 200*time.Millisecond, "mention")

	// Bob sees it in his threads on any node until he reads it.
	mentioned := func(d *demo) bool {
		t.Helper()
		for _, st := range decodeData[page[struct {
			Thread struct {
				ID        string `json:"id"`
				Mentioned *bool  `json:"mentioned"`
			} `json:"thread"`
		}]](t, call(t, "GET", d.ECB+"/v1/threads?pageSize=100", nil, bearer(bob))).Items {
			if st.Thread.ID == threadID {
				if st.Thread.Mentioned == nil {
					t.Fatal("no mentioned on bob's thread")
				}
				return *st.Thread.Mentioned
			}
		}
		t.Fatalf("bob's threads do not list %s", threadID)
		return false
	}
	if !mentioned(n3) {
		t.Fatal("bob's thread is not mentioned")
	}
}
