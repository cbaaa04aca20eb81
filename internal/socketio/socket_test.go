package socketio

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// sockServer is a server whose "/" hands every connected socket to a channel.
func sockServer(t *testing.T, cfg Config, setup func(s *Socket)) (*Server, *httptestURL, chan *Socket) {
	t.Helper()
	srv := NewServer(cfg)
	ch := make(chan *Socket, 16)
	srv.Namespace("/").OnConnection(func(s *Socket) {
		if setup != nil {
			setup(s)
		}
		ch <- s
	})
	hs := startServer(t, srv)
	return srv, &httptestURL{hs.URL}, ch
}

type httptestURL struct{ URL string }

func TestEmitWithAck(t *testing.T) {
	_, hs, socks := sockServer(t, testConfig(), nil)
	c := dialWSURL(t, hs.URL, "")
	c.connect("/", "")
	s := <-socks

	type result struct {
		args []json.RawMessage
		err  error
	}
	res := make(chan result, 1)
	go func() {
		a, err := s.EmitWithAck(context.Background(), "q", "x", Binary{7})
		res <- result{a, err}
	}()
	got := c.readSkipPing()
	if got != `451-0["q","x",{"_placeholder":true,"num":0}]` {
		t.Fatalf("%q", got)
	}
	if att, _ := c.read(); att != "\x07" {
		t.Fatalf("attachment %q", att)
	}
	c.send(`430["yes",{"n":1}]`)
	r := <-res
	if r.err != nil || len(r.args) != 2 || string(r.args[0]) != `"yes"` || string(r.args[1]) != `{"n":1}` {
		t.Fatalf("%v %s", r.err, r.args)
	}

	// A binary ack from the client.
	go func() {
		a, err := s.EmitWithAck(context.Background(), "q2")
		res <- result{a, err}
	}()
	if got := c.readSkipPing(); got != `421["q2"]` {
		t.Fatalf("%q", got)
	}
	c.send(`461-1[{"_placeholder":true,"num":0}]`)
	c.sendBinary([]byte{1, 2})
	r = <-res
	if b, ok := BinaryArg(r.args[0]); r.err != nil || !ok || string(b) != "\x01\x02" {
		t.Fatalf("binary ack %v %s", r.err, r.args)
	}

	// Context deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := s.EmitWithAck(ctx, "never"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("deadline: %v", err)
	}

	// Disconnect while waiting.
	go func() {
		a, err := s.EmitWithAck(context.Background(), "pending")
		res <- result{a, err}
	}()
	c.readSkipPing() // "never"
	c.readSkipPing() // "pending"
	c.send("41")
	if r := <-res; !errors.Is(r.err, ErrClosed) {
		t.Fatalf("after disconnect: %v", r.err)
	}
	if err := s.Emit("x"); !errors.Is(err, ErrClosed) {
		t.Fatalf("emit after disconnect: %v", err)
	}
	if s.Context().Err() == nil {
		t.Fatal("context not cancelled")
	}
	if _, err := s.EmitWithAck(context.Background(), "x"); !errors.Is(err, ErrClosed) {
		t.Fatalf("EmitWithAck after disconnect: %v", err)
	}
	if err := s.Emit("connect"); !errors.Is(err, ErrReservedEvent) {
		t.Fatalf("reserved: %v", err)
	}
}

func TestAckSemantics(t *testing.T) {
	acks := make(chan Ack, 2)
	_, hs, _ := sockServer(t, testConfig(), func(s *Socket) {
		s.On("e", func(s *Socket, args []json.RawMessage, ack Ack) { acks <- ack })
	})
	c := dialWSURL(t, hs.URL, "")
	c.connect("/", "")
	c.send(`42["e"]`)
	if a := <-acks; a != nil {
		t.Fatal("ack for an event without id")
	}
	c.send(`429["e"]`)
	a := <-acks
	if err := a("ok", Binary{1}); err != nil {
		t.Fatal(err)
	}
	if err := a("again"); !errors.Is(err, ErrAckTwice) {
		t.Fatalf("second ack: %v", err)
	}
	if got := c.readSkipPing(); got != `461-9["ok",{"_placeholder":true,"num":0}]` {
		t.Fatalf("%q", got)
	}
}

func TestOnAnyAndNumericEvent(t *testing.T) {
	got := make(chan string, 2)
	_, hs, _ := sockServer(t, testConfig(), func(s *Socket) {
		s.OnAny(func(s *Socket, event string, args []json.RawMessage, ack Ack) { got <- event })
	})
	c := dialWSURL(t, hs.URL, "")
	c.connect("/", "")
	c.send(`42["anything",1]`)
	c.send(`42[42]`)
	if e := <-got; e != "anything" {
		t.Fatal(e)
	}
	if e := <-got; e != "42" {
		t.Fatal(e)
	}
}

func TestDisconnectReasons(t *testing.T) {
	reasons := make(chan string, 4)
	_, hs, socks := sockServer(t, testConfig(), func(s *Socket) {
		s.OnDisconnect(func(r string) { reasons <- r })
	})
	// Server-side disconnect of the namespace: the client gets DISCONNECT.
	c := dialWSURL(t, hs.URL, "")
	c.connect("/", "")
	s := <-socks
	s.Disconnect(false)
	if got := c.readSkipPing(); got != "41" {
		t.Fatalf("%q", got)
	}
	if r := <-reasons; r != ReasonServerDisconnect {
		t.Fatal(r)
	}
	// Disconnect(true): DISCONNECT then the connection closes.
	c = dialWSURL(t, hs.URL, "")
	c.connect("/", "")
	s = <-socks
	s.Disconnect(true)
	if got := c.readSkipPing(); got != "41" {
		t.Fatalf("%q", got)
	}
	c.expectClosed(5 * time.Second)
	if r := <-reasons; r != ReasonServerDisconnect {
		t.Fatal(r)
	}
	// The client leaves the namespace.
	c = dialWSURL(t, hs.URL, "")
	c.connect("/", "")
	<-socks
	c.send("41")
	if r := <-reasons; r != ReasonClientDisconnect {
		t.Fatal(r)
	}
	// The client goes away.
	c = dialWSURL(t, hs.URL, "")
	c.connect("/", "")
	<-socks
	_ = c.conn.Close()
	if r := <-reasons; r != ReasonTransportClose {
		t.Fatal(r)
	}
	// The Engine.IO connection is closed by the server.
	c = dialWSURL(t, hs.URL, "")
	c.connect("/", "")
	s = <-socks
	s.Conn().Close()
	c.expectClosed(5 * time.Second)
	if r := <-reasons; r != ReasonForcedClose {
		t.Fatal(r)
	}
}

func TestMiddlewareAndHandshake(t *testing.T) {
	srv := NewServer(testConfig())
	hsCh := make(chan *Handshake, 1)
	ns := srv.Namespace("admin") // the leading slash is added
	ns.Use(func(h *Handshake) error {
		var a struct{ Token string }
		_ = json.Unmarshal(h.Auth, &a)
		switch a.Token {
		case "good":
			h.Data = "user-1"
			return nil
		case "plain":
			return errors.New("plain refusal")
		}
		return &ConnectError{Message: "unauthorized", Data: map[string]string{"code": "unauthenticated"}}
	})
	ns.Use(func(h *Handshake) error { hsCh <- h; return nil })
	var data any
	done := make(chan struct{})
	ns.OnConnection(func(s *Socket) { data = s.Data(); close(done) })
	hs := startServer(t, srv)

	c := dialWS(t, hs, "&x=1")
	c.openSession()
	c.send(`40/admin,{"token":"bad"}`)
	if got := c.readSkipPing(); got != `44/admin,{"message":"unauthorized","data":{"code":"unauthenticated"}}` {
		t.Fatalf("%q", got)
	}
	c.send(`40/admin,{"token":"plain"}`)
	if got := c.readSkipPing(); got != `44/admin,{"message":"plain refusal"}` {
		t.Fatalf("%q", got)
	}
	c.send(`40/admin,{"token":"good"}`)
	h := <-hsCh
	if got := c.readSkipPing(); !strings.HasPrefix(got, `40/admin,{"sid":"`) {
		t.Fatalf("%q", got)
	}
	<-done
	if data != "user-1" || h.Namespace != "/admin" || h.Request().URL.Query().Get("x") != "1" || h.Request().RemoteAddr == "" || h.Request().Header.Get("Sec-WebSocket-Version") != "13" {
		t.Fatalf("handshake: %v %+v", data, h)
	}
	// Connecting twice answers again, without running the middlewares.
	c.send(`40/admin,{"token":"good"}`)
	if got := c.readSkipPing(); !strings.HasPrefix(got, `40/admin,{"sid":"`) {
		t.Fatalf("%q", got)
	}
	// Unknown namespace.
	c.send("40/nope,")
	if got := c.readSkipPing(); got != `44/nope,{"message":"Invalid namespace"}` {
		t.Fatalf("%q", got)
	}
}

func TestSlowConsumer(t *testing.T) {
	cfg := testConfig()
	cfg.WriteQueueBytes = 64 << 10
	reason := make(chan string, 1)
	_, hs, socks := sockServer(t, cfg, func(s *Socket) { s.OnDisconnect(func(r string) { reason <- r }) })
	c := dialWSURL(t, hs.URL, "")
	c.connect("/", "")
	s := <-socks
	pkt, _ := EncodeEvent("/", "m", strings.Repeat("x", 8<<10))
	// The client reads nothing: kernel buffers fill, then the queue.
	sent := 0
	for ; sent < 100000; sent++ {
		if !s.SendEncoded(pkt) {
			break
		}
	}
	if sent == 100000 {
		t.Fatal("queue never filled")
	}
	if r := <-reason; r != ReasonSlowConsumer {
		t.Fatalf("reason %q", r)
	}
	if s.SendEncoded(pkt) {
		t.Fatal("send after close")
	}
}

// TrySendEncoded on a full queue only says so: the connection stays as it
// is until the caller (a hub, outside its locks) closes it with CloseSlow.
func TestTrySendEncodedLeavesTheCloseToTheCaller(t *testing.T) {
	cfg := testConfig()
	cfg.WriteQueueBytes = 64 << 10
	reason := make(chan string, 1)
	_, hs, socks := sockServer(t, cfg, func(s *Socket) { s.OnDisconnect(func(r string) { reason <- r }) })
	c := dialWSURL(t, hs.URL, "")
	c.connect("/", "")
	s := <-socks
	pkt, _ := EncodeEvent("/", "m", strings.Repeat("x", 8<<10))
	sent := 0
	for ; sent < 100000; sent++ {
		if !s.TrySendEncoded(pkt) {
			break
		}
	}
	if sent == 100000 {
		t.Fatal("queue never filled")
	}
	if s.cl.conn.closed.Load() || !s.connected.Load() {
		t.Fatal("TrySendEncoded closed the connection itself")
	}
	s.CloseSlow()
	if r := <-reason; r != ReasonSlowConsumer {
		t.Fatalf("reason %q", r)
	}
	if s.TrySendEncoded(pkt) {
		t.Fatal("send after close")
	}
	s.CloseSlow() // again: nothing more happens
}

func TestFanOutSharedBytes(t *testing.T) {
	_, hs, socks := sockServer(t, testConfig(), nil)
	const n = 20
	clients := make([]*wsClient, n)
	sockets := make([]*Socket, n)
	for i := range clients {
		clients[i] = dialWSURL(t, hs.URL, "")
		clients[i].connect("/", "")
		sockets[i] = <-socks
	}
	pkt, _ := EncodeEvent("/", "message", map[string]int{"n": 1})
	for _, s := range sockets {
		if !s.SendEncoded(pkt) {
			t.Fatal("SendEncoded failed")
		}
	}
	for _, c := range clients {
		if got := c.readSkipPing(); got != `42["message",{"n":1}]` {
			t.Fatalf("%q", got)
		}
	}
}

func TestShutdown(t *testing.T) {
	srv := NewServer(testConfig())
	reasons := make(chan string, 2)
	srv.Namespace("/").OnConnection(func(s *Socket) { s.OnDisconnect(func(r string) { reasons <- r }) })
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", srv)
	hs := startServer(t, srv) // Shutdown again at cleanup is harmless
	c := dialWS(t, hs, "")
	c.connect("/", "")
	sid := pollHandshake(t, hs.URL)
	httpDo(t, "POST", pollURL(hs.URL, sid), "40", nil)
	httpDo(t, "GET", pollURL(hs.URL, sid), "", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if r := <-reasons; r != ReasonServerShutdown {
			t.Fatal(r)
		}
	}
	c.expectClosed(5 * time.Second)
	if code, _, _ := httpDo(t, "GET", hs.URL+"/socket.io/?EIO=4&transport=polling", "", nil); code != 503 {
		t.Fatalf("handshake after shutdown: %d", code)
	}
	if srv.Len() != 0 {
		t.Fatalf("%d connections left", srv.Len())
	}
}

// TestNoGoroutineLeak opens connections of every kind, closes them in every
// way, and checks that no goroutine outlives them.
func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		cfg := testConfig()
		// Long enough that a client that connects at once does so in time
		// on a loaded machine (the race detector, other suites), short
		// enough that case 2 below is closed well within expectClosed.
		cfg.ConnectTimeout = 1500 * time.Millisecond
		srv := NewServer(cfg)
		srv.Namespace("/").OnConnection(func(s *Socket) {
			s.On("bye", func(s *Socket, _ []json.RawMessage, _ Ack) { s.Disconnect(true) })
			s.On("ask", func(s *Socket, _ []json.RawMessage, _ Ack) {
				go func() { _, _ = s.EmitWithAck(context.Background(), "q") }()
			})
		})
		hs := startServerNoCleanup(t, srv)
		defer hs.Close()
		var wg sync.WaitGroup
		for i := range 30 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				switch i % 6 {
				case 0: // client closes
					c := dialWS(t, hs, "")
					c.connect("/", "")
					_ = c.conn.Close()
				case 1: // server disconnects
					c := dialWS(t, hs, "")
					c.connect("/", "")
					c.send(`42["bye"]`)
					c.expectClosed(5 * time.Second)
				case 2: // never connects a namespace
					c := dialWS(t, hs, "")
					c.openSession()
					c.expectClosed(5 * time.Second)
				case 3: // polling, abandoned
					sid := pollHandshake(t, hs.URL)
					httpDo(t, "POST", pollURL(hs.URL, sid), "40", nil)
				case 4: // upgraded, then closed
					sid := pollHandshake(t, hs.URL)
					c := dialWS(t, hs, "&sid="+sid)
					c.send("2probe")
					c.read()
					c.send("5")
					c.send("40")
					c.readSkipPing()
					_ = c.conn.Close()
				case 5: // pending ack, malformed packet
					c := dialWS(t, hs, "")
					c.connect("/", "")
					c.send(`42["ask"]`)
					c.readSkipPing()
					c.send("4zzz")
					c.expectClosed(5 * time.Second)
				}
			}()
		}
		wg.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		hs.CloseClientConnections()
	}()
	http.DefaultClient.CloseIdleConnections()
	waitGoroutines(t, before)
}

// A server-side disconnect of a polling client between two polls reaches
// the client with its next poll.
func TestPollingDisconnectDelivered(t *testing.T) {
	_, hs, socks := sockServer(t, testConfig(), nil)
	sid := pollHandshake(t, hs.URL)
	httpDo(t, "POST", pollURL(hs.URL, sid), "40", nil)
	s := <-socks
	if _, body, _ := httpDo(t, "GET", pollURL(hs.URL, sid), "", nil); !strings.HasPrefix(body, "40") {
		t.Fatalf("%q", body)
	}
	s.Disconnect(true) // no poll is waiting
	// The DISCONNECT first, the close in the next poll (socket.io-client
	// would drop a message that shares the close's payload).
	if _, body, _ := httpDo(t, "GET", pollURL(hs.URL, sid), "", nil); body != "41" {
		t.Fatalf("%q", body)
	}
	if _, body, _ := httpDo(t, "GET", pollURL(hs.URL, sid), "", nil); body != "1" {
		t.Fatalf("%q", body)
	}
	if code, _, _ := httpDo(t, "GET", pollURL(hs.URL, sid), "", nil); code != 400 {
		t.Fatalf("after close: %d", code)
	}
}

// A socket makes its context only when asked (an idle socket holds none);
// asked before or after the disconnect, it is cancelled by it.
func TestSocketContextOnDemand(t *testing.T) {
	_, hs, socks := sockServer(t, testConfig(), nil)
	c := dialWSURL(t, hs.URL, "")
	c.connect("/", "")
	s := <-socks
	s.mu.Lock()
	made := s.ctx != nil
	s.mu.Unlock()
	if made {
		t.Fatal("a context was made for a socket nobody asked one of")
	}
	early := s.Context()
	if early.Err() != nil || s.Context() != early {
		t.Fatal("the context of a connected socket is done, or not the same twice")
	}
	s.Disconnect(false)
	select {
	case <-early.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the context was not cancelled by the disconnect")
	}
	if late := s.Context(); late.Err() == nil {
		t.Fatal("a context asked after the disconnect is not done")
	}
}

// Every function given to OnDisconnect runs once, in the order given.
func TestOnDisconnectRunsEveryFunctionInOrder(t *testing.T) {
	calls := make(chan string, 8)
	_, hs, socks := sockServer(t, testConfig(), func(s *Socket) {
		for _, name := range []string{"first", "second", "third"} {
			s.OnDisconnect(func(r string) { calls <- name + ":" + r })
		}
	})
	c := dialWSURL(t, hs.URL, "")
	c.connect("/", "")
	s := <-socks
	s.Disconnect(false)
	for _, want := range []string{"first", "second", "third"} {
		select {
		case got := <-calls:
			if got != want+":"+ReasonServerDisconnect {
				t.Fatalf("got %q, want %q", got, want+":"+ReasonServerDisconnect)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s never ran", want)
		}
	}
	select {
	case extra := <-calls:
		t.Fatalf("a function ran twice: %q", extra)
	case <-time.After(50 * time.Millisecond):
	}
}
