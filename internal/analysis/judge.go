package analysis

import (
	"fmt"
	"math"
	"strings"

	"github.com/rollgate/rollgate/internal/spec"
)

// Verdict is what the measurements of a metric say so far.
type Verdict string

const (
	// Running: no decision yet; keep measuring.
	Running Verdict = "running"
	// Pass: the bake ended with at least one counted measurement and failures within the limit.
	Pass Verdict = "pass"
	// Fail: more failed measurements than failureLimit; the release rolls back.
	Fail Verdict = "fail"
	// Inconclusive: the metric cannot be judged (provider errors beyond the limit, no data under
	// noData: inconclusive, or no measurement counted); the release pauses, never promotes.
	Inconclusive Verdict = "inconclusive"
)

// Observation is one measurement round of a metric: the canary's value and, for maxDelta and
// maxRatio, the stable release's over the same window. Error is a provider error's text (the
// round then has no values). It is plain data, so that it can travel through workflow history.
type Observation struct {
	Canary Measurement `json:"canary"`
	Stable Measurement `json:"stable,omitzero"`
	Error  string      `json:"error,omitempty"`
}

// Judgement is a metric's state after a sequence of observations. DryRun judgements are
// reported and never act (see Acts).
type Judgement struct {
	Metric            string      `json:"metric"`
	Rule              string      `json:"rule,omitempty"` // the thresholds, e.g. "max 0.01"
	Verdict           Verdict     `json:"verdict"`
	Reason            string      `json:"reason,omitempty"`
	Measured          int         `json:"measured"` // observations
	Counted           int         `json:"counted"`  // observations that were judged (enough samples, not errors)
	Failures          int         `json:"failures"`
	Errors            int         `json:"errors"`
	ConsecutiveErrors int         `json:"consecutiveErrors"`
	Last              Observation `json:"last,omitzero"`
	DryRun            bool        `json:"dryRun,omitempty"`
}

// Acts says whether the judgement stops the release: a failure or an inconclusive verdict of a
// metric that is not a dry run.
func (j Judgement) Acts() bool {
	return !j.DryRun && (j.Verdict == Fail || j.Verdict == Inconclusive)
}

// Judge folds the observations of metric m, oldest first, into a judgement. It is pure and
// deterministic (no clock, no I/O): workflow code may call it. The first terminal verdict (fail or
// inconclusive) stands; later observations do not change it. Until then the verdict is Running;
// Conclude decides at the end of a bake.
func Judge(m spec.Metric, obs []Observation) Judgement {
	j := Judgement{Metric: m.Name, Rule: Rule(m), Verdict: Running, DryRun: m.DryRun}
	for _, o := range obs {
		if j.Verdict != Running {
			break
		}
		j = j.Observe(m, o)
	}
	return j
}

// Observe is the judgement after one more observation: Judge(m, append(obs, o)) for
// j = Judge(m, obs). A long bake keeps its judgements (a few counters), not every observation.
func (j Judgement) Observe(m spec.Metric, o Observation) Judgement {
	if j.Verdict != Running {
		return j
	}
	errLimit := spec.DefaultConsecutiveErrorLimit
	if m.ConsecutiveErrorLimit != nil {
		errLimit = *m.ConsecutiveErrorLimit
	}
	j.Measured++
	j.Last = o
	j.observe(m, o, errLimit)
	return j
}

func (j *Judgement) observe(m spec.Metric, o Observation, errLimit int) {
	if o.Error != "" {
		j.Errors++
		j.ConsecutiveErrors++
		if j.ConsecutiveErrors > errLimit {
			j.stop(Inconclusive, "%d provider errors in a row (consecutiveErrorLimit %d): %s", j.ConsecutiveErrors, errLimit, o.Error)
		}
		return
	}
	j.ConsecutiveErrors = 0
	if !o.Canary.HasData || (compares(m) && !o.Stable.HasData) {
		j.noData(m, o)
		return
	}
	if m.MinSamples > 0 && o.Canary.Samples < float64(m.MinSamples) {
		return // too few requests for the value to mean anything; not counted
	}
	j.Counted++
	if breach := breached(m, o); breach != "" {
		j.failed(m, breach)
	}
}

func (j *Judgement) noData(m spec.Metric, o Observation) {
	side := "the canary"
	if o.Canary.HasData {
		side = "the stable release"
	}
	switch m.NoData {
	case spec.NoDataPass:
		j.Counted++
	case spec.NoDataFail:
		j.Counted++
		j.failed(m, "no data for "+side+" (noData: fail)")
	default:
		j.stop(Inconclusive, "no data for %s (noData: inconclusive)", side)
	}
}

func (j *Judgement) failed(m spec.Metric, breach string) {
	j.Failures++
	j.Reason = breach
	if j.Failures > m.FailureLimit {
		j.stop(Fail, "%d failed measurements (failureLimit %d), last: %s", j.Failures, m.FailureLimit, breach)
	}
}

func (j *Judgement) stop(v Verdict, format string, a ...any) {
	j.Verdict = v
	j.Reason = fmt.Sprintf(format, a...)
}

// Conclude is the verdict at the end of a bake: a metric still running passes if at least one
// measurement counted; with none it is inconclusive (the canary served fewer than minSamples
// requests in every window, or nothing was measured).
func Conclude(j Judgement) Judgement {
	if j.Verdict != Running {
		return j
	}
	if j.Counted == 0 {
		j.stop(Inconclusive, "no measurement counted in %d (minSamples or no traffic)", j.Measured)
		return j
	}
	j.Verdict = Pass
	if j.Failures == 0 {
		j.Reason = ""
	}
	return j
}

// Overall is the release's verdict from its metrics' judgements: fail if any acting metric
// failed, else inconclusive if any acting metric is, else running if any metric runs, else pass.
// Dry-run metrics never decide it.
func Overall(js []Judgement) Verdict {
	out := Pass
	for _, j := range js {
		switch {
		case j.DryRun:
		case j.Verdict == Fail:
			return Fail
		case j.Verdict == Inconclusive:
			out = Inconclusive
		case j.Verdict == Running && out == Pass:
			out = Running
		}
	}
	return out
}

// Rule is what a metric's thresholds say, for operators: "max 0.01", "maxDelta 0.01, maxRatio 2".
func Rule(m spec.Metric) string {
	var parts []string
	for _, b := range []struct {
		name string
		v    *float64
	}{{"min", m.Min}, {"max", m.Max}, {"maxDelta", m.MaxDelta}, {"maxRatio", m.MaxRatio}} {
		if b.v != nil {
			parts = append(parts, fmt.Sprintf("%s %.6g", b.name, *b.v))
		}
	}
	return strings.Join(parts, ", ")
}

// compares says whether the metric needs the stable release's value.
func compares(m spec.Metric) bool { return m.MaxDelta != nil || m.MaxRatio != nil }

// breached says which bound the observation breaks, or "".
func breached(m spec.Metric, o Observation) string {
	c, s := o.Canary.Value, o.Stable.Value
	switch {
	case m.Max != nil && c > *m.Max:
		return fmt.Sprintf("canary %.6g > max %.6g", c, *m.Max)
	case m.Min != nil && c < *m.Min:
		return fmt.Sprintf("canary %.6g < min %.6g", c, *m.Min)
	case m.MaxDelta != nil && c-s > *m.MaxDelta:
		return fmt.Sprintf("canary %.6g − stable %.6g = %.6g > maxDelta %.6g", c, s, c-s, *m.MaxDelta)
	case m.MaxRatio != nil && ratioOf(c, s) > *m.MaxRatio:
		return fmt.Sprintf("canary %.6g ÷ stable %.6g = %.6g > maxRatio %.6g", c, s, ratioOf(c, s), *m.MaxRatio)
	}
	return ""
}

// ratioOf is canary ÷ stable; equal values are a ratio of 1 (both 0 included) and a positive
// canary over a stable 0 is infinitely worse.
func ratioOf(c, s float64) float64 {
	switch {
	case c == s:
		return 1
	case s == 0:
		return math.Copysign(math.Inf(1), c)
	}
	return c / s
}
