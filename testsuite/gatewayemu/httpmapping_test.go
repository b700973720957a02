package gatewayemu_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewayv2"
	"github.com/aws/aws-sdk-go-v2/service/apigatewayv2/types"

	"github.com/rollgate/rollgate/testsuite/gatewayemu"
)

// mappedRoute creates a route with an HTTP_PROXY integration to the echo backend carrying the
// given parameter mappings.
func mappedRoute(t *testing.T, c *apigatewayv2.Client, apiID *string, key, uri string, auth *apigatewayv2.CreateAuthorizerOutput, params map[string]string) {
	t.Helper()
	ctx := context.Background()
	integ, err := c.CreateIntegration(ctx, &apigatewayv2.CreateIntegrationInput{ApiId: apiID, IntegrationType: types.IntegrationTypeHttpProxy,
		IntegrationMethod: aws.String("ANY"), IntegrationUri: &uri, RequestParameters: params})
	if err != nil {
		t.Fatal(err)
	}
	in := &apigatewayv2.CreateRouteInput{ApiId: apiID, RouteKey: &key, Target: aws.String("integrations/" + *integ.IntegrationId),
		AuthorizationType: types.AuthorizationTypeJwt, AuthorizerId: auth.AuthorizerId}
	if auth.AuthorizerType == types.AuthorizerTypeRequest {
		in.AuthorizationType = types.AuthorizationTypeCustom
	}
	if _, err := c.CreateRoute(ctx, in); err != nil {
		t.Fatal(err)
	}
}

// An HTTP API integration's parameter mappings hand the authorizer's identity (a JWT's claims, a
// Lambda authorizer's context), stage variables, path variables and context variables to the
// backend, as on AWS.
func TestHTTPAPI_ParameterMappingHandsTheAuthorizersIdentityToTheBackend(t *testing.T) {
	emu, _, c := startEmulator(t, gatewayemu.Options{})
	ctx := context.Background()
	iss := newIssuer(t)
	key := newRSAKey(t)
	iss.publish("k1", key)
	emu.RegisterHTTPLambda(lambdaURI, func(context.Context, gatewayemu.HTTPAuthorizerRequest) (gatewayemu.Decision, error) {
		return gatewayemu.Decision{Effect: gatewayemu.Allow, Context: map[string]any{"tenant": "acme", "tier": 2}}, nil
	})
	apiID := newHTTPAPI(t, c)
	jwtAuth, err := c.CreateAuthorizer(ctx, &apigatewayv2.CreateAuthorizerInput{ApiId: apiID, Name: aws.String("jwt"), AuthorizerType: types.AuthorizerTypeJwt,
		IdentitySource: []string{"$request.header.Authorization"}, JwtConfiguration: &types.JWTConfiguration{Issuer: aws.String(iss.URL), Audience: []string{"orders"}}})
	if err != nil {
		t.Fatal(err)
	}
	lambdaAuth, err := c.CreateAuthorizer(ctx, requestAuthorizer(apiID))
	if err != nil {
		t.Fatal(err)
	}
	mappedRoute(t, c, apiID, "ANY /{proxy+}", "http://${stageVariables.backendUrl}/{proxy}", jwtAuth, map[string]string{
		"overwrite:header.X-Subject":    "$context.authorizer.claims.sub",
		"overwrite:header.X-Absent":     "$context.authorizer.claims.client_id",
		"overwrite:header.X-Mixed":      "v=${stageVariables.version};p=$request.path.proxy",
		"append:querystring.stage":      "${context.stage}",
		"remove:header.X-Drop":          "''",
		"overwrite:querystring.replace": "new",
	})
	mappedRoute(t, c, apiID, "GET /tenants/{id}", "http://${stageVariables.backendUrl}/t/{id}", lambdaAuth, map[string]string{
		"overwrite:header.X-Tenant": "$context.authorizer.tenant",
		"overwrite:header.X-Tier":   "$context.authorizer.tier",
		"overwrite:path":            "/rewritten/$request.path.id",
	})
	if _, err := c.CreateStage(ctx, &apigatewayv2.CreateStageInput{ApiId: apiID, StageName: aws.String("prod"), AutoDeploy: aws.Bool(true),
		StageVariables: map[string]string{"backendUrl": echoBackend(t, "mapped"), "version": "7"}}); err != nil {
		t.Fatal(err)
	}
	call := func(path string, h http.Header) echoed {
		t.Helper()
		req, _ := http.NewRequest("GET", emu.InvokeURL(*apiID, "prod")+path, nil)
		req.Header = h
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var got echoed
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&got) != nil {
			t.Fatalf("GET %s: status %d", path, resp.StatusCode)
		}
		return got
	}

	h := bearer(iss.token(t, "k1", key, "orders", time.Now().Add(time.Hour)))
	h.Set("X-Drop", "secret")
	got := call("/orders/9?replace=old", h)
	if got.Path != "/orders/9" || got.Header.Get("X-Subject") != "client-1" || got.Header.Values("X-Absent") != nil ||
		got.Header.Get("X-Mixed") != "v=7;p=orders/9" || got.Header.Get("X-Drop") != "" || got.Query != "replace=new&stage=prod" {
		t.Fatalf("JWT route: %+v", got)
	}
	got = call("/tenants/42", http.Header{"Authorization": {"Bearer alice"}})
	if got.Path != "/rewritten/42" || got.Header.Get("X-Tenant") != "acme" || got.Header.Get("X-Tier") != "2" {
		t.Fatalf("Lambda route: %+v", got)
	}
}
