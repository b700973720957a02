package tokens_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"

	"github.com/rollgate/rollgate/internal/tokens"
)

// swappableKeys is a key set an issuer changes under the verifier, as a refreshed JWKS does.
type swappableKeys struct {
	mu sync.Mutex
	kf keyfunc.Keyfunc
}

func (s *swappableKeys) set(tb testing.TB, jwks []byte) {
	tb.Helper()
	kf, err := tokens.StaticKeySet(jwks)
	if err != nil {
		tb.Fatal(err)
	}
	s.mu.Lock()
	s.kf = kf
	s.mu.Unlock()
}

func (s *swappableKeys) Storage() jwkset.Storage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.kf.Storage()
}

type verifiedFixture struct {
	key     *rsa.PrivateKey
	keys    *swappableKeys
	now     atomic.Pointer[time.Time]
	revoked sync.Map // jti → true
	v       *tokens.Verifier
}

func newVerifiedFixture(t *testing.T, size int) *verifiedFixture {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	f := &verifiedFixture{key: k, keys: &swappableKeys{}}
	f.keys.set(t, rsaJWKS("k1", &k.PublicKey, ""))
	now := time.Now()
	f.now.Store(&now)
	f.v, err = tokens.NewVerifier(tokens.VerifierOptions{
		Keys: f.keys, Issuer: "https://issuer.test", Audiences: []string{"orders"}, Algorithms: []string{"RS256"},
		Leeway: 5 * time.Second, Now: func() time.Time { return *f.now.Load() }, VerifiedCache: size,
		Revoked: revokeFunc(func(c *tokens.Claims, _ string) bool { _, ok := f.revoked.Load(c.ID); return ok }),
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *verifiedFixture) token(t *testing.T, jti string) string {
	t.Helper()
	now := f.now.Load().Unix()
	return signRS256(t, f.key, `{"alg":"RS256","typ":"at+jwt","kid":"k1"}`,
		fmt.Sprintf(`{"iss":"https://issuer.test","sub":"s","aud":["orders"],"jti":%q,"iat":%d,"nbf":%d,"exp":%d}`, jti, now, now, now+600))
}

func (f *verifiedFixture) reason(tok string) tokens.Reason {
	_, err := f.v.Verify(context.Background(), tok)
	return tokens.ReasonOf(err)
}

// A token presented again skips only its signature check: a revocation, its expiry, its kid
// leaving the key set, or its kid naming another key are seen on the next use as on the first.
func TestVerifiedCache_ATokenPresentedAgainIsCheckedAgainButForItsSignature(t *testing.T) {
	f := newVerifiedFixture(t, 100)
	a, b, c := f.token(t, "a"), f.token(t, "b"), f.token(t, "c")
	for range 3 {
		for _, tok := range []string{a, b, c} {
			if r := f.reason(tok); r != "" {
				t.Fatalf("a good token refused: %s", r)
			}
		}
	}
	if n := f.v.VerifiedLen(); n != 3 {
		t.Fatalf("%d tokens remembered; want 3", n)
	}
	// The same claims and header under a signature of one changed byte: a different token.
	if r := f.reason(a[:len(a)-2] + flip(a[len(a)-2])); r != tokens.BadSignature && r != tokens.Malformed {
		t.Fatalf("a's claims with another signature: %q; want bad_signature", r)
	}

	f.revoked.Store("a", true)
	if r := f.reason(a); r != tokens.Revoked {
		t.Fatalf("a remembered token revoked since: %q; want revoked", r)
	}
	later := f.now.Load().Add(11 * time.Minute)
	f.now.Store(&later)
	if r := f.reason(b); r != tokens.Expired {
		t.Fatalf("a remembered token expired since: %q; want expired", r)
	}
	earlier := later.Add(-11 * time.Minute)
	f.now.Store(&earlier)

	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	f.keys.set(t, rsaJWKS("k2", &other.PublicKey, ""))
	if r := f.reason(c); r != tokens.UnknownKID {
		t.Fatalf("a remembered token whose kid left the key set: %q; want unknown_kid", r)
	}
	f.keys.set(t, rsaJWKS("k1", &other.PublicKey, ""))
	if r := f.reason(c); r != tokens.BadSignature {
		t.Fatalf("a remembered token whose kid now names another key: %q; want bad_signature", r)
	}
	f.keys.set(t, rsaJWKS("k1", &f.key.PublicKey, ""))
	if r := f.reason(c); r != "" {
		t.Fatalf("c under its own key again: %q", r)
	}
}

// Only accepted tokens are remembered, and no more than the cache's size.
func TestVerifiedCache_RemembersOnlyAcceptedTokensAndAtMostItsSize(t *testing.T) {
	f := newVerifiedFixture(t, 2)
	for i := range 5 {
		tok := f.token(t, fmt.Sprint(i))
		if r := f.reason(tok); r != "" {
			t.Fatal(r)
		}
		_ = f.reason(tok[:len(tok)-2] + flip(tok[len(tok)-2]))
	}
	if n := f.v.VerifiedLen(); n != 2 {
		t.Fatalf("%d tokens remembered with a cache of 2", n)
	}
	off := newVerifiedFixture(t, 0)
	if r := off.reason(off.token(t, "x")); r != "" || off.v.VerifiedLen() != 0 {
		t.Fatalf("without a cache: %q, %d remembered", r, off.v.VerifiedLen())
	}
}

func TestNewVerifier_VerifiedCacheBounds(t *testing.T) {
	base := tokens.VerifierOptions{Keys: &swappableKeys{}, Issuer: "https://issuer.test", Audiences: []string{"orders"}, Algorithms: []string{"RS256"}}
	for _, o := range []tokens.VerifierOptions{{VerifiedCache: -1}, {VerifiedCache: tokens.MaxVerifiedCache + 1}, {VerifiedCache: 10, VerifiedCacheTTL: 2 * time.Hour}} {
		opts := base
		opts.VerifiedCache, opts.VerifiedCacheTTL = o.VerifiedCache, o.VerifiedCacheTTL
		if _, err := tokens.NewVerifier(opts); err == nil {
			t.Errorf("size %d, TTL %s accepted", o.VerifiedCache, o.VerifiedCacheTTL)
		}
	}
}

// flip changes a base64url character into another one.
func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}
