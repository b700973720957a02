package tokens

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/rollgate/rollgate/internal/keys"
)

// JWKS builds the JWK Set of the given versions of a transit key: RSA n/e, EC x/y or OKP x, each
// with use "sig", its alg and kid <key>-v<N>. Keys are in version order so the document is
// byte-for-byte stable for the same versions.
func JWKS(ctx context.Context, key *keys.Key, alg string, versions []int) ([]byte, error) {
	if !slices.Contains(key.Type.Algorithms(), alg) {
		return nil, fmt.Errorf("JWKS for %s: algorithm %s does not fit key type %s: %w", key.Name, alg, key.Type, keys.ErrInvalid)
	}
	store := jwkset.NewMemoryStorage()
	seen := map[int]bool{}
	for _, v := range versions {
		if seen[v] {
			continue
		}
		seen[v] = true
		pub, ok := key.PublicKeys[v]
		if !ok {
			return nil, fmt.Errorf("JWKS for %s: version %d is not in Vault: %w", key.Name, v, keys.ErrNotFound)
		}
		jwk, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{
			KID: keys.KID(key.Name, v), ALG: jwkset.ALG(alg), USE: jwkset.UseSig,
		}})
		if err != nil {
			return nil, fmt.Errorf("JWKS for %s v%d: %w", key.Name, v, err)
		}
		if err := store.KeyWrite(ctx, jwk); err != nil {
			return nil, err
		}
	}
	return store.JSONPublic(ctx)
}

// Discovery is the OpenID discovery document of an issuer that publishes only keys.
func Discovery(issuer, alg string) []byte {
	b, _ := json.Marshal(map[string]any{
		"issuer":                                issuer,
		"jwks_uri":                              strings.TrimSuffix(issuer, "/") + "/.well-known/jwks.json",
		"id_token_signing_alg_values_supported": []string{alg},
		"response_types_supported":              []string{"token"},
		"subject_types_supported":               []string{"public"},
	})
	return b
}

// S3API is the part of the S3 client publication uses.
type S3API interface {
	HeadObject(context.Context, *s3.HeadObjectInput, ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	PutObject(context.Context, *s3.PutObjectInput, ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

// Publisher puts an issuer's discovery document and JWKS in an S3 bucket under
// <prefix>.well-known/, the issuer's location, with Cache-Control max-age equal to the verifier
// cache TTL.
type Publisher struct {
	S3       S3API
	Bucket   string
	Prefix   string        // object key prefix, "" or ending in "/"
	CacheTTL time.Duration // verifiers' JWKS cache TTL
}

// Published reports what Publish did for each document.
type Published struct {
	Key     string
	Written bool // false: the same content was already there, so no new object version
}

// Publish writes the documents whose content changed and leaves the others alone, so a retried
// publication makes no new object version.
func (p *Publisher) Publish(ctx context.Context, issuer, alg string, jwks []byte) ([]Published, error) {
	docs := []struct {
		name string
		body []byte
	}{{"openid-configuration", Discovery(issuer, alg)}, {"jwks.json", jwks}}
	var out []Published
	for _, d := range docs {
		key := p.Prefix + ".well-known/" + d.name
		sum := md5.Sum(d.body)
		etag := `"` + hex.EncodeToString(sum[:]) + `"`
		head, err := p.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &p.Bucket, Key: &key})
		var nf *s3types.NotFound
		switch {
		case err == nil && aws.ToString(head.ETag) == etag && aws.ToString(head.CacheControl) == p.cacheControl():
			out = append(out, Published{Key: key})
			continue
		case err != nil && !errors.As(err, &nf):
			return out, fmt.Errorf("read s3://%s/%s: %w", p.Bucket, key, err)
		}
		if _, err := p.S3.PutObject(ctx, &s3.PutObjectInput{
			Bucket: &p.Bucket, Key: &key, Body: bytes.NewReader(d.body),
			ContentType: aws.String("application/json"), CacheControl: aws.String(p.cacheControl()),
		}); err != nil {
			return out, fmt.Errorf("publish s3://%s/%s: %w", p.Bucket, key, err)
		}
		out = append(out, Published{Key: key, Written: true})
	}
	return out, nil
}

func (p *Publisher) cacheControl() string {
	return fmt.Sprintf("public, max-age=%d", int(p.CacheTTL.Seconds()))
}
