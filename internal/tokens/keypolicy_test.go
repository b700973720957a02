package tokens_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rollgate/rollgate/internal/keys"
	"github.com/rollgate/rollgate/internal/tokens"
)

// These tests need no server: the keys are made in memory, so a JWKS can hold keys that Vault
// would never make (1024 bits, exponent 3).

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// signRS256 signs any header and claims JSON with k, byte for byte as given.
func signRS256(tb testing.TB, k *rsa.PrivateKey, header, claims string) string {
	tb.Helper()
	input := b64(header) + "." + b64(claims)
	digest := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(nil, k, crypto.SHA256, digest[:])
	if err != nil {
		tb.Fatal(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// validClaims are claims the fuzz issuer's verifier accepts, with a lifetime of life.
func validClaims(life time.Duration) string {
	now := time.Now().Unix()
	return fmt.Sprintf(`{"iss":"https://issuer.test","sub":"s","aud":["orders"],"jti":"j","iat":%d,"nbf":%d,"exp":%d}`,
		now, now, now+int64(life/time.Second))
}

// rsaJWKS writes a one-key JWKS by hand, with extra members for the key.
func rsaJWKS(kid string, pub *rsa.PublicKey, extra string) []byte {
	n := base64.RawURLEncoding.EncodeToString(pub.N.Bytes())
	e := base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes())
	return []byte(`{"keys":[{"kty":"RSA","kid":"` + kid + `","alg":"RS256","n":"` + n + `","e":"` + e + `"` + extra + `}]}`)
}

// rsaKeyWithExponent3 makes a 2048-bit RSA key with public exponent 3, which crypto/rsa will
// still sign and verify with, though rsa.GenerateKey never makes one.
func rsaKeyWithExponent3(tb testing.TB) *rsa.PrivateKey {
	tb.Helper()
	for {
		p, err := rand.Prime(rand.Reader, 1024)
		if err != nil {
			tb.Fatal(err)
		}
		q, err := rand.Prime(rand.Reader, 1024)
		if err != nil {
			tb.Fatal(err)
		}
		one := big.NewInt(1)
		phi := new(big.Int).Mul(new(big.Int).Sub(p, one), new(big.Int).Sub(q, one))
		d := new(big.Int).ModInverse(big.NewInt(3), phi)
		n := new(big.Int).Mul(p, q)
		if d == nil || n.BitLen() != 2048 {
			continue
		}
		k := &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: n, E: 3}, D: d, Primes: []*big.Int{p, q}}
		k.Precompute()
		return k
	}
}

func verifierFor(tb testing.TB, jwks []byte, o tokens.VerifierOptions) *tokens.Verifier {
	tb.Helper()
	ks, err := tokens.StaticKeySet(jwks)
	if err != nil {
		tb.Fatal(err)
	}
	o.Keys, o.Issuer, o.Audiences, o.Algorithms = ks, "https://issuer.test", []string{"orders"}, []string{"RS256", "ES256"}
	v, err := tokens.NewVerifier(o)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

func TestVerify_RefusesWeakOrMisusedKeysInTheJWKS(t *testing.T) {
	strong, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	e3 := rsaKeyWithExponent3(t)
	header := `{"alg":"RS256","typ":"at+jwt","kid":"k-v1"}`
	for _, tc := range []struct {
		name  string
		key   *rsa.PrivateKey
		extra string
		want  tokens.Reason
	}{
		{"2048 bits, e 65537, no use or key_ops", strong, ``, ""},
		{"use sig, key_ops verify", strong, `,"use":"sig","key_ops":["verify"]`, ""},
		{"RSA under 2048 bits", weak, `,"use":"sig"`, tokens.UnknownKID},
		{"RSA exponent 3", e3, `,"use":"sig"`, tokens.UnknownKID},
		{"use enc", strong, `,"use":"enc"`, tokens.UnknownKID},
		{"key_ops without verify", strong, `,"key_ops":["sign"]`, tokens.UnknownKID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := verifierFor(t, rsaJWKS("k-v1", &tc.key.PublicKey, tc.extra), tokens.VerifierOptions{})
			_, err := v.Verify(context.Background(), signRS256(t, tc.key, header, validClaims(time.Hour)))
			if got := tokens.ReasonOf(err); got != tc.want {
				t.Fatalf("reason %q (%v), want %q", got, err, tc.want)
			}
		})
	}
}

func TestVerify_MaxLifetimeIsConfigurableAndRequiresIat(t *testing.T) {
	l := newLocalIssuer(t)
	header := `{"alg":"RS256","typ":"at+jwt","kid":"fuzz-v1"}`
	hourly := verifierFor(t, l.jwks, tokens.VerifierOptions{MaxLifetime: time.Hour})
	byDefault := verifierFor(t, l.jwks, tokens.VerifierOptions{})
	now := time.Now().Unix()
	noIat := fmt.Sprintf(`{"iss":"https://issuer.test","sub":"s","aud":["orders"],"jti":"j","nbf":%d,"exp":%d}`, now, now+60)
	for _, tc := range []struct {
		name   string
		v      *tokens.Verifier
		claims string
		want   tokens.Reason
	}{
		{"1h token, 1h maximum", hourly, validClaims(time.Hour), ""},
		{"1h1s token, 1h maximum", hourly, validClaims(time.Hour + time.Second), tokens.Malformed},
		{"24h token, default maximum", byDefault, validClaims(24 * time.Hour), ""},
		{"24h1s token, default maximum", byDefault, validClaims(24*time.Hour + time.Second), tokens.Malformed},
		{"10 years, default maximum", byDefault, validClaims(10 * 365 * 24 * time.Hour), tokens.Malformed},
		{"no iat", byDefault, noIat, tokens.Malformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.v.Verify(context.Background(), signRS256(t, l.key, header, tc.claims))
			if got := tokens.ReasonOf(err); got != tc.want {
				t.Fatalf("reason %q (%v), want %q", got, err, tc.want)
			}
		})
	}
	for _, bad := range []time.Duration{-time.Second, time.Second, 8761 * time.Hour} {
		ks, _ := tokens.StaticKeySet(l.jwks)
		_, err := tokens.NewVerifier(tokens.VerifierOptions{Keys: ks, Issuer: "https://issuer.test", Audiences: []string{"orders"},
			Algorithms: []string{"RS256"}, MaxLifetime: bad})
		if err == nil || !strings.Contains(err.Error(), "max lifetime") || !strings.Contains(err.Error(), "1m to 8760h") {
			t.Fatalf("max lifetime %s: %v, want an error naming the option and its range", bad, err)
		}
	}
}

// A kid is chosen by whoever sends the token: as a label value it would make one metric series
// per forged kid. Only kids of the key set become labels.
func TestMetrics_ForgedKidsAreCountedAsUnknownSoSeriesStayBounded(t *testing.T) {
	l := newLocalIssuer(t)
	reg := prometheus.NewRegistry()
	m := tokens.NewMetrics(reg)
	ks, err := tokens.StaticKeySet(l.jwks)
	if err != nil {
		t.Fatal(err)
	}
	v, err := tokens.NewVerifier(tokens.VerifierOptions{Keys: ks, Issuer: "https://issuer.test", Audiences: []string{"orders"},
		Algorithms: []string{"RS256"}, Observe: m.Observe})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	genuine := l.token(t)
	parts := strings.Split(genuine, ".")
	const forged = 20000
	for i := range forged {
		kid := fmt.Sprintf("forged-%d", i)
		if i == 0 {
			kid = strings.Repeat("k", 100<<10) // a 100 KB kid
		}
		alg := "RS256"
		if i%2 == 1 {
			alg = "none" // rejected before the kid is looked up
		}
		h := b64(`{"alg":"` + alg + `","typ":"at+jwt","kid":"` + kid + `"}`)
		if _, err := v.Verify(ctx, h+"."+parts[1]+"."+parts[2]); err == nil {
			t.Fatalf("forged kid %d accepted", i)
		}
	}
	if _, err := v.Verify(ctx, genuine); err != nil {
		t.Fatal(err)
	}
	altered := parts[0] + "." + b64(`{"sub":"admin"}`) + "." + parts[2]
	if _, err := v.Verify(ctx, altered); tokens.ReasonOf(err) != tokens.BadSignature {
		t.Fatalf("altered claims: %v", err)
	}
	if n := testutil.CollectAndCount(m.Rejected); n != 3 {
		t.Fatalf("%d rejected series after %d forged kids, want 3 (unknown/unknown_kid, unknown/alg_not_allowed, fuzz-v1/bad_signature)", n, forged)
	}
	for _, c := range []struct {
		kid    string
		reason tokens.Reason
		want   float64
	}{{"unknown", tokens.UnknownKID, forged / 2}, {"unknown", tokens.AlgNotAllowed, forged / 2}, {"fuzz-v1", tokens.BadSignature, 1}} {
		if got := testutil.ToFloat64(m.Rejected.WithLabelValues(c.kid, string(c.reason))); got != c.want {
			t.Fatalf("rejected{kid=%q,reason=%q} = %v, want %v", c.kid, c.reason, got, c.want)
		}
	}
	if got := testutil.ToFloat64(m.Verified.WithLabelValues("fuzz-v1")); got != 1 {
		t.Fatalf("verified{kid=fuzz-v1} = %v, want 1", got)
	}
}

// The worker refuses to mint a token its verifiers would refuse, before asking Vault to sign.
func TestMint_RefusesATTLOverTheVerifiersMaximumLifetime(t *testing.T) {
	m := &tokens.Minter{Key: "any", Alg: "RS256", Issuer: "https://issuer.test", MaxLifetime: time.Hour} // no Vault: nothing may be signed
	_, err := m.Mint(context.Background(), 1,
		tokens.MintRequest{Subject: "a", Audience: []string{"orders"}, TTL: time.Hour},
		tokens.MintRequest{Subject: "b", Audience: []string{"orders"}, TTL: time.Hour + time.Second})
	if !errors.Is(err, keys.ErrInvalid) || !strings.Contains(err.Error(), "mint request 1: TTL 1h0m1s") || !strings.Contains(err.Error(), "1h0m0s") {
		t.Fatalf("%v, want an invalid-request error naming the request, its TTL and the maximum", err)
	}
}
