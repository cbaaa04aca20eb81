package lbtest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// upstream is a plain HTTP server that answers its own name and counts the
// requests it got (the balancer's health checks to /readyz apart).
type upstream struct {
	name string
	srv  *httptest.Server

	mu    sync.Mutex
	hits  int
	xff   string // the last X-Forwarded-For it saw
	proto string // the last X-Forwarded-Proto it saw
}

func newUpstream(t *testing.T, name string, h http.Handler) *upstream {
	t.Helper()
	u := &upstream{name: name}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" || r.URL.Path == "/healthz" {
			fmt.Fprint(w, "ok")
			return
		}
		u.mu.Lock()
		u.hits++
		u.xff, u.proto = r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Proto")
		u.mu.Unlock()
		w.Header().Set("ECB-Node", name)
		if h != nil {
			h.ServeHTTP(w, r)
			return
		}
		fmt.Fprint(w, name)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) addr() string { return strings.TrimPrefix(u.srv.URL, "http://") }

func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.hits
}

// forEachKind runs test against nginx and HAProxy, each a subtest.
func forEachKind(t *testing.T, test func(t *testing.T, kind string)) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) { test(t, kind) })
	}
}

// TestRoundRobinNoStickiness is the "no stickiness" proof: 30 requests from
// ONE keep-alive client connection reach each of three upstreams, and the
// balancer says who the client is and how it came.
func TestRoundRobinNoStickiness(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		ups := []*upstream{newUpstream(t, "a", nil), newUpstream(t, "b", nil), newUpstream(t, "c", nil)}
		base := Start(t, kind, []string{ups[0].addr(), ups[1].addr(), ups[2].addr()})

		tr := &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		reused := 0
		names := map[string]int{}
		for i := range 30 {
			trace := &httptrace.ClientTrace{GotConn: func(ci httptrace.GotConnInfo) {
				if ci.Reused {
					reused++
				}
			}}
			ctx := httptrace.WithClientTrace(context.Background(), trace)
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/whoami", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("request %d: %d %q %v", i, resp.StatusCode, body, err)
			}
			names[string(body)]++
		}
		// The client really kept its one connection: 29 of 30 reused it.
		if reused < 29 {
			t.Fatalf("the client reused its connection %d times of 29: not one keep-alive connection", reused)
		}
		counts := fmt.Sprintf("a=%d b=%d c=%d", ups[0].count(), ups[1].count(), ups[2].count())
		t.Logf("%s: 30 requests over one client connection (reused %d times): %s", kind, reused, counts)
		for _, u := range ups {
			if u.count() < 5 || names[u.name] != u.count() {
				t.Errorf("upstream %s got %d requests (answers seen: %v), want at least 5 of 30: %s", u.name, u.count(), names, counts)
			}
		}
		for _, u := range ups {
			u.mu.Lock()
			xff, proto := u.xff, u.proto
			u.mu.Unlock()
			if !strings.Contains(xff, "127.0.0.1") || proto != "http" {
				t.Errorf("upstream %s saw X-Forwarded-For %q and X-Forwarded-Proto %q, want 127.0.0.1 and http", u.name, xff, proto)
			}
		}
	})
}

// TestWebSocketUpgrade: a WebSocket upgrade to /socket.io/ goes through the
// balancer and a message comes back.
func TestWebSocketUpgrade(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			conn, _, _, err := ws.UpgradeHTTP(r, w)
			if err != nil {
				t.Errorf("upgrade: %v", err)
				return
			}
			defer conn.Close()
			msg, op, err := wsutil.ReadClientData(conn)
			if err != nil {
				t.Errorf("upstream read: %v", err)
				return
			}
			if err := wsutil.WriteServerMessage(conn, op, append([]byte("echo "), msg...)); err != nil {
				t.Errorf("upstream write: %v", err)
			}
		})
		u := newUpstream(t, "ws", echo)
		base := Start(t, kind, []string{u.addr()})

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, _, _, err := ws.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/socket.io/?EIO=4&transport=websocket")
		if err != nil {
			t.Fatalf("dial through %s: %v", kind, err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		if err := wsutil.WriteClientText(conn, []byte("hello")); err != nil {
			t.Fatalf("write: %v", err)
		}
		got, err := wsutil.ReadServerText(conn)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if string(got) != "echo hello" {
			t.Fatalf("got %q, want %q", got, "echo hello")
		}
	})
}

// TestSSENotBuffered: the first event of a stream reaches the client while
// the upstream still holds the response open (it ends it only once the
// client said it got the event), so the balancer does not buffer it. The
// upstream does not send X-Accel-Buffering: the configuration alone must do.
func TestSSENotBuffered(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		gotFirst := make(chan struct{})
		stream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Cache-Control", "no-cache")
			fmt.Fprint(w, "id: 1\nevent: message\ndata: first\n\n")
			w.(http.Flusher).Flush()
			select {
			case <-gotFirst:
			case <-time.After(5 * time.Second):
			case <-r.Context().Done():
				return
			}
			fmt.Fprint(w, "id: 2\nevent: message\ndata: last\n\n")
		})
		u := newUpstream(t, "sse", stream)
		base := Start(t, kind, []string{u.addr()})

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/events", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept", "text/event-stream")
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var first string
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "data: ") {
				first = sc.Text()
				break
			}
		}
		took := time.Since(start)
		close(gotFirst)
		if first != "data: first" {
			t.Fatalf("first data line %q (%v)", first, sc.Err())
		}
		// Held back until the upstream's 5s give-up would mean buffering.
		if took > 3*time.Second {
			t.Fatalf("the first event took %v: the balancer buffered the stream", took)
		}
		rest, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(rest), "data: last") {
			t.Fatalf("the end of the stream is missing: %q", rest)
		}
		t.Logf("%s: first SSE event after %v, the upstream still holding the response", kind, took)
	})
}

// TestLongHeldGET: a polling GET held 3s by the upstream is not cut, and the
// shipped files' read timeouts are at least 60s (Socket.IO holds a poll up
// to pingInterval 25s + pingTimeout 20s).
func TestLongHeldGET(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		const hold = 3 * time.Second
		poll := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-time.After(hold):
				fmt.Fprint(w, "2") // an Engine.IO ping
			case <-r.Context().Done():
			}
		})
		u := newUpstream(t, "poll", poll)
		base := Start(t, kind, []string{u.addr()})
		start := time.Now()
		resp, err := (&http.Client{Timeout: 20 * time.Second}).Get(base + "/socket.io/?EIO=4&transport=polling&sid=x")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != "2" || time.Since(start) < hold {
			t.Fatalf("held GET: %d %q after %v", resp.StatusCode, body, time.Since(start))
		}
	})
	t.Run("timeouts", func(t *testing.T) {
		for kind, timeouts := range shippedReadTimeouts(t) {
			for where, d := range timeouts {
				if d < 60*time.Second {
					t.Errorf("%s: %s is %v, want at least 60s", shippedFile(kind), where, d)
				}
			}
		}
	})
}

// shippedReadTimeouts parses the read timeouts of the shipped files: per
// kind, where → value. It fails t when one it needs is missing.
func shippedReadTimeouts(t *testing.T) map[string]map[string]time.Duration {
	t.Helper()
	out := map[string]map[string]time.Duration{"nginx": {}, "haproxy": {}}
	nginx := readShipped(t, "nginx")
	location := "server"
	for _, line := range strings.Split(nginx, "\n") {
		f := strings.Fields(strings.TrimSuffix(strings.TrimSpace(line), ";"))
		if len(f) >= 2 && f[0] == "location" {
			location = "location " + f[len(f)-2]
		}
		if len(f) == 2 && f[0] == "proxy_read_timeout" {
			d, err := nginxDuration(f[1])
			if err != nil {
				t.Fatal(err)
			}
			out["nginx"][location+" proxy_read_timeout"] = d
		}
	}
	for _, want := range []string{"server", "location /socket.io/", "location /v1/events"} {
		if _, ok := out["nginx"][want+" proxy_read_timeout"]; !ok {
			t.Errorf("nginx: no proxy_read_timeout in %s", want)
		}
	}
	haproxy := readShipped(t, "haproxy")
	for _, line := range strings.Split(haproxy, "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "timeout" && (f[1] == "client" || f[1] == "server" || f[1] == "tunnel") {
			d, err := haproxyDuration(f[2])
			if err != nil {
				t.Fatal(err)
			}
			out["haproxy"]["timeout "+f[1]] = d
		}
	}
	for _, want := range []string{"client", "server", "tunnel"} {
		if _, ok := out["haproxy"]["timeout "+want]; !ok {
			t.Errorf("haproxy: no timeout %s", want)
		}
	}
	return out
}

func readShipped(t *testing.T, kind string) string {
	t.Helper()
	raw, err := os.ReadFile(shippedFile(kind))
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

var durationRE = regexp.MustCompile(`^(\d+)(ms|s|m|h|d)?$`)

// nginxDuration parses an nginx time (a bare number is seconds).
func nginxDuration(s string) (time.Duration, error) { return unitDuration(s, time.Second) }

// haproxyDuration parses an HAProxy time (a bare number is milliseconds).
func haproxyDuration(s string) (time.Duration, error) { return unitDuration(s, time.Millisecond) }

func unitDuration(s string, bare time.Duration) (time.Duration, error) {
	m := durationRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is not a time", s)
	}
	n, _ := strconv.Atoi(m[1])
	unit := map[string]time.Duration{"": bare, "ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour}[m[2]]
	return time.Duration(n) * unit, nil
}

// TestBodyLimits: a polling POST of socketio.maxPayload (1000000 bytes)
// reaches the node, and a REST body above http.maxBodyBytes (65536) reaches
// it too, so that ECB answers it with its own 413 envelope.
func TestBodyLimits(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		sink := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n, _ := io.Copy(io.Discard, r.Body)
			fmt.Fprint(w, n)
		})
		u := newUpstream(t, "sink", sink)
		base := Start(t, kind, []string{u.addr()})
		for path, size := range map[string]int{"/socket.io/?EIO=4&transport=polling&sid=x": 1000000, "/v1/threads": 65536 + 1000} {
			resp, err := http.Post(base+path, "text/plain", strings.NewReader(strings.Repeat("x", size)))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || string(body) != strconv.Itoa(size) {
				t.Errorf("POST %s of %d bytes: %d %.100q", path, size, resp.StatusCode, body)
			}
		}
	})
}

// TestShippedConfigsValid: nginx -t and haproxy -c accept the rendered
// configurations.
func TestShippedConfigsValid(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		bin := binary(t, kind)
		dir := t.TempDir()
		file, err := render(kind, dir, "127.0.0.1:18080", []string{"127.0.0.1:18081", "127.0.0.1:18082", "127.0.0.1:18083"})
		if err != nil {
			t.Fatal(err)
		}
		var cmd *exec.Cmd
		if kind == "nginx" {
			cmd = exec.Command(bin, "-t", "-p", dir, "-c", file, "-e", dir+"/error.log")
		} else {
			cmd = exec.Command(bin, "-c", "-f", file)
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", cmd, err, out)
		}
		t.Logf("%s: %s", cmd, strings.TrimSpace(string(out)))
	})
}

// TestShippedConfigsNotSticky: nothing in the shipped files pins a client to
// a node (some of these, like HAProxy's prefer-last-server, do not show with
// one client in TestRoundRobinNoStickiness), and the SSE location is not
// buffered.
func TestShippedConfigsNotSticky(t *testing.T) {
	forbidden := map[string]*regexp.Regexp{
		"nginx":   regexp.MustCompile(`(?m)^\s*(ip_hash|hash|sticky|least_conn|random)\b`),
		"haproxy": regexp.MustCompile(`(?m)^\s*(stick|stick-table|cookie|appsession|option\s+prefer-last-server|balance\s+(source|uri|url_param|hdr|rdp-cookie|hash))\b`),
	}
	for kind, re := range forbidden {
		if m := re.FindString(readShipped(t, kind)); m != "" {
			t.Errorf("%s: %q pins clients to nodes", shippedFile(kind), strings.TrimSpace(m))
		}
	}
	if !regexp.MustCompile(`(?m)^\s*balance\s+roundrobin\s*$`).MatchString(readShipped(t, "haproxy")) {
		t.Errorf("%s: no `balance roundrobin`", shippedFile("haproxy"))
	}
	// nginx 1.22 happens to pass a small event on at once even with
	// buffering on, which TestSSENotBuffered therefore cannot tell apart:
	// the stream's location must say it.
	events := regexp.MustCompile(`(?s)location /v1/events \{([^}]*)\}`).FindStringSubmatch(readShipped(t, "nginx"))
	if events == nil || !regexp.MustCompile(`(?m)^\s*proxy_buffering off;`).MatchString(events[1]) {
		t.Errorf("%s: location /v1/events does not set proxy_buffering off", shippedFile("nginx"))
	}
}

// TestRender: the rendering replaces what it must and refuses a file whose
// markers are gone.
func TestRender(t *testing.T) {
	ups := []string{"127.0.0.1:1", "127.0.0.1:2"}
	ng, err := renderNginx([]byte(readShipped(t, "nginx")), "127.0.0.1:9", ups, "/d", true)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"server 127.0.0.1:1 max_fails=3 fail_timeout=10s;", "server 127.0.0.1:2 max_fails=3", "listen 127.0.0.1:9;", "pid /d/nginx.pid;", "proxy_temp_path /d/temp/proxy;", "access_log /d/access.log ecb;", "error_log /d/error.log warn;", "user root;"} {
		if !strings.Contains(string(ng), want) {
			t.Errorf("rendered nginx config lacks %q", want)
		}
	}
	if strings.Contains(string(ng), "10.0.0.1") || strings.Contains(string(ng), "/var/") {
		t.Errorf("rendered nginx config kept a shipped server or path:\n%s", ng)
	}
	hp, err := renderHAProxy([]byte(readShipped(t, "haproxy")), "127.0.0.1:9", ups, "/d")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"server ecb1 127.0.0.1:1 check", "server ecb2 127.0.0.1:2 check", "bind 127.0.0.1:9", "stats socket /d/admin.sock"} {
		if !strings.Contains(string(hp), want) {
			t.Errorf("rendered haproxy config lacks %q", want)
		}
	}
	if regexp.MustCompile(`(?m)^\s*(chroot|user|group|daemon)\b`).Match(hp) || strings.Contains(string(hp), "10.0.0.1") {
		t.Errorf("rendered haproxy config kept chroot/user/group/daemon or a shipped server:\n%s", hp)
	}
	noMarkers := strings.ReplaceAll(readShipped(t, "nginx"), beginServers, "# servers")
	if _, err := renderNginx([]byte(noMarkers), "127.0.0.1:9", ups, "/d", true); err == nil {
		t.Error("a config without the BEGIN marker rendered")
	}
	if _, err := renderHAProxy([]byte(strings.ReplaceAll(readShipped(t, "haproxy"), "bind :80", "")), "127.0.0.1:9", ups, "/d"); err == nil {
		t.Error("a config without bind rendered")
	}
}

// TestDrainingNodeSkipped: a node that answers 503 (ECB draining refuses
// new Socket.IO sessions and SSE streams so) does not fail those GETs: the
// balancer passes them to another node. A POST, and a REST GET (503 is also
// backend_unavailable there), reach one node only and are never sent twice.
func TestDrainingNodeSkipped(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind string) {
		draining := newUpstream(t, "draining", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			http.Error(w, `{"error":{"code":"unavailable"}}`, http.StatusServiceUnavailable)
		}))
		ok := newUpstream(t, "ok", nil)
		client := &http.Client{Timeout: 10 * time.Second}
		do := func(base, method, path string) int {
			t.Helper()
			req, err := http.NewRequest(method, base+path, strings.NewReader("40"))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp.StatusCode
		}

		// Not retried: each of these reaches exactly one node. (A balancer
		// of its own: nginx counts a 503 it may retry on as a failure of the
		// node and leaves the node out after max_fails.)
		base := Start(t, kind, []string{draining.addr(), ok.addr()})
		for _, c := range []struct{ method, path string }{{http.MethodGet, "/v1/threads"}, {http.MethodPost, "/socket.io/?EIO=4&transport=polling&sid=x"}} {
			before := draining.count() + ok.count()
			refused := 0
			for range 6 {
				if do(base, c.method, c.path) == http.StatusServiceUnavailable {
					refused++
				}
			}
			if got := draining.count() + ok.count() - before; got != 6 || refused == 0 {
				t.Errorf("%s %s: 6 requests reached the nodes %d times, %d answered 503: want 6 and some 503 (never retried)", c.method, c.path, got, refused)
			}
		}

		base = Start(t, kind, []string{draining.addr(), ok.addr()})
		before := draining.count()
		for _, path := range []string{"/socket.io/?EIO=4&transport=polling", "/v1/events"} {
			for i := range 6 {
				if code := do(base, http.MethodGet, path); code != http.StatusOK {
					t.Errorf("GET %s #%d: %d, want 200 from the node that is not draining", path, i, code)
				}
			}
		}
		if draining.count() == before {
			t.Fatalf("the draining node got no GET: the test proves nothing (ok got %d)", ok.count())
		}
		t.Logf("%s: 12 GETs answered 200; the draining node refused %d of them first", kind, draining.count()-before)
	})
}

// TestMissingBinary: without nginx or haproxy, Start skips the test, and
// fails it under CI=true. It runs this test binary again with an empty PATH
// and an empty sbin, once for each value of CI.
func TestMissingBinary(t *testing.T) {
	if os.Getenv("LBTEST_MISSING_CHILD") == "1" {
		sbin = t.TempDir()
		Start(t, "haproxy", []string{"127.0.0.1:1"})
		t.Fatal("Start returned without a binary")
	}
	for ci, want := range map[string]string{"true": "--- FAIL: TestMissingBinary", "false": "--- SKIP: TestMissingBinary"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMissingBinary$", "-test.v")
		cmd.Env = append(os.Environ(), "LBTEST_MISSING_CHILD=1", "CI="+ci, "PATH=")
		out, err := cmd.CombinedOutput()
		if !strings.Contains(string(out), want) || !strings.Contains(string(out), "apt-get install -y haproxy") || (ci == "true") != (err != nil) {
			t.Errorf("CI=%s without haproxy: want %q with the install hint (exit error: %v):\n%s", ci, want, err, out)
		}
	}
}
