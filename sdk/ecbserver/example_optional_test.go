package ecbserver_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"time"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// postSigned sends a contract call the way ECB does and returns the status
// and the body.
func postSigned(base, path, body string) (int, []byte) {
	req, err := http.NewRequest(http.MethodPost, base+path, bytes.NewReader([]byte(body)))
	if err != nil {
		log.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	ecbserver.SignRequest(secret, req, []byte(body), time.Now())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		log.Fatal(err)
	}
	return resp.StatusCode, out
}

// withReadMarks is contactsOnly (see ExampleNewHandler) plus read marks on
// one thread, t1, of three messages.
type withReadMarks struct {
	contactsOnly
	mu    sync.Mutex
	marks map[string]int // user → index of the last message read, -1 none
}

var t1Messages = []string{"m1", "m2", "m3"}

// MarkRead makes withReadMarks an ecbserver.ReadMarker.
func (b *withReadMarks) MarkRead(_ context.Context, req *ecbserver.MarkReadRequest) (*ecbserver.MarkReadResponse, error) {
	if req.ThreadID != "t1" {
		return nil, ecbserver.NotFound("no thread " + req.ThreadID)
	}
	i := slices.Index(t1Messages, req.MessageID)
	if i < 0 {
		return nil, ecbserver.NotFound("no message " + req.MessageID + " in this thread")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	mark, ok := b.marks[req.UserID]
	if !ok {
		mark = -1
	}
	mark = max(mark, i) // a read mark only moves forward
	b.marks[req.UserID] = mark
	unread := len(t1Messages) - 1 - mark
	return &ecbserver.MarkReadResponse{MessageID: t1Messages[mark], Unread: &unread}, nil
}

// A backend opts into markRead by implementing ecbserver.ReadMarker; the
// handler finds it by type assertion. This one does not implement
// ecbserver.ParticipantManager, so its addParticipants is answered 501.
func ExampleReadMarker() {
	b := &withReadMarks{marks: map[string]int{}}
	srv := httptest.NewServer(ecbserver.NewHandler(secret, b, ecbserver.HandlerOptions{}))
	defer srv.Close()

	for _, body := range []string{
		`{"userId":"alice","threadId":"t1","messageId":"m2"}`,
		`{"userId":"alice","threadId":"t1","messageId":"m1"}`, // older: the mark stays at m2
		`{"userId":"alice","threadId":"t1","messageId":"m9"}`,
	} {
		status, out := postSigned(srv.URL, ecbserver.PathMarkRead, body)
		fmt.Println(status, string(out))
	}
	status, out := postSigned(srv.URL, ecbserver.PathAddParticipants, `{"userId":"alice","threadId":"t1","participants":["carol"]}`)
	fmt.Println(status, string(out))
	// Output:
	// 200 {"messageId":"m2","unread":1}
	// 200 {"messageId":"m2","unread":1}
	// 404 {"error":{"code":"not_found","message":"no message m9 in this thread"}}
	// 501 {"error":{"code":"not_implemented","message":"this backend does not implement addParticipants"}}
}

// rooms is contactsOnly plus members that change: an ecbserver.ParticipantManager.
type rooms struct {
	contactsOnly
	signer  *ecbserver.TokenSigner
	mu      sync.Mutex
	members map[string]map[string]int // thread → user → access bits
}

var created = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func (r *rooms) thread(id string) ecbserver.Thread {
	th := ecbserver.Thread{ID: id, CreatedAt: created, UpdatedAt: created}
	for u := range r.members[id] {
		th.Members = append(th.Members, u)
	}
	slices.Sort(th.Members)
	return th
}

func (r *rooms) AddParticipants(_ context.Context, req *ecbserver.AddParticipantsRequest) (*ecbserver.AddParticipantsResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	members, ok := r.members[req.ThreadID]
	if !ok {
		return nil, ecbserver.NotFound("no thread " + req.ThreadID)
	}
	acc := members[req.UserID]
	if acc&(ecbserver.AccessAdmin|ecbserver.AccessOwner) == 0 {
		return nil, ecbserver.Forbidden("only an admin or the owner may add participants")
	}
	var added []string
	for _, p := range req.Participants {
		if _, member := members[p]; !member {
			members[p] = ecbserver.AccessRead | ecbserver.AccessWrite
			added = append(added, p)
		}
	}
	th := r.thread(req.ThreadID)
	tok, err := r.signer.SignThreadToken(ecbserver.ThreadTokenParams{ThreadID: th.ID, UserID: req.UserID, Access: acc, Members: th.Members})
	if err != nil {
		return nil, err
	}
	return &ecbserver.AddParticipantsResponse{Thread: th, ThreadToken: tok, Added: added}, nil
}

func (r *rooms) LeaveThread(_ context.Context, req *ecbserver.LeaveThreadRequest) (*ecbserver.LeaveThreadResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	members, ok := r.members[req.ThreadID]
	if !ok {
		return nil, ecbserver.NotFound("no thread " + req.ThreadID)
	}
	if _, member := members[req.UserID]; !member {
		return nil, ecbserver.Forbidden("you are not a member of this thread")
	}
	delete(members, req.UserID)
	return &ecbserver.LeaveThreadResponse{Thread: r.thread(req.ThreadID)}, nil
}

// A backend whose threads change members implements
// ecbserver.ParticipantManager: addParticipants and leaveThread.
func ExampleParticipantManager() {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	signer, err := ecbserver.NewTokenSigner(key, ecbserver.SignerOptions{Audience: "ecb"})
	if err != nil {
		log.Fatal(err)
	}
	b := &rooms{signer: signer, members: map[string]map[string]int{
		"t1": {"alice": ecbserver.AccessRead | ecbserver.AccessWrite | ecbserver.AccessOwner, "bob": ecbserver.AccessRead | ecbserver.AccessWrite},
	}}
	srv := httptest.NewServer(ecbserver.NewHandler(secret, b, ecbserver.HandlerOptions{}))
	defer srv.Close()

	// alice owns t1: she may add; bob already is a member and is skipped.
	status, out := postSigned(srv.URL, ecbserver.PathAddParticipants, `{"userId":"alice","threadId":"t1","participants":["bob","carol"]}`)
	var added ecbserver.AddParticipantsResponse
	if err := json.Unmarshal(out, &added); err != nil {
		log.Fatal(err)
	}
	fmt.Println(status, "added", added.Added, "members", added.Thread.Members, "token", added.ThreadToken != "")

	// bob is no admin.
	status, out = postSigned(srv.URL, ecbserver.PathAddParticipants, `{"userId":"bob","threadId":"t1","participants":["dave"]}`)
	fmt.Println(status, string(out))

	status, out = postSigned(srv.URL, ecbserver.PathLeaveThread, `{"userId":"bob","threadId":"t1"}`)
	fmt.Println(status, string(out))
	// Output:
	// 200 added [carol] members [alice bob carol] token true
	// 403 {"error":{"code":"forbidden","message":"only an admin or the owner may add participants"}}
	// 200 {"thread":{"id":"t1","members":["alice","carol"],"createdAt":"2026-01-02T03:04:05Z","updatedAt":"2026-01-02T03:04:05Z"}}
}
