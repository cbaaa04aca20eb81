package auth_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/ecbridge/ecb/internal/auth"
	"github.com/golang-jwt/jwt/v5"
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
		if u.Anonymous {
			var claims struct {
				Origins []string `json:"origins"`
				jwt.RegisteredClaims
			}
			if _, _, err := jwt.NewParser().ParseUnverified(token, &claims); err != nil {
				t.Fatalf("accepted token does not parse: %v", err)
			}
			if !slices.ContainsFunc(claims.Origins, func(o string) bool { return strings.EqualFold(o, origin) }) {
				t.Fatalf("anonymous user accepted from origin %q not in %q", origin, claims.Origins)
			}
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

// knownClaims are the claim names ECB reads, for the oracle of FuzzClaimsSet.
var knownClaims = []string{"typ", "sub", "exp", "nbf", "iat", "aud", "iss", "jti",
	"name", "roles", "workgroups", "anon", "origins", "uid", "acc", "members"}

// exactMembers decodes a JSON object the way RFC 7519 §4 reads a claims
// set: member names exact, each once. ok is false for anything else.
func exactMembers(b []byte) (map[string]json.RawMessage, bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	out := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		name := tok.(string)
		if _, dup := out[name]; dup {
			return nil, false
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		out[name] = v
	}
	return out, true
}

// FuzzClaimsSet signs any claims set (HS256, so signing is cheap) and checks
// what the verifiers accept against an exact reading of it: no repeated
// member, no member that differs from a claim ECB reads only in case, exp
// (and nbf, iat when present) a JSON number, and the identity ECB returns is
// the one the exactly-named members say.
func FuzzClaimsSet(f *testing.F) {
	for _, c := range strictCases(f) {
		payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(c.token, ".")[1])
		f.Add(string(payload))
	}
	for _, c := range []jwt.MapClaims{userClaims(), threadClaims(), userClaims(anon(testOrigin))} {
		b, _ := json.Marshal(c)
		f.Add(string(b))
	}
	v := allAlgs(f)
	f.Fuzz(func(t *testing.T, payload string) {
		signing := b64(`{"alg":"HS256","typ":"JWT"}`) + "." + b64(payload)
		sig, err := jwt.SigningMethodHS256.Sign(signing, []byte(testSecret))
		if err != nil {
			t.Fatal(err)
		}
		token := signing + "." + base64.RawURLEncoding.EncodeToString(sig)
		u, uerr := v.VerifyUser(token, testOrigin)
		th, terr := v.VerifyThread(token)
		if uerr != nil && terr != nil {
			checkRefusal(t, token, uerr)
			checkRefusal(t, token, terr)
			return
		}
		members, ok := exactMembers([]byte(payload))
		if !ok {
			t.Fatalf("accepted a claims set with a repeated or unreadable member: %s", payload)
		}
		for name := range members {
			for _, k := range knownClaims {
				if name != k && strings.EqualFold(name, k) {
					t.Fatalf("accepted %q for %q: %s", name, k, payload)
				}
			}
		}
		for _, k := range []string{"exp", "nbf", "iat"} {
			if raw, has := members[k]; has && (len(raw) == 0 || !(raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9')) {
				t.Fatalf("accepted %s = %s: %s", k, raw, payload)
			}
		}
		str := func(k string) string {
			var s string
			if err := json.Unmarshal(members[k], &s); err != nil {
				t.Fatalf("accepted a token whose %s is not a string: %s", k, payload)
			}
			return s
		}
		if uerr == nil && (str("typ") != "user" || u.ID != str("sub")) {
			t.Fatalf("accepted user %+v from %s", u, payload)
		}
		if terr == nil {
			var acc int
			if err := json.Unmarshal(members["acc"], &acc); err != nil || str("typ") != "thread" || th.ThreadID != str("sub") || th.UserID != str("uid") || int(th.Access) != acc {
				t.Fatalf("accepted thread %+v from %s", th, payload)
			}
		}
	})
}
