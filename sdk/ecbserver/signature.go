package ecbserver

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultReplayWindow is how far an ECB-Timestamp may be from the verifier's
// clock, in either direction, when no window is given. It bounds how long a
// captured call can be replayed and how much clock skew is tolerated.
const DefaultReplayWindow = 5 * time.Minute

// signaturePrefix names the scheme version. A future scheme gets a new prefix,
// so a verifier can tell "unknown scheme" from "wrong secret".
const signaturePrefix = "v1="

// Errors returned by VerifyRequest. They are sentinels: test with errors.Is, as
// the returned error wraps them with details.
var (
	// ErrMissingSignature means ECB-Timestamp or ECB-Signature is absent.
	ErrMissingSignature = errors.New("ecbserver: missing signature")
	// ErrBadSignature means the signature does not match the body and
	// timestamp (wrong secret, altered body) or a header is malformed.
	ErrBadSignature = errors.New("ecbserver: bad signature")
	// ErrStaleTimestamp means the signature is right but ECB-Timestamp is
	// outside the replay window: a replayed call, or clocks that drifted apart.
	ErrStaleTimestamp = errors.New("ecbserver: stale timestamp")
)

// Sign returns the ECB-Signature header value for a call whose ECB-Timestamp
// header is timestamp.Unix() in decimal: "v1=" followed by the lowercase hex
// HMAC-SHA256 of secret over the timestamp, a dot and body.
//
// The caller must send the same timestamp in ECB-Timestamp; [SignRequest] sets
// both headers at once.
func Sign(secret []byte, timestamp time.Time, body []byte) string {
	return signaturePrefix + hex.EncodeToString(mac(secret, strconv.FormatInt(timestamp.Unix(), 10), body))
}

// SignRequest sets the ECB-Timestamp and ECB-Signature headers of r for body,
// signed at now. body must be the exact bytes r will send.
func SignRequest(secret []byte, r *http.Request, body []byte, now time.Time) {
	r.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	r.Header.Set(HeaderSignature, Sign(secret, now, body))
}

// mac is computed over the timestamp string exactly as it travels, so a
// verifier never has to re-format it (and "+5" cannot pass for "5").
func mac(secret []byte, timestamp string, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(timestamp))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// VerifyRequest checks that r, whose body is body, was signed with secret and
// signed recently: its ECB-Timestamp must be within window of now, in either
// direction (window <= 0 means DefaultReplayWindow). The comparison is constant
// time.
//
// It returns nil, or an error wrapping ErrMissingSignature, ErrBadSignature or
// ErrStaleTimestamp. An empty secret refuses every request, because anybody can
// compute an HMAC with an empty key.
func VerifyRequest(secret []byte, r *http.Request, body []byte, now time.Time, window time.Duration) error {
	ts := r.Header.Get(HeaderTimestamp)
	sig := r.Header.Get(HeaderSignature)
	if ts == "" || sig == "" {
		return fmt.Errorf("%w: headers %s and %s are required", ErrMissingSignature, HeaderTimestamp, HeaderSignature)
	}
	if len(secret) == 0 {
		return fmt.Errorf("%w: no secret is configured", ErrBadSignature)
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s is not unix seconds", ErrBadSignature, HeaderTimestamp)
	}
	hexSig, ok := strings.CutPrefix(sig, signaturePrefix)
	if !ok {
		return fmt.Errorf("%w: %s does not start with %q", ErrBadSignature, HeaderSignature, signaturePrefix)
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil || len(got) != sha256.Size {
		return fmt.Errorf("%w: %s is not %d hex digits", ErrBadSignature, HeaderSignature, 2*sha256.Size)
	}
	if !hmac.Equal(got, mac(secret, ts, body)) {
		return ErrBadSignature
	}
	// The freshness check comes after the signature check on purpose: a
	// stale-timestamp error then always means a genuine call that is too old
	// or too new, which points the operator at the clocks, not at the secret.
	if window <= 0 {
		window = DefaultReplayWindow
	}
	// Compare in whole seconds: time.Unix overflows for absurd header values,
	// plain integer arithmetic on realistic clocks does not.
	w := int64((window + time.Second - 1) / time.Second)
	n := now.Unix()
	if unix < n-w || unix > n+w {
		return fmt.Errorf("%w: %s is %ds away from this server's clock (window %s)",
			ErrStaleTimestamp, HeaderTimestamp, skew(unix, n), window)
	}
	return nil
}

// skew is unix-now, saturated so that absurd header values cannot overflow.
func skew(unix, now int64) int64 {
	const limit = 1 << 40 // about 35,000 years, far beyond any real clock
	switch {
	case unix > now+limit:
		return limit
	case unix < now-limit:
		return -limit
	}
	return unix - now
}
