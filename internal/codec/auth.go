package codec

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rollgate/rollgate/internal/spec"
	"github.com/rollgate/rollgate/internal/tokens"
)

// Authenticator decides whether the bearer token of a request may use the codec server. Its
// errors are shown to the caller: they never repeat the token.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) error
}

// minStaticToken is the shortest static token accepted: 32 characters of base64 carry 192 bits.
const minStaticToken = 32

// StaticToken accepts one shared secret, for local use (the temporal CLI's --codec-auth).
type StaticToken struct{ digest [32]byte }

// NewStaticToken checks the token's length and keeps only its digest.
func NewStaticToken(token string) (*StaticToken, error) {
	token = strings.TrimSpace(token)
	if len(token) < minStaticToken {
		return nil, fmt.Errorf("the token is %d characters; at least %d are needed (make one with: head -c 32 /dev/urandom | base64)", len(token), minStaticToken)
	}
	return &StaticToken{digest: sha256.Sum256([]byte(token))}, nil
}

// Authenticate compares digests in constant time, so neither the content nor the length of the
// token leaks through the time an answer takes.
func (s *StaticToken) Authenticate(_ context.Context, token string) error {
	got := sha256.Sum256([]byte(token))
	if subtle.ConstantTimeCompare(got[:], s.digest[:]) != 1 {
		return errors.New("unauthorized: wrong token")
	}
	return nil
}

// OIDC accepts access tokens of one issuer and audience, verified by internal/tokens against
// the JWKS the issuer's discovery document names.
type OIDC struct{ verifier *tokens.Verifier }

// Authenticate verifies the token; the error names only the rejection reason.
func (o *OIDC) Authenticate(ctx context.Context, token string) error {
	if _, err := o.verifier.Verify(ctx, token); err != nil {
		return fmt.Errorf("unauthorized: token rejected (%s)", tokens.ReasonOf(err))
	}
	return nil
}

// OIDCOptions configure NewOIDC.
type OIDCOptions struct {
	Issuer     string
	Audiences  []string
	Algorithms []string
	HTTPClient *http.Client // default: 10 s timeout
}

// NewOIDC reads the issuer's discovery document and starts following its JWKS until ctx ends.
func NewOIDC(ctx context.Context, o OIDCOptions) (*OIDC, error) {
	if err := checkHTTPS("issuer", o.Issuer); err != nil {
		return nil, err
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	jwksURI, err := discoverJWKS(ctx, o.HTTPClient, o.Issuer)
	if err != nil {
		return nil, err
	}
	ks, err := tokens.RemoteKeySet(ctx, jwksURI, tokens.RemoteKeySetOptions{HTTPClient: o.HTTPClient})
	if err != nil {
		return nil, err
	}
	v, err := tokens.NewVerifier(tokens.VerifierOptions{Keys: ks, Issuer: o.Issuer, Audiences: o.Audiences, Algorithms: o.Algorithms, Leeway: 30 * time.Second})
	if err != nil {
		return nil, err
	}
	return &OIDC{verifier: v}, nil
}

// checkHTTPS allows https, and http only on a loopback host (a local issuer).
func checkHTTPS(what, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%s %q is not an absolute URL", what, raw)
	}
	if u.Scheme == "https" || u.Scheme == "http" && spec.IsLoopback(u.Hostname()) {
		return nil
	}
	return fmt.Errorf("%s %q: https is required (http only on a loopback host)", what, raw)
}

// discoverJWKS reads jwks_uri from the issuer's OpenID discovery document, which must name the
// same issuer (OpenID Connect Discovery 1.0, section 4.3).
func discoverJWKS(ctx context.Context, hc *http.Client, issuer string) (string, error) {
	doc, err := tokens.Discover(ctx, hc, issuer)
	if err != nil {
		return "", err
	}
	if doc.Issuer != issuer {
		return "", fmt.Errorf("discovery %s names issuer %q, not %q", tokens.DiscoveryURL(issuer), doc.Issuer, issuer)
	}
	if err := checkHTTPS("discovery jwks_uri", doc.JWKSURI); err != nil {
		return "", err
	}
	return doc.JWKSURI, nil
}
