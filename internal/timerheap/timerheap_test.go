package timerheap

import (
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

type item struct {
	id    int
	entry Entry
}

func (it *item) TimerEntry() *Entry { return &it.entry }

// recorder records what fired and when, in the bubble's fake time.
type recorder struct {
	mu    sync.Mutex
	start time.Time
	fired []fired
}

type fired struct {
	id int
	at time.Duration
}

func newRecorder() *recorder { return &recorder{start: time.Now()} }

func (r *recorder) fire(it *item) {
	r.mu.Lock()
	r.fired = append(r.fired, fired{it.id, time.Since(r.start)})
	r.mu.Unlock()
}

func (r *recorder) get() []fired {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]fired(nil), r.fired...)
}

func TestFiresInOrderAtItsDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder()
		h := New(r.fire)
		a, b, c := &item{id: 1}, &item{id: 2}, &item{id: 3}
		h.Schedule(b, 2*time.Second)
		h.Schedule(a, time.Second)
		h.Schedule(c, 3*time.Second)
		if h.Len() != 3 {
			t.Fatalf("Len = %d, want 3", h.Len())
		}
		time.Sleep(999 * time.Millisecond)
		synctest.Wait()
		if got := r.get(); len(got) != 0 {
			t.Fatalf("fired before its deadline: %v", got)
		}
		time.Sleep(5 * time.Second)
		synctest.Wait()
		got := r.get()
		want := []fired{{1, time.Second}, {2, 2 * time.Second}, {3, 3 * time.Second}}
		if len(got) != len(want) {
			t.Fatalf("fired %v, want %v", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("fired %v, want %v", got, want)
			}
		}
		if h.Len() != 0 {
			t.Fatalf("Len = %d after every deadline, want 0", h.Len())
		}
	})
}

func TestScheduleMovesAndStopCancels(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder()
		h := New(r.fire)
		a, b, c := &item{id: 1}, &item{id: 2}, &item{id: 3}
		h.Schedule(a, time.Second)
		h.Schedule(b, 2*time.Second)
		h.Schedule(c, 3*time.Second)
		h.Schedule(a, 4*time.Second)        // later
		h.Schedule(c, 500*time.Millisecond) // earlier than the timer was set for
		if !h.Stop(b) {
			t.Fatal("Stop of a scheduled item reported false")
		}
		if h.Stop(b) {
			t.Fatal("a second Stop reported true")
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		got := r.get()
		want := []fired{{3, 500 * time.Millisecond}, {1, 4 * time.Second}}
		if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
			t.Fatalf("fired %v, want %v", got, want)
		}
		if h.Stop(a) {
			t.Fatal("Stop of a fired item reported true")
		}
	})
}

// TestFireMayReschedule is the heartbeat's pattern: fire schedules the
// same item again.
func TestFireMayReschedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var h *Heap[*item]
		var mu sync.Mutex
		n := 0
		h = New(func(it *item) {
			mu.Lock()
			n++
			again := n < 5
			mu.Unlock()
			if again {
				h.Schedule(it, time.Second)
			}
		})
		h.Schedule(&item{}, time.Second)
		time.Sleep(time.Minute)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if n != 5 {
			t.Fatalf("fired %d times, want 5", n)
		}
	})
}

// TestManyFireOnceEachInOrder schedules more items than one batch takes,
// some rescheduled and some stopped, and checks that every remaining one
// fires once, at its deadline, in deadline order.
func TestManyFireOnceEachInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder()
		h := New(r.fire)
		rng := rand.New(rand.NewPCG(1, 2))
		const n = 3 * maxBatch
		items := make([]*item, n)
		want := map[int]time.Duration{}
		for i := range items {
			items[i] = &item{id: i}
			d := time.Duration(rng.IntN(20)) * time.Second // many share a deadline
			h.Schedule(items[i], d)
			want[i] = d
		}
		for i := 0; i < n; i += 7 {
			d := time.Duration(rng.IntN(20)) * time.Second
			h.Schedule(items[i], d)
			want[i] = d
		}
		for i := 3; i < n; i += 11 {
			h.Stop(items[i])
			delete(want, i)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		got := r.get()
		if len(got) != len(want) {
			t.Fatalf("%d fired, want %d", len(got), len(want))
		}
		seen := map[int]bool{}
		for i, f := range got {
			if seen[f.id] {
				t.Fatalf("item %d fired twice", f.id)
			}
			seen[f.id] = true
			if f.at != want[f.id] {
				t.Fatalf("item %d fired at %v, want %v", f.id, f.at, want[f.id])
			}
			if i > 0 && f.at < got[i-1].at {
				t.Fatalf("item %d (%v) fired after item %d (%v)", f.id, f.at, got[i-1].id, got[i-1].at)
			}
		}
		if h.Len() != 0 {
			t.Fatalf("Len = %d, want 0", h.Len())
		}
	})
}

func TestCloseFiresNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder()
		h := New(r.fire)
		a := &item{id: 1}
		h.Schedule(a, time.Second)
		h.Close()
		h.Schedule(&item{id: 2}, time.Second) // after Close: ignored
		time.Sleep(time.Minute)
		synctest.Wait()
		if got := r.get(); len(got) != 0 {
			t.Fatalf("fired after Close: %v", got)
		}
		if h.Stop(a) || h.Len() != 0 {
			t.Fatal("an item is still scheduled after Close")
		}
	})
}

func BenchmarkScheduleReschedule(b *testing.B) {
	h := New(func(*item) {})
	defer h.Close()
	items := make([]*item, 20000)
	for i := range items {
		items[i] = &item{id: i}
		h.Schedule(items[i], time.Hour+time.Duration(i))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		h.Schedule(items[i%len(items)], time.Hour+time.Duration(i))
	}
}

// TestScheduledTellsAStaleFire: an item is not scheduled while its fire
// runs, unless it was scheduled again meanwhile.
func TestScheduledTellsAStaleFire(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var h *Heap[*item]
		var mu sync.Mutex
		var during []bool
		h = New(func(it *item) {
			mu.Lock()
			during = append(during, h.Scheduled(it))
			mu.Unlock()
		})
		a := &item{id: 1}
		if h.Scheduled(a) {
			t.Fatal("a new item is scheduled")
		}
		h.Schedule(a, time.Second)
		if !h.Scheduled(a) {
			t.Fatal("a scheduled item is not")
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		mu.Lock()
		got := append([]bool(nil), during...)
		mu.Unlock()
		if len(got) != 1 || got[0] {
			t.Fatalf("Scheduled during its fire: %v, want [false]", got)
		}
		h.Schedule(a, time.Second)
		h.Stop(a)
		if h.Scheduled(a) {
			t.Fatal("a stopped item is scheduled")
		}
	})
}
