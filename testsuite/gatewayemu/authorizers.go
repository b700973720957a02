package gatewayemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// Effect is a Lambda authorizer's answer.
type Effect int

const (
	// Unauthorized is the Lambda's "Unauthorized" error: API Gateway answers 401.
	Unauthorized Effect = iota
	// Allow lets the request through to the integration.
	Allow
	// Deny is an explicit deny policy: API Gateway answers 403.
	Deny
)

// AuthorizerRequest is what API Gateway hands a Lambda authorizer. For a TOKEN authorizer,
// AuthorizationToken is the identity source header's value.
type AuthorizerRequest struct {
	Type               string // TOKEN or REQUEST
	AuthorizationToken string
	MethodArn          string
	HTTPMethod         string
	Path               string
	Headers            http.Header
	StageVariables     map[string]string
	// SourceIP is the caller's address as API Gateway sees it (the TCP peer), what a REQUEST
	// authorizer's event carries as requestContext.identity.sourceIp.
	SourceIP string
}

// LambdaAuthorizer stands in for the Lambda function behind an authorizer's authorizerUri. An
// error is a failed invocation: API Gateway answers 500 AuthorizerConfigurationException. The
// decision's PrincipalID and Context are what an integration's requestParameters read as
// context.authorizer.principalId and context.authorizer.<key>; a Policy is evaluated again for
// each method ARN answered from the cache.
type LambdaAuthorizer func(ctx context.Context, req AuthorizerRequest) (Decision, error)

// RegisterLambda backs every authorizer whose authorizerUri equals uri with fn.
func (e *Emulator) RegisterLambda(uri string, fn LambdaAuthorizer) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.lambdas[uri] = fn
}

// authorizerCache holds a stage's cached authorizer decisions, keyed by authorizer and identity,
// until their TTL passes or FlushStageAuthorizersCache (REST) or ResetAuthorizersCache (HTTP)
// empties it.
type authorizerCache struct {
	mu      sync.Mutex
	entries map[string]cachedDecision
}

type cachedDecision struct {
	decision Decision
	expires  time.Time
}

func newAuthorizerCache() *authorizerCache {
	return &authorizerCache{entries: map[string]cachedDecision{}}
}

func (c *authorizerCache) get(key string, now time.Time) (Decision, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.entries[key]
	if !ok || !now.Before(d.expires) {
		return Decision{}, false
	}
	return d.decision, true
}

func (c *authorizerCache) put(key string, d Decision, expires time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries[key] = cachedDecision{d, expires}
}

func (c *authorizerCache) flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = map[string]cachedDecision{}
}

// unknownKIDWaitMax bounds an unknown kid's refetch of the JWKS, its wait for the refresh
// limiter included.
const unknownKIDWaitMax = 500 * time.Millisecond

// jwksCache keeps one JWKS client per issuer, found through the issuer's OpenID discovery
// document as API Gateway's JWT authorizer does, refreshed periodically and on an unknown kid.
type jwksCache struct {
	ctx  context.Context
	opts Options

	mu      sync.Mutex
	issuers map[string]keyfunc.Keyfunc
}

func newJWKSCache(ctx context.Context, opts Options) *jwksCache {
	return &jwksCache{ctx: ctx, opts: opts, issuers: map[string]keyfunc.Keyfunc{}}
}

func (c *jwksCache) keyfunc(ctx context.Context, issuer string) (keyfunc.Keyfunc, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if kf, ok := c.issuers[issuer]; ok {
		return kf, nil
	}
	jwksURI, err := c.discover(ctx, issuer)
	if err != nil {
		return nil, err
	}
	noErr := false
	kf, err := keyfunc.NewDefaultOverrideCtx(c.ctx, []string{jwksURI}, keyfunc.Override{
		Client:            c.opts.HTTPClient,
		RefreshInterval:   c.opts.JWKSRefreshInterval,
		RefreshUnknownKID: rate.NewLimiter(rate.Every(c.opts.UnknownKIDRefresh), 1),
		// jwkset bounds the wait for the limiter and the refetch itself with this one timeout: at
		// 1 ms (meant as "never wait for the limiter") a refetch slower than a millisecond, as on
		// a busy machine, failed, and a new kid stayed unknown until the hourly refresh. Half a
		// second lets the refetch finish and still refuses at once a kid that would wait longer.
		RateLimitWaitMax:          unknownKIDWaitMax,
		NoErrorReturnFirstHTTPReq: &noErr,
		RefreshErrorHandlerFunc:   func(string) func(context.Context, error) { return func(context.Context, error) {} },
	})
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS %s: %w", jwksURI, err)
	}
	c.issuers[issuer] = kf
	return kf, nil
}

func (c *jwksCache) discover(ctx context.Context, issuer string) (string, error) {
	u := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.opts.HTTPClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("fetch %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("fetch %s: status %d", u, resp.StatusCode)
	}
	var doc struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || doc.JWKSURI == "" {
		return "", fmt.Errorf("discovery document at %s has no jwks_uri", u)
	}
	return doc.JWKSURI, nil
}

// jwtRejection is why API Gateway's JWT authorizer refused a token; it becomes the
// error_description of the www-authenticate header.
type jwtRejection string

func (r jwtRejection) Error() string { return string(r) }

// verifyJWT checks a bearer token the way an HTTP API JWT authorizer does: RSA signature by a
// key from the issuer's JWKS (by kid), iss equal to the configured issuer, aud or client_id in
// the configured audiences, exp and nbf. It returns the token's claims, which mappings read as
// $context.authorizer.claims.<name>.
func (e *Emulator) verifyJWT(ctx context.Context, header string, cfg jwtConfiguration) (map[string]any, error) {
	claims, err := e.checkJWT(ctx, header, cfg)
	if err != nil {
		return nil, err
	}
	return claims, nil
}

func (e *Emulator) checkJWT(ctx context.Context, header string, cfg jwtConfiguration) (jwt.MapClaims, error) {
	fields := strings.Fields(header)
	if len(fields) > 0 && strings.EqualFold(fields[0], "bearer") {
		fields = fields[1:]
	}
	raw := strings.Join(fields, " ")
	if raw == "" {
		return nil, jwtRejection("the token is missing")
	}
	kf, err := e.jwks.keyfunc(ctx, cfg.Issuer)
	if err != nil {
		return nil, jwtRejection("unable to fetch the issuer's JWKS")
	}
	claims := jwt.MapClaims{}
	_, err = jwt.ParseWithClaims(raw, claims, kf.KeyfuncCtx(ctx),
		jwt.WithValidMethods([]string{"RS256", "RS384", "RS512"}),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(e.opts.Now),
	)
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, jwtRejection("the token has expired")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return nil, jwtRejection("the token is not valid yet")
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return nil, jwtRejection("the token does not have a valid issuer")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return nil, jwtRejection("the token does not have a valid signature")
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return nil, jwtRejection("the token's signing key is not in the JWKS")
	case errors.Is(err, jwt.ErrTokenMalformed):
		return nil, jwtRejection("the token is malformed")
	default:
		return nil, jwtRejection("invalid token: " + err.Error())
	}
	aud, _ := claims.GetAudience()
	if clientID, ok := claims["client_id"].(string); ok {
		aud = append(aud, clientID)
	}
	for _, a := range aud {
		if slices.Contains(cfg.Audience, a) {
			return claims, nil
		}
	}
	return nil, jwtRejection("the token does not have a valid audience")
}
