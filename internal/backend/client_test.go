package backend_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/backend"
	"github.com/ecbridge/ecb/internal/memhttp"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

const secret = "0123456789abcdef0123456789abcdef"

func newClient(tb testing.TB, h http.HandlerFunc, mods ...func(*backend.Config)) *backend.Client {
	tb.Helper()
	srv := httptest.NewServer(h)
	tb.Cleanup(srv.Close)
	cfg := backend.Config{URL: srv.URL + "/ecb/v1", Secret: secret, Timeout: 300 * time.Millisecond, BreakerFailures: 2, BreakerCooldown: 200 * time.Millisecond}
	for _, m := range mods {
		m(&cfg)
	}
	c, err := backend.New(cfg, nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func TestRequestsAreSignedAndVerifiableBySDK(t *testing.T) {
	var gotPath, gotKey string
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := ecbserver.VerifyRequest([]byte(secret), r, body, time.Now(), time.Minute); err != nil {
			t.Errorf("SDK refused ECB's signature: %v", err)
		}
		if r.Header.Get(ecbserver.HeaderContractVersion) != ecbserver.ContractVersion || r.Header.Get(ecbserver.HeaderRequestID) == "" {
			t.Errorf("missing contract headers: %v", r.Header)
		}
		gotPath, gotKey = r.URL.Path, r.Header.Get(ecbserver.HeaderIdempotencyKey)
		_, _ = w.Write([]byte(`{"message":{"id":"m1","threadId":"t1","authorId":"u","body":"b","createdAt":"2026-01-01T00:00:00Z"},"threadToken":"tt"}`))
	})
	resp, err := c.AddThreadMessage(context.Background(), &ecbserver.AddThreadMessageRequest{UserID: "u", ThreadID: "t1", Body: "b", ClientMessageID: "cm-1"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Message.ID != "m1" || gotPath != "/ecb/v1/addThreadMessage" || gotKey != "cm-1" {
		t.Fatalf("resp %+v path %q idempotency key %q", resp, gotPath, gotKey)
	}
}

func TestFailuresMapToClientCodes(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
		want   apierr.Code
	}{
		{"backend not found", 404, `{"error":{"code":"not_found","message":"no such thread"}}`, apierr.NotFound},
		{"backend forbidden", 403, `{"error":{"code":"forbidden","message":"not a member"}}`, apierr.Forbidden},
		{"status only", 400, `oops`, apierr.InvalidArgument},
		{"bad access token", 401, `{"error":{"code":"unauthenticated","message":"bad"}}`, apierr.Unauthenticated},
		{"conflict", 409, `{"error":{"code":"conflict","message":"closed"}}`, apierr.Conflict},
		{"server error", 500, `boom`, apierr.BackendUnavailable},
		{"teapot", 418, `{}`, apierr.BackendError},
		{"garbage 200", 200, `<html>`, apierr.BackendError},
		{"200 missing fields", 200, `{"userToken":""}`, apierr.BackendError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			})
			_, err := c.Authenticate(context.Background(), &ecbserver.AuthenticateRequest{AccessToken: "x"})
			if got := apierr.From(err).Code; got != tc.want {
				t.Fatalf("code %s, want %s (err %v)", got, tc.want, err)
			}
		})
	}
}

// The timeout, the breaker's cooldown and the slow backend run on the fake
// clock of a synctest bubble (the backend is served in memory), so the
// test decides nothing by the machine's speed.
func TestTimeoutAndBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		var slow atomic.Bool
		slow.Store(true)
		c := newMemClient(t, func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			_, _ = io.ReadAll(r.Body)
			if slow.Load() {
				select {
				case <-time.After(2 * time.Second):
				case <-r.Context().Done():
				}
				return
			}
			_, _ = w.Write([]byte(`{"contacts":[]}`))
		})
		ctx := context.Background()
		for range 2 {
			start := time.Now()
			_, err := c.GetContacts(ctx, &ecbserver.GetContactsRequest{UserID: "u"})
			if apierr.From(err).Code != apierr.BackendUnavailable {
				t.Fatalf("slow backend: %v", err)
			}
			if d := time.Since(start); d != 300*time.Millisecond { // the handler answers after 2s: only the timeout ends it sooner
				t.Fatalf("call took %s, want the 300ms timeout", d)
			}
		}
		if c.Healthy() {
			t.Fatal("breaker still closed after 2 failures")
		}
		before := calls.Load()
		_, err := c.GetContacts(ctx, &ecbserver.GetContactsRequest{UserID: "u"})
		if !errors.Is(err, backend.ErrCircuitOpen) || calls.Load() != before {
			t.Fatalf("open breaker let a call through: %v (calls %d→%d)", err, before, calls.Load())
		}
		slow.Store(false)
		time.Sleep(200*time.Millisecond - time.Nanosecond)
		if _, err := c.GetContacts(ctx, &ecbserver.GetContactsRequest{UserID: "u"}); !errors.Is(err, backend.ErrCircuitOpen) {
			t.Fatalf("a call just before the end of the cooldown: %v, want the circuit still open", err)
		}
		time.Sleep(time.Nanosecond) // the cooldown is over
		if _, err := c.GetContacts(ctx, &ecbserver.GetContactsRequest{UserID: "u"}); err != nil {
			t.Fatalf("half-open probe failed: %v", err)
		}
		if !c.Healthy() {
			t.Fatal("breaker did not close after a successful probe")
		}
	})
}

// newMemClient is newClient with the backend served in memory (memhttp), for
// tests inside a synctest bubble.
func newMemClient(tb testing.TB, h http.HandlerFunc) *backend.Client {
	tb.Helper()
	cfg := backend.Config{URL: "http://backend.test/ecb/v1", Secret: secret, Timeout: 300 * time.Millisecond, BreakerFailures: 2, BreakerCooldown: 200 * time.Millisecond}
	c, err := backend.New(cfg, memhttp.Client(h), nil)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func TestCallerCancellationDoesNotOpenTheBreaker(t *testing.T) {
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body) // the server notices a closed connection only once the body is read
		<-r.Context().Done()
	}, func(cfg *backend.Config) { cfg.Timeout = 5 * time.Second })
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		_, _ = c.GetContacts(ctx, &ecbserver.GetContactsRequest{UserID: "u"})
		cancel()
	}
	if !c.Healthy() {
		t.Fatal("clients going away opened the breaker")
	}
}

func TestOversizedResponseIsBackendError(t *testing.T) {
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"contacts":[` + strings.Repeat(`{"id":"x","name":"y"},`, 100) + `{"id":"z","name":"z"}]}`))
	}, func(cfg *backend.Config) { cfg.MaxResponse = 256 })
	_, err := c.GetContacts(context.Background(), &ecbserver.GetContactsRequest{UserID: "u"})
	if apierr.From(err).Code != apierr.BackendError {
		t.Fatalf("oversized response: %v", err)
	}
}
