// Command wsbench measures the WebSocket libraries ECB could build its
// Socket.IO transport on, and the socketio package itself, in one run:
//
//   - memory per idle connection: a server process holds N idle loopback
//     WebSocket connections opened by a client process; the server reports
//     the growth of Go memory (heap + stacks in use) and of its RSS, per
//     connection;
//   - write throughput: one connection, M messages of S bytes written as
//     fast as the library allows, read by a raw frame parser.
//
// It prints one JSON line. It lives in its own module so that the
// libraries it compares are not dependencies of ECB.
//
//	cd internal/socketio/wsbench && go run . -conns 20000
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	coder "github.com/coder/websocket"
	gobwas "github.com/gobwas/ws"
	gorilla "github.com/gorilla/websocket"

	"github.com/ecbridge/ecb/internal/socketio"
)

var libs = []string{"gorilla", "coder", "gobwas", "socketio"}

func main() {
	role := flag.String("role", "", "internal: server or client")
	lib := flag.String("lib", "", "internal: library of the server role")
	addr := flag.String("addr", "", "internal: server address for the client role")
	conns := flag.Int("conns", 20000, "idle connections per library")
	msgs := flag.Int("msgs", 200000, "messages in the throughput test")
	size := flag.Int("size", 128, "message size in the throughput test")
	flag.Parse()
	if limit := raiseFDLimit(); *role == "" && *conns > limit-64 {
		// Each process needs one descriptor per connection plus a few.
		fmt.Fprintf(os.Stderr, "wsbench: open-file limit %d: measuring %d connections\n", limit, limit-64)
		*conns = limit - 64
	}
	var err error
	switch *role {
	case "server":
		err = serveIdle(*lib)
	case "client":
		err = holdClients(*addr, *lib, *conns)
	default:
		err = orchestrate(*conns, *msgs, *size)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsbench:", err)
		os.Exit(1)
	}
}

// raiseFDLimit raises the open-file limit as far as allowed and returns it.
func raiseFDLimit() int {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) != nil {
		return 1024
	}
	want := uint64(1 << 20)
	if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: want, Max: want}) == nil {
		return int(want)
	}
	l.Cur = l.Max
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	return int(l.Cur)
}

type memResult struct {
	Lib          string  `json:"lib"`
	Conns        int     `json:"conns"`
	GoBytesConn  float64 `json:"go_bytes_per_conn"`    // heap in use + stacks in use
	RSSBytesConn float64 `json:"rss_bytes_per_conn"`   // resident set size
	StackConn    float64 `json:"stack_bytes_per_conn"` // goroutine stacks, part of go_bytes_per_conn
	HeapObjConn  float64 `json:"heap_objects_per_conn"`
	Goroutines   int     `json:"goroutines"`
}

type tputResult struct {
	Lib          string  `json:"lib"`
	Msgs         int     `json:"msgs"`
	Size         int     `json:"size"`
	Received     int     `json:"received"`
	MsgsPerSec   float64 `json:"msgs_per_sec"`
	MBPerSec     float64 `json:"mb_per_sec"`
	AllocsPerMsg float64 `json:"allocs_per_msg"`
}

func orchestrate(conns, msgs, size int) error {
	out := struct {
		Conns      int          `json:"conns"`
		GoVersion  string       `json:"go"`
		Memory     []memResult  `json:"memory"`
		Throughput []tputResult `json:"throughput"`
	}{Conns: conns, GoVersion: runtime.Version()}
	for _, lib := range libs {
		r, err := measureIdle(lib, conns)
		if err != nil {
			return fmt.Errorf("%s: %w", lib, err)
		}
		out.Memory = append(out.Memory, r)
	}
	for _, lib := range append(libs[:3:3], "gobwas-batched", "socketio") {
		r, err := measureThroughput(lib, msgs, size)
		if err != nil {
			return fmt.Errorf("%s throughput: %w", lib, err)
		}
		out.Throughput = append(out.Throughput, r)
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}

// measureIdle runs a server process for lib and a client process holding
// conns connections to it, and returns the server's measurement.
func measureIdle(lib string, conns int) (memResult, error) {
	var res memResult
	self, err := os.Executable()
	if err != nil {
		return res, err
	}
	srv := exec.Command(self, "-role", "server", "-lib", lib)
	srv.Stderr = os.Stderr
	srvIn, _ := srv.StdinPipe()
	srvOut, _ := srv.StdoutPipe()
	if err := srv.Start(); err != nil {
		return res, err
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	lines := bufio.NewScanner(srvOut)
	if !lines.Scan() {
		return res, errors.New("server did not start")
	}
	addr := strings.TrimPrefix(lines.Text(), "addr ")

	cl := exec.Command(self, "-role", "client", "-addr", addr, "-lib", lib, "-conns", strconv.Itoa(conns))
	cl.Stderr = os.Stderr
	clIn, _ := cl.StdinPipe()
	clOut, _ := cl.StdoutPipe()
	if err := cl.Start(); err != nil {
		return res, err
	}
	defer func() { _ = clIn.Close(); _ = cl.Process.Kill(); _ = cl.Wait() }()
	ready := bufio.NewScanner(clOut)
	if !ready.Scan() || ready.Text() != "ready" {
		return res, errors.New("client failed")
	}
	fmt.Fprintf(srvIn, "measure %d\n", conns)
	if !lines.Scan() {
		return res, errors.New("server did not measure")
	}
	err = json.Unmarshal(lines.Bytes(), &res)
	return res, err
}

type sample struct {
	goBytes, stack, rss, objects uint64
}

func measure() sample {
	// Several cycles: stacks shrink by half per GC while mostly unused, as
	// they do in a long-running server.
	for range 5 {
		runtime.GC()
	}
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return sample{goBytes: ms.HeapInuse + ms.StackInuse, stack: ms.StackInuse, rss: rss(), objects: ms.HeapObjects}
}

func rss() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseUint(f[1], 10, 64)
	return pages * uint64(os.Getpagesize())
}

// serveIdle is the server role: it accepts WebSocket connections with lib
// and keeps them idle, each with a reader waiting for a message.
func serveIdle(lib string) error {
	var accepted atomic.Int64
	h, shutdown := idleHandler(lib, &accepted)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: h}
	go func() { _ = hs.Serve(ln) }()
	base := measure()
	fmt.Printf("addr %s\n", ln.Addr())
	in := bufio.NewScanner(os.Stdin)
	if !in.Scan() {
		return nil
	}
	n, _ := strconv.Atoi(strings.TrimPrefix(in.Text(), "measure "))
	deadline := time.Now().Add(2 * time.Minute)
	for accepted.Load() < int64(n) {
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d connections accepted", accepted.Load(), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second) // let every reader settle into its blocking read
	after := measure()
	per := func(a, b uint64) float64 { return float64(int64(a)-int64(b)) / float64(n) }
	res := memResult{
		Lib: lib, Conns: n,
		GoBytesConn:  per(after.goBytes, base.goBytes),
		RSSBytesConn: per(after.rss, base.rss),
		StackConn:    per(after.stack, base.stack),
		HeapObjConn:  per(after.objects, base.objects),
		Goroutines:   runtime.NumGoroutine(),
	}
	_ = json.NewEncoder(os.Stdout).Encode(res)
	if f := os.Getenv("WSBENCH_HEAPPROFILE"); f != "" {
		if out, err := os.Create(f + "." + lib); err == nil {
			_ = pprof.WriteHeapProfile(out)
			_ = out.Close()
		}
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	_ = shutdown
	return nil
}

// idleHandler returns the handler of lib, in the style ECB would use it:
// the handler returns after the upgrade, and one goroutine per connection
// waits for the next message.
func idleHandler(lib string, accepted *atomic.Int64) (http.Handler, func()) {
	switch lib {
	case "gorilla":
		up := gorilla.Upgrader{WriteBufferPool: &sync.Pool{}, CheckOrigin: func(*http.Request) bool { return true }}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() {
				for {
					if _, rd, err := c.NextReader(); err != nil {
						return
					} else {
						_, _ = io.Copy(io.Discard, rd)
					}
				}
			}()
		}), nil
	case "coder":
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := coder.Accept(w, r, &coder.AcceptOptions{InsecureSkipVerify: true, CompressionMode: coder.CompressionDisabled})
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() {
				for {
					if _, rd, err := c.Reader(context.Background()); err != nil {
						return
					} else {
						_, _ = io.Copy(io.Discard, rd)
					}
				}
			}()
		}), nil
	case "gobwas":
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			conn, _, _, err := gobwas.UpgradeHTTP(r, w)
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() {
				var hdr [2]byte
				for {
					// Block on the header with no buffer; a real reader would
					// borrow a pooled buffer for the rest of the frame.
					if _, err := io.ReadFull(conn, hdr[:]); err != nil {
						return
					}
					h, err := gobwas.ReadHeader(io.MultiReader(strings.NewReader(string(hdr[:])), conn))
					if err != nil {
						return
					}
					_, _ = io.CopyN(io.Discard, conn, h.Length)
				}
			}()
		}), nil
	default: // socketio: the full Engine.IO + Socket.IO stack, socket connected to "/"
		srv := socketio.NewServer(socketio.Config{})
		srv.Namespace("/").OnConnection(func(*socketio.Socket) { accepted.Add(1) })
		mux := http.NewServeMux()
		mux.Handle("/socket.io/", srv)
		return mux, func() { _ = srv.Shutdown(context.Background()) }
	}
}

const upgradeReq = "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

func path(lib string) string {
	if lib == "socketio" {
		return "/socket.io/?EIO=4&transport=websocket"
	}
	return "/ws"
}

// dialWS opens a raw WebSocket: the handshake by hand, no buffers kept.
func dialWS(addr, p string) (net.Conn, error) {
	c, _, err := dialWSRest(addr, p)
	return c, err
}

// dialWSRest is dialWS that also returns the bytes read past the handshake
// response (the first frames may arrive with it).
func dialWSRest(addr, p string) (net.Conn, []byte, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	if _, err := fmt.Fprintf(c, upgradeReq, p, addr); err != nil {
		c.Close()
		return nil, nil, err
	}
	var buf [1024]byte
	got := 0
	for !strings.Contains(string(buf[:got]), "\r\n\r\n") {
		n, err := c.Read(buf[got:])
		if err != nil {
			c.Close()
			return nil, nil, err
		}
		got += n
		if got == len(buf) {
			break
		}
	}
	if !strings.HasPrefix(string(buf[:got]), "HTTP/1.1 101") {
		c.Close()
		return nil, nil, fmt.Errorf("handshake: %q", buf[:min(got, 64)])
	}
	end := strings.Index(string(buf[:got]), "\r\n\r\n") + 4
	return c, append([]byte(nil), buf[end:got]...), nil
}

// holdClients is the client role: it opens n connections, prints "ready",
// and holds them until stdin closes.
func holdClients(addr, lib string, n int) error {
	conns := make([]net.Conn, n)
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				c, err := dialWS(addr, path(lib))
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				if lib == "socketio" {
					// A masked text frame "40" (zero mask): CONNECT to "/".
					_, _ = c.Write([]byte{0x81, 0x82, 0, 0, 0, 0, '4', '0'})
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return err
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		_ = c.Close()
	}
	return nil
}

// measureThroughput writes msgs messages of size bytes on one connection
// with lib and times their arrival at a raw frame reader.
func measureThroughput(lib string, msgs, size int) (tputResult, error) {
	res := tputResult{Lib: lib, Msgs: msgs, Size: size}
	payload := []byte(strings.Repeat("x", size))
	done := make(chan struct{}) // closed when the client has read everything
	defer func() {
		select {
		case <-done:
		default:
			close(done)
		}
	}()
	var h http.Handler
	var shutdown func()
	switch lib {
	case "gorilla":
		up := gorilla.Upgrader{WriteBufferPool: &sync.Pool{}}
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			defer c.Close()
			for range msgs {
				if c.WriteMessage(gorilla.TextMessage, payload) != nil {
					return
				}
			}
			<-done
		})
	case "coder":
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := coder.Accept(w, r, &coder.AcceptOptions{CompressionMode: coder.CompressionDisabled})
			if err != nil {
				return
			}
			for range msgs {
				if c.Write(context.Background(), coder.MessageText, payload) != nil {
					return
				}
			}
			_ = c.CloseNow() // flushes; waiting instead leaves the last frames unsent
		})
	case "gobwas", "gobwas-batched":
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			conn, _, _, err := gobwas.UpgradeHTTP(r, w)
			if err != nil {
				return
			}
			defer conn.Close()
			var dst io.Writer = conn
			bw := bufio.NewWriterSize(conn, 16<<10)
			if lib == "gobwas-batched" {
				dst = bw
			}
			for i := range msgs {
				if gobwas.WriteFrame(dst, gobwas.NewTextFrame(payload)) != nil {
					return
				}
				if lib == "gobwas-batched" && i%64 == 63 {
					_ = bw.Flush()
				}
			}
			_ = bw.Flush()
			<-done
		})
	default:
		// socketio: SendEncoded of one pre-encoded packet, drained by the
		// connection's batching writer.
		pkt, _ := socketio.EncodeEvent("/", "m", string(payload[:max(0, size-12)]))
		srv := socketio.NewServer(socketio.Config{WriteQueueBytes: msgs * (len(pkt) + 8)})
		srv.Namespace("/").OnConnection(func(s *socketio.Socket) {
			go func() {
				for range msgs {
					if !s.SendEncoded(pkt) {
						return
					}
				}
			}()
		})
		mux := http.NewServeMux()
		mux.Handle("/socket.io/", srv)
		h = mux
		shutdown = func() { _ = srv.Shutdown(context.Background()) }
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	hs := &http.Server{Handler: h}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()
	if shutdown != nil {
		defer shutdown()
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	p := path(lib)
	if lib == "gobwas-batched" {
		p = "/ws"
	}
	c, rest, err := dialWSRest(ln.Addr().String(), p)
	if err != nil {
		return res, err
	}
	defer c.Close()
	want := msgs
	if lib == "socketio" {
		_, _ = c.Write([]byte{0x81, 0x82, 0, 0, 0, 0, '4', '0'})
		want += 2 // the open packet and the CONNECT reply
	}
	br := bufio.NewReaderSize(io.MultiReader(strings.NewReader(string(rest)), c), 64<<10)
	got, bytes := 0, int64(0)
	for got < want {
		n, err := skipFrame(br)
		if err != nil {
			if got < want*99/100 {
				return res, fmt.Errorf("after %d frames: %w", got, err)
			}
			break // coder may lose its last frames when closing
		}
		got++
		bytes += n
	}
	el := time.Since(start)
	runtime.ReadMemStats(&after)
	close(done)
	res.Received = got
	res.MsgsPerSec = float64(got) / el.Seconds()
	res.MBPerSec = float64(bytes) / el.Seconds() / 1e6
	res.AllocsPerMsg = float64(after.Mallocs-before.Mallocs) / float64(msgs)
	return res, nil
}

// skipFrame reads one unmasked server frame and returns its payload length.
func skipFrame(br *bufio.Reader) (int64, error) {
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return 0, err
	}
	n := int64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(br, b[:]); err != nil {
			return 0, err
		}
		n = int64(b[0])<<8 | int64(b[1])
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(br, b[:]); err != nil {
			return 0, err
		}
		n = 0
		for _, x := range b {
			n = n<<8 | int64(x)
		}
	}
	_, err := br.Discard(int(n))
	return n, err
}
