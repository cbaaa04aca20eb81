package callbacks_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ecbridge/ecb/internal/callbacks"
	"github.com/ecbridge/ecb/internal/memhttp"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

type receiver struct {
	mu     sync.Mutex
	got    []callbacks.Event
	fail   int // answer 503 to this many requests first
	always bool
	calls  int
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	if err := ecbserver.VerifyRequest(secret, req, body, time.Now(), time.Minute); err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.always || r.fail > 0 {
		r.fail--
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	var ev callbacks.Event
	if err := json.Unmarshal(body, &ev); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.got = append(r.got, ev)
}

func (r *receiver) events() []callbacks.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]callbacks.Event(nil), r.got...)
}

type failures struct {
	mu sync.Mutex
	n  map[string]int
}

func (f *failures) CallbackFailed(typ, reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n[typ+"/"+reason]++
}

func TestOrderPerConversationSignedAndUnique(t *testing.T) {
	rec := &receiver{fail: 3}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := callbacks.New(ctx, callbacks.Config{URL: srv.URL, Secret: secret, InitialBackoff: time.Millisecond})
	for i := range 20 {
		for _, key := range []string{"r1", "r2"} {
			p.Post(key, callbacks.Event{Type: callbacks.TypeMessageCreated, RequestID: key, OperationID: fmt.Sprint(i)})
		}
	}
	p.Wait()
	got := rec.events()
	if len(got) != 40 {
		t.Fatalf("got %d events", len(got))
	}
	next := map[string]int{}
	ids := map[string]bool{}
	for _, ev := range got {
		if ev.OperationID != fmt.Sprint(next[ev.RequestID]) {
			t.Fatalf("%s: event %s after %d", ev.RequestID, ev.OperationID, next[ev.RequestID])
		}
		next[ev.RequestID]++
		if ev.ID == "" || ids[ev.ID] || ev.At.IsZero() {
			t.Fatalf("bad or repeated id %+v", ev)
		}
		ids[ev.ID] = true
	}
}

func TestRetryThenSuccess(t *testing.T) {
	rec := &receiver{fail: 2}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	obs := &failures{n: map[string]int{}}
	p := callbacks.New(context.Background(), callbacks.Config{URL: srv.URL, Secret: secret, InitialBackoff: time.Millisecond, Observer: obs})
	p.Post("r", callbacks.Event{Type: callbacks.TypeSupportRequested})
	p.Wait()
	if got := rec.events(); len(got) != 1 || rec.calls != 3 {
		t.Fatalf("events %d after %d calls", len(got), rec.calls)
	}
	if len(obs.n) != 0 {
		t.Fatalf("failures %v", obs.n)
	}
}

// Retries run on the fake clock of a synctest bubble, so the number of
// attempts within MaxRetryDuration is what the backoff says, not what the
// machine managed.
func TestGiveUpIsCountedAndTheNextEventGoesOn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &receiver{always: true}
		obs := &failures{n: map[string]int{}}
		p := callbacks.New(t.Context(), callbacks.Config{URL: memURL, Secret: secret, Client: memhttp.Client(rec),
			InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, MaxRetryDuration: 50 * time.Millisecond, Observer: obs})
		p.Post("r", callbacks.Event{Type: callbacks.TypeOfferRevoked})
		p.Post("r", callbacks.Event{Type: callbacks.TypeConversationClosed})
		p.Wait()
		if obs.n["offer.revoked/gave_up"] != 1 || obs.n["conversation.closed/gave_up"] != 1 {
			t.Fatalf("failures %v", obs.n)
		}
		// Per event: attempts at 0, 1, 3, 7, 12, 17, ... 47 ms, and one at the 50 ms deadline.
		if rec.calls != 2*13 {
			t.Fatalf("%d attempts, want 13 per event", rec.calls)
		}
	})
}

func TestOffAndStopped(t *testing.T) {
	var p *callbacks.Poster = callbacks.New(context.Background(), callbacks.Config{})
	p.Post("r", callbacks.Event{Type: callbacks.TypeSupportRequested}) // off: no-op
	p.Wait()

	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		obs := &failures{n: map[string]int{}}
		rec := &receiver{always: true}
		p = callbacks.New(ctx, callbacks.Config{URL: memURL, Secret: secret, Client: memhttp.Client(rec), MaxRetryDuration: time.Hour, Observer: obs})
		p.Post("r", callbacks.Event{Type: callbacks.TypeSupportRequested})
		synctest.Wait() // the first attempt failed; the worker waits out its backoff
		if rec.calls != 1 {
			t.Fatalf("%d attempts before the stop, want 1", rec.calls)
		}
		cancel()
		p.Wait() // the worker stops with ctx
		p.Post("r", callbacks.Event{Type: callbacks.TypeSupportRequested})
		if obs.n["support.requested/shutdown"] != 2 {
			t.Fatalf("failures %v", obs.n)
		}
	})
}

// memURL is where the in-memory posters post; the host is never resolved.
const memURL = "http://backend.test/ecb/v1/callbacks"
