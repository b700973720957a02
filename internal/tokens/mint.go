// Package tokens is what rollgate knows about access tokens: minting JWTs signed inside Vault,
// the JWKS and OpenID discovery documents that publish the verification keys, and a verifier
// whose every rejection has one typed reason.
package tokens

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/rollgate/rollgate/internal/keys"
)

// TokenType is the JWT typ header of rollgate's access tokens (RFC 9068).
const TokenType = "at+jwt"

// Claims are an access token's claims. client_id names the client a reissued token was delivered
// to; scope is what the issuer granted (RFC 9068). KID is not a claim: Verify sets it to the kid
// of the key that verified the token.
type Claims struct {
	jwt.RegisteredClaims
	ClientID string `json:"client_id,omitempty"`
	Scope    string `json:"scope,omitempty"`
	KID      string `json:"-"`
}

// TransitMethod is a jwt.SigningMethod whose private key stays in Vault: Sign calls
// transit/sign/<key> with the explicit version named by the TransitKey passed as the key. It
// verifies nothing; verification uses the standard methods with the published public keys.
type TransitMethod struct{ Algorithm string }

// TransitKey is the "key" TransitMethod.Sign expects: which Vault key and version signs, and the
// context of the call (jwt's Sign has none of its own).
type TransitKey struct {
	Ctx     context.Context
	Transit *keys.Transit
	Name    string
	Type    keys.Type
	Version int
}

func (m TransitMethod) Alg() string { return m.Algorithm }

func (m TransitMethod) Sign(signingString string, key any) ([]byte, error) {
	k, ok := key.(TransitKey)
	if !ok {
		return nil, fmt.Errorf("transit signing needs a tokens.TransitKey, got %T: %w", key, jwt.ErrInvalidKeyType)
	}
	sigs, err := k.Transit.Sign(k.Ctx, k.Name, k.Type, k.Version, m.Algorithm, []byte(signingString))
	if err != nil {
		return nil, err
	}
	return lowS(m.Algorithm, sigs[0]), nil // Vault's ECDSA signatures have a high s half the time
}

func (m TransitMethod) Verify(string, []byte, any) error {
	return errors.New("transit signing method does not verify; use the published JWKS")
}

// Minter issues access tokens for one issuer and signing key.
type Minter struct {
	Transit *keys.Transit
	Key     string    // Vault transit key name
	Type    keys.Type // its type
	Alg     string    // JWS algorithm; default: the type's first
	Issuer  string    // iss
	Now     func() time.Time
	// MaxLifetime, when set, refuses a TTL over the verifiers' maximum lifetime: every verifier
	// would reject such a token.
	MaxLifetime time.Duration
}

// MintRequest describes one token to issue.
type MintRequest struct {
	Subject  string
	ClientID string
	Audience []string
	TTL      time.Duration
}

// Minted is an issued token. Token is a bearer secret: deliver it, never log or persist it in
// workflow history; everything else is safe to record.
type Minted struct {
	Token     string `json:"-"`
	JTI       string
	KID       string
	Subject   string
	ClientID  string
	IssuedAt  time.Time
	ExpiresAt time.Time
}

func (m *Minter) alg() string {
	if m.Alg != "" {
		return m.Alg
	}
	return m.Type.Algorithms()[0]
}

// Mint signs one token per request with the given key version, in one Vault request
// (batch_input) however many there are.
func (m *Minter) Mint(ctx context.Context, version int, reqs ...MintRequest) ([]Minted, error) {
	if len(reqs) == 0 {
		return nil, nil
	}
	now := time.Now
	if m.Now != nil {
		now = m.Now
	}
	method := TransitMethod{Algorithm: m.alg()}
	kid := keys.KID(m.Key, version)
	issued := now().Truncate(time.Second)
	out := make([]Minted, len(reqs))
	inputs := make([][]byte, len(reqs))
	for i, r := range reqs {
		if r.Subject == "" || len(r.Audience) == 0 || r.TTL <= 0 {
			return nil, fmt.Errorf("mint request %d: subject, audience and a positive TTL are required: %w", i, keys.ErrInvalid)
		}
		if m.MaxLifetime > 0 && r.TTL > m.MaxLifetime {
			return nil, fmt.Errorf("mint request %d: TTL %s: allowed up to the verifiers' maximum lifetime %s: %w", i, r.TTL, m.MaxLifetime, keys.ErrInvalid)
		}
		jti, err := newJTI()
		if err != nil {
			return nil, err
		}
		claims := Claims{
			RegisteredClaims: jwt.RegisteredClaims{
				Issuer: m.Issuer, Subject: r.Subject, Audience: r.Audience, ID: jti,
				IssuedAt: jwt.NewNumericDate(issued), NotBefore: jwt.NewNumericDate(issued),
				ExpiresAt: jwt.NewNumericDate(issued.Add(r.TTL)),
			},
			ClientID: r.ClientID,
		}
		tok := jwt.NewWithClaims(method, claims)
		tok.Header["kid"] = kid
		tok.Header["typ"] = TokenType
		ss, err := tok.SigningString()
		if err != nil {
			return nil, err
		}
		inputs[i] = []byte(ss)
		out[i] = Minted{Token: ss, JTI: jti, KID: kid, Subject: r.Subject, ClientID: r.ClientID, IssuedAt: issued, ExpiresAt: issued.Add(r.TTL)}
	}
	var sigs [][]byte
	if len(reqs) == 1 {
		sig, err := method.Sign(string(inputs[0]), TransitKey{Ctx: ctx, Transit: m.Transit, Name: m.Key, Type: m.Type, Version: version})
		if err != nil {
			return nil, err
		}
		sigs = [][]byte{sig}
	} else {
		var err error
		if sigs, err = m.Transit.Sign(ctx, m.Key, m.Type, version, method.Algorithm, inputs...); err != nil {
			return nil, err
		}
	}
	for i := range out {
		out[i].Token += "." + base64.RawURLEncoding.EncodeToString(lowS(method.Algorithm, sigs[i]))
	}
	return out, nil
}

// newJTI returns 128 random bits, URL-safe.
func newJTI() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
