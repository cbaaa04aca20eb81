package auth

import "errors"

// The errors a verification fails with. Verify* return them wrapped with a
// short reason, so test with errors.Is. No message ever holds the token.
var (
	ErrMissingToken = errors.New("auth: missing token")
	ErrMalformed    = errors.New("auth: malformed token")
	ErrExpired      = errors.New("auth: token expired")
	ErrNotYetValid  = errors.New("auth: token not valid yet")
	ErrSignature    = errors.New("auth: invalid signature")
	ErrAudience     = errors.New("auth: wrong audience")
	ErrIssuer       = errors.New("auth: wrong issuer")
	ErrWrongType    = errors.New("auth: wrong token type")
	ErrOrigin       = errors.New("auth: origin not allowed")
	ErrAlgorithm    = errors.New("auth: algorithm not allowed")
)
