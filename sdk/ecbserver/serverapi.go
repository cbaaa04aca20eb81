package ecbserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// This file is the client of ECB's Server API (/server/v1): what a backend
// calls to act on ECB. The normative description is api/server.yaml in the
// ECB repository; docs/server-api.md explains it.

// Scopes an API key may hold (ECB's serverApi.keys).
const (
	ScopeAccessRead   = "access:read"
	ScopeAccessWrite  = "access:write"
	ScopeThreadsWrite = "threads:write"
	ScopeUsersWrite   = "users:write"
	ScopePresenceRead = "presence:read"
	// ScopeWorkgroupsRead reads the customer-support workgroups
	// (ScopeWorkgroupsWrite implies it).
	ScopeWorkgroupsRead  = "workgroups:read"
	ScopeWorkgroupsWrite = "workgroups:write"
	ScopeAll             = "*"
)

// Thread changes a backend announces with [ServerAPIClient.ThreadEvent].
const (
	ThreadUpdated  = "updated"  // listeners are told (with the new thread, if given)
	ThreadClosed   = "closed"   // read-only: ECB refuses sends with conflict
	ThreadReopened = "reopened" // writable again
	ThreadDeleted  = "deleted"  // listeners are told and stop listening; ECB refuses it with not_found
)

// ServerAPIError is an error answer of the Server API. Code is one of ECB's
// client error codes (unauthenticated, forbidden, not_found, invalid_argument,
// conflict, payload_too_large, rate_limited, unavailable, ...).
type ServerAPIError struct {
	Status     int
	Code       string
	Message    string
	RetryAfter time.Duration // with rate_limited
}

func (e *ServerAPIError) Error() string {
	return fmt.Sprintf("ecbserver: server API: %d %s: %s", e.Status, e.Code, e.Message)
}

// AccessOverride is a user's access to a thread as set through the Server
// API: it replaces the acc claim of the user's threadTokens until ExpiresAt.
type AccessOverride struct {
	ThreadID  string     `json:"threadId"`
	UserID    string     `json:"userId"`
	Acc       int        `json:"acc"`
	ExpiresAt *time.Time `json:"expiresAt,omitempty"` // nil: until deleted
	// Detached is how many of the user's connections stopped listening to
	// the thread (SetAccess without AccessRead); nil on GetAccess.
	Detached *int `json:"detached,omitempty"`
}

// SystemMessage is a message a backend publishes into a thread; its author
// is "system". ECB pushes it but does not store it: store it yourself (under
// the same ID) if it belongs in the history.
type SystemMessage struct {
	ID   string          `json:"id,omitempty"` // empty: ECB makes one
	Body string          `json:"body"`
	Data json.RawMessage `json:"data,omitempty"`
}

// PublishedMessage is the message as pushed, with its offset and epoch.
type PublishedMessage struct {
	Message Message `json:"message"`
	Epoch   string  `json:"epoch"`
}

// ThreadEventResult says how many connections were told of a thread event.
type ThreadEventResult struct {
	ThreadID string `json:"threadId"`
	Change   string `json:"change"`
	Told     int    `json:"told"`
	// EndedConversations are the live support requests held in the thread
	// that closing or deleting it ended.
	EndedConversations []string `json:"endedConversations,omitempty"`
}

// DisconnectResult is the answer of [ServerAPIClient.DisconnectUser].
type DisconnectResult struct {
	UserID        string     `json:"userId"`
	Disconnected  int        `json:"disconnected"`
	RevokedBefore *time.Time `json:"revokedBefore,omitempty"`
}

// UserPresence is a user's connection count on every ECB node.
type UserPresence struct {
	UserID      string `json:"userId"`
	Online      bool   `json:"online"`
	Connections int    `json:"connections"`
}

// ThreadInfo is a thread's live state on the ECB node that answered.
type ThreadInfo struct {
	ThreadID  string   `json:"threadId"`
	Status    string   `json:"status"` // open, closed, deleted
	Listeners int      `json:"listeners"`
	Users     []string `json:"users"`
}

// ServerAPIClient calls ECB's Server API with an API key. It is safe for
// concurrent use.
type ServerAPIClient struct {
	base string // ending in /server/v1
	key  string
	http *http.Client
}

// ServerAPIOptions configures a ServerAPIClient.
type ServerAPIOptions struct {
	// HTTPClient defaults to a client with a 10 second timeout.
	HTTPClient *http.Client
}

// NewServerAPIClient returns a client of the Server API at baseURL: ECB's
// address (https://chat.example.com, or serverApi.listen's), with or
// without the /server/v1 path. key is one of ECB's serverApi.keys.
func NewServerAPIClient(baseURL, key string, opts ServerAPIOptions) (*ServerAPIClient, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("ecbserver: server API URL %q is not an http(s) URL", baseURL)
	}
	if key == "" {
		return nil, errors.New("ecbserver: an API key is required")
	}
	base := u.String()
	if !strings.HasSuffix(base, "/server/v1") {
		base += "/server/v1"
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	return &ServerAPIClient{base: base, key: key, http: hc}, nil
}

// SetAccess overrides userID's access to threadID (a sum of the Access
// bits; AccessNone bans) for ttl, or until DeleteAccess when ttl is 0. It
// takes effect at once: without AccessRead the user's connections stop
// listening to the thread; all of them get a thread push {change: "access"}.
func (c *ServerAPIClient) SetAccess(ctx context.Context, threadID, userID string, acc int, ttl time.Duration) (*AccessOverride, error) {
	body := map[string]int{"acc": acc}
	if ttl > 0 {
		body["ttlSeconds"] = int((ttl + time.Second - 1) / time.Second)
	}
	return serverCall[AccessOverride](ctx, c, http.MethodPut, "/threads/"+url.PathEscape(threadID)+"/access/"+url.PathEscape(userID), body)
}

// GetAccess returns the live override of userID in threadID; an error with
// Code "not_found" means none (the threadToken's acc applies).
func (c *ServerAPIClient) GetAccess(ctx context.Context, threadID, userID string) (*AccessOverride, error) {
	return serverCall[AccessOverride](ctx, c, http.MethodGet, "/threads/"+url.PathEscape(threadID)+"/access/"+url.PathEscape(userID), nil)
}

// DeleteAccess removes the override; it reports whether there was one.
func (c *ServerAPIClient) DeleteAccess(ctx context.Context, threadID, userID string) (bool, error) {
	var out struct {
		Deleted bool `json:"deleted"`
	}
	err := c.do(ctx, http.MethodDelete, "/threads/"+url.PathEscape(threadID)+"/access/"+url.PathEscape(userID), nil, &out)
	return out.Deleted, err
}

// PublishSystemMessage pushes m into threadID to every listener, with the
// thread's next offset, like any message.
func (c *ServerAPIClient) PublishSystemMessage(ctx context.Context, threadID string, m SystemMessage) (*PublishedMessage, error) {
	return serverCall[PublishedMessage](ctx, c, http.MethodPost, "/threads/"+url.PathEscape(threadID)+"/messages", m)
}

// ThreadEvent tells threadID's listeners that it changed: ThreadUpdated
// (thread, optional, is the new state pushed to them), ThreadClosed,
// ThreadReopened or ThreadDeleted.
func (c *ServerAPIClient) ThreadEvent(ctx context.Context, threadID, change string, thread *Thread) (*ThreadEventResult, error) {
	body := struct {
		Change string  `json:"change"`
		Thread *Thread `json:"thread,omitempty"`
	}{change, thread}
	return serverCall[ThreadEventResult](ctx, c, http.MethodPost, "/threads/"+url.PathEscape(threadID)+"/events", body)
}

// DisconnectUser closes every connection of userID (reason "kicked"). With
// a non-zero revokedBefore, ECB also refuses from now on the user's tokens
// issued at or before it (pass time.Now() after a password change or a
// logout everywhere); new tokens you sign afterwards work.
func (c *ServerAPIClient) DisconnectUser(ctx context.Context, userID string, revokedBefore time.Time) (*DisconnectResult, error) {
	body := map[string]string{}
	if !revokedBefore.IsZero() {
		body["revokedBefore"] = revokedBefore.UTC().Format(time.RFC3339Nano)
	}
	return serverCall[DisconnectResult](ctx, c, http.MethodPost, "/users/"+url.PathEscape(userID)+"/disconnect", body)
}

// UserPresence returns userID's connection count on every node.
func (c *ServerAPIClient) UserPresence(ctx context.Context, userID string) (*UserPresence, error) {
	return serverCall[UserPresence](ctx, c, http.MethodGet, "/users/"+url.PathEscape(userID)+"/presence", nil)
}

// ThreadInfo returns threadID's status and listeners on the node that answers.
func (c *ServerAPIClient) ThreadInfo(ctx context.Context, threadID string) (*ThreadInfo, error) {
	return serverCall[ThreadInfo](ctx, c, http.MethodGet, "/threads/"+url.PathEscape(threadID), nil)
}

// Workgroup is a customer-support workgroup as ECB's Server API shows it:
// its settings and its live status on the node that answered.
type Workgroup struct {
	Name                string           `json:"name"`
	DisplayName         string           `json:"displayName"`
	Strategy            string           `json:"strategy"` // round-robin or least-busy
	OfferTimeoutSeconds int              `json:"offerTimeoutSeconds"`
	MaxChats            int              `json:"maxChats"`
	Open                bool             `json:"open"` // the switch as set; Status.Open says whether it is open now
	Hours               *WorkgroupHours  `json:"hours,omitempty"`
	RequiredFields      []string         `json:"requiredFields"`
	Queues              []WorkgroupQueue `json:"queues,omitempty"` // Server API 1.2.0
	Status              WorkgroupStatus  `json:"status"`
}

// WorkgroupQueue is one of a workgroup's ordered queues: a request lands in
// the first whose Match its metadata all equals (no Match: a catch-all) and
// is offered only to its Agents (none: every agent of the workgroup).
type WorkgroupQueue struct {
	Queue  string            `json:"queue"`
	Match  map[string]string `json:"match,omitempty"`
	Agents []string          `json:"agents,omitempty"`
}

// WorkgroupQueueStatus is one queue's live figures (EstimatedWait in seconds).
type WorkgroupQueueStatus struct {
	Queue           string `json:"queue"`
	AgentsAvailable int    `json:"agentsAvailable"`
	QueueLength     int    `json:"queueLength"`
	EstimatedWait   int    `json:"estimatedWait"`
}

// WorkgroupHours are a workgroup's opening hours: per weekday (keys mon
// .. sun; a day absent is closed) ranges "HH:MM-HH:MM" of local time in
// Timezone (an IANA zone, empty for UTC), start included, end excluded
// ("24:00" ends the day); ClosedDates (YYYY-MM-DD) are whole days closed.
type WorkgroupHours struct {
	Timezone    string              `json:"timezone,omitempty"`
	Weekly      map[string][]string `json:"weekly"`
	ClosedDates []string            `json:"closedDates,omitempty"`
}

// WorkgroupStatus is a workgroup's live state: Open is now (the switch and
// the hours); OpensAt (closed) or ClosesAt (open) is the next change of its
// hours, when it has hours and the switch is on.
type WorkgroupStatus struct {
	Open            bool       `json:"open"`
	AgentsAvailable int        `json:"agentsAvailable"`
	QueueLength     int        `json:"queueLength"`
	EstimatedWait   int        `json:"estimatedWait"` // seconds
	OpensAt         *time.Time `json:"opensAt,omitempty"`
	ClosesAt        *time.Time `json:"closesAt,omitempty"`
	// Queues are the figures of each queue, in order (none without queues);
	// those above count every queue.
	Queues []WorkgroupQueueStatus `json:"queues,omitempty"`
}

// WorkgroupSettings is the body of [ServerAPIClient.PutWorkgroup]: the
// workgroup's settings, whole. Zero values (nil pointers) take ECB's
// defaults: support.* of its configuration, the name as display name, open,
// no hours, no required fields.
type WorkgroupSettings struct {
	DisplayName         string          `json:"displayName,omitempty"`
	Strategy            string          `json:"strategy,omitempty"`
	OfferTimeoutSeconds int             `json:"offerTimeoutSeconds,omitempty"`
	MaxChats            int             `json:"maxChats,omitempty"`
	Open                *bool           `json:"open,omitempty"`
	Hours               *WorkgroupHours `json:"hours,omitempty"`
	RequiredFields      []string        `json:"requiredFields,omitempty"`
	// Queues replace the workgroup's queues (none: one queue for every agent).
	Queues []WorkgroupQueue `json:"queues,omitempty"`
}

// ListWorkgroups returns the workgroups of the ECB node that answers, by
// name. An error with Code "not_found" means customer support is not
// configured there.
func (c *ServerAPIClient) ListWorkgroups(ctx context.Context) ([]Workgroup, error) {
	var out struct {
		Workgroups []Workgroup `json:"workgroups"`
	}
	if err := c.do(ctx, http.MethodGet, "/workgroups", nil, &out); err != nil {
		return nil, err
	}
	return out.Workgroups, nil
}

// GetWorkgroup returns workgroup name; an error with Code "not_found" means
// there is none.
func (c *ServerAPIClient) GetWorkgroup(ctx context.Context, name string) (*Workgroup, error) {
	return serverCall[Workgroup](ctx, c, http.MethodGet, "/workgroups/"+url.PathEscape(name), nil)
}

// PutWorkgroup creates workgroup name or replaces its settings (its queue
// and agents stay); created reports which. Refused with "invalid_argument"
// naming the setting. The change lives in the memory of the node that
// answers: a restart returns to its configuration.
func (c *ServerAPIClient) PutWorkgroup(ctx context.Context, name string, s WorkgroupSettings) (w *Workgroup, created bool, err error) {
	var out Workgroup
	status, err := c.doStatus(ctx, http.MethodPut, "/workgroups/"+url.PathEscape(name), s, &out)
	if err != nil {
		return nil, false, err
	}
	return &out, status == http.StatusCreated, nil
}

// DeleteWorkgroup removes workgroup name from the node that answers. It is
// refused with "conflict" while the workgroup has waiting requests or live
// chats (close it first: PutWorkgroup with Open false), "not_found" when
// there is none.
func (c *ServerAPIClient) DeleteWorkgroup(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/workgroups/"+url.PathEscape(name), nil, nil)
}

// SupportConversation is a live customer-support chat as ECB's Server API
// shows it (ListConversations).
type SupportConversation struct {
	RequestID string `json:"requestId"`
	Workgroup string `json:"workgroup"`
	State     string `json:"state"` // pending (the thread is being created) or chat
	Visitor   struct {
		ID        string `json:"id"`
		Name      string `json:"name,omitempty"`
		Anonymous bool   `json:"anonymous,omitempty"`
	} `json:"visitor"`
	Question    string    `json:"question"`
	Agents      []string  `json:"agents"` // the chat's agent first, then invited ones
	Supervisors []string  `json:"supervisors"`
	ThreadID    string    `json:"threadId,omitempty"`
	OperationID string    `json:"operationId,omitempty"` // the visitor's, from support.ask
	Since       time.Time `json:"since"`
}

// ListConversations returns the live chats of workgroup name on the node
// that answers, oldest first; "not_found" when there is no such workgroup.
func (c *ServerAPIClient) ListConversations(ctx context.Context, name string) ([]SupportConversation, error) {
	out, err := serverCall[struct {
		Conversations []SupportConversation `json:"conversations"`
	}](ctx, c, http.MethodGet, "/workgroups/"+url.PathEscape(name)+"/conversations", nil)
	if err != nil {
		return nil, err
	}
	return out.Conversations, nil
}

func serverCall[T any](ctx context.Context, c *ServerAPIClient, method, path string, body any) (*T, error) {
	var out T
	if err := c.do(ctx, method, path, body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// maxAnswer bounds the answers read.
const maxAnswer = 1 << 20

func (c *ServerAPIClient) do(ctx context.Context, method, path string, body, out any) error {
	_, err := c.doStatus(ctx, method, path, body, out)
	return err
}

// doStatus calls the API and decodes the data of its answer into out (when
// not nil); it returns the HTTP status of a success.
func (c *ServerAPIClient) doStatus(ctx context.Context, method, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return 0, fmt.Errorf("ecbserver: server API request: %w", err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, fmt.Errorf("ecbserver: server API request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Accept", "application/json")
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("ecbserver: server API %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNoContent {
		return resp.StatusCode, nil
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return 0, fmt.Errorf("ecbserver: server API %s %s: %w", method, path, err)
	}
	var env struct {
		Data  json.RawMessage `json:"data"`
		Error *struct {
			Code       string `json:"code"`
			Message    string `json:"message"`
			RetryAfter int    `json:"retryAfter"`
		} `json:"error"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return 0, &ServerAPIError{Status: resp.StatusCode, Code: "internal", Message: "the answer is not ECB's JSON envelope"}
	}
	if env.Error != nil || resp.StatusCode >= 300 {
		e := &ServerAPIError{Status: resp.StatusCode, Code: "internal", Message: http.StatusText(resp.StatusCode)}
		if env.Error != nil {
			e.Code, e.Message = env.Error.Code, env.Error.Message
			e.RetryAfter = time.Duration(env.Error.RetryAfter) * time.Second
		}
		if e.RetryAfter == 0 {
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
				e.RetryAfter = time.Duration(s) * time.Second
			}
		}
		return 0, e
	}
	if out == nil {
		return resp.StatusCode, nil
	}
	if err := json.Unmarshal(env.Data, out); err != nil {
		return 0, fmt.Errorf("ecbserver: server API %s %s: decoding the answer: %w", method, path, err)
	}
	return resp.StatusCode, nil
}
