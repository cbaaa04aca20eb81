package ecbserver

import (
	"encoding/json"
	"time"
)

// ContractFullVersion is the version of the backend contract this package
// implements: info.version of api/backend.yaml (semantic versioning; a test
// of ECB checks that the two agree).
const ContractFullVersion = "1.6.0"

// ContractVersion is the major number of ContractFullVersion. ECB sends it in
// the ECB-Contract-Version header of every call. Minor versions only add
// optional calls and fields, so they keep the same ContractVersion.
const ContractVersion = "1"

// The operation paths, relative to the backend base URL configured in ECB
// (backend.url). Every call is a POST with a JSON body.
const (
	PathAuthenticate     = "/authenticate"
	PathGetContacts      = "/getContacts"
	PathGetThreads       = "/getThreads"
	PathCreateThread     = "/createThread"
	PathGetThread        = "/getThread"
	PathAddThreadMessage = "/addThreadMessage"

	// Optional calls (contract 1.1). A backend that does not implement one
	// answers 501 with code CodeNotImplemented (a backend older than 1.1 may
	// answer 404), and ECB refuses the matching client operation with
	// not_found. With the SDK, implement [ReadMarker] and [ParticipantManager]:
	// NewHandler answers the 501 for you otherwise.
	PathMarkRead        = "/markRead"
	PathAddParticipants = "/addParticipants"
	PathLeaveThread     = "/leaveThread"
)

// Headers ECB sets on every call to the backend.
const (
	HeaderTimestamp       = "ECB-Timestamp"        // unix seconds
	HeaderSignature       = "ECB-Signature"        // "v1=" + hex(HMAC-SHA256(secret, timestamp + "." + body))
	HeaderRequestID       = "ECB-Request-Id"       // the client request's id, on ECB's log lines too (correlation, not dedupe)
	HeaderContractVersion = "ECB-Contract-Version" // ContractVersion
	HeaderIdempotencyKey  = "Idempotency-Key"      // addThreadMessage/createThread: the clientMessageId, when the client gave one
)

// User is a person (or bot) known to the backend.
type User struct {
	ID     string          `json:"id"`
	Name   string          `json:"name"`
	Avatar string          `json:"avatar,omitempty"`
	Data   json.RawMessage `json:"data,omitempty"`
	// Properties are the user's profile properties (contract 1.4,
	// [ProfileEditor]), when the backend keeps them.
	Properties map[string]string `json:"properties,omitempty"`
}

// Thread is a conversation between members.
type Thread struct {
	ID          string          `json:"id"`
	Subject     string          `json:"subject,omitempty"`
	Members     []string        `json:"members"`
	CreatedAt   time.Time       `json:"createdAt"`
	UpdatedAt   time.Time       `json:"updatedAt"`
	LastMessage *Message        `json:"lastMessage,omitempty"`
	Unread      *int            `json:"unread,omitempty"`
	Data        json.RawMessage `json:"data,omitempty"`
	// Public marks a thread any authenticated user who knows its id may
	// join (optional call joinThread, contract 1.4).
	Public bool `json:"public,omitempty"`
	// Mentioned tells the user the answer is for that a message after
	// their read mark mentions them (contract 1.6, see
	// AddThreadMessageRequest.Mentions); absent when the backend does not
	// say. Like Unread it is the caller's own: set it only in answers for
	// that user (getThreads, getThread).
	Mentioned *bool `json:"mentioned,omitempty"`
}

// Message is one message of a thread. Offset is never set by the backend: ECB
// fills it in with the thread's push offset when it delivers the message.
type Message struct {
	ID              string          `json:"id"`
	ThreadID        string          `json:"threadId"`
	AuthorID        string          `json:"authorId"`
	Body            string          `json:"body"`
	Data            json.RawMessage `json:"data,omitempty"`
	ClientMessageID string          `json:"clientMessageId,omitempty"`
	CreatedAt       time.Time       `json:"createdAt"`
	Offset          uint64          `json:"offset,omitempty"`
	// Visibility is "" for everyone, VisibilityAgents for a whisper: only
	// members with role agent or supervisor may read it (contract 1.3).
	Visibility string `json:"visibility,omitempty"`
	// Deleted marks a message a moderator or its author deleted (optional
	// call deleteMessage, contract 1.4): the history keeps its place, with
	// an empty Body and no Data.
	Deleted bool `json:"deleted,omitempty"`
	// Attachments are the files attached to the message (optional call
	// getUploadUrl, contract 1.5), in the order the author gave them.
	Attachments []Attachment `json:"attachments,omitempty"`
	// EditedAt is when the message was last edited (optional call
	// editMessage, contract 1.5); Body and Data are then the last version.
	EditedAt *time.Time `json:"editedAt,omitempty"`
	// Reactions are the message's reactions aggregated (optional calls
	// react and unreact, contract 1.5), each with whether the user the
	// answer is for reacted with it; absent when there are none.
	Reactions []ReactionCount `json:"reactions,omitempty"`
	// ReplyTo quotes the message this one replies to (contract 1.5,
	// AddThreadMessageRequest.ReplyTo), as the backend stores it.
	ReplyTo *ReplyQuote `json:"replyTo,omitempty"`
	// Mentions are the users the message mentions (contract 1.6), as the
	// backend kept them: members of the thread only, in the author's order,
	// each once (see AddThreadMessageRequest.Mentions).
	Mentions []string `json:"mentions,omitempty"`
}

// ReactionCount is one reaction of a message: how many users reacted with
// it, and whether the user the answer is for did (Me).
type ReactionCount struct {
	Reaction string `json:"reaction"`
	Count    int    `json:"count"`
	Me       bool   `json:"me,omitempty"`
}

// ReplyQuote is the short quote of a parent message that a reply carries:
// its id, author and an excerpt of its body (the backend chooses the
// length; the reference backend keeps 140 characters). Deleted is set when
// the parent was deleted since (Excerpt is then empty).
type ReplyQuote struct {
	MessageID string `json:"messageId"`
	AuthorID  string `json:"authorId"`
	Excerpt   string `json:"excerpt"`
	Deleted   bool   `json:"deleted,omitempty"`
}

// VisibilityAgents is the Visibility of a whisper.
const VisibilityAgents = "agents"

// SignedThread is a thread with the threadToken the backend signed for the caller.
type SignedThread struct {
	Thread      Thread `json:"thread"`
	ThreadToken string `json:"threadToken"`
}

// NewMessage is the content of a message a user writes.
type NewMessage struct {
	Body            string          `json:"body"`
	ClientMessageID string          `json:"clientMessageId,omitempty"`
	Data            json.RawMessage `json:"data,omitempty"`
}

// AuthenticateRequest asks the backend to validate an access token it issued
// (step 0 of the seed) and to sign a userToken for its user.
type AuthenticateRequest struct {
	AccessToken string `json:"accessToken"`
}

// AuthenticateResponse carries the userToken the backend signed.
type AuthenticateResponse struct {
	UserToken string `json:"userToken"`
	User      User   `json:"user"`
}

// GetContactsRequest asks for the users UserID may start threads with.
type GetContactsRequest struct {
	UserID string `json:"userId"`
}

// GetContactsResponse lists contacts; ECB pages them for the client.
type GetContactsResponse struct {
	Contacts []User `json:"contacts"`
}

// GetThreadsRequest asks for the threads of UserID.
type GetThreadsRequest struct {
	UserID string `json:"userId"`
}

// GetThreadsResponse lists threads, each signed for the caller; ECB pages them.
type GetThreadsResponse struct {
	Threads []SignedThread `json:"threads"`
}

// CreateThreadRequest asks the backend to create a thread with a first message.
type CreateThreadRequest struct {
	UserID       string     `json:"userId"`
	Participants []string   `json:"participants"`
	Subject      string     `json:"subject,omitempty"`
	Message      NewMessage `json:"message"`
	// Public asks for a public thread (contract 1.4): one that any
	// authenticated user may join with joinThread. Participants may then be
	// empty. A backend that does not make public threads refuses it with 400
	// invalid_argument; one older than 1.4 ignores it, and the answer's
	// Thread.Public says what was made.
	Public bool `json:"public,omitempty"`
}

// CreateThreadResponse is the stored thread, its token for the creator, and the
// stored first message.
type CreateThreadResponse struct {
	Thread      Thread  `json:"thread"`
	ThreadToken string  `json:"threadToken"`
	Message     Message `json:"message"`
}

// GetThreadRequest asks for a thread and a page of its messages, newest last.
// Before is an opaque cursor from a previous NextCursor ("" = the latest page).
type GetThreadRequest struct {
	UserID   string `json:"userId"`
	ThreadID string `json:"threadId"`
	Before   string `json:"before,omitempty"`
	Limit    int    `json:"limit,omitempty"`
}

// GetThreadResponse is the thread, a fresh threadToken, a page of messages in
// chronological order and the cursor of the page before it ("" when none).
type GetThreadResponse struct {
	Thread      Thread    `json:"thread"`
	ThreadToken string    `json:"threadToken"`
	Messages    []Message `json:"messages"`
	NextCursor  string    `json:"nextCursor,omitempty"`
}

// AddThreadMessageRequest asks the backend to store a message.
type AddThreadMessageRequest struct {
	UserID          string          `json:"userId"`
	ThreadID        string          `json:"threadId"`
	Body            string          `json:"body"`
	ClientMessageID string          `json:"clientMessageId,omitempty"`
	Data            json.RawMessage `json:"data,omitempty"`
	// Visibility is VisibilityAgents for a whisper (ECB has checked that the
	// user has role agent or supervisor); the backend stores it and answers
	// it in the message, and never returns the message to other users.
	Visibility string `json:"visibility,omitempty"`
	// Attachments are the ids of files the user uploaded through
	// getUploadUrl (contract 1.5), at most MaxAttachments: the backend
	// attaches them to the message and answers them in Message.Attachments.
	// Body may be empty when there are attachments.
	Attachments []string `json:"attachments,omitempty"`
	// ThreadTokenExpiresAt and ThreadTokenAccess describe the threadToken
	// the author sent with the message (contract 1.5): its exp and its acc
	// claim. A backend re-issues a token only when this one nears its end or
	// grants other access than the user now has; [TokenSigner.ReissueThreadToken]
	// applies that rule. Both are absent from ECB older than 1.5.
	ThreadTokenExpiresAt *time.Time `json:"threadTokenExpiresAt,omitempty"`
	ThreadTokenAccess    *int       `json:"threadTokenAccess,omitempty"`
	// ReplyTo is the id of the message this one replies to (contract 1.5).
	// The parent must be a message of ThreadID that the user may read:
	// answer 400 invalid_argument otherwise. The stored message carries
	// its quote in Message.ReplyTo. A backend older than 1.5 ignores it.
	ReplyTo string `json:"replyTo,omitempty"`
	// Mentions are the user ids the author mentions (contract 1.6): at most
	// MaxMentions, each 1 to MaxMentionIDBytes bytes, no repeats (ECB
	// checks that before the call). The backend keeps the mentions of
	// members who may read the message and drops the others (a non-member,
	// an unknown id, the author, a non-agent in a whisper) without refusing
	// the message; it answers the kept list in Message.Mentions, and ECB
	// pushes a mention to those users only. A backend older than 1.6
	// ignores it (no mentions are kept).
	Mentions []string `json:"mentions,omitempty"`
}

// AddThreadMessageResponse is the stored message and, when the backend
// re-issued one (contract 1.5), a fresh threadToken. Without one, ECB answers
// the author with the token they sent.
type AddThreadMessageResponse struct {
	Message     Message `json:"message"`
	ThreadToken string  `json:"threadToken,omitempty"`
}

// MarkReadRequest records that UserID has read ThreadID up to and including
// MessageID (optional call markRead, contract 1.1). A read mark only moves
// forward: marking an older message than the current mark changes nothing.
type MarkReadRequest struct {
	UserID    string `json:"userId"`
	ThreadID  string `json:"threadId"`
	MessageID string `json:"messageId"`
}

// MarkReadResponse confirms a read mark. MessageID is the user's read mark
// after the call: the request's message, or a later one when the mark was
// already past it ("" when the backend does not say). Unread is the user's
// unread count in the thread after it, when the backend keeps one.
type MarkReadResponse struct {
	MessageID string `json:"messageId,omitempty"`
	Unread    *int   `json:"unread,omitempty"`
}

// AddParticipantsRequest asks the backend to add members to a thread on
// behalf of UserID (who needs the admin or owner bit), optional call
// addParticipants, contract 1.1. Participants that are already members are
// skipped, not refused.
type AddParticipantsRequest struct {
	UserID       string   `json:"userId"`
	ThreadID     string   `json:"threadId"`
	Participants []string `json:"participants"`
}

// AddParticipantsResponse is the thread after the change, a fresh token for
// the caller, and the users actually added (those not already members; empty
// when there were none).
type AddParticipantsResponse struct {
	Thread      Thread   `json:"thread"`
	ThreadToken string   `json:"threadToken"`
	Added       []string `json:"added"`
}

// LeaveThreadRequest asks the backend to remove UserID from ThreadID
// (optional call leaveThread, contract 1.1).
type LeaveThreadRequest struct {
	UserID   string `json:"userId"`
	ThreadID string `json:"threadId"`
}

// LeaveThreadResponse is the thread after the change, without the user who
// left. There is no threadToken: the user no longer has access.
type LeaveThreadResponse struct {
	Thread Thread `json:"thread"`
}

// Error codes a backend may answer with, in ErrorResponse.Error.Code: a closed
// list (api/backend.yaml enumerates it). ECB maps them to the client error
// code of the same name, except CodeBadSignature and CodeInternal, which are
// backend failures, not the client's doing, and CodeNotImplemented, which the
// client sees as not_found.
const (
	CodeInvalidArgument = "invalid_argument" // HTTP 400
	CodeUnauthenticated = "unauthenticated"  // HTTP 401: bad access token
	CodeForbidden       = "forbidden"        // HTTP 403
	CodeNotFound        = "not_found"        // HTTP 404
	CodeConflict        = "conflict"         // HTTP 409
	CodeInternal        = "internal"         // HTTP 500

	// CodeBadSignature (HTTP 401) means the backend refused the call's
	// signature: a missing or wrong ECB-Signature or a stale ECB-Timestamp.
	// It is not the user's fault but a configuration or clock problem, so ECB
	// must not report it to the client as unauthenticated.
	CodeBadSignature = "bad_signature"
	// CodePayloadTooLarge (HTTP 413) means the request body exceeded the
	// backend's limit.
	CodePayloadTooLarge = "payload_too_large"
	// CodeNotImplemented (HTTP 501) means the backend does not implement an
	// optional call (markRead, addParticipants, leaveThread). It tells "this
	// backend cannot do that" apart from not_found ("no such thread"); ECB
	// reports it to the client as not_found with a message that says so.
	CodeNotImplemented = "not_implemented"
)

// ErrorResponse is the body of every non-2xx answer of the backend.
type ErrorResponse struct {
	Error ErrorBody `json:"error"`
}

// ErrorBody describes an error.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Access bits of a threadToken's acc claim (the Ethora chat-access model).
const (
	AccessNone  = 0
	AccessRead  = 1
	AccessWrite = 2
	AccessAdmin = 4
	AccessOwner = 8
)

// UserClaims are the claims of a userToken. Typ is always "user".
// Registered claims: sub (the user id), exp, iat, aud, iss.
type UserClaims struct {
	Typ        string   `json:"typ"`
	Name       string   `json:"name"`
	Roles      []string `json:"roles,omitempty"`      // agent, supervisor, bot
	Workgroups []string `json:"workgroups,omitempty"` // for agents and supervisors
	Anon       bool     `json:"anon,omitempty"`       // anonymous visitor
	Origins    []string `json:"origins,omitempty"`    // anonymous: the allowed Origin values
}

// ThreadClaims are the claims of a threadToken. Typ is always "thread".
// Registered claims: sub (the thread id), exp, iat, aud, iss.
type ThreadClaims struct {
	Typ     string   `json:"typ"`
	UID     string   `json:"uid"` // the user the token was issued for
	Acc     int      `json:"acc"` // access bits
	Members []string `json:"members,omitempty"`
}

// Token types, the typ claim. ECB refuses a token of the wrong type, so a
// threadToken can never be used as a userToken.
const (
	TokenTypeUser   = "user"
	TokenTypeThread = "thread"
)
