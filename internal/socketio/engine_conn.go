package socketio

import (
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ecbridge/ecb/internal/timerheap"
)

const (
	transportPolling uint8 = iota
	transportWebSocket
)

const (
	stateOpen    uint8 = iota
	stateClosing       // polling only: closed, waiting for a last GET to deliver the queue
	stateClosed
)

// closeMode says what happens to the queued frames when a connection closes.
type closeMode uint8

const (
	closeAbort    closeMode = iota // drop the queue; a pending poll gets "1"
	closeGraceful                  // deliver the queue, then close ("1" or a WebSocket close frame)
	closeByClient                  // the client sent close: a pending poll gets "6"
)

// EngineConn is one Engine.IO connection (a session, whichever transport
// carries it). Its methods are safe for concurrent use.
type EngineConn struct {
	e       *Engine
	id      string
	hreq    handshakeRequest
	handler EngineHandler

	closed atomic.Bool
	recvMu sync.Mutex // held while the handler runs: one call at a time

	// The one-byte fields sit together: EngineConn is kept for every
	// connection's life, and padding between them cost a size class.
	mu         sync.Mutex
	state      uint8
	transport  uint8
	mode       closeMode
	probing    bool // a WebSocket probe is reserved or connected (poll.probe), upgrade not complete
	upgrading  bool // the probe was answered ("3probe"); polls from before it answer at once
	awaitPong  bool // a ping is out
	writing    bool // the WebSocket queue is in the ready list or being written
	polling    bool // a GET is being served
	posting    bool // a POST is being served
	closeFrame bool // the writer must end with a close frame
	lingering  bool // closing, counted by the Engine's tracker until finish
	queue      []frame
	spare      []frame
	queued     int // bytes queued or being written
	reason     string
	ws         net.Conn        // the WebSocket, once the connection is on it
	wsRaw      syscall.RawConn // ws's descriptor, for the pool's non-blocking writes; nil for TLS
	poll       *pollState      // nil for a session opened on a WebSocket
	deadline   timerheap.Entry // in the Engine's timers: the heartbeat, then the polling linger

	pollKey uint64 // the connection's key in the Engine's poller (netpoll.go); never 0
}

// pollState is what only a session opened on long-polling needs: the
// wake-up of its waiting GET and its upgrade probe. Apart, so that the
// usual connection, opened on a WebSocket, does not carry them for its life.
// Guarded by EngineConn.mu.
type pollState struct {
	wake     chan struct{} // signalled when a waiting GET has something to do
	probe    net.Conn      // a WebSocket being probed for upgrade
	probedAt time.Duration // when upgrading became true, since the Engine's epoch
}

// ID returns the Engine.IO session id.
func (c *EngineConn) ID() string { return c.id }

// Request returns the handshake request: method, URL (with the query),
// headers (with Origin and cookies, or only Config.KeepHeaders), RemoteAddr,
// Host and TLS. Its Body is empty and it has no context. Each call builds a
// new one; its Header is shared: do not modify it.
func (c *EngineConn) Request() *http.Request { return c.hreq.request() }

// Transport returns "polling" or "websocket": the transport in use now.
func (c *EngineConn) Transport() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.transport == transportWebSocket {
		return "websocket"
	}
	return "polling"
}

// Send queues one message. data is retained until written and must not be
// modified. It does not block. It returns ErrClosed if the connection is
// closed, and ErrSlowConsumer (closing the connection) if the write queue
// would pass Config.WriteQueueBytes.
func (c *EngineConn) Send(data []byte, binary bool) error {
	return c.enqueue(frame{typ: eioMessage, bin: binary, data: data})
}

// Close sends what is queued, then closes the connection (reason "forced
// close"). It does not wait.
func (c *EngineConn) Close() { c.close(ReasonForcedClose, closeGraceful) }

// enqueue queues f; see Send.
func (c *EngineConn) enqueue(f frame) error {
	err := c.tryEnqueue(f)
	if err == ErrSlowConsumer {
		c.slow()
	}
	return err
}

// tryEnqueue queues f, or returns ErrSlowConsumer when the write queue would
// pass its bound, leaving the connection as it is (the caller decides
// whether to close it with slow), or ErrClosed.
func (c *EngineConn) tryEnqueue(f frame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateOpen {
		return ErrClosed
	}
	n := f.size()
	if c.queued > 0 && c.queued+n > c.e.cfg.WriteQueueBytes {
		return ErrSlowConsumer
	}
	c.appendLocked(f)
	c.queued += n
	c.kickLocked()
	return nil
}

// enqueueAll queues fs atomically (a packet with its binary attachments).
func (c *EngineConn) enqueueAll(fs []frame) error {
	c.mu.Lock()
	if c.state != stateOpen {
		c.mu.Unlock()
		return ErrClosed
	}
	n := 0
	for _, f := range fs {
		n += f.size()
	}
	if c.queued > 0 && c.queued+n > c.e.cfg.WriteQueueBytes {
		c.mu.Unlock()
		c.slow()
		return ErrSlowConsumer
	}
	c.appendLocked(fs...)
	c.queued += n
	c.kickLocked()
	c.mu.Unlock()
	return nil
}

func (c *EngineConn) slow() {
	if c.closed.Load() {
		return // closed already (CloseSlow after the end): nothing to say
	}
	c.e.log.Warn("socketio: slow consumer, closing connection",
		"sid", c.id, "remote", c.hreq.remoteAddr, "max_queue_bytes", c.e.cfg.WriteQueueBytes)
	c.close(ReasonSlowConsumer, closeAbort)
}

// kickLocked makes the active transport deliver the queue.
func (c *EngineConn) kickLocked() {
	if c.transport == transportWebSocket {
		if !c.writing && c.ws != nil {
			c.writing = true
			c.scheduleLocked()
		}
		return
	}
	c.wakePollLocked()
}

func (c *EngineConn) wakePollLocked() {
	if c.poll != nil && c.poll.wake != nil {
		select {
		case c.poll.wake <- struct{}{}:
		default:
		}
	}
}

// close closes the connection once. The handler's OnClose runs afterwards
// on a tracked goroutine, after any handler call in progress.
func (c *EngineConn) close(reason string, mode closeMode) {
	c.mu.Lock()
	if c.state != stateOpen {
		c.mu.Unlock()
		return
	}
	c.closed.Store(true)
	c.reason, c.mode = reason, mode
	c.e.timers.Stop(c)
	if c.poll != nil && c.poll.probe != nil {
		_ = c.poll.probe.Close()
		c.poll.probe = nil
	}
	linger := false
	if c.transport == transportWebSocket {
		c.state = stateClosed
		if mode == closeAbort || c.ws == nil {
			c.dropQueueLocked()
			if c.ws != nil {
				_ = c.ws.Close()
			}
		} else {
			c.closeFrame = true
			if !c.writing {
				c.writing = true
				c.e.track.add()
				go c.writeLoop()
			}
		}
	} else {
		if mode == closeAbort {
			c.dropQueueLocked()
		}
		switch {
		case c.poll != nil && c.poll.wake != nil:
			// A waiting GET delivers the end and unregisters.
			c.state = stateClosing
			c.wakePollLocked()
		case mode == closeByClient && !c.isShuttingDown() || mode == closeGraceful && len(c.queue) > 0:
			// Wait briefly for the next GET: it delivers the queue (at a
			// shutdown too, which waits for it: the last acks and the
			// closing event are in that queue); after a client's close it
			// is the poll the client had in flight when it sent "1" (a
			// polling client always keeps one), and it ends with a noop as
			// if it had come first. The order of two requests on two
			// connections is the client's, not the order the server
			// happens to read them in.
			c.state = stateClosing
			linger = true
		default:
			c.state = stateClosed
		}
	}
	if linger {
		c.lingerLocked()
	}
	state := c.state
	c.mu.Unlock()

	c.e.mu.RLock()
	poll := c.e.poll
	c.e.mu.RUnlock()
	if poll != nil && poll.disarm(c) { // after c.closed is set: no arm can add it again
		c.e.track.add()
		go c.pollReady()
	}
	if state == stateClosed {
		c.e.unregister(c)
	}
	c.e.track.Go(func() {
		c.recvMu.Lock()
		defer c.recvMu.Unlock()
		c.handler.OnClose(c, reason)
	})
}

func (c *EngineConn) isShuttingDown() bool {
	c.e.mu.RLock()
	defer c.e.mu.RUnlock()
	return c.e.closed
}

// lingerLocked keeps a closing polling connection for its next GET, at most
// lingerTime; the Engine's tracker counts it until finish.
func (c *EngineConn) lingerLocked() {
	if !c.lingering {
		c.lingering = true
		c.e.track.add()
	}
	c.e.timers.Schedule(c, c.lingerTime())
}

func (c *EngineConn) lingerTime() time.Duration {
	return min(c.e.cfg.PingInterval, 5*time.Second)
}

// finish ends a closing polling connection (once its last poll is served,
// its client went away, or the linger time is over).
func (c *EngineConn) finish() {
	c.mu.Lock()
	if c.state != stateClosing {
		c.mu.Unlock()
		return
	}
	c.state = stateClosed
	c.e.timers.Stop(c)
	c.dropQueueLocked()
	lingered := c.lingering
	c.lingering = false
	c.mu.Unlock()
	c.e.unregister(c)
	if lingered {
		c.e.track.done()
	}
}

// queueArrayLen is the length of the pooled queue arrays: a connection
// idle after a write holds no queue array; its next send takes one from
// queuePool, and a steady flow of sends allocates none.
const queueArrayLen = 8

var queuePool = sync.Pool{New: func() any { return new([queueArrayLen]frame) }}

// appendLocked queues fs, taking a pooled array for an empty queue.
func (c *EngineConn) appendLocked(fs ...frame) {
	if cap(c.queue) == 0 {
		c.queue = queuePool.Get().(*[queueArrayLen]frame)[:0]
	}
	c.queue = append(c.queue, fs...)
}

// putQueueArray gives q's array back to queuePool if it is of its size.
// Nothing may use q afterwards.
func putQueueArray(q []frame) {
	if cap(q) == queueArrayLen {
		q = q[:queueArrayLen]
		clear(q)
		queuePool.Put((*[queueArrayLen]frame)(q))
	}
}

// recycleLocked keeps a written (cleared) batch's array for the next
// sends while more are queued, so that a steady flow of sends allocates no
// queue; when nothing is queued, the connection keeps no array (idle
// connections hold none).
func (c *EngineConn) recycleLocked(batch []frame) {
	if len(c.queue) == 0 {
		putQueueArray(batch)
		putQueueArray(c.queue)
		putQueueArray(c.spare)
		c.queue, c.spare = nil, nil
		return
	}
	if cap(batch) == 0 || cap(batch) > 256 {
		return
	}
	switch {
	case cap(c.queue) == 0:
		c.queue = batch[:0]
	case c.spare == nil:
		c.spare = batch[:0]
	}
}

func (c *EngineConn) dropQueueLocked() {
	clear(c.queue)
	c.queue = c.queue[:0]
	c.queued = 0
}

// startHeartbeat schedules the first ping.
func (c *EngineConn) startHeartbeat() {
	c.mu.Lock()
	c.e.timers.Schedule(c, c.e.cfg.PingInterval)
	c.mu.Unlock()
}

// TimerEntry is the connection's place in its Engine's timer heap.
func (c *EngineConn) TimerEntry() *timerheap.Entry { return &c.deadline }

// onTimer, called by the Engine's timer heap, ends a lingering polling
// connection; on an open one it sends a ping, or closes the connection when
// the previous ping went unanswered for PingTimeout.
func (c *EngineConn) onTimer() {
	c.mu.Lock()
	if c.e.timers.Scheduled(c) {
		c.mu.Unlock()
		return // stale: a pong or the linger moved the deadline after it was taken out
	}
	if c.state == stateClosing {
		c.mu.Unlock()
		c.finish()
		return
	}
	if c.state != stateOpen {
		c.mu.Unlock()
		return
	}
	if c.awaitPong {
		c.mu.Unlock()
		c.close(ReasonPingTimeout, closeAbort)
		return
	}
	c.awaitPong = true
	c.e.timers.Schedule(c, c.e.cfg.PingTimeout)
	// A ping always fits: it is not subject to the slow-consumer bound.
	c.appendLocked(frame{typ: eioPing})
	c.queued++
	c.kickLocked()
	c.mu.Unlock()
}

func (c *EngineConn) onPong() {
	c.mu.Lock()
	if c.state == stateOpen && c.awaitPong {
		c.awaitPong = false
		c.e.timers.Schedule(c, c.e.cfg.PingInterval)
	}
	c.mu.Unlock()
}

// deliver passes a message to the handler, one call at a time.
func (c *EngineConn) deliver(data []byte, binary bool) {
	c.recvMu.Lock()
	if !c.closed.Load() {
		c.handler.OnMessage(c, data, binary)
	}
	c.recvMu.Unlock()
}

// handlePacket processes one packet received on the active transport. It
// returns false when the connection must stop reading.
func (c *EngineConn) handlePacket(p eioPacket) bool {
	switch p.typ {
	case eioMessage:
		c.deliver(p.data, p.binary)
	case eioPong:
		c.onPong()
	case eioClose:
		c.close(ReasonTransportClose, closeByClient)
		return false
	case eioNoop:
	default:
		// open, upgrade, and pings (the server pings in v4) are out of place.
		c.close(ReasonParseError, closeAbort)
		return false
	}
	return true
}
