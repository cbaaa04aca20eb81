package ecbserver

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// DiscoverPath is where ECB serves its discovery document (GET, no token):
// its endpoints, versions, transports, accepted token algorithms and
// capabilities (docs/protocol.md, "Discovery").
const DiscoverPath = "/v1/discover"

// AnonymousSession is what a visitor's page needs to start: the anonymous
// userToken and the URL of ECB's discovery document, from which the page
// learns where to connect and what the deployment offers.
type AnonymousSession struct {
	UserToken   string `json:"userToken"`
	DiscoverURL string `json:"discoverUrl"`
}

// SignAnonymousSession is SignAnonymousToken that also returns the
// discovery URL of the ECB at ecbURL (its public base URL, such as
// https://chat.example.com), to hand to the visitor's page with the token.
func (s *TokenSigner) SignAnonymousSession(ecbURL string, p AnonParams) (*AnonymousSession, error) {
	u, err := DiscoverURL(ecbURL)
	if err != nil {
		return nil, fmt.Errorf("ecbserver: SignAnonymousSession: %w", err)
	}
	tok, err := s.SignAnonymousToken(p)
	if err != nil {
		return nil, err
	}
	return &AnonymousSession{UserToken: tok, DiscoverURL: u}, nil
}

// DiscoverURL returns the discovery document's URL of the ECB at ecbURL,
// an absolute http or https URL without query or fragment (a path prefix,
// as behind a proxy at /chat, is kept).
func DiscoverURL(ecbURL string) (string, error) {
	u, err := url.Parse(ecbURL)
	if err != nil {
		return "", fmt.Errorf("ECB URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", errors.New("the ECB URL must be an absolute http or https URL without credentials, query or fragment")
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + DiscoverPath
	u.RawPath = ""
	return u.String(), nil
}
