package sse

import (
	"net/http"
	"net/url"
	"slices"
	"testing"
	"testing/synctest"

	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/ops"
	"github.com/ecbridge/ecb/internal/stacktest"
)

// TestEditReactReplySearchOverREST walks issue 16 items 1-3 and 7 through
// the REST routes, and resumes a dropped event stream with Last-Event-ID:
// the missed edit and reactions come back in order, once.
func TestEditReactReplySearchOverREST(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, testConfig(), stacktest.Options{})
		alice, bob := e.st.UserToken("alice"), e.st.UserToken("bob")
		bs := e.open(bob, "")
		br, _ := bs.ready()
		th := e.thread(alice, bob, "")
		e.listen(bob, br.StreamID, th.id, th.bobToken)
		var sent ops.SendMessageResult
		e.ok(&sent, http.MethodPost, "/v1/threads/"+th.id+"/messages", alice, map[string]any{"body": "colour"}, HeaderThreadToken+": "+th.aliceToken)
		seen := bs.named()
		last := seen[len(seen)-1].id
		bs.drop()

		msgPath := "/v1/threads/" + th.id + "/messages/" + sent.Message.ID
		var ed ops.MessageChangeResult
		e.ok(&ed, http.MethodPatch, msgPath, alice, map[string]any{"body": "color"}, HeaderThreadToken+": "+th.aliceToken)
		if ed.Message.Body != "color" || ed.Message.EditedAt == nil || ed.Offset == 0 {
			t.Fatalf("PATCH: %+v", ed)
		}
		if r := e.do(http.MethodPatch, msgPath, bob, map[string]any{"body": "mine"}, HeaderThreadToken+": "+th.bobToken); r.code() != apierr.Forbidden {
			t.Fatalf("bob edits alice's message: %d %v", r.status, r.code())
		}
		react := msgPath + "/reactions/" + url.PathEscape("👍")
		var rc ops.MessageChangeResult
		e.ok(&rc, http.MethodPut, react, alice, nil, HeaderThreadToken+": "+th.aliceToken)
		if len(rc.Message.Reactions) != 1 || rc.Message.Reactions[0].Reaction != "👍" || !rc.Message.Reactions[0].Me {
			t.Fatalf("PUT reaction: %+v", rc)
		}
		e.ok(&rc, http.MethodDelete, react, alice, nil, HeaderThreadToken+": "+th.aliceToken)
		if r := e.do(http.MethodPut, msgPath+"/reactions/"+url.PathEscape("a b"), alice, nil, HeaderThreadToken+": "+th.aliceToken); r.code() != apierr.InvalidArgument {
			t.Fatalf("a reaction with a space: %v", r.code())
		}

		// Bob comes back: the edit and both reaction pushes, in order.
		bs = e.open(bob, last)
		evs := bs.named()
		var names []string
		for _, ev := range evs[1:] {
			names = append(names, ev.name)
		}
		if evs[0].name != "ready" || !slices.Equal(names, []string{"messageEdited", "reaction", "reaction"}) {
			t.Fatalf("resumed stream: ready %+v then %v", evs[0], names)
		}
		var rp ops.ReactionPush
		evs[3].decode(t, &rp)
		if rp.Change != "removed" || rp.UserID != "alice" || rp.Counts["👍"] != 0 {
			t.Fatalf("last reaction push %+v", rp)
		}

		// Bob replies; the push carries the quote.
		var reply ops.SendMessageResult
		e.ok(&reply, http.MethodPost, "/v1/threads/"+th.id+"/messages", bob, map[string]any{"body": "agreed", "replyTo": sent.Message.ID}, HeaderThreadToken+": "+th.bobToken)
		if reply.Message.ReplyTo == nil || reply.Message.ReplyTo.Excerpt != "color" || reply.Message.ReplyTo.AuthorID != "alice" {
			t.Fatalf("reply %+v", reply.Message)
		}

		var found ops.SearchMessagesResult
		e.ok(&found, http.MethodGet, "/v1/messages?query=colo", bob, nil)
		if len(found.Hits) != 1 || found.Hits[0].Message.ID != sent.Message.ID || found.Hits[0].ThreadToken == "" {
			t.Fatalf("GET /v1/messages: %+v", found)
		}
		e.ok(&found, http.MethodGet, "/v1/messages?query=agreed", bob, nil, HeaderThreadToken+": "+th.bobToken)
		if len(found.Hits) != 1 || found.Hits[0].Message.ReplyTo == nil {
			t.Fatalf("GET /v1/messages in the thread: %+v", found)
		}
	})
}
