package socketio

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

func BenchmarkDecodePollingPayload(b *testing.B) {
	body := []byte(strings.Repeat("42[\"message\",{\"body\":\"hello world\"}]\x1e", 9) + "3")
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := decodePollingPayload(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodePollingPayload(b *testing.B) {
	frames := make([]frame, 10)
	for i := range frames {
		frames[i] = frame{typ: eioMessage, data: []byte(`2["message",{"body":"hello world"}]`)}
	}
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = buf[:0]
		for i, f := range frames {
			if i > 0 {
				buf = append(buf, recordSeparator)
			}
			buf = appendPollingFrame(buf, f)
		}
	}
}

func BenchmarkWriteBatch(b *testing.B) {
	frames := make([]frame, 64)
	for i := range frames {
		frames[i] = frame{typ: eioMessage, data: []byte(`2["message",{"threadId":"t1","message":{"id":"m1","body":"hello world"}}]`)}
	}
	c := discardConn{}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := writeBatch(c, frames, time.Second); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeSIOEvent(b *testing.B) {
	pkt := []byte(`2/chat,12["sendMessage",{"threadToken":"abc.def.ghi","body":"hello world","clientMessageId":"c-1"}]`)
	b.ReportAllocs()
	b.SetBytes(int64(len(pkt)))
	for b.Loop() {
		if _, err := decodeSIO(pkt); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeSIOBinaryEvent(b *testing.B) {
	pkt := []byte(`51-["upload",{"name":"a.png","data":{"_placeholder":true,"num":0}}]`)
	atts := [][]byte{make([]byte, 1024)}
	b.ReportAllocs()
	for b.Loop() {
		p, err := decodeSIO(pkt)
		if err != nil {
			b.Fatal(err)
		}
		for i, a := range p.args {
			if p.args[i], err = replacePlaceholders(a, atts); err != nil {
				b.Fatal(err)
			}
		}
	}
}

type benchMsg struct {
	ThreadID string `json:"threadId"`
	Message  struct {
		ID   string `json:"id"`
		Body string `json:"body"`
	} `json:"message"`
}

func BenchmarkEncodeEvent(b *testing.B) {
	var m benchMsg
	m.ThreadID, m.Message.ID, m.Message.Body = "t1", "m1", "hello world"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeEvent("/", "message", m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeEventRaw(b *testing.B) {
	raw := json.RawMessage(`{"threadId":"t1","message":{"id":"m1","body":"hello world"}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeEvent("/", "message", raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeAckBinary(b *testing.B) {
	data := Binary(make([]byte, 1024))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := encodePacket(sioAck, "/", 7, false, "", []any{"ok", data}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFanOut sends one pre-encoded packet to N sockets with real
// WebSocket connections whose clients read and discard. One op is one
// broadcast to all N.
func BenchmarkFanOut(b *testing.B) {
	pkt, _ := EncodeEvent("/", "message", json.RawMessage(`{"threadId":"t1","message":{"id":"m1","body":"hello world"}}`))
	benchFanOut(b, func(s *Socket) bool { return s.SendEncoded(pkt) })
}

// BenchmarkFanOutFrame is BenchmarkFanOut with the push encoded into its
// WebSocket frame once (EncodeEventFrame, SendFrame), as internal/sioapi
// sends pushes.
func BenchmarkFanOutFrame(b *testing.B) {
	fr, _ := EncodeEventFrame("/", "message", json.RawMessage(`{"threadId":"t1","message":{"id":"m1","body":"hello world"}}`))
	benchFanOut(b, func(s *Socket) bool { return s.SendFrame(fr) })
}

func benchFanOut(b *testing.B, send func(*Socket) bool) {
	for _, n := range []int{100, 1000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			cfg := testConfig()
			cfg.PingInterval = time.Hour
			cfg.WriteQueueBytes = 64 << 20
			srv := NewServer(cfg)
			socks := make(chan *Socket, n)
			srv.Namespace("/").OnConnection(func(s *Socket) { socks <- s })
			hs := startServer(b, srv)
			counts := make(chan int, n)
			conns := make([]net.Conn, 0, n)
			for range n {
				c := dialWS(b, hs, "")
				c.openSession()
				c.send("40")
				c.readSkipPing()
				conns = append(conns, c.conn)
			}
			sockets := make([]*Socket, n)
			for i := range sockets {
				sockets[i] = <-socks
			}
			want := b.N
			for _, c := range conns {
				go func(c net.Conn) {
					_ = c.SetReadDeadline(time.Time{})
					br := bufio.NewReaderSize(c, 64<<10)
					got := 0
					hdr := make([]byte, 8)
					for got < want {
						if _, err := skipServerFrame(br, hdr); err != nil {
							break
						}
						got++
					}
					counts <- got
				}(c)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				for _, s := range sockets {
					if !send(s) {
						b.Fatal("send failed")
					}
				}
			}
			for range n {
				if got := <-counts; got != want {
					b.Fatalf("client got %d of %d", got, want)
				}
			}
			b.StopTimer()
		})
	}
}

// skipServerFrame reads one unmasked server frame into nothing; hdr is a
// caller-owned scratch buffer of 8 bytes (no allocation per frame).
func skipServerFrame(br *bufio.Reader, hdr []byte) (int, error) {
	if _, err := io.ReadFull(br, hdr[:2]); err != nil {
		return 0, err
	}
	n := int(hdr[1] & 0x7f)
	switch n {
	case 126:
		if _, err := io.ReadFull(br, hdr[:2]); err != nil {
			return 0, err
		}
		n = int(hdr[0])<<8 | int(hdr[1])
	case 127:
		if _, err := io.ReadFull(br, hdr[:8]); err != nil {
			return 0, err
		}
		n = 0
		for _, v := range hdr[:8] {
			n = n<<8 | int(v)
		}
	}
	_, err := br.Discard(n)
	return n, err
}

// discardConn is a net.Conn that accepts and drops every write.
type discardConn struct{ net.Conn }

func (discardConn) Write(p []byte) (int, error)      { return len(p), nil }
func (discardConn) SetWriteDeadline(time.Time) error { return nil }
