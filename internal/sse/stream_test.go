package sse

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ecbridge/ecb/internal/hub"
)

func push(n int) *hub.Push {
	return &hub.Push{Event: "message", Data: fmt.Appendf(nil, `{"n":%d}`, n)}
}

func TestStreamQueueIsBoundedAndCutsTheSlow(t *testing.T) {
	st := newStream("s", "u", 4, 1<<20)
	for i := 1; i <= 4; i++ {
		if !st.Deliver(push(i)) {
			t.Fatalf("push %d refused below the bound", i)
		}
	}
	if st.Deliver(push(5)) {
		t.Fatal("a fifth unwritten event was accepted: the queue is not bounded")
	}
	out, closed, _, _ := st.pending(0, nil)
	if closed || strings.Count(string(out), "event: message") != 4 || !strings.Contains(string(out), "id: s:4\n") {
		t.Fatalf("pending = %q closed=%v", out, closed)
	}
	// Written events make room: they are only kept for resume.
	for i := 5; i <= 8; i++ {
		if !st.Deliver(push(i)) {
			t.Fatalf("push %d refused after the queue drained", i)
		}
	}
}

func TestStreamResume(t *testing.T) {
	st := newStream("s", "u", 4, 1<<20)
	for i := 1; i <= 3; i++ {
		st.Deliver(push(i))
	}
	_, _, _, _ = st.pending(0, nil) // written up to 3
	st.Deliver(push(4))
	st.Deliver(push(5))

	if !st.resume(2) {
		t.Fatal("resume after 2 must succeed: events 3..5 are held")
	}
	out, _, _, _ := st.pending(0, nil)
	if got := strings.Count(string(out), "event: message"); got != 3 || !strings.HasPrefix(string(out), "id: s:3\n") {
		t.Fatalf("after resume(2): %q", out)
	}
	if st.resume(0) {
		t.Fatal("resume after 0 must fail: event 1 was dropped from the ring")
	}
	if st.resume(99) {
		t.Fatal("resume from the future must fail")
	}
	if out, _, _, _ := st.pending(0, nil); len(out) != 0 {
		t.Fatalf("a failed resume continues from now, got %q", out)
	}
}

func TestStreamQueueByteBound(t *testing.T) {
	st := newStream("s", "u", 1000, 100)
	big := &hub.Push{Event: "message", Data: []byte(`"` + strings.Repeat("x", 60) + `"`)}
	if !st.Deliver(big) {
		t.Fatal("first event refused")
	}
	if st.Deliver(big) {
		t.Fatal("the byte bound was not enforced")
	}
}

func FuzzParseEventID(f *testing.F) {
	for _, s := range []string{"abc:1", "abc:", ":1", "a:b:c", "x:18446744073709551616", "", "s:0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, seq, ok := parseEventID(s)
		if ok && (id == "" || strings.Contains(id, ":") || !strings.HasPrefix(s, id+":")) {
			t.Fatalf("parseEventID(%q) = %q, %d accepted a malformed id", s, id, seq)
		}
		st := newStream("s", "u", 8, 1<<10)
		for i := range 10 {
			st.Deliver(push(i))
		}
		st.resume(seq) // must never panic, whatever the client claims
		_, _, _, _ = st.pending(0, nil)
	})
}

// resume positions st after lastSeq (attachAfter without the attach).
func (s *stream) resume(lastSeq uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.resumeLocked(lastSeq)
}

// TestStreamKeepsPositionsOnlyOfThreadsItListensTo: a stream that listens to
// thread after thread and leaves each keeps no position of the ones it left
// (the map grew over the stream's life), and an event of a left thread that
// is written afterwards, or one that names a thread not listened to, adds
// none.
func TestStreamKeepsPositionsOnlyOfThreadsItListensTo(t *testing.T) {
	ctx := t.Context()
	h := hub.New(hub.Config{})
	st := newStream("s", "u", 1000, 1<<20)
	h.Register(st, "u")
	defer h.Unregister(st)
	for i := range 50 {
		id := fmt.Sprintf("t%d", i)
		if _, err := h.Attach(ctx, id, st); err != nil {
			t.Fatal(err)
		}
		if _, err := h.Publish(ctx, id, &hub.Push{Event: "message", Data: []byte(`{}`)}, nil); err != nil {
			t.Fatal(err)
		}
		h.Detach(id, st) // the push is still unwritten in the ring
	}
	if _, err := h.Attach(ctx, "kept", st); err != nil {
		t.Fatal(err)
	}
	pos, err := h.Publish(ctx, "kept", &hub.Push{Event: "message", Data: []byte(`{}`)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	st.Deliver(&hub.Push{Event: "removed", ThreadID: "elsewhere", Epoch: "e", Offset: 5, Data: []byte(`{}`)})
	if _, _, _, _ = st.pending(0, nil); len(st.from) != 1 {
		t.Fatalf("positions kept for %d threads after writing, want 1 (the thread listened to): %v", len(st.from), st.from)
	}
	rec, ok := st.handoff(h.Threads(st))
	if !ok || rec.Partial || rec.Threads["kept"] != pos {
		t.Fatalf("handoff = %+v, want the thread listened to at %+v", rec, pos)
	}
}
