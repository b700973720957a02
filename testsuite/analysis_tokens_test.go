package testsuite_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/rollgate/rollgate/internal/analysis"
	"github.com/rollgate/rollgate/internal/spec"
	"github.com/rollgate/rollgate/testsuite"
	"github.com/rollgate/rollgate/workflows"
)

// The failure probes cannot see: the release points the canary's authorizer at a function with
// no clock-skew leeway, so one client whose issuer clock runs 20 s ahead is refused by the canary
// (not_yet_valid) while the stable authorizer, with the default 30 s leeway, accepts it; every
// probe presents a fresh token and passes. tokenRejections, canary against stable, read from the
// authorizer's EMF metrics in the bed's CloudWatch, rolls the release back.
func TestAnalysis_CanaryRejectingOneClientsTokens_IsRolledBackByTokenRejections(t *testing.T) {
	t.Parallel() // on a task queue of its own (WithOwnTaskQueue)
	ctx := context.Background()
	r := provisionCloudWatch(t, "tokrej")
	strict, err := r.AuthorizerVariant(ctx, "strict", map[string]string{"ROLLGATE_LEEWAY": "0s"})
	if err != nil {
		t.Fatal(err)
	}

	// Traffic: the bed's client with its delivered token, and a client whose tokens are issued
	// by a clock 20 s ahead (re-minted every few seconds, so they stay ahead).
	tr, err := r.StartTraffic(ctx, 20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Stop)
	skewed, err := r.StartSkewedClient(ctx, 20*time.Second, 10)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := skewed.Stop(); err != nil {
			t.Error(err)
		}
	})

	s := r.Spec("v2", 30*time.Second)
	s.Auth.AuthorizerPatch = map[string]string{"/authorizerResultTtlInSeconds": "0", "/authorizerUri": strict}
	maxDelta := 0.05
	s.Analysis = &spec.Analysis{Metrics: []spec.Metric{{Name: "token-rejections", Template: spec.TemplateTokenRejections, Provider: spec.ProviderCloudWatch,
		MaxDelta: &maxDelta, Interval: spec.Duration(5 * time.Second), Window: spec.Duration(10 * time.Second), MinSamples: 10}}}
	s.Normalize()
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	run, err := r.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: s.WorkflowID(), TaskQueue: r.TaskQueue}, workflows.Deployment, s)
	if err != nil {
		t.Fatal(err)
	}
	res := deployResult(t, run)
	if res.Outcome != workflows.OutcomeRolledBack || res.Rollback == nil || res.Rollback.Trigger != workflows.TriggerAnalysis || !res.Rollback.Verified {
		t.Fatalf("outcome %s, rollback %+v", res.Outcome, res.Rollback)
	}
	if !strings.Contains(res.Rollback.Reason, "token-rejections") || len(res.Analysis) != 1 || res.Analysis[0].Last.Canary.Value <= res.Analysis[0].Last.Stable.Value+maxDelta {
		t.Fatalf("reason %q, analysis %+v", res.Rollback.Reason, res.Analysis)
	}
	// Every probe passed: only the traffic showed it.
	for _, e := range res.Timeline {
		if strings.Contains(e.Message, "token health check failed") {
			t.Fatalf("a probe saw the failure: %s", e.Message)
		}
	}
	sent, refused := skewed.Counts()
	t.Logf("skewed client: %d sent, %d refused; judgement %+v", sent, refused, res.Analysis[0])
}

// BenchmarkAnalysisDetectionLatency_TokenRejections times, on the bed, from a client whose tokens
// the canary refuses starting its traffic to the rollback's start, with tokenRejections measured
// through CloudWatch every 5 s, beside the goal: the interval + 1 s (CloudWatch on the bed has no
// scrape delay). `go test -run '^$' -bench AnalysisDetectionLatency_TokenRejections -benchtime 3x
// -timeout 20m ./testsuite`.
func BenchmarkAnalysisDetectionLatency_TokenRejections(b *testing.B) {
	const interval = 5 * time.Second
	ctx := context.Background()
	var latencies []time.Duration
	for b.Loop() {
		r := provisionCloudWatch(b, "detecttok")
		strict, err := r.AuthorizerVariant(ctx, "strict", map[string]string{"ROLLGATE_LEEWAY": "0s"})
		if err != nil {
			b.Fatal(err)
		}
		tr, err := r.StartTraffic(ctx, 20)
		if err != nil {
			b.Fatal(err)
		}
		s := r.Spec("v2", 2*time.Minute)
		s.Auth.AuthorizerPatch["/authorizerUri"] = strict
		maxDelta := 0.05
		s.Analysis = &spec.Analysis{Metrics: []spec.Metric{{Name: "token-rejections", Template: spec.TemplateTokenRejections, Provider: spec.ProviderCloudWatch,
			MaxDelta: &maxDelta, Interval: spec.Duration(interval), Window: spec.Duration(interval), MinSamples: 5}}}
		s.Normalize()
		run, err := r.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: s.WorkflowID(), TaskQueue: r.TaskQueue}, workflows.Deployment, s)
		if err != nil {
			b.Fatal(err)
		}
		ab := analysisBed{ReleaseBed: r}
		awaitStatus(b, ab, run, 4*time.Minute, func(st workflows.Status) bool { return st.Phase == workflows.PhaseBaking && st.Step == 1 })
		awaitMeasured(b, ab, run)
		failing := time.Now()
		skewed, err := r.StartSkewedClient(ctx, 20*time.Second, 10)
		if err != nil {
			b.Fatal(err)
		}
		res := deployResultTB(b, run)
		_ = skewed.Stop()
		tr.Stop() // the bed itself closes when the benchmark ends
		if res.Rollback == nil || res.Rollback.Trigger != workflows.TriggerAnalysis {
			b.Fatalf("result %+v", res)
		}
		d := res.Rollback.StartedAt.Sub(failing)
		latencies = append(latencies, d)
		b.Logf("detected %v after the canary started refusing the client (%s)", d.Round(10*time.Millisecond), res.Rollback.Reason)
	}
	slices.Sort(latencies)
	b.ReportMetric(float64(latencies[len(latencies)/2].Milliseconds()), "p50-ms")
	b.ReportMetric(float64(latencies[len(latencies)-1].Milliseconds()), "max-ms")
	b.ReportMetric(float64((interval + time.Second).Milliseconds()), "goal-ms")
}

func deployResultTB(tb testing.TB, run client.WorkflowRun) workflows.DeployResult {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var res workflows.DeployResult
	if err := run.Get(ctx, &res); err != nil {
		tb.Fatal(err)
	}
	return res
}

// The same judgement through the other provider: a canary whose backend fails 3 % of its
// requests, judged by gateway5xx read from API Gateway's own metrics in the bed's CloudWatch (the
// canary's reported under "<stage>/Canary"), is rolled back.
func TestAnalysis_CanaryFailing3Percent_IsRolledBackByGateway5xxThroughCloudWatch(t *testing.T) {
	t.Parallel() // on a task queue of its own (WithOwnTaskQueue)
	r := provisionCloudWatch(t, "ana3pccw")
	b := analysisBed{ReleaseBed: r}
	b.flaky(t, "bad", 0.03)
	tr := b.traffic(t)
	m := gateway5xx()
	m.Provider = spec.ProviderCloudWatch
	run := b.start(t, "bad", m)
	res := deployResult(t, run)
	if res.Outcome != workflows.OutcomeRolledBack || res.Rollback == nil || res.Rollback.Trigger != workflows.TriggerAnalysis || !res.Rollback.Verified {
		t.Fatalf("result %+v (rollback %+v)", res, res.Rollback)
	}
	if !strings.Contains(res.Rollback.Reason, "metric gateway-5xx fail") || len(res.Analysis) != 1 || res.Analysis[0].Last.Canary.Value <= 0.01 {
		t.Fatalf("reason %q, analysis %+v", res.Rollback.Reason, res.Analysis)
	}
	t.Logf("traffic %+v; judgement %+v", tr.Counts(), res.Analysis[0])
}

// provisionCloudWatch is a ReleaseBed on a task queue of its own whose worker judges analysis with
// the bed's CloudWatch, closed when the test ends.
func provisionCloudWatch(tb testing.TB, name string) *testsuite.ReleaseBed {
	tb.Helper()
	ctx := context.Background()
	bed := shared.Bed(tb)
	cw, err := bed.CloudWatchProvider(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	r, err := testsuite.ProvisionRelease(ctx, bed, name, testsuite.WithAnalysisProviders(analysis.Providers{spec.ProviderCloudWatch: cw}), testsuite.WithOwnTaskQueue())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(r.Close)
	return r
}
