package activities

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/rollgate/rollgate/internal/analysis"
	"github.com/rollgate/rollgate/internal/spec"
)

func analysisIn(limit int) *AnalysisInput {
	max := 0.01
	a := spec.Analysis{Metrics: []spec.Metric{
		{Name: "gateway-5xx", Template: spec.TemplateGateway5xx, Max: &max, Interval: spec.Duration(10 * time.Second), ConsecutiveErrorLimit: &limit},
		{Name: "latency", Template: spec.TemplateLatencyP99, Max: &max, Interval: spec.Duration(30 * time.Second), Provider: spec.ProviderCloudWatch},
	}}
	a.Normalize()
	return &AnalysisInput{Metrics: a.Metrics, Release: "r2", StableRelease: "r1"}
}

// A worker without a provider a metric names refuses the release for good, naming both.
func TestCheckAnalysis_RefusesAMissingProviderForGood(t *testing.T) {
	prom, err := analysis.NewPrometheus(analysis.PrometheusConfig{URL: "http://127.0.0.1:9090"})
	if err != nil {
		t.Fatal(err)
	}
	h := &Health{Providers: analysis.Providers{spec.ProviderPrometheus: prom}}
	in := analysisIn(4)
	if err := h.CheckAnalysis(context.Background(), CheckAnalysisInput{Metrics: in.Metrics[:1]}); err != nil {
		t.Fatalf("a configured provider refused: %v", err)
	}
	err = h.CheckAnalysis(context.Background(), CheckAnalysisInput{Metrics: in.Metrics})
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || !app.NonRetryable() || app.Type() != ErrTypeInvalid || !strings.Contains(err.Error(), `analysis.metrics[1].provider "cloudwatch" (metric latency)`) {
		t.Fatalf("err = %v", err)
	}
}

// Each metric is measured first one interval into the bake, then every interval; a retried bake
// resumes each metric's judgement and schedule from its heartbeat; a provider the worker lacks is
// a provider error, counted toward the metric's consecutive error limit, which ends the bake.
func TestJudging_SchedulesResumesAndStopsOnConsecutiveErrors(t *testing.T) {
	ctx := context.Background()
	in := analysisIn(1)
	j := newJudging(in, Target{APIID: "a", Stage: "prod"}, analysis.Providers{}, nil, 0)
	if due, ok := j.nextDue(); !ok || due != 10*time.Second {
		t.Fatalf("first measurement due at %v, %v; want 10s", due, ok)
	}
	j.measureDue(ctx, 9*time.Second)
	if j.judgements[0].Measured != 0 {
		t.Fatal("measured before its interval")
	}
	j.measureDue(ctx, 10*time.Second)
	if jd := j.judgements[0]; jd.Measured != 1 || jd.Errors != 1 || !strings.Contains(jd.Last.Error, "no prometheus provider") || j.stops() {
		t.Fatalf("after one error: %+v, stops %v", jd, j.stops())
	}
	if due, _ := j.nextDue(); due != 20*time.Second {
		t.Fatalf("next due %v, want 20s", due)
	}

	// A retry resumes from the heartbeat: judgements kept, the schedule from the elapsed time.
	r := newJudging(in, Target{APIID: "a", Stage: "prod"}, analysis.Providers{}, j.judgements, 15*time.Second)
	if r.judgements[0].Errors != 1 || r.next[0] != 20*time.Second || r.next[1] != 30*time.Second {
		t.Fatalf("resumed %+v, next %v", r.judgements[0], r.next)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	r.measureDue(cancelled, 20*time.Second)
	if r.judgements[0].Measured != 1 {
		t.Fatal("a measurement cut short by a cancellation was counted against the provider")
	}
	r.measureDue(ctx, 30*time.Second)
	if jd := r.judgements[0]; jd.Verdict != analysis.Inconclusive || !r.stops() {
		t.Fatalf("after two errors in a row with limit 1: %+v", jd)
	}
	if got := r.concluded(); got[1].Verdict != analysis.Inconclusive || got[1].Measured != 1 {
		t.Fatalf("concluded %+v", got[1])
	}
}
