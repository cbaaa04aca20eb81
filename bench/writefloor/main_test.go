//go:build unix

package main

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	beReaderIfAsked()
	os.Exit(m.Run())
}

// TestEveryFrameReachesTheReader runs the measurement at a small size: the
// reader process must have read every byte written, which run checks, and
// the figures must be those of the frames asked for.
func TestEveryFrameReachesTheReader(t *testing.T) {
	res, err := run(8, 420, 2, 4, 0, 96)
	if err != nil {
		t.Fatal(err)
	}
	if res.Frames != 96 || res.Writes != 48 || res.BytesReadByReader != 96*420 {
		t.Fatalf("got %+v, want 96 frames in 48 writes, %d bytes read", res, 96*420)
	}
	if res.WriterCPUUsPerFr < 0 || res.WriterSysShare > 1 {
		t.Fatalf("figures out of range: %+v", res)
	}
}

func TestRefusesNonsense(t *testing.T) {
	if _, err := run(0, 420, 1, 1, 0, 10); err == nil {
		t.Fatal("no connections: want an error")
	}
}

// TestNullSyscallIsMeasured: 200,000 calls take CPU time that rusage sees
// (its granularity is far below that), so the figure is never a zero from
// a loop that did not run.
func TestNullSyscallIsMeasured(t *testing.T) {
	if us := nullSyscallUs(200000); us <= 0 {
		t.Fatalf("null system call: %v µs", us)
	}
}
