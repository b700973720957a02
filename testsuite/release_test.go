package testsuite_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/rollgate/rollgate/activities"
	"github.com/rollgate/rollgate/internal/gateway"
	"github.com/rollgate/rollgate/internal/keys"
	"github.com/rollgate/rollgate/internal/registry"
	"github.com/rollgate/rollgate/testsuite"
	"github.com/rollgate/rollgate/workflows"
)

func provision(t *testing.T, name string) *testsuite.ReleaseBed {
	t.Helper()
	r, err := testsuite.ProvisionRelease(context.Background(), shared.Bed(t), name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

func startDeployment(t *testing.T, r *testsuite.ReleaseBed, version string, bake time.Duration) client.WorkflowRun {
	t.Helper()
	s := r.Spec(version, bake)
	run, err := r.Temporal.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{
		ID: s.WorkflowID(), TaskQueue: workflows.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}, workflows.Deployment, s)
	if err != nil {
		t.Fatal(err)
	}
	return run
}

func deployResult(t *testing.T, run client.WorkflowRun) workflows.DeployResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	var res workflows.DeployResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("deployment failed: %v", err)
	}
	return res
}

// state is what a user checks after a release: the stage, the key labels, and what the gateway
// does with the client's delivered token.
type state struct {
	stage       gateway.Stage
	authorizer  map[string]string
	labels      keys.Labels
	clientKID   string
	clientJTI   string
	clientCalls int
}

func observe(t *testing.T, r *testsuite.ReleaseBed) state {
	t.Helper()
	ctx := context.Background()
	var s state
	snap, err := r.Activity.Gateway.SnapshotGateway(ctx, activities.SnapshotInput{Target: r.Target(), AuthorizerID: r.AuthorizerID})
	if err != nil {
		t.Fatal(err)
	}
	s.stage, s.authorizer = snap.Stage, snap.Authorizer.Settings
	if s.labels, err = r.Activity.Keys.ReadLabels(ctx, r.Key); err != nil {
		t.Fatal(err)
	}
	cur, err := r.Activity.Tokens.Delivery.Current(ctx, r.Clients[0])
	if err != nil {
		t.Fatal(err)
	}
	s.clientKID = cur.KID
	s.clientJTI = cur.JTI
	probe, err := r.Activity.Health.ProbeClients(ctx, activitiesClients(r))
	if err != nil {
		t.Fatal(err)
	}
	s.clientCalls = probe.Accepted
	return s
}

func TestRelease_HealthyCanaryIsPromoted_StageKeyAndTokensMoveTogether(t *testing.T) {
	r := provision(t, "promoted")
	before := observe(t, r)
	// The authorizer's identity reached the backend as a user of API Gateway passes it on: the
	// integration maps the authorizer's context to headers (the backends refuse a request without them).
	if got := r.LastCaller(); got.Client != r.Clients[0] || got.Subject == "" || got.JTI != before.clientJTI {
		t.Fatalf("the backend received caller %+v; want client %s and the token's jti %s", got, r.Clients[0], before.clientJTI)
	}
	run := startDeployment(t, r, "v2", 10*time.Second)

	// A second deployment of the same stage is refused while the first runs.
	_, err := r.Temporal.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{
		ID: run.GetID(), TaskQueue: workflows.TaskQueue, WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
	}, workflows.Deployment, r.Spec("v2", 10*time.Second))
	if err == nil || !strings.Contains(err.Error(), "already") {
		t.Fatalf("second deployment of the stage: %v", err)
	}

	res := deployResult(t, run)
	if res.Outcome != workflows.OutcomePromoted {
		t.Fatalf("outcome %s: %+v", res.Outcome, res.Rollback)
	}
	after := observe(t, r)
	if after.stage.DeploymentID != res.ReleaseDeploymentID || after.stage.DeploymentID == before.stage.DeploymentID ||
		after.stage.HasCanary() || after.stage.Variables["backendUrl"] != r.Backends["v2"] {
		t.Fatalf("stage after promotion %+v (release %s)", after.stage, res.ReleaseDeploymentID)
	}
	if after.labels != (keys.Labels{Current: before.labels.Current + 1, Previous: before.labels.Current}) {
		t.Fatalf("labels %+v, before %+v", after.labels, before.labels)
	}
	if after.clientKID != keys.KID(r.Key, after.labels.Current) || after.clientCalls != 1 {
		t.Fatalf("client token %s accepted %d times", after.clientKID, after.clientCalls)
	}
	events := historyLength(t, r, run)
	if events >= 300 {
		t.Fatalf("a 2-step canary wrote %d history events", events)
	}
	replay(t, r, run, "deployment-promoted.json")

	// Control-plane activities ran on the gateway task queue, paced there; probes and bakes did not.
	gatewayQueue := workflows.GatewayTaskQueue(workflows.TaskQueue)
	for name, queues := range activityQueues(t, r, run) {
		onGateway := slices.Contains([]string{"SnapshotGateway", "ApplyAuthorizer", "StartCanary", "SetCanaryWeight", "PromoteCanary"}, name)
		if want := map[bool]string{true: gatewayQueue, false: workflows.TaskQueue}[onGateway]; !slices.Equal(queues, []string{want}) {
			t.Errorf("activity %s scheduled on %v; want %s", name, queues, want)
		}
	}

	// The authorizer counted each verification under the release that served it: the stable
	// deployment before the release carried no label, the canary and the promoted stage the run's.
	if after.stage.Variables["rollgateRelease"] != run.GetRunID() {
		t.Fatalf("stage variables after promotion %v; want rollgateRelease=%s", after.stage.Variables, run.GetRunID())
	}
	counts := r.Verifications()
	if counts[testsuite.ReleaseOutcome{Release: "unknown", Outcome: "accepted"}] == 0 || counts[testsuite.ReleaseOutcome{Release: run.GetRunID(), Outcome: "accepted"}] == 0 {
		t.Fatalf("the authorizer's verifications by release and outcome %v; want accepted ones under unknown (before) and %s (the release)", counts, run.GetRunID())
	}
	// The previous key version's retirement runs on: it waits out token TTL + cache TTL.
	retireID := "retire/" + r.Key + "/v1/" + run.GetRunID()
	retire, err := r.Temporal.DescribeWorkflowExecution(context.Background(), retireID, "")
	if err != nil || retire.WorkflowExecutionInfo.Status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Fatalf("key retirement: %v, %v", retire, err)
	}
	replay(t, r, r.Temporal.GetWorkflow(context.Background(), retireID, ""), "key-retirement-waiting.json")
	t.Logf("promoted in %d history events; timeline:\n%s", events, timeline(res.Timeline))
}

func TestRelease_BrokenCanaryIsRolledBackAutomatically(t *testing.T) {
	r := provision(t, "broken")
	before := observe(t, r)
	res := deployResult(t, startDeployment(t, r, "v3", 10*time.Second))
	rep := res.Rollback
	if res.Outcome != workflows.OutcomeRolledBack || rep == nil || rep.Trigger != "health" || !rep.Verified {
		t.Fatalf("outcome %s, report %+v", res.Outcome, rep)
	}
	after := observe(t, r)
	if after.stage.DeploymentID != before.stage.DeploymentID || after.stage.HasCanary() || after.labels != before.labels {
		t.Fatalf("not restored: stage %+v labels %+v (before %+v %+v)", after.stage, after.labels, before.stage, before.labels)
	}
	if after.clientKID != before.clientKID || after.clientCalls != 1 {
		t.Fatalf("client token %s accepted %d times after the rollback", after.clientKID, after.clientCalls)
	}
	t.Logf("rolled back in %s: %+v", rep.Latency, rep.Steps)
}

func TestRelease_OperatorRollbackMidBake_RestoresAndProvesIt(t *testing.T) {
	r := provision(t, "operator")
	before := observe(t, r)
	run := startDeployment(t, r, "v2", 10*time.Minute)
	waitForPhase(t, r, run, workflows.PhaseBaking)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	handle, err := r.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: run.GetID(), RunID: run.GetRunID(), UpdateName: workflows.UpdateRollback, UpdateID: "rollback-1",
		WaitForStage: client.WorkflowUpdateStageCompleted, Args: []any{workflows.OperatorRequest{Actor: "alice", Reason: "error budget"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var rep workflows.RollbackReport
	if err := handle.Get(ctx, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Trigger != "operator" || rep.Actor != "alice" || !rep.Verified || len(rep.Steps) == 0 {
		t.Fatalf("report %+v", rep)
	}
	res := deployResult(t, run)
	if res.Outcome != workflows.OutcomeRolledBack {
		t.Fatalf("outcome %s", res.Outcome)
	}
	after := observe(t, r)
	if after.stage.DeploymentID != before.stage.DeploymentID || after.stage.HasCanary() || after.labels != before.labels || after.clientCalls != 1 {
		t.Fatalf("not restored: %+v (before %+v)", after, before)
	}
	// Tokens of the rolled-back key are rejected.
	probe, err := r.Activity.Health.ProbeRevoked(context.Background(), probeWith(r, before.labels.Current+1))
	if err != nil || !probe {
		t.Fatalf("a token of the rolled-back key version is still accepted (%v)", err)
	}
	replay(t, r, run, "deployment-operator-rollback.json")
	t.Logf("operator rollback verified in %s", rep.Latency)

	_, err = r.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: run.GetID(), RunID: run.GetRunID(), UpdateName: workflows.UpdateRollback, UpdateID: "rollback-2",
		WaitForStage: client.WorkflowUpdateStageCompleted, Args: []any{workflows.OperatorRequest{Actor: "alice", Reason: "again"}},
	})
	if err == nil {
		t.Fatal("a rollback of a finished deployment was accepted")
	}
}

// replay replays a finished run's real history against the current workflow code, and, with
// ROLLGATE_RECORD_HISTORY=1, records it as a fixture for workflows' replay tests.
func replay(t *testing.T, r *testsuite.ReleaseBed, run client.WorkflowRun, fixture string) {
	t.Helper()
	h, err := testsuite.History(context.Background(), r.Temporal, run.GetID(), run.GetRunID())
	if err != nil {
		t.Fatal(err)
	}
	rp := worker.NewWorkflowReplayer()
	workflows.Register(rp)
	if err := rp.ReplayWorkflowHistory(nil, h); err != nil {
		t.Fatalf("the run does not replay: %v", err)
	}
	if os.Getenv("ROLLGATE_RECORD_HISTORY") == "1" {
		root, _ := testsuite.RepoRoot()
		if err := testsuite.WriteHistoryJSON(filepath.Join(root, "workflows", "testdata", fixture), h); err != nil {
			t.Fatal(err)
		}
	}
}

func waitForPhase(t *testing.T, r *testsuite.ReleaseBed, run client.WorkflowRun, phase workflows.Phase) {
	t.Helper()
	waitForStatus(t, r, run, func(st workflows.Status) bool { return st.Phase == phase })
}

func waitForStatus(t *testing.T, r *testsuite.ReleaseBed, run client.WorkflowRun, ok func(workflows.Status) bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		v, err := r.Temporal.QueryWorkflow(context.Background(), run.GetID(), run.GetRunID(), workflows.QueryStatus)
		if err == nil {
			var st workflows.Status
			if v.Get(&st) == nil && ok(st) {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("the deployment never reached the awaited state")
}

// activityQueues maps each activity type the run scheduled to the task queues it was scheduled on.
func activityQueues(t *testing.T, r *testsuite.ReleaseBed, run client.WorkflowRun) map[string][]string {
	t.Helper()
	it := r.Temporal.GetWorkflowHistory(context.Background(), run.GetID(), run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	queues := map[string][]string{}
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := e.GetActivityTaskScheduledEventAttributes(); a != nil {
			name, queue := a.GetActivityType().GetName(), a.GetTaskQueue().GetName()
			if !slices.Contains(queues[name], queue) {
				queues[name] = append(queues[name], queue)
			}
		}
	}
	return queues
}

func historyLength(t *testing.T, r *testsuite.ReleaseBed, run client.WorkflowRun) int {
	t.Helper()
	it := r.Temporal.GetWorkflowHistory(context.Background(), run.GetID(), run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	n := 0
	for it.HasNext() {
		if _, err := it.Next(); err != nil {
			t.Fatal(err)
		}
		n++
	}
	return n
}

func timeline(events []workflows.Event) string {
	var sb strings.Builder
	for _, e := range events {
		sb.WriteString(e.At.Format("15:04:05.000") + "  " + string(e.Phase) + "  " + e.Message + "\n")
	}
	return sb.String()
}

func activitiesClients(r *testsuite.ReleaseBed) activities.ClientsInput {
	return activities.ClientsInput{Target: r.Target(), Clients: r.Clients}
}

func probeWith(r *testsuite.ReleaseBed, version int) activities.ProbeInput {
	return activities.ProbeInput{Target: r.Target(), Issuer: r.IssuerRef(), Versions: []int{version}}
}

func TestRelease_FinishedReleaseIsRolledBackFromTheHistory(t *testing.T) {
	r := provision(t, "history")
	before := observe(t, r)
	promoted := deployResult(t, startDeployment(t, r, "v2", 10*time.Second))
	if promoted.Outcome != workflows.OutcomePromoted {
		t.Fatalf("outcome %s", promoted.Outcome)
	}
	newKID := keys.KID(r.Key, promoted.KeyVersion)

	ctx := context.Background()
	run, err := r.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: workflows.RollbackWorkflowID(r.APIID, r.Stage), TaskQueue: workflows.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL, WorkflowExecutionErrorWhenAlreadyStarted: true,
	}, workflows.Rollback, workflows.RollbackSpec{APIID: r.APIID, Stage: r.Stage, Actor: "bob", Reason: "regression found after release"})
	if err != nil {
		t.Fatal(err)
	}
	var rep workflows.RollbackReport
	if err := run.Get(ctx, &rep); err != nil {
		t.Fatalf("rollback of the finished release: %v", err)
	}
	// Five compensations, then the stage's authorizer cache is flushed after the revocation.
	if !rep.Verified || rep.Actor != "bob" || len(rep.Steps) != 6 || rep.Steps[5].Name != "flush the authorizer cache" {
		t.Fatalf("report %+v", rep)
	}
	after := observe(t, r)
	if after.stage.DeploymentID != before.stage.DeploymentID || after.stage.Variables["backendUrl"] != r.Backends["v1"] || after.labels != before.labels {
		t.Fatalf("not restored: stage %+v labels %+v (before %+v %+v)", after.stage, after.labels, before.stage, before.labels)
	}
	if after.clientKID == newKID || after.clientKID != keys.KID(r.Key, before.labels.Current) || after.clientCalls != 1 {
		t.Fatalf("client holds %s (accepted %d times), want a fresh token of the previous key", after.clientKID, after.clientCalls)
	}
	// The release's token was revoked, then replaced by the fresh one: the registry says both.
	fresh, err := r.Activity.Tokens.Delivery.Current(ctx, r.Clients[0])
	if err != nil {
		t.Fatal(err)
	}
	recs, err := r.Activity.Tokens.Registry.BySubject(ctx, r.Clients[0])
	if err != nil {
		t.Fatal(err)
	}
	released := 0
	for _, rec := range recs {
		if rec.KID != newKID {
			continue
		}
		released++
		if rec.Status != registry.Revoked || rec.ReplacedBy != fresh.JTI {
			t.Fatalf("the release's token after the rollback: %s, replaced by %q (want revoked, replaced by %s)", rec.Status, rec.ReplacedBy, fresh.JTI)
		}
	}
	if released != 1 {
		t.Fatalf("%d tokens of the release's key in the registry, want 1", released)
	}
	// rollback-finished-release.json stays as recorded before the flush, for runs started then.
	replay(t, r, run, "rollback-finished-release-flush.json")
}

// An HTTP API has no canary: the release's stage variables and JWT authorizer settings apply to
// the whole stage, proven by token health, and a broken release is rolled back the same way.
func TestRelease_HTTPAPI_PromotedThenABrokenReleaseRolledBack(t *testing.T) {
	r, err := testsuite.ProvisionHTTPRelease(context.Background(), shared.Bed(t), "httpapi")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	before := observe(t, r)
	if before.clientCalls != 1 {
		t.Fatalf("the client's token is not accepted by the JWT authorizer before any release")
	}
	// The token's claims reached the backend through the integration's parameter mappings.
	if got := r.LastCaller(); got.Client != r.Clients[0] || got.Subject == "" || got.JTI != before.clientJTI {
		t.Fatalf("the backend received caller %+v; want client %s and the token's jti %s", got, r.Clients[0], before.clientJTI)
	}
	res := deployResult(t, startDeployment(t, r, "v2", 10*time.Second))
	if res.Outcome != workflows.OutcomePromoted {
		t.Fatalf("outcome %s: %+v", res.Outcome, res.Rollback)
	}
	promoted := observe(t, r)
	if promoted.stage.Variables["backendUrl"] != r.Backends["v2"] || promoted.authorizer["/jwtConfiguration/audience"] != "orders,orders-v2" ||
		promoted.labels.Current != before.labels.Current+1 || promoted.clientKID != keys.KID(r.Key, promoted.labels.Current) || promoted.clientCalls != 1 {
		t.Fatalf("after the HTTP API release: %+v", promoted)
	}

	res = deployResult(t, startDeployment(t, r, "v3", 10*time.Second))
	if res.Outcome != workflows.OutcomeRolledBack || !res.Rollback.Verified || res.Rollback.Trigger != "health" {
		t.Fatalf("broken HTTP API release: %s %+v", res.Outcome, res.Rollback)
	}
	after := observe(t, r)
	if after.stage.Variables["backendUrl"] != r.Backends["v2"] || after.labels != promoted.labels || after.authorizer["/jwtConfiguration/audience"] != "orders,orders-v2" || after.clientCalls != 1 {
		t.Fatalf("after the rollback: %+v, want the promoted state %+v", after, promoted)
	}
}

// A security engineer revokes a client's tokens by subject; samples minted before the revocation
// prove it reached the gateway, and the client's real token is rejected too.
func TestRevocation_BySubjectAndByJTI_ProvenAtTheGateway(t *testing.T) {
	r := provision(t, "revoke")
	ctx := context.Background()
	if s := observe(t, r); s.clientCalls != 1 {
		t.Fatal("the client's token is not accepted before the revocation")
	}
	target := r.Target()
	run, err := r.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "revoke/" + r.Clients[0], TaskQueue: workflows.TaskQueue},
		workflows.TokenRevocation, workflows.RevocationSpec{Issuer: r.IssuerRef(), Subject: r.Clients[0], Actor: "sec", Reason: "laptop stolen", Proof: &target})
	if err != nil {
		t.Fatal(err)
	}
	var rep workflows.RevocationReport
	if err := run.Get(ctx, &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.Proven || rep.Samples != 1 || rep.Revoked != 1 {
		t.Fatalf("report %+v", rep)
	}
	if s := observe(t, r); s.clientCalls != 0 {
		t.Fatal("the revoked client's token is still accepted")
	}
	replay(t, r, run, "token-revocation-subject.json")

	jtis := []string{"never-issued-1", "never-issued-2"}
	run, err = r.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "revoke/jtis", TaskQueue: workflows.TaskQueue},
		workflows.TokenRevocation, workflows.RevocationSpec{Issuer: r.IssuerRef(), JTIs: jtis, Actor: "sec", Reason: "leak", Proof: &target})
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Get(ctx, &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.Proven || rep.Revoked != len(jtis)+1 {
		t.Fatalf("report %+v", rep)
	}
	t.Logf("revocation proven at the gateway in %s", rep.Duration)
}

// A key rotated outside a release: the new version signs, the client holds a token of it that the
// gateway accepts, and the old version waits for its retirement.
func TestKeyRotation_OutsideARelease_SwitchesSigningAndReissues(t *testing.T) {
	r := provision(t, "rotate")
	before := observe(t, r)
	ctx := context.Background()
	target := r.Target()
	run, err := r.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "rotate/" + r.Key, TaskQueue: workflows.TaskQueue},
		workflows.KeyRotation, workflows.KeyRotationSpec{Issuer: r.IssuerRef(), Clients: r.Clients, TokenTTL: time.Hour, Probe: &target, Actor: "sec", Reason: "quarterly"})
	if err != nil {
		t.Fatal(err)
	}
	var res workflows.KeyRotationResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatal(err)
	}
	after := observe(t, r)
	if res.Outcome != workflows.OutcomePromoted || after.labels != (keys.Labels{Current: before.labels.Current + 1, Previous: before.labels.Current}) ||
		after.clientKID != keys.KID(r.Key, after.labels.Current) || after.clientCalls != 1 || after.stage.DeploymentID != before.stage.DeploymentID {
		t.Fatalf("result %+v, state %+v (before %+v)", res, after, before)
	}
	replay(t, r, run, "key-rotation.json")
}
