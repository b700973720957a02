package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/rollgate/rollgate/internal/envname"
	"github.com/rollgate/rollgate/internal/tokens"
)

// Config is the authorizer's configuration, all from the environment. AWS settings (region,
// credentials, endpoints) come from the SDK's own variables.
type Config struct {
	Issuer     string   `env:"ROLLGATE_ISSUER, required"`
	Audiences  []string `env:"ROLLGATE_AUDIENCES, required"`
	Algorithms []string `env:"ROLLGATE_ALGORITHMS, default=RS256"`
	// JWKSURL overrides the jwks_uri of the issuer's discovery document.
	JWKSURL string `env:"ROLLGATE_JWKS_URL"`
	// JWKSCacheTTL is how long a fetched JWKS is used; an unknown kid refetches it at most once
	// per JWKSUnknownKIDRefresh, which is also how often a JWKS missing at start is retried.
	JWKSCacheTTL          time.Duration `env:"ROLLGATE_JWKS_CACHE_TTL, default=5m"`
	JWKSUnknownKIDRefresh time.Duration `env:"ROLLGATE_JWKS_UNKNOWN_KID_REFRESH, default=10s"`
	Leeway                time.Duration `env:"ROLLGATE_LEEWAY, default=30s"`
	// VerifiedCacheSize tokens whose signature verified are remembered for VerifiedCacheTTL, so
	// that one presented again skips only the signature check (every other check runs on each
	// use: key set, claims, revocation); 0 turns it off.
	VerifiedCacheSize int           `env:"ROLLGATE_VERIFIED_CACHE_SIZE, default=10000"`
	VerifiedCacheTTL  time.Duration `env:"ROLLGATE_VERIFIED_CACHE_TTL, default=1m"`

	RevocationsTable string `env:"ROLLGATE_REVOCATIONS_TABLE, default=rollgate-revocations"`
	// RevokedUsesTable receives the uses of revoked and expired tokens (for the token monitor), at
	// most RevokedUsesPerSecond writes per second of each kind; either empty or 0 turns the
	// recording off.
	RevokedUsesTable     string        `env:"ROLLGATE_REVOKED_USES_TABLE, default=rollgate-revoked-uses"`
	RevokedUsesPerSecond float64       `env:"ROLLGATE_REVOKED_USES_PER_SECOND, default=5"`
	DenyListRefresh      time.Duration `env:"ROLLGATE_DENYLIST_REFRESH, default=1s"`
	MaxStaleness         time.Duration `env:"ROLLGATE_DENYLIST_MAX_STALENESS, default=30s"`
	FailOpen             bool          `env:"ROLLGATE_DENYLIST_FAIL_OPEN, default=false"`

	// ReleaseVariable is the stage variable naming the release that serves a request (REQUEST
	// authorizers); ReleaseHeader carries it in serve mode.
	ReleaseVariable string `env:"ROLLGATE_RELEASE_VARIABLE, default=rollgateRelease"`
	ReleaseHeader   string `env:"ROLLGATE_RELEASE_HEADER, default=X-Rollgate-Release"`
}

// stageVariableName is what API Gateway accepts as a stage variable name.
var stageVariableName = regexp.MustCompile(`^[A-Za-z0-9_]{1,64}$`)

// headerName is an HTTP token, as RFC 9110 defines field names.
var headerName = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$")

// loadConfig reads the configuration and refuses anything the authorizer could not run with,
// naming the variable.
func loadConfig(ctx context.Context, lookup envconfig.Lookuper) (Config, error) {
	var c Config
	if err := envconfig.ProcessWith(ctx, &envconfig.Config{Target: &c, Lookuper: lookup}); err != nil {
		return Config{}, fmt.Errorf("configuration: %w", envname.Named(err, reflect.TypeFor[Config]()))
	}
	if err := c.validate(); err != nil {
		return Config{}, fmt.Errorf("configuration: %w", err)
	}
	c.ReleaseHeader = http.CanonicalHeaderKey(c.ReleaseHeader)
	return c, nil
}

func (c Config) validate() error {
	if u, err := url.Parse(c.Issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("ROLLGATE_ISSUER %q: want an http(s) URL", c.Issuer)
	}
	if c.JWKSURL != "" {
		if u, err := url.Parse(c.JWKSURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("ROLLGATE_JWKS_URL %q: want an http(s) URL", c.JWKSURL)
		}
	}
	if len(c.Audiences) == 0 {
		return fmt.Errorf("ROLLGATE_AUDIENCES: empty; name at least one audience")
	}
	for _, a := range c.Audiences {
		if strings.TrimSpace(a) == "" {
			return fmt.Errorf("ROLLGATE_AUDIENCES: an empty audience in %q", strings.Join(c.Audiences, ","))
		}
	}
	checks := []struct {
		name     string
		d        time.Duration
		min, max time.Duration
	}{
		{"ROLLGATE_JWKS_CACHE_TTL", c.JWKSCacheTTL, time.Second, 24 * time.Hour},
		{"ROLLGATE_JWKS_UNKNOWN_KID_REFRESH", c.JWKSUnknownKIDRefresh, 10 * time.Millisecond, time.Hour},
		{"ROLLGATE_LEEWAY", c.Leeway, 0, 5 * time.Minute},
		{"ROLLGATE_DENYLIST_REFRESH", c.DenyListRefresh, 10 * time.Millisecond, 5 * time.Minute},
		{"ROLLGATE_DENYLIST_MAX_STALENESS", c.MaxStaleness, c.DenyListRefresh, 24 * time.Hour},
		{"ROLLGATE_VERIFIED_CACHE_TTL", c.VerifiedCacheTTL, time.Second, time.Hour},
	}
	for _, ch := range checks {
		if ch.d < ch.min || ch.d > ch.max {
			return fmt.Errorf("%s %s: allowed %s to %s", ch.name, ch.d, ch.min, ch.max)
		}
	}
	if c.VerifiedCacheSize < 0 || c.VerifiedCacheSize > tokens.MaxVerifiedCache {
		return fmt.Errorf("ROLLGATE_VERIFIED_CACHE_SIZE %d: allowed 0 (off) to %d", c.VerifiedCacheSize, tokens.MaxVerifiedCache)
	}
	if c.RevokedUsesPerSecond < 0 || c.RevokedUsesPerSecond > 100 {
		return fmt.Errorf("ROLLGATE_REVOKED_USES_PER_SECOND %g: allowed 0 (off) to 100", c.RevokedUsesPerSecond)
	}
	if c.RevocationsTable == "" {
		return fmt.Errorf("ROLLGATE_REVOCATIONS_TABLE: empty")
	}
	if !stageVariableName.MatchString(c.ReleaseVariable) {
		return fmt.Errorf("ROLLGATE_RELEASE_VARIABLE %q: a stage variable name is letters, digits and _", c.ReleaseVariable)
	}
	if !headerName.MatchString(c.ReleaseHeader) {
		return fmt.Errorf("ROLLGATE_RELEASE_HEADER %q: not an HTTP header name", c.ReleaseHeader)
	}
	return nil
}
