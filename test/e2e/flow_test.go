package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

type user struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type message struct {
	ID              string   `json:"id"`
	ThreadID        string   `json:"threadId"`
	AuthorID        string   `json:"authorId"`
	Body            string   `json:"body"`
	ClientMessageID string   `json:"clientMessageId"`
	Offset          uint64   `json:"offset"`
	Mentions        []string `json:"mentions"`
}

type thread struct {
	ID      string   `json:"id"`
	Members []string `json:"members"`
}

type page[T any] struct {
	Items    []T  `json:"items"`
	Page     int  `json:"page"`
	PageSize int  `json:"pageSize"`
	Total    int  `json:"total"`
	HasMore  bool `json:"hasMore"`
}

type signedThread struct {
	Thread      thread `json:"thread"`
	ThreadToken string `json:"threadToken"`
}

type created struct {
	Thread      thread  `json:"thread"`
	ThreadToken string  `json:"threadToken"`
	Message     message `json:"message"`
	Epoch       string  `json:"epoch"`
}

type threadPage struct {
	Thread      thread    `json:"thread"`
	ThreadToken string    `json:"threadToken"`
	Messages    []message `json:"messages"`
	NextCursor  string    `json:"nextCursor"`
	Epoch       string    `json:"epoch"`
	Offset      uint64    `json:"offset"`
}

type sent struct {
	Message     message `json:"message"`
	ThreadToken string  `json:"threadToken"`
	Epoch       string  `json:"epoch"`
}

type messagePush struct {
	ThreadID string  `json:"threadId"`
	Epoch    string  `json:"epoch"`
	Offset   uint64  `json:"offset"`
	Message  message `json:"message"`
}

// TestSeedFlowOverRESTAndSSE is issue 2's "done when": alice logs in, lists
// contacts and threads, creates a thread with bob and writes; bob, listening
// on SSE, receives her messages live; bob answers.
func TestSeedFlowOverRESTAndSSE(t *testing.T) {
	d := startFreshDemo(t) // generates its keys and secret on first start
	alice := d.login(t, "alice")
	bob := d.login(t, "bob")

	bobStream := openStream(t, d.ECB, bob)
	if bobStream.Ready.Recovered != nil || bobStream.Ready.Resumed || bobStream.ID == "" {
		t.Fatalf("fresh stream ready = %+v: want resumed false and no recovered (nothing to recover)", bobStream.Ready)
	}

	contacts := decodeData[page[user]](t, call(t, "GET", d.ECB+"/v1/contacts?pageSize=1", nil, bearer(alice)))
	if contacts.Total != 2 || len(contacts.Items) != 1 || !contacts.HasMore || contacts.PageSize != 1 {
		t.Fatalf("alice's first contacts page = %+v, want 1 of 2 with more", contacts)
	}
	second := decodeData[page[user]](t, call(t, "GET", d.ECB+"/v1/contacts?page=2&pageSize=1", nil, bearer(alice)))
	if len(second.Items) != 1 || second.HasMore || second.Items[0].ID == contacts.Items[0].ID {
		t.Fatalf("second page = %+v", second)
	}
	ids := map[string]bool{contacts.Items[0].ID: true, second.Items[0].ID: true}
	if !ids["bob"] || !ids["carol"] {
		t.Fatalf("alice's contacts = %v, want bob and carol", ids)
	}

	threads := decodeData[page[signedThread]](t, call(t, "GET", d.ECB+"/v1/threads", nil, bearer(alice)))
	if threads.Total != 0 {
		t.Fatalf("alice starts with %d threads", threads.Total)
	}

	r := call(t, "POST", d.ECB+"/v1/threads", map[string]any{
		"participants": []string{"bob"}, "subject": "lunch",
		"message": map[string]any{"body": "hi bob", "clientMessageId": "c-1"},
	}, bearer(alice))
	if r.Status != http.StatusCreated {
		t.Fatalf("createThread status %d", r.Status)
	}
	c := decodeData[created](t, r)
	if c.Thread.ID == "" || c.ThreadToken == "" || c.Message.Body != "hi bob" || c.Message.Offset != 1 {
		t.Fatalf("createThread = %+v", c)
	}

	ev := bobStream.next(t, 5*time.Second)
	if ev.Event != "thread" {
		t.Fatalf("bob got %q, want the thread push", ev.Event)
	}
	var tp struct {
		ThreadID string  `json:"threadId"`
		Change   string  `json:"change"`
		Message  message `json:"message"`
	}
	_ = json.Unmarshal(ev.Data, &tp)
	if tp.ThreadID != c.Thread.ID || tp.Change != "created" || tp.Message.Body != "hi bob" {
		t.Fatalf("thread push = %s", ev.Data)
	}

	bobThreads := decodeData[page[signedThread]](t, call(t, "GET", d.ECB+"/v1/threads", nil, bearer(bob)))
	if bobThreads.Total != 1 || bobThreads.Items[0].Thread.ID != c.Thread.ID {
		t.Fatalf("bob's threads = %+v", bobThreads)
	}
	bobTT := bobThreads.Items[0].ThreadToken
	tpage := decodeData[threadPage](t, call(t, "GET", d.ECB+"/v1/threads/"+c.Thread.ID, nil,
		bearer(bob), "ECB-Thread-Token: "+bobTT, "ECB-Stream: "+bobStream.ID))
	if len(tpage.Messages) != 1 || tpage.Messages[0].Body != "hi bob" || tpage.Offset != 1 || tpage.Epoch != c.Epoch {
		t.Fatalf("bob's getThread = %+v", tpage)
	}

	for i := 2; i <= 4; i++ {
		r := call(t, "POST", d.ECB+"/v1/threads/"+c.Thread.ID+"/messages",
			map[string]any{"body": fmt.Sprintf("message %d", i)}, bearer(alice), "ECB-Thread-Token: "+c.ThreadToken)
		s := decodeData[sent](t, r)
		if s.Message.Offset != uint64(i) || s.ThreadToken == "" {
			t.Fatalf("sendMessage %d = %+v", i, s)
		}
		ev := bobStream.next(t, 5*time.Second)
		var mp messagePush
		if err := json.Unmarshal(ev.Data, &mp); err != nil || ev.Event != "message" {
			t.Fatalf("bob got %s %s", ev.Event, ev.Data)
		}
		if mp.Offset != uint64(i) || mp.Message.Body != fmt.Sprintf("message %d", i) || mp.Message.AuthorID != "alice" || mp.Epoch != c.Epoch {
			t.Fatalf("push %d = %+v", i, mp)
		}
	}

	// bob answers through his stream: his own stream does not get an echo.
	r = call(t, "POST", d.ECB+"/v1/threads/"+c.Thread.ID+"/messages",
		map[string]any{"body": "hello alice"}, bearer(bob), "ECB-Thread-Token: "+tpage.ThreadToken, "ECB-Stream: "+bobStream.ID)
	if s := decodeData[sent](t, r); s.Message.AuthorID != "bob" || s.Message.Offset != 5 {
		t.Fatalf("bob's sendMessage = %+v", s)
	}
	bobStream.expectNone(t, 300*time.Millisecond)

	// alice reads the whole thread: five messages in order.
	all := decodeData[threadPage](t, call(t, "GET", d.ECB+"/v1/threads/"+c.Thread.ID, nil, bearer(alice), "ECB-Thread-Token: "+c.ThreadToken))
	if len(all.Messages) != 5 || all.Messages[0].Body != "hi bob" || all.Messages[4].Body != "hello alice" {
		t.Fatalf("alice's getThread has %d messages", len(all.Messages))
	}
}

// TestSSEResumeWithLastEventID drops bob's stream, sends while he is away and
// reconnects with Last-Event-ID: he gets exactly what he missed.
func TestSSEResumeWithLastEventID(t *testing.T) {
	d := startDemo(t)
	alice := d.login(t, "alice")
	bob := d.login(t, "bob")
	c := decodeData[created](t, call(t, "POST", d.ECB+"/v1/threads", map[string]any{
		"participants": []string{"bob"}, "message": map[string]any{"body": "first"},
	}, bearer(alice)))
	bt := decodeData[page[signedThread]](t, call(t, "GET", d.ECB+"/v1/threads", nil, bearer(bob))).Items[0].ThreadToken

	s1 := openStream(t, d.ECB, bob)
	decodeData[threadPage](t, call(t, "GET", d.ECB+"/v1/threads/"+c.Thread.ID, nil, bearer(bob), "ECB-Thread-Token: "+bt, "ECB-Stream: "+s1.ID))
	send := func(body string) {
		decodeData[sent](t, call(t, "POST", d.ECB+"/v1/threads/"+c.Thread.ID+"/messages", map[string]any{"body": body}, bearer(alice), "ECB-Thread-Token: "+c.ThreadToken))
	}
	send("before the cut")
	if ev := s1.next(t, 5*time.Second); ev.Event != "message" {
		t.Fatalf("got %s", ev.Event)
	}
	last := s1.LastID
	s1.Close()
	send("while away 1")
	send("while away 2")

	s2 := resumeStream(t, d.ECB, bob, last)
	if !s2.Ready.Resumed || s2.Ready.Recovered == nil || !*s2.Ready.Recovered || s2.ID != s1.ID {
		t.Fatalf("resumed ready = %+v (stream %s, was %s)", s2.Ready, s2.ID, s1.ID)
	}
	for _, want := range []string{"while away 1", "while away 2"} {
		ev := s2.next(t, 5*time.Second)
		var mp messagePush
		_ = json.Unmarshal(ev.Data, &mp)
		if mp.Message.Body != want {
			t.Fatalf("after resume got %q, want %q", mp.Message.Body, want)
		}
	}
	s2.expectNone(t, 200*time.Millisecond)

	// An unknown Last-Event-ID: a new stream that says plainly it did not recover.
	s3 := openStream(t, d.ECB, bob, "Last-Event-ID: nosuchstream:7")
	if s3.Ready.Resumed || s3.Ready.Recovered == nil || *s3.Ready.Recovered || s3.ID == s1.ID {
		t.Fatalf("unknown stream ready = %+v", s3.Ready)
	}
}

// TestOperability: health, readiness, metrics, and a graceful shutdown that
// tells SSE clients why their stream ends.
func TestOperability(t *testing.T) {
	d := startDemo(t)
	alice := d.login(t, "alice")
	decodeData[page[user]](t, call(t, "GET", d.ECB+"/v1/contacts", nil, bearer(alice)))
	call(t, "GET", d.ECB+"/v1/contacts?page=-1", nil, bearer(alice)) // a failure: invalid_argument
	stream := openStream(t, d.ECB, alice)
	// A question nobody takes yet (bob's, not to push to alice's stream): the support gauges show it waiting.
	if asked := decodeData[struct{ Position int }](t, call(t, "POST", d.ECB+"/v1/ops/support.ask", map[string]any{"workgroup": "support", "question": "metrics?"}, bearer(d.login(t, "bob")))); asked.Position != 1 {
		t.Fatalf("support.ask: position %d", asked.Position)
	}

	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready"} {
		resp, err := http.Get(d.ECB + path)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v %v", path, resp, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), want) {
			t.Errorf("%s = %q", path, body)
		}
	}
	resp, err := http.Get(d.ECB + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`ecb_operations_total{op="getContacts",outcome="ok"} 1`,
		`ecb_operations_total{op="getContacts",outcome="invalid_argument"} 1`,
		`ecb_backend_call_duration_seconds_count{call="authenticate",outcome="ok"} 2`, // alice, bob
		`ecb_connections{transport="sse"} 1`,
		`ecb_pushes_delivered_total`,
		`ecb_slow_consumers_total 0`,
		`ecb_support_open{workgroup="support"} 1`,
		`ecb_support_queue_length{workgroup="support"} 1`,
		`ecb_support_agents_available{workgroup="support"} 0`,
		`ecb_support_chats{workgroup="support"} 0`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Error("security headers missing")
	}

	d.stop()
	ev := stream.next(t, 5*time.Second)
	if ev.Event != "close" || !strings.Contains(string(ev.Data), "shutdown") {
		t.Fatalf("on shutdown the stream got %s %s, want close {reason: shutdown}", ev.Event, ev.Data)
	}
}
