package socketio

import (
	"io"
	"net"
	"net/http"
	"time"

	"github.com/gobwas/ws"
)

// Refusals a client can read. A client sees an HTTP error on the Engine.IO
// handshake only as a transport error: socket.io-client's connect_error is
// "xhr poll error" (polling; a browser shows the status only when CORS lets
// the page read the response) or "websocket error" / "Unexpected server
// response: 403" (WebSocket: a browser never sees the status), with no data.
// What every client reads is a CONNECT_ERROR packet. So a refused handshake
// is answered with a session that exists only on the wire: the open packet
// (no upgrades), the CONNECT_ERROR of the default namespace "/", and the end
// of the session (the close packet over polling, a close frame over
// WebSocket), all in the one response. The session is never registered: no
// state, no timer, no goroutine, nothing counted in Len; whatever the client
// sends afterwards (its CONNECT, its close) is answered "Session ID unknown",
// so no packet of it reaches a handler. It costs what an HTTP error costs,
// which keeps a flood cheap to refuse.
//
// The CONNECT_ERROR arrives before the client's CONNECT: socket.io-client
// (and the other official clients) take a CONNECT_ERROR for their namespace
// whenever it comes, emit connect_error with err.data, and do not reconnect
// on their own.

// Refuse answers the Engine.IO handshake request r with err as the refusal
// of the default namespace: the client's connect_error carries
// {"message": ..., "data": ...} as for a middleware's *ConnectError (any
// other error gives its text as the message). The Origin, if any, is echoed
// in Access-Control-Allow-Origin, so that the refused page can read its
// refusal (and nothing else: the response holds nothing but it).
//
// It returns false, writing nothing, when r is not an Engine.IO v4
// handshake (a request of an open session, another protocol version, a
// WebSocket handshake without its Upgrade headers): answer those with an
// HTTP status.
func (s *Server) Refuse(w http.ResponseWriter, r *http.Request, err error) bool {
	return s.engine.refuse(w, r, connectErrorPacket("/", err))
}

// connectErrorPacket is the CONNECT_ERROR packet of nsp for err.
func connectErrorPacket(nsp string, err error) []byte {
	payload := connectErrorPayload(err)
	pkt := appendSIOHeader(make([]byte, 0, 8+len(nsp)+len(payload)), sioConnectError, 0, nsp, -1)
	return append(pkt, payload...)
}

// refuse writes the session that carries only msg, an Engine.IO message
// payload, and ends; see Server.Refuse.
func (e *Engine) refuse(w http.ResponseWriter, r *http.Request, msg []byte) bool {
	q := r.URL.Query()
	if r.Method != http.MethodGet || q.Get("EIO") != "4" || q.Get("sid") != "" {
		return false
	}
	transport := q.Get("transport")
	switch {
	case transport == "polling":
	case transport == "websocket" && isWebSocketRequest(r):
	default:
		return false
	}
	if o := r.Header.Get("Origin"); o != "" {
		e.setCORS(w.Header(), r, o)
	}
	open := e.openPacket(&EngineConn{id: newID()}, e.openWS) // upgrades: []
	if transport == "polling" {
		body := make([]byte, 0, len(open)+len(msg)+5)
		body = append(body, eioOpen)
		body = append(body, open...)
		body = append(body, recordSeparator, eioMessage)
		body = append(body, msg...)
		body = append(body, recordSeparator, eioClose)
		writePollingBody(w, body)
		return true
	}
	conn, _, err := upgrade(w, r)
	if err != nil {
		e.log.Debug("socketio: websocket upgrade of a refusal failed", "err", err)
		return true // the upgrade answered, or the connection is gone
	}
	defer func() { _ = conn.Close() }()
	if _, err := writeBatch(conn, []frame{{typ: eioOpen, data: open}, {typ: eioMessage, data: msg}}, refusalLinger); err != nil {
		return true
	}
	_, _ = conn.Write(ws.CompiledCloseNormalClosure)
	// The client answers the open packet with its CONNECT and the close
	// frame with its own. Closing before they arrive would answer them with
	// a TCP reset, and a reset may make the client's stack drop the frames
	// it has not read yet. So read (and drop) what it sends until its close
	// frame, briefly, and only for so many refusals at a time: beyond them a
	// flood is closed at once.
	select {
	case refusalLingers <- struct{}{}:
		defer func() { <-refusalLingers }()
		_ = conn.SetReadDeadline(time.Now().Add(refusalLinger))
		drainUntilClose(conn)
	default:
	}
	return true
}

// refusalLinger bounds the writing of a WebSocket refusal and the wait for
// the client's close frame; refusalLingers bounds the refusals waiting.
const refusalLinger = time.Second

var refusalLingers = make(chan struct{}, 256)

// drainUntilClose reads client frames, dropping them, until a close frame,
// an error (the deadline) or 64 KiB.
func drainUntilClose(conn net.Conn) {
	r := io.LimitReader(conn, 64<<10)
	for {
		h, err := ws.ReadHeader(r)
		if err != nil || h.OpCode == ws.OpClose {
			return
		}
		if _, err := io.CopyN(io.Discard, r, h.Length); err != nil {
			return
		}
	}
}

// refusePreflight answers the CORS preflight of a handshake from an Origin
// that will be refused, so that the handshake itself can be sent and its
// refusal read; it reports false for any other request.
func (e *Engine) refusePreflight(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodOptions || r.URL.Query().Get("sid") != "" {
		return false
	}
	e.setCORS(w.Header(), r, r.Header.Get("Origin"))
	w.WriteHeader(http.StatusNoContent)
	return true
}
