package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// These tests are issue 13's "no sticky sessions" on three real nodes: a
// session or stream opened on one node is served by every node, which
// forwards its requests to the node that holds it. The requests are sent to
// the nodes in turn by hand (the deterministic worst case of a balancer
// without affinity); the same through a real nginx is in balancer_test.go.

// forwarded reads node d's count of requests it forwarded with result.
func forwarded(tb testing.TB, d *demo, result string) int {
	tb.Helper()
	status, body, err := tryCall("GET", d.ECB+"/metrics", nil)
	if err != nil || status != 200 {
		tb.Fatalf("metrics of %s: %d %v", d.ECB, status, err)
	}
	m := regexp.MustCompile(`(?m)^ecb_forwarded_requests_total\{result="` + result + `"\} (\d+)`).FindStringSubmatch(body)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func bases(c *cluster) []string {
	out := make([]string, len(c.Nodes))
	for i, d := range c.Nodes {
		out[i] = d.ECB
	}
	return out
}

// sioMessages waits until c has received a message push for each of
// bodies, and returns the pushes in the order they came.
func (c *sioClient) messages(n int) []messagePush {
	c.tb.Helper()
	var out []messagePush
	for len(out) < n {
		var p messagePush
		if err := json.Unmarshal(c.event("message"), &p); err != nil {
			c.tb.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// TestClusterPollingOnAnyNode: alice's and bob's long-polling sessions
// were opened on node 1 and node 2, and every request after the handshake
// goes to the next node. They chat for many poll cycles without a
// reconnect; every message arrives once, in order; the other nodes really
// forwarded; two overlapping GETs through two nodes end the session as the
// protocol says; and the owner's death answers "Session ID unknown" at
// once instead of hanging.
func TestClusterPollingOnAnyNode(t *testing.T) {
	c := startCluster(t, 3)
	d := c.Nodes[0]
	aliceTok, bobTok := d.login(t, "alice"), d.login(t, "bob")
	threadID := newThread(t, d, aliceTok, "bob")
	aliceThread, bobThread := d.threadTokenFor(t, aliceTok, threadID), d.threadTokenFor(t, bobTok, threadID)

	all := bases(c)
	alice, serr := sioDialVia(t, c.Nodes[0].ECB, all, map[string]string{"userToken": aliceTok})
	if serr != nil {
		t.Fatalf("alice: %+v", serr)
	}
	bob, serr := sioDialVia(t, c.Nodes[1].ECB, []string{all[1], all[2], all[0]}, map[string]string{"userToken": bobTok})
	if serr != nil {
		t.Fatalf("bob: %+v", serr)
	}
	for _, s := range []struct {
		c   *sioClient
		tok string
	}{{alice, aliceThread}, {bob, bobThread}} {
		if a := s.c.call("getThread", map[string]any{"threadToken": s.tok}); a.Error != nil {
			t.Fatalf("getThread: %+v", a.Error)
		}
	}
	before := forwarded(t, c.Nodes[1], "forwarded") + forwarded(t, c.Nodes[2], "forwarded")

	const rounds = 40 // each round: a send and its ack, a push read: several requests per client
	var got []messagePush
	for i := range rounds {
		body := fmt.Sprintf("poll %d", i)
		time.Sleep(60 * time.Millisecond) // within limits.opsPerSecondPerConnection
		if a := alice.call("sendMessage", map[string]any{"threadToken": aliceThread, "body": body}); a.Error != nil {
			t.Fatalf("send %d: %+v", i, a.Error)
		}
		got = append(got, bob.messages(1)...)
	}
	acked := map[string]bool{}
	for i := range rounds {
		acked[fmt.Sprintf("poll %d", i)] = true
	}
	checkExactlyOnceInOrder(t, "bob", got, acked)
	if alice.hits+bob.hits < 100 {
		t.Fatalf("only %d requests after the handshakes", alice.hits+bob.hits)
	}
	after := forwarded(t, c.Nodes[1], "forwarded") + forwarded(t, c.Nodes[2], "forwarded")
	if after-before < (alice.hits+bob.hits)/3 {
		t.Fatalf("nodes 2 and 3 forwarded %d of %d requests", after-before, alice.hits+bob.hits)
	}
	t.Logf("%d polling requests over 3 nodes; nodes 2 and 3 forwarded %d", alice.hits+bob.hits, after-before)

	// Two overlapping GETs, through two other nodes: the owner refuses the
	// second and closes the session, as on one node.
	var wg sync.WaitGroup
	statuses := make([]int, 2)
	for i, base := range []string{all[1], all[2]} {
		wg.Go(func() {
			if i == 1 {
				time.Sleep(200 * time.Millisecond) // the first is held by then
			}
			statuses[i], _ = sioHTTP(t, "GET", base+alice.path, "", nil)
		})
	}
	wg.Wait()
	if statuses[1] != http.StatusBadRequest {
		t.Fatalf("overlapping GETs answered %v; the second must be refused", statuses)
	}
	if status, body := sioHTTP(t, "GET", all[2]+alice.path, "", nil); status != http.StatusBadRequest || !strings.Contains(body, "Session ID unknown") {
		t.Fatalf("after overlapping GETs the session must be closed: %d %s", status, body)
	}
	alice.closed = true

	// The owner dies: through another node, bob's next poll is answered
	// "Session ID unknown" (the client reconnects), not held.
	c.kill(t, 1)
	start := time.Now()
	status, body := sioHTTP(t, "GET", all[2]+bob.path, "", nil)
	if status != http.StatusBadRequest || !strings.Contains(body, "Session ID unknown") {
		t.Fatalf("poll of a dead node's session: %d %s", status, body)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the dead owner's session took %s to be refused", took)
	}
	bob.closed = true
}

// TestClusterUpgradeOnAnotherNode: a polling session opened on node 1
// upgrades to WebSocket through node 3, and pushes then come over it.
func TestClusterUpgradeOnAnotherNode(t *testing.T) {
	c := startCluster(t, 3)
	d := c.Nodes[0]
	aliceTok, bobTok := d.login(t, "alice"), d.login(t, "bob")
	threadID := newThread(t, d, aliceTok, "bob")
	bobThread := d.threadTokenFor(t, bobTok, threadID)
	bob, serr := sioDialVia(t, c.Nodes[0].ECB, []string{c.Nodes[1].ECB}, map[string]string{"userToken": bobTok})
	if serr != nil {
		t.Fatalf("bob: %+v", serr)
	}
	if a := bob.call("getThread", map[string]any{"threadToken": bobThread}); a.Error != nil {
		t.Fatalf("getThread: %+v", a.Error)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	wsURL := "ws" + strings.TrimPrefix(c.Nodes[2].ECB, "http") + strings.Replace(bob.path, "transport=polling", "transport=websocket", 1)
	conn, _, _, err := ws.Dial(ctx, wsURL)
	if err != nil {
		t.Fatalf("upgrade through node 3: %v", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	if err := wsutil.WriteClientText(conn, []byte("2probe")); err != nil {
		t.Fatal(err)
	}
	if msg, err := wsutil.ReadServerText(conn); err != nil || string(msg) != "3probe" {
		t.Fatalf("probe answer %q, %v", msg, err)
	}
	if err := wsutil.WriteClientText(conn, []byte("5")); err != nil {
		t.Fatal(err)
	}
	bob.closed = true // the session now lives on the WebSocket
	d.send(t, aliceTok, threadID, "over the upgraded socket")
	for {
		msg, err := wsutil.ReadServerText(conn)
		if err != nil {
			t.Fatalf("no push over the upgraded WebSocket: %v", err)
		}
		switch {
		case string(msg) == "2":
			_ = wsutil.WriteClientText(conn, []byte("3"))
		case strings.HasPrefix(string(msg), `42["message",`):
			if !strings.Contains(string(msg), "over the upgraded socket") {
				t.Fatalf("push %s", msg)
			}
			return
		}
	}
}

// TestClusterSSEOnAnyNode: a stream opened on node 1 resumes through node 2
// (forwarded to its owner: nothing lost), its ECB-Stream operations work
// through node 3, and when node 1 stops in order (SIGTERM) the stream's
// next resume on node 2 picks it up from the handoff with nothing lost.
func TestClusterSSEOnAnyNode(t *testing.T) {
	c := startCluster(t, 3)
	d1, d2, d3 := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	aliceTok, bobTok := d1.login(t, "alice"), d1.login(t, "bob")
	threadID := newThread(t, d1, aliceTok, "bob")
	bobThread := d1.threadTokenFor(t, bobTok, threadID)

	s := openStream(t, d1.ECB, bobTok)
	call(t, "GET", d3.ECB+"/v1/threads/"+threadID, nil, bearer(bobTok), "ECB-Stream: "+s.ID, "ECB-Thread-Token: "+bobThread).ok(t)
	d2.send(t, aliceTok, threadID, "one").ok(t)
	awaitMessage(t, s, "one")
	s.Close()
	d3.send(t, aliceTok, threadID, "two").ok(t)

	r := resumeStream(t, d2.ECB, bobTok, s.LastID)
	if !r.Ready.Resumed || r.Ready.Recovered == nil || !*r.Ready.Recovered || r.ID != s.ID {
		t.Fatalf("resume through node 2: %+v", r.Ready)
	}
	awaitMessage(t, r, "two")

	// Node 1 stops in order: its stream is handed over.
	if err := syscall.Kill(c.File.Nodes[0].PID, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for {
		ev := r.next(t, 20*time.Second)
		if ev.Event == "close" {
			if !strings.Contains(string(ev.Data), "shutdown") {
				t.Fatalf("close event %s", ev.Data)
			}
			break
		}
	}
	awaitGone(t, d1)
	d2.send(t, aliceTok, threadID, "three").ok(t)
	h := resumeStream(t, d2.ECB, bobTok, r.LastID)
	if !h.Ready.Resumed || h.Ready.Recovered == nil || !*h.Ready.Recovered || h.ID == s.ID {
		t.Fatalf("resume after node 1 stopped: %+v", h.Ready)
	}
	awaitMessage(t, h, "three")
	d3.send(t, aliceTok, threadID, "four").ok(t)
	awaitMessage(t, h, "four")
	// The picked-up stream is the one its operations name now, on any node.
	call(t, "DELETE", d3.ECB+"/v1/streams/"+h.ID+"/threads/"+threadID, nil, bearer(bobTok)).ok(t)
}

// awaitMessage reads s until the message push with body comes; any other
// message first fails.
func awaitMessage(tb testing.TB, s *sseStream, body string) {
	tb.Helper()
	for {
		ev := s.next(tb, 15*time.Second)
		if ev.Event != "message" {
			continue
		}
		var p messagePush
		_ = json.Unmarshal(ev.Data, &p)
		if p.Message.Body != body {
			tb.Fatalf("message %q, want %q", p.Message.Body, body)
		}
		return
	}
}

// awaitGone waits until node d no longer answers.
func awaitGone(tb testing.TB, d *demo) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(d.ECB + "/healthz")
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		time.Sleep(100 * time.Millisecond)
	}
	tb.Fatalf("%s still answers 30s after SIGTERM", d.ECB)
}
