package socketio

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestReaderDrainsAfterCloseWhileIdle: a connection that the server closes
// while the poller holds it gets a reader again, which reads what the client
// still sends until the socket is closed (as a blocking reader does). Bytes
// left unread in the kernel when the socket closes turn its FIN into a reset,
// and a reset can cost the client the last frames it had not read yet.
//
// The close frame waits behind a full queue to a client that does not read,
// so the socket stays open while the client writes; the test reads the
// server socket's unread byte count (SIOCINQ) until it is zero, then lets
// the client read everything: the queue whole, the close frame, then the end
// of the stream, not a reset.
func TestReaderDrainsAfterCloseWhileIdle(t *testing.T) {
	conns := make(chan *EngineConn, 1)
	h := &echoHandler{closed: map[string]string{}, done: make(chan string, 8)}
	cfg := testConfig()
	cfg.PingInterval, cfg.PingTimeout = 30*time.Second, 5*time.Second // the client does not answer pings
	cfg.WriteTimeout = 30 * time.Second
	cfg.BlockingReader = false
	e := NewEngine(cfg, func(c *EngineConn) EngineHandler { conns <- c; return h })
	hs := serveEngine(t, e)
	cl := dialWS(t, hs, "")
	cl.openSession()
	c := <-conns
	waitReaders(t, 0) // idle: the poller holds it

	// Fill the kernel's buffers both ways and the queue up to its bound.
	chunk := "4" + strings.Repeat("q", 64<<10-1)
	queued := 0
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := c.tryEnqueue(frame{typ: eioMessage, data: []byte(chunk[1:])})
		if errors.Is(err, ErrSlowConsumer) {
			break
		}
		if err != nil {
			t.Fatalf("enqueue: %v", err)
		}
		queued++
		if time.Now().After(deadline) {
			t.Fatalf("the queue never filled (%d chunks)", queued)
		}
		time.Sleep(time.Millisecond) // let the writer move what it can into the kernel
	}
	c.mu.Lock()
	raw := c.wsRaw
	c.mu.Unlock()
	if raw == nil {
		t.Fatal("no descriptor")
	}
	unread := func() int {
		n := -1
		if err := raw.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ) }); err != nil {
			t.Fatalf("SIOCINQ: %v", err)
		}
		return n
	}

	c.Close() // graceful: the queue, then the close frame, then the socket
	const sent = 40
	for range sent {
		cl.send("4late")
	}
	for deadline := time.Now().Add(5 * time.Second); unread() != 0; {
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes the client sent after the close are still unread on the open socket", unread())
		}
		time.Sleep(10 * time.Millisecond)
	}

	got := 0
	for {
		s, _, err := cl.tryRead(10 * time.Second)
		if err != nil {
			break // the close frame
		}
		if s == chunk {
			got++
		} else if s != "2" {
			t.Fatalf("unexpected message %.40q", s)
		}
	}
	if got != queued {
		t.Errorf("the client read %d of the %d messages queued before the close", got, queued)
	}
	_ = cl.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [1]byte
	if _, err := cl.conn.Read(b[:]); !errors.Is(err, io.EOF) {
		t.Errorf("after the close frame: %v, want the end of the stream (EOF), not a reset", err)
	}
}
