package e2e

import (
	"encoding/json"
	"testing"
	"time"
)

// TestLiveFeaturesOverRESTAndSSE: typing, read marks, presence, group
// membership, resume and clientMessageId dedupe through the REST API, with the
// pushes arriving on SSE streams.
func TestLiveFeaturesOverRESTAndSSE(t *testing.T) {
	d := startDemo(t, "--set", "operations.typingTimeout=300ms")
	alice := d.login(t, "alice")
	bob := d.login(t, "bob")
	carol := d.login(t, "carol")

	aliceStream := openStream(t, d.ECB, alice)
	decodeData[page[user]](t, call(t, "GET", d.ECB+"/v1/contacts", nil, bearer(alice), "ECB-Stream: "+aliceStream.ID))
	c := decodeData[created](t, call(t, "POST", d.ECB+"/v1/threads", map[string]any{
		"participants": []string{"bob"}, "message": map[string]any{"body": "hi"},
	}, bearer(alice), "ECB-Stream: "+aliceStream.ID))

	// presence: bob comes online with a stream; alice (his contact) sees it
	bobStream := openStream(t, d.ECB, bob)
	ev := aliceStream.next(t, 5*time.Second)
	if ev.Event != "presence" {
		t.Fatalf("alice got %s, want presence", ev.Event)
	}
	var p struct{ UserID, Show string }
	_ = json.Unmarshal(ev.Data, &p)
	if p.UserID != "bob" || p.Show != "available" {
		t.Fatalf("presence %s", ev.Data)
	}
	decodeData[map[string]any](t, call(t, "POST", d.ECB+"/v1/presence", map[string]string{"show": "dnd", "status": "in a meeting"}, bearer(bob), "ECB-Stream: "+bobStream.ID))
	ev = aliceStream.next(t, 5*time.Second)
	_ = json.Unmarshal(ev.Data, &p)
	if ev.Event != "presence" || p.Show != "dnd" {
		t.Fatalf("after setPresence alice got %s %s", ev.Event, ev.Data)
	}
	pres := decodeData[struct {
		Presence []struct{ UserID, Show, Status string } `json:"presence"`
	}](t, call(t, "GET", d.ECB+"/v1/presence?userIds=bob", nil, bearer(alice)))
	if len(pres.Presence) != 1 || pres.Presence[0].Status != "in a meeting" {
		t.Fatalf("getPresence = %+v", pres)
	}
	if r := call(t, "GET", d.ECB+"/v1/presence?userIds=agent1", nil, bearer(alice)); r.code() != "forbidden" {
		t.Fatalf("presence of a non-contact: %s", r.code())
	}

	bobTT := decodeData[page[signedThread]](t, call(t, "GET", d.ECB+"/v1/threads", nil, bearer(bob))).Items[0].ThreadToken
	tp := decodeData[threadPage](t, call(t, "GET", d.ECB+"/v1/threads/"+c.Thread.ID, nil, bearer(bob), "ECB-Thread-Token: "+bobTT, "ECB-Stream: "+bobStream.ID))

	// typing: alice starts; bob sees start, then the automatic stop
	decodeData[map[string]any](t, call(t, "POST", d.ECB+"/v1/threads/"+c.Thread.ID+"/typing", map[string]string{"state": "start"},
		bearer(alice), "ECB-Thread-Token: "+c.ThreadToken, "ECB-Stream: "+aliceStream.ID))
	for _, want := range []string{"start", "stop"} {
		ev := bobStream.next(t, 5*time.Second)
		var ty struct{ UserID, State string }
		_ = json.Unmarshal(ev.Data, &ty)
		if ev.Event != "typing" || ty.State != want || ty.UserID != "alice" {
			t.Fatalf("bob got %s %s, want typing %s", ev.Event, ev.Data, want)
		}
	}

	// read mark: bob reads the first message; alice's stream gets it
	decodeData[map[string]any](t, call(t, "POST", d.ECB+"/v1/threads/"+c.Thread.ID+"/read", map[string]string{"messageId": tp.Messages[0].ID},
		bearer(bob), "ECB-Thread-Token: "+bobTT, "ECB-Stream: "+bobStream.ID))
	ev = aliceStream.next(t, 5*time.Second)
	if ev.Event != "read" {
		t.Fatalf("alice got %s, want read", ev.Event)
	}
	if r := call(t, "POST", d.ECB+"/v1/threads/"+c.Thread.ID+"/read", map[string]string{"messageId": tp.Messages[0].ID}, bearer(carol), "ECB-Thread-Token: "+bobTT); r.code() != "forbidden" {
		t.Fatalf("carol marking with bob's token: %s", r.code())
	}

	// dedupe: the same clientMessageId twice is one message, one push
	send := func() sent {
		return decodeData[sent](t, call(t, "POST", d.ECB+"/v1/threads/"+c.Thread.ID+"/messages",
			map[string]any{"body": "once", "clientMessageId": "dup-1"}, bearer(alice), "ECB-Thread-Token: "+c.ThreadToken))
	}
	first, second := send(), send()
	if first.Message.ID != second.Message.ID || first.Message.Offset != second.Message.Offset {
		t.Fatalf("retry answered another message: %+v vs %+v", first.Message, second.Message)
	}
	if ev := bobStream.next(t, 5*time.Second); ev.Event != "message" {
		t.Fatalf("bob got %s", ev.Event)
	}
	bobStream.expectNone(t, 300*time.Millisecond)

	// resume over REST: a second stream of bob's catches up from an offset
	s2 := openStream(t, d.ECB, bob)
	res := decodeData[struct {
		Threads []struct {
			Recovered bool `json:"recovered"`
			Missed    int  `json:"missed"`
		} `json:"threads"`
	}](t, call(t, "POST", d.ECB+"/v1/resume", map[string]any{"threads": []map[string]any{{"threadToken": bobTT, "epoch": tp.Epoch, "offset": tp.Offset}}},
		bearer(bob), "ECB-Stream: "+s2.ID))
	if len(res.Threads) != 1 || !res.Threads[0].Recovered || res.Threads[0].Missed < 2 {
		t.Fatalf("resume = %+v", res)
	}
	var bodies []string
	for range res.Threads[0].Missed {
		ev := s2.next(t, 5*time.Second)
		if ev.Event == "message" {
			var mp messagePush
			_ = json.Unmarshal(ev.Data, &mp)
			bodies = append(bodies, mp.Message.Body)
		}
	}
	if len(bodies) != 1 || bodies[0] != "once" {
		t.Fatalf("resumed messages = %v", bodies)
	}
	if r := call(t, "POST", d.ECB+"/v1/resume", map[string]any{"threads": []map[string]any{{"threadToken": bobTT}}}, bearer(carol)); r.code() != "invalid_argument" && r.code() != "forbidden" {
		t.Fatalf("carol resuming bob's thread: %s", r.code())
	}
}

// TestEveryOperationByName: POST /v1/ops/{operation} runs any operation of the
// protocol over REST, the support operations included.
func TestEveryOperationByName(t *testing.T) {
	d := startDemo(t)
	alice := d.login(t, "alice")
	contacts := decodeData[page[user]](t, call(t, "POST", d.ECB+"/v1/ops/getContacts", map[string]int{"pageSize": 1}, bearer(alice)))
	if contacts.Total != 2 || len(contacts.Items) != 1 {
		t.Fatalf("getContacts by name = %+v", contacts)
	}
	status := decodeData[map[string]any](t, call(t, "POST", d.ECB+"/v1/ops/getWorkgroupStatus", map[string]string{"workgroup": "support"}, bearer(alice)))
	if _, ok := status["queueLength"]; !ok {
		t.Fatalf("getWorkgroupStatus = %v", status)
	}
	if r := call(t, "POST", d.ECB+"/v1/ops/noSuchOperation", map[string]string{}, bearer(alice)); r.Status != 404 || r.code() != "not_found" {
		t.Fatalf("unknown operation: %d %s", r.Status, r.code())
	}
	if r := call(t, "POST", d.ECB+"/v1/ops/getContacts", map[string]string{}); r.code() != "unauthenticated" {
		t.Fatalf("without a token: %s", r.code())
	}
}

// TestSSEPresenceFollowsTheReader: a stream kept for a resume does not keep
// its user online. bob's only stream drops: alice sees him offline at once
// (long before sse.resumeWindow); bob resumes it: online again.
func TestSSEPresenceFollowsTheReader(t *testing.T) {
	d := startDemo(t, "--set", "sse.resumeWindow=10m")
	alice := d.login(t, "alice")
	bob := d.login(t, "bob")
	aliceStream := openStream(t, d.ECB, alice)
	decodeData[page[user]](t, call(t, "GET", d.ECB+"/v1/contacts", nil, bearer(alice), "ECB-Stream: "+aliceStream.ID))

	presenceOf := func(want string) {
		t.Helper()
		for {
			ev := aliceStream.next(t, 5*time.Second)
			if ev.Event != "presence" {
				continue
			}
			var p struct{ UserID, Show string }
			_ = json.Unmarshal(ev.Data, &p)
			if p.UserID == "bob" {
				if p.Show != want {
					t.Fatalf("bob is %s, want %s", p.Show, want)
				}
				return
			}
		}
	}
	bobStream := openStream(t, d.ECB, bob)
	presenceOf("available")
	id := bobStream.LastID
	bobStream.Close()
	presenceOf("offline")
	resumed := openStream(t, d.ECB, bob, "Last-Event-ID: "+id)
	if !resumed.Ready.Resumed {
		t.Fatalf("the stream was not resumed: %+v", resumed.Ready)
	}
	presenceOf("available")
}
