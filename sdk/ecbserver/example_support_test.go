package ecbserver_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// helpdesk is contactsOnly (see ExampleNewHandler) plus customer support:
// it creates one thread per accepted support request.
type helpdesk struct {
	contactsOnly
	signer  *ecbserver.TokenSigner
	mu      sync.Mutex
	threads map[string]ecbserver.Thread // by request id: a retry gets the same thread
}

// CreateSupportThread makes helpdesk an ecbserver.SupportThreadCreator. The
// request id is the idempotency key; the agent who accepted is an admin of
// the thread (ECB adds a supervisor or a second agent on their behalf), and
// each side gets its own threadToken.
func (h *helpdesk) CreateSupportThread(_ context.Context, req *ecbserver.CreateSupportThreadRequest) (*ecbserver.CreateSupportThreadResponse, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	th, ok := h.threads[req.RequestID]
	if !ok {
		now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		th = ecbserver.Thread{ID: "support-" + req.RequestID, Subject: req.Question,
			Members: []string{req.VisitorID, req.AgentID}, CreatedAt: now, UpdatedAt: now}
		h.threads[req.RequestID] = th
	}
	token := func(user string, acc int) string {
		t, err := h.signer.SignThreadToken(ecbserver.ThreadTokenParams{ThreadID: th.ID, UserID: user, Access: acc, Members: th.Members})
		if err != nil {
			log.Fatal(err)
		}
		return t
	}
	rw := ecbserver.AccessRead | ecbserver.AccessWrite
	return &ecbserver.CreateSupportThreadResponse{Thread: th,
		VisitorToken: token(req.VisitorID, rw), AgentToken: token(req.AgentID, rw|ecbserver.AccessAdmin)}, nil
}

// A backend that takes customer-support chats implements
// ecbserver.SupportThreadCreator: ECB calls it when an agent accepts an
// offer, and again with the same requestId if the answer was lost.
func ExampleSupportThreadCreator() {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, ed25519.SeedSize))
	signer, err := ecbserver.NewTokenSigner(key, ecbserver.SignerOptions{Audience: "ecb"})
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(ecbserver.NewHandler(secret, &helpdesk{signer: signer, threads: map[string]ecbserver.Thread{}}, ecbserver.HandlerOptions{}))
	defer srv.Close()

	body := `{"requestId":"req-1","workgroup":"support","visitorId":"anon_7","visitorName":"Dana","anonymous":true,` +
		`"agentId":"agent1","question":"Where is my parcel?","operationId":"op-42"}`
	for range 2 { // the second call is a retry: the same thread
		status, out := postSigned(srv.URL, ecbserver.PathCreateSupportThread, body)
		var got ecbserver.CreateSupportThreadResponse
		if err := json.Unmarshal(out, &got); err != nil {
			log.Fatal(err)
		}
		fmt.Println(status, got.Thread.ID, got.Thread.Members, got.Thread.Subject, got.VisitorToken != "", got.AgentToken != "")
	}
	// The same visitor and agent cannot be one person.
	status, out := postSigned(srv.URL, ecbserver.PathCreateSupportThread,
		`{"requestId":"req-2","workgroup":"support","visitorId":"agent1","agentId":"agent1","question":"?"}`)
	fmt.Println(status, strings.Contains(string(out), "invalid_argument"))
	// Output:
	// 200 support-req-1 [anon_7 agent1] Where is my parcel? true true
	// 200 support-req-1 [anon_7 agent1] Where is my parcel? true true
	// 400 true
}

// ECB posts customer-support events to callbacks.url, signed like its
// contract calls. NewCallbackHandler checks the signature and decodes the
// event; answer nil once it is stored (deduplicate on ev.ID: a retry sends
// the same id), an error to have ECB retry it later.
func ExampleNewCallbackHandler() {
	seen := map[string]bool{}
	var mu sync.Mutex
	h := ecbserver.NewCallbackHandler(secret, func(_ context.Context, ev ecbserver.CallbackEvent) error {
		mu.Lock()
		defer mu.Unlock()
		if seen[ev.ID] {
			return nil // a retry of an event already stored
		}
		seen[ev.ID] = true
		fmt.Println(ev.Type, ev.RequestID, ev.OperationID, ev.UserID, string(ev.Data))
		return nil
	}, ecbserver.CallbackHandlerOptions{})
	srv := httptest.NewServer(h)
	defer srv.Close()

	for _, body := range []string{
		`{"id":"ev-1","type":"support.requested","at":"2026-01-02T03:04:05Z","requestId":"req-1","operationId":"op-42","userId":"anon_7","data":{"question":"Where is my parcel?"}}`,
		`{"id":"ev-2","type":"message.created","at":"2026-01-02T03:04:09Z","requestId":"req-1","operationId":"op-42","userId":"agent1","data":{"body":"VIP","visibility":"agents"}}`,
		`{"id":"ev-2","type":"message.created","at":"2026-01-02T03:04:09Z","requestId":"req-1","operationId":"op-42","userId":"agent1","data":{"body":"VIP","visibility":"agents"}}`,
	} {
		status, _ := postSigned(srv.URL, "", body)
		fmt.Println(status)
	}
	// Unsigned: refused.
	resp, err := http.Post(srv.URL, "application/json", strings.NewReader(`{"id":"ev-3","type":"support.requested"}`))
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode)
	// Output:
	// support.requested req-1 op-42 anon_7 {"question":"Where is my parcel?"}
	// 204
	// message.created req-1 op-42 agent1 {"body":"VIP","visibility":"agents"}
	// 204
	// 204
	// 401
}

// The offline nudge (contract 1.6): a message.offline event's Data is an
// OfflineNudge, one per batch of a thread's messages; send the push
// notifications it asks for once per event id.
func ExampleOfflineNudge() {
	h := ecbserver.NewCallbackHandler(secret, func(_ context.Context, ev ecbserver.CallbackEvent) error {
		if ev.Type != ecbserver.CallbackMessageOffline {
			return nil // a support event, or a type this backend does not know
		}
		var n ecbserver.OfflineNudge
		if err := json.Unmarshal(ev.Data, &n); err != nil {
			return ecbserver.InvalidArgument("bad message.offline data")
		}
		fmt.Println(ev.ID, n.ThreadID, n.MessageID, n.Count, n.UserIDs, n.Mentioned)
		return nil
	}, ecbserver.CallbackHandlerOptions{})
	srv := httptest.NewServer(h)
	defer srv.Close()
	status, _ := postSigned(srv.URL, "", `{"id":"ev_off_m_2","type":"message.offline","at":"2026-01-02T03:04:05Z","threadId":"t_1",`+
		`"data":{"threadId":"t_1","messageId":"m_2","messageIds":["m_1","m_2"],"count":2,"userIds":["bob","carol"],"mentioned":["carol"]}}`)
	fmt.Println(status)
	// Output:
	// ev_off_m_2 t_1 m_2 2 [bob carol] [carol]
	// 204
}

// A website visitor without an account chats with an anonymous userToken
// that the backend mints and binds to the pages' origins: ECB accepts it
// only from those, and only for the support operations and the support
// thread it is invited to.
func ExampleTokenSigner_SignAnonymousToken() {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{5}, ed25519.SeedSize))
	signer, err := ecbserver.NewTokenSigner(key, ecbserver.SignerOptions{Audience: "ecb"})
	if err != nil {
		log.Fatal(err)
	}
	tok, err := signer.SignAnonymousToken(ecbserver.AnonParams{Name: "Dana", Origins: []string{"https://shop.example.com"}, TTL: 15 * time.Minute})
	fmt.Println(err == nil && strings.Count(tok, ".") == 2)
	// A path is not an origin.
	_, err = signer.SignAnonymousToken(ecbserver.AnonParams{Origins: []string{"https://shop.example.com/help"}})
	fmt.Println(err != nil)
	// Output:
	// true
	// true
}
