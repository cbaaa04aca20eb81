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

// replacePlaceholders replaces, in one argument received in a binary packet,
// every placeholder object {"_placeholder":true,"num":N} by the marker of
// attachment N. Everything else is kept byte for byte.
func replacePlaceholders(src []byte, atts [][]byte) ([]byte, error) {
	if !bytes.Contains(src, []byte(`"_placeholder"`)) {
		return src, nil
	}
	var out []byte
	last := 0
	inStr := false
	for i := 0; i < len(src); i++ {
		c := src[i]
		if inStr {
			if c == '\\' {
				i++
			} else if c == '"' {
				inStr = false
			}
			continue
		}
		if c == '"' {
			inStr = true
			continue
		}
		if c != '{' {
			continue
		}
		end := flatObjectEnd(src, i)
		if end < 0 {
			continue
		}
		num, ok := placeholderNum(src[i : end+1])
		if !ok {
			continue
		}
		if num < 0 || num >= len(atts) {
			return nil, errSIOParse
		}
		out = append(out, src[last:i]...)
		out = appendMarker(out, atts[num])
		last = end + 1
		i = end
	}
	if out == nil {
		return src, nil
	}
	return append(out, src[last:]...), nil
}

// flatObjectEnd returns the index of the '}' closing the object that starts
// at src[i], or -1 if the object nests another object or array.
func flatObjectEnd(src []byte, i int) int {
	inStr := false
	for j := i + 1; j < len(src); j++ {
		c := src[j]
		if inStr {
			if c == '\\' {
				j++
			} else if c == '"' {
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
		case '{', '[':
			return -1
		case '}':
			return j
		}
	}
	return -1
}

func placeholderNum(obj []byte) (int, bool) {
	var m map[string]json.RawMessage
	if json.Unmarshal(obj, &m) != nil || len(m) != 2 || string(m["_placeholder"]) != "true" {
		return 0, false
	}
	n, err := strconv.Atoi(string(m["num"]))
	if err != nil {
		return -1, true
	}
	return n, true
}
