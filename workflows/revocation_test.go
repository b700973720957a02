package workflows_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/rollgate/rollgate/activities"
	"github.com/rollgate/rollgate/internal/keys"
	"github.com/rollgate/rollgate/internal/registry"
	"github.com/rollgate/rollgate/workflows"
)

// revocationFakes stands in for the registry, Vault, the gateway and the release history of a
// revocation, and records what the workflow asked of them, in order.
type revocationFakes struct {
	mu      sync.Mutex
	rule    activities.RuleInput
	samples []activities.SampleInput
	flushes []activities.FlushInput
	calls   []string
	at      map[string]time.Time // workflow time of each activity's first call
	// stages is what the release history answers; flush is the flush activity's answer.
	stages activities.IssuerStages
	flush  func(activities.FlushInput) (activities.FlushResult, error)
}

func (w *revocationFakes) record(env *testsuite.TestWorkflowEnvironment, name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls = append(w.calls, name)
	if _, ok := w.at[name]; !ok {
		w.at[name] = env.Now()
	}
}

func revocationEnv(t *testing.T) (*testsuite.TestWorkflowEnvironment, *revocationFakes) {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(workflows.TokenRevocation)
	env.RegisterActivity(tokA)
	env.RegisterActivity(keysA)
	env.RegisterActivity(health)
	env.RegisterActivity(gw)
	env.RegisterActivity(rel)
	w := &revocationFakes{at: map[string]time.Time{}}
	w.flush = func(in activities.FlushInput) (activities.FlushResult, error) {
		return activities.FlushResult{Flushed: in.Targets}, nil
	}
	env.OnActivity(tokA.RevokeByRule, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.RuleInput) error {
		w.record(env, "RevokeByRule")
		w.rule = in
		return nil
	})
	env.OnActivity(tokA.RevokeTokens, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.RevokeInput) (int, error) {
		w.record(env, "RevokeTokens")
		return len(in.JTIs), nil
	})
	env.OnActivity(keysA.ReadLabels, mock.Anything, mock.Anything).Return(keys.Labels{Current: 7}, nil)
	env.OnActivity(health.StashSample, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.SampleInput) (string, error) {
		w.record(env, "StashSample")
		w.samples = append(w.samples, in)
		return "sample-jti", nil
	})
	env.OnActivity(health.ProbeRejected, mock.Anything, mock.Anything).Return(func(context.Context, activities.StashedInput) (int, error) {
		w.record(env, "ProbeRejected")
		return 1, nil
	})
	env.OnActivity(rel.IssuerStages, mock.Anything, mock.Anything).Return(func(context.Context, activities.IssuerStagesInput) (activities.IssuerStages, error) {
		w.record(env, "IssuerStages")
		return w.stages, nil
	})
	env.OnActivity(gw.FlushAuthorizerCaches, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.FlushInput) (activities.FlushResult, error) {
		w.record(env, "FlushAuthorizerCaches")
		w.flushes = append(w.flushes, in)
		return w.flush(in)
	})
	return env, w
}

var revIssuer = activities.Issuer{URL: "https://issuer.example.com", Audiences: []string{"orders"}, Key: activities.KeyRef{Name: "orders-issuer", Type: keys.RSA2048}}

func TestTokenRevocation_ByKIDRevokesForeverAndSignsTheSampleWithThatVersion(t *testing.T) {
	env, w := revocationEnv(t)
	env.ExecuteWorkflow(workflows.TokenRevocation, workflows.RevocationSpec{Issuer: revIssuer, KID: "orders-issuer-v3", Actor: "sec", Reason: "key leaked", Proof: &activities.Target{APIID: "abcdefghij", Stage: "prod"}})
	var rep workflows.RevocationReport
	if err := env.GetWorkflowResult(&rep); err != nil {
		t.Fatal(err)
	}
	if w.rule.Scope != registry.ByKID || w.rule.Value != "orders-issuer-v3" || !w.rule.Before.Equal(registry.Forever) || !strings.Contains(w.rule.Reason, "sec") {
		t.Fatalf("rule %+v", w.rule)
	}
	if len(w.samples) != 1 || w.samples[0].Version != 3 || !rep.Proven {
		t.Fatalf("samples %+v, report %+v", w.samples, rep)
	}
}

func TestTokenRevocation_RefusesAmbiguousOrAnonymousRequests(t *testing.T) {
	for name, in := range map[string]workflows.RevocationSpec{
		"two selectors": {Issuer: revIssuer, Subject: "a", KID: "orders-issuer-v1", Actor: "sec", Reason: "x"},
		"no selector":   {Issuer: revIssuer, Actor: "sec", Reason: "x"},
		"no actor":      {Issuer: revIssuer, Subject: "a", Reason: "x"},
		"no issuer":     {JTIs: []string{"j"}, Actor: "sec", Reason: "x"},
	} {
		env, _ := revocationEnv(t)
		env.ExecuteWorkflow(workflows.TokenRevocation, in)
		var app *temporal.ApplicationError
		if err := env.GetWorkflowError(); !errors.As(err, &app) || app.Type() != workflows.ErrInvalidSpec {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestTokenRevocation_PastCutOffRevokesWithoutASample(t *testing.T) {
	env, w := revocationEnv(t)
	cut := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	env.ExecuteWorkflow(workflows.TokenRevocation, workflows.RevocationSpec{Issuer: revIssuer, IssuedBefore: cut, Actor: "sec", Reason: "incident", Proof: &activities.Target{APIID: "abcdefghij", Stage: "prod"}})
	var rep workflows.RevocationReport
	if err := env.GetWorkflowResult(&rep); err != nil {
		t.Fatal(err)
	}
	if w.rule.Scope != registry.ByIssuer || !w.rule.Before.Equal(cut) || len(w.samples) != 0 || rep.Proven || rep.Note == "" {
		t.Fatalf("rule %+v, samples %d, report %+v", w.rule, len(w.samples), rep)
	}
}

func revocationReport(t *testing.T, env *testsuite.TestWorkflowEnvironment) workflows.RevocationReport {
	t.Helper()
	var rep workflows.RevocationReport
	if err := env.GetWorkflowResult(&rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

// The named stages and the proof stage are flushed once, in a fixed order, after the revocation
// is written and the authorizers' deny lists could refresh, and before the proof.
func TestTokenRevocation_FlushesTheNamedAndProofStagesAfterTheRevocationBeforeTheProof(t *testing.T) {
	env, w := revocationEnv(t)
	in := revocationInput()
	in.Flush = []activities.Target{{APIID: "bbbbbbbbbb", Stage: "prod"}, {Kind: "http", APIID: "cccccccccc", Stage: "live"}, {Kind: "rest", APIID: "abcdefghij", Stage: "prod"}}
	in.FlushAfter = 2 * time.Second
	env.ExecuteWorkflow(workflows.TokenRevocation, in)
	rep := revocationReport(t, env)
	if want := []string{"StashSample", "RevokeByRule", "FlushAuthorizerCaches", "ProbeRejected"}; !slices.Equal(w.calls, want) {
		t.Fatalf("calls %v, want %v", w.calls, want)
	}
	want := []activities.Target{{APIID: "abcdefghij", Stage: "prod"}, {APIID: "bbbbbbbbbb", Stage: "prod"}, {Kind: "http", APIID: "cccccccccc", Stage: "live"}}
	if len(w.flushes) != 1 || !slices.Equal(w.flushes[0].Targets, want) || !slices.Equal(rep.Flushed, want) {
		t.Fatalf("flushed %+v, report %+v, want %+v", w.flushes, rep.Flushed, want)
	}
	if waited := w.at["FlushAuthorizerCaches"].Sub(w.at["RevokeByRule"]); waited < in.FlushAfter {
		t.Fatalf("flushed %s after the revocation, want at least FlushAfter (%s)", waited, in.FlushAfter)
	}
	if rep.FlushError != "" || !rep.Proven {
		t.Fatalf("report %+v", rep)
	}
}

// By default a revocation reaches every stage whose latest release used the issuer: the release
// history is read after the revocation is written, and its stages flushed.
func TestTokenRevocation_FlushesEveryStageTheReleaseHistoryRecordsForTheIssuer(t *testing.T) {
	env, w := revocationEnv(t)
	w.stages = activities.IssuerStages{Stages: []activities.Target{{APIID: "zzzzzzzzzz", Stage: "prod"}, {APIID: "abcdefghij", Stage: "prod"}}}
	in := revocationInput()
	in.Proof, in.FlushIssuerStages = nil, true
	env.ExecuteWorkflow(workflows.TokenRevocation, in)
	rep := revocationReport(t, env)
	if want := []string{"RevokeByRule", "IssuerStages", "FlushAuthorizerCaches"}; !slices.Equal(w.calls, want) {
		t.Fatalf("calls %v, want %v", w.calls, want)
	}
	if want := []activities.Target{{APIID: "abcdefghij", Stage: "prod"}, {APIID: "zzzzzzzzzz", Stage: "prod"}}; !slices.Equal(rep.Flushed, want) {
		t.Fatalf("flushed %+v, want %+v", rep.Flushed, want)
	}
}

// Without a stage to flush (no proof, none named, the history not asked) nothing is flushed.
func TestTokenRevocation_WithoutStagesFlushesNothing(t *testing.T) {
	env, w := revocationEnv(t)
	in := revocationInput()
	in.Proof = nil
	env.ExecuteWorkflow(workflows.TokenRevocation, in)
	if rep := revocationReport(t, env); len(rep.Flushed) != 0 || !slices.Equal(w.calls, []string{"RevokeByRule"}) {
		t.Fatalf("calls %v, report %+v", w.calls, rep)
	}
}

// A stage that no longer exists is reported and the others flushed; a flush that keeps failing
// is reported too, and neither undoes or fails the revocation already written.
func TestTokenRevocation_AStageGoneOrAFlushFailingIsReportedNotFatal(t *testing.T) {
	gone := activities.Target{APIID: "gonegonego", Stage: "prod"}
	t.Run("gone", func(t *testing.T) {
		env, w := revocationEnv(t)
		w.flush = func(in activities.FlushInput) (activities.FlushResult, error) {
			return activities.FlushResult{Flushed: in.Targets[:1], Skipped: []activities.SkippedFlush{{Target: gone, Reason: "not found"}}}, nil
		}
		in := revocationInput()
		in.Flush = []activities.Target{gone}
		env.ExecuteWorkflow(workflows.TokenRevocation, in)
		rep := revocationReport(t, env)
		if len(rep.FlushSkipped) != 1 || rep.FlushSkipped[0].Target != gone || rep.FlushError != "" || !rep.Proven {
			t.Fatalf("report %+v", rep)
		}
	})
	t.Run("failing", func(t *testing.T) {
		env, w := revocationEnv(t)
		w.flush = func(activities.FlushInput) (activities.FlushResult, error) {
			return activities.FlushResult{}, errors.New("TooManyRequestsException")
		}
		env.ExecuteWorkflow(workflows.TokenRevocation, revocationInput())
		rep := revocationReport(t, env)
		if !strings.Contains(rep.FlushError, "TooManyRequests") || !rep.Proven || w.rule.Value != "billing" {
			t.Fatalf("report %+v", rep)
		}
		if n := slices.Index(w.calls, "ProbeRejected"); n < 0 || strings.Count(strings.Join(w.calls, " "), "FlushAuthorizerCaches") < 2 {
			t.Fatalf("the flush was not retried before the proof: %v", w.calls)
		}
	})
}
