package ecbserver

import "context"

// The optional calls of contract 1.1. A Backend opts into them by also
// implementing one of the interfaces below; NewHandler finds them by type
// assertion on the Backend it is given, serves the calls of the interfaces
// the Backend implements, and answers the others with 501 not_implemented,
// which ECB reports to its client as not_found ("the backend does not
// support markRead"). Nothing else changes: a Backend written for contract
// 1.0 keeps working unchanged.
//
// The rules of [Backend] apply: UserID was authenticated by ECB, a method
// still checks what that user may do, returns an [*Error] to refuse, and must
// not return (nil, nil).

// ReadMarker is implemented by a Backend that keeps read marks: for each
// member of a thread, the last message they have read. ECB calls MarkRead
// when a client reports that its user has read a thread up to a message.
//
// A read mark only moves forward: a MarkRead for a message older than the
// current mark succeeds and changes nothing. Answer 404 not_found for an
// unknown thread, or a message that is not in the thread, and 403 forbidden
// when the user is not a member or lacks the read bit.
//
// A Backend that keeps read marks should also report each thread's unread
// count for the caller in [Thread].Unread of its GetThreads answer.
type ReadMarker interface {
	// MarkRead records that req.UserID has read req.ThreadID up to and
	// including req.MessageID.
	MarkRead(ctx context.Context, req *MarkReadRequest) (*MarkReadResponse, error)
}

// ParticipantManager is implemented by a Backend whose threads change
// members after their creation: group threads, rooms, a support
// conversation that an agent extends to a colleague.
//
// A Backend that supports only one of the two calls returns
// [NotImplemented] from the other.
type ParticipantManager interface {
	// AddParticipants adds req.Participants to req.ThreadID on behalf of
	// req.UserID, who needs the admin or owner access bit (else 403
	// forbidden). Participants who are already members are skipped and left
	// out of the response's Added list; an unknown participant is 400
	// invalid_argument. The response carries the thread after the change and
	// a fresh threadToken for req.UserID.
	AddParticipants(ctx context.Context, req *AddParticipantsRequest) (*AddParticipantsResponse, error)
	// LeaveThread removes req.UserID from req.ThreadID: afterwards the user
	// no longer gets the thread from GetThreads and is refused by GetThread.
	// Answer 403 forbidden when the user is not a member, 404 not_found for
	// an unknown thread.
	LeaveThread(ctx context.Context, req *LeaveThreadRequest) (*LeaveThreadResponse, error)
}

// optionalOps names the optional calls, for the 501 answer of a Backend that
// does not implement one.
var optionalOps = map[string]string{
	PathMarkRead:            "markRead",
	PathAddParticipants:     "addParticipants",
	PathLeaveThread:         "leaveThread",
	PathCreateSupportThread: "createSupportThread",

	PathSearchUsers:           "searchUsers",
	PathAddContact:            "addContact",
	PathRemoveContact:         "removeContact",
	PathSetProfile:            "setProfile",
	PathDeleteProfileProperty: "deleteProfileProperty",
	PathJoinThread:            "joinThread",
	PathGetPublicThreads:      "getPublicThreads",
	PathRemoveParticipant:     "removeParticipant",
	PathUpdateThread:          "updateThread",
	PathDeleteMessage:         "deleteMessage",
	PathDeleteThread:          "deleteThread",

	PathGetUploadURL:   "getUploadUrl",
	PathEditMessage:    "editMessage",
	PathReact:          "react",
	PathUnreact:        "unreact",
	PathSearchMessages: "searchMessages",
}

// OptionalCalls returns the optional calls of the contract: their paths
// (PathMarkRead, ...) to their names (markRead, ...).
func OptionalCalls() map[string]string {
	out := make(map[string]string, len(optionalOps))
	for k, v := range optionalOps {
		out[k] = v
	}
	return out
}
