package sse

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/presence"
	"github.com/ecbridge/ecb/internal/stacktest"
)

// The first event of a stream is ready, with the stream's id as event id
// "<streamId>:0"; pushes follow as named events with ids "<streamId>:<seq>".
// A REST request with ECB-Stream acts for the stream: getThread makes it a
// listener, and sendMessage does not echo the message back to it.
func TestStreamReadyPushesAndECBStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, testConfig(), stacktest.Options{})
		alice, bob := e.st.UserToken("alice"), e.st.UserToken("bob")

		as := e.open(alice, "")
		if as.header.Get("Content-Type") != "text/event-stream" || as.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("stream headers %v", as.header)
		}
		ar, aid := as.ready()
		if ar.StreamID == "" || ar.Resumed || ar.Recovered != nil || aid != ar.StreamID+":0" { // a new stream: nothing to recover
			t.Fatalf("ready %+v id %q", ar, aid)
		}
		bs := e.open(bob, "")
		br, _ := bs.ready()

		th := e.thread(alice, bob, ar.StreamID)
		if got := bs.named(); len(got) != 1 || got[0].name != "thread" {
			t.Fatalf("bob's stream got %+v, want the thread push", got)
		}
		if got := as.named(); len(got) != 0 {
			t.Fatalf("the creator's own stream got %+v", got)
		}
		e.listen(bob, br.StreamID, th.id, th.bobToken)

		e.send(alice, th.id, th.aliceToken, "one", HeaderStream+": "+ar.StreamID)
		e.send(alice, th.id, th.aliceToken, "two", HeaderStream+": "+ar.StreamID)
		got := bs.named()
		if b := bodies(t, got); !slices.Equal(b, []string{"one", "two"}) {
			t.Fatalf("bob's stream got %v", b)
		}
		for i, ev := range got {
			if want := br.StreamID + ":" + strconv.Itoa(i+2); ev.id != want { // 1 was the thread push
				t.Errorf("event %d id %q, want %q", i, ev.id, want)
			}
		}
		if got := as.named(); len(got) != 0 {
			t.Fatalf("sendMessage with ECB-Stream echoed to the author's stream: %+v", got)
		}

		// Without ECB-Stream the author's stream is just another listener.
		e.listen(alice, ar.StreamID, th.id, th.aliceToken)
		e.send(alice, th.id, th.aliceToken, "three")
		if b := bodies(t, as.named()); !slices.Equal(b, []string{"three"}) {
			t.Fatalf("alice's listening stream got %v without ECB-Stream on the send", b)
		}
		if b := bodies(t, bs.named()); !slices.Equal(b, []string{"three"}) {
			t.Fatalf("bob's stream got %v", b)
		}

		// DELETE /v1/streams/{stream}/threads/{id} stops the pushes.
		e.ok(nil, http.MethodDelete, "/v1/streams/"+br.StreamID+"/threads/"+th.id, bob, nil)
		e.send(alice, th.id, th.aliceToken, "four")
		if b := bodies(t, bs.named()); len(b) != 0 {
			t.Fatalf("bob's stream got %v after stopListening", b)
		}
		if r := e.do(http.MethodDelete, "/v1/streams/"+br.StreamID+"/threads/"+th.id, alice, nil); r.code() != apierr.NotFound {
			t.Fatalf("stopListening on another user's stream: %d %v", r.status, r.code())
		}
	})
}

// ECB-Stream must name a live stream of the caller.
func TestECBStreamMustBeTheCallersStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, testConfig(), stacktest.Options{})
		alice, bob := e.st.UserToken("alice"), e.st.UserToken("bob")
		as := e.open(alice, "")
		ar, _ := as.ready()
		th := e.thread(alice, bob, "")
		for _, c := range []struct{ name, user, stream, token string }{
			{"unknown stream", bob, "nope", th.bobToken},
			{"another user's stream", bob, ar.StreamID, th.bobToken},
		} {
			r := e.do(http.MethodGet, "/v1/threads/"+th.id, c.user, nil, HeaderThreadToken+": "+c.token, HeaderStream+": "+c.stream)
			if r.status != http.StatusNotFound || r.code() != apierr.NotFound {
				t.Errorf("%s: %d %v", c.name, r.status, r.code())
			}
		}
		if r := e.do(http.MethodPost, "/v1/presence", alice, map[string]string{"show": "away"}); r.code() == "" {
			t.Error("setPresence without ECB-Stream succeeded: it has no connection to set")
		}
	})
}

// A stream outlives its response for the resume window: Last-Event-ID
// (header or ?lastEventId=) picks it up again with what it missed; a stream
// that is gone, or a gap it no longer holds, is said with recovered=false.
func TestStreamResumeWithLastEventID(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, testConfig(), stacktest.Options{})
		alice, bob := e.st.UserToken("alice"), e.st.UserToken("bob")
		bs := e.open(bob, "")
		br, _ := bs.ready()
		th := e.thread(alice, bob, "")
		e.listen(bob, br.StreamID, th.id, th.bobToken)
		e.send(alice, th.id, th.aliceToken, "seen")
		seen := bs.named()
		last := seen[len(seen)-1].id
		bs.drop()

		e.send(alice, th.id, th.aliceToken, "missed 1")
		e.send(alice, th.id, th.aliceToken, "missed 2")
		bs = e.open(bob, last)
		evs := bs.named()
		var r readyEvent
		evs[0].decode(t, &r)
		if evs[0].name != "ready" || r.StreamID != br.StreamID || !r.Resumed || !isTrue(r.Recovered) || evs[0].id != last {
			t.Fatalf("resume ready %+v id %q (last %q)", r, evs[0].id, last)
		}
		if b := bodies(t, evs[1:]); !slices.Equal(b, []string{"missed 1", "missed 2"}) {
			t.Fatalf("resumed stream replayed %v", b)
		}
		// Still a listener: new pushes follow.
		e.send(alice, th.id, th.aliceToken, "live")
		evs = bs.named()
		if b := bodies(t, evs); !slices.Equal(b, []string{"live"}) {
			t.Fatalf("after resume: %v", b)
		}
		last = evs[len(evs)-1].id
		bs.drop()

		// ?lastEventId= does the same for clients that cannot set headers.
		bs = e.openRequest(func(r *http.Request) {}, "/v1/events?access_token="+bob+"&lastEventId="+last)
		if r, _ := bs.ready(); !r.Resumed || !isTrue(r.Recovered) || r.StreamID != br.StreamID {
			t.Fatalf("resume by query %+v", r)
		}

		// A gap older than the ring (ResumeEvents = 4): the stream is
		// resumed but says events were lost, and continues from now.
		for i := range 5 {
			e.send(alice, th.id, th.aliceToken, fmt.Sprint("burst ", i))
			synctest.Wait() // bob reads each: 5 at once would overflow the ring and cut him
		}
		if n := len(bs.named()); n != 5 {
			t.Fatalf("got %d of the 5 burst events", n)
		}
		bs.drop()
		bs = e.open(bob, br.StreamID+":1")
		if r, _ := bs.ready(); !r.Resumed || r.Recovered == nil || *r.Recovered {
			t.Fatalf("resume past the ring %+v, want resumed, not recovered", r)
		}
		bs.drop()

		// An id from the future cannot be recovered either.
		bs = e.open(bob, br.StreamID+":999")
		if r, _ := bs.ready(); !r.Resumed || r.Recovered == nil || *r.Recovered {
			t.Fatalf("resume from the future %+v", r)
		}
		bs.drop()

		// A stream we do not know (or another user's): a new stream, not recovered.
		for _, id := range []string{"unknown:3", "garbage"} {
			s := e.open(bob, id)
			if r, _ := s.ready(); r.Resumed || isTrue(r.Recovered) || r.StreamID == br.StreamID {
				t.Errorf("Last-Event-ID %q: %+v", id, r)
			}
			s.drop()
		}
		as := e.open(alice, br.StreamID+":1")
		if r, _ := as.ready(); r.Resumed || r.StreamID == br.StreamID {
			t.Fatalf("alice resumed bob's stream: %+v", r)
		}
	})
}

// One stream is read by one response at a time: a resume while an older
// response still serves it (a client back before its old connection is
// noticed gone) takes it over instead of being refused, and only the newer
// response gets the events from then on.
func TestStreamTakenOverByANewerResponse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, testConfig(), stacktest.Options{})
		alice, bob := e.st.UserToken("alice"), e.st.UserToken("bob")
		bs := e.open(bob, "")
		br, id := bs.ready()
		tp := e.thread(alice, bob, "")
		e.listen(bob, br.StreamID, tp.id, tp.bobToken)
		for _, ev := range bs.named() { // the thread's creation
			id = ev.id
		}

		second := e.open(bob, id)
		r, _ := second.ready()
		if !r.Resumed || !isTrue(r.Recovered) || r.StreamID != br.StreamID {
			t.Fatalf("second reader: %+v", r)
		}
		if !bs.ended() {
			t.Fatal("the older response still serves the stream after a newer one took it over")
		}
		e.send(alice, tp.id, tp.aliceToken, "after the takeover")
		if got := bodies(t, second.named()); len(got) != 1 || got[0] != "after the takeover" {
			t.Fatalf("newer response got %q", got)
		}
		// The older one wrote nothing more, not even a close event.
		if evs := bs.named(); len(evs) != 0 {
			t.Fatalf("the older response wrote %+v after the takeover", evs)
		}
	})
}

// The resume window ends: Run drops streams nobody read for that long, and
// a Last-Event-ID of such a stream gets a new one with recovered=false.
func TestStreamExpiresAfterTheResumeWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		e := newEnv(t, cfg, stacktest.Options{})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { defer close(done); e.api.Run(ctx) }()
		defer func() { cancel(); <-done }()

		bob := e.st.UserToken("bob")
		bs := e.open(bob, "")
		r, id := bs.ready()
		bs.drop()
		time.Sleep(cfg.ResumeWindow / 2)
		synctest.Wait()
		if n := e.api.Streams(); n != 1 {
			t.Fatalf("%d streams within the resume window, want 1", n)
		}
		time.Sleep(cfg.ResumeWindow)
		synctest.Wait()
		if n := e.api.Streams(); n != 0 {
			t.Fatalf("%d streams after the resume window, want 0", n)
		}
		bs = e.open(bob, id)
		if again, _ := bs.ready(); again.Resumed || isTrue(again.Recovered) || again.StreamID == r.StreamID {
			t.Fatalf("resume of an expired stream: %+v", again)
		}
	})
}

// A client that does not read is cut once its stream holds ResumeEvents
// unwritten events: it gets what was queued, then close {slow_consumer}.
func TestSlowStreamIsCut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, testConfig(), stacktest.Options{})
		alice, bob := e.st.UserToken("alice"), e.st.UserToken("bob")
		bs := e.open(bob, "")
		br, _ := bs.ready()
		th := e.thread(alice, bob, "")
		e.listen(bob, br.StreamID, th.id, th.bobToken)
		_ = bs.named() // the thread push

		resume := bs.stall()
		for i := range 6 {
			e.send(alice, th.id, th.aliceToken, fmt.Sprint("m", i))
			if i == 0 {
				// m0 is being written (the write blocks); m1..m4 then
				// fill the ring of 4 beside the written ones; m5 does not fit.
				synctest.Wait()
			}
		}
		synctest.Wait()
		if bs.ended() {
			t.Fatal("the response ended while its writer was blocked")
		}
		resume()
		evs := bs.named()
		if !bs.ended() {
			t.Fatal("the slow stream's response did not end")
		}
		if b := bodies(t, evs); !slices.Equal(b, []string{"m0", "m1", "m2", "m3", "m4"}) {
			t.Fatalf("slow stream got %v before its close", b)
		}
		lastEv := evs[len(evs)-1]
		var ce closeEvent
		lastEv.decode(t, &ce)
		if lastEv.name != "close" || ce.Reason != "slow_consumer" {
			t.Fatalf("last event %+v", lastEv)
		}
		// The cut stream is gone from the thread: the next message reaches nobody's queue.
		e.send(alice, th.id, th.aliceToken, "after")
		if got := e.st.Hub.ListenerUsers(th.id); slices.Contains(got, "bob") {
			t.Fatalf("bob's cut stream still listens: %v", got)
		}
		// And it cannot be resumed.
		bs = e.open(bob, evs[len(evs)-2].id)
		if r, _ := bs.ready(); r.Resumed || isTrue(r.Recovered) {
			t.Fatalf("resume of a cut stream %+v", r)
		}
	})
}

// Heartbeats are comments every sse.heartbeat; at the userToken's expiry the
// stream ends with close {token_expired} and is dropped; at shutdown with
// close {shutdown}.
func TestStreamHeartbeatExpiryAndShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		e := newEnv(t, cfg, stacktest.Options{UserTTL: time.Hour})
		bob := e.st.UserToken("bob")
		bs := e.open(bob, "")
		bs.ready()
		time.Sleep(cfg.Heartbeat)
		evs := bs.events()
		if len(evs) != 1 || !evs[0].comment || evs[0].data != "ping" {
			t.Fatalf("after one heartbeat interval: %+v", evs)
		}
		time.Sleep(time.Hour - cfg.Heartbeat)
		evs = bs.named()
		if len(evs) != 1 || evs[0].name != "close" || !strings.Contains(evs[0].data, `"token_expired"`) || !bs.ended() {
			t.Fatalf("at expiry: %+v ended=%v", evs, bs.ended())
		}
		if n := e.api.Streams(); n != 0 {
			t.Fatalf("%d streams after the token expired", n)
		}

		bob = e.st.UserToken("bob")
		bs = e.open(bob, "")
		bs.ready()
		e.api.Shutdown(context.Background())
		evs = bs.named()
		if len(evs) != 1 || evs[0].name != "close" || !strings.Contains(evs[0].data, `"shutdown"`) || !bs.ended() {
			t.Fatalf("at shutdown: %+v", evs)
		}
	})
}

// Refusals of GET /v1/events: no or a bad token, too many streams.
func TestStreamRefusals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, testConfig(), stacktest.Options{})
		if status, code := e.open("", "").refusal(); status != http.StatusUnauthorized || code != apierr.Unauthenticated {
			t.Errorf("no token: %d %s", status, code)
		}
		if status, code := e.open("not.a.jwt", "").refusal(); code != apierr.Unauthenticated {
			t.Errorf("bad token: %d %s", status, code)
		}
		bob := e.st.UserToken("bob")
		for range testConfig().MaxStreamsPerUser {
			e.open(bob, "").ready()
		}
		if status, code := e.open(bob, "").refusal(); status != http.StatusTooManyRequests || code != apierr.RateLimited {
			t.Errorf("one stream too many: %d %s", status, code)
		}
	})
}

// A user is online while one of their streams is read: a response that
// ends turns them offline at once (with lastSeen), a resume online again;
// the users who have them as a contact see each change.
func TestPresenceFollowsTheReadStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, testConfig(), stacktest.Options{})
		alice, bob := e.st.UserToken("alice"), e.st.UserToken("bob")
		bs := e.open(bob, "")
		br, _ := bs.ready()
		e.ok(nil, http.MethodGet, "/v1/contacts", bob, nil) // bob now watches alice

		as := e.open(alice, "")
		ar, aid := as.ready()
		show := func(want string) {
			t.Helper()
			evs := bs.named()
			if len(evs) != 1 || evs[0].name != "presence" {
				t.Fatalf("bob got %+v, want one presence push", evs)
			}
			var p presence.Presence
			evs[0].decode(t, &p)
			if p.UserID != "alice" || p.Show != want || (want == presence.Offline) != (p.LastSeen != nil) {
				t.Fatalf("presence %+v, want alice %s", p, want)
			}
		}
		show(presence.Available)
		e.ok(nil, http.MethodPost, "/v1/presence", alice, map[string]string{"show": "dnd", "status": "busy"}, HeaderStream+": "+ar.StreamID)
		show(presence.DND)

		as.drop()
		show(presence.Offline)
		var got struct{ Presence []presence.Presence }
		e.ok(&got, http.MethodGet, "/v1/presence?userIds=alice", bob, nil)
		if len(got.Presence) != 1 || got.Presence[0].Show != presence.Offline || got.Presence[0].LastSeen == nil {
			t.Fatalf("getPresence after the drop: %+v", got)
		}
		as = e.open(alice, aid)
		if r, _ := as.ready(); !r.Resumed {
			t.Fatalf("resume %+v", r)
		}
		show(presence.DND) // the stream keeps what it set

		if r := e.do(http.MethodGet, "/v1/presence?userIds=agent1", bob, nil); r.code() != apierr.Forbidden {
			t.Fatalf("getPresence of a stranger: %d %v", r.status, r.code())
		}
		_ = br
	})
}

// The REST operations: the envelope, the status of each code, the routes.
func TestRESTOperations(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, testConfig(), stacktest.Options{})

		var tok struct {
			UserToken string
			User      struct{ ID string }
		}
		e.ok(&tok, http.MethodPost, "/v1/token", "", map[string]string{"accessToken": e.st.AccessToken("alice")})
		if tok.UserToken == "" || tok.User.ID != "alice" {
			t.Fatalf("POST /v1/token: %+v", tok)
		}
		alice, bob := tok.UserToken, e.st.UserToken("bob")

		var page struct {
			Items    []struct{ ID string }
			Page     int
			PageSize int
			Total    int
			HasMore  bool
		}
		e.ok(&page, http.MethodGet, "/v1/contacts?page=1&pageSize=1", alice, nil)
		if len(page.Items) != 1 || page.PageSize != 1 || page.Total < 2 || !page.HasMore {
			t.Fatalf("contacts page %+v", page)
		}

		th := e.thread(alice, bob, "")
		for _, path := range []string{"/typing", "/read"} {
			body := map[string]any{"state": "start"}
			if path == "/read" {
				var msgs struct{ Messages []struct{ ID string } }
				e.ok(&msgs, http.MethodGet, "/v1/threads/"+th.id+"?limit=1", bob, nil, HeaderThreadToken+": "+th.bobToken)
				body = map[string]any{"messageId": msgs.Messages[0].ID}
			}
			e.ok(nil, http.MethodPost, "/v1/threads/"+th.id+path, bob, body, HeaderThreadToken+": "+th.bobToken)
		}
		// threadToken in the body instead of the header.
		e.ok(nil, http.MethodPost, "/v1/threads/"+th.id+"/messages", bob, map[string]any{"body": "via body", "threadToken": th.bobToken})
		// Every operation by name.
		var threads struct{ Items []any }
		e.ok(&threads, http.MethodPost, "/v1/ops/getThreads", bob, map[string]any{})
		if len(threads.Items) != 1 {
			t.Fatalf("getThreads by name: %+v", threads)
		}
		e.ok(nil, http.MethodPost, "/v1/threads/"+th.id+"/leave", bob, nil, HeaderThreadToken+": "+th.bobToken)

		for _, c := range []struct {
			name         string
			method, path string
			token        string
			body         any
			headers      []string
			status       int
			code         apierr.Code
		}{
			{"no token", "GET", "/v1/threads", "", nil, nil, 401, apierr.Unauthenticated},
			{"not a bearer", "GET", "/v1/threads", "", nil, []string{"Authorization: Basic " + alice}, 401, apierr.Unauthenticated},
			{"bad page", "GET", "/v1/threads?page=x", alice, nil, nil, 400, apierr.InvalidArgument},
			{"bad pageSize", "GET", "/v1/contacts?pageSize=x", alice, nil, nil, 400, apierr.InvalidArgument},
			{"bad limit", "GET", "/v1/threads/" + th.id + "?limit=x", alice, nil, []string{HeaderThreadToken + ": " + th.aliceToken}, 400, apierr.InvalidArgument},
			{"no thread token", "GET", "/v1/threads/" + th.id, alice, nil, nil, 400, apierr.InvalidArgument},
			{"no thread token on send", "POST", "/v1/threads/" + th.id + "/messages", alice, map[string]any{"body": "x"}, nil, 400, apierr.InvalidArgument},
			{"no thread token on typing", "POST", "/v1/threads/" + th.id + "/typing", alice, map[string]any{"state": "start"}, nil, 400, apierr.InvalidArgument},
			{"empty body", "POST", "/v1/threads", alice, "  ", nil, 400, apierr.InvalidArgument},
			{"malformed JSON", "POST", "/v1/threads", alice, "{", nil, 400, apierr.InvalidArgument},
			{"body too large", "POST", "/v1/token", "", `{"accessToken":"` + strings.Repeat("x", 64<<10) + `"}`, nil, 413, apierr.PayloadTooLarge},
			{"bad access token", "POST", "/v1/token", "", map[string]string{"accessToken": "nope"}, nil, 401, apierr.Unauthenticated},
			{"unknown operation", "POST", "/v1/ops/dance", alice, map[string]any{}, nil, 404, apierr.NotFound},
			{"unknown route", "GET", "/v1/nothing", alice, nil, nil, 404, apierr.NotFound},
			{"thread token of another thread", "POST", "/v1/threads/other/typing", alice, map[string]any{"state": "start"}, []string{HeaderThreadToken + ": " + th.aliceToken}, 400, apierr.InvalidArgument},
		} {
			r := e.do(c.method, c.path, c.token, c.body, c.headers...)
			if r.status != c.status || r.code() != c.code {
				t.Errorf("%s: %d %s, want %d %s", c.name, r.status, r.code(), c.status, c.code)
			}
			if r.header.Get("Content-Type") != "application/json" || r.header.Get("Cache-Control") != "no-store" {
				t.Errorf("%s: headers %v", c.name, r.header)
			}
		}
	})
}

// A rate_limited answer carries Retry-After in seconds, rounded up.
func TestWriteErrorRetryAfter(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteError(rec, &apierr.Error{Code: apierr.RateLimited, Message: "slow down", RetryAfter: 1500 * time.Millisecond})
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "2" {
		t.Fatalf("%d Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
	}
}

// Config's zero values mean the defaults (as its comment says): an API built
// with Config{} serves streams and bodies instead of refusing every stream
// (MaxStreamsPerUser 0), every body (MaxBodyBytes 0) or panicking on a zero
// heartbeat.
func TestZeroConfigMeansTheDefaults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, Config{}, stacktest.Options{})
		bob := e.st.UserToken("bob")
		for range 16 {
			e.open(bob, "").ready()
		}
		if status, code := e.open(bob, "").refusal(); code != apierr.RateLimited {
			t.Fatalf("17th stream: %d %s, want the default limit of 16", status, code)
		}
		e.ok(nil, http.MethodPost, "/v1/ops/getThreads", bob, map[string]any{"pad": strings.Repeat("x", 60<<10)})
		if r := e.do(http.MethodPost, "/v1/ops/getThreads", bob, map[string]any{"pad": strings.Repeat("x", 64<<10)}); r.code() != apierr.PayloadTooLarge {
			t.Fatalf("a body over 64 KiB: %d %s", r.status, r.code())
		}
	})
}

// isTrue reads ready's recovered, which a new stream leaves out.
func isTrue(b *bool) bool { return b != nil && *b }

// DELETE /v1/events/{streamId} ends a stream at once: its live response gets
// close {logoff} and ends, it no longer listens, its user turns offline for
// the watchers now (not at the end of the resume window), and it cannot be
// resumed. Only its own user may end it.
func TestLogoffEndsAStreamAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, testConfig(), stacktest.Options{})
		alice, bob := e.st.UserToken("alice"), e.st.UserToken("bob")
		bs := e.open(bob, "")
		br, _ := bs.ready()
		e.ok(nil, http.MethodGet, "/v1/contacts", bob, nil) // bob now watches alice
		as := e.open(alice, "")
		ar, _ := as.ready()
		th := e.thread(alice, bob, ar.StreamID)
		e.listen(alice, ar.StreamID, th.id, th.aliceToken)
		_ = bs.named() // alice online, the thread
		_ = as.named()

		for _, c := range []struct{ name, user, stream string }{
			{"another user's stream", bob, ar.StreamID},
			{"an unknown stream", alice, "nope"},
		} {
			if r := e.do(http.MethodDelete, "/v1/events/"+c.stream, c.user, nil); r.status != http.StatusNotFound || r.code() != apierr.NotFound {
				t.Fatalf("logoff of %s: %d %v, want 404 not_found", c.name, r.status, r.code())
			}
		}
		if as.ended() {
			t.Fatal("a refused logoff ended the stream")
		}

		e.ok(nil, http.MethodDelete, "/v1/events/"+ar.StreamID, alice, nil)
		evs := as.named()
		if !as.ended() {
			t.Fatal("the logged-off stream's response did not end")
		}
		var ce closeEvent
		if len(evs) == 0 || evs[len(evs)-1].name != "close" {
			t.Fatalf("logged-off stream got %+v, want a close event last", evs)
		}
		evs[len(evs)-1].decode(t, &ce)
		if ce.Reason != "logoff" {
			t.Fatalf("close reason %q, want logoff", ce.Reason)
		}
		got := bs.named()
		if len(got) != 1 || got[0].name != "presence" {
			t.Fatalf("bob got %+v, want alice's presence", got)
		}
		var p presence.Presence
		got[0].decode(t, &p)
		if p.UserID != "alice" || p.Show != presence.Offline {
			t.Fatalf("presence after logoff %+v, want alice offline", p)
		}
		if ls := e.st.Hub.ListenerUsers(th.id); slices.Contains(ls, "alice") {
			t.Fatalf("the logged-off stream still listens: %v", ls)
		}
		if n := e.api.Streams(); n != 1 {
			t.Fatalf("%d streams after the logoff, want 1 (bob's)", n)
		}
		again := e.open(alice, ar.StreamID+":1")
		if r, _ := again.ready(); r.Resumed || isTrue(r.Recovered) || r.StreamID == ar.StreamID {
			t.Fatalf("resume of a logged-off stream %+v", r)
		}
		if r := e.do(http.MethodDelete, "/v1/events/"+ar.StreamID, alice, nil); r.code() != apierr.NotFound {
			t.Fatalf("a second logoff: %d %v, want not_found", r.status, r.code())
		}
		_ = br
	})
}
