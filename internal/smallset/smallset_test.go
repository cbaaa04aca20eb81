package smallset

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestSetBehavesAsAMap drives a Set and a map with the same random
// operations, across the spill size both ways, and compares them after
// every step.
func TestSetBehavesAsAMap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var s Set[int]
	m := map[int]struct{}{}
	for step := range 20000 {
		v := r.IntN(3 * spill)
		if r.IntN(2) == 0 {
			_, had := m[v]
			m[v] = struct{}{}
			if got := s.Add(v); got == had {
				t.Fatalf("step %d: Add(%d) = %v with the value present %v", step, v, got, had)
			}
		} else {
			_, had := m[v]
			delete(m, v)
			if got := s.Remove(v); got != had {
				t.Fatalf("step %d: Remove(%d) = %v, want %v", step, v, got, had)
			}
		}
		if s.Len() != len(m) {
			t.Fatalf("step %d: Len %d, want %d", step, s.Len(), len(m))
		}
		if probe := r.IntN(3 * spill); s.Has(probe) != (func() bool { _, ok := m[probe]; return ok })() {
			t.Fatalf("step %d: Has(%d) disagrees with the map", step, probe)
		}
	}
	got := slices.Sorted(s.All())
	want := make([]int, 0, len(m))
	for v := range m {
		want = append(want, v)
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("All = %v, want %v", got, want)
	}
}

func TestZeroSetIsEmptyAndSpillsAndShrinks(t *testing.T) {
	var s Set[string]
	if s.Len() != 0 || s.Has("a") || s.Remove("a") {
		t.Fatal("the zero Set is not empty")
	}
	for i := range spill + 2 { // the first in the Set itself, spill+1 beside it
		s.Add(string(rune('a' + i)))
	}
	if s.more == nil || s.more.many == nil || s.more.few != nil {
		t.Fatalf("a Set of %d did not spill into a map", spill+2)
	}
	for i := range spill + 2 {
		if !s.Remove(string(rune('a' + i))) {
			t.Fatalf("Remove of member %d failed", i)
		}
	}
	if s.more != nil || s.one != "" || s.Len() != 0 {
		t.Fatal("an emptied Set still holds storage or a member")
	}
}

// The usual Set, of one member, allocates nothing; back to one member, it
// drops what held the others.
func TestSetOfOneAllocatesNothing(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() {
		var s Set[string]
		s.Add("thread")
		if !s.Has("thread") || s.Len() != 1 {
			t.Fatal("lost its member")
		}
	}); n != 0 {
		t.Fatalf("a Set of one allocated %v times", n)
	}
	var s Set[string]
	s.Add("a")
	s.Add("b")
	s.Remove("a")
	if s.more != nil || s.one != "b" || s.Len() != 1 {
		t.Fatalf("a Set back to one member: one %q, more %v, len %d", s.one, s.more, s.Len())
	}
}

func TestAllStopsWhenAsked(t *testing.T) {
	for _, n := range []int{3, spill + 5} {
		var s Set[int]
		for i := range n {
			s.Add(i)
		}
		seen := 0
		for range s.All() {
			seen++
			if seen == 2 {
				break
			}
		}
		if seen != 2 {
			t.Fatalf("n=%d: All went on after break (%d)", n, seen)
		}
	}
}

// BenchmarkSetOfOne and BenchmarkMapOfOne compare the memory of the common
// case, a set holding one member: go test -bench 'OfOne' -benchmem.
func BenchmarkSetOfOne(b *testing.B) {
	keep := make([]Set[string], b.N)
	for i := range b.N {
		keep[i].Add("thread")
	}
}

func BenchmarkMapOfOne(b *testing.B) {
	keep := make([]map[string]struct{}, b.N)
	for i := range b.N {
		keep[i] = map[string]struct{}{"thread": {}}
	}
}

func TestAddToAndRemoveFromKeepTheMapTidy(t *testing.T) {
	m := map[string]Set[int]{}
	AddTo(m, "u", 1)
	AddTo(m, "u", 2)
	AddTo(m, "v", 1)
	if s := m["u"]; s.Len() != 2 || !s.Has(1) || !s.Has(2) {
		t.Fatalf("u's set after two adds: %v", slices.Sorted(s.All()))
	}
	RemoveFrom(m, "u", 1)
	RemoveFrom(m, "w", 1) // no such key: nothing happens
	if s := m["u"]; s.Len() != 1 || s.Has(1) {
		t.Fatalf("u's set after a remove: %v", slices.Sorted(s.All()))
	}
	RemoveFrom(m, "u", 2)
	if _, ok := m["u"]; ok || len(m) != 1 {
		t.Fatalf("an emptied set stays in the map: %v", m)
	}
}

// T's zero value is a member like any other: it is held beside the first
// member, and stays when the first goes.
func TestZeroValueIsAMember(t *testing.T) {
	var s Set[int]
	s.Add(5)
	if !s.Add(0) || !s.Has(0) || s.Len() != 2 {
		t.Fatalf("0 was not added beside 5: len %d", s.Len())
	}
	if !s.Remove(5) || !s.Has(0) || s.Has(5) || s.Len() != 1 {
		t.Fatalf("removing 5 lost 0 or kept 5: len %d", s.Len())
	}
	if got := slices.Collect(s.All()); !slices.Equal(got, []int{0}) {
		t.Fatalf("All = %v, want [0]", got)
	}
	if !s.Remove(0) || s.Len() != 0 || s.more != nil {
		t.Fatalf("the emptied Set holds len %d, more %v", s.Len(), s.more)
	}
}
