package ops

import (
	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// seesWhispers reports whether the caller is on the agents' side of a
// support conversation (role agent or supervisor, not anonymous).
func seesWhispers(c Caller) bool {
	return c.User != nil && !c.User.Anonymous && (c.User.HasRole("agent") || c.User.HasRole("supervisor"))
}

// checkVisibility validates sendMessage's visibility: absent, or "agents"
// (a whisper) from an agent or supervisor only.
func checkVisibility(c Caller, v string) error {
	switch v {
	case "":
		return nil
	case ecbserver.VisibilityAgents:
		if !seesWhispers(c) {
			return apierr.New(apierr.Forbidden, "only agents and supervisors may whisper (visibility agents)")
		}
		return nil
	}
	return apierr.New(apierr.InvalidArgument, `visibility must be absent or "agents"`)
}
