package refbackend

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

var fixedNow = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func TestLoginAndAuthenticate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tests := []struct {
		user, name        string
		roles, workgroups []string
	}{
		{"alice", "Alice", nil, nil},
		{"agent1", "Agent One", []string{"agent"}, []string{"support"}},
		{"super", "Supervisor", []string{"supervisor"}, []string{"support"}},
		{"helpbot", "Help Bot", []string{"bot"}, nil},
	}
	for _, tt := range tests {
		before := time.Now()
		r := e.web(http.MethodPost, "/login", LoginRequest{Username: tt.user, Password: tt.user}, nil)
		var lr LoginResponse
		if err := json.Unmarshal(r.body, &lr); err != nil || r.status != 200 {
			t.Fatalf("login %s: %d %s", tt.user, r.status, r.body)
		}
		if ttl := lr.ExpiresAt.Sub(before); ttl < DefaultAccessTokenTTL-time.Minute || ttl > DefaultAccessTokenTTL+time.Minute {
			t.Fatalf("access token lives %s", ttl)
		}

		var auth ecbserver.AuthenticateResponse
		e.ok(ecbserver.PathAuthenticate, ecbserver.AuthenticateRequest{AccessToken: lr.AccessToken}, &auth, callOpts{})
		if auth.User.ID != tt.user || auth.User.Name != tt.name {
			t.Fatalf("user %+v", auth.User)
		}
		var c userClaims
		e.verify(auth.UserToken, &c)
		if c.Subject != tt.user || c.Name != tt.name || c.Typ != ecbserver.TokenTypeUser ||
			!slices.Equal(c.Roles, tt.roles) || !slices.Equal(c.Workgroups, tt.workgroups) {
			t.Fatalf("claims %+v", c)
		}
	}
}

func TestLoginRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tt := range []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"wrong password", LoginRequest{Username: "alice", Password: "bob"}, 401, ecbserver.CodeUnauthenticated},
		{"unknown user", LoginRequest{Username: "mallory", Password: "mallory"}, 401, ecbserver.CodeUnauthenticated},
		{"no password", LoginRequest{Username: "alice"}, 400, ecbserver.CodeInvalidArgument},
		{"not an object", []int{1}, 400, ecbserver.CodeInvalidArgument},
	} {
		r := e.web(http.MethodPost, "/login", tt.body, nil)
		if r.status != tt.status || r.errorCode(t) != tt.code {
			t.Errorf("%s: %d %s", tt.name, r.status, r.body)
		}
	}
	if r := e.web(http.MethodGet, "/login", nil, nil); r.status != http.StatusMethodNotAllowed {
		t.Errorf("GET /login: %d", r.status)
	}
}

func TestAuthenticateRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tok := e.login("bob")
	e.fails(ecbserver.PathAuthenticate, ecbserver.AuthenticateRequest{AccessToken: tok + "x"}, callOpts{}, 401, ecbserver.CodeUnauthenticated)

	// The session expires after AccessTokenTTL.
	e.srv.now = func() time.Time { return time.Now().Add(DefaultAccessTokenTTL + time.Second) }
	e.fails(ecbserver.PathAuthenticate, ecbserver.AuthenticateRequest{AccessToken: tok}, callOpts{}, 401, ecbserver.CodeUnauthenticated)

	// A later login sweeps the expired session away.
	e.login("carol")
	var n int
	if err := e.srv.db.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM sessions`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("sessions after sweep: %d (%v)", n, err)
	}
}

func TestBadSignature(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	req := ecbserver.GetContactsRequest{UserID: "alice"}
	e.fails(ecbserver.PathGetContacts, req, callOpts{secret: []byte("not the secret")}, 401, ecbserver.CodeBadSignature)
	e.fails(ecbserver.PathGetContacts, req, callOpts{signedAt: time.Now().Add(-10 * time.Minute)}, 401, ecbserver.CodeBadSignature)
	e.fails(ecbserver.PathGetContacts, req, callOpts{signedAt: time.Now().Add(10 * time.Minute)}, 401, ecbserver.CodeBadSignature)
}

func TestContacts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ids := func(user string) []string {
		var out ecbserver.GetContactsResponse
		e.ok(ecbserver.PathGetContacts, ecbserver.GetContactsRequest{UserID: user}, &out, callOpts{})
		var ids []string
		for _, c := range out.Contacts {
			ids = append(ids, c.ID)
		}
		return ids
	}
	for user, want := range map[string][]string{
		"alice": {"bob", "carol"}, "bob": {"alice", "carol"}, "carol": {"alice", "bob"}, "agent1": nil, "super": nil,
	} {
		if got := ids(user); !slices.Equal(got, want) {
			t.Errorf("contacts of %s = %v, want %v", user, got, want)
		}
	}
	e.fails(ecbserver.PathGetContacts, ecbserver.GetContactsRequest{UserID: "nobody"}, callOpts{}, 404, ecbserver.CodeNotFound)
}

func TestCreateAndGetThreads(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	created := e.createThread("alice", []string{"bob", "alice", "bob"}, "Lunch", "Noon?", callOpts{})
	th := created.Thread
	if !slices.Equal(th.Members, []string{"alice", "bob"}) || th.Subject != "Lunch" || th.ID == "" ||
		th.LastMessage == nil || th.LastMessage.ID != created.Message.ID {
		t.Fatalf("thread %+v", th)
	}
	if m := created.Message; m.Body != "Noon?" || m.AuthorID != "alice" || m.ThreadID != th.ID || m.CreatedAt.IsZero() {
		t.Fatalf("message %+v", m)
	}
	if c := e.threadClaims(created.ThreadToken); c.Subject != th.ID || c.UID != "alice" ||
		c.Acc != ecbserver.AccessRead|ecbserver.AccessWrite|ecbserver.AccessOwner || !slices.Equal(c.Members, th.Members) {
		t.Fatalf("creator token %+v", c)
	}

	// bob sees it, with a token of his own; carol does not.
	bobs := e.getThreads("bob").Threads
	if len(bobs) != 1 || bobs[0].Thread.ID != th.ID {
		t.Fatalf("bob's threads %+v", bobs)
	}
	if c := e.threadClaims(bobs[0].ThreadToken); c.UID != "bob" || c.Acc != ecbserver.AccessRead|ecbserver.AccessWrite {
		t.Fatalf("bob's token %+v", c)
	}
	if n := len(e.getThreads("carol").Threads); n != 0 {
		t.Fatalf("carol sees %d threads", n)
	}

	got := e.getThread("bob", th.ID, "", 0)
	if len(got.Messages) != 1 || got.Messages[0].Body != "Noon?" || got.NextCursor != "" {
		t.Fatalf("getThread %+v", got)
	}
	if c := e.threadClaims(got.ThreadToken); c.UID != "bob" || c.Subject != th.ID {
		t.Fatalf("getThread token %+v", c)
	}
	e.fails(ecbserver.PathGetThread, ecbserver.GetThreadRequest{UserID: "carol", ThreadID: th.ID}, callOpts{}, 403, ecbserver.CodeForbidden)
	e.fails(ecbserver.PathGetThread, ecbserver.GetThreadRequest{UserID: "bob", ThreadID: "t_nope"}, callOpts{}, 404, ecbserver.CodeNotFound)

	// A second, newer thread comes first; a reply moves the first one up again.
	second := e.createThread("bob", []string{"alice", "carol"}, "", "Team", callOpts{})
	order := func(user string) []string {
		var ids []string
		for _, st := range e.getThreads(user).Threads {
			ids = append(ids, st.Thread.ID)
		}
		return ids
	}
	if got := order("alice"); !slices.Equal(got, []string{second.Thread.ID, th.ID}) {
		t.Fatalf("order before reply %v", got)
	}
	// updatedAt has millisecond precision: let the clock move past the
	// second thread's creation so the order is decided by the reply.
	e.srv.now = func() time.Time { return time.Now().Add(time.Second) }
	reply := e.addMessage("bob", th.ID, "Sure", "")
	if got := order("alice"); !slices.Equal(got, []string{th.ID, second.Thread.ID}) {
		t.Fatalf("order after reply %v", got)
	}
	first := e.getThreads("alice").Threads[0].Thread
	if first.LastMessage == nil || first.LastMessage.ID != reply.Message.ID || !first.UpdatedAt.Equal(reply.Message.CreatedAt) {
		t.Fatalf("thread after reply %+v", first)
	}
	if c := e.threadClaims(reply.ThreadToken); c.UID != "bob" || c.Acc != 3 {
		t.Fatalf("reply token %+v", c)
	}
}

func TestCreateThreadRules(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	create := func(user string, participants []string, body string) ecbserver.CreateThreadRequest {
		return ecbserver.CreateThreadRequest{UserID: user, Participants: participants, Message: ecbserver.NewMessage{Body: body}}
	}
	e.fails(ecbserver.PathCreateThread, create("alice", []string{"agent1"}, "hi"), callOpts{}, 403, ecbserver.CodeForbidden)
	e.fails(ecbserver.PathCreateThread, create("alice", []string{"bob", "ghost"}, "hi"), callOpts{}, 400, ecbserver.CodeInvalidArgument)
	e.fails(ecbserver.PathCreateThread, create("alice", []string{"alice"}, "hi"), callOpts{}, 400, ecbserver.CodeInvalidArgument)
	e.fails(ecbserver.PathCreateThread, create("alice", []string{"bob"}, " \n\t"), callOpts{}, 400, ecbserver.CodeInvalidArgument)
	e.fails(ecbserver.PathCreateThread, create("alice", []string{"bob"}, strings.Repeat("x", maxBodyBytes+1)), callOpts{}, 400, ecbserver.CodeInvalidArgument)
	e.fails(ecbserver.PathCreateThread, ecbserver.CreateThreadRequest{UserID: "alice", Participants: []string{"bob"},
		Subject: strings.Repeat("s", maxSubjectRunes+1), Message: ecbserver.NewMessage{Body: "hi"}}, callOpts{}, 400, ecbserver.CodeInvalidArgument)
	// The SDK refuses structurally broken calls before the backend sees them.
	e.fails(ecbserver.PathCreateThread, create("alice", []string{}, "hi"), callOpts{invalidRequest: true}, 400, ecbserver.CodeInvalidArgument)
	if n := len(e.getThreads("alice").Threads); n != 0 {
		t.Fatalf("refused calls created %d threads", n)
	}

	// Staff may start a thread with anyone known.
	got := e.createThread("agent1", []string{"alice"}, "Your ticket", "Hello, how can I help?", callOpts{})
	if !slices.Equal(got.Thread.Members, []string{"agent1", "alice"}) {
		t.Fatalf("members %v", got.Thread.Members)
	}
}

func TestPaging(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	th := e.createThread("alice", []string{"bob"}, "", "m000", callOpts{}).Thread
	const total = 131 // the first message and 130 more: more than two default pages
	for i := 1; i < total; i++ {
		author := []string{"alice", "bob"}[i%2]
		e.addMessage(author, th.ID, fmt.Sprintf("m%03d", i), "")
	}

	// Walk back from the latest page with the default limit.
	var pages [][]string
	cursor := ""
	e.fails(ecbserver.PathGetThread, ecbserver.GetThreadRequest{UserID: "carol", ThreadID: th.ID}, callOpts{}, 403, ecbserver.CodeForbidden)
	for {
		p := e.getThread("bob", th.ID, cursor, 0)
		var bodies []string
		for _, m := range p.Messages {
			bodies = append(bodies, m.Body)
		}
		pages = append(pages, bodies)
		if p.NextCursor == "" {
			break
		}
		cursor = p.NextCursor
	}
	if len(pages) != 3 || len(pages[0]) != defaultPageSize || len(pages[1]) != defaultPageSize || len(pages[2]) != total-2*defaultPageSize {
		t.Fatalf("page sizes %d pages: %v", len(pages), pages)
	}
	// Pages are chronological inside, and together they are the whole thread.
	var all []string
	for i := len(pages) - 1; i >= 0; i-- {
		all = append(all, pages[i]...)
	}
	for i, b := range all {
		if want := fmt.Sprintf("m%03d", i); b != want {
			t.Fatalf("message %d is %s, want %s", i, b, want)
		}
	}

	// A large limit is capped at maxPageSize; here that is everything.
	if p := e.getThread("bob", th.ID, "", 1000); len(p.Messages) != total || p.NextCursor != "" {
		t.Fatalf("limit 1000: %d messages, cursor %q", len(p.Messages), p.NextCursor)
	}
	if p := e.getThread("bob", th.ID, "", 7); len(p.Messages) != 7 || p.Messages[6].Body != "m130" || p.NextCursor == "" {
		t.Fatalf("limit 7: %+v", p)
	}
	for _, bad := range []string{"not-base64!", "YWJj", encodeCursor(0)[:3]} {
		e.fails(ecbserver.PathGetThread, ecbserver.GetThreadRequest{UserID: "bob", ThreadID: th.ID, Before: bad}, callOpts{}, 400, ecbserver.CodeInvalidArgument)
	}
}

func TestIdempotentMessages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	th := e.createThread("alice", []string{"bob"}, "", "hello", callOpts{}).Thread

	first := e.addMessage("bob", th.ID, "once", "cm-1")
	again := e.addMessage("bob", th.ID, "once", "cm-1")
	if again.Message.ID != first.Message.ID || !again.Message.CreatedAt.Equal(first.Message.CreatedAt) || again.Message.ClientMessageID != "cm-1" {
		t.Fatalf("retry stored a new message: %+v vs %+v", again.Message, first.Message)
	}
	// The key may come in the Idempotency-Key header alone.
	var viaHeader ecbserver.AddThreadMessageResponse
	e.ok(ecbserver.PathAddThreadMessage, ecbserver.AddThreadMessageRequest{UserID: "bob", ThreadID: th.ID, Body: "once"},
		&viaHeader, callOpts{idempotencyKey: "cm-1"})
	if viaHeader.Message.ID != first.Message.ID {
		t.Fatal("Idempotency-Key header not honoured")
	}
	// Keys are per author: alice's cm-1 is another message.
	other := e.addMessage("alice", th.ID, "once", "cm-1")
	if other.Message.ID == first.Message.ID {
		t.Fatal("idempotency key shared across authors")
	}
	e.fails(ecbserver.PathAddThreadMessage, ecbserver.AddThreadMessageRequest{UserID: "bob", ThreadID: th.ID, Body: "twice", ClientMessageID: "cm-1"},
		callOpts{idempotencyKey: "cm-1"}, 409, ecbserver.CodeConflict)

	if n := len(e.getThread("alice", th.ID, "", 0).Messages); n != 3 {
		t.Fatalf("%d messages stored, want 3", n)
	}
}

func TestIdempotentCreateThread(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	req := ecbserver.CreateThreadRequest{UserID: "alice", Participants: []string{"bob"},
		Message: ecbserver.NewMessage{Body: "hi", ClientMessageID: "ct-1"}}
	var a, b ecbserver.CreateThreadResponse
	e.ok(ecbserver.PathCreateThread, req, &a, callOpts{idempotencyKey: "ct-1"})
	e.ok(ecbserver.PathCreateThread, req, &b, callOpts{idempotencyKey: "ct-1"})
	if a.Thread.ID != b.Thread.ID || a.Message.ID != b.Message.ID {
		t.Fatalf("retry created another thread: %s/%s", a.Thread.ID, b.Thread.ID)
	}
	if c := e.threadClaims(b.ThreadToken); c.Acc != ecbserver.AccessRead|ecbserver.AccessWrite|ecbserver.AccessOwner {
		t.Fatalf("replayed token acc %d", c.Acc)
	}
	req.Message.Body = "something else"
	e.fails(ecbserver.PathCreateThread, req, callOpts{idempotencyKey: "ct-1"}, 409, ecbserver.CodeConflict)
	if n := len(e.getThreads("alice").Threads); n != 1 {
		t.Fatalf("%d threads, want 1", n)
	}
}

func TestAccessCodes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	th := e.createThread("alice", []string{"bob"}, "", "hello", callOpts{}).Thread
	write := ecbserver.AddThreadMessageRequest{UserID: "bob", ThreadID: th.ID, Body: "hi"}

	e.setAccess(th.ID, "bob", ecbserver.AccessRead) // read-only, like a monitoring supervisor
	e.fails(ecbserver.PathAddThreadMessage, write, callOpts{}, 403, ecbserver.CodeForbidden)
	if c := e.threadClaims(e.getThread("bob", th.ID, "", 0).ThreadToken); c.Acc != ecbserver.AccessRead {
		t.Fatalf("read-only token acc %d", c.Acc)
	}

	e.setAccess(th.ID, "bob", ecbserver.AccessWrite) // write without read
	e.fails(ecbserver.PathGetThread, ecbserver.GetThreadRequest{UserID: "bob", ThreadID: th.ID}, callOpts{}, 403, ecbserver.CodeForbidden)
	if n := len(e.getThreads("bob").Threads); n != 0 {
		t.Fatalf("unreadable thread listed (%d)", n)
	}

	e.setAccess(th.ID, "bob", ecbserver.AccessNone) // banned
	e.fails(ecbserver.PathAddThreadMessage, write, callOpts{}, 403, ecbserver.CodeForbidden)
	if m := e.getThread("alice", th.ID, "", 0).Thread.Members; !slices.Equal(m, []string{"alice"}) {
		t.Fatalf("banned user still listed as member: %v", m)
	}

	write.UserID = "carol"
	e.fails(ecbserver.PathAddThreadMessage, write, callOpts{}, 403, ecbserver.CodeForbidden)
	write.ThreadID = "t_unknown"
	e.fails(ecbserver.PathAddThreadMessage, write, callOpts{}, 404, ecbserver.CodeNotFound)
}

func TestRestartKeepsData(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tok := e.login("alice")
	th := e.createThread("alice", []string{"carol"}, "Keep me", "persist", callOpts{})

	e.restart()

	var auth ecbserver.AuthenticateResponse
	e.ok(ecbserver.PathAuthenticate, ecbserver.AuthenticateRequest{AccessToken: tok}, &auth, callOpts{})
	got := e.getThread("carol", th.Thread.ID, "", 0)
	if got.Thread.Subject != "Keep me" || len(got.Messages) != 1 || got.Messages[0].ID != th.Message.ID {
		t.Fatalf("after restart %+v", got)
	}
	var users UsersResponse
	if err := json.Unmarshal(e.web(http.MethodGet, "/users", nil, nil).body, &users); err != nil {
		t.Fatal(err)
	}
	if len(users.Users) != len(seedUsers)+len(seedBots) {
		t.Fatalf("%d users after restart, want %d", len(users.Users), len(seedUsers)+len(seedBots))
	}
	var versions []int
	rows, err := e.srv.db.QueryContext(t.Context(), `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		versions = append(versions, v)
	}
	if !slices.Equal(versions, []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}) {
		t.Fatalf("migrations %v", versions)
	}
	// The new messages continue after the old ones.
	e.addMessage("carol", th.Thread.ID, "after restart", "")
	if p := e.getThread("alice", th.Thread.ID, "", 0); len(p.Messages) != 2 || p.Messages[1].Body != "after restart" {
		t.Fatalf("after restart %+v", p.Messages)
	}
}

func TestUsersAndCORS(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.web(http.MethodGet, "/users", nil, map[string]string{"Origin": testOrigin})
	if r.status != 200 || r.header.Get("Access-Control-Allow-Origin") != testOrigin {
		t.Fatalf("GET /users: %d %v", r.status, r.header)
	}
	var users UsersResponse
	if err := json.Unmarshal(r.body, &users); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, u := range users.Users {
		ids = append(ids, u.ID)
	}
	if !slices.Equal(ids, []string{"alice", "bob", "carol", "agent1", "agent2", "super", "helpbot"}) {
		t.Fatalf("users %v", ids)
	}
	if !slices.Equal(users.Users[3].Roles, []string{"agent"}) || users.Users[0].Name != "Alice" || users.Users[0].Roles != nil {
		t.Fatalf("users %+v", users.Users)
	}
	if strings.Contains(string(r.body), "password") {
		t.Fatal("password material in /users")
	}

	r = e.web(http.MethodGet, "/users", nil, map[string]string{"Origin": "http://evil.example"})
	if r.header.Get("Access-Control-Allow-Origin") != "" || !slices.Contains(r.header.Values("Vary"), "Origin") {
		t.Fatalf("foreign origin got CORS headers %v", r.header)
	}

	preflight := map[string]string{"Origin": testOrigin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
	r = e.web(http.MethodOptions, "/login", nil, preflight)
	if r.status != http.StatusNoContent || r.header.Get("Access-Control-Allow-Origin") != testOrigin ||
		!strings.Contains(r.header.Get("Access-Control-Allow-Headers"), "Content-Type") {
		t.Fatalf("preflight: %d %v", r.status, r.header)
	}
	preflight["Origin"] = "http://evil.example"
	if r = e.web(http.MethodOptions, "/login", nil, preflight); r.status != http.StatusForbidden {
		t.Fatalf("foreign preflight: %d", r.status)
	}
	r = e.web(http.MethodPost, "/login", LoginRequest{Username: "bob", Password: "bob"}, map[string]string{"Origin": testOrigin})
	if r.status != 200 || r.header.Get("Access-Control-Allow-Origin") != testOrigin {
		t.Fatalf("login with origin: %d %v", r.status, r.header)
	}
}

// TestConcurrentWriters: WAL, the busy timeout and BEGIN IMMEDIATE let many
// writers through without SQLITE_BUSY errors or lost messages.
func TestConcurrentWriters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	th := e.createThread("alice", []string{"bob", "carol"}, "", "start", callOpts{}).Thread
	const writers, each = 6, 10
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			author := []string{"alice", "bob", "carol"}[w%3]
			for i := range each {
				e.addMessage(author, th.ID, fmt.Sprintf("w%d-%d", w, i), fmt.Sprintf("w%d-%d", w, i))
			}
		})
	}
	wg.Wait()
	if n := len(e.getThread("alice", th.ID, "", maxPageSize).Messages); n != 1+writers*each {
		t.Fatalf("%d messages, want %d", n, 1+writers*each)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	good := e.cfg
	for name, mutate := range map[string]func(*Config){
		"no path":    func(c *Config) { c.Path = "" },
		"no secret":  func(c *Config) { c.Secret = nil },
		"no signer":  func(c *Config) { c.Signer = nil },
		"bad ttl":    func(c *Config) { c.AccessTokenTTL = -time.Second },
		"query path": func(c *Config) { c.Path = filepath.Join(t.TempDir(), "x?y") },
		"dir path":   func(c *Config) { c.Path = t.TempDir() },
	} {
		c := good
		mutate(&c)
		if s, err := Open(t.Context(), c); err == nil {
			s.Close()
			t.Errorf("%s: Open succeeded", name)
		}
	}

	// A database written by a newer program is refused, not half-used.
	if _, err := e.srv.db.ExecContext(t.Context(), `INSERT INTO schema_migrations(version, name, applied_at) VALUES (99, 'future', 0)`); err != nil {
		t.Fatal(err)
	}
	e.stop()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if s, err := Open(ctx, good); err == nil || !strings.Contains(err.Error(), "newer") {
		if s != nil {
			s.Close()
		}
		t.Fatalf("Open on a newer schema: %v", err)
	}
}
