package ops

import (
	"time"

	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/auth"
	"github.com/ecbridge/ecb/internal/hub"
)

// AccessOverrides gives the access code that replaces a threadToken's acc for
// one user and thread, as the backend set it live through the Server API.
type AccessOverrides interface {
	Lookup(threadID, userID string) (acc auth.Access, ok bool)
}

// ThreadStates gives a thread's status as the Server API set it: "" (open),
// "closed" (read-only) or "deleted".
type ThreadStates interface {
	ThreadStatus(threadID string) string
}

// Revocations gives the time before which a user's tokens are refused.
type Revocations interface {
	RevokedBefore(userID string) (before time.Time, ok bool)
}

// Limiter bounds what one user and one connection may do. Its errors are
// client errors (rate_limited, unavailable).
type Limiter interface {
	// AllowOp is asked before every operation of a verified user; conn is
	// nil for a request without a connection (REST without a stream).
	AllowOp(userID string, conn hub.Conn) error
	// AdmitConnection is asked before a transport opens a new connection
	// (a Socket.IO socket, an SSE stream) for userID.
	AdmitConnection(userID string) error
}

// Thread statuses of ThreadStates.
const (
	ThreadClosed  = "closed"
	ThreadDeleted = "deleted"
)

// Guards are the live decisions the operations consult on top of the tokens.
// A nil field means none.
type Guards struct {
	Access      AccessOverrides
	Threads     ThreadStates
	Revocations Revocations
	Limiter     Limiter
	// Writer records the decisions of the moderation operations (setAccess,
	// removeParticipant, deleteThread) in the same store, for every node.
	// Nil: setAccess answers not_found, and removals and deletions rely on
	// the backend alone for the tokens already signed.
	Writer LiveWriter
}

type noGuard struct{}

func (noGuard) Lookup(string, string) (auth.Access, bool) { return 0, false }
func (noGuard) ThreadStatus(string) string                { return "" }
func (noGuard) RevokedBefore(string) (time.Time, bool)    { return time.Time{}, false }
func (noGuard) AllowOp(string, hub.Conn) error            { return nil }
func (noGuard) AdmitConnection(string) error              { return nil }
func (g Guards) orNone() Guards {
	if g.Access == nil {
		g.Access = noGuard{}
	}
	if g.Threads == nil {
		g.Threads = noGuard{}
	}
	if g.Revocations == nil {
		g.Revocations = noGuard{}
	}
	if g.Limiter == nil {
		g.Limiter = noGuard{}
	}
	return g
}

// SetGuards installs the live decisions. Call it before the Service serves:
// it is not safe to call concurrently with operations.
func (s *Service) SetGuards(g Guards) { s.guards = g.orNone() }

// AdmitConnection asks the limiter whether userID may open one more
// connection; transports call it before registering a new one.
func (s *Service) AdmitConnection(userID string) error {
	return s.guards.Limiter.AdmitConnection(userID)
}

// checkRevoked refuses a userToken issued at or before the user's revocation
// time. iat has a resolution of one second, so a token issued in the same
// second as the revocation is refused too, and a token without iat is refused
// whenever its user has a revocation.
func (s *Service) checkRevoked(u *auth.User) error {
	if u == nil {
		return nil
	}
	before, ok := s.guards.Revocations.RevokedBefore(u.ID)
	if ok && (u.IssuedAt == 0 || u.IssuedAt <= before.Unix()) {
		return apierr.New(apierr.Unauthenticated, "this userToken was revoked: get a fresh one")
	}
	return nil
}

// admit runs before every operation: revocation, then the rate limits.
func (s *Service) admit(c Caller) error {
	if c.User == nil {
		return nil
	}
	if err := s.checkRevoked(c.User); err != nil {
		return err
	}
	return s.guards.Limiter.AllowOp(c.User.ID, c.Conn)
}

// liveAccess applies a live override to a verified threadToken for the
// caller; it reports whether there was one.
func (s *Service) liveAccess(c Caller, t *auth.Thread) bool {
	acc, ok := s.guards.Access.Lookup(t.ThreadID, c.User.ID)
	if ok {
		t.Access = acc
	}
	return ok
}

// checkThreadStatus refuses operations on a deleted thread, and those that
// need write on a closed one.
func (s *Service) checkThreadStatus(threadID string, need auth.Access) error {
	switch s.guards.Threads.ThreadStatus(threadID) {
	case ThreadDeleted:
		return apierr.New(apierr.NotFound, "this thread was deleted")
	case ThreadClosed:
		if need&auth.AccessWrite != 0 {
			return apierr.New(apierr.Conflict, "this thread is closed: it is read-only")
		}
	}
	return nil
}

// stillListening re-checks, after a connection was attached to a thread, that
// no override or status set meanwhile forbids it; the Server API detaches
// only the connections attached when it acts, so an attach that raced with it
// is undone here.
func (s *Service) stillListening(c Caller, threadID string) error {
	if acc, ok := s.guards.Access.Lookup(threadID, c.User.ID); ok && !acc.Has(auth.AccessRead) {
		return apierr.New(apierr.Forbidden, "your access to this thread does not allow this")
	}
	return s.checkThreadStatus(threadID, auth.AccessRead)
}
