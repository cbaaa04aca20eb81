package socketio

import (
	"bytes"
	"encoding/json"
	"sync"

	"github.com/gobwas/ws"
)

// encoder is a pooled JSON encoder that does not escape HTML.
type encoder struct {
	buf bytes.Buffer
	enc *json.Encoder
}

var encoderPool = sync.Pool{New: func() any {
	e := &encoder{}
	e.enc = json.NewEncoder(&e.buf)
	e.enc.SetEscapeHTML(false)
	return e
}}

func getEncoder() *encoder {
	e := encoderPool.Get().(*encoder)
	e.buf.Reset()
	return e
}

func putEncoder(e *encoder) {
	if e.buf.Cap() <= 64<<10 {
		encoderPool.Put(e)
	}
}

// value appends v as JSON (without the newline json.Encoder adds).
func (e *encoder) value(v any) error {
	if err := e.enc.Encode(v); err != nil {
		return err
	}
	e.buf.Truncate(e.buf.Len() - 1)
	return nil
}

// array appends the JSON array [head?, args...]. With withHead the event
// name comes first.
func (e *encoder) array(withHead bool, head string, args []any) error {
	e.buf.WriteByte('[')
	if withHead {
		if err := e.value(head); err != nil {
			return err
		}
	}
	for i, a := range args {
		if i > 0 || withHead {
			e.buf.WriteByte(',')
		}
		if err := e.value(a); err != nil {
			return err
		}
	}
	e.buf.WriteByte(']')
	return nil
}

// encodePacket returns the frames of an EVENT (withHead) or ACK packet:
// the text packet and, if the arguments hold Binary values, the
// attachments.
func encodePacket(typ byte, nsp string, id int64, withHead bool, event string, args []any) ([]frame, error) {
	e := getEncoder()
	defer putEncoder(e)
	if err := e.array(withHead, event, args); err != nil {
		return nil, err
	}
	body, atts, err := extractBinary(e.buf.Bytes())
	if err != nil {
		return nil, err
	}
	if len(atts) > 0 {
		typ += sioBinaryEvent - sioEvent // EVENT→BINARY_EVENT, ACK→BINARY_ACK
	}
	pkt := make([]byte, 0, 24+len(nsp)+len(body))
	pkt = appendSIOHeader(pkt, typ, len(atts), nsp, id)
	pkt = append(pkt, body...)
	frames := make([]frame, 1+len(atts))
	frames[0] = frame{typ: eioMessage, data: pkt}
	for i, a := range atts {
		frames[i+1] = frame{typ: eioMessage, bin: true, data: a}
	}
	return frames, nil
}

// EncodeEvent encodes an EVENT packet for the namespace nsp ("/" for the
// default one) once, for Socket.SendEncoded to many sockets of that
// namespace: for example 2["message",{"id":1}] or 2/chat,["message",{"id":1}].
// The arguments are encoded with encoding/json. Binary arguments are refused
// with ErrBinaryEncoded, and reserved event names with ErrReservedEvent.
func EncodeEvent(nsp, event string, args ...any) ([]byte, error) {
	return encodeEvent(false, nsp, event, args)
}

// EncodeEventFrame is EncodeEvent encoded one step further: into the
// complete WebSocket frame that carries the packet to a client (frame
// header, Engine.IO message type, packet). Server frames are not masked, so
// these bytes are the same for every recipient: queued with
// Socket.SendFrame to many sockets, they are written as they are, with
// nothing composed or copied per recipient but the write itself. A socket on
// HTTP long-polling is sent the packet inside.
func EncodeEventFrame(nsp, event string, args ...any) ([]byte, error) {
	return encodeEvent(true, nsp, event, args)
}

func encodeEvent(wsFrame bool, nsp, event string, args []any) ([]byte, error) {
	if reservedEvents[event] {
		return nil, ErrReservedEvent
	}
	e := getEncoder()
	defer putEncoder(e)
	if err := e.array(true, event, args); err != nil {
		return nil, err
	}
	body := e.buf.Bytes()
	if bytes.Contains(body, []byte(binaryMarkerPrefix)) {
		return nil, ErrBinaryEncoded
	}
	var hdr [24]byte
	sio := appendSIOHeader(hdr[:0], sioEvent, 0, nsp, -1)
	n := len(sio) + len(body)
	if !wsFrame {
		return append(append(make([]byte, 0, n), sio...), body...), nil
	}
	pkt := make([]byte, 0, 11+n+len(nsp))
	pkt = appendWSHeader(pkt, ws.OpText, 1+n)
	pkt = append(pkt, eioMessage)
	pkt = append(pkt, sio...)
	return append(pkt, body...), nil
}
