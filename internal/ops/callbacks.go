package ops

import (
	"context"
	"encoding/json"

	"github.com/ecbridge/ecb/internal/callbacks"
	"github.com/ecbridge/ecb/internal/support"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// SetCallbacks makes the support operations post their events to the
// backend through p (nil: off). It must be called before the Service serves
// requests.
func (s *Service) SetCallbacks(p *callbacks.Poster) { s.cbs = p }

// callback posts an event of the support request r, keyed by its id so that
// the events of one conversation stay in order: the engine's events call it
// one at a time in the order of its transitions (outside its lock), and Post
// only enqueues.
func (s *Service) callback(r support.Request, typ, userID string, data map[string]any) {
	s.supportTouched()
	s.post(r, "", typ, userID, data)
}

// post posts an event of r with the event id id ("": a new one).
func (s *Service) post(r support.Request, id, typ, userID string, data map[string]any) {
	if s.cbs == nil {
		return
	}
	ev := callbacks.Event{ID: id, Type: typ, OperationID: r.OperationID, Workgroup: r.Workgroup,
		RequestID: r.ID, ThreadID: r.ThreadID, UserID: userID}
	if data != nil {
		if b, err := json.Marshal(data); err == nil {
			ev.Data = b
		}
	}
	s.cbs.Post(r.ID, ev)
}

// noteSupportThread records r's thread as a support thread, so that its
// messages are posted as message.created; forgetSupportThread ends that.
// In cluster mode (on the owner: the engine's events) every node is told
// too (support_chats.go), since each posts the messages it stores.
func (s *Service) noteSupportThread(r support.Request) {
	if r.ThreadID == "" {
		return
	}
	if s.cbs != nil {
		s.supportChats.Store(r.ThreadID, r)
	}
	if s.supportCluster != nil {
		s.supportCluster.shareChat(r, true)
	}
}

func (s *Service) forgetSupportThread(r support.Request) {
	if r.ThreadID == "" {
		return
	}
	s.supportChats.Delete(r.ThreadID)
	if s.supportCluster != nil {
		s.supportCluster.shareChat(r, false)
	}
}

// messageEventID is the event id of message m's message.created: the same
// for every post of one message (a sendMessage retried through another
// node, which the backend answers with the stored message), so that the
// backend's dedupe by event id drops a repeat.
func messageEventID(m ecbserver.Message) string {
	if m.ID == "" {
		return "" // a new one
	}
	return "ev_msg_" + m.ID
}

// messageCallback posts message.created when threadID is a live support
// chat; other threads cost one map lookup. It runs on the node that stored
// the message (a node that just started first waits until it knows the
// live chats, support_chats.go).
func (s *Service) messageCallback(ctx context.Context, threadID string, m ecbserver.Message) {
	if s.cbs == nil {
		return
	}
	if s.supportCluster != nil {
		s.supportCluster.awaitChats(ctx)
	}
	v, ok := s.supportChats.Load(threadID)
	if !ok {
		return
	}
	data := map[string]any{"messageId": m.ID, "body": m.Body, "offset": m.Offset}
	if m.Visibility != "" {
		data["visibility"] = m.Visibility
	}
	s.post(v.(support.Request), messageEventID(m), callbacks.TypeMessageCreated, m.AuthorID, data)
}
