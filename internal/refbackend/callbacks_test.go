package refbackend

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/ecbridge/ecb/internal/callbacks"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// postEvent posts ev signed with secret, as ECB's Poster does, and returns
// the status.
func (e *env) postEvent(ev ecbserver.CallbackEvent, secret []byte) int {
	e.tb.Helper()
	body, err := json.Marshal(ev)
	if err != nil {
		e.tb.Fatal(err)
	}
	req, err := http.NewRequestWithContext(e.tb.Context(), http.MethodPost, e.http.URL+ContractPrefix+ecbserver.PathCallbacks, bytes.NewReader(body))
	if err != nil {
		e.tb.Fatal(err)
	}
	ecbserver.SignRequest(secret, req, body, time.Now())
	resp, err := e.http.Client().Do(req)
	if err != nil {
		e.tb.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (e *env) callbacks(requestID string) []ecbserver.CallbackEvent {
	e.tb.Helper()
	r := e.web(http.MethodGet, "/callbacks?requestId="+requestID, nil, nil)
	if r.status != http.StatusOK {
		e.tb.Fatalf("GET /callbacks: %d %s", r.status, r.body)
	}
	var out CallbacksResponse
	if err := json.Unmarshal(r.body, &out); err != nil {
		e.tb.Fatal(err)
	}
	return out.Events
}

// ECB's own Poster delivers to the reference backend; the events come back
// in arrival order, per request.
func TestCallbacksFromThePoster(t *testing.T) {
	e := newEnv(t)
	p := callbacks.New(t.Context(), callbacks.Config{URL: e.http.URL + ContractPrefix + ecbserver.PathCallbacks, Secret: e.secret})
	types := []string{callbacks.TypeSupportRequested, callbacks.TypeOfferRejected, callbacks.TypeOfferAccepted, callbacks.TypeConversationClosed}
	for _, typ := range types {
		p.Post("rq1", callbacks.Event{Type: typ, RequestID: "rq1", OperationID: "op-1", Data: json.RawMessage(`{"k":1}`)})
		p.Post("rq2", callbacks.Event{Type: typ, RequestID: "rq2"})
	}
	p.Wait()
	got := e.callbacks("rq1")
	if len(got) != len(types) {
		t.Fatalf("got %d events: %+v", len(got), got)
	}
	for i, ev := range got {
		if ev.Type != types[i] || ev.OperationID != "op-1" || ev.ID == "" || string(ev.Data) != `{"k":1}` || ev.At.IsZero() {
			t.Fatalf("event %d: %+v", i, ev)
		}
	}
	if n := len(e.callbacks("rq2")); n != len(types) {
		t.Fatalf("rq2: %d events", n)
	}
	if n := len(e.callbacks("nope")); n != 0 {
		t.Fatalf("unknown request: %d events", n)
	}
}

func TestCallbacksDedupeAndRefusals(t *testing.T) {
	e := newEnv(t)
	ev := ecbserver.CallbackEvent{ID: "ev_1", Type: ecbserver.CallbackSupportRequested, RequestID: "rq", At: time.Now().UTC()}
	for range 2 { // a retry of the same event is accepted and stored once
		if st := e.postEvent(ev, e.secret); st != http.StatusNoContent {
			t.Fatalf("status %d", st)
		}
	}
	if st := e.postEvent(ecbserver.CallbackEvent{ID: "ev_2", Type: "x", RequestID: "rq"}, []byte("wrong")); st != http.StatusUnauthorized {
		t.Fatalf("wrong secret: status %d", st)
	}
	if st := e.postEvent(ecbserver.CallbackEvent{Type: "x", RequestID: "rq"}, e.secret); st != http.StatusBadRequest {
		t.Fatalf("no id: status %d", st)
	}
	if got := e.callbacks("rq"); len(got) != 1 || got[0].ID != "ev_1" {
		t.Fatalf("stored %+v", got)
	}
	if r := e.web(http.MethodGet, "/callbacks", nil, nil); r.status != http.StatusBadRequest {
		t.Fatalf("without requestId: %d", r.status)
	}
	if r := e.web(http.MethodGet, ContractPrefix+ecbserver.PathCallbacks, nil, nil); r.status != http.StatusMethodNotAllowed {
		t.Fatalf("GET of the callback URL: %d", r.status)
	}
}
