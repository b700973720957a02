package gatewayemu_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigateway"
	"github.com/aws/aws-sdk-go-v2/service/apigateway/types"
	"github.com/aws/aws-sdk-go-v2/service/apigatewayv2"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/rollgate/rollgate/testsuite/cloudwatchemu"
	"github.com/rollgate/rollgate/testsuite/gatewayemu"
)

// The data plane publishes API Gateway's CloudWatch metrics: per API and stage, the canary's
// requests apart under Stage "<stage>/Canary" and also in the stage's, 4XXError/5XXError as 0 or
// 1 per request (so Average is the error rate), IntegrationLatency only for requests that
// reached the backend. Read through the unmodified SDK client.
func TestCloudWatchMetrics_ReportTheCanaryApartAsAPIGatewayDoes(t *testing.T) {
	emu, c, _ := startEmulator(t, gatewayemu.Options{})
	cw, err := cloudwatchemu.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cw.Close() })
	emu.PublishMetricsTo(cw.Store)
	ctx := context.Background()
	f := newRESTFixture(t, emu, c, backend(t, "stable"))
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "canary down", http.StatusServiceUnavailable)
	}))
	t.Cleanup(broken.Close)
	if _, err := c.CreateDeployment(ctx, &apigateway.CreateDeploymentInput{
		RestApiId: &f.api, StageName: &f.stage,
		CanarySettings: &types.DeploymentCanarySettings{PercentTraffic: 30, StageVariableOverrides: map[string]string{"backendUrl": hostPort(broken.URL)}},
	}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	url := emu.InvokeURL(f.api, f.stage) + "/orders/42"
	canary, stable := 0, 0
	for range 200 {
		_, _, h := get(t, url, http.Header{"Authorization": {"good"}})
		if h.Get(gatewayemu.CanaryHeader) == "true" {
			canary++
		} else {
			stable++
		}
	}
	for range 10 {
		get(t, url, nil) // 401 before the backend, from either side
	}
	if canary == 0 || stable == 0 {
		t.Fatalf("the split is off: %d canary, %d stable", canary, stable)
	}

	client := cloudwatch.New(cloudwatch.Options{Region: "us-east-1", BaseEndpoint: aws.String(cw.URL),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")})
	q := func(id, metric, stage, stat string) cwtypes.MetricDataQuery {
		return cwtypes.MetricDataQuery{Id: aws.String(id), ReturnData: aws.Bool(false), MetricStat: &cwtypes.MetricStat{
			Metric: &cwtypes.Metric{Namespace: aws.String("AWS/ApiGateway"), MetricName: aws.String(metric), Dimensions: []cwtypes.Dimension{
				{Name: aws.String("ApiName"), Value: aws.String("orders")}, {Name: aws.String("Stage"), Value: aws.String(stage)}}},
			Period: aws.Int32(3600), Stat: aws.String(stat)}}
	}
	expr := func(id, e string) cwtypes.MetricDataQuery {
		return cwtypes.MetricDataQuery{Id: aws.String(id), Expression: aws.String(e)}
	}
	out, err := client.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(start.Add(-time.Minute)), EndTime: aws.Time(time.Now().Add(time.Minute)),
		MetricDataQueries: []cwtypes.MetricDataQuery{
			q("all", "Count", f.stage, "Sum"), q("can", "Count", f.stage+"/Canary", "Sum"),
			q("allerr", "5XXError", f.stage, "Sum"), q("canerr", "5XXError", f.stage+"/Canary", "Sum"),
			q("c4", "4XXError", f.stage, "Sum"), q("integ", "IntegrationLatency", f.stage, "SampleCount"),
			expr("total", "all"), expr("canary", "can"), expr("stable", "all - can"),
			expr("canary5xx", "canerr / can"), expr("stable5xx", "(allerr - canerr) / (all - can)"),
			expr("client4xx", "c4"), expr("integrated", "integ"),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, r := range out.MetricDataResults {
		if len(r.Values) != 1 {
			t.Fatalf("%s: %v, want one datapoint for the hour", *r.Id, r.Values)
		}
		got[*r.Id] = r.Values[0]
	}
	want := map[string]float64{
		"total": 210, "client4xx": 10, "integrated": 200,
		"canary5xx": float64(canary) / got["canary"], // every authorized canary request failed; its 401s are no 5xx
		"stable5xx": 0,
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("%s = %v, want %v (all: %v)", id, got[id], w, got)
		}
	}
	if got["canary"] < float64(canary) || got["canary"]+got["stable"] != 210 {
		t.Errorf("canary %v stable %v, want the canary's %d authorized requests (plus its share of the 401s) and the rest", got["canary"], got["stable"], canary)
	}
}

// An HTTP API's metrics are published by ApiId (and stage), with HTTP APIs' metric names.
func TestCloudWatchMetrics_HTTPAPIByApiId(t *testing.T) {
	emu, _, c := startEmulator(t, gatewayemu.Options{})
	cw, err := cloudwatchemu.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cw.Close() })
	emu.PublishMetricsTo(cw.Store)
	iss := newIssuer(t)
	k := newRSAKey(t)
	iss.publish("k1", k)
	f := newHTTPFixture(t, c, iss, backend(t, "stable"))
	// The data plane reports answers of a stage that has a deployment (the emulator's auto-deploy
	// stage has none until one is made).
	if _, err := c.CreateDeployment(context.Background(), &apigatewayv2.CreateDeploymentInput{ApiId: &f.api, StageName: &f.stage}); err != nil {
		t.Fatal(err)
	}
	url := emu.InvokeURL(f.api, f.stage) + "/orders"
	tok := iss.token(t, "k1", k, "orders", time.Now().Add(time.Hour))
	for range 3 {
		if status, _, _ := get(t, url, bearer(tok)); status != http.StatusOK {
			t.Fatalf("a good token: %d", status)
		}
	}
	for range 2 {
		get(t, url, nil) // 401
	}
	client := cloudwatch.New(cloudwatch.Options{Region: "us-east-1", BaseEndpoint: aws.String(cw.URL),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")})
	q := func(id, metric string) cwtypes.MetricDataQuery {
		return cwtypes.MetricDataQuery{Id: aws.String(id), MetricStat: &cwtypes.MetricStat{
			Metric: &cwtypes.Metric{Namespace: aws.String("AWS/ApiGateway"), MetricName: aws.String(metric), Dimensions: []cwtypes.Dimension{
				{Name: aws.String("ApiId"), Value: aws.String(f.api)}, {Name: aws.String("Stage"), Value: aws.String(f.stage)}}},
			Period: aws.Int32(3600), Stat: aws.String("Sum")}}
	}
	out, err := client.GetMetricData(context.Background(), &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(time.Now().Add(-time.Hour)), EndTime: aws.Time(time.Now().Add(time.Minute)),
		MetricDataQueries: []cwtypes.MetricDataQuery{q("count", "Count"), q("client", "4xx"), q("server", "5xx"), q("rest", "4XXError")},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]float64{"count": {5}, "client": {2}, "server": {0}, "rest": nil}
	for _, r := range out.MetricDataResults {
		if w := want[*r.Id]; len(r.Values) != len(w) || (len(w) == 1 && r.Values[0] != w[0]) {
			t.Errorf("%s: %v, want %v", *r.Id, r.Values, w)
		}
	}
}
