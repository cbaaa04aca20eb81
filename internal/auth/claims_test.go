package auth_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ecbridge/ecb/internal/auth"
	"github.com/ecbridge/ecb/sdk/ecbserver"
	"github.com/golang-jwt/jwt/v5"
)

// signRaw signs payload, a claims set written by hand (MapClaims cannot
// repeat a name), with RS256 under header (the default when empty).
func signRaw(tb testing.TB, header, payload string) string {
	tb.Helper()
	if header == "" {
		header = `{"alg":"RS256","typ":"JWT"}`
	}
	signing := b64(header) + "." + b64(payload)
	sig, err := jwt.SigningMethodRS256.Sign(signing, keys().rsa)
	if err != nil {
		tb.Fatal(err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// plus is claims as JSON with members appended (written by hand).
func plus(tb testing.TB, claims jwt.MapClaims, members string) string {
	tb.Helper()
	b, err := json.Marshal(claims)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b[:len(b)-1]) + "," + members + "}"
}

type strictCase struct {
	name    string
	token   string
	origin  string
	thread  bool // a threadToken; else a userToken
	refused bool // want ErrMalformed; else accepted
}

// strictCases: RFC 7519 §4 and RFC 8725 — claim names are case-sensitive
// and unique, NumericDates are numbers.
func strictCases(tb testing.TB) []strictCase {
	tb.Helper()
	future := time.Now().Add(time.Hour).Unix()
	past := time.Now().Add(-time.Minute).Unix()
	u := func(name, members string, drop ...string) strictCase {
		c := userClaims()
		for _, d := range drop {
			delete(c, d)
		}
		return strictCase{name: "user: " + name, token: signRaw(tb, "", plus(tb, c, members)), refused: true}
	}
	th := func(name, members string, drop ...string) strictCase {
		c := threadClaims()
		for _, d := range drop {
			delete(c, d)
		}
		return strictCase{name: "thread: " + name, token: signRaw(tb, "", plus(tb, c, members)), thread: true, refused: true}
	}
	an := func(name, members string, drop ...string) strictCase {
		c := userClaims(anon(testOrigin))
		for _, d := range drop {
			delete(c, d)
		}
		return strictCase{name: "anonymous: " + name, token: signRaw(tb, "", plus(tb, c, members)), origin: testOrigin, refused: true}
	}
	ok := func(c strictCase) strictCase { c.refused = false; return c }
	return []strictCase{
		u("exp as a string", fmt.Sprintf(`"exp":"%d"`, future), "exp"),
		u("nbf as a string", fmt.Sprintf(`"nbf":"%d"`, past)),
		u("iat as a string", fmt.Sprintf(`"iat":"%d"`, past), "iat"),
		u("exp null", `"exp":null`, "exp"),
		u("sub then SUB", `"sub":"alice","SUB":"bob"`, "sub"),
		u("Typ for typ", `"Typ":"user"`, "typ"),
		u("typ and TYP", `"TYP":"thread"`),
		u("EXP for exp", fmt.Sprintf(`"EXP":%d`, future), "exp"),
		u("Roles for roles", `"Roles":["supervisor"]`, "roles"),
		u("sub twice", `"sub":"bob"`),
		u("sub twice, once escaped", `"s\u0075b":"bob"`),
		u("sub folded from U+017F (long s)", `"\u017fub":"bob"`, "sub"),
		u("an unknown claim twice", `"tenant":"a","tenant":"b"`),
		ok(u("unknown claims in any case", `"tenant":"a","Tenant":"b","X-ROLE":"c"`)),
		ok(u("exp a fraction", fmt.Sprintf(`"exp":%d.5`, future), "exp")),
		ok(u("exp with an exponent", `"exp":9.9e9`, "exp")),
		th("UID with uid", `"UID":"carol"`),
		th("UID for uid", `"UID":"u-1"`, "uid"),
		th("ACC for acc", `"ACC":15`, "acc"),
		th("acc twice", `"acc":15`),
		th("exp as a string", fmt.Sprintf(`"exp":"%d"`, future), "exp"),
		th("Sub for sub", `"Sub":"t-2"`, "sub"),
		an("Anon for anon", `"Anon":true`, "anon"),
		an("origins twice", `"origins":["https://evil.example"]`),
		an("ORIGINS beside origins", `"ORIGINS":["https://evil.example"]`),
		an("exp as a string", fmt.Sprintf(`"exp":"%d"`, future), "exp"),
		{name: "header: alg twice", token: signRaw(tb, `{"alg":"RS256","alg":"RS256","typ":"JWT"}`, plus(tb, userClaims(), `"x":1`)), refused: true},
	}
}

func TestStrictClaims(t *testing.T) {
	t.Parallel()
	v := rsaOnly(t)
	for _, c := range strictCases(t) {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var err error
			if c.thread {
				_, err = v.VerifyThread(c.token)
			} else {
				_, err = v.VerifyUser(c.token, c.origin)
			}
			switch {
			case !c.refused && err != nil:
				t.Fatalf("%v, want success", err)
			case c.refused && (!errors.Is(err, auth.ErrMalformed) || !isSentinel(err)):
				t.Fatalf("%v, want %v", err, auth.ErrMalformed)
			}
		})
	}
}

// TestSDKTokensAreStrict: the SDK's signer writes every claim in its exact
// name, once, and the dates as numbers, so its tokens pass the strict
// verifier, and their payloads pass the exact reading of FuzzClaimsSet.
func TestSDKTokensAreStrict(t *testing.T) {
	t.Parallel()
	s, err := ecbserver.NewTokenSigner(keys().rsa, ecbserver.SignerOptions{Audience: testAudience, Issuer: testIssuer, KeyID: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	v := rsaOnly(t)
	user, err := s.SignUserToken(ecbserver.UserTokenParams{ID: "u-1", Name: "Ann", Roles: []string{"agent"}, Workgroups: []string{"billing"}})
	if err != nil {
		t.Fatal(err)
	}
	thread, err := s.SignThreadToken(ecbserver.ThreadTokenParams{ThreadID: "t-1", UserID: "u-1", Access: 0, Members: []string{"u-1"}})
	if err != nil {
		t.Fatal(err)
	}
	visitor, err := s.SignAnonymousToken(ecbserver.AnonParams{Origins: []string{testOrigin}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{user, thread, visitor} {
		payload, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
		if err != nil {
			t.Fatal(err)
		}
		members, ok := exactMembers(payload)
		if !ok {
			t.Fatalf("payload %s", payload)
		}
		for _, k := range []string{"exp", "iat"} {
			if raw := members[k]; len(raw) == 0 || raw[0] < '0' || raw[0] > '9' {
				t.Fatalf("%s = %s in %s", k, raw, payload)
			}
		}
	}
	if u, err := v.VerifyUser(user, ""); err != nil || u.ID != "u-1" || !u.HasRole("agent") {
		t.Fatalf("userToken: %+v %v", u, err)
	}
	if th, err := v.VerifyThread(thread); err != nil || th.UserID != "u-1" || th.Access != 0 {
		t.Fatalf("threadToken: %+v %v", th, err)
	}
	if u, err := v.VerifyUser(visitor, testOrigin); err != nil || !u.Anonymous {
		t.Fatalf("anonymous token: %+v %v", u, err)
	}
}
