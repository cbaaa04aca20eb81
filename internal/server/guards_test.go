package server

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHandshakeKind(t *testing.T) {
	cases := []struct {
		method, target string
		want           handshake
	}{
		{"GET", "/socket.io/?EIO=4&transport=polling", newConnection},
		{"GET", "/socket.io/?EIO=4&transport=websocket", newConnection},
		{"GET", "/socket.io/?EIO=4&transport=polling&sid=abc", notHandshake},
		{"POST", "/socket.io/?EIO=4&transport=polling&sid=abc", notHandshake},
		{"GET", "/v1/events", newConnection},
		{"GET", "/v1/events?lastEventId=x:1", newConnection},
		{"POST", "/v1/token", tokenExchange},
		{"OPTIONS", "/v1/token", notHandshake},
		{"GET", "/v1/threads", notHandshake},
		{"GET", "/healthz", notHandshake},
	}
	for _, tc := range cases {
		if got := handshakeKind(httptest.NewRequest(tc.method, tc.target, nil)); got != tc.want {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.target, got, tc.want)
		}
	}
}

// TestBodyDeadline: a body that does not arrive in time fails the read; a
// body read in time leaves the handler all the time it needs afterwards.
func TestBodyDeadline(t *testing.T) {
	srv := httptest.NewServer(bodyDeadline(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "slow body", http.StatusRequestTimeout)
			return
		}
		time.Sleep(600 * time.Millisecond) // a backend call longer than the body timeout
		if r.Context().Err() != nil {
			return
		}
		_, _ = w.Write(body)
	}), 300*time.Millisecond))
	defer srv.Close()

	resp, err := http.Post(srv.URL, "text/plain", strings.NewReader("in time"))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(got) != "in time" {
		t.Fatalf("a body read in time: %d %q", resp.StatusCode, got)
	}

	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = io.WriteString(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly part")
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	r, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("a stalled body got no answer: %v", err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("a stalled body: %d", r.StatusCode)
	}

	// No body: untouched (event streams, WebSocket upgrades).
	resp, err = http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
}
