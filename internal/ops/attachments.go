package ops

// Attachments (contract 1.5, protocol 1.4): getUploadUrl asks the backend
// for a short-lived upload URL for one file of a thread; the client uploads
// there directly (ECB carries no file bytes) and names the attachment ids
// in sendMessage. ECB checks the name, the size and the media type against
// its configuration before it asks the backend; the backend decides the
// rest (its own limits, that an attachment belongs to the user and the
// thread it is attached in).

import (
	"context"
	"mime"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/auth"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// OpGetUploadURL is the operation name of getUploadUrl.
const OpGetUploadURL = "getUploadUrl"

// UploadBackend is the optional part of the backend for attachments
// (contract 1.5); *backend.Client implements it.
type UploadBackend interface {
	GetUploadURL(ctx context.Context, req *ecbserver.GetUploadURLRequest) (*ecbserver.GetUploadURLResponse, error)
}

// DefaultAttachmentTypes are the media types operations.attachmentTypes
// allows by default.
var DefaultAttachmentTypes = []string{"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "text/plain"}

// GetUploadURLRequest is the payload of getUploadUrl.
type GetUploadURLRequest struct {
	ThreadToken string `json:"threadToken"`
	ThreadID    string `json:"threadId,omitempty"` // optional; when given it must be the token's thread
	Name        string `json:"name"`
	Size        int64  `json:"size"`
	ContentType string `json:"contentType"`
}

// GetUploadURLResult is its answer: where and how to upload, until when.
type GetUploadURLResult struct {
	AttachmentID string            `json:"attachmentId"`
	UploadURL    string            `json:"uploadUrl"`
	Method       string            `json:"method"`
	Headers      map[string]string `json:"headers,omitempty"`
	ExpiresAt    time.Time         `json:"expiresAt"`
}

// GetUploadURL checks a file against the attachment limits and asks the
// backend for an upload URL. The caller needs the write bit of the thread.
func (s *Service) GetUploadURL(ctx context.Context, c Caller, req GetUploadURLRequest) (*GetUploadURLResult, error) {
	return run(ctx, s, OpGetUploadURL, c, func(ctx context.Context) (*GetUploadURLResult, error) {
		if err := requireThreadCaller(c); err != nil {
			return nil, err
		}
		ct, err := s.checkAttachment(req.Name, req.Size, req.ContentType)
		if err != nil {
			return nil, err
		}
		t, err := s.actInThread(c, req.ThreadToken, req.ThreadID, auth.AccessWrite)
		if err != nil {
			return nil, err
		}
		s.traceThread(ctx, t.ThreadID)
		b, ok := s.backend.(UploadBackend)
		if !ok {
			return nil, apierr.New(apierr.NotFound, "the backend does not support %s", OpGetUploadURL)
		}
		resp, err := b.GetUploadURL(ctx, &ecbserver.GetUploadURLRequest{
			UserID: c.User.ID, ThreadID: t.ThreadID, Name: req.Name, Size: req.Size, ContentType: ct,
		})
		if err != nil {
			return nil, err
		}
		return &GetUploadURLResult{AttachmentID: resp.AttachmentID, UploadURL: resp.UploadURL, Method: resp.Method,
			Headers: resp.Headers, ExpiresAt: resp.ExpiresAt.UTC()}, nil
	})
}

// checkAttachment validates a file's name, size and media type against the
// configuration; it returns the media type in canonical form (lower case,
// no parameters).
func (s *Service) checkAttachment(name string, size int64, contentType string) (string, error) {
	switch {
	case strings.TrimSpace(name) == "":
		return "", apierr.New(apierr.InvalidArgument, "name is required")
	case len(name) > ecbserver.MaxAttachmentNameBytes:
		return "", apierr.New(apierr.InvalidArgument, "name exceeds %d bytes", ecbserver.MaxAttachmentNameBytes)
	case !utf8.ValidString(name):
		return "", apierr.New(apierr.InvalidArgument, "name must be valid UTF-8")
	case strings.ContainsAny(name, "/\\") || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return "", apierr.New(apierr.InvalidArgument, "name must be a file name without path or control characters")
	case size < 1:
		return "", apierr.New(apierr.InvalidArgument, "size must be at least 1 byte")
	case size > s.cfg.MaxAttachmentBytes:
		return "", apierr.New(apierr.InvalidArgument, "size exceeds the attachment limit of %d bytes", s.cfg.MaxAttachmentBytes)
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || !strings.Contains(mt, "/") {
		return "", apierr.New(apierr.InvalidArgument, "contentType must be a media type such as image/png")
	}
	if !typeAllowed(s.cfg.AttachmentTypes, mt) {
		return "", apierr.New(apierr.InvalidArgument, "files of type %s are not accepted", mt)
	}
	return mt, nil
}

// typeAllowed reports whether the media type mt (lower case) matches one of
// the patterns: a type ("image/png"), a family ("image/*") or "*/*".
func typeAllowed(patterns []string, mt string) bool {
	family, _, _ := strings.Cut(mt, "/")
	for _, p := range patterns {
		p = strings.ToLower(strings.TrimSpace(p))
		if p == mt || p == "*/*" || p == family+"/*" {
			return true
		}
	}
	return false
}

// checkAttachmentIDs validates sendMessage's attachment ids: at most
// operations.maxAttachments, each 1 to 128 bytes, no repeats.
func (s *Service) checkAttachmentIDs(ids []string) error {
	if len(ids) > s.cfg.MaxAttachments {
		return apierr.New(apierr.InvalidArgument, "a message has at most %d attachments", s.cfg.MaxAttachments)
	}
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if id == "" || len(id) > ecbserver.MaxAttachmentIDBytes {
			return apierr.New(apierr.InvalidArgument, "an attachment id must be 1 to %d bytes", ecbserver.MaxAttachmentIDBytes)
		}
		if seen[id] {
			return apierr.New(apierr.InvalidArgument, "attachment %q is given twice", id)
		}
		seen[id] = true
	}
	return nil
}
