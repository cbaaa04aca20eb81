package ops

import (
	"encoding/json"

	"github.com/ecbridge/ecb/internal/callbacks"
	"github.com/ecbridge/ecb/internal/support"
)

// SetCallbacks makes the support operations post their events to the
// backend through p (nil: off). It must be called before the Service serves
// requests.
func (s *Service) SetCallbacks(p *callbacks.Poster) { s.cbs = p }

// callback posts an event of the support request r, keyed by its id so that
// the events of one conversation stay in order. The engine's events call it
// with the engine's lock held: Post only enqueues.
func (s *Service) callback(r support.Request, typ, userID string, data map[string]any) {
	if s.cbs == nil {
		return
	}
	s.callbackKey(r.ID, callbacks.Event{Type: typ, OperationID: r.OperationID, Workgroup: r.Workgroup,
		RequestID: r.ID, ThreadID: r.ThreadID, UserID: userID}, data)
}

func (s *Service) callbackKey(key string, ev callbacks.Event, data map[string]any) {
	if s.cbs == nil {
		return
	}
	if data != nil {
		if b, err := json.Marshal(data); err == nil {
			ev.Data = b
		}
	}
	s.cbs.Post(key, ev)
}
