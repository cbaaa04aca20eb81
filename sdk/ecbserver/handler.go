package ecbserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// Backend is what a company backend implements to serve ECB: one method per
// required contract call. NewHandler calls the methods concurrently. The
// optional calls of contract 1.1 have interfaces of their own, [ReadMarker]
// and [ParticipantManager], that a Backend may implement too.
//
// The user in each request (UserID) was authenticated by ECB from a userToken
// your backend signed, so a method may trust it; it must still check that the
// user may do what is asked (membership of a thread, access bits).
//
// Return an [*Error] to refuse a call with a given status and code; any other
// error is answered as a 500 "internal" error and logged. A method must not
// return (nil, nil).
type Backend interface {
	// Authenticate validates an access token your backend issued to its
	// logged-in user and returns a userToken signed for that user.
	Authenticate(ctx context.Context, req *AuthenticateRequest) (*AuthenticateResponse, error)
	// GetContacts returns the users req.UserID may start threads with.
	GetContacts(ctx context.Context, req *GetContactsRequest) (*GetContactsResponse, error)
	// GetThreads returns the threads of req.UserID, each with a threadToken
	// signed for that user.
	GetThreads(ctx context.Context, req *GetThreadsRequest) (*GetThreadsResponse, error)
	// CreateThread stores a new thread with its first message.
	CreateThread(ctx context.Context, req *CreateThreadRequest) (*CreateThreadResponse, error)
	// GetThread returns a thread and one page of its messages.
	GetThread(ctx context.Context, req *GetThreadRequest) (*GetThreadResponse, error)
	// AddThreadMessage stores a message in a thread.
	AddThreadMessage(ctx context.Context, req *AddThreadMessageRequest) (*AddThreadMessageResponse, error)
}

// DefaultMaxBodyBytes is the request body limit of NewHandler when
// HandlerOptions.MaxBodyBytes is zero.
const DefaultMaxBodyBytes = 1 << 20

// HandlerOptions tunes NewHandler. The zero value is ready to use.
type HandlerOptions struct {
	// MaxBodyBytes caps a request body; a larger one is answered with 413.
	// Zero means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// ReplayWindow is how far ECB-Timestamp may be from this server's clock.
	// Zero means DefaultReplayWindow.
	ReplayWindow time.Duration
	// Logger receives refused signatures (warn) and internal errors (error).
	// Nil means slog.Default().
	Logger *slog.Logger
}

type ctxKey int

const (
	idempotencyKeyCtx ctxKey = iota
	requestIDCtx
)

// IdempotencyKey returns the Idempotency-Key header of the call being served,
// or "" when ECB sent none. ECB sets it on createThread and addThreadMessage
// to the client's clientMessageId.
func IdempotencyKey(ctx context.Context) string {
	s, _ := ctx.Value(idempotencyKeyCtx).(string)
	return s
}

// RequestID returns the ECB-Request-Id header of the call being served, or "".
// ECB logs the same id, so quote it when correlating logs.
func RequestID(ctx context.Context) string {
	s, _ := ctx.Value(requestIDCtx).(string)
	return s
}

// operation decodes a call's body, runs it and returns the response to encode.
type operation func(ctx context.Context, body []byte) (any, error)

// validator is implemented by the request types: the structural checks every
// backend would otherwise repeat (required fields present).
type validator interface{ validate() error }

// normalizer is implemented by the response types whose arrays must encode as
// [] rather than null, as the contract says they are arrays.
type normalizer interface{ normalize() }

// errNilResponse reports a Backend method that returned neither a response nor
// an error: a bug in the backend, answered as internal.
var errNilResponse = errors.New("ecbserver: backend returned a nil response and a nil error")

// bind turns a typed Backend method into an operation.
func bind[Req, Resp any](call func(context.Context, *Req) (*Resp, error)) operation {
	return func(ctx context.Context, body []byte) (any, error) {
		req := new(Req)
		// Unknown fields are allowed on purpose: a newer ECB may send fields an
		// older backend does not know yet, and must not break it.
		if err := json.Unmarshal(body, req); err != nil {
			return nil, InvalidArgument("malformed JSON body: " + err.Error())
		}
		if v, ok := any(req).(validator); ok {
			if err := v.validate(); err != nil {
				return nil, InvalidArgument(err.Error())
			}
		}
		resp, err := call(ctx, req)
		if err != nil {
			return nil, err
		}
		if resp == nil {
			return nil, errNilResponse
		}
		if n, ok := any(resp).(normalizer); ok {
			n.normalize()
		}
		return resp, nil
	}
}

type handler struct {
	signedReceiver
	ops map[string]operation
}

// NewHandler returns the http.Handler that serves the contract for b. It
// answers the six operation paths (PathAuthenticate, ...) relative to its own
// root, so mount it with http.StripPrefix under the base path you configure in
// ECB, for example "/ecb/v1".
//
// It serves the optional paths of the interfaces b implements too
// ([ReadMarker]: PathMarkRead; [ParticipantManager]: PathAddParticipants and
// PathLeaveThread; [SupportThreadCreator]; since 1.4 [UserSearcher],
// [ContactManager], [ProfileEditor], [PublicThreads] and [Moderator]),
// found by type assertion once, here. An optional path
// whose interface b does not implement is answered 501 not_implemented,
// whatever the request, so ECB can tell "not supported" from "not found".
//
// For every call it checks the method (POST, else 405), the body size (else
// 413), the signature with secret (else 401 bad_signature) before it parses
// anything, the ECB-Contract-Version when present, then decodes the JSON (a
// malformed body or a missing required field is a 400 invalid_argument),
// calls b with a context that carries [IdempotencyKey] and [RequestID], and
// writes the JSON response. Unknown paths get 404.
func NewHandler(secret []byte, b Backend, opts HandlerOptions) http.Handler {
	h := &handler{
		signedReceiver: newSignedReceiver(secret, opts.MaxBodyBytes, opts.ReplayWindow, opts.Logger, "NewHandler"),
		ops: map[string]operation{
			PathAuthenticate:     bind(b.Authenticate),
			PathGetContacts:      bind(b.GetContacts),
			PathGetThreads:       bind(b.GetThreads),
			PathCreateThread:     bind(b.CreateThread),
			PathGetThread:        bind(b.GetThread),
			PathAddThreadMessage: bind(b.AddThreadMessage),
		},
	}
	if rm, ok := b.(ReadMarker); ok {
		h.ops[PathMarkRead] = bind(rm.MarkRead)
	}
	if pm, ok := b.(ParticipantManager); ok {
		h.ops[PathAddParticipants] = bind(pm.AddParticipants)
		h.ops[PathLeaveThread] = bind(pm.LeaveThread)
	}
	if sc, ok := b.(SupportThreadCreator); ok {
		h.ops[PathCreateSupportThread] = bind(sc.CreateSupportThread)
	}
	if us, ok := b.(UserSearcher); ok {
		h.ops[PathSearchUsers] = bind(us.SearchUsers)
	}
	if cm, ok := b.(ContactManager); ok {
		h.ops[PathAddContact] = bind(cm.AddContact)
		h.ops[PathRemoveContact] = bind(cm.RemoveContact)
	}
	if pe, ok := b.(ProfileEditor); ok {
		h.ops[PathSetProfile] = bind(pe.SetProfile)
		h.ops[PathDeleteProfileProperty] = bind(pe.DeleteProfileProperty)
	}
	if pt, ok := b.(PublicThreads); ok {
		h.ops[PathJoinThread] = bind(pt.JoinThread)
		h.ops[PathGetPublicThreads] = bind(pt.GetPublicThreads)
	}
	if m, ok := b.(Moderator); ok {
		h.ops[PathRemoveParticipant] = bind(m.RemoveParticipant)
		h.ops[PathUpdateThread] = bind(m.UpdateThread)
		h.ops[PathDeleteMessage] = bind(m.DeleteMessage)
		h.ops[PathDeleteThread] = bind(m.DeleteThread)
	}
	if u, ok := b.(Uploader); ok {
		h.ops[PathGetUploadURL] = bind(u.GetUploadURL)
	}
	if e, ok := b.(MessageEditor); ok {
		h.ops[PathEditMessage] = bind(e.EditMessage)
	}
	if r, ok := b.(Reactor); ok {
		h.ops[PathReact] = bind(r.React)
		h.ops[PathUnreact] = bind(r.Unreact)
	}
	if ms, ok := b.(MessageSearcher); ok {
		h.ops[PathSearchMessages] = bind(ms.SearchMessages)
	}
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op, ok := h.ops[r.URL.Path]
	if !ok {
		if name, optional := optionalOps[r.URL.Path]; optional {
			// Known to the contract, not implemented by this backend. Nothing
			// is read or checked: the answer is the same for every caller
			// and says no more than the published contract does.
			writeError(w, NotImplemented("this backend does not implement "+name))
			return
		}
		writeError(w, NotFound("no such operation: "+r.URL.Path))
		return
	}
	body, ok := h.readSigned(w, r, slog.String("path", r.URL.Path), slog.String("request_id", r.Header.Get(HeaderRequestID)))
	if !ok {
		return
	}
	if v := r.Header.Get(HeaderContractVersion); v != "" && v != ContractVersion {
		writeError(w, InvalidArgument(fmt.Sprintf("unsupported contract version %q; this backend speaks %q", v, ContractVersion)))
		return
	}

	ctx := r.Context()
	if k := r.Header.Get(HeaderIdempotencyKey); k != "" {
		ctx = context.WithValue(ctx, idempotencyKeyCtx, k)
	}
	if id := r.Header.Get(HeaderRequestID); id != "" {
		ctx = context.WithValue(ctx, requestIDCtx, id)
	}
	resp, err := op(ctx, body)
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			level := slog.LevelError
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				// ECB gave up waiting (its timeout) or went away: worth a
				// warning, not an alert about a broken backend.
				level = slog.LevelWarn
			}
			h.log.LogAttrs(ctx, level, "ecbserver: backend call failed",
				slog.String("path", r.URL.Path), slog.String("request_id", RequestID(ctx)), slog.Any("err", err))
			e = &Error{Code: CodeInternal, Message: "internal error"}
		}
		writeError(w, e)
		return
	}
	out, err := json.Marshal(resp)
	if err != nil {
		h.log.LogAttrs(ctx, slog.LevelError, "ecbserver: cannot encode response",
			slog.String("path", r.URL.Path), slog.String("request_id", RequestID(ctx)), slog.Any("err", err))
		writeError(w, &Error{Code: CodeInternal, Message: "internal error"})
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// signatureMessage tells ECB's operator which of the three checks failed
// without echoing anything the caller sent.
func signatureMessage(err error) string {
	switch {
	case errors.Is(err, ErrMissingSignature):
		return "missing " + HeaderTimestamp + " or " + HeaderSignature + " header"
	case errors.Is(err, ErrStaleTimestamp):
		return HeaderTimestamp + " is outside the replay window; check both clocks"
	default:
		return "signature does not match; check the shared secret"
	}
}

func writeError(w http.ResponseWriter, e *Error) {
	e = e.normalized()
	out, err := json.Marshal(ErrorResponse{Error: ErrorBody{Code: e.Code, Message: e.Message}})
	if err != nil {
		// Two strings always encode; this is unreachable but must not panic.
		out = []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	writeJSON(w, e.Status, out)
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	// Answers carry tokens: no proxy or browser cache may keep them.
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body) // a write error means the caller left; nothing to do
}

var _ http.Handler = (*handler)(nil)
