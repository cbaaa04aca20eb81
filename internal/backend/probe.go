package backend

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/ecbridge/ecb/internal/apierr"
)

// Probe sends the optional call at path with the empty body {}, which no
// call of the contract accepts (each requires userId): a backend that has
// the call refuses it (400) before acting, one that lacks it answers 501 (or
// 404), so nothing changes either way (package discover reads the answer).
// It is signed like every call and takes a call slot, but stays out of the
// circuit breaker and the call metrics: a probe of a backend that is down
// neither opens the circuit nor counts as a user's failed call. Its error
// is an *apierr.Error as the calls' are (not_found for a 501 or 404).
func (c *Client) Probe(ctx context.Context, path string) error {
	release, err := c.acquire(ctx, path)
	if err != nil {
		return err
	}
	defer release()
	callCtx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := c.signedRequest(callCtx, path, []byte("{}"))
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return apierr.Wrap(fmt.Errorf("backend %s probe: %w", path, err), apierr.BackendUnavailable, "the backend is unavailable")
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return apierr.Wrap(fmt.Errorf("backend %s probe: read response: %w", path, err), apierr.BackendUnavailable, "the backend is unavailable")
	}
	switch {
	case resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented:
		return apierr.Wrap(fmt.Errorf("backend %s probe: status %d: %s", path, resp.StatusCode, snippet(raw)), apierr.BackendUnavailable, "the backend failed")
	case resp.StatusCode >= 300:
		return mapError(path, resp.StatusCode, raw)
	}
	return nil
}
