package refbackend

import "context"

// seesWhispers reports whether userID may read whispers (messages with
// visibility "agents"): users with role agent or supervisor here.
func (b *ecbBackend) seesWhispers(ctx context.Context, userID string) (bool, error) {
	roles, _, err := b.rolesOf(ctx, userID)
	if err != nil {
		return false, err
	}
	for _, r := range roles {
		if r == "agent" || r == "supervisor" {
			return true, nil
		}
	}
	return false, nil
}
