package analysis_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"math"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rollgate/rollgate/internal/analysis"
	"github.com/rollgate/rollgate/internal/spec"
	"github.com/rollgate/rollgate/testsuite"
)

// gatewayExporter exports the gateway's data-plane series (the names and labels of the bed's API
// Gateway emulator) with counts and latencies the test sets exactly, for one API of its own;
// testsuite's tests measure the emulator itself.
type gatewayExporter struct {
	addr     string
	apiID    string
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newGatewayExporter(t *testing.T) *gatewayExporter {
	reg := prometheus.NewRegistry()
	g := &gatewayExporter{apiID: randomID(t),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rollgate_gateway_requests_total"}, []string{"api", "stage", "deployment", "canary", "status_class"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "rollgate_gateway_request_duration_seconds", Buckets: []float64{0.1, 0.5, 1, 2.5}},
			[]string{"api", "stage", "deployment", "canary"}),
	}
	reg.MustRegister(g.requests, g.latency)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	g.addr = strings.TrimPrefix(srv.URL, "http://")
	return g
}

// serve counts n requests of one side answered with status class, each taking seconds.
func (g *gatewayExporter) serve(canary bool, class string, n int, seconds float64) {
	side, dep := "false", "stable1"
	if canary {
		side, dep = "true", "canary1"
	}
	g.requests.WithLabelValues(g.apiID, "prod", dep, side, class).Add(float64(n))
	h := g.latency.WithLabelValues(g.apiID, "prod", dep, side) // the series exists from now on, even at 0
	for range n {
		h.Observe(seconds)
	}
}

func randomID(t *testing.T) string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func newProvider(t *testing.T, cfg analysis.PrometheusConfig) *analysis.Prometheus {
	t.Helper()
	p, err := analysis.NewPrometheus(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// waitFor polls read until ok accepts what it read; a busy machine gets a generous deadline.
func waitFor[T any](t *testing.T, what string, read func() (T, error), ok func(T) bool) T {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		v, err := read()
		if err == nil && ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 90 s, %s: last %+v, error %v", what, v, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func query(template string, side analysis.Side, apiID string) analysis.Query {
	return analysis.Query{Metric: template, Template: template, APIID: apiID, Stage: "prod", Side: side, Window: 5 * time.Minute}
}

// The gateway templates against a real Prometheus scraping a real exporter: the canary's 5xx
// ratio and p99 latency are its own, the stable's are its own, and a side without traffic
// measures no data rather than zero.
func TestPrometheus_GatewayTemplates_MeasureEachSideAndNoTrafficIsNoData(t *testing.T) {
	g := newGatewayExporter(t)
	prom := testsuite.StartPrometheusForTest(t, testsuite.PrometheusOptions{Targets: []string{g.addr}})
	p := newProvider(t, analysis.PrometheusConfig{URL: prom.URL})
	ctx := context.Background()

	// The series exist (at 0) before the traffic: increase() counts from a series' second sample.
	g.serve(true, "2xx", 0, 0)
	g.serve(true, "5xx", 0, 0)
	g.serve(false, "2xx", 0, 0)
	waitFor(t, "the canary's zero series scraped", func() (analysis.Measurement, error) {
		return p.Measure(ctx, query(spec.TemplateGateway5xx, analysis.SideCanary, g.apiID))
	}, func(m analysis.Measurement) bool { return !m.HasData })
	waitFor(t, "the series scraped twice", func() (analysis.Measurement, error) {
		return p.Measure(ctx, analysis.Query{Metric: "scraped", Custom: `count_over_time(rollgate_gateway_requests_total{api="{{.APIID}}",canary="true",status_class="5xx"}[{{.Window}}])`, APIID: g.apiID, Window: time.Minute})
	}, func(m analysis.Measurement) bool { return m.HasData && m.Value >= 2 })

	g.serve(true, "2xx", 97, 0.05)
	g.serve(true, "5xx", 3, 2)
	g.serve(false, "2xx", 100, 0.05)

	c := waitFor(t, "the canary's 5xx ratio", func() (analysis.Measurement, error) {
		return p.Measure(ctx, query(spec.TemplateGateway5xx, analysis.SideCanary, g.apiID))
	}, func(m analysis.Measurement) bool { return m.HasData && math.Abs(m.Value-0.03) < 1e-9 })
	if c.Samples < 100 || c.Samples > 150 {
		t.Errorf("canary samples %v, want about 100 (increase() extrapolates a little)", c.Samples)
	}
	s, err := p.Measure(ctx, query(spec.TemplateGateway5xx, analysis.SideStable, g.apiID))
	if err != nil || !s.HasData || s.Value != 0 {
		t.Fatalf("stable 5xx ratio: %v, %v; want 0 (traffic, no 5xx)", s, err)
	}
	whole, err := p.Measure(ctx, query(spec.TemplateGateway5xx, analysis.SideStage, g.apiID))
	if err != nil || !whole.HasData || math.Abs(whole.Value-3.0/200) > 1e-9 {
		t.Fatalf("the whole stage's 5xx ratio: %v, %v; want 3/200", whole, err)
	}
	lat, err := p.Measure(ctx, query(spec.TemplateLatencyP99, analysis.SideCanary, g.apiID))
	if err != nil || !lat.HasData || lat.Value <= 1 || lat.Value > 2.5 {
		t.Fatalf("canary p99: %v, %v; want within the (1s, 2.5s] bucket of its slow 3 %%", lat, err)
	}
	lat, err = p.Measure(ctx, query(spec.TemplateLatencyP99, analysis.SideStable, g.apiID))
	if err != nil || !lat.HasData || lat.Value > 0.1 {
		t.Fatalf("stable p99: %v, %v; want at most 0.1 s", lat, err)
	}
	none, err := p.Measure(ctx, query(spec.TemplateGateway5xx, analysis.SideCanary, "nosuchapi0"))
	if err != nil || none.HasData {
		t.Fatalf("an API without traffic: %v, %v; want no data and no error", none, err)
	}
}

// A custom query renders its placeholders; one that answers several series is an error, not a
// value picked at random.
func TestPrometheus_CustomQuery_PlaceholdersAndOneSeriesOnly(t *testing.T) {
	g := newGatewayExporter(t)
	prom := testsuite.StartPrometheusForTest(t, testsuite.PrometheusOptions{Targets: []string{g.addr}})
	p := newProvider(t, analysis.PrometheusConfig{URL: prom.URL})
	ctx := context.Background()
	g.serve(true, "2xx", 7, 0.05)
	g.serve(false, "2xx", 5, 0.05)

	one := analysis.Query{Metric: "custom", Custom: `sum(rollgate_gateway_requests_total{api="{{.APIID}}",stage="{{.Stage}}"})`, APIID: g.apiID, Stage: "prod", Window: time.Minute}
	waitFor(t, "the custom sum", func() (analysis.Measurement, error) { return p.Measure(ctx, one) },
		func(m analysis.Measurement) bool { return m.HasData && m.Value == 12 })

	many := one
	many.Custom = `rollgate_gateway_requests_total{api="{{.APIID}}"}`
	_, err := p.Measure(ctx, many)
	if err == nil || !strings.Contains(err.Error(), "answered 2 series") || !strings.Contains(err.Error(), "metric custom") {
		t.Fatalf("two series: %v, want an error naming the metric and the count", err)
	}
	bad := one
	bad.Custom = `sum(rate(x[`
	if _, err := p.Measure(ctx, bad); err == nil || !strings.Contains(err.Error(), "bad_data") {
		t.Fatalf("a query Prometheus cannot parse: %v, want its bad_data error", err)
	}
}

// A value no threshold can judge (a custom ratio over a zero count) is an error, not a number.
func TestPrometheus_InfiniteValueIsAnError(t *testing.T) {
	prom := testsuite.StartPrometheusForTest(t, testsuite.PrometheusOptions{})
	p := newProvider(t, analysis.PrometheusConfig{URL: prom.URL})
	_, err := p.Measure(context.Background(), analysis.Query{Metric: "inf", Custom: "vector(1) / vector(0)", Window: time.Minute})
	if err == nil || !strings.Contains(err.Error(), "+Inf") {
		t.Fatalf("got %v, want an error about +Inf", err)
	}
}
