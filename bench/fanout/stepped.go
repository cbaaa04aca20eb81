package fanout

// The stepped scenario (`ecb bench stepped`): open-loop publishes at fixed
// rates, stepped up until the p99 latency reaches a threshold, against ECB
// as a user runs it (`ecb serve`, the reference backend in another process,
// every subscriber a distinct authenticated user that getThreads its thread
// and getThread's it), publishing through the Server API and through
// sendMessage; and against the Node socket.io server with the same load
// (same shapes, rates, body size; its sockets join their room at connect).
// One JSON line per scenario (target, shape, publish path).

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// Publish paths of the stepped scenario.
const (
	PathServerAPI   = "serverapi"   // POST /server/v1/threads/{id}/messages
	PathSendMessage = "sendmessage" // a member's connection emits sendMessage
	PathSocket      = "socket"      // Node: a connection emits "publish" (no backend, no API)
)

// SteppedConfig is one run of the stepped scenario.
type SteppedConfig struct {
	Shapes  []Shape
	Paths   []string // ECB's publish paths (Node always uses PathSocket)
	Targets []string
	Rates   []float64     // deliveries per second offered, one step each, in order
	Step    time.Duration // how long each step publishes
	// Warmup is how long the first rate is published before the first
	// step, not reported: the servers' first seconds of load (Node's JIT,
	// the Go runtime growing its heap and threads) are not a step's p99.
	Warmup    time.Duration
	Threshold time.Duration // the run of a scenario stops after the first step whose p99 reaches it
	Size      int           // message body bytes
	Idle      int           // connections of the idle scenario (0: none)
	IdleWait  time.Duration // how long the idle connections sit before RSS is read
	Timeout   time.Duration // per scenario

	// ECB is the ecb binary; the scenario runs "ECB serve --config FILE" and
	// "ECB bench stepped-backend ..." (BackendCommand).
	ECB string
	// DataDir holds the keys (private.pem, public.pem, backend-secret) that
	// the backend signs and ECB verifies with; the run writes its files there.
	DataDir string
	NodeDir string
	Node    string
	// ProfileDir, when set, receives ECB's heap profile (SCENARIO.heap,
	// after a GC) and goroutine dump (SCENARIO.goroutines.txt) with every
	// connection listening, and a CPU profile of each of ECB's steps
	// (SCENARIO-SHAPE-PATH-RATE.cpu, over the step's publishing time).
	ProfileDir string

	Stdout, Stderr io.Writer
}

// BackendCommand is the hidden subcommand of ecb that runs the reference
// backend for the stepped scenario (internal/cli/bench.go).
const BackendCommand = "stepped-backend"

// BenchAudience is the aud of the stepped scenario's tokens.
const BenchAudience = "ecb-bench"

// LoadSeed is what the backend process creates before it serves: the file
// named by its --seed flag.
type LoadSeed struct {
	Users   []string     `json:"users"`
	Threads []SeedThread `json:"threads"`
}

// SeedThread is one thread of a LoadSeed; its first member is the publisher.
type SeedThread struct {
	ID      string   `json:"id"`
	Members []string `json:"members"`
}

// StepResult is one step of a scenario.
type StepResult struct {
	Rate             float64 `json:"rate"` // deliveries/s offered
	Publishes        int64   `json:"publishes"`
	PublishErrors    int64   `json:"publish_errors,omitempty"`
	Deliveries       int64   `json:"deliveries"`
	DeliveriesPerSec float64 `json:"deliveries_per_sec"`
	Lost             int64   `json:"lost"`
	P50ms            float64 `json:"p50_ms"`
	P99ms            float64 `json:"p99_ms"`
	Maxms            float64 `json:"max_ms"`
	ServerCPUUs      float64 `json:"server_cpu_us_per_delivery"`
	BackendCPUUs     float64 `json:"backend_cpu_us_per_delivery,omitempty"`
	LoadgenCPUUs     float64 `json:"loadgen_cpu_us_per_delivery"`
}

// SteppedResult is one scenario, one JSON line.
type SteppedResult struct {
	Scenario    string  `json:"scenario"` // "stepped" or "idle"
	Target      string  `json:"target"`
	Server      string  `json:"server"`
	Path        string  `json:"path,omitempty"`
	Shape       string  `json:"shape,omitempty"`
	Threads     int     `json:"threads"`
	Listeners   int     `json:"listeners"` // per thread
	Connections int     `json:"connections"`
	Size        int     `json:"size,omitempty"`
	ThresholdMs float64 `json:"threshold_ms,omitempty"`
	StepSec     float64 `json:"step_sec,omitempty"`
	WarmupSec   float64 `json:"warmup_sec,omitempty"`
	// MaxSustained is the highest offered rate whose step kept p99 under the
	// threshold and lost nothing (0: none did).
	MaxSustained float64 `json:"max_sustained_deliveries_per_sec"`
	// RSSPerConn is (the server's RSS with every connection listening −
	// its RSS before the first connection) ÷ connections, after a GC (ECB:
	// /debug/pprof/heap?gc=1) and IdleWait.
	RSSPerConn float64 `json:"rss_bytes_per_conn"`
	// RSSSettledPerConn is the same, read rssSettle later, with no other GC
	// asked for: what the runtime keeps once it has returned on its own
	// what it returns (Go's scavenger frees the memory above its heap goal
	// gradually after a GC, so the first reading depends on how far it got).
	RSSSettledPerConn float64      `json:"rss_settled_bytes_per_conn,omitempty"`
	RSSBaseMB         float64      `json:"rss_base_mb"`
	RSSMB             float64      `json:"rss_mb"`
	Goroutines        int          `json:"goroutines,omitempty"` // ECB, with every connection listening
	HeapInUseMB       float64      `json:"heap_inuse_mb,omitempty"`
	StackInUseMB      float64      `json:"stack_inuse_mb,omitempty"`
	Steps             []StepResult `json:"steps,omitempty"`
	LoadAvg           float64      `json:"loadavg"`
	Error             string       `json:"error,omitempty"`
}

// RunStepped runs every scenario and prints one JSON line each. It returns
// an error when a scenario failed (after printing its line).
func RunStepped(ctx context.Context, cfg SteppedConfig) error {
	if cfg.Size < 40 {
		cfg.Size = 40
	}
	if cfg.Step <= 0 {
		cfg.Step = 5 * time.Second
	}
	if cfg.Threshold <= 0 {
		cfg.Threshold = 100 * time.Millisecond
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Minute
	}
	if cfg.IdleWait <= 0 {
		cfg.IdleWait = 5 * time.Second
	}
	if cfg.Node == "" {
		cfg.Node = "node"
	}
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stdout
	}
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	// The backend's and ECB's standard error are copied by a goroutine each.
	cfg.Stderr = &syncWriter{w: cfg.Stderr}
	limit := RaiseFileLimit()
	need := cfg.Idle
	for _, s := range cfg.Shapes {
		need = max(need, s.Threads*(s.Listeners+1))
	}
	if need+100 > limit {
		return fmt.Errorf("%d connections need %d open files; the limit is %d", need, need+100, limit)
	}
	var nodeArgv []string
	var nodeDir, nodeVersion string
	for _, t := range cfg.Targets {
		if t == TargetNode {
			c := Config{NodeDir: cfg.NodeDir, Node: cfg.Node, Stderr: cfg.Stderr}
			var err error
			if nodeArgv, nodeDir, nodeVersion, err = c.serverCommand(ctx, TargetNode); err != nil {
				return err
			}
		}
	}
	var failed error
	emit := func(res SteppedResult, err error) error {
		if err != nil {
			res.Error = err.Error()
			failed = errors.Join(failed, fmt.Errorf("%s %s %s: %w", res.Target, res.Shape, res.Path, err))
		}
		return json.NewEncoder(cfg.Stdout).Encode(res)
	}
	type scenario struct {
		shape Shape
		idle  bool
	}
	var scenarios []scenario
	for _, s := range cfg.Shapes {
		scenarios = append(scenarios, scenario{shape: s})
	}
	if cfg.Idle > 0 {
		l := min(cfg.Idle, 100)
		scenarios = append(scenarios, scenario{shape: Shape{Threads: (cfg.Idle + l - 1) / l, Listeners: l}, idle: true})
	}
	for _, sc := range scenarios {
		for _, target := range cfg.Targets {
			sctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
			var err error
			if target == TargetECB {
				err = runSteppedECB(sctx, cfg, sc.shape, sc.idle, emit)
			} else {
				err = runSteppedNode(sctx, cfg, sc.shape, sc.idle, nodeArgv, nodeDir, nodeVersion, emit)
			}
			cancel()
			if err != nil {
				return errors.Join(failed, err)
			}
			if ctx.Err() != nil {
				return errors.Join(failed, ctx.Err())
			}
		}
	}
	return failed
}

// steppedRun is one scenario's connections and counters.
type steppedRun struct {
	base      time.Time
	shape     Shape
	threadIDs []string
	subs      []*steppedSub
	pubs      []*wsClient // per thread (sendMessage, Node)
	hist      latencyHist
	delivered atomic.Int64
	pubErrs   atomic.Int64
	acks      atomic.Int64
	readers   sync.WaitGroup
	// cpuProfile, when set, starts a CPU profile of the server over d for
	// the step at rate and returns a wait for it (ECB with ProfileDir).
	cpuProfile func(ctx context.Context, rate float64, d time.Duration) (wait func() error)
}

// steppedSub is one listening connection.
type steppedSub struct {
	c *wsClient
}

// bodyOf is the message body of publish seq sent at t (ns since base),
// padded with x to size bytes: "bseq:SEQ bts:T xxx…".
func bodyOf(seq, t int64, size int) string {
	b := make([]byte, 0, size)
	b = append(b, "bseq:"...)
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, " bts:"...)
	b = strconv.AppendInt(b, t, 10)
	b = append(b, ' ')
	for len(b) < size {
		b = append(b, 'x')
	}
	return string(b)
}

func (r *steppedRun) read(s *steppedSub) {
	for {
		p, err := s.c.next()
		if err != nil {
			return
		}
		switch {
		case len(p) == 1 && p[0] == '2':
			if s.c.write([]byte("3")) != nil {
				return
			}
		case bytes.HasPrefix(p, []byte(`42["message",`)):
			t, ok := parseInt(p, "bts:")
			if !ok {
				continue
			}
			r.hist.add(time.Since(r.base) - time.Duration(t))
			r.delivered.Add(1)
		}
	}
}

// readPub reads a publisher's acks: any ack that carries an error counts.
func (r *steppedRun) readPub(c *wsClient) {
	for {
		p, err := c.next()
		if err != nil {
			return
		}
		switch {
		case len(p) == 1 && p[0] == '2':
			if c.write([]byte("3")) != nil {
				return
			}
		case len(p) > 2 && p[0] == '4' && p[1] == '3':
			r.acks.Add(1)
			if bytes.Contains(p, []byte(`"error":{`)) {
				r.pubErrs.Add(1)
			}
		}
	}
}

func (r *steppedRun) close() {
	for _, s := range r.subs {
		if s != nil {
			s.c.close()
		}
	}
	for _, c := range r.pubs {
		if c != nil {
			c.close()
		}
	}
	r.readers.Wait()
}

// latencyHist counts latencies in 100 µs buckets up to 10 s.
type latencyHist struct {
	b   [100_001]atomic.Int64
	max atomic.Int64
}

func (h *latencyHist) add(d time.Duration) {
	i := max(0, min(int(d/(100*time.Microsecond)), len(h.b)-1))
	h.b[i].Add(1)
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			break
		}
	}
}

// take returns p50, p99 and max in ms and resets the histogram.
func (h *latencyHist) take() (p50, p99, mx float64) {
	var total int64
	counts := make([]int64, len(h.b))
	for i := range h.b {
		counts[i] = h.b[i].Swap(0)
		total += counts[i]
	}
	mx = round(float64(h.max.Swap(0))/1e6, 2)
	if total == 0 {
		return 0, 0, mx
	}
	q := func(f float64) float64 {
		want := int64(math.Ceil(f * float64(total)))
		var n int64
		for i, c := range counts {
			n += c
			if n >= want {
				return round(float64(i+1)*0.1, 2) // the bucket's upper bound
			}
		}
		return mx
	}
	return q(0.50), q(0.99), mx
}

// connectSubs connects shape.Threads × shape.Listeners subscribers, a few at
// a time; join(i) makes connection i a listener of its thread (nil: it is
// one at connect).
func (r *steppedRun) connectSubs(ctx context.Context, addr string, auth func(i int) string, join func(ctx context.Context, c *wsClient, i int) error) error {
	n := r.shape.Threads * r.shape.Listeners
	r.subs = make([]*steppedSub, n)
	const parallel = 16
	sem := make(chan struct{}, parallel)
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		mu.Lock()
		stop := firstErr != nil
		mu.Unlock()
		if stop || ctx.Err() != nil {
			<-sem
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			c, err := dial(ctx, addr, auth(i))
			if err == nil && join != nil {
				if err = join(ctx, c, i); err != nil {
					c.close()
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("subscriber %d: %w", i, err)
				}
				return
			}
			s := &steppedSub{c: c}
			r.subs[i] = s
			r.readers.Go(func() { r.read(s) })
		})
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return firstErr
}

// call emits event with payload (JSON) and ack id 1 on a connection no
// reader owns yet, and returns the ack's payload (the envelope).
func call(ctx context.Context, c *wsClient, event, payload string) ([]byte, error) {
	if dl, ok := ctx.Deadline(); ok {
		_ = c.conn.SetDeadline(dl)
		defer func() { _ = c.conn.SetDeadline(time.Time{}) }()
	}
	if err := c.write([]byte(`421["` + event + `",` + payload + `]`)); err != nil {
		return nil, err
	}
	for {
		p, err := c.next()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", event, err)
		}
		switch {
		case len(p) == 1 && p[0] == '2':
			if err := c.write([]byte("3")); err != nil {
				return nil, err
			}
		case bytes.HasPrefix(p, []byte("431[")):
			if bytes.HasPrefix(p, []byte(`431[{"error"`)) {
				return nil, fmt.Errorf("%s: %s", event, p[3:])
			}
			return p[3:], nil
		}
	}
}

// threadTokenOf takes the first threadToken out of an answer.
func threadTokenOf(p []byte) (string, error) {
	const key = `"threadToken":"`
	i := bytes.Index(p, []byte(key))
	if i < 0 {
		return "", fmt.Errorf("%w: no threadToken in %.200s", errProtocol, p)
	}
	rest := p[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return "", fmt.Errorf("%w: unterminated threadToken", errProtocol)
	}
	return string(rest[:j]), nil
}

// ecbSetup is a running ECB under `ecb serve` and its backend.
type ecbSetup struct {
	backend, ecb *server
	addr, admin  string
	apiKey       string
	signer       *ecbserver.TokenSigner
}

func (e *ecbSetup) stop() {
	if e.ecb != nil {
		e.ecb.stop()
	}
	if e.backend != nil {
		e.backend.stop()
	}
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startECB seeds and starts the backend, then ECB, for shape.
func startECB(ctx context.Context, cfg SteppedConfig, shape Shape, tag string) (*ecbSetup, []string, error) {
	dir, err := os.MkdirTemp(cfg.DataDir, "run-"+tag+"-")
	if err != nil {
		return nil, nil, err
	}
	seed := LoadSeed{}
	var threads []string
	for t := range shape.Threads {
		id := fmt.Sprintf("bt%d", t)
		threads = append(threads, id)
		members := []string{fmt.Sprintf("bp%d", t)}
		for l := range shape.Listeners {
			members = append(members, fmt.Sprintf("bu%d-%d", t, l))
		}
		seed.Users = append(seed.Users, members...)
		seed.Threads = append(seed.Threads, SeedThread{ID: id, Members: members})
	}
	raw, _ := json.Marshal(seed) // strings only: always marshals
	seedFile := filepath.Join(dir, "seed.json")
	if err := os.WriteFile(seedFile, raw, 0o600); err != nil {
		return nil, nil, err
	}
	e := &ecbSetup{}
	e.backend, err = startServer(ctx, []string{cfg.ECB, "bench", BackendCommand, "--data", cfg.DataDir, "--db", filepath.Join(dir, "backend.db"), "--seed", seedFile}, "", nil, cfg.Stderr)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*ecbSetup, []string, error) { e.stop(); return nil, nil, err }
	secret, err := os.ReadFile(filepath.Join(cfg.DataDir, "backend-secret"))
	if err != nil {
		return fail(err)
	}
	key, err := ecbserver.LoadPrivateKeyPEM(filepath.Join(cfg.DataDir, "private.pem"))
	if err != nil {
		return fail(err)
	}
	if e.signer, err = ecbserver.NewTokenSigner(key, ecbserver.SignerOptions{Audience: BenchAudience}); err != nil {
		return fail(err)
	}
	var rnd [24]byte
	_, _ = rand.Read(rnd[:]) // never fails (crypto/rand)
	e.apiKey = fmt.Sprintf("bench-%x", rnd)
	if e.addr, err = freePort(); err != nil {
		return fail(err)
	}
	if e.admin, err = freePort(); err != nil {
		return fail(err)
	}
	const big = 1_000_000
	conf := map[string]any{
		"listen":      e.addr,
		"adminListen": e.admin,
		"auth":        map[string]any{"publicKeyFile": filepath.Join(cfg.DataDir, "public.pem"), "audience": BenchAudience},
		"backend":     map[string]any{"url": "http://" + e.backend.addr + "/ecb/v1", "secret": strings.TrimSpace(string(secret))},
		"operations":  map[string]any{"enforceMembership": true},
		"serverApi":   map[string]any{"keys": []any{map[string]any{"name": "bench", "key": e.apiKey, "scopes": []string{"*"}}}},
		"limits": map[string]any{
			"opsPerSecondPerUser": big, "opsBurstPerUser": big, "opsPerSecondPerConnection": big, "opsBurstPerConnection": big,
			"handshakesPerSecondPerIP": big, "handshakeBurstPerIP": big, "maxConnections": big,
		},
		"log": map[string]any{"level": "warn"},
	}
	confRaw, _ := json.Marshal(conf) // JSON is YAML; plain values always marshal
	confFile := filepath.Join(dir, "ecb.yaml")
	if err := os.WriteFile(confFile, confRaw, 0o600); err != nil {
		return fail(err)
	}
	e.ecb, err = startProcess([]string{cfg.ECB, "serve", "--config", confFile}, cfg.Stderr)
	if err != nil {
		return fail(err)
	}
	if err := waitHTTP(ctx, "http://"+e.addr+"/healthz", 30*time.Second); err != nil {
		return fail(fmt.Errorf("ecb serve: %w", err))
	}
	return e, threads, nil
}

// startProcess starts argv, a server that prints nothing to wait for and
// stops on SIGTERM (ecb serve).
func startProcess(argv []string, stderr io.Writer) (*server, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", strings.Join(argv, " "), err)
	}
	return &server{cmd: cmd, stdin: stdin, term: true}, nil
}

func waitHTTP(ctx context.Context, url string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready: %v", url, err)
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func runSteppedECB(ctx context.Context, cfg SteppedConfig, shape Shape, idle bool, emit func(SteppedResult, error) error) error {
	base := SteppedResult{Scenario: "stepped", Target: TargetECB, Server: runtime.Version() + ", ecb serve + reference backend", Shape: shape.String(),
		Threads: shape.Threads, Listeners: shape.Listeners, Connections: shape.Threads * shape.Listeners, LoadAvg: loadAvg()}
	if idle {
		base.Scenario, base.Shape = "idle", ""
	} else {
		base.Size, base.ThresholdMs, base.StepSec, base.WarmupSec = cfg.Size, float64(cfg.Threshold)/1e6, cfg.Step.Seconds(), cfg.Warmup.Seconds()
	}
	e, threads, err := startECB(ctx, cfg, shape, shape.String())
	if err != nil {
		return emit(base, err)
	}
	defer e.stop()
	pid := e.ecb.cmd.Process.Pid
	r := &steppedRun{base: time.Now(), shape: shape, threadIDs: threads}
	defer r.close()
	if err := gcECB(ctx, e.admin); err != nil {
		return emit(base, err)
	}
	rss0, err := procRSS(pid)
	if err != nil {
		return emit(base, err)
	}
	userToken := func(id string) (string, error) {
		return e.signer.SignUserToken(ecbserver.UserTokenParams{ID: id, Name: id})
	}
	err = r.connectSubs(ctx, e.addr, func(i int) string {
		tok, _ := userToken(fmt.Sprintf("bu%d-%d", i/shape.Listeners, i%shape.Listeners)) // a signer with a good key signs
		return `{"userToken":"` + tok + `"}`
	}, func(ctx context.Context, c *wsClient, i int) error {
		ans, err := call(ctx, c, "getThreads", `{}`)
		if err != nil {
			return err
		}
		tt, err := threadTokenOf(ans)
		if err != nil {
			return err
		}
		_, err = call(ctx, c, "getThread", `{"threadToken":"`+tt+`","limit":1}`)
		return err
	})
	if err != nil {
		return emit(base, err)
	}
	// Publishers: the first member of each thread, on its own connection.
	pubTokens := make([]string, shape.Threads)
	if !idle {
		r.pubs = make([]*wsClient, shape.Threads)
		for t := range shape.Threads {
			tok, err := userToken(fmt.Sprintf("bp%d", t))
			if err != nil {
				return emit(base, err)
			}
			c, err := dial(ctx, e.addr, `{"userToken":"`+tok+`"}`)
			if err != nil {
				return emit(base, fmt.Errorf("publisher %d: %w", t, err))
			}
			r.pubs[t] = c
			ans, err := call(ctx, c, "getThreads", `{}`)
			if err == nil {
				pubTokens[t], err = threadTokenOf(ans)
			}
			if err != nil {
				return emit(base, fmt.Errorf("publisher %d: %w", t, err))
			}
			r.readers.Go(func() { r.readPub(c) })
		}
	}
	if err := measureRSS(ctx, cfg, &base, pid, rss0, func() error { return gcECB(ctx, e.admin) }); err != nil {
		return emit(base, err)
	}
	ecbRuntimeStats(ctx, e.admin, &base)
	if cfg.ProfileDir != "" {
		if err := os.MkdirAll(cfg.ProfileDir, 0o755); err != nil {
			return emit(base, err)
		}
		name := filepath.Join(cfg.ProfileDir, fmt.Sprintf("%s-%d", base.Scenario, base.Connections))
		if !idle {
			name = filepath.Join(cfg.ProfileDir, base.Scenario+"-"+base.Shape)
		}
		if err := errors.Join(saveURL(ctx, "http://"+e.admin+"/debug/pprof/heap?gc=1", name+".heap"),
			saveURL(ctx, "http://"+e.admin+"/debug/pprof/goroutine?debug=1", name+".goroutines.txt")); err != nil {
			return emit(base, err)
		}
	}
	if idle {
		return emit(base, nil)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	for _, path := range cfg.Paths {
		res := base
		res.Path = path
		var send func(seq int64, thread int, body string) error
		switch path {
		case PathServerAPI:
			send = func(_ int64, thread int, body string) error {
				b, _ := json.Marshal(map[string]string{"body": body}) // a string always marshals
				req, err := http.NewRequest(http.MethodPost, "http://"+e.addr+"/server/v1/threads/"+threads[thread]+"/messages", bytes.NewReader(b))
				if err != nil {
					return err
				}
				req.Header.Set("Authorization", "Bearer "+e.apiKey)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					return err
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode/100 != 2 {
					return fmt.Errorf("server api: %s", resp.Status)
				}
				return nil
			}
		case PathSendMessage:
			send = func(seq int64, thread int, body string) error {
				b, _ := json.Marshal(map[string]string{"threadToken": pubTokens[thread], "body": body})
				pkt := append([]byte("42"), strconv.FormatInt(seq, 10)...)
				pkt = append(pkt, `["sendMessage",`...)
				pkt = append(pkt, b...)
				pkt = append(pkt, ']')
				return r.pubs[thread].write(pkt)
			}
		default:
			return emit(res, fmt.Errorf("unknown path %q", path))
		}
		if cfg.ProfileDir != "" {
			r.cpuProfile = func(ctx context.Context, rate float64, d time.Duration) func() error {
				name := filepath.Join(cfg.ProfileDir, fmt.Sprintf("%s-%s-%s-%.0f.cpu", res.Scenario, res.Shape, path, rate))
				url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", e.admin, max(1, int(d.Seconds())))
				done := make(chan error, 1)
				go func() { done <- saveURL(ctx, url, name) }()
				return func() error { return <-done }
			}
		}
		res.Steps, res.MaxSustained, err = r.steps(ctx, cfg, send, path == PathServerAPI, []int{pid, e.backend.cmd.Process.Pid})
		if err := emit(res, err); err != nil {
			return err
		}
	}
	return nil
}

// gcECB makes the ECB process collect its garbage (a heap profile with
// gc=1 on its admin listener).
func gcECB(ctx context.Context, admin string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/debug/pprof/heap?gc=1", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("gc: %w", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return nil
}

// ecbRuntimeStats reads goroutines, heap and stacks in use from /metrics.
func ecbRuntimeStats(ctx context.Context, admin string, res *SteppedResult) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	for line := range strings.SplitSeq(string(raw), "\n") {
		name, v, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			continue
		}
		switch name {
		case "go_goroutines":
			res.Goroutines = int(f)
		case "go_memstats_heap_inuse_bytes":
			res.HeapInUseMB = round(f/(1<<20), 2)
		case "go_memstats_stack_inuse_bytes":
			res.StackInUseMB = round(f/(1<<20), 2)
		}
	}
}

// measureRSS waits IdleWait, collects garbage (gc may be nil) and sets the
// RSS figures.
func measureRSS(ctx context.Context, cfg SteppedConfig, res *SteppedResult, pid int, rss0 int64, gc func() error) error {
	select {
	case <-time.After(cfg.IdleWait):
	case <-ctx.Done():
		return ctx.Err()
	}
	if gc != nil {
		if err := gc(); err != nil {
			return err
		}
		time.Sleep(500 * time.Millisecond)
	}
	rss, err := procRSS(pid)
	if err != nil {
		return err
	}
	res.RSSBaseMB = round(float64(rss0)/(1<<20), 2)
	res.RSSMB = round(float64(rss)/(1<<20), 2)
	if res.Connections == 0 {
		return nil
	}
	res.RSSPerConn = round(float64(rss-rss0)/float64(res.Connections), 0)
	select {
	case <-time.After(rssSettle):
	case <-ctx.Done():
		return ctx.Err()
	}
	settled, err := procRSS(pid)
	if err != nil {
		return err
	}
	res.RSSSettledPerConn = round(float64(settled-rss0)/float64(res.Connections), 0)
	return nil
}

// rssSettle is how long after the first RSS reading the settled one is
// taken (SteppedResult.RSSSettledPerConn).
const rssSettle = 5 * time.Second

// steps runs the rate steps: each publishes open-loop at its rate for
// cfg.Step, then waits for the deliveries to drain; the run stops after the
// first step with p99 ≥ Threshold or a loss. A warm-up (cfg.Warmup at the
// first rate) goes first, the same way, and is neither reported nor judged.
// async sends each publish from a pool of workers (an HTTP request each)
// instead of the scheduler itself.
func (r *steppedRun) steps(ctx context.Context, cfg SteppedConfig, send func(seq int64, thread int, body string) error, async bool, pids []int) ([]StepResult, float64, error) {
	var out []StepResult
	var sustained float64
	var seq int64
	type job struct {
		seq    int64
		thread int
		body   string
	}
	var jobs chan job
	var workers sync.WaitGroup
	if async {
		jobs = make(chan job, 1<<16)
		for range 64 {
			workers.Go(func() {
				for j := range jobs {
					if send(j.seq, j.thread, j.body) != nil {
						r.pubErrs.Add(1)
					}
				}
			})
		}
		defer func() { close(jobs); workers.Wait() }()
	}
	type stepPlan struct {
		rate   float64
		dur    time.Duration
		warmup bool // published and drained, not reported, never stops the run
	}
	var plan []stepPlan
	if cfg.Warmup > 0 && len(cfg.Rates) > 0 {
		plan = append(plan, stepPlan{cfg.Rates[0], cfg.Warmup, true})
	}
	for _, rate := range cfg.Rates {
		plan = append(plan, stepPlan{rate, cfg.Step, false})
	}
	for _, p := range plan {
		rate := p.rate
		perSec := rate / float64(r.shape.Listeners) // publishes/s over all threads
		interval := time.Duration(float64(time.Second) / perSec)
		n := int64(p.dur.Seconds() * perSec)
		if n < 1 {
			n = 1
		}
		r.hist.take()
		d0 := r.delivered.Load()
		e0 := r.pubErrs.Load()
		cpu0 := make([]time.Duration, len(pids))
		for i, pid := range pids {
			cpu0[i], _ = procCPU(pid)
		}
		self0 := selfCPU()
		profiled := func() error { return nil }
		if r.cpuProfile != nil && !p.warmup {
			profiled = r.cpuProfile(ctx, rate, p.dur)
		}
		begin := time.Now()
		var sent int64
		var sendErr error
		for i := range n {
			due := begin.Add(time.Duration(i) * interval)
			if d := time.Until(due); d > 50*time.Microsecond {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					return out, sustained, ctx.Err()
				}
			}
			thread := int(i % int64(r.shape.Threads))
			s := seq
			seq++
			body := bodyOf(s, int64(due.Sub(r.base)), cfg.Size)
			if async {
				select {
				case jobs <- job{s, thread, body}:
				default:
					r.pubErrs.Add(1) // the load generator could not keep up
				}
			} else if err := send(s, thread, body); err != nil {
				sendErr = err
				break
			}
			sent++
		}
		want := sent * int64(r.shape.Listeners)
		drain := time.Now().Add(min(max(3*time.Second, 5*cfg.Threshold), 30*time.Second))
		for time.Now().Before(drain) && r.delivered.Load()-d0 < want-(r.pubErrs.Load()-e0)*int64(r.shape.Listeners) {
			select {
			case <-time.After(10 * time.Millisecond):
			case <-ctx.Done():
				return out, sustained, ctx.Err()
			}
		}
		if p.warmup {
			if sendErr != nil {
				return out, sustained, fmt.Errorf("warm-up: %w", sendErr)
			}
			continue
		}
		elapsed := time.Since(begin)
		st := StepResult{Rate: rate, Publishes: sent, PublishErrors: r.pubErrs.Load() - e0, Deliveries: r.delivered.Load() - d0}
		st.Lost = max(0, want-st.Deliveries)
		// From the step's first publish until its last delivery (or the
		// end of the drain): the offered rate when the server keeps up.
		st.DeliveriesPerSec = round(float64(st.Deliveries)/elapsed.Seconds(), 0)
		st.P50ms, st.P99ms, st.Maxms = r.hist.take()
		if st.Deliveries > 0 {
			for i, pid := range pids {
				c1, err := procCPU(pid)
				if err != nil {
					continue
				}
				us := round(float64((c1-cpu0[i]).Microseconds())/float64(st.Deliveries), 2)
				if i == 0 {
					st.ServerCPUUs = us
				} else {
					st.BackendCPUUs = us
				}
			}
			st.LoadgenCPUUs = round(float64((selfCPU()-self0).Microseconds())/float64(st.Deliveries), 2)
		}
		out = append(out, st)
		if err := profiled(); err != nil {
			return out, sustained, fmt.Errorf("cpu profile of the step at %v/s: %w", rate, err)
		}
		if sendErr != nil {
			return out, sustained, sendErr
		}
		if st.P99ms >= float64(cfg.Threshold)/1e6 || st.Lost > 0 || st.PublishErrors > 0 {
			break
		}
		sustained = rate
	}
	return out, sustained, nil
}

func runSteppedNode(ctx context.Context, cfg SteppedConfig, shape Shape, idle bool, argv []string, dir, version string, emit func(SteppedResult, error) error) error {
	res := SteppedResult{Scenario: "stepped", Target: TargetNode, Server: version, Path: PathSocket, Shape: shape.String(),
		Threads: shape.Threads, Listeners: shape.Listeners, Connections: shape.Threads * shape.Listeners, LoadAvg: loadAvg()}
	if idle {
		res.Scenario, res.Shape, res.Path = "idle", "", ""
	} else {
		res.Size, res.ThresholdMs, res.StepSec, res.WarmupSec = cfg.Size, float64(cfg.Threshold)/1e6, cfg.Step.Seconds(), cfg.Warmup.Seconds()
	}
	srv, err := startServer(ctx, argv, dir, nil, cfg.Stderr)
	if err != nil {
		return emit(res, err)
	}
	defer srv.stop()
	pid := srv.cmd.Process.Pid
	time.Sleep(500 * time.Millisecond)
	rss0, err := procRSS(pid)
	if err != nil {
		return emit(res, err)
	}
	r := &steppedRun{base: time.Now(), shape: shape}
	defer r.close()
	if err := r.connectSubs(ctx, srv.addr, func(i int) string {
		return fmt.Sprintf(`{"thread":"bt%d"}`, i/shape.Listeners)
	}, nil); err != nil {
		return emit(res, err)
	}
	if !idle {
		r.pubs = make([]*wsClient, shape.Threads)
		for t := range shape.Threads {
			c, err := dial(ctx, srv.addr, `{"thread":""}`)
			if err != nil {
				return emit(res, fmt.Errorf("publisher %d: %w", t, err))
			}
			r.pubs[t] = c
			r.readers.Go(func() { r.readPub(c) })
		}
	}
	if err := measureRSS(ctx, cfg, &res, pid, rss0, nil); err != nil {
		return emit(res, err)
	}
	if idle {
		return emit(res, nil)
	}
	send := func(seq int64, thread int, body string) error {
		b, _ := json.Marshal(map[string]string{"body": body})
		pkt := append([]byte("42"), strconv.FormatInt(seq, 10)...)
		pkt = append(pkt, `["publish",`...)
		pkt = append(pkt, b...)
		pkt = append(pkt, fmt.Sprintf(`,"bt%d"]`, thread)...)
		return r.pubs[thread].write(pkt)
	}
	res.Steps, res.MaxSustained, err = r.steps(ctx, cfg, send, false, []int{pid})
	return emit(res, err)
}

// procRSS returns the resident set size (VmRSS) of process pid.
func procRSS(pid int) (int64, error) { return procStatusBytes(pid, "VmRSS") }

// saveURL writes the body of a GET of url to file.
func saveURL(ctx context.Context, url, file string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return os.WriteFile(file, raw, 0o644)
}
