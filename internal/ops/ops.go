// Package ops owns ECB's client operations (the seed's getUserToken,
// getContacts, getThreads, createThread, getThread, sendMessage), in one
// transport-free place: it verifies the tokens, validates the request, calls the
// backend, pages the results and publishes the pushes through the hub. Each
// transport (REST + SSE, Socket.IO) only decodes, calls and encodes.
//
// A Service is safe for concurrent use. Every method takes the caller's context
// and returns an *apierr.Error (or an error that apierr.From maps) on failure;
// nothing is pushed unless the backend stored it first.
//
// Lock order. The Service's own locks (typing and dedupe state, monitors)
// are leaves: no hub, engine or backend call is made while one is held.
// The routing engine (package support) calls the support events after
// releasing its lock, and the hub cuts a slow connection after releasing
// its locks; so a push may cut a connection whose end comes back, through
// the hub's observer (presence, supportObserver), into the engine or the
// hub, with no lock held anywhere on the way. Nothing here may call the
// engine or the hub while holding a lock of the engine's or the hub's.
package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/trace"

	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/auth"
	"github.com/ecbridge/ecb/internal/callbacks"
	"github.com/ecbridge/ecb/internal/calltime"
	"github.com/ecbridge/ecb/internal/hub"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// Backend is the part of the backend contract the operations use.
type Backend interface {
	Authenticate(ctx context.Context, req *ecbserver.AuthenticateRequest) (*ecbserver.AuthenticateResponse, error)
	GetContacts(ctx context.Context, req *ecbserver.GetContactsRequest) (*ecbserver.GetContactsResponse, error)
	GetThreads(ctx context.Context, req *ecbserver.GetThreadsRequest) (*ecbserver.GetThreadsResponse, error)
	CreateThread(ctx context.Context, req *ecbserver.CreateThreadRequest) (*ecbserver.CreateThreadResponse, error)
	GetThread(ctx context.Context, req *ecbserver.GetThreadRequest) (*ecbserver.GetThreadResponse, error)
	AddThreadMessage(ctx context.Context, req *ecbserver.AddThreadMessageRequest) (*ecbserver.AddThreadMessageResponse, error)
	MarkRead(ctx context.Context, req *ecbserver.MarkReadRequest) (*ecbserver.MarkReadResponse, error)
	AddParticipants(ctx context.Context, req *ecbserver.AddParticipantsRequest) (*ecbserver.AddParticipantsResponse, error)
	LeaveThread(ctx context.Context, req *ecbserver.LeaveThreadRequest) (*ecbserver.LeaveThreadResponse, error)
	// The people calls of contract 1.4 (people.go).
	SearchUsers(ctx context.Context, req *ecbserver.SearchUsersRequest) (*ecbserver.SearchUsersResponse, error)
	AddContact(ctx context.Context, req *ecbserver.ContactRequest) (*ecbserver.ContactResponse, error)
	RemoveContact(ctx context.Context, req *ecbserver.ContactRequest) (*ecbserver.ContactResponse, error)
	SetProfile(ctx context.Context, req *ecbserver.SetProfileRequest) (*ecbserver.ProfileResponse, error)
	DeleteProfileProperty(ctx context.Context, req *ecbserver.DeleteProfilePropertyRequest) (*ecbserver.ProfileResponse, error)
}

// Verifier checks the tokens the backend signed.
type Verifier interface {
	VerifyUser(token, origin string) (*auth.User, error)
	VerifyThread(token string) (*auth.Thread, error)
}

// Observer is told about every operation; the server wires Prometheus to it.
type Observer interface {
	Operation(op, outcome string, d time.Duration)
	// OperationOwn is ECB's own share of the operation: its latency minus
	// the time its backend calls took (package calltime).
	OperationOwn(op, outcome string, d time.Duration)
}

type nopObserver struct{}

func (nopObserver) Operation(string, string, time.Duration)    {}
func (nopObserver) OperationOwn(string, string, time.Duration) {}

// Config holds the operations' limits and switches; zero values mean the defaults.
type Config struct {
	// EnforceMembership refuses, before calling the backend, a threadToken
	// issued for another user or whose access bits lack what the operation
	// needs. Default true; nil means the default.
	EnforceMembership *bool `yaml:"enforceMembership"`
	// DefaultPageSize is the page size when the client gives none (default 20).
	DefaultPageSize int `yaml:"defaultPageSize"`
	// MaxPageSize caps the page size a client may ask (default 100).
	MaxPageSize int `yaml:"maxPageSize"`
	// MaxMessageBytes caps a message body in bytes (default 16384).
	MaxMessageBytes int `yaml:"maxMessageBytes"`
	// MaxDataBytes caps a message's data object in bytes (default 8192).
	MaxDataBytes int `yaml:"maxDataBytes"`
	// MaxParticipants caps the participants of createThread (default 100).
	MaxParticipants int `yaml:"maxParticipants"`
	// MaxHistoryLimit caps getThread's limit (default 200).
	MaxHistoryLimit int `yaml:"maxHistoryLimit"`
	// MaxThreadsPerConnection caps the threads one connection listens to (default 1000).
	MaxThreadsPerConnection int `yaml:"maxThreadsPerConnection"`
	// TypingTimeout ends a typing start that is not refreshed (default 6s).
	TypingTimeout time.Duration `yaml:"typingTimeout"`
	// TypingPerSecond limits typing notifications per user (default 3, burst twice that).
	TypingPerSecond int `yaml:"typingPerSecond"`
	// DedupeWindow is how long ECB remembers a sendMessage's clientMessageId
	// to answer a retry with the original message (default 10m).
	DedupeWindow time.Duration `yaml:"dedupeWindow"`
	// DedupeMaxEntries bounds the remembered clientMessageIds (default 100000).
	DedupeMaxEntries int `yaml:"dedupeMaxEntries"`
	// RemovedTTL is how long a member removed by removeParticipant stays
	// refused by ECB itself, whatever threadToken they still hold (default
	// 1h, the SDK's threadToken lifetime: set it to at least the lifetime of
	// the threadTokens your backend signs).
	RemovedTTL time.Duration `yaml:"removedTTL"`
	// MaxAttachmentBytes caps the size of one file of getUploadUrl
	// (default 10 MiB); beyond it invalid_argument, before the backend.
	MaxAttachmentBytes int64 `yaml:"maxAttachmentBytes"`
	// AttachmentTypes are the media types getUploadUrl accepts: a type
	// (image/png), a family (image/*) or */* (default
	// DefaultAttachmentTypes).
	AttachmentTypes []string `yaml:"attachmentTypes"`
	// MaxAttachments caps the attachments of one message (default 10, at
	// most ecbserver.MaxAttachments).
	MaxAttachments int `yaml:"maxAttachments"`
	// MaxReactionBytes caps a reaction of react/unreact in bytes (default 32).
	MaxReactionBytes int `yaml:"maxReactionBytes"`
	// Reactions, when not empty, is the allow-list of reactions; empty
	// allows any short token without spaces.
	Reactions []string `yaml:"reactions"`
	// ReactionsPerSecond limits react and unreact per user (default 5,
	// burst twice that), like typing.
	ReactionsPerSecond int `yaml:"reactionsPerSecond"`
}

// SetDefaults fills in the zero values.
func (c *Config) SetDefaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	if c.EnforceMembership == nil {
		on := true
		c.EnforceMembership = &on
	}
	def(&c.DefaultPageSize, 20)
	def(&c.MaxPageSize, 100)
	def(&c.MaxMessageBytes, 16384)
	def(&c.MaxDataBytes, 8192)
	def(&c.MaxParticipants, 100)
	def(&c.MaxHistoryLimit, 200)
	def(&c.MaxThreadsPerConnection, 1000)
	def(&c.TypingPerSecond, 3)
	def(&c.DedupeMaxEntries, 100000)
	def(&c.MaxReactionBytes, 32)
	def(&c.ReactionsPerSecond, 5)
	if c.TypingTimeout <= 0 {
		c.TypingTimeout = 6 * time.Second
	}
	if c.DedupeWindow <= 0 {
		c.DedupeWindow = 10 * time.Minute
	}
	if c.RemovedTTL <= 0 {
		c.RemovedTTL = time.Hour
	}
	if c.MaxAttachmentBytes <= 0 {
		c.MaxAttachmentBytes = 10 << 20
	}
	if len(c.AttachmentTypes) == 0 {
		c.AttachmentTypes = DefaultAttachmentTypes
	}
	def(&c.MaxAttachments, 10)
	c.MaxAttachments = min(c.MaxAttachments, ecbserver.MaxAttachments)
	if c.DefaultPageSize > c.MaxPageSize {
		c.DefaultPageSize = c.MaxPageSize
	}
}

// Service runs the operations.
type Service struct {
	cfg      Config
	backend  Backend
	verifier Verifier
	hub      *hub.Hub
	log      *slog.Logger
	obs      Observer
	tracer   trace.Tracer // nil: tracing off (tracing.go)
	live     *live
	guards   Guards        // live decisions of the Server API and the limits (guards.go)
	support  SupportEngine // nil unless EnableSupport (support.go) or EnableSupportCluster
	// supportCluster is set in cluster mode (support_cluster.go).
	supportCluster *clusterEngine
	cbs            *callbacks.Poster  // nil: callbacks off (SetCallbacks, callbacks.go)
	offline        *callbacks.Batcher // nil: no offline nudge (EnableOfflineNudge, offline.go)
	monitors       monitors           // threads supervisors watch read-only (supervisor.go)
	// supportChats maps the threads of live support chats to their
	// request, for the message.created callback (callbacks.go).
	supportChats sync.Map
}

// New returns a Service. log and obs may be nil.
func New(cfg Config, b Backend, v Verifier, h *hub.Hub, log *slog.Logger, obs Observer) *Service {
	cfg.SetDefaults()
	if log == nil {
		log = slog.Default()
	}
	if obs == nil {
		obs = nopObserver{}
	}
	s := &Service{cfg: cfg, backend: b, verifier: v, hub: h, log: log, obs: obs, live: newLive(), guards: Guards{}.orNone()}
	// Presence follows the hub's connections and pushes through the hub.
	s.live.presence.SetHub(h)
	h.SetObserver(connObservers{s.live.presence, supportObserver{s}})
	return s
}

// Config returns the effective configuration.
func (s *Service) Config() Config { return s.cfg }

// Caller is who runs an operation: the verified user, and the connection that
// pushes reach (nil when the transport has none, such as REST without a stream).
type Caller struct {
	User *auth.User
	Conn hub.Conn
}

// Authenticate verifies a userToken presented by a client with its Origin.
func (s *Service) Authenticate(token, origin string) (*auth.User, error) {
	if token == "" {
		return nil, apierr.New(apierr.Unauthenticated, "a userToken is required")
	}
	u, err := s.verifier.VerifyUser(token, origin)
	if err != nil {
		return nil, tokenError(err, "userToken")
	}
	if err := s.checkRevoked(u); err != nil {
		return nil, err
	}
	return u, nil
}

func tokenError(err error, which string) error {
	msg := which + " is invalid"
	switch {
	case errors.Is(err, auth.ErrExpired):
		msg = which + " has expired"
	case errors.Is(err, auth.ErrOrigin):
		return apierr.Wrap(err, apierr.Forbidden, which+" is not valid from this origin")
	case errors.Is(err, auth.ErrMissingToken):
		msg = which + " is required"
	}
	return apierr.Wrap(err, apierr.Unauthenticated, msg)
}

// run admits, times, traces and reports an operation: the one wrapper of
// every operation, typed by its result. f runs with the operation's
// context, which carries its span when tracing is on: the backend calls
// made with it are the span's children.
func run[T any](ctx context.Context, s *Service, op string, c Caller, f func(ctx context.Context) (T, error)) (T, error) {
	start := time.Now()
	ctx, spent := calltime.Start(ctx)    // the backend client adds its calls' time
	ctx, span := s.startSpan(ctx, op, c) // tracing.go; off: ctx as it is
	var out T
	err := s.admit(c)
	if err == nil {
		out, err = f(ctx)
	}
	outcome := "ok"
	if err != nil {
		e := apierr.From(err)
		outcome = string(e.Code)
		level := slog.LevelInfo
		if e.Code == apierr.Internal || e.Code == apierr.BackendError {
			level = slog.LevelError
		}
		if s.log.Enabled(ctx, level) {
			uid := ""
			if c.User != nil {
				uid = c.User.ID
			}
			s.log.Log(ctx, level, "operation failed", "op", op, "user", uid, "code", e.Code, "err", e.Error())
		}
	}
	endSpan(span, err)
	d := time.Since(start)
	s.obs.Operation(op, outcome, d)
	s.obs.OperationOwn(op, outcome, d-spent.Total())
	return out, err
}

// Call runs the operation named op with its JSON payload: the entry point of
// transports whose requests name the operation (Socket.IO events).
func (s *Service) Call(ctx context.Context, c Caller, op string, payload json.RawMessage) (any, error) {
	switch op {
	case OpGetUserToken:
		return call(ctx, c, payload, func(ctx context.Context, _ Caller, req GetUserTokenRequest) (*GetUserTokenResult, error) {
			return s.GetUserToken(ctx, req)
		})
	case OpGetContacts:
		return call(ctx, c, payload, s.GetContacts)
	case OpGetThreads:
		return call(ctx, c, payload, s.GetThreads)
	case OpCreateThread:
		return call(ctx, c, payload, s.CreateThread)
	case OpGetThread:
		return call(ctx, c, payload, s.GetThread)
	case OpSendMessage:
		return call(ctx, c, payload, s.SendMessage)
	case OpStopListening:
		return call(ctx, c, payload, s.StopListening)
	case OpSetPresence:
		return call(ctx, c, payload, s.SetPresence)
	case OpGetPresence:
		return call(ctx, c, payload, s.GetPresence)
	case OpTyping:
		return call(ctx, c, payload, s.Typing)
	case OpMarkRead:
		return call(ctx, c, payload, s.MarkRead)
	case OpAddParticipants:
		return call(ctx, c, payload, s.AddParticipants)
	case OpLeaveThread:
		return call(ctx, c, payload, s.LeaveThread)
	case OpResume:
		return call(ctx, c, payload, s.Resume)
	case OpJoinThread:
		return call(ctx, c, payload, s.JoinThread)
	case OpRemoveParticipant:
		return call(ctx, c, payload, s.RemoveParticipant)
	case OpUpdateThread:
		return call(ctx, c, payload, s.UpdateThread)
	case OpDeleteMessage:
		return call(ctx, c, payload, s.DeleteMessage)
	case OpDeleteThread:
		return call(ctx, c, payload, s.DeleteThread)
	case OpSetAccess:
		return call(ctx, c, payload, s.SetAccess)
	case OpGetUploadURL:
		return call(ctx, c, payload, s.GetUploadURL)
	case OpEditMessage:
		return call(ctx, c, payload, s.EditMessage)
	case OpReact:
		return call(ctx, c, payload, s.React)
	case OpUnreact:
		return call(ctx, c, payload, s.Unreact)
	case OpSearchMessages:
		return call(ctx, c, payload, s.SearchMessages)
	}
	if res, ok, err := s.callSupport(ctx, c, op, payload); ok {
		return res, err
	}
	if res, ok, err := s.callPeople(ctx, c, op, payload); ok {
		return res, err
	}
	return nil, apierr.New(apierr.NotFound, "unknown operation %q", op)
}

// Operations names, as the Socket.IO events and the metrics label them.
const (
	OpGetUserToken  = "getUserToken"
	OpGetContacts   = "getContacts"
	OpGetThreads    = "getThreads"
	OpCreateThread  = "createThread"
	OpGetThread     = "getThread"
	OpSendMessage   = "sendMessage"
	OpStopListening = "stopListening"
)

// call decodes payload into the request type of op and runs it.
func call[Req, Res any](ctx context.Context, c Caller, payload json.RawMessage, op func(context.Context, Caller, Req) (Res, error)) (any, error) {
	var req Req
	if err := Decode(payload, &req); err != nil {
		return nil, err
	}
	return op(ctx, c, req)
}

// Decode reads a JSON object payload into v; an absent payload is an empty
// object. Errors are invalid_argument and never echo the input. A payload
// that is not valid UTF-8 is refused (encoding/json would otherwise put
// U+FFFD in place of the bad bytes in its strings).
func Decode(payload json.RawMessage, v any) error {
	if !utf8.Valid(payload) {
		return apierr.New(apierr.InvalidArgument, "the payload must be valid UTF-8")
	}
	p := strings.TrimSpace(string(payload))
	if p == "" || p == "null" {
		return nil
	}
	if p[0] != '{' {
		return apierr.New(apierr.InvalidArgument, "the payload must be a JSON object")
	}
	if err := json.Unmarshal(payload, v); err != nil {
		return apierr.Wrap(err, apierr.InvalidArgument, "invalid payload: "+jsonProblem(err))
	}
	return nil
}

// jsonProblem describes a decoding error without echoing the input.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %q must be %s", te.Field, te.Type.Kind())
	}
	return "malformed JSON"
}

// GetUserTokenRequest is the payload of getUserToken.
type GetUserTokenRequest struct {
	AccessToken string `json:"accessToken"`
}

// GetUserTokenResult is its answer.
type GetUserTokenResult struct {
	UserToken string         `json:"userToken"`
	User      ecbserver.User `json:"user"`
}

// GetUserToken exchanges the backend's access token for a userToken (seed step 1).
// The userToken is verified before it is handed out, so a misconfigured backend
// is noticed here and not at the client's next request.
func (s *Service) GetUserToken(ctx context.Context, req GetUserTokenRequest) (*GetUserTokenResult, error) {
	return run(ctx, s, OpGetUserToken, Caller{}, func(ctx context.Context) (*GetUserTokenResult, error) {
		if req.AccessToken == "" {
			return nil, apierr.New(apierr.InvalidArgument, "accessToken is required")
		}
		resp, err := s.backend.Authenticate(ctx, &ecbserver.AuthenticateRequest{AccessToken: req.AccessToken})
		if err != nil {
			return nil, err
		}
		u, err := s.verifier.VerifyUser(resp.UserToken, "")
		if err != nil && !errors.Is(err, auth.ErrOrigin) {
			return nil, apierr.Wrap(fmt.Errorf("the backend's userToken does not verify: %w", err), apierr.BackendError, "the backend issued a userToken ECB cannot verify")
		}
		if u != nil && u.ID != resp.User.ID {
			return nil, apierr.New(apierr.BackendError, "the backend's userToken names another user")
		}
		return &GetUserTokenResult{UserToken: resp.UserToken, User: resp.User}, nil
	})
}

// requireThreadCaller admits any verified user, anonymous visitors included,
// for the operations on threads named by threadTokens (getThread,
// sendMessage, typing, markRead, resume): a visitor chats in the support thread
// whose threadToken ECB handed them. verifyThread then holds an anonymous
// visitor to a threadToken issued for them, whatever
// operations.enforceMembership says.
func requireThreadCaller(c Caller) error {
	if c.User == nil {
		return apierr.New(apierr.Unauthenticated, "a userToken is required")
	}
	return nil
}

// requireUser refuses anonymous visitors, who may use support operations only.
func requireUser(c Caller) error {
	if c.User == nil {
		return apierr.New(apierr.Unauthenticated, "a userToken is required")
	}
	if c.User.Anonymous {
		return apierr.New(apierr.Forbidden, "anonymous visitors may use the support operations only")
	}
	return nil
}
