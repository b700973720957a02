package activities

import (
	"context"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/rollgate/rollgate/internal/analysis"
	"github.com/rollgate/rollgate/internal/spec"
)

// AnalysisInput is what a bake judges beside its probes: the spec's metrics, measured for the
// canary's release and, for maxDelta and maxRatio, the stable release's.
type AnalysisInput struct {
	Metrics []spec.Metric
	// Release is the label the canary's traffic is counted under; StableRelease the stable
	// deployment's ("unknown" when the stage carried none before the release).
	Release       string
	StableRelease string
}

// CheckAnalysisInput names the metrics a release will measure.
type CheckAnalysisInput struct {
	Metrics []spec.Metric
}

// CheckAnalysis refuses, for good, metrics that name a provider this worker does not have: a
// release must not start a canary it cannot judge.
func (a *Health) CheckAnalysis(_ context.Context, in CheckAnalysisInput) error {
	if err := a.Providers.Check(in.Metrics); err != nil {
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalid, nil)
	}
	return nil
}

// maxObservationError bounds a provider error's text kept in a judgement (heartbeats, history).
const maxObservationError = 300

// judging measures a bake's metrics when each is due and folds every observation into the
// metric's judgement; the judgements are all a retried bake needs to resume.
type judging struct {
	in         *AnalysisInput
	target     Target
	providers  analysis.Providers
	judgements []analysis.Judgement
	next       []time.Duration // bake time of each metric's next measurement
}

// newJudging resumes from the judgements of a previous attempt's heartbeat, if any. A metric is
// first measured one interval into the bake, once its window holds the canary's traffic.
func newJudging(in *AnalysisInput, target Target, providers analysis.Providers, resumed []analysis.Judgement, elapsed time.Duration) *judging {
	j := &judging{in: in, target: target, providers: providers}
	if in == nil {
		return j
	}
	for i, m := range in.Metrics {
		if i < len(resumed) && resumed[i].Metric == m.Name {
			j.judgements = append(j.judgements, resumed[i])
		} else {
			j.judgements = append(j.judgements, analysis.Judge(m, nil))
		}
		iv := m.Interval.D()
		j.next = append(j.next, (elapsed/iv+1)*iv)
	}
	return j
}

// measureDue measures every metric due by elapsed whose judgement is still running.
func (j *judging) measureDue(ctx context.Context, elapsed time.Duration) {
	if j.in == nil {
		return
	}
	for i, m := range j.in.Metrics {
		if j.next[i] > elapsed {
			continue
		}
		for j.next[i] <= elapsed {
			j.next[i] += m.Interval.D()
		}
		if j.judgements[i].Verdict != analysis.Running {
			continue
		}
		o := j.observe(ctx, m)
		if ctx.Err() != nil {
			return // cancelled (an operator's promote, skip or rollback): not the provider's fault
		}
		j.judgements[i] = j.judgements[i].Observe(m, o)
	}
}

// observe measures m for the canary and, when the rule compares, for the stable release over
// the same window ending at the same time.
func (j *judging) observe(ctx context.Context, m spec.Metric) analysis.Observation {
	p := j.providers[m.Provider]
	if p == nil {
		return analysis.Observation{Error: "no " + m.Provider + " provider on this worker"}
	}
	at := time.Now()
	q := analysis.QueryFor(m, analysis.SideCanary, j.in.Release, j.target.APIID, j.target.Stage)
	q.At = at
	var o analysis.Observation
	var err error
	if o.Canary, err = p.Measure(ctx, q); err != nil {
		return errorObservation(err)
	}
	if m.MaxDelta != nil || m.MaxRatio != nil {
		q = analysis.QueryFor(m, analysis.SideStable, j.in.StableRelease, j.target.APIID, j.target.Stage)
		q.At = at
		if o.Stable, err = p.Measure(ctx, q); err != nil {
			return errorObservation(err)
		}
	}
	return o
}

func errorObservation(err error) analysis.Observation {
	msg := err.Error()
	if len(msg) > maxObservationError {
		msg = strings.ToValidUTF8(msg[:maxObservationError], "") + "…"
	}
	return analysis.Observation{Error: msg}
}

// nextDue is the bake time of the earliest measurement still to take; ok is false when none is.
func (j *judging) nextDue() (time.Duration, bool) {
	var next time.Duration
	ok := false
	for i, jd := range j.judgements {
		if jd.Verdict == analysis.Running && (!ok || j.next[i] < next) {
			next, ok = j.next[i], true
		}
	}
	return next, ok
}

// stops says whether a metric's verdict ends the bake: an acting failure or inconclusive verdict.
func (j *judging) stops() bool {
	v := analysis.Overall(j.judgements)
	return v == analysis.Fail || v == analysis.Inconclusive
}

// concluded are the judgements at the end of a full bake.
func (j *judging) concluded() []analysis.Judgement {
	out := make([]analysis.Judgement, len(j.judgements))
	for i, jd := range j.judgements {
		out[i] = analysis.Conclude(jd)
	}
	return out
}
