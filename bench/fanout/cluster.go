package fanout

// The cluster scenario (`ecb bench fanout --cluster`): the same load
// generator against several server processes that share one Redis, ECB's
// nodes on internal/cluster's broker, Node socket.io servers on
// @socket.io/redis-adapter. Listeners of T threads (rooms), L per thread,
// are split evenly over the nodes; every publish is sent to the first node,
// and Redis carries it to each node once, whatever its number of listeners
// there.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ecbridge/ecb/internal/cluster"
)

// OwnRedis as ClusterConfig.RedisURL starts a private redis-server for the
// run (no persistence, a free port), so that its CPU figures are the
// benchmark's alone.
const OwnRedis = "own"

// Shape is a cluster scenario's threads and listeners per thread.
type Shape struct{ Threads, Listeners int }

func (s Shape) String() string { return fmt.Sprintf("%dx%d", s.Threads, s.Listeners) }

// ParseShapes parses "1x1000,10x100,100x10".
func ParseShapes(v string) ([]Shape, error) {
	var out []Shape
	for f := range strings.SplitSeq(v, ",") {
		a, b, ok := strings.Cut(strings.TrimSpace(f), "x")
		t, err1 := strconv.Atoi(a)
		l, err2 := strconv.Atoi(b)
		if !ok || err1 != nil || err2 != nil || t < 1 || l < 1 {
			return nil, fmt.Errorf("shape %q: want THREADSxLISTENERS, e.g. 10x100", f)
		}
		out = append(out, Shape{t, l})
	}
	return out, nil
}

// ParseNodes parses "1,2".
func ParseNodes(v string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 16 {
			return nil, fmt.Errorf("node count %q: want 1 to 16", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// ClusterConfig is one run of the cluster scenario.
type ClusterConfig struct {
	Shapes   []Shape
	Nodes    []int   // node counts, each measured (e.g. 1, 2)
	Messages int     // measured publishes per thread (so every shape of T·L listeners gets T·L·Messages deliveries)
	Rate     float64 // publishes per second per thread (so every shape is offered T·L·Rate deliveries/s); 0: Window
	Window   int     // with Rate 0, publishes in flight (sent, not acked); default 16
	Size     int
	Targets  []string
	Rounds   int           // each (target, nodes) is measured Rounds times per shape, alternating
	Timeout  time.Duration // per measurement; default 2m
	// RedisURL is the Redis the nodes share; OwnRedis starts one.
	RedisURL string

	ECBServer []string // as Config.ECBServer
	NodeDir   string
	Node      string

	Stdout, Stderr io.Writer
}

// ClusterResult is one measurement of the cluster scenario, one JSON line.
type ClusterResult struct {
	Scenario         string  `json:"scenario"` // "cluster"
	Target           string  `json:"target"`
	Nodes            int     `json:"nodes"`
	Threads          int     `json:"threads"`
	Listeners        int     `json:"listeners"` // per thread
	Round            int     `json:"round,omitempty"`
	Server           string  `json:"server"`
	Redis            string  `json:"redis"`
	Clients          int     `json:"clients"`  // threads × listeners
	Messages         int     `json:"messages"` // per thread
	Publishes        int     `json:"publishes"`
	Size             int     `json:"size"`
	Rate             float64 `json:"rate"` // per thread; 0: unpaced
	Window           int     `json:"window,omitempty"`
	Deliveries       int64   `json:"deliveries"`
	DeliveriesPerSec float64 `json:"deliveries_per_sec"`
	DurationSec      float64 `json:"duration_sec"`
	P50ms            float64 `json:"p50_ms"`
	P99ms            float64 `json:"p99_ms"`
	Maxms            float64 `json:"max_ms"`
	Lost             int64   `json:"lost"`
	Duplicates       int64   `json:"duplicates"`
	// Per node, in order (the first receives the publishes).
	NodeDeliveries       []int64   `json:"node_deliveries"` // its listeners × messages
	NodeCPUSec           []float64 `json:"node_cpu_sec"`
	NodeCPUPerDelivery   []float64 `json:"node_cpu_us_per_delivery"`
	NodeCPUPerPublish    []float64 `json:"node_cpu_us_per_publish"`
	NodeRSSMB            []float64 `json:"node_rss_mb"`
	ServerCPUSec         float64   `json:"server_cpu_sec"` // all nodes
	DeliveriesPerCPU     float64   `json:"deliveries_per_server_cpu_sec"`
	DeliveriesPerBusiest float64   `json:"deliveries_per_busiest_node_cpu_sec"` // what the nodes would deliver per second with a core each: deliveries ÷ the busiest node's CPU seconds
	// Redis, from INFO before and after the measurement.
	RedisCPUSec         float64        `json:"redis_cpu_sec"`
	RedisCPUPerPublish  float64        `json:"redis_cpu_us_per_publish"`  // (used_cpu_sys + used_cpu_user after − before) ÷ publishes
	RedisIdleCPU        float64        `json:"redis_idle_cpu_ms_per_sec"` // the same over one second before the measurement, nothing published: what the nodes' probes and Redis's own timers cost
	RedisOutPerPublish  float64        `json:"redis_out_bytes_per_publish"`
	RedisCmdsPerPublish float64        `json:"redis_commands_per_publish"`
	LoadgenCPUSec       float64        `json:"loadgen_cpu_sec"`
	CPUShare            float64        `json:"cpu_share"` // (servers + Redis + load generator CPU) ÷ (duration × cores)
	ECB                 []*ServerStats `json:"ecb,omitempty"`
	LoadAvg             float64        `json:"loadavg"`
	Error               string         `json:"error,omitempty"`
}

// ClusterScaling is how one target scales with its nodes in one shape:
// the median of each node count's rounds.
type ClusterScaling struct {
	Nodes            []int     `json:"nodes"`
	DeliveriesPerSec []float64 `json:"deliveries_per_sec"`
	P99ms            []float64 `json:"p99_ms"`
	// Speedup is deliveries/s at the most nodes ÷ at the fewest.
	Speedup float64 `json:"speedup"`
	// CPUSpeedup is the same for deliveries per CPU second of the busiest
	// node: the speedup when each node has a core of its own.
	CPUSpeedup float64 `json:"cpu_speedup"`
	// BusiestCPUPerPublish is the busiest node's CPU µs per publish, per node
	// count: the per-node work, which halves when it is the fan-out.
	BusiestCPUPerPublish []float64 `json:"busiest_node_cpu_us_per_publish"`
	RedisCPUPerPublish   []float64 `json:"redis_cpu_us_per_publish"`
}

// ClusterRatio is the last line of a shape: each target's scaling and,
// with both targets, ECB's deliveries/s ÷ Node's per node count.
type ClusterRatio struct {
	Scenario  string                     `json:"scenario"` // "cluster-ratio"
	Threads   int                        `json:"threads"`
	Listeners int                        `json:"listeners"`
	Messages  int                        `json:"messages"`
	Targets   map[string]*ClusterScaling `json:"scaling"`
	ECBVsNode []float64                  `json:"ecb_vs_node,omitempty"`
}

// RunCluster measures every shape, target and node count, and prints a
// JSON line for each measurement and a ClusterRatio line per shape. It
// returns an error when a measurement fails or loses deliveries (after
// printing its line).
func RunCluster(ctx context.Context, cc ClusterConfig) error {
	if len(cc.Shapes) == 0 || len(cc.Nodes) == 0 || len(cc.Targets) == 0 || cc.Messages < 1 {
		return errors.New("cluster: shapes, nodes, targets and messages are required")
	}
	cc.Window = orDefault(cc.Window, 16)
	cc.Size = orDefault(cc.Size, 1)
	cc.Rounds = orDefault(cc.Rounds, 1)
	if cc.Timeout <= 0 {
		cc.Timeout = 2 * time.Minute
	}
	if cc.Node == "" {
		cc.Node = "node"
	}
	if cc.Stdout == nil {
		cc.Stdout = os.Stdout
	}
	if cc.Stderr == nil {
		cc.Stderr = os.Stderr
	}
	// The servers' stderr is copied there from several goroutines.
	cc.Stderr = &syncWriter{w: cc.Stderr}
	most := 0
	for _, s := range cc.Shapes {
		most = max(most, s.Threads*s.Listeners)
	}
	if limit := RaiseFileLimit(); most+64 > limit {
		return fmt.Errorf("%d clients need %d open files; the limit is %d", most, most+64, limit)
	}
	redisURL, redisName := cc.RedisURL, "shared"
	if redisURL == OwnRedis {
		url, stop, err := startRedis(ctx, cc.Stderr)
		if err != nil {
			return err
		}
		defer stop()
		redisURL, redisName = url, "own"
	}
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		return fmt.Errorf("cluster: redis URL: %w", err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	info, err := redisInfo(ctx, rdb)
	if err != nil {
		return fmt.Errorf("cluster: redis at %s: %w", opt.Addr, err)
	}
	redisName = "redis " + info.version + " (" + redisName + ")"

	base := Config{ECBServer: cc.ECBServer, NodeDir: cc.NodeDir, Node: cc.Node, Stderr: cc.Stderr}
	type command struct {
		argv         []string
		dir, version string
	}
	commands := map[string]command{}
	for _, target := range cc.Targets {
		argv, dir, version, err := base.serverCommand(ctx, target)
		if err != nil {
			return err
		}
		commands[target] = command{argv, dir, version}
	}
	var failed error
	for _, shape := range cc.Shapes {
		results := map[string]map[int][]ClusterResult{}
		for round := 1; round <= cc.Rounds; round++ {
			for _, target := range cc.Targets {
				for _, nodes := range cc.Nodes {
					cmd := commands[target]
					load := loadAvg()
					mctx, cancel := context.WithTimeout(ctx, cc.Timeout)
					res, err := measureCluster(mctx, cc, shape, target, nodes, cmd.argv, cmd.dir, redisURL, rdb)
					cancel()
					res.Server, res.Redis, res.LoadAvg = cmd.version, redisName, load
					if cc.Rounds > 1 {
						res.Round = round
					}
					if err != nil {
						res.Error = err.Error()
						failed = errors.Join(failed, fmt.Errorf("%s, %d nodes, %s: %w", target, nodes, shape, err))
					} else if res.Lost > 0 || res.Duplicates > 0 {
						failed = errors.Join(failed, fmt.Errorf("%s, %d nodes, %s: %d deliveries lost, %d duplicated", target, nodes, shape, res.Lost, res.Duplicates))
					}
					if results[target] == nil {
						results[target] = map[int][]ClusterResult{}
					}
					results[target][nodes] = append(results[target][nodes], res)
					if err := json.NewEncoder(cc.Stdout).Encode(res); err != nil {
						return err
					}
					if ctx.Err() != nil {
						return errors.Join(failed, ctx.Err())
					}
				}
			}
		}
		if failed == nil {
			if err := json.NewEncoder(cc.Stdout).Encode(clusterRatio(cc, shape, results)); err != nil {
				return err
			}
		}
	}
	return failed
}

func orDefault(v, def int) int {
	if v < 1 {
		return def
	}
	return v
}

func clusterRatio(cc ClusterConfig, shape Shape, results map[string]map[int][]ClusterResult) ClusterRatio {
	out := ClusterRatio{Scenario: "cluster-ratio", Threads: shape.Threads, Listeners: shape.Listeners,
		Messages: cc.Messages, Targets: map[string]*ClusterScaling{}}
	nodes := slices.Sorted(slices.Values(cc.Nodes))
	nodes = slices.Compact(nodes)
	busiest := func(r ClusterResult) float64 {
		if len(r.NodeCPUPerPublish) == 0 {
			return 0
		}
		return slices.Max(r.NodeCPUPerPublish)
	}
	for target, byNodes := range results {
		s := &ClusterScaling{Nodes: nodes}
		var cpu []float64
		for _, n := range nodes {
			rs := byNodes[n]
			s.DeliveriesPerSec = append(s.DeliveriesPerSec, median(rs, func(r ClusterResult) float64 { return r.DeliveriesPerSec }))
			s.P99ms = append(s.P99ms, median(rs, func(r ClusterResult) float64 { return r.P99ms }))
			cpu = append(cpu, median(rs, func(r ClusterResult) float64 { return r.DeliveriesPerBusiest }))
			s.BusiestCPUPerPublish = append(s.BusiestCPUPerPublish, round(median(rs, busiest), 1))
			s.RedisCPUPerPublish = append(s.RedisCPUPerPublish, round(median(rs, func(r ClusterResult) float64 { return r.RedisCPUPerPublish }), 2))
		}
		if last := len(nodes) - 1; s.DeliveriesPerSec[0] > 0 {
			s.Speedup = round(s.DeliveriesPerSec[last]/s.DeliveriesPerSec[0], 3)
			if cpu[0] > 0 {
				s.CPUSpeedup = round(cpu[last]/cpu[0], 3)
			}
		}
		out.Targets[target] = s
	}
	if e, n := out.Targets[TargetECB], out.Targets[TargetNode]; e != nil && n != nil {
		for i := range nodes {
			if n.DeliveriesPerSec[i] > 0 {
				out.ECBVsNode = append(out.ECBVsNode, round(e.DeliveriesPerSec[i]/n.DeliveriesPerSec[i], 3))
			}
		}
	}
	return out
}

// measureCluster runs one target on nodes servers sharing the Redis at
// redisURL (under a prefix of its own), with shape's listeners split over
// them and the publishes sent to the first.
func measureCluster(ctx context.Context, cc ClusterConfig, shape Shape, target string, nodes int, argv []string, dir, redisURL string, rdb *redis.Client) (ClusterResult, error) {
	clients := shape.Threads * shape.Listeners
	res := ClusterResult{Scenario: "cluster", Target: target, Nodes: nodes, Threads: shape.Threads, Listeners: shape.Listeners,
		Clients: clients, Messages: cc.Messages, Publishes: shape.Threads * cc.Messages, Size: cc.Size, Rate: cc.Rate}
	if cc.Rate <= 0 {
		res.Window = cc.Window
	}
	prefix := "ecbbench-" + randomHex(6)
	var env []string
	switch target {
	case TargetECB:
		argv = append(slices.Clone(argv), "--redis", redisURL, "--prefix", prefix)
		// Every key of the run goes with it (after the servers stopped).
		defer func() {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			_ = cluster.DeletePrefix(dctx, rdb, prefix)
		}()
	case TargetNode:
		env = []string{"BENCH_REDIS_URL=" + redisURL, "BENCH_PREFIX=" + prefix}
	}
	srvs := make([]*server, nodes)
	defer func() {
		var wg sync.WaitGroup
		for _, s := range srvs {
			if s != nil {
				wg.Go(s.stop)
			}
		}
		wg.Wait()
	}()
	for i := range srvs {
		s, err := startServer(ctx, argv, dir, env, cc.Stderr)
		if err != nil {
			return res, err
		}
		srvs[i] = s
	}

	threads := make([]string, shape.Threads)
	for j := range threads {
		threads[j] = "t" + strconv.Itoa(j)
	}
	// Subscriber i listens to thread i mod T on node (i div T) mod N: each
	// thread's listeners alternate between the nodes.
	nodeOf := func(i int) int { return (i / shape.Threads) % nodes }
	res.NodeDeliveries = make([]int64, nodes)
	for i := range clients {
		res.NodeDeliveries[nodeOf(i)] += int64(cc.Messages)
	}

	r := &run{base: time.Now(), clients: clients, done: make(chan struct{})}
	subs := make([]*subscriber, clients)
	var readers sync.WaitGroup
	defer func() {
		for _, s := range subs {
			if s != nil {
				s.c.close()
			}
		}
		readers.Wait()
	}()
	if err := connectAll(ctx, func(i int) (string, string) {
		return srvs[nodeOf(i)].addr, `{"thread":"` + threads[i%shape.Threads] + `"}`
	}, subs, func(s *subscriber) {
		s.messages = cc.Messages
		s.seen = make([]uint64, (cc.Messages+63)/64)
		s.lat = make([]int32, 0, cc.Messages)
		readers.Go(func() { s.read(r) })
	}); err != nil {
		return res, err
	}
	pc, err := dial(ctx, srvs[0].addr, `{"thread":""}`)
	if err != nil {
		return res, fmt.Errorf("publisher: %w", err)
	}
	pub := &publisher{c: pc, notify: make(chan struct{}, 1)}
	defer pc.close()
	readers.Go(pub.read)

	id, err := warmUpThreads(ctx, pub, subs, threads, cc.Size)
	if err != nil {
		return res, err
	}

	cpu0 := make([]time.Duration, nodes)
	for i, s := range srvs {
		if cpu0[i], err = procCPU(s.cmd.Process.Pid); err != nil {
			return res, err
		}
	}
	// One idle second first: at a low publish rate, Redis's CPU per publish
	// is mostly this.
	idle0, err := redisInfo(ctx, rdb)
	if err != nil {
		return res, err
	}
	idleStart := time.Now()
	select {
	case <-time.After(time.Second):
	case <-ctx.Done():
		return res, ctx.Err()
	}
	info0, err := redisInfo(ctx, rdb)
	if err != nil {
		return res, err
	}
	res.RedisIdleCPU = round((info0.cpu-idle0.cpu)*1e3/time.Since(idleStart).Seconds(), 2)
	self0 := selfCPU()
	for _, s := range srvs {
		if err := s.send("start"); err != nil {
			return res, err
		}
	}
	start := time.Since(r.base)
	// Publish i goes to thread i mod T with that thread's seq i div T.
	T := int64(shape.Threads)
	err = publishN(ctx, cc.Rate*float64(T), cc.Window, pub, int64(res.Publishes), func(i int64) error {
		return pub.publishTo(id+i, threads[i%T], i/T, int64(time.Since(r.base)), cc.Size)
	})
	if err == nil {
		select {
		case <-r.done:
		case <-ctx.Done():
			err = fmt.Errorf("waiting for deliveries: %w", ctx.Err())
		}
	}
	// The measurement window ends here (or at the deadline).
	self1 := selfCPU()
	res.NodeCPUSec = make([]float64, nodes)
	res.NodeCPUPerDelivery = make([]float64, nodes)
	res.NodeCPUPerPublish = make([]float64, nodes)
	var busiest float64
	for i, s := range srvs {
		c1, cerr := procCPU(s.cmd.Process.Pid)
		if cerr != nil {
			continue
		}
		sec := (c1 - cpu0[i]).Seconds()
		res.NodeCPUSec[i] = round(sec, 3)
		res.ServerCPUSec += sec
		busiest = max(busiest, sec)
		if res.NodeDeliveries[i] > 0 {
			res.NodeCPUPerDelivery[i] = round(sec*1e6/float64(res.NodeDeliveries[i]), 3)
		}
		res.NodeCPUPerPublish[i] = round(sec*1e6/float64(res.Publishes), 1)
	}
	res.ServerCPUSec = round(res.ServerCPUSec, 3)
	if info1, ierr := redisInfo(context.WithoutCancel(ctx), rdb); ierr == nil {
		p := float64(res.Publishes)
		res.RedisCPUSec = round(info1.cpu-info0.cpu, 3)
		res.RedisCPUPerPublish = round((info1.cpu-info0.cpu)*1e6/p, 2)
		res.RedisOutPerPublish = round(float64(info1.netOut-info0.netOut)/p, 1)
		res.RedisCmdsPerPublish = round(float64(info1.commands-info0.commands-1)/p, 2) // less the INFO itself
	}
	for _, s := range srvs {
		if err := s.send("stop"); err != nil {
			return res, err
		}
		if target == TargetECB {
			var st ServerStats
			line, lerr := s.readLine(context.Background(), 10*time.Second)
			if lerr == nil && json.Unmarshal([]byte(line), &st) == nil {
				res.ECB = append(res.ECB, &st)
			}
		}
		if rss, err := procPeakRSS(s.cmd.Process.Pid); err == nil {
			res.NodeRSSMB = append(res.NodeRSSMB, round(float64(rss)/(1<<20), 1))
		}
	}
	res.LoadgenCPUSec = round((self1 - self0).Seconds(), 3)

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
	res.Lost = int64(clients)*int64(cc.Messages) - res.Deliveries
	if d := time.Duration(last) - start; d > 0 {
		res.DurationSec = round(d.Seconds(), 3)
		res.DeliveriesPerSec = round(float64(res.Deliveries)/d.Seconds(), 0)
		res.CPUShare = round((res.ServerCPUSec+res.RedisCPUSec+res.LoadgenCPUSec)/(d.Seconds()*float64(runtime.NumCPU())), 2)
	}
	if res.ServerCPUSec > 0 {
		res.DeliveriesPerCPU = round(float64(res.Deliveries)/res.ServerCPUSec, 0)
	}
	if busiest > 0 {
		res.DeliveriesPerBusiest = round(float64(res.Deliveries)/busiest, 0)
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

// quantiles returns the median, 99th percentile and maximum of lat (µs) in
// milliseconds; it sorts lat.
func quantiles(lat []int32) (p50, p99, maxv float64) {
	if len(lat) == 0 {
		return 0, 0, 0
	}
	slices.Sort(lat)
	ms := func(q float64) float64 {
		return round(float64(lat[min(int(q*float64(len(lat))), len(lat)-1)])/1e3, 2)
	}
	return ms(0.50), ms(0.99), round(float64(lat[len(lat)-1])/1e3, 2)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// redisStats is what the benchmark reads from INFO.
type redisStats struct {
	version  string
	cpu      float64 // used_cpu_sys + used_cpu_user, seconds
	netOut   int64   // total_net_output_bytes
	commands int64   // total_commands_processed
}

func redisInfo(ctx context.Context, rdb *redis.Client) (redisStats, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	raw, err := rdb.Info(ctx, "server", "cpu", "stats").Result()
	if err != nil {
		return redisStats{}, fmt.Errorf("INFO: %w", err)
	}
	return parseRedisInfo(raw), nil
}

func parseRedisInfo(raw string) redisStats {
	var st redisStats
	for line := range strings.SplitSeq(raw, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		switch k {
		case "redis_version":
			st.version = v
		case "used_cpu_sys", "used_cpu_user":
			f, _ := strconv.ParseFloat(v, 64)
			st.cpu += f
		case "total_net_output_bytes":
			st.netOut, _ = strconv.ParseInt(v, 10, 64)
		case "total_commands_processed":
			st.commands, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return st
}

// startRedis starts a private redis-server on a free loopback port, with
// no persistence, and returns its URL and the function that stops it.
func startRedis(ctx context.Context, stderr io.Writer) (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	_ = ln.Close()
	cmd := exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--loglevel", "warning")
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("starting redis-server (--redis own): %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	stop = func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	url = "redis://127.0.0.1:" + port + "/0"
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + port})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		err := rdb.Ping(pctx).Err()
		cancel()
		if err == nil {
			return url, stop, nil
		}
		select {
		case <-done:
			return "", nil, errors.New("redis-server exited at start")
		case <-ctx.Done():
			stop()
			return "", nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("redis-server on port %s does not answer: %w", port, err)
		}
	}
}

// syncWriter serializes the writes to w.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
