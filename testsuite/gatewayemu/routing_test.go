package gatewayemu_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigateway"
	"github.com/aws/aws-sdk-go-v2/service/apigateway/types"
	"github.com/aws/aws-sdk-go-v2/service/apigatewayv2"

	"github.com/rollgate/rollgate/testsuite/gatewayemu"
)

// routed calls url and returns the status and the path the echo backend saw, which names the
// resource or route that served the request.
func routed(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got echoed
	_ = json.NewDecoder(resp.Body).Decode(&got)
	return resp.StatusCode, got.Path
}

// REST resources with path parameters match as on AWS: a literal segment wins over a {param},
// which wins over a greedy {proxy+}.
func TestREST_PathParametersRouteByAWSPrecedence(t *testing.T) {
	emu, c, _ := startEmulator(t, gatewayemu.Options{})
	ctx := context.Background()
	api, err := c.CreateRestApi(ctx, &apigateway.CreateRestApiInput{Name: aws.String("routes")})
	if err != nil {
		t.Fatal(err)
	}
	resource := func(parent, part string) string {
		t.Helper()
		res, err := c.CreateResource(ctx, &apigateway.CreateResourceInput{RestApiId: api.Id, ParentId: &parent, PathPart: &part})
		if err != nil {
			t.Fatal(err)
		}
		return *res.Id
	}
	items := resource(*api.RootResourceId, "items")
	item := resource(items, "{id}")
	// Each method's integration URI names its resource, with the path parameters it maps.
	for _, m := range []struct {
		resource, param, uri string
	}{
		{items, "", "/r/items"},
		{item, "id", "/r/item/{id}"},
		{resource(items, "special"), "", "/r/special"},
		{resource(item, "parts"), "id", "/r/parts/{id}"},
		{resource(*api.RootResourceId, "{proxy+}"), "proxy", "/r/proxy/{proxy}"},
	} {
		in := &apigateway.PutMethodInput{RestApiId: api.Id, ResourceId: &m.resource, HttpMethod: aws.String("GET"), AuthorizationType: aws.String("NONE")}
		var params map[string]string
		if m.param != "" {
			in.RequestParameters = map[string]bool{"method.request.path." + m.param: true}
			params = map[string]string{"integration.request.path." + m.param: "method.request.path." + m.param}
		}
		if _, err := c.PutMethod(ctx, in); err != nil {
			t.Fatal(err)
		}
		if _, err := c.PutIntegration(ctx, &apigateway.PutIntegrationInput{RestApiId: api.Id, ResourceId: &m.resource, HttpMethod: aws.String("GET"),
			Type: types.IntegrationTypeHttpProxy, IntegrationHttpMethod: aws.String("GET"), Uri: aws.String("http://${stageVariables.backendUrl}" + m.uri),
			RequestParameters: params}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.CreateDeployment(ctx, &apigateway.CreateDeploymentInput{RestApiId: api.Id, StageName: aws.String("prod"),
		Variables: map[string]string{"backendUrl": echoBackend(t, "rest")}}); err != nil {
		t.Fatal(err)
	}
	url := emu.InvokeURL(*api.Id, "prod")
	for _, tc := range []struct {
		path, want string
		status     int
	}{
		{"/items", "/r/items", 200},
		{"/items/special", "/r/special", 200},
		{"/items/42", "/r/item/42", 200},
		{"/items/42/parts", "/r/parts/42", 200},
		{"/items/42/other", "/r/proxy/items/42/other", 200},
		{"/elsewhere", "/r/proxy/elsewhere", 200},
		{"/", "", http.StatusForbidden}, // no method on /: Missing Authentication Token
	} {
		if status, got := routed(t, "GET", url+tc.path); status != tc.status || got != tc.want {
			t.Errorf("GET %s: %d reached %q; want %d %q", tc.path, status, got, tc.status, tc.want)
		}
	}
}

// HTTP API routes with path variables match as on AWS: the most specific path first, the
// method's route before ANY for the same path, greedy variables last and $default when nothing
// else matches.
func TestHTTPAPI_PathVariablesRouteByAWSPrecedence(t *testing.T) {
	emu, _, c := startEmulator(t, gatewayemu.Options{})
	ctx := context.Background()
	apiID := newHTTPAPI(t, c)
	for key, uri := range map[string]string{
		"GET /items/special": "/r/special",
		"GET /items/{id}":    "/r/get-item/{id}",
		"ANY /items/{id}":    "/r/any-item/{id}",
		"ANY /{proxy+}":      "/r/proxy/{proxy}",
		"$default":           "/r/default",
	} {
		if _, err := c.CreateRoute(ctx, &apigatewayv2.CreateRouteInput{ApiId: apiID, RouteKey: aws.String(key),
			Target: httpProxyTarget(t, c, apiID, "http://${stageVariables.backendUrl}"+uri)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.CreateStage(ctx, &apigatewayv2.CreateStageInput{ApiId: apiID, StageName: aws.String("prod"), AutoDeploy: aws.Bool(true),
		StageVariables: map[string]string{"backendUrl": echoBackend(t, "http")}}); err != nil {
		t.Fatal(err)
	}
	url := emu.InvokeURL(*apiID, "prod")
	for _, tc := range []struct{ method, path, want string }{
		{"GET", "/items/special", "/r/special"},
		{"GET", "/items/42", "/r/get-item/42"},
		{"DELETE", "/items/42", "/r/any-item/42"},
		{"GET", "/items/42/parts", "/r/proxy/items/42/parts"},
		{"GET", "/", "/r/default"},
	} {
		if status, got := routed(t, tc.method, url+tc.path); status != http.StatusOK || got != tc.want {
			t.Errorf("%s %s: %d reached %q; want %q", tc.method, tc.path, status, got, tc.want)
		}
	}
}

// An HTTP API stage serves its deployment's snapshot, or the live API with autoDeploy, and
// nothing before a deployment reaches it.
func TestHTTPAPI_StageServesOnlyOnceDeployedOrAutoDeployed(t *testing.T) {
	emu, _, c := startEmulator(t, gatewayemu.Options{})
	ctx := context.Background()
	apiID := newHTTPAPI(t, c)
	if _, err := c.CreateRoute(ctx, &apigatewayv2.CreateRouteInput{ApiId: apiID, RouteKey: aws.String("ANY /{proxy+}"),
		Target: httpProxyTarget(t, c, apiID, "http://${stageVariables.backendUrl}/{proxy}")}); err != nil {
		t.Fatal(err)
	}
	backendURL := echoBackend(t, "http")
	for _, stage := range []struct {
		name string
		auto bool
	}{{"manual", false}, {"auto", true}} {
		if _, err := c.CreateStage(ctx, &apigatewayv2.CreateStageInput{ApiId: apiID, StageName: aws.String(stage.name), AutoDeploy: aws.Bool(stage.auto),
			StageVariables: map[string]string{"backendUrl": backendURL}}); err != nil {
			t.Fatal(err)
		}
	}
	if status, body, _ := get(t, emu.InvokeURL(*apiID, "manual")+"/orders", nil); status != http.StatusNotFound || body != "{\"message\":\"Not Found\"}\n" {
		t.Fatalf("stage without a deployment: %d %q; want 404 Not Found", status, body)
	}
	if status, got := routed(t, "GET", emu.InvokeURL(*apiID, "auto")+"/orders"); status != http.StatusOK || got != "/orders" {
		t.Fatalf("autoDeploy stage: %d %q", status, got)
	}
	deploy := func() {
		t.Helper()
		dep, err := c.CreateDeployment(ctx, &apigatewayv2.CreateDeploymentInput{ApiId: apiID, StageName: aws.String("manual")})
		if err != nil || dep.Description != nil || dep.DeploymentStatus != "DEPLOYED" {
			t.Fatalf("CreateDeployment = %+v, %v; want DEPLOYED and no description, as AWS answers", dep, err)
		}
	}
	deploy()
	if status, got := routed(t, "GET", emu.InvokeURL(*apiID, "manual")+"/orders"); status != http.StatusOK || got != "/orders" {
		t.Fatalf("deployed stage: %d %q", status, got)
	}

	// A new route reaches the autoDeploy stage at once, the other only with its next deployment.
	if _, err := c.CreateRoute(ctx, &apigatewayv2.CreateRouteInput{ApiId: apiID, RouteKey: aws.String("GET /orders"),
		Target: httpProxyTarget(t, c, apiID, "http://${stageVariables.backendUrl}/fresh")}); err != nil {
		t.Fatal(err)
	}
	if _, got := routed(t, "GET", emu.InvokeURL(*apiID, "auto")+"/orders"); got != "/fresh" {
		t.Fatalf("autoDeploy stage after a new route: reached %q, want /fresh", got)
	}
	if _, got := routed(t, "GET", emu.InvokeURL(*apiID, "manual")+"/orders"); got != "/orders" {
		t.Fatalf("deployed stage after an undeployed route: reached %q, want the deployed /orders", got)
	}
	deploy()
	if _, got := routed(t, "GET", emu.InvokeURL(*apiID, "manual")+"/orders"); got != "/fresh" {
		t.Fatalf("deployed stage after its next deployment: reached %q, want /fresh", got)
	}
}
