package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/ecbridge/ecb/bench/fanout"
)

// benchServerCommand is the hidden subcommand `ecb bench fanout` re-executes
// itself with, to run the ECB server of the benchmark in its own process.
const benchServerCommand = "fanout-server"

func init() {
	register(Command{
		Name:  "bench",
		Usage: "stepped [--shapes 1x1000,10x100,100x10] [--paths serverapi,sendmessage] [--rates R1,R2,...] [--step D] [--threshold D] [--size B] [--idle N] [--target ecb|node|both] [--short] | forward [--redis URL] [--cycles N] | fanout [--cluster [--shapes 1x1000,10x100,100x10] [--nodes 1,2] [--redis URL|own]] [--clients N] [--messages M] [--rate R] [--window W] [--size B] [--target ecb|node|both] [--rounds K] [--timeout D] [--cpuprofile FILE] [--write-delay D] [--node-dir DIR]",
		Short: "measure ECB under ecb serve against Node socket.io 4.8 at fixed rates stepped to a p99 threshold, broadcast fan-out of ECB against Node socket.io 4.8 (on one server or on nodes sharing a Redis), or the cost of a poll forwarded between nodes (docs/performance.md)",
		Run:   runBench,
	})
}

func runBench(ctx context.Context, args []string, env Env) (int, error) {
	if len(args) == 0 {
		return 2, fmt.Errorf("%w: missing benchmark (stepped, fanout, forward)", errUsage)
	}
	switch args[0] {
	case "fanout":
		return runBenchFanout(ctx, args[1:], env)
	case "forward":
		return runBenchForward(ctx, args[1:], env)
	case "stepped":
		return runBenchStepped(ctx, args[1:], env)
	case fanout.BackendCommand:
		return runBenchSteppedBackend(ctx, args[1:], env)
	case benchServerCommand:
		fs := newFlags("bench "+benchServerCommand, env)
		cpuprofile := fs.String("cpuprofile", "", "write the CPU profile of the measurement window to this file")
		redisURL := fs.String("redis", "", "run the hub on the cluster's Redis broker at this URL")
		prefix := fs.String("prefix", "", "with --redis: the cluster prefix of every key and channel")
		writeDelay := fs.Duration("write-delay", 0, "socketio.writeDelay")
		if err := fs.Parse(args[1:]); err != nil {
			return 2, err
		}
		opts := fanout.ServerOptions{CPUProfile: *cpuprofile, Log: env.Stderr, RedisURL: *redisURL, Prefix: *prefix, WriteDelay: *writeDelay}
		if err := fanout.ServeECB(ctx, os.Stdin, env.Stdout, opts); err != nil {
			return 1, err
		}
		return 0, nil
	}
	return 2, fmt.Errorf("%w: unknown benchmark %q", errUsage, args[0])
}

func runBenchFanout(ctx context.Context, args []string, env Env) (int, error) {
	fs := newFlags("bench fanout", env)
	clients := fs.Int("clients", 1000, "subscribed Socket.IO clients")
	messages := fs.Int("messages", 2000, "measured publishes (each delivered to every client)")
	rate := fs.Float64("rate", 0, "publishes per second (with --cluster: per thread); 0: as fast as the acks allow (see --window)")
	window := fs.Int("window", 1, "with --rate 0: publishes sent and not yet acked")
	size := fs.Int("size", 128, "payload bytes of each message")
	target := fs.String("target", "both", "ecb, node or both")
	rounds := fs.Int("rounds", 1, "measure each target this many times, alternating; the ratio compares the medians")
	timeout := fs.Duration("timeout", 3*time.Minute, "deadline of each target's run")
	cpuprofile := fs.String("cpuprofile", "", "write the ECB server's CPU profile of the measurement to this file")
	writeDelay := fs.Duration("write-delay", 0, "the ECB server's socketio.writeDelay")
	nodeDir := fs.String("node-dir", "", "the Node server's directory (default: bench/node-server, searched from the working directory up)")
	clusterMode := fs.Bool("cluster", false, "the cluster scenario: listeners of --shapes split over --nodes servers sharing one Redis")
	shapes := fs.String("shapes", "1x1000,10x100,100x10", "with --cluster: THREADSxLISTENERS per thread, comma-separated")
	nodes := fs.String("nodes", "1,2", "with --cluster: the node counts to measure, comma-separated")
	redisURL := fs.String("redis", defaultBenchRedis(), "with --cluster: the Redis the nodes share, or \"own\" to start a private redis-server")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if fs.NArg() > 0 {
		return 2, fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	var targets []string
	switch strings.ToLower(*target) {
	case "ecb":
		targets = []string{fanout.TargetECB}
	case "node":
		targets = []string{fanout.TargetNode}
	case "both":
		targets = []string{fanout.TargetECB, fanout.TargetNode}
	default:
		return 2, fmt.Errorf("%w: --target must be ecb, node or both", errUsage)
	}
	if *clients < 1 || *messages < 1 || *size < 1 || *window < 1 || *rounds < 1 || *rate < 0 {
		return 2, fmt.Errorf("%w: --clients, --messages, --size, --window and --rounds must be positive, --rate not negative", errUsage)
	}
	self, err := os.Executable()
	if err != nil {
		return 1, err
	}
	if *clusterMode {
		if set["clients"] || set["cpuprofile"] {
			return 2, fmt.Errorf("%w: --cluster takes --shapes, not --clients, and no --cpuprofile", errUsage)
		}
		sh, err := fanout.ParseShapes(*shapes)
		if err != nil {
			return 2, fmt.Errorf("%w: --shapes: %w", errUsage, err)
		}
		ns, err := fanout.ParseNodes(*nodes)
		if err != nil {
			return 2, fmt.Errorf("%w: --nodes: %w", errUsage, err)
		}
		cc := fanout.ClusterConfig{
			Shapes: sh, Nodes: ns, Messages: 500, Rate: *rate, Window: 16, Size: *size,
			Targets: targets, Rounds: *rounds, Timeout: 2 * time.Minute, RedisURL: *redisURL,
			ECBServer: []string{self, "bench", benchServerCommand, "--write-delay", writeDelay.String()}, NodeDir: *nodeDir,
			Stdout: env.Stdout, Stderr: env.Stderr,
		}
		if set["messages"] {
			cc.Messages = *messages
		}
		if set["window"] {
			cc.Window = *window
		}
		if set["timeout"] {
			cc.Timeout = *timeout
		}
		if err := fanout.RunCluster(ctx, cc); err != nil {
			return 1, err
		}
		return 0, nil
	}
	if set["shapes"] || set["nodes"] || set["redis"] {
		return 2, fmt.Errorf("%w: --shapes, --nodes and --redis go with --cluster", errUsage)
	}
	err = fanout.Run(ctx, fanout.Config{
		Clients: *clients, Messages: *messages, Rate: *rate, Window: *window, Size: *size,
		Targets: targets, Rounds: *rounds, Timeout: *timeout,
		ECBServer:  []string{self, "bench", benchServerCommand, "--write-delay", writeDelay.String()},
		CPUProfile: *cpuprofile, NodeDir: *nodeDir,
		Stdout: env.Stdout, Stderr: env.Stderr,
	})
	if err != nil {
		return 1, err
	}
	return 0, nil
}

// defaultBenchRedis is the Redis of the cluster scenario unless --redis
// says otherwise: $ECB_CLUSTER_REDIS_URL, else the machine's.
func defaultBenchRedis() string {
	if u := os.Getenv("ECB_CLUSTER_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}
