package workflows_test

import (
	"context"
	"errors"
	"strings"
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

func revocationEnv(t *testing.T) (*testsuite.TestWorkflowEnvironment, *activities.RuleInput, *[]activities.SampleInput) {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(workflows.TokenRevocation)
	env.RegisterActivity(tokA)
	env.RegisterActivity(keysA)
	env.RegisterActivity(health)
	rule := &activities.RuleInput{}
	samples := &[]activities.SampleInput{}
	env.OnActivity(tokA.RevokeByRule, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.RuleInput) error { *rule = in; return nil })
	env.OnActivity(tokA.RevokeTokens, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.RevokeInput) (int, error) { return len(in.JTIs), nil })
	env.OnActivity(keysA.ReadLabels, mock.Anything, mock.Anything).Return(keys.Labels{Current: 7}, nil)
	env.OnActivity(health.StashSample, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.SampleInput) (string, error) {
		*samples = append(*samples, in)
		return "sample-jti", nil
	})
	env.OnActivity(health.ProbeRejected, mock.Anything, mock.Anything).Return(1, nil)
	return env, rule, samples
}

var revIssuer = activities.Issuer{URL: "https://issuer.example.com", Audiences: []string{"orders"}, Key: activities.KeyRef{Name: "orders-issuer", Type: keys.RSA2048}}

func TestTokenRevocation_ByKIDRevokesForeverAndSignsTheSampleWithThatVersion(t *testing.T) {
	env, rule, samples := revocationEnv(t)
	env.ExecuteWorkflow(workflows.TokenRevocation, workflows.RevocationSpec{Issuer: revIssuer, KID: "orders-issuer-v3", Actor: "sec", Reason: "key leaked", Proof: &activities.Target{APIID: "abcdefghij", Stage: "prod"}})
	var rep workflows.RevocationReport
	if err := env.GetWorkflowResult(&rep); err != nil {
		t.Fatal(err)
	}
	if rule.Scope != registry.ByKID || rule.Value != "orders-issuer-v3" || !rule.Before.Equal(registry.Forever) || !strings.Contains(rule.Reason, "sec") {
		t.Fatalf("rule %+v", rule)
	}
	if len(*samples) != 1 || (*samples)[0].Version != 3 || !rep.Proven {
		t.Fatalf("samples %+v, report %+v", *samples, rep)
	}
}

func TestTokenRevocation_RefusesAmbiguousOrAnonymousRequests(t *testing.T) {
	for name, in := range map[string]workflows.RevocationSpec{
		"two selectors": {Issuer: revIssuer, Subject: "a", KID: "orders-issuer-v1", Actor: "sec", Reason: "x"},
		"no selector":   {Issuer: revIssuer, Actor: "sec", Reason: "x"},
		"no actor":      {Issuer: revIssuer, Subject: "a", Reason: "x"},
		"no issuer":     {JTIs: []string{"j"}, Actor: "sec", Reason: "x"},
	} {
		env, _, _ := revocationEnv(t)
		env.ExecuteWorkflow(workflows.TokenRevocation, in)
		var app *temporal.ApplicationError
		if err := env.GetWorkflowError(); !errors.As(err, &app) || app.Type() != workflows.ErrInvalidSpec {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestTokenRevocation_PastCutOffRevokesWithoutASample(t *testing.T) {
	env, rule, samples := revocationEnv(t)
	cut := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	env.ExecuteWorkflow(workflows.TokenRevocation, workflows.RevocationSpec{Issuer: revIssuer, IssuedBefore: cut, Actor: "sec", Reason: "incident", Proof: &activities.Target{APIID: "abcdefghij", Stage: "prod"}})
	var rep workflows.RevocationReport
	if err := env.GetWorkflowResult(&rep); err != nil {
		t.Fatal(err)
	}
	if rule.Scope != registry.ByIssuer || !rule.Before.Equal(cut) || len(*samples) != 0 || rep.Proven || rep.Note == "" {
		t.Fatalf("rule %+v, samples %d, report %+v", rule, len(*samples), rep)
	}
}
