package testsuite_test

import (
	"context"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/apigateway"
	agtypes "github.com/aws/aws-sdk-go-v2/service/apigateway/types"

	"github.com/rollgate/rollgate/internal/analysis"
	"github.com/rollgate/rollgate/internal/spec"
	"github.com/rollgate/rollgate/testsuite/gatewayemu"
)

// sideCounts is what the client saw of one side of the stage.
type sideCounts struct{ requests, rejected, errors5xx int }

// The CloudWatch path end to end on real components: a REST stage behind rollgate's authorizer
// (its Lambda bootstrap under the Runtime Interface Emulator) with a canary whose backend fails,
// traffic with good and forged tokens on both sides; the bed's CloudWatch holds what API Gateway
// publishes and what CloudWatch Logs extracts from the authorizer's EMF lines, and the CloudWatch
// provider, configured by the SDK's standard chain, reads tokenRejections for the canary and the
// stable release and gateway5xx for the canary apart from the stable deployment.
func TestCloudWatch_RealAuthorizerEMFAndGatewayMetrics_CanaryAgainstStable(t *testing.T) {
	r := provision(t, "cloudwatch")
	ctx := context.Background()
	cfg, err := r.Bed.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	canaryRelease, stableRelease := uniqueName("cw-canary-"), uniqueName("cw-stable-")
	api := r.Bed.APIGateway(cfg)
	if _, err := api.CreateDeployment(ctx, &apigateway.CreateDeploymentInput{RestApiId: &r.APIID, StageName: &r.Stage,
		Variables: map[string]string{"backendUrl": r.Backends["v1"], spec.DefaultReleaseVariable: stableRelease}}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.CreateDeployment(ctx, &apigateway.CreateDeploymentInput{RestApiId: &r.APIID, StageName: &r.Stage,
		CanarySettings: &agtypes.DeploymentCanarySettings{PercentTraffic: 40, StageVariableOverrides: map[string]string{
			"backendUrl": r.Backends["v3"], spec.DefaultReleaseVariable: canaryRelease}}}); err != nil {
		t.Fatal(err)
	}
	good, err := mintFor(ctx, r, "cloudwatch-client")
	if err != nil {
		t.Fatal(err)
	}
	// Every fourth request carries a token the authorizer rejects (a forged signature, an unknown kid).
	presented := []string{good, good, good, withBadSignature(good), good, good, good, withUnknownKID(good)}
	url := r.Bed.Gateway.InvokeURL(r.APIID, r.Stage) + "/orders"
	sides := map[string]*sideCounts{"true": {}, "false": {}}
	start := time.Now()
	for i := range 160 {
		status, canary := call(t, url, presented[i%len(presented)])
		s := sides[canary]
		s.requests++
		switch {
		case status == http.StatusUnauthorized || status == http.StatusForbidden:
			s.rejected++
		case status >= 500:
			s.errors5xx++
		}
	}
	can, stable := sides["true"], sides["false"]
	if can.requests == 0 || stable.requests == 0 || can.errors5xx == 0 || stable.errors5xx != 0 || can.rejected == 0 || stable.rejected == 0 {
		t.Fatalf("the traffic itself is off: canary %+v, stable %+v", *can, *stable)
	}

	// The worker's configuration: the SDK's standard chain, pointed at the bed by its variables.
	for _, kv := range r.Bed.Env() {
		t.Setenv(kv[0], kv[1])
	}
	chain, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p := analysis.NewCloudWatchFromConfig(chain)
	measure := func(template string, side analysis.Side, release string, want, samples float64) {
		t.Helper()
		q := analysis.QueryFor(spec.Metric{Name: template, Template: template, ExpectedReasons: []string{"revoked"}, Window: spec.Duration(5 * time.Minute)},
			side, release, r.APIID, r.Stage)
		q.Issuer = r.Issuer // the bed lists a new metric 15 minutes late: the release's are named
		var last analysis.Measurement
		var lastErr error
		// The authorizer's output reaches CloudWatch Logs (here: its pipe) a moment after it answered.
		if !poll(func() bool {
			q.At = time.Now()
			last, lastErr = p.Measure(ctx, q)
			return lastErr == nil && last.HasData && last.Samples == samples
		}) || math.Abs(last.Value-want) > 1e-9 {
			t.Fatalf("%s of the %s (%s): %v (error %v), want %.4f of %v", template, side, release, last, lastErr, want, samples)
		}
		t.Logf("%s of the %s: %.4f of %v samples, read %v after the traffic began", template, side, last.Value, last.Samples, time.Since(start).Round(time.Millisecond))
	}
	measure(spec.TemplateTokenRejections, analysis.SideCanary, canaryRelease, float64(can.rejected)/float64(can.requests), float64(can.requests))
	measure(spec.TemplateTokenRejections, analysis.SideStable, stableRelease, float64(stable.rejected)/float64(stable.requests), float64(stable.requests))
	measure(spec.TemplateGateway5xx, analysis.SideCanary, "", float64(can.errors5xx)/float64(can.requests), float64(can.requests))
	measure(spec.TemplateGateway5xx, analysis.SideStable, "", 0, float64(stable.requests))

	q := analysis.QueryFor(spec.Metric{Name: "none", Template: spec.TemplateTokenRejections, Window: spec.Duration(time.Minute)},
		analysis.SideCanary, uniqueName("cw-no-traffic-"), r.APIID, r.Stage)
	q.Issuer = r.Issuer
	none, err := p.Measure(ctx, q)
	if err != nil || none.HasData {
		t.Fatalf("a release without traffic: %v, %v; want no data", none, err)
	}
}

// call presents token to url and returns the status and the side that served it ("true": canary).
func call(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get(gatewayemu.CanaryHeader)
}
