package ecbserver

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// The fake implements the people calls of contract 1.4 too.

func (f *fakeBackend) SearchUsers(ctx context.Context, req *SearchUsersRequest) (*SearchUsersResponse, error) {
	if err := f.record(ctx, req); err != nil {
		return nil, err
	}
	return &SearchUsersResponse{Users: nil}, nil // nil on purpose: must encode as []
}

func (f *fakeBackend) AddContact(ctx context.Context, req *ContactRequest) (*ContactResponse, error) {
	if err := f.record(ctx, req); err != nil {
		return nil, err
	}
	return &ContactResponse{Contact: User{ID: req.ContactID, Name: "C"}, User: User{ID: req.UserID, Name: "U"}}, nil
}

func (f *fakeBackend) RemoveContact(ctx context.Context, req *ContactRequest) (*ContactResponse, error) {
	return f.AddContact(ctx, req)
}

func (f *fakeBackend) SetProfile(ctx context.Context, req *SetProfileRequest) (*ProfileResponse, error) {
	if err := f.record(ctx, req); err != nil {
		return nil, err
	}
	return &ProfileResponse{User: User{ID: req.UserID, Name: "U", Properties: req.Properties}}, nil
}

func (f *fakeBackend) DeleteProfileProperty(ctx context.Context, req *DeleteProfilePropertyRequest) (*ProfileResponse, error) {
	if err := f.record(ctx, req); err != nil {
		return nil, err
	}
	return &ProfileResponse{User: User{ID: req.UserID, Name: "U"}}, nil
}

var (
	_ UserSearcher   = (*fakeBackend)(nil)
	_ ContactManager = (*fakeBackend)(nil)
	_ ProfileEditor  = (*fakeBackend)(nil)
)

var peoplePaths = []string{PathSearchUsers, PathAddContact, PathRemoveContact, PathSetProfile, PathDeleteProfileProperty}

func TestPeopleDispatch(t *testing.T) {
	t.Parallel()
	tests := []struct{ path, body, want string }{
		{PathSearchUsers, `{"userId":"alice","query":"bo"}`, `{"users":[]}`},
		{PathAddContact, `{"userId":"alice","contactId":"dave"}`, `{"contact":{"id":"dave","name":"C"},"user":{"id":"alice","name":"U"}}`},
		{PathRemoveContact, `{"userId":"alice","contactId":"dave"}`, `{"contact":{"id":"dave","name":"C"},"user":{"id":"alice","name":"U"}}`},
		{PathSetProfile, `{"userId":"alice","properties":{"title":"CTO"}}`, `{"user":{"id":"alice","name":"U","properties":{"title":"CTO"}}}`},
		{PathDeleteProfileProperty, `{"userId":"alice","name":"title"}`, `{"user":{"id":"alice","name":"U"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			fb := &fakeBackend{}
			h := NewHandler(testSecret, fb, HandlerOptions{Logger: quietLogger()})
			code, body := call(t, h, tt.path, tt.body, nil)
			if code != http.StatusOK || body != tt.want {
				t.Fatalf("got %d %s\nwant 200 %s", code, body, tt.want)
			}
			if fb.calls != 1 {
				t.Fatalf("backend called %d times", fb.calls)
			}
		})
	}
}

// TestPeopleNotImplemented: without the interfaces, the paths answer 501
// not_implemented and never reach the backend.
func TestPeopleNotImplemented(t *testing.T) {
	t.Parallel()
	fb := &fakeBackend{}
	h := NewHandler(testSecret, coreOnly{fb}, HandlerOptions{Logger: quietLogger()})
	for _, path := range peoplePaths {
		code, body := call(t, h, path, `{"userId":"alice"}`, nil)
		if code != http.StatusNotImplemented || !strings.Contains(body, CodeNotImplemented) || !strings.Contains(body, strings.TrimPrefix(path, "/")) {
			t.Errorf("%s: %d %s", path, code, body)
		}
	}
	if fb.calls != 0 {
		t.Fatalf("backend called %d times", fb.calls)
	}
}

// TestPeopleValidation: the structural checks answer 400 before the backend.
func TestPeopleValidation(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", MaxSearchQueryBytes+1)
	tests := []struct{ path, body string }{
		{PathSearchUsers, `{"userId":"alice","query":""}`},
		{PathSearchUsers, `{"userId":"alice","query":"` + long + `"}`},
		{PathSearchUsers, `{"query":"bo"}`},
		{PathAddContact, `{"userId":"alice"}`},
		{PathAddContact, `{"userId":"alice","contactId":"alice"}`},
		{PathRemoveContact, `{"userId":"","contactId":"bob"}`},
		{PathSetProfile, `{"userId":"alice","properties":{}}`},
		{PathSetProfile, `{"userId":"alice","properties":{"bad name":"x"}}`},
		{PathSetProfile, `{"userId":"alice","properties":{"v":"` + strings.Repeat("v", MaxPropertyValueBytes+1) + `"}}`},
		{PathSetProfile, `{"userId":"alice","properties":{"n":1}}`},
		{PathDeleteProfileProperty, `{"userId":"alice","name":""}`},
		{PathDeleteProfileProperty, `{"userId":"alice","name":"` + strings.Repeat("n", MaxPropertyNameBytes+1) + `"}`},
	}
	for _, tt := range tests {
		fb := &fakeBackend{}
		h := NewHandler(testSecret, fb, HandlerOptions{Logger: quietLogger()})
		code, body := call(t, h, tt.path, tt.body, nil)
		if code != http.StatusBadRequest || !strings.Contains(body, CodeInvalidArgument) || fb.calls != 0 {
			t.Errorf("%s %.80s: %d %s (calls %d)", tt.path, tt.body, code, body, fb.calls)
		}
	}
}

func TestValidPropertyName(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]bool{
		"title": true, "x.y-z_9": true, "": false, "a b": false, "é": false, "a/b": false,
		strings.Repeat("a", MaxPropertyNameBytes): true, strings.Repeat("a", MaxPropertyNameBytes+1): false,
	} {
		if got := ValidPropertyName(name); got != want {
			t.Errorf("ValidPropertyName(%q) = %v", name, got)
		}
	}
}
