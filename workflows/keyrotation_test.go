package workflows_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/rollgate/rollgate/activities"
	"github.com/rollgate/rollgate/internal/keys"
	"github.com/rollgate/rollgate/workflows"
)

func rotationSpec() workflows.KeyRotationSpec {
	return workflows.KeyRotationSpec{
		Issuer:  activities.Issuer{URL: "https://issuer.example.com", Audiences: []string{"orders"}, Bucket: "issuer", Key: activities.KeyRef{Name: "orders-issuer", Type: keys.RSA2048}, CacheTTL: 5 * time.Minute},
		Clients: []string{"billing"}, TokenTTL: time.Hour, Probe: &activities.Target{APIID: "abcdefghij", Stage: "prod"},
		Actor: "sec", Reason: "quarterly rotation",
	}
}

// retirements counts the KeyRetirement child workflows a run starts.
func retirements(env *testsuite.TestWorkflowEnvironment) *int {
	n := new(int)
	env.SetOnChildWorkflowStartedListener(func(info *workflow.Info, _ workflow.Context, _ converter.EncodedValues) {
		if info.WorkflowType.Name == "KeyRetirement" {
			*n++
		}
	})
	return n
}

func TestKeyRotation_PublishesWaitsSwitchesReissuesAndSchedulesRetirement(t *testing.T) {
	w := &world{}
	env := newEnv(t, w)
	env.RegisterWorkflow(workflows.KeyRotation)
	retired := retirements(env)
	env.ExecuteWorkflow(workflows.KeyRotation, rotationSpec())
	if *retired != 1 {
		t.Fatalf("%d retirements scheduled, want 1", *retired)
	}
	var res workflows.KeyRotationResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	want := []string{"SnapshotKey", "PrepareKey", "PublishJWKS", "Probe", "PromoteLabels", "ReissueTokens", "ProbeClients"}
	if got := w.called(); !slices.Equal(got, want) || res.Outcome != workflows.OutcomePromoted || res.Previous != 3 || res.Current != 4 {
		t.Fatalf("calls %v, result %+v", got, res)
	}
}

func TestKeyRotation_FailureAfterTheSwitch_RestoresLabelsJWKSAndTokens(t *testing.T) {
	w := &world{failAt: "ProbeClients"}
	env := newEnv(t, w)
	env.RegisterWorkflow(workflows.KeyRotation)
	env.ExecuteWorkflow(workflows.KeyRotation, rotationSpec())
	var res workflows.KeyRotationResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if res.Outcome != workflows.OutcomeRolledBack || !res.Rollback.Verified ||
		!slices.Equal(stepNames(res.Rollback), []string{"reissue tokens with the previous key", "republish the snapshot JWKS", "restore key labels", "flush the authorizer cache"}) {
		t.Fatalf("result %+v, report %+v", res, res.Rollback)
	}
	if w.count("VerifyRestored") != 0 {
		t.Fatal("a key rotation compared a stage it never changed")
	}
}

func TestKeyRotation_NotifiesTheNamedWebhook(t *testing.T) {
	for _, c := range []struct {
		failAt string
		want   []string
	}{
		{"", []string{"key orders-issuer rotated: version 4 signs"}},
		{"ProbeClients", []string{"rotation of orders-issuer failed, rolling back", "rotation of orders-issuer rolled back"}},
	} {
		w := &world{failAt: c.failAt}
		env := newEnv(t, w)
		env.RegisterWorkflow(workflows.KeyRotation)
		in := rotationSpec()
		in.Notify = "security"
		env.ExecuteWorkflow(workflows.KeyRotation, in)
		if err := env.GetWorkflowError(); err != nil {
			t.Fatal(err)
		}
		if len(w.notes) != len(c.want) {
			t.Fatalf("failing at %q: notifications %q", c.failAt, w.notes)
		}
		// Notifications are sent without waiting (a slow webhook never delays a rollback), so
		// they may be delivered in any order.
		for _, want := range c.want {
			if !slices.ContainsFunc(w.notes, func(n string) bool { return strings.HasPrefix(n, want) }) {
				t.Fatalf("failing at %q: no notification %q… among %q", c.failAt, want, w.notes)
			}
		}
	}
}

func TestKeyRotation_FailureAtEachStep_CompensatesCompletedStepsInReverse(t *testing.T) {
	labels, jwks, reissue, flush := "restore key labels", "republish the snapshot JWKS", "reissue tokens with the previous key", "flush the authorizer cache"
	for _, tc := range []struct {
		failAt   string
		want     []string
		verified bool
	}{
		{"SnapshotKey", nil, true},
		{"PrepareKey", nil, true},
		{"PublishJWKS", []string{labels}, true},
		// The gateway keeps failing every probe, so the verification says the rollback is not
		// proven rather than claiming it.
		{"Probe", []string{jwks, labels}, false},
		{"PromoteLabels", []string{jwks, labels}, true},
		{"ReissueTokens", []string{jwks, labels}, true},
		// The reissued tokens are revoked: the probe stage's cache is flushed last.
		{"ProbeClients", []string{reissue, jwks, labels, flush}, true},
	} {
		t.Run(tc.failAt, func(t *testing.T) {
			w := &world{failAt: tc.failAt}
			env := newEnv(t, w)
			env.RegisterWorkflow(workflows.KeyRotation)
			retired := retirements(env)
			env.ExecuteWorkflow(workflows.KeyRotation, rotationSpec())
			var res workflows.KeyRotationResult
			if err := env.GetWorkflowResult(&res); err != nil {
				t.Fatal(err)
			}
			if res.Outcome != workflows.OutcomeRolledBack || res.Rollback == nil || (tc.failAt != "SnapshotKey" && res.Current != 3) {
				t.Fatalf("outcome %s, signing with v%d, report %+v", res.Outcome, res.Current, res.Rollback)
			}
			if got := stepNames(res.Rollback); !slices.Equal(got, tc.want) {
				t.Fatalf("compensations\n got %v\nwant %v", got, tc.want)
			}
			if res.Rollback.Trigger != "activity-failure" || res.Rollback.Verified != tc.verified || !strings.Contains(res.Rollback.Reason, tc.failAt) {
				t.Fatalf("report %+v", res.Rollback)
			}
			if *retired != 0 {
				t.Fatalf("a rolled-back rotation scheduled %d retirements", *retired)
			}
		})
	}
}
