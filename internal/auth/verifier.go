package auth

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
)

// MaxTokenBytes is the longest token ECB parses. Real tokens are well under
// 2 KiB; the bound keeps a hostile client from making ECB decode megabytes.
const MaxTokenBytes = 16 << 10

// The typ claim of each token type, as the backend contract defines them.
const (
	typUser   = "user"
	typThread = "thread"
)

// Verifier checks userTokens and threadTokens. It is safe for concurrent use.
type Verifier struct {
	parser   *jwt.Parser
	algs     []string
	secret   []byte
	static   map[string]jwt.VerificationKeySet // alg → the local keys that verify it
	jwks     keyfunc.Keyfunc                   // nil without Config.JWKSURL
	audience string
	issuer   string
	threads  *threadCache // nil: Config.TokenCacheSize -1
	now      func() time.Time
}

// NewVerifier validates cfg, loads its public key file and, when JWKSURL is
// set, fetches the JWK Set once and starts a goroutine that refreshes it.
// That goroutine stops when ctx is done; the Verifier then keeps verifying
// with the keys it last fetched, but fetches no more.
func NewVerifier(ctx context.Context, cfg Config) (*Verifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	var keys []crypto.PublicKey
	if cfg.PublicKeyFile != "" {
		data, err := os.ReadFile(cfg.PublicKeyFile)
		if err != nil {
			return nil, fmt.Errorf("auth.publicKeyFile: %w", err)
		}
		if keys, err = parsePublicKeysPEM(data); err != nil {
			return nil, fmt.Errorf("auth.publicKeyFile: %s: %w", cfg.PublicKeyFile, err)
		}
		if err := checkAllowed(keys, cfg.Algorithms); err != nil {
			return nil, fmt.Errorf("auth.publicKeyFile: %s: %w", cfg.PublicKeyFile, err)
		}
	}
	v := newVerifier(cfg, keys)
	if cfg.JWKSURL != "" {
		var err error
		if v.jwks, err = newJWKSSource(ctx, cfg); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// NewVerifierFromKeys returns a Verifier that trusts exactly keys (RSA of at
// least 2048 bits, EC P-256 or Ed25519 public keys) plus cfg.SharedSecret.
// cfg.PublicKeyFile and cfg.JWKSURL are ignored. It is meant for tests and
// for programs, like ecb demo, that hold the backend's key in memory.
func NewVerifierFromKeys(cfg Config, keys ...crypto.PublicKey) (*Verifier, error) {
	if err := errors.Join(cfg.validate(false)...); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if len(keys) == 0 && cfg.SharedSecret == "" {
		return nil, errors.New("auth: no key given and no auth.sharedSecret")
	}
	for _, k := range keys {
		if _, err := checkPublicKey(k); err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
	}
	if err := checkAllowed(keys, cfg.Algorithms); err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	return newVerifier(cfg, keys), nil
}

// newVerifier builds a Verifier from a validated, defaulted cfg and checked keys.
func newVerifier(cfg Config, keys []crypto.PublicKey) *Verifier {
	algs := slices.Clone(cfg.Algorithms)
	v := &Verifier{now: time.Now}
	*v = Verifier{
		now: time.Now,
		parser: jwt.NewParser(
			jwt.WithTimeFunc(func() time.Time { return v.now() }),
			jwt.WithValidMethods(algs),
			jwt.WithLeeway(cfg.Leeway),
			jwt.WithExpirationRequired(),
			jwt.WithStrictDecoding(),
		),
		algs:     algs,
		static:   make(map[string]jwt.VerificationKeySet),
		audience: cfg.Audience,
		issuer:   cfg.Issuer,
		threads:  newThreadCache(cfg.TokenCacheSize),
	}
	if v.threads != nil {
		v.threads.now = func() time.Time { return v.now() }
	}
	if cfg.SharedSecret != "" {
		v.secret = []byte(cfg.SharedSecret)
	}
	for _, k := range keys {
		alg := algFor(k)
		set := v.static[alg]
		set.Keys = append(set.Keys, k)
		v.static[alg] = set
	}
	return v
}

// checkAllowed refuses a key no allowed algorithm can use: such a key is a
// configuration mistake that would otherwise show up as every token failing.
func checkAllowed(keys []crypto.PublicKey, algs []string) error {
	for _, k := range keys {
		if alg := algFor(k); !slices.Contains(algs, alg) {
			return fmt.Errorf("%s key verifies %s, which is not in auth.algorithms %v", kindOf(k), alg, algs)
		}
	}
	return nil
}

// usableKey reports whether k verifies one of algs, and which.
func usableKey(k any, algs []string) (string, bool) {
	if _, err := checkPublicKey(k); err != nil {
		return "", false
	}
	alg := algFor(k)
	return alg, slices.Contains(algs, alg)
}

type userClaims struct {
	jwt.RegisteredClaims
	Typ        string   `json:"typ"`
	Name       string   `json:"name"`
	Roles      []string `json:"roles"`
	Workgroups []string `json:"workgroups"`
	Anon       bool     `json:"anon"`
	Origins    []string `json:"origins"`
}

type threadClaims struct {
	jwt.RegisteredClaims
	Typ     string   `json:"typ"`
	UID     string   `json:"uid"`
	Acc     *int     `json:"acc"` // a pointer, because 0 (no access) is a value and absence is an error
	Members []string `json:"members"`
}

// VerifyUser checks a userToken. origin is the request's Origin header; it
// matters only for anonymous tokens, which are accepted only when origin
// equals one of their origins claim (ASCII case-insensitively).
func (v *Verifier) VerifyUser(token, origin string) (*User, error) {
	var c userClaims
	if err := v.parse(token, &c); err != nil {
		return nil, err
	}
	if err := v.checkShared(&c.RegisteredClaims, c.Typ, typUser); err != nil {
		return nil, err
	}
	if c.Anon {
		if len(c.Origins) == 0 {
			return nil, fmt.Errorf("%w: anonymous token without origins", ErrMalformed)
		}
		if !originAllowed(origin, c.Origins) {
			return nil, fmt.Errorf("%w: the request's Origin is not in the token's origins", ErrOrigin)
		}
	}
	return &User{
		ID:         c.Subject,
		Name:       c.Name,
		Roles:      c.Roles,
		Workgroups: c.Workgroups,
		Anonymous:  c.Anon,
		IssuedAt:   unixOf(c.IssuedAt),
		ExpiresAt:  timeOf(c.ExpiresAt),
	}, nil
}

// VerifyThread checks a threadToken. It does not compare the token's uid with
// the caller: that is the job of whoever also holds the verified User.
// A token that verified before is answered from the cache (cache.go) until
// its exp, without a signature check; the Thread returned is always the
// caller's own copy, but for its read-only Members.
func (v *Verifier) VerifyThread(token string) (*Thread, error) {
	if t, ok := v.threads.get(token); ok {
		return t, nil
	}
	t, err := v.verifyThread(token)
	if err != nil {
		return nil, err
	}
	v.threads.put(token, t)
	return t, nil
}

// verifyThread is VerifyThread without the cache.
func (v *Verifier) verifyThread(token string) (*Thread, error) {
	var c threadClaims
	if err := v.parse(token, &c); err != nil {
		return nil, err
	}
	if err := v.checkShared(&c.RegisteredClaims, c.Typ, typThread); err != nil {
		return nil, err
	}
	switch {
	case c.UID == "":
		return nil, fmt.Errorf("%w: uid claim is required", ErrMalformed)
	case c.Acc == nil:
		return nil, fmt.Errorf("%w: acc claim is required", ErrMalformed)
	case *c.Acc < 0 || *c.Acc > 15:
		return nil, fmt.Errorf("%w: acc claim must be within 0..15", ErrMalformed)
	}
	return &Thread{
		ThreadID:  c.Subject,
		UserID:    c.UID,
		Access:    Access(*c.Acc),
		Signed:    Access(*c.Acc),
		Members:   c.Members,
		ExpiresAt: timeOf(c.ExpiresAt),
	}, nil
}

// parse verifies the signature, exp and nbf, and fills claims in.
func (v *Verifier) parse(token string, claims jwt.Claims) error {
	if token == "" {
		return ErrMissingToken
	}
	if len(token) > MaxTokenBytes {
		return fmt.Errorf("%w: longer than %d bytes", ErrMalformed, MaxTokenBytes)
	}
	if err := checkHeader(token); err != nil {
		return fmt.Errorf("%w: the header repeats a parameter", ErrMalformed)
	}
	// The claims decode strictly (claims.go): exact-case names, each once,
	// NumericDates as numbers; jwt reports a refusal as ErrTokenMalformed.
	t, err := v.parser.ParseWithClaims(token, claims, v.key)
	if err != nil {
		return v.classify(t, err)
	}
	// RFC 7515 §4.1.11: an extension we do not understand must not be ignored.
	if _, ok := t.Header["crit"]; ok {
		return fmt.Errorf("%w: crit header is not supported", ErrMalformed)
	}
	return nil
}

// checkShared checks the claims both token types carry. A token of the other
// type is refused here, so a threadToken never passes for a userToken.
func (v *Verifier) checkShared(rc *jwt.RegisteredClaims, typ, wantTyp string) error {
	switch {
	case v.audience != "" && !slices.Contains(rc.Audience, v.audience):
		return fmt.Errorf("%w: aud does not contain %q", ErrAudience, v.audience)
	case v.issuer != "" && rc.Issuer != v.issuer:
		return fmt.Errorf("%w: iss is not %q", ErrIssuer, v.issuer)
	case typ != wantTyp:
		return fmt.Errorf("%w: typ is not %q", ErrWrongType, wantTyp)
	case rc.Subject == "":
		return fmt.Errorf("%w: sub claim is required", ErrMalformed)
	}
	return nil
}

// key is the jwt.Keyfunc. The parser has already refused any alg outside the
// allow-list; here each alg gets only keys of its own kind, so an HS256
// token is never checked against a public key and vice versa.
func (v *Verifier) key(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	if alg == AlgHS256 {
		return v.secret, nil
	}
	set := v.static[alg]
	if v.jwks != nil {
		// Without a kid keyfunc answers with every key; with an unknown kid
		// it refetches the set (rate-limited) before giving up.
		got, err := v.jwks.Keyfunc(t)
		if err == nil {
			remote, ok := got.(jwt.VerificationKeySet)
			if !ok {
				remote.Keys = []jwt.VerificationKey{got}
			}
			set.Keys = slices.Clip(set.Keys) // never append into the shared static array
			for _, k := range remote.Keys {
				if a, ok := usableKey(k, v.algs); ok && a == alg {
					set.Keys = append(set.Keys, k)
				}
			}
		}
	}
	if len(set.Keys) == 0 {
		return nil, errNoKey
	}
	return set, nil
}

var errNoKey = errors.New("no key for this token")

// classify maps a jwt error to one of ours. The jwt errors are not wrapped:
// some of them quote parts of the token.
func (v *Verifier) classify(t *jwt.Token, err error) error {
	switch {
	case t != nil && t.Method != nil && !slices.Contains(v.algs, t.Method.Alg()):
		return fmt.Errorf("%w: the token's alg is not in auth.algorithms", ErrAlgorithm)
	case t != nil && t.Method == nil && errors.Is(err, jwt.ErrTokenUnverifiable):
		return fmt.Errorf("%w: the token's alg is missing or unknown", ErrAlgorithm)
	case errors.Is(err, jwt.ErrTokenMalformed):
		return fmt.Errorf("%w: not a well-formed JWT", ErrMalformed)
	case errors.Is(err, errNoKey):
		return fmt.Errorf("%w: no trusted key matches the token", ErrSignature)
	case errors.Is(err, jwt.ErrTokenUnverifiable), errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return fmt.Errorf("%w: the signature does not verify", ErrSignature)
	case errors.Is(err, jwt.ErrTokenExpired):
		return fmt.Errorf("%w: exp is past", ErrExpired)
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return fmt.Errorf("%w: nbf is in the future", ErrNotYetValid)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return fmt.Errorf("%w: exp claim is required", ErrMalformed)
	default:
		return fmt.Errorf("%w: invalid claims", ErrMalformed)
	}
}

func unixOf(d *jwt.NumericDate) int64 {
	if d == nil {
		return 0
	}
	return d.Unix()
}

func timeOf(d *jwt.NumericDate) time.Time {
	if d == nil {
		return time.Time{}
	}
	return d.Time
}
