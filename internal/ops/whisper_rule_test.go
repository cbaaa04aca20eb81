package ops_test

import (
	"testing"

	"github.com/ecbridge/ecb/internal/auth"
	"github.com/ecbridge/ecb/internal/ops"
)

// SeesWhispers is the one audience rule of whispers: the sendMessage check
// and both transports' hub.AgentsAudience answer with it.
func TestSeesWhispers(t *testing.T) {
	for _, tc := range []struct {
		name string
		u    *auth.User
		want bool
	}{
		{"agent", &auth.User{ID: "a", Roles: []string{"agent"}}, true},
		{"supervisor", &auth.User{ID: "s", Roles: []string{"user", "supervisor"}}, true},
		{"user", &auth.User{ID: "u", Roles: []string{"user"}}, false},
		{"no roles", &auth.User{ID: "u"}, false},
		{"anonymous with the agent role", &auth.User{ID: "v", Roles: []string{"agent"}, Anonymous: true}, false},
		{"no user", nil, false},
	} {
		if got := ops.SeesWhispers(tc.u); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
