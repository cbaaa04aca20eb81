package sse

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"testing/synctest"

	"gopkg.in/yaml.v3"

	"github.com/ecbridge/ecb/internal/access"
	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/openapitest"
	"github.com/ecbridge/ecb/internal/ops"
	"github.com/ecbridge/ecb/internal/refbackend"
	"github.com/ecbridge/ecb/internal/stacktest"
	validator "github.com/pb33f/libopenapi-validator"
)

// clientSpec validates every REST request and answer of this package's
// tests against api/client.yaml (env.do): the published contract of the
// client API, checked against the real routes. It is loaded in TestMain,
// outside any synctest bubble.
var (
	clientSpec   validator.Validator
	clientSpecMu sync.Mutex // the validator's caches are not for concurrent use
)

func TestMain(m *testing.M) {
	v, err := openapitest.Load("client.yaml")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	clientSpec = v
	if specRoutes, err = loadSpecRoutes(); err != nil || len(specRoutes) < 20 {
		fmt.Fprintln(os.Stderr, "the operations of api/client.yaml:", len(specRoutes), err)
		os.Exit(1)
	}
	code := m.Run()
	if code == 0 && flag.Lookup("test.run").Value.String() == "" {
		if left := uncovered(); len(left) > 0 {
			fmt.Fprintf(os.Stderr, "FAIL: no test of package sse got a 2xx answer of %v (api/client.yaml)\n", left)
			code = 1
		}
	}
	os.Exit(code)
}

// checkContract validates req (with its body raw) when the answer
// succeeded, and the answer rec always, against api/client.yaml. A route
// the spec does not have may only be refused (404, or 401 before routing
// matters).
func (e *env) checkContract(req *http.Request, raw []byte, rec *httptest.ResponseRecorder) {
	e.t.Helper()
	check := req.Clone(context.Background())
	check.Body = io.NopCloser(bytes.NewReader(raw))
	check.URL.Scheme, check.URL.Host, check.Host = "http", "127.0.0.1:8080", "127.0.0.1:8080"
	clientSpecMu.Lock()
	defer clientSpecMu.Unlock()
	if rec.Code < 300 {
		markCovered(req.Method, req.URL.Path)
		if ok, verrs := clientSpec.ValidateHttpRequestSync(check); !ok {
			e.t.Errorf("request %s %s is not as api/client.yaml says:%s", req.Method, req.URL, openapitest.Describe(verrs))
		}
	}
	check.Body = io.NopCloser(bytes.NewReader(raw))
	if ok, verrs := clientSpec.ValidateHttpResponse(check, rec.Result()); !ok {
		var real []string
		for _, v := range verrs {
			if (rec.Code == 404 || rec.Code == 401) && strings.Contains(v.Message, "not found") {
				continue // a route the spec does not have, refused
			}
			real = append(real, fmt.Sprintf("%s: %s", v.Message, v.Reason))
		}
		if len(real) > 0 {
			e.t.Errorf("answer %d to %s %s is not as api/client.yaml says: %s (%s)", rec.Code, req.Method, req.URL, strings.Join(real, "; "), rec.Body)
		}
	}
}

// The contract check must catch an answer that is not as the spec says.
func TestContractCheckCatchesAWrongAnswer(t *testing.T) {
	req := httptest.NewRequest(http.MethodGet, "/v1/contacts", nil)
	req.Header.Set("Authorization", "Bearer x")
	rec := httptest.NewRecorder()
	WriteJSON(rec, http.StatusOK, map[string]any{"items": "not a list"})
	check := req.Clone(context.Background())
	check.URL.Scheme, check.URL.Host, check.Host = "http", "127.0.0.1:8080", "127.0.0.1:8080"
	clientSpecMu.Lock()
	ok, _ := clientSpec.ValidateHttpResponse(check, rec.Result())
	clientSpecMu.Unlock()
	if ok {
		t.Fatal("api/client.yaml accepts a page whose items are not a list")
	}
	rec = httptest.NewRecorder()
	WriteError(rec, fmt.Errorf("boom"))
	clientSpecMu.Lock()
	ok, verrs := clientSpec.ValidateHttpResponse(check, rec.Result())
	clientSpecMu.Unlock()
	if !ok {
		t.Fatalf("api/client.yaml refuses ECB's error envelope:%s", openapitest.Describe(verrs))
	}
}

// servedElsewhere are the /v1 routes of api/client.yaml that the node
// serves beside this package's API (internal/server: the discovery
// document, the spec itself and its browsable page).
var servedElsewhere = []string{"GET /v1/discover", "GET /v1/openapi.yaml", "GET /v1/docs/"}

// TestEveryRouteIsInTheSpec compares the routes New registers (read from
// api.go) with the operations of api/client.yaml, both ways.
func TestEveryRouteIsInTheSpec(t *testing.T) {
	src, err := os.ReadFile("api.go")
	if err != nil {
		t.Fatal(err)
	}
	var routes []string
	for _, m := range regexp.MustCompile(`m\.HandleFunc\("([A-Z]+) (/v1/[^"]*)"`).FindAllSubmatch(src, -1) {
		routes = append(routes, string(m[1])+" "+string(m[2]))
	}
	if len(routes) < 20 {
		t.Fatalf("found only %d routes in api.go: has the way New registers them changed?", len(routes))
	}
	routes = append(routes, servedElsewhere...)
	sort.Strings(routes)

	raw, err := os.ReadFile("../../api/client.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var spec []string
	for path, item := range doc.Paths {
		for method := range item {
			switch method {
			case "get", "post", "put", "patch", "delete":
				spec = append(spec, strings.ToUpper(method)+" "+path)
			}
		}
	}
	sort.Strings(spec)
	for _, r := range routes {
		if !slices.Contains(spec, r) {
			t.Errorf("route %s is not in api/client.yaml", r)
		}
	}
	for _, s := range spec {
		if !slices.Contains(routes, s) {
			t.Errorf("api/client.yaml has %s, which no route serves", s)
		}
	}
}

// TestModerationAndRestOverREST walks the routes the other tests of this
// package do not (group threads, moderation, public threads, resume), so
// that every operation of api/client.yaml is checked with a real answer.
func TestModerationAndRestOverREST(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, testConfig(), stacktest.Options{})
		store := access.New(access.Config{MaxEntries: 50}) // live overrides, for setAccess
		e.st.Ops.SetGuards(ops.Guards{Access: store, Threads: store, Revocations: store, Writer: store})
		alice, bob, carol := e.st.UserToken("alice"), e.st.UserToken("bob"), e.st.UserToken("carol")
		as := e.open(alice, "")
		ready, _ := as.ready()

		var created struct {
			Thread      struct{ ID string }
			ThreadToken string
			Message     struct{ ID string }
			Epoch       string
		}
		e.ok(&created, http.MethodPost, "/v1/threads", alice,
			map[string]any{"participants": []string{"bob"}, "subject": "group", "message": map[string]any{"body": "hi"}},
			HeaderStream+": "+ready.StreamID)
		th, tok := created.Thread.ID, created.ThreadToken
		hdr := HeaderThreadToken + ": " + tok

		var added struct{ Added []string }
		e.ok(&added, http.MethodPost, "/v1/threads/"+th+"/participants", alice, map[string]any{"participants": []string{"carol"}}, hdr)
		if len(added.Added) != 1 || added.Added[0] != "carol" {
			t.Fatalf("addParticipants: %+v", added)
		}
		var upd struct{ Thread struct{ Subject string } }
		e.ok(&upd, http.MethodPatch, "/v1/threads/"+th, alice, map[string]any{"subject": "renamed"}, hdr)
		if upd.Thread.Subject != "renamed" {
			t.Fatalf("updateThread: %+v", upd)
		}
		var acc struct {
			UserID string
			Acc    int
		}
		e.ok(&acc, http.MethodPut, "/v1/threads/"+th+"/access/bob", alice, map[string]any{"acc": 1, "ttlSeconds": 3600}, hdr)
		if acc.UserID != "bob" || acc.Acc != 1 {
			t.Fatalf("setAccess: %+v", acc)
		}
		var del struct{ Message struct{ Deleted bool } }
		e.ok(&del, http.MethodDelete, "/v1/threads/"+th+"/messages/"+created.Message.ID, alice, nil, hdr)
		if !del.Message.Deleted {
			t.Fatalf("deleteMessage: %+v", del)
		}
		e.ok(nil, http.MethodDelete, "/v1/threads/"+th+"/participants/carol", alice, nil, hdr)
		var resumed struct {
			Threads []struct {
				ThreadID  string
				Recovered bool
			}
		}
		e.ok(&resumed, http.MethodPost, "/v1/resume", alice,
			map[string]any{"threads": []map[string]any{{"threadToken": tok, "epoch": created.Epoch, "offset": 0}}},
			HeaderStream+": "+ready.StreamID)
		if len(resumed.Threads) != 1 || resumed.Threads[0].ThreadID != th {
			t.Fatalf("resume: %+v", resumed)
		}
		e.ok(nil, http.MethodDelete, "/v1/threads/"+th, alice, nil, hdr)

		var public struct {
			Items []struct{ Thread struct{ ID string } }
		}
		e.ok(&public, http.MethodGet, "/v1/threads?public=true", carol, nil)
		var joined struct {
			Joined      bool
			ThreadToken string
		}
		e.ok(&joined, http.MethodPost, "/v1/threads/"+refbackend.LobbyID+"/join", bob, nil)
		if !joined.Joined || joined.ThreadToken == "" {
			t.Fatalf("joinThread: %+v", joined)
		}
		if r := e.do(http.MethodPost, "/v1/threads/"+refbackend.LobbyID+"/join", "", nil); r.code() != apierr.Unauthenticated {
			t.Fatalf("joinThread without a token: %d %s", r.status, r.code())
		}
	})
}

// covered is every operation of api/client.yaml that a test got a 2xx
// answer of (env.do, with checkContract); TestMain checks, on a run of the
// whole package, that none is left out.
var (
	coveredMu sync.Mutex
	covered   = map[string]bool{}
)

type specRoute struct {
	key string // "METHOD /v1/path/{param}"
	re  *regexp.Regexp
}

func loadSpecRoutes() ([]specRoute, error) {
	raw, err := os.ReadFile("../../api/client.yaml")
	if err != nil {
		return nil, err
	}
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("parse api/client.yaml: %w", err)
	}
	param := regexp.MustCompile(`\\\{[^}]*\}`)
	var out []specRoute
	for path, item := range doc.Paths {
		re := regexp.MustCompile("^" + param.ReplaceAllString(regexp.QuoteMeta(path), `[^/]+`) + "$")
		for method := range item {
			switch method {
			case "get", "post", "put", "patch", "delete":
				out = append(out, specRoute{key: strings.ToUpper(method) + " " + path, re: re})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out, nil
}

var specRoutes []specRoute

func markCovered(method, path string) {
	for _, r := range specRoutes {
		m, _, _ := strings.Cut(r.key, " ")
		if m == method && r.re.MatchString(path) {
			coveredMu.Lock()
			covered[r.key] = true
			coveredMu.Unlock()
		}
	}
}

// uncovered lists the operations no test answered with a 2xx (but those
// served elsewhere and the event stream, which sseClient reads).
func uncovered() []string {
	var out []string
	for _, r := range specRoutes {
		if !covered[r.key] && !slices.Contains(servedElsewhere, r.key) && r.key != "GET /v1/events" {
			out = append(out, r.key)
		}
	}
	return out
}
