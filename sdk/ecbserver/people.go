package ecbserver

import (
	"context"
	"errors"
)

// The optional calls of contract 1.4 about people: user search, contacts
// that users add and remove themselves, and profile properties (the
// Openfire chat API's users, contacts and user properties). Implement
// [UserSearcher], [ContactManager] or [ProfileEditor] to serve them;
// NewHandler answers 501 not_implemented for the others.
const (
	PathSearchUsers           = "/searchUsers"
	PathAddContact            = "/addContact"
	PathRemoveContact         = "/removeContact"
	PathSetProfile            = "/setProfile"
	PathDeleteProfileProperty = "/deleteProfileProperty"
)

// Limits of the people calls that ECB enforces before it calls the backend,
// so a backend may rely on them.
const (
	MaxSearchQueryBytes   = 256  // a searchUsers query, after trimming spaces
	MaxProfileProperties  = 32   // properties in one setProfile
	MaxPropertyNameBytes  = 64   // a property name: letters, digits, '.', '_', '-'
	MaxPropertyValueBytes = 1024 // a property value
)

// UserSearcher is implemented by a Backend that lets its users find other
// users (a directory). ECB calls SearchUsers for a client's searchUsers; it
// pages the answer itself.
//
// Answer the users UserID may find whose id or name matches Query (the
// backend decides what matches), best match first, without UserID, and at
// most 1000 of them. An empty answer is no error.
type UserSearcher interface {
	SearchUsers(ctx context.Context, req *SearchUsersRequest) (*SearchUsersResponse, error)
}

// ContactManager is implemented by a Backend whose users add and remove
// contacts themselves. A contact is mutual: after AddContact each of the two
// users has the other among the contacts GetContacts returns, and after
// RemoveContact neither has. ECB pushes the change to both users and makes
// presence follow it.
//
// Both calls are idempotent: adding a contact twice, or removing a user who
// is no contact, succeeds. Answer 404 not_found for an unknown ContactID and
// 403 forbidden when UserID may not add that user. A Backend that supports
// only one of the two calls returns [NotImplemented] from the other.
type ContactManager interface {
	AddContact(ctx context.Context, req *ContactRequest) (*ContactResponse, error)
	RemoveContact(ctx context.Context, req *ContactRequest) (*ContactResponse, error)
}

// ProfileEditor is implemented by a Backend that keeps profile properties
// (name/value strings) of its users. ECB pushes the user after the change to
// the user's contacts. Deleting a property the user does not have succeeds.
// Answer 400 invalid_argument for a property the backend refuses (too many,
// a name it reserves), 403 forbidden when the user may not edit it.
type ProfileEditor interface {
	SetProfile(ctx context.Context, req *SetProfileRequest) (*ProfileResponse, error)
	DeleteProfileProperty(ctx context.Context, req *DeleteProfilePropertyRequest) (*ProfileResponse, error)
}

// SearchUsersRequest asks for the users UserID may find that match Query
// (optional call searchUsers, contract 1.4). Query is trimmed, never empty,
// at most MaxSearchQueryBytes.
type SearchUsersRequest struct {
	UserID string `json:"userId"`
	Query  string `json:"query"`
}

// SearchUsersResponse lists the matches, best first.
type SearchUsersResponse struct {
	Users []User `json:"users"`
}

// ContactRequest names the user UserID adds to or removes from their
// contacts (optional calls addContact and removeContact, contract 1.4).
type ContactRequest struct {
	UserID    string `json:"userId"`
	ContactID string `json:"contactId"`
}

// ContactResponse is the contact as UserID sees them (Contact) and UserID as
// the contact sees them (User): ECB pushes each to the other side.
type ContactResponse struct {
	Contact User `json:"contact"`
	User    User `json:"user"`
}

// SetProfileRequest sets (adds or replaces) UserID's profile properties
// (optional call setProfile, contract 1.4); properties not named keep their
// value.
type SetProfileRequest struct {
	UserID     string            `json:"userId"`
	Properties map[string]string `json:"properties"`
}

// DeleteProfilePropertyRequest removes one of UserID's profile properties
// (optional call deleteProfileProperty, contract 1.4).
type DeleteProfilePropertyRequest struct {
	UserID string `json:"userId"`
	Name   string `json:"name"`
}

// ProfileResponse is the user after the change, with all their properties.
type ProfileResponse struct {
	User User `json:"user"`
}

// ValidPropertyName reports whether name may name a profile property: 1 to
// MaxPropertyNameBytes ASCII letters, digits, '.', '_' or '-'.
func ValidPropertyName(name string) bool {
	if name == "" || len(name) > MaxPropertyNameBytes {
		return false
	}
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
		if !ok {
			return false
		}
	}
	return true
}

func (r *SearchUsersRequest) validate() error {
	if err := requireUser(r.UserID); err != nil {
		return err
	}
	if r.Query == "" {
		return errors.New("query is required")
	}
	if len(r.Query) > MaxSearchQueryBytes {
		return errors.New("query is too long")
	}
	return nil
}

func (r *ContactRequest) validate() error {
	if err := requireUser(r.UserID); err != nil {
		return err
	}
	if r.ContactID == "" {
		return errors.New("contactId is required")
	}
	if r.ContactID == r.UserID {
		return errors.New("contactId must not be userId")
	}
	return nil
}

func (r *SetProfileRequest) validate() error {
	if err := requireUser(r.UserID); err != nil {
		return err
	}
	if len(r.Properties) == 0 {
		return errors.New("properties must name at least one property")
	}
	if len(r.Properties) > MaxProfileProperties {
		return errors.New("too many properties")
	}
	for k, v := range r.Properties {
		if !ValidPropertyName(k) {
			return errors.New("a property name must be 1 to 64 letters, digits, '.', '_' or '-'")
		}
		if len(v) > MaxPropertyValueBytes {
			return errors.New("a property value exceeds 1024 bytes")
		}
	}
	return nil
}

func (r *DeleteProfilePropertyRequest) validate() error {
	if err := requireUser(r.UserID); err != nil {
		return err
	}
	if !ValidPropertyName(r.Name) {
		return errors.New("name must be 1 to 64 letters, digits, '.', '_' or '-'")
	}
	return nil
}

func (r *SearchUsersResponse) normalize() {
	if r.Users == nil {
		r.Users = []User{}
	}
}
