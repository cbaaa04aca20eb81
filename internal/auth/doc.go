// Package auth owns the verification of the tokens clients present to ECB:
// the userToken that identifies a user and the threadToken that grants a user
// access to one thread. The company backend signs both; ECB holds only public
// keys (a PEM file or a JWKS URL) or, if configured, an HS256 shared secret.
//
// The package decides which algorithms and keys are trusted (an allow-list
// from Config, never from the token), which claims are required, and the
// anonymous-visitor origin rule. Claims sets are read strictly (claims.go):
// each name once, in its exact case, NumericDates as JSON numbers;
// golang-jwt checks the signature and the time claims. It also carries the
// verified identity in a context (WithUser, UserFrom) and provides the key
// helpers behind `ecb keys`. The claims are documented in docs/tokens.md.
//
// A Verifier is safe for concurrent use. Verification is local: it makes no
// network call, except that a token signed with a kid unknown to the cached
// JWK Set makes the JWKS library refetch the set, at most once per 30 seconds.
// Errors are the Err* sentinels, wrapped with a reason; none quotes the token.
package auth
