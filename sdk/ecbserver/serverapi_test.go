package ecbserver_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// fakeECB stands in for ECB's Server API in the examples and the tests of
// the client's own behaviour (URLs, headers, errors). The client is tested
// against the real API in ECB's internal/serverapi and test/e2e.
type fakeECB struct {
	mu   sync.Mutex
	seen []string
}

func (f *fakeECB) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.seen = append(f.seen, fmt.Sprintf("%s %s %s %s", r.Method, r.URL.EscapedPath(), r.Header.Get("Authorization"), body))
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Header.Get("Authorization") != "Bearer "+strings.Repeat("k", 40):
		w.WriteHeader(401)
		_, _ = io.WriteString(w, `{"error":{"code":"unauthenticated","message":"a valid API key is required"}}`)
	case strings.HasSuffix(r.URL.Path, "/access/bob") && r.Method == http.MethodPut:
		_, _ = io.WriteString(w, `{"data":{"threadId":"t1","userId":"bob","acc":0,"expiresAt":"2030-01-01T01:00:00Z","detached":2}}`)
	case strings.HasSuffix(r.URL.Path, "/disconnect"):
		_, _ = io.WriteString(w, `{"data":{"userId":"bob","disconnected":3}}`)
	case strings.HasSuffix(r.URL.Path, "/messages"):
		w.WriteHeader(429)
		w.Header().Set("Retry-After", "7")
		_, _ = io.WriteString(w, `{"error":{"code":"rate_limited","message":"slow down","retryAfter":7}}`)
	case strings.HasSuffix(r.URL.Path, "/broken"):
		w.WriteHeader(502)
		_, _ = io.WriteString(w, `<html>bad gateway</html>`)
	default:
		w.WriteHeader(404)
		_, _ = io.WriteString(w, `{"error":{"code":"not_found","message":"no override"}}`)
	}
}

func ExampleServerAPIClient_SetAccess() {
	ecb := httptest.NewServer(&fakeECB{}) // ECB's address, e.g. https://chat.example.com
	defer ecb.Close()
	key := strings.Repeat("k", 40) // one of ECB's serverApi.keys
	c, err := ecbserver.NewServerAPIClient(ecb.URL, key, ecbserver.ServerAPIOptions{})
	if err != nil {
		panic(err)
	}
	// Ban bob from thread t1 for an hour: ECB detaches his connections at once.
	o, err := c.SetAccess(context.Background(), "t1", "bob", ecbserver.AccessNone, time.Hour)
	if err != nil {
		panic(err)
	}
	fmt.Println(o.UserID, o.Acc, o.ExpiresAt.Format(time.RFC3339), *o.Detached)
	// Output: bob 0 2030-01-01T01:00:00Z 2
}

func ExampleServerAPIClient_DisconnectUser() {
	ecb := httptest.NewServer(&fakeECB{})
	defer ecb.Close()
	c, _ := ecbserver.NewServerAPIClient(ecb.URL, strings.Repeat("k", 40), ecbserver.ServerAPIOptions{})
	// After a password change: close bob's connections and refuse his older tokens.
	res, err := c.DisconnectUser(context.Background(), "bob", time.Now())
	if err != nil {
		panic(err)
	}
	fmt.Println(res.Disconnected)
	// Output: 3
}

func TestServerAPIClientRequestsAndErrors(t *testing.T) {
	f := &fakeECB{}
	ecb := httptest.NewServer(f)
	defer ecb.Close()
	ctx := context.Background()
	key := strings.Repeat("k", 40)
	for _, base := range []string{ecb.URL, ecb.URL + "/", ecb.URL + "/server/v1"} {
		c, err := ecbserver.NewServerAPIClient(base, key, ecbserver.ServerAPIOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.SetAccess(ctx, "t1", "bob", 0, 1500*time.Millisecond); err != nil {
			t.Fatalf("%s: %v", base, err)
		}
	}
	if want := "PUT /server/v1/threads/t1/access/bob Bearer " + key + ` {"acc":0,"ttlSeconds":2}`; f.seen[0] != want {
		t.Fatalf("request %q, want %q", f.seen[0], want)
	}
	c, _ := ecbserver.NewServerAPIClient(ecb.URL, key, ecbserver.ServerAPIOptions{})
	if _, err := c.GetAccess(ctx, "a/b", "c d"); err == nil {
		t.Fatal("no error for not_found")
	}
	if last := f.seen[len(f.seen)-1]; !strings.HasPrefix(last, "GET /server/v1/threads/a%2Fb/access/c%20d ") {
		t.Fatalf("ids not escaped: %q", last)
	}
	_, err := c.PublishSystemMessage(ctx, "t1", ecbserver.SystemMessage{Body: "x"})
	var e *ecbserver.ServerAPIError
	if !errors.As(err, &e) || e.Status != 429 || e.Code != "rate_limited" || e.RetryAfter != 7*time.Second {
		t.Fatalf("rate limited: %#v", err)
	}
	if _, err := c.ThreadInfo(ctx, "broken"); !errors.As(err, &e) || e.Status != 502 || e.Code != "internal" {
		t.Fatalf("not the envelope: %#v", err)
	}
	wrong, _ := ecbserver.NewServerAPIClient(ecb.URL, "wrong", ecbserver.ServerAPIOptions{})
	if _, err := wrong.UserPresence(ctx, "bob"); !errors.As(err, &e) || e.Code != "unauthenticated" {
		t.Fatalf("wrong key: %v", err)
	}
	for _, bad := range []string{"", "ftp://x", "no-scheme"} {
		if _, err := ecbserver.NewServerAPIClient(bad, key, ecbserver.ServerAPIOptions{}); err == nil {
			t.Errorf("URL %q accepted", bad)
		}
	}
	if _, err := ecbserver.NewServerAPIClient(ecb.URL, "", ecbserver.ServerAPIOptions{}); err == nil {
		t.Error("empty key accepted")
	}
}

func TestServerAPIClientWorkgroups(t *testing.T) {
	key := strings.Repeat("k", 40)
	var seen []string
	wg := `{"name":"sales","displayName":"Sales","strategy":"least-busy","offerTimeoutSeconds":20,"maxChats":3,"open":true,` +
		`"hours":{"timezone":"Europe/Berlin","weekly":{"mon":["09:00-17:00"]}},"requiredFields":["question"],` +
		`"status":{"open":false,"agentsAvailable":1,"queueLength":0,"estimatedWait":30,"opensAt":"2026-03-30T07:00:00Z"}}`
	ecb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		seen = append(seen, fmt.Sprintf("%s %s %s", r.Method, r.URL.EscapedPath(), body))
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Header.Get("Authorization") != "Bearer "+key:
			w.WriteHeader(401)
			_, _ = io.WriteString(w, `{"error":{"code":"unauthenticated","message":"no"}}`)
		case r.Method == http.MethodGet && r.URL.Path == "/server/v1/workgroups":
			_, _ = io.WriteString(w, `{"data":{"workgroups":[`+wg+`]}}`)
		case r.Method == http.MethodGet && r.URL.Path == "/server/v1/workgroups/sales":
			_, _ = io.WriteString(w, `{"data":`+wg+`}`)
		case r.Method == http.MethodPut && r.URL.Path == "/server/v1/workgroups/sales":
			w.WriteHeader(201)
			_, _ = io.WriteString(w, `{"data":`+wg+`}`)
		case r.Method == http.MethodPut && r.URL.Path == "/server/v1/workgroups/support":
			_, _ = io.WriteString(w, `{"data":`+strings.Replace(wg, `"sales"`, `"support"`, 1)+`}`)
		case r.Method == http.MethodDelete && r.URL.Path == "/server/v1/workgroups/sales":
			w.WriteHeader(204)
		case r.Method == http.MethodDelete && r.URL.Path == "/server/v1/workgroups/busy":
			w.WriteHeader(409)
			_, _ = io.WriteString(w, `{"error":{"code":"conflict","message":"workgroup \"busy\" has 1 waiting request(s)"}}`)
		default:
			w.WriteHeader(404)
			_, _ = io.WriteString(w, `{"error":{"code":"not_found","message":"no workgroup"}}`)
		}
	}))
	defer ecb.Close()
	ctx := context.Background()
	c, _ := ecbserver.NewServerAPIClient(ecb.URL, key, ecbserver.ServerAPIOptions{})

	list, err := c.ListWorkgroups(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "sales" || list[0].Hours.Timezone != "Europe/Berlin" ||
		list[0].Status.OpensAt == nil || !list[0].Status.OpensAt.Equal(time.Date(2026, 3, 30, 7, 0, 0, 0, time.UTC)) {
		t.Fatalf("list %+v %v", list, err)
	}
	got, err := c.GetWorkgroup(ctx, "sales")
	if err != nil || got.Strategy != "least-busy" || got.Status.ClosesAt != nil || got.RequiredFields[0] != "question" {
		t.Fatalf("get %+v %v", got, err)
	}
	closed := false
	w, created, err := c.PutWorkgroup(ctx, "sales", ecbserver.WorkgroupSettings{DisplayName: "Sales", MaxChats: 3, Open: &closed,
		Hours: &ecbserver.WorkgroupHours{Timezone: "Europe/Berlin", Weekly: map[string][]string{"mon": {"09:00-17:00"}}}})
	if err != nil || !created || w.Name != "sales" {
		t.Fatalf("put new %+v %v %v", w, created, err)
	}
	if want := `PUT /server/v1/workgroups/sales {"displayName":"Sales","maxChats":3,"open":false,"hours":{"timezone":"Europe/Berlin","weekly":{"mon":["09:00-17:00"]}}}`; seen[len(seen)-1] != want {
		t.Fatalf("request %q, want %q", seen[len(seen)-1], want)
	}
	if w, created, err = c.PutWorkgroup(ctx, "support", ecbserver.WorkgroupSettings{}); err != nil || created || w.Name != "support" {
		t.Fatalf("put existing %+v %v %v", w, created, err)
	}
	if seen[len(seen)-1] != `PUT /server/v1/workgroups/support {}` {
		t.Fatalf("empty settings sent as %q", seen[len(seen)-1])
	}
	if err := c.DeleteWorkgroup(ctx, "sales"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	var e *ecbserver.ServerAPIError
	if err := c.DeleteWorkgroup(ctx, "busy"); !errors.As(err, &e) || e.Status != 409 || e.Code != "conflict" {
		t.Fatalf("delete busy: %v", err)
	}
	if _, err := c.GetWorkgroup(ctx, "a/b"); !errors.As(err, &e) || e.Code != "not_found" {
		t.Fatalf("get unknown: %v", err)
	}
	if last := seen[len(seen)-1]; last != "GET /server/v1/workgroups/a%2Fb " {
		t.Fatalf("name not escaped: %q", last)
	}
}
