// Package fanout measures broadcast fan-out over Socket.IO: ECB's push path
// (internal/socketio + internal/hub) against the Node socket.io 4.8 server
// of bench/node-server, side by side, with one Go load generator for both.
//
// Each target runs as a server in a child process (so that its CPU time and
// memory are its own), on 127.0.0.1. The load generator opens N WebSocket
// Socket.IO clients to it, plus one publisher that emits M "publish" events
// (with ack); the server broadcasts each to every connected socket as
// "message". Every delivery is timed (receive time − send time, both taken
// in the load generator) and checked (no loss, no duplicate). It is run by
// `ecb bench fanout` (internal/cli/bench.go); see docs/performance.md.
package fanout

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Targets.
const (
	TargetECB  = "ecb"
	TargetNode = "node"
)

// Config is one run of the benchmark.
type Config struct {
	Clients  int     // subscribed clients
	Messages int     // measured publishes
	Rate     float64 // publishes per second; 0: as fast as the acks allow (see Window)
	Window   int     // with Rate 0, publishes in flight (sent, not acked); default 1
	Size     int     // bytes of each payload (JSON object)
	Targets  []string
	Rounds   int           // each target is measured Rounds times, alternating; default 1
	Timeout  time.Duration // per target, from start to stop; default 3m

	// ECBServer is the command line of the ECB server (the ecb binary with
	// its hidden server subcommand, which calls ServeECB).
	ECBServer []string
	// CPUProfile, when set, makes the ECB server write the CPU profile of
	// the measurement window there.
	CPUProfile string
	// NodeDir is bench/node-server; empty: searched from the working
	// directory upwards. Its packages are installed with npm ci if missing.
	NodeDir string
	// Node is the node binary; default "node".
	Node string

	Stdout, Stderr io.Writer
}

// Result is one target's measurement, printed as one JSON line.
type Result struct {
	Target           string  `json:"target"`
	Round            int     `json:"round,omitempty"` // with --rounds above 1
	Server           string  `json:"server"`          // runtime and library versions
	Clients          int     `json:"clients"`
	Messages         int     `json:"messages"`
	Size             int     `json:"size"`
	Rate             float64 `json:"rate"`             // 0: unpaced
	Window           int     `json:"window,omitempty"` // unpaced only
	Deliveries       int64   `json:"deliveries"`
	DeliveriesPerSec float64 `json:"deliveries_per_sec"`
	DurationSec      float64 `json:"duration_sec"` // first publish sent → last delivery received
	P50ms            float64 `json:"p50_ms"`
	P99ms            float64 `json:"p99_ms"`
	Maxms            float64 `json:"max_ms"`
	Lost             int64   `json:"lost"`
	Duplicates       int64   `json:"duplicates"`
	ServerCPUSec     float64 `json:"server_cpu_sec"` // during the measurement
	ServerRSSMB      float64 `json:"server_rss_mb"`  // peak (VmHWM), whole life
	DeliveriesPerCPU float64 `json:"deliveries_per_server_cpu_sec"`
	// WritesPerDelivery is the server's write system calls (syscw of
	// /proc/PID/io: write, writev, sendmsg...) during the measurement per
	// delivery: below 1, pushes to a connection left together.
	WritesPerDelivery float64      `json:"server_writes_per_delivery,omitempty"`
	LoadgenCPUSec     float64      `json:"loadgen_cpu_sec"` // this process, during the measurement
	CPUShare          float64      `json:"cpu_share"`       // (server + load generator CPU) ÷ (duration × cores): below 1, other processes had the rest
	ECB               *ServerStats `json:"ecb,omitempty"`   // the ECB server's own counters
	LoadAvg           float64      `json:"loadavg"`         // the machine's 1-minute load average before the run
	Error             string       `json:"error,omitempty"`
}

// Ratio compares the two targets of one run, printed as the last JSON
// line. With several rounds, it compares the medians.
type Ratio struct {
	Ratio              float64   `json:"ratio"` // ECB deliveries/s ÷ Node deliveries/s
	CPUEfficiencyRatio float64   `json:"cpu_efficiency_ratio"`
	ECB                float64   `json:"ecb_deliveries_per_sec"`
	Node               float64   `json:"node_deliveries_per_sec"`
	Rounds             []float64 `json:"round_ratios,omitempty"` // with --rounds above 1
	Clients            int       `json:"clients"`
	Messages           int       `json:"messages"`
}

// Run measures each target in turn (Rounds times) and prints the JSON
// lines. It returns an error when a target fails or loses deliveries (after
// printing its line).
func Run(ctx context.Context, cfg Config) error {
	if cfg.Clients < 1 || cfg.Messages < 1 {
		return errors.New("clients and messages must be at least 1")
	}
	if cfg.Window < 1 {
		cfg.Window = 1
	}
	if cfg.Size < 1 {
		cfg.Size = 1
	}
	if cfg.Rounds < 1 {
		cfg.Rounds = 1
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 3 * time.Minute
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
	if limit := RaiseFileLimit(); cfg.Clients+64 > limit {
		return fmt.Errorf("%d clients need %d open files; the limit is %d", cfg.Clients, cfg.Clients+64, limit)
	}
	type command struct {
		argv         []string
		dir, version string
	}
	commands := map[string]command{}
	for _, target := range cfg.Targets {
		argv, dir, version, err := cfg.serverCommand(ctx, target)
		if err != nil {
			return err
		}
		commands[target] = command{argv, dir, version}
	}
	results := map[string][]Result{}
	var failed error
	for round := 1; round <= cfg.Rounds; round++ {
		for _, target := range cfg.Targets {
			cmd := commands[target]
			load := loadAvg()
			tctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
			res, err := measure(tctx, cfg, target, cmd.argv, cmd.dir)
			cancel()
			res.Server, res.LoadAvg = cmd.version, load
			if cfg.Rounds > 1 {
				res.Round = round
			}
			if err != nil {
				res.Error = err.Error()
				failed = errors.Join(failed, fmt.Errorf("%s: %w", target, err))
			} else if res.Lost > 0 {
				failed = errors.Join(failed, fmt.Errorf("%s: %d deliveries lost", target, res.Lost))
			}
			results[target] = append(results[target], res)
			if err := json.NewEncoder(cfg.Stdout).Encode(res); err != nil {
				return err
			}
			if ctx.Err() != nil {
				return errors.Join(failed, ctx.Err())
			}
		}
	}
	e, n := results[TargetECB], results[TargetNode]
	if len(e) > 0 && len(n) > 0 && failed == nil {
		r := Ratio{
			ECB:     median(e, func(r Result) float64 { return r.DeliveriesPerSec }),
			Node:    median(n, func(r Result) float64 { return r.DeliveriesPerSec }),
			Clients: cfg.Clients, Messages: cfg.Messages,
		}
		ecpu := median(e, func(r Result) float64 { return r.DeliveriesPerCPU })
		ncpu := median(n, func(r Result) float64 { return r.DeliveriesPerCPU })
		if r.Node > 0 {
			r.Ratio = round(r.ECB/r.Node, 3)
		}
		if ncpu > 0 {
			r.CPUEfficiencyRatio = round(ecpu/ncpu, 3)
		}
		if cfg.Rounds > 1 {
			for i := range e {
				if n[i].DeliveriesPerSec > 0 {
					r.Rounds = append(r.Rounds, round(e[i].DeliveriesPerSec/n[i].DeliveriesPerSec, 3))
				}
			}
		}
		if err := json.NewEncoder(cfg.Stdout).Encode(r); err != nil {
			return err
		}
	}
	return failed
}

func median[T any](rs []T, f func(T) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// loadAvg returns the machine's 1-minute load average (0 when unknown).
func loadAvg() float64 {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(raw))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// serverCommand returns the command line, working directory and version
// string of target's server.
func (cfg *Config) serverCommand(ctx context.Context, target string) (argv []string, dir, version string, err error) {
	switch target {
	case TargetECB:
		if len(cfg.ECBServer) == 0 {
			return nil, "", "", errors.New("no ECB server command")
		}
		argv = slices.Clone(cfg.ECBServer)
		if cfg.CPUProfile != "" {
			p, err := filepath.Abs(cfg.CPUProfile)
			if err != nil {
				return nil, "", "", err
			}
			argv = append(argv, "--cpuprofile", p)
		}
		return argv, "", runtime.Version(), nil
	case TargetNode:
		dir, err := cfg.nodeDir(ctx)
		if err != nil {
			return nil, "", "", err
		}
		out, err := exec.CommandContext(ctx, cfg.Node, "--version").Output()
		if err != nil {
			return nil, "", "", fmt.Errorf("%s --version: %w", cfg.Node, err)
		}
		var pkg struct{ Version string }
		raw, err := os.ReadFile(filepath.Join(dir, "node_modules", "socket.io", "package.json"))
		if err == nil {
			err = json.Unmarshal(raw, &pkg)
		}
		if err != nil {
			return nil, "", "", err
		}
		version = "node " + strings.TrimSpace(string(out)) + ", socket.io " + pkg.Version
		return []string{cfg.Node, "server.js"}, dir, version, nil
	}
	return nil, "", "", fmt.Errorf("unknown target %q", target)
}

// nodeDir finds bench/node-server and installs its packages when needed.
func (cfg *Config) nodeDir(ctx context.Context) (string, error) {
	dir := cfg.NodeDir
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return "", err
		}
		for d := wd; ; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "bench", "node-server", "server.js")); err == nil {
				dir = filepath.Join(d, "bench", "node-server")
				break
			}
			if filepath.Dir(d) == d {
				return "", errors.New("bench/node-server not found from the working directory: run from the repository or pass --node-dir")
			}
		}
	}
	lock, err := os.Stat(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return "", err
	}
	if inst, err := os.Stat(filepath.Join(dir, "node_modules", ".package-lock.json")); err == nil && !inst.ModTime().Before(lock.ModTime()) {
		return dir, nil
	}
	fmt.Fprintf(cfg.Stderr, "fanout: npm ci in %s\n", dir)
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, cfg.Stderr, cfg.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("npm ci in %s: %w", dir, err)
	}
	return dir, nil
}

// server is a running target.
type server struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
	addr  string
	term  bool // stopped by SIGTERM (it does not watch its stdin)
}

// startServer starts argv in dir, with env added to this process's
// environment, and waits for its "listening ADDR" line.
func startServer(ctx context.Context, argv []string, dir string, env []string, stderr io.Writer) (*server, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir, cmd.Stderr = dir, stderr
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)}
	line, err := s.readLine(ctx, 30*time.Second)
	if err == nil {
		var ok bool
		if s.addr, ok = strings.CutPrefix(line, "listening "); !ok {
			err = fmt.Errorf("server said %q", line)
		}
	}
	if err != nil {
		s.stop()
		return nil, fmt.Errorf("starting %s: %w", strings.Join(argv, " "), err)
	}
	return s, nil
}

// readLine reads one line of the server's stdout within d.
func (s *server) readLine(ctx context.Context, d time.Duration) (string, error) {
	type result struct {
		line string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		line, err := s.out.ReadString('\n')
		ch <- result{strings.TrimSpace(line), err}
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case r := <-ch:
		return r.line, r.err
	case <-t.C:
		return "", errors.New("no answer from the server")
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func (s *server) send(line string) error {
	_, err := io.WriteString(s.stdin, line+"\n")
	return err
}

// stop closes the server's stdin (it exits by itself), and kills it if it
// is still running after a few seconds.
func (s *server) stop() {
	_ = s.stdin.Close()
	if s.term {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
	}
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
}

// subscriber is one measured client. Its fields are written by its reader
// goroutine only, and read after that goroutine ended.
type subscriber struct {
	c        *wsClient
	messages int
	seen     []uint64 // bit per measured seq
	lat      []int32  // µs, per delivery
	got      int
	dups     int64
	last     int64        // ns since base, of the last measured delivery
	lastWarm atomic.Int64 // the last warm-up publish received
	err      error
}

// run counts deliveries shared by the subscribers.
type run struct {
	base     time.Time
	clients  int
	complete atomic.Int64 // subscribers that got every message
	done     chan struct{}
}

func (s *subscriber) read(r *run) {
	for {
		p, err := s.c.next()
		if err != nil {
			s.err = err
			return
		}
		now := int64(time.Since(r.base))
		switch {
		case len(p) == 1 && p[0] == '2':
			if err := s.c.write([]byte("3")); err != nil {
				s.err = err
				return
			}
		case len(p) > 2 && p[0] == '4' && p[1] == '2':
			seq, ok := parseInt(p, `"seq":`)
			if !ok {
				continue
			}
			if seq < 0 {
				s.lastWarm.Store(-seq)
				continue
			}
			if seq >= int64(s.messages) {
				continue
			}
			if s.seen[seq/64]&(1<<(seq%64)) != 0 {
				s.dups++
				continue
			}
			s.seen[seq/64] |= 1 << (seq % 64)
			t, _ := parseInt(p, `"t":`)
			s.lat = append(s.lat, int32(min((now-t)/1e3, math.MaxInt32)))
			s.last = now
			s.got++
			if s.got == s.messages && r.complete.Add(1) == int64(r.clients) {
				close(r.done)
			}
		case len(p) > 1 && p[0] == '4' && p[1] == '1':
			s.err = errors.New("disconnected by the server")
			return
		}
	}
}

// publisher sends the publishes and counts their acks.
type publisher struct {
	c      *wsClient
	acked  atomic.Int64
	notify chan struct{} // signalled on each ack
	err    error
	buf    []byte
}

func (p *publisher) read() {
	for {
		b, err := p.c.next()
		if err != nil {
			p.err = err
			return
		}
		switch {
		case len(b) == 1 && b[0] == '2':
			if err := p.c.write([]byte("3")); err != nil {
				p.err = err
				return
			}
		case len(b) > 2 && b[0] == '4' && b[1] == '3':
			p.acked.Add(1)
			select {
			case p.notify <- struct{}{}:
			default:
			}
		}
	}
}

// publish sends publish number id (its ack id) with the payload
// {"seq":seq,"t":t,"pad":"xx…"}, padded to size bytes, to the server's
// default thread.
func (p *publisher) publish(id int64, seq int64, t int64, size int) error {
	return p.publishTo(id, "", seq, t, size)
}

// publishTo is publish to thread (its second argument; "": none, the
// server's default).
func (p *publisher) publishTo(id int64, thread string, seq int64, t int64, size int) error {
	b := append(p.buf[:0], "42"...)
	b = strconv.AppendInt(b, id, 10)
	b = append(b, `["publish",`...)
	start := len(b)
	b = append(b, `{"seq":`...)
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, `,"t":`...)
	b = strconv.AppendInt(b, t, 10)
	b = append(b, `,"pad":"`...)
	for pad := size - (len(b) - start) - len(`"}`); pad > 0; pad-- {
		b = append(b, 'x')
	}
	b = append(b, `"}`...)
	if thread != "" {
		b = append(b, `,"`...)
		b = append(b, thread...) // thread ids of the benchmark need no escaping
		b = append(b, '"')
	}
	b = append(b, ']')
	p.buf = b
	return p.c.write(b)
}

// waitAcks waits until n publishes are acked.
func (p *publisher) waitAcks(ctx context.Context, n int64) error {
	for p.acked.Load() < n {
		select {
		case <-p.notify:
		case <-ctx.Done():
			return fmt.Errorf("waiting for acks (%d of %d): %w", p.acked.Load(), n, ctx.Err())
		}
	}
	return nil
}

// measure runs one target: start its server, connect, warm up, publish,
// wait for every delivery, stop.
func measure(ctx context.Context, cfg Config, target string, argv []string, dir string) (Result, error) {
	res := Result{Target: target, Clients: cfg.Clients, Messages: cfg.Messages, Size: cfg.Size, Rate: cfg.Rate}
	if cfg.Rate <= 0 {
		res.Window = cfg.Window
	}
	srv, err := startServer(ctx, argv, dir, nil, cfg.Stderr)
	if err != nil {
		return res, err
	}
	defer srv.stop()
	pid := srv.cmd.Process.Pid

	r := &run{base: time.Now(), clients: cfg.Clients, done: make(chan struct{})}
	subs := make([]*subscriber, cfg.Clients)
	var readers sync.WaitGroup
	defer func() {
		for _, s := range subs {
			if s != nil {
				s.c.close()
			}
		}
		readers.Wait()
	}()
	if err := connectAll(ctx, func(int) (string, string) { return srv.addr, "" }, subs, func(s *subscriber) {
		s.messages = cfg.Messages
		s.seen = make([]uint64, (cfg.Messages+63)/64)
		s.lat = make([]int32, 0, cfg.Messages)
		readers.Go(func() { s.read(r) })
	}); err != nil {
		return res, err
	}
	pc, err := dial(ctx, srv.addr, "")
	if err != nil {
		return res, fmt.Errorf("publisher: %w", err)
	}
	pub := &publisher{c: pc, notify: make(chan struct{}, 1)}
	defer pc.close()
	readers.Go(pub.read)

	id, err := warmUp(ctx, pub, subs, cfg.Size)
	if err != nil {
		return res, err
	}

	cpu0, err := procCPU(pid)
	if err != nil {
		return res, err
	}
	writes0, werr := procWrites(pid)
	self0 := selfCPU()
	if err := srv.send("start"); err != nil {
		return res, err
	}
	start := time.Since(r.base)
	err = publishAll(ctx, cfg, pub, r, id)
	if err == nil {
		select {
		case <-r.done:
		case <-ctx.Done():
			err = fmt.Errorf("waiting for deliveries: %w", ctx.Err())
		}
	}
	// The measurement window ends here (or at the deadline).
	cpu1, cerr := procCPU(pid)
	writes1, werr1 := procWrites(pid)
	self1 := selfCPU()
	if err := srv.send("stop"); err != nil {
		return res, err
	}
	if target == TargetECB {
		if line, err := srv.readLine(context.Background(), 10*time.Second); err == nil {
			var st ServerStats
			if json.Unmarshal([]byte(line), &st) == nil {
				res.ECB = &st
			}
		}
	}
	if rss, err := procPeakRSS(pid); err == nil {
		res.ServerRSSMB = round(float64(rss)/(1<<20), 1)
	}
	if cerr == nil {
		res.ServerCPUSec = round((cpu1 - cpu0).Seconds(), 3)
	}
	res.LoadgenCPUSec = round((self1 - self0).Seconds(), 3)

	// Stop the readers, then read what they counted.
	for _, s := range subs {
		s.c.close()
	}
	pc.close()
	readers.Wait()
	var lat []int32
	var last int64
	for _, s := range subs {
		res.Deliveries += int64(s.got)
		res.Duplicates += s.dups
		last = max(last, s.last)
		lat = append(lat, s.lat...)
	}
	res.Lost = int64(cfg.Clients)*int64(cfg.Messages) - res.Deliveries
	if d := time.Duration(last) - start; d > 0 {
		res.DurationSec = round(d.Seconds(), 3)
		res.DeliveriesPerSec = round(float64(res.Deliveries)/d.Seconds(), 0)
	}
	if res.DurationSec > 0 {
		res.CPUShare = round((res.ServerCPUSec+res.LoadgenCPUSec)/(res.DurationSec*float64(runtime.NumCPU())), 2)
	}
	if res.ServerCPUSec > 0 {
		res.DeliveriesPerCPU = round(float64(res.Deliveries)/res.ServerCPUSec, 0)
	}
	if werr == nil && werr1 == nil && res.Deliveries > 0 {
		res.WritesPerDelivery = round(float64(writes1-writes0)/float64(res.Deliveries), 3)
	}
	res.P50ms, res.P99ms, res.Maxms = quantiles(lat)
	if err == nil && res.Lost > 0 {
		for _, s := range subs {
			if s.err != nil && !errors.Is(s.err, io.EOF) {
				err = fmt.Errorf("a client: %w", s.err)
				break
			}
		}
	}
	return res, err
}

// connectAll connects every subscriber, a few at a time, subscriber i to
// the address and with the CONNECT payload that where(i) gives, calling
// started for each once connected.
func connectAll(ctx context.Context, where func(i int) (addr, auth string), subs []*subscriber, started func(*subscriber)) error {
	const parallel = 32
	sem := make(chan struct{}, parallel)
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for i := range subs {
		sem <- struct{}{}
		mu.Lock()
		failed := firstErr != nil
		mu.Unlock()
		if failed {
			<-sem
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			addr, auth := where(i)
			c, err := dial(ctx, addr, auth)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("client %d: %w", i, err)
				}
				return
			}
			subs[i] = &subscriber{c: c}
			started(subs[i])
		})
	}
	wg.Wait()
	return firstErr
}

// warmUp publishes warm-up messages (negative seq, not measured) one at a
// time to the server's default thread, at least warmUps of them, until
// every subscriber has received the latest one: every socket is then in the
// room (attached to the thread), and the server's code is warm (V8's JIT,
// Go's pools). It returns the next ack id.
func warmUp(ctx context.Context, pub *publisher, subs []*subscriber, size int) (int64, error) {
	return warmUpThreads(ctx, pub, subs, []string{""}, size)
}

// warmUps is the least number of warm-up publishes.
const warmUps = 200

// warmUpThreads is warmUp over several threads: round k publishes warm-up
// -k to each thread (one publish in flight per thread), at least two rounds
// and warmUps publishes, until every subscriber (of any of the threads) has
// received the latest round.
func warmUpThreads(ctx context.Context, pub *publisher, subs []*subscriber, threads []string, size int) (int64, error) {
	rounds := int64(max(2, (warmUps+len(threads)-1)/len(threads)))
	deadline := time.Now().Add(30 * time.Second)
	received := func(k int64) bool {
		for _, s := range subs {
			if s.lastWarm.Load() < k {
				return false
			}
		}
		return true
	}
	var id int64
	for k := int64(1); ; k++ {
		for _, thread := range threads {
			if err := pub.publishTo(id, thread, -k, 0, size); err != nil {
				return 0, err
			}
			id++
		}
		if err := pub.waitAcks(ctx, id); err != nil {
			return 0, err
		}
		if k < rounds {
			continue
		}
		// Deliveries of one socket are in order: once it has k, it has
		// every warm-up since it joined. One that has not within a second
		// was not in the room yet: publish another round.
		for wait := time.Now().Add(time.Second); !received(k) && time.Now().Before(wait); {
			select {
			case <-time.After(5 * time.Millisecond):
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
		if received(k) {
			return id, nil
		}
		if time.Now().After(deadline) {
			return 0, errors.New("warm-up: not every client receives the broadcasts")
		}
	}
}

// publishAll sends the measured publishes: paced at cfg.Rate, or with at
// most cfg.Window unacked.
func publishAll(ctx context.Context, cfg Config, pub *publisher, r *run, firstID int64) error {
	return publishN(ctx, cfg.Rate, cfg.Window, pub, int64(cfg.Messages), func(i int64) error {
		return pub.publish(firstID+i, i, int64(time.Since(r.base)), cfg.Size)
	})
}

// publishN calls send(i) for i in [0, n): paced at rate per second, or (rate
// 0) with at most window publishes unacked; then it waits for every ack.
func publishN(ctx context.Context, rate float64, window int, pub *publisher, n int64, send func(i int64) error) error {
	acked0 := pub.acked.Load()
	var interval time.Duration
	if rate > 0 {
		interval = time.Duration(float64(time.Second) / rate)
	}
	begin := time.Now()
	for i := range n {
		if interval > 0 {
			if d := time.Until(begin.Add(time.Duration(i) * interval)); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		} else if err := pub.waitAcks(ctx, acked0+i-int64(window)+1); err != nil {
			return err
		}
		if err := send(i); err != nil {
			return fmt.Errorf("publisher: %w", err)
		}
	}
	return pub.waitAcks(ctx, acked0+n)
}

// procCPU returns the user+system CPU time of process pid.
func procCPU(pid int) (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name in parentheses; utime and stime are the
	// 14th and 15th fields of the line, in clock ticks (USER_HZ, 100 on Linux).
	i := strings.LastIndexByte(string(raw), ')')
	var f []string
	if i >= 0 {
		f = strings.Fields(string(raw[i+1:]))
	}
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected %q", pid, raw)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(ut+st) * (time.Second / 100), nil
}

// procWrites returns the write system calls process pid has made (syscw
// of /proc/PID/io).
func procWrites(pid int) (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "syscw:"); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, errors.New("no syscw")
}

// procPeakRSS returns the peak resident set size (VmHWM) of process pid.
func procPeakRSS(pid int) (int64, error) { return procStatusBytes(pid, "VmHWM") }

// procStatusBytes reads a size field of /proc/<pid>/status ("VmRSS:  123 kB")
// in bytes.
func procStatusBytes(pid int, field string) (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}
