package serverapi_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ecbridge/ecb/internal/access"
	"github.com/ecbridge/ecb/internal/hub"
	"github.com/ecbridge/ecb/internal/ops"
	"github.com/ecbridge/ecb/internal/serverapi"
)

// FuzzKeysText: the text form of serverApi.keys never panics, and its
// errors never quote the input (it holds secrets).
func FuzzKeysText(f *testing.F) {
	for _, s := range []string{
		`[{name: a, key: ` + strings.Repeat("k", 32) + `, scopes: ["*"]}]`,
		`[{"name":"a","key":"secret-secret-secret-secret-secret","scopes":["presence:read"]}]`,
		`[]`, `{`, `[{name: a, nope: 1}]`, "- name: x\n  key: y\n", `!!binary AAAA`, `[{name: [1]}]`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		var k serverapi.Keys
		err := k.UnmarshalText([]byte(text))
		if err != nil && len(text) >= 8 && strings.Contains(err.Error(), text) {
			t.Fatalf("the error quotes the input: %v", err)
		}
		c := serverapi.Config{Keys: k}
		c.SetDefaults()
		if err := c.Validate(); err != nil {
			for _, key := range k {
				if len(key.Key) >= 8 && strings.Contains(err.Error(), key.Key) {
					t.Fatalf("a validation error quotes a key: %v", err)
				}
			}
		}
	})
}

// FuzzRequests: any method, path and body gets the envelope, never a panic
// or an internal error.
func FuzzRequests(f *testing.F) {
	seeds := []struct{ method, path, body string }{
		{"PUT", "/server/v1/threads/t/access/u", `{"acc":0,"ttlSeconds":60}`},
		{"GET", "/server/v1/threads/t/access/u", ``},
		{"DELETE", "/server/v1/threads/t/access/u", ``},
		{"POST", "/server/v1/threads/t/messages", `{"body":"hi","data":{"a":1}}`},
		{"POST", "/server/v1/threads/t/events", `{"change":"deleted"}`},
		{"POST", "/server/v1/threads/t/events", `{"change":"updated","thread":{"id":"t","members":[]}}`},
		{"POST", "/server/v1/users/u/disconnect", `{"revokedBefore":"now"}`},
		{"GET", "/server/v1/users/u/presence", ``},
		{"GET", "/server/v1/threads/t", ``},
		{"PUT", "/server/v1/threads/t/access/u", `{"acc":1e309}`},
		{"PUT", "/server/v1/threads/t/access/u", `{"acc":0,"ttlSeconds":9223372037}`},
		{"PUT", "/server/v1/threads/t/access/u", `{"acc":0,"ttlSeconds":1e3}`},
		{"POST", "/server/v1/threads/t/messages", `{"body":"\ud800"}`},
		// Workgroups: the PUT body parser (settings and opening hours).
		{"GET", "/server/v1/workgroups", ``},
		{"GET", "/server/v1/workgroups/support", ``},
		{"PUT", "/server/v1/workgroups/sales", `{}`},
		{"PUT", "/server/v1/workgroups/sales", `{"displayName":"Sales","strategy":"least-busy","offerTimeoutSeconds":20,"maxChats":3,"open":true,"requiredFields":["question","email"]}`},
		{"PUT", "/server/v1/workgroups/sales", `{"hours":{"timezone":"Europe/Berlin","weekly":{"mon":["09:00-12:00","13:00-17:30"],"sun":["00:00-24:00"]},"closedDates":["2026-12-25"]}}`},
		{"PUT", "/server/v1/workgroups/sales", `{"hours":{"timezone":"America/Sao_Paulo","weekly":{"sat":["23:00-24:00"],"sun":["00:00-01:00"]}}}`},
		{"PUT", "/server/v1/workgroups/sales", `{"hours":{"timezone":"../etc","weekly":{"mon":["24:00-09:00","9:0-1:0"],"xyz":[]},"closedDates":["2026-02-30"]}}`},
		{"PUT", "/server/v1/workgroups/sales", `{"hours":{"weekly":{"tue":["09:00-12:00","11:59-13:00"]}}}`},
		{"PUT", "/server/v1/workgroups/sales", `{"open":false,"maxChats":1e9,"offerTimeoutSeconds":-1}`},
		{"PUT", "/server/v1/workgroups/support", `{"hours":null,"requiredFields":["",""]}`},
		{"PUT", "/server/v1/workgroups/sales", `{"queues":[{"queue":"billing","match":{"topic":"billing"},"agents":["agent2"]},{"queue":"general"}]}`},
		{"PUT", "/server/v1/workgroups/sales", `{"queues":[{"queue":""},{"queue":"a","match":{"":1},"agents":["x","x",""]}]}`},
		{"PUT", "/server/v1/workgroups/support", `{"queues":[{"queue":"only","match":{"k":"v"}}]}`},
		{"DELETE", "/server/v1/workgroups/sales", ``},
		{"DELETE", "/server/v1/workgroups/support", ``},
		// The backend acting on threads and support conversations (issue 15).
		{"POST", "/server/v1/threads/t/members/u", ``},
		{"POST", "/server/v1/threads/t/members/u", `{"threadToken":"a.b.c"}`},
		{"POST", "/server/v1/threads/t/members/u", `{"threadToken":null,"x":1}`},
		{"DELETE", "/server/v1/threads/t/members/u", ``},
		{"POST", "/server/v1/threads/t/announce", `{"members":["a","b","a"]}`},
		{"POST", "/server/v1/threads/t/announce", `{"members":["","\u0000"]}`},
		{"POST", "/server/v1/support/conversations/r1/close", ``},
		{"POST", "/server/v1/support/conversations/r1/close", `{"x":1}`},
		{"POST", "/server/v1/support/conversations/r1/agents", `{"agent":"a2"}`},
		{"POST", "/server/v1/support/conversations/r1/agents", `{"agent":["a2"]}`},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.body)
	}
	h := hub.New(hub.Config{})
	svc := ops.New(ops.Config{}, nil, nil, h, slog.New(slog.DiscardHandler), nil)
	store := access.New(access.Config{MaxEntries: 1000})
	svc.SetGuards(ops.Guards{Access: store, Threads: store, Revocations: store})
	withSupport(f)(svc)
	api := serverapi.New(serverapi.Config{Keys: serverapi.Keys{{Name: "k", Key: allKey, Scopes: []string{"*"}}}},
		serverapi.Options{Ops: svc, Store: store, Hub: h, Logger: slog.New(slog.DiscardHandler)})
	f.Fuzz(func(t *testing.T, method, path, body string) {
		if !strings.HasPrefix(path, serverapi.Prefix) || strings.ContainsAny(path, " \t\r\n?#%") || strings.ContainsAny(method, " \t\r\n") || method == "" {
			return // not a request line an HTTP server would parse
		}
		req := httptest.NewRequest("GET", "/", strings.NewReader(body))
		req.Method = method
		req.URL.Path = path
		req.Header.Set("Authorization", "Bearer "+allKey)
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		if rec.Code/100 == 3 {
			return // the mux redirects an unclean path (/server/v1/./x) to its clean form
		}
		if rec.Code == 204 {
			if rec.Body.Len() != 0 {
				t.Fatalf("%s %s: 204 with a body %q", method, path, rec.Body.String())
			}
			return
		}
		var env struct {
			Data  json.RawMessage `json:"data"`
			Error *struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil {
			t.Fatalf("%s %s: not the envelope: %q", method, path, rec.Body.String())
		}
		if (env.Data == nil) == (env.Error == nil) {
			t.Fatalf("%s %s: envelope with both or neither: %q", method, path, rec.Body.String())
		}
		if env.Error != nil && env.Error.Code == "internal" {
			t.Fatalf("%s %s %q: internal error", method, path, body)
		}
	})
}

// FuzzAccessNumbers: PUT .../access/{userId} with any acc and ttlSeconds.
// Within the documented ranges (acc 0..15, ttlSeconds 0..MaxTTL) the
// override is stored, with an expiresAt exactly ttlSeconds away (none for
// 0); outside them it is invalid_argument and nothing is stored. (A range
// check done after converting to time.Duration let ttlSeconds 9223372037 and
// more overflow into a permanent override: issue 11.)
func FuzzAccessNumbers(f *testing.F) {
	maxTTL := int64(serverapi.MaxTTL / time.Second)
	for _, s := range [][2]int64{
		{0, 60}, {0, 0}, {15, maxTTL}, {3, maxTTL + 1}, {0, -1}, {16, 60}, {-1, 60},
		{0, 9223372036}, {0, 9223372037}, {0, 9223372037 * 2}, {0, math.MaxInt64}, {0, math.MinInt64},
		{math.MaxInt64, 1}, {0, 18446744074},
	} {
		f.Add(s[0], s[1])
	}
	h := hub.New(hub.Config{})
	svc := ops.New(ops.Config{}, nil, nil, h, slog.New(slog.DiscardHandler), nil)
	store := access.New(access.Config{MaxEntries: 10})
	svc.SetGuards(ops.Guards{Access: store, Threads: store, Revocations: store})
	api := serverapi.New(serverapi.Config{Keys: serverapi.Keys{{Name: "k", Key: allKey, Scopes: []string{"*"}}}},
		serverapi.Options{Ops: svc, Store: store, Hub: h, Logger: slog.New(slog.DiscardHandler)})
	const path = "/server/v1/threads/t/access/u"
	do := func(method, body string) (int, map[string]any) {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+allKey)
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		var env map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &env)
		return rec.Code, env
	}
	f.Fuzz(func(t *testing.T, acc, ttl int64) {
		defer do("DELETE", "")
		before := time.Now()
		status, env := do("PUT", fmt.Sprintf(`{"acc":%d,"ttlSeconds":%d}`, acc, ttl))
		after := time.Now()
		if acc < 0 || acc > 15 || ttl < 0 || ttl > maxTTL {
			if status != 400 || env["error"].(map[string]any)["code"] != "invalid_argument" {
				t.Fatalf("acc %d ttlSeconds %d: %d %v, want 400 invalid_argument", acc, ttl, status, env)
			}
			if status, _ := do("GET", ""); status != 404 {
				t.Fatalf("acc %d ttlSeconds %d: refused, yet an override is stored (%d)", acc, ttl, status)
			}
			return
		}
		if status != 200 {
			t.Fatalf("acc %d ttlSeconds %d: %d %v", acc, ttl, status, env)
		}
		data := env["data"].(map[string]any)
		exp, has := data["expiresAt"].(string)
		if has != (ttl > 0) {
			t.Fatalf("ttlSeconds %d: expiresAt %q", ttl, exp)
		}
		if !has {
			return
		}
		at, err := time.Parse(time.RFC3339Nano, exp)
		d := time.Duration(ttl) * time.Second
		if err != nil || at.Before(before.Add(d).Truncate(time.Second)) || at.After(after.Add(d)) {
			t.Fatalf("ttlSeconds %d: expiresAt %s, want %s from now", ttl, exp, d)
		}
	})
}
