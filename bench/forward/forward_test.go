package forward_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"testing"

	"github.com/ecbridge/ecb/bench/forward"
	"github.com/ecbridge/ecb/internal/cli"
	"github.com/ecbridge/ecb/internal/redistest"
)

// TestMain lets the benchmark's `ecb demo --nodes 2` (and the node
// processes it starts) re-execute this test binary as the ecb binary.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "demo" {
		os.Exit(cli.Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// A tiny run end to end on the real Redis: both kinds of cycle complete and
// the line says so. Correctness only: no timing is asserted.
func TestForwardBenchRuns(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var out, log bytes.Buffer
	if err := forward.Run(t.Context(), forward.Config{ECB: self, RedisURL: redistest.URL(t), Cycles: 20}, &out, &log); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	var r forward.Result
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("not one JSON line: %q", out.String())
	}
	if r.Cycles != 20 || r.DirectP50 <= 0 || r.ViaP50 <= 0 {
		t.Fatalf("result %+v", r)
	}
}
