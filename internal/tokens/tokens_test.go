package tokens_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/rollgate/rollgate/internal/keys"
	"github.com/rollgate/rollgate/internal/tokens"
	"github.com/rollgate/rollgate/testsuite"
)

var shared testsuite.Shared

func TestMain(m *testing.M) { os.Exit(shared.Run(m)) }

var keyCounter atomic.Int32

// issuerEnv is one Vault transit key, an S3 bucket as its issuer location, and a minter.
type issuerEnv struct {
	transit *keys.Transit
	key     *keys.Key
	minter  *tokens.Minter
	pub     *tokens.Publisher
	issuer  string
	jwksURL string
	s3      *s3.Client
}

func newIssuerEnv(t testing.TB, typ keys.Type, alg string) *issuerEnv {
	t.Helper()
	bed := shared.Bed(t)
	ctx := context.Background()
	vc, err := bed.Vault.Client()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := bed.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := keyCounter.Add(1)
	name := fmt.Sprintf("issuer-%d-%s", n, strings.ToLower(alg))
	bucket := fmt.Sprintf("issuer-%d", n)
	s3c := bed.S3Client(cfg)
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	tr := &keys.Transit{Client: vc}
	k, err := tr.EnsureKey(ctx, name, typ)
	if err != nil {
		t.Fatal(err)
	}
	issuer := bed.S3.URL + "/" + bucket
	return &issuerEnv{
		transit: tr, key: k, issuer: issuer, jwksURL: issuer + "/.well-known/jwks.json", s3: s3c,
		minter: &tokens.Minter{Transit: tr, Key: name, Type: typ, Alg: alg, Issuer: issuer},
		pub:    &tokens.Publisher{S3: s3c, Bucket: bucket, CacheTTL: time.Minute},
	}
}

// publish puts the JWKS of the given versions at the issuer location.
func (e *issuerEnv) publish(t testing.TB, versions ...int) {
	t.Helper()
	ctx := context.Background()
	k, err := e.transit.ReadKey(ctx, e.key.Name)
	if err != nil {
		t.Fatal(err)
	}
	e.key = k
	doc, err := tokens.JWKS(ctx, k, e.minter.Alg, versions)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.pub.Publish(ctx, e.issuer, e.minter.Alg, doc); err != nil {
		t.Fatal(err)
	}
}

func (e *issuerEnv) verifier(t testing.TB, rc tokens.RevocationChecker) *tokens.Verifier {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ks, err := tokens.RemoteKeySet(ctx, e.jwksURL, tokens.RemoteKeySetOptions{UnknownKIDRefresh: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	v, err := tokens.NewVerifier(tokens.VerifierOptions{
		Keys: ks, Issuer: e.issuer, Audiences: []string{"orders"}, Algorithms: []string{e.minter.Alg},
		Leeway: 5 * time.Second, Revoked: rc,
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (e *issuerEnv) mint(t testing.TB, version int, req tokens.MintRequest) tokens.Minted {
	t.Helper()
	if req.Subject == "" {
		req.Subject = "client-1"
	}
	if req.Audience == nil {
		req.Audience = []string{"orders"}
	}
	if req.TTL == 0 {
		req.TTL = time.Hour
	}
	m, err := e.minter.Mint(context.Background(), version, req)
	if err != nil {
		t.Fatal(err)
	}
	return m[0]
}

// verifyWithStdlib checks a token's signature with nothing but the standard library and the
// public key Vault reports for the version.
func verifyWithStdlib(t *testing.T, token string, pub crypto.PublicKey, alg string) {
	t.Helper()
	i := strings.LastIndex(token, ".")
	sig, err := base64.RawURLEncoding.DecodeString(token[i+1:])
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte(token[:i]))
	switch alg {
	case "RS256":
		err = rsa.VerifyPKCS1v15(pub.(*rsa.PublicKey), crypto.SHA256, digest[:], sig)
	case "PS256":
		err = rsa.VerifyPSS(pub.(*rsa.PublicKey), crypto.SHA256, digest[:], sig, nil)
	case "ES256":
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		if !ecdsa.Verify(pub.(*ecdsa.PublicKey), digest[:], r, s) {
			err = fmt.Errorf("ecdsa signature does not verify")
		}
	case "EdDSA":
		if !ed25519.Verify(pub.(ed25519.PublicKey), []byte(token[:i]), sig) {
			err = fmt.Errorf("ed25519 signature does not verify")
		}
	}
	if err != nil {
		t.Fatalf("%s signature does not verify with the standard library: %v", alg, err)
	}
}

func TestMint_EveryKeyTypeSignsInVaultAndVerifiesAgainstThePublishedJWKS(t *testing.T) {
	for _, tc := range []struct {
		typ keys.Type
		alg string
	}{
		{keys.RSA2048, "RS256"}, {keys.RSA2048, "PS256"}, {keys.RSA3072, "RS256"}, {keys.RSA4096, "RS256"},
		{keys.ECDSAP256, "ES256"}, {keys.Ed25519, "EdDSA"},
	} {
		t.Run(string(tc.typ)+"/"+tc.alg, func(t *testing.T) {
			e := newIssuerEnv(t, tc.typ, tc.alg)
			e.publish(t, 1)
			m := e.mint(t, 1, tokens.MintRequest{ClientID: "billing"})
			if m.KID != e.key.Name+"-v1" || m.JTI == "" {
				t.Fatalf("minted %+v", m)
			}
			claims, err := e.verifier(t, nil).Verify(context.Background(), m.Token)
			if err != nil {
				t.Fatal(err)
			}
			if claims.ID != m.JTI || claims.Subject != "client-1" || claims.ClientID != "billing" || claims.Issuer != e.issuer {
				t.Fatalf("claims %+v", claims)
			}
			verifyWithStdlib(t, m.Token, e.key.PublicKeys[1], tc.alg)
			parsed, _, err := jwt.NewParser().ParseUnverified(m.Token, &tokens.Claims{})
			if err != nil || parsed.Header["typ"] != "at+jwt" || parsed.Header["alg"] != tc.alg {
				t.Fatalf("header %v, %v", parsed.Header, err)
			}
		})
	}
}

func TestMint_BatchSignsManyTokensInOneRequest(t *testing.T) {
	e := newIssuerEnv(t, keys.RSA2048, "RS256")
	e.publish(t, 1)
	reqs := make([]tokens.MintRequest, 50)
	for i := range reqs {
		reqs[i] = tokens.MintRequest{Subject: fmt.Sprintf("client-%d", i), Audience: []string{"orders"}, TTL: time.Hour}
	}
	minted, err := e.minter.Mint(context.Background(), 1, reqs...)
	if err != nil {
		t.Fatal(err)
	}
	v := e.verifier(t, nil)
	seen := map[string]bool{}
	for i, m := range minted {
		c, err := v.Verify(context.Background(), m.Token)
		if err != nil || c.Subject != reqs[i].Subject {
			t.Fatalf("token %d: %+v, %v", i, c, err)
		}
		if seen[m.JTI] {
			t.Fatalf("jti %s issued twice", m.JTI)
		}
		seen[m.JTI] = true
	}
}

// Vault signs ES256 with a high s about half the time, and the verifier refuses the high s (a
// second encoding of the same token): the minter must hand out the low one, single or batched.
func TestMint_ES256TokensCarryTheLowSSoEveryOneVerifies(t *testing.T) {
	e := newIssuerEnv(t, keys.ECDSAP256, "ES256")
	e.publish(t, 1)
	v := e.verifier(t, nil)
	reqs := make([]tokens.MintRequest, 24)
	for i := range reqs {
		reqs[i] = tokens.MintRequest{Subject: fmt.Sprintf("client-%d", i), Audience: []string{"orders"}, TTL: time.Hour}
	}
	minted, err := e.minter.Mint(context.Background(), 1, reqs...)
	if err != nil {
		t.Fatal(err)
	}
	for range 8 {
		minted = append(minted, e.mint(t, 1, tokens.MintRequest{}))
	}
	for i, m := range minted {
		if _, err := v.Verify(context.Background(), m.Token); err != nil {
			t.Fatalf("token %d of %d: %v", i, len(minted), err)
		}
	}
}

func TestRotation_OldKidStillVerifiesWhilePublishedAndIsUnknownOnceDropped(t *testing.T) {
	ctx := context.Background()
	e := newIssuerEnv(t, keys.RSA2048, "RS256")
	e.publish(t, 1)
	old := e.mint(t, 1, tokens.MintRequest{})
	v2, err := e.transit.Rotate(ctx, e.key.Name, 1)
	if err != nil || v2 != 2 {
		t.Fatalf("rotate: v%d, %v", v2, err)
	}
	e.publish(t, 1, 2)
	v := e.verifier(t, nil)
	fresh := e.mint(t, 2, tokens.MintRequest{})
	for _, tok := range []tokens.Minted{old, fresh} {
		if _, err := v.Verify(ctx, tok.Token); err != nil {
			t.Fatalf("%s token while both are published: %v", tok.KID, err)
		}
	}
	e.publish(t, 2) // the JWKS drops v1
	v = e.verifier(t, nil)
	if r := tokens.ReasonOf(verifyErr(v, old.Token)); r != tokens.UnknownKID {
		t.Fatalf("v1 token after v1 left the JWKS: reason %q, want unknown_kid", r)
	}
	if _, err := v.Verify(ctx, fresh.Token); err != nil {
		t.Fatal(err)
	}
}

// signed signs header and claims JSON, byte for byte as given, with version 1 of the issuer's
// key in Vault: a token that only the verifier's parsing can refuse.
func (e *issuerEnv) signed(t testing.TB, header, claims string) string {
	t.Helper()
	input := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(claims))
	sigs, err := e.transit.Sign(context.Background(), e.key.Name, e.minter.Type, 1, e.minter.Alg, []byte(input))
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sigs[0])
}

// bothSEncodings returns an ES256 token with the low s and with the high s (n - s): two
// signatures of the same signing input that both pass ecdsa.Verify.
func (e *issuerEnv) bothSEncodings(t testing.TB, token string) (low, high string) {
	t.Helper()
	i := strings.LastIndexByte(token, '.')
	sig, err := base64.RawURLEncoding.DecodeString(token[i+1:])
	if err != nil || len(sig) != 64 {
		t.Fatalf("ES256 signature of %d bytes, %v", len(sig), err)
	}
	n := elliptic.P256().Params().N
	s := new(big.Int).SetBytes(sig[32:])
	other := append(append([]byte(nil), sig[:32]...), new(big.Int).Sub(n, s).FillBytes(make([]byte, 32))...)
	a, b := token[:i+1]+base64.RawURLEncoding.EncodeToString(sig), token[:i+1]+base64.RawURLEncoding.EncodeToString(other)
	if s.Cmp(new(big.Int).Rsh(n, 1)) > 0 {
		a, b = b, a
	}
	digest := sha256.Sum256([]byte(token[:i]))
	pub := e.key.PublicKeys[1].(*ecdsa.PublicKey)
	r := new(big.Int).SetBytes(sig[:32])
	if !ecdsa.Verify(pub, digest[:], r, s) || !ecdsa.Verify(pub, digest[:], r, new(big.Int).Sub(n, s)) {
		t.Fatal("the two s encodings do not both verify")
	}
	return a, b
}

func verifyErr(v *tokens.Verifier, tok string) error {
	_, err := v.Verify(context.Background(), tok)
	return err
}

// revokeAll is a RevocationChecker for the verifier's own table test; the registry's deny list
// is tested against DynamoDB in internal/registry.
type revokeFunc func(c *tokens.Claims, kid string) bool

func (f revokeFunc) Revoked(c *tokens.Claims, kid string) bool { return f(c, kid) }

func TestVerify_EveryRejectionHasItsReason(t *testing.T) {
	ctx := context.Background()
	e := newIssuerEnv(t, keys.RSA2048, "RS256")
	e.publish(t, 1)
	other := newIssuerEnv(t, keys.RSA2048, "RS256") // a key that is not in e's JWKS
	revokedJTI := e.mint(t, 1, tokens.MintRequest{})
	v := e.verifier(t, revokeFunc(func(c *tokens.Claims, kid string) bool {
		return c.ID == revokedJTI.JTI || c.Subject == "revoked-subject"
	}))
	good := e.mint(t, 1, tokens.MintRequest{})
	if _, err := v.Verify(ctx, good.Token); err != nil {
		t.Fatal(err)
	}

	withMinter := func(change func(m *tokens.Minter)) string {
		m := *e.minter
		change(&m)
		out, err := m.Mint(ctx, 1, tokens.MintRequest{Subject: "client-1", Audience: []string{"orders"}, TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return out[0].Token
	}
	parts := strings.Split(good.Token, ".")
	otherClaims := base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"` + e.issuer + `","sub":"admin","aud":["orders"],"exp":9999999999,"nbf":1,"iat":1,"jti":"x"}`))
	rsaPub := e.key.PublicKeys[1].(*rsa.PublicKey)
	pubDER, _ := x509.MarshalPKIXPublicKey(rsaPub)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": e.issuer, "sub": "x", "aud": "orders", "exp": 9999999999, "nbf": 1, "iat": 1})
	hs.Header["kid"], hs.Header["typ"] = good.KID, "at+jwt"
	hsToken, _ := hs.SignedString(pubPEM)
	none := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"iss": e.issuer, "sub": "x", "aud": "orders", "exp": 9999999999, "nbf": 1, "iat": 1})
	none.Header["kid"], none.Header["typ"] = good.KID, "at+jwt"
	noneToken, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)
	esHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"ES256","typ":"at+jwt","kid":"` + good.KID + `"}`))

	now := time.Now().Unix()
	hdr := `{"alg":"RS256","typ":"at+jwt","kid":"` + good.KID + `"}`
	claims := func(members string) string {
		return fmt.Sprintf(`{"iss":%q,"aud":["orders"],"jti":"hand-signed",%s}`, e.issuer, members)
	}
	times := fmt.Sprintf(`"iat":%d,"nbf":%d,"exp":%d`, now, now, now+3600)
	std := claims(`"sub":"client-1",` + times)
	es := newIssuerEnv(t, keys.ECDSAP256, "ES256")
	es.publish(t, 1)
	esLow, esHigh := es.bothSEncodings(t, es.mint(t, 1, tokens.MintRequest{}).Token)
	insert := func(seg int, at int, what string) string {
		p := strings.Split(good.Token, ".")
		p[seg] = p[seg][:at] + what + p[seg][at:]
		return strings.Join(p, ".")
	}

	cases := []struct {
		name  string
		token string
		want  tokens.Reason
		v     *tokens.Verifier // default v
	}{
		{"expired", withMinter(func(m *tokens.Minter) { m.Now = func() time.Time { return time.Now().Add(-2 * time.Hour) } }), tokens.Expired, nil},
		{"not yet valid", withMinter(func(m *tokens.Minter) { m.Now = func() time.Time { return time.Now().Add(time.Hour) } }), tokens.NotYetValid, nil},
		{"altered claims", parts[0] + "." + otherClaims + "." + parts[2], tokens.BadSignature, nil},
		{"truncated signature", parts[0] + "." + parts[1] + "." + parts[2][:168], tokens.BadSignature, nil}, // 168 base64url characters decode to whole bytes
		{"kid not in the JWKS", other.mint(t, 1, tokens.MintRequest{}).Token, tokens.UnknownKID, nil},
		{"bad issuer", withMinter(func(m *tokens.Minter) { m.Issuer = "https://issuer.example" }), tokens.BadIssuer, nil},
		{"bad audience", func() string {
			out, err := e.minter.Mint(ctx, 1, tokens.MintRequest{Subject: "s", Audience: []string{"billing"}, TTL: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			return out[0].Token
		}(), tokens.BadAudience, nil},
		{"revoked by jti", revokedJTI.Token, tokens.Revoked, nil},
		{"revoked by subject", e.mint(t, 1, tokens.MintRequest{Subject: "revoked-subject"}).Token, tokens.Revoked, nil},
		{"garbage", "not-a-token", tokens.Malformed, nil},
		{"two segments", parts[0] + "." + parts[1], tokens.Malformed, nil},
		{"alg none", noneToken, tokens.AlgNotAllowed, nil},
		{"HS256 keyed with the RSA public key", hsToken, tokens.AlgNotAllowed, nil},
		{"ES256 header on an RSA kid", esHeader + "." + parts[1] + "." + parts[2], tokens.AlgNotAllowed, nil},
		// Strict parsing: one token, one reading. Each of these is signed in Vault, so only the
		// parsing can refuse it.
		{"hand-signed control", e.signed(t, hdr, std), "", nil},
		{"newline inside the claims segment", insert(1, 10, "\n"), tokens.Malformed, nil},
		{"CR LF inside the signature", insert(2, 20, "\r\n"), tokens.Malformed, nil},
		{"CR inside the header", insert(0, 4, "\r"), tokens.Malformed, nil},
		{"crit present but empty", e.signed(t, `{"alg":"RS256","typ":"at+jwt","kid":"`+good.KID+`","crit":[]}`, std), tokens.Malformed, nil},
		{"crit null", e.signed(t, `{"alg":"RS256","typ":"at+jwt","kid":"`+good.KID+`","crit":null}`, std), tokens.Malformed, nil},
		{"header name ALG", e.signed(t, `{"ALG":"RS256","typ":"at+jwt","kid":"`+good.KID+`"}`, std), tokens.Malformed, nil},
		{"header name Kid", e.signed(t, `{"alg":"RS256","typ":"at+jwt","Kid":"`+good.KID+`"}`, std), tokens.Malformed, nil},
		{"claim name SUB", e.signed(t, hdr, claims(`"SUB":"client-1",`+times)), tokens.Malformed, nil},
		{"claim name ſub (long s, which folds to s)", e.signed(t, hdr, claims(`"ſub":"client-1",`+times)), tokens.Malformed, nil},
		{"header name \u212aid (Kelvin sign, which folds to k)", e.signed(t, `{"alg":"RS256","typ":"at+jwt","\u212aid":"`+good.KID+`"}`, std), tokens.Malformed, nil},
		{"claim name EXP", e.signed(t, hdr, claims(fmt.Sprintf(`"sub":"client-1","iat":%d,"nbf":%d,"EXP":%d`, now, now, now+3600))), tokens.Malformed, nil},
		{"claim name escaped to EXP", e.signed(t, hdr, claims(fmt.Sprintf(`"sub":"client-1","iat":%d,"nbf":%d,"\u0045XP":%d`, now, now, now+3600))), tokens.Malformed, nil},
		{"exp as a string", e.signed(t, hdr, claims(fmt.Sprintf(`"sub":"client-1","iat":%d,"nbf":%d,"exp":"%d"`, now, now, now+3600))), tokens.Malformed, nil},
		{"nbf as a string", e.signed(t, hdr, claims(fmt.Sprintf(`"sub":"client-1","iat":%d,"nbf":"%d","exp":%d`, now, now, now+3600))), tokens.Malformed, nil},
		{"iat as a string", e.signed(t, hdr, claims(fmt.Sprintf(`"sub":"client-1","iat":"%d","nbf":%d,"exp":%d`, now, now, now+3600))), tokens.Malformed, nil},
		{"duplicate sub", e.signed(t, hdr, claims(`"sub":"client-1",`+times+`,"sub":"admin"`)), tokens.Malformed, nil},
		{"duplicate sub, escaped", e.signed(t, hdr, claims(`"sub":"client-1",`+times+`,"s\u0075b":"admin"`)), tokens.Malformed, nil},
		{"duplicate kid header", e.signed(t, `{"alg":"RS256","typ":"at+jwt","kid":"`+good.KID+`","kid":"other-v1"}`, std), tokens.Malformed, nil},
		{"duplicate member in a nested claim", e.signed(t, hdr, claims(`"sub":"client-1",`+times+`,"cnf":{"jkt":"a","jkt":"b"}`)), tokens.Malformed, nil},
		{"lifetime over the 24h default", e.mint(t, 1, tokens.MintRequest{TTL: 24*time.Hour + time.Minute}).Token, tokens.Malformed, nil},
		{"lifetime of 24h", e.mint(t, 1, tokens.MintRequest{TTL: 24 * time.Hour}).Token, "", nil},
		{"ES256 with the low s", esLow, "", es.verifier(t, nil)},
		{"ES256 with the high s", esHigh, tokens.Malformed, es.verifier(t, nil)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := v
			if tc.v != nil {
				v = tc.v
			}
			_, err := v.Verify(ctx, tc.token)
			if got := tokens.ReasonOf(err); got != tc.want {
				t.Fatalf("reason %q (%v), want %q", got, err, tc.want)
			}
		})
	}
}

func TestPublish_SameContentWritesNoNewObjectVersion(t *testing.T) {
	ctx := context.Background()
	e := newIssuerEnv(t, keys.ECDSAP256, "ES256")
	doc, err := tokens.JWKS(ctx, e.key, "ES256", []int{1})
	if err != nil {
		t.Fatal(err)
	}
	first, err := e.pub.Publish(ctx, e.issuer, "ES256", doc)
	if err != nil || !first[0].Written || !first[1].Written {
		t.Fatalf("first publication %+v, %v", first, err)
	}
	again, err := e.pub.Publish(ctx, e.issuer, "ES256", doc)
	if err != nil || again[0].Written || again[1].Written {
		t.Fatalf("republishing the same documents wrote %+v, %v", again, err)
	}
	resp, err := http.Get(e.jwksURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=60" {
		t.Fatalf("Cache-Control %q, want the verifier cache TTL", cc)
	}
	if _, err := tokens.JWKS(ctx, e.key, "ES256", []int{1, 7}); err == nil {
		t.Fatal("a JWKS with a version Vault does not have was built")
	}
}
