package gatewayemu_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigateway"
	"github.com/aws/aws-sdk-go-v2/service/apigatewayv2"
	"github.com/golang-jwt/jwt/v5"

	"github.com/rollgate/rollgate/testsuite/gatewayemu"
)

// startEmulator starts an emulator for one test and SDK clients pointed at it.
func startEmulator(t testing.TB, opts gatewayemu.Options) (*gatewayemu.Emulator, *apigateway.Client, *apigatewayv2.Client) {
	t.Helper()
	emu, err := gatewayemu.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = emu.Close() })
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxBackoff = 50 * time.Millisecond })
		}),
	)
	if err != nil {
		t.Fatal(err)
	}
	rest := apigateway.NewFromConfig(cfg, func(o *apigateway.Options) { o.BaseEndpoint = aws.String(emu.ControlURL) })
	v2 := apigatewayv2.NewFromConfig(cfg, func(o *apigatewayv2.Options) { o.BaseEndpoint = aws.String(emu.ControlURL) })
	return emu, rest, v2
}

// backend is an integration target that names itself in every answer.
func backend(t *testing.T, name string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", name, r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// hostPort is a backend URL without its scheme: the value of a backendUrl stage variable that an
// integration URI uses as http://${stageVariables.backendUrl}/..., as AWS wants the scheme written.
func hostPort(backendURL string) string {
	return strings.TrimPrefix(backendURL, "http://")
}

// putProxyIntegration puts the method and its HTTP_PROXY integration to the backend named by the
// stage variable backendUrl. On a {proxy+} resource the method declares the path parameter and
// the integration maps it into the URI, as on AWS; elsewhere the URI is the resource's own path.
func putProxyIntegration(t testing.TB, c *apigateway.Client, m *apigateway.PutMethodInput) {
	t.Helper()
	ctx := context.Background()
	res, err := c.GetResource(ctx, &apigateway.GetResourceInput{RestApiId: m.RestApiId, ResourceId: m.ResourceId})
	if err != nil {
		t.Fatal(err)
	}
	uri := "http://${stageVariables.backendUrl}" + *res.Path
	var params map[string]string
	if base, ok := strings.CutSuffix(*res.Path, "{proxy+}"); ok {
		m.RequestParameters = map[string]bool{"method.request.path.proxy": true}
		uri = "http://${stageVariables.backendUrl}" + base + "{proxy}"
		params = map[string]string{"integration.request.path.proxy": "method.request.path.proxy"}
	}
	if _, err := c.PutMethod(ctx, m); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutIntegration(ctx, &apigateway.PutIntegrationInput{RestApiId: m.RestApiId, ResourceId: m.ResourceId,
		HttpMethod: m.HttpMethod, Type: "HTTP_PROXY", IntegrationHttpMethod: aws.String("ANY"), Uri: &uri,
		RequestParameters: params}); err != nil {
		t.Fatal(err)
	}
}

// httpProxyTarget creates an HTTP API's HTTP_PROXY integration to uri (stage variables and the
// route's path parameters allowed) and returns the route target naming it.
func httpProxyTarget(t testing.TB, c *apigatewayv2.Client, apiID *string, uri string) *string {
	t.Helper()
	integ, err := c.CreateIntegration(context.Background(), &apigatewayv2.CreateIntegrationInput{ApiId: apiID,
		IntegrationType: "HTTP_PROXY", IntegrationMethod: aws.String("ANY"), IntegrationUri: &uri, PayloadFormatVersion: aws.String("1.0")})
	if err != nil {
		t.Fatal(err)
	}
	return aws.String("integrations/" + *integ.IntegrationId)
}

// issuer is an OpenID issuer serving a discovery document and a JWKS that tests can change.
type issuer struct {
	URL      string
	mu       sync.Mutex
	keys     map[string]*rsa.PrivateKey
	jwksHits int
	slow     time.Duration // how long the JWKS takes to answer, as a busy issuer's
}

func newIssuer(t *testing.T) *issuer {
	t.Helper()
	iss := &issuer{keys: map[string]*rsa.PrivateKey{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			_ = json.NewEncoder(w).Encode(map[string]string{"issuer": iss.URL, "jwks_uri": iss.URL + "/jwks.json"})
		case "/jwks.json":
			iss.mu.Lock()
			defer iss.mu.Unlock()
			time.Sleep(iss.slow)
			iss.jwksHits++
			store := jwkset.NewMemoryStorage()
			for kid, k := range iss.keys {
				jwk, err := jwkset.NewJWKFromKey(&k.PublicKey, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid, ALG: jwkset.AlgRS256, USE: jwkset.UseSig}})
				if err != nil {
					http.Error(w, err.Error(), 500)
					return
				}
				_ = store.KeyWrite(r.Context(), jwk)
			}
			raw, _ := store.JSONPublic(r.Context())
			_, _ = w.Write(raw)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	iss.URL = srv.URL
	return iss
}

func newRSAKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (iss *issuer) publish(kid string, k *rsa.PrivateKey) {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	iss.keys[kid] = k
}

func (iss *issuer) hits() int {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	return iss.jwksHits
}

// token signs an RS256 access token for aud with the key and kid given.
func (iss *issuer) token(t *testing.T, kid string, k *rsa.PrivateKey, aud string, exp time.Time) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": iss.URL, "sub": "client-1", "aud": aud, "iat": time.Now().Unix(), "exp": exp.Unix(),
	})
	tok.Header["kid"] = kid
	s, err := tok.SignedString(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// get calls the data plane and returns the status, body and response headers.
func get(t *testing.T, url string, header http.Header) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sb []byte
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		sb = append(sb, buf[:n]...)
		if err != nil {
			break
		}
	}
	return resp.StatusCode, string(sb), resp.Header
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

// as asserts err is of the SDK's typed error T.
func as[T error](t *testing.T, err error) T {
	t.Helper()
	var target T
	if !errors.As(err, &target) {
		t.Fatalf("error %v (%T) is not a %T", err, err, target)
	}
	return target
}
