package tokens

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/MicahParks/jwkset"
	json "github.com/goccy/go-json" // a faster drop-in for encoding/json on the hot path
	"github.com/golang-jwt/jwt/v5"
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

// Rejection is the error Verify returns for a token it refuses.
type Rejection struct {
	Reason Reason
	KID    string // the token's kid header, when it could be read
	Err    error
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
	observe     func(kid string, reason Reason)
}

// VerifierOptions configure a Verifier.
type VerifierOptions struct {
	Keys       KeySet
	Issuer     string
	Audiences  []string // a token must name at least one
	Algorithms []string // allowed JWS algorithms; never "none" or HMAC
	Leeway     time.Duration
	Revoked    RevocationChecker // optional
	Now        func() time.Time  // optional
	// Observe is told the outcome of every verification ("" reason for accepted), for metrics.
	Observe func(kid string, reason Reason)
}

// NewVerifier validates the options and builds a verifier.
func NewVerifier(o VerifierOptions) (*Verifier, error) {
	if o.Keys == nil || o.Issuer == "" || len(o.Audiences) == 0 || len(o.Algorithms) == 0 {
		return nil, errors.New("verifier needs keys, an issuer, audiences and algorithms")
	}
	if o.Leeway < 0 || o.Leeway > 5*time.Minute {
		return nil, fmt.Errorf("verifier leeway %s: allowed 0 to 5m", o.Leeway)
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
	opts := []jwt.ParserOption{
		jwt.WithIssuer(o.Issuer), jwt.WithAudience(o.Audiences...), jwt.WithExpirationRequired(),
		jwt.WithNotBeforeRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(o.Leeway),
	}
	if o.Now != nil {
		opts = append(opts, jwt.WithTimeFunc(o.Now))
	}
	return &Verifier{keys: o.Keys, revocations: o.Revoked, allowed: allowed, claims: jwt.NewValidator(opts...), observe: o.Observe}, nil
}

// Verify returns the claims of a valid token, or a *Rejection with one reason.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	claims, kid, reason, err := v.verify(ctx, raw)
	if v.observe != nil {
		v.observe(kid, reason)
	}
	if err != nil {
		return nil, &Rejection{Reason: reason, KID: kid, Err: err}
	}
	return claims, nil
}

// strict refuses base64 with non-zero trailing bits, so a token has exactly one encoding.
var strict = base64.RawURLEncoding.Strict()

// header is the part of a JWS header the verifier reads; decoding into a struct, not a map, keeps
// the verify path close to the raw signature check in cost.
type header struct {
	Alg  string   `json:"alg"`
	Kid  string   `json:"kid"`
	Typ  string   `json:"typ"`
	Crit []string `json:"crit"`
}

// verify checks, in order: shape, header (alg allowed, typ, kid), key (known kid of the right
// family), signature, claims (iss, aud, exp, nbf, iat), revocation. golang-jwt verifies the
// signature and validates the claims.
func (v *Verifier) verify(ctx context.Context, raw string) (*Claims, string, Reason, error) {
	h64, rest, ok := strings.Cut(raw, ".")
	p64, s64, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 || strings.Contains(s64, ".") {
		return nil, "", Malformed, errors.New("not three dot-separated segments")
	}
	var hdr header
	if b, err := strict.DecodeString(h64); err != nil || json.Unmarshal(b, &hdr) != nil {
		return nil, "", Malformed, errors.New("header is not base64url JSON")
	}
	kid := hdr.Kid
	if !v.allowed[hdr.Alg] {
		return nil, kid, AlgNotAllowed, fmt.Errorf("algorithm %q is not allowed", hdr.Alg)
	}
	if len(hdr.Crit) > 0 {
		return nil, kid, Malformed, fmt.Errorf("critical header parameters %v are not understood", hdr.Crit)
	}
	if !strings.EqualFold(hdr.Typ, TokenType) && !strings.EqualFold(hdr.Typ, "application/"+TokenType) {
		return nil, kid, Malformed, fmt.Errorf("typ %q is not %s", hdr.Typ, TokenType)
	}
	if kid == "" {
		return nil, kid, UnknownKID, errors.New("no kid header")
	}
	jwk, err := v.keys.Storage().KeyRead(ctx, kid)
	if err != nil {
		return nil, kid, UnknownKID, err
	}
	if a := jwk.Marshal().ALG.String(); a != "" && a != hdr.Alg {
		return nil, kid, AlgNotAllowed, fmt.Errorf("kid %s is published for %s, not %s", kid, a, hdr.Alg)
	}
	key := jwk.Key()
	if pk, ok := key.(interface{ Public() crypto.PublicKey }); ok {
		key = pk.Public()
	}
	if !keyFitsAlg(key, hdr.Alg) {
		return nil, kid, AlgNotAllowed, fmt.Errorf("kid %s holds a %T, which cannot verify %s", kid, key, hdr.Alg)
	}
	sig, err := strict.DecodeString(s64)
	if err != nil {
		return nil, kid, Malformed, errors.New("signature is not base64url")
	}
	if err := jwt.GetSigningMethod(hdr.Alg).Verify(raw[:len(h64)+1+len(p64)], sig, key); err != nil {
		return nil, kid, BadSignature, err
	}
	claims := &Claims{}
	if b, err := strict.DecodeString(p64); err != nil || json.Unmarshal(b, claims) != nil {
		return nil, kid, Malformed, errors.New("claims are not base64url JSON")
	}
	if err := v.claims.Validate(claims); err != nil {
		return nil, kid, reasonFor(err), err
	}
	if v.revocations != nil && v.revocations.Revoked(claims, kid) {
		return nil, kid, Revoked, errors.New("revoked")
	}
	return claims, kid, "", nil
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
