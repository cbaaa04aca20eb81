package e2e

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// forge signs claims with the demo's own private key unless key is given.
func (d *demo) forge(tb testing.TB, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	tb.Helper()
	if key == nil {
		k, err := ecbserver.LoadPrivateKeyPEM(filepath.Join(d.Data, "private.pem"))
		if err != nil {
			tb.Fatal(err)
		}
		key = k
	}
	tok, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

func userClaims(sub string, mods ...func(jwt.MapClaims)) jwt.MapClaims {
	c := jwt.MapClaims{"sub": sub, "name": sub, "typ": "user", "aud": "ecb-demo",
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
	for _, m := range mods {
		m(c)
	}
	return c
}

// TestBadTokensAreRefused walks the token attacks of issue 2: each gets
// unauthenticated (401) and the documented envelope.
func TestBadTokensAreRefused(t *testing.T) {
	d := startDemo(t)
	good := d.forge(t, jwt.SigningMethodRS256, nil, userClaims("alice"))
	if r := call(t, "GET", d.ECB+"/v1/contacts", nil, bearer(good)); r.Status != 200 {
		t.Fatalf("a well-formed forged-by-the-backend token must pass (status %d %s); the cases below would prove nothing", r.Status, r.code())
	}
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, err := os.ReadFile(filepath.Join(d.Data, "public.pem"))
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	noneToken := b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + b64([]byte(`{"sub":"alice","name":"a","typ":"user","aud":"ecb-demo","exp":9999999999}`)) + "."

	cases := []struct {
		name, header string
	}{
		{"missing", ""},
		{"not a JWT", bearer("not-a-token")},
		{"alg none", bearer(noneToken)},
		{"HS256 signed with the public key", bearer(d.forge(t, jwt.SigningMethodHS256, pubPEM, userClaims("alice")))},
		{"signed by another key", bearer(d.forge(t, jwt.SigningMethodRS256, otherKey, userClaims("alice")))},
		{"expired", bearer(d.forge(t, jwt.SigningMethodRS256, nil, userClaims("alice", func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() })))},
		{"wrong audience", bearer(d.forge(t, jwt.SigningMethodRS256, nil, userClaims("alice", func(c jwt.MapClaims) { c["aud"] = "another-service" })))},
		{"a threadToken as userToken", bearer(d.forge(t, jwt.SigningMethodRS256, nil, jwt.MapClaims{"sub": "t1", "uid": "alice", "acc": 3, "typ": "thread", "aud": "ecb-demo", "exp": time.Now().Add(time.Hour).Unix()}))},
		{"tampered payload", bearer(tamper(good))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var headers []string
			if tc.header != "" {
				headers = append(headers, tc.header)
			}
			r := call(t, "GET", d.ECB+"/v1/contacts", nil, headers...)
			if r.Status != 401 || r.code() != "unauthenticated" {
				t.Fatalf("status %d code %q, want 401 unauthenticated", r.Status, r.code())
			}
			if strings.Contains(r.Error.Message, "eyJ") {
				t.Fatalf("error message echoes a token: %q", r.Error.Message)
			}
		})
	}
	// The log never prints a token.
	if strings.Contains(d.stderr.String(), good[:40]) {
		t.Error("the log contains a token")
	}
}

// tamper changes the payload of a JWT without re-signing it.
func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	payload = []byte(strings.Replace(string(payload), `"alice"`, `"carol"`, 1))
	parts[1] = base64.RawURLEncoding.EncodeToString(payload)
	return strings.Join(parts, ".")
}

// TestThreadTokenOfAnotherUserIsForbidden: carol presents alice's threadToken;
// with enforceMembership (on in the demo) ECB refuses before the backend, and
// nothing is stored.
func TestThreadTokenOfAnotherUserIsForbidden(t *testing.T) {
	d := startDemo(t)
	alice := d.login(t, "alice")
	carol := d.login(t, "carol")
	c := decodeData[created](t, call(t, "POST", d.ECB+"/v1/threads", map[string]any{
		"participants": []string{"bob"}, "message": map[string]any{"body": "private"},
	}, bearer(alice)))

	r := call(t, "GET", d.ECB+"/v1/threads/"+c.Thread.ID, nil, bearer(carol), "ECB-Thread-Token: "+c.ThreadToken)
	if r.Status != 403 || r.code() != "forbidden" {
		t.Fatalf("carol reading with alice's token: %d %s", r.Status, r.code())
	}
	r = call(t, "POST", d.ECB+"/v1/threads/"+c.Thread.ID+"/messages", map[string]any{"body": "intrusion"}, bearer(carol), "ECB-Thread-Token: "+c.ThreadToken)
	if r.Status != 403 || r.code() != "forbidden" {
		t.Fatalf("carol writing with alice's token: %d %s", r.Status, r.code())
	}
	// A read-only threadToken cannot write.
	ro := d.forge(t, jwt.SigningMethodRS256, nil, jwt.MapClaims{"sub": c.Thread.ID, "uid": "alice", "acc": 1, "typ": "thread", "aud": "ecb-demo", "exp": time.Now().Add(time.Hour).Unix()})
	r = call(t, "POST", d.ECB+"/v1/threads/"+c.Thread.ID+"/messages", map[string]any{"body": "read only"}, bearer(alice), "ECB-Thread-Token: "+ro)
	if r.Status != 403 || r.code() != "forbidden" {
		t.Fatalf("write with a read-only token: %d %s", r.Status, r.code())
	}
	// A token for another thread than the path names.
	r = call(t, "GET", d.ECB+"/v1/threads/other-thread", nil, bearer(alice), "ECB-Thread-Token: "+c.ThreadToken)
	if r.Status != 400 || r.code() != "invalid_argument" {
		t.Fatalf("token for another thread: %d %s", r.Status, r.code())
	}

	page := decodeData[threadPage](t, call(t, "GET", d.ECB+"/v1/threads/"+c.Thread.ID, nil, bearer(alice), "ECB-Thread-Token: "+c.ThreadToken))
	if len(page.Messages) != 1 {
		t.Fatalf("the thread has %d messages after refused writes, want 1", len(page.Messages))
	}
}

// TestBadBodies: not JSON, too large, missing fields, wrong types.
func TestBadBodies(t *testing.T) {
	d := startDemo(t, "--set", "http.maxBodyBytes=2048", "--set", "operations.maxMessageBytes=100")
	alice := d.login(t, "alice")
	big := strings.Repeat("x", 4096)
	cases := []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"not JSON", "{nope", 400, "invalid_argument"},
		{"not an object", `[1,2]`, 400, "invalid_argument"},
		{"empty", "", 400, "invalid_argument"},
		{"too large", `{"participants":["bob"],"message":{"body":"` + big + `"}}`, 413, "payload_too_large"},
		{"message over the body limit", map[string]any{"participants": []string{"bob"}, "message": map[string]any{"body": strings.Repeat("y", 101)}}, 413, "payload_too_large"},
		{"missing body", map[string]any{"participants": []string{"bob"}, "message": map[string]any{}}, 400, "invalid_argument"},
		{"blank body", map[string]any{"participants": []string{"bob"}, "message": map[string]any{"body": "   "}}, 400, "invalid_argument"},
		{"no participants", map[string]any{"message": map[string]any{"body": "hi"}}, 400, "invalid_argument"},
		{"only self", map[string]any{"participants": []string{"alice"}, "message": map[string]any{"body": "hi"}}, 400, "invalid_argument"},
		{"wrong type", map[string]any{"participants": "bob", "message": map[string]any{"body": "hi"}}, 400, "invalid_argument"},
		{"data not an object", map[string]any{"participants": []string{"bob"}, "message": map[string]any{"body": "hi", "data": 5}}, 400, "invalid_argument"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, "POST", d.ECB+"/v1/threads", tc.body, bearer(alice))
			if r.Status != tc.status || r.code() != tc.code {
				t.Fatalf("status %d code %q (%v), want %d %s", r.Status, r.code(), r.Error, tc.status, tc.code)
			}
		})
	}
	if n := decodeData[page[signedThread]](t, call(t, "GET", d.ECB+"/v1/threads", nil, bearer(alice))).Total; n != 0 {
		t.Fatalf("refused requests created %d threads", n)
	}
	if r := call(t, "GET", d.ECB+"/v1/contacts?page=x", nil, bearer(alice)); r.code() != "invalid_argument" {
		t.Fatalf("page=x: %s", r.code())
	}
	if r := call(t, "GET", d.ECB+"/v1/nothing", nil, bearer(alice)); r.Status != 404 || r.code() != "not_found" {
		t.Fatalf("unknown route: %d %s", r.Status, r.code())
	}
	if r := call(t, "POST", d.ECB+"/v1/token", map[string]string{"accessToken": "forged"}); r.Status != 401 || r.code() != "unauthenticated" {
		t.Fatalf("bad access token: %d %s", r.Status, r.code())
	}
}

// TestForeignOriginIsRefused: a page of another site cannot call ECB.
func TestForeignOriginIsRefused(t *testing.T) {
	d := startDemo(t)
	alice := d.login(t, "alice")
	r := call(t, "GET", d.ECB+"/v1/contacts", nil, bearer(alice), "Origin: https://evil.example")
	if r.Status != 403 || r.code() != "forbidden" {
		t.Fatalf("foreign origin: %d %s", r.Status, r.code())
	}
	r = call(t, "GET", d.ECB+"/v1/contacts", nil, bearer(alice), "Origin: "+d.ECB)
	if r.Status != 200 || r.Header.Get("Access-Control-Allow-Origin") != d.ECB {
		t.Fatalf("own origin: %d, ACAO %q", r.Status, r.Header.Get("Access-Control-Allow-Origin"))
	}
}
