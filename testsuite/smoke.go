package testsuite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigateway"
	agtypes "github.com/aws/aws-sdk-go-v2/service/apigateway/types"
	"github.com/aws/aws-sdk-go-v2/service/apigatewayv2"
	v2types "github.com/aws/aws-sdk-go-v2/service/apigatewayv2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/rollgate/rollgate/internal/keys"
	"github.com/rollgate/rollgate/internal/tokens"
	"github.com/rollgate/rollgate/testsuite/gatewayemu"
)

// SmokeReport is what the smoke scenario observed.
type SmokeReport struct {
	CanaryShare       float64 // percent of requests the 10% canary served
	UnpublishedStatus int     // gateway answer to a token whose key is not yet in the JWKS
	PublishedStatus   int     // the same token after the key was published
	WorkflowResult    string
}

// RunSmoke exercises every server of the bed together, the way rollgate will: a signing key in
// Vault transit, its JWKS published to S3 as an issuer, an HTTP API whose JWT authorizer checks
// Vault-signed tokens against that JWKS, a REST API canary split, and a workflow on Temporal.
// It prints a timeline to out.
func RunSmoke(ctx context.Context, b *Bed, out io.Writer) (*SmokeReport, error) {
	start := time.Now()
	step := func(format string, a ...any) {
		fmt.Fprintf(out, "%8s  %s\n", time.Since(start).Round(time.Millisecond), fmt.Sprintf(format, a...))
	}
	cfg, err := b.AWSConfig(ctx)
	if err != nil {
		return nil, err
	}
	vc, err := b.Vault.Client()
	if err != nil {
		return nil, err
	}
	rep := &SmokeReport{}

	// A signing key in Vault transit; the private half never leaves Vault. Names are new on every
	// run, so the scenario can run again on the same bed.
	key := "smoke-issuer-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	tr := &keys.Transit{Client: vc}
	if _, err := tr.EnsureKey(ctx, key, keys.RSA2048); err != nil {
		return nil, fmt.Errorf("create transit key: %w", err)
	}
	step("vault: transit key %s (rsa-2048) created", key)

	// An issuer on S3: discovery document and JWKS with version 1.
	s3c := b.S3Client(cfg)
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(key)}); err != nil {
		return nil, fmt.Errorf("create bucket: %w", err)
	}
	issuer := b.S3.URL + "/" + key
	if err := publishIssuer(ctx, s3c, tr, issuer, key, key, []int{1}); err != nil {
		return nil, err
	}
	step("s3: issuer %s published with JWKS [%s-v1]", issuer, key)

	// Two backends: the stable release and the canary.
	stable, stopStable, err := versionBackend("v1", http.StatusOK, nil)
	if err != nil {
		return nil, err
	}
	defer stopStable()
	canary, stopCanary, err := versionBackend("v2", http.StatusOK, nil)
	if err != nil {
		return nil, err
	}
	defer stopCanary()

	// HTTP API with a JWT authorizer for the issuer.
	v2 := b.APIGatewayV2(cfg)
	httpURL, err := smokeHTTPAPI(ctx, v2, b.Gateway, issuer, stable)
	if err != nil {
		return nil, err
	}
	tok1, err := smokeToken(ctx, tr, key, 1, issuer)
	if err != nil {
		return nil, err
	}
	if st := smokeGet(httpURL, tok1); st != http.StatusOK {
		return nil, fmt.Errorf("token signed by %s-v1 got %d from the JWT authorizer, want 200", key, st)
	}
	step("gateway: HTTP API JWT authorizer accepts a Vault-signed token (kid %s-v1)", key)

	// Rotate: a token of the new version fails until its key is published.
	if _, err := tr.Rotate(ctx, key, 1); err != nil {
		return nil, fmt.Errorf("rotate: %w", err)
	}
	tok2, err := smokeToken(ctx, tr, key, 2, issuer)
	if err != nil {
		return nil, err
	}
	rep.UnpublishedStatus = smokeGet(httpURL, tok2)
	step("vault: rotated to v2; a v2 token before publication gets %d", rep.UnpublishedStatus)
	if err := publishIssuer(ctx, s3c, tr, issuer, key, key, []int{1, 2}); err != nil {
		return nil, err
	}
	// The emulator refetches the JWKS on an unknown kid at most once a second, later on a busy
	// machine: poll for the published key with a deadline far above that.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		if rep.PublishedStatus = smokeGet(httpURL, tok2); rep.PublishedStatus == http.StatusOK || time.Now().After(deadline) {
			break
		}
	}
	step("s3: JWKS now [%s-v1 %s-v2]; the v2 token gets %d", key, key, rep.PublishedStatus)
	if rep.UnpublishedStatus != http.StatusUnauthorized || rep.PublishedStatus != http.StatusOK {
		return nil, fmt.Errorf("key publication: unpublished %d (want 401), published %d (want 200)", rep.UnpublishedStatus, rep.PublishedStatus)
	}

	// REST API canary at 10%.
	share, err := smokeCanary(ctx, b.APIGateway(cfg), b.Gateway, stable, canary)
	if err != nil {
		return nil, err
	}
	rep.CanaryShare = share
	step("gateway: REST API canary at 10%% served %.1f%% of 1000 requests", share)

	// A workflow on the dev server.
	res, err := smokeWorkflow(ctx, b)
	if err != nil {
		return nil, err
	}
	rep.WorkflowResult = res
	step("temporal: workflow completed with %q", res)
	return rep, nil
}

// publishIssuer publishes the JWKS of the versions and the discovery document at the issuer.
func publishIssuer(ctx context.Context, s3c *s3.Client, tr *keys.Transit, issuer, bucket, key string, versions []int) error {
	k, err := tr.ReadKey(ctx, key)
	if err != nil {
		return err
	}
	doc, err := tokens.JWKS(ctx, k, "RS256", versions)
	if err != nil {
		return err
	}
	_, err = (&tokens.Publisher{S3: s3c, Bucket: bucket, CacheTTL: time.Second}).Publish(ctx, issuer, "RS256", doc)
	return err
}

// smokeToken mints a token through Vault transit with an explicit key version.
func smokeToken(ctx context.Context, tr *keys.Transit, key string, version int, issuer string) (string, error) {
	m := &tokens.Minter{Transit: tr, Key: key, Type: keys.RSA2048, Issuer: issuer}
	out, err := m.Mint(ctx, version, tokens.MintRequest{Subject: "smoke-client", Audience: []string{"smoke"}, TTL: 10 * time.Minute})
	if err != nil {
		return "", err
	}
	return out[0].Token, nil
}

func smokeGet(url, token string) int {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func smokeHTTPAPI(ctx context.Context, c *apigatewayv2.Client, emu *gatewayemu.Emulator, issuer, backend string) (string, error) {
	api, err := c.CreateApi(ctx, &apigatewayv2.CreateApiInput{Name: aws.String("smoke"), ProtocolType: v2types.ProtocolTypeHttp})
	if err != nil {
		return "", err
	}
	auth, err := c.CreateAuthorizer(ctx, &apigatewayv2.CreateAuthorizerInput{
		ApiId: api.ApiId, Name: aws.String("jwt"), AuthorizerType: v2types.AuthorizerTypeJwt,
		IdentitySource:   []string{"$request.header.Authorization"},
		JwtConfiguration: &v2types.JWTConfiguration{Issuer: aws.String(issuer), Audience: []string{"smoke"}},
	})
	if err != nil {
		return "", err
	}
	target, err := httpProxyIntegration(ctx, c, *api.ApiId, nil)
	if err != nil {
		return "", err
	}
	if _, err := c.CreateRoute(ctx, &apigatewayv2.CreateRouteInput{ApiId: api.ApiId, RouteKey: aws.String("$default"),
		AuthorizationType: v2types.AuthorizationTypeJwt, AuthorizerId: auth.AuthorizerId, Target: &target}); err != nil {
		return "", err
	}
	if _, err := c.CreateStage(ctx, &apigatewayv2.CreateStageInput{ApiId: api.ApiId, StageName: aws.String("prod"), AutoDeploy: aws.Bool(true),
		StageVariables: map[string]string{"backendUrl": backend}}); err != nil {
		return "", err
	}
	return emu.InvokeURL(*api.ApiId, "prod") + "/orders", nil
}

func smokeCanary(ctx context.Context, c *apigateway.Client, emu *gatewayemu.Emulator, stable, canary string) (float64, error) {
	api, err := c.CreateRestApi(ctx, &apigateway.CreateRestApiInput{Name: aws.String("smoke-rest")})
	if err != nil {
		return 0, err
	}
	if _, err := c.PutMethod(ctx, &apigateway.PutMethodInput{RestApiId: api.Id, ResourceId: api.RootResourceId,
		HttpMethod: aws.String("GET"), AuthorizationType: aws.String("NONE")}); err != nil {
		return 0, err
	}
	if _, err := c.PutIntegration(ctx, &apigateway.PutIntegrationInput{RestApiId: api.Id, ResourceId: api.RootResourceId, HttpMethod: aws.String("GET"),
		Type: agtypes.IntegrationTypeHttpProxy, IntegrationHttpMethod: aws.String("GET"), Uri: aws.String("http://${stageVariables.backendUrl}/")}); err != nil {
		return 0, err
	}
	if _, err := c.CreateDeployment(ctx, &apigateway.CreateDeploymentInput{RestApiId: api.Id, StageName: aws.String("prod"),
		Variables: map[string]string{"backendUrl": stable}}); err != nil {
		return 0, err
	}
	if _, err := c.CreateDeployment(ctx, &apigateway.CreateDeploymentInput{RestApiId: api.Id, StageName: aws.String("prod"),
		CanarySettings: &agtypes.DeploymentCanarySettings{PercentTraffic: 10, StageVariableOverrides: map[string]string{"backendUrl": canary}}}); err != nil {
		return 0, err
	}
	hits := 0
	for range 1000 {
		resp, err := http.Get(emu.InvokeURL(*api.Id, "prod"))
		if err != nil {
			return 0, err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("canary stage answered %d: %s", resp.StatusCode, body)
		}
		if strings.TrimSpace(string(body)) == "v2" {
			hits++
		}
	}
	return float64(hits) / 10, nil
}

func smokeWorkflowFn(_ workflow.Context, name string) (string, error) { return "hello " + name, nil }

func smokeWorkflow(ctx context.Context, b *Bed) (string, error) {
	c, err := b.Temporal.Client()
	if err != nil {
		return "", err
	}
	defer c.Close()
	w := worker.New(c, "smoke", worker.Options{})
	w.RegisterWorkflowWithOptions(smokeWorkflowFn, workflow.RegisterOptions{Name: "Smoke"})
	if err := w.Start(); err != nil {
		return "", err
	}
	defer w.Stop()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: fmt.Sprintf("smoke-%d", time.Now().UnixNano()), TaskQueue: "smoke"}, "Smoke", "rollgate")
	if err != nil {
		return "", err
	}
	var res string
	if err := run.Get(ctx, &res); err != nil {
		return "", errors.Join(errors.New("smoke workflow"), err)
	}
	return res, nil
}
