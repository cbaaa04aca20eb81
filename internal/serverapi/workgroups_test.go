package serverapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ecbridge/ecb/internal/auth"
	"github.com/ecbridge/ecb/internal/ops"
	"github.com/ecbridge/ecb/internal/support"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// withSupport enables customer support with the workgroup "support".
func withSupport(tb testing.TB) func(*ops.Service) {
	return func(svc *ops.Service) {
		err := svc.EnableSupport([]support.Workgroup{{Name: "support", DisplayName: "Customer support",
			Strategy: support.RoundRobin, OfferTimeout: 30 * time.Second, MaxChats: 4, Open: true}}, time.Minute)
		if err != nil {
			tb.Fatal(err)
		}
	}
}

// closedNow are opening hours that are closed today (UTC): every day all
// day, but yesterday, today and tomorrow.
func closedNow() (*ecbserver.WorkgroupHours, time.Time) {
	today := time.Now().UTC().Truncate(24 * time.Hour)
	var dates []string
	for i := -1; i <= 1; i++ {
		dates = append(dates, today.AddDate(0, 0, i).Format(time.DateOnly))
	}
	week := map[string][]string{}
	for _, d := range []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"} {
		week[d] = []string{"00:00-24:00"}
	}
	return &ecbserver.WorkgroupHours{Timezone: "UTC", Weekly: week, ClosedDates: dates}, today.AddDate(0, 0, 2)
}

// call sends a raw request and returns the status, the error code and message.
func callRaw(tb testing.TB, method, url, key, body string) (status int, code, msg string) {
	tb.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Authorization", "Bearer "+key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusNoContent {
		if len(raw) != 0 {
			tb.Fatalf("204 with a body %q", raw)
		}
		return resp.StatusCode, "", ""
	}
	var env struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		tb.Fatalf("%s %s: not the envelope: %q", method, url, raw)
	}
	if env.Error == nil {
		return resp.StatusCode, "", ""
	}
	return resp.StatusCode, env.Error.Code, env.Error.Message
}

func TestWorkgroupsThroughTheSDK(t *testing.T) {
	e := newEnv(t, withSupport(t))
	ctx := context.Background()
	c := e.client(t, allKey)
	eng := e.svc.Support()

	list, err := c.ListWorkgroups(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "support" || list[0].OfferTimeoutSeconds != 30 || !list[0].Status.Open ||
		list[0].Hours != nil || list[0].RequiredFields == nil {
		t.Fatalf("list %+v %v", list, err)
	}
	// An agent whose token names sales, available before sales exists.
	if _, err := eng.SetAvailability("ann", []string{"support", "sales"}, true, nil); err != nil {
		t.Fatal(err)
	}
	four := false
	w, created, err := c.PutWorkgroup(ctx, "sales", ecbserver.WorkgroupSettings{DisplayName: "Sales", Strategy: "least-busy",
		OfferTimeoutSeconds: 15, MaxChats: 2, Open: &four, RequiredFields: []string{"question", "email"},
		Hours: &ecbserver.WorkgroupHours{Timezone: "Europe/Berlin", Weekly: map[string][]string{"mon": {"13:00-17:30", "09:00-12:00"}},
			ClosedDates: []string{"2026-12-25"}}})
	if err != nil || !created {
		t.Fatalf("create: %+v %v %v", w, created, err)
	}
	if w.Name != "sales" || w.DisplayName != "Sales" || w.Strategy != "least-busy" || w.OfferTimeoutSeconds != 15 || w.MaxChats != 2 ||
		w.Open || w.Status.Open || w.Status.OpensAt != nil || w.Status.ClosesAt != nil || w.Status.AgentsAvailable != 1 ||
		!slices.Equal(w.RequiredFields, []string{"question", "email"}) || w.Hours == nil ||
		!slices.Equal(w.Hours.Weekly["mon"], []string{"09:00-12:00", "13:00-17:30"}) || w.Hours.Timezone != "Europe/Berlin" {
		t.Fatalf("created %+v", w)
	}
	// Replaced: omitted settings take the support.* defaults.
	w, created, err = c.PutWorkgroup(ctx, "sales", ecbserver.WorkgroupSettings{})
	if err != nil || created {
		t.Fatalf("replace: %v %v", created, err)
	}
	if w.DisplayName != "sales" || w.Strategy != "round-robin" || w.OfferTimeoutSeconds != 20 || w.MaxChats != 3 || !w.Open ||
		w.Hours != nil || len(w.RequiredFields) != 0 || !w.Status.Open || w.Status.AgentsAvailable != 1 {
		t.Fatalf("replaced %+v", w)
	}
	list, _ = c.ListWorkgroups(ctx)
	if len(list) != 2 || list[0].Name != "sales" || list[1].Name != "support" {
		t.Fatalf("list %+v", list)
	}

	// Closed by its hours: status and support.ask say so.
	hours, opens := closedNow()
	if w, _, err = c.PutWorkgroup(ctx, "sales", ecbserver.WorkgroupSettings{Hours: hours}); err != nil {
		t.Fatal(err)
	}
	if !w.Open || w.Status.Open || w.Status.OpensAt == nil || w.Status.OpensAt.Before(opens.Add(-24*time.Hour)) || w.Status.ClosesAt != nil {
		t.Fatalf("closed by hours %+v", w.Status)
	}
	visitor := ops.Caller{User: &auth.User{ID: "vic"}}
	st, err := e.svc.GetWorkgroupStatus(ctx, visitor, ops.GetWorkgroupStatusRequest{Workgroup: "sales"})
	if err != nil || st.Open || st.OpensAt == nil || !st.OpensAt.Equal(*w.Status.OpensAt) || st.ClosesAt != nil {
		t.Fatalf("getWorkgroupStatus %+v %v", st, err)
	}
	if _, err := e.svc.SupportAsk(ctx, visitor, ops.SupportAskRequest{Workgroup: "sales", Question: "q"}); err == nil ||
		!strings.Contains(err.Error(), "opens at") {
		t.Fatalf("ask while closed: %v", err)
	}
	// Open all week but one day in 100: open now, closing that day.
	holiday := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, 100)
	hours.ClosedDates = []string{holiday.Format(time.DateOnly)}
	if w, _, err = c.PutWorkgroup(ctx, "sales", ecbserver.WorkgroupSettings{Hours: hours}); err != nil {
		t.Fatal(err)
	}
	if !w.Status.Open || w.Status.ClosesAt == nil || !w.Status.ClosesAt.Equal(holiday) {
		t.Fatalf("open all week %+v", w.Status)
	}
	if _, err := e.svc.SupportAsk(ctx, visitor, ops.SupportAskRequest{Workgroup: "sales", Question: "q"}); err != nil {
		t.Fatalf("ask while open: %v", err)
	}

	// Delete: refused while a request waits, then done.
	var apiErr *ecbserver.ServerAPIError
	if err := c.DeleteWorkgroup(ctx, "sales"); !errors.As(err, &apiErr) || apiErr.Status != 409 || apiErr.Code != "conflict" {
		t.Fatalf("delete with a waiting request: %v", err)
	}
	for _, r := range eng.Requests("vic") {
		if err := eng.Cancel("vic", r.ID); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.DeleteWorkgroup(ctx, "sales"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := c.GetWorkgroup(ctx, "sales"); apiCode(err) != "not_found" {
		t.Fatalf("get deleted: %v", err)
	}
	if err := c.DeleteWorkgroup(ctx, "sales"); apiCode(err) != "not_found" {
		t.Fatalf("delete again: %v", err)
	}
	if st, _ := eng.SetAvailability("ann", []string{"support", "sales"}, true, nil); !slices.Equal(st.Workgroups, []string{"support"}) {
		t.Fatalf("ann still serves %v", st.Workgroups)
	}
	if _, created, _ := c.PutWorkgroup(ctx, "sales", ecbserver.WorkgroupSettings{}); !created {
		t.Fatal("re-created sales not reported created")
	}
	// Live chats (none here: test/e2e lists one), and an unknown workgroup.
	if cs, err := c.ListConversations(ctx, "sales"); err != nil || cs == nil || len(cs) != 0 {
		t.Fatalf("conversations %+v %v", cs, err)
	}
	if _, err := c.ListConversations(ctx, "nope"); apiCode(err) != "not_found" {
		t.Fatalf("conversations of an unknown workgroup: %v", err)
	}
}

func TestWorkgroupScopes(t *testing.T) {
	e := newEnv(t, withSupport(t))
	ctx := context.Background()
	reader, writer, presence := e.client(t, wgReadKey), e.client(t, wgWriteKey), e.client(t, presenceKey)
	if _, err := reader.ListWorkgroups(ctx); err != nil {
		t.Fatalf("read with workgroups:read: %v", err)
	}
	if _, err := reader.GetWorkgroup(ctx, "support"); err != nil {
		t.Fatalf("get with workgroups:read: %v", err)
	}
	if _, _, err := reader.PutWorkgroup(ctx, "x", ecbserver.WorkgroupSettings{}); apiCode(err) != "forbidden" {
		t.Fatalf("put with workgroups:read: %v", err)
	}
	if err := reader.DeleteWorkgroup(ctx, "support"); apiCode(err) != "forbidden" {
		t.Fatalf("delete with workgroups:read: %v", err)
	}
	if _, err := writer.GetWorkgroup(ctx, "support"); err != nil {
		t.Fatalf("workgroups:write implies read: %v", err)
	}
	if _, created, err := writer.PutWorkgroup(ctx, "x", ecbserver.WorkgroupSettings{}); err != nil || !created {
		t.Fatalf("put with workgroups:write: %v", err)
	}
	if err := writer.DeleteWorkgroup(ctx, "x"); err != nil {
		t.Fatalf("delete with workgroups:write: %v", err)
	}
	if _, err := presence.ListWorkgroups(ctx); apiCode(err) != "forbidden" {
		t.Fatalf("list with presence:read: %v", err)
	}
	if _, err := writer.UserPresence(ctx, "u"); apiCode(err) != "forbidden" {
		t.Fatalf("presence with workgroups:write: %v", err)
	}
}

func TestWorkgroupRefusals(t *testing.T) {
	e := newEnv(t, withSupport(t))
	base := e.url + "/server/v1/workgroups/"
	cases := []struct {
		name, method, path, body string
		status                   int
		code, field              string // field: in the message
	}{
		{"unknown workgroup", "GET", "nope", "", 404, "not_found", "nope"},
		{"delete unknown", "DELETE", "nope", "", 404, "not_found", "nope"},
		{"name too long", "GET", strings.Repeat("n", 129), "", 400, "invalid_argument", "name"},
		{"name with a control character", "PUT", "a%01b", `{}`, 400, "invalid_argument", "name"},
		{"no body", "PUT", "x", "", 400, "invalid_argument", "body"},
		{"not an object", "PUT", "x", `[1]`, 400, "invalid_argument", "object"},
		{"unknown field", "PUT", "x", `{"offerTimeout":5}`, 400, "invalid_argument", "offerTimeout"},
		{"wrong type", "PUT", "x", `{"maxChats":"2"}`, 400, "invalid_argument", "maxChats"},
		{"strategy", "PUT", "x", `{"strategy":"random"}`, 400, "invalid_argument", "strategy"},
		{"zero offer timeout", "PUT", "x", `{"offerTimeoutSeconds":0}`, 400, "invalid_argument", "offerTimeoutSeconds"},
		{"huge offer timeout", "PUT", "x", `{"offerTimeoutSeconds":100000}`, 400, "invalid_argument", "offerTimeoutSeconds"},
		{"negative maxChats", "PUT", "x", `{"maxChats":-1}`, 400, "invalid_argument", "maxChats"},
		{"displayName control character", "PUT", "x", `{"displayName":"a\u0007"}`, 400, "invalid_argument", "displayName"},
		{"empty required field", "PUT", "x", `{"requiredFields":["question",""]}`, 400, "invalid_argument", "requiredFields[1]"},
		{"repeated required field", "PUT", "x", `{"requiredFields":["email","email"]}`, 400, "invalid_argument", "requiredFields[1]"},
		{"unknown zone", "PUT", "x", `{"hours":{"timezone":"Mars/Olympus","weekly":{"mon":["09:00-17:00"]}}}`, 400, "invalid_argument", "hours.timezone"},
		{"bad range", "PUT", "x", `{"hours":{"weekly":{"mon":["09:00-17:00","18:00-17:00"]}}}`, 400, "invalid_argument", "hours.weekly.mon[1]"},
		{"overlap", "PUT", "x", `{"hours":{"weekly":{"tue":["09:00-12:00","11:00-13:00"]}}}`, 400, "invalid_argument", "hours.weekly.tue"},
		{"unknown day", "PUT", "x", `{"hours":{"weekly":{"monday":["09:00-17:00"]}}}`, 400, "invalid_argument", "hours.weekly"},
		{"no hours at all", "PUT", "x", `{"hours":{}}`, 400, "invalid_argument", "hours.weekly"},
		{"bad date", "PUT", "x", `{"hours":{"weekly":{"mon":["09:00-17:00"]},"closedDates":["tomorrow"]}}`, 400, "invalid_argument", "hours.closedDates[0]"},
		{"unknown hours field", "PUT", "x", `{"hours":{"weekly":{"mon":["09:00-17:00"]},"holidays":[]}}`, 400, "invalid_argument", "holidays"},
		{"queue without a name", "PUT", "x", `{"queues":[{"match":{"topic":"a"}}]}`, 400, "invalid_argument", "queues[0]"},
		{"queue twice", "PUT", "x", `{"queues":[{"queue":"a"},{"queue":"a"}]}`, 400, "invalid_argument", "queues[1]"},
		{"queue match not a string", "PUT", "x", `{"queues":[{"queue":"a","match":{"n":1}}]}`, 400, "invalid_argument", "match"},
		{"queue agent repeated", "PUT", "x", `{"queues":[{"queue":"a","agents":["u","u"]}]}`, 400, "invalid_argument", "agents[1]"},
		{"unknown queue field", "PUT", "x", `{"queues":[{"queue":"a","overflow":true}]}`, 400, "invalid_argument", "overflow"},
		{"oversized", "PUT", "x", `{"displayName":"` + strings.Repeat("x", 5000) + `"}`, 413, "payload_too_large", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, code, msg := callRaw(t, tc.method, base+tc.path, allKey, tc.body)
			if status != tc.status || code != tc.code || !strings.Contains(msg, tc.field) {
				t.Fatalf("%d %s %q, want %d %s naming %q", status, code, msg, tc.status, tc.code, tc.field)
			}
		})
	}
	if _, err := e.svc.Support().Workgroup("x"); err == nil {
		t.Fatal("a refused PUT created the workgroup")
	}
	// Delete while a request waits: 409.
	if _, _, _, err := e.svc.Support().Ask(support.Visitor{ID: "v"}, "support", "q", nil, ""); err != nil {
		t.Fatal(err)
	}
	if status, code, msg := callRaw(t, "DELETE", base+"support", allKey, ""); status != 409 || code != "conflict" || !strings.Contains(msg, "waiting") {
		t.Fatalf("delete with a waiting request: %d %s %s", status, code, msg)
	}
	// PUT answers 201, then 200; DELETE 204.
	if status, _, _ := callRaw(t, "PUT", base+"fresh", allKey, `{"open":false}`); status != 201 {
		t.Fatalf("create: %d", status)
	}
	if status, _, _ := callRaw(t, "PUT", base+"fresh", allKey, `{"open":true}`); status != 200 {
		t.Fatalf("replace: %d", status)
	}
	if status, _, _ := callRaw(t, "DELETE", base+"fresh", allKey, ""); status != 204 {
		t.Fatalf("delete: %d", status)
	}
}

func TestWorkgroupsWithoutSupport(t *testing.T) {
	e := newEnv(t)
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/workgroups", ""}, {"GET", "/workgroups/support", ""}, {"PUT", "/workgroups/support", "{}"}, {"DELETE", "/workgroups/support", ""},
	} {
		status, code, msg := callRaw(t, r.method, e.url+"/server/v1"+r.path, allKey, r.body)
		if status != 404 || code != "not_found" || !strings.Contains(msg, "customer support is not configured") {
			t.Fatalf("%s %s: %d %s %q", r.method, r.path, status, code, msg)
		}
	}
}

// TestWorkgroupQueues: PUT with queues, the settings and the per-queue
// status in the answer, and a change stranding a waiting request refused
// with 409.
func TestWorkgroupQueues(t *testing.T) {
	e := newEnv(t, withSupport(t))
	ctx := context.Background()
	c := e.client(t, allKey)
	eng := e.svc.Support()
	if _, err := eng.SetAvailability("agent1", []string{"support"}, true, nil); err != nil {
		t.Fatal(err)
	}
	w, created, err := c.PutWorkgroup(ctx, "support", ecbserver.WorkgroupSettings{Queues: []ecbserver.WorkgroupQueue{
		{Queue: "billing", Match: map[string]string{"topic": "billing"}, Agents: []string{"agent2"}},
		{Queue: "general", Agents: []string{"agent1", "agent2"}}}})
	if err != nil || created || len(w.Queues) != 2 || w.Queues[0].Match["topic"] != "billing" || w.Queues[1].Agents[0] != "agent1" {
		t.Fatalf("put: %+v %v %v", w, created, err)
	}
	// A billing request waits (agent2 is away): its queue's figures say so.
	r, pos, _, err := eng.Ask(support.Visitor{ID: "v"}, "support", "q", map[string]any{"topic": "billing"}, "")
	if err != nil || r.Queue != "billing" || pos != 1 {
		t.Fatalf("ask: %+v %d %v", r, pos, err)
	}
	got, err := c.GetWorkgroup(ctx, "support")
	if err != nil {
		t.Fatal(err)
	}
	want := []ecbserver.WorkgroupQueueStatus{{Queue: "billing", AgentsAvailable: 0, QueueLength: 1, EstimatedWait: 60},
		{Queue: "general", AgentsAvailable: 1, QueueLength: 0, EstimatedWait: 30}}
	if !slices.Equal(got.Status.Queues, want) || got.Status.QueueLength != 1 || got.Status.AgentsAvailable != 1 {
		t.Fatalf("status %+v, want queues %+v", got.Status, want)
	}
	// Without a catch-all the waiting request would match nothing: 409, unchanged.
	status, code, msg := callRaw(t, "PUT", e.url+"/server/v1/workgroups/support", allKey, `{"queues":[{"queue":"sales","match":{"topic":"sales"}}]}`)
	if status != 409 || code != "conflict" || !strings.Contains(msg, "catch-all") {
		t.Fatalf("stranding put: %d %s %q", status, code, msg)
	}
	if got, _ := c.GetWorkgroup(ctx, "support"); len(got.Queues) != 2 {
		t.Fatalf("refused put changed the queues: %+v", got.Queues)
	}
	// Without queues again: the figures are gone, the request stays.
	w, _, err = c.PutWorkgroup(ctx, "support", ecbserver.WorkgroupSettings{})
	if err != nil || len(w.Queues) != 0 || len(w.Status.Queues) != 0 || w.Status.QueueLength != 1 {
		t.Fatalf("put without queues: %+v %v", w, err)
	}
	// agent1 serves the whole workgroup now: the request was offered at once.
	if rs := eng.Requests("v"); len(rs) != 1 || rs[0].Queue != "" || rs[0].State != support.StateOffered {
		t.Fatalf("request after the put: %+v", rs)
	}
}
