package tokens

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/MicahParks/jwkset"
	json "github.com/goccy/go-json" // a faster drop-in for encoding/json on the hot path
	"github.com/golang-jwt/jwt/v5"
	"github.com/hashicorp/golang-lru/v2/expirable"
)

// Reason is why a token was rejected. The values are the labels of the rejection metrics.
type Reason string

const (
	Expired       Reason = "expired"
	NotYetValid   Reason = "not_yet_valid"
	BadSignature  Reason = "bad_signature"
	UnknownKID    Reason = "unknown_kid"
	BadIssuer     Reason = "bad_issuer"
	BadAudience   Reason = "bad_audience"
	Revoked       Reason = "revoked"
	Malformed     Reason = "malformed"
	AlgNotAllowed Reason = "alg_not_allowed"
)

// The reasons an authorizer adds to Verify's: a token it could not check, or a request it could
// not read.
const (
	JWKSUnavailable Reason = "jwks_unavailable" // no key set yet (its JWKS fetch failing)
	DenyListStale   Reason = "denylist_stale"   // the deny list too old to trust, failing closed
	BadEvent        Reason = "bad_event"        // an event or request the authorizer cannot read
)

// Accepted is the reason label of an accepted token's decision: no reason.
const Accepted Reason = "none"

// Reasons are every reason a rejection is labelled with, Verify's and an authorizer's.
var Reasons = []Reason{Expired, NotYetValid, BadSignature, UnknownKID, BadIssuer, BadAudience, Revoked, Malformed, AlgNotAllowed,
	JWKSUnavailable, DenyListStale, BadEvent}

// Rejection is the error Verify returns for a token it refuses.
type Rejection struct {
	Reason Reason
	KID    string // the token's kid header, when it could be read; attacker-chosen, never a label
	// KIDLabel is KID bounded for a metric label: a kid of the key set, UnknownKIDLabel, or "".
	KIDLabel string
	Err      error
}

func (r *Rejection) Error() string {
	if r.Err != nil {
		return fmt.Sprintf("token rejected (%s): %v", r.Reason, r.Err)
	}
	return "token rejected (" + string(r.Reason) + ")"
}

func (r *Rejection) Unwrap() error { return r.Err }

// ReasonOf returns the rejection reason of an error from Verify, or "" for none.
func ReasonOf(err error) Reason {
	var r *Rejection
	if errors.As(err, &r) {
		return r.Reason
	}
	return ""
}

// KeySet holds the verification keys by kid. keyfunc.Keyfunc (a cached JWKS client that refetches
// on an unknown kid) is one; so is StaticKeySet.
type KeySet interface {
	Storage() jwkset.Storage
}

// RevocationChecker tells whether a verified token has been revoked: its jti on the deny list,
// or issued before a not-before rule of its subject, kid or issuer. It must answer from memory;
// Verify calls it on every token.
type RevocationChecker interface {
	Revoked(c *Claims, kid string) bool
}

// Verifier checks rollgate access tokens: allow-listed algorithms, kid in the key set and of the
// right key type, typ at+jwt, issuer, audience, exp and nbf required, a small leeway, then the
// revocation rules.
type Verifier struct {
	keys        KeySet
	revocations RevocationChecker
	allowed     map[string]bool
	claims      *jwt.Validator
	maxLifetime time.Duration
	observe     func(kid string, reason Reason)
	verified    *expirable.LRU[[sha256.Size]byte, verifiedToken] // nil: off
}

// verifiedToken is a token whose signature verified: what a later use of the same bytes needs
// to check everything but the signature again.
type verifiedToken struct {
	claims Claims
	kid    string
	alg    string
	key    crypto.PublicKey
}

// VerifierOptions configure a Verifier.
type VerifierOptions struct {
	Keys       KeySet
	Issuer     string
	Audiences  []string // a token must name at least one
	Algorithms []string // allowed JWS algorithms; never "none" or HMAC
	Leeway     time.Duration
	// MaxLifetime is the longest exp - iat a token may have; default DefaultMaxLifetime, allowed
	// 1m to 8760h. A token without iat is refused, since its lifetime cannot be known.
	MaxLifetime time.Duration
	Revoked     RevocationChecker // optional
	Now         func() time.Time  // optional
	// Observe is told the outcome of every verification ("" reason for accepted), for metrics.
	// Its kid is safe as a label value: a kid of the key set, UnknownKIDLabel for any other kid,
	// or "" when the token names none.
	Observe func(kid string, reason Reason)
	// VerifiedCache, above 0, remembers up to that many accepted tokens (by the SHA-256 of their
	// bytes) for VerifiedCacheTTL, so that presenting the same token again skips the signature
	// check, the one costly step. Nothing else is skipped: each use checks again that the kid is
	// in the key set with the same key, the claims at the current time (exp, nbf, iat, iss,
	// aud) and revocation. Only accepted tokens are remembered, so refused ones cannot fill it.
	VerifiedCache int
	// VerifiedCacheTTL bounds how long a verified signature is remembered; default 1m, at most 1h.
	VerifiedCacheTTL time.Duration
}

// MaxVerifiedCache bounds VerifiedCache: a remembered token costs about a kilobyte.
const MaxVerifiedCache = 1_000_000

// DefaultMaxLifetime is the verifier's default longest token lifetime: the longest token TTL a
// deploy spec may ask for (auth.tokenTtl), so every token rollgate mints is accepted.
const DefaultMaxLifetime = 24 * time.Hour

// UnknownKIDLabel stands for every kid that is not in the key set, so forged kids cannot make
// metric series without bound.
const UnknownKIDLabel = "unknown"

// NewVerifier validates the options and builds a verifier.
func NewVerifier(o VerifierOptions) (*Verifier, error) {
	if o.Keys == nil || o.Issuer == "" || len(o.Audiences) == 0 || len(o.Algorithms) == 0 {
		return nil, errors.New("verifier needs keys, an issuer, audiences and algorithms")
	}
	if o.Leeway < 0 || o.Leeway > 5*time.Minute {
		return nil, fmt.Errorf("verifier leeway %s: allowed 0 to 5m", o.Leeway)
	}
	if o.MaxLifetime == 0 {
		o.MaxLifetime = DefaultMaxLifetime
	}
	if o.MaxLifetime < time.Minute || o.MaxLifetime > 8760*time.Hour {
		return nil, fmt.Errorf("verifier max lifetime %s: allowed 1m to 8760h", o.MaxLifetime)
	}
	allowed := map[string]bool{}
	for _, a := range o.Algorithms {
		switch a {
		case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA":
			allowed[a] = true
		default:
			return nil, fmt.Errorf("verifier algorithm %q is not allowed (never none or HMAC)", a)
		}
	}
	if o.VerifiedCache < 0 || o.VerifiedCache > MaxVerifiedCache {
		return nil, fmt.Errorf("verified-token cache size %d: allowed 0 to %d", o.VerifiedCache, MaxVerifiedCache)
	}
	if o.VerifiedCacheTTL == 0 {
		o.VerifiedCacheTTL = time.Minute
	}
	if o.VerifiedCacheTTL < 0 || o.VerifiedCacheTTL > time.Hour {
		return nil, fmt.Errorf("verified-token cache TTL %s: allowed 0 to 1h", o.VerifiedCacheTTL)
	}
	opts := []jwt.ParserOption{
		jwt.WithIssuer(o.Issuer), jwt.WithAudience(o.Audiences...), jwt.WithExpirationRequired(),
		jwt.WithNotBeforeRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(o.Leeway),
	}
	if o.Now != nil {
		opts = append(opts, jwt.WithTimeFunc(o.Now))
	}
	v := &Verifier{keys: o.Keys, revocations: o.Revoked, allowed: allowed, claims: jwt.NewValidator(opts...),
		maxLifetime: o.MaxLifetime, observe: o.Observe}
	if o.VerifiedCache > 0 {
		v.verified = expirable.NewLRU[[sha256.Size]byte, verifiedToken](o.VerifiedCache, nil, o.VerifiedCacheTTL)
	}
	return v, nil
}

// Verify returns the claims of a valid token, or a *Rejection with one reason.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	claims, kid, reason, err := v.verify(ctx, raw)
	if v.observe != nil {
		v.observe(kid.label(), reason)
	}
	if err != nil {
		return nil, &Rejection{Reason: reason, KID: kid.name, KIDLabel: kid.label(), Err: err}
	}
	claims.KID = kid.name
	return claims, nil
}

// tokenKID is a token's kid header and whether the verifier found it in the key set; once the
// key is found, the algorithm and key the signature is checked with.
type tokenKID struct {
	name     string
	inKeySet bool
	alg      string
	key      crypto.PublicKey
}

// label bounds the metric label of a kid: the token chooses it, so it becomes a label only once
// found in the key set; a rejection before the lookup counts it as unknown too.
func (k tokenKID) label() string {
	if k.name == "" || k.inKeySet {
		return k.name
	}
	return UnknownKIDLabel
}

// strict refuses base64 with non-zero trailing bits, so a token has exactly one encoding.
var strict = base64.RawURLEncoding.Strict()

// header is the part of a JWS header the verifier reads; decoding into a struct, not a map, keeps
// the verify path close to the raw signature check in cost.
type header struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Typ string `json:"typ"`
}

// verify checks, in order: shape and strict encoding of header and claims, header (alg allowed,
// typ, kid), key (known kid of the right family, acceptable), signature, claims (lifetime, iss,
// aud, exp, nbf, iat), revocation. golang-jwt verifies the signature and validates the claims.
func (v *Verifier) verify(ctx context.Context, raw string) (*Claims, tokenKID, Reason, error) {
	var sum [sha256.Size]byte
	if v.verified != nil {
		sum = sha256.Sum256([]byte(raw))
		if t, ok := v.verified.Get(sum); ok {
			if c, kid, reason, same, err := v.reverify(ctx, t); same {
				return c, kid, reason, err
			}
			v.verified.Remove(sum) // the kid now names another key: verify from scratch
		}
	}
	c, kid, reason, err := v.verifyFully(ctx, raw)
	if err == nil && v.verified != nil {
		v.verified.Add(sum, verifiedToken{claims: *c, kid: kid.name, alg: kid.alg, key: kid.key})
	}
	return c, kid, reason, err
}

// reverify checks a remembered token again, all but its signature; same is false when its kid
// now names another key, whose signature check the remembered one does not stand for.
func (v *Verifier) reverify(ctx context.Context, t verifiedToken) (*Claims, tokenKID, Reason, bool, error) {
	kid := tokenKID{name: t.kid}
	key, reason, err := v.key(ctx, &kid, t.alg)
	if err != nil {
		return nil, kid, reason, true, err
	}
	if k, ok := key.(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(t.key) {
		return nil, kid, "", false, nil
	}
	kid.alg, kid.key = t.alg, key
	claims := t.claims
	if err := v.claims.Validate(&claims); err != nil {
		return nil, kid, reasonFor(err), true, err
	}
	if v.revocations != nil && v.revocations.Revoked(&claims, kid.name) {
		return nil, kid, Revoked, true, errors.New("revoked")
	}
	return &claims, kid, "", true, nil
}

// verifyFully is every check, the signature included.
func (v *Verifier) verifyFully(ctx context.Context, raw string) (*Claims, tokenKID, Reason, error) {
	tok, err := parseJWS(raw)
	kid := tokenKID{name: tok.hdr.Kid}
	if err != nil {
		return nil, kid, Malformed, err
	}
	if !v.allowed[tok.hdr.Alg] {
		return nil, kid, AlgNotAllowed, fmt.Errorf("algorithm %s is not allowed", quoteShort(tok.hdr.Alg))
	}
	if typ := tok.hdr.Typ; !strings.EqualFold(typ, TokenType) && !strings.EqualFold(typ, "application/"+TokenType) {
		return nil, kid, Malformed, fmt.Errorf("typ %s is not %s", quoteShort(typ), TokenType)
	}
	key, reason, err := v.key(ctx, &kid, tok.hdr.Alg)
	if err != nil {
		return nil, kid, reason, err
	}
	kid.alg, kid.key = tok.hdr.Alg, key
	if err := canonicalSignature(key, tok.sig); err != nil {
		return nil, kid, Malformed, err
	}
	if err := jwt.GetSigningMethod(tok.hdr.Alg).Verify(tok.input, tok.sig, key); err != nil {
		return nil, kid, BadSignature, err
	}
	claims := &Claims{}
	if err := json.Unmarshal(tok.claims, claims); err != nil {
		return nil, kid, Malformed, errors.New("claims are not a JWT claims set")
	}
	if err := v.checkLifetime(claims); err != nil {
		return nil, kid, Malformed, err
	}
	if err := v.claims.Validate(claims); err != nil {
		return nil, kid, reasonFor(err), err
	}
	if v.revocations != nil && v.revocations.Revoked(claims, kid.name) {
		return nil, kid, Revoked, errors.New("revoked")
	}
	return claims, kid, "", nil
}

// jws is a compact JWS after the strict pre-parse: every error is malformed.
type jws struct {
	hdr    header // as far as it was read
	claims []byte // checked JSON, decoded once the signature holds
	input  string // the signing input, header.claims as received
	sig    []byte
}

func parseJWS(raw string) (jws, error) {
	var t jws
	h64, rest, ok := strings.Cut(raw, ".")
	p64, s64, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 || strings.Contains(s64, ".") {
		return t, errors.New("not three dot-separated segments")
	}
	hb, ok := decodeSegment(h64)
	if !ok {
		return t, errors.New("header is not base64url")
	}
	if err := checkHeader(hb); err != nil {
		return t, fmt.Errorf("header: %w", err)
	}
	if err := json.Unmarshal(hb, &t.hdr); err != nil {
		return jws{}, errors.New("header is not a JWS header")
	}
	if t.claims, ok = decodeSegment(p64); !ok {
		return t, errors.New("claims are not base64url")
	}
	if err := checkClaims(t.claims); err != nil {
		return t, fmt.Errorf("claims: %w", err)
	}
	if t.sig, ok = decodeSegment(s64); !ok {
		return t, errors.New("signature is not base64url")
	}
	t.input = raw[:len(h64)+1+len(p64)]
	return t, nil
}

// key finds the token's kid in the key set and checks that the key may verify alg.
// It marks the kid as found in the key set once it is.
func (v *Verifier) key(ctx context.Context, t *tokenKID, alg string) (crypto.PublicKey, Reason, error) {
	kid := t.name
	if kid == "" {
		return nil, UnknownKID, errors.New("no kid header")
	}
	jwk, err := v.keys.Storage().KeyRead(ctx, kid)
	if err != nil {
		return nil, UnknownKID, errors.New("kid is not in the key set") // the store's error repeats the kid
	}
	t.inKeySet = true
	meta := jwk.Marshal()
	if a := meta.ALG.String(); a != "" && a != alg {
		return nil, AlgNotAllowed, fmt.Errorf("kid %s is published for %s, not %s", kid, a, alg)
	}
	key := jwk.Key()
	if pk, ok := key.(interface{ Public() crypto.PublicKey }); ok {
		key = pk.Public()
	}
	if err := acceptableKey(meta, key); err != nil {
		return nil, UnknownKID, fmt.Errorf("kid %s is refused: %w", kid, err)
	}
	if !keyFitsAlg(key, alg) {
		return nil, AlgNotAllowed, fmt.Errorf("kid %s holds a %T, which cannot verify %s", kid, key, alg)
	}
	return key, "", nil
}

// checkLifetime refuses a token that lives longer than the verifier allows, or whose lifetime
// cannot be known.
func (v *Verifier) checkLifetime(c *Claims) error {
	if c.IssuedAt == nil || c.ExpiresAt == nil {
		return errors.New("iat and exp are required")
	}
	if life := c.ExpiresAt.Sub(c.IssuedAt.Time); life > v.maxLifetime {
		return fmt.Errorf("lifetime %s (exp - iat) exceeds the maximum %s", life, v.maxLifetime)
	}
	return nil
}

// reasonFor maps golang-jwt's errors to a reason; the keyfunc sets the reasons it decides.
func reasonFor(err error) Reason {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed), errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return Malformed
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return BadSignature
	case errors.Is(err, jwt.ErrTokenExpired):
		return Expired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return NotYetValid
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return BadIssuer
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return BadAudience
	case errors.Is(err, jwt.ErrTokenUnverifiable): // an alg golang-jwt does not know
		return AlgNotAllowed
	}
	return Malformed
}

// keyFitsAlg refuses a key of another family than the algorithm (an RSA kid used with ES256,
// or any key with HMAC), whatever the JWKS's alg field says.
func keyFitsAlg(key any, alg string) bool {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		return alg == "ES256" && k.Curve == elliptic.P256() || alg == "ES384" && k.Curve == elliptic.P384()
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}
