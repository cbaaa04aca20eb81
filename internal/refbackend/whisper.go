package refbackend

import (
	"context"
	"fmt"
)

// seesWhispers reports whether userID may read whispers (messages with
// visibility "agents"): users with role agent or supervisor here, the
// staff (who may also start threads with any known user). q is the
// database or the transaction the caller is in.
func seesWhispers(ctx context.Context, q querier, userID string) (bool, error) {
	var staff bool
	if err := q.QueryRowContext(ctx, `SELECT EXISTS(SELECT 1 FROM user_roles WHERE user_id = ? AND role IN ('agent', 'supervisor'))`,
		userID).Scan(&staff); err != nil {
		return false, fmt.Errorf("roles of %s: %w", userID, err)
	}
	return staff, nil
}
