package spec_test

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/rollgate/rollgate/internal/spec"
)

func ptr[T any](v T) *T { return &v }

// validAnalysis is a normalized block with one metric of each kind.
func validAnalysis() spec.Analysis {
	a := spec.Analysis{
		Watch: spec.Duration(15 * time.Minute),
		Metrics: []spec.Metric{
			{Name: "token-rejections", Template: spec.TemplateTokenRejections, MaxDelta: ptr(0.01), Interval: spec.Duration(30 * time.Second), MinSamples: 50},
			{Name: "gateway-5xx", Template: spec.TemplateGateway5xx, Max: ptr(0.01), Interval: spec.Duration(30 * time.Second), FailureLimit: 1},
			{Name: "orders-errors", Query: `sum(rate(orders_errors_total{release="{{.Release}}",stage="{{.Stage}}",api="{{.APIID}}"}[{{.Window}}]))`,
				Provider: spec.ProviderPrometheus, MaxRatio: ptr(1.5), Interval: spec.Duration(time.Minute), Window: spec.Duration(5 * time.Minute),
				NoData: spec.NoDataPass, DryRun: true},
		},
	}
	a.Normalize()
	return a
}

func TestAnalysis_AcceptsAGoodBlockAndFillsDefaults(t *testing.T) {
	a := validAnalysis()
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	m := a.Metrics[0]
	if m.Provider != "prometheus" || m.NoData != "inconclusive" || *m.ConsecutiveErrorLimit != 4 || m.Window != m.Interval {
		t.Fatalf("defaults: %+v", m)
	}
	if len(m.ExpectedReasons) != 1 || m.ExpectedReasons[0] != "revoked" {
		t.Fatalf("tokenRejections expects revoked by default: %v", m.ExpectedReasons)
	}
	if a.Metrics[2].NoData != "pass" || a.Metrics[2].Window.D() != 5*time.Minute {
		t.Fatalf("a default replaced what was set: %+v", a.Metrics[2])
	}
	zero := validAnalysis()
	zero.Metrics[0].ConsecutiveErrorLimit = ptr(0)
	zero.Normalize()
	if *zero.Metrics[0].ConsecutiveErrorLimit != 0 {
		t.Fatal("consecutiveErrorLimit 0 (tolerate no error) was replaced by the default")
	}
}

func TestAnalysis_NamesTheFieldAndTheAllowedRange(t *testing.T) {
	m0 := "analysis.metrics[0]"
	cases := []struct {
		name   string
		change func(*spec.Analysis)
		field  string
		says   string
	}{
		{"no metrics", func(a *spec.Analysis) { a.Metrics = nil }, "analysis.metrics", "allowed 1 to 10"},
		{"too many metrics", func(a *spec.Analysis) {
			for len(a.Metrics) <= spec.MaxMetrics {
				m := a.Metrics[0]
				m.Name = strings.Repeat("m", len(a.Metrics))
				a.Metrics = append(a.Metrics, m)
			}
		}, "analysis.metrics", "allowed 1 to 10"},
		{"name", func(a *spec.Analysis) { a.Metrics[0].Name = "a b" }, m0 + ".name", "a metric name"},
		{"duplicate name", func(a *spec.Analysis) { a.Metrics[1].Name = a.Metrics[0].Name }, "analysis.metrics[1].name", "unique"},
		{"neither template nor query", func(a *spec.Analysis) { a.Metrics[0].Template = "" }, m0 + ".template", "required: one of tokenRejections, unknownKid, gateway5xx, latencyP99"},
		{"both template and query", func(a *spec.Analysis) { a.Metrics[0].Query = "up" }, m0 + ".query", "not both"},
		{"unknown template", func(a *spec.Analysis) { a.Metrics[1].Template = "errors" }, "analysis.metrics[1].template", "allowed tokenRejections, unknownKid, gateway5xx, latencyP99"},
		{"query too long", func(a *spec.Analysis) { a.Metrics[2].Query = strings.Repeat("x", 4097) }, "analysis.metrics[2].query", "allowed at most 4096"},
		{"query does not parse", func(a *spec.Analysis) { a.Metrics[2].Query = "sum({{.Release}" }, "analysis.metrics[2].query", "may use only the placeholders"},
		{"unknown placeholder", func(a *spec.Analysis) { a.Metrics[2].Query = "sum(x{r=\"{{.Releas}}\"})" }, "analysis.metrics[2].query", "{{.Release}}, {{.Stage}}, {{.APIID}}, {{.Window}}"},
		{"a loop", func(a *spec.Analysis) { a.Metrics[2].Query = "{{range 100000000}}sum(x){{end}}" }, "analysis.metrics[2].query", "are not allowed"},
		{"a function", func(a *spec.Analysis) { a.Metrics[2].Query = `sum(x{a="{{printf "%999999999d" 1}}"})` }, "analysis.metrics[2].query", "are not allowed"},
		{"a pipeline", func(a *spec.Analysis) { a.Metrics[2].Query = `sum(x{a="{{.Release | len}}"})` }, "analysis.metrics[2].query", "are not allowed"},
		{"a variable", func(a *spec.Analysis) { a.Metrics[2].Query = `{{$r := .Release}}sum(x)` }, "analysis.metrics[2].query", "are not allowed"},
		{"a nested field", func(a *spec.Analysis) { a.Metrics[2].Query = `sum(x{a="{{.Release.X}}"})` }, "analysis.metrics[2].query", "are not allowed"},
		{"a rendering over the bound with the longest stage", func(a *spec.Analysis) { a.Metrics[2].Query = strings.Repeat("{{.Stage}}", 130) }, "analysis.metrics[2].query", "renders to more than 16384 bytes"},
		{"control characters in a query", func(a *spec.Analysis) { a.Metrics[2].Query = "up\x1b[2J" }, "analysis.metrics[2].query", "no control characters"},
		{"provider", func(a *spec.Analysis) { a.Metrics[0].Provider = "datadog" }, m0 + ".provider", "allowed prometheus, cloudwatch"},
		{"a custom query on cloudwatch", func(a *spec.Analysis) { a.Metrics[2].Provider = spec.ProviderCloudWatch }, "analysis.metrics[2].query", "the cloudwatch provider measures the built-in templates only"},
		{"expected reasons on another template", func(a *spec.Analysis) { a.Metrics[1].ExpectedReasons = []string{"revoked"} }, "analysis.metrics[1].expectedReasons", "only the tokenRejections"},
		{"unknown expected reason", func(a *spec.Analysis) { a.Metrics[0].ExpectedReasons = []string{"revoked", "teapot"} }, m0 + ".expectedReasons[1]", "allowed expired,"},
		{"no threshold", func(a *spec.Analysis) { a.Metrics[0].MaxDelta = nil }, m0 + ".max", "at least one of max, min, maxDelta, maxRatio"},
		{"NaN threshold", func(a *spec.Analysis) { a.Metrics[1].Max = ptr(math.NaN()) }, "analysis.metrics[1].max", "allowed -1e+15 to 1e+15"},
		{"infinite threshold", func(a *spec.Analysis) { a.Metrics[0].MaxDelta = ptr(math.Inf(1)) }, m0 + ".maxDelta", "allowed -1e+15 to 1e+15"},
		{"negative ratio", func(a *spec.Analysis) { a.Metrics[2].MaxRatio = ptr(-1.0) }, "analysis.metrics[2].maxRatio", "allowed 0 to 1e+15"},
		{"zero ratio", func(a *spec.Analysis) { a.Metrics[2].MaxRatio = ptr(0.0) }, "analysis.metrics[2].maxRatio", "use max: 0"},
		{"min above max", func(a *spec.Analysis) { a.Metrics[1].Min = ptr(0.5) }, "analysis.metrics[1].min", "above max 0.01"},
		{"interval too short", func(a *spec.Analysis) { a.Metrics[0].Interval = spec.Duration(time.Millisecond) }, m0 + ".interval", "allowed 1s to 1h0m0s"},
		{"interval too long", func(a *spec.Analysis) { a.Metrics[0].Interval = spec.Duration(2 * time.Hour) }, m0 + ".interval", "allowed 1s to 1h0m0s"},
		{"window shorter than the interval", func(a *spec.Analysis) { a.Metrics[2].Window = spec.Duration(time.Second) }, "analysis.metrics[2].window", "allowed the interval (1m0s) to 24h0m0s"},
		{"negative failure limit", func(a *spec.Analysis) { a.Metrics[0].FailureLimit = -1 }, m0 + ".failureLimit", "allowed 0 to 100"},
		{"failure limit too high", func(a *spec.Analysis) { a.Metrics[0].FailureLimit = 101 }, m0 + ".failureLimit", "allowed 0 to 100"},
		{"consecutive error limit", func(a *spec.Analysis) { a.Metrics[0].ConsecutiveErrorLimit = ptr(1000) }, m0 + ".consecutiveErrorLimit", "allowed 0 to 100"},
		{"negative min samples", func(a *spec.Analysis) { a.Metrics[0].MinSamples = -5 }, m0 + ".minSamples", "allowed 0 to 1000000000"},
		{"min samples of a custom query", func(a *spec.Analysis) { a.Metrics[2].MinSamples = 10 }, "analysis.metrics[2].minSamples", "needs a template"},
		{"no data policy", func(a *spec.Analysis) { a.Metrics[0].NoData = "ignore" }, m0 + ".noData", "allowed fail, inconclusive, pass"},
		{"watch too long", func(a *spec.Analysis) { a.Watch = spec.Duration(48 * time.Hour) }, "analysis.watch", "allowed 0s to 24h0m0s"},
		{"negative watch", func(a *spec.Analysis) { a.Watch = spec.Duration(-time.Minute) }, "analysis.watch", "allowed 0s to 24h0m0s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := validAnalysis()
			tc.change(&a)
			ps := problemsOf(t, a.Validate())
			if !hasProblem(ps, tc.field, tc.says) {
				t.Fatalf("problems %v do not name %s with %q", ps, tc.field, tc.says)
			}
			if err := a.Validate(); !strings.HasPrefix(err.Error(), "invalid analysis: ") {
				t.Fatalf("error text: %v", err)
			}
		})
	}
}

// A deploy spec's analysis block is checked whole under the rules that judge it, and refused
// under the earlier rules (runs that started under them, on workers that did not judge it).
func TestValidate_AnalysisBlockIsJudgedUnderLatestRulesAndRefusedUnderEarlierOnes(t *testing.T) {
	s := validSpec()
	a := validAnalysis()
	s.Analysis = &a
	if err := s.Validate(); err != nil {
		t.Fatalf("latest rules refused a good block: %v", err)
	}
	for _, r := range []spec.Rules{spec.RulesOriginal, spec.RulesBounded} {
		if ps := problemsOf(t, s.ValidateWith(r)); !hasProblem(ps, "analysis", "not supported by this version yet") {
			t.Fatalf("rules %d: problems %v, want analysis: not supported", r, ps)
		}
	}
	bad := validAnalysis()
	bad.Metrics[1].Interval = spec.Duration(6 * time.Minute) // the first step bakes 5m
	bad.Metrics[1].Window = bad.Metrics[1].Interval
	bad.Metrics[0].NoData = "maybe"
	s.Analysis = &bad
	ps := problemsOf(t, s.Validate())
	if !hasProblem(ps, "analysis.metrics[1].interval", "longer than canary.steps[0].bake 5m0s") || !hasProblem(ps, "analysis.metrics[0].noData", `"maybe"`) {
		t.Fatalf("problems %v", ps)
	}
	raw := exampleSpec(t) + `
analysis:
  metrics:
    - {name: rejections, template: tokenRejections, maxDelta: 0.01, interval: 30s}
`
	parsed, err := spec.Parse([]byte(raw))
	if err != nil || parsed.Analysis == nil || parsed.Analysis.Metrics[0].NoData != spec.NoDataInconclusive {
		t.Fatalf("Parse: %+v, %v", parsed.Analysis, err)
	}
	raw = exampleSpec(t) + "analysis:\n  metrics:\n    - {name: r, template: tokenRejections, maxDelta: 0.01, interval: 30s, colour: blue}\n"
	_, err = spec.Parse([]byte(raw))
	if ps := problemsOf(t, err); !hasProblem(ps, "analysis.metrics[0].colour", "unknown field") {
		t.Fatalf("Parse does not name an unknown field of the block: %v", ps)
	}
}

// A custom query comes from a pipeline's spec and is validated and rendered in workflow code: no
// input panics, and one that validation accepts renders within bounds for any placeholder values.
func FuzzCheckAnalysis_CustomQueryNeverPanicsAndRendersBounded(f *testing.F) {
	f.Add(`sum(rate(errors_total{release="{{.Release}}",stage="{{.Stage}}"}[{{.Window}}]))`)
	f.Add(`{{range 10}}x{{end}}`)
	f.Add(`{{printf "%9d" 1}}{{.APIID}}`)
	f.Add(`{{/* c */}}{{- .Release -}}`)
	f.Fuzz(func(t *testing.T, q string) {
		a := validAnalysis()
		a.Metrics[2].Query = q
		if a.Validate() != nil {
			return
		}
		tmpl, err := spec.ParseQuery(q)
		if err != nil {
			t.Fatalf("accepted a query that does not parse: %v", err)
		}
		out, err := spec.RenderQuery(tmpl, spec.QueryVars{Release: strings.Repeat("r", 64), Stage: strings.Repeat("s", 128), APIID: "abcdefghij", Window: "1h"})
		if err != nil || len(out) > spec.MaxRenderedQuery {
			t.Fatalf("an accepted query renders to %d bytes, %v", len(out), err)
		}
	})
}

// expectedReasons: [] excludes nothing, and stays so when the block travels as JSON (a workflow's
// input) and is normalized again; left out, it is the default.
func TestAnalysis_EmptyExpectedReasonsSurviveJSONAndNormalize(t *testing.T) {
	a := validAnalysis()
	a.Metrics[0].ExpectedReasons = []string{}
	raw, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	var back spec.Analysis
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	back.Normalize()
	if back.Metrics[0].ExpectedReasons == nil || len(back.Metrics[0].ExpectedReasons) != 0 {
		t.Fatalf("expectedReasons [] came back as %#v from %s", back.Metrics[0].ExpectedReasons, raw)
	}
	if len(back.Metrics[1].ExpectedReasons) != 0 || strings.Contains(string(raw), `"expectedReasons":null`) {
		t.Fatalf("a metric without expectedReasons: %s", raw)
	}
}
