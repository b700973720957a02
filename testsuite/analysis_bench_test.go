package testsuite_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/rollgate/rollgate/activities"
	"github.com/rollgate/rollgate/internal/spec"
	"github.com/rollgate/rollgate/workflows"
)

// BenchmarkAnalysisDetectionLatency measures how long gateway5xx takes to see a canary that
// starts failing: from the moment its backend starts failing 10 % of its requests, mid-bake and
// after the metric's first measurement passed, to the rollback's start (the report's StartedAt),
// with a 5 s interval and window, 50 requests a second of traffic and Prometheus scraping every
// second. The goal: at most one interval + one scrape interval + 1 s. Not run in CI:
//
//	go test -run '^$' -bench AnalysisDetectionLatency -benchtime 3x -timeout 20m ./testsuite
func BenchmarkAnalysisDetectionLatency(b *testing.B) {
	const interval = 5 * time.Second
	var latencies []time.Duration
	i := 0
	for b.Loop() {
		i++
		bed := provisionAnalysis(b, "detect")
		fb := bed.flaky(b, "soon", 0)
		bed.traffic(b)
		m := gateway5xx()
		m.Interval, m.Window, m.MinSamples = spec.Duration(interval), spec.Duration(interval), 20
		run := bed.start(b, "soon", m)
		awaitStatus(b, bed, run, 4*time.Minute, func(st workflows.Status) bool { return st.Phase == workflows.PhaseBaking && st.Step == 1 })
		awaitMeasured(b, bed, run)
		failing := time.Now()
		fb.SetRatio(0.1)
		var res workflows.DeployResult
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		err := run.Get(ctx, &res)
		cancel()
		if err != nil || res.Rollback == nil || res.Rollback.Trigger != workflows.TriggerAnalysis {
			b.Fatalf("result %+v, %v", res, err)
		}
		d := res.Rollback.StartedAt.Sub(failing)
		latencies = append(latencies, d)
		b.Logf("run %d: detected %v after the canary started failing (%s)", i, d.Round(10*time.Millisecond), res.Rollback.Reason)
	}
	slices.Sort(latencies)
	b.ReportMetric(float64(latencies[len(latencies)/2].Milliseconds()), "p50-ms")
	b.ReportMetric(float64(latencies[len(latencies)-1].Milliseconds()), "max-ms")
	b.Logf("detection latency %v (interval %v + scrape 1s + 1s = %v)", latencies, interval, interval+2*time.Second)
}

// awaitMeasured waits until the running bake's heartbeat shows a counted, passing measurement.
func awaitMeasured(b testing.TB, bed analysisBed, run client.WorkflowRun) {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		desc, err := bed.Temporal.DescribeWorkflowExecution(context.Background(), run.GetID(), run.GetRunID())
		if err == nil {
			for _, pa := range desc.GetPendingActivities() {
				var p activities.BakeProgress
				if pa.GetActivityType().GetName() == activities.BakeActivity && pa.GetHeartbeatDetails() != nil &&
					converter.GetDefaultDataConverter().FromPayloads(pa.GetHeartbeatDetails(), &p) == nil && len(p.Analysis) > 0 && p.Analysis[0].Counted > 0 {
					return
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Fatal("no measurement counted in the first bake")
}
