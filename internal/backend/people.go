package backend

// The optional people calls of contract 1.4: user search, contacts and
// profile properties.

import (
	"context"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// SearchUsers asks for the users req.UserID may find that match req.Query.
// The answer's users all have an id.
func (c *Client) SearchUsers(ctx context.Context, req *ecbserver.SearchUsersRequest) (*ecbserver.SearchUsersResponse, error) {
	var resp ecbserver.SearchUsersResponse
	if err := c.call(ctx, ecbserver.PathSearchUsers, "", req, &resp); err != nil {
		return nil, err
	}
	if resp.Users == nil {
		return nil, garbage(ecbserver.PathSearchUsers, "users is required")
	}
	for _, u := range resp.Users {
		if u.ID == "" {
			return nil, garbage(ecbserver.PathSearchUsers, "users must not contain a user without id")
		}
	}
	return &resp, nil
}

// AddContact makes req.UserID and req.ContactID each other's contacts.
func (c *Client) AddContact(ctx context.Context, req *ecbserver.ContactRequest) (*ecbserver.ContactResponse, error) {
	return c.contactCall(ctx, ecbserver.PathAddContact, req)
}

// RemoveContact ends the contact of req.UserID and req.ContactID.
func (c *Client) RemoveContact(ctx context.Context, req *ecbserver.ContactRequest) (*ecbserver.ContactResponse, error) {
	return c.contactCall(ctx, ecbserver.PathRemoveContact, req)
}

func (c *Client) contactCall(ctx context.Context, path string, req *ecbserver.ContactRequest) (*ecbserver.ContactResponse, error) {
	var resp ecbserver.ContactResponse
	if err := c.call(ctx, path, "", req, &resp); err != nil {
		return nil, err
	}
	if resp.Contact.ID != req.ContactID || resp.User.ID != req.UserID {
		return nil, garbage(path, "contact.id and user.id must be the request's contactId and userId")
	}
	return &resp, nil
}

// SetProfile sets profile properties of req.UserID.
func (c *Client) SetProfile(ctx context.Context, req *ecbserver.SetProfileRequest) (*ecbserver.ProfileResponse, error) {
	return c.profileCall(ctx, ecbserver.PathSetProfile, req.UserID, req)
}

// DeleteProfileProperty removes a profile property of req.UserID.
func (c *Client) DeleteProfileProperty(ctx context.Context, req *ecbserver.DeleteProfilePropertyRequest) (*ecbserver.ProfileResponse, error) {
	return c.profileCall(ctx, ecbserver.PathDeleteProfileProperty, req.UserID, req)
}

func (c *Client) profileCall(ctx context.Context, path, userID string, req any) (*ecbserver.ProfileResponse, error) {
	var resp ecbserver.ProfileResponse
	if err := c.call(ctx, path, "", req, &resp); err != nil {
		return nil, err
	}
	if resp.User.ID != userID {
		return nil, garbage(path, "user.id must be the request's userId")
	}
	return &resp, nil
}
