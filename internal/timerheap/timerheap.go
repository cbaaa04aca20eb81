// Package timerheap owns Heap: many deadlines kept in one heap behind one
// runtime timer, for the timers that every connection holds while it is
// idle (the Engine.IO heartbeat, a socket's token expiry). A runtime timer
// costs its Timer, the runtime's timer and the closure it calls, about 160
// bytes; a place in a Heap costs the Entry embedded in the item and one slot
// of the heap's slice, 24 bytes (issue 14, idle memory).
//
// The due items are called one after another on the runtime timer's
// goroutine, in deadline order, with no lock held: the fire function must
// not block (take a short lock, queue a frame, start a goroutine).
//
// Lock order: Heap.mu is a leaf. Schedule and Stop may be called with the
// caller's own locks held; fire is called with none of the heap's.
package timerheap

import (
	"container/heap"
	"sync"
	"time"
)

// Entry is an item's place in a Heap. Embed it in the item; the zero Entry
// is not scheduled. The Heap guards it: the item's owner never reads it.
type Entry struct {
	at  time.Duration // deadline, as time since the heap's base
	idx int32         // index in the heap + 1; 0 when not scheduled
}

// Item is what a Heap schedules: a comparable value (a pointer) that
// returns its own Entry.
type Item interface {
	comparable
	TimerEntry() *Entry
}

// Heap calls fire for each item once its deadline has passed.
type Heap[T Item] struct {
	fire func(T)
	base time.Time

	mu      sync.Mutex
	items   items[T]
	timer   *time.Timer   // fires at armedAt; nil until the first Schedule
	armedAt time.Duration // the deadline timer is set for; 0 when not armed
	stopped bool
	due     []T // reused by run under mu, handed out one batch at a time
}

// New returns a Heap that calls fire for each item whose deadline passed.
func New[T Item](fire func(T)) *Heap[T] {
	return &Heap[T]{fire: fire, base: time.Now()}
}

// Schedule sets x's deadline to d from now, whether or not x was scheduled.
func (h *Heap[T]) Schedule(x T, d time.Duration) {
	at := time.Since(h.base) + max(d, 0)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return
	}
	e := x.TimerEntry()
	e.at = at
	if e.idx == 0 {
		heap.Push(&h.items, x)
	} else {
		heap.Fix(&h.items, int(e.idx-1))
	}
	h.armLocked()
}

// Stop unschedules x and reports whether it was scheduled. A fire already
// under way for x is not waited for (as time.Timer's Stop).
func (h *Heap[T]) Stop(x T) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	e := x.TimerEntry()
	if e.idx == 0 {
		return false
	}
	heap.Remove(&h.items, int(e.idx-1))
	return true
}

// Scheduled reports whether x has a deadline in the heap. A fire that finds
// its item scheduled is stale: it was taken out of the heap just before a
// Schedule put the item back with a new deadline, which will fire.
func (h *Heap[T]) Scheduled(x T) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return x.TimerEntry().idx != 0
}

// Len returns how many items are scheduled.
func (h *Heap[T]) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.items.s)
}

// Close unschedules everything and stops the runtime timer: nothing is
// fired afterwards but a batch already under way.
func (h *Heap[T]) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopped = true
	for _, x := range h.items.s {
		x.TimerEntry().idx = 0
	}
	h.items.s = nil
	if h.timer != nil {
		h.timer.Stop()
	}
}

// armLocked sets the runtime timer for the earliest deadline, if it is not
// set for it already.
func (h *Heap[T]) armLocked() {
	if len(h.items.s) == 0 {
		return // an early fire finds nothing due and re-arms nothing
	}
	at := h.items.s[0].TimerEntry().at
	if h.armedAt != 0 && h.armedAt <= at {
		return // set for this deadline or an earlier one, which re-arms
	}
	h.armedAt = at
	d := at - time.Since(h.base)
	if h.timer == nil {
		h.timer = time.AfterFunc(d, h.run)
		return
	}
	h.timer.Reset(d)
}

// run fires what is due, in batches, then re-arms for the next deadline.
func (h *Heap[T]) run() {
	for {
		h.mu.Lock()
		h.armedAt = 0
		now := time.Since(h.base)
		due := h.due[:0]
		for len(h.items.s) > 0 && h.items.s[0].TimerEntry().at <= now && len(due) < maxBatch {
			due = append(due, heap.Pop(&h.items).(T))
		}
		h.due = nil // this batch's, until it is handed back
		if len(due) < maxBatch {
			h.armLocked()
		}
		h.mu.Unlock()

		for _, x := range due {
			h.fire(x)
		}
		if len(due) < maxBatch {
			clear(due)
			h.mu.Lock()
			h.due = due
			h.mu.Unlock()
			return
		}
	}
}

// maxBatch bounds how many items one pass takes out of the heap, so that a
// burst of deadlines (every connection of a storm pinged in the same
// second) neither holds the lock long nor grows the batch without limit.
const maxBatch = 256

// items adapts the slice to container/heap, keeping each Entry's index.
type items[T Item] struct{ s []T }

func (q *items[T]) Len() int { return len(q.s) }
func (q *items[T]) Less(i, j int) bool {
	return q.s[i].TimerEntry().at < q.s[j].TimerEntry().at
}
func (q *items[T]) Swap(i, j int) {
	q.s[i], q.s[j] = q.s[j], q.s[i]
	q.s[i].TimerEntry().idx = int32(i + 1)
	q.s[j].TimerEntry().idx = int32(j + 1)
}
func (q *items[T]) Push(x any) {
	v := x.(T)
	q.s = append(q.s, v)
	v.TimerEntry().idx = int32(len(q.s))
}
func (q *items[T]) Pop() any {
	n := len(q.s) - 1
	v := q.s[n]
	var zero T
	q.s[n] = zero
	q.s = q.s[:n]
	v.TimerEntry().idx = 0
	if cap(q.s) > 64 && len(q.s) < cap(q.s)/4 {
		q.s = append([]T(nil), q.s...) // give back what a storm grew
	}
	return v
}
