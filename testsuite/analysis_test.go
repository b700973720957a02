package testsuite_test

import (
	"context"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/rollgate/rollgate/internal/analysis"
	"github.com/rollgate/rollgate/internal/spec"
	"github.com/rollgate/rollgate/testsuite"
	"github.com/rollgate/rollgate/workflows"
)

// analysisBed is a ReleaseBed whose worker judges releases with the bed's real Prometheus, which
// scrapes the API Gateway emulator's data-plane metrics every second.
type analysisBed struct {
	*testsuite.ReleaseBed
	prom *testsuite.Prometheus
}

func provisionAnalysis(t testing.TB, name string) analysisBed {
	t.Helper()
	bed := shared.Bed(t)
	target, err := bed.Gateway.ServeMetrics()
	if err != nil {
		t.Fatal(err)
	}
	prom := testsuite.StartPrometheusForTest(t, testsuite.PrometheusOptions{Targets: []string{target}})
	p, err := analysis.NewPrometheus(analysis.PrometheusConfig{URL: prom.URL})
	if err != nil {
		t.Fatal(err)
	}
	r, err := testsuite.ProvisionRelease(context.Background(), bed, name, testsuite.WithAnalysisProviders(analysis.Providers{spec.ProviderPrometheus: p}), testsuite.WithOwnTaskQueue())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return analysisBed{ReleaseBed: r, prom: prom}
}

// flaky adds a backend failing ratio of its requests, released as version.
func (b analysisBed) flaky(t testing.TB, version string, ratio float64) *testsuite.FlakyBackend {
	fb := testsuite.StartFlakyBackend(version, ratio)
	t.Cleanup(fb.Close)
	b.Backends[version] = strings.TrimPrefix(fb.URL, "http://") // host:port, as the integration URI reads it
	return fb
}

// traffic drives the stage with the client's delivered token at 50 requests a second.
func (b analysisBed) traffic(t testing.TB) *testsuite.Traffic {
	t.Helper()
	tr, err := b.StartTraffic(context.Background(), 50)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Stop)
	return tr
}

// gateway5xx is the canary's 5xx ratio, at most 1 %, measured every 10 s over 30 s once the
// canary served 50 requests in the window.
func gateway5xx() spec.Metric {
	max := 0.01
	return spec.Metric{Name: "gateway-5xx", Template: spec.TemplateGateway5xx, Max: &max,
		Interval: spec.Duration(10 * time.Second), Window: spec.Duration(30 * time.Second), MinSamples: 50}
}

// start starts a release of version (two 30 s canary steps) judged by the metrics. The probes'
// own 5xx bound is loose: what is tested is the judgement of the traffic.
func (b analysisBed) start(t testing.TB, version string, metrics ...spec.Metric) client.WorkflowRun {
	t.Helper()
	return b.startWith(t, version, spec.Analysis{Metrics: metrics})
}

func (b analysisBed) startWith(t testing.TB, version string, a spec.Analysis) client.WorkflowRun {
	t.Helper()
	s := b.Spec(version, 30*time.Second)
	s.Canary.Max5xxRatio, s.Canary.MinProbes = 0.5, 20
	s.Analysis = &a
	s.Normalize()
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	run, err := b.Temporal.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{
		ID: s.WorkflowID(), TaskQueue: b.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
	}, workflows.Deployment, s)
	if err != nil {
		t.Fatal(err)
	}
	return run
}

// awaitStatus polls the status query until ok, for up to limit.
func awaitStatus(t testing.TB, b analysisBed, run client.WorkflowRun, limit time.Duration, ok func(workflows.Status) bool) workflows.Status {
	t.Helper()
	deadline := time.Now().Add(limit)
	var st workflows.Status
	for time.Now().Before(deadline) {
		if v, err := b.Temporal.QueryWorkflow(context.Background(), run.GetID(), run.GetRunID(), workflows.QueryStatus); err == nil && v.Get(&st) == nil && ok(st) {
			return st
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("the deployment never reached the awaited state; last status: phase %s, paused %v, analysis %+v", st.Phase, st.Paused, st.Analysis)
	return st
}

func update(t *testing.T, b analysisBed, run client.WorkflowRun, name string, req workflows.OperatorRequest) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	h, err := b.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: run.GetID(), RunID: run.GetRunID(), UpdateName: name, UpdateID: name + "-" + b.Name,
		WaitForStage: client.WorkflowUpdateStageCompleted, Args: []any{req},
	})
	if err == nil {
		err = h.Get(ctx, nil)
	}
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// A canary whose backend fails 3 % of its requests passes every probe bound set here, and is
// rolled back by gateway5xx: trigger analysis, the metric, its value and threshold in the report,
// the stage restored.
func TestAnalysis_CanaryFailing3Percent_IsRolledBackByGateway5xx(t *testing.T) {
	t.Parallel() // on a task queue of its own (WithOwnTaskQueue)
	b := provisionAnalysis(t, "ana3pc")
	b.flaky(t, "bad", 0.03)
	before := observe(t, b.ReleaseBed)
	tr := b.traffic(t)
	run := b.start(t, "bad", gateway5xx())
	res := deployResult(t, run)
	if res.Outcome != workflows.OutcomeRolledBack || res.Rollback == nil || res.Rollback.Trigger != workflows.TriggerAnalysis || !res.Rollback.Verified {
		t.Fatalf("result %+v (rollback %+v)", res, res.Rollback)
	}
	for _, want := range []string{"metric gateway-5xx fail", "> max 0.01"} {
		if !strings.Contains(res.Rollback.Reason, want) {
			t.Fatalf("reason %q lacks %q", res.Rollback.Reason, want)
		}
	}
	if len(res.Analysis) != 1 || res.Analysis[0].Last.Canary.Value <= 0.01 {
		t.Fatalf("analysis %+v", res.Analysis)
	}
	if after := observe(t, b.ReleaseBed); after.stage.DeploymentID != before.stage.DeploymentID || after.stage.HasCanary() {
		t.Fatalf("stage after the rollback %+v, before %+v", after.stage, before.stage)
	}
	replay(t, b.ReleaseBed, run, "deployment-analysis-rollback.json")
	c := tr.Counts()
	t.Logf("traffic %+v; judgement %+v", c, res.Analysis[0])
	if c.CanaryErrors == 0 {
		t.Fatalf("the canary failed no request of the traffic: %+v", c)
	}
}

// A canary failing 0.5 % of its requests is within max 1 % and is promoted; a dry-run metric
// that breaks its rule (a p99 latency under a microsecond) is reported and does not act.
func TestAnalysis_CanaryFailingHalfAPercent_IsPromotedAndADryRunBreachIsOnlyReported(t *testing.T) {
	t.Parallel() // on a task queue of its own (WithOwnTaskQueue)
	b := provisionAnalysis(t, "anahalf")
	b.flaky(t, "ok", 0.005)
	b.traffic(t)
	tiny := 1e-6
	latency := spec.Metric{Name: "latency", Template: spec.TemplateLatencyP99, Max: &tiny, Interval: spec.Duration(10 * time.Second), DryRun: true}
	run := b.start(t, "ok", gateway5xx(), latency)
	res := deployResult(t, run)
	if res.Outcome != workflows.OutcomePromoted || len(res.Analysis) != 2 {
		t.Fatalf("result %+v", res)
	}
	if j := res.Analysis[0]; j.Verdict != analysis.Pass || j.Counted == 0 {
		t.Fatalf("gateway-5xx %+v", j)
	}
	if j := res.Analysis[1]; j.Verdict != analysis.Fail || !j.DryRun {
		t.Fatalf("latency (dry run) %+v", j)
	}
	if !timelineHas(res.Timeline, "analysis (dry run, no action): metric latency fail") {
		t.Fatalf("timeline %+v", res.Timeline)
	}
	if after := observe(t, b.ReleaseBed); after.stage.DeploymentID != res.ReleaseDeploymentID {
		t.Fatalf("stage %+v, want the release %s", after.stage, res.ReleaseDeploymentID)
	}
	// Measurements live in the bake activity: the history does not grow with them.
	events := historyLength(t, b.ReleaseBed, run)
	if events >= 300 {
		t.Fatalf("a 2-step canary with 2 metrics wrote %d history events", events)
	}
	t.Logf("promoted in %d history events, %d measurements of gateway-5xx", events, res.Analysis[0].Measured)
}

// Without traffic on the canary nothing can be judged: the release pauses, inconclusive, and is
// not promoted; resumed once traffic flows, the step bakes again and the release is promoted.
func TestAnalysis_NoTrafficOnTheCanary_PausesUntilResumedAfterTraffic(t *testing.T) {
	t.Parallel() // on a task queue of its own (WithOwnTaskQueue)
	b := provisionAnalysis(t, "ananone")
	before := observe(t, b.ReleaseBed)
	run := b.start(t, "v2", gateway5xx())
	st := awaitStatus(t, b, run, 3*time.Minute, func(st workflows.Status) bool { return st.Paused })
	if len(st.Analysis) != 1 || st.Analysis[0].Verdict != analysis.Inconclusive || st.Step != 1 {
		t.Fatalf("paused with %+v at step %d", st.Analysis, st.Step)
	}
	if now := observe(t, b.ReleaseBed); now.stage.DeploymentID != before.stage.DeploymentID || !now.stage.HasCanary() {
		t.Fatalf("stage while paused %+v", now.stage)
	}
	b.traffic(t)
	update(t, b, run, workflows.UpdateResume, workflows.OperatorRequest{Actor: "bob", Reason: "traffic flows now"})
	res := deployResult(t, run)
	if res.Outcome != workflows.OutcomePromoted || res.Analysis[0].Verdict != analysis.Pass {
		t.Fatalf("result %+v", res)
	}
	if !timelineHas(res.Timeline, "analysis inconclusive: metric gateway-5xx inconclusive") {
		t.Fatalf("timeline %+v", res.Timeline)
	}
}

// Prometheus stopping mid-bake: each failed measurement is counted, the metric turns inconclusive
// once the errors in a row pass consecutiveErrorLimit, the release pauses and is never promoted.
func TestAnalysis_PrometheusDownMidBake_InconclusiveAfterTheErrorLimitNeverPromoted(t *testing.T) {
	t.Parallel() // on a task queue of its own (WithOwnTaskQueue)
	b := provisionAnalysis(t, "anadown")
	b.traffic(t)
	m := gateway5xx()
	limit := 2
	m.ConsecutiveErrorLimit = &limit
	run := b.start(t, "v2", m)
	awaitStatus(t, b, run, 2*time.Minute, func(st workflows.Status) bool { return st.Phase == workflows.PhaseBaking })
	b.prom.Stop()
	st := awaitStatus(t, b, run, 3*time.Minute, func(st workflows.Status) bool { return st.Paused })
	j := st.Analysis[0]
	if j.Verdict != analysis.Inconclusive || j.Errors < limit+1 || !strings.Contains(j.Reason, "provider errors in a row (consecutiveErrorLimit 2)") {
		t.Fatalf("judgement %+v", j)
	}
	if now := observe(t, b.ReleaseBed); !now.stage.HasCanary() {
		t.Fatalf("the canary was promoted or removed: %+v", now.stage)
	}
	update(t, b, run, workflows.UpdateRollback, workflows.OperatorRequest{Actor: "bob", Reason: "no metrics"})
	if res := deployResult(t, run); res.Outcome != workflows.OutcomeRolledBack {
		t.Fatalf("result %+v", res)
	}
}

// A release that starts failing after promotion is rolled back by the watch: the whole stage
// judged against its baseline, trigger post-promotion, the stage back on the stable deployment,
// verified.
func TestAnalysis_ReleaseFailingAfterPromotion_IsRolledBackByTheWatch(t *testing.T) {
	t.Parallel() // on a task queue of its own (WithOwnTaskQueue)
	b := provisionAnalysis(t, "anawatch")
	fb := b.flaky(t, "later", 0)
	before := observe(t, b.ReleaseBed)
	b.traffic(t)
	m := gateway5xx()
	m.Window = m.Interval // a short window: the failures show within one interval
	run := b.startWith(t, "later", spec.Analysis{Metrics: []spec.Metric{m}, Watch: spec.Duration(2 * time.Minute)})
	awaitStatus(t, b, run, 4*time.Minute, func(st workflows.Status) bool { return st.Phase == workflows.PhaseWatching })
	fb.SetRatio(0.2)
	res := deployResult(t, run)
	if res.Outcome != workflows.OutcomeRolledBack || res.Rollback == nil || res.Rollback.Trigger != workflows.TriggerPostPromotion || !res.Rollback.Verified {
		t.Fatalf("result %+v, rollback %+v", res, res.Rollback)
	}
	if !strings.Contains(res.Rollback.Reason, "metric gateway-5xx fail") || !timelineHas(res.Timeline, "analysis baseline of the stage before the release: gateway-5xx") {
		t.Fatalf("reason %q, timeline %+v", res.Rollback.Reason, res.Timeline)
	}
	if after := observe(t, b.ReleaseBed); after.stage.DeploymentID != before.stage.DeploymentID || after.stage.HasCanary() || after.labels != before.labels {
		t.Fatalf("after the rollback: stage %+v labels %+v; before: %+v %+v", after.stage, after.labels, before.stage, before.labels)
	}
	replay(t, b.ReleaseBed, run, "deployment-watch-rollback.json")
}

func timelineHas(tl []workflows.Event, text string) bool {
	for _, e := range tl {
		if strings.Contains(e.Message, text) {
			return true
		}
	}
	return false
}
