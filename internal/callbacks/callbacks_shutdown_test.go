package callbacks_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ecbridge/ecb/internal/callbacks"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

var shutdownSecret = []byte("fedcba9876543210fedcba9876543210")

// gateReceiver holds every request until open is closed (or the request is
// cancelled), then accepts and records it. arrived gets one value per
// request, when it arrives.
type gateReceiver struct {
	open    chan struct{}
	arrived chan string // the event type
	mu      sync.Mutex
	got     []callbacks.Event
}

func newGateReceiver(tb testing.TB) (*gateReceiver, *httptest.Server) {
	tb.Helper()
	g := &gateReceiver{open: make(chan struct{}), arrived: make(chan string, 16)}
	srv := httptest.NewServer(g)
	tb.Cleanup(srv.Close)
	return g, srv
}

func (g *gateReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := ecbserver.VerifyRequest(shutdownSecret, r, body, time.Now(), time.Minute); err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var ev callbacks.Event
	if err := json.Unmarshal(body, &ev); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	g.arrived <- ev.Type
	select {
	case <-g.open:
	case <-r.Context().Done():
		return
	}
	g.mu.Lock()
	g.got = append(g.got, ev)
	g.mu.Unlock()
}

func (g *gateReceiver) events() []callbacks.Event {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]callbacks.Event(nil), g.got...)
}

type dropCounter struct {
	mu sync.Mutex
	n  map[string]int // type/reason
}

func (d *dropCounter) CallbackFailed(typ, reason string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.n[typ+"/"+reason]++
}

func (d *dropCounter) counts() map[string]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]int{}
	for k, v := range d.n {
		out[k] = v
	}
	return out
}

// Shutdown delivers what is in flight and queued, then returns; what is
// posted once it began is dropped and counted.
func TestShutdownDeliversTheQueue(t *testing.T) {
	g, srv := newGateReceiver(t)
	obs := &dropCounter{n: map[string]int{}}
	p := callbacks.New(context.Background(), callbacks.Config{URL: srv.URL, Secret: shutdownSecret, Observer: obs})
	p.Post("r1", callbacks.Event{Type: callbacks.TypeSupportRequested, RequestID: "r1"})
	p.Post("r1", callbacks.Event{Type: callbacks.TypeOfferAccepted, RequestID: "r1"})
	p.Post("r1", callbacks.Event{Type: callbacks.TypeConversationClosed, RequestID: "r1"})
	p.Post("r2", callbacks.Event{Type: callbacks.TypeSupportRequested, RequestID: "r2"})
	<-g.arrived // both conversations have an event in flight
	<-g.arrived

	done := make(chan error, 1)
	go func() { done <- p.Shutdown(context.Background()) }()
	close(g.open)
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	got := g.events()
	var r1 []string
	for _, ev := range got {
		if ev.RequestID == "r1" {
			r1 = append(r1, ev.Type)
		}
	}
	if len(got) != 4 || len(r1) != 3 || r1[0] != callbacks.TypeSupportRequested || r1[1] != callbacks.TypeOfferAccepted || r1[2] != callbacks.TypeConversationClosed {
		t.Fatalf("delivered %+v", got)
	}
	p.Post("r1", callbacks.Event{Type: callbacks.TypeMessageCreated, RequestID: "r1"})
	if c := obs.counts(); len(c) != 1 || c["message.created/shutdown"] != 1 {
		t.Fatalf("drops %v", c)
	}
}

// When Shutdown's context ends first, the post in flight is cancelled, the
// rest is dropped and counted, and Shutdown returns once the workers ended.
func TestShutdownDeadlineDropsTheRest(t *testing.T) {
	g, srv := newGateReceiver(t)
	obs := &dropCounter{n: map[string]int{}}
	p := callbacks.New(context.Background(), callbacks.Config{URL: srv.URL, Secret: shutdownSecret, Observer: obs, MaxRetryDuration: time.Hour})
	p.Post("r1", callbacks.Event{Type: callbacks.TypeSupportRequested, RequestID: "r1"})
	p.Post("r1", callbacks.Event{Type: callbacks.TypeConversationClosed, RequestID: "r1"})
	<-g.arrived

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown: %v", err)
	}
	p.Wait() // the workers have ended already
	if c := obs.counts(); len(c) != 2 || c["support.requested/shutdown"] != 1 || c["conversation.closed/shutdown"] != 1 {
		t.Fatalf("drops %v", c)
	}
	if got := g.events(); len(got) != 0 {
		t.Fatalf("delivered %+v", got)
	}
	close(g.open)
}

// A nil Poster (callbacks off) shuts down at once.
func TestShutdownOff(t *testing.T) {
	var p *callbacks.Poster = callbacks.New(context.Background(), callbacks.Config{})
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}
