package sioapi

import (
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/hub"
	"github.com/ecbridge/ecb/internal/ops"
	"github.com/ecbridge/ecb/internal/presence"
	"github.com/ecbridge/ecb/internal/socketio"
	"github.com/ecbridge/ecb/internal/stacktest"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// A handshake with an accessToken runs getUserToken through the backend and
// emits session {userToken, user} as the first event; the userToken it
// carries opens the next socket directly, without a session event.
func TestHandshakeWithAccessTokenEmitsSession(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, Config{}, stacktest.Options{})
		c := e.connect(map[string]string{"accessToken": e.st.AccessToken("alice")})
		evs := c.pushes()
		if len(evs) != 1 || evs[0].name != EventSession {
			t.Fatalf("events after the handshake: %v, want one session", names(evs))
		}
		var sess ops.GetUserTokenResult
		evs[0].decode(t, &sess)
		if sess.UserToken == "" || sess.User.ID != "alice" {
			t.Fatalf("session %+v", sess)
		}
		if u, err := e.st.Ops.Authenticate(sess.UserToken, ""); err != nil || u.ID != "alice" {
			t.Fatalf("the session's userToken: %v %v", u, err)
		}

		again := e.connect(map[string]string{"userToken": sess.UserToken})
		var page struct{ Items []any }
		again.call(&page, "getContacts", map[string]any{"pageSize": 1})
		if len(page.Items) != 1 {
			t.Fatalf("getContacts %+v", page)
		}
		if evs := again.pushes(); len(evs) != 0 {
			t.Fatalf("a userToken handshake got %v", names(evs))
		}
	})
}

// A refused handshake is CONNECT_ERROR with {code, message} in data, and
// the socket gets nothing else.
func TestHandshakeRefusals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, Config{}, stacktest.Options{})
		for _, c := range []struct {
			name string
			auth any
			code apierr.Code
		}{
			{"no auth", nil, apierr.Unauthenticated},
			{"empty auth", map[string]string{}, apierr.Unauthenticated},
			{"bad userToken", map[string]string{"userToken": "not.a.jwt"}, apierr.Unauthenticated},
			{"bad accessToken", map[string]string{"accessToken": "nope"}, apierr.Unauthenticated},
			{"auth of the wrong shape", map[string]any{"userToken": 42}, apierr.InvalidArgument},
		} {
			sock, answer := e.dial(c.auth)
			msg, code := connectRefusal(t, answer)
			if code != c.code || msg == "" {
				t.Errorf("%s: %s %q, want %s", c.name, code, msg, c.code)
			}
			if evs := sock.pushes(); len(evs) != 0 {
				t.Errorf("%s: a refused socket got %v", c.name, names(evs))
			}
		}
	})
}

// Operations are events answered through the ack with the envelope; an
// unknown event is not_found; an event without an ack is ignored.
func TestOperationsAreAcked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, Config{}, stacktest.Options{})
		c := e.connect(map[string]string{"userToken": e.st.UserToken("alice")})
		c.post(`2["getThreads",{}]`) // no ack id
		if a := c.emit("dance", map[string]any{}); a.code() != apierr.NotFound {
			t.Fatalf("unknown event: %+v", a)
		}
		if p := c.find(func(string) bool { return true }); p != "" {
			t.Fatalf("the event without an ack was answered: %q", p)
		}
		if a := c.emit("getThreads", map[string]any{"page": "one"}); a.code() != apierr.InvalidArgument {
			t.Fatalf("bad payload: %+v", a)
		}
		if a := c.emit("getThread", map[string]any{"threadToken": "nope"}); a.code() != apierr.Unauthenticated {
			t.Fatalf("bad threadToken: %+v", a)
		}
		// Acks come back in the order of the events.
		for i := range 5 {
			var page struct{ Total int }
			c.call(&page, "getThreads", map[string]any{})
			if page.Total != 0 {
				t.Fatalf("call %d: %+v", i, page)
			}
		}
	})
}

// Pushes are events: thread to the other members, message to every listener
// of the thread but the author's socket, with the thread's offset.
func TestPushes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, Config{}, stacktest.Options{})
		alice := e.connect(map[string]string{"userToken": e.st.UserToken("alice")})
		bob := e.connect(map[string]string{"userToken": e.st.UserToken("bob")})
		th := thread(t, alice, bob)
		if got := names(bob.pushes()); !slices.Equal(got, []string{"thread"}) {
			t.Fatalf("bob got %v after createThread, want thread", got)
		}
		var got struct{ Offset uint64 }
		bob.call(&got, "getThread", map[string]any{"threadToken": th.bobToken})

		var sent ops.SendMessageResult
		alice.call(&sent, "sendMessage", map[string]any{"threadToken": th.aliceToken, "body": "hi bob", "clientMessageId": "c1"})
		if sent.Message.Body != "hi bob" || sent.ThreadToken == "" {
			t.Fatalf("sendMessage ack %+v", sent)
		}
		evs := bob.pushes()
		if len(evs) != 1 || evs[0].name != "message" {
			t.Fatalf("bob got %v", names(evs))
		}
		var m ops.MessagePush
		evs[0].decode(t, &m)
		if m.ThreadID != th.id || m.Message.ID != sent.Message.ID || m.Offset != got.Offset+1 || m.Epoch == "" {
			t.Fatalf("message push %+v (getThread offset %d)", m, got.Offset)
		}
		for _, ev := range alice.pushes() {
			if ev.name == "message" {
				t.Fatal("the author's socket got its own message pushed")
			}
		}
		// The same clientMessageId again: the original answer, no second push.
		var retry ops.SendMessageResult
		alice.call(&retry, "sendMessage", map[string]any{"threadToken": th.aliceToken, "body": "hi bob", "clientMessageId": "c1"})
		if retry.Message.ID != sent.Message.ID || len(bob.pushes()) != 0 {
			t.Fatalf("retry created %+v", retry)
		}
	})
}

// tokenExpiring comes TokenExpiryWarning before the userToken expires;
// refreshToken swaps in a fresh token of the same user (and only that), so
// the socket outlives the first token; at the expiry of the token it holds,
// the socket gets closing {token_expired} and a DISCONNECT.
func TestTokenExpiryAndRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, Config{TokenExpiryWarning: time.Minute}, stacktest.Options{UserTTL: time.Hour})
		c := e.connect(map[string]string{"userToken": e.st.UserToken("alice")})
		firstExpiry := time.Now().Add(time.Hour)

		time.Sleep(time.Hour - time.Minute - time.Second)
		if evs := c.pushes(); len(evs) != 0 {
			t.Fatalf("before the warning: %v", names(evs))
		}
		time.Sleep(time.Second)
		evs := c.pushes()
		if len(evs) != 1 || evs[0].name != EventTokenExpiring {
			t.Fatalf("at the warning: %v", names(evs))
		}
		var warn struct{ ExpiresAt time.Time }
		evs[0].decode(t, &warn)
		if !warn.ExpiresAt.Equal(firstExpiry.Truncate(time.Second)) {
			t.Fatalf("tokenExpiring %v, want %v", warn.ExpiresAt, firstExpiry)
		}

		for _, bad := range []struct {
			token string
			code  apierr.Code
		}{
			{e.st.UserToken("bob"), apierr.Forbidden},
			{"not.a.jwt", apierr.Unauthenticated},
			{"", apierr.Unauthenticated},
		} {
			if a := c.emit(EventRefreshToken, map[string]string{"userToken": bad.token}); a.code() != bad.code {
				t.Fatalf("refreshToken with %q: %+v, want %s", bad.token, a, bad.code)
			}
		}
		var fresh refreshResult
		c.call(&fresh, EventRefreshToken, map[string]string{"userToken": e.st.UserToken("alice")})
		secondExpiry := time.Now().Add(time.Hour)
		if !fresh.ExpiresAt.Equal(secondExpiry.Truncate(time.Second)) {
			t.Fatalf("refreshToken answered %v, want %v", fresh.ExpiresAt, secondExpiry)
		}

		time.Sleep(2 * time.Minute) // past the first token's expiry
		if c.isEnded() || len(c.pushes()) != 0 {
			t.Fatal("the socket ended, or was warned, at the expiry of the token it replaced")
		}
		c.call(nil, "getThreads", map[string]any{})

		time.Sleep(time.Until(secondExpiry))
		evs = c.pushes()
		if !slices.Equal(names(evs), []string{EventTokenExpiring, EventClosing}) {
			t.Fatalf("at the second expiry: %v", names(evs))
		}
		var closing closingEvent
		evs[1].decode(t, &closing)
		if closing.Reason != "token_expired" {
			t.Fatalf("closing %+v", closing)
		}
		if c.find(func(p string) bool { return p == "1" }) == "" {
			t.Fatal("no DISCONNECT packet after closing")
		}
	})
}

// A socket that dies without a goodbye ends after pingInterval +
// pingTimeout, and its user turns offline then (with lastSeen) for those
// who see them.
func TestPingTimeoutTurnsTheUserOffline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, Config{}, stacktest.Options{})
		bob := e.connect(map[string]string{"userToken": e.st.UserToken("bob")})
		bob.call(nil, "getContacts", map[string]any{}) // bob sees alice
		alice := e.connect(map[string]string{"userToken": e.st.UserToken("alice")})
		alice.call(nil, "setPresence", map[string]any{"show": "away"})
		shows := func() []string {
			var out []string
			for _, ev := range bob.pushes() {
				var p presence.Presence
				ev.decode(t, &p)
				out = append(out, p.UserID+":"+p.Show)
			}
			return out
		}
		if got := shows(); !slices.Equal(got, []string{"alice:available", "alice:away"}) {
			t.Fatalf("bob got %v", got)
		}

		alice.mute()
		gone := time.Now()
		time.Sleep(pingInterval + pingTimeout - time.Second)
		if got := shows(); len(got) != 0 {
			t.Fatalf("before the ping timeout bob got %v", got)
		}
		time.Sleep(time.Second)
		evs := bob.pushes()
		if len(evs) != 1 {
			t.Fatalf("at the ping timeout bob got %v", names(evs))
		}
		var p presence.Presence
		evs[0].decode(t, &p)
		if p.UserID != "alice" || p.Show != presence.Offline || p.LastSeen == nil || !p.LastSeen.Equal(gone.Add(pingInterval+pingTimeout)) {
			t.Fatalf("presence %+v, want alice offline, lastSeen at the timeout", p)
		}
		if n := e.st.Hub.UserConnections("alice"); n != 0 {
			t.Fatalf("alice still has %d connections", n)
		}
	})
}

// The hub ends sockets: kicked (the Server API) tells the client why first;
// a slow consumer is cut without a word, and leaves its threads.
func TestHubCloses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, Config{}, stacktest.Options{})
		c := e.connect(map[string]string{"userToken": e.st.UserToken("carol")})
		if n, _ := e.st.Hub.DisconnectUser("carol", hub.ReasonKicked); n != 1 {
			t.Fatalf("DisconnectUser closed %d connections", n)
		}
		evs := c.pushes()
		var closing closingEvent
		if len(evs) != 1 || evs[0].name != EventClosing {
			t.Fatalf("kicked socket got %v", names(evs))
		}
		evs[0].decode(t, &closing)
		if closing.Reason != "kicked" || c.find(func(p string) bool { return p == "1" }) == "" {
			t.Fatalf("kicked: closing %+v, then DISCONNECT?", closing)
		}

		e2 := newEnv(t, Config{Socket: socketioConfig(4 << 10)}, stacktest.Options{})
		alice := e2.connect(map[string]string{"userToken": e2.st.UserToken("alice")})
		bob := e2.connect(map[string]string{"userToken": e2.st.UserToken("bob")})
		th := thread(t, alice, bob)
		bob.call(nil, "getThread", map[string]any{"threadToken": th.bobToken})
		bob.mute() // stops reading
		for i := 0; i < 8 && slices.Contains(e2.st.Hub.ListenerUsers(th.id), "bob"); i++ {
			alice.call(nil, "sendMessage", map[string]any{"threadToken": th.aliceToken, "body": strings.Repeat("x", 1000) + body(i)})
		}
		if slices.Contains(e2.st.Hub.ListenerUsers(th.id), "bob") || e2.st.Hub.UserConnections("bob") != 0 {
			t.Fatal("a socket that does not read was not cut as a slow consumer")
		}
	})
}

// Whispers (AgentsOnly pushes) reach the sockets of agents and supervisors
// only: the hub asks each socket once, at Register.
func TestSeesAgentsOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, Config{}, stacktest.Options{})
		for user, want := range map[string]bool{"agent1": true, "super": true, "alice": false, "helpbot": false} {
			u, err := e.st.Ops.Authenticate(e.st.UserToken(user), "")
			if err != nil {
				t.Fatal(err)
			}
			c := &conn{sess: &session{user: u}}
			if got := c.SeesAgentsOnly(); got != want {
				t.Errorf("%s (roles %v): SeesAgentsOnly %v, want %v", user, u.Roles, got, want)
			}
		}
		anon, err := e.st.Signer.SignAnonymousToken(ecbserver.AnonParams{Origins: []string{stacktest.Origin}})
		if err != nil {
			t.Fatal(err)
		}
		u, err := e.st.Ops.Authenticate(anon, stacktest.Origin)
		if err != nil {
			t.Fatal(err)
		}
		if (&conn{sess: &session{user: u}}).SeesAgentsOnly() {
			t.Error("an anonymous visitor sees whispers")
		}
	})
}

func socketioConfig(queueBytes int) socketio.Config {
	return socketio.Config{WriteQueueBytes: queueBytes}
}
