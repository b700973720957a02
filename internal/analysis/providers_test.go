package analysis_test

import (
	"strings"
	"testing"

	"github.com/rollgate/rollgate/internal/analysis"
	"github.com/rollgate/rollgate/internal/spec"
)

// A spec naming a provider the worker lacks is refused with the metric and the provider named.
func TestProviders_Check_NamesTheMissingProvider(t *testing.T) {
	ps := analysis.Providers{spec.ProviderPrometheus: &analysis.Prometheus{}}
	ok := metric(func(m *spec.Metric) { m.Max = f(0.01) })
	cw := metric(func(m *spec.Metric) { m.Max = f(0.01); m.Name = "cw"; m.Provider = spec.ProviderCloudWatch })
	if err := ps.Check([]spec.Metric{ok}); err != nil {
		t.Fatalf("prometheus metric refused: %v", err)
	}
	err := ps.Check([]spec.Metric{ok, cw})
	if err == nil || !strings.Contains(err.Error(), `analysis.metrics[1].provider "cloudwatch"`) || !strings.Contains(err.Error(), "it has: prometheus") {
		t.Fatalf("err = %v, want the second metric's provider named", err)
	}
	if err := (analysis.Providers{}).Check([]spec.Metric{ok}); err == nil || !strings.Contains(err.Error(), "it has: none") {
		t.Fatalf("a worker without providers: %v", err)
	}
}

// Folding observations one at a time gives the same judgement as judging them all at once, so a
// bake can keep judgements instead of observations.
func TestJudgement_Observe_EqualsJudgeOfTheWholeSequence(t *testing.T) {
	m := metric(func(m *spec.Metric) { m.Max = f(0.01); m.FailureLimit = 1; m.MinSamples = 5 })
	seq := obs(canary(0.005, 10), errored, canary(0.02, 2), canary(0.02, 10), noStable, canary(0.03, 10), canary(0, 10))
	j := analysis.Judge(m, nil)
	for i, o := range seq {
		j = j.Observe(m, o)
		if want := analysis.Judge(m, seq[:i+1]); j != want {
			t.Fatalf("after %d observations: %+v, want %+v", i+1, j, want)
		}
	}
	if j.Verdict != analysis.Fail {
		t.Fatalf("verdict %s, want fail", j.Verdict)
	}
}
