package ecbserver

import (
	"context"
	"errors"
	"time"
)

// The optional call of contract 1.5 about attachments. ECB carries no file
// bytes: a client asks, through ECB, for a short-lived upload URL on the
// backend's storage (its own, or a presigned object-store URL), uploads the
// file there itself, then sends a message naming the attachment ids; the
// backend attaches them to the stored message ([AddThreadMessageRequest]
// Attachments) and returns them as [Attachment]s on the message, in the
// push and in the history.
//
// Implement [Uploader] to serve getUploadUrl; NewHandler answers 501
// not_implemented otherwise, and a backend without it never receives
// attachment ids (nobody could have any).
const PathGetUploadURL = "/getUploadUrl"

// Limits that ECB enforces before it calls the backend, so a backend may
// rely on them. The size and type limits are ECB's configuration
// (attachments.maxBytes, attachments.allowedTypes); a backend refuses more
// with 400 invalid_argument.
const (
	MaxAttachmentNameBytes = 255 // an attachment's file name
	MaxAttachmentIDBytes   = 128 // an attachment id
	MaxAttachments         = 10  // attachments of one message, at most
)

// Uploader is implemented by a Backend that stores files for its users.
//
// GetUploadURL checks that UserID may write to ThreadID (403 forbidden
// otherwise, 404 not_found for an unknown thread), may refuse the file's
// size or type (400 invalid_argument), reserves an attachment id bound to
// the user and the thread, and answers where and how to upload it. The URL
// should be useless after ExpiresAt (minutes, not hours), and the
// attachment may only be attached, by the same user, to a message of the
// same thread: AddThreadMessage answers 400 invalid_argument for an
// attachment id of another thread or user, unknown, not uploaded yet or
// already attached.
type Uploader interface {
	GetUploadURL(ctx context.Context, req *GetUploadURLRequest) (*GetUploadURLResponse, error)
}

// GetUploadURLRequest asks for an upload URL for one file (optional call
// getUploadUrl, contract 1.5). Name is a file name without a path (1 to
// MaxAttachmentNameBytes bytes of UTF-8), Size its exact size in bytes (at
// least 1, at most ECB's attachments.maxBytes) and ContentType a media type
// ECB's attachments.allowedTypes accepts, without parameters.
type GetUploadURLRequest struct {
	UserID      string `json:"userId"`
	ThreadID    string `json:"threadId"`
	Name        string `json:"name"`
	Size        int64  `json:"size"`
	ContentType string `json:"contentType"`
}

// GetUploadURLResponse says where to upload: the client sends the file's
// bytes as the body of a Method request (PUT or POST) to UploadURL with
// Headers, before ExpiresAt.
type GetUploadURLResponse struct {
	AttachmentID string            `json:"attachmentId"`
	UploadURL    string            `json:"uploadUrl"`
	Method       string            `json:"method"`
	Headers      map[string]string `json:"headers,omitempty"`
	ExpiresAt    time.Time         `json:"expiresAt"`
}

// Attachment is a file attached to a message, as the backend returns it in
// the message: URL is where a member downloads it (it may be signed and
// expire; the backend signs a fresh one in each answer), ThumbnailURL an
// optional smaller image.
type Attachment struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	Size         int64  `json:"size"`
	ContentType  string `json:"contentType"`
	URL          string `json:"url"`
	ThumbnailURL string `json:"thumbnailUrl,omitempty"`
}

func (r *GetUploadURLRequest) validate() error {
	if err := requireUser(r.UserID); err != nil {
		return err
	}
	switch {
	case r.ThreadID == "":
		return errors.New("threadId is required")
	case r.Name == "":
		return errors.New("name is required")
	case len(r.Name) > MaxAttachmentNameBytes:
		return errors.New("name is too long")
	case r.Size < 1:
		return errors.New("size must be at least 1")
	case r.ContentType == "":
		return errors.New("contentType is required")
	}
	return nil
}

func validateAttachmentIDs(ids []string) error {
	if len(ids) > MaxAttachments {
		return errors.New("too many attachments")
	}
	for _, id := range ids {
		if id == "" || len(id) > MaxAttachmentIDBytes {
			return errors.New("an attachment id must be 1 to 128 bytes")
		}
	}
	return nil
}
