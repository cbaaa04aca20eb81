package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ecbridge/ecb/internal/config"
	"github.com/ecbridge/ecb/internal/refbackend"
	"github.com/ecbridge/ecb/internal/server"
	"github.com/ecbridge/ecb/internal/support"
	"github.com/ecbridge/ecb/sdk/ecbserver"
	"github.com/ecbridge/ecb/web"
)

func init() {
	register(Command{
		Name:  "demo",
		Usage: "[--listen 127.0.0.1:8080] [--backend-listen 127.0.0.1:8081] [--data DIR] [--config FILE] [--set key=value ...] [--nodes N [--redis URL]]",
		Short: "run ECB, the reference backend and the demo web app in one process (or N ECB processes in cluster mode)",
		Run:   runDemo,
	})
}

// demoAudience is the aud of the demo's tokens.
const demoAudience = "ecb-demo"

func runDemo(ctx context.Context, args []string, env Env) (int, error) {
	fs := newFlags("demo", env)
	listen := fs.String("listen", "127.0.0.1:8080", "ECB's client API and the web app")
	backendListen := fs.String("backend-listen", "127.0.0.1:8081", "the reference backend")
	dataDir := fs.String("data", "ecb-demo-data", "directory for the SQLite database, keys and secrets (created on first start)")
	configPath := fs.String("config", "", "YAML file of ECB settings (e.g. support workgroups); the demo's own wiring and --set win over it")
	var sets multiFlag
	fs.Var(&sets, "set", "override one ECB setting, key=value (repeatable), e.g. --set log.level=debug")
	nodes := fs.Int("nodes", 0, "cluster mode: run this many ECB nodes as separate processes on consecutive ports from --listen, sharing --redis")
	redisURL := fs.String("redis", "redis://127.0.0.1:6379", "with --nodes: the Redis the nodes share")
	node := fs.String("node", "", "") // internal: run one node of a --nodes demo
	backendFlag := fs.String("backend-url", "", "")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	if fs.NArg() > 0 {
		return 2, fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if *node != "" {
		return runDemoNode(ctx, env, demoNodeOptions{name: *node, listen: *listen, dataDir: *dataDir, backendURL: *backendFlag,
			redisURL: *redisURL, configPath: *configPath, sets: sets})
	}
	if *nodes < 0 || *nodes > 16 {
		return 2, fmt.Errorf("%w: --nodes must be between 1 and 16", errUsage)
	}
	backendSet := false
	fs.Visit(func(f *flag.Flag) { backendSet = backendSet || f.Name == "backend-listen" })
	if err := ensureDemoKeys(*dataDir); err != nil {
		return 1, err
	}
	secret, err := os.ReadFile(filepath.Join(*dataDir, secretFile))
	if err != nil {
		return 1, err
	}
	apiKey, err := ensureServerAPIKey(*dataDir)
	if err != nil {
		return 1, err
	}

	// Bind the listeners first: each side's configuration names the other's port.
	var ecbLns []net.Listener
	defer func() {
		for _, ln := range ecbLns {
			ln.Close()
		}
	}()
	ecbLns, err = listenNodes(*listen, max(*nodes, 1))
	if err != nil {
		return 1, fmt.Errorf("--listen: %w", err)
	}
	if *nodes > 0 && !backendSet {
		// The nodes take the ports from --listen on: the backend goes after them.
		*backendListen, err = portAfter(*listen, ecbLns[len(ecbLns)-1].Addr().String())
		if err != nil {
			return 1, err
		}
	}
	backendLn, err := net.Listen("tcp", *backendListen)
	if err != nil {
		return 1, fmt.Errorf("--backend-listen: %w", err)
	}
	ecbLn := ecbLns[0]
	ecbURL := "http://" + ecbLn.Addr().String()
	backendURL := "http://" + backendLn.Addr().String()
	var origins []string
	for _, ln := range ecbLns {
		u := "http://" + ln.Addr().String()
		origins = append(origins, u, strings.Replace(u, "127.0.0.1", "localhost", 1))
	}

	log := slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	key, err := ecbserver.LoadPrivateKeyPEM(filepath.Join(*dataDir, privateKeyFile))
	if err != nil {
		return 1, err
	}
	signer, err := ecbserver.NewTokenSigner(key, ecbserver.SignerOptions{Audience: demoAudience})
	if err != nil {
		return 1, err
	}
	ref, err := refbackend.Open(ctx, refbackend.Config{
		Path:           filepath.Join(*dataDir, "backend.db"),
		Secret:         []byte(strings.TrimSpace(string(secret))),
		Signer:         signer,
		AllowedOrigins: origins,
		// The demo page uploads attachments straight to the backend
		// (cross-origin, under the CORS of AllowedOrigins).
		PublicURL: backendURL,
		Logger:    log.With("component", "backend"),
		// The demo's passwords are public (password = user name): a full
		// work factor would only slow its first start and every login.
		PasswordIterations: 10_000,
	})
	if err != nil {
		return 1, err
	}
	defer ref.Close()
	backendSrv := &http.Server{Handler: ref.Handler(), ReadHeaderTimeout: 10 * time.Second}
	if *nodes > 0 {
		return runClusterDemo(ctx, env, clusterDemo{nodes: ecbLns, backendLn: backendLn, backend: backendSrv, backendURL: backendURL,
			dataDir: *dataDir, redisURL: *redisURL, configPath: *configPath, sets: sets, apiKey: apiKey, log: log})
	}

	cfg, err := demoConfig(*dataDir, ecbLn.Addr().String(), backendURL, strings.TrimSpace(string(secret)), apiKey, *configPath, sets)
	if err != nil {
		return 2, err
	}
	srv, err := server.New(ctx, cfg, server.Options{Listener: ecbLn, Web: demoWeb(backendURL, ""), Logger: log.With("component", "ecb"), Versions: versions()})
	if err != nil {
		return 1, err
	}

	var wg sync.WaitGroup
	var backendErr error
	wg.Go(func() {
		if err := backendSrv.Serve(backendLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			backendErr = err
		}
	})
	fmt.Fprintf(env.Stdout, "ECB demo ready: open %s/ in two browser windows and log in as alice and bob (password = user name)\n", ecbURL)
	fmt.Fprintf(env.Stdout, "  customer support:  log in as agent1 (or agent2, super) and open %s/#visitor in another window\n", ecbURL)
	fmt.Fprintf(env.Stdout, "  ECB client API:    %s  (REST /v1, SSE /v1/events, Socket.IO /socket.io/)\n", ecbURL)
	fmt.Fprintf(env.Stdout, "  reference backend: %s  (POST /login, contract at /ecb/v1)\n", backendURL)
	fmt.Fprintf(env.Stdout, "  Server API key:    %s  (curl -H \"Authorization: Bearer $(cat %s)\" %s/server/v1/users/alice/presence)\n",
		apiKey, filepath.Join(*dataDir, serverAPIKeyFile), ecbURL)
	fmt.Fprintf(env.Stdout, "  data:              %s\n", *dataDir)
	fmt.Fprintln(env.Stdout, "Press Ctrl+C to stop.")
	// ECB drains first (its operations in flight and its queued callbacks
	// still need the backend), then the backend stops.
	runErr := srv.Run(ctx)
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = backendSrv.Shutdown(shutdownCtx)
	wg.Wait()
	if err := errors.Join(runErr, backendErr); err != nil {
		return 1, err
	}
	fmt.Fprintln(env.Stdout, "ECB demo stopped.")
	return 0, nil
}

// demoConfig is the configuration of a demo's ECB node: the demo's wiring,
// over the optional --config file, under --set.
func demoConfig(dataDir, listen, backendURL, secret, apiKey, configPath string, sets []string) (*config.Config, error) {
	demoSets := []string{
		"listen=" + listen,
		"auth.publicKeyFile=" + filepath.Join(dataDir, publicKeyFile),
		"auth.audience=" + demoAudience,
		"backend.url=" + backendURL + refbackend.ContractPrefix,
		// The support events and the offline nudges go to the reference
		// backend, which stores them and shows them at GET
		// /callbacks?requestId=... and GET /offline?threadId=...
		"callbacks.url=" + backendURL + refbackend.ContractPrefix + ecbserver.PathCallbacks,
		"backend.secret=" + secret,
		"operations.enforceMembership=true",
		"log.format=text",
		"serverApi.keys=" + demoServerAPIKeys(apiKey),
	}
	cfg, err := config.Load(configPath, nil, append(demoSets, sets...))
	if err != nil {
		return nil, err
	}
	if len(cfg.Support.Workgroups) == 0 {
		// The workgroup of the seeded agents (agent1, agent2); its settings
		// follow --set support.offerTimeout=..., support.strategy=..., ...
		// Two queues: a request with metadata {topic: "billing"} waits in
		// billing for agent2, every other in general for either agent.
		cfg.Support.Workgroups = []support.WorkgroupConfig{{Name: "support", DisplayName: "Customer support",
			Queues: []support.QueueConfig{
				{Queue: "billing", Match: map[string]string{"topic": "billing"}, Agents: []string{"agent2"}},
				{Queue: "general", Agents: []string{"agent1", "agent2"}},
			}}}
	}
	return cfg, nil
}

// demoWeb serves the web app, and at GET /demo/config.json what it needs to
// know of this demo: the reference backend's URL (for its login screen) and,
// in cluster mode, the name of the node that serves the page.
func demoWeb(backendURL, node string) http.Handler {
	cfg, _ := json.Marshal(map[string]string{"backendUrl": backendURL, "node": node}) // a map of strings always marshals
	mux := http.NewServeMux()
	mux.HandleFunc("GET /demo/config.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(cfg)
	})
	mux.Handle("/", web.Handler())
	return mux
}

// ensureDemoKeys generates the demo's keys and secret on first start.
func ensureDemoKeys(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, privateKeyFile)); err == nil {
		return nil
	}
	_, err := generateKeys(dir, 2048)
	return err
}
