package socketio

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
)

// Socket.IO v5 packet types.
const (
	sioConnect      byte = 0
	sioDisconnect   byte = 1
	sioEvent        byte = 2
	sioAck          byte = 3
	sioConnectError byte = 4
	sioBinaryEvent  byte = 5
	sioBinaryAck    byte = 6
)

// maxAttachments bounds the binary attachments one packet may announce.
const maxAttachments = 256

// maxAckID is the largest ack id accepted (JavaScript's safe integer range).
const maxAckID = 1<<53 - 1

var errSIOParse = errors.New("socketio: malformed Socket.IO packet")

// reservedEvents are the event names socket.io-client keeps for itself; a
// client may not send them and the server may not emit them.
var reservedEvents = map[string]bool{
	"connect": true, "connect_error": true, "disconnect": true,
	"disconnecting": true, "newListener": true, "removeListener": true,
}

// sioPacket is one decoded Socket.IO packet.
type sioPacket struct {
	typ         byte
	attachments int
	nsp         string
	id          int64  // -1: no ack id
	data        []byte // the JSON payload, possibly empty
	args        []json.RawMessage
}

// decodeSIO decodes and validates a Socket.IO packet received from a client,
// following the reference parser's rules: CONNECT carries an optional JSON
// object, DISCONNECT nothing, EVENT a JSON array whose first element is a
// non-reserved event name (or a number), ACK a JSON array. CONNECT_ERROR is
// never valid from a client. A BINARY_EVENT or BINARY_ACK must also have
// exactly one placeholder per declared attachment (checkPlaceholders); in an
// EVENT or ACK, an object that looks like a placeholder is plain data, as in
// the reference parser, which reconstructs attachments of binary packets
// only.
func decodeSIO(s []byte) (sioPacket, error) {
	p := sioPacket{id: -1, nsp: "/"}
	if len(s) == 0 || s[0] < '0' || s[0] > '6' {
		return p, errSIOParse
	}
	p.typ = s[0] - '0'
	i := 1
	if p.typ == sioBinaryEvent || p.typ == sioBinaryAck {
		j := bytes.IndexByte(s[i:], '-')
		if j <= 0 || j > 3 {
			return p, errSIOParse
		}
		n, ok := parseDigits(s[i : i+j])
		if !ok || n > maxAttachments {
			return p, errSIOParse
		}
		p.attachments = int(n)
		i += j + 1
	}
	if i < len(s) && s[i] == '/' {
		j := bytes.IndexByte(s[i:], ',')
		if j < 0 {
			p.nsp = string(s[i:])
			i = len(s)
		} else {
			p.nsp = string(s[i : i+j])
			i += j + 1
		}
	}
	j := i
	for j < len(s) && s[j] >= '0' && s[j] <= '9' {
		j++
	}
	if j > i {
		id, ok := parseDigits(s[i:j])
		if !ok || id > maxAckID {
			return p, errSIOParse
		}
		p.id = id
		i = j
	}
	p.data = s[i:]
	if err := validateSIO(&p); err != nil {
		return p, err
	}
	return p, nil
}

func parseDigits(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 16 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	return n, err == nil && n >= 0
}

func validateSIO(p *sioPacket) error {
	switch p.typ {
	case sioConnect:
		if p.id >= 0 {
			return errSIOParse
		}
		if len(p.data) > 0 && !isJSONObject(p.data) {
			return errSIOParse
		}
	case sioDisconnect:
		if len(p.data) > 0 || p.id >= 0 {
			return errSIOParse
		}
	case sioEvent, sioBinaryEvent:
		if err := json.Unmarshal(p.data, &p.args); err != nil || len(p.args) == 0 {
			return errSIOParse
		}
		name := p.args[0]
		if len(name) > 0 && name[0] == '"' {
			var ev string
			if json.Unmarshal(name, &ev) != nil || reservedEvents[ev] {
				return errSIOParse
			}
		} else if _, err := strconv.ParseFloat(string(name), 64); err != nil {
			return errSIOParse
		}
	case sioAck, sioBinaryAck:
		if p.id < 0 || json.Unmarshal(p.data, &p.args) != nil || p.args == nil {
			return errSIOParse
		}
	default:
		return errSIOParse
	}
	if p.typ == sioBinaryEvent || p.typ == sioBinaryAck {
		return checkPlaceholders(p)
	}
	return nil
}

func isJSONObject(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '{' && json.Valid(b)
}

// appendSIOHeader appends the packet type, the attachment count, the
// namespace (unless "/") and the ack id (unless negative).
func appendSIOHeader(dst []byte, typ byte, attachments int, nsp string, id int64) []byte {
	dst = append(dst, '0'+typ)
	if attachments > 0 {
		dst = strconv.AppendInt(dst, int64(attachments), 10)
		dst = append(dst, '-')
	}
	if nsp != "/" && nsp != "" {
		dst = append(dst, nsp...)
		dst = append(dst, ',')
	}
	if id >= 0 {
		dst = strconv.AppendInt(dst, id, 10)
	}
	return dst
}

// eventName returns the event name of a decoded EVENT's first argument.
func eventName(raw json.RawMessage) string {
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		_ = json.Unmarshal(raw, &s)
		return s
	}
	return string(raw)
}
