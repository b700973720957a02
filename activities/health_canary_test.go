package activities

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigateway"
	"github.com/aws/aws-sdk-go-v2/service/apigateway/types"

	"github.com/rollgate/rollgate/testsuite/gatewayemu"
)

// Probes count the canary's answers by the header that the configuration names, and by no
// header when none is configured: production code knows no header of the test bed.
func TestProbe_CountsCanaryAnswersOnlyByTheConfiguredHeader(t *testing.T) {
	target, invokeURL := canaryStage(t)
	cases := []struct {
		header string
		want   int
	}{
		{"", 0},
		{gatewayemu.CanaryHeader, 3},
		{"X-Release", 0}, // a header this backend does not set
	}
	for _, c := range cases {
		a := &Health{HTTP: &http.Client{}, InvokeURL: invokeURL, CanaryHeader: c.header}
		var res ProbeResult
		for range 3 {
			status, canary, err := a.call(context.Background(), ProbeInput{Target: target}, "any")
			if err != nil || status != http.StatusOK {
				t.Fatalf("probe: %d, %v", status, err)
			}
			res.add(status, canary)
		}
		if res.Canary != c.want || res.Accepted != 3 {
			t.Errorf("canary header %q: %+v, want %d canary answers", c.header, res, c.want)
		}
	}
}

// canaryStage is a REST stage of the API Gateway emulator whose canary takes all traffic.
func canaryStage(t *testing.T) (Target, func(apiID, stage string) string) {
	t.Helper()
	ctx := context.Background()
	emu, err := gatewayemu.Start(gatewayemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = emu.Close() })
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")))
	if err != nil {
		t.Fatal(err)
	}
	c := apigateway.NewFromConfig(cfg, func(o *apigateway.Options) { o.BaseEndpoint = aws.String(emu.ControlURL) })
	api, err := c.CreateRestApi(ctx, &apigateway.CreateRestApiInput{Name: aws.String("orders")})
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
	stage := "prod"
	if _, err := c.CreateDeployment(ctx, &apigateway.CreateDeploymentInput{RestApiId: api.Id, StageName: &stage,
		Variables: map[string]string{"backendUrl": versionBackend(t, "v1")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateDeployment(ctx, &apigateway.CreateDeploymentInput{RestApiId: api.Id, StageName: &stage,
		CanarySettings: &types.DeploymentCanarySettings{PercentTraffic: 100, StageVariableOverrides: map[string]string{"backendUrl": versionBackend(t, "v2")}}}); err != nil {
		t.Fatal(err)
	}
	return Target{APIID: *api.Id, Stage: stage}, emu.InvokeURL
}

func versionBackend(t *testing.T, version string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, version) }))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://") // the stage variable the integration URI reads as http://${stageVariables.backendUrl}/
}
