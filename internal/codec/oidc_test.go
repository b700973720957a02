package codec_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/rollgate/rollgate/internal/codec"
	"github.com/rollgate/rollgate/internal/keys"
	"github.com/rollgate/rollgate/internal/tokens"
)

// oidcIssuer is an issuer on the bed: a Vault transit key whose JWKS and discovery document are
// published on S3, as rollgate publishes its own issuers.
type oidcIssuer struct {
	url    string
	minter *tokens.Minter
}

func newOIDCIssuer(t *testing.T, publish bool) *oidcIssuer {
	t.Helper()
	bed := shared.Bed(t)
	ctx := context.Background()
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	name := "codec-idp-" + hex.EncodeToString(suffix)
	vc, err := bed.Vault.Client()
	if err != nil {
		t.Fatal(err)
	}
	tr := &keys.Transit{Client: vc}
	k, err := tr.EnsureKey(ctx, name, keys.RSA2048)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := bed.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s3c := bed.S3Client(cfg)
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &name}); err != nil {
		t.Fatal(err)
	}
	iss := &oidcIssuer{url: bed.S3.URL + "/" + name, minter: &tokens.Minter{Transit: tr, Key: name, Type: keys.RSA2048, Alg: "RS256"}}
	iss.minter.Issuer = iss.url
	if publish {
		doc, err := tokens.JWKS(ctx, k, "RS256", []int{k.LatestVersion})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := (&tokens.Publisher{S3: s3c, Bucket: name, CacheTTL: time.Second}).Publish(ctx, iss.url, "RS256", doc); err != nil {
			t.Fatal(err)
		}
	}
	return iss
}

func (i *oidcIssuer) token(t *testing.T, audience string, ttl time.Duration) string {
	t.Helper()
	m, err := i.minter.Mint(context.Background(), 1, tokens.MintRequest{Subject: "alice@example.com", Audience: []string{audience}, TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	return m[0].Token
}

// The Web UI's mode: the codec server opens payloads for an access token of the configured
// issuer and audience, verified against the issuer's JWKS, and for nothing else.
func TestCodecServer_OIDC_AcceptsOnlyTokensOfTheIssuerForTheAudience(t *testing.T) {
	idp := newOIDCIssuer(t, true)
	other := newOIDCIssuer(t, false) // signs with a key the issuer never published
	other.minter.Issuer = idp.url
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	auth, err := codec.ServerConfig{Issuer: idp.url, Audiences: []string{"rollgate-codec"}, Algorithms: []string{"RS256"}}.Authenticator(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b := newCodecBed(t, auth, false)
	cases := []struct {
		name  string
		token string
		want  int
	}{
		{"issuer and audience", idp.token(t, "rollgate-codec", time.Hour), http.StatusOK},
		{"another audience", idp.token(t, "orders", time.Hour), http.StatusUnauthorized},
		{"a key the issuer did not publish", other.token(t, "rollgate-codec", time.Hour), http.StatusUnauthorized},
		{"not a JWT", "0123456789abcdefghijklmnopqrstuvwxyz", http.StatusUnauthorized},
	}
	for _, c := range cases {
		resp, body := b.call(t, http.MethodPost, "/decode", bytes.NewReader(b.sealed), "Authorization", "Bearer "+c.token)
		if resp.StatusCode != c.want || opened(body) != (c.want == http.StatusOK) {
			t.Fatalf("%s: status %d (want %d), opened %v: %s", c.name, resp.StatusCode, c.want, opened(body), body)
		}
	}
	// An issuer whose discovery document cannot be read is a configuration error, at start.
	if _, err := (codec.ServerConfig{Issuer: newOIDCIssuer(t, false).url, Audiences: []string{"rollgate-codec"}}).Authenticator(ctx); err == nil {
		t.Fatal("an issuer without a discovery document was accepted")
	}
}
