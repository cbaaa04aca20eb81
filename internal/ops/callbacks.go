package ops

import (
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
	if s.cbs == nil {
		return
	}
	ev := callbacks.Event{Type: typ, OperationID: r.OperationID, Workgroup: r.Workgroup,
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
func (s *Service) noteSupportThread(r support.Request) {
	if s.cbs != nil && r.ThreadID != "" {
		s.supportChats.Store(r.ThreadID, r)
	}
}

func (s *Service) forgetSupportThread(r support.Request) {
	if r.ThreadID != "" {
		s.supportChats.Delete(r.ThreadID)
	}
}

// messageCallback posts message.created when threadID is a live support
// chat; other threads cost one map lookup.
func (s *Service) messageCallback(threadID string, m ecbserver.Message) {
	v, ok := s.supportChats.Load(threadID)
	if !ok {
		return
	}
	data := map[string]any{"messageId": m.ID, "body": m.Body, "offset": m.Offset}
	if m.Visibility != "" {
		data["visibility"] = m.Visibility
	}
	s.callback(v.(support.Request), callbacks.TypeMessageCreated, m.AuthorID, data)
}
