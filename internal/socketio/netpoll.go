package socketio

import (
	"bufio"
	"errors"
	"io"
	"net"
	"syscall"
)

// Readiness-based reading of WebSockets (Config.BlockingReader false, Linux,
// a connection with a file descriptor). A reader goroutine runs only while
// its connection has data: when the reader is between frames with nothing
// buffered, it tries one non-blocking read; if that would block, it arms the
// Engine's poller (netpoll_linux.go) for the descriptor and returns. The
// poller's one goroutine waits in epoll_wait and, when the descriptor is
// readable (data, the end of the stream or an error), starts a fresh reader
// (pollReady), which goes on exactly where the last one stopped: there is no
// partial state to keep, since a reader only leaves between two whole
// messages. Inside a frame, or between the fragments of a message, the
// reader blocks as before (a client that sends half a frame holds a
// goroutine until the rest comes, the heartbeat closes it, or it closes).
//
// The descriptor is armed one-shot: at most one reader per connection, so
// handlers still run one at a time in the client's order on "the
// connection's reader". Heartbeats, the write path and closing are
// unchanged: closing a connection drops its entry and gives it a reader
// again, which drains what the client still sends until the descriptor is
// closed (which takes it out of the epoll set), as a blocking reader does.

// errWouldBlock is a non-blocking read that found no data.
var errWouldBlock = errors.New("socketio: read would block")

// nbSource is the io.Reader under a pollReader's bufio.Reader: a blocking
// conn.Read, or with nonblock one non-blocking read(2) that returns
// errWouldBlock when there is nothing to read.
type nbSource struct {
	conn     net.Conn
	raw      syscall.RawConn
	nonblock bool
	p        []byte
	n        int
	err      error
	readFn   func(fd uintptr) bool
}

func (s *nbSource) Read(p []byte) (int, error) {
	if !s.nonblock {
		return s.conn.Read(p)
	}
	s.p, s.n, s.err = p, 0, nil
	err := s.raw.Read(s.readFn)
	n, rerr := s.n, s.err
	s.p, s.err = nil, nil
	switch {
	case err != nil:
		return 0, err // closed: net.ErrClosed
	case errors.Is(rerr, syscall.EAGAIN):
		return 0, errWouldBlock
	case rerr != nil:
		return 0, rerr
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// read is the syscall.RawConn.Read callback: one attempt, never waiting.
func (s *nbSource) read(fd uintptr) bool {
	for {
		n, err := syscall.Read(int(fd), s.p)
		if err == syscall.EINTR {
			continue
		}
		s.n, s.err = max(n, 0), err
		return true
	}
}

// pollReader is a pooled bufio.Reader on its own nbSource, made once so
// that a reader's wake-up allocates nothing.
type pollReader struct {
	br  *bufio.Reader
	src nbSource
}

func newPollReader() *pollReader {
	pr := &pollReader{}
	pr.src.readFn = pr.src.read
	pr.br = bufio.NewReaderSize(&pr.src, readBufSize)
	return pr
}

// pollerFor returns the Engine's poller, started on first use, or nil when
// connections read on goroutines of their own (Config.BlockingReader, no
// poller on this system, or it could not be made or is stopped).
func (e *Engine) pollerFor() *poller {
	if e.cfg.BlockingReader || !pollerSupported {
		return nil
	}
	e.pollOnce.Do(func() {
		p, err := newPoller()
		if err != nil {
			e.log.Warn("socketio: no readiness poller, one reader goroutine per WebSocket", "err", err)
			return
		}
		e.mu.Lock()
		if e.closed {
			e.mu.Unlock()
			p.stop()
			e.track.add()
			go p.run(e)
			return
		}
		e.poll = p
		e.mu.Unlock()
		e.track.add()
		go p.run(e)
	})
	e.mu.RLock()
	p := e.poll
	e.mu.RUnlock()
	return p
}

// pollReady is a connection's reader started by the poller (its
// descriptor is readable) or by close (it was armed). A closed
// connection's reader cannot arm the poller again: it reads, discarding,
// until the descriptor is closed. The caller has called e.track.add for it.
func (c *EngineConn) pollReady() {
	c.mu.Lock()
	conn := c.ws
	c.mu.Unlock()
	if conn == nil {
		c.e.track.done()
		return
	}
	c.readLoop(conn, nil, false)
}

// pollIdle is readLoop's step when its reader is idle and may use the
// poller (fr.raw is set): it reads what has come (nil: go on reading), or
// arms the poller and reports armed (the reader returns), or returns the
// connection's error. When the poller cannot be armed (c is closing, or the
// poller stopped) it clears fr.raw and reports nil: the reader waits on
// its own goroutine from then on. It is a function of its own so that
// readLoop's frame, on the stack of every blocked reader, stays small.
//
//go:noinline
func (c *EngineConn) pollIdle(fr *frameReader) (armed bool, err error) {
	err = fr.peek()
	if !errors.Is(err, errWouldBlock) {
		return false, err
	}
	fr.release()
	if p := c.e.pollerFor(); p != nil && p.arm(c, fr.raw) {
		return true, nil
	}
	fr.raw = nil
	return false, nil
}

// rawConn returns conn's descriptor access, or nil (TLS).
func rawConn(conn net.Conn) syscall.RawConn {
	if sc, ok := conn.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			return raw
		}
	}
	return nil
}
