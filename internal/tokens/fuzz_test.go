package tokens_test

import (
	"context"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/rollgate/rollgate/internal/tokens"
)

// localIssuer signs tokens with an in-memory RSA key: fuzzing needs no Vault, only the verifier.
type localIssuer struct {
	key  *rsa.PrivateKey
	jwks []byte
}

func newLocalIssuer(tb testing.TB) *localIssuer {
	tb.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	store := jwkset.NewMemoryStorage()
	jwk, err := jwkset.NewJWKFromKey(&k.PublicKey, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: "fuzz-v1", ALG: jwkset.AlgRS256, USE: jwkset.UseSig}})
	if err != nil {
		tb.Fatal(err)
	}
	_ = store.KeyWrite(context.Background(), jwk)
	doc, _ := store.JSONPublic(context.Background())
	return &localIssuer{key: k, jwks: doc}
}

func (l *localIssuer) token(tb testing.TB) string {
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, tokens.Claims{RegisteredClaims: jwt.RegisteredClaims{
		Issuer: "https://issuer.test", Subject: "s", Audience: []string{"orders"}, ID: "j",
		IssuedAt: jwt.NewNumericDate(time.Now()), NotBefore: jwt.NewNumericDate(time.Now()), ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour)),
	}})
	tok.Header["kid"], tok.Header["typ"] = "fuzz-v1", tokens.TokenType
	s, err := tok.SignedString(l.key)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func (l *localIssuer) verifier(tb testing.TB, jwks []byte) (*tokens.Verifier, error) {
	ks, err := tokens.StaticKeySet(jwks)
	if err != nil {
		return nil, err
	}
	return tokens.NewVerifier(tokens.VerifierOptions{Keys: ks, Issuer: "https://issuer.test", Audiences: []string{"orders"}, Algorithms: []string{"RS256", "ES256", "EdDSA"}})
}

// FuzzVerify_AcceptsOnlyTheTokenThatWasSigned: whatever the input, the verifier never panics and
// accepts nothing but the one genuine token, byte for byte.
func FuzzVerify_AcceptsOnlyTheTokenThatWasSigned(f *testing.F) {
	l := newLocalIssuer(f)
	genuine := l.token(f)
	v, err := l.verifier(f, l.jwks)
	if err != nil {
		f.Fatal(err)
	}
	parts := strings.Split(genuine, ".")
	f.Add(genuine)
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add("eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0Iiwia2lkIjoiZnV6ei12MSJ9." + parts[1] + ".")
	f.Add(parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"admin"}`)) + "." + parts[2])
	f.Add(genuine + "A")
	f.Add("..")
	// Strict parsing: each of these is signed with the genuine key, so only parsing refuses it.
	hdr, now := `{"alg":"RS256","typ":"at+jwt","kid":"fuzz-v1"}`, time.Now().Unix()
	claims := func(members string) string {
		return `{"iss":"https://issuer.test","aud":["orders"],"jti":"j",` + members + `}`
	}
	times := fmt.Sprintf(`"iat":%d,"nbf":%d,"exp":%d`, now, now, now+3600)
	f.Add(parts[0] + "." + parts[1][:8] + "\n" + parts[1][8:] + "." + parts[2])
	f.Add(parts[0] + "." + parts[1] + "." + parts[2][:8] + "\r\n" + parts[2][8:])
	f.Add(signRS256(f, l.key, `{"alg":"RS256","typ":"at+jwt","kid":"fuzz-v1","crit":[]}`, claims(`"sub":"s",`+times)))
	f.Add(signRS256(f, l.key, `{"ALG":"RS256","typ":"at+jwt","kid":"fuzz-v1"}`, claims(`"sub":"s",`+times)))
	f.Add(signRS256(f, l.key, hdr, claims(`"SUB":"s",`+times)))
	f.Add(signRS256(f, l.key, hdr, claims(fmt.Sprintf(`"sub":"s","iat":%d,"nbf":%d,"EXP":%d`, now, now, now+3600))))
	f.Add(signRS256(f, l.key, hdr, claims(fmt.Sprintf(`"sub":"s","iat":%d,"nbf":%d,"exp":"%d"`, now, now, now+3600))))
	f.Add(signRS256(f, l.key, hdr, claims(fmt.Sprintf(`"sub":"s","iat":%d,"nbf":"%d","exp":%d`, now, now, now+3600))))
	f.Add(signRS256(f, l.key, hdr, claims(fmt.Sprintf(`"sub":"s","iat":"%d","nbf":%d,"exp":%d`, now, now, now+3600))))
	f.Add(signRS256(f, l.key, hdr, claims(fmt.Sprintf(`"sub":"s","iat":%d,"nbf":%d,"\u0065xp":%d,"exp":%d`, now, now, now+3600, now+3600))))
	f.Add(signRS256(f, l.key, `{"alg":"RS256","typ":"at+jwt","kid":"fuzz-v1","crit":null}`, claims(`"sub":"s",`+times)))
	f.Add(signRS256(f, l.key, hdr, claims(`"sub":"s",`+times+`,"sub":"admin"`)))
	f.Add(signRS256(f, l.key, `{"alg":"RS256","typ":"at+jwt","kid":"fuzz-v1","kid":"x"}`, claims(`"sub":"s",`+times)))
	f.Add(signRS256(f, l.key, hdr, claims(fmt.Sprintf(`"sub":"s","iat":%d,"nbf":%d,"exp":%d`, now, now, now+400*24*3600))))
	// An ES256 signature with s = n - 1, the highest s there is.
	highS := append(make([]byte, 31), 1)
	highS = append(highS, new(big.Int).Sub(elliptic.P256().Params().N, big.NewInt(1)).Bytes()...)
	f.Add(b64(`{"alg":"ES256","typ":"at+jwt","kid":"fuzz-v1"}`) + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(highS))
	f.Fuzz(func(t *testing.T, raw string) {
		claims, err := v.Verify(context.Background(), raw)
		if err == nil && raw != genuine {
			t.Fatalf("accepted an altered token %q (claims %+v)", raw, claims)
		}
		if err != nil && tokens.ReasonOf(err) == "" {
			t.Fatalf("rejection without a reason: %v", err)
		}
	})
}

// FuzzJWKS_NeverPanicsOrTrustsAForeignKey: a JWKS document of any shape either fails to load,
// or makes the verifier accept the genuine token only if it really holds the signing key.
func FuzzJWKS_NeverPanicsOrTrustsAForeignKey(f *testing.F) {
	l := newLocalIssuer(f)
	genuine := l.token(f)
	other := newLocalIssuer(f)
	modulus := base64.RawURLEncoding.EncodeToString(l.key.N.Bytes())
	f.Add(l.jwks)
	f.Add(other.jwks)
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"fuzz-v1","n":"AQAB","e":"AQAB"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"oct","kid":"fuzz-v1","k":"c2VjcmV0"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","kid":"fuzz-v1","x":"","y":""}]}`))
	f.Add([]byte(`{"keys":null}`))
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(rsaJWKS("fuzz-v1", &weak.PublicKey, `,"use":"sig"`))
	f.Add(rsaJWKS("fuzz-v1", &rsa.PublicKey{N: l.key.N, E: 3}, ``))
	f.Add(rsaJWKS("fuzz-v1", &l.key.PublicKey, `,"use":"enc"`))
	f.Add(rsaJWKS("fuzz-v1", &l.key.PublicKey, `,"key_ops":["sign"]`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		v, err := l.verifier(t, doc)
		if err != nil {
			return
		}
		if _, err := v.Verify(context.Background(), genuine); err == nil && !strings.Contains(string(doc), modulus) {
			t.Fatalf("accepted with a JWKS that does not hold the signing key: %s", doc)
		}
	})
}
