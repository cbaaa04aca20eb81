package e2e

// The security suite: issue 7's table of attacks, each against a real
// `ecb demo` in process, each ending with the documented refusal, the
// process healthy, and nothing changed in the backend. The userToken attacks
// on REST are in badinput_test.go (TestBadTokensAreRefused), and a
// threadToken of another user in TestThreadTokenOfAnotherUserIsForbidden;
// here they are extended to the other entry points and to threadTokens.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/golang-jwt/jwt/v5"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

func threadClaims(thread, uid string, acc int, mods ...func(jwt.MapClaims)) jwt.MapClaims {
	c := jwt.MapClaims{"sub": thread, "uid": uid, "acc": acc, "typ": "thread", "aud": "ecb-demo",
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
	for _, m := range mods {
		m(c)
	}
	return c
}

// setClaim changes one claim of a JWT without re-signing it.
func setClaim(tb testing.TB, tok, claim string, value any) string {
	tb.Helper()
	parts := strings.Split(tok, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		tb.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		tb.Fatal(err)
	}
	claims[claim] = value
	payload, _ = json.Marshal(claims)
	parts[1] = base64.RawURLEncoding.EncodeToString(payload)
	return strings.Join(parts, ".")
}

func noneToken(claims jwt.MapClaims) string {
	b64 := base64.RawURLEncoding.EncodeToString
	payload, _ := json.Marshal(claims)
	return b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + b64(payload) + "."
}

// TestForgedTokensOnEveryEntryPoint: the forged userTokens of
// TestBadTokensAreRefused, presented to the event stream (header and query)
// and to the Socket.IO handshake; the forged threadTokens, including one
// whose acc was raised by hand, to getThread and sendMessage over REST and
// Socket.IO. Everything is unauthenticated, and the backend keeps one message.
func TestForgedTokensOnEveryEntryPoint(t *testing.T) {
	d := startDemo(t)
	alice := d.login(t, "alice")
	c := decodeData[created](t, call(t, "POST", d.ECB+"/v1/threads", map[string]any{"participants": []string{"bob"}, "message": map[string]any{"body": "only message"}}, bearer(alice)))
	id := c.Thread.ID
	pubPEM, err := os.ReadFile(filepath.Join(d.Data, "public.pem"))
	if err != nil {
		t.Fatal(err)
	}
	expired := func(cl jwt.MapClaims) { cl["exp"] = time.Now().Add(-time.Hour).Unix() }
	otherAud := func(cl jwt.MapClaims) { cl["aud"] = "another-service" }

	users := map[string]string{
		"alg none":                         noneToken(userClaims("alice")),
		"HS256 signed with the public key": d.forge(t, jwt.SigningMethodHS256, pubPEM, userClaims("alice")),
		"expired":                          d.forge(t, jwt.SigningMethodRS256, nil, userClaims("alice", expired)),
		"another audience":                 d.forge(t, jwt.SigningMethodRS256, nil, userClaims("alice", otherAud)),
		"claims changed by hand":           setClaim(t, alice, "sub", "bob"),
	}
	for name, tok := range users {
		t.Run("userToken "+name, func(t *testing.T) {
			if r := call(t, "GET", d.ECB+"/v1/events", nil, bearer(tok)); r.Status != 401 || r.code() != "unauthenticated" {
				t.Fatalf("event stream: %d %s", r.Status, r.code())
			}
			if r := call(t, "GET", d.ECB+"/v1/events?access_token="+tok, nil); r.Status != 401 || r.code() != "unauthenticated" {
				t.Fatalf("event stream (query): %d %s", r.Status, r.code())
			}
			if _, refused := sioDial(t, d.ECB, map[string]string{"userToken": tok}); refused == nil || refused.Code != "unauthenticated" {
				t.Fatalf("socket.io handshake: %+v", refused)
			}
		})
	}

	real := c.ThreadToken // acc 11: read, write, owner
	threads := map[string]string{
		"alg none":                         noneToken(threadClaims(id, "alice", 15)),
		"HS256 signed with the public key": d.forge(t, jwt.SigningMethodHS256, pubPEM, threadClaims(id, "alice", 15)),
		"expired":                          d.forge(t, jwt.SigningMethodRS256, nil, threadClaims(id, "alice", 3, expired)),
		"another audience":                 d.forge(t, jwt.SigningMethodRS256, nil, threadClaims(id, "alice", 3, otherAud)),
		"acc raised by hand":               setClaim(t, d.forge(t, jwt.SigningMethodRS256, nil, threadClaims(id, "alice", 1)), "acc", 15),
		"uid changed by hand":              setClaim(t, real, "uid", "carol"),
	}
	sock, refused := sioDial(t, d.ECB, map[string]string{"userToken": alice})
	if refused != nil {
		t.Fatalf("alice's socket: %+v", refused)
	}
	for name, tok := range threads {
		t.Run("threadToken "+name, func(t *testing.T) {
			if r := call(t, "GET", d.ECB+"/v1/threads/"+id, nil, bearer(alice), "ECB-Thread-Token: "+tok); r.Status != 401 || r.code() != "unauthenticated" {
				t.Fatalf("getThread: %d %s", r.Status, r.code())
			}
			if r := call(t, "POST", d.ECB+"/v1/threads/"+id+"/messages", map[string]any{"body": "forged"}, bearer(alice), "ECB-Thread-Token: "+tok); r.Status != 401 || r.code() != "unauthenticated" {
				t.Fatalf("sendMessage: %d %s", r.Status, r.code())
			}
			if a := sock.call("sendMessage", map[string]any{"threadToken": tok, "body": "forged"}); a.code() != "unauthenticated" {
				t.Fatalf("socket.io sendMessage: %s", a.code())
			}
			if a := sock.call("getThread", map[string]any{"threadToken": tok}); a.code() != "unauthenticated" {
				t.Fatalf("socket.io getThread: %s", a.code())
			}
		})
	}
	if n := d.stored(t, alice, id); n != 1 {
		t.Fatalf("the backend holds %d messages, want 1", n)
	}
	d.healthy(t)
	if strings.Contains(d.stderr.String(), alice[:40]) {
		t.Error("the log contains a token")
	}
}

// TestBannedUserReconnectingWithAnOldThreadToken: bob is banned while away;
// he reconnects (Socket.IO and SSE) with the threadToken he kept. Nothing
// of the thread reaches him, his writes are refused, the backend unchanged.
func TestBannedUserReconnectingWithAnOldThreadToken(t *testing.T) {
	d := startDemo(t)
	alice, bob := d.login(t, "alice"), d.login(t, "bob")
	c := decodeData[created](t, call(t, "POST", d.ECB+"/v1/threads", map[string]any{"participants": []string{"bob"}, "message": map[string]any{"body": "hi"}}, bearer(alice)))
	old := d.threadTokenFor(t, bob, c.Thread.ID)
	if _, err := d.serverAPI(t).SetAccess(context.Background(), c.Thread.ID, "bob", ecbserver.AccessNone, time.Hour); err != nil {
		t.Fatal(err)
	}
	sock, refused := sioDial(t, d.ECB, map[string]string{"userToken": bob})
	if refused != nil {
		t.Fatal(refused)
	}
	if a := sock.call("getThread", map[string]any{"threadToken": old}); a.code() != "forbidden" {
		t.Fatalf("socket.io getThread: %s", a.code())
	}
	if a := sock.call("sendMessage", map[string]any{"threadToken": old, "body": "I'm back"}); a.code() != "forbidden" {
		t.Fatalf("socket.io sendMessage: %s", a.code())
	}
	s := openStream(t, d.ECB, bob)
	if r := call(t, "GET", d.ECB+"/v1/threads/"+c.Thread.ID, nil, bearer(bob), "ECB-Stream: "+s.ID, "ECB-Thread-Token: "+old); r.code() != "forbidden" {
		t.Fatalf("SSE getThread: %s", r.code())
	}
	d.send(t, alice, c.Thread.ID, "not for bob")
	s.expectNoneOf(t, 300*time.Millisecond, "message")
	if n := d.stored(t, alice, c.Thread.ID); n != 2 {
		t.Fatalf("the backend holds %d messages, want 2", n)
	}
	d.healthy(t)
}

// TestSocketIOKickAndRevocation: a Socket.IO client of a user the backend
// disconnects is told (closing {reason: kicked}) and disconnected; with its
// tokens revoked it cannot connect again.
func TestSocketIOKickAndRevocation(t *testing.T) {
	d := startDemo(t)
	bob := d.login(t, "bob")
	sock, refused := sioDial(t, d.ECB, map[string]string{"userToken": bob})
	if refused != nil {
		t.Fatal(refused)
	}
	if a := sock.call("getContacts", map[string]any{}); a.Error != nil {
		t.Fatalf("getContacts: %s", a.code())
	}
	res, err := d.serverAPI(t).DisconnectUser(context.Background(), "bob", time.Now())
	if err != nil || res.Disconnected != 1 {
		t.Fatalf("disconnect: %+v %v", res, err)
	}
	var closing struct{ Reason string }
	_ = json.Unmarshal(sock.event("closing"), &closing)
	if closing.Reason != "kicked" {
		t.Fatalf("closing reason %q", closing.Reason)
	}
	sock.disconnected()
	if _, refused := sioDial(t, d.ECB, map[string]string{"userToken": bob}); refused == nil || refused.Code != "unauthenticated" {
		t.Fatalf("reconnecting with a revoked token: %+v", refused)
	}
	d.healthy(t)
}

// TestAnonymousTokenFromAForeignOrigin: an anonymous visitor's token is bound
// to its origins claim; another origin, even one ECB allows, is refused.
func TestAnonymousTokenFromAForeignOrigin(t *testing.T) {
	d := startDemo(t, "--set", "http.allowedOrigins=https://shop.example,https://other.example")
	anon := d.forge(t, jwt.SigningMethodRS256, nil, userClaims("anon-1", func(c jwt.MapClaims) {
		c["anon"] = true
		c["origins"] = []string{"https://shop.example"}
	}))
	if r := call(t, "GET", d.ECB+"/v1/events", nil, bearer(anon), "Origin: https://other.example"); r.Status != 403 || r.code() != "forbidden" {
		t.Fatalf("event stream from another origin: %d %s", r.Status, r.code())
	}
	if _, refused := sioDial(t, d.ECB, map[string]string{"userToken": anon}, "Origin: https://other.example"); refused == nil || refused.Code != "forbidden" {
		t.Fatalf("socket.io from another origin: %+v", refused)
	}
	if r := call(t, "GET", d.ECB+"/v1/events", nil, bearer(anon), "Origin: https://evil.example"); r.Status != 403 || r.code() != "forbidden" {
		t.Fatalf("event stream from a origin ECB does not allow: %d %s", r.Status, r.code())
	}
	// From its own origin the visitor connects, and still may not use chat operations.
	openStream(t, d.ECB, anon, "Origin: https://shop.example")
	if r := call(t, "GET", d.ECB+"/v1/threads", nil, bearer(anon), "Origin: https://shop.example"); r.Status != 403 || r.code() != "forbidden" {
		t.Fatalf("anonymous getThreads: %d %s", r.Status, r.code())
	}
	d.healthy(t)
}

// TestAnonymousTokenSameOriginWithoutOriginHeader: a browser leaves Origin
// out of a same-origin GET (an EventSource, a Socket.IO polling request) and
// says Sec-Fetch-Site: same-origin instead; a visitor page served by ECB
// itself then connects with a token bound to ECB's origin. Without that
// header, or from another site, there is no origin and the token is refused.
func TestAnonymousTokenSameOriginWithoutOriginHeader(t *testing.T) {
	d := startDemo(t)
	anon := d.forge(t, jwt.SigningMethodRS256, nil, userClaims("anon-2", func(c jwt.MapClaims) {
		c["anon"] = true
		c["origins"] = []string{d.ECB}
	}))
	openStream(t, d.ECB, anon, "Sec-Fetch-Site: same-origin")
	for _, h := range []string{"Sec-Fetch-Site: cross-site", "Sec-Fetch-Site: same-site", "X-Nothing: 1"} {
		if r := call(t, "GET", d.ECB+"/v1/events", nil, bearer(anon), h); r.Status != 403 || r.code() != "forbidden" {
			t.Fatalf("event stream with %q and no Origin: %d %s", h, r.Status, r.code())
		}
	}
	if _, refused := sioDial(t, d.ECB, map[string]string{"userToken": anon}, "Sec-Fetch-Site: same-origin"); refused != nil {
		t.Fatalf("socket.io same-origin without Origin: %+v", refused)
	}
	d.healthy(t)
}

// TestSocketIOHandshakeFromAForeignOrigin: a Socket.IO handshake from an
// origin ECB does not allow is refused with forbidden in a CONNECT_ERROR
// that socket.io-client shows as err.data.code, over polling and over
// WebSocket; the session that carried the refusal does not exist (the
// CONNECT sent to it is refused), and the accessToken in it is never
// exchanged.
func TestSocketIOHandshakeFromAForeignOrigin(t *testing.T) {
	d := startDemo(t, "--set", "http.allowedOrigins=https://shop.example")
	alice := d.login(t, "alice")
	evil := "Origin: https://evil.example"
	_, refused := sioDial(t, d.ECB, map[string]string{"userToken": alice}, evil)
	if refused == nil || refused.Code != "forbidden" || !refused.Early || !strings.Contains(refused.Message, "https://evil.example") {
		t.Fatalf("polling handshake from a foreign origin: %+v", refused)
	}
	session := d.ECB + "/socket.io/?EIO=4&transport=polling&sid=" + refused.SID
	auth := `{"userToken":"` + alice + `"}`
	if status, body := sioHTTP(t, "POST", session, "40"+auth, []string{evil}); status != 403 {
		t.Fatalf("CONNECT to the refusal's session: %d %s", status, body)
	}
	if status, body := sioHTTP(t, "POST", session, "40"+auth, nil); status != 400 {
		t.Fatalf("CONNECT to the refusal's session without Origin: %d %s", status, body)
	}
	open, reply := wsHandshake(t, d.ECB, "https://evil.example", auth)
	if code, _ := connectError(strings.TrimPrefix(reply, "4")); !strings.HasPrefix(open, `0{"sid":"`) || !strings.HasPrefix(reply, "4") || code != "forbidden" {
		t.Fatalf("websocket handshake from a foreign origin: %q, %q", open, reply)
	}
	// An allowed origin connects, over both transports.
	if _, refused := sioDial(t, d.ECB, map[string]string{"userToken": alice}, "Origin: https://shop.example"); refused != nil {
		t.Fatalf("allowed origin: %+v", refused)
	}
	if _, reply := wsHandshake(t, d.ECB, "https://shop.example", auth); !strings.HasPrefix(reply, `0{"sid":"`) {
		t.Fatalf("allowed origin over websocket: %q", reply)
	}
	d.healthy(t)
}

// wsHandshake opens a WebSocket Engine.IO session with origin, reads its
// open packet, sends the CONNECT with auth, and returns the first Socket.IO
// packet that comes back: CONNECT ("0...") for a session, CONNECT_ERROR
// ("4...") for a refusal, which must then close the WebSocket.
func wsHandshake(tb testing.TB, base, origin, auth string) (open, reply string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dialer := ws.Dialer{Header: ws.HandshakeHeaderHTTP(http.Header{"Origin": {origin}})}
	conn, br, _, err := dialer.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/socket.io/?EIO=4&transport=websocket")
	if err != nil {
		tb.Fatalf("websocket handshake from %s: %v", origin, err)
	}
	defer conn.Close()
	var rd io.Reader = conn
	if br != nil {
		rd = io.MultiReader(br, conn)
	}
	rw := struct {
		io.Reader
		io.Writer
	}{rd, conn}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	b, err := wsutil.ReadServerText(rw)
	if err != nil {
		tb.Fatalf("open packet: %v", err)
	}
	open = string(b)
	_ = wsutil.WriteClientText(conn, []byte("40"+auth)) // a refusal may have closed already
	b, err = wsutil.ReadServerText(rw)
	if err != nil || !strings.HasPrefix(string(b), "4") {
		tb.Fatalf("after the open packet: %q, %v", b, err)
	}
	reply = string(b[1:])
	if strings.HasPrefix(reply, "4") {
		if _, err := wsutil.ReadServerText(rw); err == nil {
			tb.Fatal("the refusal's WebSocket stays open")
		}
	}
	return open, reply
}

// TestOriginWithATrailingSlash: "http://host:port/" is a URL, not an
// origin: it is neither ECB's own origin nor an allowed one, on REST, SSE
// and Socket.IO.
func TestOriginWithATrailingSlash(t *testing.T) {
	d := startDemo(t, "--set", "http.allowedOrigins=https://shop.example")
	alice := d.login(t, "alice")
	for _, o := range []string{d.ECB + "/", "https://shop.example/"} {
		if r := call(t, "GET", d.ECB+"/v1/contacts", nil, bearer(alice), "Origin: "+o); r.Status != 403 || r.code() != "forbidden" {
			t.Fatalf("REST with Origin %s: %d %s", o, r.Status, r.code())
		}
		if r := call(t, "GET", d.ECB+"/v1/events", nil, bearer(alice), "Origin: "+o); r.Status != 403 || r.code() != "forbidden" {
			t.Fatalf("event stream with Origin %s: %d %s", o, r.Status, r.code())
		}
		if _, refused := sioDial(t, d.ECB, map[string]string{"userToken": alice}, "Origin: "+o); refused == nil || refused.Code != "forbidden" {
			t.Fatalf("socket.io with Origin %s: %+v", o, refused)
		}
	}
	for _, o := range []string{d.ECB, "https://shop.example"} {
		if r := call(t, "GET", d.ECB+"/v1/contacts", nil, bearer(alice), "Origin: "+o); r.Status != 200 {
			t.Fatalf("REST with Origin %s: %d %s", o, r.Status, r.code())
		}
		if _, refused := sioDial(t, d.ECB, map[string]string{"userToken": alice}, "Origin: "+o); refused != nil {
			t.Fatalf("socket.io with Origin %s: %+v", o, refused)
		}
	}
	d.healthy(t)
}

// TestServerAPIKeys: without a key, with a wrong key, with a key lacking the
// scope: refused, nothing changed, no key in the log.
func TestServerAPIKeys(t *testing.T) {
	full, reader := strings.Repeat("f", 40), strings.Repeat("r", 40)
	d := startDemo(t, "--set", fmt.Sprintf(`serverApi.keys=[{name: full, key: %s, scopes: ["*"]}, {name: reader, key: %s, scopes: [presence:read]}]`, full, reader))
	base := d.ECB + "/server/v1"
	cases := []struct {
		name, key    string
		status       int
		code, method string
	}{
		{"no key", "", 401, "unauthenticated", "PUT"},
		{"wrong key", strings.Repeat("x", 40), 401, "unauthenticated", "PUT"},
		{"the demo's own key, replaced by the configuration", "", 401, "unauthenticated", "PUT"},
		{"key lacking the scope", reader, 403, "forbidden", "PUT"},
	}
	demoKey, _ := os.ReadFile(filepath.Join(d.Data, "server-api-key"))
	cases[2].key = strings.TrimSpace(string(demoKey))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var headers []string
			if tc.key != "" {
				headers = append(headers, bearer(tc.key))
			}
			r := call(t, tc.method, base+"/threads/t1/access/bob", map[string]any{"acc": 0}, headers...)
			if r.Status != tc.status || r.code() != tc.code {
				t.Fatalf("%d %s, want %d %s", r.Status, r.code(), tc.status, tc.code)
			}
			if r := call(t, "POST", base+"/users/alice/disconnect", map[string]any{"revokedBefore": "now"}, headers...); r.Status != tc.status {
				t.Fatalf("disconnect: %d %s", r.Status, r.code())
			}
		})
	}
	if r := call(t, "GET", base+"/users/alice/presence", nil, bearer(reader)); r.Status != 200 {
		t.Fatalf("the reader's own scope: %d %s", r.Status, r.code())
	}
	if r := call(t, "GET", base+"/threads/t1/access/bob", nil, bearer(full)); r.code() != "not_found" {
		t.Fatalf("a refused PUT left an override: %s", r.code())
	}
	alice := d.login(t, "alice") // not revoked by the refused disconnects
	decodeData[page[user]](t, call(t, "GET", d.ECB+"/v1/contacts", nil, bearer(alice)))
	logs := d.stderr.String()
	for _, k := range []string{full, reader, strings.Repeat("x", 40)} {
		if strings.Contains(logs, k) {
			t.Fatal("an API key is in the log")
		}
	}
	d.healthy(t)
}

// TestOversizedAndDeeplyNestedJSON on REST, Socket.IO and the Server API.
func TestOversizedAndDeeplyNestedJSON(t *testing.T) {
	d := startDemo(t)
	alice := d.login(t, "alice")
	key, _ := os.ReadFile(filepath.Join(d.Data, "server-api-key"))
	apiKey := bearer(strings.TrimSpace(string(key)))
	nested := func(depth int) string {
		return `{"participants":["bob"],"message":{"body":"x","data":` + strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth) + "}}"
	}
	huge := `{"participants":["bob"],"message":{"body":"` + strings.Repeat("x", 1<<20) + `"}}`
	cases := []struct {
		name, method, url, body string
		headers                 []string
		status                  int
		code                    string
	}{
		{"REST: a megabyte", "POST", "/v1/threads", huge, []string{bearer(alice)}, 413, "payload_too_large"},
		{"REST: nested 10000 deep", "POST", "/v1/threads", nested(10000), []string{bearer(alice)}, 400, "invalid_argument"},
		{"REST: nested 100000 deep", "POST", "/v1/threads", nested(100000), []string{bearer(alice)}, 413, "payload_too_large"},
		{"token exchange: a megabyte", "POST", "/v1/token", `{"accessToken":"` + strings.Repeat("a", 1<<20) + `"}`, nil, 413, "payload_too_large"},
		{"Server API: a megabyte", "POST", "/server/v1/threads/t/messages", `{"body":"` + strings.Repeat("x", 1<<20) + `"}`, []string{apiKey}, 413, "payload_too_large"},
		{"Server API: nested", "POST", "/server/v1/threads/t/messages", `{"body":"x","data":` + strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000) + "}", []string{apiKey}, 400, "invalid_argument"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, tc.method, d.ECB+tc.url, tc.body, tc.headers...)
			if r.Status != tc.status || r.code() != tc.code {
				t.Fatalf("%d %s, want %d %s", r.Status, r.code(), tc.status, tc.code)
			}
		})
	}
	// Socket.IO: a nested payload is refused, a payload beyond socketio.maxPayload ends the session.
	sock, refused := sioDial(t, d.ECB, map[string]string{"userToken": alice})
	if refused != nil {
		t.Fatal(refused)
	}
	var deep any = 1
	for range 2000 {
		deep = map[string]any{"a": deep}
	}
	if a := sock.call("createThread", map[string]any{"participants": []string{"bob"}, "message": map[string]any{"body": "x", "data": deep}}); a.code() != "payload_too_large" && a.code() != "invalid_argument" {
		t.Fatalf("socket.io nested data: %s", a.code())
	}
	status, _ := sioHTTP(t, "POST", sock.url, "4"+strings.Repeat("x", 2_000_000), nil)
	if status < 400 {
		t.Fatalf("a polling POST over maxPayload answered %d", status)
	}
	if n := decodeData[page[signedThread]](t, call(t, "GET", d.ECB+"/v1/threads", nil, bearer(alice))).Total; n != 0 {
		t.Fatalf("refused requests created %d threads", n)
	}
	d.healthy(t)
}

// TestSlowHeadersAndSlowBodies: a client that never finishes its headers or
// its body is cut after http.readHeaderTimeout / http.readBodyTimeout.
func TestSlowHeadersAndSlowBodies(t *testing.T) {
	d := startDemo(t, "--set", "http.readHeaderTimeout=1s", "--set", "http.readBodyTimeout=1s")
	alice := d.login(t, "alice")
	host := strings.TrimPrefix(d.ECB, "http://")
	cut := func(t *testing.T, request string) {
		t.Helper()
		conn, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, request); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
		start := time.Now()
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err == nil {
			defer resp.Body.Close()
			if resp.StatusCode < 400 {
				t.Fatalf("a stalled request got %d", resp.StatusCode)
			}
			_, err = io.ReadAll(resp.Body)
			if err == nil {
				_, err = conn.Read(make([]byte, 1))
			}
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("the connection was still open after %s", time.Since(start))
		}
	}
	t.Run("slow headers", func(t *testing.T) {
		cut(t, "GET /healthz HTTP/1.1\r\nHost: "+host+"\r\nX-Slow: ")
	})
	t.Run("slow body", func(t *testing.T) {
		cut(t, "POST /v1/threads HTTP/1.1\r\nHost: "+host+"\r\nAuthorization: Bearer "+alice+"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"participants\":")
	})
	if n := decodeData[page[signedThread]](t, call(t, "GET", d.ECB+"/v1/threads", nil, bearer(alice))).Total; n != 0 {
		t.Fatalf("%d threads created", n)
	}
	// A slow backend call after a body read in time is not cut.
	decodeData[created](t, call(t, "POST", d.ECB+"/v1/threads", map[string]any{"participants": []string{"bob"}, "message": map[string]any{"body": "fine"}}, bearer(alice)))
	d.healthy(t)
}

// TestHandshakeFloodFromOneIP: beyond limits.handshakeBurstPerIP new
// connections from one IP are refused with rate_limited and Retry-After,
// the connections already open keep working.
func TestHandshakeFloodFromOneIP(t *testing.T) {
	d := startDemo(t, "--set", "limits.handshakesPerSecondPerIP=1", "--set", "limits.handshakeBurstPerIP=6")
	alice := d.login(t, "alice") // 1
	live := openStream(t, d.ECB, alice)
	var mu sync.Mutex
	codes := map[string]int{}
	retryAfter := ""
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			var code string
			if i%2 == 0 {
				_, refused := sioDial(t, d.ECB, map[string]string{"userToken": alice})
				if refused != nil {
					code = refused.Code
				}
			} else {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				req, _ := http.NewRequestWithContext(ctx, "GET", d.ECB+"/v1/events", nil)
				req.Header.Set("Authorization", "Bearer "+alice)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				if resp.StatusCode == 429 {
					code = "rate_limited"
					mu.Lock()
					retryAfter = resp.Header.Get("Retry-After")
					mu.Unlock()
				}
				resp.Body.Close()
			}
			mu.Lock()
			codes[code]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if codes["rate_limited"] < 30 || codes[""] > 6 || retryAfter == "" {
		t.Fatalf("outcomes %v (Retry-After %q): want at most 6 accepted, the rest rate_limited", codes, retryAfter)
	}
	// A token exchange counts as a handshake too; after the retry-after the IP is served again.
	r := call(t, "POST", d.ECB+"/v1/token", map[string]string{"accessToken": "x"})
	if r.Status != 429 || r.Error.RetryAfter < 1 {
		t.Fatalf("token exchange during the flood: %d %s", r.Status, r.code())
	}
	time.Sleep(time.Duration(r.Error.RetryAfter) * time.Second)
	d.login(t, "bob")
	c := decodeData[created](t, call(t, "POST", d.ECB+"/v1/threads", map[string]any{"participants": []string{"bob"}, "message": map[string]any{"body": "still here"}}, bearer(alice), "ECB-Stream: "+live.ID))
	if c.Thread.ID == "" {
		t.Fatal("no thread")
	}
	d.healthy(t)
}

// TestMessageFloodFromOneUser: beyond limits.opsBurstPerUser a user's
// operations are refused with rate_limited and a retry-after; exactly the
// accepted messages are stored; another user is not slowed down.
func TestMessageFloodFromOneUser(t *testing.T) {
	d := startDemo(t, "--set", "limits.opsPerSecondPerUser=2", "--set", "limits.opsBurstPerUser=8",
		"--set", "limits.opsPerSecondPerConnection=1", "--set", "limits.opsBurstPerConnection=4")
	alice, bob := d.login(t, "alice"), d.login(t, "bob")
	c := decodeData[created](t, call(t, "POST", d.ECB+"/v1/threads", map[string]any{"participants": []string{"bob"}, "message": map[string]any{"body": "first"}}, bearer(alice))) // 1 op
	ok, limited := 0, 0
	start := time.Now()
	for i := range 30 {
		r := call(t, "POST", d.ECB+"/v1/threads/"+c.Thread.ID+"/messages", map[string]any{"body": fmt.Sprint("flood ", i)}, bearer(alice), "ECB-Thread-Token: "+c.ThreadToken)
		switch {
		case r.Status == 201:
			ok++
		case r.Status == 429 && r.code() == "rate_limited" && r.Error.RetryAfter >= 1 && r.Header.Get("Retry-After") != "":
			limited++
		default:
			t.Fatalf("message %d: %d %s", i, r.Status, r.code())
		}
	}
	// 7 tokens left after createThread, and 2 more each second the flood lasted.
	if most := 7 + 2*int(time.Since(start).Seconds()+1); ok > most || ok+limited != 30 || limited == 0 {
		t.Fatalf("%d accepted (at most %d), %d limited", ok, most, limited)
	}
	// Bob is not limited by alice's flood.
	bobTok := d.threadTokenFor(t, bob, c.Thread.ID)
	if r := call(t, "POST", d.ECB+"/v1/threads/"+c.Thread.ID+"/messages", map[string]any{"body": "bob here"}, bearer(bob), "ECB-Thread-Token: "+bobTok); r.Status != 201 {
		t.Fatalf("bob: %d %s", r.Status, r.code())
	}
	// One Socket.IO connection flooding hits its own limit first.
	sock, refused := sioDial(t, d.ECB, map[string]string{"userToken": bob})
	if refused != nil {
		t.Fatal(refused)
	}
	var ids []int
	for range 10 {
		ids = append(ids, sock.emit("getContacts", map[string]any{}))
	}
	sockLimited := 0
	for _, id := range ids {
		if a := sock.ack(id); a.code() == "rate_limited" {
			sockLimited++
		}
	}
	if sockLimited < 5 {
		t.Fatalf("socket.io flood: %d of 10 limited", sockLimited)
	}
	// Let bob's bucket refill, then count what the backend stored.
	time.Sleep(3 * time.Second)
	if n := d.stored(t, bob, c.Thread.ID); n != 1+ok+1 {
		t.Fatalf("the backend holds %d messages, want %d", n, 2+ok)
	}
	d.healthy(t)
}

// TestConnectionCaps: limits.connectionsPerUser and limits.maxConnections
// refuse new connections cleanly, and the others stay served.
func TestConnectionCaps(t *testing.T) {
	d := startDemo(t, "--set", "limits.connectionsPerUser=2", "--set", "limits.maxConnections=3")
	alice, bob := d.login(t, "alice"), d.login(t, "bob")
	a1 := openStream(t, d.ECB, alice)
	openStream(t, d.ECB, alice)
	if r := call(t, "GET", d.ECB+"/v1/events", nil, bearer(alice)); r.Status != 429 || r.code() != "rate_limited" {
		t.Fatalf("alice's third stream: %d %s", r.Status, r.code())
	}
	if _, refused := sioDial(t, d.ECB, map[string]string{"userToken": alice}); refused == nil || refused.Code != "rate_limited" {
		t.Fatalf("alice's third connection over socket.io: %+v", refused)
	}
	openStream(t, d.ECB, bob) // the node's third
	if r := call(t, "GET", d.ECB+"/v1/events", nil, bearer(bob)); r.Status != 503 || r.code() != "unavailable" {
		t.Fatalf("beyond the node's limit: %d %s", r.Status, r.code())
	}
	if _, refused := sioDial(t, d.ECB, map[string]string{"userToken": bob}); refused == nil || refused.Code != "unavailable" || !refused.Early {
		t.Fatalf("socket.io beyond the node's limit: %+v", refused)
	}
	// Existing connections stay served.
	c := decodeData[created](t, call(t, "POST", d.ECB+"/v1/threads", map[string]any{"participants": []string{"bob"}, "message": map[string]any{"body": "hi"}}, bearer(alice), "ECB-Stream: "+a1.ID))
	if c.Thread.ID == "" {
		t.Fatal("no thread")
	}
	d.healthy(t)
}

// TestInvalidUTF8IsRefused: a message body that is not valid UTF-8 is
// refused, never stored with U+FFFD in place of the bad bytes: REST answers
// 400 invalid_argument; a Socket.IO polling POST carrying it gets 400 and
// its session is closed (a WebSocket text frame, close status 1007: see
// internal/socketio's TestInvalidUTF8Refused).
func TestInvalidUTF8IsRefused(t *testing.T) {
	d := startDemo(t)
	alice := d.login(t, "alice")
	r := call(t, "POST", d.ECB+"/v1/threads", "{\"participants\":[\"bob\"],\"message\":{\"body\":\"a\xffb\"}}", bearer(alice))
	if r.Status != 400 || r.code() != "invalid_argument" {
		t.Fatalf("REST: %d %s, want 400 invalid_argument", r.Status, r.code())
	}
	sock, refused := sioDial(t, d.ECB, map[string]string{"userToken": alice})
	if refused != nil {
		t.Fatal(refused)
	}
	status, body := sioHTTP(t, "POST", sock.url, "421[\"createThread\",{\"participants\":[\"bob\"],\"message\":{\"body\":\"a\xffb\"}}]", nil)
	if status != 400 || body != `{"code":3,"message":"Bad request"}` {
		t.Fatalf("polling POST: %d %s", status, body)
	}
	if status, _ := sioHTTP(t, "GET", sock.url, "", nil); status != 400 {
		t.Fatalf("the session survived: poll answered %d", status)
	}
	if n := decodeData[page[signedThread]](t, call(t, "GET", d.ECB+"/v1/threads", nil, bearer(alice))).Total; n != 0 {
		t.Fatalf("refused requests created %d threads", n)
	}
	d.healthy(t)
}

// TestReadOnlyMonitorCannotAct (issue 11, defect 2): a supervisor who
// joined a support chat (a member, with a threadToken that may write) opens
// another connection and monitors the chat there, read-only. Each row is a
// way to act in the thread anyway: without threadId, from the other
// connection, over REST without or with a stream of their own. Every one is
// forbidden and the backend stores nothing; support.join again lifts it.
func TestReadOnlyMonitorCannotAct(t *testing.T) {
	d := startDemo(t)
	agent, alice, super := d.login(t, "agent1"), d.login(t, "alice"), d.login(t, "super")
	agentSock, refused := sioDial(t, d.ECB, map[string]string{"userToken": agent})
	if refused != nil {
		t.Fatal(refused)
	}
	if a := agentSock.call("agent.setAvailability", map[string]any{"available": true}); a.Error != nil {
		t.Fatalf("setAvailability: %s", a.code())
	}
	asked := decodeData[struct{ RequestID string }](t, call(t, "POST", d.ECB+"/v1/ops/support.ask", map[string]any{"workgroup": "support", "question": "where is my order?"}, bearer(alice)))
	var offer struct{ OfferID string }
	_ = json.Unmarshal(agentSock.event("offer"), &offer)
	var accepted struct{ Thread struct{ ID string } }
	if a := agentSock.call("offer.accept", map[string]any{"offerId": offer.OfferID}); a.Error != nil || json.Unmarshal(a.Data, &accepted) != nil {
		t.Fatalf("offer.accept: %s", a.code())
	}
	id := accepted.Thread.ID

	member, refused := sioDial(t, d.ECB, map[string]string{"userToken": super})
	if refused != nil {
		t.Fatal(refused)
	}
	join := func() string {
		t.Helper()
		var joined struct{ ThreadToken string }
		if a := member.call("support.join", map[string]any{"requestId": asked.RequestID}); a.Error != nil || json.Unmarshal(a.Data, &joined) != nil {
			t.Fatalf("support.join: %s", a.code())
		}
		return joined.ThreadToken
	}
	tok := join()
	var sent struct{ Message struct{ ID string } }
	if a := member.call("sendMessage", map[string]any{"threadToken": tok, "body": "supervisor joined"}); a.Error != nil || json.Unmarshal(a.Data, &sent) != nil {
		t.Fatalf("a member's sendMessage: %s", a.code())
	}
	monitor, refused := sioDial(t, d.ECB, map[string]string{"userToken": super})
	if refused != nil {
		t.Fatal(refused)
	}
	if a := monitor.call("support.monitor", map[string]any{"requestId": asked.RequestID}); a.Error != nil {
		t.Fatalf("support.monitor: %s", a.code())
	}
	stream := openStream(t, d.ECB, super)
	before := d.stored(t, agent, id)

	sio := func(s *sioClient, op string, payload map[string]any) func() string {
		return func() string { return s.call(op, payload).code() }
	}
	rest := func(path string, body map[string]any, headers ...string) func() string {
		return func() string {
			return call(t, "POST", d.ECB+"/v1/threads/"+id+path, body, append([]string{bearer(super), "ECB-Thread-Token: " + tok}, headers...)...).code()
		}
	}
	body := map[string]any{"body": "I only watch"}
	cases := []struct {
		name string
		act  func() string
	}{
		{"socket.io sendMessage without threadId", sio(monitor, "sendMessage", map[string]any{"threadToken": tok, "body": "I only watch"})},
		{"socket.io whisper without threadId", sio(monitor, "sendMessage", map[string]any{"threadToken": tok, "body": "psst", "visibility": "agents"})},
		{"socket.io sendMessage from another connection", sio(member, "sendMessage", map[string]any{"threadToken": tok, "threadId": id, "body": "I only watch"})},
		{"socket.io typing", sio(monitor, "typing", map[string]any{"threadToken": tok, "threadId": id, "state": "start"})},
		{"socket.io markRead without threadId", sio(monitor, "markRead", map[string]any{"threadToken": tok, "messageId": sent.Message.ID})},
		{"REST sendMessage without ECB-Stream", rest("/messages", body)},
		{"REST sendMessage with a stream of their own", rest("/messages", body, "ECB-Stream: "+stream.ID)},
		{"REST typing without ECB-Stream", rest("/typing", map[string]any{"state": "start"})},
		{"REST leaveThread without ECB-Stream", rest("/leave", map[string]any{})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if code := tc.act(); code != "forbidden" {
				t.Fatalf("%q, want forbidden", code)
			}
		})
	}
	if n := d.stored(t, agent, id); n != before {
		t.Fatalf("the backend holds %d messages, want %d", n, before)
	}
	// support.join ends the monitor on every connection: the member writes again.
	tok = join()
	if a := monitor.call("sendMessage", map[string]any{"threadToken": tok, "body": "supervisor here"}); a.Error != nil {
		t.Fatalf("sendMessage after support.join: %s", a.code())
	}
	d.healthy(t)
}

// TestAccessOverrideTTLOutOfRange (issue 11, defect 3): ttlSeconds beyond
// the documented maximum (366 days), including values whose conversion to
// nanoseconds overflows, is refused; no override, permanent or not, is left.
func TestAccessOverrideTTLOutOfRange(t *testing.T) {
	d := startDemo(t)
	key, _ := os.ReadFile(filepath.Join(d.Data, "server-api-key"))
	apiKey := bearer(strings.TrimSpace(string(key)))
	url := d.ECB + "/server/v1/threads/t1/access/bob"
	for _, ttl := range []string{"9223372037", "18446744074", "9223372036854775807"} {
		t.Run("ttlSeconds "+ttl, func(t *testing.T) {
			call(t, "DELETE", url, nil, apiKey)
			if r := call(t, "PUT", url, `{"acc":0,"ttlSeconds":`+ttl+`}`, apiKey); r.Status != 400 || r.code() != "invalid_argument" {
				t.Fatalf("%d %s, want 400 invalid_argument", r.Status, r.code())
			}
			if r := call(t, "GET", url, nil, apiKey); r.code() != "not_found" {
				t.Fatalf("an override was stored: %d %s", r.Status, r.code())
			}
		})
	}
	// One second beyond the maximum is refused; the maximum itself is a timed override.
	if r := call(t, "PUT", url, `{"acc":0,"ttlSeconds":31622401}`, apiKey); r.Status != 400 || r.code() != "invalid_argument" {
		t.Fatalf("the maximum + 1: %d %s", r.Status, r.code())
	}
	r := call(t, "PUT", url, `{"acc":0,"ttlSeconds":31622400}`, apiKey)
	var o struct{ ExpiresAt time.Time }
	if r.Status != 200 || json.Unmarshal(r.Data, &o) != nil || o.ExpiresAt.Before(time.Now().Add(365*24*time.Hour)) {
		t.Fatalf("the maximum: %d %s %s", r.Status, r.code(), r.Data)
	}
	d.healthy(t)
}

// forgeRaw signs a claims set written by hand (a name twice, a name in
// another case) with the demo's own key, as a careless backend might.
func (d *demo) forgeRaw(tb testing.TB, payload string) string {
	tb.Helper()
	k, err := ecbserver.LoadPrivateKeyPEM(filepath.Join(d.Data, "private.pem"))
	if err != nil {
		tb.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	signing := b64([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + b64([]byte(payload))
	sig, err := jwt.SigningMethodRS256.Sign(signing, k)
	if err != nil {
		tb.Fatal(err)
	}
	return signing + "." + b64(sig)
}

// streamRefusal opens the event stream and returns its status and, for a
// refusal, the envelope's code; an accepted stream is closed at once (call
// would wait for its end).
func streamRefusal(tb testing.TB, base string, headers ...string) (int, string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/events", nil)
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("event stream: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 400 {
		return resp.StatusCode, ""
	}
	var env struct{ Error struct{ Code string } }
	_ = json.NewDecoder(resp.Body).Decode(&env)
	return resp.StatusCode, env.Error.Code
}

// TestLaxClaimsAreRefused (issue 11, defect 4): tokens signed with the
// backend's key whose claims set is not strict JSON for RFC 7519 — a
// NumericDate as a string, a claim name in another case, a name twice —
// are unauthenticated on every entry point, for userTokens, anonymous
// tokens and threadTokens. Each was accepted before (with the last of the
// case-insensitive matches winning: {"sub":"alice","SUB":"bob"} was bob).
func TestLaxClaimsAreRefused(t *testing.T) {
	d := startDemo(t, "--set", "http.allowedOrigins=https://shop.example,https://evil.example")
	alice := d.login(t, "alice")
	c := decodeData[created](t, call(t, "POST", d.ECB+"/v1/threads", map[string]any{"participants": []string{"bob"}, "message": map[string]any{"body": "only message"}}, bearer(alice)))
	id := c.Thread.ID
	now, exp := time.Now().Unix(), time.Now().Add(time.Hour).Unix()
	user := func(members string) string {
		return d.forgeRaw(t, fmt.Sprintf(`{"name":"x","aud":"ecb-demo","iat":%d,%s}`, now, members))
	}
	users := []struct{ name, token, origin string }{
		{"exp as a string", user(fmt.Sprintf(`"typ":"user","sub":"alice","exp":"%d"`, exp)), ""},
		{"iat as a string", user(fmt.Sprintf(`"typ":"user","sub":"alice","exp":%d,"iat":"%d"`, exp, now)), ""},
		{"nbf as a string", user(fmt.Sprintf(`"typ":"user","sub":"alice","exp":%d,"nbf":"%d"`, exp, now)), ""},
		{"sub then SUB", user(fmt.Sprintf(`"typ":"user","sub":"alice","SUB":"bob","exp":%d`, exp)), ""},
		{"Typ for typ", user(fmt.Sprintf(`"Typ":"user","sub":"alice","exp":%d`, exp)), ""},
		{"sub twice", user(fmt.Sprintf(`"typ":"user","sub":"alice","sub":"bob","exp":%d`, exp)), ""},
		{"anonymous: ORIGINS beside origins", user(fmt.Sprintf(`"typ":"user","sub":"anon-1","anon":true,"origins":["https://shop.example"],"ORIGINS":["https://evil.example"],"exp":%d`, exp)), "https://evil.example"},
		{"anonymous: exp as a string", user(fmt.Sprintf(`"typ":"user","sub":"anon-1","anon":true,"origins":["https://shop.example"],"exp":"%d"`, exp)), "https://shop.example"},
	}
	for _, tc := range users {
		t.Run("userToken "+tc.name, func(t *testing.T) {
			var h []string
			if tc.origin != "" {
				h = append(h, "Origin: "+tc.origin)
			}
			if status, code := streamRefusal(t, d.ECB, append(h, bearer(tc.token))...); status != 401 || code != "unauthenticated" {
				t.Fatalf("event stream: %d %s", status, code)
			}
			if _, refused := sioDial(t, d.ECB, map[string]string{"userToken": tc.token}, h...); refused == nil || refused.Code != "unauthenticated" {
				t.Fatalf("socket.io handshake: %+v", refused)
			}
			if r := call(t, "GET", d.ECB+"/v1/threads/"+id, nil, append(h, bearer(tc.token), "ECB-Thread-Token: "+c.ThreadToken)...); r.Status != 401 || r.code() != "unauthenticated" {
				t.Fatalf("getThread: %d %s", r.Status, r.code())
			}
		})
	}

	thread := func(members string) string {
		return d.forgeRaw(t, fmt.Sprintf(`{"typ":"thread","sub":%q,"aud":"ecb-demo",%s}`, id, members))
	}
	threads := map[string]string{
		"exp as a string": thread(fmt.Sprintf(`"uid":"alice","acc":3,"exp":"%d"`, exp)),
		"UID beside uid":  thread(fmt.Sprintf(`"uid":"carol","UID":"alice","acc":3,"exp":%d`, exp)),
		"ACC for acc":     thread(fmt.Sprintf(`"uid":"alice","ACC":3,"exp":%d`, exp)),
		"acc twice":       thread(fmt.Sprintf(`"uid":"alice","acc":1,"acc":3,"exp":%d`, exp)),
	}
	sock, refused := sioDial(t, d.ECB, map[string]string{"userToken": alice})
	if refused != nil {
		t.Fatalf("alice's socket: %+v", refused)
	}
	for name, tok := range threads {
		t.Run("threadToken "+name, func(t *testing.T) {
			if r := call(t, "POST", d.ECB+"/v1/threads/"+id+"/messages", map[string]any{"body": "lax"}, bearer(alice), "ECB-Thread-Token: "+tok); r.Status != 401 || r.code() != "unauthenticated" {
				t.Fatalf("sendMessage: %d %s", r.Status, r.code())
			}
			if a := sock.call("getThread", map[string]any{"threadToken": tok}); a.code() != "unauthenticated" {
				t.Fatalf("socket.io getThread: %s", a.code())
			}
		})
	}
	if n := d.stored(t, alice, id); n != 1 {
		t.Fatalf("the backend holds %d messages, want 1", n)
	}
	d.healthy(t)
}

// TestModerationAttacks: the bad input of issue 15's public threads and
// moderation, against `ecb demo` over REST, SSE and Socket.IO. A member
// without the bit is refused before the backend; a threadToken whose acc
// was raised by hand is unauthenticated; setAccess never grants above the
// caller's bits nor touches the owner; joinThread of a private thread is
// the backend's forbidden; a removed member gets nothing more, even with
// the threadToken they kept.
func TestModerationAttacks(t *testing.T) {
	d := startDemo(t)
	alice, bob, carol := d.login(t, "alice"), d.login(t, "bob"), d.login(t, "carol")
	c := decodeData[created](t, call(t, "POST", d.ECB+"/v1/threads", map[string]any{"participants": []string{"bob", "carol"}, "message": map[string]any{"body": "hi"}}, bearer(alice)))
	id := c.Thread.ID
	owner := c.ThreadToken
	bobTok, carolTok := d.threadTokenFor(t, bob, id), d.threadTokenFor(t, carol, id)
	raised := setClaim(t, bobTok, "acc", 15)
	private := decodeData[created](t, call(t, "POST", d.ECB+"/v1/threads", map[string]any{"participants": []string{"carol"}, "message": map[string]any{"body": "just us"}}, bearer(alice))).Thread.ID

	bobSock, refused := sioDial(t, d.ECB, map[string]string{"userToken": bob})
	if refused != nil {
		t.Fatal(refused)
	}
	for _, row := range []struct {
		name, event string
		payload     map[string]any
		want        string
	}{
		{"member removes", "removeParticipant", map[string]any{"threadToken": bobTok, "userId": "carol"}, "forbidden"},
		{"member renames", "updateThread", map[string]any{"threadToken": bobTok, "subject": "mine"}, "forbidden"},
		{"member deletes the thread", "deleteThread", map[string]any{"threadToken": bobTok}, "forbidden"},
		{"member bans", "setAccess", map[string]any{"threadToken": bobTok, "userId": "carol", "acc": 0}, "forbidden"},
		{"acc raised by hand: remove", "removeParticipant", map[string]any{"threadToken": raised, "userId": "carol"}, "unauthenticated"},
		{"acc raised by hand: delete thread", "deleteThread", map[string]any{"threadToken": raised}, "unauthenticated"},
		{"acc raised by hand: setAccess", "setAccess", map[string]any{"threadToken": raised, "userId": "carol", "acc": 15}, "unauthenticated"},
		{"another user's message", "deleteMessage", map[string]any{"threadToken": bobTok, "messageId": c.Message.ID}, "forbidden"},
		{"join a private thread", "joinThread", map[string]any{"threadId": private}, "forbidden"},
		{"setAccess without acc", "setAccess", map[string]any{"threadToken": owner, "userId": "bob"}, "invalid_argument"},
		{"setAccess acc 16", "setAccess", map[string]any{"threadToken": owner, "userId": "bob", "acc": 16}, "invalid_argument"},
		{"setAccess ttl overflow", "setAccess", map[string]any{"threadToken": owner, "userId": "bob", "acc": 0, "ttlSeconds": 99999999999}, "invalid_argument"},
	} {
		t.Run(row.name, func(t *testing.T) {
			if a := bobSock.call(row.event, row.payload); a.code() != row.want {
				t.Fatalf("socket.io %s: %s, want %s", row.event, a.code(), row.want)
			}
		})
	}
	// The same refusals over REST.
	if r := call(t, "DELETE", d.ECB+"/v1/threads/"+id+"/participants/carol", nil, bearer(bob), "ECB-Thread-Token: "+bobTok); r.Status != 403 || r.code() != "forbidden" {
		t.Fatalf("REST removeParticipant by a member: %d %s", r.Status, r.code())
	}
	if r := call(t, "DELETE", d.ECB+"/v1/threads/"+id, nil, bearer(bob), "ECB-Thread-Token: "+bobTok); r.Status != 403 || r.code() != "forbidden" {
		t.Fatalf("REST deleteThread by a member: %d %s", r.Status, r.code())
	}

	// bob made a moderator (admin) by the owner: he cannot grant owner,
	// nor touch the owner, nor remove her.
	if r := call(t, "PUT", d.ECB+"/v1/threads/"+id+"/access/bob", map[string]any{"acc": 7}, bearer(alice), "ECB-Thread-Token: "+owner); r.Status != 200 {
		t.Fatalf("owner makes bob admin: %d %s", r.Status, r.code())
	}
	for _, row := range []struct {
		name    string
		payload map[string]any
	}{
		{"above his own bits", map[string]any{"threadToken": bobTok, "userId": "carol", "acc": 15}},
		{"the owner", map[string]any{"threadToken": bobTok, "userId": "alice", "acc": 0}},
	} {
		if a := bobSock.call("setAccess", row.payload); a.code() != "forbidden" {
			t.Fatalf("moderator setAccess %s: %s", row.name, a.code())
		}
	}
	if a := bobSock.call("removeParticipant", map[string]any{"threadToken": bobTok, "userId": "alice"}); a.code() != "forbidden" {
		t.Fatalf("moderator removes the owner: %s", a.code())
	}

	// carol removed by the owner: told at once, then nothing more on SSE
	// and Socket.IO, and the token she kept opens nothing.
	carolStream, _ := d.listening(t, carol, id)
	carolSock, refused := sioDial(t, d.ECB, map[string]string{"userToken": carol})
	if refused != nil {
		t.Fatal(refused)
	}
	if a := carolSock.call("getThread", map[string]any{"threadToken": carolTok}); a.code() != "" {
		t.Fatalf("carol listens: %s", a.code())
	}
	if r := call(t, "DELETE", d.ECB+"/v1/threads/"+id+"/participants/carol", nil, bearer(alice), "ECB-Thread-Token: "+owner); r.Status != 200 {
		t.Fatalf("owner removes carol: %d %s", r.Status, r.code())
	}
	if tc := decodeEvent[threadChange](t, carolStream.await(t, "thread")); tc.Change != "removed" {
		t.Fatalf("carol's stream was told %+v", tc)
	}
	carolSock.event("thread")
	d.send(t, alice, id, "not for carol")
	carolStream.expectNoneOf(t, 300*time.Millisecond, "message")
	if a := carolSock.call("resume", map[string]any{"threads": []map[string]any{{"threadToken": carolTok, "epoch": c.Epoch, "offset": 1}}}); a.code() != "forbidden" {
		t.Fatalf("removed carol resumes: %s", a.code())
	}
	if a := carolSock.call("sendMessage", map[string]any{"threadToken": carolTok, "body": "still here"}); a.code() != "forbidden" {
		t.Fatalf("removed carol writes: %s", a.code())
	}
	if n := d.stored(t, alice, id); n != 2 {
		t.Fatalf("the backend holds %d messages, want 2", n)
	}
	d.healthy(t)
}

// TestAttachAnotherThreadsFile: a file uploaded for one thread cannot be
// attached in another (not by its uploader, not by someone who learnt its
// id), nor by another user in the same thread; each is invalid_argument and
// stores nothing.
func TestAttachAnotherThreadsFile(t *testing.T) {
	d := startDemo(t)
	alice, bob := d.login(t, "alice"), d.login(t, "bob")
	withBob := decodeData[created](t, call(t, "POST", d.ECB+"/v1/threads", map[string]any{"participants": []string{"bob"}, "message": map[string]any{"body": "hi"}}, bearer(alice)))
	withCarol := decodeData[created](t, call(t, "POST", d.ECB+"/v1/threads", map[string]any{"participants": []string{"carol"}, "message": map[string]any{"body": "just us"}}, bearer(alice)))
	file := []byte("secret plan")
	type uploadURL struct {
		AttachmentID, UploadURL, Method string
		Headers                         map[string]string
	}
	u := decodeData[uploadURL](t, call(t, "POST", d.ECB+"/v1/threads/"+withCarol.Thread.ID+"/uploads",
		map[string]any{"name": "plan.txt", "size": len(file), "contentType": "text/plain"}, bearer(alice), "ECB-Thread-Token: "+withCarol.ThreadToken))
	req, err := http.NewRequestWithContext(t.Context(), u.Method, u.UploadURL, bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range u.Headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("upload: %d", resp.StatusCode)
	}
	bobTok := d.threadTokenFor(t, bob, withBob.Thread.ID)
	for _, row := range []struct{ name, user, token string }{
		{"uploader, other thread", alice, withBob.ThreadToken},
		{"another user who learnt the id", bob, bobTok},
	} {
		r := call(t, "POST", d.ECB+"/v1/threads/"+withBob.Thread.ID+"/messages", map[string]any{"body": "look", "attachments": []string{u.AttachmentID}},
			bearer(row.user), "ECB-Thread-Token: "+row.token)
		if r.Status != 400 || r.code() != "invalid_argument" {
			t.Fatalf("%s: %d %s", row.name, r.Status, r.code())
		}
	}
	if n := d.stored(t, alice, withBob.Thread.ID); n != 1 {
		t.Fatalf("the backend holds %d messages, want 1", n)
	}
	// The forged upload URL of another attachment id is refused by the backend.
	forged, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, strings.Replace(u.UploadURL, u.AttachmentID, "att_"+strings.Repeat("0", 32), 1), nil)
	if resp, err := http.DefaultClient.Do(forged); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("forged URL: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}

// TestEditAnothersMessageAndReactAsAnotherUser: issue 16's attack rows.
// Bob edits alice's message (REST and Socket.IO): forbidden, the backend
// keeps her words. Bob reacts with alice's threadToken: forbidden; with his
// own and "userId": "alice" in the payload: the reaction is his, not hers.
func TestEditAnothersMessageAndReactAsAnotherUser(t *testing.T) {
	d := startDemo(t)
	alice, bob := d.login(t, "alice"), d.login(t, "bob")
	c := decodeData[created](t, call(t, "POST", d.ECB+"/v1/threads", map[string]any{"participants": []string{"bob"}, "message": map[string]any{"body": "alice's words"}}, bearer(alice)))
	bobTok := d.threadTokenFor(t, bob, c.Thread.ID)
	msgPath := d.ECB + "/v1/threads/" + c.Thread.ID + "/messages/" + c.Message.ID
	if r := call(t, "PATCH", msgPath, map[string]any{"body": "bob's words"}, bearer(bob), "ECB-Thread-Token: "+bobTok); r.Status != 403 || r.code() != "forbidden" {
		t.Fatalf("REST edit of another's message: %d %s", r.Status, r.code())
	}
	sock, refused := sioDial(t, d.ECB, map[string]string{"userToken": bob})
	if refused != nil {
		t.Fatal(refused)
	}
	if a := sock.call("editMessage", map[string]any{"threadToken": bobTok, "messageId": c.Message.ID, "body": "bob's words"}); a.code() != "forbidden" {
		t.Fatalf("socket.io edit of another's message: %s", a.code())
	}
	// alice's threadToken presented by bob: not his.
	if a := sock.call("react", map[string]any{"threadToken": c.ThreadToken, "messageId": c.Message.ID, "reaction": "👎"}); a.code() != "forbidden" {
		t.Fatalf("socket.io react with alice's threadToken: %s", a.code())
	}
	if r := call(t, "PUT", msgPath+"/reactions/%F0%9F%91%8E", nil, bearer(bob), "ECB-Thread-Token: "+c.ThreadToken); r.Status != 403 {
		t.Fatalf("REST react with alice's threadToken: %d %s", r.Status, r.code())
	}
	// A userId in the payload names nobody: the caller is the userToken's user.
	if a := sock.call("react", map[string]any{"threadToken": bobTok, "messageId": c.Message.ID, "reaction": "👍", "userId": "alice"}); a.code() != "" {
		t.Fatalf("bob's own reaction: %s", a.code())
	}
	page := decodeData[struct {
		Messages []struct {
			Body      string `json:"body"`
			Reactions []struct {
				Reaction string `json:"reaction"`
				Count    int    `json:"count"`
				Me       bool   `json:"me"`
			} `json:"reactions"`
		} `json:"messages"`
	}](t, call(t, "GET", d.ECB+"/v1/threads/"+c.Thread.ID, nil, bearer(alice), "ECB-Thread-Token: "+c.ThreadToken))
	m := page.Messages[0]
	if m.Body != "alice's words" || len(m.Reactions) != 1 || m.Reactions[0].Reaction != "👍" || m.Reactions[0].Count != 1 || m.Reactions[0].Me {
		t.Fatalf("alice's message after the attacks: %+v", m)
	}
	d.healthy(t)
}

// TestMentionOutsideTheThread: mentions cannot reach beyond a thread's
// members. Alice, in a thread with bob only, mentions carol (a non-member)
// to page her: the message is stored, carol is dropped from its mentions
// and her stream gets nothing; bob, mentioned too, does get it. 21 mentions
// are refused before the backend is asked.
func TestMentionOutsideTheThread(t *testing.T) {
	d := startDemo(t)
	alice, bob, carol := d.login(t, "alice"), d.login(t, "bob"), d.login(t, "carol")
	threadID := newThread(t, d, alice, "bob")
	aliceTT := d.threadTokenFor(t, alice, threadID)
	carolS, bobS := openStream(t, d.ECB, carol), openStream(t, d.ECB, bob)
	post := func(mentions []string) *response {
		return call(t, "POST", d.ECB+"/v1/threads/"+threadID+"/messages", map[string]any{"body": "hey", "mentions": mentions}, bearer(alice), "ECB-Thread-Token: "+aliceTT)
	}
	many := make([]string, 21)
	for i := range many {
		many[i] = fmt.Sprintf("u%d", i)
	}
	if r := post(many); r.Status != 400 || r.code() != "invalid_argument" {
		t.Fatalf("21 mentions: %d %s", r.Status, r.code())
	}
	if n := d.stored(t, alice, threadID); n != 1 {
		t.Fatalf("a refused message was stored: %d messages", n)
	}
	r := post([]string{"carol", "bob"})
	if r.Status != 201 {
		t.Fatalf("sendMessage: %d %s", r.Status, r.code())
	}
	if got := decodeData[struct {
		Message message `json:"message"`
	}](t, r).Message.Mentions; !slices.Equal(got, []string{"bob"}) {
		t.Fatalf("kept mentions %v, want [bob]", got)
	}
	bobS.await(t, "mention")
	carolS.expectNoneOf(t, 500*time.Millisecond, "mention", "message")
	d.healthy(t)
}
