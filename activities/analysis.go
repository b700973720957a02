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
	// Target is the stage MeasureBaseline measures (a bake measures its probes' target).
	Target Target `json:",omitzero"`
	// Release is the label the canary's traffic is counted under; StableRelease the stable
	// deployment's ("unknown" when the stage carried none before the release).
	Release       string
	StableRelease string
	// IssuerURL is the release's token issuer, the authorizer's Issuer label.
	IssuerURL string `json:",omitempty"`
	// Side is the traffic judged: the canary's (default), or the whole stage's for the watch
	// after promotion, whose maxDelta and maxRatio compare against Baseline (one measurement per
	// metric, the stage's before the release) instead of a stable side.
	Side     analysis.Side          `json:",omitempty"`
	Baseline []analysis.Measurement `json:",omitempty"`
}

// MeasureBaseline measures each metric over the whole stage for the stable release, before the
// release changes anything: what the watch after promotion compares against. A metric that
// cannot be measured has an observation with its error (and then no baseline).
func (a *Health) MeasureBaseline(ctx context.Context, in AnalysisInput) ([]analysis.Observation, error) {
	out := make([]analysis.Observation, len(in.Metrics))
	for i, m := range in.Metrics {
		p := a.Providers[m.Provider]
		if p == nil {
			return nil, temporal.NewNonRetryableApplicationError("no "+m.Provider+" provider on this worker", ErrTypeInvalid, nil)
		}
		q := analysis.QueryFor(m, analysis.SideStage, in.StableRelease, in.Target.APIID, in.Target.Stage)
		q.Issuer = in.IssuerURL
		meas, err := p.Measure(ctx, q)
		if err != nil {
			out[i] = errorObservation(err)
			continue
		}
		out[i] = analysis.Observation{Canary: meas}
	}
	return out, nil
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
		o := j.observe(ctx, i, m)
		if ctx.Err() != nil {
			return // cancelled (an operator's promote, skip or rollback): not the provider's fault
		}
		j.judgements[i] = j.judgements[i].Observe(m, o)
	}
}

// observe measures m for the canary and, when the rule compares, for the stable release over
// the same window ending at the same time; in a watch, the whole stage against its baseline.
func (j *judging) observe(ctx context.Context, i int, m spec.Metric) analysis.Observation {
	p := j.providers[m.Provider]
	if p == nil {
		return analysis.Observation{Error: "no " + m.Provider + " provider on this worker"}
	}
	side := analysis.SideCanary
	if j.in.Side != "" {
		side = j.in.Side
	}
	at := time.Now()
	q := analysis.QueryFor(m, side, j.in.Release, j.target.APIID, j.target.Stage)
	q.Issuer = j.in.IssuerURL
	q.At = at
	var o analysis.Observation
	var err error
	if o.Canary, err = p.Measure(ctx, q); err != nil {
		return errorObservation(err)
	}
	switch {
	case m.MaxDelta == nil && m.MaxRatio == nil:
	case side == analysis.SideStage:
		if i < len(j.in.Baseline) {
			o.Stable = j.in.Baseline[i]
		}
	default:
		q = analysis.QueryFor(m, analysis.SideStable, j.in.StableRelease, j.target.APIID, j.target.Stage)
		q.Issuer = j.in.IssuerURL
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

// IssuerEventsInput asks for what the issuer's authorizers counted in (Since, Now], read from
// the worker's provider of that name.
type IssuerEventsInput struct {
	Provider  string
	IssuerURL string
	Since     time.Time
	Now       time.Time
}

// IssuerEvents reads the issuer's verifications, rejections by reason and release, and stale
// deny-list decisions over the window: the token monitor's one provider read per judgement.
func (a *Health) IssuerEvents(ctx context.Context, in IssuerEventsInput) (analysis.EventCounts, error) {
	p := a.Providers[in.Provider]
	if p == nil {
		return analysis.EventCounts{}, temporal.NewNonRetryableApplicationError("no "+in.Provider+" provider on this worker (it has: "+a.Providers.Names()+")", ErrTypeInvalid, nil)
	}
	counter, ok := p.(analysis.EventCounter)
	if !ok {
		return analysis.EventCounts{}, temporal.NewNonRetryableApplicationError("the "+in.Provider+" provider cannot count token events", ErrTypeInvalid, nil)
	}
	q := analysis.EventQuery{Issuer: in.IssuerURL, Window: in.Now.Sub(in.Since), At: in.Now}
	if a.Releases != nil && analysis.NamesReleases(counter) {
		// The releases' labels, so that a provider that lists its metrics also names those of a
		// release promoted minutes ago (its first rejections are the ones a forgery makes).
		latest, err := a.Releases.LatestOfIssuer(ctx, IssuerStagesInput{IssuerURL: in.IssuerURL})
		if err != nil {
			return analysis.EventCounts{}, err
		}
		for _, r := range latest.Releases {
			q.Releases = append(q.Releases, r.Label)
		}
	}
	return counter.CountEvents(ctx, q)
}
