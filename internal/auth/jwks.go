package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"golang.org/x/time/rate"
)

const (
	// jwksFetchTimeout bounds one fetch of the JWK Set.
	jwksFetchTimeout = 10 * time.Second
	// unknownKIDInterval is the least time between two refetches caused by
	// tokens with an unknown kid, so made-up kids cannot hammer the key server.
	unknownKIDInterval = 30 * time.Second
	// unknownKIDWait bounds how long a verification may wait for such a
	// refetch, the wait for the rate limiter included. When the limiter has
	// no token to give within it, the verification fails at once.
	unknownKIDWait = 5 * time.Second
)

// newJWKSSource fetches cfg.JWKSURL once, then keeps it fresh in a goroutine
// that ends with ctx. It fails when the first fetch fails or yields no key
// usable with cfg.Algorithms: an ECB that cannot verify any token should not
// pass for started.
func newJWKSSource(ctx context.Context, cfg Config) (keyfunc.Keyfunc, error) {
	client := &http.Client{
		Timeout: jwksFetchTimeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("too many redirects")
			}
			// The https rule would be moot if a redirect could downgrade it.
			return checkJWKSURL(req.URL.String(), cfg.AllowInsecureJWKS)
		},
	}
	failFirst := false
	kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{cfg.JWKSURL}, keyfunc.Override{
		Client:                    client,
		HTTPTimeout:               jwksFetchTimeout,
		NoErrorReturnFirstHTTPReq: &failFirst,
		RateLimitWaitMax:          unknownKIDWait,
		RefreshInterval:           cfg.JWKSRefresh,
		RefreshUnknownKID:         rate.NewLimiter(rate.Every(unknownKIDInterval), 1),
		RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
			return func(ctx context.Context, err error) {
				slog.Default().WarnContext(ctx, "auth: JWKS refresh failed; keeping the cached keys", "url", u, "error", err)
			}
		},
	})
	if err != nil {
		// keyfunc joins errors with newlines; keep the message on one log line.
		return nil, fmt.Errorf("auth.jwksURL: %s", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	// A key marked for encryption must never verify a signature (RFC 7517 §4.2).
	kf, err = keyfunc.New(keyfunc.Options{Ctx: ctx, Storage: kf.Storage(), UseWhitelist: []jwkset.USE{jwkset.UseSig, ""}})
	if err != nil {
		return nil, fmt.Errorf("auth.jwksURL: %w", err)
	}

	set, err := kf.VerificationKeySet(ctx)
	if err != nil {
		return nil, fmt.Errorf("auth.jwksURL: %w", err)
	}
	for _, k := range set.Keys {
		if _, ok := usableKey(k, cfg.Algorithms); ok {
			return kf, nil
		}
	}
	return nil, fmt.Errorf("auth.jwksURL: the JWK Set at %s has no key usable with %v", cfg.JWKSURL, cfg.Algorithms)
}
