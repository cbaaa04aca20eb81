package sse

import (
	"bytes"
	"strconv"
	"sync"
	"time"

	"github.com/ecbridge/ecb/internal/hub"
)

// entry is one event of a stream: its sequence number and the shared encoded
// body ("event: ...\ndata: ...\n\n"), identical for every stream.
type entry struct {
	seq  uint64
	body []byte
}

// stream is one SSE stream: a hub.Conn that outlives its HTTP response for the
// resume window, so that a client reconnecting with Last-Event-ID gets what it
// missed. Its recent events are one bounded ring that serves both as the write
// queue (entries after written) and as the resume history (entries up to written).
type stream struct {
	id     string
	userID string
	agents bool // set before Register: may receive whispers (hub.AgentsAudience)

	mu          sync.Mutex
	ring        []entry // oldest first
	ringBytes   int
	maxEvents   int
	maxBytes    int
	seq         uint64 // last assigned
	written     uint64 // last written to a response
	wake        chan struct{}
	closed      bool
	closeReason hub.Reason
	attached    bool      // an HTTP response is serving the stream
	detachedAt  time.Time // when the last response ended
}

func newStream(id, userID string, maxEvents, maxBytes int) *stream {
	return &stream{id: id, userID: userID, maxEvents: maxEvents, maxBytes: maxBytes, wake: make(chan struct{}, 1)}
}

var _ hub.Conn = (*stream)(nil)

// SeesAgentsOnly tells the hub whether whispers may go to this stream.
func (st *stream) SeesAgentsOnly() bool { return st.agents }

func encodeSSE(p *hub.Push) []byte {
	data := p.Payload()
	var b bytes.Buffer
	b.Grow(len(p.Event) + len(data) + 16)
	b.WriteString("event: ")
	b.WriteString(p.Event)
	b.WriteString("\ndata: ")
	b.Write(data) // JSON from encoding/json has no raw newlines
	b.WriteString("\n\n")
	return b.Bytes()
}

// Deliver implements hub.Conn: it never blocks. It refuses (and so gets the
// stream cut as slow) only when keeping the event would mean dropping one that
// was never written. The hub calls it under its locks: it takes only the
// stream's own lock and only queues; the cut (Close) comes later, outside them.
func (s *stream) Deliver(p *hub.Push) bool {
	body := p.Frame(hub.EncodingSSE, encodeSSE)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	for len(s.ring) > 0 && (len(s.ring) >= s.maxEvents || s.ringBytes+len(body) > s.maxBytes) {
		if s.ring[0].seq > s.written {
			return false
		}
		s.ringBytes -= len(s.ring[0].body)
		s.ring[0] = entry{}
		s.ring = s.ring[1:]
	}
	s.seq++
	s.ring = append(s.ring, entry{seq: s.seq, body: body})
	s.ringBytes += len(body)
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return true
}

// Close implements hub.Conn.
func (s *stream) Close(reason hub.Reason) {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		s.closeReason = reason
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// eventID is the SSE id of the event seq of this stream.
func (s *stream) eventID(seq uint64) string { return s.id + ":" + strconv.FormatUint(seq, 10) }

// resume positions the stream after the event lastSeq the client says it saw.
// It reports false when that gap is no longer held: the stream then continues
// from now and the client must re-fetch.
func (s *stream) resume(lastSeq uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if lastSeq > s.seq {
		s.written = s.seq
		return false
	}
	if lastSeq == s.seq {
		s.written = s.seq
		return true
	}
	if len(s.ring) == 0 || s.ring[0].seq > lastSeq+1 {
		s.written = s.seq
		return false
	}
	s.written = lastSeq
	return true
}

// pending appends the unwritten events, framed with their ids, to buf and
// marks them written. closed is set when the stream has ended.
func (s *stream) pending(buf []byte) (out []byte, closed bool, reason hub.Reason) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.ring {
		if e.seq <= s.written {
			continue
		}
		buf = append(buf, "id: "...)
		buf = append(buf, s.id...)
		buf = append(buf, ':')
		buf = strconv.AppendUint(buf, e.seq, 10)
		buf = append(buf, '\n')
		buf = append(buf, e.body...)
		s.written = e.seq
	}
	return buf, s.closed, s.closeReason
}

// attach marks the stream as served by a response; false when another
// response already serves it or it has ended.
func (s *stream) attach() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.attached || s.closed {
		return false
	}
	s.attached = true
	return true
}

func (s *stream) detach(now time.Time) {
	s.mu.Lock()
	s.attached = false
	s.detachedAt = now
	s.mu.Unlock()
}

// expired reports whether the stream has been without a response for longer
// than window, or has ended.
func (s *stream) expired(now time.Time, window time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed && !s.attached || !s.attached && now.Sub(s.detachedAt) > window
}

// writtenSeq is the last event the client has been given (or, right after
// resume, the one it said it saw): the id of the ready event.
func (s *stream) writtenSeq() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.written
}

func (s *stream) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}
