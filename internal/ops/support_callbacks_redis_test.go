package ops_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ecbridge/ecb/internal/callbacks"
	"github.com/ecbridge/ecb/internal/cluster"
	"github.com/ecbridge/ecb/internal/ops"
	"github.com/ecbridge/ecb/internal/redistest"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// cbBackend receives the callbacks through the SDK's handler and keeps
// the message.created events: per body, the event ids seen (with repeats).
type cbBackend struct {
	mu  sync.Mutex
	ids map[string][]string
}

func startCallbackBackend(tb testing.TB, secret []byte) (*cbBackend, string) {
	tb.Helper()
	b := &cbBackend{ids: map[string][]string{}}
	srv := httptest.NewServer(ecbserver.NewCallbackHandler(secret, func(_ context.Context, ev ecbserver.CallbackEvent) error {
		if ev.Type != ecbserver.CallbackMessageCreated {
			return nil
		}
		var d struct{ Body string }
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			return err
		}
		b.mu.Lock()
		b.ids[d.Body] = append(b.ids[d.Body], ev.ID)
		b.mu.Unlock()
		return nil
	}, ecbserver.CallbackHandlerOptions{}))
	tb.Cleanup(srv.Close)
	return b, srv.URL
}

// distinct is the number of distinct event ids posted for body.
func (b *cbBackend) distinct(body string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	seen := map[string]bool{}
	for _, id := range b.ids[body] {
		seen[id] = true
	}
	return len(seen)
}

// awaitOne waits until body has a message.created, then a little more,
// and fails unless exactly one event (one id) was posted for it.
func (b *cbBackend) awaitOne(tb testing.TB, body string) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for b.distinct(body) == 0 {
		if time.Now().After(deadline) {
			tb.Fatalf("no message.created for %q", body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if n := b.distinct(body); n != 1 {
		tb.Fatalf("%q: %d message.created events", body, n)
	}
}

func withCallbacks(tb testing.TB, n *clusterNode, url string, secret []byte) {
	tb.Helper()
	p := callbacks.New(context.Background(), callbacks.Config{URL: url, Secret: secret, InitialBackoff: 20 * time.Millisecond})
	n.f.svc.SetCallbacks(p)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Shutdown(ctx)
	})
}

// A support chat's messages are posted as message.created by the node that
// stores them, owner or not, once each (a sendMessage retried through
// another node posts the same event id); after the owner dies, the new
// owner and a node that started after the chat began still post.
func TestSupportMessageCallbacksOnEveryNode(t *testing.T) {
	url := redistest.URL(t)
	cfg := cluster.Config{RedisURL: url, Prefix: redistest.Prefix(t, url, "ecbtest-opscb"), Partitions: 2, ProbeInterval: 100 * time.Millisecond}
	secret := []byte("callback-secret")
	cb, cbURL := startCallbackBackend(t, secret)
	base := newFixture(t)
	start := func() *clusterNode {
		n := startSupportNodeWith(t, base, cfg, func(n *clusterNode) { withCallbacks(t, n, cbURL, secret) })
		return n
	}
	a := start()
	awaitOwner(t, a)
	b := start()
	if b.f.svc.SupportOwner() {
		t.Fatal("two owners")
	}
	ctx := context.Background()
	w := newWatcher()
	agentP := ecbserver.UserTokenParams{ID: "ag", Name: "ag", Roles: []string{"agent"}, Workgroups: []string{"support"}}
	agent := b.f.callerWith(t, agentP, w)
	visitor := a.f.callerWith(t, ecbserver.UserTokenParams{ID: "vi", Name: "vi"}, newWatcher())
	awaitCall(t, func() error {
		_, err := b.f.svc.AgentSetAvailability(ctx, agent, ops.SetAvailabilityRequest{Available: true})
		return err
	})
	if _, err := a.f.svc.SupportAsk(ctx, visitor, ops.SupportAskRequest{Workgroup: "support", Question: "q"}); err != nil {
		t.Fatal(err)
	}
	var offer ops.OfferPush
	if err := json.Unmarshal(w.await(t, ops.EventOffer).Data, &offer); err != nil {
		t.Fatal(err)
	}
	acc, err := b.f.svc.OfferAccept(ctx, agent, ops.OfferRef{OfferID: offer.OfferID})
	if err != nil {
		t.Fatal(err)
	}
	send := func(n *clusterNode, body, clientID string) {
		t.Helper()
		c := n.f.callerWith(t, agentP, nil)
		if _, err := n.f.svc.SendMessage(ctx, c, ops.SendMessageRequest{ThreadToken: acc.ThreadToken,
			MessageInput: ops.MessageInput{Body: body, ClientMessageID: clientID}}); err != nil {
			t.Fatalf("send %q: %v", body, err)
		}
	}

	send(b, "through b", "m1") // not the owner
	cb.awaitOne(t, "through b")
	send(a, "through b", "m1") // the same message retried through the owner
	cb.awaitOne(t, "through b")
	send(a, "through a", "m2")
	cb.awaitOne(t, "through a")

	c := start() // started after the chat began
	send(c, "through c", "m3")
	cb.awaitOne(t, "through c")

	a.node.Close() // the owner's Redis is gone: another node takes over
	deadline := time.Now().Add(10 * time.Second)
	for !b.f.svc.SupportOwner() && !c.f.svc.SupportOwner() {
		if time.Now().After(deadline) {
			t.Fatal("no new owner")
		}
		time.Sleep(10 * time.Millisecond)
	}
	send(b, "through b after", "m4")
	cb.awaitOne(t, "through b after")
	send(c, "through c after", "m5")
	cb.awaitOne(t, "through c after")
}
