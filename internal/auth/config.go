package auth

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
)

// The signing algorithms ECB knows. Any other name in Config.Algorithms is a
// configuration error, so a typo never silently disables a key.
const (
	AlgRS256 = "RS256"
	AlgES256 = "ES256"
	AlgEdDSA = "EdDSA"
	AlgHS256 = "HS256"
)

var supportedAlgorithms = []string{AlgRS256, AlgES256, AlgEdDSA, AlgHS256}

// Defaults applied to the zero fields of a Config.
const (
	DefaultLeeway      = 30 * time.Second
	DefaultJWKSRefresh = time.Hour
	// DefaultTokenCacheSize is how many verified threadTokens a Verifier
	// remembers when Config.TokenCacheSize is zero.
	DefaultTokenCacheSize = 10000
)

// The bounds Validate enforces.
const (
	// MinSecretBytes follows RFC 7518 §3.2: an HS256 key must be at least as
	// long as the hash output.
	MinSecretBytes = 32
	// MinJWKSRefresh keeps a typo ("1s") from hammering the key server.
	MinJWKSRefresh = 10 * time.Second
)

// Config says which tokens a Verifier accepts. Its zero value is not usable on
// its own (it names no key), but every zero field means its documented default.
type Config struct {
	// Algorithms is the allow-list of signing algorithms; a token's alg header
	// is only compared against it, never trusted. Default: ["RS256"].
	// Supported: RS256, ES256, EdDSA, HS256.
	Algorithms []string `yaml:"algorithms"`

	// PublicKeyFile is a PEM file with one or more public keys (RSA of at
	// least 2048 bits, EC P-256 or Ed25519) or certificates. A certificate is
	// only a container for its key: its dates and chain are not checked.
	PublicKeyFile string `yaml:"publicKeyFile"`

	// JWKSURL is a JWK Set fetched at start, every JWKSRefresh, and when a
	// token names a kid the cached set lacks. It must be https unless the host
	// is loopback or AllowInsecureJWKS is set.
	JWKSURL string `yaml:"jwksURL"`

	// SharedSecret enables HS256, which also has to be listed in Algorithms.
	// At least 32 bytes. Asymmetric keys are preferred: whoever holds this
	// secret can mint tokens.
	SharedSecret string `yaml:"sharedSecret"`

	// Audience, when set, must appear in the token's aud claim.
	Audience string `yaml:"audience"`

	// Issuer, when set, must equal the token's iss claim.
	Issuer string `yaml:"issuer"`

	// Leeway is the clock skew tolerated on exp and nbf. Default: 30s.
	Leeway time.Duration `yaml:"leeway"`

	// JWKSRefresh is how often the JWK Set is refetched. Default: 1h.
	JWKSRefresh time.Duration `yaml:"jwksRefresh"`

	// AllowInsecureJWKS permits a plain http JWKSURL on a non-loopback host.
	// Anyone on the network path could then substitute their own keys, so it
	// is meant for test setups only.
	AllowInsecureJWKS bool `yaml:"allowInsecureJWKS"`

	// TokenCacheSize bounds the verified threadTokens remembered (keyed by
	// the token's SHA-256, each until its exp), so that a token presented
	// again costs one lookup instead of a signature check. Default: 10000;
	// -1 turns the cache off.
	TokenCacheSize int `yaml:"tokenCacheSize"`
}

// withDefaults returns c with its zero fields filled in.
func (c Config) withDefaults() Config {
	if len(c.Algorithms) == 0 {
		c.Algorithms = []string{AlgRS256}
	}
	if c.Leeway == 0 {
		c.Leeway = DefaultLeeway
	}
	if c.JWKSRefresh == 0 {
		c.JWKSRefresh = DefaultJWKSRefresh
	}
	if c.TokenCacheSize == 0 {
		c.TokenCacheSize = DefaultTokenCacheSize
	}
	return c
}

// Validate reports every problem of c, each naming its configuration key.
// It reads no file and makes no network call.
func (c Config) Validate() error {
	return errors.Join(c.validate(true)...)
}

// validate checks c; needSource is false when the caller supplies the keys.
func (c Config) validate(needSource bool) []error {
	c = c.withDefaults()
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("auth.%s: %s", key, fmt.Sprintf(format, args...)))
	}

	var asym []string // the listed algorithms that need a public key
	for _, alg := range c.Algorithms {
		switch {
		case !slices.Contains(supportedAlgorithms, alg):
			bad("algorithms", "%q is not supported (expected %s)", alg, strings.Join(supportedAlgorithms, ", "))
		case alg != AlgHS256:
			asym = append(asym, alg)
		}
	}
	hs := slices.Contains(c.Algorithms, AlgHS256)
	switch {
	case hs && c.SharedSecret == "":
		bad("algorithms", "HS256 is listed but auth.sharedSecret is not set")
	case !hs && c.SharedSecret != "":
		bad("sharedSecret", "is set but HS256 is not listed in auth.algorithms")
	case hs && len(c.SharedSecret) < MinSecretBytes:
		bad("sharedSecret", "must be at least %d bytes", MinSecretBytes)
	}
	if needSource {
		switch {
		case c.PublicKeyFile == "" && c.JWKSURL == "" && c.SharedSecret == "":
			errs = append(errs, errors.New("auth: no key source: set auth.publicKeyFile (e.g. the public.pem that `ecb keys generate` writes), auth.jwksURL or auth.sharedSecret"))
		case len(asym) > 0 && c.PublicKeyFile == "" && c.JWKSURL == "":
			bad("algorithms", "%s needs auth.publicKeyFile or auth.jwksURL", strings.Join(asym, ", "))
		}
		if c.JWKSURL != "" {
			if err := checkJWKSURL(c.JWKSURL, c.AllowInsecureJWKS); err != nil {
				bad("jwksURL", "%v", err)
			}
		}
	}
	if c.TokenCacheSize < -1 {
		bad("tokenCacheSize", "must be -1 (off), 0 (the default) or a positive size")
	}
	if c.Leeway < 0 {
		bad("leeway", "must not be negative")
	}
	if c.JWKSRefresh < MinJWKSRefresh {
		bad("jwksRefresh", "must be at least %s", MinJWKSRefresh)
	}
	return errs
}

func checkJWKSURL(raw string, allowInsecure bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a valid URL")
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Errorf("scheme must be https, not %q", u.Scheme)
	case u.Host == "":
		return errors.New("has no host")
	case u.Scheme == "http" && !allowInsecure && !isLoopback(u.Hostname()):
		return errors.New("must be https (plain http is allowed for loopback hosts, or with auth.allowInsecureJWKS)")
	}
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// AcceptedAlgorithms returns the signing algorithms ECB accepts under c
// (auth.algorithms, RS256 when empty): what the discovery document states.
func (c Config) AcceptedAlgorithms() []string {
	return slices.Clone(c.withDefaults().Algorithms)
}
