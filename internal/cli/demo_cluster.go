package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ecbridge/ecb/internal/server"
)

// This file holds `ecb demo --nodes N`: the reference backend in this
// process, and N ECB nodes in cluster mode, each a process of its own
// (`ecb demo --node NAME ...`, started and stopped by this one), so that a
// script can kill one with SIGKILL. A killed node stays down until a
// rolling restart (SIGHUP to the demo: each node drains and comes back on
// its address and name, one after the other).

// ClusterFile is what `ecb demo --nodes N` writes to <data>/cluster.json.
type ClusterFile struct {
	Backend          string        `json:"backend"`
	ServerAPIKeyFile string        `json:"serverApiKeyFile"`
	Nodes            []ClusterNode `json:"nodes"`
}

// ClusterNode is one node of a ClusterFile.
type ClusterNode struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	PID  int    `json:"pid"`
}

type clusterDemo struct {
	nodes      []net.Listener // bound, to learn the ports; released for the node processes
	backendLn  net.Listener
	backend    *http.Server
	backendURL string
	dataDir    string
	redisURL   string
	configPath string
	sets       []string
	apiKey     string
	log        *slog.Logger
}

// listenNodes binds n consecutive ports from addr (any free ports when its
// port is 0).
func listenNodes(addr string, n int) ([]net.Listener, error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, fmt.Errorf("port %q: %w", portText, err)
	}
	var out []net.Listener
	for i := range n {
		p := 0
		if port != 0 {
			p = port + i
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err != nil {
			for _, l := range out {
				l.Close()
			}
			return nil, err
		}
		out = append(out, ln)
	}
	return out, nil
}

// portAfter returns listen with the port after last's, or port 0 when the
// nodes took any free port (listen's port was 0).
func portAfter(listen, last string) (string, error) {
	host, portText, err := net.SplitHostPort(listen)
	if err != nil {
		return "", err
	}
	if portText == "0" {
		return net.JoinHostPort(host, "0"), nil
	}
	_, lastPort, err := net.SplitHostPort(last)
	if err != nil {
		return "", err
	}
	port, _ := strconv.Atoi(lastPort)
	return net.JoinHostPort(host, strconv.Itoa(port+1)), nil
}

// nodeProc is one node process of the demo: how to start it, and the
// running process (nil while it is down).
type nodeProc struct {
	name, addr string
	args       []string
	cmd        *exec.Cmd
	exited     chan struct{} // closed when cmd has exited
	url        string
}

// start runs the node and waits until it serves.
func (n *nodeProc) start(ctx context.Context, env Env, self string) error {
	cmd := exec.CommandContext(context.WithoutCancel(ctx), self, n.args...)
	cmd.Stderr = env.Stderr
	orphanProof(cmd)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", n.name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	url, err := awaitNode(out)
	if err != nil {
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("%s: %w", n.name, err)
	}
	go func() { _, _ = bufio.NewReader(out).WriteTo(env.Stdout) }()
	n.cmd, n.exited, n.url = cmd, exited, url
	return nil
}

// stop ends the node with SIGTERM (its graceful drain) and waits for it.
func (n *nodeProc) stop() {
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	<-n.exited
	n.cmd = nil
}

func (n *nodeProc) running() bool {
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// awaitReady waits until the node's /readyz answers 200 (its subscriptions
// deliver), within a minute.
func awaitReady(ctx context.Context, url string) error {
	deadline := time.Now().Add(time.Minute)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s not ready after a minute", url)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func runClusterDemo(ctx context.Context, env Env, d clusterDemo) (int, error) {
	self, err := os.Executable()
	if err != nil {
		return 1, err
	}
	var wg sync.WaitGroup
	var backendErr error
	wg.Go(func() {
		if err := d.backend.Serve(d.backendLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			backendErr = err
		}
	})
	defer func() {
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = d.backend.Shutdown(shutdownCtx)
		wg.Wait()
	}()

	var nodes []*nodeProc
	stopAll := func() {
		for _, n := range nodes {
			if n.cmd != nil {
				_ = n.cmd.Process.Signal(syscall.SIGTERM)
			}
		}
		for _, n := range nodes {
			n.stop()
		}
	}
	for i, ln := range d.nodes {
		name := "node" + strconv.Itoa(i+1)
		addr := ln.Addr().String()
		ln.Close() // the node process binds it again
		args := []string{"demo", "--node", name, "--listen", addr, "--data", d.dataDir, "--backend-url", d.backendURL, "--redis", d.redisURL}
		if d.configPath != "" {
			args = append(args, "--config", d.configPath)
		}
		for _, s := range d.sets {
			args = append(args, "--set", s)
		}
		n := &nodeProc{name: name, addr: addr, args: args}
		if err := n.start(ctx, env, self); err != nil {
			stopAll()
			return 1, err
		}
		nodes = append(nodes, n)
	}
	path := filepath.Join(d.dataDir, "cluster.json")
	writeFile := func() error {
		file := ClusterFile{Backend: d.backendURL, ServerAPIKeyFile: filepath.Join(d.dataDir, serverAPIKeyFile)}
		for _, n := range nodes {
			pid := 0
			if n.cmd != nil {
				pid = n.cmd.Process.Pid
			}
			file.Nodes = append(file.Nodes, ClusterNode{Name: n.name, URL: n.url, PID: pid})
		}
		b, _ := json.MarshalIndent(file, "", "  ") // plain strings and ints always marshal
		return os.WriteFile(path, append(b, '\n'), 0o644)
	}
	if err := writeFile(); err != nil {
		stopAll()
		return 1, err
	}
	fmt.Fprintf(env.Stdout, "ECB demo ready (cluster mode, %d nodes sharing %s): open %s/ and log in as alice and bob (password = user name)\n",
		len(nodes), d.redisURL, nodes[0].url)
	for _, n := range nodes {
		fmt.Fprintf(env.Stdout, "  %s: %s  (pid %d)\n", n.name, n.url, n.cmd.Process.Pid)
	}
	fmt.Fprintf(env.Stdout, "  reference backend: %s  (POST /login, contract at /ecb/v1)\n", d.backendURL)
	fmt.Fprintf(env.Stdout, "  nodes and pids:    %s\n", path)
	fmt.Fprintf(env.Stdout, "Press Ctrl+C to stop; kill -HUP %d restarts the nodes one by one (a rolling restart).\n", os.Getpid())

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	down := map[string]bool{}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			stopAll()
			if backendErr != nil {
				return 1, backendErr
			}
			fmt.Fprintln(env.Stdout, "ECB demo stopped.")
			return 0, nil
		case <-tick.C:
			running := 0
			for _, n := range nodes {
				if n.running() {
					running++
				} else if !down[n.name] {
					down[n.name] = true
					d.log.Warn("ECB demo: a node is down (it stays down until a rolling restart, kill -HUP, or the demo is restarted)", "node", n.name)
				}
			}
			if running == 0 {
				if backendErr != nil {
					return 1, backendErr
				}
				fmt.Fprintln(env.Stdout, "ECB demo stopped: every node is down.")
				return 0, nil
			}
		case <-hup:
			// A rolling restart: each node drains (SIGTERM) and comes back on
			// its address and name before the next one goes, so that the
			// clients always have nodes to reconnect to.
			for _, n := range nodes {
				n.stop()
				if err := n.start(ctx, env, self); err != nil {
					stopAll()
					return 1, err
				}
				if err := awaitReady(ctx, n.url); err != nil {
					stopAll()
					return 1, err
				}
				delete(down, n.name)
				if err := writeFile(); err != nil {
					stopAll()
					return 1, err
				}
				fmt.Fprintf(env.Stdout, "ECB demo: %s restarted (pid %d)\n", n.name, n.cmd.Process.Pid)
			}
			fmt.Fprintln(env.Stdout, "ECB demo: rolling restart done")
		}
	}
}

// nodeReadyPrefix starts the line a node process prints when it serves.
const nodeReadyPrefix = "ECB node ready: "

// awaitNode reads a node process's output until it says it serves, and
// returns its URL.
func awaitNode(out interface{ Read([]byte) (int, error) }) (string, error) {
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if url, ok := strings.CutPrefix(sc.Text(), nodeReadyPrefix); ok {
			return url, nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", errors.New("exited before it served (see its log above)")
}

type demoNodeOptions struct {
	name, listen, dataDir, backendURL, redisURL, configPath string
	sets                                                    []string
}

// runDemoNode runs one ECB node of a `--nodes` demo, in cluster mode.
func runDemoNode(ctx context.Context, env Env, o demoNodeOptions) (int, error) {
	secret, err := os.ReadFile(filepath.Join(o.dataDir, secretFile))
	if err != nil {
		return 1, err
	}
	apiKey, err := ensureServerAPIKey(o.dataDir)
	if err != nil {
		return 1, err
	}
	sets := append([]string{"cluster.redisURL=" + o.redisURL, "cluster.nodeName=" + o.name}, o.sets...)
	cfg, err := demoConfig(o.dataDir, o.listen, o.backendURL, strings.TrimSpace(string(secret)), apiKey, o.configPath, sets)
	if err != nil {
		return 2, err
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return 1, fmt.Errorf("--listen: %w", err)
	}
	log := slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("component", "ecb")
	srv, err := server.New(ctx, cfg, server.Options{Listener: ln, Web: demoWeb(o.backendURL, o.name), Logger: log, Versions: versions()})
	if err != nil {
		ln.Close()
		return 1, err
	}
	fmt.Fprintf(env.Stdout, "%shttp://%s\n", nodeReadyPrefix, ln.Addr().String())
	if err := srv.Run(ctx); err != nil {
		return 1, err
	}
	return 0, nil
}
