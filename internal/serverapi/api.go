// Package serverapi owns ECB's Server API (/server/v1): what the company
// backend calls to act on ECB rather than answer it. With an API key from
// the configuration, whose scopes say what it may do, the backend overrides
// a user's access to a thread (a temporary ban is acc 0 with a TTL),
// publishes a system message into a thread, tells a thread's listeners that
// it was updated, closed or deleted, disconnects a user and revokes their
// tokens, reads connection counts, and manages the customer-support
// workgroups (workgroups.go). api/server.yaml is the normative description.
//
// Decisions are recorded in a Store, whose reads the operations consult on
// every call, then applied at once to the connections through package ops
// (on every node: the hub's Controller carries detaches, pushes and kicks).
// On one node the Store is an access.Store in memory; in cluster mode it is
// the Redis store of package cluster, which every node's operations read
// from a local cache it keeps in step, and which answers a write it cannot
// make in Redis with an error wrapping hub.ErrUnavailable (503 unavailable).
//
// Keys are compared in constant time and never logged; each call is logged
// with the key's name (at debug level for a system message published, the
// busiest call; see ServeHTTP). The API is safe for concurrent use.
package serverapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ecbridge/ecb/internal/access"
	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/auth"
	"github.com/ecbridge/ecb/internal/hub"
	"github.com/ecbridge/ecb/internal/ops"
	"github.com/ecbridge/ecb/internal/sse"
	"github.com/ecbridge/ecb/internal/support"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// Prefix is the path the Server API is served under.
const Prefix = "/server/v1/"

// MaxTTL is the longest ttlSeconds of an override.
const MaxTTL = 366 * 24 * time.Hour

const maxTTLSeconds = int(MaxTTL / time.Second) // 31622400

// API serves /server/v1.
type API struct {
	keys    *keyring
	ops     *ops.Service
	store   Store
	hub     *hub.Hub
	log     *slog.Logger
	maxBody int64
	mux     *http.ServeMux
	support support.Config // the defaults of workgroups put through the API
}

// Options are the API's collaborators.
type Options struct {
	Ops     *ops.Service
	Store   Store
	Hub     *hub.Hub
	Logger  *slog.Logger // default slog.Default()
	MaxBody int64        // request body limit in bytes (default 65536)
	// Support is the support section of the configuration: its support.*
	// settings are the defaults of the workgroups put through the API.
	Support support.Config
}

// Store is what the API needs of the store of live decisions: *access.Store
// on one node, the Redis store of package cluster on many. The reads answer
// from memory; the writes may block on ctx, and fail with access.ErrFull,
// access.ErrDeleted, or an error wrapping hub.ErrUnavailable when the shared
// state cannot be written.
type Store interface {
	SetAccess(ctx context.Context, threadID, userID string, acc auth.Access, ttl time.Duration) (access.Override, error)
	Override(threadID, userID string) (access.Override, bool)
	DeleteAccess(ctx context.Context, threadID, userID string) (bool, error)
	SetThreadStatus(ctx context.Context, threadID, status string) error
	ThreadStatus(threadID string) string
	Revoke(ctx context.Context, userID string, before time.Time) (time.Time, error)
}

var _ Store = (*access.Store)(nil)

// New returns the API for cfg (defaults set, validated).
func New(cfg Config, o Options) *API {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxBody <= 0 {
		o.MaxBody = 64 << 10
	}
	a := &API{keys: newKeyring(cfg.Keys), ops: o.Ops, store: o.Store, hub: o.Hub, log: o.Logger, maxBody: o.MaxBody, support: o.Support}
	m := http.NewServeMux()
	m.Handle("PUT /server/v1/threads/{threadId}/access/{userId}", a.scoped(ScopeAccessWrite, a.putAccess))
	m.Handle("GET /server/v1/threads/{threadId}/access/{userId}", a.scoped(ScopeAccessRead, a.getAccess))
	m.Handle("DELETE /server/v1/threads/{threadId}/access/{userId}", a.scoped(ScopeAccessWrite, a.deleteAccess))
	m.Handle("POST /server/v1/threads/{threadId}/messages", a.scoped(ScopeThreadsWrite, a.publish))
	m.Handle("POST /server/v1/threads/{threadId}/events", a.scoped(ScopeThreadsWrite, a.threadEvent))
	m.Handle("GET /server/v1/threads/{threadId}", a.scoped(ScopePresenceRead, a.getThread))
	m.Handle("POST /server/v1/threads/{threadId}/members/{userId}", a.scoped(ScopeThreadsWrite, a.addMember))
	m.Handle("DELETE /server/v1/threads/{threadId}/members/{userId}", a.scoped(ScopeThreadsWrite, a.removeMember))
	m.Handle("POST /server/v1/threads/{threadId}/announce", a.scoped(ScopeThreadsWrite, a.announce))
	m.Handle("POST /server/v1/users/{userId}/disconnect", a.scoped(ScopeUsersWrite, a.disconnect))
	m.Handle("GET /server/v1/users/{userId}/presence", a.scoped(ScopePresenceRead, a.presence))
	m.Handle("GET /server/v1/workgroups", a.scoped(ScopeWorkgroupsRead, a.listWorkgroups))
	m.Handle("GET /server/v1/workgroups/{name}", a.scoped(ScopeWorkgroupsRead, a.getWorkgroup))
	m.Handle("PUT /server/v1/workgroups/{name}", a.scoped(ScopeWorkgroupsWrite, a.putWorkgroup))
	m.Handle("DELETE /server/v1/workgroups/{name}", a.scoped(ScopeWorkgroupsWrite, a.deleteWorkgroup))
	m.Handle("GET /server/v1/workgroups/{name}/conversations", a.scoped(ScopeWorkgroupsRead, a.listConversations))
	m.Handle("POST /server/v1/support/conversations/{requestId}/close", a.scoped(ScopeWorkgroupsWrite, a.closeConversation))
	m.Handle("POST /server/v1/support/conversations/{requestId}/agents", a.scoped(ScopeWorkgroupsWrite, a.addAgent))
	m.HandleFunc(Prefix, func(w http.ResponseWriter, r *http.Request) {
		sse.WriteError(w, apierr.New(apierr.NotFound, "no such route: %s %s", r.Method, r.URL.Path))
	})
	a.mux = m
	return a
}

// Disabled answers every Server API request with not_found: the handler
// mounted when no key is configured.
func Disabled() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		sse.WriteError(w, apierr.New(apierr.NotFound, "the Server API is not enabled: configure serverApi.keys"))
	})
}

// ServeHTTP authenticates the key, then routes. A request without a valid
// key learns nothing, not even whether its route exists.
//
// Each call is logged ("server API call") at info level, at error level
// when it failed with a 5xx status, except a system message published
// (2xx): that one is at debug level, since a busy backend publishes many
// (docs/decisions.md, "The Server API's log line").
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	c := &call{ResponseWriter: w, status: http.StatusOK, key: a.authenticate(r)}
	if c.key == nil {
		sse.WriteError(c, apierr.New(apierr.Unauthenticated, "a valid API key is required: Authorization: Bearer <key>"))
	} else {
		a.mux.ServeHTTP(c, r)
	}
	level := slog.LevelInfo
	switch {
	case c.status >= 500:
		level = slog.LevelError
	case c.routine:
		level = slog.LevelDebug
	}
	if !a.log.Enabled(r.Context(), level) {
		return
	}
	name := ""
	if c.key != nil {
		name = c.key.name
	}
	// The path names threads and users, never a secret; the key is logged by name only.
	a.log.Log(r.Context(), level, "server API call", "key", name, "method", r.Method, "path", r.URL.Path,
		"status", c.status, "duration", time.Since(start))
}

// call is the ResponseWriter the routes get: it records the status for the
// log line and carries the authenticated key (not in the request's context,
// which would copy the request).
type call struct {
	http.ResponseWriter
	status int
	key    *hashedKey
	// routine marks a call that succeeded and is logged at debug level.
	routine bool
}

func (c *call) WriteHeader(code int) {
	c.status = code
	c.ResponseWriter.WriteHeader(code)
}

// routine marks w's call, which succeeded, as one logged at debug level.
func routine(w http.ResponseWriter) {
	if c, ok := w.(*call); ok {
		c.routine = true
	}
}

func (a *API) authenticate(r *http.Request) *hashedKey {
	h := r.Header.Get("Authorization")
	if len(h) <= 7 || !strings.EqualFold(h[:7], "bearer ") {
		return nil
	}
	return a.keys.find(strings.TrimSpace(h[7:]))
}

// pathIDs are the path values scoped checks.
var pathIDs = [...]string{"threadId", "userId", "requestId"}

// scoped refuses a key without scope with forbidden.
func (a *API) scoped(scope string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, _ := w.(*call); c == nil || c.key == nil || !c.key.allows(scope) {
			sse.WriteError(w, apierr.New(apierr.Forbidden, "this API key lacks the scope %s", scope))
			return
		}
		for _, p := range pathIDs {
			if !validID(r.PathValue(p)) {
				sse.WriteError(w, apierr.New(apierr.InvalidArgument, "%s must be at most 256 bytes of printable UTF-8", p))
				return
			}
		}
		h(w, r)
	})
}

// validID accepts the ids of a path: absent, or at most 256 bytes of UTF-8
// without control characters.
func validID(v string) bool {
	return len(v) <= 256 && utf8.ValidString(v) && !strings.ContainsFunc(v, func(r rune) bool { return r < ' ' || r == 0x7f })
}

// decode reads an optional JSON object body into v, refusing unknown fields.
func (a *API) decode(w http.ResponseWriter, r *http.Request, v any, required bool) error {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return apierr.New(apierr.PayloadTooLarge, "request body exceeds %d bytes", a.maxBody)
		}
		return apierr.Wrap(err, apierr.InvalidArgument, "could not read the request body")
	}
	body := bytes.TrimSpace(raw)
	if len(body) == 0 {
		if required {
			return apierr.New(apierr.InvalidArgument, "a JSON body is required")
		}
		return nil
	}
	if body[0] != '{' {
		return apierr.New(apierr.InvalidArgument, "the body must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return apierr.Wrap(err, apierr.InvalidArgument, "invalid body: "+bodyProblem(err))
	}
	if dec.More() {
		return apierr.New(apierr.InvalidArgument, "invalid body: more than one JSON value")
	}
	return nil
}

// bodyProblem describes a decoding error without echoing values.
func bodyProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return "field " + te.Field + " has the wrong type"
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return "unknown field " + name
	}
	return "malformed JSON"
}

// AccessRequest is the body of PUT .../access/{userId}.
type AccessRequest struct {
	Acc        *int `json:"acc"`
	TTLSeconds int  `json:"ttlSeconds,omitempty"`
}

// AccessOverride is an override as the API shows it.
type AccessOverride struct {
	ThreadID  string     `json:"threadId"`
	UserID    string     `json:"userId"`
	Acc       int        `json:"acc"`
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
	// Detached is how many of the user's connections stopped listening to
	// the thread (PUT without read).
	Detached *int `json:"detached,omitempty"`
}

func overrideOf(threadID, userID string, o access.Override) AccessOverride {
	out := AccessOverride{ThreadID: threadID, UserID: userID, Acc: int(o.Access)}
	if !o.ExpiresAt.IsZero() {
		t := o.ExpiresAt.UTC()
		out.ExpiresAt = &t
	}
	return out
}

func storeError(err error) error {
	switch {
	case errors.Is(err, access.ErrFull):
		return apierr.Wrap(err, apierr.Unavailable, "ECB holds too many overrides, thread marks and revocations (serverApi.maxEntries)")
	case errors.Is(err, access.ErrDeleted):
		return apierr.Wrap(err, apierr.Conflict, "the thread is deleted")
	case errors.Is(err, hub.ErrUnavailable), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return apierr.Wrap(err, apierr.Unavailable, "the cluster's shared state cannot be written now; nothing was applied to connections: retry")
	}
	return err
}

func (a *API) putAccess(w http.ResponseWriter, r *http.Request) {
	var req AccessRequest
	if err := a.decode(w, r, &req, true); err != nil {
		sse.WriteError(w, err)
		return
	}
	switch {
	case req.Acc == nil:
		sse.WriteError(w, apierr.New(apierr.InvalidArgument, "acc is required: a sum of read=1 write=2 admin=4 owner=8, 0 for no access"))
		return
	case *req.Acc < 0 || *req.Acc > 15:
		sse.WriteError(w, apierr.New(apierr.InvalidArgument, "acc must be within 0..15"))
		return
	case req.TTLSeconds < 0 || req.TTLSeconds > maxTTLSeconds:
		// Compared in seconds, before any conversion: a time.Duration of
		// ttlSeconds beyond 9223372036 overflows (it came out negative, and
		// the override was stored without an expiry).
		sse.WriteError(w, apierr.New(apierr.InvalidArgument, "ttlSeconds must be within 0..%d (0: until deleted)", maxTTLSeconds))
		return
	}
	threadID, userID := r.PathValue("threadId"), r.PathValue("userId")
	acc := auth.Access(*req.Acc)
	o, err := a.store.SetAccess(r.Context(), threadID, userID, acc, time.Duration(req.TTLSeconds)*time.Second)
	if err != nil {
		sse.WriteError(w, storeError(err))
		return
	}
	detached, err := a.ops.ApplyAccess(threadID, userID, &acc, o.ExpiresAt)
	if err != nil {
		sse.WriteError(w, err)
		return
	}
	out := overrideOf(threadID, userID, o)
	out.Detached = &detached
	sse.WriteJSON(w, http.StatusOK, out)
}

func (a *API) getAccess(w http.ResponseWriter, r *http.Request) {
	threadID, userID := r.PathValue("threadId"), r.PathValue("userId")
	o, ok := a.store.Override(threadID, userID)
	if !ok {
		sse.WriteError(w, apierr.New(apierr.NotFound, "no override for this user and thread: the threadToken's acc applies"))
		return
	}
	sse.WriteJSON(w, http.StatusOK, overrideOf(threadID, userID, o))
}

// DeleteResult is the answer of DELETE .../access/{userId}.
type DeleteResult struct {
	Deleted bool `json:"deleted"`
}

func (a *API) deleteAccess(w http.ResponseWriter, r *http.Request) {
	threadID, userID := r.PathValue("threadId"), r.PathValue("userId")
	deleted, err := a.store.DeleteAccess(r.Context(), threadID, userID)
	if err != nil {
		sse.WriteError(w, storeError(err))
		return
	}
	if deleted {
		if _, err := a.ops.ApplyAccess(threadID, userID, nil, time.Time{}); err != nil {
			sse.WriteError(w, err)
			return
		}
	}
	sse.WriteJSON(w, http.StatusOK, DeleteResult{Deleted: deleted})
}

func (a *API) publish(w http.ResponseWriter, r *http.Request) {
	var req ops.SystemMessage
	if err := a.decode(w, r, &req, true); err != nil {
		sse.WriteError(w, err)
		return
	}
	res, err := a.ops.PublishSystemMessage(r.Context(), r.PathValue("threadId"), req)
	if err != nil {
		sse.WriteError(w, err)
		return
	}
	routine(w)
	sse.WriteJSON(w, http.StatusCreated, res)
}

// EventRequest is the body of POST .../events.
type EventRequest struct {
	Change string            `json:"change"`
	Thread *ecbserver.Thread `json:"thread,omitempty"`
}

// EventResult says how many connections were told.
type EventResult struct {
	ThreadID string `json:"threadId"`
	Change   string `json:"change"`
	Told     int    `json:"told"`
	// EndedConversations are the live support requests held in the thread
	// that closing or deleting it ended.
	EndedConversations []string `json:"endedConversations,omitempty"`
}

func (a *API) threadEvent(w http.ResponseWriter, r *http.Request) {
	var req EventRequest
	if err := a.decode(w, r, &req, true); err != nil {
		sse.WriteError(w, err)
		return
	}
	threadID := r.PathValue("threadId")
	var status string
	switch req.Change {
	case ops.ChangeUpdated:
	case ops.ChangeClosed:
		status = access.StatusClosed
	case ops.ChangeReopened:
		status = access.StatusOpen
	case ops.ChangeDeleted:
		status = access.StatusDeleted
	default:
		sse.WriteError(w, apierr.New(apierr.InvalidArgument, "change must be one of updated, closed, reopened, deleted"))
		return
	}
	if req.Thread != nil && (req.Change != ops.ChangeUpdated || req.Thread.ID != threadID) {
		sse.WriteError(w, apierr.New(apierr.InvalidArgument, "thread may be given with change updated only, and must have the path's id"))
		return
	}
	if req.Change != ops.ChangeUpdated {
		if err := a.store.SetThreadStatus(r.Context(), threadID, status); err != nil {
			sse.WriteError(w, storeError(err))
			return
		}
	} else if a.store.ThreadStatus(threadID) == access.StatusDeleted {
		sse.WriteError(w, apierr.New(apierr.Conflict, "the thread is deleted"))
		return
	}
	var ended []string
	if req.Change == ops.ChangeClosed || req.Change == ops.ChangeDeleted {
		// A support chat held in the thread ends with it: its agent's slot
		// is freed, visitor and agents are told, conversation.closed is sent.
		var err error
		if ended, err = a.ops.EndThreadConversations(threadID); err != nil {
			sse.WriteError(w, err)
			return
		}
	}
	told, err := a.ops.ThreadChanged(threadID, req.Change, req.Thread)
	if err != nil {
		sse.WriteError(w, err)
		return
	}
	sse.WriteJSON(w, http.StatusOK, EventResult{ThreadID: threadID, Change: req.Change, Told: told, EndedConversations: ended})
}

// ThreadInfo is the answer of GET /server/v1/threads/{threadId}.
type ThreadInfo struct {
	ThreadID string `json:"threadId"`
	// Status is open, closed or deleted, as the Server API set it.
	Status string `json:"status"`
	// Listeners is how many connections of this node listen to the thread.
	Listeners int `json:"listeners"`
	// Users are the users those connections belong to.
	Users []string `json:"users"`
}

func (a *API) getThread(w http.ResponseWriter, r *http.Request) {
	threadID := r.PathValue("threadId")
	status := a.store.ThreadStatus(threadID)
	if status == access.StatusOpen {
		status = "open"
	}
	users := a.hub.ListenerUsers(threadID)
	if users == nil {
		users = []string{}
	}
	sse.WriteJSON(w, http.StatusOK, ThreadInfo{ThreadID: threadID, Status: status, Listeners: a.hub.Listeners(threadID), Users: users})
}

// DisconnectRequest is the optional body of POST .../disconnect.
type DisconnectRequest struct {
	// RevokedBefore, an RFC 3339 time or "now", refuses from now on the
	// user's tokens issued at or before it.
	RevokedBefore string `json:"revokedBefore,omitempty"`
}

// DisconnectResult is its answer.
type DisconnectResult struct {
	UserID        string     `json:"userId"`
	Disconnected  int        `json:"disconnected"`
	RevokedBefore *time.Time `json:"revokedBefore,omitempty"`
}

// maxSkew is how far in the future revokedBefore may be: a clock skew, not
// a way to ban a user's future tokens (use an access override for that).
const maxSkew = time.Minute

func (a *API) disconnect(w http.ResponseWriter, r *http.Request) {
	var req DisconnectRequest
	if err := a.decode(w, r, &req, false); err != nil {
		sse.WriteError(w, err)
		return
	}
	userID := r.PathValue("userId")
	out := DisconnectResult{UserID: userID}
	if req.RevokedBefore != "" {
		before := time.Now()
		if req.RevokedBefore != "now" {
			t, err := time.Parse(time.RFC3339Nano, req.RevokedBefore)
			if err != nil {
				sse.WriteError(w, apierr.New(apierr.InvalidArgument, "revokedBefore must be an RFC 3339 time or \"now\""))
				return
			}
			if t.After(before.Add(maxSkew)) {
				sse.WriteError(w, apierr.New(apierr.InvalidArgument, "revokedBefore must not be in the future"))
				return
			}
			before = t
		}
		got, err := a.store.Revoke(r.Context(), userID, before)
		if err != nil {
			sse.WriteError(w, storeError(err))
			return
		}
		got = got.UTC()
		out.RevokedBefore = &got
	}
	n, err := a.ops.DisconnectUser(userID)
	if err != nil {
		sse.WriteError(w, err)
		return
	}
	out.Disconnected = n
	sse.WriteJSON(w, http.StatusOK, out)
}

// Presence is the answer of GET /server/v1/users/{userId}/presence.
type Presence struct {
	UserID      string `json:"userId"`
	Online      bool   `json:"online"`
	Connections int    `json:"connections"` // on every node
}

func (a *API) presence(w http.ResponseWriter, r *http.Request) {
	userID := r.PathValue("userId")
	n, err := a.ops.Presence().Connections(r.Context(), userID)
	if err != nil {
		sse.WriteError(w, apierr.Wrap(err, apierr.Unavailable, "the cluster's presence cannot be read now; retry"))
		return
	}
	sse.WriteJSON(w, http.StatusOK, Presence{UserID: userID, Online: n > 0, Connections: n})
}
