package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/ecbridge/ecb/internal/refbackend"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

func nudgesOf(tb testing.TB, n *testNode, threadID string) []refbackend.Nudge {
	tb.Helper()
	var out refbackend.NudgesResponse
	do(tb, http.MethodGet, n.BackendURL+"/offline?threadId="+threadID, "", nil, &out)
	return out.Nudges
}

// A real node on the reference backend: alice creates a thread over REST
// (no connection of hers counts: she is the author) and bob and carol,
// with no connection, are nudged once; a message whose window is still
// open when the node stops is posted during the shutdown.
func TestOfflineNudgeEndToEnd(t *testing.T) {
	n := startNode(t, "callbacks.url=$BACKEND"+refbackend.ContractPrefix+ecbserver.PathCallbacks, "callbacks.offlineWindow=300ms")
	tok := n.userToken(t, "alice")
	var created struct {
		Data struct {
			Thread      ecbserver.Thread  `json:"thread"`
			ThreadToken string            `json:"threadToken"`
			Message     ecbserver.Message `json:"message"`
		} `json:"data"`
	}
	status, body := tryPost(t, n.URL+"/v1/threads", tok, map[string]any{"participants": []string{"bob", "carol"}, "message": map[string]string{"body": "hello"}})
	if status != http.StatusCreated {
		t.Fatalf("createThread: %d %s", status, body)
	}
	if err := json.Unmarshal(body, &created); err != nil {
		t.Fatal(err)
	}
	th := created.Data.Thread.ID
	var got []refbackend.Nudge
	for deadline := time.Now().Add(15 * time.Second); len(got) == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no nudge recorded")
		}
		got = nudgesOf(t, n, th)
	}
	time.Sleep(700 * time.Millisecond)
	if got = nudgesOf(t, n, th); len(got) != 1 {
		t.Fatalf("%d nudges, want 1: %+v", len(got), got)
	}
	if g := got[0]; !slices.Equal(g.UserIDs, []string{"bob", "carol"}) || g.MessageID != created.Data.Message.ID ||
		g.EventID != "ev_off_"+created.Data.Message.ID || g.Count != 1 {
		t.Fatalf("the nudge: %+v", g)
	}
	raw, _ := json.Marshal(map[string]string{"body": "last words"})
	var sent struct {
		Data struct {
			Message ecbserver.Message `json:"message"`
		} `json:"data"`
	}
	postWithThread(t, n.URL+"/v1/threads/"+th+"/messages", tok, created.Data.ThreadToken, raw, &sent)
	n.stop() // within the window: the shutdown posts the batch
	got = nudgesOf(t, n, th)
	if len(got) != 2 || got[1].MessageID != sent.Data.Message.ID {
		t.Fatalf("after the shutdown: %+v", got)
	}
}

// postWithThread posts body with the userToken and a threadToken header.
func postWithThread(tb testing.TB, url, tok, threadTok string, body []byte, out any) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("ECB-Thread-Token", threadTok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode/100 != 2 {
		tb.Fatalf("POST %s: %d %s %v", url, resp.StatusCode, raw, err)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		tb.Fatal(err)
	}
}
