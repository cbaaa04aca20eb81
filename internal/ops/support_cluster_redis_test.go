package ops_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ecbridge/ecb/internal/auth"
	"github.com/ecbridge/ecb/internal/cluster"
	"github.com/ecbridge/ecb/internal/hub"
	"github.com/ecbridge/ecb/internal/ops"
	"github.com/ecbridge/ecb/internal/redistest"
	"github.com/ecbridge/ecb/internal/support"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// watcher is a connection that tells when a push arrives.
type watcher struct {
	mu  sync.Mutex
	got []*hub.Push
	ch  chan struct{}
}

func newWatcher() *watcher { return &watcher{ch: make(chan struct{}, 1)} }

func (w *watcher) Deliver(p *hub.Push) bool {
	w.mu.Lock()
	w.got = append(w.got, p)
	w.mu.Unlock()
	select {
	case w.ch <- struct{}{}:
	default:
	}
	return true
}
func (w *watcher) Close(hub.Reason) {}

// await returns the first push named event, waiting for it.
func (w *watcher) await(tb testing.TB, event string) *hub.Push {
	tb.Helper()
	deadline := time.After(15 * time.Second)
	for {
		w.mu.Lock()
		for _, p := range w.got {
			if p.Event == event {
				w.mu.Unlock()
				return p
			}
		}
		w.mu.Unlock()
		select {
		case <-w.ch:
		case <-deadline:
			tb.Fatalf("no %s push", event)
		}
	}
}

// clusterNode is one in-process node: a Service on a hub on a cluster.Node,
// its support routed by the cluster's owner.
type clusterNode struct {
	f    *fixture
	node *cluster.Node
	stop context.CancelFunc
	done chan struct{}
}

func startSupportNode(tb testing.TB, base *fixture, cfg cluster.Config) *clusterNode {
	tb.Helper()
	return startSupportNodeWith(tb, base, cfg, nil)
}

// startSupportNodeWith is startSupportNode with setup run before the node runs.
func startSupportNodeWith(tb testing.TB, base *fixture, cfg cluster.Config, setup func(*clusterNode)) *clusterNode {
	tb.Helper()
	n, err := cluster.Open(context.Background(), cfg, nil)
	if err != nil {
		tb.Fatal(err)
	}
	h := hub.New(hub.Config{Broker: n.Broker, Controller: n.Controller, NodeID: n.ID()})
	v, err := auth.NewVerifierFromKeys(auth.Config{Audience: "ecb-test"}, &testKey.PublicKey)
	if err != nil {
		tb.Fatal(err)
	}
	f := &fixture{svc: ops.New(ops.Config{MaxMessageBytes: 64}, base.backend, v, h, slog.New(slog.DiscardHandler), nil),
		hub: h, backend: base.backend, signer: base.signer}
	f.svc.EnableSupportCluster([]support.Workgroup{{Name: "support", Strategy: support.RoundRobin, OfferTimeout: time.Minute, MaxChats: 2, Open: true}},
		time.Minute, n.SupportShare(100*time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	n.Start(ctx)
	c := &clusterNode{f: f, node: n, stop: cancel, done: make(chan struct{})}
	if setup != nil {
		setup(c)
	}
	go func() {
		defer close(c.done)
		f.svc.RunSupportCluster(ctx)
	}()
	tb.Cleanup(func() {
		cancel()
		<-c.done
		n.Close()
	})
	return c
}

// Two nodes: the agent on the node that does not own the engine gets the
// offer for a visitor on the owner; the owner dies (its Redis connections
// gone: no renewal, no release); the other node takes the engine over from
// the saved state, and the agent accepts the pending offer there, once.
func TestSupportAcrossNodesSurvivesTheOwner(t *testing.T) {
	url := redistest.URL(t)
	cfg := cluster.Config{RedisURL: url, Prefix: redistest.Prefix(t, url, "ecbtest-ops"), Partitions: 2, ProbeInterval: 100 * time.Millisecond}
	base := newFixture(t)
	a := startSupportNode(t, base, cfg)
	awaitOwner(t, a)
	b := startSupportNode(t, base, cfg)
	if b.f.svc.SupportOwner() {
		t.Fatal("two owners")
	}
	ctx := context.Background()
	w := newWatcher()
	agent := b.f.callerWith(t, ecbserver.UserTokenParams{ID: "ag", Name: "ag", Roles: []string{"agent"}, Workgroups: []string{"support"}}, w)
	visitor := a.f.callerWith(t, ecbserver.UserTokenParams{ID: "vi", Name: "vi"}, newWatcher())
	awaitCall(t, func() error {
		_, err := b.f.svc.AgentSetAvailability(ctx, agent, ops.SetAvailabilityRequest{Available: true})
		return err
	})
	asked, err := a.f.svc.SupportAsk(ctx, visitor, ops.SupportAskRequest{Workgroup: "support", Question: "q"})
	if err != nil {
		t.Fatal(err)
	}
	var offer ops.OfferPush
	if err := json.Unmarshal(w.await(t, ops.EventOffer).Data, &offer); err != nil || offer.RequestID != asked.RequestID {
		t.Fatalf("offer %+v %v", offer, err)
	}

	a.node.Close() // the owner's Redis is gone: it can neither renew nor release
	awaitOwner(t, b)
	var res *ops.OfferAcceptResult
	awaitCall(t, func() error {
		res, err = b.f.svc.OfferAccept(ctx, agent, ops.OfferRef{OfferID: offer.OfferID})
		return err
	})
	if res.RequestID != asked.RequestID || res.Thread.ID == "" {
		t.Fatalf("accepted %+v", res)
	}
	if _, err := b.f.svc.OfferAccept(ctx, agent, ops.OfferRef{OfferID: offer.OfferID}); codeOf(err) != "conflict" {
		t.Fatalf("second accept: %v", err)
	}
	w.await(t, ops.EventInvitation)
}

func awaitOwner(tb testing.TB, n *clusterNode) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !n.f.svc.SupportOwner() {
		if time.Now().After(deadline) {
			tb.Fatal("the node did not become the owner")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// awaitCall calls f until it does not answer unavailable (no owner yet).
func awaitCall(tb testing.TB, f func() error) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if codeOf(err) != "unavailable" || time.Now().After(deadline) {
			tb.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
