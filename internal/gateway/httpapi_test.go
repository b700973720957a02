package gateway_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigatewayv2"
	v2types "github.com/aws/aws-sdk-go-v2/service/apigatewayv2/types"

	"github.com/rollgate/rollgate/internal/gateway"
	"github.com/rollgate/rollgate/testsuite/gatewayemu"
)

// A revocation reaches an HTTP API Lambda authorizer whose Allow is cached only once the stage's
// authorizer cache is flushed.
func TestHTTP_FlushAuthorizerCache_EndsACachedAllowOfALambdaAuthorizer(t *testing.T) {
	ctx := context.Background()
	emu, err := gatewayemu.Start(gatewayemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = emu.Close() })
	var revoked atomic.Bool
	emu.RegisterHTTPLambda("arn:lambda:authz", func(context.Context, gatewayemu.HTTPAuthorizerRequest) (gatewayemu.Decision, error) {
		if revoked.Load() {
			return gatewayemu.Decision{Effect: gatewayemu.Deny}, nil
		}
		return gatewayemu.Decision{Effect: gatewayemu.Allow}, nil
	})
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("us-east-1"), config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")))
	if err != nil {
		t.Fatal(err)
	}
	c := apigatewayv2.NewFromConfig(cfg, func(o *apigatewayv2.Options) { o.BaseEndpoint = aws.String(emu.ControlURL) })
	api, err := c.CreateApi(ctx, &apigatewayv2.CreateApiInput{Name: aws.String("orders"), ProtocolType: v2types.ProtocolTypeHttp})
	if err != nil {
		t.Fatal(err)
	}
	auth, err := c.CreateAuthorizer(ctx, &apigatewayv2.CreateAuthorizerInput{ApiId: api.ApiId, Name: aws.String("lambda"), AuthorizerType: v2types.AuthorizerTypeRequest,
		AuthorizerUri: aws.String("arn:lambda:authz"), AuthorizerPayloadFormatVersion: aws.String("2.0"), EnableSimpleResponses: aws.Bool(true),
		IdentitySource: []string{"$request.header.Authorization"}, AuthorizerResultTtlInSeconds: aws.Int32(300)})
	if err != nil {
		t.Fatal(err)
	}
	integ, err := c.CreateIntegration(ctx, &apigatewayv2.CreateIntegrationInput{ApiId: api.ApiId, IntegrationType: v2types.IntegrationTypeHttpProxy,
		IntegrationMethod: aws.String("ANY"), IntegrationUri: aws.String("http://${stageVariables.backendUrl}/"), PayloadFormatVersion: aws.String("1.0")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateRoute(ctx, &apigatewayv2.CreateRouteInput{ApiId: api.ApiId, RouteKey: aws.String("$default"),
		AuthorizationType: v2types.AuthorizationTypeCustom, AuthorizerId: auth.AuthorizerId, Target: aws.String("integrations/" + *integ.IntegrationId)}); err != nil {
		t.Fatal(err)
	}
	backend := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(backend.Close)
	if _, err := c.CreateStage(ctx, &apigatewayv2.CreateStageInput{ApiId: api.ApiId, StageName: aws.String("prod"), AutoDeploy: aws.Bool(true),
		StageVariables: map[string]string{"backendUrl": strings.TrimPrefix(backend.URL, "http://")}}); err != nil {
		t.Fatal(err)
	}
	status := func() int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, emu.InvokeURL(*api.ApiId, "prod")+"/orders", nil)
		req.Header.Set("Authorization", "Bearer alice")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	if got := status(); got != http.StatusOK {
		t.Fatalf("before the revocation: %d", got)
	}
	revoked.Store(true)
	if got := status(); got != http.StatusOK {
		t.Fatalf("revoked, within the TTL: %d, want the cached 200", got)
	}
	g := &gateway.HTTP{API: c}
	if err := g.FlushAuthorizerCache(ctx, *api.ApiId, "prod"); err != nil {
		t.Fatal(err)
	}
	if got := status(); got != http.StatusForbidden {
		t.Fatalf("revoked, after the flush: %d, want 403", got)
	}
	if err := g.FlushAuthorizerCache(ctx, *api.ApiId, "nope"); !errors.Is(err, gateway.ErrNotFound) {
		t.Fatalf("unknown stage: %v, want ErrNotFound", err)
	}
}
