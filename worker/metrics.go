package main

import (
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/uber-go/tally/v4"
	tallyprom "github.com/uber-go/tally/v4/prometheus"
	"go.temporal.io/sdk/client"
	sdktally "go.temporal.io/sdk/contrib/tally"
)

// latencyBuckets suit both Temporal's request latencies and rollgate's rollback latency.
var latencyBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}

// sdkMetrics routes the Temporal SDK's metrics (and the workflow and activity metrics rollgate
// emits through the SDK's handler) to reg through tally, timers as Prometheus histograms.
func sdkMetrics(reg *prometheus.Registry, logger *slog.Logger) (client.MetricsHandler, io.Closer, error) {
	buckets := make([]tallyprom.HistogramObjective, len(latencyBuckets))
	for i, b := range latencyBuckets {
		buckets[i].Upper = b
	}
	reporter, err := tallyprom.Configuration{TimerType: "histogram", DefaultHistogramBuckets: buckets}.NewReporter(tallyprom.ConfigurationOptions{
		Registry: reg,
		OnError:  func(err error) { logger.Warn("metric not registered", "error", err) },
	})
	if err != nil {
		return nil, nil, err
	}
	scope, closer := tally.NewRootScope(tally.ScopeOptions{
		CachedReporter:  reporter,
		Separator:       tallyprom.DefaultSeparator,
		SanitizeOptions: &sdktally.PrometheusSanitizeOptions,
	}, time.Second)
	return sdktally.NewMetricsHandler(sdktally.NewPrometheusNamingScope(scope)), closer, nil
}
