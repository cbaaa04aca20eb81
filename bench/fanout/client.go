package fanout

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/gobwas/ws"
)

// The load generator's Socket.IO client: the minimum of Engine.IO v4 and
// Socket.IO v5 over a WebSocket-only connection (no polling, no upgrade),
// on github.com/gobwas/ws for the handshake and a hand-written frame reader
// that allocates nothing per message. It is the same for both targets.

// wsClient is one WebSocket connection speaking Engine.IO v4.
type wsClient struct {
	conn net.Conn
	br   *bufio.Reader
	buf  []byte // the current message, reused

	wmu  sync.Mutex // the publisher writes from two goroutines
	wbuf []byte
}

var errProtocol = errors.New("fanout: unexpected packet")

// dial opens a WebSocket to the Engine.IO endpoint at addr, reads the open
// packet, joins namespace "/" with the CONNECT payload auth (a JSON object,
// or "" for none) and waits for the CONNECT reply.
func dial(ctx context.Context, addr, auth string) (*wsClient, error) {
	conn, br, _, err := ws.Dialer{Timeout: 10 * time.Second}.Dial(ctx, "ws://"+addr+"/socket.io/?EIO=4&transport=websocket")
	if err != nil {
		return nil, err
	}
	if br == nil {
		br = bufio.NewReaderSize(conn, 4<<10)
	}
	c := &wsClient{conn: conn, br: br}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	fail := func(err error) (*wsClient, error) {
		_ = conn.Close()
		return nil, err
	}
	p, err := c.next()
	if err != nil {
		return fail(err)
	}
	if len(p) == 0 || p[0] != '0' {
		return fail(fmt.Errorf("%w: %q instead of the open packet", errProtocol, p))
	}
	if err := c.write([]byte("40" + auth)); err != nil {
		return fail(err)
	}
	for {
		p, err := c.next()
		if err != nil {
			return fail(err)
		}
		switch {
		case bytes.HasPrefix(p, []byte("40")):
			_ = conn.SetDeadline(time.Time{})
			return c, nil
		case bytes.Equal(p, []byte("2")):
			if err := c.write([]byte("3")); err != nil {
				return fail(err)
			}
		default:
			return fail(fmt.Errorf("%w: %q instead of CONNECT", errProtocol, p))
		}
	}
}

// next returns the payload of the next text or binary message; it answers
// WebSocket pings itself and fails on close. The slice is valid until the
// next call.
func (c *wsClient) next() ([]byte, error) {
	c.buf = c.buf[:0]
	for {
		var h [2]byte
		if _, err := io.ReadFull(c.br, h[:]); err != nil {
			return nil, err
		}
		fin := h[0]&0x80 != 0
		op := ws.OpCode(h[0] & 0x0f)
		if h[1]&0x80 != 0 {
			return nil, fmt.Errorf("%w: masked server frame", errProtocol)
		}
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var l [2]byte
			if _, err := io.ReadFull(c.br, l[:]); err != nil {
				return nil, err
			}
			n = uint64(binary.BigEndian.Uint16(l[:]))
		case 127:
			var l [8]byte
			if _, err := io.ReadFull(c.br, l[:]); err != nil {
				return nil, err
			}
			n = binary.BigEndian.Uint64(l[:])
		}
		if n > 64<<20 {
			return nil, fmt.Errorf("%w: frame of %d bytes", errProtocol, n)
		}
		if op.IsControl() {
			p := make([]byte, n)
			if _, err := io.ReadFull(c.br, p); err != nil {
				return nil, err
			}
			switch op {
			case ws.OpClose:
				return nil, io.EOF
			case ws.OpPing:
				if err := c.writeFrame(ws.OpPong, p); err != nil {
					return nil, err
				}
			}
			continue
		}
		start := len(c.buf)
		c.buf = append(c.buf, make([]byte, n)...)
		if _, err := io.ReadFull(c.br, c.buf[start:]); err != nil {
			return nil, err
		}
		if fin {
			return c.buf, nil
		}
	}
}

// write sends one text message.
func (c *wsClient) write(p []byte) error { return c.writeFrame(ws.OpText, p) }

// writeFrame sends one masked frame (clients must mask).
func (c *wsClient) writeFrame(op ws.OpCode, p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b := append(c.wbuf[:0], 0x80|byte(op))
	switch n := len(p); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	var mask [4]byte
	binary.LittleEndian.PutUint32(mask[:], rand.Uint32())
	b = append(b, mask[:]...)
	start := len(b)
	b = append(b, p...)
	ws.Cipher(b[start:], mask, 0)
	c.wbuf = b
	_, err := c.conn.Write(b)
	return err
}

func (c *wsClient) close() { _ = c.conn.Close() }

// parseInt reads the integer that follows key in p; ok is false when key is
// absent or not followed by an integer.
func parseInt(p []byte, key string) (v int64, ok bool) {
	i := bytes.Index(p, []byte(key))
	if i < 0 {
		return 0, false
	}
	p = p[i+len(key):]
	neg := len(p) > 0 && p[0] == '-'
	if neg {
		p = p[1:]
	}
	n := 0
	for ; n < len(p) && p[n] >= '0' && p[n] <= '9'; n++ {
		v = v*10 + int64(p[n]-'0')
	}
	if n == 0 {
		return 0, false
	}
	if neg {
		v = -v
	}
	return v, true
}
