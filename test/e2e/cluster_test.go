package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ecbridge/ecb/internal/cli"
	"github.com/ecbridge/ecb/internal/redistest"
)

// This file runs ECB in cluster mode end to end: `ecb demo --nodes N`, the
// built binary, N real node processes sharing the machine's Redis, each test
// under a prefix of its own. Nodes die by SIGKILL.

// clusterRedisURL is the Redis the cluster tests share (redistest.URL).
func clusterRedisURL(tb testing.TB) string { return redistest.URL(tb) }

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// ecbBinary builds ./cmd/ecb once per test process.
func ecbBinary(tb testing.TB) string {
	tb.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ecb-e2e-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "ecb")
		out, err := exec.Command("go", "build", "-o", binPath, "../../cmd/ecb").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		tb.Fatal(binErr)
	}
	return binPath
}

// cluster is a running `ecb demo --nodes N`.
type cluster struct {
	File   cli.ClusterFile
	Nodes  []*demo // one per node: ECB is the node's URL, Backend the shared backend
	Prefix string
	Redis  string
	cmd    *exec.Cmd
	stderr *syncBuffer
	data   string
	rolled chan struct{} // a line "rolling restart done" came
}

// startCluster runs `ecb demo --nodes n` with extra flags and stops it (and
// deletes its Redis keys) when the test ends.
func startCluster(tb testing.TB, n int, extra ...string) *cluster {
	tb.Helper()
	return startClusterOn(tb, clusterRedisURL(tb), n, extra...)
}

func startClusterOn(tb testing.TB, redisURL string, n int, extra ...string) *cluster {
	tb.Helper()
	bin := ecbBinary(tb)
	data := demoData(tb)
	c := &cluster{Prefix: redistest.Prefix(tb, redisURL, "e2e"), Redis: redisURL, stderr: &syncBuffer{}, data: data, rolled: make(chan struct{}, 4)}
	args := append([]string{"demo", "--nodes", fmt.Sprint(n), "--listen", "127.0.0.1:0", "--data", data, "--redis", redisURL,
		"--set", "cluster.prefix=" + c.Prefix, "--set", "cluster.probeInterval=200ms"}, extra...)
	c.cmd = exec.Command(bin, args...)
	c.cmd.Stderr = c.stderr
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.stop(tb) })
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		ok := false
		for sc.Scan() {
			if !ok && strings.HasPrefix(sc.Text(), "ECB demo ready") {
				ok = true
				ready <- true
			}
			if strings.HasPrefix(sc.Text(), "ECB demo: rolling restart done") {
				c.rolled <- struct{}{}
			}
		}
		if !ok {
			ready <- false
		}
	}()
	select {
	case ok := <-ready:
		if !ok {
			tb.Fatalf("ecb demo --nodes exited before it was ready:\n%s", c.stderr.String())
		}
	case <-time.After(60 * time.Second):
		tb.Fatalf("ecb demo --nodes not ready after 60s:\n%s", c.stderr.String())
	}
	raw, err := os.ReadFile(filepath.Join(data, "cluster.json"))
	if err != nil {
		tb.Fatal(err)
	}
	if err := json.Unmarshal(raw, &c.File); err != nil {
		tb.Fatal(err)
	}
	if len(c.File.Nodes) != n {
		tb.Fatalf("cluster.json lists %d nodes, want %d", len(c.File.Nodes), n)
	}
	for _, node := range c.File.Nodes {
		d := &demo{ECB: node.URL, Backend: c.File.Backend, Data: data, stderr: c.stderr}
		c.Nodes = append(c.Nodes, d)
		c.awaitReady(tb, d)
	}
	return c
}

// rollingRestart has the demo restart its nodes one by one (SIGHUP: each
// drains with SIGTERM and comes back on its address) and waits until it is
// done; the nodes' pids are read again.
func (c *cluster) rollingRestart(tb testing.TB, within time.Duration) {
	tb.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		tb.Fatal(err)
	}
	select {
	case <-c.rolled:
	case <-time.After(within):
		tb.Fatalf("rolling restart not done within %s:\n%s", within, c.stderr.String())
	}
	raw, err := os.ReadFile(filepath.Join(c.data, "cluster.json"))
	if err != nil {
		tb.Fatal(err)
	}
	if err := json.Unmarshal(raw, &c.File); err != nil {
		tb.Fatal(err)
	}
}

// awaitReady waits until the node's /readyz says ready (its subscriptions
// deliver).
func (c *cluster) awaitReady(tb testing.TB, d *demo) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		status, body, err := tryCall("GET", d.ECB+"/readyz", nil)
		if err == nil && status == 200 {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s not ready: %d %s %v\n%s", d.ECB, status, body, err, c.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill ends node i with SIGKILL, as a crash would.
func (c *cluster) kill(tb testing.TB, i int) {
	tb.Helper()
	if err := syscall.Kill(c.File.Nodes[i].PID, syscall.SIGKILL); err != nil {
		tb.Fatal(err)
	}
}

func (c *cluster) stop(tb testing.TB) {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		tb.Errorf("ecb demo --nodes did not stop within 30s")
	}
}

// newThread creates a thread of the caller with participants and returns its id.
func newThread(tb testing.TB, d *demo, token string, participants ...string) string {
	tb.Helper()
	c := decodeData[created](tb, call(tb, "POST", d.ECB+"/v1/threads", map[string]any{
		"participants": participants, "subject": "cluster", "message": map[string]any{"body": "hello"}}, bearer(token)))
	return c.Thread.ID
}

// collector reads message pushes from a stream in the background.
type collector struct {
	mu    sync.Mutex
	got   []messagePush
	more  chan struct{}
	ended chan struct{} // closed when the stream ends
}

func collect(s *sseStream) *collector {
	c := &collector{more: make(chan struct{}, 1), ended: make(chan struct{})}
	go func() {
		defer close(c.ended)
		for ev := range s.events {
			if ev.Event != "message" {
				continue
			}
			var p messagePush
			if json.Unmarshal(ev.Data, &p) != nil {
				continue
			}
			c.mu.Lock()
			c.got = append(c.got, p)
			c.mu.Unlock()
			select {
			case c.more <- struct{}{}:
			default:
			}
		}
	}()
	return c
}

func (c *collector) pushes() []messagePush {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]messagePush(nil), c.got...)
}

// await waits until the collector holds every body in want; only a hang fails.
func (c *collector) await(tb testing.TB, who string, want map[string]bool) {
	tb.Helper()
	deadline := time.After(30 * time.Second)
	for {
		have := map[string]bool{}
		for _, p := range c.pushes() {
			have[p.Message.Body] = true
		}
		missing := 0
		for b := range want {
			if !have[b] {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		select {
		case <-c.more:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			tb.Fatalf("%s: %d of %d acknowledged messages never arrived", who, missing, len(want))
		}
	}
}

// checkExactlyOnceInOrder asserts that pushes hold each acknowledged body
// once, in strictly increasing offsets of one epoch.
func checkExactlyOnceInOrder(tb testing.TB, who string, pushes []messagePush, acked map[string]bool) {
	tb.Helper()
	seen := map[string]int{}
	for i, p := range pushes {
		seen[p.Message.Body]++
		if i > 0 && (p.Epoch != pushes[i-1].Epoch || p.Offset <= pushes[i-1].Offset) {
			tb.Fatalf("%s: push %d at %s/%d after %s/%d: out of order", who, i, p.Epoch, p.Offset, pushes[i-1].Epoch, pushes[i-1].Offset)
		}
	}
	for b := range acked {
		if seen[b] != 1 {
			tb.Fatalf("%s: acknowledged message %q arrived %d times", who, b, seen[b])
		}
	}
}

// TestClusterChatSurvivesANodeKilledMidChat: listeners of one thread on three
// nodes; a sender keeps sending through the nodes with retries while the node
// of one listener is killed with SIGKILL. Every acknowledged message reaches
// every surviving listener once, in order, and the killed node's client
// recovers the rest on another node.
func TestClusterChatSurvivesANodeKilledMidChat(t *testing.T) {
	c := startCluster(t, 3)
	n1, n2, n3 := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	alice, bob := n1.login(t, "alice"), n2.login(t, "bob")
	threadID := newThread(t, n1, alice, "bob")

	aliceS, _ := n1.listening(t, alice, threadID) // node 1
	bobS, _ := n2.listening(t, bob, threadID)     // node 2, killed below
	bob2S, _ := n3.listening(t, bob, threadID)    // node 3
	aliceC, bobC, bob2C := collect(aliceS), collect(bobS), collect(bob2S)
	aliceTT := n1.threadTokenFor(t, alice, threadID)

	const total = 40
	acked := map[string]bool{}
	senders := []*demo{n1, n3, n2} // node 2 is tried too, until it is dead
	for i := range total {
		body := fmt.Sprintf("m%02d", i)
		var ok bool
		for try := range 6 {
			d := senders[(i+try)%len(senders)]
			status, _, err := tryCall("POST", d.ECB+"/v1/threads/"+threadID+"/messages",
				map[string]any{"body": body, "clientMessageId": "cm-" + body}, bearer(alice), "ECB-Thread-Token: "+aliceTT)
			if err == nil && status == 201 {
				ok = true
				break
			}
		}
		if !ok {
			t.Fatalf("message %s was never acknowledged", body)
		}
		acked[body] = true
		if i == total/3 {
			bobC.await(t, "bob on node 2 (before the kill)", acked)
			c.kill(t, 1)
		}
	}

	aliceC.await(t, "alice on node 1", acked)
	bob2C.await(t, "bob's second stream on node 3", acked)
	checkExactlyOnceInOrder(t, "alice on node 1", aliceC.pushes(), acked)
	checkExactlyOnceInOrder(t, "bob on node 3", bob2C.pushes(), acked)

	// Bob's client on the dead node reconnects elsewhere and resumes from
	// the last push it processed.
	before := bobC.pushes()
	last := before[len(before)-1]
	bobR := openStream(t, n3.ECB, bob)
	bobRC := collect(bobR)
	bobTT := n3.threadTokenFor(t, bob, threadID)
	res := decodeData[struct {
		Threads []struct {
			ThreadID  string `json:"threadId"`
			Recovered bool   `json:"recovered"`
			Missed    int    `json:"missed"`
		} `json:"threads"`
	}](t, call(t, "POST", n3.ECB+"/v1/resume", map[string]any{"threads": []map[string]any{{"threadToken": bobTT, "epoch": last.Epoch, "offset": last.Offset}}},
		bearer(bob), "ECB-Stream: "+bobR.ID))
	if len(res.Threads) != 1 || !res.Threads[0].Recovered {
		t.Fatalf("resume on node 3 after node 2 died: %+v", res)
	}
	rest := map[string]bool{}
	for b := range acked {
		rest[b] = true
	}
	for _, p := range before {
		delete(rest, p.Message.Body)
	}
	if res.Threads[0].Missed != len(rest) {
		t.Fatalf("resume recovered %d pushes, want the %d bob had not seen", res.Threads[0].Missed, len(rest))
	}
	bobRC.await(t, "bob resumed on node 3", rest)
	checkExactlyOnceInOrder(t, "bob across the kill", append(before, bobRC.pushes()...), acked)
}

// TestClusterBanOnOneNodeDetachesAListenerOnAnother: the Server API of node
// 1 bans bob from a thread; his listener on node 3 is told and gets nothing
// of the thread after it.
func TestClusterBanOnOneNodeDetachesAListenerOnAnother(t *testing.T) {
	c := startCluster(t, 3)
	n1, n3 := c.Nodes[0], c.Nodes[2]
	alice, bob := n1.login(t, "alice"), n3.login(t, "bob")
	threadID := newThread(t, n1, alice, "bob")
	bobS, _ := n3.listening(t, bob, threadID)
	aliceS, _ := n1.listening(t, alice, threadID)

	ban := 0
	if _, err := n1.serverAPI(t).SetAccess(context.Background(), threadID, "bob", ban, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	ev := bobS.await(t, "thread")
	var change struct {
		Change string `json:"change"`
		Acc    *int   `json:"acc"`
	}
	_ = json.Unmarshal(ev.Data, &change)
	if change.Change != "access" || change.Acc == nil || *change.Acc != 0 {
		t.Fatalf("bob on node 3 was told %s, want change access, acc 0", ev.Data)
	}
	if r := n1.send(t, alice, threadID, "after the ban"); r.Status != 201 {
		t.Fatalf("alice's send: %d %s", r.Status, r.code())
	}
	aliceS.await(t, "message") // the message is out; bob's node has it too
	bobS.expectNoneOf(t, time.Second, "message")
}

// tryCall sends a request and reports a transport error instead of failing
// the test (a node that died mid-request).
func tryCall(method, url string, body any, headers ...string) (int, string, error) {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return 0, "", err
		}
		rd = strings.NewReader(string(raw))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, "", err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw), nil
}

// ownRedis runs a redis-server of this test on a free port (so that it can
// be restarted without disturbing the others) and returns its URL and a
// function that starts it again on the same port.
func ownRedis(tb testing.TB) (url string, stop, start func()) {
	tb.Helper()
	clusterRedisURL(tb) // the machine has Redis (or the test skips/fails as configured)
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Fatalf("redis-server: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	var cmd *exec.Cmd
	start = func() {
		cmd = exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
		if err := cmd.Start(); err != nil {
			tb.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
			if err == nil {
				c.Close()
				return
			}
			if time.Now().After(deadline) {
				tb.Fatalf("redis-server on %d did not start", port)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	stop = func() {
		if cmd != nil && cmd.Process != nil {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			_ = cmd.Wait()
			cmd = nil
		}
	}
	start()
	tb.Cleanup(stop)
	return fmt.Sprintf("redis://127.0.0.1:%d/0", port), stop, start
}

func (c *cluster) awaitStatus(tb testing.TB, d *demo, want int) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		status, _, err := tryCall("GET", d.ECB+"/readyz", nil)
		if err == nil && status == want {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s /readyz: %d %v, want %d", d.ECB, status, err, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestClusterRedisRestartMidChat: Redis goes away (its data with it) and
// comes back. Meanwhile the nodes report not ready and fan out to their own
// listeners alone; then they resubscribe by themselves, every listener of
// the thread is told to resync (the history it knew is gone, and a message
// reached one node only), a client that resumes from the old history is
// told recovered: false, and the chat goes on across nodes.
func TestClusterRedisRestartMidChat(t *testing.T) {
	url, stopRedis, startRedis := ownRedis(t)
	c := startClusterOn(t, url, 2)
	n1, n2 := c.Nodes[0], c.Nodes[1]
	alice, bob := n1.login(t, "alice"), n2.login(t, "bob")
	threadID := newThread(t, n1, alice, "bob")
	aliceS, _ := n1.listening(t, alice, threadID)
	aliceC := collect(aliceS)
	bobS, _ := n2.listening(t, bob, threadID)
	bobC := collect(bobS)
	if r := n1.send(t, alice, threadID, "before"); r.Status != 201 {
		t.Fatalf("send: %d %s", r.Status, r.code())
	}
	bobC.await(t, "bob", map[string]bool{"before": true})
	aliceC.await(t, "alice", map[string]bool{"before": true})
	old := bobC.pushes()[0]

	stopRedis()
	c.awaitStatus(t, n1, 503)
	c.awaitStatus(t, n2, 503)
	if r := n1.send(t, alice, threadID, "while redis is down"); r.Status != 201 {
		t.Fatalf("a message while Redis is down: %d %q, want 201 and local fan-out", r.Status, r.code())
	}
	aliceC.await(t, "alice on the sending node", map[string]bool{"while redis is down": true})
	local := aliceC.pushes()[1]
	if local.Epoch != old.Epoch || local.Offset != old.Offset+1 {
		t.Fatalf("the local push at %s/%d, want %s/%d", local.Epoch, local.Offset, old.Epoch, old.Offset+1)
	}

	startRedis()
	c.awaitStatus(t, n1, 200)
	c.awaitStatus(t, n2, 200)
	for who, col := range map[string]*collector{"alice": aliceC, "bob": bobC} {
		select {
		case <-col.ended:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s's stream was not told to resync after Redis came back", who)
		}
	}
	for _, p := range bobC.pushes() {
		if p.Message.Body == "while redis is down" {
			t.Fatal("bob on the other node got the message fanned out locally during the outage")
		}
	}
	// Alice resumes from the local push: she is not told she recovered.
	aliceR := openStream(t, n1.ECB, alice)
	if resumeRecovered(t, n1, alice, aliceR, threadID, local) {
		t.Fatalf("alice resumed from %s/%d of the lost history and was told recovered", local.Epoch, local.Offset)
	}
	// Bob resumes and the chat goes on. Right after Redis is back a node's
	// connection pool may still answer with its last dial error for a
	// moment: a message then reaches its node's listeners only, and bob is
	// told to resync again, never left with a silent gap.
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(c.stderr.String())
		}
	})
	from := old
	for attempt := 1; ; attempt++ {
		s := openStream(t, n2.ECB, bob)
		if resumeRecovered(t, n2, bob, s, threadID, from) {
			t.Fatalf("bob resumed from %s/%d of a replaced history and was told recovered", from.Epoch, from.Offset)
		}
		col := collect(s)
		body := fmt.Sprintf("after %d", attempt)
		if r := n1.send(t, alice, threadID, body); r.Status != 201 {
			t.Fatalf("send after the restart: %d %s", r.Status, r.code())
		}
		if col.awaitOrEnd(t, "bob after the restart", body) {
			if after := col.pushes()[0]; after.Epoch == old.Epoch {
				t.Fatalf("the history was lost with Redis but the epoch %s stayed", after.Epoch)
			}
			return
		}
		if attempt == 5 {
			t.Fatal("bob was told to resync 5 times after Redis came back")
		}
		if got := col.pushes(); len(got) > 0 {
			from = got[len(got)-1]
		}
	}
}

// resumeRecovered resumes token's thread on stream s from a position and
// returns what ECB said of it.
func resumeRecovered(tb testing.TB, d *demo, token string, s *sseStream, threadID string, from messagePush) bool {
	tb.Helper()
	res := decodeData[struct {
		Threads []struct {
			Recovered bool `json:"recovered"`
		} `json:"threads"`
	}](tb, call(tb, "POST", d.ECB+"/v1/resume", map[string]any{"threads": []map[string]any{{"threadToken": d.threadTokenFor(tb, token, threadID), "epoch": from.Epoch, "offset": from.Offset}}},
		bearer(token), "ECB-Stream: "+s.ID))
	if len(res.Threads) != 1 {
		tb.Fatalf("resume answered %d threads, want 1", len(res.Threads))
	}
	return res.Threads[0].Recovered
}

// awaitOrEnd waits until the collector holds body (true) or its stream ended
// without it (false); only a hang fails.
func (c *collector) awaitOrEnd(tb testing.TB, who, body string) bool {
	tb.Helper()
	deadline := time.After(30 * time.Second)
	for {
		for _, p := range c.pushes() {
			if p.Message.Body == body {
				return true
			}
		}
		select {
		case <-c.more:
		case <-c.ended:
			for _, p := range c.pushes() {
				if p.Message.Body == body {
					return true
				}
			}
			return false
		case <-deadline:
			tb.Fatalf("%s: %q neither arrived nor was the stream told to resync", who, body)
		}
	}
}
