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
	seq    uint64
	body   []byte
	thread string       // "" for a push outside a thread's history
	pos    hub.Position // the push's position in thread
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
	attached    bool          // an HTTP response is serving the stream
	gen         uint64        // the serving response's number (attach)
	kick        chan struct{} // closed when a newer response takes the stream over
	detachedAt  time.Time     // when the last response ended
	// from is, per thread, the position up to which the client has been
	// given everything: where it started listening (hub.PositionTracker),
	// then the last event of the thread written. A handoff hands it on.
	from map[string]hub.Position
}

func newStream(id, userID string, maxEvents, maxBytes int) *stream {
	return &stream{id: id, userID: userID, maxEvents: maxEvents, maxBytes: maxBytes, wake: make(chan struct{}, 1),
		from: map[string]hub.Position{}}
}

// ListensFrom implements hub.PositionTracker.
func (s *stream) ListensFrom(threadID string, pos hub.Position) {
	s.mu.Lock()
	s.from[threadID] = pos
	s.mu.Unlock()
}

// StopsListening implements hub.PositionTracker: a thread the stream no
// longer listens to is not handed over, and its position goes, so the map
// stays as small as the threads listened to.
func (s *stream) StopsListening(threadID string) {
	s.mu.Lock()
	delete(s.from, threadID)
	s.mu.Unlock()
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
	e := entry{seq: s.seq, body: body}
	if p.ThreadID != "" && p.Offset != 0 {
		e.thread, e.pos = p.ThreadID, hub.Position{Epoch: p.Epoch, Offset: p.Offset}
	}
	s.ring = append(s.ring, e)
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

func (s *stream) resumeLocked(lastSeq uint64) bool {
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
// marks them written. closed is set when the stream has ended; kicked when
// the response gen no longer serves the stream (it writes nothing more).
func (s *stream) pending(gen uint64, buf []byte) (out []byte, closed, kicked bool, reason hub.Reason) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen != s.gen {
		return buf, false, true, ""
	}
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
		if e.thread != "" {
			// Only a thread listened to (ListensFrom) moves on: an event
			// written after its thread was left, or a push to the user
			// that names a thread, adds nothing.
			if cur, ok := s.from[e.thread]; ok && (cur.Epoch != e.pos.Epoch || e.pos.Offset > cur.Offset) {
				s.from[e.thread] = e.pos
			}
		}
	}
	return buf, s.closed, false, s.closeReason
}

// attach makes a new response serve the stream and returns its number and
// the channel closed when a newer one takes over; ok is false when the
// stream has ended. A response still attached is taken over, not refused:
// a client that reconnects before its old connection is noticed gone (an
// EventSource right after its page closed it) must not be stopped for good.
func (s *stream) attach() (gen uint64, kick <-chan struct{}, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attachLocked()
}

// attachAfter attaches a response (attach) and positions the stream after
// the event lastSeq the client says it saw, in one step, so that a response
// taken over writes nothing in between. recovered is false when that gap
// is no longer held: the stream then continues from now and the client
// must re-fetch.
func (s *stream) attachAfter(lastSeq uint64) (gen uint64, kick <-chan struct{}, recovered, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen, kick, ok = s.attachLocked(); !ok {
		return 0, nil, false, false
	}
	return gen, kick, s.resumeLocked(lastSeq), true
}

func (s *stream) attachLocked() (gen uint64, kick <-chan struct{}, ok bool) {
	if s.closed {
		return 0, nil, false
	}
	if s.attached {
		close(s.kick)
	}
	s.attached = true
	s.gen++
	s.kick = make(chan struct{})
	return s.gen, s.kick, true
}

// detach ends the service of response gen; it reports false (and does
// nothing) when a newer response serves the stream.
func (s *stream) detach(gen uint64, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != gen {
		return false
	}
	s.attached = false
	s.detachedAt = now
	return true
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

func (s *stream) isAttached() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attached
}

// handoff is the record another node needs to go on with the stream, which
// listens to threads: false for one that has ended.
func (s *stream) handoff(threads []string) (HandoffRecord, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return HandoffRecord{}, false
	}
	pos := make(map[string]hub.Position, len(threads))
	for _, id := range threads {
		if p, ok := s.from[id]; ok {
			pos[id] = p
		}
	}
	// A thread whose position is not known yet (it was being attached) is
	// left out, and its gap cannot be vouched for.
	return HandoffRecord{User: s.userID, Agents: s.agents, Seq: s.written, Threads: pos, Partial: len(pos) < len(threads)}, true
}
