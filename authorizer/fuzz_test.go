package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/golang-jwt/jwt/v5"
	"github.com/sethvargo/go-envconfig"
)

// fuzzIssuer is an issuer without the bed: an Ed25519 key whose JWKS and discovery document a
// real HTTP server publishes, and a DynamoDB endpoint that refuses connections. The authorizer
// fails open on the deny list it cannot read, so the verifier alone decides, and exactly one
// token can be accepted: the one signed here.
func fuzzIssuer(f *testing.F) (*Authorizer, string) {
	f.Helper()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	jwk, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: "fuzz-v1", ALG: jwkset.AlgEdDSA, USE: jwkset.UseSig}})
	if err != nil {
		f.Fatal(err)
	}
	store := jwkset.NewMemoryStorage()
	_ = store.KeyWrite(context.Background(), jwk)
	jwks, err := store.JSONPublic(context.Background())
	if err != nil {
		f.Fatal(err)
	}
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			_ = json.NewEncoder(w).Encode(map[string]string{"issuer": srv.URL, "jwks_uri": srv.URL + "/.well-known/jwks.json"})
		case "/.well-known/jwks.json":
			_, _ = w.Write(jwks)
		default:
			http.NotFound(w, r)
		}
	}))
	f.Cleanup(srv.Close)

	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedURL := "http://" + closed.Addr().String()
	closed.Close()
	db := dynamodb.New(dynamodb.Options{Region: "us-east-1", BaseEndpoint: aws.String(closedURL), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")})

	cfg, err := loadConfig(context.Background(), envconfig.MapLookuper(map[string]string{
		"ROLLGATE_ISSUER": srv.URL, "ROLLGATE_AUDIENCES": "orders", "ROLLGATE_ALGORITHMS": "EdDSA",
		"ROLLGATE_DENYLIST_FAIL_OPEN": "true", "ROLLGATE_DENYLIST_REFRESH": "5m", "ROLLGATE_DENYLIST_MAX_STALENESS": "5m",
	}))
	if err != nil {
		f.Fatal(err)
	}
	life, cancel := context.WithCancel(context.Background())
	f.Cleanup(cancel)
	a, err := newAuthorizer(life, cfg, deps{DB: db, HTTP: &http.Client{Timeout: 5 * time.Second},
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), Rec: newEMFRecorder(io.Discard, cfg.Issuer), Inline: true})
	if err != nil {
		f.Fatal(err)
	}
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
		"iss": srv.URL, "aud": "orders", "sub": "billing", "jti": "fuzz-jti",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	})
	tok.Header["kid"], tok.Header["typ"] = "fuzz-v1", "at+jwt"
	signed, err := tok.SignedString(priv)
	if err != nil {
		f.Fatal(err)
	}
	return a, signed
}

// FuzzHandleEvent_NeverPanicsNorAllowsGarbage: whatever bytes arrive as an event, the handler
// answers in bounded time without panicking, and it allows only an event that carries the one
// validly signed token, for that token's subject.
func FuzzHandleEvent_NeverPanicsNorAllowsGarbage(f *testing.F) {
	a, good := fuzzIssuer(f)
	for _, name := range []string{"rest-token", "rest-request", "http-v2"} {
		f.Add(event(f, name, good, "a1b2c3d4e5"))
		f.Add(event(f, name, good[:len(good)-3], "a1b2c3d4e5"))
		f.Add(event(f, name, "e30.e30.", "../../etc"))
	}
	for _, s := range []string{``, `null`, `[]`, `{"type":"TOKEN"}`, `{"type":"REQUEST","version":"2.0","headers":{"authorization":5}}`,
		`{"type":"TOKEN","methodArn":"arn:aws:execute-api:a:b:c/d/*/*","authorizationToken":"Bearer ` + good + `x"}`,
		"\x00\xff{\"type\":", `{"type":"REQUEST","version":"3.0"}`} {
		f.Add([]byte(s))
	}
	// Sanity: the property below is not vacuous; the good token is allowed.
	if resp, err := a.handleEvent(context.Background(), event(f, "rest-request", good, "stable")); err != nil || !allowed(resp) {
		f.Fatalf("the validly signed token is refused: %v", err)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		start := time.Now()
		resp, err := a.handleEvent(context.Background(), raw)
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("answer took %s", took)
		}
		if err != nil {
			if resp != nil {
				t.Fatalf("an error with an answer: %v", resp)
			}
			return
		}
		if allowed(resp) && !bytes.Contains(raw, []byte(good)) {
			t.Fatalf("allowed an event that does not carry the signed token: %q", raw)
		}
		if allowed(resp) && subjectOf(resp) != "billing" {
			t.Fatalf("allowed for %q", subjectOf(resp))
		}
	})
}

// allowed reads an answer of any kind: an Allow policy or isAuthorized true.
func allowed(resp any) bool {
	b, _ := json.Marshal(resp)
	var r struct {
		IsAuthorized   bool                                          `json:"isAuthorized"`
		PolicyDocument struct{ Statement []struct{ Effect string } } `json:"policyDocument"`
	}
	_ = json.Unmarshal(b, &r)
	return r.IsAuthorized || len(r.PolicyDocument.Statement) > 0 && r.PolicyDocument.Statement[0].Effect == "Allow"
}

func subjectOf(resp any) string {
	b, _ := json.Marshal(resp)
	var r struct {
		Context struct {
			Sub string `json:"sub"`
		} `json:"context"`
	}
	_ = json.Unmarshal(b, &r)
	return r.Context.Sub
}
