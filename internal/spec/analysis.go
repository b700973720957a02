package spec

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rollgate/rollgate/internal/tokens"
)

// Analysis judges a release by its real traffic: each metric is measured every interval while
// the canary bakes and, for Watch after promotion, against the stage's baseline.
type Analysis struct {
	Metrics []Metric `json:"metrics"`
	// Watch is how long the deployment keeps judging the whole stage after promotion (0: no watch).
	Watch Duration `json:"watch,omitempty"`
}

// Metric is one measured signal and the rule that judges it.
type Metric struct {
	Name string `json:"name"`
	// Exactly one of Template (a built-in query) and Query (a custom one, a text/template with
	// the placeholders of QueryVars).
	Template string `json:"template,omitempty"`
	Query    string `json:"query,omitempty"`
	Provider string `json:"provider,omitempty"` // prometheus (default) | cloudwatch
	// ExpectedReasons are rejection reasons the release expects (tokenRejections only); default
	// revoked: a client presenting a revoked token is the revocation working, not the release failing.
	// An empty list (not nil) excludes nothing, and stays empty through JSON.
	ExpectedReasons []string `json:"expectedReasons,omitzero"`
	// Bounds on the canary's value, and on the canary against the stable release over the same
	// window: canary − stable ≤ MaxDelta, canary ÷ stable ≤ MaxRatio. At least one is set.
	Max      *float64 `json:"max,omitempty"`
	Min      *float64 `json:"min,omitempty"`
	MaxDelta *float64 `json:"maxDelta,omitempty"`
	MaxRatio *float64 `json:"maxRatio,omitempty"`
	Interval Duration `json:"interval"`
	// Window is the span each measurement covers ({{.Window}}); default: the interval.
	Window Duration `json:"window,omitempty"`
	// FailureLimit is how many failed measurements are tolerated; one more fails the metric.
	FailureLimit int `json:"failureLimit,omitempty"`
	// ConsecutiveErrorLimit is how many provider errors in a row are tolerated; one more makes
	// the metric inconclusive. Nil is DefaultConsecutiveErrorLimit (0 tolerates none).
	ConsecutiveErrorLimit *int `json:"consecutiveErrorLimit,omitempty"`
	// MinSamples is how many requests the canary must have served in a window before the
	// measurement counts (templates only: a custom query counts no requests).
	MinSamples int    `json:"minSamples,omitempty"`
	NoData     string `json:"noData,omitempty"` // fail | inconclusive (default) | pass
	// DryRun metrics are measured and reported, and never act.
	DryRun bool `json:"dryRun,omitempty"`
}

// Built-in metric templates.
const (
	TemplateTokenRejections = "tokenRejections"
	TemplateUnknownKID      = "unknownKid"
	TemplateGateway5xx      = "gateway5xx"
	TemplateLatencyP99      = "latencyP99"
)

// Metric providers.
const (
	ProviderPrometheus = "prometheus"
	ProviderCloudWatch = "cloudwatch"
)

// What a measurement without data counts as.
const (
	NoDataFail         = "fail"
	NoDataInconclusive = "inconclusive"
	NoDataPass         = "pass"
)

// Limits of an analysis block.
const (
	MaxMetrics                   = 10
	MaxQuery                     = 4096
	MinAnalysisInterval          = time.Second
	MaxAnalysisInterval          = time.Hour
	MaxWindow                    = 24 * time.Hour
	MaxWatch                     = 24 * time.Hour
	MaxFailureLimit              = 100
	MaxConsecutiveErrorLimit     = 100
	MaxMinSamples                = 1_000_000_000
	DefaultConsecutiveErrorLimit = 4
	// MaxThreshold bounds thresholds: a value beyond it is a typo, not a rule.
	MaxThreshold = 1e15
)

// Templates are the built-in metrics, in the order errors list them.
var Templates = []string{TemplateTokenRejections, TemplateUnknownKID, TemplateGateway5xx, TemplateLatencyP99}

// RejectionReasons are the reasons the authorizer labels rejections with (internal/tokens plus
// the authorizer's own), the values ExpectedReasons may name.
var RejectionReasons = func() []string {
	out := make([]string, len(tokens.Reasons))
	for i, r := range tokens.Reasons {
		out[i] = string(r)
	}
	return out
}()

// Normalize fills the defaults of every metric. It changes nothing CheckAnalysis would refuse.
func (a *Analysis) Normalize() {
	for i := range a.Metrics {
		m := &a.Metrics[i]
		if m.Provider == "" {
			m.Provider = ProviderPrometheus
		}
		if m.NoData == "" {
			m.NoData = NoDataInconclusive
		}
		if m.ConsecutiveErrorLimit == nil {
			n := DefaultConsecutiveErrorLimit
			m.ConsecutiveErrorLimit = &n
		}
		if m.Window == 0 {
			m.Window = m.Interval
		}
		if m.Template == TemplateTokenRejections && m.ExpectedReasons == nil {
			m.ExpectedReasons = []string{"revoked"}
		}
	}
}

// Validate checks a normalized analysis block on its own, naming fields "analysis.…".
func (a *Analysis) Validate() error {
	var p Problems
	p.CheckAnalysis("analysis", a)
	return p.Err("analysis")
}

// CheckAnalysis checks every field of a normalized analysis block under field.
func (p *Problems) CheckAnalysis(field string, a *Analysis) {
	if a == nil {
		return
	}
	switch n := len(a.Metrics); {
	case n == 0 || n > MaxMetrics:
		p.Add(field+".metrics", "%d metrics: allowed 1 to %d", n, MaxMetrics)
	}
	seen := map[string]bool{}
	for i, m := range a.Metrics {
		f := fmt.Sprintf("%s.metrics[%d]", field, i)
		if seen[m.Name] {
			p.Add(f+".name", "%q: metric names must be unique", m.Name)
		}
		seen[m.Name] = true
		p.checkMetric(f, m)
	}
	p.CheckDuration(field+".watch", a.Watch.D(), 0, MaxWatch)
}

func (p *Problems) checkMetric(f string, m Metric) {
	p.CheckName(f+".name", m.Name, "a metric name")
	p.checkQuery(f, m)
	switch m.Provider {
	case ProviderPrometheus:
	case ProviderCloudWatch:
		if m.Query != "" {
			p.Add(f+".query", "the cloudwatch provider measures the built-in templates only (custom queries are PromQL, for prometheus)")
		}
	default:
		p.Add(f+".provider", "%q: allowed %s, %s", m.Provider, ProviderPrometheus, ProviderCloudWatch)
	}
	p.checkThresholds(f, m)
	p.CheckDuration(f+".interval", m.Interval.D(), MinAnalysisInterval, MaxAnalysisInterval)
	if m.Window.D() < m.Interval.D() || m.Window.D() > MaxWindow {
		p.Add(f+".window", "%s: allowed the interval (%s) to %s", m.Window.D(), m.Interval.D(), MaxWindow)
	}
	p.checkCount(f+".failureLimit", m.FailureLimit, MaxFailureLimit)
	if m.ConsecutiveErrorLimit != nil {
		p.checkCount(f+".consecutiveErrorLimit", *m.ConsecutiveErrorLimit, MaxConsecutiveErrorLimit)
	}
	p.checkCount(f+".minSamples", m.MinSamples, MaxMinSamples)
	if m.MinSamples > 0 && m.Template == "" {
		p.Add(f+".minSamples", "needs a template: a custom query counts no requests")
	}
	switch m.NoData {
	case NoDataFail, NoDataInconclusive, NoDataPass:
	default:
		p.Add(f+".noData", "%q: allowed %s, %s, %s", m.NoData, NoDataFail, NoDataInconclusive, NoDataPass)
	}
}

func (p *Problems) checkCount(field string, n, hi int) {
	if n < 0 || n > hi {
		p.Add(field, "%d: allowed 0 to %d", n, hi)
	}
}

// checkQuery checks that exactly one of template and query is set, and what goes with each.
func (p *Problems) checkQuery(f string, m Metric) {
	switch {
	case m.Template == "" && m.Query == "":
		p.Add(f+".template", "required: one of %s, or a custom query", strings.Join(Templates, ", "))
	case m.Template != "" && m.Query != "":
		p.Add(f+".query", "set either template or query, not both")
	case m.Template != "":
		if !slices.Contains(Templates, m.Template) {
			p.Add(f+".template", "%q: allowed %s", m.Template, strings.Join(Templates, ", "))
		}
	default:
		p.checkCustomQuery(f+".query", m.Query)
	}
	if len(m.ExpectedReasons) > 0 && m.Template != TemplateTokenRejections {
		p.Add(f+".expectedReasons", "only the %s template excludes reasons", TemplateTokenRejections)
	}
	if len(m.ExpectedReasons) > len(RejectionReasons) {
		p.Add(f+".expectedReasons", "%d reasons: allowed at most %d", len(m.ExpectedReasons), len(RejectionReasons))
		return
	}
	for i, r := range m.ExpectedReasons {
		if !slices.Contains(RejectionReasons, r) {
			p.Add(fmt.Sprintf("%s.expectedReasons[%d]", f, i), "%q: allowed %s", r, strings.Join(RejectionReasons, ", "))
		}
	}
}

// longestVars are the longest values the placeholders can take (a release label, a stage name,
// an API id, a window), so that a query that renders within bounds here always does.
var longestVars = QueryVars{Release: strings.Repeat("r", 64), Stage: strings.Repeat("s", 128), APIID: "abcdefghij", Window: "23h59m59s999ms"}

// checkCustomQuery parses the query and renders it once, so that a typo in a placeholder or an
// oversized rendering is refused now and not at the first measurement of a canary.
func (p *Problems) checkCustomQuery(field, q string) {
	if n := utf8.RuneCountInString(q); n > MaxQuery {
		p.Add(field, "%d characters: allowed at most %d", n, MaxQuery)
		return
	}
	p.CheckText(field, q, MaxQuery, true)
	t, err := ParseQuery(q)
	if err == nil {
		_, err = RenderQuery(t, longestVars)
	}
	if err != nil {
		p.Add(field, "%v (a custom query may use only the placeholders {{.Release}}, {{.Stage}}, {{.APIID}}, {{.Window}})", err)
	}
}

func (p *Problems) checkThresholds(f string, m Metric) {
	if m.Max == nil && m.Min == nil && m.MaxDelta == nil && m.MaxRatio == nil {
		p.Add(f+".max", "required: at least one of max, min, maxDelta, maxRatio")
	}
	bounded := func(name string, v *float64, lo float64) {
		if v != nil && (math.IsNaN(*v) || *v < lo || *v > MaxThreshold) {
			p.Add(f+"."+name, "%v: allowed %v to %v", *v, lo, MaxThreshold)
		}
	}
	bounded("max", m.Max, -MaxThreshold)
	bounded("min", m.Min, -MaxThreshold)
	bounded("maxDelta", m.MaxDelta, -MaxThreshold)
	bounded("maxRatio", m.MaxRatio, 0)
	if m.Max != nil && m.Min != nil && *m.Min > *m.Max {
		p.Add(f+".min", "%v is above max %v: no value could pass", *m.Min, *m.Max)
	}
	if m.MaxRatio != nil && *m.MaxRatio == 0 {
		p.Add(f+".maxRatio", "0: allowed above 0 (a ratio of 0 lets only a canary of value 0 pass; use max: 0)")
	}
}
