package auth

import (
	"context"
	"slices"
	"time"
)

// Access is the bitmask of a threadToken's acc claim.
type Access uint8

// The access bits (Ethora chat-access model). 0 means no access at all.
const (
	AccessRead  Access = 1
	AccessWrite Access = 2
	AccessAdmin Access = 4
	AccessOwner Access = 8
)

// Has reports whether every bit of want is set.
func (a Access) Has(want Access) bool { return a&want == want }

// User is the verified identity carried by a userToken.
type User struct {
	ID         string
	Name       string
	Roles      []string
	Workgroups []string
	Anonymous  bool
	// IssuedAt is the iat claim in Unix seconds (its resolution), 0 when
	// the token has none. Seconds rather than a time.Time, and no origins
	// claim (checked at verification, read nowhere after): a User lives as
	// long as its connection, and this keeps it in 128 bytes.
	IssuedAt  int64
	ExpiresAt time.Time
}

// HasRole reports whether the user holds role.
func (u *User) HasRole(role string) bool { return slices.Contains(u.Roles, role) }

// Thread is the verified content of a threadToken.
type Thread struct {
	ThreadID string
	UserID   string
	Access   Access // the token's acc; a live override replaces it (ops)
	// Signed is the acc claim as signed, whatever override replaced Access.
	Signed Access
	// Members is the members claim. It is read-only: a Thread answered
	// from the token cache shares it with the other tokens of the thread.
	Members   []string
	ExpiresAt time.Time
}

type userKey struct{}

// WithUser returns a context that carries u.
func WithUser(ctx context.Context, u *User) context.Context {
	return context.WithValue(ctx, userKey{}, u)
}

// UserFrom returns the user stored by WithUser, or nil.
func UserFrom(ctx context.Context) *User {
	u, _ := ctx.Value(userKey{}).(*User)
	return u
}
