package ecbserver

import (
	"context"
	"strings"
	"testing"
	"time"
)

func (f *fakeBackend) GetUploadURL(ctx context.Context, req *GetUploadURLRequest) (*GetUploadURLResponse, error) {
	return &GetUploadURLResponse{AttachmentID: "att_1", UploadURL: "https://files.example/att_1", Method: "PUT", ExpiresAt: time.Now().Add(time.Minute)}, nil
}

func TestGetUploadURLRequestValidate(t *testing.T) {
	ok := GetUploadURLRequest{UserID: "u", ThreadID: "t", Name: "a.png", Size: 1, ContentType: "image/png"}
	if err := ok.validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []func(*GetUploadURLRequest){
		func(r *GetUploadURLRequest) { r.UserID = "" },
		func(r *GetUploadURLRequest) { r.ThreadID = "" },
		func(r *GetUploadURLRequest) { r.Name = "" },
		func(r *GetUploadURLRequest) { r.Name = strings.Repeat("n", MaxAttachmentNameBytes+1) },
		func(r *GetUploadURLRequest) { r.Size = 0 },
		func(r *GetUploadURLRequest) { r.ContentType = "" },
	} {
		r := ok
		bad(&r)
		if r.validate() == nil {
			t.Errorf("%+v accepted", r)
		}
	}
	// A message of attachments only needs no body; too many ids are refused.
	m := AddThreadMessageRequest{UserID: "u", ThreadID: "t", Attachments: []string{"a"}}
	if err := m.validate(); err != nil {
		t.Fatal(err)
	}
	m.Attachments = make([]string, MaxAttachments+1)
	for i := range m.Attachments {
		m.Attachments[i] = "a"
	}
	if m.validate() == nil {
		t.Fatal("11 attachments accepted")
	}
	m.Attachments = nil
	if m.validate() == nil {
		t.Fatal("no body and no attachments accepted")
	}
}
