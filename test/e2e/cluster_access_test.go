package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ecbridge/ecb/internal/cli"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// clusterRedis is the Redis the cluster tests share (ECB_TEST_REDIS_URL,
// default the machine's); under CI=true a missing Redis fails the test.
func clusterRedis(tb testing.TB) string {
	tb.Helper()
	url := os.Getenv("ECB_TEST_REDIS_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		tb.Fatal(err)
	}
	c := redis.NewClient(opt)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("Redis is required under CI=true and does not answer at %s: %v", url, err)
		}
		tb.Skipf("no Redis at %s: %v", url, err)
	}
	return url
}

// buildECB builds the ecb binary from this repository into dir.
func buildECB(tb testing.TB, dir string) string {
	tb.Helper()
	bin := filepath.Join(dir, "ecb")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/ecbridge/ecb/cmd/ecb")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// clusterDemo is a running `ecb demo --nodes N` of the built binary, with
// a prefix of its own in Redis, whose keys are deleted when the test ends.
type clusterDemo struct {
	file  cli.ClusterFile
	nodes []*demo // one per node: ECB is the node's URL
}

func startClusterDemo(tb testing.TB, bin string, n int) *clusterDemo {
	tb.Helper()
	url := clusterRedis(tb)
	var b [4]byte
	_, _ = rand.Read(b[:])
	prefix := "ecbe2e-" + hex.EncodeToString(b[:])
	tb.Cleanup(func() { dropRedisPrefix(tb, url, prefix) })
	data := filepath.Join(tb.TempDir(), "data")
	cmd := exec.Command(bin, "demo", "--nodes", "3", "--listen", "127.0.0.1:0", "--data", data, "--redis", url,
		"--set", "cluster.prefix="+prefix, "--set", "cluster.probeInterval=200ms")
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	tb.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			tb.Errorf("ecb demo --nodes did not stop within 20s")
		}
	})
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "ECB demo ready") {
				close(ready)
				break
			}
		}
		for sc.Scan() { // keep draining
		}
	}()
	select {
	case <-ready:
	case <-exited:
		tb.Fatalf("ecb demo --nodes exited before it was ready:\n%s", stderr.String())
	case <-time.After(60 * time.Second):
		tb.Fatalf("ecb demo --nodes not ready after 60s:\n%s", stderr.String())
	}
	raw, err := os.ReadFile(filepath.Join(data, "cluster.json"))
	if err != nil {
		tb.Fatal(err)
	}
	c := &clusterDemo{}
	if err := json.Unmarshal(raw, &c.file); err != nil || len(c.file.Nodes) != n {
		tb.Fatalf("cluster.json: %v: %s", err, raw)
	}
	for _, node := range c.file.Nodes {
		d := &demo{ECB: node.URL, Backend: c.file.Backend, Data: data, stderr: stderr}
		awaitReady(tb, d)
		c.nodes = append(c.nodes, d)
	}
	return c
}

// awaitReady waits until the node's /readyz says ready (its subscriptions
// deliver and its access store is loaded).
func awaitReady(tb testing.TB, d *demo) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(d.ECB + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s not ready after 20s (%v):\n%s", d.ECB, err, d.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func dropRedisPrefix(tb testing.TB, url, prefix string) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		tb.Error(err)
		return
	}
	c := redis.NewClient(opt)
	defer c.Close()
	ctx := context.Background()
	iter := c.Scan(ctx, 0, prefix+":*", 1000).Iterator()
	for iter.Next(ctx) {
		c.Del(ctx, iter.Val())
	}
}

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
	c := startClusterDemo(t, buildECB(t, t.TempDir()), 3)
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	api1, api2, api3 := n1.serverAPI(t), n2.serverAPI(t), n3.serverAPI(t)
	ctx := context.Background()
	alice, bob := n1.login(t, "alice"), n1.login(t, "bob")
	created := decodeData[created](t, call(t, "POST", n1.ECB+"/v1/threads", map[string]any{"participants": []string{"bob"}, "message": map[string]any{"body": "hello"}}, bearer(alice)))
	id := created.Thread.ID
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
