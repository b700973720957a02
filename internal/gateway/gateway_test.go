package gateway_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigateway"
	"github.com/aws/aws-sdk-go-v2/service/apigateway/types"
	"github.com/aws/aws-sdk-go-v2/service/apigatewayv2"
	v2types "github.com/aws/aws-sdk-go-v2/service/apigatewayv2/types"

	"github.com/rollgate/rollgate/internal/gateway"
	"github.com/rollgate/rollgate/testsuite/gatewayemu"
)

type fixture struct {
	emu                 *gatewayemu.Emulator
	api                 *apigateway.Client
	g                   *gateway.REST
	apiID, stage, authz string
	stable              string
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	ctx := context.Background()
	emu, err := gatewayemu.Start(gatewayemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = emu.Close() })
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")),
		config.WithRetryer(func() aws.Retryer { return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxBackoff = 10e6 }) }))
	if err != nil {
		t.Fatal(err)
	}
	c := apigateway.NewFromConfig(cfg, func(o *apigateway.Options) { o.BaseEndpoint = aws.String(emu.ControlURL) })
	api, err := c.CreateRestApi(ctx, &apigateway.CreateRestApiInput{Name: aws.String("orders")})
	if err != nil {
		t.Fatal(err)
	}
	auth, err := c.CreateAuthorizer(ctx, &apigateway.CreateAuthorizerInput{RestApiId: api.Id, Name: aws.String("tokens"),
		Type: types.AuthorizerTypeToken, AuthorizerUri: aws.String("arn:lambda:v1"), AuthorizerResultTtlInSeconds: aws.Int32(300)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutMethod(ctx, &apigateway.PutMethodInput{RestApiId: api.Id, ResourceId: api.RootResourceId, HttpMethod: aws.String("ANY"), AuthorizationType: aws.String("NONE")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutIntegration(ctx, &apigateway.PutIntegrationInput{RestApiId: api.Id, ResourceId: api.RootResourceId, HttpMethod: aws.String("ANY"),
		Type: types.IntegrationTypeHttpProxy, IntegrationHttpMethod: aws.String("ANY"), Uri: aws.String("http://${stageVariables.backendUrl}/")}); err != nil {
		t.Fatal(err)
	}
	dep, err := c.CreateDeployment(ctx, &apigateway.CreateDeploymentInput{RestApiId: api.Id, StageName: aws.String("prod"),
		Variables: map[string]string{"backendUrl": "127.0.0.1:1", "color": "blue"}})
	if err != nil {
		t.Fatal(err)
	}
	return fixture{emu: emu, api: c, g: &gateway.REST{API: c}, apiID: *api.Id, stage: "prod", authz: *auth.Id, stable: *dep.Id}
}

func TestStartCanary_RetriedCreatesNoSecondDeployment(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	vars := map[string]string{"backendUrl": "127.0.0.1:2"}
	first, err := f.g.StartCanary(ctx, f.apiID, f.stage, gateway.Canary{Marker: "rollgate deploy/x run-1", Weight: 10, Variables: vars})
	if err != nil {
		t.Fatal(err)
	}
	again, err := f.g.StartCanary(ctx, f.apiID, f.stage, gateway.Canary{Marker: "rollgate deploy/x run-1", Weight: 10, Variables: vars})
	if err != nil || again != first {
		t.Fatalf("retried StartCanary: %s, %v; want %s", again, err, first)
	}
	deps, _ := f.api.GetDeployments(ctx, &apigateway.GetDeploymentsInput{RestApiId: &f.apiID})
	if len(deps.Items) != 2 {
		t.Fatalf("%d deployments after a retried canary start, want 2", len(deps.Items))
	}
	if _, err := f.g.StartCanary(ctx, f.apiID, f.stage, gateway.Canary{Marker: "another release", Weight: 10, Variables: vars}); !errors.Is(err, gateway.ErrConflict) {
		t.Fatalf("a second release over a running canary: %v, want ErrConflict", err)
	}
	if err := f.g.SetWeight(ctx, f.apiID, f.stage, 50); err != nil {
		t.Fatal(err)
	}
	before := f.emu.Calls("UpdateStage")
	if err := f.g.SetWeight(ctx, f.apiID, f.stage, 50); err != nil || f.emu.Calls("UpdateStage") != before {
		t.Fatalf("setting the same weight again wrote to the stage (%v)", err)
	}
	st, _ := f.g.GetStage(ctx, f.apiID, f.stage)
	if st.CanaryWeight != 50 || st.CanaryDeploymentID != first || st.DeploymentID != f.stable {
		t.Fatalf("stage %+v", st)
	}
}

func TestPromoteAndRestore_RoundTripTheStage(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	snapshot, err := f.g.GetStage(ctx, f.apiID, f.stage)
	if err != nil {
		t.Fatal(err)
	}
	canary, err := f.g.StartCanary(ctx, f.apiID, f.stage, gateway.Canary{Marker: "m", Weight: 25, Variables: map[string]string{"backendUrl": "127.0.0.1:2"}})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := f.g.Promote(ctx, f.apiID, f.stage, canary); err != nil {
			t.Fatal(err)
		}
	}
	st, _ := f.g.GetStage(ctx, f.apiID, f.stage)
	if st.DeploymentID != canary || st.HasCanary() || st.Variables["backendUrl"] != "127.0.0.1:2" || st.Variables["color"] != "blue" {
		t.Fatalf("after promotion: %+v", st)
	}
	for range 2 {
		if err := f.g.Restore(ctx, f.apiID, f.stage, snapshot); err != nil {
			t.Fatal(err)
		}
	}
	st, _ = f.g.GetStage(ctx, f.apiID, f.stage)
	if st.DeploymentID != f.stable || st.HasCanary() || st.Variables["backendUrl"] != "127.0.0.1:1" {
		t.Fatalf("after restore: %+v", st)
	}
}

func TestApplyAuthorizerSettings_WritesOnlyDifferences(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	before, err := f.g.GetAuthorizer(ctx, f.apiID, f.authz)
	if err != nil {
		t.Fatal(err)
	}
	changed, err := f.g.ApplyAuthorizerSettings(ctx, f.apiID, f.authz, map[string]string{"/authorizerUri": "arn:lambda:v2", "/authorizerResultTtlInSeconds": "60"})
	if err != nil || !changed {
		t.Fatalf("apply: %v, %v", changed, err)
	}
	changed, err = f.g.ApplyAuthorizerSettings(ctx, f.apiID, f.authz, map[string]string{"/authorizerUri": "arn:lambda:v2", "/authorizerResultTtlInSeconds": "60"})
	if err != nil || changed {
		t.Fatalf("re-apply changed something: %v, %v", changed, err)
	}
	if f.emu.Calls("UpdateAuthorizer") != 1 {
		t.Fatalf("authorizer updated %d times, want 1", f.emu.Calls("UpdateAuthorizer"))
	}
	if err := f.g.FlushAuthorizerCache(ctx, f.apiID, f.stage); err != nil || f.emu.Calls("FlushStageAuthorizersCache") != 1 {
		t.Fatalf("flush: %v, %d calls", err, f.emu.Calls("FlushStageAuthorizersCache"))
	}
	if _, err := f.g.ApplyAuthorizerSettings(ctx, f.apiID, f.authz, before.Settings); err != nil {
		t.Fatal(err)
	}
	after, _ := f.g.GetAuthorizer(ctx, f.apiID, f.authz)
	if after.Settings["/authorizerUri"] != "arn:lambda:v1" || after.Settings["/authorizerResultTtlInSeconds"] != "300" {
		t.Fatalf("restored authorizer %+v", after.Settings)
	}
}

func TestMapError_SortsRetryableFromFinal(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	if _, err := f.g.GetStage(ctx, f.apiID, "nope"); !errors.Is(err, gateway.ErrNotFound) {
		t.Fatalf("missing stage: %v", err)
	}
	if err := f.g.SetWeight(ctx, f.apiID, f.stage, 10); !errors.Is(err, gateway.ErrConflict) {
		t.Fatalf("weight without a canary: %v", err)
	}
	if _, err := f.g.ApplyAuthorizerSettings(ctx, f.apiID, f.authz, map[string]string{"/authorizerResultTtlInSeconds": "99999"}); !errors.Is(err, gateway.ErrInvalid) {
		t.Fatalf("bad TTL: %v", err)
	}
	f.emu.InjectFault("GetStage", gatewayemu.Fault{Status: http.StatusTooManyRequests})
	if _, err := f.g.GetStage(ctx, f.apiID, f.stage); !errors.Is(err, gateway.ErrThrottled) {
		t.Fatalf("throttled: %v", err)
	}
}

func TestHTTP_ReleaseAppliesVariablesToTheWholeStageAndRestoreRemovesThem(t *testing.T) {
	ctx := context.Background()
	emu, err := gatewayemu.Start(gatewayemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	cfg, _ := config.LoadDefaultConfig(ctx, config.WithRegion("us-east-1"), config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")))
	c := apigatewayv2.NewFromConfig(cfg, func(o *apigatewayv2.Options) { o.BaseEndpoint = aws.String(emu.ControlURL) })
	api, err := c.CreateApi(ctx, &apigatewayv2.CreateApiInput{Name: aws.String("orders"), ProtocolType: v2types.ProtocolTypeHttp})
	if err != nil {
		t.Fatal(err)
	}
	auth, err := c.CreateAuthorizer(ctx, &apigatewayv2.CreateAuthorizerInput{ApiId: api.ApiId, Name: aws.String("jwt"), AuthorizerType: v2types.AuthorizerTypeJwt,
		IdentitySource: []string{"$request.header.Authorization"}, JwtConfiguration: &v2types.JWTConfiguration{Issuer: aws.String("https://issuer.example.com"), Audience: []string{"orders"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateStage(ctx, &apigatewayv2.CreateStageInput{ApiId: api.ApiId, StageName: aws.String("prod"), StageVariables: map[string]string{"backendUrl": "http://v1"}}); err != nil {
		t.Fatal(err)
	}
	g := &gateway.HTTP{API: c}
	snap, _ := g.GetStage(ctx, *api.ApiId, "prod")
	if _, err := g.StartCanary(ctx, *api.ApiId, "prod", gateway.Canary{Weight: 20}); !errors.Is(err, gateway.ErrInvalid) {
		t.Fatalf("a 20%% canary on an HTTP API: %v", err)
	}
	if _, err := g.StartCanary(ctx, *api.ApiId, "prod", gateway.Canary{Weight: 100, Variables: map[string]string{"backendUrl": "http://v2", "release": "v2"}}); err != nil {
		t.Fatal(err)
	}
	changed, err := g.ApplyAuthorizerSettings(ctx, *api.ApiId, *auth.AuthorizerId, map[string]string{gateway.JWTAudiencePath: "orders,orders-v2"})
	if err != nil || !changed {
		t.Fatalf("apply authorizer: %v %v", changed, err)
	}
	st, _ := g.GetStage(ctx, *api.ApiId, "prod")
	if st.Variables["backendUrl"] != "http://v2" || st.Variables["release"] != "v2" {
		t.Fatalf("released stage %+v", st)
	}
	if err := g.Restore(ctx, *api.ApiId, "prod", snap); err != nil {
		t.Fatal(err)
	}
	st, _ = g.GetStage(ctx, *api.ApiId, "prod")
	if st.Variables["backendUrl"] != "http://v1" || st.Variables["release"] != "" {
		t.Fatalf("restored stage %+v", st)
	}
	a, _ := g.GetAuthorizer(ctx, *api.ApiId, *auth.AuthorizerId)
	if a.Settings[gateway.JWTAudiencePath] != "orders,orders-v2" || a.Settings[gateway.JWTIssuerPath] != "https://issuer.example.com" {
		t.Fatalf("authorizer %+v", a.Settings)
	}
	if _, err := g.GetStage(ctx, *api.ApiId, "nope"); !errors.Is(err, gateway.ErrNotFound) {
		t.Fatalf("missing stage: %v", err)
	}
}

func TestSetAPIKeyEnabled_WritesOnlyWhenItChanges(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	key, err := f.api.CreateApiKey(ctx, &apigateway.CreateApiKeyInput{Name: aws.String("partner"), Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	if changed, err := f.g.SetAPIKeyEnabled(ctx, *key.Id, true); err != nil || changed {
		t.Fatalf("enabling an enabled key: %v, %v", changed, err)
	}
	if changed, err := f.g.SetAPIKeyEnabled(ctx, *key.Id, false); err != nil || !changed {
		t.Fatalf("disabling: %v, %v", changed, err)
	}
	got, _ := f.api.GetApiKey(ctx, &apigateway.GetApiKeyInput{ApiKey: key.Id})
	if got.Enabled || f.emu.Calls("UpdateApiKey") != 1 {
		t.Fatalf("key enabled %v after %d updates", got.Enabled, f.emu.Calls("UpdateApiKey"))
	}
	if _, err := f.g.SetAPIKeyEnabled(ctx, "nope", false); !errors.Is(err, gateway.ErrNotFound) {
		t.Fatalf("unknown key: %v", err)
	}
}
