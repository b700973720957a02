package workflows_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rollgate/rollgate/activities"
	"github.com/rollgate/rollgate/internal/analysis"
	"github.com/rollgate/rollgate/internal/spec"
	"github.com/rollgate/rollgate/workflows"
)

func fp(v float64) *float64 { return &v }

// analysisSpec is the test spec judged by a gateway 5xx metric (max 1 %) and, when dryRun, a
// dry-run latency metric.
func analysisSpec(dryRun bool) spec.DeploySpec {
	s := testSpec()
	s.Analysis = &spec.Analysis{Metrics: []spec.Metric{
		{Name: "gateway-5xx", Template: spec.TemplateGateway5xx, Max: fp(0.01), Interval: spec.Duration(30 * time.Second), MinSamples: 50},
	}}
	if dryRun {
		s.Analysis.Metrics = append(s.Analysis.Metrics, spec.Metric{Name: "latency", Template: spec.TemplateLatencyP99, Max: fp(0.2), Interval: spec.Duration(30 * time.Second), DryRun: true})
	}
	s.Normalize()
	return s
}

func measured(v, samples float64) analysis.Observation {
	return analysis.Observation{Canary: analysis.Measurement{Value: v, Samples: samples, HasData: true}}
}

// judged is what a bake of the spec's metrics returns after these observations of each, concluded
// when the bake ran its length.
func judged(s spec.DeploySpec, conclude bool, obs ...[]analysis.Observation) []analysis.Judgement {
	var out []analysis.Judgement
	for i, m := range s.Analysis.Metrics {
		j := analysis.Judge(m, obs[i])
		if conclude {
			j = analysis.Conclude(j)
		}
		out = append(out, j)
	}
	return out
}

func statusOf(t *testing.T, r interface{ Get(any) error }) workflows.Status {
	t.Helper()
	var st workflows.Status
	if err := r.Get(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// A canary whose 5xx ratio breaks its max is rolled back with trigger analysis, the metric, its
// value and threshold in the report; the bake measured the canary's release label against the
// stable side's label.
func TestDeployment_AnalysisFailure_RollsBackWithTheMetricInTheReport(t *testing.T) {
	w := &world{}
	s := analysisSpec(false)
	w.judge = func(n int, in activities.BakeInput) []analysis.Judgement {
		if n == 2 {
			return judged(s, false, []analysis.Observation{measured(0.002, 400), measured(0.031, 1000)})
		}
		return judged(s, true, []analysis.Observation{measured(0.002, 400)})
	}
	env := newEnv(t, w)
	env.ExecuteWorkflow(workflows.Deployment, s)
	r := result(t, env)
	if r.Outcome != workflows.OutcomeRolledBack || r.Rollback == nil || r.Rollback.Trigger != workflows.TriggerAnalysis {
		t.Fatalf("result %+v", r)
	}
	for _, want := range []string{"metric gateway-5xx fail", "canary 0.031 > max 0.01", "1000 samples"} {
		if !strings.Contains(r.Rollback.Reason, want) {
			t.Fatalf("reason %q lacks %q", r.Rollback.Reason, want)
		}
	}
	if slices.Contains(w.called(), "PromoteCanary") || w.count("Bake") != 2 {
		t.Fatalf("calls %v", w.called())
	}
	if calls := w.called(); calls[0] != "CheckAnalysis" {
		t.Fatalf("the providers were not checked first: %v", calls)
	}
	in := w.bakes[0].Analysis
	if in == nil || in.Release != w.runID || in.StableRelease != workflows.UnknownRelease || len(in.Metrics) != 1 {
		t.Fatalf("bake analysis input %+v (run %s)", in, w.runID)
	}
	if len(r.Analysis) != 1 || r.Analysis[0].Verdict != analysis.Fail || r.Analysis[0].Last.Canary.Value != 0.031 {
		t.Fatalf("result analysis %+v", r.Analysis)
	}
}

// A worker without the provider a metric names fails the release in preflight, before any
// change: nothing to undo.
func TestDeployment_AnalysisProviderMissing_FailsBeforeAnyChange(t *testing.T) {
	w := &world{failAt: "CheckAnalysis"}
	env := newEnv(t, w)
	env.ExecuteWorkflow(workflows.Deployment, analysisSpec(false))
	r := result(t, env)
	if r.Outcome != workflows.OutcomeRolledBack || !slices.Equal(w.called(), []string{"CheckAnalysis"}) || len(r.Rollback.Steps) != 0 {
		t.Fatalf("result %+v, calls %v", r, w.called())
	}
}

// An inconclusive verdict (no traffic on the canary) pauses the release: the next step waits, the
// status says why, nothing is promoted; a resume bakes the step again, and once the traffic is
// there the release goes on and is promoted.
func TestDeployment_AnalysisInconclusive_PausesUntilResumedThenBakesAgain(t *testing.T) {
	w := &world{}
	s := analysisSpec(false)
	w.judge = func(n int, in activities.BakeInput) []analysis.Judgement {
		if n == 1 {
			return judged(s, true, []analysis.Observation{measured(0, 3), measured(0, 0)}) // too few requests to count
		}
		return judged(s, true, []analysis.Observation{measured(0.001, 500)})
	}
	env := newEnv(t, w)
	var paused workflows.Status
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(workflows.QueryStatus)
		if err != nil {
			t.Error(err)
			return
		}
		paused = statusOf(t, v)
		if slices.Contains(w.called(), "SetCanaryWeight") {
			t.Error("step 2 started while paused")
		}
		env.UpdateWorkflowNoRejection(workflows.UpdateResume, "r1", t, workflows.OperatorRequest{Actor: "bob", Reason: "traffic is flowing now"})
	}, 5*time.Hour)
	env.ExecuteWorkflow(workflows.Deployment, s)
	r := result(t, env)
	if !paused.Paused || len(paused.Analysis) != 1 || paused.Analysis[0].Verdict != analysis.Inconclusive || paused.Phase != workflows.PhaseBaking {
		t.Fatalf("status while paused %+v", paused)
	}
	if r.Outcome != workflows.OutcomePromoted || w.count("Bake") != 4 {
		t.Fatalf("outcome %s, calls %v", r.Outcome, w.called())
	}
	if !timelineHas(r.Timeline, "analysis inconclusive: metric gateway-5xx inconclusive: no measurement counted") {
		t.Fatalf("timeline %+v", r.Timeline)
	}
}

// Inconclusive on the last step: never promoted while no operator acts; a rollback still works.
func TestDeployment_AnalysisInconclusiveOnTheLastStep_IsNeverPromoted(t *testing.T) {
	w := &world{}
	s := analysisSpec(false)
	w.judge = func(n int, in activities.BakeInput) []analysis.Judgement {
		if n == 3 {
			return judged(s, false, []analysis.Observation{{Error: "prometheus: connection refused"}, {Error: "e"}, {Error: "e"}, {Error: "e"}, {Error: "e"}})
		}
		return judged(s, true, []analysis.Observation{measured(0.001, 500)})
	}
	env := newEnv(t, w)
	env.RegisterDelayedCallback(func() {
		if slices.Contains(w.called(), "PromoteCanary") {
			t.Error("promoted on an inconclusive verdict")
		}
		env.UpdateWorkflowNoRejection(workflows.UpdateRollback, "rb", t, workflows.OperatorRequest{Actor: "bob", Reason: "metrics are down"})
	}, 48*time.Hour)
	env.ExecuteWorkflow(workflows.Deployment, s)
	r := result(t, env)
	if r.Outcome != workflows.OutcomeRolledBack || r.Rollback.Trigger != workflows.TriggerOperator || slices.Contains(w.called(), "PromoteCanary") {
		t.Fatalf("result %+v, calls %v", r, w.called())
	}
	if !timelineHas(r.Timeline, "5 provider errors in a row (consecutiveErrorLimit 4)") {
		t.Fatalf("timeline %+v", r.Timeline)
	}
}

// A dry-run metric that breaks its rule is reported and never acts: the release is promoted.
func TestDeployment_AnalysisDryRunBreach_IsReportedAndPromoted(t *testing.T) {
	w := &world{}
	s := analysisSpec(true)
	w.judge = func(n int, in activities.BakeInput) []analysis.Judgement {
		return judged(s, true, []analysis.Observation{measured(0.001, 500)}, []analysis.Observation{measured(0.9, 500)})
	}
	env := newEnv(t, w)
	env.ExecuteWorkflow(workflows.Deployment, s)
	r := result(t, env)
	if r.Outcome != workflows.OutcomePromoted || len(r.Analysis) != 2 || r.Analysis[1].Verdict != analysis.Fail || !r.Analysis[1].DryRun {
		t.Fatalf("result %+v", r)
	}
	if !timelineHas(r.Timeline, "analysis (dry run, no action): metric latency fail") {
		t.Fatalf("timeline %+v", r.Timeline)
	}
}

// Without an analysis block nothing changes: no provider check, no analysis in the bake.
func TestDeployment_WithoutAnalysis_BakesProbesOnly(t *testing.T) {
	w := &world{judge: func(int, activities.BakeInput) []analysis.Judgement { return nil }}
	env := newEnv(t, w)
	env.ExecuteWorkflow(workflows.Deployment, testSpec())
	r := result(t, env)
	if r.Outcome != workflows.OutcomePromoted || slices.Contains(w.called(), "CheckAnalysis") || w.bakes[0].Analysis != nil || r.Analysis != nil {
		t.Fatalf("result %+v, calls %v", r, w.called())
	}
}

func timelineHas(tl []workflows.Event, text string) bool {
	return slices.ContainsFunc(tl, func(e workflows.Event) bool { return strings.Contains(e.Message, text) })
}

// watchSpec is analysisSpec with a 15-minute watch after promotion.
func watchSpec() spec.DeploySpec {
	s := analysisSpec(false)
	s.Analysis.Watch = spec.Duration(15 * time.Minute)
	return s
}

// A watch that sees the stage keep to its rule lets the release finish: the whole stage judged,
// against the baseline measured in preflight, before the release is recorded.
func TestDeployment_WatchAfterPromotion_JudgesTheStageThenRecordsTheRelease(t *testing.T) {
	w := &world{}
	s := watchSpec()
	w.judge = func(n int, in activities.BakeInput) []analysis.Judgement {
		return judged(s, true, []analysis.Observation{measured(0.001, 500)})
	}
	env := newEnv(t, w)
	env.ExecuteWorkflow(workflows.Deployment, s)
	r := result(t, env)
	if r.Outcome != workflows.OutcomePromoted || w.count("Bake") != 4 {
		t.Fatalf("outcome %s, calls %v", r.Outcome, w.called())
	}
	calls := w.called()
	if i := slices.Index(calls, "MeasureBaseline"); i < 0 || i > slices.Index(calls, "PrepareKey") {
		t.Fatalf("no baseline before the first change: %v", calls)
	}
	if tail := calls[len(calls)-3:]; !slices.Equal(tail, []string{"ProbeClients", "Bake", "RecordRelease"}) {
		t.Fatalf("the watch is not between the reissue and the record: %v", calls)
	}
	watch := w.bakes[3]
	if watch.Duration != 15*time.Minute || watch.Analysis.Side != analysis.SideStage || len(watch.Analysis.Baseline) != 1 ||
		watch.Analysis.Baseline[0].Value != 0.001 || !slices.Equal(watch.Probe.Versions, []int{4}) {
		t.Fatalf("watch input %+v, analysis %+v", watch, watch.Analysis)
	}
	if !timelineHas(r.Timeline, "watching the whole stage for 15m0s") || !timelineHas(r.Timeline, "watch done: metric gateway-5xx pass") {
		t.Fatalf("timeline %+v", r.Timeline)
	}
}

// A breach seen by the watch rolls the promoted release back through the same saga: trigger
// post-promotion, the stage and the tokens restored, the release never recorded.
func TestDeployment_WatchAfterPromotion_BreachRollsBack(t *testing.T) {
	w := &world{}
	s := watchSpec()
	w.judge = func(n int, in activities.BakeInput) []analysis.Judgement {
		if n == 4 {
			return judged(s, false, []analysis.Observation{measured(0.001, 500), measured(0.2, 900)})
		}
		return judged(s, true, []analysis.Observation{measured(0.001, 500)})
	}
	env := newEnv(t, w)
	env.ExecuteWorkflow(workflows.Deployment, s)
	r := result(t, env)
	if r.Outcome != workflows.OutcomeRolledBack || r.Rollback.Trigger != workflows.TriggerPostPromotion || !strings.Contains(r.Rollback.Reason, "canary 0.2 > max 0.01") {
		t.Fatalf("result %+v, rollback %+v", r, r.Rollback)
	}
	after := w.after("PromoteCanary")
	for _, want := range []string{"RestoreStage", "ReissueTokens(previous)", "VerifyRestored"} {
		if !slices.Contains(after, want) {
			t.Fatalf("rollback after promotion lacks %s: %v", want, after)
		}
	}
	if slices.Contains(w.called(), "RecordRelease") {
		t.Fatalf("a rolled-back release was recorded: %v", w.called())
	}
}
