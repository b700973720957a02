package analysis_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/rollgate/rollgate/internal/analysis"
	"github.com/rollgate/rollgate/internal/spec"
)

func f(v float64) *float64 { return &v }
func n(v int) *int         { return &v }

// metric is a normalized metric with the given rule.
func metric(change func(*spec.Metric)) spec.Metric {
	m := spec.Metric{Name: "rejections", Template: spec.TemplateTokenRejections, Interval: spec.Duration(30e9)}
	change(&m)
	a := spec.Analysis{Metrics: []spec.Metric{m}}
	a.Normalize()
	return a.Metrics[0]
}

func canary(v, samples float64) analysis.Observation {
	return analysis.Observation{Canary: analysis.Measurement{Value: v, Samples: samples, HasData: true}}
}

func versus(c, s float64) analysis.Observation {
	return analysis.Observation{
		Canary: analysis.Measurement{Value: c, Samples: 100, HasData: true},
		Stable: analysis.Measurement{Value: s, Samples: 1000, HasData: true},
	}
}

var (
	noData   = analysis.Observation{}
	errored  = analysis.Observation{Error: "prometheus: connection refused"}
	noStable = analysis.Observation{Canary: analysis.Measurement{Value: 0.01, Samples: 100, HasData: true}}
)

func obs(o ...analysis.Observation) []analysis.Observation { return o }

// Every rule of the judgement, one row each: the verdict while baking (Judge) and at the end of
// the bake (Conclude), and the reason's gist.
func TestJudge_EveryRule(t *testing.T) {
	cases := []struct {
		name      string
		rule      func(*spec.Metric)
		obs       []analysis.Observation
		judged    analysis.Verdict
		concluded analysis.Verdict
		failures  int
		says      string
	}{
		{"within max", func(m *spec.Metric) { m.Max = f(0.01) }, obs(canary(0.005, 10), canary(0.01, 10)), analysis.Running, analysis.Pass, 0, ""},
		{"over max fails at once with failureLimit 0", func(m *spec.Metric) { m.Max = f(0.01) }, obs(canary(0.005, 10), canary(0.02, 10), canary(0, 10)), analysis.Fail, analysis.Fail, 1, "canary 0.02 > max 0.01"},
		{"under min", func(m *spec.Metric) { m.Min = f(0.9) }, obs(canary(0.5, 10)), analysis.Fail, analysis.Fail, 1, "< min 0.9"},
		{"failures within failureLimit", func(m *spec.Metric) { m.Max = f(0.01); m.FailureLimit = 2 }, obs(canary(0.02, 10), canary(0, 10), canary(0.03, 10)), analysis.Running, analysis.Pass, 2, "> max"},
		{"one failure over failureLimit", func(m *spec.Metric) { m.Max = f(0.01); m.FailureLimit = 2 }, obs(canary(0.02, 10), canary(0.02, 10), canary(0.02, 10)), analysis.Fail, analysis.Fail, 3, "3 failed measurements (failureLimit 2)"},
		{"maxDelta against stable", func(m *spec.Metric) { m.MaxDelta = f(0.01) }, obs(versus(0.015, 0.01), versus(0.03, 0.01)), analysis.Fail, analysis.Fail, 1, "maxDelta 0.01"},
		{"maxDelta within", func(m *spec.Metric) { m.MaxDelta = f(0.01) }, obs(versus(0.019, 0.01)), analysis.Running, analysis.Pass, 0, ""},
		{"maxRatio against stable", func(m *spec.Metric) { m.MaxRatio = f(2) }, obs(versus(0.01, 0.01), versus(0.03, 0.01)), analysis.Fail, analysis.Fail, 1, "= 3 > maxRatio 2"},
		{"maxRatio both zero is a ratio of 1", func(m *spec.Metric) { m.MaxRatio = f(1.5) }, obs(versus(0, 0)), analysis.Running, analysis.Pass, 0, ""},
		{"maxRatio over a stable zero is infinite", func(m *spec.Metric) { m.MaxRatio = f(100) }, obs(versus(0.001, 0)), analysis.Fail, analysis.Fail, 1, "+Inf"},
		{"a comparison without the stable's data follows noData", func(m *spec.Metric) { m.MaxDelta = f(1) }, obs(noStable), analysis.Inconclusive, analysis.Inconclusive, 0, "no data for the stable release"},
		{"noData inconclusive (default)", func(m *spec.Metric) { m.Max = f(1) }, obs(canary(0, 10), noData, canary(0, 10)), analysis.Inconclusive, analysis.Inconclusive, 0, "no data for the canary (noData: inconclusive)"},
		{"noData fail counts as a failure", func(m *spec.Metric) { m.Max = f(1); m.NoData = spec.NoDataFail; m.FailureLimit = 1 }, obs(noData, canary(0, 10)), analysis.Running, analysis.Pass, 1, "noData: fail"},
		{"noData fail beyond the limit", func(m *spec.Metric) { m.Max = f(1); m.NoData = spec.NoDataFail }, obs(noData), analysis.Fail, analysis.Fail, 1, "noData: fail"},
		{"noData pass", func(m *spec.Metric) { m.Max = f(1); m.NoData = spec.NoDataPass }, obs(noData, noData), analysis.Running, analysis.Pass, 0, ""},
		{"errors within consecutiveErrorLimit (default 4)", func(m *spec.Metric) { m.Max = f(1) }, obs(errored, errored, errored, errored, canary(0, 10)), analysis.Running, analysis.Pass, 0, ""},
		{"one error over the default consecutiveErrorLimit", func(m *spec.Metric) { m.Max = f(1) }, obs(canary(0, 10), errored, errored, errored, errored, errored), analysis.Inconclusive, analysis.Inconclusive, 0, "5 provider errors in a row (consecutiveErrorLimit 4)"},
		{"a good measurement resets the error run", func(m *spec.Metric) { m.Max = f(1); m.ConsecutiveErrorLimit = n(1) }, obs(errored, canary(0, 10), errored, canary(0, 10)), analysis.Running, analysis.Pass, 0, ""},
		{"consecutiveErrorLimit 0 tolerates none", func(m *spec.Metric) { m.Max = f(1); m.ConsecutiveErrorLimit = n(0) }, obs(errored), analysis.Inconclusive, analysis.Inconclusive, 0, "consecutiveErrorLimit 0"},
		{"only errors: inconclusive at the end", func(m *spec.Metric) { m.Max = f(1) }, obs(errored, errored), analysis.Running, analysis.Inconclusive, 0, "no measurement counted"},
		{"below minSamples is not counted, even over max", func(m *spec.Metric) { m.Max = f(0.01); m.MinSamples = 50 }, obs(canary(0.5, 49), canary(0.5, 10)), analysis.Running, analysis.Inconclusive, 0, "no measurement counted in 2"},
		{"at minSamples it counts", func(m *spec.Metric) { m.Max = f(0.01); m.MinSamples = 50 }, obs(canary(0.5, 49), canary(0.5, 50)), analysis.Fail, analysis.Fail, 1, "> max"},
		{"nothing measured is inconclusive", func(m *spec.Metric) { m.Max = f(1) }, nil, analysis.Running, analysis.Inconclusive, 0, "no measurement counted in 0"},
		{"the first terminal verdict stands", func(m *spec.Metric) { m.Max = f(0.01) }, obs(canary(1, 10), noData), analysis.Fail, analysis.Fail, 1, "> max"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := metric(c.rule)
			j := analysis.Judge(m, c.obs)
			if j.Verdict != c.judged {
				t.Fatalf("Judge: %s (%s), want %s", j.Verdict, j.Reason, c.judged)
			}
			end := analysis.Conclude(j)
			if end.Verdict != c.concluded || end.Failures != c.failures {
				t.Fatalf("Conclude: %s with %d failures (%s), want %s with %d", end.Verdict, end.Failures, end.Reason, c.concluded, c.failures)
			}
			if !strings.Contains(end.Reason, c.says) || (c.says == "" && end.Reason != "") {
				t.Fatalf("reason %q, want it to say %q", end.Reason, c.says)
			}
			if !end.Acts() != (end.Verdict == analysis.Pass || end.Verdict == analysis.Running) {
				t.Fatalf("Acts() = %v for %s", end.Acts(), end.Verdict)
			}
		})
	}
}

// A dry-run metric is judged and reported like any other, and never stops a release.
func TestJudge_DryRunIsReportedAndNeverActs(t *testing.T) {
	m := metric(func(m *spec.Metric) { m.Max = f(0.01); m.DryRun = true })
	j := analysis.Conclude(analysis.Judge(m, obs(canary(0.5, 10))))
	if j.Verdict != analysis.Fail || !j.DryRun || j.Acts() {
		t.Fatalf("dry run: %+v, acts %v", j, j.Acts())
	}
	ok := analysis.Conclude(analysis.Judge(metric(func(m *spec.Metric) { m.Max = f(1) }), obs(canary(0.5, 10))))
	if got := analysis.Overall([]analysis.Judgement{j, ok}); got != analysis.Pass {
		t.Fatalf("overall with a failing dry run: %s, want pass", got)
	}
}

func TestOverall_FailBeatsInconclusiveBeatsRunningBeatsPass(t *testing.T) {
	v := func(vs ...analysis.Verdict) []analysis.Judgement {
		js := make([]analysis.Judgement, len(vs))
		for i, x := range vs {
			js[i] = analysis.Judgement{Verdict: x}
		}
		return js
	}
	cases := []struct {
		in   []analysis.Judgement
		want analysis.Verdict
	}{
		{nil, analysis.Pass},
		{v(analysis.Pass, analysis.Pass), analysis.Pass},
		{v(analysis.Pass, analysis.Running), analysis.Running},
		{v(analysis.Running, analysis.Inconclusive, analysis.Pass), analysis.Inconclusive},
		{v(analysis.Inconclusive, analysis.Fail, analysis.Running), analysis.Fail},
	}
	for _, c := range cases {
		if got := analysis.Overall(c.in); got != c.want {
			t.Errorf("Overall(%v) = %s, want %s", c.in, got, c.want)
		}
	}
}

// Judgements travel through workflow history: they round-trip through JSON unchanged, and the
// same observations always give the same judgement.
func TestJudge_IsPlainDataAndDeterministic(t *testing.T) {
	m := metric(func(m *spec.Metric) { m.MaxRatio = f(2); m.FailureLimit = 1 })
	in := obs(versus(0.03, 0.01), errored, noStable)
	a, b := analysis.Judge(m, in), analysis.Judge(m, in)
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if string(ja) != string(jb) {
		t.Fatalf("two judgements of the same input differ:\n%s\n%s", ja, jb)
	}
	var back analysis.Judgement
	if err := json.Unmarshal(ja, &back); err != nil {
		t.Fatal(err)
	}
	if jback, _ := json.Marshal(back); string(jback) != string(ja) {
		t.Fatalf("JSON round trip changed the judgement:\n%s\n%s", ja, jback)
	}
}
