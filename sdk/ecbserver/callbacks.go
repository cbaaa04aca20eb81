package ecbserver

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"
)

// PathCallbacks is where ECB posts customer-support events when its
// callbacks.url is the backend's contract URL followed by this path (the
// reference backend serves it there; any URL works).
const PathCallbacks = "/callbacks"

// The types of CallbackEvent.
const (
	CallbackSupportRequested        = "support.requested"
	CallbackOfferAccepted           = "offer.accepted"
	CallbackOfferRejected           = "offer.rejected"
	CallbackOfferRevoked            = "offer.revoked"
	CallbackParticipantJoined       = "participant.joined"
	CallbackParticipantLeft         = "participant.left"
	CallbackMessageCreated          = "message.created"
	CallbackConversationTransferred = "conversation.transferred"
	CallbackConversationClosed      = "conversation.closed"
	// CallbackMessageOffline is the offline nudge (contract 1.6): members
	// of a thread with no live connection, and the users mentioned, after
	// messages were stored in it; Data is an [OfflineNudge]. It is posted
	// for every thread, not only support chats.
	CallbackMessageOffline = "message.offline"
)

// OfflineNudge is the Data of a message.offline event (contract 1.6): one
// batch of the messages stored in one thread within callbacks.offlineWindow,
// so that the backend can send mobile or web push notifications.
//
// MessageID is the batch's last message and MessageIDs all of them, oldest
// first (at most 100: the first 99 and the last; Count says how many there
// were). UserIDs are the thread's members that had no live connection on
// any node when the batch was sent, each of whom did not write every message
// of the batch; Mentioned are the users the batch's messages mentioned
// (online or not, never a message's own author). Both are sorted and may
// overlap. Visibility is "agents" for a batch of whispers: its users are
// the agents and supervisors of the support chat only; whispers and other
// messages never share a batch. The event's ID is "ev_off_" followed by
// MessageID, the same on every retry.
type OfflineNudge struct {
	ThreadID   string   `json:"threadId"`
	MessageID  string   `json:"messageId"`
	MessageIDs []string `json:"messageIds"`
	Count      int      `json:"count"`
	UserIDs    []string `json:"userIds"`
	Mentioned  []string `json:"mentioned"`
	Visibility string   `json:"visibility,omitempty"`
}

// CallbackEvent is the body of a callback ECB posts about a support
// conversation, signed like every contract call.
//
// ID is unique per event and stays the same when ECB retries a delivery, so
// a backend must dedupe on it (a message.created's is "ev_msg_" and the
// message id, the same however often it is posted). Events of one
// conversation (one RequestID) are posted one at a time, in order, by one
// node; a later event is not posted before an earlier one was answered 2xx
// or given up. In cluster mode a message.created comes from the node that
// stored the message: those are in order per node only, and data.offset is
// the thread's order. OperationID is the operationId
// the visitor passed in support.ask, echoed for correlation. Data carries
// the type's details (support.requested: question, metadata; offer.rejected
// and offer.revoked: offerId and reason; conversation.closed: state).
type CallbackEvent struct {
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	At          time.Time       `json:"at"`
	OperationID string          `json:"operationId,omitempty"`
	Workgroup   string          `json:"workgroup,omitempty"`
	RequestID   string          `json:"requestId,omitempty"`
	ThreadID    string          `json:"threadId,omitempty"`
	UserID      string          `json:"userId,omitempty"`
	Data        json.RawMessage `json:"data,omitempty"`
}

// CallbackHandlerOptions tunes NewCallbackHandler; the zero value is ready
// to use. The fields mean what they mean in HandlerOptions.
type CallbackHandlerOptions struct {
	MaxBodyBytes int64
	ReplayWindow time.Duration
	Logger       *slog.Logger
}

// NewCallbackHandler returns the handler of ECB's callbacks: it accepts only
// POST (else 405), bodies up to MaxBodyBytes (else 413), a valid signature
// with secret (else 401 bad_signature), and a JSON CallbackEvent with an id
// and a type (else 400 invalid_argument); then it calls handle and answers
// 204. An [*Error] from handle is answered with its status; any other error
// with 500, which makes ECB retry the event later.
//
// ECB retries an event until it is answered 2xx, so handle may see the same
// event (same ID) more than once and must be idempotent: store it keyed by
// its ID, for instance.
func NewCallbackHandler(secret []byte, handle func(context.Context, CallbackEvent) error, opts CallbackHandlerOptions) http.Handler {
	return &callbackHandler{
		signedReceiver: newSignedReceiver(secret, opts.MaxBodyBytes, opts.ReplayWindow, opts.Logger, "NewCallbackHandler"),
		handle:         handle,
	}
}

type callbackHandler struct {
	signedReceiver
	handle func(context.Context, CallbackEvent) error
}

func (h *callbackHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, ok := h.readSigned(w, r)
	if !ok {
		return
	}
	var ev CallbackEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		writeError(w, InvalidArgument("body is not a callback event: "+err.Error()))
		return
	}
	if ev.ID == "" || ev.Type == "" {
		writeError(w, InvalidArgument("a callback event needs an id and a type"))
		return
	}
	if err := h.handle(r.Context(), ev); err != nil {
		var e *Error
		if !errors.As(err, &e) {
			h.log.LogAttrs(r.Context(), slog.LevelError, "ecbserver: callback handling failed",
				slog.String("event", ev.ID), slog.String("type", ev.Type), slog.Any("err", err))
			e = &Error{Code: CodeInternal, Message: "internal error"}
		}
		writeError(w, e)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
