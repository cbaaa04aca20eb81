package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// TestWorkgroupOpeningHoursThroughTheServerAPI: a workgroup put through the
// Server API with hours that are closed now is closed for visitors
// (getWorkgroupStatus open: false with opensAt, support.ask refused with
// conflict); put open, it takes requests.
func TestWorkgroupOpeningHoursThroughTheServerAPI(t *testing.T) {
	d := startDemo(t)
	ctx := context.Background()
	api := d.serverAPI(t)
	alice := d.login(t, "alice")

	// Every day, all day, but yesterday, today and tomorrow (UTC).
	today := time.Now().UTC().Truncate(24 * time.Hour)
	week := map[string][]string{}
	for _, day := range []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"} {
		week[day] = []string{"00:00-24:00"}
	}
	hours := &ecbserver.WorkgroupHours{Timezone: "UTC", Weekly: week, ClosedDates: []string{
		today.AddDate(0, 0, -1).Format(time.DateOnly), today.Format(time.DateOnly), today.AddDate(0, 0, 1).Format(time.DateOnly)}}
	w, created, err := api.PutWorkgroup(ctx, "after-hours", ecbserver.WorkgroupSettings{DisplayName: "After hours", Hours: hours})
	if err != nil || !created {
		t.Fatalf("put: %+v %v %v", w, created, err)
	}
	if w.Status.Open || w.Status.OpensAt == nil {
		t.Fatalf("status through the Server API: %+v", w.Status)
	}

	type status struct {
		Workgroup   string     `json:"workgroup"`
		DisplayName string     `json:"displayName"`
		Open        bool       `json:"open"`
		OpensAt     *time.Time `json:"opensAt"`
		ClosesAt    *time.Time `json:"closesAt"`
	}
	st := decodeData[status](t, call(t, "POST", d.ECB+"/v1/ops/getWorkgroupStatus", map[string]string{"workgroup": "after-hours"}, bearer(alice)))
	if st.Open || st.DisplayName != "After hours" || st.OpensAt == nil || !st.OpensAt.Equal(*w.Status.OpensAt) || st.ClosesAt != nil {
		t.Fatalf("getWorkgroupStatus %+v", st)
	}
	if !st.OpensAt.After(time.Now().Add(24*time.Hour)) || st.OpensAt.UTC().Hour() != 0 {
		t.Fatalf("opensAt %s: want a midnight after tomorrow", st.OpensAt)
	}
	ask := map[string]string{"workgroup": "after-hours", "question": "Are you there?"}
	r := call(t, "POST", d.ECB+"/v1/ops/support.ask", ask, bearer(alice))
	if r.Status != 409 || r.code() != "conflict" || !strings.Contains(r.Error.Message, "opens at") {
		t.Fatalf("ask while closed: %d %s %+v", r.Status, r.code(), r.Error)
	}

	// Open: no hours any more.
	if w, created, err = api.PutWorkgroup(ctx, "after-hours", ecbserver.WorkgroupSettings{DisplayName: "After hours"}); err != nil || created || !w.Status.Open {
		t.Fatalf("reopen: %+v %v %v", w, created, err)
	}
	st = decodeData[status](t, call(t, "POST", d.ECB+"/v1/ops/getWorkgroupStatus", map[string]string{"workgroup": "after-hours"}, bearer(alice)))
	if !st.Open || st.OpensAt != nil || st.ClosesAt != nil {
		t.Fatalf("getWorkgroupStatus after reopening %+v", st)
	}
	asked := decodeData[struct {
		RequestID string `json:"requestId"`
		Position  int    `json:"position"`
	}](t, call(t, "POST", d.ECB+"/v1/ops/support.ask", ask, bearer(alice)))
	if asked.RequestID == "" || asked.Position != 1 {
		t.Fatalf("ask while open: %+v", asked)
	}

	// Not removable while the request waits; after the cancel it is.
	if err := api.DeleteWorkgroup(ctx, "after-hours"); apiErrCode(err) != "conflict" {
		t.Fatalf("delete with a waiting request: %v", err)
	}
	decodeData[map[string]any](t, call(t, "POST", d.ECB+"/v1/ops/support.cancel", map[string]string{"requestId": asked.RequestID}, bearer(alice)))
	if err := api.DeleteWorkgroup(ctx, "after-hours"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if r := call(t, "POST", d.ECB+"/v1/ops/getWorkgroupStatus", map[string]string{"workgroup": "after-hours"}, bearer(alice)); r.code() != "not_found" {
		t.Fatalf("status of a removed workgroup: %d %s", r.Status, r.code())
	}
	list, err := api.ListWorkgroups(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "support" {
		t.Fatalf("list %+v %v", list, err)
	}
}

// TestDemoConfigFile: `ecb demo --config FILE` takes ECB settings from a
// file (here a second workgroup, closed today by its opening hours), and
// the demo's own wiring still works (logins, the default workgroup is not
// added when the file names workgroups).
func TestDemoConfigFile(t *testing.T) {
	today := time.Now().UTC().Format(time.DateOnly)
	file := filepath.Join(t.TempDir(), "demo.yaml")
	yaml := `support:
  offerTimeout: 7s
  workgroups:
    - name: billing
      displayName: Billing
      hours:
        timezone: UTC
        weekly: {mon: ["00:00-24:00"], tue: ["00:00-24:00"], wed: ["00:00-24:00"], thu: ["00:00-24:00"], fri: ["00:00-24:00"], sat: ["00:00-24:00"], sun: ["00:00-24:00"]}
        closedDates: ["` + today + `"]
`
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDemo(t, "--config", file)
	ws, err := d.serverAPI(t).ListWorkgroups(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 1 || ws[0].Name != "billing" || ws[0].OfferTimeoutSeconds != 7 || ws[0].Status.Open || ws[0].Status.OpensAt == nil {
		t.Fatalf("workgroups from the file: %+v", ws)
	}
	alice := d.login(t, "alice")
	if r := call(t, "POST", d.ECB+"/v1/ops/support.ask", map[string]any{"workgroup": "billing", "question": "q"}, bearer(alice)); r.code() != "conflict" {
		t.Fatalf("ask on a closed day: %d %s", r.Status, r.code())
	}
}

// TestServerAPIConversations: the backend lists a workgroup's live chats
// through the Server API, as a supervisor would (agents, visitor, thread,
// the visitor's operationId); an unknown workgroup is not_found.
func TestServerAPIConversations(t *testing.T) {
	d := startDemo(t)
	ctx := context.Background()
	api := d.serverAPI(t)
	agent := d.login(t, "agent1")
	alice := d.login(t, "alice")
	stream := openStream(t, d.ECB, agent)
	decodeData[map[string]any](t, call(t, "POST", d.ECB+"/v1/ops/agent.setAvailability", map[string]any{"available": true}, bearer(agent), "ECB-Stream: "+stream.ID))
	asked := decodeData[struct{ RequestID string }](t, call(t, "POST", d.ECB+"/v1/ops/support.ask",
		map[string]any{"workgroup": "support", "question": "Listed?", "operationId": "op-list"}, bearer(alice)))
	var offer struct{ OfferID, RequestID string }
	for offer.OfferID == "" {
		if ev := stream.next(t, 5*time.Second); ev.Event == "offer" {
			_ = json.Unmarshal(ev.Data, &offer)
		}
	}
	accepted := decodeData[struct {
		Thread struct{ ID string }
	}](t, call(t, "POST", d.ECB+"/v1/ops/offer.accept", map[string]any{"offerId": offer.OfferID}, bearer(agent), "ECB-Stream: "+stream.ID))

	cs, err := api.ListConversations(ctx, "support")
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 {
		t.Fatalf("conversations %+v", cs)
	}
	c := cs[0]
	if c.RequestID != asked.RequestID || c.State != "chat" || c.Visitor.ID != "alice" || c.Question != "Listed?" ||
		!slices.Equal(c.Agents, []string{"agent1"}) || len(c.Supervisors) != 0 || c.ThreadID != accepted.Thread.ID ||
		c.OperationID != "op-list" || c.Since.IsZero() {
		t.Fatalf("conversation %+v", c)
	}
	var apiErr *ecbserver.ServerAPIError
	if _, err := api.ListConversations(ctx, "nope"); !errors.As(err, &apiErr) || apiErr.Code != "not_found" {
		t.Fatalf("unknown workgroup: %v", err)
	}
}
