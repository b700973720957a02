package activities

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/rollgate/rollgate/internal/keys"
	"github.com/rollgate/rollgate/internal/registry"
	"github.com/rollgate/rollgate/internal/spec"
	"github.com/rollgate/rollgate/internal/tokens"
)

// The token monitor's doors to the registry: bounded reads it judges every interval, and the
// one write it makes on its own, a renewal ahead of expiry.

// MaxMonitorReads bounds what one judgement reads: revoked uses, or expiring tokens.
const MaxMonitorReads = 500

// RevokedUsesInput asks for the uses of an issuer's revoked tokens last seen at or after Since.
type RevokedUsesInput struct {
	IssuerURL string
	Since     time.Time
	Limit     int // default and at most MaxMonitorReads
}

// RevokedUsesReport is those uses grouped by subject; Truncated says more uses were left unread.
type RevokedUsesReport struct {
	Subjects  []registry.SubjectUses
	Truncated bool
}

// RevokedUsesBySubject reads the uses of the issuer's revoked tokens since a time, by subject.
func (a *Tokens) RevokedUsesBySubject(ctx context.Context, in RevokedUsesInput) (RevokedUsesReport, error) {
	uses, truncated, err := a.Registry.RevokedUses(ctx, in.Since, readLimit(in.Limit))
	if err != nil {
		return RevokedUsesReport{}, err
	}
	return RevokedUsesReport{Subjects: registry.GroupUsesBySubject(uses, in.IssuerURL), Truncated: truncated}, nil
}

// ExpiringInput asks for the clients whose token of the key expires soon without a successor.
// A token is expiring once what is left of it is at most Window or, without a Window, Fraction of
// its lifetime.
type ExpiringInput struct {
	Key      string // the transit key: its versions' kids start with it
	Now      time.Time
	Window   time.Duration
	Fraction float64
	Limit    int // default and at most MaxMonitorReads
}

// ExpiringToken is a client's token nearing expiry with no newer active token to renew to.
type ExpiringToken struct {
	Client    string
	Subject   string
	JTI       string
	KID       string
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// ExpiringReport lists one expiring token per client, ordered by client.
type ExpiringReport struct {
	Tokens    []ExpiringToken
	Truncated bool
}

// MaxMonitoredVersions is how many of the key's newest versions the expiry signal reads tokens of:
// older versions are retired, their tokens expired.
const MaxMonitoredVersions = 10

// ExpiringWithoutSuccessor finds, per client, the soonest-expiring active token of the key that
// is within its expiry window and that no other active token of the client and key outlives.
func (a *Tokens) ExpiringWithoutSuccessor(ctx context.Context, in ExpiringInput) (ExpiringReport, error) {
	kids, err := a.monitoredKIDs(ctx, in.Key)
	if err != nil {
		return ExpiringReport{}, err
	}
	recs, truncated, err := a.Registry.ExpiringActive(ctx, kids, in.Now.Add(-a.longestLifetime()), in.Now, in.Now.Add(a.expiryHorizon(in)), readLimit(in.Limit))
	if err != nil {
		return ExpiringReport{}, err
	}
	by := map[string]ExpiringToken{}
	for _, rec := range recs {
		window := in.Window
		if window == 0 {
			window = time.Duration(in.Fraction * float64(rec.ExpiresAt.Sub(rec.IssuedAt)))
		}
		client := rec.ClientID
		if client == "" {
			client = rec.Subject
		}
		if rec.ExpiresAt.Sub(in.Now) > window {
			continue
		}
		if cur, ok := by[client]; ok && !rec.ExpiresAt.Before(cur.ExpiresAt) {
			continue
		}
		if _, renewed, err := a.Registry.Successor(ctx, rec, in.Key+"-v"); err != nil || renewed {
			if err != nil {
				return ExpiringReport{}, err
			}
			continue
		}
		by[client] = ExpiringToken{Client: client, Subject: rec.Subject, JTI: rec.JTI, KID: rec.KID, IssuedAt: rec.IssuedAt, ExpiresAt: rec.ExpiresAt}
	}
	out := ExpiringReport{Truncated: truncated}
	for _, t := range by {
		out.Tokens = append(out.Tokens, t)
	}
	slices.SortFunc(out.Tokens, func(x, y ExpiringToken) int { return cmp.Compare(x.Client, y.Client) })
	return out, nil
}

// monitoredKIDs are the kids of the key's newest MaxMonitoredVersions versions.
func (a *Tokens) monitoredKIDs(ctx context.Context, key string) ([]string, error) {
	k, err := a.Transit.ReadKey(ctx, key)
	if err != nil {
		return nil, classify(err)
	}
	versions := k.Versions()
	versions = versions[max(0, len(versions)-MaxMonitoredVersions):]
	kids := make([]string, len(versions))
	for i, v := range versions {
		kids[i] = keys.KID(key, v)
	}
	return kids, nil
}

// longestLifetime is the longest lifetime a token can have: the verifiers' maximum, or the spec's.
func (a *Tokens) longestLifetime() time.Duration {
	if a.MaxLifetime > 0 {
		return a.MaxLifetime
	}
	return spec.MaxTokenTTL
}

// expiryHorizon is how far ahead the scan looks: the fixed window, or the fraction of the longest
// lifetime a token can have.
func (a *Tokens) expiryHorizon(in ExpiringInput) time.Duration {
	if in.Window > 0 {
		return in.Window
	}
	return time.Duration(in.Fraction * float64(a.longestLifetime()))
}

func readLimit(n int) int {
	if n <= 0 || n > MaxMonitorReads {
		return MaxMonitorReads
	}
	return n
}

// RenewInput asks for a client's expiring token to be replaced ahead of its expiry by a token of
// the same key version and lifetime.
type RenewInput struct {
	Issuer Issuer
	Token  ExpiringToken
	Reason string
}

// RenewToken mints, records and delivers (Vault KV) a successor of the expiring token and marks
// the old one superseded. A client already delivered another token that lives at least as long
// as the expiring one is left alone, so a retry renews nothing twice. ReissueTokens cannot do
// this: it skips a client that already holds a token of the version, the very client to renew.
func (a *Tokens) RenewToken(ctx context.Context, in RenewInput) (Issued, error) {
	t := in.Token
	cur, err := a.Delivery.Current(ctx, t.Client)
	if err != nil {
		return Issued{}, err
	}
	if cur.JTI != "" && cur.JTI != t.JTI && !cur.ExpiresAt.Before(t.ExpiresAt) {
		return Issued{Client: t.Client, JTI: cur.JTI, KID: cur.KID}, nil
	}
	key, version, err := keys.ParseKID(t.KID)
	if err != nil || key != in.Issuer.Key.Name {
		return Issued{}, classify(fmt.Errorf("renew %s: kid %q is not a version of %s: %w", t.JTI, t.KID, in.Issuer.Key.Name, keys.ErrInvalid))
	}
	return a.renew(ctx, in.Issuer, version, t, in.Reason)
}

// renew mints a successor of t with the version and t's lifetime, records and delivers it, and
// marks t superseded.
func (a *Tokens) renew(ctx context.Context, issuer Issuer, version int, t ExpiringToken, reason string) (Issued, error) {
	m := &tokens.Minter{Transit: a.Transit, Key: issuer.Key.Name, Type: issuer.Key.Type, Alg: issuer.Algorithm, Issuer: issuer.URL, MaxLifetime: a.MaxLifetime}
	minted, err := m.Mint(ctx, version, tokens.MintRequest{Subject: t.Subject, ClientID: t.Client, Audience: issuer.Audiences, TTL: t.ExpiresAt.Sub(t.IssuedAt)})
	if err != nil {
		return Issued{}, classify(err)
	}
	if err := a.Registry.RecordIssued(ctx, minted); err != nil {
		return Issued{}, err
	}
	if _, err := a.Delivery.Deliver(ctx, minted[0]); err != nil {
		return Issued{}, err
	}
	if err := a.Registry.Supersede(ctx, t.JTI, minted[0].JTI, reason); err != nil {
		activity.GetLogger(ctx).Warn("renewed token not superseded", "client", t.Client, "jti", t.JTI, "error", err)
	}
	return Issued{Client: t.Client, JTI: minted[0].JTI, KID: minted[0].KID}, nil
}

// ExpiredUsesReport is the uses of an issuer's expired tokens since a time, by client.
type ExpiredUsesReport struct {
	Clients   []registry.ClientUses
	Truncated bool
}

// ExpiredUsesByClient reads the uses of the issuer's expired tokens since a time, by client.
func (a *Tokens) ExpiredUsesByClient(ctx context.Context, in RevokedUsesInput) (ExpiredUsesReport, error) {
	uses, truncated, err := a.Registry.Uses(ctx, registry.UseExpired, in.Since, readLimit(in.Limit))
	if err != nil {
		return ExpiredUsesReport{}, err
	}
	return ExpiredUsesReport{Clients: registry.GroupUsesByClient(uses, in.IssuerURL), Truncated: truncated}, nil
}

// RenewPresentedInput asks for a client that keeps presenting an expired token to get a new one,
// of the key's current version.
type RenewPresentedInput struct {
	Issuer  Issuer
	Client  string
	JTI     string // the expired token presented
	Version int    // the key's current version
	Reason  string
	// Since is when the incident opened: a successor of the token issued since then and held by
	// the client is this renewal's own, found again by a retry; zero in histories from before.
	Since time.Time `json:",omitzero"`
}

// RenewedPresented is what RenewPresented did: a new token, or, when the client already holds a
// valid token it does not present, that token (Held).
type RenewedPresented struct {
	Issued
	Held bool
}

// RenewPresented gives a client that presents an expired token a new one of the key's current
// version and the old one's lifetime, delivered to its Vault KV path. A client already delivered
// a valid token other than the expired one gets nothing new (it does not fetch its tokens: a new
// one would not help), so a retry renews nothing twice.
func (a *Tokens) RenewPresented(ctx context.Context, in RenewPresentedInput) (RenewedPresented, error) {
	rec, err := a.Registry.Get(ctx, in.JTI)
	if err != nil {
		return RenewedPresented{}, classify(err)
	}
	if rec.ClientID != in.Client && rec.Subject != in.Client {
		return RenewedPresented{}, classify(fmt.Errorf("renew %s: the token is not client %s's: %w", in.JTI, in.Client, keys.ErrInvalid))
	}
	// A revoked token presented after its expiry is refused as expired: renewing it would mint a
	// fresh token for a thief's find or for a client an operator cut off.
	if rec.Status == registry.Revoked {
		return RenewedPresented{}, classify(fmt.Errorf("renew %s: the token was revoked, and a revoked token is never renewed: %w", in.JTI, keys.ErrInvalid))
	}
	cur, err := a.Delivery.Current(ctx, in.Client)
	if err != nil {
		return RenewedPresented{}, err
	}
	if cur.JTI != "" && cur.JTI != in.JTI && cur.ExpiresAt.After(time.Now()) {
		held := RenewedPresented{Issued: Issued{Client: in.Client, JTI: cur.JTI, KID: cur.KID}, Held: true}
		held.Held, err = a.heldBefore(ctx, rec, cur.JTI, in.Since)
		return held, err
	}
	t := ExpiringToken{Client: in.Client, Subject: rec.Subject, JTI: rec.JTI, KID: rec.KID, IssuedAt: rec.IssuedAt, ExpiresAt: rec.ExpiresAt}
	issued, err := a.renew(ctx, in.Issuer, in.Version, t, in.Reason)
	return RenewedPresented{Issued: issued}, err
}

// heldBefore tells whether the client's valid token was there before the renewal (it does not
// fetch it) rather than the renewal's own, delivered by an earlier attempt: the token's successor
// issued since the incident opened.
func (a *Tokens) heldBefore(ctx context.Context, rec registry.Record, held string, since time.Time) (bool, error) {
	if since.IsZero() || rec.ReplacedBy != held {
		return true, nil
	}
	succ, err := a.Registry.Get(ctx, held)
	if err != nil {
		return false, classify(err)
	}
	return succ.IssuedAt.Before(since.Truncate(time.Second)), nil // the registry keeps seconds
}

// IssuedInput asks for the tokens of the key's newest versions issued in [Since, Until), by
// client.
type IssuedInput struct {
	Key          string
	Since, Until time.Time
	Limit        int // default and at most MaxMonitorReads
}

// ClientIssued is how many tokens one client was issued.
type ClientIssued struct {
	Client string
	Count  int
}

// IssuedReport is the interval's issuance by client, ordered by client.
type IssuedReport struct {
	Clients   []ClientIssued
	Truncated bool
}

// IssuedByClient counts the tokens of the key's newest MaxMonitoredVersions versions the
// registry records issued in the window, by client (the subject for a token without one).
func (a *Tokens) IssuedByClient(ctx context.Context, in IssuedInput) (IssuedReport, error) {
	kids, err := a.monitoredKIDs(ctx, in.Key)
	if err != nil {
		return IssuedReport{}, err
	}
	recs, truncated, err := a.Registry.IssuedBetween(ctx, kids, in.Since, in.Until, readLimit(in.Limit))
	if err != nil {
		return IssuedReport{}, err
	}
	by := map[string]int{}
	for _, rec := range recs {
		client := rec.ClientID
		if client == "" {
			client = rec.Subject
		}
		by[client]++
	}
	out := IssuedReport{Truncated: truncated}
	for c, n := range by {
		out.Clients = append(out.Clients, ClientIssued{Client: c, Count: n})
	}
	slices.SortFunc(out.Clients, func(x, y ClientIssued) int { return cmp.Compare(x.Client, y.Client) })
	return out, nil
}

// RevokeFamilyInput names tokens whose descendants (the tokens that replaced them, and so on)
// are to be revoked.
type RevokeFamilyInput struct {
	JTIs   []string
	Reason string
}

// FamilyRevoked is what RevokeFamily found and revoked.
type FamilyRevoked struct {
	Revoked []string // descendants revoked now or before, in order
	Clients []string `json:",omitempty"`
}

// RevokeFamily revokes every descendant of the tokens (a stolen token's renewals and reissues:
// whoever holds the original may hold them too). A descendant already revoked is counted and left
// as it is, so a retry revokes nothing twice.
func (a *Tokens) RevokeFamily(ctx context.Context, in RevokeFamilyInput) (FamilyRevoked, error) {
	var out FamilyRevoked
	var todo []string
	for _, jti := range in.JTIs {
		family, err := a.Registry.Family(ctx, jti)
		if err != nil {
			return FamilyRevoked{}, err
		}
		for _, rec := range family {
			if slices.Contains(out.Revoked, rec.JTI) {
				continue
			}
			out.Revoked = append(out.Revoked, rec.JTI)
			if !slices.Contains(out.Clients, rec.ClientID) && rec.ClientID != "" {
				out.Clients = append(out.Clients, rec.ClientID)
			}
			if rec.Status != registry.Revoked {
				todo = append(todo, rec.JTI)
			}
		}
	}
	if len(todo) > 0 {
		if _, err := a.Registry.RevokeJTIs(ctx, todo, in.Reason, 0, nil); err != nil {
			return FamilyRevoked{}, err
		}
	}
	return out, nil
}
