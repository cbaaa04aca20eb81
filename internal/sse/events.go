package sse

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/auth"
	"github.com/ecbridge/ecb/internal/hub"
	"github.com/ecbridge/ecb/internal/ops"
)

// readyEvent is the first event of every response of GET /v1/events.
type readyEvent struct {
	StreamID string `json:"streamId"`
	// Resumed is true when the stream named by Last-Event-ID was picked up again.
	Resumed bool `json:"resumed"`
	// Recovered answers a Last-Event-ID: true when every event after it
	// follows; false means some were lost: re-fetch the threads you show
	// (getThread). Absent for a new stream, which has nothing to recover.
	Recovered *bool `json:"recovered,omitempty"`
}

// closeEvent is the last event when ECB ends a stream.
type closeEvent struct {
	Reason string `json:"reason"`
}

// events serves GET /v1/events. EventSource cannot set headers, so the
// userToken may also come in the access_token query parameter (ECB never logs
// query strings).
func (a *API) events(w http.ResponseWriter, r *http.Request) {
	token := bearer(r)
	if token == "" {
		token = r.URL.Query().Get("access_token")
	}
	u, err := a.ops.Authenticate(token, auth.RequestOrigin(r))
	if err != nil {
		WriteError(w, err)
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		WriteError(w, apierr.New(apierr.Internal, "streaming is not supported by this connection"))
		return
	}

	lastID := r.Header.Get("Last-Event-ID")
	if lastID == "" {
		lastID = r.URL.Query().Get("lastEventId")
	}
	st, ready, err := a.openStream(u.ID, lastID, ops.SeesWhispers(u))
	if err != nil {
		WriteError(w, err)
		return
	}
	if !st.attach() {
		WriteError(w, apierr.New(apierr.Conflict, "this stream is already being read by another connection"))
		return
	}
	defer st.detach(time.Now())
	// Presence follows whether the stream is read, not whether it is kept
	// for a resume (a page gone is offline at once, back online on resume).
	presence := a.ops.Presence()
	presence.SetReading(st, true)
	defer presence.SetReading(st, false)

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)

	buf := make([]byte, 0, 4096)
	readyData, _ := json.Marshal(ready)
	buf = append(buf, "retry: 2000\nid: "...)
	buf = append(buf, st.eventID(st.writtenSeq())...)
	buf = append(buf, "\nevent: ready\ndata: "...)
	buf = append(buf, readyData...)
	buf = append(buf, "\n\n"...)

	heartbeat := time.NewTicker(a.cfg.Heartbeat)
	defer heartbeat.Stop()
	expiry := time.NewTimer(time.Until(u.ExpiresAt))
	defer expiry.Stop()

	for {
		var closed bool
		var reason hub.Reason
		buf, closed, reason = st.pending(buf)
		if closed {
			buf = appendClose(buf, string(reason))
		}
		if len(buf) > 0 {
			if _, err := w.Write(buf); err != nil {
				return
			}
			flusher.Flush()
			buf = buf[:0]
		}
		if closed {
			return
		}
		select {
		case <-st.wake:
		case <-heartbeat.C:
			buf = append(buf, ": ping\n\n"...)
		case <-expiry.C:
			// The token ran out: the client must reconnect with a fresh one.
			a.dropStream(st, "token_expired")
			buf = appendClose(buf, "token_expired")
			_, _ = w.Write(buf)
			flusher.Flush()
			return
		case <-r.Context().Done():
			return
		case <-a.done:
			buf = appendClose(buf, string(hub.ReasonShutdown))
			_, _ = w.Write(buf)
			flusher.Flush()
			return
		}
	}
}

func appendClose(buf []byte, reason string) []byte {
	data, _ := json.Marshal(closeEvent{Reason: reason})
	buf = append(buf, "event: close\ndata: "...)
	buf = append(buf, data...)
	return append(buf, "\n\n"...)
}

// openStream resumes the stream named by lastEventID when it still exists and
// belongs to userID, or opens a new one.
// agents tells whether a new stream may receive whispers (hub.AgentsAudience);
// a resumed stream keeps what it was opened with.
func (a *API) openStream(userID, lastEventID string, agents bool) (*stream, readyEvent, error) {
	if id, seq, ok := parseEventID(lastEventID); ok {
		if st := a.stream(id); st != nil && st.userID == userID && !st.isClosed() {
			recovered := st.resume(seq)
			return st, readyEvent{StreamID: st.id, Resumed: true, Recovered: &recovered}, nil
		}
	}
	if err := a.ops.AdmitConnection(userID); err != nil { // limits.connectionsPerUser, limits.maxConnections
		return nil, readyEvent{}, err
	}
	a.mu.Lock()
	n := 0
	for _, st := range a.streams {
		if st.userID == userID {
			n++
		}
	}
	if n >= a.cfg.MaxStreamsPerUser {
		a.mu.Unlock()
		return nil, readyEvent{}, apierr.New(apierr.RateLimited, "at most %d event streams per user", a.cfg.MaxStreamsPerUser)
	}
	st := newStream(newStreamID(), userID, a.cfg.ResumeEvents, a.cfg.QueueBytes)
	st.agents = agents
	a.streams[st.id] = st
	a.mu.Unlock()
	a.hub.Register(st, userID)
	a.metrics.StreamOpened()
	ready := readyEvent{StreamID: st.id}
	if lastEventID != "" { // one we no longer know: its events are lost
		ready.Recovered = new(bool)
	}
	return st, ready, nil
}

// parseEventID splits an SSE event id "<streamId>:<seq>".
func parseEventID(s string) (id string, seq uint64, ok bool) {
	id, seqText, found := strings.Cut(s, ":")
	if !found || id == "" {
		return "", 0, false
	}
	seq, err := strconv.ParseUint(seqText, 10, 64)
	return id, seq, err == nil
}

// dropStream ends st at once with reason: it no longer listens, its live
// response gets close {reason}, and it cannot be resumed. It reports false
// when st was already gone.
func (a *API) dropStream(st *stream, reason hub.Reason) bool {
	a.mu.Lock()
	_, ok := a.streams[st.id]
	delete(a.streams, st.id)
	a.mu.Unlock()
	if ok {
		a.hub.Unregister(st)
		st.Close(reason)
		a.metrics.StreamClosed()
	}
	return ok
}
