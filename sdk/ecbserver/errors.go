package ecbserver

import "net/http"

// Error is an answer a Backend method gives to refuse a call. The handler
// writes Status and the body {"error": {"code": Code, "message": Message}}.
//
// Message travels to ECB and may reach the end user through ECB's own error
// answer: keep it short, human and free of secrets. Build errors with the
// constructors ([NotFound], [Forbidden], ...) so Status and Code agree.
type Error struct {
	Status  int    // HTTP status, 4xx or 5xx; 0 means the status of Code
	Code    string // one of the Code constants
	Message string
}

// Error implements the error interface.
func (e *Error) Error() string {
	return "ecbserver: " + e.Code + ": " + e.Message
}

// InvalidArgument reports a malformed or incomplete request (HTTP 400).
func InvalidArgument(msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeInvalidArgument, Message: msg}
}

// Unauthenticated reports an access token that is unknown, expired or revoked
// (HTTP 401). Only authenticate has a reason to return it: ECB has already
// verified the user of every other call.
func Unauthenticated(msg string) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: CodeUnauthenticated, Message: msg}
}

// Forbidden reports a caller who may not do this, such as a non-member reading
// a thread (HTTP 403).
func Forbidden(msg string) *Error {
	return &Error{Status: http.StatusForbidden, Code: CodeForbidden, Message: msg}
}

// NotFound reports an unknown user or thread (HTTP 404).
func NotFound(msg string) *Error {
	return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: msg}
}

// Conflict reports a request that the current state forbids, such as an
// idempotency key reused for a different message (HTTP 409).
func Conflict(msg string) *Error {
	return &Error{Status: http.StatusConflict, Code: CodeConflict, Message: msg}
}

// NotImplemented reports an optional call this backend does not support
// (HTTP 501, code not_implemented). NewHandler answers it by itself for an
// optional call whose interface the Backend does not implement; return it
// from a method when support depends on something known only at run time,
// such as one of the two methods of [ParticipantManager].
func NotImplemented(msg string) *Error {
	return &Error{Status: http.StatusNotImplemented, Code: CodeNotImplemented, Message: msg}
}

// statusOf is the one place that turns an error code into an HTTP status.
func statusOf(code string) int {
	switch code {
	case CodeInvalidArgument:
		return http.StatusBadRequest
	case CodeUnauthenticated, CodeBadSignature:
		return http.StatusUnauthorized
	case CodeForbidden:
		return http.StatusForbidden
	case CodeNotFound:
		return http.StatusNotFound
	case CodeConflict:
		return http.StatusConflict
	case CodePayloadTooLarge:
		return http.StatusRequestEntityTooLarge
	case CodeNotImplemented:
		return http.StatusNotImplemented
	default:
		return http.StatusInternalServerError
	}
}

// normalized fills in what a hand-built Error left out, so the wire answer is
// always a client or server error with a code and a message.
func (e *Error) normalized() *Error {
	n := *e
	if n.Code == "" {
		n.Code = CodeInternal
	}
	if n.Status < 400 || n.Status > 599 {
		n.Status = statusOf(n.Code)
	}
	if n.Message == "" {
		n.Message = http.StatusText(n.Status)
	}
	return &n
}
