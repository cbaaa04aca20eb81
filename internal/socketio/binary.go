package socketio

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
)

// Binary is a binary value in event arguments: a Socket.IO binary
// attachment.
//
// Sending: a Binary anywhere in Emit or Ack arguments (top level, in a
// struct field, a map or a slice) is sent as an attachment of a
// BINARY_EVENT/BINARY_ACK packet, which the JavaScript client receives as an
// ArrayBuffer/Buffer.
//
// Receiving: in the json.RawMessage arguments given to handlers, each
// attachment appears in place of its placeholder as the JSON object
// {"_placeholder":true,"data":"<standard base64>"}. Unmarshal it into a Binary
// (or use BinaryArg). Passing such raw arguments back to Emit or Ack sends
// them as binary again, so an echo keeps binary data binary.
type Binary []byte

const binaryMarkerPrefix = `{"_placeholder":true,"data":"`

// MarshalJSON encodes b as the binary marker object.
func (b Binary) MarshalJSON() ([]byte, error) {
	return appendMarker(nil, b), nil
}

// UnmarshalJSON accepts the binary marker object, or a base64 string (the
// encoding of []byte in encoding/json).
func (b *Binary) UnmarshalJSON(data []byte) error {
	if bytes.Equal(data, []byte("null")) {
		*b = nil
		return nil
	}
	if len(data) > 0 && data[0] == '"' {
		var raw []byte
		if err := json.Unmarshal(data, &raw); err != nil {
			return err
		}
		*b = raw
		return nil
	}
	var m struct {
		Placeholder bool   `json:"_placeholder"`
		Data        []byte `json:"data"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return err
	}
	if !m.Placeholder {
		return errors.New("socketio: not a binary value")
	}
	if m.Data == nil {
		m.Data = []byte{}
	}
	*b = m.Data
	return nil
}

// BinaryArg returns the bytes of an argument that is a binary attachment
// marker, and false for any other argument.
func BinaryArg(raw json.RawMessage) ([]byte, bool) {
	if !bytes.HasPrefix(raw, []byte(binaryMarkerPrefix)) {
		return nil, false
	}
	var b Binary
	if b.UnmarshalJSON(raw) != nil {
		return nil, false
	}
	return b, true
}

func appendMarker(dst, data []byte) []byte {
	dst = append(dst, binaryMarkerPrefix...)
	dst = base64.StdEncoding.AppendEncode(dst, data)
	return append(dst, `"}`...)
}

// extractBinary replaces every binary marker in a compact JSON text (as
// encoding/json produces) by a placeholder {"_placeholder":true,"num":N} and
// returns the attachments in order. A marker prefix cannot occur inside a
// JSON string (its quotes would be escaped), so a byte search is exact.
func extractBinary(text []byte) ([]byte, [][]byte, error) {
	if !bytes.Contains(text, []byte(binaryMarkerPrefix)) {
		return text, nil, nil
	}
	var out []byte
	var atts [][]byte
	rest := text
	for {
		i := bytes.Index(rest, []byte(binaryMarkerPrefix))
		if i < 0 {
			break
		}
		start := i + len(binaryMarkerPrefix)
		end := bytes.IndexByte(rest[start:], '"')
		if end < 0 || start+end+1 >= len(rest) || rest[start+end+1] != '}' {
			return nil, nil, errors.New("socketio: malformed binary marker")
		}
		data, err := base64.StdEncoding.AppendDecode(make([]byte, 0, base64.StdEncoding.DecodedLen(end)), rest[start:start+end])
		if err != nil {
			return nil, nil, errors.New("socketio: malformed binary marker")
		}
		out = append(out, rest[:i]...)
		out = append(out, `{"_placeholder":true,"num":`...)
		out = strconv.AppendInt(out, int64(len(atts)), 10)
		out = append(out, '}')
		atts = append(atts, data)
		rest = rest[start+end+2:]
	}
	return append(out, rest...), atts, nil
}

// A placeholder is an object of a binary packet's JSON that stands for an
// attachment. As in the reference parser (socket.io-parser), an object
// whose "_placeholder" member is true is a placeholder, at any depth; ECB
// also requires it to be exactly {"_placeholder":true,"num":N} with N a
// non-negative integer (what every Socket.IO encoder writes), and refuses
// the packet otherwise. An object whose "_placeholder" is anything else is
// plain data.
type placeholder struct {
	start, end int // src[start:end] is the object
	num        int
}

// findPlaceholders appends to dst the placeholders of the JSON value src,
// in document order. It returns errSIOParse for a malformed placeholder or
// malformed JSON.
func findPlaceholders(src []byte, dst []placeholder) ([]placeholder, error) {
	sc := placeholderScanner{src: src, out: dst}
	sc.space()
	if !sc.value() {
		return dst, errSIOParse
	}
	sc.space()
	if sc.i != len(src) {
		return dst, errSIOParse
	}
	return sc.out, nil
}

// placeholderScanner walks one JSON value. It checks the structure it
// needs (brackets, strings, member syntax), not literals and numbers in
// full: its input has passed encoding/json already, and on other input it
// only has to stay in bounds and refuse.
type placeholderScanner struct {
	src []byte
	i   int
	out []placeholder
}

func (sc *placeholderScanner) space() {
	for sc.i < len(sc.src) {
		switch sc.src[sc.i] {
		case ' ', '\t', '\r', '\n':
			sc.i++
		default:
			return
		}
	}
}

func (sc *placeholderScanner) value() bool {
	if sc.i >= len(sc.src) {
		return false
	}
	switch sc.src[sc.i] {
	case '{':
		return sc.object()
	case '[':
		sc.i++
		sc.space()
		if sc.i < len(sc.src) && sc.src[sc.i] == ']' {
			sc.i++
			return true
		}
		for {
			sc.space()
			if !sc.value() {
				return false
			}
			sc.space()
			if sc.i >= len(sc.src) {
				return false
			}
			c := sc.src[sc.i]
			sc.i++
			if c == ']' {
				return true
			}
			if c != ',' {
				return false
			}
		}
	case '"':
		return sc.str()
	default:
		start := sc.i
		for sc.i < len(sc.src) {
			switch sc.src[sc.i] {
			case ',', ']', '}', ':', '"', '[', '{', ' ', '\t', '\r', '\n':
				return sc.i > start
			}
			sc.i++
		}
		return sc.i > start
	}
}

// str skips a string, sc.i at its opening quote.
func (sc *placeholderScanner) str() bool {
	for j := sc.i + 1; j < len(sc.src); j++ {
		switch sc.src[j] {
		case '\\':
			j++
		case '"':
			sc.i = j + 1
			return true
		}
	}
	return false
}

// object scans an object, sc.i at its '{', and records it if it is a
// placeholder.
func (sc *placeholderScanner) object() bool {
	start := sc.i
	sc.i++
	members, marked, num := 0, false, -1
	sc.space()
	if sc.i < len(sc.src) && sc.src[sc.i] == '}' {
		sc.i++
		return true
	}
	for {
		sc.space()
		k := sc.i
		if k >= len(sc.src) || sc.src[k] != '"' || !sc.str() {
			return false
		}
		key := sc.src[k:sc.i]
		sc.space()
		if sc.i >= len(sc.src) || sc.src[sc.i] != ':' {
			return false
		}
		sc.i++
		sc.space()
		v := sc.i
		if !sc.value() {
			return false
		}
		val := sc.src[v:sc.i]
		members++
		switch jsonKey(key) {
		case "_placeholder":
			marked = marked || string(val) == "true"
		case "num":
			num = placeholderIndex(val)
		}
		sc.space()
		if sc.i >= len(sc.src) {
			return false
		}
		c := sc.src[sc.i]
		sc.i++
		if c == '}' {
			break
		}
		if c != ',' {
			return false
		}
	}
	if !marked {
		return true
	}
	if members != 2 || num < 0 {
		return false // a placeholder with other members, or no valid num
	}
	sc.out = append(sc.out, placeholder{start: start, end: sc.i, num: num})
	return true
}

// jsonKey returns the text of a JSON string (quotes included in raw).
func jsonKey(raw []byte) string {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1])
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// placeholderIndex returns the attachment index a "num" value gives: a
// plain non-negative integer below maxAttachments, or -1.
func placeholderIndex(val []byte) int {
	if len(val) == 0 || len(val) > 3 || (len(val) > 1 && val[0] == '0') {
		return -1
	}
	n := 0
	for _, c := range val {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	if n >= maxAttachments {
		return -1
	}
	return n
}

// checkPlaceholders checks a binary packet's placeholders against its
// declared attachment count, as the protocol encodes them (socket.io-protocol
// README, "Packet encoding": every attachment is extracted and replaced by
// one placeholder numbered from 0): each placeholder's num is below the
// count, and each attachment has exactly one placeholder. A binary packet
// that declares 0 attachments may therefore carry no placeholder.
func checkPlaceholders(p *sioPacket) error {
	var buf [8]placeholder
	phs := buf[:0]
	for _, a := range p.args {
		var err error
		if phs, err = findPlaceholders(a, phs); err != nil {
			return err
		}
	}
	if len(phs) != p.attachments {
		return errSIOParse
	}
	var seen [maxAttachments / 64]uint64
	for _, ph := range phs {
		if ph.num >= p.attachments || seen[ph.num/64]&(1<<(ph.num%64)) != 0 {
			return errSIOParse
		}
		seen[ph.num/64] |= 1 << (ph.num % 64)
	}
	return nil
}

// replacePlaceholders replaces, in one argument received in a binary packet,
// every placeholder {"_placeholder":true,"num":N} by the marker of
// attachment N. Everything else is kept byte for byte.
func replacePlaceholders(src []byte, atts [][]byte) ([]byte, error) {
	var buf [4]placeholder
	phs, err := findPlaceholders(src, buf[:0])
	if err != nil {
		return nil, err
	}
	if len(phs) == 0 {
		return src, nil
	}
	var out []byte
	last := 0
	for _, ph := range phs {
		if ph.num >= len(atts) {
			return nil, errSIOParse
		}
		out = append(out, src[last:ph.start]...)
		out = appendMarker(out, atts[ph.num])
		last = ph.end
	}
	return append(out, src[last:]...), nil
}
