package fanout

import (
	"bytes"
	"encoding/json"
	"net"
	"slices"
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

// A publish to a thread carries the thread as its second argument, which
// the ECB server reads back; the CONNECT payload names the listened thread.
func TestPublishToThread(t *testing.T) {
	a, b := net.Pipe()
	p := &publisher{c: &wsClient{conn: a}}
	go func() { _ = p.publishTo(3, "t7", 1, 2, 60); _ = a.Close() }()
	defer b.Close()
	// A client frame is masked; read it as the server would.
	var raw bytes.Buffer
	_, _ = raw.ReadFrom(b)
	frame := raw.Bytes()
	n := int(frame[1] & 0x7f)
	mask, payload := frame[2:6], append([]byte(nil), frame[6:6+n]...)
	for i := range payload {
		payload[i] ^= mask[i%4]
	}
	rest, ok := bytes.CutPrefix(payload, []byte(`423`))
	if !ok {
		t.Fatalf("packet %q", payload)
	}
	var args []json.RawMessage
	if err := json.Unmarshal(rest, &args); err != nil || len(args) != 3 {
		t.Fatalf("arguments %s: %v", rest, err)
	}
	if got := publishThread(args[1:]); got != "t7" {
		t.Errorf("thread %q, want t7", got)
	}
	if got := publishThread(args[1:2]); got != benchThread {
		t.Errorf("no thread argument: %q, want %q", got, benchThread)
	}

	for auth, want := range map[string]string{`{}`: benchThread, ``: benchThread, `{"thread":"t3"}`: "t3", `{"thread":""}`: ""} {
		if got := threadOf(json.RawMessage(auth)); got != want {
			t.Errorf("threadOf(%s) = %q, want %q", auth, got, want)
		}
	}
}

func TestParseShapesAndNodes(t *testing.T) {
	s, err := ParseShapes("1x1000, 10x100,100x10")
	if err != nil || !slices.Equal(s, []Shape{{1, 1000}, {10, 100}, {100, 10}}) {
		t.Errorf("shapes %v, %v", s, err)
	}
	for _, bad := range []string{"", "10", "0x5", "5x0", "axb", "1x2x3"} {
		if _, err := ParseShapes(bad); err == nil {
			t.Errorf("shape %q accepted", bad)
		}
	}
	n, err := ParseNodes("1,2")
	if err != nil || !slices.Equal(n, []int{1, 2}) {
		t.Errorf("nodes %v, %v", n, err)
	}
	for _, bad := range []string{"", "0", "17", "x"} {
		if _, err := ParseNodes(bad); err == nil {
			t.Errorf("nodes %q accepted", bad)
		}
	}
}

func TestParseRedisInfo(t *testing.T) {
	raw := "# Server\r\nredis_version:7.0.15\r\n\r\n# CPU\r\nused_cpu_sys:1.250000\r\nused_cpu_user:2.500000\r\nused_cpu_sys_children:9.0\r\n# Stats\r\ntotal_net_output_bytes:12345\r\ntotal_commands_processed:678\r\n"
	st := parseRedisInfo(raw)
	if st.version != "7.0.15" || st.cpu != 3.75 || st.netOut != 12345 || st.commands != 678 {
		t.Errorf("%+v", st)
	}
}
