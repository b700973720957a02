package gatewayemu_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigateway"
	"github.com/aws/aws-sdk-go-v2/service/apigateway/types"
	"github.com/aws/aws-sdk-go-v2/service/apigatewayv2"
	v2types "github.com/aws/aws-sdk-go-v2/service/apigatewayv2/types"
	"github.com/aws/smithy-go"

	"github.com/rollgate/rollgate/testsuite/gatewayemu"
)

// echoed is what the echo backend saw of a request.
type echoed struct {
	Backend, Method, Path, Query string
	Header                       http.Header
}

// echoBackend answers every request with what it received, naming itself.
func echoBackend(t *testing.T, name string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(echoed{Backend: name, Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header})
	}))
	t.Cleanup(srv.Close)
	return hostPort(srv.URL)
}

// integrationAPI is a REST API with a GET method on /items/{id} (no integration yet) and the
// authorizer-free methods the tests add.
type integrationAPI struct {
	api, root, item string
}

func newIntegrationAPI(t *testing.T, c *apigateway.Client) integrationAPI {
	t.Helper()
	ctx := context.Background()
	api, err := c.CreateRestApi(ctx, &apigateway.CreateRestApiInput{Name: aws.String("integrations")})
	if err != nil {
		t.Fatal(err)
	}
	items, err := c.CreateResource(ctx, &apigateway.CreateResourceInput{RestApiId: api.Id, ParentId: api.RootResourceId, PathPart: aws.String("items")})
	if err != nil {
		t.Fatal(err)
	}
	item, err := c.CreateResource(ctx, &apigateway.CreateResourceInput{RestApiId: api.Id, ParentId: items.Id, PathPart: aws.String("{id}")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutMethod(ctx, &apigateway.PutMethodInput{RestApiId: api.Id, ResourceId: item.Id, HttpMethod: aws.String("GET"),
		AuthorizationType: aws.String("NONE"), RequestParameters: map[string]bool{"method.request.path.id": true, "method.request.header.X-Trace": false}}); err != nil {
		t.Fatal(err)
	}
	return integrationAPI{api: *api.Id, root: *api.RootResourceId, item: *item.Id}
}

func TestREST_PutIntegrationAnswersAsAWS(t *testing.T) {
	_, c, _ := startEmulator(t, gatewayemu.Options{})
	ctx := context.Background()
	f := newIntegrationAPI(t, c)
	put := func(mut func(*apigateway.PutIntegrationInput)) (*apigateway.PutIntegrationOutput, error) {
		in := &apigateway.PutIntegrationInput{RestApiId: &f.api, ResourceId: &f.item, HttpMethod: aws.String("GET"), Type: types.IntegrationTypeHttpProxy,
			IntegrationHttpMethod: aws.String("GET"), Uri: aws.String("http://${stageVariables.backendUrl}/items/{id}"),
			RequestParameters: map[string]string{"integration.request.path.id": "method.request.path.id"}}
		mut(in)
		return c.PutIntegration(ctx, in)
	}
	for _, tc := range []struct {
		name     string
		mut      func(*apigateway.PutIntegrationInput)
		wantCode string
		wantMsg  string
	}{
		{"no integration method", func(in *apigateway.PutIntegrationInput) { in.IntegrationHttpMethod = nil }, "BadRequestException", "Enumeration value for HttpMethod must be non-empty"},
		{"no uri", func(in *apigateway.PutIntegrationInput) { in.Uri = nil }, "BadRequestException", "Invalid HTTP endpoint specified for URI"},
		{"uri without scheme", func(in *apigateway.PutIntegrationInput) { in.Uri = aws.String("${stageVariables.backendUrl}/x") }, "BadRequestException", "Invalid HTTP endpoint specified for URI"},
		{"undeclared method parameter", func(in *apigateway.PutIntegrationInput) {
			in.RequestParameters = map[string]string{"integration.request.path.id": "method.request.path.proxy"}
		}, "BadRequestException", "Invalid mapping expression specified: Validation Result: warnings : [], errors : [Invalid mapping expression parameter specified: method.request.path.proxy]"},
		{"bad target", func(in *apigateway.PutIntegrationInput) {
			in.RequestParameters = map[string]string{"integration.request.body.id": "method.request.path.id"}
		}, "BadRequestException", "Invalid mapping expression specified: Validation Result: warnings : [], errors : [Invalid mapping expression specified: integration.request.body.id]"},
		{"AWS_PROXY refused by name", func(in *apigateway.PutIntegrationInput) { in.Type = types.IntegrationTypeAwsProxy }, "BadRequestException", "does not support integration type AWS_PROXY"},
		{"timeout too short", func(in *apigateway.PutIntegrationInput) { in.TimeoutInMillis = aws.Int32(10) }, "BadRequestException", "Timeout should be between 50 ms and 29000 ms"},
		{"credentials refused by name", func(in *apigateway.PutIntegrationInput) { in.Credentials = aws.String("arn:aws:iam::1:role/x") }, "BadRequestException", "does not support integration credentials"},
		{"unknown method", func(in *apigateway.PutIntegrationInput) { in.HttpMethod = aws.String("POST") }, "NotFoundException", "Invalid Method identifier specified"},
		{"unknown resource", func(in *apigateway.PutIntegrationInput) { in.ResourceId = aws.String("nosuch") }, "NotFoundException", "Invalid Resource identifier specified"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := put(tc.mut)
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != tc.wantCode || !strings.Contains(ae.ErrorMessage(), tc.wantMsg) {
				t.Fatalf("PutIntegration: %v, want %s %q", err, tc.wantCode, tc.wantMsg)
			}
		})
	}

	// A method without an integration cannot be deployed.
	_, err := c.CreateDeployment(ctx, &apigateway.CreateDeploymentInput{RestApiId: &f.api, StageName: aws.String("prod")})
	if !strings.Contains(as[*types.BadRequestException](t, err).ErrorMessage(), "No integration defined for method") {
		t.Fatalf("CreateDeployment without an integration: %v", err)
	}
	_, err = c.GetIntegration(ctx, &apigateway.GetIntegrationInput{RestApiId: &f.api, ResourceId: &f.item, HttpMethod: aws.String("GET")})
	if as[*types.NotFoundException](t, err).ErrorMessage() != "Invalid Integration identifier specified" {
		t.Fatal(err)
	}

	// AWS's defaults, then the same on GetIntegration and embedded in GetMethod.
	out, err := put(func(*apigateway.PutIntegrationInput) {})
	if err != nil || out.Type != types.IntegrationTypeHttpProxy || *out.HttpMethod != "GET" || *out.Uri != "http://${stageVariables.backendUrl}/items/{id}" ||
		out.ConnectionType != types.ConnectionTypeInternet || *out.PassthroughBehavior != "WHEN_NO_MATCH" || out.TimeoutInMillis != 29000 ||
		*out.CacheNamespace != f.item || out.CacheKeyParameters == nil || len(out.CacheKeyParameters) != 0 ||
		out.RequestParameters["integration.request.path.id"] != "method.request.path.id" {
		t.Fatalf("PutIntegration = %+v, %v", out, err)
	}
	got, err := c.GetIntegration(ctx, &apigateway.GetIntegrationInput{RestApiId: &f.api, ResourceId: &f.item, HttpMethod: aws.String("GET")})
	if err != nil || *got.Uri != *out.Uri || got.TimeoutInMillis != 29000 {
		t.Fatalf("GetIntegration = %+v, %v", got, err)
	}
	m, err := c.GetMethod(ctx, &apigateway.GetMethodInput{RestApiId: &f.api, ResourceId: &f.item, HttpMethod: aws.String("GET")})
	if err != nil || m.MethodIntegration == nil || *m.MethodIntegration.Uri != *out.Uri || !m.RequestParameters["method.request.path.id"] {
		t.Fatalf("GetMethod = %+v, %v", m, err)
	}
	if _, err := c.CreateDeployment(ctx, &apigateway.CreateDeploymentInput{RestApiId: &f.api, StageName: aws.String("prod")}); err != nil {
		t.Fatalf("CreateDeployment with every method integrated: %v", err)
	}
	if _, err := c.DeleteIntegration(ctx, &apigateway.DeleteIntegrationInput{RestApiId: &f.api, ResourceId: &f.item, HttpMethod: aws.String("GET")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetIntegration(ctx, &apigateway.GetIntegrationInput{RestApiId: &f.api, ResourceId: &f.item, HttpMethod: aws.String("GET")})
	as[*types.NotFoundException](t, err)
}

func TestREST_IntegrationsCarryStageVariablesParametersAndTheAuthorizerContext(t *testing.T) {
	emu, c, _ := startEmulator(t, gatewayemu.Options{})
	ctx := context.Background()
	f := newIntegrationAPI(t, c)
	emu.RegisterLambda("arn:lambda:context", func(_ context.Context, req gatewayemu.AuthorizerRequest) (gatewayemu.Decision, error) {
		return gatewayemu.Decision{Effect: gatewayemu.Allow, PrincipalID: "user-7", Context: map[string]any{"client_id": "billing", "n": 3}}, nil
	})
	auth, err := c.CreateAuthorizer(ctx, &apigateway.CreateAuthorizerInput{RestApiId: &f.api, Name: aws.String("ctx"), Type: types.AuthorizerTypeRequest,
		AuthorizerUri: aws.String("arn:lambda:context"), IdentitySource: aws.String("method.request.header.Authorization"), AuthorizerResultTtlInSeconds: aws.Int32(0)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutIntegration(ctx, &apigateway.PutIntegrationInput{RestApiId: &f.api, ResourceId: &f.item, HttpMethod: aws.String("GET"),
		Type: types.IntegrationTypeHttp, IntegrationHttpMethod: aws.String("POST"), Uri: aws.String("http://${stageVariables.backendUrl}/v/${stageVariables.version}/{item}"),
		RequestParameters: map[string]string{
			"integration.request.path.item":          "method.request.path.id",
			"integration.request.header.X-Trace":     "method.request.header.X-Trace",
			"integration.request.querystring.stage":  "context.stage",
			"integration.request.header.X-Static":    "'fixed'",
			"integration.request.header.X-Variable":  "stageVariables.version",
			"integration.request.header.X-Principal": "context.authorizer.principalId",
		}}); err != nil {
		t.Fatal(err)
	}
	proxy, err := c.CreateResource(ctx, &apigateway.CreateResourceInput{RestApiId: &f.api, ParentId: &f.root, PathPart: aws.String("{proxy+}")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutMethod(ctx, &apigateway.PutMethodInput{RestApiId: &f.api, ResourceId: proxy.Id, HttpMethod: aws.String("ANY"),
		AuthorizationType: aws.String("CUSTOM"), AuthorizerId: auth.Id, RequestParameters: map[string]bool{"method.request.path.proxy": true}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutIntegration(ctx, &apigateway.PutIntegrationInput{RestApiId: &f.api, ResourceId: proxy.Id, HttpMethod: aws.String("ANY"),
		Type: types.IntegrationTypeHttpProxy, IntegrationHttpMethod: aws.String("ANY"), Uri: aws.String("http://${stageVariables.backendUrl}/{proxy}"),
		RequestParameters: map[string]string{
			"integration.request.path.proxy":      "method.request.path.proxy",
			"integration.request.header.X-Client": "context.authorizer.client_id",
			"integration.request.header.X-N":      "context.authorizer.n",
			"integration.request.header.X-None":   "context.authorizer.absent",
		}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutMethod(ctx, &apigateway.PutMethodInput{RestApiId: &f.api, ResourceId: &f.root, HttpMethod: aws.String("GET"), AuthorizationType: aws.String("NONE")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutIntegration(ctx, &apigateway.PutIntegrationInput{RestApiId: &f.api, ResourceId: &f.root, HttpMethod: aws.String("GET"), Type: types.IntegrationTypeMock,
		RequestTemplates: map[string]string{"application/json": `{"statusCode": 200}`}}); err != nil {
		t.Fatal(err)
	}
	stable, canary := echoBackend(t, "stable"), echoBackend(t, "canary")
	if _, err := c.CreateDeployment(ctx, &apigateway.CreateDeploymentInput{RestApiId: &f.api, StageName: aws.String("prod"),
		Variables: map[string]string{"backendUrl": stable, "version": "1"}}); err != nil {
		t.Fatal(err)
	}
	url := emu.InvokeURL(f.api, "prod")
	call := func(method, path string, h http.Header) echoed {
		t.Helper()
		req, _ := http.NewRequest(method, url+path, nil)
		req.Header = h
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e echoed
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&e) != nil {
			t.Fatalf("%s %s: status %d", method, path, resp.StatusCode)
		}
		return e
	}

	// HTTP: the URI's stage variables and path parameter, only the mapped headers and query.
	got := call("GET", "/items/a%20b?drop=1", http.Header{"X-Trace": {"t1"}, "X-Unmapped": {"u"}})
	if got.Backend != "stable" || got.Method != "POST" || got.Path != "/v/1/a b" || got.Query != "stage=prod" ||
		got.Header.Get("X-Trace") != "t1" || got.Header.Get("X-Static") != "fixed" || got.Header.Get("X-Variable") != "1" ||
		got.Header.Get("X-Unmapped") != "" || got.Header.Get("X-Principal") != "" {
		t.Fatalf("HTTP integration request: %+v", got)
	}
	// HTTP_PROXY: the greedy path, the client's headers and query, the authorizer's context.
	got = call("DELETE", "/orders/42/lines?x=1", http.Header{"Authorization": {"tok"}, "X-Unmapped": {"u"}})
	if got.Backend != "stable" || got.Method != "DELETE" || got.Path != "/orders/42/lines" || got.Query != "x=1" ||
		got.Header.Get("X-Unmapped") != "u" || got.Header.Get("X-Client") != "billing" || got.Header.Get("X-N") != "3" ||
		got.Header.Values("X-None") != nil {
		t.Fatalf("HTTP_PROXY integration request: %+v", got)
	}
	// MOCK: 200 and an empty body, no backend.
	resp, err := http.Get(url + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength != 0 {
		t.Fatalf("MOCK: status %d, length %d", resp.StatusCode, resp.ContentLength)
	}

	// A canary's stage variable overrides choose its backend at request time.
	if _, err := c.CreateDeployment(ctx, &apigateway.CreateDeploymentInput{RestApiId: &f.api, StageName: aws.String("prod"),
		CanarySettings: &types.DeploymentCanarySettings{PercentTraffic: 100, StageVariableOverrides: map[string]string{"backendUrl": canary, "version": "2"}}}); err != nil {
		t.Fatal(err)
	}
	if got := call("GET", "/items/7", nil); got.Backend != "canary" || got.Path != "/v/2/7" {
		t.Fatalf("canary request: %+v", got)
	}
}

func TestHTTPAPI_CreateIntegrationAnswersAsAWS(t *testing.T) {
	_, _, c := startEmulator(t, gatewayemu.Options{})
	ctx := context.Background()
	apiID := newHTTPAPI(t, c)
	create := func(mut func(*apigatewayv2.CreateIntegrationInput)) (*apigatewayv2.CreateIntegrationOutput, error) {
		in := &apigatewayv2.CreateIntegrationInput{ApiId: apiID, IntegrationType: v2types.IntegrationTypeHttpProxy,
			IntegrationMethod: aws.String("ANY"), IntegrationUri: aws.String("http://${stageVariables.backendUrl}/{proxy}")}
		mut(in)
		return c.CreateIntegration(ctx, in)
	}
	for _, tc := range []struct {
		name    string
		mut     func(*apigatewayv2.CreateIntegrationInput)
		wantMsg string
	}{
		{"no method", func(in *apigatewayv2.CreateIntegrationInput) { in.IntegrationMethod = nil }, "IntegrationMethod is required"},
		{"uri without scheme", func(in *apigatewayv2.CreateIntegrationInput) {
			in.IntegrationUri = aws.String("${stageVariables.backendUrl}")
		}, "Invalid integration URI"},
		{"payload format 2.0", func(in *apigatewayv2.CreateIntegrationInput) { in.PayloadFormatVersion = aws.String("2.0") }, "Payload format version 2.0"},
		{"AWS_PROXY refused by name", func(in *apigatewayv2.CreateIntegrationInput) { in.IntegrationType = v2types.IntegrationTypeAwsProxy }, "does not support integration type AWS_PROXY"},
		{"MOCK is WebSocket only", func(in *apigatewayv2.CreateIntegrationInput) { in.IntegrationType = v2types.IntegrationTypeMock }, "Invalid integration type"},
		{"timeout above 30 s", func(in *apigatewayv2.CreateIntegrationInput) { in.TimeoutInMillis = aws.Int32(30001) }, "between 50 and 30000"},
		{"mapping key", func(in *apigatewayv2.CreateIntegrationInput) {
			in.RequestParameters = map[string]string{"set:header.x": "$request.header.y"}
		}, "Invalid mapping key set:header.x"},
		{"mapping from the body refused", func(in *apigatewayv2.CreateIntegrationInput) {
			in.RequestParameters = map[string]string{"append:header.x": "$request.body.name"}
		}, "Invalid mapping expression $request.body.name"},
		{"response mapping refused by name", func(in *apigatewayv2.CreateIntegrationInput) {
			in.ResponseParameters = map[string]map[string]string{"200": {"append:header.x": "'y'"}}
		}, "does not support responseParameters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := create(tc.mut)
			if !strings.Contains(as[*v2types.BadRequestException](t, err).ErrorMessage(), tc.wantMsg) {
				t.Fatalf("CreateIntegration: %v, want %q", err, tc.wantMsg)
			}
		})
	}

	out, err := create(func(*apigatewayv2.CreateIntegrationInput) {})
	if err != nil || out.IntegrationType != v2types.IntegrationTypeHttpProxy || *out.IntegrationMethod != "ANY" || *out.PayloadFormatVersion != "1.0" ||
		out.ConnectionType != v2types.ConnectionTypeInternet || *out.TimeoutInMillis != 30000 || out.IntegrationId == nil {
		t.Fatalf("CreateIntegration = %+v, %v", out, err)
	}
	got, err := c.GetIntegration(ctx, &apigatewayv2.GetIntegrationInput{ApiId: apiID, IntegrationId: out.IntegrationId})
	if err != nil || *got.IntegrationUri != *out.IntegrationUri {
		t.Fatalf("GetIntegration = %+v, %v", got, err)
	}
	list, err := c.GetIntegrations(ctx, &apigatewayv2.GetIntegrationsInput{ApiId: apiID})
	if err != nil || len(list.Items) != 1 || *list.Items[0].IntegrationId != *out.IntegrationId {
		t.Fatalf("GetIntegrations = %+v, %v", list, err)
	}
	_, err = c.GetIntegration(ctx, &apigatewayv2.GetIntegrationInput{ApiId: apiID, IntegrationId: aws.String("nosuch")})
	as[*v2types.NotFoundException](t, err)
	_, err = c.CreateRoute(ctx, &apigatewayv2.CreateRouteInput{ApiId: apiID, RouteKey: aws.String("GET /x"), Target: aws.String("integrations/nosuch")})
	as[*v2types.BadRequestException](t, err)
}

func TestHTTPAPI_RoutesReachTheirIntegrationWithStageVariablesAndPathParameters(t *testing.T) {
	emu, _, c := startEmulator(t, gatewayemu.Options{})
	ctx := context.Background()
	apiID := newHTTPAPI(t, c)
	routes := map[string]string{
		"GET /items/{id}": "http://${stageVariables.backendUrl}/v/${stageVariables.version}/item/{id}",
		"ANY /{proxy+}":   "http://${stageVariables.backendUrl}/{proxy}",
	}
	for key, uri := range routes {
		if _, err := c.CreateRoute(ctx, &apigatewayv2.CreateRouteInput{ApiId: apiID, RouteKey: aws.String(key), Target: httpProxyTarget(t, c, apiID, uri)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.CreateRoute(ctx, &apigatewayv2.CreateRouteInput{ApiId: apiID, RouteKey: aws.String("GET /unwired")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateStage(ctx, &apigatewayv2.CreateStageInput{ApiId: apiID, StageName: aws.String("prod"), AutoDeploy: aws.Bool(true),
		StageVariables: map[string]string{"backendUrl": echoBackend(t, "stable"), "version": "3"}}); err != nil {
		t.Fatal(err)
	}
	url := emu.InvokeURL(*apiID, "prod")
	for _, tc := range []struct{ method, path, wantMethod, wantPath, wantQuery string }{
		{"GET", "/items/42?full=1", "GET", "/v/3/item/42", "full=1"},
		{"DELETE", "/items/42", "DELETE", "/items/42", ""},
		{"POST", "/orders/7/lines", "POST", "/orders/7/lines", ""},
	} {
		req, _ := http.NewRequest(tc.method, url+tc.path, nil)
		req.Header.Set("X-Client", "c1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var got echoed
		_ = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || got.Method != tc.wantMethod || got.Path != tc.wantPath || got.Query != tc.wantQuery || got.Header.Get("X-Client") != "c1" {
			t.Errorf("%s %s: %d %+v; want %s %s?%s", tc.method, tc.path, resp.StatusCode, got, tc.wantMethod, tc.wantPath, tc.wantQuery)
		}
	}
	// A route without an integration answers 500, as on AWS.
	if status, body, _ := get(t, url+"/unwired", nil); status != http.StatusInternalServerError || !strings.Contains(body, "Internal Server Error") {
		t.Fatalf("route without an integration: %d %s", status, body)
	}
}
