package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/rollgate/rollgate/internal/registry"
	"github.com/rollgate/rollgate/internal/tokens"
)

// Authorizer is the verification core both ways of running share: the verifier of
// internal/tokens over the issuer's JWKS and the deny list of internal/registry, with bounded
// metrics and one log line per rejection.
type Authorizer struct {
	cfg      Config
	keys     *keySet
	verifier *tokens.Verifier
	fresh    *freshness
	releases *releaseLabels
	rec      recorder
	uses     *revokedUses // nil: not recorded
	logger   *slog.Logger
	// inline refreshes the deny list on the request path (Lambda); serve mode runs fresh.run.
	inline bool
}

// deps are what the authorizer talks to; main builds them from the standard AWS chain, tests
// from the test bed.
type deps struct {
	DB     registry.DB
	HTTP   *http.Client
	Logger *slog.Logger
	Rec    recorder
	Inline bool
}

// newAuthorizer builds the core and makes a first attempt at the JWKS and the deny list. A
// failure of either is logged, not returned: the authorizer then refuses every token until it
// recovers, instead of crash-looping. life bounds the JWKS's background refresh.
func newAuthorizer(life context.Context, cfg Config, d deps) (*Authorizer, error) {
	ks := newKeySet(life, cfg, d.HTTP, d.Logger)
	reg := &registry.Registry{DB: d.DB, RevocationsTable: cfg.RevocationsTable, RevokedUsesTable: cfg.RevokedUsesTable}
	deny := registry.NewDenyList(reg)
	v, err := tokens.NewVerifier(tokens.VerifierOptions{
		Keys: ks, Issuer: cfg.Issuer, Audiences: cfg.Audiences, Algorithms: cfg.Algorithms, Leeway: cfg.Leeway, Revoked: deny,
		VerifiedCache: cfg.VerifiedCacheSize, VerifiedCacheTTL: cfg.VerifiedCacheTTL,
	})
	if err != nil { // everything else is checked by loadConfig; what is left is the list of algorithms
		return nil, fmt.Errorf("configuration: ROLLGATE_ALGORITHMS: %w", err)
	}
	a := &Authorizer{cfg: cfg, keys: ks, verifier: v, fresh: newFreshness(deny, cfg, d.Logger), releases: newReleaseLabels(),
		rec: d.Rec, uses: newRevokedUses(reg, cfg, d.Logger), logger: d.Logger, inline: d.Inline}
	if f, ok := d.Rec.(interface{ forgetRelease(string) }); ok {
		a.releases.forget = f.forgetRelease
	}
	ks.ready(life)
	a.fresh.refreshIfDue(life)
	return a, nil
}

// request is what every kind of event boils down to.
type request struct {
	Token    string
	Release  string // raw: a stage variable or a header
	SourceIP string
}

// identity is an accepted token as the backend sees it; never the token itself.
type identity struct {
	Subject, ClientID, KID, JTI, Scope string
}

// check verifies a request's token and counts the outcome. It returns nil for any refusal.
func (a *Authorizer) check(ctx context.Context, r request) *identity {
	release := a.releases.label(r.Release)
	if a.inline {
		a.fresh.refreshIfDue(ctx)
	}
	if !a.keys.ready(ctx) {
		a.reject(r, release, reasonJWKSUnavailable, nil)
		return nil
	}
	token := r.Token
	if len(token) > maxTokenBytes {
		token = "" // refused as malformed without parsing it
	}
	claims, err := a.verifier.Verify(ctx, token)
	if err != nil {
		reason := tokens.ReasonOf(err)
		p := a.reject(r, release, string(reason), rejected(err))
		switch reason {
		case tokens.Revoked:
			a.uses.record(ctx, registry.UseRevoked, p, r.SourceIP)
		case tokens.Expired:
			a.uses.record(ctx, registry.UseExpired, p, r.SourceIP)
		}
		return nil
	}
	if a.fresh.stale(a.cfg.FailOpen) {
		a.rec.stale(a.cfg.FailOpen)
		if !a.cfg.FailOpen {
			a.reject(r, release, reasonDenyListStale, nil)
			return nil
		}
	}
	a.rec.verified(verification{Release: release, KID: claims.KID, Reason: reasonNone})
	return &identity{Subject: claims.Subject, ClientID: claims.ClientID, KID: claims.KID, JTI: claims.ID, Scope: claims.Scope}
}

func rejected(err error) *tokens.Rejection {
	var r *tokens.Rejection
	if errors.As(err, &r) {
		return r
	}
	return nil
}

// reject counts a refusal and logs it once, with what the token claims to be (unverified,
// clipped) and never the token; it returns those claims, read once.
// The verifier bounds the kid's label (a kid of the key set or unknown); a refusal before
// verification (no JWKS yet, a stale deny list) counts it as unknown.
func (a *Authorizer) reject(r request, release, reason string, rej *tokens.Rejection) peeked {
	p := peek(r.Token)
	kid, label := p.KID, labelUnknown
	if rej != nil {
		if rej.KID != "" {
			kid = rej.KID
		}
		if rej.KIDLabel != "" {
			label = rej.KIDLabel
		}
	}
	a.rec.verified(verification{Release: release, KID: label, Reason: reason})
	a.logger.Info("token rejected", "reason", reason, "kid", clip(kid), "jti", clip(p.JTI), "sub", clip(p.Sub),
		"release", release, "source_ip", clip(r.SourceIP))
	return p
}
