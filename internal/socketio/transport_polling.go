package socketio

import (
	"errors"
	"io"
	"net/http"
	"sync"
	"time"
)

var pollBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// servePoll answers a polling GET: with the queued packets, or, when there
// are none, after waiting for one (or for an upgrade, a close, or the client
// going away).
//
// Upgrades (engine.io-protocol README, "Upgrade"): a GET that was waiting
// when the probe is answered ends at once with a noop, so that the client
// can send "5". A GET that starts once a probe WebSocket is open is late: the
// client sent it around its probe, over another connection, so the order in
// which the server reads the two says nothing. Such a GET is not answered by
// the upgrade's intermediate state: if the upgrade completes while it waits
// it gets 400, as any poll after the upgrade; if the probe is dropped it is
// an ordinary poll; and if the client waits for it before sending "5", it
// gets a noop Config.upgradeNoop after the probe was answered (the
// reference server's 100 ms fast-upgrade cycle).
func (c *EngineConn) servePoll(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	if c.transport != transportPolling {
		c.mu.Unlock()
		writeEIOError(w, eioErrBadRequest)
		return
	}
	if c.polling {
		// A second concurrent GET: the reference server closes the session.
		c.mu.Unlock()
		c.close(ReasonTransportError, closeAbort)
		writeEIOError(w, eioErrBadRequest)
		return
	}
	if c.state == stateClosed {
		c.mu.Unlock()
		writeEIOError(w, eioErrUnknownSID)
		return
	}
	c.polling = true
	late := c.probing
	bound := c.e.cfg.upgradeNoop
	for len(c.queue) == 0 && c.state == stateOpen && c.transport == transportPolling &&
		!(c.upgrading && (!late || c.sinceProbed() >= bound)) {
		if c.poll.wake == nil {
			c.poll.wake = make(chan struct{}, 1)
		}
		wake := c.poll.wake
		var noop <-chan time.Time
		var t *time.Timer
		if late && c.upgrading {
			t = time.NewTimer(bound - c.sinceProbed())
			noop = t.C
		}
		c.mu.Unlock()
		select {
		case <-wake:
		case <-noop:
		case <-r.Context().Done():
			if t != nil {
				t.Stop()
			}
			c.mu.Lock()
			c.polling = false
			c.poll.wake = nil
			closing := c.state == stateClosing
			c.mu.Unlock()
			if closing {
				c.finish() // no poll left to deliver the end
			}
			return
		}
		if t != nil {
			t.Stop()
		}
		c.mu.Lock()
	}
	c.poll.wake = nil
	if c.transport != transportPolling {
		// Upgraded while waiting: a poll from before the probe ends with a
		// noop, a late one is a poll after the upgrade.
		c.polling = false
		c.mu.Unlock()
		if late {
			writeEIOError(w, eioErrBadRequest)
			return
		}
		writePollingBody(w, []byte{eioNoop})
		return
	}
	batch := c.queue
	c.queue, c.spare = c.spare[:0], nil
	state, mode := c.state, c.mode
	c.mu.Unlock()

	bp := pollBufPool.Get().(*[]byte)
	body := (*bp)[:0]
	n := 0
	for _, f := range batch {
		if f.typ == 0 {
			continue // WebSocket control frames have no polling form
		}
		if len(body) > 0 {
			body = append(body, recordSeparator)
		}
		body = appendPollingFrame(body, f)
		n += f.size()
	}
	closeNext := false
	switch {
	case state != stateOpen && mode == closeByClient:
		body = appendSep(body, eioNoop)
	case state != stateOpen && len(body) > 0:
		// The last messages go alone and the close follows in the next
		// poll, as the reference server drains then closes: socket.io-client
		// decodes a payload's messages a tick after it handled its close,
		// and would drop them.
		closeNext = true
	case state != stateOpen:
		body = appendSep(body, eioClose)
	case len(body) == 0:
		body = append(body, eioNoop) // upgrading, or the transport changed
	}
	writePollingBody(w, body)
	if cap(body) <= 64<<10 {
		*bp = body[:0]
		pollBufPool.Put(bp)
	}
	clear(batch)

	c.mu.Lock()
	c.polling = false
	c.queued -= n
	c.recycleLocked(batch)
	if closeNext && c.state == stateClosing {
		c.lingerLocked() // until the next poll takes the close
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.finish() // no-op unless the connection is closing
}

func appendSep(body []byte, typ byte) []byte {
	if len(body) > 0 {
		body = append(body, recordSeparator)
	}
	return append(body, typ)
}

// servePost reads a polling POST: one or more packets separated by the
// record separator.
func (c *EngineConn) servePost(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	if c.transport != transportPolling || c.state != stateOpen {
		c.mu.Unlock()
		writeEIOError(w, eioErrBadRequest)
		return
	}
	if c.posting {
		c.mu.Unlock()
		c.close(ReasonTransportError, closeAbort)
		writeEIOError(w, eioErrBadRequest)
		return
	}
	c.posting = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.posting = false
		c.mu.Unlock()
	}()

	max := c.e.cfg.MaxPayload
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(max)))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			c.close(ReasonTransportError, closeAbort)
			w.Header().Set("Connection", "close")
			http.Error(w, "payload too large", http.StatusRequestEntityTooLarge)
			return
		}
		c.close(ReasonTransportError, closeAbort)
		return
	}
	pkts, err := decodePollingPayload(body)
	if err != nil {
		c.close(ReasonParseError, closeAbort)
		writeEIOError(w, eioErrBadRequest)
		return
	}
	for _, p := range pkts {
		if !c.handlePacket(p) {
			break
		}
	}
	h := w.Header()
	h.Set("Content-Type", "text/html")
	h.Set("Content-Length", "2")
	_, _ = w.Write([]byte("ok"))
}
