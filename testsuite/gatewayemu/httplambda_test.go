package gatewayemu_test

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewayv2"
	"github.com/aws/aws-sdk-go-v2/service/apigatewayv2/types"

	"github.com/rollgate/rollgate/testsuite/gatewayemu"
)

const lambdaURI = "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:000000000000:function:authz/invocations"

// requestAuthorizer is CreateAuthorizer's input for a Lambda REQUEST authorizer, which each case
// changes.
func requestAuthorizer(apiID *string) *apigatewayv2.CreateAuthorizerInput {
	return &apigatewayv2.CreateAuthorizerInput{ApiId: apiID, Name: aws.String("lambda"), AuthorizerType: types.AuthorizerTypeRequest,
		AuthorizerUri: aws.String(lambdaURI), AuthorizerPayloadFormatVersion: aws.String("2.0"), EnableSimpleResponses: aws.Bool(true),
		IdentitySource: []string{"$request.header.Authorization"}, AuthorizerResultTtlInSeconds: aws.Int32(300)}
}

func newHTTPAPI(t *testing.T, c *apigatewayv2.Client) *string {
	t.Helper()
	api, err := c.CreateApi(context.Background(), &apigatewayv2.CreateApiInput{Name: aws.String("orders-http"), ProtocolType: types.ProtocolTypeHttp})
	if err != nil {
		t.Fatal(err)
	}
	return api.ApiId
}

func TestHTTPAPI_CreateRequestAuthorizer_RefusesWhatAWSRefuses(t *testing.T) {
	_, _, c := startEmulator(t, gatewayemu.Options{})
	apiID := newHTTPAPI(t, c)
	for _, tc := range []struct {
		name    string
		change  func(*apigatewayv2.CreateAuthorizerInput)
		message string
	}{
		{"no payload format version", func(in *apigatewayv2.CreateAuthorizerInput) { in.AuthorizerPayloadFormatVersion = nil },
			"AuthorizerPayloadFormatVersion is a required parameter for REQUEST authorizer"},
		{"unknown payload format version", func(in *apigatewayv2.CreateAuthorizerInput) { in.AuthorizerPayloadFormatVersion = aws.String("3.0") },
			"valid values are 1.0, 2.0"},
		{"simple responses with 1.0", func(in *apigatewayv2.CreateAuthorizerInput) { in.AuthorizerPayloadFormatVersion = aws.String("1.0") },
			"EnableSimpleResponses is supported only for AuthorizerPayloadFormatVersion 2.0"},
		{"TTL above an hour", func(in *apigatewayv2.CreateAuthorizerInput) { in.AuthorizerResultTtlInSeconds = aws.Int32(3601) },
			"between 0 and 3600"},
		{"negative TTL", func(in *apigatewayv2.CreateAuthorizerInput) { in.AuthorizerResultTtlInSeconds = aws.Int32(-1) },
			"between 0 and 3600"},
		{"caching without identity source", func(in *apigatewayv2.CreateAuthorizerInput) { in.IdentitySource = []string{} },
			"Identity source must be set if authorizer caching is enabled (TTL is greater than 0)"},
		{"identity source not a selection expression", func(in *apigatewayv2.CreateAuthorizerInput) { in.IdentitySource = []string{"Authorization"} },
			"Invalid identity source"},
		{"context variable the emulator cannot read", func(in *apigatewayv2.CreateAuthorizerInput) {
			in.IdentitySource = []string{"$context.requestId"}
		}, "$context.requestId"},
		{"no authorizer URI", func(in *apigatewayv2.CreateAuthorizerInput) { in.AuthorizerUri = nil }, "AuthorizerUri"},
		{"Lambda settings on a JWT authorizer", func(in *apigatewayv2.CreateAuthorizerInput) {
			in.AuthorizerType = types.AuthorizerTypeJwt
			in.JwtConfiguration = &types.JWTConfiguration{Issuer: aws.String("https://issuer.example.com"), Audience: []string{"orders"}}
		}, "REQUEST authorizers only"},
	} {
		in := requestAuthorizer(apiID)
		tc.change(in)
		_, err := c.CreateAuthorizer(context.Background(), in)
		var br *types.BadRequestException
		if !errors.As(err, &br) || !strings.Contains(aws.ToString(br.Message), tc.message) {
			t.Errorf("%s: %v; want a BadRequestException saying %q", tc.name, err, tc.message)
		}
	}

	// Caching off needs no identity source (the SDK still sends the required list, empty), and an
	// unset TTL is caching off.
	in := requestAuthorizer(apiID)
	in.IdentitySource, in.AuthorizerResultTtlInSeconds = []string{}, nil
	out, err := c.CreateAuthorizer(context.Background(), in)
	if err != nil || aws.ToInt32(out.AuthorizerResultTtlInSeconds) != 0 || out.AuthorizerResultTtlInSeconds == nil || out.IdentitySource != nil {
		t.Fatalf("REQUEST authorizer without identity source or TTL: %+v, %v; want TTL 0", out, err)
	}
}

func TestHTTPAPI_RequestAuthorizer_AnswersEveryFieldAWSReturns(t *testing.T) {
	ctx := context.Background()
	_, _, c := startEmulator(t, gatewayemu.Options{})
	apiID := newHTTPAPI(t, c)
	in := requestAuthorizer(apiID)
	in.AuthorizerCredentialsArn = aws.String("arn:aws:iam::000000000000:role/apigateway-invoke")
	in.IdentitySource = []string{"$request.header.Authorization", "$context.routeKey"}
	created, err := c.CreateAuthorizer(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.GetAuthorizer(ctx, &apigatewayv2.GetAuthorizerInput{ApiId: apiID, AuthorizerId: created.AuthorizerId})
	if err != nil {
		t.Fatal(err)
	}
	want := apigatewayv2.GetAuthorizerOutput{AuthorizerId: created.AuthorizerId, Name: aws.String("lambda"),
		AuthorizerType: types.AuthorizerTypeRequest, AuthorizerUri: aws.String(lambdaURI),
		AuthorizerCredentialsArn:       aws.String("arn:aws:iam::000000000000:role/apigateway-invoke"),
		AuthorizerPayloadFormatVersion: aws.String("2.0"), AuthorizerResultTtlInSeconds: aws.Int32(300), EnableSimpleResponses: aws.Bool(true),
		IdentitySource: []string{"$request.header.Authorization", "$context.routeKey"}}
	got.ResultMetadata = want.ResultMetadata
	if !reflect.DeepEqual(*got, want) {
		t.Fatalf("GetAuthorizer\n got %+v\nwant %+v", *got, want)
	}

	// An update is checked as a whole: simple responses stay a 2.0 feature.
	_, err = c.UpdateAuthorizer(ctx, &apigatewayv2.UpdateAuthorizerInput{ApiId: apiID, AuthorizerId: created.AuthorizerId,
		AuthorizerPayloadFormatVersion: aws.String("1.0")})
	as[*types.BadRequestException](t, err)
	upd, err := c.UpdateAuthorizer(ctx, &apigatewayv2.UpdateAuthorizerInput{ApiId: apiID, AuthorizerId: created.AuthorizerId,
		AuthorizerPayloadFormatVersion: aws.String("1.0"), EnableSimpleResponses: aws.Bool(false), AuthorizerResultTtlInSeconds: aws.Int32(60)})
	if err != nil || aws.ToString(upd.AuthorizerPayloadFormatVersion) != "1.0" || aws.ToBool(upd.EnableSimpleResponses) ||
		aws.ToInt32(upd.AuthorizerResultTtlInSeconds) != 60 || aws.ToString(upd.AuthorizerUri) != lambdaURI {
		t.Fatalf("UpdateAuthorizer = %+v, %v", upd, err)
	}

	// A JWT authorizer has no Lambda settings to answer.
	jwt, err := c.CreateAuthorizer(ctx, &apigatewayv2.CreateAuthorizerInput{ApiId: apiID, Name: aws.String("jwt"), AuthorizerType: types.AuthorizerTypeJwt,
		IdentitySource:   []string{"$request.header.Authorization"},
		JwtConfiguration: &types.JWTConfiguration{Issuer: aws.String("https://issuer.example.com"), Audience: []string{"orders"}}})
	if err != nil || jwt.EnableSimpleResponses != nil || jwt.AuthorizerResultTtlInSeconds != nil || jwt.AuthorizerPayloadFormatVersion != nil || jwt.AuthorizerUri != nil {
		t.Fatalf("JWT authorizer = %+v, %v; want no Lambda settings", jwt, err)
	}
}

func TestHTTPAPI_ResetAuthorizersCache_AnswersNoContentOrNotFound(t *testing.T) {
	ctx := context.Background()
	emu, _, c := startEmulator(t, gatewayemu.Options{})
	apiID := newHTTPAPI(t, c)
	if _, err := c.CreateStage(ctx, &apigatewayv2.CreateStageInput{ApiId: apiID, StageName: aws.String("prod")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ResetAuthorizersCache(ctx, &apigatewayv2.ResetAuthorizersCacheInput{ApiId: apiID, StageName: aws.String("prod")}); err != nil {
		t.Fatalf("reset an existing stage's cache: %v", err)
	}
	if emu.Calls("ResetAuthorizersCache") != 1 {
		t.Fatalf("ResetAuthorizersCache counted %d calls", emu.Calls("ResetAuthorizersCache"))
	}
	_, err := c.ResetAuthorizersCache(ctx, &apigatewayv2.ResetAuthorizersCacheInput{ApiId: apiID, StageName: aws.String("nope")})
	if nf := as[*types.NotFoundException](t, err); aws.ToString(nf.Message) != "Invalid stage identifier specified" {
		t.Fatalf("unknown stage: %q", aws.ToString(nf.Message))
	}
	_, err = c.ResetAuthorizersCache(ctx, &apigatewayv2.ResetAuthorizersCacheInput{ApiId: aws.String("nope"), StageName: aws.String("prod")})
	as[*types.NotFoundException](t, err)
}

// fakeLambda answers by the Authorization header and records what it was handed.
type fakeLambda struct {
	mu       sync.Mutex
	requests []gatewayemu.HTTPAuthorizerRequest
	denied   map[string]bool
}

func (f *fakeLambda) authorize(_ context.Context, req gatewayemu.HTTPAuthorizerRequest) (gatewayemu.Decision, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, req)
	token := strings.TrimPrefix(req.Headers.Get("Authorization"), "Bearer ")
	switch {
	case token == "boom":
		return gatewayemu.Decision{}, errors.New("function error")
	case f.denied[token]:
		return gatewayemu.Decision{Effect: gatewayemu.Deny}, nil
	case token == "get-only":
		getOnly := func(arn string) gatewayemu.Effect {
			if strings.Contains(arn, "/GET/") {
				return gatewayemu.Allow
			}
			return gatewayemu.Deny
		}
		return gatewayemu.Decision{Effect: getOnly(req.RouteArn), Policy: getOnly}, nil
	}
	return gatewayemu.Decision{Effect: gatewayemu.Allow, Context: map[string]any{"sub": token}}, nil
}

func (f *fakeLambda) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.requests)
}

func (f *fakeLambda) last() gatewayemu.HTTPAuthorizerRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[len(f.requests)-1]
}

func (f *fakeLambda) deny(token string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.denied[token] = true
}

// lambdaFixture is an HTTP API whose every route needs the fake Lambda's REQUEST authorizer, and
// its stage URL.
func lambdaFixture(t *testing.T, opts gatewayemu.Options, ttl int32) (*apigatewayv2.Client, *fakeLambda, string, string) {
	t.Helper()
	ctx := context.Background()
	emu, _, c := startEmulator(t, opts)
	fn := &fakeLambda{denied: map[string]bool{}}
	emu.RegisterHTTPLambda(lambdaURI, fn.authorize)
	apiID := newHTTPAPI(t, c)
	in := requestAuthorizer(apiID)
	in.AuthorizerResultTtlInSeconds = aws.Int32(ttl)
	auth, err := c.CreateAuthorizer(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateRoute(ctx, &apigatewayv2.CreateRouteInput{ApiId: apiID, RouteKey: aws.String("ANY /{proxy+}"),
		AuthorizationType: types.AuthorizationTypeCustom, AuthorizerId: auth.AuthorizerId,
		Target: httpProxyTarget(t, c, apiID, "http://${stageVariables.backendUrl}/{proxy}")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateStage(ctx, &apigatewayv2.CreateStageInput{ApiId: apiID, StageName: aws.String("prod"), AutoDeploy: aws.Bool(true),
		StageVariables: map[string]string{"backendUrl": hostPort(backend(t, "stable")), "rollgateRelease": "r1"}}); err != nil {
		t.Fatal(err)
	}
	return c, fn, *apiID, emu.InvokeURL(*apiID, "prod")
}

func TestHTTPAPI_LambdaAuthorizer_InvokedWithTheRequestAndAnsweredAsAPIGatewayDoes(t *testing.T) {
	_, fn, apiID, url := lambdaFixture(t, gatewayemu.Options{}, 0)

	if status, body, _ := get(t, url+"/orders/42", nil); status != http.StatusUnauthorized || !strings.Contains(body, `"message":"Unauthorized"`) || fn.calls() != 0 {
		t.Fatalf("no identity source: %d %s after %d invocations; want 401 without invoking the function", status, body, fn.calls())
	}
	if status, body, _ := get(t, url+"/orders/42?b=2&a=1", bearer("alice")); status != http.StatusOK || body != "stable /orders/42" {
		t.Fatalf("allowed: %d %s", status, body)
	}
	req := fn.last()
	if req.PayloadFormatVersion != "2.0" || !req.SimpleResponses || req.RouteKey != "ANY /{proxy+}" ||
		req.RouteArn != "arn:aws:execute-api:us-east-1:000000000000:"+apiID+"/prod/GET/orders/42" ||
		req.RawPath != "/prod/orders/42" || req.RawQueryString != "b=2&a=1" || req.Method != http.MethodGet || req.Stage != "prod" ||
		!reflect.DeepEqual(req.IdentitySource, []string{"Bearer alice"}) || req.PathParameters["proxy"] != "orders/42" ||
		req.StageVariables["rollgateRelease"] != "r1" || req.APIID != apiID || req.RequestID == "" || req.SourceIP != "127.0.0.1" || req.Time.IsZero() {
		t.Fatalf("the function was handed %+v", req)
	}

	fn.deny("mallory")
	for _, tc := range []struct {
		token, body string
		status      int
	}{
		{"mallory", `"message":"Forbidden"`, http.StatusForbidden},
		{"boom", `"message":"Internal Server Error"`, http.StatusInternalServerError},
	} {
		if status, body, _ := get(t, url+"/orders/42", bearer(tc.token)); status != tc.status || !strings.Contains(body, tc.body) {
			t.Errorf("%s: %d %s; want %d %s", tc.token, status, body, tc.status, tc.body)
		}
	}
	// TTL 0: every request invokes the function.
	before := fn.calls()
	get(t, url+"/orders/42", bearer("alice"))
	get(t, url+"/orders/42", bearer("alice"))
	if fn.calls() != before+2 {
		t.Fatalf("with caching off, two requests invoked the function %d times", fn.calls()-before)
	}
}

func TestHTTPAPI_LambdaAuthorizer_CachedDecisionHoldsForTheTTLUntilResetAuthorizersCache(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }
	c, fn, apiID, url := lambdaFixture(t, gatewayemu.Options{Now: clock}, 300)

	if status, _, _ := get(t, url+"/orders/42", bearer("alice")); status != http.StatusOK {
		t.Fatalf("allowed: %d", status)
	}
	fn.deny("alice")
	// The simple response covers every route for the same identity, until the TTL passes.
	if status, _, _ := get(t, url+"/invoices/7", bearer("alice")); status != http.StatusOK || fn.calls() != 1 {
		t.Fatalf("within the TTL: %d after %d invocations; want the cached 200 from one", status, fn.calls())
	}
	if _, err := c.ResetAuthorizersCache(context.Background(), &apigatewayv2.ResetAuthorizersCacheInput{ApiId: &apiID, StageName: aws.String("prod")}); err != nil {
		t.Fatal(err)
	}
	if status, _, _ := get(t, url+"/orders/42", bearer("alice")); status != http.StatusForbidden || fn.calls() != 2 {
		t.Fatalf("after ResetAuthorizersCache: %d after %d invocations; want 403 from a new invocation", status, fn.calls())
	}

	// A cached IAM policy is judged again for each request's route ARN.
	if status, _, _ := get(t, url+"/orders/42", bearer("get-only")); status != http.StatusOK {
		t.Fatalf("policy allowing GET, GET: %d", status)
	}
	req, _ := http.NewRequest(http.MethodPost, url+"/orders/42", nil)
	req.Header.Set("Authorization", "Bearer get-only")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || fn.calls() != 3 {
		t.Fatalf("cached policy allowing GET, POST: %d after %d invocations; want 403 from the cache", resp.StatusCode, fn.calls())
	}

	// Past the TTL the function is asked again.
	fn.deny("get-only")
	advance(301 * time.Second)
	if status, _, _ := get(t, url+"/orders/42", bearer("get-only")); status != http.StatusForbidden || fn.calls() != 4 {
		t.Fatalf("after the TTL: %d after %d invocations", status, fn.calls())
	}
}

func TestHTTPAPI_LambdaAuthorizer_EveryIdentitySourceMustBePresent(t *testing.T) {
	ctx := context.Background()
	emu, _, c := startEmulator(t, gatewayemu.Options{})
	fn := &fakeLambda{denied: map[string]bool{}}
	emu.RegisterHTTPLambda(lambdaURI, fn.authorize)
	apiID := newHTTPAPI(t, c)
	in := requestAuthorizer(apiID)
	in.IdentitySource = []string{"$request.header.Authorization", "$request.querystring.tenant", "$stageVariables.rollgateRelease", "$context.routeKey"}
	auth, err := c.CreateAuthorizer(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateRoute(ctx, &apigatewayv2.CreateRouteInput{ApiId: apiID, RouteKey: aws.String("GET /orders"),
		AuthorizationType: types.AuthorizationTypeCustom, AuthorizerId: auth.AuthorizerId,
		Target: httpProxyTarget(t, c, apiID, "http://${stageVariables.backendUrl}/orders")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateStage(ctx, &apigatewayv2.CreateStageInput{ApiId: apiID, StageName: aws.String("prod"), AutoDeploy: aws.Bool(true),
		StageVariables: map[string]string{"backendUrl": hostPort(backend(t, "stable")), "rollgateRelease": "r1"}}); err != nil {
		t.Fatal(err)
	}
	url := emu.InvokeURL(*apiID, "prod") + "/orders"
	if status, _, _ := get(t, url+"?Tenant=acme", bearer("alice")); status != http.StatusUnauthorized || fn.calls() != 0 {
		t.Fatalf("query parameter named in another case: %d after %d invocations; want 401 without invoking", status, fn.calls())
	}
	h := bearer("alice")
	h.Add("Authorization", "Bearer bob")
	if status, _, _ := get(t, url+"?tenant=acme&tenant=globex", h); status != http.StatusOK {
		t.Fatalf("every identity source present: %d", status)
	}
	if got, want := fn.last().IdentitySource, []string{"Bearer alice,Bearer bob", "acme,globex", "r1", "GET /orders"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("identity source values %q, want %q", got, want)
	}
}

// The data plane serves many clients at once while the control plane resets the cache (run with
// -race).
func TestHTTPAPI_LambdaAuthorizer_ConcurrentRequestsAndResets(t *testing.T) {
	c, _, apiID, url := lambdaFixture(t, gatewayemu.Options{}, 300)
	// Connections dialled but never used would hold the emulator's Close for 5 s (http.Server
	// waits that long for a new connection's first request).
	client := &http.Client{}
	t.Cleanup(client.CloseIdleConnections)
	var wg sync.WaitGroup
	errs := make(chan string, 40)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			token := []string{"alice", "bob"}[i%2]
			req, _ := http.NewRequest(http.MethodGet, url+"/orders/42", nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := client.Do(req)
			if err != nil {
				errs <- err.Error()
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				errs <- resp.Status
			}
		}()
	}
	wg.Add(1)
	go func() { // one SDK caller, so that the control plane's client dials one connection
		defer wg.Done()
		for range 20 {
			if _, err := c.ResetAuthorizersCache(context.Background(), &apigatewayv2.ResetAuthorizersCacheInput{ApiId: &apiID, StageName: aws.String("prod")}); err != nil {
				errs <- err.Error()
			}
		}
	}()
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
