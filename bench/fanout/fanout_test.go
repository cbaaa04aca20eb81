package fanout_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/ecbridge/ecb/bench/fanout"
	"github.com/ecbridge/ecb/internal/cli"
)

// TestMain lets `ecb bench fanout` re-execute this test binary as its ECB
// server child, as it re-executes the ecb binary.
func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == "bench" && os.Args[2] == "fanout-server" {
		os.Exit(cli.Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = cli.MainEnv(t.Context(), args, cli.Env{Stdout: &out, Stderr: &errb})
	return code, out.String(), errb.String()
}

// The ECB target end to end: child server, 20 clients, every delivery
// counted. Correctness only: no timing is asserted. (The Node target needs
// npm packages: it is a measurement tool, not part of the suite.)
func TestFanOutECBDeliversEveryMessage(t *testing.T) {
	code, out, errs := runCLI(t, "bench", "fanout", "--target", "ecb", "--clients", "20", "--messages", "20", "--timeout", "2m")
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1 {
		t.Fatalf("want one JSON line, got %q", out)
	}
	var r fanout.Result
	if err := json.Unmarshal([]byte(lines[0]), &r); err != nil {
		t.Fatalf("%v: %s", err, lines[0])
	}
	if r.Target != "ecb" || r.Clients != 20 || r.Messages != 20 || r.Deliveries != 400 || r.Lost != 0 || r.Duplicates != 0 || r.Error != "" {
		t.Fatalf("result %+v", r)
	}
	if r.ECB == nil || r.ECB.Dropped != 0 {
		t.Fatalf("server stats %+v", r.ECB)
	}
	if r.DeliveriesPerSec <= 0 || r.P50ms < 0 || r.P99ms < r.P50ms || r.Maxms < r.P99ms {
		t.Fatalf("inconsistent figures %+v", r)
	}
}

func TestBenchUsage(t *testing.T) {
	for _, args := range [][]string{
		{"bench"},
		{"bench", "nope"},
		{"bench", "fanout", "--target", "deno"},
		{"bench", "fanout", "--clients", "0"},
		{"bench", "fanout", "extra"},
	} {
		if code, _, errs := runCLI(t, args...); code != 2 || !strings.Contains(errs, "usage: ecb bench") {
			t.Errorf("%q: exit %d, %s", args, code, errs)
		}
	}
}
