package gatewayemu_test

import (
	"context"
	"math"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigateway"
	"github.com/aws/aws-sdk-go-v2/service/apigateway/types"

	"github.com/rollgate/rollgate/testsuite/gatewayemu"
)

// restFixture is a REST API with an ANY method on / and /{proxy+}, guarded by a TOKEN authorizer,
// deployed to stage "prod" with a stable backend.
type restFixture struct {
	api, stage, authorizer, rootID, deployment string
	calls                                      *atomic.Int32
}

func newRESTFixture(t testing.TB, emu *gatewayemu.Emulator, c *apigateway.Client, stableURL string) restFixture {
	t.Helper()
	ctx := context.Background()
	api, err := c.CreateRestApi(ctx, &apigateway.CreateRestApiInput{Name: aws.String("orders")})
	if err != nil {
		t.Fatal(err)
	}
	f := restFixture{api: *api.Id, stage: "prod", rootID: *api.RootResourceId, calls: &atomic.Int32{}}
	emu.RegisterLambda("arn:lambda:allow-good", func(_ context.Context, req gatewayemu.AuthorizerRequest) (gatewayemu.Decision, error) {
		f.calls.Add(1)
		switch req.AuthorizationToken {
		case "good":
			return gatewayemu.Decision{Effect: gatewayemu.Allow}, nil
		case "denied":
			return gatewayemu.Decision{Effect: gatewayemu.Deny}, nil
		}
		return gatewayemu.Decision{Effect: gatewayemu.Unauthorized}, nil
	})
	auth, err := c.CreateAuthorizer(ctx, &apigateway.CreateAuthorizerInput{
		RestApiId: api.Id, Name: aws.String("tokens"), Type: types.AuthorizerTypeToken,
		AuthorizerUri: aws.String("arn:lambda:allow-good"), IdentitySource: aws.String("method.request.header.Authorization"),
		AuthorizerResultTtlInSeconds: aws.Int32(300),
	})
	if err != nil {
		t.Fatal(err)
	}
	f.authorizer = *auth.Id
	proxy, err := c.CreateResource(ctx, &apigateway.CreateResourceInput{RestApiId: api.Id, ParentId: api.RootResourceId, PathPart: aws.String("{proxy+}")})
	if err != nil {
		t.Fatal(err)
	}
	for _, res := range []string{f.rootID, *proxy.Id} {
		in := &apigateway.PutMethodInput{RestApiId: api.Id, ResourceId: aws.String(res), HttpMethod: aws.String("ANY"),
			AuthorizationType: aws.String("CUSTOM"), AuthorizerId: auth.Id}
		putProxyIntegration(t, c, in)
	}
	dep, err := c.CreateDeployment(ctx, &apigateway.CreateDeploymentInput{
		RestApiId: api.Id, StageName: aws.String(f.stage), Variables: map[string]string{"backendUrl": hostPort(stableURL)},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.deployment = *dep.Id
	return f
}

func TestREST_ControlPlaneRoundTripsThroughTheSDK(t *testing.T) {
	emu, c, _ := startEmulator(t, gatewayemu.Options{})
	ctx := context.Background()
	f := newRESTFixture(t, emu, c, backend(t, "stable"))

	api, err := c.GetRestApi(ctx, &apigateway.GetRestApiInput{RestApiId: &f.api})
	if err != nil || *api.Name != "orders" || api.CreatedDate == nil {
		t.Fatalf("GetRestApi = %+v, %v", api, err)
	}
	st, err := c.GetStage(ctx, &apigateway.GetStageInput{RestApiId: &f.api, StageName: &f.stage})
	if err != nil || *st.DeploymentId != f.deployment || st.CanarySettings != nil {
		t.Fatalf("GetStage = %+v, %v", st, err)
	}
	// As on AWS, methods come with the resources only when embedded.
	res, err := c.GetResources(ctx, &apigateway.GetResourcesInput{RestApiId: &f.api})
	if err != nil || len(res.Items) != 2 || len(res.Items[0].ResourceMethods) != 0 {
		t.Fatalf("GetResources = %+v, %v", res, err)
	}
	res, err = c.GetResources(ctx, &apigateway.GetResourcesInput{RestApiId: &f.api, Embed: []string{"methods"}})
	if err != nil || len(res.Items) != 2 || res.Items[0].ResourceMethods["ANY"].AuthorizerId == nil || res.Items[1].ResourceMethods["ANY"].MethodIntegration == nil {
		t.Fatalf("GetResources embed=methods = %+v, %v", res, err)
	}
	m, err := c.GetMethod(ctx, &apigateway.GetMethodInput{RestApiId: &f.api, ResourceId: &f.rootID, HttpMethod: aws.String("ANY")})
	if err != nil || *m.AuthorizationType != "CUSTOM" || *m.AuthorizerId != f.authorizer {
		t.Fatalf("GetMethod = %+v, %v", m, err)
	}

	// A canary deployment, its weight, then promotion by copy and removal of the canary.
	canary, err := c.CreateDeployment(ctx, &apigateway.CreateDeploymentInput{
		RestApiId: &f.api, StageName: &f.stage,
		CanarySettings: &types.DeploymentCanarySettings{PercentTraffic: 5, StageVariableOverrides: map[string]string{"backendUrl": "127.0.0.1:1"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	up, err := c.UpdateStage(ctx, &apigateway.UpdateStageInput{RestApiId: &f.api, StageName: &f.stage, PatchOperations: []types.PatchOperation{
		{Op: types.OpReplace, Path: aws.String("/canarySettings/percentTraffic"), Value: aws.String("25.5")},
		{Op: types.OpReplace, Path: aws.String("/variables/release"), Value: aws.String("v2")},
	}})
	if err != nil || up.CanarySettings.PercentTraffic != 25.5 || *up.CanarySettings.DeploymentId != *canary.Id || up.Variables["release"] != "v2" {
		t.Fatalf("UpdateStage weight = %+v, %v", up, err)
	}
	up, err = c.UpdateStage(ctx, &apigateway.UpdateStageInput{RestApiId: &f.api, StageName: &f.stage, PatchOperations: []types.PatchOperation{
		{Op: types.OpCopy, From: aws.String("/canarySettings/deploymentId"), Path: aws.String("/deploymentId")},
		{Op: types.OpCopy, From: aws.String("/canarySettings/stageVariableOverrides"), Path: aws.String("/variables")},
		{Op: types.OpRemove, Path: aws.String("/canarySettings")},
		{Op: types.OpRemove, Path: aws.String("/variables/release")},
	}})
	if err != nil || *up.DeploymentId != *canary.Id || up.CanarySettings != nil || up.Variables["backendUrl"] != "127.0.0.1:1" || up.Variables["release"] != "" {
		t.Fatalf("UpdateStage promote = %+v, %v", up, err)
	}
	// Roll back by pointing the stage at the earlier deployment.
	up, err = c.UpdateStage(ctx, &apigateway.UpdateStageInput{RestApiId: &f.api, StageName: &f.stage, PatchOperations: []types.PatchOperation{
		{Op: types.OpReplace, Path: aws.String("/deploymentId"), Value: &f.deployment},
	}})
	if err != nil || *up.DeploymentId != f.deployment {
		t.Fatalf("UpdateStage rollback = %+v, %v", up, err)
	}
	deps, err := c.GetDeployments(ctx, &apigateway.GetDeploymentsInput{RestApiId: &f.api})
	if err != nil || len(deps.Items) != 2 {
		t.Fatalf("GetDeployments = %+v, %v", deps, err)
	}
	if _, err := c.GetDeployment(ctx, &apigateway.GetDeploymentInput{RestApiId: &f.api, DeploymentId: canary.Id}); err != nil {
		t.Fatal(err)
	}

	// Authorizer patch and cache flush.
	auth, err := c.UpdateAuthorizer(ctx, &apigateway.UpdateAuthorizerInput{RestApiId: &f.api, AuthorizerId: &f.authorizer, PatchOperations: []types.PatchOperation{
		{Op: types.OpReplace, Path: aws.String("/authorizerResultTtlInSeconds"), Value: aws.String("60")},
		{Op: types.OpReplace, Path: aws.String("/identityValidationExpression"), Value: aws.String("^[a-z]+$")},
	}})
	if err != nil || *auth.AuthorizerResultTtlInSeconds != 60 || *auth.IdentityValidationExpression != "^[a-z]+$" {
		t.Fatalf("UpdateAuthorizer = %+v, %v", auth, err)
	}
	got, err := c.GetAuthorizer(ctx, &apigateway.GetAuthorizerInput{RestApiId: &f.api, AuthorizerId: &f.authorizer})
	if err != nil || *got.AuthorizerResultTtlInSeconds != 60 {
		t.Fatalf("GetAuthorizer = %+v, %v", got, err)
	}
	if _, err := c.FlushStageAuthorizersCache(ctx, &apigateway.FlushStageAuthorizersCacheInput{RestApiId: &f.api, StageName: &f.stage}); err != nil {
		t.Fatal(err)
	}

	// API keys and usage plans.
	key, err := c.CreateApiKey(ctx, &apigateway.CreateApiKeyInput{Name: aws.String("partner"), Enabled: true})
	if err != nil || key.Value == nil || len(*key.Value) < 20 {
		t.Fatalf("CreateApiKey = %+v, %v", key, err)
	}
	plan, err := c.CreateUsagePlan(ctx, &apigateway.CreateUsagePlanInput{Name: aws.String("gold"), ApiStages: []types.ApiStage{{ApiId: &f.api, Stage: &f.stage}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateUsagePlanKey(ctx, &apigateway.CreateUsagePlanKeyInput{UsagePlanId: plan.Id, KeyId: key.Id, KeyType: aws.String("API_KEY")}); err != nil {
		t.Fatal(err)
	}
	upd, err := c.UpdateApiKey(ctx, &apigateway.UpdateApiKeyInput{ApiKey: key.Id, PatchOperations: []types.PatchOperation{
		{Op: types.OpReplace, Path: aws.String("/enabled"), Value: aws.String("false")},
	}})
	if err != nil || upd.Enabled {
		t.Fatalf("UpdateApiKey = %+v, %v", upd, err)
	}
	k, err := c.GetApiKey(ctx, &apigateway.GetApiKeyInput{ApiKey: key.Id, IncludeValue: aws.Bool(true)})
	if err != nil || k.Enabled || *k.Value != *key.Value {
		t.Fatalf("GetApiKey = %+v, %v", k, err)
	}
}

func TestREST_TypedErrorsWhereAWSGivesThem(t *testing.T) {
	emu, c, _ := startEmulator(t, gatewayemu.Options{})
	ctx := context.Background()
	f := newRESTFixture(t, emu, c, backend(t, "stable"))
	patch := func(path, value string) error {
		_, err := c.UpdateStage(ctx, &apigateway.UpdateStageInput{RestApiId: &f.api, StageName: &f.stage,
			PatchOperations: []types.PatchOperation{{Op: types.OpReplace, Path: aws.String(path), Value: aws.String(value)}}})
		return err
	}

	_, err := c.GetStage(ctx, &apigateway.GetStageInput{RestApiId: &f.api, StageName: aws.String("nope")})
	as[*types.NotFoundException](t, err)
	_, err = c.GetRestApi(ctx, &apigateway.GetRestApiInput{RestApiId: aws.String("missing")})
	as[*types.NotFoundException](t, err)
	_, err = c.GetAuthorizer(ctx, &apigateway.GetAuthorizerInput{RestApiId: &f.api, AuthorizerId: aws.String("zzz")})
	as[*types.NotFoundException](t, err)

	if err := patch("/canarySettings/percentTraffic", "150"); !strings.Contains(as[*types.BadRequestException](t, err).ErrorMessage(), "between 0.0 and 100.0") {
		t.Fatalf("percentTraffic 150: %v", err)
	}
	if err := patch("/stageName", "other"); !strings.Contains(as[*types.BadRequestException](t, err).ErrorMessage(), "Invalid patch path") {
		t.Fatalf("unknown path: %v", err)
	}
	as[*types.BadRequestException](t, patch("/deploymentId", "nosuch"))
	as[*types.BadRequestException](t, patch("/variables/bad name", "x"))
	_, err = c.UpdateAuthorizer(ctx, &apigateway.UpdateAuthorizerInput{RestApiId: &f.api, AuthorizerId: &f.authorizer, PatchOperations: []types.PatchOperation{
		{Op: types.OpReplace, Path: aws.String("/authorizerResultTtlInSeconds"), Value: aws.String("7200")},
	}})
	as[*types.BadRequestException](t, err)
	_, err = c.CreateStage(ctx, &apigateway.CreateStageInput{RestApiId: &f.api, StageName: &f.stage, DeploymentId: &f.deployment})
	as[*types.ConflictException](t, err)
	empty, err := c.CreateRestApi(ctx, &apigateway.CreateRestApiInput{Name: aws.String("empty")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateDeployment(ctx, &apigateway.CreateDeploymentInput{RestApiId: empty.Id, StageName: aws.String("prod")})
	if !strings.Contains(as[*types.BadRequestException](t, err).ErrorMessage(), "doesn't contain any methods") {
		t.Fatal(err)
	}

	// A failed patch document changes nothing, even when its first operation was valid.
	err = func() error {
		_, err := c.UpdateStage(ctx, &apigateway.UpdateStageInput{RestApiId: &f.api, StageName: &f.stage, PatchOperations: []types.PatchOperation{
			{Op: types.OpReplace, Path: aws.String("/variables/release"), Value: aws.String("v9")},
			{Op: types.OpReplace, Path: aws.String("/nonsense"), Value: aws.String("x")},
		}})
		return err
	}()
	as[*types.BadRequestException](t, err)
	st, err := c.GetStage(ctx, &apigateway.GetStageInput{RestApiId: &f.api, StageName: &f.stage})
	if err != nil || st.Variables["release"] != "" {
		t.Fatalf("a refused patch changed the stage: %+v, %v", st.Variables, err)
	}

	// Throttling without retries surfaces as the typed error.
	emu.InjectFault("GetStage", gatewayemu.Fault{Status: http.StatusTooManyRequests, Count: 1})
	_, err = c.GetStage(ctx, &apigateway.GetStageInput{RestApiId: &f.api, StageName: &f.stage}, func(o *apigateway.Options) { o.RetryMaxAttempts = 1 })
	as[*types.TooManyRequestsException](t, err)
}

func TestREST_ThrottledOperationIsRetriedBySDKThenSucceeds(t *testing.T) {
	emu, c, _ := startEmulator(t, gatewayemu.Options{})
	ctx := context.Background()
	f := newRESTFixture(t, emu, c, backend(t, "stable"))
	before := emu.Calls("UpdateStage")
	emu.InjectFault("UpdateStage", gatewayemu.Fault{Status: http.StatusTooManyRequests, Count: 2})

	st, err := c.UpdateStage(ctx, &apigateway.UpdateStageInput{RestApiId: &f.api, StageName: &f.stage, PatchOperations: []types.PatchOperation{
		{Op: types.OpReplace, Path: aws.String("/variables/release"), Value: aws.String("v2")},
	}})
	if err != nil || st.Variables["release"] != "v2" {
		t.Fatalf("UpdateStage after throttling = %+v, %v", st, err)
	}
	if got := emu.Calls("UpdateStage") - before; got != 3 {
		t.Fatalf("UpdateStage reached the emulator %d times, want 3 (2 throttled + 1)", got)
	}

	emu.InjectFault("GetStage", gatewayemu.Fault{Status: http.StatusServiceUnavailable, Count: 1})
	if _, err := c.GetStage(ctx, &apigateway.GetStageInput{RestApiId: &f.api, StageName: &f.stage}); err != nil {
		t.Fatalf("GetStage after one 503: %v", err)
	}
}

func TestREST_CanarySplitFollowsPercentTraffic(t *testing.T) {
	emu, c, _ := startEmulator(t, gatewayemu.Options{})
	ctx := context.Background()
	f := newRESTFixture(t, emu, c, backend(t, "stable"))
	canary, err := c.CreateDeployment(ctx, &apigateway.CreateDeploymentInput{
		RestApiId: &f.api, StageName: &f.stage,
		CanarySettings: &types.DeploymentCanarySettings{PercentTraffic: 10, StageVariableOverrides: map[string]string{"backendUrl": hostPort(backend(t, "canary"))}},
	})
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000
	canaryHits := 0
	url := emu.InvokeURL(f.api, f.stage) + "/orders/42"
	for range n {
		status, body, h := get(t, url, http.Header{"Authorization": {"good"}})
		if status != http.StatusOK {
			t.Fatalf("status %d: %s", status, body)
		}
		isCanary := h.Get(gatewayemu.CanaryHeader) == "true"
		if isCanary {
			canaryHits++
			if h.Get(gatewayemu.DeploymentHeader) != *canary.Id || body != "canary /orders/42" {
				t.Fatalf("canary answer from %s: %q", h.Get(gatewayemu.DeploymentHeader), body)
			}
		} else if h.Get(gatewayemu.DeploymentHeader) != f.deployment || body != "stable /orders/42" {
			t.Fatalf("stable answer from %s: %q", h.Get(gatewayemu.DeploymentHeader), body)
		}
	}
	share := 100 * float64(canaryHits) / n
	// 10% over 2,000 draws has a standard deviation of 0.67 points; ±2.5 points is 3.7 sigma.
	if math.Abs(share-10) > 2.5 {
		t.Fatalf("canary share %.2f%%, want 10%% ± 2.5", share)
	}
	t.Logf("canary share %.2f%% over %d requests", share, n)
}

func TestREST_TokenAuthorizerAnswersLikeAPIGatewayAndCachesUntilFlushed(t *testing.T) {
	emu, c, _ := startEmulator(t, gatewayemu.Options{})
	ctx := context.Background()
	f := newRESTFixture(t, emu, c, backend(t, "stable"))
	url := emu.InvokeURL(f.api, f.stage)

	status, body, _ := get(t, url+"/x", nil)
	if status != http.StatusUnauthorized || !strings.Contains(body, `"message":"Unauthorized"`) {
		t.Fatalf("no token: %d %s", status, body)
	}
	status, body, _ = get(t, url+"/x", http.Header{"Authorization": {"denied"}})
	if status != http.StatusForbidden || !strings.Contains(body, "explicit deny") {
		t.Fatalf("denied token: %d %s", status, body)
	}
	status, _, _ = get(t, url+"/x", http.Header{"Authorization": {"bogus"}})
	if status != http.StatusUnauthorized {
		t.Fatalf("bogus token: %d", status)
	}
	for range 3 {
		if status, body, _ := get(t, url+"/x", http.Header{"Authorization": {"good"}}); status != 200 || body != "stable /x" {
			t.Fatalf("good token: %d %s", status, body)
		}
	}
	if got := f.calls.Load(); got != 3 { // denied, bogus, good once: then cached
		t.Fatalf("authorizer Lambda ran %d times, want 3", got)
	}
	if _, err := c.FlushStageAuthorizersCache(ctx, &apigateway.FlushStageAuthorizersCacheInput{RestApiId: &f.api, StageName: &f.stage}); err != nil {
		t.Fatal(err)
	}
	get(t, url+"/x", http.Header{"Authorization": {"good"}})
	if got := f.calls.Load(); got != 4 {
		t.Fatalf("after a flush the Lambda ran %d times in all, want 4", got)
	}

	// An authorizer change reaches traffic only through a new deployment, as on AWS.
	emu.RegisterLambda("arn:lambda:deny-all", func(context.Context, gatewayemu.AuthorizerRequest) (gatewayemu.Decision, error) {
		return gatewayemu.Decision{Effect: gatewayemu.Deny}, nil
	})
	if _, err := c.UpdateAuthorizer(ctx, &apigateway.UpdateAuthorizerInput{RestApiId: &f.api, AuthorizerId: &f.authorizer, PatchOperations: []types.PatchOperation{
		{Op: types.OpReplace, Path: aws.String("/authorizerUri"), Value: aws.String("arn:lambda:deny-all")},
	}}); err != nil {
		t.Fatal(err)
	}
	if status, _, _ := get(t, url+"/x", http.Header{"Authorization": {"good"}}); status != http.StatusOK {
		t.Fatalf("undeployed authorizer change took effect: %d", status)
	}
	if _, err := c.CreateDeployment(ctx, &apigateway.CreateDeploymentInput{RestApiId: &f.api, StageName: &f.stage}); err != nil {
		t.Fatal(err)
	}
	if status, _, _ := get(t, url+"/x", http.Header{"Authorization": {"good"}}); status != http.StatusForbidden {
		t.Fatalf("deployed deny-all authorizer: status %d, want 403", status)
	}
}

func TestREST_APIKeyRequiredMethodsCheckTheKey(t *testing.T) {
	emu, c, _ := startEmulator(t, gatewayemu.Options{})
	ctx := context.Background()
	api, err := c.CreateRestApi(ctx, &apigateway.CreateRestApiInput{Name: aws.String("keys")})
	if err != nil {
		t.Fatal(err)
	}
	putProxyIntegration(t, c, &apigateway.PutMethodInput{RestApiId: api.Id, ResourceId: api.RootResourceId, HttpMethod: aws.String("GET"),
		AuthorizationType: aws.String("NONE"), ApiKeyRequired: true})
	if _, err := c.CreateDeployment(ctx, &apigateway.CreateDeploymentInput{RestApiId: api.Id, StageName: aws.String("prod"),
		Variables: map[string]string{"backendUrl": hostPort(backend(t, "stable"))}}); err != nil {
		t.Fatal(err)
	}
	key, err := c.CreateApiKey(ctx, &apigateway.CreateApiKeyInput{Name: aws.String("partner"), Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := c.CreateUsagePlan(ctx, &apigateway.CreateUsagePlanInput{Name: aws.String("gold"), ApiStages: []types.ApiStage{{ApiId: api.Id, Stage: aws.String("prod")}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateUsagePlanKey(ctx, &apigateway.CreateUsagePlanKeyInput{UsagePlanId: plan.Id, KeyId: key.Id, KeyType: aws.String("API_KEY")}); err != nil {
		t.Fatal(err)
	}
	url := emu.InvokeURL(*api.Id, "prod")
	if status, _, _ := get(t, url, nil); status != http.StatusForbidden {
		t.Fatalf("no key: %d", status)
	}
	if status, _, _ := get(t, url, http.Header{"X-Api-Key": {*key.Value}}); status != http.StatusOK {
		t.Fatalf("valid key: %d", status)
	}
	if _, err := c.UpdateApiKey(ctx, &apigateway.UpdateApiKeyInput{ApiKey: key.Id, PatchOperations: []types.PatchOperation{
		{Op: types.OpReplace, Path: aws.String("/enabled"), Value: aws.String("false")}}}); err != nil {
		t.Fatal(err)
	}
	if status, _, _ := get(t, url, http.Header{"X-Api-Key": {*key.Value}}); status != http.StatusForbidden {
		t.Fatalf("disabled key: %d", status)
	}
	if status, _, _ := get(t, url+"/elsewhere", http.Header{"X-Api-Key": {*key.Value}}); status != http.StatusForbidden {
		t.Fatalf("path without a method: %d", status)
	}
}
