package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sioClient is a minimal Socket.IO v5 client over Engine.IO v4 long-polling,
// enough to drive ECB's Socket.IO transport from Go: the handshake, events
// with acks, pushes. (test/interop drives it with the real socket.io-client.)
type sioClient struct {
	tb      testing.TB
	url     string   // .../socket.io/?EIO=4&transport=polling&sid=...
	via     []string // when set, each request goes to the next of these bases (a balancer without affinity)
	path    string   // url without its base
	hits    int
	headers []string
	nextAck int
	pending []string // Socket.IO packets received but not consumed yet
	closed  bool
}

// sioError is a refused handshake (CONNECT_ERROR) or a refused HTTP request.
type sioError struct {
	Status  int    // HTTP status when the Engine.IO handshake itself was refused
	Code    string // the error code: connect_error data.code, or the envelope's
	Message string
	// Early is set when the handshake response itself carried the
	// CONNECT_ERROR (a refusal before any work: no session behind it), and
	// SID is then the sid its open packet named.
	Early bool
	SID   string
}

// connectError decodes a CONNECT_ERROR packet's payload.
func connectError(payload string) (code, message string) {
	var ce struct {
		Message string                         `json:"message"`
		Data    struct{ Code, Message string } `json:"data"`
	}
	_ = json.Unmarshal([]byte(payload), &ce)
	return ce.Data.Code, ce.Message
}

// sioDial opens an Engine.IO session and connects the default namespace
// with auth. It returns the client, or how it was refused.
func sioDial(tb testing.TB, base string, auth any, headers ...string) (*sioClient, *sioError) {
	tb.Helper()
	return sioDialVia(tb, base, nil, auth, headers...)
}

// sioDialVia is sioDial whose requests after the handshake (made on base)
// go to each of via in turn.
func sioDialVia(tb testing.TB, base string, via []string, auth any, headers ...string) (*sioClient, *sioError) {
	tb.Helper()
	status, body := sioHTTP(tb, "GET", base+"/socket.io/?EIO=4&transport=polling", "", headers)
	if status != 200 {
		var env struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		_ = json.Unmarshal([]byte(body), &env)
		return nil, &sioError{Status: status, Code: env.Error.Code, Message: env.Error.Message}
	}
	if !strings.HasPrefix(body, "0") {
		tb.Fatalf("engine.io open packet expected, got %q", body)
	}
	var open struct {
		SID string `json:"sid"`
	}
	recs := strings.Split(body, "\x1e")
	if err := json.Unmarshal([]byte(recs[0][1:]), &open); err != nil {
		tb.Fatalf("open packet %q: %v", body, err)
	}
	if len(recs) > 1 {
		// A refusal before any work: open, CONNECT_ERROR, close.
		if len(recs) != 3 || !strings.HasPrefix(recs[1], "44") || recs[2] != "1" {
			tb.Fatalf("handshake response %q: neither a session nor a refusal", body)
		}
		code, msg := connectError(recs[1][2:])
		return nil, &sioError{Status: status, Code: code, Message: msg, Early: true, SID: open.SID}
	}
	path := "/socket.io/?EIO=4&transport=polling&sid=" + open.SID
	c := &sioClient{tb: tb, url: base + path, via: via, path: path, headers: headers}
	rawAuth, _ := json.Marshal(auth)
	c.send("0" + string(rawAuth)) // Socket.IO CONNECT
	p := c.awaitPacket(func(p string) bool { return strings.HasPrefix(p, "0") || strings.HasPrefix(p, "4") })
	if strings.HasPrefix(p, "4") { // CONNECT_ERROR
		code, msg := connectError(p[1:])
		c.closed = true
		return nil, &sioError{Status: 200, Code: code, Message: msg}
	}
	tb.Cleanup(c.close)
	return c, nil
}

func sioHTTP(tb testing.TB, method, url, body string, headers []string) (int, string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequestWithContext(ctx, method, url, rd)
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	if body != "" {
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// target is the URL of the client's next request.
func (c *sioClient) target() string {
	if len(c.via) == 0 {
		return c.url
	}
	c.hits++
	return c.via[(c.hits-1)%len(c.via)] + c.path
}

// send posts one Socket.IO packet in an Engine.IO message packet ("4").
func (c *sioClient) send(sioPacket string) {
	c.tb.Helper()
	if status, body := sioHTTP(c.tb, "POST", c.target(), "4"+sioPacket, c.headers); status != 200 {
		c.tb.Fatalf("socket.io POST: %d %s", status, body)
	}
}

// poll reads one batch of packets, answering pings; it returns the
// Socket.IO packets and whether the session ended.
func (c *sioClient) poll() (packets []string, ended bool) {
	c.tb.Helper()
	status, body := sioHTTP(c.tb, "GET", c.target(), "", c.headers)
	if status != 200 {
		return nil, true
	}
	for _, p := range strings.Split(body, "\x1e") {
		switch {
		case p == "2":
			sioHTTP(c.tb, "POST", c.target(), "3", c.headers)
		case p == "1":
			ended = true
		case strings.HasPrefix(p, "4"):
			packets = append(packets, p[1:])
		}
	}
	return packets, ended
}

// awaitPacket returns the first Socket.IO packet that match accepts, keeping
// the others for later.
func (c *sioClient) awaitPacket(match func(string) bool) string {
	c.tb.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		for i, p := range c.pending {
			if match(p) {
				c.pending = append(c.pending[:i:i], c.pending[i+1:]...)
				return p
			}
		}
		packets, ended := c.poll()
		c.pending = append(c.pending, packets...)
		if ended && len(packets) == 0 {
			c.tb.Fatalf("socket.io session ended; pending %q", c.pending)
		}
	}
	c.tb.Fatalf("no matching socket.io packet within 15s; pending %q", c.pending)
	return ""
}

// sioAck is an operation's answer.
type sioAck struct {
	Data  json.RawMessage `json:"data"`
	Error *struct {
		Code       string `json:"code"`
		Message    string `json:"message"`
		RetryAfter int    `json:"retryAfter"`
	} `json:"error"`
}

func (a sioAck) code() string {
	if a.Error == nil {
		return ""
	}
	return a.Error.Code
}

// emit sends an event with an ack id and returns the id.
func (c *sioClient) emit(event string, payload any) int {
	c.tb.Helper()
	id := c.nextAck
	c.nextAck++
	raw, _ := json.Marshal([]any{event, payload})
	c.send("2" + strconv.Itoa(id) + string(raw))
	return id
}

// ack waits for the answer of the event sent with id.
func (c *sioClient) ack(id int) sioAck {
	c.tb.Helper()
	prefix := "3" + strconv.Itoa(id) + "["
	p := c.awaitPacket(func(p string) bool { return strings.HasPrefix(p, prefix) })
	var args []sioAck
	if err := json.Unmarshal([]byte(p[len(prefix)-1:]), &args); err != nil || len(args) != 1 {
		c.tb.Fatalf("ack %q: %v", p, err)
	}
	return args[0]
}

// call emits an operation and waits for its answer.
func (c *sioClient) call(event string, payload any) sioAck {
	c.tb.Helper()
	return c.ack(c.emit(event, payload))
}

// event waits for a push named name and returns its payload.
func (c *sioClient) event(name string) json.RawMessage {
	c.tb.Helper()
	prefix := fmt.Sprintf(`2["%s",`, name)
	p := c.awaitPacket(func(p string) bool { return strings.HasPrefix(p, prefix) })
	var args []json.RawMessage
	if err := json.Unmarshal([]byte(p[1:]), &args); err != nil || len(args) != 2 {
		c.tb.Fatalf("event %q: %v", p, err)
	}
	return args[1]
}

// disconnected waits until ECB ends the namespace or the session.
func (c *sioClient) disconnected() {
	c.tb.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		for _, p := range c.pending {
			if p == "1" {
				c.closed = true
				return
			}
		}
		packets, ended := c.poll()
		c.pending = append(c.pending, packets...)
		if ended {
			c.closed = true
			return
		}
	}
	c.tb.Fatal("socket not disconnected within 15s")
}

func (c *sioClient) close() {
	if c.closed {
		return
	}
	c.closed = true
	sioHTTP(c.tb, "POST", c.target(), "1", c.headers)
}
