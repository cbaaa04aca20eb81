package socketio

import (
	"bytes"
	"encoding/base64"
	"errors"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// Engine.IO v4 packet types, as the ASCII digit that starts a text packet.
const (
	eioOpen    byte = '0'
	eioClose   byte = '1'
	eioPing    byte = '2'
	eioPong    byte = '3'
	eioMessage byte = '4'
	eioUpgrade byte = '5'
	eioNoop    byte = '6'
)

// recordSeparator joins the packets of one HTTP long-polling payload.
const recordSeparator = 0x1e

var errEIOParse = errors.New("socketio: malformed Engine.IO packet")

// eioPacket is one decoded Engine.IO packet. For a binary message typ is
// eioMessage and binary is true.
type eioPacket struct {
	typ    byte
	binary bool
	data   []byte
}

// decodeEIOText decodes a text packet (a WebSocket text frame, or one record
// of a polling payload without the "b" prefix).
func decodeEIOText(p []byte) (eioPacket, error) {
	if len(p) == 0 || p[0] < eioOpen || p[0] > eioNoop {
		return eioPacket{}, errEIOParse
	}
	return eioPacket{typ: p[0], data: p[1:]}, nil
}

// decodePollingPayload splits a polling POST body into packets and decodes
// each; binary packets ("b" + base64) are decoded into fresh slices. It
// returns an error, and no packet, if any record is malformed. A payload is
// text (Engine.IO protocol README, "HTTP long-polling" → "Sending data": the
// packets are encoded as UTF-8 strings), so a body that is not valid UTF-8
// is malformed: it is refused whole rather than stored with U+FFFD in place
// of the bad bytes.
func decodePollingPayload(body []byte) ([]eioPacket, error) {
	if len(body) == 0 || !utf8.Valid(body) {
		return nil, errEIOParse
	}
	pkts := make([]eioPacket, 0, bytes.Count(body, []byte{recordSeparator})+1)
	for {
		rec, rest, more := bytes.Cut(body, []byte{recordSeparator})
		body = rest
		if len(rec) > 0 && rec[0] == 'b' {
			data, err := base64.StdEncoding.AppendDecode(make([]byte, 0, base64.StdEncoding.DecodedLen(len(rec)-1)), rec[1:])
			if err != nil {
				return nil, errEIOParse
			}
			pkts = append(pkts, eioPacket{typ: eioMessage, binary: true, data: data})
		} else {
			p, err := decodeEIOText(rec)
			if err != nil {
				return nil, err
			}
			pkts = append(pkts, p)
		}
		if !more {
			break
		}
	}
	return pkts, nil
}

// frame is one queued outgoing item: an Engine.IO packet, or (typ == 0) a raw
// WebSocket control frame (pong, close).
type frame struct {
	data []byte
	typ  byte
	bin  bool
	op   ws.OpCode
	// ws: data is a complete WebSocket text frame carrying a message
	// packet (header, '4', packet), made once and shared by every
	// recipient (EncodeEventFrame).
	ws bool
}

// wsFramePayload returns the Engine.IO packet (type byte included) inside a
// complete unmasked WebSocket frame made by appendWSHeader.
func wsFramePayload(b []byte) []byte {
	switch b[1] & 0x7f {
	case 126:
		return b[4:]
	case 127:
		return b[10:]
	default:
		return b[2:]
	}
}

// appendWSFrame appends f as one WebSocket frame.
func appendWSFrame(dst []byte, f frame) []byte {
	return append(appendWSFrameHeader(dst, f), f.data...)
}

// appendWSFrameHeader appends what goes before f.data in f's WebSocket
// frame: the header and, for an Engine.IO packet, its type byte.
func appendWSFrameHeader(dst []byte, f frame) []byte {
	switch {
	case f.ws:
		return dst
	case f.typ == 0:
		return appendWSHeader(dst, f.op, len(f.data))
	case f.bin:
		return appendWSHeader(dst, ws.OpBinary, len(f.data))
	default:
		return append(appendWSHeader(dst, ws.OpText, len(f.data)+1), f.typ)
	}
}

// size is the bytes the frame accounts for in the write queue.
func (f frame) size() int { return len(f.data) + 1 }

// appendPollingFrame appends f as one record of a polling payload.
func appendPollingFrame(dst []byte, f frame) []byte {
	if f.bin {
		dst = append(dst, 'b')
		return base64.StdEncoding.AppendEncode(dst, f.data)
	}
	if f.ws {
		return append(dst, wsFramePayload(f.data)...)
	}
	dst = append(dst, f.typ)
	return append(dst, f.data...)
}

// pollingFrameLen is the length appendPollingFrame adds.
func pollingFrameLen(f frame) int {
	if f.bin {
		return 1 + base64.StdEncoding.EncodedLen(len(f.data))
	}
	if f.ws {
		return len(wsFramePayload(f.data))
	}
	return 1 + len(f.data)
}

// appendWSHeader appends an unmasked, final WebSocket frame header.
func appendWSHeader(dst []byte, op ws.OpCode, n int) []byte {
	dst = append(dst, 0x80|byte(op))
	switch {
	case n < 126:
		return append(dst, byte(n))
	case n <= 0xffff:
		return append(dst, 126, byte(n>>8), byte(n))
	default:
		return append(dst, 127, byte(uint64(n)>>56), byte(uint64(n)>>48), byte(uint64(n)>>40),
			byte(uint64(n)>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}
