package refbackend

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

const (
	testAudience = "ecb-test"
	testOrigin   = "http://127.0.0.1:8080"
	// testIterations keeps seeding fast; production uses the default.
	testIterations = 1000
)

// env is one reference backend on a real SQLite file behind a real HTTP
// server, called the way ECB calls it.
type env struct {
	tb     testing.TB
	cfg    Config
	srv    *Server
	http   *httptest.Server
	secret []byte
	reqID  atomic.Int64
}

func newEnv(tb testing.TB) *env {
	tb.Helper()
	return newEnvAt(tb, filepath.Join(tb.TempDir(), "refbackend.db"))
}

// newEnvAt is newEnv on the database file at path, which may exist.
func newEnvAt(tb testing.TB, path string) *env {
	tb.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	signer, err := ecbserver.NewTokenSigner(key, ecbserver.SignerOptions{Audience: testAudience})
	if err != nil {
		tb.Fatal(err)
	}
	e := &env{tb: tb, secret: []byte("shared-secret-for-tests")}
	e.cfg = Config{
		Path:               path,
		Secret:             e.secret,
		Signer:             signer,
		AllowedOrigins:     []string{testOrigin},
		Logger:             slog.New(slog.NewTextHandler(io.Discard, nil)),
		PasswordIterations: testIterations,
	}
	e.start()
	return e
}

// start opens the Server on e.cfg and serves it; restart closes and reopens
// the same file.
func (e *env) start() {
	e.tb.Helper()
	srv, err := Open(e.tb.Context(), e.cfg)
	if err != nil {
		e.tb.Fatalf("Open: %v", err)
	}
	e.srv = srv
	e.http = httptest.NewServer(srv.Handler())
	e.tb.Cleanup(e.stop)
}

func (e *env) stop() {
	if e.http == nil {
		return
	}
	e.http.Close()
	e.http = nil
	if err := e.srv.Close(); err != nil {
		e.tb.Errorf("Close: %v", err)
	}
}

func (e *env) restart() {
	e.tb.Helper()
	e.stop()
	e.start()
}

// response is one answer of the backend.
type response struct {
	status int
	header http.Header
	body   []byte
}

// errorCode returns the code of an error body, failing the test when the body
// is not one.
func (r response) errorCode(tb testing.TB) string {
	tb.Helper()
	var er ecbserver.ErrorResponse
	if err := json.Unmarshal(r.body, &er); err != nil || er.Error.Code == "" || er.Error.Message == "" {
		tb.Fatalf("status %d: not an error body: %s", r.status, r.body)
	}
	return er.Error.Code
}

// callOpts varies what call sends.
type callOpts struct {
	idempotencyKey string
	secret         []byte    // nil: the right secret
	signedAt       time.Time // zero: now
	rawBody        []byte    // sent instead of the encoded request
	invalidRequest bool      // the request deliberately breaks the contract: validate only the response
	base           string    // the server to call instead of e.http.URL (it serves ContractPrefix too)
}

// call sends a contract call exactly as ECB does (signed, with the ECB
// headers) and validates request and response against api/backend.yaml.
func (e *env) call(path string, req any, o callOpts) response {
	e.tb.Helper()
	body := o.rawBody
	if body == nil {
		var err error
		if body, err = json.Marshal(req); err != nil {
			e.tb.Fatal(err)
		}
	}
	base := e.http.URL
	if o.base != "" {
		base = o.base
	}
	hreq, err := http.NewRequestWithContext(e.tb.Context(), http.MethodPost, base+ContractPrefix+path, bytes.NewReader(body))
	if err != nil {
		e.tb.Fatal(err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set(ecbserver.HeaderRequestID, "test-"+strconv.FormatInt(e.reqID.Add(1), 10))
	hreq.Header.Set(ecbserver.HeaderContractVersion, ecbserver.ContractVersion)
	if o.idempotencyKey != "" {
		hreq.Header.Set(ecbserver.HeaderIdempotencyKey, o.idempotencyKey)
	}
	secret, at := e.secret, o.signedAt
	if o.secret != nil {
		secret = o.secret
	}
	if at.IsZero() {
		at = time.Now()
	}
	ecbserver.SignRequest(secret, hreq, body, at)

	resp, err := e.http.Client().Do(hreq)
	if err != nil {
		e.tb.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		e.tb.Fatal(err)
	}
	checkContract(e.tb, hreq, body, resp, out, !o.invalidRequest)
	return response{status: resp.StatusCode, header: resp.Header, body: out}
}

// ok calls and decodes a 200 answer into out.
func (e *env) ok(path string, req, out any, o callOpts) {
	e.tb.Helper()
	r := e.call(path, req, o)
	if r.status != http.StatusOK {
		e.tb.Fatalf("%s: status %d: %s", path, r.status, r.body)
	}
	if err := json.Unmarshal(r.body, out); err != nil {
		e.tb.Fatalf("%s: decode %s: %v", path, r.body, err)
	}
}

// fails calls and checks the error status and code.
func (e *env) fails(path string, req any, o callOpts, status int, code string) {
	e.tb.Helper()
	r := e.call(path, req, o)
	if r.status != status {
		e.tb.Fatalf("%s: status %d, want %d: %s", path, r.status, status, r.body)
	}
	if got := r.errorCode(e.tb); got != code {
		e.tb.Fatalf("%s: code %s, want %s", path, got, code)
	}
}

// web sends a request to the backend's own (non-contract) endpoints.
func (e *env) web(method, path string, body any, header map[string]string) response {
	e.tb.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.tb.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(e.tb.Context(), method, e.http.URL+path, rd)
	if err != nil {
		e.tb.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := e.http.Client().Do(req)
	if err != nil {
		e.tb.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		e.tb.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: out}
}

// login returns an access token for user (password = user name).
func (e *env) login(user string) string {
	e.tb.Helper()
	r := e.web(http.MethodPost, "/login", LoginRequest{Username: user, Password: user}, nil)
	if r.status != http.StatusOK {
		e.tb.Fatalf("login %s: %d %s", user, r.status, r.body)
	}
	var lr LoginResponse
	if err := json.Unmarshal(r.body, &lr); err != nil || lr.AccessToken == "" {
		e.tb.Fatalf("login %s: %s (%v)", user, r.body, err)
	}
	return lr.AccessToken
}

func (e *env) createThread(user string, participants []string, subject, body string, o callOpts) ecbserver.CreateThreadResponse {
	e.tb.Helper()
	var out ecbserver.CreateThreadResponse
	e.ok(ecbserver.PathCreateThread, ecbserver.CreateThreadRequest{
		UserID: user, Participants: participants, Subject: subject, Message: ecbserver.NewMessage{Body: body},
	}, &out, o)
	return out
}

func (e *env) addMessage(user, thread, body, clientID string) ecbserver.AddThreadMessageResponse {
	e.tb.Helper()
	var out ecbserver.AddThreadMessageResponse
	e.ok(ecbserver.PathAddThreadMessage, ecbserver.AddThreadMessageRequest{
		UserID: user, ThreadID: thread, Body: body, ClientMessageID: clientID,
	}, &out, callOpts{idempotencyKey: clientID})
	return out
}

func (e *env) getThread(user, thread, before string, limit int) ecbserver.GetThreadResponse {
	e.tb.Helper()
	var out ecbserver.GetThreadResponse
	e.ok(ecbserver.PathGetThread, ecbserver.GetThreadRequest{UserID: user, ThreadID: thread, Before: before, Limit: limit}, &out, callOpts{})
	return out
}

func (e *env) getThreads(user string) ecbserver.GetThreadsResponse {
	e.tb.Helper()
	var out ecbserver.GetThreadsResponse
	e.ok(ecbserver.PathGetThreads, ecbserver.GetThreadsRequest{UserID: user}, &out, callOpts{})
	return out
}

func (e *env) markRead(user, thread, message string) ecbserver.MarkReadResponse {
	e.tb.Helper()
	var out ecbserver.MarkReadResponse
	e.ok(ecbserver.PathMarkRead, ecbserver.MarkReadRequest{UserID: user, ThreadID: thread, MessageID: message}, &out, callOpts{})
	return out
}

func (e *env) addParticipants(user, thread string, participants ...string) ecbserver.AddParticipantsResponse {
	e.tb.Helper()
	var out ecbserver.AddParticipantsResponse
	e.ok(ecbserver.PathAddParticipants, ecbserver.AddParticipantsRequest{UserID: user, ThreadID: thread, Participants: participants}, &out, callOpts{})
	return out
}

func (e *env) leaveThread(user, thread string) ecbserver.LeaveThreadResponse {
	e.tb.Helper()
	var out ecbserver.LeaveThreadResponse
	e.ok(ecbserver.PathLeaveThread, ecbserver.LeaveThreadRequest{UserID: user, ThreadID: thread}, &out, callOpts{})
	return out
}

// unread returns user's unread count of thread from getThreads; ok is false
// when getThreads does not list the thread.
func (e *env) unread(user, thread string) (n int, ok bool) {
	e.tb.Helper()
	for _, st := range e.getThreads(user).Threads {
		if st.Thread.ID == thread {
			if st.Thread.Unread == nil {
				e.tb.Fatalf("getThreads of %s: thread %s has no unread count", user, thread)
			}
			return *st.Thread.Unread, true
		}
	}
	return 0, false
}

// coreOnlyServer serves the reference backend's contract through a Backend
// that hides the optional interfaces, as a contract 1.0 backend built on the
// SDK would: its optional paths answer 501.
func (e *env) coreOnlyServer() string {
	e.tb.Helper()
	h := ecbserver.NewHandler(e.secret, struct{ ecbserver.Backend }{&ecbBackend{e.srv}}, ecbserver.HandlerOptions{Logger: e.cfg.Logger})
	mux := http.NewServeMux()
	mux.Handle(ContractPrefix+"/", http.StripPrefix(ContractPrefix, h))
	srv := httptest.NewServer(mux)
	e.tb.Cleanup(srv.Close)
	return srv.URL
}

type userClaims struct {
	jwt.RegisteredClaims
	ecbserver.UserClaims
}

type threadClaims struct {
	jwt.RegisteredClaims
	ecbserver.ThreadClaims
}

// verify checks tok the way ECB does, with the public key only.
func (e *env) verify(tok string, claims jwt.Claims) {
	e.tb.Helper()
	_, err := jwt.ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return e.cfg.Signer.PublicKey(), nil },
		jwt.WithValidMethods([]string{e.cfg.Signer.Algorithm()}), jwt.WithAudience(testAudience), jwt.WithExpirationRequired())
	if err != nil {
		e.tb.Fatalf("token does not verify: %v", err)
	}
}

func (e *env) threadClaims(tok string) threadClaims {
	e.tb.Helper()
	var c threadClaims
	e.verify(tok, &c)
	if c.Typ != ecbserver.TokenTypeThread {
		e.tb.Fatalf("typ %q", c.Typ)
	}
	return c
}

// setAccess changes a member's access code directly in the database, as an
// admin tool of the backend would.
func (e *env) setAccess(thread, user string, acc int) {
	e.tb.Helper()
	if _, err := e.srv.db.ExecContext(e.tb.Context(), `UPDATE thread_members SET access = ? WHERE thread_id = ? AND user_id = ?`, acc, thread, user); err != nil {
		e.tb.Fatal(err)
	}
}
