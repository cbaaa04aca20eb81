//go:build linux

package socketio

import (
	"errors"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// The readiness poller (Linux): one epoll instance and one goroutine per
// Engine watch the idle WebSockets, so that an idle connection keeps no
// goroutine (and no stack) blocked in Read. See netpoll.go.

const pollerSupported = true

// poller is an Engine's epoll instance. Every descriptor is registered
// EPOLLONESHOT: one readiness event disables it until the connection's
// reader re-arms it, so at most one reader runs per connection.
type poller struct {
	epfd int
	wake int // eventfd that stops run; its key is 0

	// mu guards conns and closed, and is held across the epoll_ctl of an
	// arm (a non-blocking system call) so that stop cannot close epfd under
	// it. It is a leaf: nothing else is locked while it is held.
	mu     sync.Mutex
	conns  map[uint64]*EngineConn // armed connections, by EngineConn.pollKey
	closed bool
}

func newPoller() (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		_ = unix.Close(epfd)
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN} // key 0
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &ev); err != nil {
		_ = unix.Close(epfd)
		_ = unix.Close(wake)
		return nil, err
	}
	return &poller{epfd: epfd, wake: wake, conns: make(map[uint64]*EngineConn)}, nil
}

// arm makes the next readiness of c's descriptor (data, end of stream or
// error) start a reader for c. It reports false when it could not (the
// poller is stopped, c is closed, or epoll refused), and the caller then
// reads on its own goroutine. Data that arrived before arm is not lost:
// epoll_ctl evaluates the descriptor's readiness when it (re-)arms it.
func (p *poller) arm(c *EngineConn, raw syscall.RawConn) bool {
	ev := unix.EpollEvent{
		Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT,
		Fd:     int32(uint32(c.pollKey)),
		Pad:    int32(uint32(c.pollKey >> 32)),
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || c.closed.Load() {
		return false
	}
	var opErr error
	// Control keeps the descriptor open while the callback runs: the
	// number cannot be closed and reused by another connection under it.
	err := raw.Control(func(fd uintptr) {
		opErr = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_MOD, int(fd), &ev)
		if errors.Is(opErr, unix.ENOENT) {
			opErr = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev)
		}
	})
	if err != nil || opErr != nil {
		return false
	}
	p.conns[c.pollKey] = c
	return true
}

// disarm drops c's entry once c is closed, and reports whether it was
// armed: the caller then starts c's reader, which drains what the client
// sends until the descriptor is closed (as a blocking reader would have),
// so that the close does not find unread bytes and answer with a reset.
// The descriptor leaves the epoll set by itself when it is closed.
func (p *poller) disarm(c *EngineConn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns[c.pollKey] == nil {
		return false
	}
	delete(p.conns, c.pollKey)
	return true
}

// stop makes run return; arm fails from now on. The connections armed are
// being closed by the caller (Engine.Shutdown).
func (p *poller) stop() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	clear(p.conns)
	p.mu.Unlock()
	var one = [8]byte{1}
	_, _ = unix.Write(p.wake, one[:])
}

// run waits for readiness and starts a reader (EngineConn.pollReady) per
// ready connection, until stop. It closes the poller's descriptors when it
// returns. The caller has called e.track.add for it.
func (p *poller) run(e *Engine) {
	defer e.track.done()
	defer func() {
		_ = unix.Close(p.epfd)
		_ = unix.Close(p.wake)
	}()
	events := make([]unix.EpollEvent, 256)
	ready := make([]*EngineConn, 0, len(events))
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			e.log.Error("socketio: epoll_wait failed, poller stops", "err", err)
			p.mu.Lock()
			p.closed = true
			armed := make([]*EngineConn, 0, len(p.conns))
			for _, c := range p.conns {
				armed = append(armed, c)
			}
			clear(p.conns)
			p.mu.Unlock()
			// Their readers start now and, the poller being closed, go
			// on reading on their own goroutines.
			for _, c := range armed {
				e.track.add()
				go c.pollReady()
			}
			return
		}
		stopped := false
		p.mu.Lock()
		for i := range n {
			key := uint64(uint32(events[i].Fd)) | uint64(uint32(events[i].Pad))<<32
			if key == 0 {
				stopped = p.closed
				continue
			}
			if c := p.conns[key]; c != nil {
				delete(p.conns, key)
				ready = append(ready, c)
			}
		}
		p.mu.Unlock()
		for i, c := range ready {
			e.track.add()
			go c.pollReady()
			ready[i] = nil
		}
		ready = ready[:0]
		if stopped {
			return
		}
	}
}
