package auth_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/ecbridge/ecb/internal/auth"
)

// checkRefusal holds for every refused token: one sentinel, and no echo of
// the token (short inputs can appear in a message by coincidence).
func checkRefusal(t *testing.T, token string, err error) {
	t.Helper()
	if !isSentinel(err) {
		t.Fatalf("error %q wraps not exactly one sentinel", err)
	}
	if len(token) >= 16 && strings.Contains(err.Error(), token) {
		t.Fatalf("error %q quotes the token", err)
	}
}

func FuzzVerifyUser(f *testing.F) {
	for _, c := range userCases(f) {
		f.Add(c.token, c.origin)
	}
	v := allAlgs(f)
	f.Fuzz(func(t *testing.T, token, origin string) {
		u, err := v.VerifyUser(token, origin)
		if err != nil {
			if u != nil {
				t.Fatal("user with an error")
			}
			checkRefusal(t, token, err)
			return
		}
		if u.ID == "" || u.ExpiresAt.IsZero() {
			t.Fatalf("accepted user without id or expiry: %+v", u)
		}
		if u.Anonymous && !slices.ContainsFunc(u.Origins, func(o string) bool { return strings.EqualFold(o, origin) }) {
			t.Fatalf("anonymous user accepted from origin %q not in %q", origin, u.Origins)
		}
	})
}

func FuzzVerifyThread(f *testing.F) {
	for _, c := range threadCases(f) {
		f.Add(c.token)
	}
	for _, c := range userCases(f) {
		f.Add(c.token)
	}
	v := allAlgs(f)
	f.Fuzz(func(t *testing.T, token string) {
		th, err := v.VerifyThread(token)
		if err != nil {
			if th != nil {
				t.Fatal("thread with an error")
			}
			checkRefusal(t, token, err)
			return
		}
		if th.ThreadID == "" || th.UserID == "" || th.Access > auth.AccessRead|auth.AccessWrite|auth.AccessAdmin|auth.AccessOwner {
			t.Fatalf("accepted thread %+v", th)
		}
	})
}
