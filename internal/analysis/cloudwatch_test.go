package analysis_test

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigateway"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"

	"github.com/rollgate/rollgate/internal/analysis"
	"github.com/rollgate/rollgate/internal/spec"
	"github.com/rollgate/rollgate/testsuite/cloudwatchemu"
	"github.com/rollgate/rollgate/testsuite/gatewayemu"
)

// cloudWatchBed is the bed's CloudWatch and API Gateway, in process, with values the test
// publishes exactly, read by the provider through the unmodified SDK clients.
type cloudWatchBed struct {
	cw       *cloudwatchemu.Server
	provider *analysis.CloudWatch
	apiID    string
	at       time.Time
}

func newCloudWatchBed(t *testing.T, apiName string) *cloudWatchBed {
	t.Helper()
	cw, err := cloudwatchemu.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cw.Close() })
	gw, err := gatewayemu.Start(gatewayemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gw.Close() })
	creds := credentials.NewStaticCredentialsProvider(testAccessKey, testSecretKey, "")
	apis := apigateway.New(apigateway.Options{Region: "us-east-1", BaseEndpoint: aws.String(gw.ControlURL), Credentials: creds})
	api, err := apis.CreateRestApi(context.Background(), &apigateway.CreateRestApiInput{Name: aws.String(apiName)})
	if err != nil {
		t.Fatal(err)
	}
	p, err := analysis.NewCloudWatch(analysis.CloudWatchConfig{
		Metrics: cloudwatch.New(cloudwatch.Options{Region: "us-east-1", BaseEndpoint: aws.String(cw.URL), Credentials: creds}),
		APIs:    apis,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &cloudWatchBed{cw: cw, provider: p, apiID: *api.Id, at: time.Now()}
}

// requests publishes n requests of which bad answered 5xx, as API Gateway does, on the stage
// and, for the canary, under "<stage>/Canary" too; latency in milliseconds.
func (b *cloudWatchBed) requests(apiName string, canary bool, n, bad int, latency float64) {
	sets := [][]cloudwatchemu.Dimension{{{Name: "ApiName", Value: apiName}, {Name: "Stage", Value: "prod"}}}
	if canary {
		sets = append(sets, []cloudwatchemu.Dimension{{Name: "ApiName", Value: apiName}, {Name: "Stage", Value: "prod/Canary"}})
	}
	for i := range n {
		at := b.at.Add(-time.Duration(i%50+1) * time.Second) // EndTime (At) is exclusive
		five := 0.0
		if i < bad {
			five = 1
		}
		b.cw.Put(
			cloudwatchemu.Datum{Namespace: "AWS/ApiGateway", MetricName: "Count", DimensionSets: sets, Time: at, Value: 1, Unit: "Count"},
			cloudwatchemu.Datum{Namespace: "AWS/ApiGateway", MetricName: "5XXError", DimensionSets: sets, Time: at, Value: five, Unit: "Count"},
			cloudwatchemu.Datum{Namespace: "AWS/ApiGateway", MetricName: "Latency", DimensionSets: sets, Time: at, Value: latency + float64(i%100), Unit: "Milliseconds"},
		)
	}
}

// verifications publishes n EMF values of the authorizer for release, outcome and reason.
func (b *cloudWatchBed) verifications(issuer, release, reason string, n int) {
	outcome := "rejected"
	if reason == "none" {
		outcome = "accepted"
	}
	set := []cloudwatchemu.Dimension{{Name: "Issuer", Value: issuer}, {Name: "Release", Value: release}, {Name: "Outcome", Value: outcome}, {Name: "Reason", Value: reason}}
	for i := range n {
		b.cw.Put(cloudwatchemu.Datum{Namespace: "Rollgate", MetricName: "Verifications", DimensionSets: [][]cloudwatchemu.Dimension{set},
			Time: b.at.Add(-time.Duration(i%30+1) * time.Second), Value: 1, Unit: "Count"})
	}
}

func (b *cloudWatchBed) measure(t *testing.T, template string, side analysis.Side, release string, expected ...string) analysis.Measurement {
	t.Helper()
	m, err := b.provider.Measure(context.Background(), analysis.Query{
		Metric: "m", Template: template, ExpectedReasons: expected, Release: release, Stage: "prod", APIID: b.apiID,
		Side: side, Window: 2 * time.Minute, At: b.at,
	})
	if err != nil {
		t.Fatalf("%s %s: %v", template, side, err)
	}
	return m
}

const testAccessKey, testSecretKey = "AKIDCLOUDWATCHPROVIDER", "cw-provider-secret-key"

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestCloudWatch_Gateway5xx_CanaryApartFromStable(t *testing.T) {
	b := newCloudWatchBed(t, "orders")
	b.requests("orders", true, 100, 3, 20)    // the canary: 3 % 5xx
	b.requests("orders", false, 900, 9, 10)   // the stable deployment: 1 %
	b.requests("payments", true, 100, 100, 5) // another API's canary, all failing
	for _, tc := range []struct {
		side          analysis.Side
		value, sample float64
	}{{analysis.SideCanary, 0.03, 100}, {analysis.SideStable, 0.01, 900}, {analysis.SideStage, 0.012, 1000}} {
		m := b.measure(t, spec.TemplateGateway5xx, tc.side, "")
		if !m.HasData || !near(m.Value, tc.value) || m.Samples != tc.sample {
			t.Errorf("%s: %v, want %v over %v requests", tc.side, m, tc.value, tc.sample)
		}
	}
	canary := b.measure(t, spec.TemplateLatencyP99, analysis.SideCanary, "")
	if !canary.HasData || canary.Samples != 100 || !near(canary.Value, 0.118) {
		t.Errorf("canary latencyP99: %v, want 0.118 s (the nearest-rank p99 of 20..119 ms) over 100 requests", canary)
	}
}

func TestCloudWatch_NoTrafficIsNoData(t *testing.T) {
	b := newCloudWatchBed(t, "orders")
	b.requests("orders", false, 10, 0, 10) // only the stable deployment served
	for _, tc := range []struct {
		template string
		side     analysis.Side
	}{{spec.TemplateGateway5xx, analysis.SideCanary}, {spec.TemplateLatencyP99, analysis.SideCanary}, {spec.TemplateTokenRejections, analysis.SideCanary}} {
		if m := b.measure(t, tc.template, tc.side, "r-canary"); m.HasData {
			t.Errorf("%s %s: %v, want no data", tc.template, tc.side, m)
		}
	}
	if m := b.measure(t, spec.TemplateGateway5xx, analysis.SideStable, ""); !m.HasData || m.Value != 0 || m.Samples != 10 {
		t.Errorf("stable without a canary: %v, want 0 over 10", m)
	}
}

func TestCloudWatch_TokenRejections_ByRelease_ExpectedReasonsExcluded(t *testing.T) {
	b := newCloudWatchBed(t, "orders")
	for _, issuer := range []string{"https://a", "https://b"} { // every issuer counts
		b.verifications(issuer, "r2", "none", 40)
		b.verifications(issuer, "r2", "bad_audience", 8)
		b.verifications(issuer, "r2", "revoked", 2)
		b.verifications(issuer, "r1", "none", 50)
	}
	b.verifications("https://a", "r2", "unknown_kid", 4)
	m := b.measure(t, spec.TemplateTokenRejections, analysis.SideCanary, "r2", "revoked")
	if !m.HasData || !near(m.Value, 20.0/104) || m.Samples != 104 {
		t.Errorf("r2 tokenRejections: %v, want 20/104 (revoked expected)", m)
	}
	if m := b.measure(t, spec.TemplateTokenRejections, analysis.SideStable, "r1"); !m.HasData || m.Value != 0 || m.Samples != 100 {
		t.Errorf("r1 tokenRejections: %v, want 0 over 100", m)
	}
	if m := b.measure(t, spec.TemplateUnknownKID, analysis.SideCanary, "r2"); !near(m.Value, 4.0/104) {
		t.Errorf("r2 unknownKid: %v, want 4/104", m)
	}
}

func TestCloudWatch_RefusesCustomQueries_ErrorsNameTheMetric(t *testing.T) {
	b := newCloudWatchBed(t, "orders")
	_, err := b.provider.Measure(context.Background(), analysis.Query{Metric: "errors", Custom: "sum(x)", Stage: "prod", APIID: b.apiID, Window: time.Minute})
	if err == nil || !strings.Contains(err.Error(), "metric errors") || !strings.Contains(err.Error(), "prometheus provider") {
		t.Errorf("custom query: %v, want a refusal naming the metric", err)
	}
	_, err = b.provider.Measure(context.Background(), analysis.Query{Metric: "5xx", Template: spec.TemplateGateway5xx, Stage: "prod", APIID: "nosuchapi", Window: time.Minute})
	if err == nil || !strings.Contains(err.Error(), "metric 5xx") || !strings.Contains(err.Error(), "nosuchapi") {
		t.Errorf("unknown API: %v, want an error naming the metric and the API", err)
	}
	if strings.Contains(err.Error(), testAccessKey) || strings.Contains(err.Error(), testSecretKey) {
		t.Errorf("error carries credentials: %v", err)
	}
}
