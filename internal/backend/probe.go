package backend

import (
	"context"
	"encoding/json"
)

// Probe sends the optional call at path with the empty body {}, which no
// call of the contract accepts (each requires userId): a backend that has
// the call refuses it (400) before acting, one that lacks it answers 501 (or
// 404), so nothing changes either way (package discover reads the answer).
// It goes through the breaker and the call slots like every call.
func (c *Client) Probe(ctx context.Context, path string) error {
	var out json.RawMessage
	return c.call(ctx, path, "", struct{}{}, &out)
}
