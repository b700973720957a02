package testsuite_test

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigateway"
	"github.com/aws/aws-sdk-go-v2/service/apigateway/types"

	"github.com/rollgate/rollgate/internal/analysis"
	"github.com/rollgate/rollgate/internal/spec"
	"github.com/rollgate/rollgate/testsuite"
	"github.com/rollgate/rollgate/testsuite/gatewayemu"
)

// canaryStage is a REST API stage of the bed's emulator whose canary (50 %) runs a backend that
// fails every fifth request it serves, beside a stable backend that never fails.
type canaryStage struct {
	apiID, stage string
	url          string
}

func newCanaryStage(t *testing.T, bed *testsuite.Bed) canaryStage {
	t.Helper()
	ctx := context.Background()
	cfg, err := bed.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := bed.APIGateway(cfg)
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }))
	t.Cleanup(ok.Close)
	var served atomic.Int64
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if served.Add(1)%5 == 0 {
			http.Error(w, "canary bug", http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(failing.Close)

	api, err := c.CreateRestApi(ctx, &apigateway.CreateRestApiInput{Name: aws.String(uniqueName("analysis"))})
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := c.CreateResource(ctx, &apigateway.CreateResourceInput{RestApiId: api.Id, ParentId: api.RootResourceId, PathPart: aws.String("{proxy+}")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutMethod(ctx, &apigateway.PutMethodInput{RestApiId: api.Id, ResourceId: proxy.Id, HttpMethod: aws.String("ANY"), AuthorizationType: aws.String("NONE"),
		RequestParameters: map[string]bool{"method.request.path.proxy": true}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutIntegration(ctx, &apigateway.PutIntegrationInput{RestApiId: api.Id, ResourceId: proxy.Id, HttpMethod: aws.String("ANY"),
		Type: types.IntegrationTypeHttpProxy, IntegrationHttpMethod: aws.String("ANY"), Uri: aws.String("http://${stageVariables.backendUrl}/{proxy}"),
		RequestParameters: map[string]string{"integration.request.path.proxy": "method.request.path.proxy"}}); err != nil {
		t.Fatal(err)
	}
	s := canaryStage{apiID: *api.Id, stage: "prod"}
	if _, err := c.CreateDeployment(ctx, &apigateway.CreateDeploymentInput{RestApiId: api.Id, StageName: &s.stage,
		Variables: map[string]string{"backendUrl": strings.TrimPrefix(ok.URL, "http://")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateDeployment(ctx, &apigateway.CreateDeploymentInput{RestApiId: api.Id, StageName: &s.stage,
		CanarySettings: &types.DeploymentCanarySettings{PercentTraffic: 50, StageVariableOverrides: map[string]string{"backendUrl": strings.TrimPrefix(failing.URL, "http://")}}}); err != nil {
		t.Fatal(err)
	}
	s.url = bed.Gateway.InvokeURL(s.apiID, s.stage) + "/orders"
	return s
}

// traffic sends n requests and counts the answers by side ("true": canary) and by 5xx.
func (s canaryStage) traffic(t *testing.T, n int, requests, errors map[string]int) {
	t.Helper()
	for range n {
		resp, err := http.Get(s.url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		side := resp.Header.Get(gatewayemu.CanaryHeader)
		requests[side]++
		if resp.StatusCode >= 500 {
			errors[side]++
		}
	}
}

// The gateway templates over what the emulator exports: Prometheus scrapes the emulator's
// data-plane metrics, and gateway5xx measures the canary's 5xx ratio and the stable's 0 as the
// answers had them, latencyP99 each side's latency.
func TestPrometheus_ScrapesTheGatewayEmulator_Gateway5xxByCanaryAndStable(t *testing.T) {
	bed := shared.Bed(t)
	s := newCanaryStage(t, bed)
	target, err := bed.Gateway.ServeMetrics()
	if err != nil {
		t.Fatal(err)
	}
	prom := testsuite.StartPrometheusForTest(t, testsuite.PrometheusOptions{Targets: []string{target}})
	p, err := analysis.NewPrometheus(analysis.PrometheusConfig{URL: prom.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// Warm-up until each series the measured traffic touches exists (canary 2xx and 5xx, stable
	// 2xx), then until Prometheus has scraped each twice: increase() counts from a second sample.
	warm, warmErrors := map[string]int{}, map[string]int{}
	for warm["false"] == 0 || warmErrors["true"] == 0 {
		s.traffic(t, 10, warm, warmErrors)
	}
	scraped := analysis.Query{Metric: "scraped", APIID: s.apiID, Window: time.Minute,
		Custom: `count(count_over_time(rollgate_gateway_requests_total{api="{{.APIID}}"}[{{.Window}}]) >= 2)`}
	if !poll(func() bool { m, err := p.Measure(ctx, scraped); return err == nil && m.Value == 3 }) {
		t.Fatal("Prometheus never scraped the stage's three series twice")
	}

	requests, errors := map[string]int{}, map[string]int{}
	s.traffic(t, 400, requests, errors)
	sent := time.Now()
	if errors["false"] != 0 || errors["true"] == 0 {
		t.Fatalf("the canary's backend should fail alone: %v errors of %v", errors, requests)
	}
	for _, side := range []struct {
		side   analysis.Side
		header string
	}{{analysis.SideCanary, "true"}, {analysis.SideStable, "false"}} {
		want, samples := float64(errors[side.header])/float64(requests[side.header]), float64(requests[side.header])
		q := analysis.QueryFor(spec.Metric{Name: "5xx", Template: spec.TemplateGateway5xx, Window: spec.Duration(5 * time.Minute)}, side.side, "", s.apiID, s.stage)
		var last analysis.Measurement
		var lastErr error
		var valueAfter time.Duration
		// Counts read high until scrapes accumulate (increase() extrapolates by half an interval).
		if !poll(func() bool {
			last, lastErr = p.Measure(ctx, q)
			if lastErr == nil && last.HasData && math.Abs(last.Value-want) < 0.005 && valueAfter == 0 {
				valueAfter = time.Since(sent)
			}
			return valueAfter > 0 && math.Abs(last.Samples-samples) < samples/50
		}) {
			t.Fatalf("gateway5xx of the %s: %v (error %v), want %.4f of %v requests", side.side, last, lastErr, want, samples)
		}
		t.Logf("gateway5xx of the %s: %.4f read %v after the last request; its %v requests counted within 2 %% after %v",
			side.side, want, valueAfter.Round(10*time.Millisecond), samples, time.Since(sent).Round(10*time.Millisecond))
		lat, err := p.Measure(ctx, analysis.QueryFor(spec.Metric{Name: "p99", Template: spec.TemplateLatencyP99, Window: spec.Duration(5 * time.Minute)}, side.side, "", s.apiID, s.stage))
		if err != nil || !lat.HasData || lat.Value <= 0 || lat.Value > 10 {
			t.Fatalf("latencyP99 of the %s: %v, %v; want a latency in seconds", side.side, lat, err)
		}
	}
}
