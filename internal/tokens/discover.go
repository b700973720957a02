package tokens

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// DiscoveryURL is where an issuer publishes its OpenID discovery document.
func DiscoveryURL(issuer string) string {
	return strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
}

// DiscoveredIssuer is what a verifier needs from an issuer's discovery document.
type DiscoveredIssuer struct {
	Issuer  string `json:"issuer"`
	JWKSURI string `json:"jwks_uri"`
}

// Discover reads the issuer's OpenID discovery document (at most 1 MiB). The caller decides what
// it requires of the answer (the same issuer, an https jwks_uri).
func Discover(ctx context.Context, hc *http.Client, issuer string) (DiscoveredIssuer, error) {
	where := DiscoveryURL(issuer)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, where, nil)
	if err != nil {
		return DiscoveredIssuer{}, fmt.Errorf("discovery %s: %w", where, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return DiscoveredIssuer{}, fmt.Errorf("discovery %s: %w", where, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return DiscoveredIssuer{}, fmt.Errorf("discovery %s: HTTP %d", where, resp.StatusCode)
	}
	var doc DiscoveredIssuer
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&doc); err != nil {
		return DiscoveredIssuer{}, fmt.Errorf("discovery %s: %w", where, err)
	}
	return doc, nil
}
