package backend

// The optional call of contract 1.5 about attachments (getUploadUrl). Like
// the other optional calls, a backend without it answers 501, which the
// caller gets as apierr.NotFound "the backend does not support
// getUploadUrl".

import (
	"context"
	"net/url"
	"strings"

	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// GetUploadURL asks the backend where req.UserID may upload one file for
// req.ThreadID. The answer has an attachment id, an absolute http(s) upload
// URL, method PUT or POST and an expiry.
func (c *Client) GetUploadURL(ctx context.Context, req *ecbserver.GetUploadURLRequest) (*ecbserver.GetUploadURLResponse, error) {
	var resp ecbserver.GetUploadURLResponse
	if err := c.call(ctx, ecbserver.PathGetUploadURL, "", req, &resp); err != nil {
		return nil, err
	}
	if resp.AttachmentID == "" || len(resp.AttachmentID) > ecbserver.MaxAttachmentIDBytes {
		return nil, garbage(ecbserver.PathGetUploadURL, "attachmentId must be 1 to 128 bytes")
	}
	u, err := url.Parse(resp.UploadURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, garbage(ecbserver.PathGetUploadURL, "uploadUrl must be an absolute http(s) URL")
	}
	resp.Method = strings.ToUpper(resp.Method)
	if resp.Method != "PUT" && resp.Method != "POST" {
		return nil, garbage(ecbserver.PathGetUploadURL, "method must be PUT or POST")
	}
	if resp.ExpiresAt.IsZero() {
		return nil, garbage(ecbserver.PathGetUploadURL, "expiresAt is required")
	}
	return &resp, nil
}
