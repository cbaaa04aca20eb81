// Package apierr owns the closed list of client-facing error codes that every
// ECB transport (REST, SSE, Socket.IO) reports, and their mapping to HTTP status.
//
// A client sees exactly one of the Code constants; anything else that goes wrong
// inside ECB becomes CodeInternal. The list is documented in docs/protocol.md:
// adding a code is a protocol change.
package apierr

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Code is a client-facing error code.
type Code string

// The closed list of error codes.
const (
	InvalidArgument    Code = "invalid_argument"    // 400: the request is malformed or misses a field
	Unauthenticated    Code = "unauthenticated"     // 401: no token, a bad or expired token
	Forbidden          Code = "forbidden"           // 403: the token is valid but does not allow this
	NotFound           Code = "not_found"           // 404: no such thread, route or resource
	Conflict           Code = "conflict"            // 409: the backend refused because of the state
	PayloadTooLarge    Code = "payload_too_large"   // 413: the body or message exceeds a limit
	RateLimited        Code = "rate_limited"        // 429: too many requests; retry after RetryAfter
	Internal           Code = "internal"            // 500: a bug in ECB; nothing was done
	BackendError       Code = "backend_error"       // 502: the backend answered something ECB cannot use
	BackendUnavailable Code = "backend_unavailable" // 503: the backend is down, slow or the circuit is open
	Unavailable        Code = "unavailable"         // 503: ECB is shutting down or at its connection limit
)

// Codes lists every code, in documentation order.
var Codes = []Code{InvalidArgument, Unauthenticated, Forbidden, NotFound, Conflict,
	PayloadTooLarge, RateLimited, Internal, BackendError, BackendUnavailable, Unavailable}

// HTTPStatus is the status a REST response carries for the code.
func (c Code) HTTPStatus() int {
	switch c {
	case InvalidArgument:
		return http.StatusBadRequest
	case Unauthenticated:
		return http.StatusUnauthorized
	case Forbidden:
		return http.StatusForbidden
	case NotFound:
		return http.StatusNotFound
	case Conflict:
		return http.StatusConflict
	case PayloadTooLarge:
		return http.StatusRequestEntityTooLarge
	case RateLimited:
		return http.StatusTooManyRequests
	case BackendError:
		return http.StatusBadGateway
	case BackendUnavailable, Unavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// Error is an error a client may see. Message is safe to show: it never holds a
// token or a message body. Cause is for logs only.
type Error struct {
	Code       Code
	Message    string
	RetryAfter time.Duration // set with RateLimited
	Cause      error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Cause)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Cause }

// New returns an Error with the code and a message for the client.
func New(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an Error with the code and message that keeps cause for logs.
func Wrap(cause error, code Code, message string) *Error {
	return &Error{Code: code, Message: message, Cause: cause}
}

// From finds the *Error in err's chain; any other error is reported as Internal
// so that nothing internal leaks to a client.
func From(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: Internal, Message: "internal error", Cause: err}
}

// Body is the wire form of an error: {"code": ..., "message": ...}.
type Body struct {
	Code       Code   `json:"code"`
	Message    string `json:"message"`
	RetryAfter int    `json:"retryAfter,omitempty"` // seconds, with rate_limited
}

// Body returns the wire form.
func (e *Error) Body() Body {
	b := Body{Code: e.Code, Message: e.Message}
	if e.RetryAfter > 0 {
		b.RetryAfter = int((e.RetryAfter + time.Second - 1) / time.Second)
	}
	return b
}

// Envelope is the answer of every operation on every transport: exactly one of
// Data and Error is set.
type Envelope struct {
	Data  any   `json:"data,omitempty"`
	Error *Body `json:"error,omitempty"`
}

// Result builds the envelope for an operation's outcome.
func Result(data any, err error) Envelope {
	if err != nil {
		b := From(err).Body()
		return Envelope{Error: &b}
	}
	return Envelope{Data: data}
}
