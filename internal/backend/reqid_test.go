package backend_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ecbridge/ecb/internal/backend"
	"github.com/ecbridge/ecb/internal/reqid"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// A call's ECB-Request-Id is the request id of its context (the client
// request's, on ECB's log lines), and a fresh one when the context has none.
func TestRequestIDIsTheCallersRequestID(t *testing.T) {
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get(ecbserver.HeaderRequestID)
		_, _ = w.Write([]byte(`{"contacts":[]}`))
	}))
	t.Cleanup(srv.Close)
	c, err := backend.New(backend.Config{URL: srv.URL + "/ecb/v1", Secret: "0123456789abcdef0123456789abcdef", Timeout: 5 * time.Second}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ ctx, want string }{{"req-42.a_B", "req-42.a_B"}, {"", ""}} {
		ctx := context.Background()
		if tc.ctx != "" {
			ctx = reqid.With(ctx, tc.ctx)
		}
		if _, err := c.GetContacts(ctx, &ecbserver.GetContactsRequest{UserID: "u"}); err != nil {
			t.Fatal(err)
		}
		id := <-got
		if tc.want != "" && id != tc.want || id == "" {
			t.Errorf("context id %q: the backend got ECB-Request-Id %q", tc.ctx, id)
		}
	}
}
