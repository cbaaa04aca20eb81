package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	ecbcluster "github.com/ecbridge/ecb/internal/cluster"
	"github.com/ecbridge/ecb/internal/lbtest"
)

// These tests put the shipped nginx configuration (deploy/nginx/ecb.conf,
// round robin, no stickiness) in front of three real ECB nodes and drive
// them with the official socket.io-client (test/interop/cluster-chat.mjs)
// and an SSE reader that reconnects as EventSource does.

// interopScript is a run of a script of test/interop with node.
type interopScript struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	err   *syncBuffer
}

// runInteropScript starts node test/interop/<name> with cfg as its JSON
// argument. It needs test/interop's node_modules (`make test` installs
// them first): without them the test is skipped, or fails under CI=true.
func runInteropScript(tb testing.TB, name string, cfg any) *interopScript {
	tb.Helper()
	dir, err := filepath.Abs("../interop")
	if err != nil {
		tb.Fatal(err)
	}
	_, errNode := exec.LookPath("node")
	_, errMod := os.Stat(filepath.Join(dir, "node_modules", "socket.io-client"))
	if errNode != nil || errMod != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("node and test/interop/node_modules are needed (npm ci in test/interop): %v %v", errNode, errMod)
		}
		tb.Skipf("node or test/interop/node_modules missing: %v %v", errNode, errMod)
	}
	raw, _ := json.Marshal(cfg)
	s := &interopScript{lines: make(chan string, 16), err: &syncBuffer{}}
	s.cmd = exec.Command("node", name, string(raw))
	s.cmd.Dir = dir
	s.cmd.Stderr = s.err
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if s.stdin, err = s.cmd.StdinPipe(); err != nil {
		tb.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	})
	go func() {
		defer close(s.lines)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
	}()
	return s
}

// line returns the script's next output line.
func (s *interopScript) line(tb testing.TB, within time.Duration) string {
	tb.Helper()
	select {
	case l, ok := <-s.lines:
		if !ok {
			tb.Fatalf("the script ended:\n%s", s.err.String())
		}
		return l
	case <-time.After(within):
		tb.Fatalf("no output from the script within %s:\n%s", within, s.err.String())
	}
	return ""
}

// chatResult is what cluster-chat.mjs prints at the end.
type chatResult struct {
	Acked     []string `json:"acked"`
	Listeners map[string]struct {
		Received []struct {
			Body   string `json:"body"`
			Epoch  string `json:"epoch"`
			Offset uint64 `json:"offset"`
		} `json:"received"`
		Connects  int   `json:"connects"`
		Resumes   []any `json:"resumes"`
		Polls     int   `json:"polls"`
		Transport string
	} `json:"listeners"`
}

func (r chatResult) pushes(who string) []messagePush {
	var out []messagePush
	for _, p := range r.Listeners[who].Received {
		mp := messagePush{Epoch: p.Epoch, Offset: p.Offset}
		mp.Message.Body = p.Body
		out = append(out, mp)
	}
	return out
}

func (r chatResult) ackedSet() map[string]bool {
	out := map[string]bool{}
	for _, b := range r.Acked {
		out[b] = true
	}
	return out
}

// balancedCluster starts three nodes with extra settings behind the
// shipped nginx configuration, and a thread of alice with bob and carol.
func balancedCluster(t *testing.T, extra ...string) (c *cluster, lb string, cfg map[string]any, threadID string) {
	return balancedClusterBehind(t, "nginx", extra...)
}

// balancedClusterBehind is balancedCluster behind the balancer kind
// (lbtest.Start: nginx or haproxy).
func balancedClusterBehind(t *testing.T, kind string, extra ...string) (c *cluster, lb string, cfg map[string]any, threadID string) {
	c = startCluster(t, 3, extra...)
	var addrs []string
	for _, n := range c.Nodes {
		u, err := url.Parse(n.ECB)
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, u.Host)
	}
	lb = lbtest.Start(t, kind, addrs)
	d := c.Nodes[0]
	users := map[string]string{}
	for _, u := range []string{"alice", "bob", "carol"} {
		users[u] = d.login(t, u)
	}
	threadID = newThread(t, d, users["alice"], "bob", "carol")
	toks := map[string]string{}
	for u, tok := range users {
		toks[u] = d.threadTokenFor(t, tok, threadID)
	}
	cfg = map[string]any{"url": lb, "userToken": users, "threadToken": toks}
	return c, lb, cfg, threadID
}

// TestBalancedChatWithoutStickiness: through nginx, then HAProxy, round
// robin, bob over long-polling only holds the chat for more than 100 poll
// cycles without a reconnect, carol over polling upgraded to WebSocket
// likewise, and each gets every acknowledged message once, in order; the
// nodes really forwarded.
func TestBalancedChatWithoutStickiness(t *testing.T) {
	for _, kind := range []string{"nginx", "haproxy"} {
		t.Run(kind, func(t *testing.T) { balancedChat(t, kind) })
	}
}

func balancedChat(t *testing.T, kind string) {
	c, _, cfg, _ := balancedClusterBehind(t, kind)
	cfg["messages"], cfg["intervalMs"] = 110, 60
	s := runInteropScript(t, "cluster-chat.mjs", cfg)
	if l := s.line(t, 30*time.Second); l != "ready" {
		t.Fatalf("script: %s", l)
	}
	var res chatResult
	if err := json.Unmarshal([]byte(s.line(t, 90*time.Second)), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Acked) != 110 {
		t.Fatalf("%d messages acknowledged", len(res.Acked))
	}
	for who, transport := range map[string]string{"bob": "polling", "carol": "websocket"} {
		l := res.Listeners[who]
		checkExactlyOnceInOrder(t, who, res.pushes(who), res.ackedSet())
		if len(l.Received) != len(res.Acked) {
			t.Fatalf("%s received %d pushes for %d messages", who, len(l.Received), len(res.Acked))
		}
		if l.Connects != 1 || l.Transport != transport {
			t.Fatalf("%s: %d connects, transport %q (want 1 over %s)", who, l.Connects, l.Transport, transport)
		}
	}
	if polls := res.Listeners["bob"].Polls; polls < 100 {
		t.Fatalf("bob polled %d times", polls)
	}
	total := 0
	for _, n := range c.Nodes {
		total += forwarded(t, n, "forwarded")
	}
	if total == 0 {
		t.Fatal("no node forwarded a request: the balancer did not spread the sessions' requests")
	}
	t.Logf("bob: %d polls over %s round robin; the nodes forwarded %d requests", res.Listeners["bob"].Polls, kind, total)
}

// sseFollower reads an event stream through base the way EventSource does:
// when the stream ends it reconnects with Last-Event-ID after the retry
// ECB gave, and records each ready and each message push.
type sseFollower struct {
	mu      sync.Mutex
	got     []messagePush
	readies []struct {
		StreamID  string `json:"streamId"`
		Resumed   bool   `json:"resumed"`
		Recovered *bool  `json:"recovered"`
	}
	errs   []string
	listen func(streamID string) error
}

// listen is called with each new stream's id (a ready with resumed: false),
// to make it listen to the thread.
func followStream(ctx context.Context, wg *sync.WaitGroup, base, token string, listen func(streamID string) error) *sseFollower {
	f := &sseFollower{listen: listen}
	wg.Go(func() {
		lastID, retry := "", 200*time.Millisecond
		for ctx.Err() == nil {
			lastID, retry = f.read(ctx, base, token, lastID, retry)
			select {
			case <-ctx.Done():
			case <-time.After(retry):
			}
		}
	})
	return f
}

func (f *sseFollower) read(ctx context.Context, base, token, lastID string, retry time.Duration) (string, time.Duration) {
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return lastID, retry
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(resp.Body)
		f.mu.Lock()
		f.errs = append(f.errs, resp.Status+" "+string(raw))
		f.mu.Unlock()
		return lastID, retry
	}
	sc := bufio.NewScanner(resp.Body)
	var id, event, data string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			id = line[4:]
		case strings.HasPrefix(line, "event: "):
			event = line[7:]
		case strings.HasPrefix(line, "data: "):
			data = line[6:]
		case strings.HasPrefix(line, "retry: "):
			if ms, err := time.ParseDuration(line[7:] + "ms"); err == nil {
				retry = ms
			}
		case line == "":
			if id != "" {
				lastID = id
			}
			f.mu.Lock()
			switch event {
			case "ready":
				r := f.readies
				r = append(r, struct {
					StreamID  string `json:"streamId"`
					Resumed   bool   `json:"resumed"`
					Recovered *bool  `json:"recovered"`
				}{})
				_ = json.Unmarshal([]byte(data), &r[len(r)-1])
				f.readies = r
				if !r[len(r)-1].Resumed {
					if err := f.listen(r[len(r)-1].StreamID); err != nil {
						f.errs = append(f.errs, "listen: "+err.Error())
					}
				}
			case "message":
				var p messagePush
				if json.Unmarshal([]byte(data), &p) == nil {
					f.got = append(f.got, p)
				}
			}
			f.mu.Unlock()
			id, event, data = "", "", ""
		}
	}
	return lastID, retry
}

// TestBalancedRollingRestartLosesNothing: under continuous chat through
// nginx, the three nodes are restarted one by one (each drains on SIGTERM).
// Every acknowledged message reaches bob (polling), carol (WebSocket) and
// bob's SSE stream exactly once, in order; every reconnect resumes with
// recovered: true, and the SSE stream is picked up on another node each
// time its node stops.
func TestBalancedRollingRestartLosesNothing(t *testing.T) {
	c, lb, cfg, threadID := balancedCluster(t, "--set", "socketio.pingInterval=2s", "--set", "socketio.pingTimeout=3s",
		"--set", "http.shutdownTimeout=8s", "--set", "http.reconnectJitter=500ms",
		"--set", "limits.opsPerSecondPerConnection=200", "--set", "limits.opsBurstPerConnection=200",
		"--set", "limits.opsPerSecondPerUser=200", "--set", "limits.opsBurstPerUser=200")
	cfg["messages"], cfg["intervalMs"], cfg["untilStopped"] = 10, 15, true
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	bob, bobThread := cfg["userToken"].(map[string]string)["bob"], cfg["threadToken"].(map[string]string)["bob"]
	listening := make(chan struct{})
	var once sync.Once
	stream := followStream(ctx, &wg, lb, bob, func(streamID string) error {
		status, body, err := tryCall("GET", lb+"/v1/threads/"+threadID, nil, bearer(bob), "ECB-Stream: "+streamID, "ECB-Thread-Token: "+bobThread)
		if err == nil && status != http.StatusOK {
			err = fmt.Errorf("getThread: %d %s", status, body)
		}
		once.Do(func() { close(listening) })
		return err
	})
	select {
	case <-listening:
	case <-time.After(20 * time.Second):
		t.Fatal("bob's SSE stream never opened")
	}

	s := runInteropScript(t, "cluster-chat.mjs", cfg)
	if l := s.line(t, 30*time.Second); l != "ready" {
		t.Fatalf("script: %s", l)
	}
	time.Sleep(time.Second) // some chat before the restart
	for round := range 2 {
		start := time.Now()
		c.rollingRestart(t, 3*time.Minute)
		t.Logf("rolling restart %d of 3 nodes: %s", round+1, time.Since(start).Round(time.Millisecond))
	}
	if _, err := io.WriteString(s.stdin, "stop\n"); err != nil {
		t.Fatal(err)
	}
	var res chatResult
	if err := json.Unmarshal([]byte(s.line(t, 90*time.Second)), &res); err != nil {
		t.Fatal(err)
	}
	acked := res.ackedSet()
	for _, who := range []string{"bob", "carol"} {
		l := res.Listeners[who]
		checkExactlyOnceInOrder(t, who, res.pushes(who), acked)
		if len(l.Received) != len(res.Acked) {
			t.Fatalf("%s received %d pushes for %d acknowledged messages", who, len(l.Received), len(res.Acked))
		}
		if l.Connects < 2 {
			t.Fatalf("%s never reconnected (%d connects): its node was not restarted under it", who, l.Connects)
		}
		if len(l.Resumes) == 0 {
			t.Fatalf("%s reconnected but never resumed", who)
		}
		for _, r := range l.Resumes {
			if r != true {
				t.Fatalf("%s: a resume answered %v (resumes %v)", who, r, l.Resumes)
			}
		}
		t.Logf("%s: %d messages, %d connects, resumes %v", who, len(l.Received), l.Connects, l.Resumes)
	}

	// The SSE stream: every message once, in order; every reconnect resumed
	// with nothing lost.
	deadline := time.Now().Add(15 * time.Second)
	for {
		stream.mu.Lock()
		n := len(stream.got)
		stream.mu.Unlock()
		if n >= len(res.Acked) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	t.Logf("bob's SSE stream: readies %+v, refusals %v", stream.readies, stream.errs)
	checkExactlyOnceInOrder(t, "bob's SSE stream", stream.got, acked)
	if len(stream.readies) < 2 {
		t.Fatalf("the SSE stream never reconnected (%d readies)", len(stream.readies))
	}
	for i, r := range stream.readies[1:] {
		if !r.Resumed || r.Recovered == nil || !*r.Recovered {
			t.Fatalf("SSE reconnect %d: %+v (errors %v)", i+1, r, stream.errs)
		}
	}
	t.Logf("bob's SSE stream: %d messages, %d reconnects, all recovered", len(stream.got), len(stream.readies)-1)
}

// TestBalancedRollingRestartKeepsSupportCallbacks: a support chat goes on
// through nginx while the three nodes are restarted one by one (the support
// engine's owner among them). Every message the agent had acknowledged
// reaches the backend as one message.created callback: none of those queued
// on a draining node is lost.
func TestBalancedRollingRestartKeepsSupportCallbacks(t *testing.T) {
	c, lb, cfg, _ := balancedCluster(t, "--set", "socketio.pingInterval=2s", "--set", "socketio.pingTimeout=3s",
		"--set", "http.shutdownTimeout=8s", "--set", "support.offerTimeout=60s",
		"--set", "limits.opsPerSecondPerConnection=200", "--set", "limits.opsBurstPerConnection=200",
		"--set", "limits.opsPerSecondPerUser=200", "--set", "limits.opsBurstPerUser=200")
	d := c.Nodes[0]
	agent1, alice := d.login(t, "agent1"), cfg["userToken"].(map[string]string)["alice"]
	sa, sv := openStream(t, lb, agent1), openStream(t, lb, alice)
	decodeData[map[string]any](t, call(t, "POST", lb+"/v1/ops/agent.setAvailability", map[string]any{"available": true}, bearer(agent1), "ECB-Stream: "+sa.ID))
	asked := decodeData[struct{ RequestID string }](t, call(t, "POST", lb+"/v1/ops/support.ask",
		map[string]any{"workgroup": "support", "question": "Through a rolling restart?"}, bearer(alice), "ECB-Stream: "+sv.ID))
	var offer struct{ OfferID string }
	if err := json.Unmarshal(awaitEvent(t, sa, "offer", 15*time.Second).Data, &offer); err != nil {
		t.Fatal(err)
	}
	accepted := decodeData[struct {
		Thread      struct{ ID string }
		ThreadToken string
	}](t, call(t, "POST", lb+"/v1/ops/offer.accept", map[string]any{"offerId": offer.OfferID}, bearer(agent1), "ECB-Stream: "+sa.ID))

	// The agent writes every 20 ms, each message retried with its
	// clientMessageId until it is acknowledged.
	stop := make(chan struct{})
	ackedc := make(chan []string, 1)
	go func() {
		var acked []string
		for i := 0; ; i++ {
			select {
			case <-stop:
				ackedc <- acked
				return
			case <-time.After(20 * time.Millisecond):
			}
			body := fmt.Sprintf("support %d", i)
			for {
				status, _, err := tryCall("POST", lb+"/v1/threads/"+accepted.Thread.ID+"/messages",
					map[string]any{"body": body, "clientMessageId": fmt.Sprintf("rr-%d", i)},
					bearer(agent1), "ECB-Thread-Token: "+accepted.ThreadToken)
				if err == nil && status == http.StatusCreated {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			acked = append(acked, body)
		}
	}()
	time.Sleep(500 * time.Millisecond)
	c.rollingRestart(t, 3*time.Minute)
	time.Sleep(500 * time.Millisecond)
	close(stop)
	acked := <-ackedc
	if len(acked) < 20 {
		t.Fatalf("only %d messages acknowledged", len(acked))
	}

	// Every acknowledged message, one message.created callback each.
	var counts map[string]int
	deadline := time.Now().Add(30 * time.Second)
	for {
		var got struct {
			Events []struct {
				Type string `json:"type"`
				Data struct {
					Body string `json:"body"`
				} `json:"data"`
			} `json:"events"`
		}
		status, body, err := tryCall("GET", c.File.Backend+"/callbacks?requestId="+url.QueryEscape(asked.RequestID), nil)
		if err != nil || status != http.StatusOK || json.Unmarshal([]byte(body), &got) != nil {
			t.Fatalf("callbacks: %d %v %s", status, err, body)
		}
		counts = map[string]int{}
		for _, ev := range got.Events {
			if ev.Type == "message.created" {
				counts[ev.Data.Body]++
			}
		}
		missing := 0
		for _, b := range acked {
			if counts[b] == 0 {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			if missing > 0 {
				t.Fatalf("%d of %d acknowledged messages have no message.created callback", missing, len(acked))
			}
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, b := range acked {
		if counts[b] != 1 {
			t.Fatalf("message %q: %d message.created callbacks", b, counts[b])
		}
	}
	t.Logf("%d support messages through a rolling restart, one callback each", len(acked))
}

// TestBalancedOwnerKilledMidChat: through nginx, the node holding bob's
// polling session is killed with SIGKILL mid-chat. bob's next request is
// answered "Session ID unknown" by a node that is still up, socket.io-client
// opens a new session, and the resume recovers what was missed: every
// acknowledged message once, in order, for bob and carol.
func TestBalancedOwnerKilledMidChat(t *testing.T) {
	c, _, cfg, _ := balancedCluster(t, "--set", "socketio.pingInterval=2s", "--set", "socketio.pingTimeout=3s",
		"--set", "limits.opsPerSecondPerConnection=200", "--set", "limits.opsBurstPerConnection=200",
		"--set", "limits.opsPerSecondPerUser=200", "--set", "limits.opsBurstPerUser=200")
	cfg["messages"], cfg["intervalMs"], cfg["untilStopped"] = 20, 15, true
	s := runInteropScript(t, "cluster-chat.mjs", cfg)
	if l := s.line(t, 30*time.Second); l != "ready" {
		t.Fatalf("script: %s", l)
	}
	time.Sleep(500 * time.Millisecond)
	if _, err := io.WriteString(s.stdin, "sids\n"); err != nil {
		t.Fatal(err)
	}
	var sids struct{ Bob, Carol string }
	if err := json.Unmarshal([]byte(s.line(t, 10*time.Second)), &sids); err != nil {
		t.Fatal(err)
	}
	owner := -1
	for i, n := range c.File.Nodes {
		if ecbcluster.TagOf(sids.Bob) == ecbcluster.NodeTag(n.Name) {
			owner = i
		}
	}
	if owner < 0 {
		t.Fatalf("bob's sid %q names no node of %+v", sids.Bob, c.File.Nodes)
	}
	c.kill(t, owner)
	time.Sleep(3 * time.Second) // the chat goes on without that node
	if _, err := io.WriteString(s.stdin, "stop\n"); err != nil {
		t.Fatal(err)
	}
	var res chatResult
	if err := json.Unmarshal([]byte(s.line(t, 90*time.Second)), &res); err != nil {
		t.Fatal(err)
	}
	acked := res.ackedSet()
	for _, who := range []string{"bob", "carol"} {
		l := res.Listeners[who]
		checkExactlyOnceInOrder(t, who, res.pushes(who), acked)
		if len(l.Received) != len(res.Acked) {
			t.Fatalf("%s received %d pushes for %d acknowledged messages", who, len(l.Received), len(res.Acked))
		}
		for _, r := range l.Resumes {
			if r != true {
				t.Fatalf("%s: a resume answered %v", who, r)
			}
		}
	}
	if l := res.Listeners["bob"]; l.Connects < 2 || len(l.Resumes) == 0 {
		t.Fatalf("bob's node was killed, yet %d connects and resumes %v", l.Connects, l.Resumes)
	}
	t.Logf("node %s killed under bob: %d messages, bob %d connects (resumes %v), carol %d connects",
		c.File.Nodes[owner].Name, len(res.Acked), res.Listeners["bob"].Connects, res.Listeners["bob"].Resumes, res.Listeners["carol"].Connects)
}
