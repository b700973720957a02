package workflows_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/rollgate/rollgate/activities"
	"github.com/rollgate/rollgate/internal/analysis"
	"github.com/rollgate/rollgate/internal/gateway"
	"github.com/rollgate/rollgate/internal/keys"
	"github.com/rollgate/rollgate/internal/spec"
	"github.com/rollgate/rollgate/workflows"
)

var (
	gw     *activities.Gateway
	keysA  *activities.Keys
	tokA   *activities.Tokens
	health *activities.Health
	notify *activities.Notify
	rel    *activities.Releases
)

func testSpec() spec.DeploySpec {
	s := spec.DeploySpec{
		Service: "orders",
		Gateway: spec.Gateway{Kind: "rest", APIID: "abcdefghij", Stage: "prod"},
		Release: spec.Release{Variables: map[string]string{"backendUrl": "http://127.0.0.1:8080/v2"}},
		Auth: spec.Auth{
			AuthorizerID: "auth01", Issuer: "https://issuer.example.com", Audiences: []string{"orders"},
			JWKSBucket: "issuer", TransitKey: "orders-issuer", RotateKey: true,
			TokenTTL: spec.Duration(time.Hour), VerifierCacheTTL: spec.Duration(5 * time.Minute), Clients: []string{"billing", "shipping"},
			AuthorizerPatch: map[string]string{"/authorizerResultTtlInSeconds": "60"},
		},
		Canary: spec.Canary{
			Steps:         []spec.Step{{Weight: 10, Bake: spec.Duration(time.Hour)}, {Weight: 50, Bake: spec.Duration(time.Hour)}, {Weight: 100, Bake: spec.Duration(10 * time.Minute)}},
			ProbeInterval: spec.Duration(10 * time.Second), MaxRejectionRatio: 0.01, Max5xxRatio: 0.01, MinProbes: 5, AutoRollback: true,
		},
	}
	return s
}

// world stands in for the gateway, Vault and the registry: every mocked activity records its
// name, and a test can make one of them fail.
type world struct {
	mu     sync.Mutex
	calls  []string
	failAt string // activity name that fails with a non-retryable error
	breach bool   // bakes report a health breach
	// verifyOutage is how many probes fail, once a rollback began, as they do while the registry
	// they mint tokens in is unreachable.
	verifyOutage int
	// sealedProbes and sealedBakes are how many probes (once the key rotated) and bakes fail as
	// they do while Vault, which signs their tokens, is sealed.
	sealedProbes, sealedBakes int
	block                     bool // bakes block until cancelled
	notes                     []string
	send                      func(context.Context, activities.NotifyInput) error // the webhook's answer; nil: delivered
	logs                      *syncBuffer                                         // the workflow's log
	canary                    activities.CanaryInput                              // what StartCanary was asked last
	runID                     string                                              // the run StartCanary was called from
	// retirements are the KeyRetirement workflows scheduled.
	retirements []workflows.KeyRetirementInput
	// flushes are the authorizer cache flushes asked for; revokedAt and flushedAt the workflow
	// times of the last revocation and flush.
	flushes              []activities.FlushInput
	revokedAt, flushedAt time.Time
	// judge gives the analysis judgements of the n-th bake (1-based); bakes is what each bake
	// was asked.
	judge func(n int, in activities.BakeInput) []analysis.Judgement
	bakes []activities.BakeInput
}

func (w *world) record(name string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls = append(w.calls, name)
	if name == w.failAt {
		return temporal.NewNonRetryableApplicationError("injected failure in "+name, "Injected", nil)
	}
	return nil
}

// sealed says whether Vault refuses to sign now, counting the refusal in left.
func (w *world) sealed(left *int) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if *left == 0 {
		return false
	}
	*left--
	return true
}

// errSealed is what an activity returns when Vault is sealed: retryable, as the activities
// classify a 503.
var errSealed = temporal.NewApplicationError("sign with orders-issuer v3: Code: 503. Errors: * Vault is sealed", "ResponseError")

// outage says whether a probe fails now, counting it.
func (w *world) outage() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.verifyOutage == 0 {
		return false
	}
	w.verifyOutage--
	return true
}

func (w *world) called() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.calls)
}

func (w *world) count(name string) int {
	n := 0
	for _, c := range w.called() {
		if c == name {
			n++
		}
	}
	return n
}

// after returns the calls made after the first call named name.
func (w *world) after(name string) []string {
	calls := w.called()
	i := slices.Index(calls, name)
	if i < 0 {
		return nil
	}
	return calls[i+1:]
}

func newEnv(t *testing.T, w *world) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	logs := &syncBuffer{}
	w.logs = logs
	suite.SetLogger(tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))))
	t.Cleanup(func() {
		if t.Failed() {
			// A test's webhook secret is "s3cr3t": shown where it leaked, never printed.
			t.Logf("workflow log:\n%s", strings.ReplaceAll(logs.String(), "s3cr3t", "<SECRET>"))
		}
	})
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(workflows.Deployment)
	env.RegisterWorkflow(workflows.KeyRetirement)
	env.RegisterActivity(gw)
	env.RegisterActivity(keysA)
	env.RegisterActivity(tokA)
	env.RegisterActivity(health)
	env.RegisterActivity(notify)
	env.RegisterActivity(rel)
	env.RegisterWorkflow(workflows.Rollback)
	snapshot := activities.GatewaySnapshot{
		Stage:      gateway.Stage{DeploymentID: "stable1", Variables: map[string]string{"backendUrl": "http://127.0.0.1:8080/v1"}},
		Authorizer: gateway.Authorizer{ID: "auth01", Settings: map[string]string{"/authorizerResultTtlInSeconds": "300"}},
	}
	labels := keys.Labels{Current: 3, Previous: 2}
	env.OnActivity(gw.SnapshotGateway, mock.Anything, mock.Anything).Return(func(context.Context, activities.SnapshotInput) (activities.GatewaySnapshot, error) {
		return snapshot, w.record("SnapshotGateway")
	})
	env.OnActivity(keysA.SnapshotKey, mock.Anything, mock.Anything).Return(func(context.Context, activities.KeyRef) (activities.KeyState, error) {
		return activities.KeyState{Latest: 3, Labels: labels}, w.record("SnapshotKey")
	})
	env.OnActivity(keysA.PrepareKey, mock.Anything, mock.Anything).Return(func(context.Context, activities.PrepareInput) (int, error) {
		return 4, w.record("PrepareKey")
	})
	env.OnActivity(keysA.PromoteLabels, mock.Anything, mock.Anything).Return(func(context.Context, activities.LabelInput) (keys.Labels, error) {
		return keys.Labels{Current: 4, Previous: 3}, w.record("PromoteLabels")
	})
	env.OnActivity(keysA.RestoreLabels, mock.Anything, mock.Anything).Return(func(context.Context, activities.RestoreLabelsInput) error {
		return w.record("RestoreLabels")
	})
	env.OnActivity(keysA.ReadLabels, mock.Anything, mock.Anything).Return(func(context.Context, string) (keys.Labels, error) {
		return labels, w.record("ReadLabels")
	})
	env.OnActivity(tokA.PublishJWKS, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.PublishInput) ([]string, error) {
		if slices.Equal(in.Versions, labels.Published()) {
			return nil, w.record("PublishJWKS(snapshot)")
		}
		return nil, w.record("PublishJWKS")
	})
	env.OnActivity(tokA.ReissueTokens, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ReissueInput) ([]activities.Issued, error) {
		if in.Version == labels.Current {
			return nil, w.record("ReissueTokens(previous)")
		}
		return []activities.Issued{{Client: "billing", JTI: "j1", KID: "orders-issuer-v4"}, {Client: "shipping", JTI: "j2", KID: "orders-issuer-v4"}}, w.record("ReissueTokens")
	})
	env.OnActivity(tokA.RevokeTokens, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.RevokeInput) (int, error) {
		w.mu.Lock()
		w.revokedAt = env.Now()
		w.mu.Unlock()
		return len(in.JTIs), w.record("RevokeTokens")
	})
	env.OnActivity(gw.FlushAuthorizerCaches, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.FlushInput) (activities.FlushResult, error) {
		w.mu.Lock()
		w.flushes, w.flushedAt = append(w.flushes, in), env.Now()
		w.mu.Unlock()
		return activities.FlushResult{Flushed: in.Targets}, w.record("FlushAuthorizerCaches")
	})
	env.OnActivity(gw.ApplyAuthorizer, mock.Anything, mock.Anything).Return(func(context.Context, activities.AuthorizerInput) (bool, error) {
		return true, w.record("ApplyAuthorizer")
	})
	env.OnActivity(gw.RestoreAuthorizer, mock.Anything, mock.Anything).Return(func(context.Context, activities.RestoreInput) error {
		return w.record("RestoreAuthorizer")
	})
	env.OnActivity(gw.StartCanary, mock.Anything, mock.Anything).Return(func(ctx context.Context, in activities.CanaryInput) (string, error) {
		w.mu.Lock()
		w.canary, w.runID = in, activity.GetInfo(ctx).WorkflowExecution.RunID
		w.mu.Unlock()
		return "canary1", w.record("StartCanary")
	})
	env.OnActivity(gw.SetCanaryWeight, mock.Anything, mock.Anything).Return(func(context.Context, activities.WeightInput) error {
		return w.record("SetCanaryWeight")
	})
	env.OnActivity(gw.PromoteCanary, mock.Anything, mock.Anything).Return(func(context.Context, activities.PromoteInput) error {
		return w.record("PromoteCanary")
	})
	env.OnActivity(gw.RestoreStage, mock.Anything, mock.Anything).Return(func(context.Context, activities.RestoreInput) error {
		return w.record("RestoreStage")
	})
	env.OnActivity(gw.VerifyRestored, mock.Anything, mock.Anything).Return(func(context.Context, activities.RestoreInput) ([]string, error) {
		return nil, w.record("VerifyRestored")
	})
	healthy := activities.ProbeResult{Probes: 6, Accepted: 6}
	env.OnActivity(health.Probe, mock.Anything, mock.Anything).Return(func(context.Context, activities.ProbeInput) (activities.ProbeResult, error) {
		if w.count("RestoreStage") > 0 && w.outage() {
			return activities.ProbeResult{}, temporal.NewApplicationError("batch write rollgate-tokens: connection refused", "Unavailable")
		}
		if w.count("PrepareKey") > 0 && w.sealed(&w.sealedProbes) {
			return activities.ProbeResult{}, errSealed
		}
		return healthy, w.record("Probe")
	})
	env.OnActivity(health.CheckAnalysis, mock.Anything, mock.Anything).Return(func(context.Context, activities.CheckAnalysisInput) error {
		return w.record("CheckAnalysis")
	})
	env.OnActivity(health.MeasureBaseline, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.AnalysisInput) ([]analysis.Observation, error) {
		out := make([]analysis.Observation, len(in.Metrics))
		for i := range out {
			out[i] = analysis.Observation{Canary: analysis.Measurement{Value: 0.001, Samples: 5000, HasData: true}}
		}
		return out, w.record("MeasureBaseline")
	})
	env.OnActivity(health.ProbeClients, mock.Anything, mock.Anything).Return(func(context.Context, activities.ClientsInput) (activities.ProbeResult, error) {
		return activities.ProbeResult{Probes: 2, Accepted: 2}, w.record("ProbeClients")
	})
	env.OnActivity(health.ProbeRevoked, mock.Anything, mock.Anything).Return(func(context.Context, activities.ProbeInput) (bool, error) {
		return true, w.record("ProbeRevoked")
	})
	env.OnActivity(health.Bake, mock.Anything, mock.Anything).Return(func(ctx context.Context, in activities.BakeInput) (activities.BakeResult, error) {
		if w.sealed(&w.sealedBakes) {
			return activities.BakeResult{}, errSealed
		}
		if err := w.record("Bake"); err != nil {
			return activities.BakeResult{}, err
		}
		if w.block {
			for ctx.Err() == nil {
				activity.RecordHeartbeat(ctx, nil)
				time.Sleep(5 * time.Millisecond)
			}
			return activities.BakeResult{}, ctx.Err()
		}
		if w.judge != nil {
			w.mu.Lock()
			w.bakes = append(w.bakes, in)
			n := len(w.bakes)
			w.mu.Unlock()
			return activities.BakeResult{ProbeResult: activities.ProbeResult{Probes: 360, Accepted: 360}, Analysis: w.judge(n, in)}, nil
		}
		if w.breach {
			return activities.BakeResult{ProbeResult: activities.ProbeResult{Probes: 10, Accepted: 5, Rejected: 5}, Breach: "rejection ratio 0.500 over 0.010 (5 of 10 probes)"}, nil
		}
		return activities.BakeResult{ProbeResult: activities.ProbeResult{Probes: 360, Accepted: 360}}, nil
	})
	env.OnActivity(notify.Send, mock.Anything, mock.Anything).Return(func(ctx context.Context, in activities.NotifyInput) error {
		w.mu.Lock()
		w.notes = append(w.notes, in.Text)
		w.mu.Unlock()
		if err := w.record("Send"); err != nil || w.send == nil {
			return err
		}
		return w.send(ctx, in)
	})
	env.OnActivity(rel.RecordRelease, mock.Anything, mock.Anything).Return(func(context.Context, activities.ReleaseRecord) error {
		return w.record("RecordRelease")
	})
	env.OnWorkflow(workflows.KeyRetirement, mock.Anything, mock.Anything).Return(func(_ workflow.Context, in workflows.KeyRetirementInput) error {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.retirements = append(w.retirements, in)
		return nil
	})
	return env
}

// syncBuffer keeps the workflow's log for a failing test; the test environment logs from its own
// goroutines, possibly after the test has returned.
type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func result(t *testing.T, env *testsuite.TestWorkflowEnvironment) workflows.DeployResult {
	t.Helper()
	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	var r workflows.DeployResult
	if err := env.GetWorkflowResult(&r); err != nil {
		var canceled *temporal.CanceledError
		if errors.As(err, &canceled) && canceled.HasDetails() {
			if err := canceled.Details(&r); err != nil {
				t.Fatal(err)
			}
			return r
		}
		t.Fatalf("workflow failed: %v", err)
	}
	return r
}

func stepNames(r *workflows.RollbackReport) []string {
	var out []string
	for _, s := range r.Steps {
		out = append(out, s.Name)
	}
	return out
}

func TestDeployment_HappyPath_PromotesRotatesAndReissues(t *testing.T) {
	w := &world{}
	env := newEnv(t, w)
	env.ExecuteWorkflow(workflows.Deployment, testSpec())
	r := result(t, env)
	if r.Outcome != workflows.OutcomePromoted || r.KeyVersion != 4 || r.ReleaseDeploymentID != "canary1" || len(r.Reissued) != 2 || r.Rollback != nil {
		t.Fatalf("result %+v", r)
	}
	want := []string{"SnapshotGateway", "SnapshotKey", "Probe", "PrepareKey", "PublishJWKS", "ApplyAuthorizer", "Probe",
		"StartCanary", "Probe", "Bake", "SetCanaryWeight", "Probe", "Bake", "SetCanaryWeight", "Probe", "Bake",
		"PromoteCanary", "PromoteLabels", "Probe", "ReissueTokens", "ProbeClients", "RecordRelease"}
	if got := w.called(); !slices.Equal(got, want) {
		t.Fatalf("calls\n got %v\nwant %v", got, want)
	}
	var st workflows.Status
	v, err := env.QueryWorkflow(workflows.QueryStatus)
	if err != nil || v.Get(&st) != nil || st.Phase != workflows.PhasePromoted || st.Weight != 100 || len(st.Timeline) == 0 {
		t.Fatalf("status %+v, %v", st, err)
	}
}

// The canary's stage variables carry the release's label (the run id) under the spec's release
// variable, beside the release's own variables; a label the spec sets itself is kept.
func TestDeployment_CanaryCarriesTheReleaseLabelForTheAuthorizer(t *testing.T) {
	cases := []struct {
		name      string
		variable  string
		own       string // a value the spec sets for the variable itself
		wantName  string
		wantLabel string
	}{
		{"default variable", "", "", "rollgateRelease", "run id"},
		{"configured variable", "release_label", "", "release_label", "run id"},
		{"the spec names the label", "", "orders-2026-12", "rollgateRelease", "orders-2026-12"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := &world{}
			env := newEnv(t, w)
			s := testSpec()
			s.Gateway.ReleaseVariable = c.variable
			s.Release.Variables = map[string]string{"backendUrl": "http://127.0.0.1:8080/v2"}
			if c.own != "" {
				s.Release.Variables[c.wantName] = c.own
			}
			env.ExecuteWorkflow(workflows.Deployment, s)
			r := result(t, env)
			var st workflows.Status
			if v, err := env.QueryWorkflow(workflows.QueryStatus); err != nil || v.Get(&st) != nil {
				t.Fatalf("status: %v", err)
			}
			want := c.wantLabel
			if want == "run id" {
				want = w.runID
			}
			got := w.canary.Variables
			if r.Outcome != workflows.OutcomePromoted || want == "" || got[c.wantName] != want || got["backendUrl"] != "http://127.0.0.1:8080/v2" || len(got) != 2 || st.Release != want {
				t.Fatalf("outcome %s, canary variables %v, status release %q; want %s=%q", r.Outcome, got, st.Release, c.wantName, want)
			}
			if s.Release.Variables[c.wantName] != c.own {
				t.Fatalf("the spec's variables were changed: %v", s.Release.Variables)
			}
		})
	}
}

// A failure injected at each step rolls back exactly the completed steps, newest first.
func TestDeployment_FailureAtEachStep_CompensatesCompletedStepsInReverse(t *testing.T) {
	labels, jwks, authz, stage, reissue, flush := "restore key labels", "republish the snapshot JWKS", "restore the authorizer", "restore the stage", "reissue tokens with the previous key", "flush the authorizer cache"
	cases := []struct {
		failAt string
		want   []string
	}{
		{"SnapshotGateway", nil},
		{"PrepareKey", nil},
		{"PublishJWKS", []string{labels}},
		{"ApplyAuthorizer", []string{jwks, labels}},
		{"StartCanary", []string{authz, jwks, labels}},
		{"SetCanaryWeight", []string{stage, authz, jwks, labels}},
		{"PromoteCanary", []string{stage, authz, jwks, labels}},
		{"PromoteLabels", []string{stage, authz, jwks, labels}},
		{"ReissueTokens", []string{stage, authz, jwks, labels}},
		// The reissued tokens are revoked: the stage's cache is flushed after everything else.
		{"ProbeClients", []string{reissue, stage, authz, jwks, labels, flush}},
		{"RecordRelease", []string{reissue, stage, authz, jwks, labels, flush}},
	}
	for _, tc := range cases {
		t.Run(tc.failAt, func(t *testing.T) {
			w := &world{failAt: tc.failAt}
			env := newEnv(t, w)
			env.ExecuteWorkflow(workflows.Deployment, testSpec())
			r := result(t, env)
			if r.Outcome != workflows.OutcomeRolledBack || r.Rollback == nil {
				t.Fatalf("outcome %s", r.Outcome)
			}
			if got := stepNames(r.Rollback); !slices.Equal(got, tc.want) {
				t.Fatalf("compensations\n got %v\nwant %v", got, tc.want)
			}
			if r.Rollback.Trigger != "activity-failure" || !r.Rollback.Verified || !strings.Contains(r.Rollback.Reason, tc.failAt) {
				t.Fatalf("report %+v", r.Rollback)
			}
		})
	}
}

func TestDeployment_HealthBreachDuringBake_RollsBackAutomatically(t *testing.T) {
	w := &world{breach: true}
	env := newEnv(t, w)
	env.ExecuteWorkflow(workflows.Deployment, testSpec())
	r := result(t, env)
	if r.Outcome != workflows.OutcomeRolledBack || r.Rollback.Trigger != "health" || !strings.Contains(r.Rollback.Reason, "rejection ratio") {
		t.Fatalf("result %+v / %+v", r, r.Rollback)
	}
	if w.count("SetCanaryWeight") != 0 || w.count("PromoteCanary") != 0 {
		t.Fatalf("the release went on after the breach: %v", w.called())
	}
	if !slices.Equal(stepNames(r.Rollback), []string{"restore the stage", "restore the authorizer", "republish the snapshot JWKS", "restore key labels"}) {
		t.Fatalf("compensations %v", stepNames(r.Rollback))
	}
}

// A dependency of the verification (the registry its probes mint tokens in) unreachable for a
// while after the compensations: the checks are retried until it is back, and the rollback is
// verified instead of reported unverified.
func TestDeployment_VerificationWaitsOutADependencyOutage(t *testing.T) {
	w := &world{breach: true, verifyOutage: 6}
	env := newEnv(t, w)
	env.ExecuteWorkflow(workflows.Deployment, testSpec())
	r := result(t, env)
	if r.Outcome != workflows.OutcomeRolledBack || !r.Rollback.Verified || w.verifyOutage != 0 {
		t.Fatalf("outcome %s, report %+v, %d failures left", r.Outcome, r.Rollback, w.verifyOutage)
	}
}

// Vault sealed for about half a minute while a release checks its tokens: the probes cannot mint
// and fail with a retryable error, which says nothing about the release's health. They are retried
// until Vault is back and the release is promoted; likewise a bake that cannot mint at its start.
func TestDeployment_TokenChecksAndBakesWaitOutASealedVault(t *testing.T) {
	for name, w := range map[string]*world{"token-check": {sealedProbes: 6}, "bake": {sealedBakes: 6}} {
		t.Run(name, func(t *testing.T) {
			env := newEnv(t, w)
			env.ExecuteWorkflow(workflows.Deployment, testSpec())
			r := result(t, env)
			if r.Outcome != workflows.OutcomePromoted || w.sealedProbes+w.sealedBakes != 0 {
				t.Fatalf("outcome %s (rollback %+v), %d probe and %d bake refusals left", r.Outcome, r.Rollback, w.sealedProbes, w.sealedBakes)
			}
		})
	}
}

func TestDeployment_OperatorRollbackDuringAnHourLongBake_RestoresEverything(t *testing.T) {
	w := &world{block: true}
	env := newEnv(t, w)
	var report workflows.RollbackReport
	var rejected error
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		if info.ActivityType.Name != "Bake" {
			return
		}
		// Recorded here, before the rollback is sent: the Bake mock records its own call on
		// another goroutine, which a busy machine may run after the compensations.
		_ = w.record("bake started")
		env.RegisterDelayedCallback(func() {
			env.UpdateWorkflow(workflows.UpdateRollback, "rb-1", &testsuite.TestUpdateCallback{
				OnReject:   func(err error) { rejected = err },
				OnAccept:   func() {},
				OnComplete: func(v any, err error) { report = v.(workflows.RollbackReport) },
			}, workflows.OperatorRequest{Actor: "alice", Reason: "p99 latency"})
		}, 0)
	})
	env.ExecuteWorkflow(workflows.Deployment, testSpec())
	r := result(t, env)
	if rejected != nil {
		t.Fatal(rejected)
	}
	if r.Outcome != workflows.OutcomeRolledBack || r.Rollback.Trigger != "operator" || r.Rollback.Actor != "alice" || r.Rollback.Reason != "p99 latency" || !r.Rollback.Verified {
		t.Fatalf("report %+v", r.Rollback)
	}
	if report.Trigger != "operator" || report.Actor != "alice" || len(report.Steps) != 4 {
		t.Fatalf("the update returned %+v", report)
	}
	if w.count("SetCanaryWeight") != 0 {
		t.Fatal("the canary moved on after the rollback")
	}
	for _, want := range []string{"RestoreStage", "RestoreAuthorizer", "PublishJWKS(snapshot)", "RestoreLabels", "VerifyRestored", "ReadLabels", "ProbeRevoked"} {
		if !slices.Contains(w.after("bake started"), want) {
			t.Fatalf("%s was not called after the bake: %v", want, w.after("bake started"))
		}
	}
}

func TestDeployment_DuplicateRollbackReturnsTheSameReport(t *testing.T) {
	w := &world{block: true}
	env := newEnv(t, w)
	var reports []workflows.RollbackReport
	var mu sync.Mutex
	send := func(id string) {
		env.UpdateWorkflow(workflows.UpdateRollback, id, &testsuite.TestUpdateCallback{
			OnReject: func(err error) { t.Errorf("rollback %s rejected: %v", id, err) },
			OnAccept: func() {},
			OnComplete: func(v any, err error) {
				mu.Lock()
				defer mu.Unlock()
				reports = append(reports, v.(workflows.RollbackReport))
			},
		}, workflows.OperatorRequest{Actor: "alice", Reason: "bad release"})
	}
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		if info.ActivityType.Name == "Bake" {
			env.RegisterDelayedCallback(func() { send("rb-1"); send("rb-1"); send("rb-2") }, 0)
		}
	})
	env.ExecuteWorkflow(workflows.Deployment, testSpec())
	result(t, env)
	// The test environment answers a repeated update id once (the server returns the first
	// outcome again); a second id joins the rollback under way.
	if len(reports) < 2 {
		t.Fatalf("%d reports for requests rb-1, rb-1, rb-2", len(reports))
	}
	for _, r := range reports[1:] {
		if r.StartedAt != reports[0].StartedAt || len(r.Steps) != len(reports[0].Steps) {
			t.Fatalf("a repeated rollback got another report: %+v vs %+v", r, reports[0])
		}
	}
	if w.count("RestoreStage") != 1 {
		t.Fatalf("the stage was restored %d times", w.count("RestoreStage"))
	}
}

func TestDeployment_PauseHoldsTheNextStepUntilResume(t *testing.T) {
	w := &world{}
	env := newEnv(t, w)
	var resumedAt, step2At time.Time
	first := true
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		switch {
		case info.ActivityType.Name == "Bake" && first:
			first = false
			env.RegisterDelayedCallback(func() {
				env.UpdateWorkflowNoRejection(workflows.UpdatePause, "p1", t, workflows.OperatorRequest{Actor: "bob", Reason: "investigating"})
			}, 0)
			env.RegisterDelayedCallback(func() {
				resumedAt = env.Now()
				env.UpdateWorkflowNoRejection(workflows.UpdateResume, "r1", t, workflows.OperatorRequest{Actor: "bob", Reason: "fine"})
			}, 3*time.Hour)
		case info.ActivityType.Name == "SetCanaryWeight" && step2At.IsZero():
			step2At = env.Now()
		}
	})
	env.ExecuteWorkflow(workflows.Deployment, testSpec())
	r := result(t, env)
	if r.Outcome != workflows.OutcomePromoted {
		t.Fatalf("outcome %s", r.Outcome)
	}
	if resumedAt.IsZero() || step2At.Before(resumedAt) {
		t.Fatalf("step 2 started at %v, before the resume at %v", step2At, resumedAt)
	}
}

// promoteWhen sends an operator's promote as soon as the activity starts.
func promoteWhen(t *testing.T, env *testsuite.TestWorkflowEnvironment, activityType string) {
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		if info.ActivityType.Name == activityType {
			env.RegisterDelayedCallback(func() {
				env.UpdateWorkflowNoRejection(workflows.UpdatePromote, "pr1", t, workflows.OperatorRequest{Actor: "carol", Reason: "looks good"})
			}, 0)
		}
	})
}

func TestDeployment_PromoteEarlySkipsTheRemainingSteps(t *testing.T) {
	w := &world{block: true}
	env := newEnv(t, w)
	promoteWhen(t, env, "Bake")
	env.ExecuteWorkflow(workflows.Deployment, testSpec())
	r := result(t, env)
	if r.Outcome != workflows.OutcomePromoted || w.count("SetCanaryWeight") != 0 || w.count("PromoteCanary") != 1 {
		t.Fatalf("outcome %s, calls %v", r.Outcome, w.called())
	}
}

// A promote asked for before the canary exists (during preflight) still creates the canary and
// proves its tokens, then promotes without baking.
func TestDeployment_PromoteBeforeTheCanaryExistsStillGoesThroughIt(t *testing.T) {
	w := &world{}
	env := newEnv(t, w)
	promoteWhen(t, env, "SnapshotGateway")
	env.ExecuteWorkflow(workflows.Deployment, testSpec())
	r := result(t, env)
	if r.Outcome != workflows.OutcomePromoted || w.count("StartCanary") != 1 || w.count("Bake") != 0 || w.count("SetCanaryWeight") != 0 || w.count("PromoteCanary") != 1 {
		t.Fatalf("outcome %s (%+v), calls %v", r.Outcome, r.Rollback, w.called())
	}
	if got := w.after("StartCanary"); len(got) < 2 || got[0] != "Probe" || got[1] != "PromoteCanary" {
		t.Fatalf("after the canary started: %v, want its token check, then the promotion", got)
	}
}

func TestDeployment_ValidatorsRefuseWhatCannotApplyNow(t *testing.T) {
	w := &world{block: true}
	env := newEnv(t, w)
	refusals, try := refusalsOf(env)
	env.RegisterDelayedCallback(func() {
		try(workflows.UpdateResume, "resume-not-paused", workflows.OperatorRequest{Actor: "a", Reason: "x"})
		try(workflows.UpdateRollback, "rollback-no-reason", workflows.OperatorRequest{Actor: "a"})
		try(workflows.UpdatePause, "pause-no-actor", workflows.OperatorRequest{Reason: "x"})
		try(workflows.UpdateSkipStep, "skip-not-baking", workflows.OperatorRequest{Actor: "a"})
	}, 0)
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		if info.ActivityType.Name == "Bake" {
			env.RegisterDelayedCallback(func() {
				try(workflows.UpdateRollback, "rollback-ok", workflows.OperatorRequest{Actor: "a", Reason: "done testing"})
			}, 0)
		}
	})
	env.ExecuteWorkflow(workflows.Deployment, testSpec())
	result(t, env)
	for id, says := range map[string]string{"resume-not-paused": "not paused", "rollback-no-reason": "reason is required",
		"pause-no-actor": "actor is required", "skip-not-baking": "not baking"} {
		if !strings.Contains(refusals[id], says) {
			t.Errorf("%s: refusal %q, want it to say %q", id, refusals[id], says)
		}
	}
	if _, ok := refusals["rollback-ok"]; ok {
		t.Fatalf("a valid rollback was refused: %s", refusals["rollback-ok"])
	}
}

func TestDeployment_CancellationRollsBack(t *testing.T) {
	w := &world{block: true}
	env := newEnv(t, w)
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		if info.ActivityType.Name == "Bake" {
			env.RegisterDelayedCallback(env.CancelWorkflow, 0)
		}
	})
	env.ExecuteWorkflow(workflows.Deployment, testSpec())
	r := result(t, env)
	if r.Rollback == nil || r.Rollback.Trigger != "cancelled" || len(r.Rollback.Steps) != 4 {
		t.Fatalf("report %+v", r.Rollback)
	}
	if w.count("RestoreStage") != 1 {
		t.Fatalf("cancellation skipped the rollback: %v", w.called())
	}
}

func TestDeployment_InvalidSpecFailsBeforeAnyActivity(t *testing.T) {
	w := &world{}
	env := newEnv(t, w)
	s := testSpec()
	s.Canary.Steps[0].Weight = 150
	env.ExecuteWorkflow(workflows.Deployment, s)
	err := env.GetWorkflowError()
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Type() != workflows.ErrInvalidSpec || !app.NonRetryable() || !strings.Contains(app.Error(), "canary.steps[0].weight") {
		t.Fatalf("error %v", err)
	}
	if len(w.called()) != 0 {
		t.Fatalf("activities ran for an invalid spec: %v", w.called())
	}
}

// A release variable naming a stage variable that holds something else than a release label
// (here the stable backend's URL) is refused once the stage is read, before anything changes: the
// release would overwrite it with its run id, in the canary and, once promoted, on the stage.
func TestDeployment_ReleaseVariableNamingAnotherStageVariableIsRefused(t *testing.T) {
	w := &world{}
	env := newEnv(t, w)
	s := testSpec()
	s.Gateway.ReleaseVariable = "backendUrl"
	s.Release.Variables = map[string]string{"color": "blue"}
	env.ExecuteWorkflow(workflows.Deployment, s)
	r := result(t, env)
	if r.Outcome != workflows.OutcomeRolledBack || r.Rollback == nil || !strings.Contains(r.Rollback.Reason, "gateway.releaseVariable") {
		t.Fatalf("outcome %s, rollback %+v", r.Outcome, r.Rollback)
	}
	if strings.Contains(r.Rollback.Reason, "127.0.0.1") {
		t.Fatalf("the reason repeats the stage variable's value: %s", r.Rollback.Reason)
	}
	for _, write := range []string{"PrepareKey", "PublishJWKS", "ApplyAuthorizer", "StartCanary", "Restore"} {
		for _, c := range w.called() {
			if strings.HasPrefix(c, write) {
				t.Fatalf("%s ran for a release variable in use: %v", c, w.called())
			}
		}
	}
}

// A webhook that times out is logged as "notification not delivered" by scheme://host only: the
// path and query, where Slack-style webhooks keep their secret, stay out of the workflow's log.
func TestDeployment_UndeliveredNotification_LogsNoWebhookSecret(t *testing.T) {
	stop := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // a handler that has read the body sees the client hang up
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	defer hang.Close()
	defer close(stop) // first: Close waits for every handler
	webhook := &activities.Notify{HTTP: &http.Client{Timeout: 50 * time.Millisecond}, Webhooks: map[string]string{"oncall": hang.URL + "/services/T0/B0/s3cr3t?token=s3cr3t"}}
	w := &world{breach: true, send: webhook.Send}
	env := newEnv(t, w)
	s := testSpec()
	s.Notify.Webhook = "oncall"
	env.ExecuteWorkflow(workflows.Deployment, s)
	if r := result(t, env); r.Outcome != workflows.OutcomeRolledBack {
		t.Fatalf("outcome %s", r.Outcome)
	}
	logs := w.logs.String()
	if !strings.Contains(logs, "notification not delivered") || !strings.Contains(logs, hang.URL) {
		t.Fatalf("no undelivered notification naming %s logged", hang.URL)
	}
	if strings.Contains(logs, "s3cr3t") || strings.Contains(logs, "/services/") {
		t.Fatalf("the workflow log shows the webhook secret:\n%s", strings.ReplaceAll(logs, "s3cr3t", "<SECRET>"))
	}
}

func TestDeployment_AFailingWebhookNeverHoldsUpARollback(t *testing.T) {
	w := &world{breach: true, failAt: "Send"}
	env := newEnv(t, w)
	s := testSpec()
	s.Notify.Webhook = "oncall"
	env.ExecuteWorkflow(workflows.Deployment, s)
	r := result(t, env)
	if r.Outcome != workflows.OutcomeRolledBack || !r.Rollback.Verified || len(r.Rollback.Steps) != 4 {
		t.Fatalf("rollback with a failing webhook: %+v", r.Rollback)
	}
	// The two notifications run as concurrent activities: their order is not fixed.
	joined := strings.Join(w.notes, "\n")
	if len(w.notes) != 2 || !strings.Contains(joined, "rolling back") || !strings.Contains(joined, "verified: true") {
		t.Fatalf("notifications %q", w.notes)
	}
}

// A rollback request that arrives after the report, while the deployment is still open, joins the
// rollback that just finished: it is accepted and gets the same report (the server would abort it
// if the run closed in the task that produced the report).
func TestDeployment_RollbackRequestAfterTheReportJoinsIt(t *testing.T) {
	w := &world{block: true}
	env := newEnv(t, w)
	reports := map[string]workflows.RollbackReport{}
	send := func(id string) {
		env.UpdateWorkflow(workflows.UpdateRollback, id, &testsuite.TestUpdateCallback{
			OnReject:   func(err error) { t.Errorf("rollback %s rejected: %v", id, err) },
			OnAccept:   func() {},
			OnComplete: func(v any, err error) { reports[id] = v.(workflows.RollbackReport) },
		}, workflows.OperatorRequest{Actor: "bob", Reason: "pressed too"})
	}
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		switch info.ActivityType.Name {
		case "Bake":
			env.RegisterDelayedCallback(func() { send("first") }, 0)
		case "ProbeRevoked": // the last check of the verification: the report follows
			env.RegisterDelayedCallback(func() { send("late") }, time.Second)
		}
	})
	env.ExecuteWorkflow(workflows.Deployment, testSpec())
	r := result(t, env)
	first, late := reports["first"], reports["late"]
	if len(reports) != 2 || late.StartedAt != first.StartedAt || late.Actor != r.Rollback.Actor || len(late.Steps) != len(first.Steps) {
		t.Fatalf("reports %+v, want the first one twice", reports)
	}
	if w.count("RestoreStage") != 1 {
		t.Fatalf("the stage was restored %d times", w.count("RestoreStage"))
	}
}

// The status query lists the compensations of a rollback: which ran, in which order, how long.
func TestDeployment_StatusListsTheCompensations(t *testing.T) {
	w := &world{breach: true}
	env := newEnv(t, w)
	env.ExecuteWorkflow(workflows.Deployment, testSpec())
	result(t, env)
	var st workflows.Status
	v, err := env.QueryWorkflow(workflows.QueryStatus)
	if err != nil || v.Get(&st) != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range st.Compensations {
		if c.State != workflows.CompensationDone || c.Started.IsZero() || c.Attempts != 1 {
			t.Fatalf("compensation %+v", c)
		}
		names = append(names, c.Name)
	}
	if !slices.Equal(names, []string{"restore the stage", "restore the authorizer", "republish the snapshot JWKS", "restore key labels"}) {
		t.Fatalf("compensations %v", names)
	}
}

// refusalsOf returns a way to send operator updates through env and the refusals they met, by
// update id.
func refusalsOf(env *testsuite.TestWorkflowEnvironment) (map[string]string, func(name, id string, req workflows.OperatorRequest)) {
	refusals := map[string]string{}
	return refusals, func(name, id string, req workflows.OperatorRequest) {
		env.UpdateWorkflow(name, id, &testsuite.TestUpdateCallback{
			OnReject:   func(err error) { refusals[id] = err.Error() },
			OnAccept:   func() {},
			OnComplete: func(any, error) {},
		}, req)
	}
}

// The retirement a promoted release schedules knows the release's stage, to flush it when the
// previous key version retires.
func TestDeployment_SchedulesTheRetirementWithItsStageToFlush(t *testing.T) {
	w := &world{}
	env := newEnv(t, w)
	env.ExecuteWorkflow(workflows.Deployment, testSpec())
	result(t, env)
	want := activities.Target{APIID: "abcdefghij", Stage: "prod"}
	if len(w.retirements) != 1 || w.retirements[0].Version != 3 || !slices.Equal(w.retirements[0].Flush, []activities.Target{want}) {
		t.Fatalf("retirements scheduled %+v, want version 3 flushing %+v", w.retirements, want)
	}
}
