package workflows_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"

	"github.com/rollgate/rollgate/activities"
	"github.com/rollgate/rollgate/internal/gateway"
	"github.com/rollgate/rollgate/internal/keys"
	"github.com/rollgate/rollgate/internal/spec"
	"github.com/rollgate/rollgate/workflows"
)

// A rollback that revokes the release's tokens flushes the stage's authorizer cache after the
// revocation, once the authorizers' deny lists could have seen it, whether or not the release
// patched the authorizer (whose restore also flushes) and whatever the kind of API.
func TestDeployment_RollbackThatRevokesTokensFlushesTheStageAfterTheRevocation(t *testing.T) {
	httpSpec := testSpec()
	httpSpec.Gateway.Kind = gateway.KindHTTP
	httpSpec.Canary.Steps = httpSpec.Canary.Steps[2:]
	httpSpec.Auth.AuthorizerPatch = map[string]string{"/jwtConfiguration/audience": "orders,orders-v2"}
	unpatched := testSpec()
	unpatched.Auth.AuthorizerPatch = nil
	for name, c := range map[string]struct {
		spec  func() spec.DeploySpec
		stage activities.Target
	}{
		"rest, authorizer patched":  {func() spec.DeploySpec { return testSpec() }, activities.Target{APIID: "abcdefghij", Stage: "prod"}},
		"rest, no authorizer patch": {func() spec.DeploySpec { return unpatched }, activities.Target{APIID: "abcdefghij", Stage: "prod"}},
		"http":                      {func() spec.DeploySpec { return httpSpec }, activities.Target{Kind: gateway.KindHTTP, APIID: "abcdefghij", Stage: "prod"}},
	} {
		t.Run(name, func(t *testing.T) {
			w := &world{failAt: "RecordRelease"}
			env := newEnv(t, w)
			env.ExecuteWorkflow(workflows.Deployment, c.spec())
			if r := result(t, env); r.Outcome != workflows.OutcomeRolledBack {
				t.Fatalf("outcome %s", r.Outcome)
			}
			after := w.after("RevokeTokens")
			if !slices.Contains(after, "FlushAuthorizerCaches") {
				t.Fatalf("no flush after the revocation: calls after it %v", after)
			}
			last := w.flushes[len(w.flushes)-1]
			if !slices.Equal(last.Targets, []activities.Target{c.stage}) {
				t.Fatalf("flushed %+v, want %+v", last.Targets, c.stage)
			}
			if waited := w.flushedAt.Sub(w.revokedAt); waited < 2*time.Second {
				t.Fatalf("flushed %s after the revocation: before the deny lists could refresh", waited)
			}
		})
	}
}

// A release whose new-key tokens are kept on rollback revokes nothing, so it flushes nothing
// beyond the authorizer's restore.
func TestDeployment_RollbackThatKeepsTokensDoesNotFlushForThem(t *testing.T) {
	s := testSpec()
	s.Auth.OnRollback, s.Auth.AuthorizerPatch = "keep", nil
	w := &world{failAt: "RecordRelease"}
	env := newEnv(t, w)
	env.ExecuteWorkflow(workflows.Deployment, s)
	result(t, env)
	if n := w.count("FlushAuthorizerCaches"); n != 0 || w.count("RevokeTokens") != 0 {
		t.Fatalf("%d flushes, %d revocations: %v", n, w.count("RevokeTokens"), w.called())
	}
}

// Rolling back a finished release revokes its tokens and then flushes its stage, also when the
// release never patched the authorizer.
func TestRollback_OfAFinishedReleaseFlushesTheStageAfterRevokingItsTokens(t *testing.T) {
	w := &world{}
	env := newEnv(t, w)
	stage := activities.Target{APIID: "abcdefghij", Stage: "prod"}
	rec := activities.ReleaseRecord{
		ID: "2026-11-24T09:00:00.000000000Z#run1", Service: "orders", Target: stage, DeploymentID: "canary1",
		Snapshot: activities.GatewaySnapshot{Stage: gateway.Stage{DeploymentID: "stable1"}},
		Labels:   keys.Labels{Current: 3, Previous: 2}, Version: 4, Rotated: true,
		Issuer:  activities.Issuer{URL: "https://issuer.example.com", Audiences: []string{"orders"}, Key: activities.KeyRef{Name: "orders-issuer", Type: keys.RSA2048}, Bucket: "issuer"},
		Clients: []string{"billing"}, Reissued: []activities.Issued{{Client: "billing", JTI: "j1", KID: "orders-issuer-v4"}},
		TokenTTL: time.Hour, OnRollback: "revoke",
	}
	env.OnActivity(rel.FindRelease, mock.Anything, mock.Anything).Return(func(context.Context, activities.FindReleaseInput) (activities.ReleaseRecord, error) {
		return rec, nil
	})
	env.ExecuteWorkflow(workflows.Rollback, workflows.RollbackSpec{APIID: "abcdefghij", Stage: "prod", Actor: "ops", Reason: "bad release"})
	var rep workflows.RollbackReport
	if err := env.GetWorkflowResult(&rep); err != nil {
		t.Fatal(err)
	}
	after := w.after("RevokeTokens")
	if !slices.Contains(after, "FlushAuthorizerCaches") || slices.Contains(w.called(), "RestoreAuthorizer") {
		t.Fatalf("calls %v: want a flush after the revocation and no authorizer restore", w.called())
	}
	if !slices.Equal(w.flushes[0].Targets, []activities.Target{stage}) || w.flushedAt.Sub(w.revokedAt) < 2*time.Second {
		t.Fatalf("flushed %+v %s after the revocation", w.flushes, w.flushedAt.Sub(w.revokedAt))
	}
}
