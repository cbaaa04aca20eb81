package ecbserver

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Default lifetimes of the tokens TokenSigner signs.
const (
	DefaultUserTTL   = time.Hour
	DefaultThreadTTL = time.Hour
	// DefaultAnonTTL is short because an anonymous visitor has no account to
	// revoke: the token itself is the only limit.
	DefaultAnonTTL = 15 * time.Minute
)

// minRSABits is the smallest RSA key TokenSigner accepts (NIST SP 800-131A).
const minRSABits = 2048

// ErrUnsupportedKey is returned by NewTokenSigner for a key that is not an RSA
// key of at least 2048 bits, an ECDSA P-256 key or an Ed25519 key.
var ErrUnsupportedKey = errors.New("ecbserver: unsupported signing key")

// SignerOptions configures a TokenSigner. Only Audience is required.
type SignerOptions struct {
	// Audience is the aud claim. It must equal the audience ECB is configured
	// to accept, so a token minted for another service cannot be used on ECB.
	Audience string
	// Issuer is the iss claim; empty leaves it out.
	Issuer string
	// KeyID is the kid header, which lets ECB pick the key from a JWKS during
	// a key rotation; empty leaves it out.
	KeyID string
	// UserTTL is the lifetime of a userToken; zero means DefaultUserTTL.
	UserTTL time.Duration
	// ThreadTTL is the lifetime of a threadToken; zero means DefaultThreadTTL.
	ThreadTTL time.Duration
	// ReissueWithin is how close to its exp a threadToken must be for
	// ReissueThreadToken to sign a fresh one; zero means a quarter of
	// ThreadTTL.
	ReissueWithin time.Duration
}

// TokenSigner signs the userTokens and threadTokens ECB verifies. The
// algorithm follows from the key: RS256 for RSA, ES256 for ECDSA P-256, EdDSA
// for Ed25519. A TokenSigner is safe for concurrent use.
type TokenSigner struct {
	key    crypto.Signer
	method jwt.SigningMethod
	opts   SignerOptions
	now    func() time.Time // time.Now; a field so tests can fix the clock
}

// NewTokenSigner returns a TokenSigner that signs with key. It fails with
// ErrUnsupportedKey for a key type it cannot use and when opts.Audience is
// empty.
func NewTokenSigner(key crypto.Signer, opts SignerOptions) (*TokenSigner, error) {
	method, err := methodFor(key)
	if err != nil {
		return nil, err
	}
	if opts.Audience == "" {
		return nil, errors.New("ecbserver: SignerOptions.Audience is required; use the audience ECB is configured with")
	}
	if opts.UserTTL < 0 || opts.ThreadTTL < 0 || opts.ReissueWithin < 0 {
		return nil, errors.New("ecbserver: SignerOptions TTLs must not be negative")
	}
	if opts.UserTTL == 0 {
		opts.UserTTL = DefaultUserTTL
	}
	if opts.ThreadTTL == 0 {
		opts.ThreadTTL = DefaultThreadTTL
	}
	if opts.ReissueWithin == 0 {
		opts.ReissueWithin = opts.ThreadTTL / 4
	}
	return &TokenSigner{key: key, method: method, opts: opts, now: time.Now}, nil
}

func methodFor(key crypto.Signer) (jwt.SigningMethod, error) {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("%w: RSA key of %d bits, want at least %d", ErrUnsupportedKey, k.N.BitLen(), minRSABits)
		}
		return jwt.SigningMethodRS256, nil
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("%w: ECDSA curve %s, want P-256 (ES256)", ErrUnsupportedKey, k.Curve.Params().Name)
		}
		return jwt.SigningMethodES256, nil
	case ed25519.PrivateKey:
		return jwt.SigningMethodEdDSA, nil
	case nil:
		return nil, fmt.Errorf("%w: nil key", ErrUnsupportedKey)
	default:
		return nil, fmt.Errorf("%w: %T", ErrUnsupportedKey, key)
	}
}

// Algorithm returns the JWS algorithm the signer uses: "RS256", "ES256" or
// "EdDSA". ECB's allow-list must contain it.
func (s *TokenSigner) Algorithm() string { return s.method.Alg() }

// PublicKey returns the public half of the signing key: what ECB is given to
// verify the tokens.
func (s *TokenSigner) PublicKey() crypto.PublicKey { return s.key.Public() }

// UserTokenParams describes the user a userToken is signed for.
type UserTokenParams struct {
	ID         string   // sub; required
	Name       string   // name, the display name; required
	Roles      []string // roles: "agent", "supervisor", "bot"
	Workgroups []string // workgroups the user serves, for agents and supervisors
}

// ThreadTokenParams describes the thread and user a threadToken is signed for.
type ThreadTokenParams struct {
	ThreadID string   // sub; required
	UserID   string   // uid; required
	Access   int      // acc: a sum of the Access bits, 0..15; 0 means no access
	Members  []string // members: the thread's member ids, optional
}

// AnonParams describes an anonymous website visitor.
type AnonParams struct {
	ID      string        // sub; empty means a random "anon-..." id
	Name    string        // name; empty means "Visitor"
	Origins []string      // the Origin values ECB accepts the token from; required
	TTL     time.Duration // lifetime; zero means DefaultAnonTTL
}

// userTokenClaims and threadTokenClaims put the registered claims beside the
// contract's private claims; encoding/json flattens both into one object.
type userTokenClaims struct {
	jwt.RegisteredClaims
	UserClaims
}

type threadTokenClaims struct {
	jwt.RegisteredClaims
	ThreadClaims
}

// SignUserToken returns a userToken for u, valid for SignerOptions.UserTTL.
func (s *TokenSigner) SignUserToken(u UserTokenParams) (string, error) {
	if u.ID == "" || u.Name == "" {
		return "", errors.New("ecbserver: SignUserToken: ID and Name are required")
	}
	reg, err := s.registered(u.ID, s.opts.UserTTL)
	if err != nil {
		return "", err
	}
	return s.sign(userTokenClaims{reg, UserClaims{
		Typ: TokenTypeUser, Name: u.Name, Roles: u.Roles, Workgroups: u.Workgroups,
	}})
}

// SignThreadToken returns a threadToken for p, valid for
// SignerOptions.ThreadTTL.
func (s *TokenSigner) SignThreadToken(p ThreadTokenParams) (string, error) {
	if p.ThreadID == "" || p.UserID == "" {
		return "", errors.New("ecbserver: SignThreadToken: ThreadID and UserID are required")
	}
	const allBits = AccessRead | AccessWrite | AccessAdmin | AccessOwner
	if p.Access < 0 || p.Access > allBits {
		return "", fmt.Errorf("ecbserver: SignThreadToken: access %d is not a sum of the Access bits", p.Access)
	}
	reg, err := s.registered(p.ThreadID, s.opts.ThreadTTL)
	if err != nil {
		return "", err
	}
	return s.sign(threadTokenClaims{reg, ThreadClaims{
		Typ: TokenTypeThread, UID: p.UserID, Acc: p.Access, Members: p.Members,
	}})
}

// ReissueThreadToken is what addThreadMessage answers as its threadToken:
// "" (keep the token you sent) while the author's current token, as req
// describes it, is valid for more than SignerOptions.ReissueWithin and
// grants exactly p.Access; otherwise a fresh token for p, as
// SignThreadToken. A request without the description (ECB older than
// contract 1.5) always gets a fresh one. Signing is the costliest part of
// a message for most backends (an RSA signature is about a millisecond), so
// this is the SDK's default for addThreadMessage: call it instead of
// SignThreadToken there.
func (s *TokenSigner) ReissueThreadToken(req *AddThreadMessageRequest, p ThreadTokenParams) (string, error) {
	if req != nil && req.ThreadTokenExpiresAt != nil && req.ThreadTokenAccess != nil &&
		*req.ThreadTokenAccess == p.Access && req.ThreadTokenExpiresAt.Sub(s.now()) > s.opts.ReissueWithin {
		return "", nil
	}
	return s.SignThreadToken(p)
}

// SignAnonymousToken returns a userToken for an anonymous visitor: anon is
// true and origins lists where ECB accepts it from. ECB lets such a user use
// the support operations only.
func (s *TokenSigner) SignAnonymousToken(p AnonParams) (string, error) {
	if len(p.Origins) == 0 {
		return "", errors.New("ecbserver: SignAnonymousToken: at least one origin is required")
	}
	for _, o := range p.Origins {
		if err := checkOrigin(o); err != nil {
			return "", fmt.Errorf("ecbserver: SignAnonymousToken: %w", err)
		}
	}
	if p.TTL < 0 {
		return "", errors.New("ecbserver: SignAnonymousToken: TTL must not be negative")
	}
	if p.TTL == 0 {
		p.TTL = DefaultAnonTTL
	}
	if p.ID == "" {
		id, err := randomHex(12)
		if err != nil {
			return "", err
		}
		p.ID = "anon-" + id
	}
	if p.Name == "" {
		p.Name = "Visitor"
	}
	reg, err := s.registered(p.ID, p.TTL)
	if err != nil {
		return "", err
	}
	return s.sign(userTokenClaims{reg, UserClaims{
		Typ: TokenTypeUser, Name: p.Name, Anon: true, Origins: p.Origins,
	}})
}

// checkOrigin accepts what a browser sends in the Origin header:
// scheme://host[:port] and nothing else, so that ECB can compare exactly.
func checkOrigin(o string) error {
	u, err := url.Parse(o)
	if err != nil || u.Scheme == "" || u.Host == "" || u.Path != "" || u.RawQuery != "" ||
		u.Fragment != "" || u.User != nil || u.Opaque != "" {
		return fmt.Errorf("origin %q is not of the form scheme://host[:port]", o)
	}
	return nil
}

func (s *TokenSigner) registered(sub string, ttl time.Duration) (jwt.RegisteredClaims, error) {
	// A unique jti lets ECB (or a later revocation list) tell two tokens of
	// the same user apart.
	jti, err := randomHex(16)
	if err != nil {
		return jwt.RegisteredClaims{}, err
	}
	now := s.now()
	return jwt.RegisteredClaims{
		Issuer:    s.opts.Issuer,
		Subject:   sub,
		Audience:  jwt.ClaimStrings{s.opts.Audience},
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		ID:        jti,
	}, nil
}

func (s *TokenSigner) sign(claims jwt.Claims) (string, error) {
	t := jwt.NewWithClaims(s.method, claims)
	if s.opts.KeyID != "" {
		t.Header["kid"] = s.opts.KeyID
	}
	out, err := t.SignedString(s.key)
	if err != nil {
		return "", fmt.Errorf("ecbserver: sign %s token: %w", s.method.Alg(), err)
	}
	return out, nil
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("ecbserver: random id: %w", err)
	}
	return hex.EncodeToString(b), nil
}
