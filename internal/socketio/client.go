package socketio

import (
	"encoding/base64"
	"sync"
	"time"
)

// client is the Socket.IO side of one Engine.IO connection: its sockets
// (one per connected namespace) and the reassembly of binary packets.
type client struct {
	srv   *Server
	conn  *EngineConn
	timer *time.Timer // connect timeout

	mu      sync.Mutex
	sockets []*Socket
	joined  bool
	closed  bool

	// Reader-only state (OnMessage calls are serialized): a binary packet
	// waiting for its attachments; nil between packets.
	pending *binaryPacket
}

// binaryPacket is a binary packet being assembled: kept apart from client,
// so that a connection between packets holds one pointer for it.
type binaryPacket struct {
	p        sioPacket
	atts     [][]byte
	attBytes int
}

var _ EngineHandler = (*client)(nil)

func (cl *client) OnMessage(c *EngineConn, data []byte, binary bool) {
	if binary {
		if cl.pending == nil {
			cl.protocolError("binary data outside a binary packet")
			return
		}
		b := cl.pending
		b.attBytes += len(data)
		if b.attBytes > cl.srv.cfg.MaxPayload {
			cl.protocolError("binary attachments exceed maxPayload")
			return
		}
		b.atts = append(b.atts, data)
		if len(b.atts) < b.p.attachments {
			return
		}
		p, atts := b.p, b.atts
		cl.pending = nil
		for i, a := range p.args {
			r, err := replacePlaceholders(a, atts)
			if err != nil {
				cl.protocolError("bad placeholder")
				return
			}
			p.args[i] = r
		}
		cl.dispatch(p)
		return
	}
	if cl.pending != nil {
		cl.protocolError("text packet while awaiting attachments")
		return
	}
	p, err := decodeSIO(data)
	if err != nil {
		cl.protocolError("malformed packet")
		return
	}
	if p.attachments > 0 {
		cl.pending = &binaryPacket{p: p}
		return
	}
	cl.dispatch(p)
}

func (cl *client) protocolError(what string) {
	cl.srv.log.Debug("socketio: closing connection on protocol error", "sid", cl.conn.id, "error", what)
	cl.pending = nil
	cl.conn.close(ReasonParseError, closeAbort)
}

func (cl *client) dispatch(p sioPacket) {
	switch p.typ {
	case sioConnect:
		cl.connect(p)
	case sioDisconnect:
		if s := cl.socket(p.nsp); s != nil && s.detach() {
			s.finish(ReasonClientDisconnect)
		}
	case sioEvent, sioBinaryEvent:
		if s := cl.socket(p.nsp); s != nil {
			s.dispatchEvent(p)
		}
	case sioAck, sioBinaryAck:
		if s := cl.socket(p.nsp); s != nil {
			s.dispatchAck(p)
		}
	}
}

func (cl *client) socket(nsp string) *Socket {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	for _, s := range cl.sockets {
		if s.ns.name == nsp {
			return s
		}
	}
	return nil
}

func (cl *client) remove(s *Socket) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	for i, x := range cl.sockets {
		if x == s {
			cl.sockets = append(cl.sockets[:i], cl.sockets[i+1:]...)
			return
		}
	}
}

func (cl *client) send(pkt []byte) error {
	return cl.conn.enqueue(frame{typ: eioMessage, data: pkt})
}

func (cl *client) connect(p sioPacket) {
	ns := cl.srv.namespace(p.nsp)
	if ns == nil {
		cl.refuse(p.nsp, []byte(`{"message":"Invalid namespace"}`))
		return
	}
	if s := cl.socket(p.nsp); s != nil {
		cl.sendConnect(s) // already connected: answer again, idempotently
		return
	}
	auth := p.data
	if len(auth) == 0 {
		auth = []byte("{}")
	}
	h := &Handshake{Namespace: ns.name, Auth: auth, Conn: cl.conn}
	mws, onConn := ns.handlers()
	for _, m := range mws {
		if err := m(h); err != nil {
			cl.refuse(ns.name, connectErrorPayload(err))
			return
		}
	}
	s := newSocket(cl, ns, h)
	cl.mu.Lock()
	if cl.closed {
		cl.mu.Unlock()
		s.connected.Store(false) // its Context, if ever asked, is cancelled
		return
	}
	cl.sockets = append(cl.sockets, s)
	cl.joined = true
	t := cl.timer
	cl.timer = nil // an idle connection keeps no timer but the heartbeat
	cl.mu.Unlock()
	if t != nil {
		t.Stop()
	}
	if cl.sendConnect(s) != nil {
		return
	}
	if onConn != nil {
		onConn(s)
	}
}

func (cl *client) sendConnect(s *Socket) error {
	pkt := make([]byte, 0, 16+len(s.ns.name)+base64.RawURLEncoding.EncodedLen(len(s.id)))
	pkt = appendSIOHeader(pkt, sioConnect, 0, s.ns.name, -1)
	pkt = append(pkt, `{"sid":"`...)
	pkt = base64.RawURLEncoding.AppendEncode(pkt, s.id[:])
	pkt = append(pkt, `"}`...)
	return cl.send(pkt)
}

func (cl *client) refuse(nsp string, payload []byte) {
	pkt := appendSIOHeader(make([]byte, 0, 8+len(nsp)+len(payload)), sioConnectError, 0, nsp, -1)
	_ = cl.send(append(pkt, payload...))
}

func (cl *client) onConnectTimeout() {
	cl.mu.Lock()
	joined := cl.joined
	cl.mu.Unlock()
	if !joined {
		cl.conn.close(ReasonConnectTimeout, closeGraceful)
	}
}

// OnClose ends every socket of the connection; it runs after the last
// OnMessage.
func (cl *client) OnClose(c *EngineConn, reason string) {
	cl.mu.Lock()
	if cl.timer != nil {
		cl.timer.Stop()
		cl.timer = nil
	}
	cl.closed = true
	socks := cl.sockets
	cl.sockets = nil
	cl.mu.Unlock()
	for _, s := range socks {
		if s.detach() {
			s.finish(reason)
		}
	}
}

// disconnectAll sends DISCONNECT for every socket, then closes the
// connection.
func (cl *client) disconnectAll() {
	cl.mu.Lock()
	socks := append([]*Socket(nil), cl.sockets...)
	cl.mu.Unlock()
	for _, s := range socks {
		s.disconnect()
	}
	cl.conn.close(ReasonForcedClose, closeGraceful)
}
