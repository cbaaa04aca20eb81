package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ecbridge/ecb/bench/fanout"
	"github.com/ecbridge/ecb/internal/refbackend"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// runBenchStepped is `ecb bench stepped`: fixed-rate steps against ECB under
// `ecb serve` with the reference backend in another process, and Node
// socket.io with the same load (bench/fanout/stepped.go).
func runBenchStepped(ctx context.Context, args []string, env Env) (int, error) {
	fs := newFlags("bench stepped", env)
	shapes := fs.String("shapes", "1x1000,10x100,100x10", "THREADSxLISTENERS per thread, comma-separated; none: only the idle scenario")
	paths := fs.String("paths", fanout.PathServerAPI+","+fanout.PathSendMessage, "ECB's publish paths: serverapi, sendmessage")
	target := fs.String("target", "both", "ecb, node or both")
	rates := fs.String("rates", "5000,10000,20000,40000,80000,160000", "deliveries/s offered, one step each, in order")
	step := fs.Duration("step", 5*time.Second, "how long each step publishes")
	threshold := fs.Duration("threshold", 100*time.Millisecond, "stop a scenario after the first step whose p99 latency reaches this")
	size := fs.Int("size", 200, "message body bytes")
	idle := fs.Int("idle", 0, "also measure this many idle listening connections (RSS per connection)")
	idleWait := fs.Duration("idle-wait", 5*time.Second, "how long the connections sit before RSS is read")
	timeout := fs.Duration("timeout", 10*time.Minute, "deadline of each scenario")
	warmup := fs.Duration("warmup", 2*time.Second, "publish at the first rate for this long before the first step, unreported (0: none)")
	short := fs.Bool("short", false, "a few seconds in all (CI's smoke test): shapes 1x10,2x5, rates 200,400, 1s steps, no warm-up, ECB only unless --target says otherwise")
	nodeDir := fs.String("node-dir", "", "the Node server's directory (default: bench/node-server, searched from the working directory up)")
	profileDir := fs.String("profile-dir", "", "write ECB's heap profile and goroutine dump, with every connection listening, to this directory (one pair per scenario), and a CPU profile of each of ECB's steps")
	dataDir := fs.String("data", "", "directory for the run's keys and databases (default: a temporary one, removed afterwards)")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	if fs.NArg() > 0 {
		return 2, fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *short {
		def := func(name string, p *string, v string) {
			if !set[name] {
				*p = v
			}
		}
		def("shapes", shapes, "1x10,2x5")
		def("rates", rates, "200,400")
		def("target", target, "ecb")
		if !set["step"] {
			*step = time.Second
		}
		if !set["idle-wait"] {
			*idleWait = 500 * time.Millisecond
		}
		if !set["warmup"] {
			*warmup = 0
		}
	}
	var err error
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
	var sh []fanout.Shape
	if *shapes != "none" {
		if sh, err = fanout.ParseShapes(*shapes); err != nil {
			return 2, fmt.Errorf("%w: --shapes: %w", errUsage, err)
		}
	} else if *idle == 0 {
		return 2, fmt.Errorf("%w: --shapes none needs --idle", errUsage)
	}
	var ps []string
	for p := range strings.SplitSeq(*paths, ",") {
		p = strings.TrimSpace(p)
		if p != fanout.PathServerAPI && p != fanout.PathSendMessage {
			return 2, fmt.Errorf("%w: --paths: %q is not serverapi or sendmessage", errUsage, p)
		}
		ps = append(ps, p)
	}
	var rs []float64
	for f := range strings.SplitSeq(*rates, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || v <= 0 {
			return 2, fmt.Errorf("%w: --rates: %q is not a positive number", errUsage, f)
		}
		rs = append(rs, v)
	}
	if *size < 40 || *step <= 0 || *threshold <= 0 || *idle < 0 || *warmup < 0 {
		return 2, fmt.Errorf("%w: --size must be at least 40, --step and --threshold positive, --idle and --warmup not negative", errUsage)
	}
	self, err := os.Executable()
	if err != nil {
		return 1, err
	}
	dir := *dataDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "ecb-bench-stepped-"); err != nil {
			return 1, err
		}
		defer os.RemoveAll(dir)
	}
	if _, err := os.Stat(filepath.Join(dir, privateKeyFile)); err != nil {
		if _, err := generateKeys(dir, 2048); err != nil {
			return 1, err
		}
	}
	err = fanout.RunStepped(ctx, fanout.SteppedConfig{
		Shapes: sh, Paths: ps, Targets: targets, Rates: rs, Step: *step, Warmup: *warmup, Threshold: *threshold, Size: *size,
		Idle: *idle, IdleWait: *idleWait, Timeout: *timeout, ECB: self, DataDir: dir, NodeDir: *nodeDir,
		ProfileDir: *profileDir, Stdout: env.Stdout, Stderr: env.Stderr,
	})
	if err != nil {
		return 1, err
	}
	return 0, nil
}

// runBenchSteppedBackend is the hidden `ecb bench stepped-backend`: the
// reference backend of the stepped scenario in a process of its own, with
// the load's users and threads seeded. It prints "listening ADDR" and stops
// when its standard input closes.
func runBenchSteppedBackend(ctx context.Context, args []string, env Env) (int, error) {
	fs := newFlags("bench "+fanout.BackendCommand, env)
	dataDir := fs.String("data", "", "directory of the keys and the secret")
	db := fs.String("db", "", "SQLite file")
	seedFile := fs.String("seed", "", "JSON file of the users and threads to create (fanout.LoadSeed)")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	raw, err := os.ReadFile(*seedFile)
	if err != nil {
		return 1, err
	}
	var seed fanout.LoadSeed
	if err := json.Unmarshal(raw, &seed); err != nil {
		return 1, fmt.Errorf("%s: %w", *seedFile, err)
	}
	secret, err := os.ReadFile(filepath.Join(*dataDir, secretFile))
	if err != nil {
		return 1, err
	}
	key, err := ecbserver.LoadPrivateKeyPEM(filepath.Join(*dataDir, privateKeyFile))
	if err != nil {
		return 1, err
	}
	signer, err := ecbserver.NewTokenSigner(key, ecbserver.SignerOptions{Audience: fanout.BenchAudience})
	if err != nil {
		return 1, err
	}
	log := slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ref, err := refbackend.Open(ctx, refbackend.Config{Path: *db, Secret: []byte(strings.TrimSpace(string(secret))), Signer: signer,
		Logger: log, PasswordIterations: 1000})
	if err != nil {
		return 1, err
	}
	defer ref.Close()
	threads := make([]refbackend.LoadThread, len(seed.Threads))
	for i, t := range seed.Threads {
		threads[i] = refbackend.LoadThread{ID: t.ID, Members: t.Members}
	}
	if err := ref.SeedLoad(ctx, seed.Users, threads); err != nil {
		return 1, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 1, err
	}
	srv := &http.Server{Handler: ref.Handler(), ReadHeaderTimeout: 10 * time.Second}
	var wg sync.WaitGroup
	var serveErr error
	wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			serveErr = err
		}
	})
	fmt.Fprintf(env.Stdout, "listening %s\n", ln.Addr())
	stdinClosed := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); close(stdinClosed) }() // ends with the process's stdin
	select {
	case <-stdinClosed:
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	wg.Wait()
	if serveErr != nil {
		return 1, serveErr
	}
	return 0, nil
}
