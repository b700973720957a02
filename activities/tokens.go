package activities

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/rollgate/rollgate/internal/keys"
	"github.com/rollgate/rollgate/internal/registry"
	"github.com/rollgate/rollgate/internal/tokens"
)

// Tokens publishes verification keys and issues, delivers and revokes tokens.
type Tokens struct {
	Transit  *keys.Transit
	S3       tokens.S3API
	Registry *registry.Registry
	Delivery *registry.Delivery
	HTTP     *http.Client
	// MaxLifetime is the verifiers' maximum token lifetime; no token outliving it is reissued.
	MaxLifetime time.Duration
}

// Issuer describes the token issuer of a release.
type Issuer struct {
	URL       string
	Audiences []string
	Key       KeyRef
	Algorithm string
	Bucket    string
	Prefix    string
	CacheTTL  time.Duration
}

// PublishInput asks for a JWKS holding exactly these versions.
type PublishInput struct {
	Issuer   Issuer
	Versions []int
}

// PublishJWKS builds the JWKS of the versions, publishes it with the discovery document (writing
// only what changed), then fetches it back from the issuer URL and checks every expected kid is
// there. It returns the published kids.
func (a *Tokens) PublishJWKS(ctx context.Context, in PublishInput) ([]string, error) {
	k, err := a.Transit.ReadKey(ctx, in.Issuer.Key.Name)
	if err != nil {
		return nil, classify(err)
	}
	doc, err := tokens.JWKS(ctx, k, in.Issuer.Algorithm, in.Versions)
	if err != nil {
		return nil, classify(err)
	}
	pub := &tokens.Publisher{S3: a.S3, Bucket: in.Issuer.Bucket, Prefix: in.Issuer.Prefix, CacheTTL: in.Issuer.CacheTTL}
	if _, err := pub.Publish(ctx, in.Issuer.URL, in.Issuer.Algorithm, doc); err != nil {
		return nil, err
	}
	kids := make([]string, len(in.Versions))
	for i, v := range in.Versions {
		kids[i] = keys.KID(in.Issuer.Key.Name, v)
	}
	if err := a.checkPublished(ctx, in.Issuer.URL, kids); err != nil {
		return nil, err
	}
	return kids, nil
}

// checkPublished fetches the JWKS the way a verifier would and checks it holds the kids.
func (a *Tokens) checkPublished(ctx context.Context, issuer string, kids []string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, issuer+"/.well-known/jwks.json", nil)
	if err != nil {
		return err
	}
	resp, err := a.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("fetch published JWKS: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetch published JWKS: status %d, %v", resp.StatusCode, err)
	}
	ks, err := tokens.StaticKeySet(body)
	if err != nil {
		return fmt.Errorf("published JWKS does not parse: %w", err)
	}
	for _, kid := range kids {
		if _, err := ks.Storage().KeyRead(ctx, kid); err != nil {
			return fmt.Errorf("published JWKS at %s lacks %s", issuer, kid)
		}
	}
	return nil
}

// ReissueInput asks for a new token for each client, signed by one key version.
type ReissueInput struct {
	Issuer  Issuer
	Version int
	Clients []string
	TTL     time.Duration
	Reason  string
}

// Issued names a token without carrying it.
type Issued struct {
	Client string
	JTI    string
	KID    string
}

// ReissueTokens mints, records and delivers a token per client with the version, and marks each
// client's previous token superseded. A client already holding a token of that kid is skipped,
// so a retry reissues nothing twice.
func (a *Tokens) ReissueTokens(ctx context.Context, in ReissueInput) ([]Issued, error) {
	kid := keys.KID(in.Issuer.Key.Name, in.Version)
	var todo []tokens.MintRequest
	var out []Issued
	previous := map[string]string{}
	for _, c := range in.Clients {
		cur, err := a.Delivery.Current(ctx, c)
		if err != nil {
			return nil, err
		}
		if cur.KID == kid {
			out = append(out, Issued{Client: c, JTI: cur.JTI, KID: kid})
			continue
		}
		previous[c] = cur.JTI
		todo = append(todo, tokens.MintRequest{Subject: c, ClientID: c, Audience: in.Issuer.Audiences, TTL: in.TTL})
	}
	if len(todo) == 0 {
		return out, nil
	}
	m := &tokens.Minter{Transit: a.Transit, Key: in.Issuer.Key.Name, Type: in.Issuer.Key.Type, Alg: in.Issuer.Algorithm,
		Issuer: in.Issuer.URL, MaxLifetime: a.MaxLifetime}
	minted, err := m.Mint(ctx, in.Version, todo...)
	if err != nil {
		return nil, classify(err)
	}
	if err := a.Registry.RecordIssued(ctx, minted); err != nil {
		return nil, err
	}
	for _, t := range minted {
		if _, err := a.Delivery.Deliver(ctx, t); err != nil {
			return nil, err
		}
		if old := previous[t.ClientID]; old != "" {
			if err := a.Registry.Supersede(ctx, old, t.JTI, in.Reason); err != nil {
				activity.GetLogger(ctx).Warn("previous token not superseded", "client", t.ClientID, "jti", old, "error", err)
			}
		}
		out = append(out, Issued{Client: t.ClientID, JTI: t.JTI, KID: t.KID})
	}
	return out, nil
}

// RevokeInput lists tokens to revoke.
type RevokeInput struct {
	JTIs   []string
	Reason string
}

// RevokeTokens revokes the jtis in chunks, heartbeating its progress; after a worker crash it resumes
// from the last heartbeat.
func (a *Tokens) RevokeTokens(ctx context.Context, in RevokeInput) (int, error) {
	start := 0
	if activity.HasHeartbeatDetails(ctx) {
		_ = activity.GetHeartbeatDetails(ctx, &start)
	}
	return a.Registry.RevokeJTIs(ctx, in.JTIs, in.Reason, start, func(done int) { activity.RecordHeartbeat(ctx, done) })
}

// RuleInput is a not-before revocation rule.
type RuleInput struct {
	Scope  registry.Scope
	Value  string
	Before time.Time
	Reason string
}

// RevokeByRule revokes in one write every token of the scope's value issued before the time.
func (a *Tokens) RevokeByRule(ctx context.Context, in RuleInput) error {
	if err := a.Registry.RevokeBefore(ctx, in.Scope, in.Value, in.Before, in.Reason); err != nil {
		return classify(err)
	}
	return nil
}

// LatestActiveExpiry is when the last active token a key version signed expires (zero if none).
func (a *Tokens) LatestActiveExpiry(ctx context.Context, kid string) (time.Time, error) {
	recs, err := a.Registry.ByKID(ctx, kid)
	if err != nil {
		return time.Time{}, err
	}
	var latest time.Time
	for _, r := range recs {
		if r.Status == registry.Active && r.ExpiresAt.After(latest) {
			latest = r.ExpiresAt
		}
	}
	return latest, nil
}
