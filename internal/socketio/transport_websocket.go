package socketio

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// The WebSocket transport, on github.com/gobwas/ws (chosen by measurement,
// see docs/decisions.md). It keeps no buffer per idle connection, and on
// Linux no goroutine either: an idle connection waits in the Engine's
// poller (netpoll.go), or, with blocking readers, its reader blocks on a
// 2-byte header read; a reader borrows a pooled bufio.Reader only while a
// frame is being read; writes go through the Engine's writer pool
// (writer.go), and a blocking writer goroutine exists only while a client's
// send buffer is full, borrowing a pooled bufio.Writer for one batch.

const (
	readBufSize  = 4 << 10
	writeBufSize = 16 << 10
)

var (
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufSize) }}
	writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, writeBufSize) }}
	// pollReaderPool holds the readers of readiness reading (netpoll.go).
	pollReaderPool = sync.Pool{New: func() any { return newPollReader() }}
)

var (
	errWSProtocol = errors.New("socketio: WebSocket protocol error")
	// errWSInvalidUTF8 is a text message that is not valid UTF-8, which RFC
	// 6455 §5.6 forbids and §8.1 answers by failing the connection with
	// status 1007 (§7.4.1).
	errWSInvalidUTF8 = errors.New("socketio: WebSocket text message is not valid UTF-8")
	closeInvalidUTF8 = ws.MustCompileFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusInvalidFramePayloadData, "")))
)

// isWebSocketRequest reports whether r asks for a WebSocket upgrade.
func isWebSocketRequest(r *http.Request) bool {
	return r.Method == http.MethodGet &&
		strings.EqualFold(r.Header.Get("Upgrade"), "websocket") &&
		headerHasToken(r.Header.Get("Connection"), "upgrade")
}

func headerHasToken(v, token string) bool {
	for part := range strings.SplitSeq(v, ",") {
		if strings.EqualFold(strings.TrimSpace(part), token) {
			return true
		}
	}
	return false
}

// upgrade hijacks the connection and completes the WebSocket handshake. It
// returns the connection and any bytes the client sent after the handshake.
func upgrade(w http.ResponseWriter, r *http.Request) (net.Conn, *bufio.Reader, error) {
	conn, rw, _, err := ws.UpgradeHTTP(r, w)
	if err != nil {
		if conn != nil {
			_ = conn.Close()
		}
		return nil, nil, err
	}
	var br *bufio.Reader
	if rw != nil && rw.Reader.Buffered() > 0 {
		br = rw.Reader
	}
	return conn, br, nil
}

func (e *Engine) handshakeWebSocket(w http.ResponseWriter, r *http.Request) {
	if !isWebSocketRequest(r) {
		writeEIOError(w, eioErrBadRequest)
		return
	}
	c := e.newConn(r, transportWebSocket)
	if c == nil {
		writeEIOError(w, eioErrForbidden)
		return
	}
	conn, br, err := upgrade(w, r)
	if err != nil {
		e.log.Debug("socketio: websocket upgrade failed", "err", err)
		c.handler.OnClose(c, ReasonTransportError)
		return
	}
	c.setWS(conn) // c is not shared yet
	if !e.register(c) {
		_ = conn.Close()
		c.handler.OnClose(c, ReasonServerShutdown)
		return
	}
	_ = c.enqueue(frame{typ: eioOpen, data: e.openPacket(c, e.openWS)})
	c.startHeartbeat()
	e.track.add()
	go c.readLoop(conn, br, false)
}

// serveUpgrade takes a WebSocket for an existing polling session: the probe
// of an upgrade. The probe slot is taken before the handshake is answered,
// so that a second WebSocket sent as soon as the first is open finds it
// taken.
//
// A second WebSocket for a session that is upgrading or upgraded is
// accepted and closed at once, the session going on: "A client MUST NOT
// open more than one WebSocket connection per session. Should it happen,
// the server MUST close the WebSocket connection" (engine.io-protocol README,
// "WebSocket"); the reference server completes its handshake, then closes
// it, rather than answering the handshake with an HTTP error.
func (c *EngineConn) serveUpgrade(w http.ResponseWriter, r *http.Request) {
	if !isWebSocketRequest(r) {
		writeEIOError(w, eioErrBadRequest)
		return
	}
	c.mu.Lock()
	if c.state != stateOpen {
		c.mu.Unlock()
		writeEIOError(w, eioErrBadRequest)
		return
	}
	if c.transport != transportPolling || c.probing {
		c.mu.Unlock()
		if conn, _, err := upgrade(w, r); err == nil {
			_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = conn.Write(ws.CompiledCloseNormalClosure)
			_ = conn.Close()
		}
		return
	}
	c.probing = true
	c.mu.Unlock()
	conn, br, err := upgrade(w, r)
	c.mu.Lock()
	if err != nil || c.state != stateOpen {
		c.probing = false
		c.mu.Unlock()
		if conn != nil {
			_ = conn.Close()
		}
		return
	}
	c.poll.probe = conn
	c.mu.Unlock()
	c.e.track.add()
	go c.readLoop(conn, br, true)
}

// readLoop reads frames from conn until it fails or the connection closes.
// With probe set, it first runs the upgrade: "2probe" is answered with
// "3probe", and "5" moves the session onto this WebSocket.
// The caller has called c.e.track.add for it.
func (c *EngineConn) readLoop(conn net.Conn, br *bufio.Reader, probe bool) {
	defer c.e.track.done()
	var upgradeTimer *time.Timer
	if probe {
		upgradeTimer = time.AfterFunc(c.e.cfg.UpgradeTimeout, func() { c.abortProbe(conn) })
		defer upgradeTimer.Stop()
	}
	fr := frameReader{conn: conn, br: br, max: c.e.cfg.MaxPayload}
	if p := c.e.pollerFor(); p != nil {
		fr.raw = rawConn(conn)
	}
	defer fr.release()
	busy := false
	for {
		var err error
		if !probe && fr.idle() {
			if fr.raw != nil {
				// Between two messages with nothing buffered: read what
				// has come, or leave the waiting to the poller (netpoll.go).
				var armed bool
				if armed, err = c.pollIdle(&fr); armed {
					return
				}
			} else if busy {
				// About to wait for the client with a stack that handlers may
				// have grown: wait on a fresh goroutine (small stack) instead.
				// This keeps idle connections at the minimum stack size.
				fr.release()
				c.e.track.add()
				go c.readLoop(conn, nil, false)
				return
			}
		}
		busy = true
		var op ws.OpCode
		var payload []byte
		if err == nil {
			op, payload, err = fr.next()
		}
		if err != nil {
			if probe {
				c.abortProbe(conn)
				return
			}
			switch {
			case errors.Is(err, errTooBig):
				_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
				_, _ = conn.Write(ws.CompiledCloseMessageTooBig)
				c.close(ReasonTransportError, closeAbort)
			case errors.Is(err, errWSInvalidUTF8):
				// A malformed packet, as on polling: parse error.
				_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
				_, _ = conn.Write(closeInvalidUTF8)
				c.close(ReasonParseError, closeAbort)
			case errors.Is(err, errWSProtocol):
				c.close(ReasonTransportError, closeAbort)
			default:
				c.close(ReasonTransportClose, closeAbort)
			}
			return
		}
		switch op {
		case ws.OpClose:
			if probe {
				c.abortProbe(conn)
				return
			}
			c.close(ReasonTransportClose, closeGraceful)
			return
		case ws.OpPing:
			if probe {
				continue
			}
			if c.enqueuePong(payload) != nil {
				return
			}
			continue
		case ws.OpPong:
			continue
		case ws.OpBinary:
			if probe {
				c.abortProbe(conn)
				return
			}
			c.deliver(payload, true)
			continue
		}
		// Text: an Engine.IO packet.
		p, err := decodeEIOText(payload)
		if err != nil {
			if probe {
				c.abortProbe(conn)
				return
			}
			c.close(ReasonParseError, closeAbort)
			return
		}
		if probe {
			switch {
			case p.typ == eioPing && string(p.data) == "probe":
				_ = conn.SetWriteDeadline(time.Now().Add(c.e.cfg.WriteTimeout))
				var b [16]byte
				if _, err := conn.Write(append(appendWSHeader(b[:0], ws.OpText, 6), "3probe"...)); err != nil {
					c.abortProbe(conn)
					return
				}
				_ = conn.SetWriteDeadline(time.Time{})
				c.mu.Lock()
				c.upgrading = true
				c.poll.probedAt = time.Since(c.e.epoch)
				c.wakePollLocked()
				c.mu.Unlock()
			case p.typ == eioUpgrade && c.upgradingOn(conn):
				if !c.completeUpgrade(conn) {
					_ = conn.Close()
					return
				}
				probe = false
				upgradeTimer.Stop()
			default:
				c.abortProbe(conn)
				return
			}
			continue
		}
		if !c.handlePacket(p) {
			return
		}
	}
}

// sinceProbed is how long ago upgrading became true.
func (c *EngineConn) sinceProbed() time.Duration { return time.Since(c.e.epoch) - c.poll.probedAt }

func (c *EngineConn) upgradingOn(conn net.Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.upgrading && c.poll.probe == conn
}

// completeUpgrade moves the session onto conn.
func (c *EngineConn) completeUpgrade(conn net.Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateOpen || c.poll.probe != conn {
		return false
	}
	c.poll.probe = nil
	c.probing = false
	c.upgrading = false
	c.transport = transportWebSocket
	c.setWS(conn)
	c.wakePollLocked() // a GET still waiting ends with a noop
	if len(c.queue) > 0 {
		c.kickLocked()
	}
	return true
}

// abortProbe drops a probe WebSocket; the session stays on polling.
func (c *EngineConn) abortProbe(conn net.Conn) {
	_ = conn.Close()
	c.mu.Lock()
	if c.poll.probe == conn {
		c.poll.probe = nil
		c.probing = false
		c.upgrading = false
	}
	c.mu.Unlock()
}

func (c *EngineConn) enqueuePong(payload []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateOpen {
		return ErrClosed
	}
	c.appendLocked(frame{op: ws.OpPong, data: payload})
	c.queued += len(payload) + 1
	c.kickLocked()
	return nil
}

// setWS makes conn the connection's WebSocket. c.mu is held, or c is not
// shared yet.
func (c *EngineConn) setWS(conn net.Conn) {
	c.ws = conn
	c.wsRaw = rawConn(conn)
}

// writeLoop is the blocking write path (see writer.go): it drains the queue
// onto the WebSocket, each pass writing every pending frame with one flush
// under one write deadline, and exits when the queue is empty, giving the
// connection back to the writer pool. After a graceful close it ends with a
// close frame and closes the socket.
func (c *EngineConn) writeLoop() {
	defer c.e.track.done()
	for {
		c.mu.Lock()
		batch := c.queue
		conn := c.ws
		if len(batch) == 0 {
			c.writing = false
			closing := c.state != stateOpen
			sendClose := c.closeFrame
			if !closing && conn != nil {
				// The pool's writes must not find this deadline expired.
				_ = conn.SetWriteDeadline(time.Time{})
			}
			c.mu.Unlock()
			if closing && conn != nil {
				if sendClose {
					_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
					_, _ = conn.Write(ws.CompiledCloseNormalClosure)
				}
				_ = conn.Close()
			}
			return
		}
		c.queue, c.spare = c.spare[:0], nil
		c.mu.Unlock()

		n, err := writeBatch(conn, batch, c.e.cfg.WriteTimeout)
		clear(batch)

		c.mu.Lock()
		c.queued -= n
		c.recycleLocked(batch)
		c.mu.Unlock()
		if err != nil {
			c.writeFailed(conn, err)
			return
		}
	}
}

// writeBatch writes frames as WebSocket frames through one pooled buffer and
// one flush. It returns the queue bytes they accounted for.
func writeBatch(conn net.Conn, batch []frame, timeout time.Duration) (int, error) {
	bw := writerPool.Get().(*bufio.Writer)
	bw.Reset(conn)
	defer func() {
		bw.Reset(nil)
		writerPool.Put(bw)
	}()
	_ = conn.SetWriteDeadline(time.Now().Add(timeout))
	var hdr [14]byte
	n := 0
	for _, f := range batch {
		n += f.size()
		_, _ = bw.Write(appendWSFrameHeader(hdr[:0], f))
		_, _ = bw.Write(f.data)
	}
	return n, bw.Flush()
}

var errTooBig = errors.New("socketio: message exceeds maxPayload")

// frameReader reads client WebSocket frames. While idle it holds no buffer:
// it blocks on the first two bytes of a header read straight from the
// connection, then borrows a pooled bufio.Reader for the rest of the frame
// and keeps it only while it holds buffered bytes.
type frameReader struct {
	conn net.Conn
	raw  syscall.RawConn // set when the reader may peek (readiness reading)
	br   *bufio.Reader
	pr   *pollReader // br's pollReader, with raw
	max  int
	msg  []byte // the fragments of a message being assembled
	hdr  [12]byte
	own  bool // br comes from readerPool, or is pr's
	op   ws.OpCode
}

func (fr *frameReader) release() {
	switch {
	case fr.pr != nil:
		fr.pr.br.Reset(&fr.pr.src)
		fr.pr.src.conn, fr.pr.src.raw = nil, nil
		pollReaderPool.Put(fr.pr)
		fr.pr = nil
	case fr.br != nil && fr.own:
		fr.br.Reset(nil)
		readerPool.Put(fr.br)
	}
	fr.br = nil
}

// peek, when the reader is idle, reads what the connection has without
// waiting: nil when bytes are buffered now, errWouldBlock when there are
// none, or the connection's error (io.EOF at its end). fr.raw is set.
func (fr *frameReader) peek() error {
	if fr.br != nil && fr.br.Buffered() == 0 {
		fr.release() // perhaps the handshake's reader, which does not peek
	}
	r := fr.reader()
	fr.pr.src.nonblock = true
	_, err := r.Peek(1)
	fr.pr.src.nonblock = false
	return err
}

// idle reports whether the next read waits on the network: nothing is
// buffered and no fragmented message is being assembled.
func (fr *frameReader) idle() bool {
	return fr.msg == nil && (fr.br == nil || fr.br.Buffered() == 0)
}

func (fr *frameReader) reader() *bufio.Reader {
	if fr.br == nil {
		if fr.raw != nil {
			fr.pr = pollReaderPool.Get().(*pollReader)
			fr.pr.src.conn, fr.pr.src.raw = fr.conn, fr.raw
			fr.br = fr.pr.br
		} else {
			fr.br = readerPool.Get().(*bufio.Reader)
			fr.br.Reset(fr.conn)
		}
		fr.own = true
	}
	return fr.br
}

// next returns the next complete message or control frame, unmasked.
func (fr *frameReader) next() (ws.OpCode, []byte, error) {
	for {
		if fr.br != nil && fr.br.Buffered() == 0 {
			fr.release()
		}
		h := fr.hdr[:2]
		if fr.br == nil {
			if _, err := io.ReadFull(fr.conn, h); err != nil {
				return 0, nil, err
			}
		} else if _, err := io.ReadFull(fr.br, h); err != nil {
			return 0, nil, err
		}
		r := fr.reader()
		fin := h[0]&0x80 != 0
		if h[0]&0x70 != 0 || h[1]&0x80 == 0 {
			return 0, nil, errWSProtocol // RSV bits without extension, or an unmasked client frame
		}
		op := ws.OpCode(h[0] & 0x0f)
		length := int64(h[1] & 0x7f)
		switch length {
		case 126:
			if _, err := io.ReadFull(r, fr.hdr[2:4]); err != nil {
				return 0, nil, err
			}
			length = int64(binary.BigEndian.Uint16(fr.hdr[2:4]))
		case 127:
			if _, err := io.ReadFull(r, fr.hdr[2:10]); err != nil {
				return 0, nil, err
			}
			length = int64(binary.BigEndian.Uint64(fr.hdr[2:10]))
			if length < 0 {
				return 0, nil, errWSProtocol
			}
		}
		var mask [4]byte
		if _, err := io.ReadFull(r, mask[:]); err != nil {
			return 0, nil, err
		}
		if op.IsControl() {
			if !fin || length > ws.MaxControlFramePayloadSize {
				return 0, nil, errWSProtocol
			}
			p := make([]byte, length)
			if _, err := io.ReadFull(r, p); err != nil {
				return 0, nil, err
			}
			ws.Cipher(p, mask, 0)
			if op != ws.OpClose && op != ws.OpPing && op != ws.OpPong {
				return 0, nil, errWSProtocol
			}
			return op, p, nil
		}
		switch op {
		case ws.OpContinuation:
			if fr.msg == nil {
				return 0, nil, errWSProtocol
			}
		case ws.OpText, ws.OpBinary:
			if fr.msg != nil {
				return 0, nil, errWSProtocol
			}
			fr.op = op
		default:
			return 0, nil, errWSProtocol
		}
		total := int64(len(fr.msg)) + length
		if total > int64(fr.max) {
			return 0, nil, errTooBig
		}
		start := len(fr.msg)
		if fr.msg == nil && fin {
			fr.msg = make([]byte, length)
		} else {
			fr.msg = append(fr.msg, make([]byte, length)...)
		}
		p := fr.msg[start:]
		if _, err := io.ReadFull(r, p); err != nil {
			return 0, nil, err
		}
		ws.Cipher(p, mask, 0)
		if !fin {
			if fr.msg == nil {
				fr.msg = []byte{}
			}
			continue
		}
		msg := fr.msg
		fr.msg = nil
		if fr.op == ws.OpText && !utf8.Valid(msg) {
			return 0, nil, errWSInvalidUTF8
		}
		return fr.op, msg, nil
	}
}
