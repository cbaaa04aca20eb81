package ops

import (
	"github.com/ecbridge/ecb/internal/apierr"
	"github.com/ecbridge/ecb/internal/auth"
	"github.com/ecbridge/ecb/sdk/ecbserver"
)

// SeesWhispers is the whisper audience rule, the one place it is written:
// u is on the agents' side of a support conversation (role agent or
// supervisor, not anonymous), so it may send whispers (visibility agents)
// and its connections receive them (the transports answer
// hub.AgentsAudience with it).
func SeesWhispers(u *auth.User) bool {
	return u != nil && !u.Anonymous && (u.HasRole("agent") || u.HasRole("supervisor"))
}

func seesWhispers(c Caller) bool { return SeesWhispers(c.User) }

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
