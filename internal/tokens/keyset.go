package tokens

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"golang.org/x/time/rate"
)

// RemoteKeySetOptions tune a JWKS fetched over HTTP.
type RemoteKeySetOptions struct {
	// CacheTTL is how long a fetched JWKS is used before it is fetched again (the verifier cache
	// TTL of the release model). Default 5 minutes.
	CacheTTL time.Duration
	// UnknownKIDRefresh is the least time between two refetches caused by an unknown kid.
	// Default 10 seconds.
	UnknownKIDRefresh time.Duration
	HTTPClient        *http.Client
}

// RemoteKeySet fetches and caches a JWKS from url with github.com/MicahParks/keyfunc/v3,
// refreshing it every CacheTTL and, rate-limited, when a token names an unknown kid. The first
// fetch must succeed. The refresh goroutine ends with ctx.
func RemoteKeySet(ctx context.Context, url string, o RemoteKeySetOptions) (keyfunc.Keyfunc, error) {
	if o.CacheTTL <= 0 {
		o.CacheTTL = 5 * time.Minute
	}
	if o.UnknownKIDRefresh <= 0 {
		o.UnknownKIDRefresh = 10 * time.Second
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	failFirst := false
	kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{url}, keyfunc.Override{
		Client:                    o.HTTPClient,
		RefreshInterval:           o.CacheTTL,
		RefreshUnknownKID:         rate.NewLimiter(rate.Every(o.UnknownKIDRefresh), 1),
		RateLimitWaitMax:          time.Millisecond, // never hold a request waiting for the limiter
		NoErrorReturnFirstHTTPReq: &failFirst,
	})
	if err != nil {
		return nil, fmt.Errorf("JWKS %s: %w", url, err)
	}
	return kf, nil
}

// StaticKeySet is a key set from a JWKS document in memory.
func StaticKeySet(jwks []byte) (keyfunc.Keyfunc, error) {
	if !json.Valid(jwks) {
		return nil, fmt.Errorf("JWKS is not JSON")
	}
	return keyfunc.NewJWKSetJSON(jwks)
}

// minRSABits is the smallest RSA modulus a verifier trusts (NIST SP 800-131A; Vault's smallest
// transit RSA key is 2048 bits too).
const minRSABits = 2048

// acceptableKey refuses a published key the verifier must not use whatever the JWKS says: an RSA
// key under 2048 bits or with an exponent other than 65537, a key whose use is not "sig", or
// whose key_ops leave out "verify". A refused kid is treated as absent from the key set.
func acceptableKey(meta jwkset.JWKMarshal, key any) error {
	if meta.USE != "" && meta.USE != jwkset.UseSig {
		return fmt.Errorf("use %s is not sig", quoteShort(meta.USE.String()))
	}
	if len(meta.KEYOPS) > 0 && !slices.Contains(meta.KEYOPS, jwkset.KeyOpsVerify) {
		return errors.New("key_ops do not include verify")
	}
	if k, ok := key.(*rsa.PublicKey); ok {
		if bits := k.N.BitLen(); bits < minRSABits {
			return fmt.Errorf("RSA key of %d bits, under %d", bits, minRSABits)
		}
		if k.E != 65537 {
			return fmt.Errorf("RSA exponent %d is not 65537", k.E)
		}
	}
	return nil
}
