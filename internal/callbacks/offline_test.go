package callbacks_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ecbridge/ecb/internal/callbacks"
)

type flushed struct {
	mu      sync.Mutex
	batches []callbacks.OfflineBatch
	at      []time.Time
}

func (f *flushed) flush(_ context.Context, b callbacks.OfflineBatch) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.batches = append(f.batches, b)
	f.at = append(f.at, time.Now())
}

func (f *flushed) get() []callbacks.OfflineBatch {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.batches)
}

type batchFailures struct {
	mu  sync.Mutex
	got map[string]int
}

func (o *batchFailures) CallbackFailed(typ, reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.got == nil {
		o.got = map[string]int{}
	}
	o.got[typ+" "+reason]++
}

func (o *batchFailures) count(key string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.got[key]
}

// The messages of one thread within the window make one batch, handed over
// when the window (from the first message) ends; another thread and the
// whispers of the same thread make their own; a message after the window
// opens the next batch.
func TestBatcherWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var f flushed
		b := callbacks.NewBatcher(t.Context(), callbacks.BatcherConfig{Window: 2 * time.Second}, f.flush)
		start := time.Now()
		b.Add(callbacks.OfflineNote{ThreadID: "t1", MessageID: "m1", AuthorID: "alice", Mentions: []string{"carol", "alice"}})
		time.Sleep(500 * time.Millisecond)
		b.Add(callbacks.OfflineNote{ThreadID: "t1", MessageID: "m2", AuthorID: "bob", Mentions: []string{"dave"}})
		b.Add(callbacks.OfflineNote{ThreadID: "t2", MessageID: "x1", AuthorID: "alice"})
		b.Add(callbacks.OfflineNote{ThreadID: "t1", MessageID: "w1", AuthorID: "agent", Whisper: true})
		time.Sleep(1499 * time.Millisecond)
		synctest.Wait()
		if got := f.get(); len(got) != 0 {
			t.Fatalf("flushed before the window ended: %+v", got)
		}
		time.Sleep(time.Millisecond) // 2s after m1
		synctest.Wait()
		got := f.get()
		if len(got) != 1 {
			t.Fatalf("at the end of t1's window: %d batches %+v", len(got), got)
		}
		b1 := got[0]
		if b1.ThreadID != "t1" || b1.Whisper || !slices.Equal(b1.MessageIDs, []string{"m1", "m2"}) || b1.Count != 2 ||
			!slices.Equal(b1.Authors, []string{"alice", "bob"}) || b1.SoleAuthor() != "" || b1.LastMessageID() != "m2" ||
			!slices.Equal(b1.Mentioned, []string{"carol", "dave"}) { // alice mentioned herself: dropped
			t.Fatalf("t1's batch: %+v", b1)
		}
		f.mu.Lock()
		d := f.at[0].Sub(start)
		f.mu.Unlock()
		if d != 2*time.Second {
			t.Fatalf("t1 flushed after %v", d)
		}
		time.Sleep(500 * time.Millisecond)
		synctest.Wait()
		got = f.get()
		if len(got) != 3 {
			t.Fatalf("at the end of the others' windows: %d batches", len(got))
		}
		byKey := map[string]callbacks.OfflineBatch{}
		for _, x := range got[1:] {
			byKey[fmt.Sprintf("%s %v", x.ThreadID, x.Whisper)] = x
		}
		if x := byKey["t2 false"]; !slices.Equal(x.MessageIDs, []string{"x1"}) || x.SoleAuthor() != "alice" {
			t.Fatalf("t2's batch: %+v", x)
		}
		if x := byKey["t1 true"]; !slices.Equal(x.MessageIDs, []string{"w1"}) || x.SoleAuthor() != "agent" {
			t.Fatalf("t1's whisper batch: %+v", x)
		}
		b.Add(callbacks.OfflineNote{ThreadID: "t1", MessageID: "m3", AuthorID: "alice"})
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if got = f.get(); len(got) != 4 || !slices.Equal(got[3].MessageIDs, []string{"m3"}) {
			t.Fatalf("the next window: %+v", got)
		}
		if err := b.Shutdown(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
}

// A batch keeps the first MaxBatchMessageIDs-1 ids and the last, and counts
// every message.
func TestBatcherBoundsIDs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var f flushed
		b := callbacks.NewBatcher(t.Context(), callbacks.BatcherConfig{}, f.flush)
		const n = callbacks.MaxBatchMessageIDs + 50
		for i := range n {
			b.Add(callbacks.OfflineNote{ThreadID: "t", MessageID: fmt.Sprint("m", i), AuthorID: "alice"})
		}
		time.Sleep(2 * time.Second) // the default window
		synctest.Wait()
		got := f.get()
		if len(got) != 1 {
			t.Fatalf("%d batches", len(got))
		}
		ids := got[0].MessageIDs
		if got[0].Count != n || len(ids) != callbacks.MaxBatchMessageIDs || ids[0] != "m0" ||
			ids[len(ids)-2] != fmt.Sprint("m", callbacks.MaxBatchMessageIDs-2) || got[0].LastMessageID() != fmt.Sprint("m", n-1) {
			t.Fatalf("count %d, %d ids, first %s, last %s", got[0].Count, len(ids), ids[0], got[0].LastMessageID())
		}
	})
}

// At most MaxBatches batches are open or being flushed: a message that
// would open one more is dropped and counted; one that joins an open batch
// is not; once a flush returns, a batch may open again.
func TestBatcherCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var f flushed
		flush := func(ctx context.Context, b callbacks.OfflineBatch) {
			if b.ThreadID == "slow" {
				<-release
			}
			f.flush(ctx, b)
		}
		var obs batchFailures
		b := callbacks.NewBatcher(t.Context(), callbacks.BatcherConfig{Window: time.Second, MaxBatches: 2, Observer: &obs}, flush)
		b.Add(callbacks.OfflineNote{ThreadID: "slow", MessageID: "s1", AuthorID: "a"})
		b.Add(callbacks.OfflineNote{ThreadID: "t1", MessageID: "a1", AuthorID: "a"})
		b.Add(callbacks.OfflineNote{ThreadID: "t2", MessageID: "b1", AuthorID: "a"}) // a third batch: dropped
		b.Add(callbacks.OfflineNote{ThreadID: "t1", MessageID: "a2", AuthorID: "a"}) // joins t1's
		if n := obs.count("message.offline batches_full"); n != 1 {
			t.Fatalf("batches_full counted %d times, want 1", n)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		// t1 is flushed; slow is still being flushed and counts.
		if got := f.get(); len(got) != 1 || !slices.Equal(got[0].MessageIDs, []string{"a1", "a2"}) {
			t.Fatalf("after the window: %+v", got)
		}
		b.Add(callbacks.OfflineNote{ThreadID: "t2", MessageID: "b2", AuthorID: "a"}) // one slot free again
		b.Add(callbacks.OfflineNote{ThreadID: "t3", MessageID: "c1", AuthorID: "a"}) // slow holds the other
		if n := obs.count("message.offline batches_full"); n != 2 {
			t.Fatalf("batches_full counted %d times, want 2", n)
		}
		close(release)
		synctest.Wait()
		b.Add(callbacks.OfflineNote{ThreadID: "t3", MessageID: "c2", AuthorID: "a"}) // slow has returned
		time.Sleep(time.Second)
		synctest.Wait()
		var ids []string
		for _, x := range f.get() {
			ids = append(ids, x.MessageIDs...)
		}
		slices.Sort(ids)
		if !slices.Equal(ids, []string{"a1", "a2", "b2", "c2", "s1"}) {
			t.Fatalf("flushed %v", ids)
		}
		if n := obs.count("message.offline batches_full"); n != 2 {
			t.Fatalf("batches_full counted %d times, want 2", n)
		}
	})
}

// Shutdown hands the open batches over at once and waits for them; a
// message after it is dropped and counted.
func TestBatcherShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var f flushed
		var obs batchFailures
		b := callbacks.NewBatcher(t.Context(), callbacks.BatcherConfig{Window: time.Hour, Observer: &obs}, f.flush)
		b.Add(callbacks.OfflineNote{ThreadID: "t1", MessageID: "m1", AuthorID: "a"})
		b.Add(callbacks.OfflineNote{ThreadID: "t2", MessageID: "m2", AuthorID: "a"})
		start := time.Now()
		if err := b.Shutdown(t.Context()); err != nil {
			t.Fatal(err)
		}
		if time.Since(start) != 0 || len(f.get()) != 2 {
			t.Fatalf("after %v, %d batches flushed", time.Since(start), len(f.get()))
		}
		b.Add(callbacks.OfflineNote{ThreadID: "t1", MessageID: "m3", AuthorID: "a"})
		if n := obs.count("message.offline shutdown"); n != 1 {
			t.Fatalf("shutdown counted %d", n)
		}
		time.Sleep(2 * time.Hour)
		synctest.Wait()
		if n := len(f.get()); n != 2 {
			t.Fatalf("%d batches after the shutdown", n)
		}
	})
}
