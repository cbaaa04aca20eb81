package serverapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// The scopes an API key may hold.
const (
	ScopeAccessRead   = "access:read"   // GET an access override (access:write implies it)
	ScopeAccessWrite  = "access:write"  // PUT and DELETE access overrides
	ScopeThreadsWrite = "threads:write" // publish system messages, thread events, members, announces
	ScopeUsersWrite   = "users:write"   // disconnect users, revoke their tokens
	ScopePresenceRead = "presence:read" // connection counts of users and threads
	// ScopeWorkgroupsRead lists and reads the customer-support workgroups
	// (workgroups:write implies it).
	ScopeWorkgroupsRead = "workgroups:read"
	// ScopeWorkgroupsWrite creates, changes and removes workgroups, and ends
	// live support conversations or adds agents to them.
	ScopeWorkgroupsWrite = "workgroups:write"
	ScopeAll             = "*" // every scope
)

// Scopes lists the scopes, in documentation order.
var Scopes = []string{ScopeAccessRead, ScopeAccessWrite, ScopeThreadsWrite, ScopeUsersWrite, ScopePresenceRead,
	ScopeWorkgroupsRead, ScopeWorkgroupsWrite, ScopeAll}

// Config configures the Server API (config key serverApi). It is enabled
// when Keys is not empty.
type Config struct {
	// Listen, when set, serves the Server API on its own address instead of
	// under /server/v1 of the client listener.
	Listen string `yaml:"listen"`
	// Keys are the API keys that may call it.
	Keys Keys `yaml:"keys"`
	// StateTTL is how long a closed/deleted mark and a revocation are kept
	// (default 24h); at least your tokens' lifetime.
	StateTTL time.Duration `yaml:"stateTTL"`
	// MaxEntries bounds the overrides, marks and revocations kept (default 100000).
	MaxEntries int `yaml:"maxEntries"`
}

// SetDefaults fills in the zero values.
func (c *Config) SetDefaults() {
	if c.StateTTL <= 0 {
		c.StateTTL = 24 * time.Hour
	}
	if c.MaxEntries <= 0 {
		c.MaxEntries = 100000
	}
}

// Enabled reports whether any key is configured.
func (c *Config) Enabled() bool { return len(c.Keys) > 0 }

// Key is one API key: who holds it (Name, for logs), the secret itself, and
// what it may do.
type Key struct {
	Name   string   `yaml:"name" json:"name"`
	Key    string   `yaml:"key" json:"key"`
	Scopes []string `yaml:"scopes" json:"scopes"`
}

// String never shows the secret.
func (k Key) String() string { return fmt.Sprintf("%s %v", k.Name, k.Scopes) }

// Keys is the list of API keys. From text (an ECB_SERVER_API_KEYS variable,
// --set serverApi.keys=...) it is read as a YAML or JSON list:
// [{name: backend, key: ..., scopes: ["*"]}].
type Keys []Key

// UnmarshalText reads the YAML/JSON list. Its errors never quote the text,
// which holds secrets.
func (k *Keys) UnmarshalText(text []byte) error {
	var out []Key
	dec := yaml.NewDecoder(strings.NewReader(string(text)))
	dec.KnownFields(true)
	if err := dec.Decode(&out); err != nil {
		return errors.New("expected a YAML or JSON list of {name, key, scopes}")
	}
	*k = out
	return nil
}

var namePattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// minKeyLen is the shortest key accepted: 32 characters of a random key are
// well beyond guessing.
const minKeyLen = 32

// Validate checks the configuration; errors name serverApi keys and never
// quote a key.
func (c *Config) Validate() error {
	var errs []error
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			errs = append(errs, fmt.Errorf("serverApi.listen: %q is not host:port", c.Listen))
		}
	}
	var names []string
	for i, k := range c.Keys {
		where := fmt.Sprintf("serverApi.keys[%d]", i)
		if !namePattern.MatchString(k.Name) {
			errs = append(errs, fmt.Errorf("%s.name: required, 1 to 64 of A-Z a-z 0-9 . _ -", where))
		} else {
			where += " (" + k.Name + ")"
			if slices.Contains(names, k.Name) {
				errs = append(errs, fmt.Errorf("%s.name: used twice", where))
			}
			names = append(names, k.Name)
		}
		switch {
		case len(k.Key) < minKeyLen:
			errs = append(errs, fmt.Errorf("%s.key: too short (%d characters, expected at least %d random ones; ecb demo shows how to make one)", where, len(k.Key), minKeyLen))
		case strings.ContainsFunc(k.Key, func(r rune) bool { return r <= ' ' || r > '~' }):
			errs = append(errs, fmt.Errorf("%s.key: only printable ASCII without spaces", where))
		}
		if len(k.Scopes) == 0 {
			errs = append(errs, fmt.Errorf("%s.scopes: required, some of %s", where, strings.Join(Scopes, ", ")))
		}
		for _, s := range k.Scopes {
			if !slices.Contains(Scopes, s) {
				errs = append(errs, fmt.Errorf("%s.scopes: %q is not one of %s", where, s, strings.Join(Scopes, ", ")))
			}
		}
	}
	for i := range c.Keys {
		for j := range i {
			if c.Keys[i].Key == c.Keys[j].Key && len(c.Keys[i].Key) >= minKeyLen {
				errs = append(errs, fmt.Errorf("serverApi.keys[%d]: the same key as serverApi.keys[%d]", i, j))
			}
		}
	}
	return errors.Join(errs...)
}

// keyring checks presented keys against the configured ones.
type keyring struct {
	keys []hashedKey
}

type hashedKey struct {
	name   string
	sum    [sha256.Size]byte
	scopes []string
}

func newKeyring(keys Keys) *keyring {
	kr := &keyring{}
	for _, k := range keys {
		kr.keys = append(kr.keys, hashedKey{name: k.Name, sum: sha256.Sum256([]byte(k.Key)), scopes: slices.Clone(k.Scopes)})
	}
	return kr
}

// find returns the key equal to presented. It compares the SHA-256 of each
// in constant time and looks at every key, so neither the time taken nor
// the position of the match tells anything about the keys.
func (kr *keyring) find(presented string) *hashedKey {
	sum := sha256.Sum256([]byte(presented))
	var found *hashedKey
	for i := range kr.keys {
		if subtle.ConstantTimeCompare(sum[:], kr.keys[i].sum[:]) == 1 {
			found = &kr.keys[i]
		}
	}
	return found
}

func (k *hashedKey) allows(scope string) bool {
	if slices.Contains(k.scopes, ScopeAll) || slices.Contains(k.scopes, scope) {
		return true
	}
	// A write scope implies its read scope.
	return (scope == ScopeAccessRead && slices.Contains(k.scopes, ScopeAccessWrite)) ||
		(scope == ScopeWorkgroupsRead && slices.Contains(k.scopes, ScopeWorkgroupsWrite))
}
