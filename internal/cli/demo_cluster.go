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
// script can kill one with SIGKILL. A killed node stays down.

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

	file := ClusterFile{Backend: d.backendURL, ServerAPIKeyFile: filepath.Join(d.dataDir, serverAPIKeyFile)}
	var procs []*exec.Cmd
	stopAll := func() {
		for _, p := range procs {
			_ = p.Process.Signal(syscall.SIGTERM)
		}
		for _, p := range procs {
			_ = p.Wait()
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
		cmd := exec.CommandContext(context.WithoutCancel(ctx), self, args...)
		cmd.Stderr = env.Stderr
		orphanProof(cmd)
		out, err := cmd.StdoutPipe()
		if err != nil {
			stopAll()
			return 1, err
		}
		if err := cmd.Start(); err != nil {
			stopAll()
			return 1, fmt.Errorf("start %s: %w", name, err)
		}
		procs = append(procs, cmd)
		url, err := awaitNode(out)
		if err != nil {
			stopAll()
			return 1, fmt.Errorf("%s: %w", name, err)
		}
		go func() { _, _ = bufio.NewReader(out).WriteTo(env.Stdout) }()
		file.Nodes = append(file.Nodes, ClusterNode{Name: name, URL: url, PID: cmd.Process.Pid})
	}
	b, _ := json.MarshalIndent(file, "", "  ") // plain strings and ints always marshal
	path := filepath.Join(d.dataDir, "cluster.json")
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		stopAll()
		return 1, err
	}
	fmt.Fprintf(env.Stdout, "ECB demo ready (cluster mode, %d nodes sharing %s): open %s/ and log in as alice and bob (password = user name)\n",
		len(file.Nodes), d.redisURL, file.Nodes[0].URL)
	for _, n := range file.Nodes {
		fmt.Fprintf(env.Stdout, "  %s: %s  (pid %d)\n", n.Name, n.URL, n.PID)
	}
	fmt.Fprintf(env.Stdout, "  reference backend: %s  (POST /login, contract at /ecb/v1)\n", d.backendURL)
	fmt.Fprintf(env.Stdout, "  nodes and pids:    %s\n", path)
	fmt.Fprintln(env.Stdout, "Press Ctrl+C to stop.")

	exited := make(chan string, len(procs))
	for i, p := range procs {
		go func() {
			err := p.Wait()
			exited <- fmt.Sprintf("%s exited: %v", file.Nodes[i].Name, err)
		}()
	}
	running := len(procs)
	for running > 0 {
		select {
		case msg := <-exited:
			running--
			d.log.Warn("ECB demo: a node is down (it stays down until the demo is restarted)", "detail", msg)
		case <-ctx.Done():
			for _, p := range procs {
				_ = p.Process.Signal(syscall.SIGTERM)
			}
			for running > 0 {
				<-exited
				running--
			}
		}
	}
	if backendErr != nil {
		return 1, backendErr
	}
	fmt.Fprintln(env.Stdout, "ECB demo stopped.")
	return 0, nil
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
