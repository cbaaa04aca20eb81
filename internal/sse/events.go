package sse

import (
	"context"
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
	// ReconnectAfterMs, on a shutdown, is the delay the retry field gave.
	ReconnectAfterMs int64 `json:"reconnectAfterMs,omitempty"`
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
	o, err := a.openStream(r.Context(), u, lastID)
	if err != nil {
		WriteError(w, err)
		return
	}
	st, ready := o.st, o.ready
	// Presence follows whether the stream is read, not whether it is kept
	// for a resume (a page gone is offline at once, back online on resume).
	presence := a.ops.Presence()
	presence.SetReading(st, true)
	defer func() {
		if st.detach(o.gen, time.Now()) { // not when a newer response took over
			presence.SetReading(st, false)
		}
	}()

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
		var closed, kicked bool
		var reason hub.Reason
		buf, closed, kicked, reason = st.pending(o.gen, buf)
		if kicked {
			return // a newer response serves the stream
		}
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
		case <-o.kick:
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
			// Reconnect elsewhere, not all at once: EventSource waits retry.
			after := a.reconnectAfter().Milliseconds()
			buf = append(buf, "retry: "...)
			buf = strconv.AppendInt(buf, after, 10)
			buf = append(buf, '\n')
			data, _ := json.Marshal(closeEvent{Reason: string(hub.ReasonShutdown), ReconnectAfterMs: after})
			buf = append(buf, "event: close\ndata: "...)
			buf = append(buf, data...)
			buf = append(buf, "\n\n"...)
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

// opened is a stream served by one response: gen is the response's number
// on it, kick closed when a newer response takes the stream over.
type opened struct {
	st    *stream
	ready readyEvent
	gen   uint64
	kick  <-chan struct{}
}

// openStream resumes the stream named by lastEventID when this node holds
// it for u, picks it up when another node handed it over (Handoff), or opens
// a new one. A resumed stream keeps whether it may receive whispers; a new
// one takes it from u.
func (a *API) openStream(ctx context.Context, u *auth.User, lastEventID string) (opened, error) {
	id, seq, named := parseEventID(lastEventID)
	if named {
		if st := a.stream(id); st != nil && st.userID == u.ID {
			if gen, kick, recovered, ok := st.attachAfter(seq); ok {
				return opened{st: st, ready: readyEvent{StreamID: st.id, Resumed: true, Recovered: &recovered}, gen: gen, kick: kick}, nil
			}
		}
	}
	var handed *HandoffRecord
	if named && a.cfg.Handoff != nil {
		rec, ok, err := a.cfg.Handoff.Take(ctx, id, u.ID)
		if err != nil {
			a.log.Warn("sse: a handed-over stream could not be looked up", "err", err)
		} else if ok {
			handed = &rec
		}
	}
	agents := ops.SeesWhispers(u)
	if handed != nil {
		agents = handed.Agents
	}
	st, err := a.newStream(u.ID, agents)
	if err != nil {
		return opened{}, err
	}
	gen, kick, _ := st.attach() // a stream nobody else knows yet
	o := opened{st: st, ready: readyEvent{StreamID: st.id}, gen: gen, kick: kick}
	switch {
	case handed != nil:
		// Listen again from where the stream was on its node: the
		// client loses nothing if it saw every event written there.
		recovered := a.ops.Adopt(ctx, ops.Caller{User: u, Conn: st}, handed.Threads) && seq == handed.Seq && !handed.Partial
		o.ready.Resumed, o.ready.Recovered = true, &recovered
	case lastEventID != "": // one we no longer know: its events are lost
		o.ready.Recovered = new(bool)
	}
	return o, nil
}

// newStream admits and registers a new stream of userID.
func (a *API) newStream(userID string, agents bool) (*stream, error) {
	if err := a.ops.AdmitConnection(userID); err != nil { // limits.connectionsPerUser, limits.maxConnections
		return nil, err
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
		return nil, apierr.New(apierr.RateLimited, "at most %d event streams per user", a.cfg.MaxStreamsPerUser)
	}
	st := newStream(a.newStreamID(), userID, a.cfg.ResumeEvents, a.cfg.QueueBytes)
	st.agents = agents
	a.streams[st.id] = st
	a.mu.Unlock()
	a.hub.Register(st, userID)
	a.metrics.StreamOpened()
	return st, nil
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
