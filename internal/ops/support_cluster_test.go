package ops

import (
	"slices"
	"testing"
	"time"
)

// The owner's connection table: users are back when they connect on any
// node, gone only when no node has a connection left; reports older than
// the last one of their node are ignored; a restarted node (new epoch)
// starts afresh; a node not heard of is forgotten.
func TestConnTable(t *testing.T) {
	tab := newConnTable()
	t0 := time.Unix(1000, 0)
	msg := func(node, epoch string, seq uint64, full bool, users map[string]int) supportCall {
		return supportCall{Method: "Conn", Node: node, Epoch: epoch, Seq: seq, Full: full, Users: users}
	}
	check := func(what string, gotBack, gotGone, wantBack, wantGone []string) {
		t.Helper()
		slices.Sort(gotBack)
		slices.Sort(gotGone)
		if !slices.Equal(gotBack, wantBack) || !slices.Equal(gotGone, wantGone) {
			t.Fatalf("%s: back %v gone %v, want %v %v", what, gotBack, gotGone, wantBack, wantGone)
		}
	}
	b, g := tab.apply(msg("A", "1", 1, true, map[string]int{"v": 1, "a": 2}), t0)
	check("A's first report", b, g, []string{"a", "v"}, nil)
	b, g = tab.apply(msg("B", "1", 1, false, map[string]int{"v": 1}), t0)
	check("v on B too", b, g, []string{"v"}, nil)
	b, g = tab.apply(msg("A", "1", 2, false, map[string]int{"v": 0}), t0)
	check("v leaves A, still on B", b, g, nil, nil)
	b, g = tab.apply(msg("A", "1", 2, false, map[string]int{"a": 0}), t0)
	check("a stale report", b, g, nil, nil)
	if !tab.known("a") {
		t.Fatal("a stale report was applied")
	}
	b, g = tab.apply(msg("A", "1", 3, true, map[string]int{}), t0)
	check("A's full report without a", b, g, nil, []string{"a"})
	b, g = tab.apply(msg("A", "2", 1, true, map[string]int{"a": 1}), t0)
	check("A restarted", b, g, []string{"a"}, nil)
	gone := tab.expire(t0.Add(10*time.Second), 3*time.Second)
	slices.Sort(gone)
	if !slices.Equal(gone, []string{"a", "v"}) || tab.known("v") {
		t.Fatalf("expired: %v", gone)
	}
}
