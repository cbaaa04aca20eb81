package ops

// The people operations of protocol 1.3: user search, contacts a user adds
// and removes, and profile properties, each an optional backend call of
// contract 1.4, with the contact and profile pushes and presence that
// follows a contact at once.

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/hub"
	"github.com/ecbridge/ecb/internal/presence"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// People operation and push names.
const (
	OpSearchUsers           = "searchUsers"
	OpAddContact            = "addContact"
	OpRemoveContact         = "removeContact"
	OpSetProfile            = "setProfile"
	OpDeleteProfileProperty = "deleteProfileProperty"

	EventContact = "contact"
	EventProfile = "profile"
)

// maxUserIDBytes bounds a user id a client names (addContact, removeContact).
const maxUserIDBytes = 256

// callPeople runs the people operation named op; ok is false for any other name.
func (s *Service) callPeople(ctx context.Context, c Caller, op string, p json.RawMessage) (res any, ok bool, err error) {
	switch op {
	case OpSearchUsers:
		res, err = call(ctx, c, p, s.SearchUsers)
	case OpAddContact:
		res, err = call(ctx, c, p, s.AddContact)
	case OpRemoveContact:
		res, err = call(ctx, c, p, s.RemoveContact)
	case OpSetProfile:
		res, err = call(ctx, c, p, s.SetProfile)
	case OpDeleteProfileProperty:
		res, err = call(ctx, c, p, s.DeleteProfileProperty)
	default:
		return nil, false, nil
	}
	return res, true, err
}

// SearchUsersRequest is the payload of searchUsers.
type SearchUsersRequest struct {
	Query string `json:"query"`
	PageRequest
}

// SearchUsers returns a page of the users the backend lets the caller find
// that match the query (backend call searchUsers). The query is trimmed and
// must be 1 to ecbserver.MaxSearchQueryBytes bytes.
func (s *Service) SearchUsers(ctx context.Context, c Caller, req SearchUsersRequest) (*Page[ecbserver.User], error) {
	return run(ctx, s, OpSearchUsers, c, func(ctx context.Context) (*Page[ecbserver.User], error) {
		if err := requireUser(c); err != nil {
			return nil, err
		}
		q := strings.TrimSpace(req.Query)
		if q == "" {
			return nil, apierr.New(apierr.InvalidArgument, "query is required")
		}
		if len(q) > ecbserver.MaxSearchQueryBytes {
			return nil, apierr.New(apierr.InvalidArgument, "query exceeds %d bytes", ecbserver.MaxSearchQueryBytes)
		}
		if req.Page < 0 || req.PageSize < 0 {
			return nil, apierr.New(apierr.InvalidArgument, "page and pageSize must be positive")
		}
		resp, err := s.backend.SearchUsers(ctx, &ecbserver.SearchUsersRequest{UserID: c.User.ID, Query: q})
		if err != nil {
			return nil, err
		}
		return paginate(resp.Users, req.PageRequest, s.cfg)
	})
}

// ContactRequest is the payload of addContact and removeContact.
type ContactRequest struct {
	UserID string `json:"userId"`
}

// ContactResult is their answer: the contact as the caller sees them.
type ContactResult struct {
	Contact ecbserver.User `json:"contact"`
}

// ContactPush is the payload of a contact push: change is added or removed,
// user the other side of the contact.
type ContactPush struct {
	Change string         `json:"change"`
	User   ecbserver.User `json:"user"`
}

// ProfilePush is the payload of a profile push: a contact's profile after a
// change.
type ProfilePush struct {
	User ecbserver.User `json:"user"`
}

// AddContact makes the caller and req.UserID each other's contacts (backend
// call addContact). Both users' connections get a contact push (the calling
// connection gets the answer instead), and each gets the other's presence
// at once.
func (s *Service) AddContact(ctx context.Context, c Caller, req ContactRequest) (*ContactResult, error) {
	return run(ctx, s, OpAddContact, c, func(ctx context.Context) (*ContactResult, error) {
		return s.changeContact(ctx, c, req, "added", s.backend.AddContact)
	})
}

// RemoveContact ends the contact of the caller and req.UserID (backend call
// removeContact). Both users' connections get a contact push, and neither
// sees the other's presence any more (unless they share a thread).
func (s *Service) RemoveContact(ctx context.Context, c Caller, req ContactRequest) (*ContactResult, error) {
	return run(ctx, s, OpRemoveContact, c, func(ctx context.Context) (*ContactResult, error) {
		return s.changeContact(ctx, c, req, "removed", s.backend.RemoveContact)
	})
}

func (s *Service) changeContact(ctx context.Context, c Caller, req ContactRequest, change string,
	op func(context.Context, *ecbserver.ContactRequest) (*ecbserver.ContactResponse, error)) (*ContactResult, error) {
	if err := requireUser(c); err != nil {
		return nil, err
	}
	switch {
	case req.UserID == "":
		return nil, apierr.New(apierr.InvalidArgument, "userId is required")
	case len(req.UserID) > maxUserIDBytes:
		return nil, apierr.New(apierr.InvalidArgument, "userId exceeds %d bytes", maxUserIDBytes)
	case req.UserID == c.User.ID:
		return nil, apierr.New(apierr.InvalidArgument, "you cannot be your own contact")
	}
	resp, err := op(ctx, &ecbserver.ContactRequest{UserID: c.User.ID, ContactID: req.UserID})
	if err != nil {
		return nil, err
	}
	// The backend has stored it: from here on nothing fails the operation.
	// Who sees whose presence follows the backend's contact lists, read
	// again for both sides and shared with the other nodes.
	s.relearnContacts(ctx, c.User.ID)
	s.relearnContacts(ctx, resp.Contact.ID)
	s.pushJSON(c.User.ID, EventContact, ContactPush{Change: change, User: resp.Contact}, c.Conn)
	s.pushJSON(resp.Contact.ID, EventContact, ContactPush{Change: change, User: resp.User}, nil)
	if change == "added" {
		s.pushPresence(ctx, resp.Contact.ID, c.User.ID)
		s.pushPresence(ctx, c.User.ID, resp.Contact.ID)
	}
	return &ContactResult{Contact: resp.Contact}, nil
}

// relearnContacts reads userID's contacts from the backend and notes them
// for presence; a failure is logged (presence then follows the last list).
func (s *Service) relearnContacts(ctx context.Context, userID string) []string {
	resp, err := s.backend.GetContacts(ctx, &ecbserver.GetContactsRequest{UserID: userID})
	if err != nil {
		s.log.Warn("contacts not read again after a change", "user", userID, "err", err)
		return nil
	}
	ids := make([]string, len(resp.Contacts))
	for i, u := range resp.Contacts {
		ids[i] = u.ID
	}
	s.live.presence.NoteContacts(userID, ids)
	return ids
}

// pushPresence sends userID's current presence to every connection of to.
func (s *Service) pushPresence(ctx context.Context, userID, to string) {
	ps, err := s.live.presence.Get(ctx, []string{userID})
	if err != nil || len(ps) != 1 {
		s.log.Warn("presence not pushed to a new contact", "user", userID, "to", to, "err", err)
		return
	}
	s.pushJSON(to, presence.EventPresence, ps[0], nil)
}

// pushJSON sends a push that belongs to no thread to every connection of
// userID on every node but skip.
func (s *Service) pushJSON(userID, event string, v any, skip hub.Conn) {
	data, err := json.Marshal(v)
	if err != nil {
		s.log.Error("push not encoded", "event", event, "err", err)
		return
	}
	s.pushToUser(userID, &hub.Push{Event: event, Data: data, At: time.Now()}, skip)
}

// SetProfileRequest is the payload of setProfile.
type SetProfileRequest struct {
	Properties map[string]string `json:"properties"`
}

// DeleteProfilePropertyRequest is the payload of deleteProfileProperty.
type DeleteProfilePropertyRequest struct {
	Name string `json:"name"`
}

// ProfileResult is the answer of setProfile and deleteProfileProperty: the
// caller after the change.
type ProfileResult struct {
	User ecbserver.User `json:"user"`
}

// SetProfile sets profile properties of the caller (backend call
// setProfile); the caller's contacts and other connections get a profile
// push.
func (s *Service) SetProfile(ctx context.Context, c Caller, req SetProfileRequest) (*ProfileResult, error) {
	return run(ctx, s, OpSetProfile, c, func(ctx context.Context) (*ProfileResult, error) {
		if err := requireUser(c); err != nil {
			return nil, err
		}
		if len(req.Properties) == 0 {
			return nil, apierr.New(apierr.InvalidArgument, "properties must name at least one property")
		}
		if len(req.Properties) > ecbserver.MaxProfileProperties {
			return nil, apierr.New(apierr.InvalidArgument, "properties name more than %d properties", ecbserver.MaxProfileProperties)
		}
		for k, v := range req.Properties {
			if !ecbserver.ValidPropertyName(k) {
				return nil, apierr.New(apierr.InvalidArgument, "a property name must be 1 to %d letters, digits, '.', '_' or '-'", ecbserver.MaxPropertyNameBytes)
			}
			if len(v) > ecbserver.MaxPropertyValueBytes {
				return nil, apierr.New(apierr.PayloadTooLarge, "the value of property %q exceeds %d bytes", k, ecbserver.MaxPropertyValueBytes)
			}
		}
		resp, err := s.backend.SetProfile(ctx, &ecbserver.SetProfileRequest{UserID: c.User.ID, Properties: req.Properties})
		if err != nil {
			return nil, err
		}
		s.pushProfile(ctx, c, resp.User)
		return &ProfileResult{User: resp.User}, nil
	})
}

// DeleteProfileProperty removes a profile property of the caller (backend
// call deleteProfileProperty), pushed as SetProfile is.
func (s *Service) DeleteProfileProperty(ctx context.Context, c Caller, req DeleteProfilePropertyRequest) (*ProfileResult, error) {
	return run(ctx, s, OpDeleteProfileProperty, c, func(ctx context.Context) (*ProfileResult, error) {
		if err := requireUser(c); err != nil {
			return nil, err
		}
		if !ecbserver.ValidPropertyName(req.Name) {
			return nil, apierr.New(apierr.InvalidArgument, "name must be 1 to %d letters, digits, '.', '_' or '-'", ecbserver.MaxPropertyNameBytes)
		}
		resp, err := s.backend.DeleteProfileProperty(ctx, &ecbserver.DeleteProfilePropertyRequest{UserID: c.User.ID, Name: req.Name})
		if err != nil {
			return nil, err
		}
		s.pushProfile(ctx, c, resp.User)
		return &ProfileResult{User: resp.User}, nil
	})
}

// pushProfile sends u to the caller's contacts (as the backend lists them
// now) and to the caller's other connections.
func (s *Service) pushProfile(ctx context.Context, c Caller, u ecbserver.User) {
	p := ProfilePush{User: u}
	s.pushJSON(c.User.ID, EventProfile, p, c.Conn)
	for _, id := range s.relearnContacts(ctx, c.User.ID) {
		if id != c.User.ID {
			s.pushJSON(id, EventProfile, p, nil)
		}
	}
}
