package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigateway"
	"github.com/aws/aws-sdk-go-v2/service/apigateway/types"

	"github.com/rollgate/rollgate/internal/registry"
	"github.com/rollgate/rollgate/internal/tokens"
	"github.com/rollgate/rollgate/testsuite"
)

// underRIE is the authorizer's real Lambda bootstrap running under the AWS Lambda Runtime
// Interface Emulator, configured through its environment like a deployed function.
type underRIE struct {
	fn  *testsuite.LambdaFunction
	out *syncBuffer
}

// buildBootstrap builds the authorizer as `make authorizer` does, for this machine.
func buildBootstrap(t testing.TB) string {
	t.Helper()
	bin, err := testsuite.BuildLambdaBootstrap(context.Background(), "./authorizer", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// startUnderRIE starts the bootstrap under the emulator with this issuer's configuration and
// the bed's DynamoDB, as the function's environment.
func (i *testIssuer) startUnderRIE(t testing.TB, bootstrap string, overrides map[string]string) *underRIE {
	t.Helper()
	env := i.env(overrides)
	for _, kv := range i.bed.Env() {
		switch kv[0] {
		case "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL_DYNAMODB":
			env[kv[0]] = kv[1]
		}
	}
	u := &underRIE{out: &syncBuffer{}}
	fn, err := testsuite.StartLambda(context.Background(), testsuite.LambdaOptions{Bootstrap: bootstrap, Env: env, Log: u.out})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		fn.Close()
		if t.Failed() {
			t.Logf("emulator and function output:\n%s", u.out.Bytes())
		}
	})
	u.fn = fn
	i.secrets.watch(u.out)
	return u
}

// invoke posts an event through the emulator and returns the function's answer, or the
// errorMessage of a function error (what API Gateway turns into 401 for "Unauthorized").
func (u *underRIE) invoke(t testing.TB, event []byte) (resp map[string]any, functionError string) {
	t.Helper()
	body, err := u.fn.Invoke(context.Background(), event)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		t.Fatalf("answer is not a JSON object: %v: %.200s", err, body)
	}
	if msg, ok := resp["errorMessage"].(string); ok {
		return nil, msg
	}
	return resp, ""
}

// checkAllowed checks the answer to a good token in each event format.
func checkAllowed(t *testing.T, kind string, resp map[string]any, functionError, sub, jti string) {
	t.Helper()
	if functionError != "" {
		t.Fatalf("%s: good token refused: %s", kind, functionError)
	}
	if kind == "http-v2" {
		if c, _ := resp["context"].(map[string]any); resp["isAuthorized"] != true || c["sub"] != sub || c["jti"] != jti {
			t.Fatalf("%s: answer %v; want isAuthorized true with the identity in context", kind, resp)
		}
		return
	}
	principal, effect, action, resource, ctx := policyOf(t, resp)
	if principal != sub || effect != "Allow" || action != "execute-api:Invoke" || resource != stageARN || ctx["jti"] != jti {
		t.Fatalf("%s: policy %s %s on %s for %s, context %v; want Allow execute-api:Invoke on %s for %s",
			kind, effect, action, resource, principal, ctx, stageARN, sub)
	}
}

// refused reports whether the answer is API Gateway's 401: the error Unauthorized for a REST
// authorizer, isAuthorized false (and no context) for an HTTP API simple response.
func refused(kind string, resp map[string]any, functionError string) bool {
	if kind == "http-v2" {
		return functionError == "" && resp["isAuthorized"] == false && resp["context"] == nil
	}
	return functionError == "Unauthorized"
}

var eventKinds = []string{"rest-token", "rest-request", "http-v2"}

func TestRIE_RealBootstrap_AllowsAGoodTokenAndRefusesRevokedAndGarbageInEveryEventFormat(t *testing.T) {
	ctx := context.Background()
	iss := newTestIssuer(t, true)
	ms := iss.mint(t, "alice", "bob")
	u := iss.startUnderRIE(t, buildBootstrap(t), nil)

	for _, kind := range eventKinds {
		resp, fe := u.invoke(t, event(t, kind, ms[0].Token, "a1b2c3d4e5"))
		checkAllowed(t, kind, resp, fe, "alice", ms[0].JTI)
		if resp, fe := u.invoke(t, event(t, kind, "not-a-jwt", "a1b2c3d4e5")); !refused(kind, resp, fe) {
			t.Fatalf("%s: garbage answered %v %q; want a refusal", kind, resp, fe)
		}
	}

	if _, err := iss.reg.RevokeJTIs(ctx, []string{ms[0].JTI}, "laptop stolen", 0, nil); err != nil {
		t.Fatal(err)
	}
	eventually(t, "alice's revoked token is still accepted through the emulator", func() bool {
		resp, fe := u.invoke(t, event(t, "rest-request", ms[0].Token, "a1b2c3d4e5"))
		return refused("rest-request", resp, fe)
	})
	for _, kind := range eventKinds {
		if resp, fe := u.invoke(t, event(t, kind, ms[0].Token, "a1b2c3d4e5")); !refused(kind, resp, fe) {
			t.Fatalf("%s: revoked token answered %v %q; want a refusal", kind, resp, fe)
		}
		resp, fe := u.invoke(t, event(t, kind, ms[1].Token, "a1b2c3d4e5"))
		checkAllowed(t, kind, resp, fe, "bob", ms[1].JTI)
	}

	// Each refusal of the revoked token was recorded for the token monitor, with its verified
	// subject: the uses of alice's token are found by a reader of the registry.
	eventually(t, "the revoked token's use is not in the registry", func() bool {
		uses, _, err := iss.reg.RevokedUses(ctx, time.Now().Add(-time.Hour), 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range uses {
			if u.JTI == ms[0].JTI {
				return u.Subject == "alice" && u.Count >= 1
			}
		}
		return false
	})

	// An expired token of the issuer (its signature good) is refused and recorded apart, by client:
	// a client that does not renew.
	old := *iss.minter
	old.Now = func() time.Time { return time.Now().Add(-2 * time.Hour) }
	expired, err := old.Mint(ctx, 1, tokens.MintRequest{Subject: "carol", ClientID: "carol-client", Audience: []string{"orders"}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if resp, fe := u.invoke(t, event(t, "rest-request", expired[0].Token, "a1b2c3d4e5")); !refused("rest-request", resp, fe) {
		t.Fatalf("an expired token answered %v %q; want a refusal", resp, fe)
	}
	eventually(t, "the expired token's use is not in the registry", func() bool {
		uses, _, err := iss.reg.Uses(ctx, registry.UseExpired, time.Now().Add(-time.Hour), 1000)
		if err != nil {
			t.Fatal(err)
		}
		return len(uses) == 1 && uses[0].JTI == expired[0].JTI && uses[0].ClientID == "carol-client"
	})

	// The function's stdout is CloudWatch's: one EMF line per verification, reason revoked included.
	if !strings.Contains(string(u.out.Bytes()), `"Reason":"revoked"`) {
		t.Fatalf("no EMF line with reason revoked in the function's output:\n%s", u.out.Bytes())
	}
}

// restAPIBehind makes a REST API on the bed's API Gateway emulator whose every method is guarded
// by an authorizer of the given type and result TTL backed by the function, and returns its id
// and stage URL.
func restAPIBehind(t *testing.T, bed *testsuite.Bed, u *underRIE, authType types.AuthorizerType, ttl int32) (apiID, url string) {
	t.Helper()
	ctx := context.Background()
	cfg, err := bed.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := bed.APIGateway(cfg)
	fnURI := "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:000000000000:function:" + unique("authz") + "/invocations"
	bed.Gateway.RegisterLambda(fnURI, u.fn.RESTAuthorizer())
	api, err := c.CreateRestApi(ctx, &apigateway.CreateRestApiInput{Name: aws.String(unique("orders"))})
	if err != nil {
		t.Fatal(err)
	}
	auth, err := c.CreateAuthorizer(ctx, &apigateway.CreateAuthorizerInput{RestApiId: api.Id, Name: aws.String("rollgate"),
		Type: authType, AuthorizerUri: aws.String(fnURI), IdentitySource: aws.String("method.request.header.Authorization"),
		AuthorizerResultTtlInSeconds: aws.Int32(ttl)})
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := c.CreateResource(ctx, &apigateway.CreateResourceInput{RestApiId: api.Id, ParentId: api.RootResourceId, PathPart: aws.String("{proxy+}")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutMethod(ctx, &apigateway.PutMethodInput{RestApiId: api.Id, ResourceId: proxy.Id, HttpMethod: aws.String("ANY"),
		AuthorizationType: aws.String("CUSTOM"), AuthorizerId: auth.Id, RequestParameters: map[string]bool{"method.request.path.proxy": true}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutIntegration(ctx, &apigateway.PutIntegrationInput{RestApiId: api.Id, ResourceId: proxy.Id, HttpMethod: aws.String("ANY"),
		Type: types.IntegrationTypeHttpProxy, IntegrationHttpMethod: aws.String("ANY"), Uri: aws.String("http://${stageVariables.backendUrl}/{proxy}"),
		RequestParameters: map[string]string{"integration.request.path.proxy": "method.request.path.proxy"}}); err != nil {
		t.Fatal(err)
	}
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "orders "+r.URL.Path) }))
	t.Cleanup(backend.Close)
	if _, err := c.CreateDeployment(ctx, &apigateway.CreateDeploymentInput{RestApiId: api.Id, StageName: aws.String("prod"),
		Variables: map[string]string{"backendUrl": strings.TrimPrefix(backend.URL, "http://"), "rollgateRelease": "r1"}}); err != nil {
		t.Fatal(err)
	}
	return *api.Id, bed.Gateway.InvokeURL(*api.Id, "prod")
}

// status is the gateway's answer to GET url with the bearer token (none when empty).
func status(t *testing.T, url, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func TestRIE_GatewayEmulatorRunsTheRealBootstrapAsTokenAndRequestAuthorizer(t *testing.T) {
	iss := newTestIssuer(t, true)
	ms := iss.mint(t, "alice", "bob")
	u := iss.startUnderRIE(t, buildBootstrap(t), nil)
	urls := map[types.AuthorizerType]string{}
	for _, typ := range []types.AuthorizerType{types.AuthorizerTypeToken, types.AuthorizerTypeRequest} {
		_, url := restAPIBehind(t, iss.bed, u, typ, 0)
		urls[typ] = url + "/orders/42"
		for _, tc := range []struct {
			name, token string
			want        int
		}{{"good", ms[0].Token, 200}, {"garbage", "not-a-jwt", 401}, {"none", "", 401}} {
			if got := status(t, urls[typ], tc.token); got != tc.want {
				t.Fatalf("%s authorizer, %s token: %d, want %d", typ, tc.name, got, tc.want)
			}
		}
	}
	if _, err := iss.reg.RevokeJTIs(context.Background(), []string{ms[0].JTI}, "laptop stolen", 0, nil); err != nil {
		t.Fatal(err)
	}
	for typ, url := range urls {
		eventually(t, string(typ)+": alice's revoked token still reaches the backend", func() bool { return status(t, url, ms[0].Token) == 401 })
		if got := status(t, url, ms[1].Token); got != 200 {
			t.Fatalf("%s authorizer: bob's token %d, want 200", typ, got)
		}
	}
}

// With a result TTL, API Gateway serves a cached Allow whatever the deny list says; flushing the
// stage's authorizer cache (what rollgate does after a revocation) sends the next request to the
// function again, which refuses the revoked token.
func TestRIE_GatewayEmulator_CachedAllowOutlivesARevocationUntilTheStageCacheIsFlushed(t *testing.T) {
	ctx := context.Background()
	iss := newTestIssuer(t, true)
	m := iss.mint(t, "alice")[0]
	u := iss.startUnderRIE(t, buildBootstrap(t), nil)
	apiID, url := restAPIBehind(t, iss.bed, u, types.AuthorizerTypeToken, 300)
	url += "/orders/42"
	if got := status(t, url, m.Token); got != 200 {
		t.Fatalf("good token: %d, want 200", got)
	}
	if _, err := iss.reg.RevokeJTIs(ctx, []string{m.JTI}, "laptop stolen", 0, nil); err != nil {
		t.Fatal(err)
	}
	// The function itself refuses the token once its deny list has refreshed...
	eventually(t, "the function still accepts the revoked token", func() bool {
		_, fe := u.invoke(t, event(t, "rest-token", m.Token, ""))
		return fe == "Unauthorized"
	})
	// ...but the gateway answers from its cache until the stage's cache is flushed.
	if got := status(t, url, m.Token); got != 200 {
		t.Fatalf("revoked token within the TTL: %d, want the cached 200", got)
	}
	cfg, err := iss.bed.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := iss.bed.APIGateway(cfg).FlushStageAuthorizersCache(ctx, &apigateway.FlushStageAuthorizersCacheInput{
		RestApiId: aws.String(apiID), StageName: aws.String("prod")}); err != nil {
		t.Fatal(err)
	}
	if got := status(t, url, m.Token); got != 401 {
		t.Fatalf("revoked token after the flush: %d, want 401", got)
	}
}

// Lambda never gives one execution environment two invocations at once; concurrent requests get
// environments of their own, each with its own state. The emulator refuses a second invocation
// while one runs, so the bed spreads them over environments up to the function's concurrency.
func TestRIE_ConcurrentInvocationsEachGetAnExecutionEnvironment(t *testing.T) {
	iss := newTestIssuer(t, true)
	ms := iss.mint(t, "alice")
	u := iss.startUnderRIE(t, buildBootstrap(t), nil)
	ev := event(t, "rest-request", ms[0].Token, "a1b2c3d4e5")

	const callers, each = 8, 5
	var wg sync.WaitGroup
	errs := make(chan string, callers*each)
	for range callers {
		wg.Go(func() {
			for range each {
				body, err := u.fn.Invoke(context.Background(), ev)
				if err != nil {
					errs <- err.Error()
					continue
				}
				if !strings.Contains(string(body), `"Effect":"Allow"`) {
					errs <- string(body)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("a concurrent invocation failed: %.300s", e)
	}
	if n := u.fn.Environments(); n < 2 || n > testsuite.DefaultLambdaConcurrency {
		t.Fatalf("%d execution environments for %d concurrent callers; want 2 to %d", n, callers, testsuite.DefaultLambdaConcurrency)
	}
}
