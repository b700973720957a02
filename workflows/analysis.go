package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/rollgate/rollgate/activities"
	"github.com/rollgate/rollgate/internal/analysis"
	"github.com/rollgate/rollgate/internal/spec"
)

// changeAnalysis: a spec's analysis block is accepted (validated whole) and judged in each step's
// bake. Runs started before refused the block, and keep refusing it when their history replays.
const changeAnalysis = "analysis"

// UnknownRelease is the stable side's label when the stage carried none before the release.
const UnknownRelease = "unknown"

// analysisRules are the validation rules of a run: with an analysis block, those that judge it
// once the run records the change.
func analysisRules(ctx workflow.Context, s spec.DeploySpec) spec.Rules {
	if s.Analysis != nil && workflow.GetVersion(ctx, changeAnalysis, workflow.DefaultVersion, 1) == 1 {
		return spec.RulesAnalysis
	}
	return spec.RulesBounded
}

// checkAnalysis fails preflight, before any change, when the worker lacks a provider a metric
// names.
func (d *deployment) checkAnalysis(ctx workflow.Context) error {
	if d.spec.Analysis == nil {
		return nil
	}
	in := activities.CheckAnalysisInput{Metrics: d.spec.Analysis.Metrics}
	if err := workflow.ExecuteActivity(short(ctx), health.CheckAnalysis, in).Get(ctx, nil); err != nil {
		return err
	}
	d.event(ctx, fmt.Sprintf("analysis: %d metrics, every provider configured on the worker", len(in.Metrics)))
	return nil
}

// stableRelease is the label the stable deployment's traffic is counted under: the stage's
// release variable before the release.
func (d *deployment) stableRelease() string {
	if v := d.snapshot.Stage.Variables[d.spec.Gateway.ReleaseVariableName()]; v != "" {
		return v
	}
	return UnknownRelease
}

// analysisInput is what the bake measures, or nil without analysis.
func (d *deployment) analysisInput() *activities.AnalysisInput {
	if d.spec.Analysis == nil {
		return nil
	}
	return &activities.AnalysisInput{Metrics: d.spec.Analysis.Metrics, Release: d.status.Release, StableRelease: d.stableRelease(), IssuerURL: d.spec.Auth.Issuer}
}

// judgeBake acts on a bake's judgements: a failed metric rolls the release back, an inconclusive
// one pauses it for an operator and the step bakes again once resumed (an operator's promote
// promotes); a dry-run metric is only reported. again says whether to bake the step again.
func (d *deployment) judgeBake(ctx workflow.Context, js []analysis.Judgement) (again bool, err error) {
	if len(js) == 0 {
		return false, nil
	}
	d.status.Analysis = js
	for _, j := range js {
		if j.DryRun && (j.Verdict == analysis.Fail || j.Verdict == analysis.Inconclusive) {
			d.event(ctx, fmt.Sprintf("analysis (dry run, no action): %s", describe(j)))
		}
	}
	switch analysis.Overall(js) {
	case analysis.Fail:
		j := firstActing(js, analysis.Fail)
		d.status.Breach = "analysis: " + describe(j)
		return false, temporal.NewNonRetryableApplicationError(d.status.Breach, ErrAnalysisFailed, nil)
	case analysis.Inconclusive:
		if d.promoteNow {
			return false, nil // the operator promoted while the bake ran
		}
		j := firstActing(js, analysis.Inconclusive)
		d.status.Paused = true
		d.event(ctx, fmt.Sprintf("analysis inconclusive: %s; paused for an operator (resume bakes this step again, promote promotes, rollback rolls back)", describe(j)))
		if err := d.waitWhilePaused(ctx); err != nil {
			return false, err
		}
		return !d.promoteNow, nil
	}
	d.event(ctx, "analysis: "+summary(js))
	return false, nil
}

func firstActing(js []analysis.Judgement, v analysis.Verdict) analysis.Judgement {
	for _, j := range js {
		if !j.DryRun && j.Verdict == v {
			return j
		}
	}
	return analysis.Judgement{}
}

// describe says what a metric's judgement rests on: its verdict, why, and its last values.
func describe(j analysis.Judgement) string {
	s := fmt.Sprintf("metric %s %s", j.Metric, j.Verdict)
	if j.Reason != "" {
		s += ": " + j.Reason
	}
	if j.Last.Error == "" && j.Measured > 0 {
		s += fmt.Sprintf(" (last canary %s", j.Last.Canary)
		if j.Last.Stable.HasData || j.Last.Stable.Samples > 0 {
			s += fmt.Sprintf(", stable %s", j.Last.Stable)
		}
		s += ")"
	}
	return s + fmt.Sprintf(" [%d measured, %d counted, %d failed, %d errors]", j.Measured, j.Counted, j.Failures, j.Errors)
}

func summary(js []analysis.Judgement) string {
	parts := make([]string, len(js))
	for i, j := range js {
		parts[i] = describe(j)
	}
	return strings.Join(parts, "; ")
}

// bakeHeartbeat is the bake's heartbeat timeout: short, since a cancellation reaches an activity
// with a heartbeat. With analysis the bake heartbeats every second from a goroutine of its own,
// so a slow measurement does not need a longer timeout.
func bakeHeartbeat(probeInterval time.Duration) time.Duration {
	return max(3*probeInterval, 10*time.Second)
}

// measureBaseline measures, before the release changes anything, each metric over the whole
// stage: what the watch after promotion judges the stage against.
func (d *deployment) measureBaseline(ctx workflow.Context) error {
	a := d.spec.Analysis
	if a == nil || a.Watch.D() == 0 {
		return nil
	}
	var obs []analysis.Observation
	in := activities.AnalysisInput{Metrics: a.Metrics, Target: d.target, StableRelease: d.stableRelease(), IssuerURL: d.spec.Auth.Issuer}
	if err := workflow.ExecuteActivity(short(ctx), health.MeasureBaseline, in).Get(ctx, &obs); err != nil {
		return err
	}
	parts := make([]string, len(obs))
	d.baseline = make([]analysis.Measurement, len(obs))
	for i, o := range obs {
		d.baseline[i] = o.Canary
		parts[i] = fmt.Sprintf("%s %s", a.Metrics[i].Name, o.Canary)
		if o.Error != "" {
			parts[i] = fmt.Sprintf("%s not measured (%s)", a.Metrics[i].Name, o.Error)
		}
	}
	d.event(ctx, "analysis baseline of the stage before the release: "+strings.Join(parts, "; "))
	return nil
}

// watch keeps judging the whole stage for analysis.watch after promotion, against the baseline;
// a failed metric or a probe breach rolls the release back (trigger post-promotion). An
// inconclusive watch is reported; the release, promoted already, stays.
func (d *deployment) watch(ctx workflow.Context) error {
	a := d.spec.Analysis
	if a == nil || a.Watch.D() == 0 {
		return nil
	}
	c := d.spec.Canary
	d.enter(ctx, PhaseWatching, fmt.Sprintf("watching the whole stage for %s against its baseline before the release", a.Watch.D()))
	d.status.BakeEnds = workflow.Now(ctx).Add(a.Watch.D())
	defer func() { d.status.BakeEnds = time.Time{} }()
	wctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: a.Watch.D() + 5*time.Minute,
		HeartbeatTimeout:    bakeHeartbeat(c.ProbeInterval.D()),
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 5},
	})
	var res activities.BakeResult
	if err := workflow.ExecuteActivity(wctx, health.Bake, activities.BakeInput{
		Probe:    activities.ProbeInput{Target: d.target, Issuer: d.issuer, Versions: []int{d.version}},
		Duration: a.Watch.D(), Interval: c.ProbeInterval.D(),
		MaxRejectionRatio: c.MaxRejectionRatio, Max5xxRatio: c.Max5xxRatio, MinProbes: c.MinProbes,
		Analysis: &activities.AnalysisInput{Metrics: a.Metrics, Release: d.status.Release, Side: analysis.SideStage, Baseline: d.baseline, IssuerURL: d.spec.Auth.Issuer},
	}).Get(ctx, &res); err != nil {
		return err
	}
	d.status.Probes, d.status.Analysis = res.ProbeResult, res.Analysis
	if res.Breach != "" {
		d.status.Breach = "after promotion: " + res.Breach
		return temporal.NewNonRetryableApplicationError("health breach after promotion: "+res.Breach, ErrPostPromotionBreach, nil)
	}
	switch analysis.Overall(res.Analysis) {
	case analysis.Fail:
		d.status.Breach = "after promotion: " + describe(firstActing(res.Analysis, analysis.Fail))
		return temporal.NewNonRetryableApplicationError("analysis after promotion: "+describe(firstActing(res.Analysis, analysis.Fail)), ErrPostPromotionBreach, nil)
	case analysis.Inconclusive:
		d.event(ctx, "watch inconclusive, the release stays promoted: "+describe(firstActing(res.Analysis, analysis.Inconclusive)))
	default:
		d.event(ctx, "watch done: "+summary(res.Analysis))
	}
	return nil
}
