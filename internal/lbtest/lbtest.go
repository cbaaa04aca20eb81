// Package lbtest runs the real load balancers that ECB ships configurations
// for (deploy/nginx/ecb.conf, deploy/haproxy/ecb.cfg) in front of test
// upstreams. It owns those child processes: Start renders the shipped file
// (only the upstream servers, the listen address and the paths change), runs
// nginx or HAProxy in the foreground in a temporary directory, waits until
// its port accepts, and stops it (its whole process group) when the test
// ends. It is test support: nothing in ECB imports it outside tests.
//
// Under CI=true a missing nginx or haproxy binary fails the test; elsewhere
// the test is skipped. Debian's packages are nginx-light (or nginx) and
// haproxy.
//
// In front of ECB nodes: HAProxy checks each node's /readyz every 2s and
// takes a node out after 2 failed checks (back after 2 good ones), so a
// draining or restarting node is out within about 4s; nginx has no active
// check: a node that refuses connections, or answers a Socket.IO/SSE GET with
// 503, is skipped for that request and left out for 10s after 3 such
// failures. Both pass a new session's GET that a draining node refused (503)
// to the next node. The child processes are in a process group of their own
// and, on Linux, get SIGTERM when the test binary dies.
package lbtest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// kinds are the balancers Start knows.
var kinds = []string{"nginx", "haproxy"}

// Start runs a real load balancer of the given kind ("nginx" or "haproxy")
// with the configuration shipped under deploy/ (rendered with upstreams and
// a free 127.0.0.1 port), in the foreground as a child process, and stops it
// when tb ends. It returns the balancer's base URL, e.g.
// "http://127.0.0.1:43121". Under CI=true (env CI=="true") a missing
// nginx/haproxy binary fails tb; otherwise tb is skipped.
func Start(tb testing.TB, kind string, upstreams []string) string {
	tb.Helper()
	bin := binary(tb, kind)
	var lastErr error
	// A free port can be taken by someone else between the probe and the
	// balancer's bind: try again with another one.
	for range 3 {
		addr, err := start(tb, kind, bin, upstreams)
		if err == nil {
			return "http://" + addr
		}
		lastErr = err
		if !errors.Is(err, errAddrInUse) {
			break
		}
	}
	tb.Fatalf("lbtest: %s: %v", kind, lastErr)
	return ""
}

// errAddrInUse says the balancer could not bind its port.
var errAddrInUse = errors.New("lbtest: address already in use")

// sbin is where Debian installs nginx and haproxy (a variable for the test
// of a missing binary).
var sbin = "/usr/sbin"

// binary finds the balancer's executable, failing tb under CI=true and
// skipping it otherwise when there is none.
func binary(tb testing.TB, kind string) string {
	tb.Helper()
	switch kind {
	case "nginx", "haproxy":
	default:
		tb.Fatalf("lbtest: unknown balancer %q (expected nginx or haproxy)", kind)
	}
	if p, err := exec.LookPath(kind); err == nil {
		return p
	}
	// Debian puts both in /usr/sbin, which a non-root PATH may lack.
	p := filepath.Join(sbin, kind)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	pkg := map[string]string{"nginx": "nginx-light", "haproxy": "haproxy"}[kind]
	if os.Getenv("CI") == "true" {
		tb.Fatalf("lbtest: %s is required under CI=true and is not installed (apt-get install -y %s)", kind, pkg)
	}
	tb.Skipf("lbtest: no %s binary (apt-get install -y %s)", kind, pkg)
	return ""
}

// start renders the configuration into a fresh directory, runs the balancer
// and waits until its port accepts. The process is stopped when tb ends.
func start(tb testing.TB, kind, bin string, upstreams []string) (string, error) {
	tb.Helper()
	// A short directory of our own rather than tb.TempDir: HAProxy's stats
	// socket is a unix socket, whose path must stay under 108 bytes.
	dir, err := os.MkdirTemp("", "lbtest-"+kind+"-")
	if err != nil {
		return "", fmt.Errorf("temp dir: %w", err)
	}
	tb.Cleanup(func() { _ = os.RemoveAll(dir) })
	addr, err := freeAddr()
	if err != nil {
		return "", err
	}
	file, err := render(kind, dir, addr, upstreams)
	if err != nil {
		return "", err
	}
	var args []string
	switch kind {
	case "nginx":
		args = []string{"-p", dir, "-c", file, "-e", filepath.Join(dir, "error.log"), "-g", "daemon off;"}
	case "haproxy":
		args = []string{"-f", file, "-db"}
	}
	logPath := filepath.Join(dir, "output.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return "", fmt.Errorf("log file: %w", err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	ownProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return "", fmt.Errorf("start %s: %w", bin, err)
	}
	// The one owner of cmd.Wait: exited is closed when the process ended.
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		_ = logFile.Close()
		close(exited)
	}()
	tb.Cleanup(func() {
		stopGroup(cmd, exited)
		if tb.Failed() {
			tb.Logf("lbtest: %s output:\n%s", kind, logs(dir))
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-exited:
			out := logs(dir)
			if strings.Contains(out, "in use") {
				return "", fmt.Errorf("%w: %s", errAddrInUse, out)
			}
			return "", fmt.Errorf("%s exited before accepting on %s (%s):\n%s", kind, addr, cmd.ProcessState, out)
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			_ = c.Close()
			return addr, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s does not accept on %s after 10s:\n%s", kind, addr, logs(dir))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// render writes the shipped configuration of kind, rendered for upstreams
// and the listen address addr with every path under dir, to a file in dir
// and returns its path.
func render(kind, dir, addr string, upstreams []string) (string, error) {
	src, err := os.ReadFile(shippedFile(kind))
	if err != nil {
		return "", fmt.Errorf("lbtest: shipped config: %w", err)
	}
	var out []byte
	var name string
	switch kind {
	case "nginx":
		name = "nginx.conf"
		if err := os.MkdirAll(filepath.Join(dir, "temp"), 0o755); err != nil {
			return "", fmt.Errorf("lbtest: %w", err)
		}
		out, err = renderNginx(src, addr, upstreams, dir, os.Geteuid() == 0)
	case "haproxy":
		name = "haproxy.cfg"
		out, err = renderHAProxy(src, addr, upstreams, dir)
	default:
		return "", fmt.Errorf("lbtest: unknown balancer %q", kind)
	}
	if err != nil {
		return "", fmt.Errorf("lbtest: render %s: %w", shippedFile(kind), err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, out, 0o644); err != nil {
		return "", fmt.Errorf("lbtest: %w", err)
	}
	return path, nil
}

// shippedFile is the path of the configuration of kind shipped under deploy/.
func shippedFile(kind string) string {
	switch kind {
	case "nginx":
		return filepath.Join(repoRoot(), "deploy", "nginx", "ecb.conf")
	case "haproxy":
		return filepath.Join(repoRoot(), "deploy", "haproxy", "ecb.cfg")
	}
	return ""
}

// repoRoot is the directory of ECB's go.mod, found upwards from this file.
func repoRoot() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "."
	}
	for dir := filepath.Dir(file); ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		if filepath.Dir(dir) == dir {
			return "."
		}
	}
}

// freeAddr returns a 127.0.0.1 address whose port was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("lbtest: free port: %w", err)
	}
	defer l.Close()
	return "127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port), nil
}

// logs returns what the balancer wrote: its output and its error log.
func logs(dir string) string {
	var b bytes.Buffer
	for _, name := range []string{"output.log", "error.log"} {
		if raw, err := os.ReadFile(filepath.Join(dir, name)); err == nil && len(raw) > 0 {
			fmt.Fprintf(&b, "--- %s\n%s", name, raw)
		}
	}
	return b.String()
}
