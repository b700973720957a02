package analysis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigateway"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/rollgate/rollgate/internal/spec"
)

// CloudWatchAPI is the part of the CloudWatch client the provider uses.
type CloudWatchAPI interface {
	GetMetricData(ctx context.Context, in *cloudwatch.GetMetricDataInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.GetMetricDataOutput, error)
	ListMetrics(ctx context.Context, in *cloudwatch.ListMetricsInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.ListMetricsOutput, error)
}

// RestAPIs reads a REST API's name: API Gateway publishes a REST API's metrics by ApiName, while
// a release knows its API by id.
type RestAPIs interface {
	GetRestApi(ctx context.Context, in *apigateway.GetRestApiInput, optFns ...func(*apigateway.Options)) (*apigateway.GetRestApiOutput, error)
}

// CloudWatchConfig wires the CloudWatch provider.
type CloudWatchConfig struct {
	Metrics CloudWatchAPI
	APIs    RestAPIs
	// Timeout bounds one measurement (every call it makes); default DefaultCloudWatchTimeout.
	Timeout time.Duration
}

// DefaultCloudWatchTimeout bounds a measurement when the configuration does not.
const DefaultCloudWatchTimeout = 10 * time.Second

// CloudWatch measures the built-in templates with GetMetricData: API Gateway's own metrics in
// AWS/ApiGateway, and the authorizer's Embedded Metric Format metric Rollgate/Verifications.
type CloudWatch struct {
	metrics CloudWatchAPI
	apis    RestAPIs
	timeout time.Duration
	names   sync.Map // API id → ApiName dimension value
}

// NewCloudWatch checks cfg and builds the provider.
func NewCloudWatch(cfg CloudWatchConfig) (*CloudWatch, error) {
	if cfg.Metrics == nil || cfg.APIs == nil {
		return nil, errors.New("cloudwatch provider: needs a CloudWatch client and an API Gateway client")
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultCloudWatchTimeout
	}
	return &CloudWatch{metrics: cfg.Metrics, apis: cfg.APIs, timeout: timeout}, nil
}

// NewCloudWatchFromConfig builds the provider from an aws.Config loaded by the SDK's standard
// chain (region, credentials, AWS_ENDPOINT_URL_CLOUDWATCH and AWS_ENDPOINT_URL_API_GATEWAY).
func NewCloudWatchFromConfig(cfg aws.Config) *CloudWatch {
	cw, _ := NewCloudWatch(CloudWatchConfig{Metrics: cloudwatch.NewFromConfig(cfg), APIs: apigateway.NewFromConfig(cfg)})
	return cw
}

// Measure takes q over the window ending at q.At (now if zero).
func (c *CloudWatch) Measure(ctx context.Context, q Query) (Measurement, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	w := cloudWatchWindow(q)
	var m Measurement
	var err error
	switch q.Template {
	case spec.TemplateGateway5xx:
		m, err = c.gateway5xx(ctx, q, w)
	case spec.TemplateLatencyP99:
		m, err = c.latencyP99(ctx, q, w)
	case spec.TemplateTokenRejections:
		expected := map[string]bool{}
		for _, r := range q.ExpectedReasons {
			expected[r] = true
		}
		m, err = c.verifications(ctx, q, w, func(outcome, reason string) bool { return outcome == "rejected" && !expected[reason] })
	case spec.TemplateUnknownKID:
		m, err = c.verifications(ctx, q, w, func(_, reason string) bool { return reason == "unknown_kid" })
	case "":
		return Measurement{}, fmt.Errorf("metric %s: the cloudwatch provider measures the built-in templates (%s, %s, %s, %s); custom queries are PromQL, for the prometheus provider",
			q.Metric, spec.TemplateTokenRejections, spec.TemplateUnknownKID, spec.TemplateGateway5xx, spec.TemplateLatencyP99)
	default:
		return Measurement{}, fmt.Errorf("metric %s: unknown template %q", q.Metric, q.Template)
	}
	if err != nil {
		return Measurement{}, fmt.Errorf("metric %s: cloudwatch: %w", q.Metric, err)
	}
	return m, nil
}

// window is one GetMetricData time range read as a single period: CloudWatch rounds StartTime
// down to the minute, so the period runs from that minute over the whole window to At.
type window struct {
	start, end time.Time
	period     int32 // seconds, a multiple of 60
}

func cloudWatchWindow(q Query) window {
	end := q.At
	if end.IsZero() {
		end = time.Now()
	}
	start := end.Add(-max(q.Window, time.Second)).Truncate(time.Minute)
	minutes := (end.Sub(start) + time.Minute - 1) / time.Minute
	return window{start: start, end: end, period: int32(minutes * 60)}
}

// stageDimension is the Stage dimension a side is published under: API Gateway publishes the
// canary's requests under "<stage>/Canary" and in the stage's own metrics as well.
func stageDimension(q Query, canary bool) string {
	if canary {
		return q.Stage + "/Canary"
	}
	return q.Stage
}

func (c *CloudWatch) gateway5xx(ctx context.Context, q Query, w window) (Measurement, error) {
	name, err := c.apiName(ctx, q.APIID)
	if err != nil {
		return Measurement{}, err
	}
	stat := func(id, metric string, canary bool) types.MetricDataQuery {
		return gatewayStat(id, metric, "Sum", name, stageDimension(q, canary), w.period)
	}
	queries := []types.MetricDataQuery{stat("err", "5XXError", q.Side == SideCanary), stat("all", "Count", q.Side == SideCanary)}
	if q.Side == SideStable { // the stage's requests minus the canary's
		queries = append(queries, stat("canerr", "5XXError", true), stat("can", "Count", true))
	}
	v, err := c.fetch(ctx, queries, w, sumOf)
	if err != nil {
		return Measurement{}, err
	}
	bad, all := v["err"], v["all"]
	if q.Side == SideStable {
		bad.value -= v["canerr"].value
		all.value -= v["can"].value
	}
	return ratioMeasurement(bad.value, all), nil
}

func (c *CloudWatch) latencyP99(ctx context.Context, q Query, w window) (Measurement, error) {
	name, err := c.apiName(ctx, q.APIID)
	if err != nil {
		return Measurement{}, err
	}
	// A percentile cannot be subtracted: the stable side is read as the whole stage, which a
	// small canary weight barely moves.
	stage := stageDimension(q, q.Side == SideCanary)
	v, err := c.fetch(ctx, []types.MetricDataQuery{
		gatewayStat("p", "Latency", "p99", name, stage, w.period),
		gatewayStat("n", "Latency", "SampleCount", name, stage, w.period),
	}, w, func(id string, vs []float64) float64 {
		if id == "p" {
			return maxOf(vs)
		}
		return sumOf(id, vs)
	})
	if err != nil {
		return Measurement{}, err
	}
	p, n := v["p"], v["n"]
	if !p.ok || n.value == 0 {
		return Measurement{}, nil
	}
	return Measurement{Value: p.value / 1000, Samples: n.value, HasData: true}, nil // seconds, as PromQL's histogram reads
}

// verifications measures the share of the release's Rollgate/Verifications that bad counts.
// The authorizer publishes them by Issuer, Release, Outcome and Reason; the provider lists the
// release's metrics, names those of the query's issuer (a new release's are listed up to 15
// minutes late), and reads each, so that every issuer and reason counts without a SEARCH.
func (c *CloudWatch) verifications(ctx context.Context, q Query, w window, bad func(outcome, reason string) bool) (Measurement, error) {
	var filter []types.DimensionFilter
	if q.Release != "" {
		filter = []types.DimensionFilter{{Name: aws.String("Release"), Value: aws.String(q.Release)}}
	}
	metrics, err := c.list(ctx, "Verifications", filter)
	if err != nil {
		return Measurement{}, err
	}
	if q.Issuer != "" && q.Release != "" {
		metrics = withNamed(metrics, verificationMetrics(q.Issuer, []string{q.Release}))
	}
	sums, _, err := c.sums(ctx, metrics, w)
	if err != nil {
		return Measurement{}, err
	}
	var rejected, total sample
	for i, m := range metrics {
		total.add(sums[i])
		if bad(dimension(m, "Outcome"), dimension(m, "Reason")) {
			rejected.add(sums[i])
		}
	}
	return ratioMeasurement(rejected.value, total), nil
}

// maxQueriesPerCall is how many queries one GetMetricData call may carry.
const maxQueriesPerCall = 500

// sums reads the Sum of each metric over w, in the metrics' order, in as few GetMetricData
// calls as the per-call limit allows; calls says how many it made.
func (c *CloudWatch) sums(ctx context.Context, metrics []types.Metric, w window) (out []sample, calls int, err error) {
	out = make([]sample, 0, len(metrics))
	for start := 0; start < len(metrics); start += maxQueriesPerCall {
		batch := metrics[start:min(start+maxQueriesPerCall, len(metrics))]
		queries := make([]types.MetricDataQuery, len(batch))
		for i, m := range batch {
			queries[i] = types.MetricDataQuery{Id: aws.String(fmt.Sprintf("v%d", i)), MetricStat: &types.MetricStat{
				Metric: &m, Period: aws.Int32(w.period), Stat: aws.String("Sum")}}
		}
		v, err := c.fetch(ctx, queries, w, sumOf)
		if err != nil {
			return nil, calls, err
		}
		calls++
		for i := range batch {
			out = append(out, v[fmt.Sprintf("v%d", i)])
		}
	}
	return out, calls, nil
}

// list lists the authorizer's metrics of a name (namespace Rollgate) that match filter.
func (c *CloudWatch) list(ctx context.Context, name string, filter []types.DimensionFilter) ([]types.Metric, error) {
	in := &cloudwatch.ListMetricsInput{Namespace: aws.String(emfNamespace), MetricName: aws.String(name), Dimensions: filter}
	var out []types.Metric
	for {
		page, err := c.metrics.ListMetrics(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("ListMetrics %s/%s: %w", emfNamespace, name, err)
		}
		out = append(out, page.Metrics...)
		if page.NextToken == nil {
			return out, nil
		}
		in.NextToken = page.NextToken
	}
}

// emfNamespace is where the authorizer's Embedded Metric Format lines publish.
const emfNamespace = "Rollgate"

// sample is a value read from CloudWatch; ok is false when no query answered a datapoint.
type sample struct {
	value float64
	ok    bool
}

func (s *sample) add(o sample) {
	s.value += o.value
	s.ok = s.ok || o.ok
}

// ratioMeasurement is bad/all; no datapoint for all, or no request, is no data (not zero).
func ratioMeasurement(bad float64, all sample) Measurement {
	if !all.ok || all.value <= 0 {
		return Measurement{}
	}
	return Measurement{Value: max(bad, 0) / all.value, Samples: all.value, HasData: true}
}

// fetch runs queries over w and reduces each result's datapoints with reduce; a result without
// datapoints is not ok. It follows NextToken, so a paginated answer is read whole.
func (c *CloudWatch) fetch(ctx context.Context, queries []types.MetricDataQuery, w window, reduce func(id string, vs []float64) float64) (map[string]sample, error) {
	in := &cloudwatch.GetMetricDataInput{MetricDataQueries: queries, StartTime: aws.Time(w.start), EndTime: aws.Time(w.end)}
	values := map[string][]float64{}
	for {
		out, err := c.metrics.GetMetricData(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("GetMetricData: %w", err)
		}
		for _, r := range out.MetricDataResults {
			values[aws.ToString(r.Id)] = append(values[aws.ToString(r.Id)], r.Values...)
		}
		if out.NextToken == nil {
			break
		}
		in.NextToken = out.NextToken
	}
	res := map[string]sample{}
	for id, vs := range values {
		if len(vs) > 0 {
			res[id] = sample{value: reduce(id, vs), ok: true}
		}
	}
	return res, nil
}

func gatewayStat(id, metric, stat, apiName, stage string, period int32) types.MetricDataQuery {
	return types.MetricDataQuery{Id: aws.String(id), MetricStat: &types.MetricStat{
		Metric: &types.Metric{Namespace: aws.String("AWS/ApiGateway"), MetricName: aws.String(metric), Dimensions: []types.Dimension{
			{Name: aws.String("ApiName"), Value: aws.String(apiName)}, {Name: aws.String("Stage"), Value: aws.String(stage)}}},
		Period: aws.Int32(period), Stat: aws.String(stat)}}
}

// apiName is the ApiName dimension of a REST API: its name without non-ASCII characters, or its
// id when none is left, as API Gateway publishes it.
func (c *CloudWatch) apiName(ctx context.Context, id string) (string, error) {
	if n, ok := c.names.Load(id); ok {
		return n.(string), nil
	}
	api, err := c.apis.GetRestApi(ctx, &apigateway.GetRestApiInput{RestApiId: aws.String(id)})
	if err != nil {
		return "", fmt.Errorf("REST API %s (its name is the ApiName dimension): %w", id, err)
	}
	name := strings.Map(func(r rune) rune {
		if r > 127 {
			return -1
		}
		return r
	}, aws.ToString(api.Name))
	if name == "" {
		name = id
	}
	c.names.Store(id, name)
	return name, nil
}

func dimension(m types.Metric, name string) string {
	for _, d := range m.Dimensions {
		if aws.ToString(d.Name) == name {
			return aws.ToString(d.Value)
		}
	}
	return ""
}

func sumOf(_ string, vs []float64) float64 {
	var s float64
	for _, v := range vs {
		s += v
	}
	return s
}

func maxOf(vs []float64) float64 {
	m := vs[0]
	for _, v := range vs[1:] {
		m = max(m, v)
	}
	return m
}
