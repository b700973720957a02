package gatewayemu_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewayv2"
	"github.com/aws/aws-sdk-go-v2/service/apigatewayv2/types"

	"github.com/rollgate/rollgate/testsuite/gatewayemu"
)

// httpFixture is an HTTP API whose $default route needs a JWT from iss for audience "orders".
type httpFixture struct {
	api, authorizer, stage string
}

func newHTTPFixture(t *testing.T, c *apigatewayv2.Client, iss *issuer, backendURL string) httpFixture {
	t.Helper()
	ctx := context.Background()
	api, err := c.CreateApi(ctx, &apigatewayv2.CreateApiInput{Name: aws.String("orders-http"), ProtocolType: types.ProtocolTypeHttp})
	if err != nil {
		t.Fatal(err)
	}
	auth, err := c.CreateAuthorizer(ctx, &apigatewayv2.CreateAuthorizerInput{
		ApiId: api.ApiId, Name: aws.String("jwt"), AuthorizerType: types.AuthorizerTypeJwt,
		IdentitySource:   []string{"$request.header.Authorization"},
		JwtConfiguration: &types.JWTConfiguration{Issuer: aws.String(iss.URL), Audience: []string{"orders"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateRoute(ctx, &apigatewayv2.CreateRouteInput{ApiId: api.ApiId, RouteKey: aws.String("ANY /{proxy+}"),
		AuthorizationType: types.AuthorizationTypeJwt, AuthorizerId: auth.AuthorizerId,
		Target: httpProxyTarget(t, c, api.ApiId, "http://${stageVariables.backendUrl}/{proxy}")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateStage(ctx, &apigatewayv2.CreateStageInput{ApiId: api.ApiId, StageName: aws.String("prod"), AutoDeploy: aws.Bool(true),
		StageVariables: map[string]string{"backendUrl": hostPort(backendURL)}}); err != nil {
		t.Fatal(err)
	}
	return httpFixture{api: *api.ApiId, authorizer: *auth.AuthorizerId, stage: "prod"}
}

func TestHTTPAPI_ControlPlaneRoundTripsThroughTheSDK(t *testing.T) {
	_, _, c := startEmulator(t, gatewayemu.Options{})
	ctx := context.Background()
	f := newHTTPFixture(t, c, newIssuer(t), backend(t, "stable"))

	api, err := c.GetApi(ctx, &apigatewayv2.GetApiInput{ApiId: &f.api})
	if err != nil || *api.Name != "orders-http" || api.ProtocolType != types.ProtocolTypeHttp || api.CreatedDate == nil {
		t.Fatalf("GetApi = %+v, %v", api, err)
	}
	upd, err := c.UpdateAuthorizer(ctx, &apigatewayv2.UpdateAuthorizerInput{ApiId: &f.api, AuthorizerId: &f.authorizer,
		JwtConfiguration: &types.JWTConfiguration{Audience: []string{"orders", "orders-v2"}}})
	if err != nil || len(upd.JwtConfiguration.Audience) != 2 || *upd.JwtConfiguration.Issuer == "" {
		t.Fatalf("UpdateAuthorizer = %+v, %v", upd, err)
	}
	got, err := c.GetAuthorizer(ctx, &apigatewayv2.GetAuthorizerInput{ApiId: &f.api, AuthorizerId: &f.authorizer})
	if err != nil || got.JwtConfiguration.Audience[1] != "orders-v2" || got.AuthorizerType != types.AuthorizerTypeJwt {
		t.Fatalf("GetAuthorizer = %+v, %v", got, err)
	}
	st, err := c.UpdateStage(ctx, &apigatewayv2.UpdateStageInput{ApiId: &f.api, StageName: &f.stage,
		StageVariables: map[string]string{"release": "v2"}})
	if err != nil || st.StageVariables["release"] != "v2" || st.StageVariables["backendUrl"] == "" {
		t.Fatalf("UpdateStage = %+v, %v", st, err)
	}
	gs, err := c.GetStage(ctx, &apigatewayv2.GetStageInput{ApiId: &f.api, StageName: &f.stage})
	if err != nil || gs.StageVariables["release"] != "v2" || gs.LastUpdatedDate == nil {
		t.Fatalf("GetStage = %+v, %v", gs, err)
	}
	routes, err := c.GetRoutes(ctx, &apigatewayv2.GetRoutesInput{ApiId: &f.api})
	if err != nil || len(routes.Items) != 1 || *routes.Items[0].RouteKey != "ANY /{proxy+}" {
		t.Fatalf("GetRoutes = %+v, %v", routes, err)
	}
	dep, err := c.CreateDeployment(ctx, &apigatewayv2.CreateDeploymentInput{ApiId: &f.api, StageName: &f.stage})
	if err != nil || dep.DeploymentId == nil {
		t.Fatalf("CreateDeployment = %+v, %v", dep, err)
	}

	_, err = c.GetStage(ctx, &apigatewayv2.GetStageInput{ApiId: &f.api, StageName: aws.String("nope")})
	as[*types.NotFoundException](t, err)
	_, err = c.UpdateAuthorizer(ctx, &apigatewayv2.UpdateAuthorizerInput{ApiId: &f.api, AuthorizerId: &f.authorizer,
		JwtConfiguration: &types.JWTConfiguration{Issuer: aws.String("not a url")}})
	as[*types.BadRequestException](t, err)
	_, err = c.CreateStage(ctx, &apigatewayv2.CreateStageInput{ApiId: &f.api, StageName: &f.stage})
	as[*types.ConflictException](t, err)
}

func TestHTTPAPI_JWTAuthorizerChecksTokensAgainstTheIssuersJWKS(t *testing.T) {
	emu, _, c := startEmulator(t, gatewayemu.Options{UnknownKIDRefresh: time.Millisecond})
	iss := newIssuer(t)
	published, unpublished := newRSAKey(t), newRSAKey(t)
	iss.publish("k1", published)
	f := newHTTPFixture(t, c, iss, backend(t, "stable"))
	url := emu.InvokeURL(f.api, f.stage) + "/orders"
	soon := time.Now().Add(time.Hour)

	if status, body, _ := get(t, url, bearer(iss.token(t, "k1", published, "orders", soon))); status != http.StatusOK || body != "stable /orders" {
		t.Fatalf("valid token: %d %s", status, body)
	}
	cases := []struct {
		name, token, reason string
	}{
		{"missing", "", "missing"},
		{"kid not in JWKS", iss.token(t, "k2", unpublished, "orders", soon), "not in the JWKS"},
		{"known kid, other key", iss.token(t, "k1", unpublished, "orders", soon), "valid signature"},
		{"expired", iss.token(t, "k1", published, "orders", time.Now().Add(-time.Minute)), "expired"},
		{"wrong audience", iss.token(t, "k1", published, "billing", soon), "audience"},
		{"garbage", "abc.def.ghi", "malformed"},
	}
	for _, tc := range cases {
		status, body, h := get(t, url, bearer(tc.token))
		www := h.Get("Www-Authenticate")
		if status != http.StatusUnauthorized || !strings.Contains(body, "Unauthorized") ||
			!strings.Contains(www, `error="invalid_token"`) || !strings.Contains(www, tc.reason) {
			t.Errorf("%s: %d %s, www-authenticate %q; want 401 naming %q", tc.name, status, body, www, tc.reason)
		}
	}

	// Publishing the new key makes its tokens pass: the authorizer refetches on an unknown kid.
	// A request that meets the unknown-kid rate limiter before it refills is refused, so poll: on
	// a busy machine the limiter's 1 ms can pass long after the publication.
	hits := iss.hits()
	iss.publish("k2", unpublished)
	token := iss.token(t, "k2", unpublished, "orders", soon)
	for deadline := time.Now().Add(10 * time.Second); ; {
		status, body, _ := get(t, url, bearer(token))
		if status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("token of a newly published key: %d %s", status, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if iss.hits() <= hits {
		t.Fatal("the JWKS was not refetched for the unknown kid")
	}
}

// A key published after the authorizer fetched the JWKS: the first token of it is accepted, the
// unknown kid refetching the JWKS even when the issuer takes 50 ms to answer (a refetch bounded
// by a millisecond failed, and the kid stayed unknown until the hourly refresh).
func TestHTTPAPI_JWTAuthorizer_AnUnknownKidRefetchesASlowJWKS(t *testing.T) {
	emu, _, c := startEmulator(t, gatewayemu.Options{})
	iss := newIssuer(t)
	first, second := newRSAKey(t), newRSAKey(t)
	iss.publish("k1", first)
	f := newHTTPFixture(t, c, iss, backend(t, "stable"))
	url := emu.InvokeURL(f.api, f.stage) + "/orders"
	soon := time.Now().Add(time.Hour)
	if status, body, _ := get(t, url, bearer(iss.token(t, "k1", first, "orders", soon))); status != http.StatusOK {
		t.Fatalf("token of the first key: %d %s", status, body)
	}
	iss.mu.Lock()
	iss.slow = 50 * time.Millisecond
	iss.mu.Unlock()
	iss.publish("k2", second)
	if status, body, _ := get(t, url, bearer(iss.token(t, "k2", second, "orders", soon))); status != http.StatusOK {
		t.Fatalf("the first token of a key published since: %d %s", status, body)
	}
}
