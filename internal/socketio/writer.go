package socketio

import (
	"errors"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// The WebSocket write path. A connection with something to write is put in
// its Engine's ready list; a few writer goroutines (at most maxWriters, each
// alive only while the list is not empty) take connections from it and write
// each one's whole queue in one non-blocking write(2) from a buffer of their
// own. So an idle connection has no writer goroutine, a burst to many
// connections starts no goroutine per connection, and the fast path sets no
// write deadline: a non-blocking write cannot hang.
//
// A connection whose kernel send buffer is full (the write would block, or was
// short) leaves the pool: a goroutine of its own (writeLoop) writes the rest
// with a deadline, then drains the queue with blocking batched writes, and
// returns the connection to the pool once its queue is empty. So does a
// connection that closes (the close frame), one with more than
// poolBatchBytes queued, and one whose net.Conn has no file descriptor (TLS).
//
// With Config.WriteDelay, a connection waits that long in the ready list
// before its first write, so that the frames queued meanwhile leave together.

const (
	// poolBatchBytes is the most a pool writer writes for one connection
	// at a time (its buffer); a larger queue goes to writeLoop.
	poolBatchBytes = 64 << 10
	// poolTake is how many connections a writer takes from the ready list
	// at once.
	poolTake = 32
)

// maxWriters bounds the pool's goroutines. The writes do not block, so
// more writers than cores would only contend.
var maxWriters = max(2, min(8, runtime.GOMAXPROCS(0)))

type readyConn struct {
	c   *EngineConn
	due time.Time // zero without WriteDelay
}

// writePool is an Engine's ready list and its writers.
type writePool struct {
	mu      sync.Mutex
	ready   []readyConn
	head    int // ready[head:] is the list
	writers int
	bufs    sync.Pool // *poolWriter
}

// scheduleLocked puts c in the ready list. c.mu is held (lock order: c.mu,
// then the pool's).
func (c *EngineConn) scheduleLocked() {
	p := &c.e.writers
	var due time.Time
	if d := c.e.cfg.WriteDelay; d > 0 {
		due = time.Now().Add(d)
	}
	p.mu.Lock()
	p.ready = append(p.ready, readyConn{c: c, due: due})
	start := p.writers < maxWriters && (p.writers == 0 || len(p.ready)-p.head > 1)
	if start {
		p.writers++
		c.e.track.add()
	}
	p.mu.Unlock()
	if start {
		go c.e.runWriter()
	}
}

// runWriter takes connections from the ready list and writes them until the
// list is empty.
func (e *Engine) runWriter() {
	defer e.track.done()
	p := &e.writers
	w, _ := p.bufs.Get().(*poolWriter)
	if w == nil {
		w = newPoolWriter()
	}
	defer p.bufs.Put(w)
	var take [poolTake]*EngineConn
	for {
		p.mu.Lock()
		if p.head == len(p.ready) {
			clear(p.ready)
			p.ready, p.head = p.ready[:0], 0
			p.writers--
			p.mu.Unlock()
			return
		}
		if due := p.ready[p.head].due; !due.IsZero() {
			if d := time.Until(due); d > 0 {
				p.mu.Unlock()
				time.Sleep(d)
				continue
			}
		}
		n := 0
		now := time.Time{}
		for p.head < len(p.ready) && n < poolTake {
			r := p.ready[p.head]
			if !r.due.IsZero() {
				if now.IsZero() {
					now = time.Now()
				}
				if r.due.After(now) {
					break
				}
			}
			take[n] = r.c
			p.ready[p.head] = readyConn{}
			p.head++
			n++
		}
		if p.head > 1024 && p.head*2 > len(p.ready) {
			// Move the list to the front now and then, so that the array
			// does not grow with the connections written.
			k := copy(p.ready, p.ready[p.head:])
			clear(p.ready[k:])
			p.ready, p.head = p.ready[:k], 0
		}
		p.mu.Unlock()
		for i := range n {
			w.flush(take[i])
			take[i] = nil
		}
	}
}

// poolWriter is one writer's buffer and its write callback, made once so that
// a write allocates nothing.
type poolWriter struct {
	buf     []byte
	n       int
	errno   error
	writeFn func(fd uintptr) bool
}

func newPoolWriter() *poolWriter {
	w := &poolWriter{buf: make([]byte, 0, 4<<10)}
	w.writeFn = w.write
	return w
}

// write is the syscall.RawConn.Write callback: one attempt, never waiting.
func (w *poolWriter) write(fd uintptr) bool {
	for w.n < len(w.buf) {
		n, err := syscall.Write(int(fd), w.buf[w.n:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			w.errno = err
			break
		}
		if n <= 0 {
			break
		}
		w.n += n
	}
	return true
}

// flush writes c's queue, or hands c to writeLoop (see the file comment).
func (w *poolWriter) flush(c *EngineConn) {
	c.mu.Lock()
	raw := c.wsRaw
	if raw == nil || c.state != stateOpen || len(c.queue) == 0 || c.queued > poolBatchBytes {
		c.mu.Unlock()
		c.e.track.add()
		go c.writeLoop()
		return
	}
	batch := c.queue
	c.queue, c.spare = c.spare[:0], nil
	conn := c.ws
	c.mu.Unlock()

	size := 0
	buf := w.buf[:0]
	for _, f := range batch {
		size += f.size()
		buf = appendWSFrame(buf, f)
	}
	clear(batch)
	w.buf, w.n, w.errno = buf, 0, nil
	err := raw.Write(w.writeFn)
	if err == nil {
		err = w.errno
	}
	written := w.n
	if cap(w.buf) > 2*poolBatchBytes {
		w.buf = make([]byte, 0, 4<<10)
	}
	switch {
	case written == len(buf):
		c.mu.Lock()
		c.queued -= size
		c.recycleLocked(batch)
		switch {
		case len(c.queue) > 0 && c.state == stateOpen:
			c.scheduleLocked()
		case c.state != stateOpen:
			// Closing: writeLoop writes what is left and the close frame.
			c.e.track.add()
			go c.writeLoop()
		default:
			c.writing = false
		}
		c.mu.Unlock()
	case err == nil || errors.Is(err, syscall.EAGAIN):
		// The send buffer is full: the rest goes out with a blocking write.
		rest := append([]byte(nil), buf[written:]...)
		c.mu.Lock()
		c.recycleLocked(batch)
		c.mu.Unlock()
		c.e.track.add()
		go c.writeRest(rest, size)
	default:
		c.mu.Lock()
		c.recycleLocked(batch)
		c.mu.Unlock()
		c.writeFailed(conn, err)
	}
}

// writeRest writes the part of a batch a pool writer could not, then goes on
// as writeLoop. size is the queue bytes the batch accounted for.
func (c *EngineConn) writeRest(rest []byte, size int) {
	c.mu.Lock()
	conn := c.ws
	c.mu.Unlock()
	_ = conn.SetWriteDeadline(time.Now().Add(c.e.cfg.WriteTimeout))
	_, err := conn.Write(rest)
	c.mu.Lock()
	c.queued -= size
	c.mu.Unlock()
	if err != nil {
		c.e.track.done()
		c.writeFailed(conn, err)
		return
	}
	c.writeLoop() // defers the done of writeRest's add
}

// writeFailed ends the connection after a write error.
func (c *EngineConn) writeFailed(conn interface{ Close() error }, err error) {
	c.e.log.Debug("socketio: websocket write failed", "sid", c.id, "err", err)
	c.mu.Lock()
	c.writing = false
	c.dropQueueLocked()
	c.mu.Unlock()
	c.close(ReasonTransportError, closeAbort)
	_ = conn.Close()
}
