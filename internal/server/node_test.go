package server_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ecbridge/ecb/internal/config"
	"github.com/ecbridge/ecb/internal/refbackend"
	"github.com/ecbridge/ecb/internal/server"
	"github.com/ecbridge/ecb/internal/support"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

const nodeSecret = "node-test-shared-secret-0123456789"

// testNode is a real ECB node (server.New and Run, on a TCP port) on the
// reference backend (its real HTTP handler on an httptest server, on a
// SQLite file), with the workgroup "support".
type testNode struct {
	URL        string // ECB
	BackendURL string // the reference backend, without /ecb/v1
	stop       func() // stops the node and waits for Run; idempotent
}

// startNode starts a node configured with sets (key=value, after the
// node's own; $BACKEND in a value is the reference backend's URL); it is
// stopped when the test ends.
func startNode(tb testing.TB, sets ...string) *testNode {
	tb.Helper()
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	pubFile := filepath.Join(dir, "public.pem")
	if err := os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		tb.Fatal(err)
	}
	signer, err := ecbserver.NewTokenSigner(key, ecbserver.SignerOptions{Audience: "ecb-node-test"})
	if err != nil {
		tb.Fatal(err)
	}
	ref, err := refbackend.Open(context.Background(), refbackend.Config{
		Path: filepath.Join(dir, "backend.db"), Secret: []byte(nodeSecret), Signer: signer,
		Logger: slog.New(slog.DiscardHandler), PasswordIterations: 1000,
	})
	if err != nil {
		tb.Fatal(err)
	}
	backendSrv := httptest.NewServer(ref.Handler())
	tb.Cleanup(func() {
		backendSrv.Close()
		if err := ref.Close(); err != nil {
			tb.Errorf("refbackend: %v", err)
		}
	})
	for i, kv := range sets {
		sets[i] = strings.ReplaceAll(kv, "$BACKEND", backendSrv.URL)
	}
	cfg, err := config.Load("", nil, append([]string{
		"listen=127.0.0.1:0",
		"auth.publicKeyFile=" + pubFile,
		"auth.algorithms=EdDSA",
		"auth.audience=ecb-node-test",
		"backend.url=" + backendSrv.URL + refbackend.ContractPrefix,
		"backend.secret=" + nodeSecret,
	}, sets...))
	if err != nil {
		tb.Fatal(err)
	}
	cfg.Support.Workgroups = []support.WorkgroupConfig{{Name: "support"}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, server.Options{Listener: ln, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	stopped := false
	n := &testNode{URL: "http://" + ln.Addr().String(), BackendURL: backendSrv.URL}
	n.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			tb.Errorf("the node did not stop within 20s")
		}
	}
	tb.Cleanup(n.stop)
	return n
}

// post sends a JSON body (with a bearer token when tok is set) and decodes
// the answer into out; it fails the test unless the status is 200.
func post(tb testing.TB, url, tok string, in, out any) {
	tb.Helper()
	do(tb, http.MethodPost, url, tok, in, out)
}

func do(tb testing.TB, method, url, tok string, in, out any) {
	tb.Helper()
	status, raw := send(tb, method, url, tok, in)
	if status != http.StatusOK {
		tb.Fatalf("%s %s: %d %s", method, url, status, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			tb.Fatalf("%s %s: %v in %s", method, url, err, raw)
		}
	}
}

// tryPost is post that returns the status and body, whatever they are.
func tryPost(tb testing.TB, url, tok string, in any) (int, []byte) {
	tb.Helper()
	return send(tb, http.MethodPost, url, tok, in)
}

func send(tb testing.TB, method, url, tok string, in any) (int, []byte) {
	tb.Helper()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			tb.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: reading the answer: %v", method, url, err)
	}
	return resp.StatusCode, raw
}

// userToken logs user in at the reference backend (the seeded users'
// password is their name) and exchanges the access token at ECB.
func (n *testNode) userToken(tb testing.TB, user string) string {
	tb.Helper()
	var login refbackend.LoginResponse
	post(tb, n.BackendURL+"/login", "", refbackend.LoginRequest{Username: user, Password: user}, &login)
	var tok struct {
		Data struct {
			UserToken string `json:"userToken"`
		} `json:"data"`
	}
	post(tb, n.URL+"/v1/token", "", map[string]string{"accessToken": login.AccessToken}, &tok)
	if tok.Data.UserToken == "" {
		tb.Fatalf("no userToken for %s", user)
	}
	return tok.Data.UserToken
}
