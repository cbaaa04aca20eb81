// Package sse owns ECB's second client API: the operations over REST under /v1
// with the {data}/{error} envelope, and the pushes over Server-Sent Events at
// GET /v1/events. It only decodes HTTP, calls package ops and encodes; the
// streams plug into the hub as hub.Conn.
//
// A stream outlives its HTTP response for a resume window: a client that
// reconnects with Last-Event-ID ("<streamId>:<seq>") gets the events it
// missed, or a ready event with recovered=false when the gap is gone.
// The API is safe for concurrent use; Run owns the janitor goroutine.
package sse

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/auth"
	"github.com/ecbridge/ecb/internal/hub"
	"github.com/ecbridge/ecb/internal/ops"
	"github.com/ecbridge/ecb/internal/periodic"
)

// Headers of the REST API.
const (
	HeaderThreadToken = "ECB-Thread-Token"
	HeaderStream      = "ECB-Stream"
)

// Config tunes the API; zero values mean the defaults of config.SSE (and
// config.HTTP.MaxBodyBytes), filled in by New.
type Config struct {
	MaxBodyBytes      int64
	Heartbeat         time.Duration
	QueueBytes        int
	ResumeWindow      time.Duration
	ResumeEvents      int
	MaxStreamsPerUser int
	// StreamIDPrefix, when set, starts every stream id ("<prefix>.<random>"):
	// a cluster node puts its tag there, so that any node can tell which one
	// holds a stream (docs/cluster.md).
	StreamIDPrefix string
	// Handoff, when set, keeps the streams of this node when it shuts down,
	// for another node to pick up on their client's reconnect (cluster mode).
	Handoff Handoff
	// ReconnectJitter spreads the reconnects of the streams this node ends
	// when it shuts down: each is told (retry) to wait a random time up to it
	// (default 2s).
	ReconnectJitter time.Duration
}

// Handoff keeps the streams of a node that shuts down, so that a client's
// reconnect with Last-Event-ID to another node loses nothing (cluster mode:
// cluster.StreamHandoff).
type Handoff interface {
	// Save keeps rec under streamID for ttl.
	Save(ctx context.Context, streamID string, rec HandoffRecord, ttl time.Duration) error
	// Take removes and returns the record of streamID if it belongs to
	// userID; ok is false when there is none (or it is another user's,
	// which stays).
	Take(ctx context.Context, streamID, userID string) (rec HandoffRecord, ok bool, err error)
}

// HandoffRecord is what a stream's next node needs: whose it is, whether it
// may receive whispers, the last event written to its client, and where
// each thread it listens to was when that event was written.
type HandoffRecord struct {
	User    string                  `json:"u"`
	Agents  bool                    `json:"a,omitempty"`
	Seq     uint64                  `json:"s"`
	Threads map[string]hub.Position `json:"t"`
	Partial bool                    `json:"p,omitempty"` // a thread it listened to is missing
}

func (c *Config) setDefaults() {
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 64 << 10
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = 15 * time.Second
	}
	if c.QueueBytes <= 0 {
		c.QueueBytes = 1 << 20
	}
	if c.ResumeWindow <= 0 {
		c.ResumeWindow = 2 * time.Minute
	}
	if c.ResumeEvents <= 0 {
		c.ResumeEvents = 256
	}
	if c.MaxStreamsPerUser <= 0 {
		c.MaxStreamsPerUser = 16
	}
	if c.ReconnectJitter <= 0 {
		c.ReconnectJitter = 2 * time.Second
	}
}

// Metrics is what the API reports.
type Metrics interface {
	StreamOpened()
	StreamClosed()
}

type nopMetrics struct{}

func (nopMetrics) StreamOpened() {}
func (nopMetrics) StreamClosed() {}

// API serves /v1.
type API struct {
	cfg     Config
	ops     *ops.Service
	hub     *hub.Hub
	log     *slog.Logger
	metrics Metrics
	mux     *http.ServeMux

	mu      sync.Mutex
	streams map[string]*stream
	done    chan struct{} // closed by Shutdown: live responses end
	handed  chan struct{} // closed when Shutdown has handed the streams over
	once    sync.Once
}

// New returns the API. metrics may be nil.
func New(cfg Config, svc *ops.Service, h *hub.Hub, log *slog.Logger, metrics Metrics) *API {
	cfg.setDefaults()
	if metrics == nil {
		metrics = nopMetrics{}
	}
	a := &API{cfg: cfg, ops: svc, hub: h, log: log, metrics: metrics, streams: map[string]*stream{}, done: make(chan struct{}), handed: make(chan struct{})}
	m := http.NewServeMux()
	m.HandleFunc("POST /v1/token", a.token)
	m.HandleFunc("GET /v1/contacts", a.authed(a.contacts))
	m.HandleFunc("GET /v1/threads", a.authed(a.threads))
	m.HandleFunc("POST /v1/threads", a.authed(a.createThread))
	m.HandleFunc("GET /v1/threads/{id}", a.authed(a.getThread))
	m.HandleFunc("POST /v1/threads/{id}/messages", a.authed(a.sendMessage))
	m.HandleFunc("DELETE /v1/streams/{stream}/threads/{id}", a.authed(a.stopListening))
	m.HandleFunc("POST /v1/threads/{id}/typing", a.authed(a.threadOp(ops.OpTyping)))
	m.HandleFunc("POST /v1/threads/{id}/read", a.authed(a.threadOp(ops.OpMarkRead)))
	m.HandleFunc("POST /v1/threads/{id}/participants", a.authed(a.threadOp(ops.OpAddParticipants)))
	m.HandleFunc("POST /v1/threads/{id}/leave", a.authed(a.threadOp(ops.OpLeaveThread)))
	m.HandleFunc("POST /v1/threads/{id}/join", a.authed(a.joinThread))
	m.HandleFunc("DELETE /v1/threads/{id}/participants/{userId}", a.authed(a.threadOp(ops.OpRemoveParticipant)))
	m.HandleFunc("PATCH /v1/threads/{id}", a.authed(a.threadOp(ops.OpUpdateThread)))
	m.HandleFunc("DELETE /v1/threads/{id}", a.authed(a.threadOp(ops.OpDeleteThread)))
	m.HandleFunc("DELETE /v1/threads/{id}/messages/{messageId}", a.authed(a.threadOp(ops.OpDeleteMessage)))
	m.HandleFunc("PATCH /v1/threads/{id}/messages/{messageId}", a.authed(a.threadOp(ops.OpEditMessage)))
	m.HandleFunc("PUT /v1/threads/{id}/messages/{messageId}/reactions/{reaction}", a.authed(a.threadOp(ops.OpReact)))
	m.HandleFunc("DELETE /v1/threads/{id}/messages/{messageId}/reactions/{reaction}", a.authed(a.threadOp(ops.OpUnreact)))
	m.HandleFunc("GET /v1/messages", a.authed(a.searchMessages))
	m.HandleFunc("PUT /v1/threads/{id}/access/{userId}", a.authed(a.threadOp(ops.OpSetAccess)))
	m.HandleFunc("POST /v1/threads/{id}/uploads", a.authed(a.threadOp(ops.OpGetUploadURL)))
	m.HandleFunc("POST /v1/presence", a.authed(a.bodyOp(ops.OpSetPresence)))
	m.HandleFunc("GET /v1/presence", a.authed(a.getPresence))
	m.HandleFunc("POST /v1/resume", a.authed(a.bodyOp(ops.OpResume)))
	m.HandleFunc("GET /v1/users", a.authed(a.searchUsers))
	m.HandleFunc("POST /v1/contacts", a.authed(a.bodyOp(ops.OpAddContact)))
	m.HandleFunc("DELETE /v1/contacts/{userId}", a.authed(a.removeContact))
	m.HandleFunc("PATCH /v1/profile", a.authed(a.bodyOp(ops.OpSetProfile)))
	m.HandleFunc("DELETE /v1/profile/properties/{name}", a.authed(a.deleteProfileProperty))
	// Every operation by its protocol name, for those without a route of their own
	// (the support operations) and for clients that prefer one shape.
	m.HandleFunc("POST /v1/ops/{op}", a.authed(func(w http.ResponseWriter, r *http.Request, c ops.Caller) {
		a.bodyOp(r.PathValue("op"))(w, r, c)
	}))
	m.HandleFunc("GET /v1/events", a.events)
	m.HandleFunc("DELETE /v1/events/{stream}", a.authed(a.logoff))
	m.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, apierr.New(apierr.NotFound, "no such route: %s %s", r.Method, r.URL.Path))
	})
	a.mux = m
	return a
}

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// WriteJSON writes the {data} envelope.
func WriteJSON(w http.ResponseWriter, status int, data any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(apierr.Result(data, nil))
}

// WriteError writes the {error} envelope with the code's HTTP status.
func WriteError(w http.ResponseWriter, err error) {
	e := apierr.From(err)
	if e.Code == apierr.RateLimited && e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.Body().RetryAfter))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(e.Code.HTTPStatus())
	_ = json.NewEncoder(w).Encode(apierr.Result(nil, e))
}

// bearer returns the token of the Authorization header.
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

type authedHandler func(w http.ResponseWriter, r *http.Request, c ops.Caller)

// authed verifies the userToken and finds the stream the request names.
func (a *API) authed(h authedHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, err := a.ops.Authenticate(bearer(r), auth.RequestOrigin(r))
		if err != nil {
			WriteError(w, err)
			return
		}
		c := ops.Caller{User: u}
		if id := r.Header.Get(HeaderStream); id != "" {
			st := a.stream(id)
			if st == nil || st.userID != u.ID {
				WriteError(w, apierr.New(apierr.NotFound, "no such stream: open GET /v1/events and use the streamId of its ready event"))
				return
			}
			c.Conn = st
		}
		h(w, r.WithContext(auth.WithUser(r.Context(), u)), c)
	}
}

// decodeBody reads a JSON object body within the size limit.
func (a *API) decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return apierr.New(apierr.PayloadTooLarge, "request body exceeds %d bytes", a.cfg.MaxBodyBytes)
		}
		return apierr.Wrap(err, apierr.InvalidArgument, "could not read the request body")
	}
	if len(strings.TrimSpace(string(raw))) == 0 {
		return apierr.New(apierr.InvalidArgument, "a JSON body is required")
	}
	return ops.Decode(raw, v)
}

func pageOf(r *http.Request) (ops.PageRequest, error) {
	var p ops.PageRequest
	var err error
	if v := r.URL.Query().Get("page"); v != "" {
		if p.Page, err = strconv.Atoi(v); err != nil {
			return p, apierr.New(apierr.InvalidArgument, "page must be a whole number")
		}
	}
	if v := r.URL.Query().Get("pageSize"); v != "" {
		if p.PageSize, err = strconv.Atoi(v); err != nil {
			return p, apierr.New(apierr.InvalidArgument, "pageSize must be a whole number")
		}
	}
	return p, nil
}

func (a *API) token(w http.ResponseWriter, r *http.Request) {
	var req ops.GetUserTokenRequest
	if err := a.decodeBody(w, r, &req); err != nil {
		WriteError(w, err)
		return
	}
	res, err := a.ops.GetUserToken(r.Context(), req)
	reply(w, http.StatusOK, res, err)
}

func reply(w http.ResponseWriter, status int, data any, err error) {
	if err != nil {
		WriteError(w, err)
		return
	}
	WriteJSON(w, status, data)
}

func (a *API) contacts(w http.ResponseWriter, r *http.Request, c ops.Caller) {
	p, err := pageOf(r)
	if err != nil {
		WriteError(w, err)
		return
	}
	res, err := a.ops.GetContacts(r.Context(), c, p)
	reply(w, http.StatusOK, res, err)
}

func (a *API) threads(w http.ResponseWriter, r *http.Request, c ops.Caller) {
	p, err := pageOf(r)
	if err != nil {
		WriteError(w, err)
		return
	}
	req := ops.GetThreadsRequest{PageRequest: p}
	switch v := r.URL.Query().Get("public"); v {
	case "", "false":
	case "true":
		req.Public = true
	default:
		WriteError(w, apierr.New(apierr.InvalidArgument, "public must be true or false"))
		return
	}
	res, err := a.ops.GetThreads(r.Context(), c, req)
	reply(w, http.StatusOK, res, err)
}

// joinThread is POST /v1/threads/{id}/join: no threadToken yet, the
// backend signs one.
func (a *API) joinThread(w http.ResponseWriter, r *http.Request, c ops.Caller) {
	res, err := a.ops.JoinThread(r.Context(), c, ops.JoinThreadRequest{ThreadID: r.PathValue("id")})
	reply(w, http.StatusOK, res, err)
}

func (a *API) createThread(w http.ResponseWriter, r *http.Request, c ops.Caller) {
	var req ops.CreateThreadRequest
	if err := a.decodeBody(w, r, &req); err != nil {
		WriteError(w, err)
		return
	}
	res, err := a.ops.CreateThread(r.Context(), c, req)
	reply(w, http.StatusCreated, res, err)
}

// threadToken takes the token from the header (or the body's threadToken)
// and checks that it is for the thread the path names.
func (a *API) threadToken(r *http.Request, fromBody string) (string, error) {
	tok := r.Header.Get(HeaderThreadToken)
	if tok == "" {
		tok = fromBody
	}
	if tok == "" {
		return "", apierr.New(apierr.InvalidArgument, "the %s header is required", HeaderThreadToken)
	}
	return tok, nil
}

func (a *API) getThread(w http.ResponseWriter, r *http.Request, c ops.Caller) {
	tok, err := a.threadToken(r, "")
	if err != nil {
		WriteError(w, err)
		return
	}
	req := ops.GetThreadRequest{ThreadToken: tok, ThreadID: r.PathValue("id"), Before: r.URL.Query().Get("before")}
	if v := r.URL.Query().Get("limit"); v != "" {
		if req.Limit, err = strconv.Atoi(v); err != nil {
			WriteError(w, apierr.New(apierr.InvalidArgument, "limit must be a whole number"))
			return
		}
	}
	res, err := a.ops.GetThread(r.Context(), c, req)
	reply(w, http.StatusOK, res, err)
}

func (a *API) sendMessage(w http.ResponseWriter, r *http.Request, c ops.Caller) {
	var req ops.SendMessageRequest
	if err := a.decodeBody(w, r, &req); err != nil {
		WriteError(w, err)
		return
	}
	tok, err := a.threadToken(r, req.ThreadToken)
	if err != nil {
		WriteError(w, err)
		return
	}
	req.ThreadToken = tok
	req.ThreadID = r.PathValue("id")
	res, err := a.ops.SendMessage(r.Context(), c, req)
	reply(w, http.StatusCreated, res, err)
}

func (a *API) stopListening(w http.ResponseWriter, r *http.Request, c ops.Caller) {
	st := a.stream(r.PathValue("stream"))
	if st == nil || st.userID != c.User.ID {
		WriteError(w, apierr.New(apierr.NotFound, "no such stream"))
		return
	}
	c.Conn = st
	res, err := a.ops.StopListening(r.Context(), c, ops.StopListeningRequest{ThreadID: r.PathValue("id")})
	reply(w, http.StatusOK, res, err)
}

// logoff ends a stream of the caller at once (Openfire's logoff) instead of
// keeping it for the resume window: see dropStream. Presence turns offline
// now if the stream was the user's last connection. A stream that is not
// the caller's is not_found, like one that never existed.
func (a *API) logoff(w http.ResponseWriter, r *http.Request, c ops.Caller) {
	st := a.stream(r.PathValue("stream"))
	if st == nil || st.userID != c.User.ID || !a.dropStream(st, reasonLogoff) {
		WriteError(w, apierr.New(apierr.NotFound, "no such stream"))
		return
	}
	reply(w, http.StatusOK, struct {
		StreamID string `json:"streamId"`
		Ended    bool   `json:"ended"`
	}{st.id, true}, nil)
}

// reasonLogoff closes a stream its client ended (DELETE /v1/events/{id}).
const reasonLogoff hub.Reason = "logoff"

// bodyOp runs the operation op with the JSON body as its payload.
func (a *API) bodyOp(op string) authedHandler {
	return func(w http.ResponseWriter, r *http.Request, c ops.Caller) {
		var payload json.RawMessage
		if err := a.decodeBody(w, r, &payload); err != nil {
			WriteError(w, err)
			return
		}
		res, err := a.ops.Call(r.Context(), c, op, payload)
		reply(w, http.StatusOK, res, err)
	}
}

// threadOp runs the operation op on the thread of the path: the JSON body
// (optional) is its payload, completed with the threadToken of the
// ECB-Thread-Token header and the path's thread id.
func (a *API) threadOp(op string) authedHandler {
	return func(w http.ResponseWriter, r *http.Request, c ops.Caller) {
		fields := map[string]json.RawMessage{}
		if r.ContentLength != 0 {
			if err := a.decodeBody(w, r, &fields); err != nil {
				WriteError(w, err)
				return
			}
		}
		var bodyToken string
		_ = json.Unmarshal(fields["threadToken"], &bodyToken)
		tok, err := a.threadToken(r, bodyToken)
		if err != nil {
			WriteError(w, err)
			return
		}
		fields["threadToken"], _ = json.Marshal(tok)
		fields["threadId"], _ = json.Marshal(r.PathValue("id"))
		// The other ids a route names (removeParticipant, setAccess,
		// deleteMessage, editMessage, react) win over the body's.
		for _, k := range []string{"userId", "messageId", "reaction"} {
			if v := r.PathValue(k); v != "" {
				fields[k], _ = json.Marshal(v)
			}
		}
		payload, _ := json.Marshal(fields)
		res, err := a.ops.Call(r.Context(), c, op, payload)
		reply(w, http.StatusOK, res, err)
	}
}

// searchMessages is GET /v1/messages?query=...&cursor=...&limit=...; the
// ECB-Thread-Token header, when present, limits the search to its thread.
func (a *API) searchMessages(w http.ResponseWriter, r *http.Request, c ops.Caller) {
	q := r.URL.Query()
	req := ops.SearchMessagesRequest{Query: q.Get("query"), ThreadToken: r.Header.Get(HeaderThreadToken), Cursor: q.Get("cursor")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			WriteError(w, apierr.New(apierr.InvalidArgument, "limit must be a whole number"))
			return
		}
		req.Limit = n
	}
	res, err := a.ops.SearchMessages(r.Context(), c, req)
	reply(w, http.StatusOK, res, err)
}

func (a *API) searchUsers(w http.ResponseWriter, r *http.Request, c ops.Caller) {
	p, err := pageOf(r)
	if err != nil {
		WriteError(w, err)
		return
	}
	res, err := a.ops.SearchUsers(r.Context(), c, ops.SearchUsersRequest{Query: r.URL.Query().Get("query"), PageRequest: p})
	reply(w, http.StatusOK, res, err)
}

func (a *API) removeContact(w http.ResponseWriter, r *http.Request, c ops.Caller) {
	res, err := a.ops.RemoveContact(r.Context(), c, ops.ContactRequest{UserID: r.PathValue("userId")})
	reply(w, http.StatusOK, res, err)
}

func (a *API) deleteProfileProperty(w http.ResponseWriter, r *http.Request, c ops.Caller) {
	res, err := a.ops.DeleteProfileProperty(r.Context(), c, ops.DeleteProfilePropertyRequest{Name: r.PathValue("name")})
	reply(w, http.StatusOK, res, err)
}

func (a *API) getPresence(w http.ResponseWriter, r *http.Request, c ops.Caller) {
	res, err := a.ops.GetPresence(r.Context(), c, ops.GetPresenceRequest{UserIDs: split(r.URL.Query().Get("userIds"))})
	reply(w, http.StatusOK, res, err)
}

func split(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (a *API) stream(id string) *stream {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.streams[id]
}

func (a *API) newStreamID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	id := base64.RawURLEncoding.EncodeToString(b[:])
	if a.cfg.StreamIDPrefix != "" {
		id = a.cfg.StreamIDPrefix + "." + id
	}
	return id
}

// reconnectAfter is how long a stream ended by the shutdown is told to wait.
func (a *API) reconnectAfter() time.Duration {
	return 250*time.Millisecond + mrand.N(a.cfg.ReconnectJitter)
}

// Run expires streams whose resume window has passed, until ctx is done.
func (a *API) Run(ctx context.Context) {
	periodic.Run(ctx, min(a.cfg.ResumeWindow/4, 10*time.Second), a.expire)
}

func (a *API) expire(now time.Time) {
	a.mu.Lock()
	var gone []*stream
	for id, st := range a.streams {
		if st.expired(now, a.cfg.ResumeWindow) {
			delete(a.streams, id)
			gone = append(gone, st)
		}
	}
	a.mu.Unlock()
	for _, st := range gone {
		a.hub.Unregister(st)
		a.metrics.StreamClosed()
	}
}

// Shutdown ends every live response (close {reason: shutdown}, with a
// jittered retry) and, with a Handoff, keeps every stream for another node
// once its responses have ended (or ctx is done); the hub closes the
// streams themselves.
func (a *API) Shutdown(ctx context.Context) {
	a.once.Do(func() { close(a.done) })
	defer func() {
		select {
		case <-a.handed:
		default:
			close(a.handed)
		}
	}()
	if a.cfg.Handoff == nil {
		return
	}
	for !a.quiet() {
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
	a.mu.Lock()
	streams := make([]*stream, 0, len(a.streams))
	for _, st := range a.streams {
		streams = append(streams, st)
	}
	a.mu.Unlock()
	saved := 0
	for _, st := range streams {
		rec, ok := st.handoff(a.hub.Threads(st))
		if !ok {
			continue
		}
		if err := a.cfg.Handoff.Save(ctx, st.id, rec, a.cfg.ResumeWindow); err != nil {
			a.log.Warn("sse: streams not handed over (their clients will re-fetch)", "err", err, "left", len(streams)-saved)
			return
		}
		saved++
	}
	if saved > 0 {
		a.log.Info("sse: streams handed over to the other nodes", "streams", saved)
	}
}

// HandedOver is closed once Shutdown has handed its streams over (or found
// it could not): from then on another node may pick them up.
func (a *API) HandedOver() <-chan struct{} { return a.handed }

// quiet reports whether no response serves a stream any more.
func (a *API) quiet() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, st := range a.streams {
		if st.isAttached() {
			return false
		}
	}
	return true
}

// Streams returns how many streams exist (live or within their resume window).
func (a *API) Streams() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.streams)
}
