package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// serverAPI is the Server API client of a demo, with the key `ecb demo`
// generated and wrote to <data>/server-api-key.
func (d *demo) serverAPI(tb testing.TB) *ecbserver.ServerAPIClient {
	tb.Helper()
	raw, err := os.ReadFile(filepath.Join(d.Data, "server-api-key"))
	if err != nil {
		tb.Fatal(err)
	}
	c, err := ecbserver.NewServerAPIClient(d.ECB, strings.TrimSpace(string(raw)), ecbserver.ServerAPIOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// await returns the next event named one of names, skipping the others
// (presence and typing pushes come and go with connections).
func (s *sseStream) await(tb testing.TB, names ...string) sseEvent {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ev := s.next(tb, time.Until(deadline))
		if slices.Contains(names, ev.Event) {
			return ev
		}
	}
}

// expectNoneOf checks that no event named one of names arrives within wait.
func (s *sseStream) expectNoneOf(tb testing.TB, wait time.Duration, names ...string) {
	tb.Helper()
	deadline := time.After(wait)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				return
			}
			if slices.Contains(names, ev.Event) {
				tb.Fatalf("unexpected event %s: %s", ev.Event, ev.Data)
			}
		case <-deadline:
			return
		}
	}
}

type threadChange struct {
	ThreadID  string     `json:"threadId"`
	Change    string     `json:"change"`
	Acc       *int       `json:"acc"`
	ExpiresAt *time.Time `json:"expiresAt"`
}

func decodeEvent[T any](tb testing.TB, ev sseEvent) T {
	tb.Helper()
	var v T
	if err := json.Unmarshal(ev.Data, &v); err != nil {
		tb.Fatalf("%s: %v: %s", ev.Event, err, ev.Data)
	}
	return v
}

func apiErrCode(err error) string {
	var e *ecbserver.ServerAPIError
	if errors.As(err, &e) {
		return e.Code
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

// listening opens an SSE stream for user and makes it listen to a thread.
func (d *demo) listening(tb testing.TB, token, threadID string) (*sseStream, threadPage) {
	tb.Helper()
	s := openStream(tb, d.ECB, token)
	p := decodeData[threadPage](tb, call(tb, "GET", d.ECB+"/v1/threads/"+threadID, nil, bearer(token), "ECB-Stream: "+s.ID, "ECB-Thread-Token: "+d.threadTokenFor(tb, token, threadID)))
	return s, p
}

// threadTokenFor finds the user's threadToken in getThreads.
func (d *demo) threadTokenFor(tb testing.TB, token, threadID string) string {
	tb.Helper()
	for _, st := range decodeData[page[signedThread]](tb, call(tb, "GET", d.ECB+"/v1/threads?pageSize=100", nil, bearer(token))).Items {
		if st.Thread.ID == threadID {
			return st.ThreadToken
		}
	}
	tb.Fatalf("thread %s is not among the user's threads", threadID)
	return ""
}

func (d *demo) send(tb testing.TB, token, threadID, body string) *response {
	tb.Helper()
	return call(tb, "POST", d.ECB+"/v1/threads/"+threadID+"/messages", map[string]any{"body": body}, bearer(token), "ECB-Thread-Token: "+d.threadTokenFor(tb, token, threadID))
}

// stored is the number of messages the backend holds for the thread.
func (d *demo) stored(tb testing.TB, token, threadID string) int {
	tb.Helper()
	return len(decodeData[threadPage](tb, call(tb, "GET", d.ECB+"/v1/threads/"+threadID+"?limit=200", nil, bearer(token), "ECB-Thread-Token: "+d.threadTokenFor(tb, token, threadID))).Messages)
}

func (d *demo) healthy(tb testing.TB) {
	tb.Helper()
	resp, err := http.Get(d.ECB + "/healthz")
	if err != nil {
		tb.Fatalf("healthz: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != "ok" {
		tb.Fatalf("healthz: %d %q", resp.StatusCode, body)
	}
}

// TestTemporaryBanTakesEffectLive: the backend bans bob from a thread for an
// hour. At once his listening stream is told and stops getting the thread's
// pushes, his old threadToken reads and writes nothing, and the backend is
// never asked; lifting the ban lets him back.
func TestTemporaryBanTakesEffectLive(t *testing.T) {
	d := startDemo(t)
	ctx := context.Background()
	api := d.serverAPI(t)
	alice, bob := d.login(t, "alice"), d.login(t, "bob")
	c := decodeData[created](t, call(t, "POST", d.ECB+"/v1/threads", map[string]any{"participants": []string{"bob"}, "message": map[string]any{"body": "hello"}}, bearer(alice)))
	id := c.Thread.ID
	bobStream, bobPage := d.listening(t, bob, id)
	bobOther := openStream(t, d.ECB, bob) // another tab, not listening to the thread
	oldBobToken := bobPage.ThreadToken

	o, err := api.SetAccess(ctx, id, "bob", ecbserver.AccessNone, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if o.Detached == nil || *o.Detached != 1 || o.ExpiresAt == nil {
		t.Fatalf("override %+v", o)
	}
	for _, s := range []*sseStream{bobStream, bobOther} {
		ch := decodeEvent[threadChange](t, s.await(t, "thread"))
		if ch.ThreadID != id || ch.Change != "access" || ch.Acc == nil || *ch.Acc != 0 || ch.ExpiresAt == nil {
			t.Fatalf("bob was told %+v", ch)
		}
	}
	d.send(t, alice, id, "bob must not see this")
	bobStream.expectNoneOf(t, 300*time.Millisecond, "message")

	before := d.stored(t, alice, id)
	r := call(t, "GET", d.ECB+"/v1/threads/"+id, nil, bearer(bob), "ECB-Stream: "+bobStream.ID, "ECB-Thread-Token: "+oldBobToken)
	if r.Status != 403 || r.code() != "forbidden" {
		t.Fatalf("banned bob reading with his old threadToken: %d %s", r.Status, r.code())
	}
	r = call(t, "POST", d.ECB+"/v1/threads/"+id+"/messages", map[string]any{"body": "let me in"}, bearer(bob), "ECB-Thread-Token: "+oldBobToken)
	if r.Status != 403 || r.code() != "forbidden" {
		t.Fatalf("banned bob writing: %d %s", r.Status, r.code())
	}
	// A new connection does not get around it.
	again := openStream(t, d.ECB, bob)
	if r = call(t, "GET", d.ECB+"/v1/threads/"+id, nil, bearer(bob), "ECB-Stream: "+again.ID, "ECB-Thread-Token: "+oldBobToken); r.code() != "forbidden" {
		t.Fatalf("banned bob on a new stream: %s", r.code())
	}
	if n := d.stored(t, alice, id); n != before {
		t.Fatalf("the backend stored %d messages during the ban, want %d", n, before)
	}
	got, err := api.GetAccess(ctx, id, "bob")
	if err != nil || got.Acc != 0 || got.ExpiresAt == nil {
		t.Fatalf("GET override: %+v %v", got, err)
	}
	info, err := api.ThreadInfo(ctx, id)
	if err != nil || slices.Contains(info.Users, "bob") {
		t.Fatalf("thread info during the ban: %+v %v", info, err)
	}

	// Lifted: bob is told, may read and listen again, and gets pushes.
	if deleted, err := api.DeleteAccess(ctx, id, "bob"); err != nil || !deleted {
		t.Fatalf("delete: %v %v", deleted, err)
	}
	if ch := decodeEvent[threadChange](t, bobStream.await(t, "thread")); ch.Change != "access" || ch.Acc != nil {
		t.Fatalf("lifting told %+v", ch)
	}
	if _, err := api.GetAccess(ctx, id, "bob"); apiErrCode(err) != "not_found" {
		t.Fatalf("GET after delete: %v", err)
	}
	decodeData[threadPage](t, call(t, "GET", d.ECB+"/v1/threads/"+id, nil, bearer(bob), "ECB-Stream: "+bobStream.ID, "ECB-Thread-Token: "+oldBobToken))
	d.send(t, alice, id, "welcome back")
	if m := decodeEvent[messagePush](t, bobStream.await(t, "message")); m.Message.Body != "welcome back" {
		t.Fatalf("bob got %q", m.Message.Body)
	}
	d.healthy(t)
}

// TestReadOnlyOverride: bob loses write only; he keeps receiving and his
// next send fails with forbidden.
func TestReadOnlyOverride(t *testing.T) {
	d := startDemo(t)
	api := d.serverAPI(t)
	alice, bob := d.login(t, "alice"), d.login(t, "bob")
	c := decodeData[created](t, call(t, "POST", d.ECB+"/v1/threads", map[string]any{"participants": []string{"bob"}, "message": map[string]any{"body": "hello"}}, bearer(alice)))
	bobStream, _ := d.listening(t, bob, c.Thread.ID)
	if _, err := api.SetAccess(context.Background(), c.Thread.ID, "bob", ecbserver.AccessRead, 0); err != nil {
		t.Fatal(err)
	}
	if ch := decodeEvent[threadChange](t, bobStream.await(t, "thread")); ch.Acc == nil || *ch.Acc != 1 || ch.ExpiresAt != nil {
		t.Fatalf("told %+v", ch)
	}
	if r := d.send(t, bob, c.Thread.ID, "can I?"); r.Status != 403 || r.code() != "forbidden" {
		t.Fatalf("read-only bob writing: %d %s", r.Status, r.code())
	}
	d.send(t, alice, c.Thread.ID, "you can read this")
	if m := decodeEvent[messagePush](t, bobStream.await(t, "message")); m.Message.Body != "you can read this" {
		t.Fatalf("bob got %q", m.Message.Body)
	}
}

// TestSystemMessagesAndThreadLifecycle: the backend publishes a system
// message (pushed with the next offset), closes the thread (sends refused
// with conflict, nothing stored), reopens it, then deletes it (listeners
// told and detached, the thread refused with not_found).
func TestSystemMessagesAndThreadLifecycle(t *testing.T) {
	d := startDemo(t)
	ctx := context.Background()
	api := d.serverAPI(t)
	alice, bob := d.login(t, "alice"), d.login(t, "bob")
	c := decodeData[created](t, call(t, "POST", d.ECB+"/v1/threads", map[string]any{"participants": []string{"bob"}, "message": map[string]any{"body": "hello"}}, bearer(alice)))
	id := c.Thread.ID
	aliceStream, _ := d.listening(t, alice, id)
	bobStream, bobPage := d.listening(t, bob, id)

	pm, err := api.PublishSystemMessage(ctx, id, ecbserver.SystemMessage{Body: "An agent joined", Data: json.RawMessage(`{"kind":"notice"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if pm.Message.AuthorID != "system" || pm.Message.Offset != bobPage.Offset+1 || pm.Epoch != bobPage.Epoch {
		t.Fatalf("published %+v (epoch %s), bob's page was at %s/%d", pm.Message, pm.Epoch, bobPage.Epoch, bobPage.Offset)
	}
	for _, s := range []*sseStream{aliceStream, bobStream} {
		m := decodeEvent[messagePush](t, s.await(t, "message"))
		if m.Message.ID != pm.Message.ID || m.Message.AuthorID != "system" || m.Offset != pm.Message.Offset {
			t.Fatalf("pushed %+v", m)
		}
	}

	before := d.stored(t, alice, id)
	if r, err := api.ThreadEvent(ctx, id, ecbserver.ThreadClosed, nil); err != nil || r.Told != 2 {
		t.Fatalf("close: %+v %v", r, err)
	}
	for _, s := range []*sseStream{aliceStream, bobStream} {
		if ch := decodeEvent[threadChange](t, s.await(t, "thread")); ch.Change != "closed" {
			t.Fatalf("told %+v", ch)
		}
	}
	if r := d.send(t, alice, id, "after closing"); r.Status != 409 || r.code() != "conflict" {
		t.Fatalf("send to a closed thread: %d %s", r.Status, r.code())
	}
	if n := d.stored(t, alice, id); n != before {
		t.Fatalf("a closed thread got a message stored: %d, want %d", n, before)
	}
	if _, err := api.ThreadEvent(ctx, id, ecbserver.ThreadReopened, nil); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*sseStream{aliceStream, bobStream} {
		if ch := decodeEvent[threadChange](t, s.await(t, "thread")); ch.Change != "reopened" {
			t.Fatalf("told %+v", ch)
		}
	}
	if r := d.send(t, alice, id, "reopened"); r.Status != 201 {
		t.Fatalf("send after reopening: %d %s", r.Status, r.code())
	}
	bobStream.await(t, "message")

	if r, err := api.ThreadEvent(ctx, id, ecbserver.ThreadDeleted, nil); err != nil || r.Told != 2 {
		t.Fatalf("delete: %+v %v", r, err)
	}
	for _, s := range []*sseStream{aliceStream, bobStream} {
		if ch := decodeEvent[threadChange](t, s.await(t, "thread")); ch.Change != "deleted" {
			t.Fatalf("told %+v", ch)
		}
	}
	info, err := api.ThreadInfo(ctx, id)
	if err != nil || info.Listeners != 0 || info.Status != "deleted" {
		t.Fatalf("info after delete: %+v %v", info, err)
	}
	tok := d.threadTokenFor(t, alice, id) // the backend still has it: deleting history is its job
	if r := call(t, "POST", d.ECB+"/v1/threads/"+id+"/messages", map[string]any{"body": "ghost"}, bearer(alice), "ECB-Thread-Token: "+tok); r.Status != 404 || r.code() != "not_found" {
		t.Fatalf("send to a deleted thread: %d %s", r.Status, r.code())
	}
	if r := call(t, "GET", d.ECB+"/v1/threads/"+id, nil, bearer(alice), "ECB-Thread-Token: "+tok); r.code() != "not_found" {
		t.Fatalf("read a deleted thread: %s", r.code())
	}
	if _, err := api.PublishSystemMessage(ctx, id, ecbserver.SystemMessage{Body: "x"}); apiErrCode(err) != "not_found" {
		t.Fatalf("system message into a deleted thread: %v", err)
	}
	bobStream.expectNoneOf(t, 300*time.Millisecond, "message")
	d.healthy(t)
}

// TestDisconnectAndRevoke: the backend disconnects bob and revokes his
// tokens: his streams end with kicked, his old userToken is refused on
// every operation and on reconnect; a token issued afterwards works.
func TestDisconnectAndRevoke(t *testing.T) {
	d := startDemo(t)
	ctx := context.Background()
	api := d.serverAPI(t)
	bob := d.login(t, "bob")
	s1, s2 := openStream(t, d.ECB, bob), openStream(t, d.ECB, bob)
	p, err := api.UserPresence(ctx, "bob")
	if err != nil || !p.Online || p.Connections != 2 {
		t.Fatalf("presence %+v %v", p, err)
	}
	revokedAt := time.Now()
	res, err := api.DisconnectUser(ctx, "bob", revokedAt)
	if err != nil || res.Disconnected != 2 || res.RevokedBefore == nil {
		t.Fatalf("disconnect: %+v %v", res, err)
	}
	for _, s := range []*sseStream{s1, s2} {
		ev := s.await(t, "close")
		if reason := decodeEvent[struct{ Reason string }](t, ev).Reason; reason != "kicked" {
			t.Fatalf("stream closed with %q", reason)
		}
	}
	if p, _ = api.UserPresence(ctx, "bob"); p.Connections != 0 {
		t.Fatalf("after disconnect: %+v", p)
	}
	for _, path := range []string{"/v1/contacts", "/v1/threads", "/v1/events"} {
		if r := call(t, "GET", d.ECB+path, nil, bearer(bob)); r.Status != 401 || r.code() != "unauthenticated" {
			t.Fatalf("GET %s with a revoked token: %d %s", path, r.Status, r.code())
		}
	}
	// A token issued in the revocation's second is refused too: wait for the next one.
	time.Sleep(time.Until(revokedAt.Truncate(time.Second).Add(time.Second)))
	fresh := d.login(t, "bob")
	decodeData[page[user]](t, call(t, "GET", d.ECB+"/v1/contacts", nil, bearer(fresh)))
	openStream(t, d.ECB, fresh)
	d.healthy(t)
}
