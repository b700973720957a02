package testsuite_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewayv2"
	v2types "github.com/aws/aws-sdk-go-v2/service/apigatewayv2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/rollgate/rollgate/internal/gateway"
	"github.com/rollgate/rollgate/internal/keys"
	"github.com/rollgate/rollgate/internal/registry"
	"github.com/rollgate/rollgate/internal/tokens"
	"github.com/rollgate/rollgate/testsuite"
	"github.com/rollgate/rollgate/testsuite/gatewayemu"
)

// The real authorizer behind an HTTP API: its bootstrap under the Lambda Runtime Interface
// Emulator, configured like a deployed function for an issuer of its own (a Vault transit key, the
// JWKS and discovery document on the bed's S3, registry tables in dynalite).
type httpAuthorizerBed struct {
	bed      *testsuite.Bed
	reg      *registry.Registry
	minter   *tokens.Minter
	fn       *testsuite.LambdaFunction
	invoked  atomic.Int64
	v2       *apigatewayv2.Client
	apiID    string
	url      string
	tokensMu sync.Mutex
	tokens   []string
}

// newHTTPAuthorizerBed makes the issuer, starts the function and puts it behind a REQUEST
// authorizer (payload 2.0, simple responses, identity source the Authorization header, the given
// result TTL) that guards every route of a new HTTP API.
func newHTTPAuthorizerBed(t *testing.T, ttl int32) *httpAuthorizerBed {
	t.Helper()
	ctx := context.Background()
	h := &httpAuthorizerBed{bed: shared.Bed(t)}
	cfg, err := h.bed.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	name := uniqueName("httpauthz")
	issuer := h.publishIssuer(t, name)
	h.reg = &registry.Registry{DB: h.bed.DynamoDBClient(cfg), TokensTable: name + "-tokens", RevocationsTable: name + "-revocations"}
	if err := h.reg.CreateTables(ctx); err != nil {
		t.Fatal(err)
	}
	h.startFunction(t, issuer)
	h.v2 = h.bed.APIGatewayV2(cfg)
	h.createAPI(t, name, ttl)
	return h
}

func (h *httpAuthorizerBed) publishIssuer(t *testing.T, name string) string {
	t.Helper()
	ctx := context.Background()
	cfg, err := h.bed.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	vc, err := h.bed.Vault.Client()
	if err != nil {
		t.Fatal(err)
	}
	tr := &keys.Transit{Client: vc}
	k, err := tr.EnsureKey(ctx, name, keys.RSA2048)
	if err != nil {
		t.Fatal(err)
	}
	s3c := h.bed.S3Client(cfg)
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	issuer := h.bed.S3.URL + "/" + name
	doc, err := tokens.JWKS(ctx, k, "RS256", []int{1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&tokens.Publisher{S3: s3c, Bucket: name, CacheTTL: time.Second}).Publish(ctx, issuer, "RS256", doc); err != nil {
		t.Fatal(err)
	}
	h.minter = &tokens.Minter{Transit: tr, Key: name, Type: keys.RSA2048, Issuer: issuer}
	return issuer
}

// startFunction runs the bootstrap with the issuer's configuration, a deny list refreshed every
// 50 ms, and the bed's DynamoDB.
func (h *httpAuthorizerBed) startFunction(t *testing.T, issuer string) {
	t.Helper()
	env := map[string]string{
		"ROLLGATE_ISSUER": issuer, "ROLLGATE_AUDIENCES": "orders", "ROLLGATE_REVOCATIONS_TABLE": h.reg.RevocationsTable,
		"ROLLGATE_DENYLIST_REFRESH": "50ms", "ROLLGATE_DENYLIST_MAX_STALENESS": "30s", "ROLLGATE_LEEWAY": "5s",
	}
	for _, kv := range h.bed.Env() {
		switch kv[0] {
		case "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL_DYNAMODB":
			env[kv[0]] = kv[1]
		}
	}
	// Built as `make authorizer` does; Go's build cache makes every build after the first a link.
	bootstrap, err := testsuite.BuildLambdaBootstrap(context.Background(), "./authorizer", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fn, err := testsuite.StartLambda(context.Background(), testsuite.LambdaOptions{Bootstrap: bootstrap, Env: env})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.checkNoTokenIn(t, fn.Logs())
		if t.Failed() {
			t.Logf("emulator and function output:\n%s", fn.Logs())
		}
		fn.Close()
	})
	h.fn = fn
}

func (h *httpAuthorizerBed) createAPI(t *testing.T, name string, ttl int32) {
	t.Helper()
	ctx := context.Background()
	uri := "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:000000000000:function:" + name + "/invocations"
	authorizer := h.fn.HTTPAuthorizer()
	h.bed.Gateway.RegisterHTTPLambda(uri, func(ctx context.Context, req gatewayemu.HTTPAuthorizerRequest) (gatewayemu.Decision, error) {
		h.invoked.Add(1)
		return authorizer(ctx, req)
	})
	api, err := h.v2.CreateApi(ctx, &apigatewayv2.CreateApiInput{Name: aws.String(name), ProtocolType: v2types.ProtocolTypeHttp})
	if err != nil {
		t.Fatal(err)
	}
	auth, err := h.v2.CreateAuthorizer(ctx, &apigatewayv2.CreateAuthorizerInput{ApiId: api.ApiId, Name: aws.String("rollgate"),
		AuthorizerType: v2types.AuthorizerTypeRequest, AuthorizerUri: aws.String(uri), AuthorizerPayloadFormatVersion: aws.String("2.0"),
		EnableSimpleResponses: aws.Bool(true), IdentitySource: []string{"$request.header.Authorization"}, AuthorizerResultTtlInSeconds: aws.Int32(ttl)})
	if err != nil {
		t.Fatal(err)
	}
	integ, err := h.v2.CreateIntegration(ctx, &apigatewayv2.CreateIntegrationInput{ApiId: api.ApiId, IntegrationType: v2types.IntegrationTypeHttpProxy,
		IntegrationMethod: aws.String("ANY"), IntegrationUri: aws.String("http://${stageVariables.backendUrl}/{proxy}"), PayloadFormatVersion: aws.String("1.0")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.v2.CreateRoute(ctx, &apigatewayv2.CreateRouteInput{ApiId: api.ApiId, RouteKey: aws.String("ANY /{proxy+}"),
		AuthorizationType: v2types.AuthorizationTypeCustom, AuthorizerId: auth.AuthorizerId, Target: aws.String("integrations/" + *integ.IntegrationId)}); err != nil {
		t.Fatal(err)
	}
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "orders "+r.URL.Path) }))
	t.Cleanup(backend.Close)
	if _, err := h.v2.CreateStage(ctx, &apigatewayv2.CreateStageInput{ApiId: api.ApiId, StageName: aws.String("prod"), AutoDeploy: aws.Bool(true),
		StageVariables: map[string]string{"backendUrl": strings.TrimPrefix(backend.URL, "http://"), "rollgateRelease": "r1"}}); err != nil {
		t.Fatal(err)
	}
	h.apiID, h.url = *api.ApiId, h.bed.Gateway.InvokeURL(*api.ApiId, "prod")+"/orders/42"
}

// mint issues one token per subject and records it in the registry.
func (h *httpAuthorizerBed) mint(t *testing.T, subjects ...string) []tokens.Minted {
	t.Helper()
	reqs := make([]tokens.MintRequest, len(subjects))
	for i, s := range subjects {
		reqs[i] = tokens.MintRequest{Subject: s, ClientID: s + "-client", Audience: []string{"orders"}, TTL: time.Hour}
	}
	minted, err := h.minter.Mint(context.Background(), 1, reqs...)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.reg.RecordIssued(context.Background(), minted); err != nil {
		t.Fatal(err)
	}
	h.tokensMu.Lock()
	defer h.tokensMu.Unlock()
	for _, m := range minted {
		h.tokens = append(h.tokens, m.Token)
	}
	return minted
}

func (h *httpAuthorizerBed) revoke(t *testing.T, m tokens.Minted) {
	t.Helper()
	if _, err := h.reg.RevokeJTIs(context.Background(), []string{m.JTI}, "laptop stolen", 0, nil); err != nil {
		t.Fatal(err)
	}
}

// call is the gateway's answer to one request, sent with the bearer token (none when empty).
// Requests go one at a time: one emulator process runs one invocation at a time.
func (h *httpAuthorizerBed) call(t *testing.T, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// functionRefuses asks the function itself, past the gateway and its cache.
func (h *httpAuthorizerBed) functionRefuses(t *testing.T, token string) bool {
	t.Helper()
	d, err := h.fn.HTTPAuthorizer()(context.Background(), gatewayemu.HTTPAuthorizerRequest{
		PayloadFormatVersion: "2.0", SimpleResponses: true, RouteKey: "ANY /{proxy+}", Method: http.MethodGet,
		RouteArn: "arn:aws:execute-api:us-east-1:000000000000:" + h.apiID + "/prod/GET/orders/42", RawPath: "/prod/orders/42",
		Headers: http.Header{"Authorization": {"Bearer " + token}}, IdentitySource: []string{"Bearer " + token}, Stage: "prod", Time: time.Now(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return d.Effect == gatewayemu.Deny
}

func (h *httpAuthorizerBed) checkNoTokenIn(t *testing.T, output string) {
	h.tokensMu.Lock()
	defer h.tokensMu.Unlock()
	for _, tok := range h.tokens {
		if strings.Contains(output, tok) {
			t.Errorf("a token appears in the function's output")
		}
	}
}

// eventually polls cond until it holds or a generous deadline passes (a busy machine).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 60 s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestHTTPAPI_RealAuthorizerUnderTheRIE_AllowsGoodTokensAndRefusesRevokedAndMissingOnes(t *testing.T) {
	h := newHTTPAuthorizerBed(t, 0)
	ms := h.mint(t, "alice", "bob")

	if status, body := h.call(t, ms[0].Token); status != http.StatusOK || body != "orders /orders/42" {
		t.Fatalf("good token: %d %s, want the backend's 200", status, body)
	}
	before := h.invoked.Load()
	if status, body := h.call(t, ""); status != http.StatusUnauthorized || !strings.Contains(body, `"message":"Unauthorized"`) {
		t.Fatalf("no Authorization header: %d %s, want 401", status, body)
	}
	if h.invoked.Load() != before {
		t.Fatal("the function was invoked for a request without its identity source")
	}
	if status, _ := h.call(t, "not-a-jwt"); status != http.StatusForbidden {
		t.Fatalf("garbage token: %d, want 403 (isAuthorized false)", status)
	}

	h.revoke(t, ms[0])
	eventually(t, "alice's revoked token still reaches the backend", func() bool {
		status, _ := h.call(t, ms[0].Token)
		return status == http.StatusForbidden
	})
	if status, body := h.call(t, ms[1].Token); status != http.StatusOK {
		t.Fatalf("bob's token after alice's revocation: %d %s, want 200", status, body)
	}
}

// With a result TTL, the gateway answers a revoked token from its cache; rollgate's flush of the
// stage's authorizer cache (internal/gateway's FlushAuthorizerCache: ResetAuthorizersCache) sends
// the next request to the function, which refuses it.
func TestHTTPAPI_RealAuthorizerUnderTheRIE_CachedAllowOutlivesARevocationUntilTheCacheIsReset(t *testing.T) {
	ctx := context.Background()
	h := newHTTPAuthorizerBed(t, 300)
	m := h.mint(t, "alice")[0]
	if status, _ := h.call(t, m.Token); status != http.StatusOK {
		t.Fatalf("good token: %d, want 200", status)
	}
	h.revoke(t, m)
	eventually(t, "the function still accepts the revoked token", func() bool { return h.functionRefuses(t, m.Token) })
	invoked := h.invoked.Load()
	if status, _ := h.call(t, m.Token); status != http.StatusOK || h.invoked.Load() != invoked {
		t.Fatalf("revoked token within the TTL: %d after %d more invocations, want the cached 200", status, h.invoked.Load()-invoked)
	}
	if err := (&gateway.HTTP{API: h.v2}).FlushAuthorizerCache(ctx, h.apiID, "prod"); err != nil {
		t.Fatal(err)
	}
	if status, body := h.call(t, m.Token); status != http.StatusForbidden || !strings.Contains(body, `"message":"Forbidden"`) {
		t.Fatalf("revoked token after the flush: %d %s, want 403", status, body)
	}
}
