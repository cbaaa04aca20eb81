package socketio

import (
	"encoding/json"
	"strings"
	"testing"
)

func echoServer(tb testing.TB, cfg Config) (*Server, string) {
	srv := NewServer(cfg)
	srv.Namespace("/").OnConnection(func(s *Socket) {
		_ = s.Emit("auth", s.Handshake().Auth)
		s.On("message", func(s *Socket, args []json.RawMessage, ack Ack) {
			_ = s.Emit("message-back", rawArgs(args)...)
		})
		s.On("message-with-ack", func(s *Socket, args []json.RawMessage, ack Ack) {
			if ack != nil {
				_ = ack(rawArgs(args)...)
			}
		})
	})
	srv.Namespace("/custom").OnConnection(func(s *Socket) { _ = s.Emit("auth", s.Handshake().Auth) })
	hs := startServer(tb, srv)
	return srv, hs.URL
}

func rawArgs(args []json.RawMessage) []any {
	out := make([]any, len(args))
	for i, a := range args {
		out[i] = a
	}
	return out
}

func TestWebSocketConnectAndEcho(t *testing.T) {
	_, base := echoServer(t, testConfig())
	hs := struct{ URL string }{base}
	_ = hs
	c := dialWSURL(t, base, "")
	open := c.openSession()
	if len(open) != 5 {
		t.Fatalf("open keys: %v", open)
	}
	c.send(`40{"token":"123"}`)
	got := c.readSkipPing()
	if !strings.HasPrefix(got, `40{"sid":"`) {
		t.Fatalf("connect reply %q", got)
	}
	if got := c.readSkipPing(); got != `42["auth",{"token":"123"}]` {
		t.Fatalf("auth %q", got)
	}
	c.send(`42["message",1,"2",{"3":[true]}]`)
	if got := c.readSkipPing(); got != `42["message-back",1,"2",{"3":[true]}]` {
		t.Fatalf("echo %q", got)
	}
	c.send(`42456["message-with-ack",1,"2",{"3":[false]}]`)
	if got := c.readSkipPing(); got != `43456[1,"2",{"3":[false]}]` {
		t.Fatalf("ack %q", got)
	}
	c.send(`452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`)
	c.sendBinary([]byte{1, 2, 3})
	c.sendBinary([]byte{4, 5, 6})
	if got := c.readSkipPing(); got != `452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]` {
		t.Fatalf("binary echo %q", got)
	}
	if got, op := c.read(); got != "\x01\x02\x03" || op != 2 {
		t.Fatalf("att0 %q %v", got, op)
	}
	if got, _ := c.read(); got != "\x04\x05\x06" {
		t.Fatalf("att1 %q", got)
	}
}

// The sid of the CONNECT reply is the socket's ID, 20 URL-safe characters,
// and ID answers the same every time.
func TestConnectReplyCarriesTheSocketID(t *testing.T) {
	srv := NewServer(testConfig())
	srv.Namespace("/").OnConnection(func(s *Socket) {
		first := s.ID()
		if again := s.ID(); again != first {
			t.Errorf("ID changed between two calls: %q, then %q", first, again)
		}
		_ = s.Emit("id", first)
	})
	hs := startServer(t, srv)
	c := dialWSURL(t, hs.URL, "")
	c.openSession()
	c.send(`40`)
	reply := c.readSkipPing()
	var sid struct{ Sid string }
	if !strings.HasPrefix(reply, "40") || json.Unmarshal([]byte(reply[2:]), &sid) != nil || len(sid.Sid) != 20 ||
		strings.Trim(sid.Sid, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
		t.Fatalf("connect reply %q", reply)
	}
	if got, want := c.readSkipPing(), `42["id","`+sid.Sid+`"]`; got != want {
		t.Fatalf("ID() emitted %q, want %q", got, want)
	}
}
