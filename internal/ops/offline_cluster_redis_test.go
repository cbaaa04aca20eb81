package ops_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ecbridge/ecb/internal/callbacks"
	"github.com/ecbridge/ecb/internal/cluster"
	"github.com/ecbridge/ecb/internal/ops"
	"github.com/ecbridge/ecb/internal/redistest"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// startNudgeNode is one in-process node on Redis, with presence across the
// nodes and the offline nudge posted to url.
func startNudgeNode(tb testing.TB, base *fixture, cfg cluster.Config, url string, secret []byte) *fixture {
	tb.Helper()
	return startPeopleNodeWith(tb, base, cfg, func(f *fixture) func() {
		p := callbacks.New(context.Background(), callbacks.Config{URL: url, Secret: secret, InitialBackoff: 20 * time.Millisecond})
		f.svc.SetCallbacks(p)
		f.svc.EnableOfflineNudge(context.Background(), callbacks.BatcherConfig{Window: nudgeWindow})
		return func() {
			sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer scancel()
			_ = f.svc.ShutdownOffline(sctx)
			_ = p.Shutdown(sctx)
		}
	})
}

// Two nodes on one Redis: bob is connected to node B only, carol nowhere.
// A message stored through node A nudges carol and not bob (his connection
// is on another node); once bob's connection ends, he is nudged too. A
// sendMessage retried through node B, which the backend answers with the
// message stored already, is nudged once, by A.
func TestOfflineNudgeAcrossNodes(t *testing.T) {
	url := redistest.URL(t)
	cfg := cluster.Config{RedisURL: url, Prefix: redistest.Prefix(t, url, "ecbtest-offline"), ProbeInterval: 100 * time.Millisecond}
	secret := []byte("nudge-secret")
	nb, cbURL := startNudgeBackend(t, secret)
	base := newFixture(t)
	a := startNudgeNode(t, base, cfg, cbURL, secret)
	b := startNudgeNode(t, base, cfg, cbURL, secret)
	ctx := context.Background()
	bobConn := &inbox{}
	b.caller(t, "bob", bobConn)
	awaitOnline(t, a, "bob")

	alice := a.caller(t, "alice", nil)
	ct, err := a.svc.CreateThread(ctx, alice, ops.CreateThreadRequest{Participants: []string{"bob", "carol"}, Message: ops.MessageInput{Body: "first"}})
	if err != nil {
		t.Fatal(err)
	}
	th := ct.Thread.ID
	got := nb.await(t, th, 1, nudgeWindow)
	if n := got[0].Nudge; !slices.Equal(n.UserIDs, []string{"carol"}) || n.MessageID != ct.Message.ID {
		t.Fatalf("bob is connected to node B, carol nowhere: %+v", n)
	}

	send := func(f *fixture, body, clientID string) ecbserver.Message {
		t.Helper()
		res, err := f.svc.SendMessage(ctx, f.caller(t, "alice", nil), ops.SendMessageRequest{ThreadToken: ct.ThreadToken,
			MessageInput: ops.MessageInput{Body: body, ClientMessageID: clientID}})
		if err != nil {
			t.Fatal(err)
		}
		return res.Message
	}
	m := send(a, "once", "c1")
	if again := send(b, "once", "c1"); again.ID != m.ID {
		t.Fatalf("the retry stored %s, not %s", again.ID, m.ID)
	}
	got = nb.await(t, th, 2, nudgeWindow)
	if n := got[1].Nudge; !slices.Equal(n.UserIDs, []string{"carol"}) || !slices.Equal(n.MessageIDs, []string{m.ID}) {
		t.Fatalf("the retried message's nudge: %+v", n)
	}

	b.hub.Unregister(bobConn)
	awaitOffline(t, a, "bob")
	m2 := send(a, "bob left", "")
	got = nb.await(t, th, 3, nudgeWindow)
	if n := got[2].Nudge; !slices.Equal(n.UserIDs, []string{"bob", "carol"}) || n.MessageID != m2.ID {
		t.Fatalf("after bob's connection ended: %+v", n)
	}
}

func awaitOnline(tb testing.TB, f *fixture, userID string) { awaitShow(tb, f, userID, true) }

func awaitOffline(tb testing.TB, f *fixture, userID string) { awaitShow(tb, f, userID, false) }

// awaitShow waits until f's node sees userID online (or offline).
func awaitShow(tb testing.TB, f *fixture, userID string, online bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ps, err := f.svc.Presence().Get(context.Background(), []string{userID})
		if err == nil && (ps[0].Show != "offline") == online {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s online=%v never seen: %v %v", userID, online, ps, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
