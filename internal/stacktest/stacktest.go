// Package stacktest is test support for the transports (packages sse and
// sioapi): it builds the operations of one ECB node on the reference
// backend, all in process. The reference backend (internal/refbackend, on a
// real SQLite file) is reached through its real HTTP handler and ECB's real
// backend client, signed and verified as in production; only the TCP hop
// between them is replaced by memhttp, which calls the handler directly.
//
// With no socket and no goroutine of its own, a Stack works inside a
// testing/synctest bubble, where the transports' timers (heartbeats, token
// expiry, ping timeouts, resume windows) run on the bubble's fake clock. Build
// it inside the bubble: its clock signs and verifies the tokens.
package stacktest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/ecbridge/ecb/internal/auth"
	"github.com/ecbridge/ecb/internal/backend"
	"github.com/ecbridge/ecb/internal/hub"
	"github.com/ecbridge/ecb/internal/memhttp"
	"github.com/ecbridge/ecb/internal/ops"
	"github.com/ecbridge/ecb/internal/refbackend"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// Audience is the aud of the Stack's tokens.
const Audience = "ecb-stacktest"

// Origin is the browser origin the reference backend allows.
const Origin = "http://app.example"

var secret = []byte("stacktest-shared-secret-0123456789")

// Options vary a Stack.
type Options struct {
	// UserTTL is the lifetime of the userTokens the backend signs (default 1h).
	UserTTL time.Duration
	// Ops configures the operations.
	Ops ops.Config
	// UploadTTL is the lifetime of the backend's upload URLs (default
	// refbackend.DefaultUploadTTL).
	UploadTTL time.Duration
}

// Stack is ECB's operations on the reference backend.
type Stack struct {
	Ops     *ops.Service
	Hub     *hub.Hub
	Backend *refbackend.Server
	Signer  *ecbserver.TokenSigner // the backend's signer
	Log     *slog.Logger

	tb  testing.TB
	web http.Handler // the reference backend's handler
}

// BackendURL is the reference backend's base URL in a Stack: requests to it
// reach Stack.BackendHandler in memory.
const BackendURL = "http://backend.test"

// BackendHandler is the reference backend's HTTP handler (file URLs, login).
func (s *Stack) BackendHandler() http.Handler { return s.web }

// New builds a Stack; everything it holds is closed when the test ends.
func New(tb testing.TB, opt Options) *Stack {
	tb.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	signer, err := ecbserver.NewTokenSigner(key, ecbserver.SignerOptions{Audience: Audience, UserTTL: opt.UserTTL})
	if err != nil {
		tb.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	ref, err := refbackend.Open(tb.Context(), refbackend.Config{
		Path:               filepath.Join(tb.TempDir(), "backend.db"),
		Secret:             secret,
		Signer:             signer,
		AllowedOrigins:     []string{Origin},
		Logger:             log,
		PasswordIterations: 1000,
		PublicURL:          BackendURL,
		UploadTTL:          opt.UploadTTL,
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := ref.Close(); err != nil {
			tb.Errorf("refbackend: %v", err)
		}
	})
	client, err := backend.New(backend.Config{URL: BackendURL + refbackend.ContractPrefix, Secret: string(secret)},
		memhttp.Client(ref.Handler()), nil)
	if err != nil {
		tb.Fatal(err)
	}
	verifier, err := auth.NewVerifierFromKeys(auth.Config{Algorithms: []string{auth.AlgEdDSA}, Audience: Audience}, signer.PublicKey())
	if err != nil {
		tb.Fatal(err)
	}
	h := hub.New(hub.Config{})
	return &Stack{
		Ops:     ops.New(opt.Ops, client, verifier, h, log, nil),
		Hub:     h,
		Backend: ref,
		Signer:  signer,
		Log:     log,
		tb:      tb,
		web:     ref.Handler(),
	}
}

// AccessToken logs user in at the reference backend (POST /login; the seeded
// users' password is their name) and returns the access token.
func (s *Stack) AccessToken(user string) string {
	s.tb.Helper()
	body, _ := json.Marshal(refbackend.LoginRequest{Username: user, Password: user})
	req := httptest.NewRequestWithContext(s.tb.Context(), http.MethodPost, "/login", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	s.web.ServeHTTP(rec, req)
	var res refbackend.LoginResponse
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &res) != nil || res.AccessToken == "" {
		s.tb.Fatalf("login %s: %d %s", user, rec.Code, rec.Body)
	}
	return res.AccessToken
}

// UserToken returns a userToken of user, obtained the way a client does:
// login, then getUserToken through ECB.
func (s *Stack) UserToken(user string) string {
	s.tb.Helper()
	res, err := s.Ops.GetUserToken(context.Background(), ops.GetUserTokenRequest{AccessToken: s.AccessToken(user)})
	if err != nil {
		s.tb.Fatalf("getUserToken %s: %v", user, err)
	}
	return res.UserToken
}
