package ecbserver_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// A secret shared by ECB and the backend (backend.secret in ECB's config).
var secret = []byte("0123456789abcdef0123456789abcdef")

func ExampleSign() {
	ts := time.Unix(1700000000, 0)
	body := []byte(`{"accessToken":"abc"}`)
	fmt.Println(ecbserver.Sign(secret, ts, body))
	// Output: v1=6d9324c2d68ab23f6eb23f65b21df22bb4254013c7da0acdbfd098e0074e3403
}

func ExampleVerifyRequest() {
	body := []byte(`{"userId":"alice"}`)
	now := time.Now()

	r := httptest.NewRequest(http.MethodPost, "/getContacts", bytes.NewReader(body))
	ecbserver.SignRequest(secret, r, body, now)
	fmt.Println("fresh:", ecbserver.VerifyRequest(secret, r, body, now, 0))

	// The same call replayed ten minutes later is refused.
	err := ecbserver.VerifyRequest(secret, r, body, now.Add(10*time.Minute), 0)
	fmt.Println("replayed:", err != nil)
	// Output:
	// fresh: <nil>
	// replayed: true
}

// contactsOnly is a tiny Backend: it serves getContacts and refuses the rest.
type contactsOnly struct{}

func (contactsOnly) Authenticate(context.Context, *ecbserver.AuthenticateRequest) (*ecbserver.AuthenticateResponse, error) {
	return nil, ecbserver.Unauthenticated("no logins here")
}

func (contactsOnly) GetContacts(_ context.Context, req *ecbserver.GetContactsRequest) (*ecbserver.GetContactsResponse, error) {
	if req.UserID != "alice" {
		return nil, ecbserver.NotFound("unknown user " + req.UserID)
	}
	return &ecbserver.GetContactsResponse{Contacts: []ecbserver.User{{ID: "bob", Name: "Bob"}}}, nil
}

func (contactsOnly) GetThreads(context.Context, *ecbserver.GetThreadsRequest) (*ecbserver.GetThreadsResponse, error) {
	return &ecbserver.GetThreadsResponse{}, nil
}

func (contactsOnly) CreateThread(context.Context, *ecbserver.CreateThreadRequest) (*ecbserver.CreateThreadResponse, error) {
	return nil, ecbserver.Forbidden("read-only backend")
}

func (contactsOnly) GetThread(_ context.Context, req *ecbserver.GetThreadRequest) (*ecbserver.GetThreadResponse, error) {
	return nil, ecbserver.NotFound("no thread " + req.ThreadID)
}

func (contactsOnly) AddThreadMessage(context.Context, *ecbserver.AddThreadMessageRequest) (*ecbserver.AddThreadMessageResponse, error) {
	return nil, ecbserver.Forbidden("read-only backend")
}

func ExampleNewHandler() {
	mux := http.NewServeMux()
	// ECB is configured with the base URL http://<host>/ecb/v1.
	mux.Handle("/ecb/v1/", http.StripPrefix("/ecb/v1",
		ecbserver.NewHandler(secret, contactsOnly{}, ecbserver.HandlerOptions{})))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	// What ECB sends.
	post := func(path string, body string) {
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/ecb/v1"+path, bytes.NewReader([]byte(body)))
		if err != nil {
			log.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		ecbserver.SignRequest(secret, req, []byte(body), time.Now())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		fmt.Println(resp.StatusCode, string(out))
	}
	post(ecbserver.PathGetContacts, `{"userId":"alice"}`)
	post(ecbserver.PathGetThread, `{"userId":"alice","threadId":"t9"}`)
	post(ecbserver.PathGetContacts, `{"userId":`)
	// Output:
	// 200 {"contacts":[{"id":"bob","name":"Bob"}]}
	// 404 {"error":{"code":"not_found","message":"no thread t9"}}
	// 400 {"error":{"code":"invalid_argument","message":"malformed JSON body: unexpected end of JSON input"}}
}

func ExampleTokenSigner() {
	// A real backend loads its key with ecbserver.LoadPrivateKeyPEM; a fixed
	// seed keeps this example self-contained.
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	signer, err := ecbserver.NewTokenSigner(key, ecbserver.SignerOptions{Audience: "ecb", KeyID: "2026-01"})
	if err != nil {
		log.Fatal(err)
	}
	userToken, err := signer.SignUserToken(ecbserver.UserTokenParams{
		ID: "agent1", Name: "Agent One", Roles: []string{"agent"}, Workgroups: []string{"support"},
	})
	if err != nil {
		log.Fatal(err)
	}
	threadToken, err := signer.SignThreadToken(ecbserver.ThreadTokenParams{
		ThreadID: "t1", UserID: "agent1", Access: ecbserver.AccessRead | ecbserver.AccessWrite,
	})
	if err != nil {
		log.Fatal(err)
	}

	// What ECB does with them, knowing only the public key.
	for _, tok := range []string{userToken, threadToken} {
		claims := jwt.MapClaims{}
		_, err := jwt.ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return signer.PublicKey(), nil },
			jwt.WithValidMethods([]string{signer.Algorithm()}), jwt.WithAudience("ecb"))
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(claims["typ"], claims["sub"], claims["name"], claims["acc"])
	}
	// Output:
	// user agent1 Agent One <nil>
	// thread t1 <nil> 3
}
