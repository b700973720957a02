// Package analysis judges a release by its real traffic: providers measure a metric for the
// canary and for the stable release, and pure judgement functions turn the sequence of
// measurements into a verdict that workflow code can compute deterministically.
package analysis

import (
	"context"
	"fmt"
	"time"

	"github.com/rollgate/rollgate/internal/spec"
)

// Provider measures one metric once. A provider error is a failed measurement (counted against
// consecutiveErrorLimit), never a value.
type Provider interface {
	Measure(ctx context.Context, q Query) (Measurement, error)
}

// Side is which traffic a measurement counts.
type Side string

const (
	SideCanary Side = "canary" // the canary deployment's requests
	SideStable Side = "stable" // the stable deployment's requests
	SideStage  Side = "stage"  // every request of the stage (the watch after promotion)
)

// Query is one measurement to take: a built-in template or a custom query, for one release of
// one stage, over Window ending At.
type Query struct {
	Metric   string // the metric's name, for errors
	Template string // one of spec.Templates, or ""
	Custom   string // a custom query (a text/template), when Template is ""
	// ExpectedReasons are rejection reasons tokenRejections does not count.
	ExpectedReasons []string
	Release         string // the authorizer's release label of the measured side
	// Issuer is the release's token issuer, as the authorizer labels its metrics: with it, a
	// provider that lists its metrics also names the release's, which a new release's are.
	Issuer string
	Stage  string
	APIID  string
	Side   Side
	Window time.Duration
	At     time.Time // the evaluation time; zero is now
}

// QueryFor is the query of metric m for one side of a release.
func QueryFor(m spec.Metric, side Side, release, apiID, stage string) Query {
	return Query{
		Metric: m.Name, Template: m.Template, Custom: m.Query, ExpectedReasons: m.ExpectedReasons,
		Release: release, Stage: stage, APIID: apiID, Side: side, Window: m.Window.D(),
	}
}

// Measurement is one value of a metric. It is plain data, so that workflow code can keep and
// judge it.
type Measurement struct {
	Value float64 `json:"value"`
	// Samples is how many requests the value was computed from (0 when a custom query counts none).
	Samples float64 `json:"samples"`
	// HasData is false when the query answered no series (no traffic, no such release): that is
	// not a zero.
	HasData bool `json:"hasData"`
}

func (m Measurement) String() string {
	if !m.HasData {
		return "no data"
	}
	return fmt.Sprintf("%.6g (%g samples)", m.Value, m.Samples)
}
