package fanout

import (
	"bytes"
	"encoding/json"
	"net"
	"testing"
)

func TestParseInt(t *testing.T) {
	p := []byte(`42["message",{"seq":-17,"t":1234567890,"pad":"x"}]`)
	if v, ok := parseInt(p, `"seq":`); !ok || v != -17 {
		t.Errorf("seq = %d, %v", v, ok)
	}
	if v, ok := parseInt(p, `"t":`); !ok || v != 1234567890 {
		t.Errorf("t = %d, %v", v, ok)
	}
	if _, ok := parseInt(p, `"nope":`); ok {
		t.Error("absent key found")
	}
	if _, ok := parseInt([]byte(`{"seq":"x"}`), `"seq":`); ok {
		t.Error("a string parsed as an integer")
	}
}

// The publish packet is a masked text frame carrying
// 42<id>["publish",{payload of size bytes}].
func TestPublishPacket(t *testing.T) {
	for _, size := range []int{1, 40, 128, 1000} {
		a, b := net.Pipe()
		p := &publisher{c: &wsClient{conn: a}}
		go func() { _ = p.publish(7, 3, 99, size); _ = a.Close() }()
		c := &wsClient{conn: b}
		var raw bytes.Buffer
		_, _ = raw.ReadFrom(b)
		frame := raw.Bytes()
		if frame[0] != 0x81 || frame[1]&0x80 == 0 {
			t.Fatalf("size %d: not a masked final text frame: % x", size, frame[:2])
		}
		// Unmask by hand: header, mask, payload.
		n, off := int(frame[1]&0x7f), 2
		if n == 126 {
			n, off = int(frame[2])<<8|int(frame[3]), 4
		}
		mask := frame[off : off+4]
		payload := append([]byte(nil), frame[off+4:]...)
		for i := range payload {
			payload[i] ^= mask[i%4]
		}
		if len(payload) != n {
			t.Fatalf("size %d: length %d, header says %d", size, len(payload), n)
		}
		rest, ok := bytes.CutPrefix(payload, []byte(`427["publish",`))
		if !ok || rest[len(rest)-1] != ']' {
			t.Fatalf("size %d: packet %q", size, payload)
		}
		obj := rest[:len(rest)-1]
		var v struct{ Seq, T int64 }
		if err := json.Unmarshal(obj, &v); err != nil || v.Seq != 3 || v.T != 99 {
			t.Fatalf("size %d: payload %s (%v)", size, obj, err)
		}
		if size >= 40 && len(obj) != size {
			t.Errorf("size %d: payload is %d bytes", size, len(obj))
		}
		c.close()
	}
}
